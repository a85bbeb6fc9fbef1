//! The daemon's workers: one per queue (a bond's worker owns the same queue
//! of each of its NICs), each a thread running the engine's worker loop
//! over AF_XDP ports with a [`Responder`], and the control thread's handle
//! on it: its command queue, its statistics, its frames for the control
//! thread.

use crate::config::Idle;
use crate::error::RuntimeError;
use crate::nic::iface_error;
use crate::responder::{Responder, ResponderCommand, ResponderStats, VipHandler};
use crossbeam_channel::Receiver;
use mio::Waker;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use vipdrift_engine::{
    AfXdpPort, BoundMode, ControlFrame, ControlSender, IdlePolicy, LeaseKeeper, Port, Rates, StatsSnapshot, Worker,
    WorkerCommand, WorkerConfig, WorkerHandle,
};

/// Frames a worker may queue for the control thread before it drops them.
pub(crate) const CONTROL_CHANNEL_DEPTH: usize = 1024;

/// Which worker a VIP handler is made for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerInfo {
    /// The interface (or, for a bond's worker, the bond).
    pub interface: String,
    /// The NIC queue it owns.
    pub queue: u32,
    /// The core it is pinned to, if any.
    pub core: Option<usize>,
}

/// A worker thread; stopped and joined when dropped.
pub(crate) struct RunningWorker {
    pub(crate) queue: u32,
    pub(crate) bound: BoundMode,
    pub(crate) handle: WorkerHandle<ResponderCommand>,
    pub(crate) answers: Arc<ResponderStats>,
    /// Returns the frames each port still held when the worker stopped.
    thread: Option<JoinHandle<Vec<u32>>>,
    last_sample: Vec<StatsSnapshot>,
    pub(crate) rates: Vec<Rates>,
}

impl RunningWorker {
    /// Waits for the worker (its stop flag already set); returns the frames
    /// each port still held, or `None` if it was joined before.
    pub(crate) fn join(&mut self) -> Option<Vec<u32>> {
        let thread = self.thread.take()?;
        let ports = self.handle.stats.len();
        Some(thread.join().unwrap_or_else(|_| vec![0; ports]))
    }

    pub(crate) fn command(&self, command: ResponderCommand) {
        // Group changes must not be lost: wait for room rather than drop them.
        let _ = self.handle.commands.send(WorkerCommand::Handler(command));
    }

    /// Queues a frame to leave through port `port`; false (and nothing
    /// sent) when the worker's queue is full.
    pub(crate) fn inject(&self, port: u8, bytes: &[u8]) -> bool {
        let Some(frame) = ControlFrame::new(port, bytes) else { return false };
        self.handle.commands.try_send(WorkerCommand::Inject(Box::new(frame))).is_ok()
    }

    pub(crate) fn sample_rates(&mut self) {
        for (i, stats) in self.handle.stats.iter().enumerate() {
            let sample = stats.snapshot();
            self.rates[i] = sample.rates_since(&self.last_sample[i]);
            self.last_sample[i] = sample;
        }
    }

    pub(crate) fn request_stop(&self) {
        self.handle.stop.store(true, Ordering::Relaxed);
    }
}

impl Drop for RunningWorker {
    fn drop(&mut self) {
        self.request_stop();
        self.join();
    }
}

fn idle_policy(idle: Idle) -> IdlePolicy {
    match idle {
        Idle::Spin => IdlePolicy::Spin,
        Idle::Yield => IdlePolicy::SpinThenYield { spins: 1000 },
        Idle::Sleep => IdlePolicy::SpinThenSleep { spins: 1000, sleep: Duration::from_micros(50) },
    }
}

/// How to start one worker.
pub(crate) struct WorkerPlan {
    pub(crate) info: WorkerInfo,
    pub(crate) idle: Idle,
    pub(crate) thread_name: String,
    /// The queue's lease on kernel delivery, renewed by the worker.
    pub(crate) lease: Option<LeaseKeeper>,
}

/// Starts a worker over `ports` (one queue each) running `responder`; its
/// frames for the control thread arrive on the returned receiver, and it
/// rings `waker` when it sends some.
pub(crate) fn start_worker<V: VipHandler>(
    ports: Vec<AfXdpPort>,
    responder: Responder<V>,
    plan: WorkerPlan,
    waker: &Arc<Waker>,
) -> Result<(RunningWorker, Receiver<ControlFrame>), RuntimeError> {
    let bound = ports.first().map(|p| p.bound_mode()).unwrap_or(BoundMode::Copy);
    let (tx, rx) = crossbeam_channel::bounded(CONTROL_CHANNEL_DEPTH);
    let waker = waker.clone();
    let notify: Arc<dyn Fn() + Send + Sync> = Arc::new(move || {
        let _ = waker.wake();
    });
    let answers = responder.stats();
    let worker_config = WorkerConfig { idle: idle_policy(plan.idle), ..WorkerConfig::default() };
    let (mut worker, handle) = Worker::new(ports, responder, worker_config, Some(ControlSender::new(tx, Some(notify))));
    if let Some(lease) = plan.lease {
        worker = worker.with_lease(lease);
    }
    let WorkerInfo { interface, queue, core } = plan.info;
    let thread = std::thread::Builder::new()
        .name(plan.thread_name)
        .spawn(move || {
            if let Some(core) = core {
                core_affinity::set_for_current(core_affinity::CoreId { id: core });
            }
            worker.run();
            worker.ports_mut().iter().map(|p| p.frames_held()).collect()
        })
        .map_err(|e| iface_error(&interface, format!("cannot start the worker for queue {queue}: {e}")))?;
    let last_sample = handle.stats.iter().map(|s| s.snapshot()).collect();
    let rates = vec![Rates::default(); handle.stats.len()];
    Ok((RunningWorker { queue, bound, handle, answers, thread: Some(thread), last_sample, rates }, rx))
}
