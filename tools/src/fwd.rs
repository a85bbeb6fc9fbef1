//! `vipdrift fwd`: a reflector (drop, macswap, io) for throughput benchmarks.

use crate::port_args::{counters_json, iface_stat, PortArgs};
use crate::report;
use clap::{Args, ValueEnum};
use serde_json::{json, Value};
use std::time::Instant;
use vipdrift_engine::{Handler, IdlePolicy, NicFilter, Packet, Port, Verdict, Worker, WorkerConfig};

/// What the reflector does with each frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Mode {
    /// Count and recycle (testpmd rxonly).
    Drop,
    /// Swap source and destination MACs and send back (testpmd macswap).
    Macswap,
    /// Send unchanged: back out of the same interface, or out of --out (testpmd io).
    Io,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Drop => "drop",
            Mode::Macswap => "macswap",
            Mode::Io => "io",
        }
    }
}

/// The reflector's per-worker handler.
struct Reflector {
    mode: Mode,
    forward_to: Option<u8>,
}

impl Handler for Reflector {
    type Command = ();

    #[inline]
    fn handle(&mut self, packet: &mut Packet<'_>) -> Verdict {
        match self.mode {
            Mode::Drop => Verdict::Consume,
            Mode::Macswap => {
                packet.swap_macs();
                Verdict::Transmit
            }
            Mode::Io => match self.forward_to {
                Some(out) if out != packet.port() => Verdict::Forward(out),
                _ => Verdict::Transmit,
            },
        }
    }
}

#[derive(Args, Debug)]
pub(crate) struct FwdArgs {
    /// Interface to receive on.
    #[arg(long)]
    iface: String,
    /// Core to pin the worker to.
    #[arg(long)]
    core: Option<usize>,
    /// What to do with each frame.
    #[arg(long, value_enum)]
    mode: Mode,
    /// With --mode io: forward to this interface (same queue) instead of back out.
    #[arg(long)]
    out: Option<String>,
    /// Seconds to run (default: until Ctrl-C).
    #[arg(long)]
    duration: Option<f64>,
    #[command(flatten)]
    port: PortArgs,
    /// Longest frame accepted; longer ones are dropped as oversize.
    #[arg(long, default_value_t = 1522)]
    max_frame: usize,
    /// Yield the CPU after this many empty polls (default: spin, for dedicated cores).
    #[arg(long)]
    yield_after: Option<u32>,
    /// Print the final summary as one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: FwdArgs) -> Result<(), String> {
    if args.out.is_some() && args.mode != Mode::Io {
        return Err("--out goes with --mode io".into());
    }
    let stop = report::stop_on_signals()?;
    let (input, input_lock) = args.port.open(&args.iface)?;
    let mut ports = vec![input];
    let mut _locks = vec![input_lock];
    if let Some(out) = &args.out {
        let (output, output_lock) = args.port.open(out)?;
        ports.push(output);
        _locks.push(output_lock);
    }
    let modes: Vec<&str> = ports.iter().map(|p| p.bound_mode().name()).collect();
    let mode_name = modes[0];
    eprintln!(
        "fwd: {} queue {} bound in {} mode; {}{}",
        args.iface,
        args.port.queue,
        mode_name,
        args.mode.name(),
        args.out.as_ref().map(|o| format!(" to {o} ({} mode)", modes[1])).unwrap_or_default()
    );
    let handler = Reflector { mode: args.mode, forward_to: args.out.as_ref().map(|_| 1) };
    let idle = match args.yield_after {
        Some(spins) => IdlePolicy::SpinThenYield { spins },
        None => IdlePolicy::Spin,
    };
    let config =
        WorkerConfig { burst: args.port.burst, max_frame_len: args.max_frame, idle, ..WorkerConfig::default() };
    let rx_dropped_before = iface_stat(&args.iface, "rx_dropped");
    let (worker, handle) = Worker::new(ports, handler, config, None);
    let started = Instant::now();
    let mut first_rx: Option<Instant> = None;
    let mut last_rx: Option<Instant> = None;
    let mut last_count = 0;
    let run = report::LiveRun {
        core: args.core,
        label: format!("fwd {} q{}", args.iface, args.port.queue),
        quiet: args.json,
        stop: &stop,
        duration: args.duration,
    };
    let stats = handle.stats.clone();
    let (mut worker, log) = report::run_with_live_log(worker, &handle, run, |tick| {
        let rx = report::snapshot(&stats).counters.rx_packets;
        if rx > last_count {
            first_rx.get_or_insert(tick);
            last_rx = Some(Instant::now());
            last_count = rx;
        }
    })?;
    let leaked: Vec<u32> = worker.ports_mut().iter().map(|p| p.frames_held()).collect();
    let input = handle.stats[0].read();
    let total = report::snapshot(&handle.stats).counters;
    let output = handle.stats.last().map(|s| s.read()).unwrap_or_default();
    let active = match (first_rx, last_rx) {
        (Some(a), Some(b)) if b > a => b.duration_since(a).as_secs_f64(),
        _ => started.elapsed().as_secs_f64(),
    };
    let (median_rx, median_tx) = log.medians();
    let (packets, bytes, median) = match args.mode {
        Mode::Drop => (input.rx_packets, input.rx_bytes, median_rx),
        _ => (output.tx_packets, output.tx_bytes, median_tx),
    };
    let mut summary = json!({
        "tool": "fwd",
        "mode": args.mode.name(),
        "iface": args.iface,
        "out": args.out,
        "queue": args.port.queue,
        "bind_mode": mode_name,
        "packets": packets,
        "bytes": bytes,
        "seconds": active,
        "mpps": report::mpps(packets, active),
        "gbps": report::gbps(bytes, active),
        "median_mpps": median / 1e6,
        "median_rx_mpps": median_rx / 1e6,
        "median_tx_mpps": median_tx / 1e6,
    });
    // Every frame that reached the interface, and where it went: received
    // here (then forwarded or dropped by us, by reason), dropped by the
    // kernel's socket (its XDP_STATISTICS), or dropped by the interface for
    // another reason. veth counts a failed redirect into the socket among
    // its rx_dropped too, so on veth the interface's other drops are what
    // is left after the socket's.
    let iface_rx_dropped =
        rx_dropped_before.zip(iface_stat(&args.iface, "rx_dropped")).map(|(a, b)| b.saturating_sub(a));
    let kernel_lost = input.kernel.rx_lost();
    let on_veth = NicFilter::open(&args.iface).and_then(|nic| nic.driver()).is_ok_and(|d| d == "veth");
    let interface_other =
        iface_rx_dropped.map(|dropped| if on_veth { dropped.saturating_sub(kernel_lost) } else { dropped });
    let accounting = json!({
        "received": input.rx_packets,
        "dropped_by_kernel_socket": kernel_lost,
        "dropped_by_interface": interface_other,
        "arrived": input.rx_packets + kernel_lost + interface_other.unwrap_or(0),
        "not_forwarded": input.total_drops(),
    });
    if let Value::Object(map) = &mut summary {
        map.extend(counters_json(&total, total.rx_packets, leaked.iter().sum()));
        map.insert("accounting".into(), accounting);
    }
    report::print_summary(&summary, args.json);
    Ok(())
}
