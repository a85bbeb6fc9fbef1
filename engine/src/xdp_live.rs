//! A line-rate packet source: runs a tiny XDP program (`bpf/xdp_live.c`, which
//! returns `XDP_TX`) with `BPF_PROG_RUN` in live-frames mode
//! (`BPF_F_TEST_XDP_LIVE_FRAMES`, Linux >= 5.18), so every repetition of the
//! run transmits one copy of the frame out of the chosen interface, straight
//! from the kernel, without a socket or a UMEM. This is the technique
//! xdp-trafficgen uses; the program is never attached to the interface.
//!
//! The kernel does not report what the interface dropped: the counts here are
//! frames run through the program (each one handed to the driver's
//! `ndo_xdp_xmit`). Frames the device cannot take are dropped without an
//! error: on veth the peer only takes XDP-transmitted frames when it has an
//! XDP program attached or GRO enabled, and `lo` takes none.

use crate::sys::bpf::{self, Embedded, LoadError, LoadedObject};
use crate::sys::kernel_release;
use crate::sys::nic::ifindex;
use std::ffi::{c_int, CStr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The compiled `bpf/xdp_live.c`.
static XDP_LIVE_OBJ: &Embedded<[u8]> = &Embedded(*include_bytes!(concat!(env!("OUT_DIR"), "/xdp_live.o")));

/// The program's function name in `bpf/xdp_live.c`.
const PROG_NAME: &CStr = c"xdp_live_tx";
/// The object name libbpf shows in its messages.
const OBJ_NAME: &CStr = c"vipdrift_xdp_live";

/// Frames per kernel batch when the config says 0.
const DEFAULT_BATCH: u32 = 64;
/// The kernel's limit on the batch size (`TEST_XDP_MAX_BATCH`).
const MAX_BATCH: u32 = 256;
/// The shortest frame the kernel runs: an Ethernet header.
const MIN_FRAME: usize = 14;
/// The longest frame accepted. Live frames must fit in one page after the
/// kernel's headroom and tailroom (about 3.5 KiB with 4 KiB pages); this
/// stays below that on every configuration we know of.
const MAX_FRAME: usize = 3072;
/// Frames per `BPF_PROG_RUN` call to start with, flat out.
const INITIAL_CHUNK: u32 = 1 << 16;
/// The most frames one call runs (a fraction of a second even at 10 Mpps).
const MAX_CHUNK: u32 = 1 << 22;
/// Flat out, calls shorter than this double the chunk and calls longer than
/// `SLOW_CALL` halve it. Each call with more than one frame has a fixed cost
/// of two RCU grace periods (the kernel puts the program into its XDP
/// dispatcher and takes it out again), some 20 ms on a small VM, so calls
/// must be long for that cost to stay small.
const FAST_CALL: Duration = Duration::from_millis(100);
const SLOW_CALL: Duration = Duration::from_millis(400);
/// With a rate, the first call runs this long's worth of frames; the chunk
/// doubles while a call takes more than half of the time its frames are
/// worth at the rate, so the fixed cost per call cannot hold the rate down.
const PACED_CALL: Duration = Duration::from_millis(10);
/// With a rate, no call runs more than this long's worth of frames.
const MAX_PACED_CALL: Duration = Duration::from_secs(1);
/// Longest single sleep while pacing, so the stop flag is seen promptly.
const MAX_SLEEP: Duration = Duration::from_millis(50);
/// The kernel's internal "operation not supported" (not in libc), which BPF
/// commands can return.
const ENOTSUPP: c_int = 524;
/// Calls in a row that a signal may interrupt before the run gives up.
const MAX_EINTR: u32 = 1000;

/// What to transmit, where, and for how long.
#[derive(Clone, Debug)]
pub struct XdpLiveConfig {
    /// The interface to transmit on (in the current network namespace).
    pub iface: String,
    /// The whole Ethernet frame every packet copies (14 to 3072 bytes, no FCS).
    pub frame: Vec<u8>,
    /// Stop after this many frames (None: until the duration or the stop flag).
    pub count: Option<u64>,
    /// Stop after this long (None: until the count or the stop flag).
    pub duration: Option<Duration>,
    /// Frames per second, averaged over the run (None: as fast as the kernel goes).
    pub rate: Option<u64>,
    /// Frames per kernel batch, 1 to 256 (0 means the default, 64).
    pub batch: u32,
}

impl Default for XdpLiveConfig {
    fn default() -> Self {
        XdpLiveConfig {
            iface: String::new(),
            frame: Vec::new(),
            count: None,
            duration: None,
            rate: None,
            batch: DEFAULT_BATCH,
        }
    }
}

/// What a run did.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct XdpLiveSummary {
    /// Frames run through the program (each one handed to the interface).
    pub packets: u64,
    /// Seconds from the start of the run to the end of its last call.
    pub seconds: f64,
}

