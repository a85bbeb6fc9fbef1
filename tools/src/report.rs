//! Live rates once a second and the end-of-run summary (human or JSON).

use serde_json::Value;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use vipdrift_engine::{Counters, Handler, Port, QueueStats, StatsSnapshot, Worker, WorkerHandle};

/// Stop flag set by SIGINT or SIGTERM.
pub(crate) fn stop_on_signals() -> Result<Arc<AtomicBool>, String> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, stop.clone()).map_err(|e| format!("cannot handle signal {signal}: {e}"))?;
    }
    Ok(stop)
}

/// Per-second samples of a set of queues.
pub(crate) struct RateLog {
    label: String,
    queues: Vec<Arc<QueueStats>>,
    last: StatsSnapshot,
    /// (rx pps, tx pps) per one-second sample.
    pub(crate) samples: Vec<(f64, f64)>,
    quiet: bool,
}

impl RateLog {
    pub(crate) fn new(label: String, queues: Vec<Arc<QueueStats>>, quiet: bool) -> RateLog {
        let last = snapshot(&queues);
        RateLog { label, queues, last, samples: Vec::new(), quiet }
    }

    /// Takes a sample and prints it to stderr (stdout stays for the summary).
    pub(crate) fn sample(&mut self) {
        let now = snapshot(&self.queues);
        let rates = now.rates_since(&self.last);
        self.last = now;
        self.samples.push((rates.rx_pps, rates.tx_pps));
        if !self.quiet {
            eprintln!(
                "{:<24} rx {:>8.3} Mpps {:>7.3} Gbps   tx {:>8.3} Mpps {:>7.3} Gbps   drops {:>10.0}/s   kernel rx lost {:>10}",
                self.label,
                rates.rx_pps / 1e6,
                rates.rx_bps / 1e9,
                rates.tx_pps / 1e6,
                rates.tx_bps / 1e9,
                rates.drop_pps,
                now.counters.kernel.rx_lost()
            );
        }
    }

    /// Sleeps in small steps until a second has passed since `since`, the
    /// stop flag is set or `done` says so; returns true if a full second passed.
    pub(crate) fn wait_second(since: Instant, stop: &AtomicBool, done: &dyn Fn() -> bool) -> bool {
        while since.elapsed() < Duration::from_secs(1) {
            if stop.load(Ordering::Relaxed) || done() {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        true
    }

    /// Median of the busy samples (rx, tx) in pps, leaving out the first and
    /// last busy second, which are partial.
    pub(crate) fn medians(&self) -> (f64, f64) {
        (busy_median(self.samples.iter().map(|s| s.0)), busy_median(self.samples.iter().map(|s| s.1)))
    }
}

fn busy_median(values: impl Iterator<Item = f64>) -> f64 {
    let busy: Vec<f64> = values.collect();
    let first = busy.iter().position(|v| *v > 0.0);
    let last = busy.iter().rposition(|v| *v > 0.0);
    let mut window: Vec<f64> = match (first, last) {
        (Some(a), Some(b)) if b >= a + 2 => busy[a + 1..b].to_vec(),
        (Some(a), Some(b)) => busy[a..=b].to_vec(),
        _ => return 0.0,
    };
    window.sort_by(|a, b| a.total_cmp(b));
    window[window.len() / 2]
}

pub(crate) fn snapshot(queues: &[Arc<QueueStats>]) -> StatsSnapshot {
    let mut counters = Counters::default();
    for q in queues {
        counters.accumulate(&q.read());
    }
    StatsSnapshot { at: Instant::now(), counters }
}

pub(crate) fn mpps(packets: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        packets as f64 / seconds / 1e6
    } else {
        0.0
    }
}

pub(crate) fn gbps(bytes: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        bytes as f64 * 8.0 / seconds / 1e9
    } else {
        0.0
    }
}

/// Prints the summary: one JSON object on stdout, or aligned lines.
pub(crate) fn print_summary(summary: &Value, as_json: bool) {
    if as_json {
        println!("{summary}");
        return;
    }
    if let Value::Object(map) = summary {
        for (key, value) in map {
            match value {
                Value::Object(inner) => {
                    let nonzero: Vec<String> =
                        inner.iter().filter(|(_, v)| v.as_u64() != Some(0)).map(|(k, v)| format!("{k}={v}")).collect();
                    let shown = if nonzero.is_empty() { "none".to_owned() } else { nonzero.join(" ") };
                    println!("{key:<18} {shown}");
                }
                Value::Number(n) if n.is_f64() => println!("{key:<18} {:.3}", n.as_f64().unwrap_or(0.0)),
                Value::String(s) => println!("{key:<18} {s}"),
                other => println!("{key:<18} {other}"),
            }
        }
    }
}

/// How a command runs its worker: where, for how long, and how it reports.
pub(crate) struct LiveRun<'a> {
    /// Core to pin the worker to.
    pub(crate) core: Option<usize>,
    /// Prefix of the live lines.
    pub(crate) label: String,
    /// No live lines (JSON output).
    pub(crate) quiet: bool,
    /// Set by SIGINT / SIGTERM.
    pub(crate) stop: &'a AtomicBool,
    /// Seconds to run, if bounded.
    pub(crate) duration: Option<f64>,
}

/// Runs `worker` on its own thread as `run` says, prints its rates once a
/// second (and whatever `each_second` adds) until a signal or the duration;
/// then stops it and returns it with the log.
pub(crate) fn run_with_live_log<P, H>(
    worker: Worker<P, H>,
    handle: &WorkerHandle<H::Command>,
    run: LiveRun<'_>,
    mut each_second: impl FnMut(Instant),
) -> Result<(Worker<P, H>, RateLog), String>
where
    P: Port + Send + 'static,
    H: Handler + Send + 'static,
{
    let thread =
        worker.spawn(run.core, "vipdrift-worker".into()).map_err(|e| format!("cannot start the worker thread: {e}"))?;
    let deadline = run.duration.map(|d| Instant::now() + Duration::from_secs_f64(d));
    let mut log = RateLog::new(run.label, handle.stats.clone(), run.quiet);
    loop {
        let tick = Instant::now();
        if !RateLog::wait_second(tick, run.stop, &|| deadline.is_some_and(|d| Instant::now() >= d)) {
            break;
        }
        log.sample();
        each_second(tick);
    }
    handle.stop.store(true, Ordering::Relaxed);
    let worker = thread.join().map_err(|_| "the worker thread panicked".to_string())?;
    Ok((worker, log))
}