/// Why the generator could not be opened or run.
#[derive(Debug, thiserror::Error)]
pub enum XdpLiveError {
    /// The interface does not exist in this network namespace.
    #[error("no interface named {0:?} in this network namespace")]
    NoSuchInterface(String),
    /// Loading or running a BPF program needs CAP_BPF and CAP_NET_ADMIN (or root).
    #[error("not permitted to load or run the XDP program: needs root, or CAP_BPF and CAP_NET_ADMIN")]
    NotPermitted,
    /// The kernel refused live-frames mode.
    #[error("the kernel cannot run XDP programs with live frames (needs Linux >= 5.18): {0}")]
    Unsupported(String),
    /// The configuration was invalid, or the program failed to load or run.
    #[error("{0}")]
    Load(String),
}

/// A packet source that runs `bpf/xdp_live.c` with `BPF_PROG_RUN` in
/// live-frames mode. It owns the loaded BPF object and closes it on drop.
pub struct XdpLiveGenerator {
    prog_fd: c_int,
    ifindex: u32,
    config: XdpLiveConfig,
    batch: u32,
    /// Holds the program (and so `prog_fd`) open; closed on drop.
    _obj: LoadedObject,
}

impl std::fmt::Debug for XdpLiveGenerator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XdpLiveGenerator")
            .field("iface", &self.config.iface)
            .field("ifindex", &self.ifindex)
            .field("prog_fd", &self.prog_fd)
            .field("frame_len", &self.config.frame.len())
            .field("batch", &self.batch)
            .finish_non_exhaustive()
    }
}

impl XdpLiveGenerator {
    /// Checks the configuration, resolves the interface and loads the program.
    /// Nothing is transmitted until [`XdpLiveGenerator::run`].
    pub fn open(config: XdpLiveConfig) -> Result<Self, XdpLiveError> {
        let ifindex = ifindex(&config.iface).ok_or_else(|| XdpLiveError::NoSuchInterface(config.iface.clone()))?;
        let len = config.frame.len();
        if !(MIN_FRAME..=MAX_FRAME).contains(&len) {
            return Err(XdpLiveError::Load(format!(
                "invalid configuration: the frame is {len} bytes; live frames must be {MIN_FRAME} to {MAX_FRAME} bytes"
            )));
        }
        let batch = if config.batch == 0 { DEFAULT_BATCH } else { config.batch };
        if batch > MAX_BATCH {
            return Err(XdpLiveError::Load(format!(
                "invalid configuration: batch {batch} is larger than the kernel's limit of {MAX_BATCH} frames"
            )));
        }
        if config.rate == Some(0) {
            return Err(XdpLiveError::Load("invalid configuration: a rate of 0 frames per second".to_string()));
        }

        let obj = LoadedObject::load(&XDP_LIVE_OBJ.0, OBJ_NAME, "the xdp_live program").map_err(|e| match e {
            LoadError::NotPermitted => XdpLiveError::NotPermitted,
            LoadError::Failed(why) => XdpLiveError::Load(why),
        })?;
        let prog_fd = obj.program_fd(PROG_NAME).map_err(XdpLiveError::Load)?;
        let generator = XdpLiveGenerator { prog_fd, ifindex, config, batch, _obj: obj };
        Ok(generator)
    }

    /// Runs until count, duration or `stop`; `progress` is updated after every
    /// BPF_PROG_RUN call with the frames run so far (another thread prints
    /// live rates from it).
    ///
    /// Every call with more than one frame costs the kernel two RCU grace
    /// periods (some 20 ms on a small VM), so calls are long: flat out, each
    /// runs 100 to 400 ms worth of frames, and `progress` and `stop` are seen
    /// that often. With a rate, calls start at 10 ms worth and grow until that
    /// fixed cost no longer holds the rate down, and the run sleeps between
    /// calls so the average over the run matches the rate (the frames of one
    /// call leave as a burst). With a duration, the last call is shortened to
    /// end near the deadline. A generator may run more than once.
    pub fn run(&mut self, progress: &AtomicU64, stop: &AtomicBool) -> Result<XdpLiveSummary, XdpLiveError> {
        if self.config.rate.is_none() {
            return self.run_flat_out(progress, stop);
        }
        let rate = self.config.rate;
        let count = self.config.count;
        let start = Instant::now();
        // A duration too long to add to the clock is as good as none.
        let deadline = self.config.duration.and_then(|d| start.checked_add(d));
        let paced_max = rate.map_or(MAX_CHUNK, |r| frames_in(r, MAX_PACED_CALL));
        let mut chunk: u32 = match rate {
            Some(r) => frames_in(r, PACED_CALL).min(paced_max),
            None => INITIAL_CHUNK,
        };
        // Frames per second of wall time in the last call, fixed cost included.
        let mut throughput: Option<f64> = None;
        let mut done: u64 = 0;
        let mut interrupted: u32 = 0;
        progress.store(0, Ordering::Relaxed);

        let ctx = libbpf_sys::xdp_md {
            data: 0,
            data_end: self.config.frame.len() as u32,
            data_meta: 0,
            ingress_ifindex: self.ifindex,
            rx_queue_index: 0,
            egress_ifindex: 0,
        };

        loop {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                break;
            }
            let mut want = u64::from(chunk);
            if let Some(count) = count {
                if done >= count {
                    break;
                }
                want = want.min(count - done);
            }
            if let (Some(deadline), Some(throughput)) = (deadline, throughput) {
                // No more than fit before the deadline at the last call's pace
                // (a float-to-int `as` saturates).
                let left = deadline.saturating_duration_since(now).as_secs_f64();
                want = want.min(((throughput * left).ceil() as u64).max(1));
            }
            if let Some(rate) = rate {
                // When `done` frames are due at the rate; sleep until then.
                let due = start.checked_add(Duration::from_secs_f64(done as f64 / rate as f64));
                if let Some(due) = due.filter(|&due| due > now) {
                    let mut nap = (due - now).min(MAX_SLEEP);
                    if let Some(deadline) = deadline {
                        nap = nap.min(deadline.saturating_duration_since(now));
                    }
                    std::thread::sleep(nap);
                    continue;
                }
            }

            let call_start = Instant::now();
            // `want` is at most `MAX_CHUNK`, far below `c_int::MAX`.
            let ran = bpf::prog_run_live(self.prog_fd, &self.config.frame, &ctx, want as c_int, self.batch);
            let took = call_start.elapsed();
            if let Err(errno) = ran {
                if errno == libc::EINTR {
                    // A signal cut the call short; how many frames it ran is
                    // unknown, so none are counted. The stop flag decides.
                    interrupted += 1;
                    if interrupted > MAX_EINTR {
                        return Err(XdpLiveError::Load(format!(
                            "BPF_PROG_RUN was interrupted by signals {MAX_EINTR} times in a row"
                        )));
                    }
                    continue;
                }
                return Err(self.run_error(errno));
            }
            interrupted = 0;
            done += want;
            progress.store(done, Ordering::Relaxed);

            if !took.is_zero() {
                throughput = Some(want as f64 / took.as_secs_f64());
            }
            let full = want == u64::from(chunk);
            match rate {
                None if full && took < FAST_CALL => chunk = chunk.saturating_mul(2).min(MAX_CHUNK),
                None if took > SLOW_CALL => chunk = (chunk / 2).max(1),
                None => {}
                Some(rate) => {
                    let worth = Duration::from_secs_f64(want as f64 / rate as f64);
                    if full && took > worth / 2 {
                        chunk = chunk.saturating_mul(2).min(paced_max);
                    }
                }
            }
        }
        Ok(XdpLiveSummary { packets: done, seconds: start.elapsed().as_secs_f64() })
    }

    /// Flat out, two threads take turns so that one of them is always inside
    /// a call: the kernel adds the program to its XDP dispatcher when the
    /// first concurrent run starts and removes it when the last one ends, so
    /// overlapping calls pay the two RCU grace periods once for the whole run
    /// instead of leaving a ~20 ms hole in the traffic after every call. The
    /// second thread inherits the caller's CPU affinity; on one core the two
    /// share it, which costs nothing since each call is CPU-bound.
    fn run_flat_out(&self, progress: &AtomicU64, stop: &AtomicBool) -> Result<XdpLiveSummary, XdpLiveError> {
        let start = Instant::now();
        let shot = LiveShot {
            prog_fd: self.prog_fd,
            ifindex: self.ifindex,
            frame: &self.config.frame,
            batch: self.batch,
            count: self.config.count,
            deadline: self.config.duration.and_then(|d| start.checked_add(d)),
        };
        let claimed = AtomicU64::new(0);
        let failed = AtomicBool::new(false);
        progress.store(0, Ordering::Relaxed);
        let turn = || {
            let result = shot.turns(progress, stop, &claimed, &failed);
            if result.is_err() {
                failed.store(true, Ordering::Relaxed);
            }
            result
        };
        let (first, second) = std::thread::scope(|scope| {
            let other = scope.spawn(turn);
            let mine = turn();
            (mine, other.join())
        });
        let second = second.map_err(|_| XdpLiveError::Load("a generator thread panicked".to_string()))?;
        for result in [first, second] {
            match result {
                Ok(()) => {}
                Err(TurnError::Errno(errno)) => return Err(self.run_error(errno)),
                Err(TurnError::Interrupted) => {
                    return Err(XdpLiveError::Load(format!(
                        "BPF_PROG_RUN was interrupted by signals {MAX_EINTR} times in a row"
                    )))
                }
            }
        }
        Ok(XdpLiveSummary { packets: progress.load(Ordering::Relaxed), seconds: start.elapsed().as_secs_f64() })
    }

    /// The error for a failed `BPF_PROG_RUN` call.
    fn run_error(&self, errno: c_int) -> XdpLiveError {
        let err = std::io::Error::from_raw_os_error(errno);
        match errno {
            libc::EPERM | libc::EACCES => XdpLiveError::NotPermitted,
            libc::ENODEV | libc::ENXIO => XdpLiveError::NoSuchInterface(self.config.iface.clone()),
            libc::EINVAL | libc::EOPNOTSUPP | ENOTSUPP => XdpLiveError::Unsupported(format!(
                "BPF_PROG_RUN with BPF_F_TEST_XDP_LIVE_FRAMES on {} failed with {err}; this kernel is {}",
                self.config.iface,
                kernel_release()
            )),
            _ => XdpLiveError::Load(format!("BPF_PROG_RUN on {} failed: {err}", self.config.iface)),
        }
    }
}

/// How many frames `rate` frames per second come to in `span` (1 at least,
/// `MAX_CHUNK` at most).
fn frames_in(rate: u64, span: Duration) -> u32 {
    let frames = u128::from(rate) * span.as_nanos() / 1_000_000_000;
    u32::try_from(frames).unwrap_or(MAX_CHUNK).clamp(1, MAX_CHUNK)
}

/// Why one thread of a flat-out run stopped early.
enum TurnError {
    /// A `BPF_PROG_RUN` call failed with this errno.
    Errno(c_int),
    /// Signals interrupted too many calls in a row.
    Interrupted,
}

/// What a flat-out thread needs to make calls: plain values and a borrowed
/// frame, so it can be shared by the two threads (the libbpf object is not).
#[derive(Clone, Copy)]
struct LiveShot<'a> {
    prog_fd: c_int,
    ifindex: u32,
    frame: &'a [u8],
    batch: u32,
    count: Option<u64>,
    deadline: Option<Instant>,
}

impl LiveShot<'_> {
    /// One thread's share of a flat-out run: calls sized to 100-400 ms,
    /// frames claimed from `claimed` so that a count is met exactly.
    fn turns(
        &self,
        progress: &AtomicU64,
        stop: &AtomicBool,
        claimed: &AtomicU64,
        failed: &AtomicBool,
    ) -> Result<(), TurnError> {
        let mut chunk = INITIAL_CHUNK;
        let mut throughput: Option<f64> = None;
        let mut interrupted = 0;
        loop {
            if stop.load(Ordering::Relaxed) || failed.load(Ordering::Relaxed) {
                return Ok(());
            }
            let now = Instant::now();
            if self.deadline.is_some_and(|d| now >= d) {
                return Ok(());
            }
            let mut want = u64::from(chunk);
            if let (Some(deadline), Some(throughput)) = (self.deadline, throughput) {
                // No more than fit before the deadline at this thread's pace
                // (a float-to-int `as` saturates).
                let left = deadline.saturating_duration_since(now).as_secs_f64();
                want = want.min(((throughput * left).ceil() as u64).max(1));
            }
            if let Some(count) = self.count {
                let taken = claimed.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| {
                    (c < count).then(|| c + want.min(count - c))
                });
                match taken {
                    Ok(before) => want = want.min(count - before),
                    Err(_) => return Ok(()),
                }
            }
            let call_start = Instant::now();
            match self.call(want) {
                Ok(()) => interrupted = 0,
                Err(libc::EINTR) => {
                    // How many frames an interrupted call ran is unknown: give
                    // the claim back, count none, and let the stop flag decide.
                    if self.count.is_some() {
                        claimed.fetch_sub(want, Ordering::Relaxed);
                    }
                    interrupted += 1;
                    if interrupted > MAX_EINTR {
                        return Err(TurnError::Interrupted);
                    }
                    continue;
                }
                Err(errno) => return Err(TurnError::Errno(errno)),
            }
            let took = call_start.elapsed();
            progress.fetch_add(want, Ordering::Relaxed);
            if !took.is_zero() {
                throughput = Some(want as f64 / took.as_secs_f64());
            }
            if want == u64::from(chunk) && took < FAST_CALL {
                chunk = chunk.saturating_mul(2).min(MAX_CHUNK);
            } else if took > SLOW_CALL {
                chunk = (chunk / 2).max(1);
            }
        }
    }

    /// One `BPF_PROG_RUN` of `frames` live frames (at most `MAX_CHUNK`);
    /// the errno on failure.
    fn call(&self, frames: u64) -> Result<(), c_int> {
        let ctx = libbpf_sys::xdp_md {
            data: 0,
            data_end: self.frame.len() as u32,
            data_meta: 0,
            ingress_ifindex: self.ifindex,
            rx_queue_index: 0,
            egress_ifindex: 0,
        };
        // At most `MAX_CHUNK`, far below `c_int::MAX`.
        bpf::prog_run_live(self.prog_fd, self.frame, &ctx, frames.min(u64::from(MAX_CHUNK)) as c_int, self.batch)
    }
}
