//! Notify hooks (keepalived's notify_master / notify_backup / notify_fault
//! in one program): started and reaped on their own thread, because starting
//! a process can take milliseconds and the control thread must never wait
//! on one in the middle of a takeover.

use crate::event::{DaemonEvent, TransitionEvent};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::Duration;

/// Hooks that may wait to be started; beyond that they are dropped and reported.
const QUEUE: usize = 256;

struct Job {
    program: PathBuf,
    event: TransitionEvent,
}

/// The hook runner's handle, owned by the control thread.
pub(crate) struct Notifier {
    jobs: Option<Sender<Job>>,
    failures: Receiver<DaemonEvent>,
    failures_tx: Sender<DaemonEvent>,
    thread: Option<JoinHandle<()>>,
}

impl Notifier {
    pub(crate) fn start() -> std::io::Result<Notifier> {
        let (jobs, queue) = crossbeam_channel::bounded::<Job>(QUEUE);
        let (failures_tx, failures) = crossbeam_channel::unbounded();
        let report = failures_tx.clone();
        let thread = std::thread::Builder::new().name("vd-notify".into()).spawn(move || run(queue, report))?;
        Ok(Notifier { jobs: Some(jobs), failures, failures_tx, thread: Some(thread) })
    }

    /// Queues `program GROUP OLD NEW` for `event`; never blocks.
    pub(crate) fn submit(&self, program: PathBuf, event: TransitionEvent) {
        let Some(jobs) = &self.jobs else { return };
        if let Err(e) = jobs.try_send(Job { program, event }) {
            let job = e.into_inner();
            let _ = self.failures_tx.send(DaemonEvent::NotifyFailed {
                group: job.event.group,
                program: job.program,
                error: "too many notify hooks waiting to start; dropped".into(),
            });
        }
    }

    /// Hooks that could not be started, since the last call.
    pub(crate) fn failures(&self) -> impl Iterator<Item = DaemonEvent> + '_ {
        self.failures.try_iter()
    }

    /// Starts what is queued, then stops the runner (hooks still running are left to finish).
    pub(crate) fn finish(&mut self) {
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        self.finish();
    }
}

fn run(queue: Receiver<Job>, failures: Sender<DaemonEvent>) {
    let mut children: Vec<Child> = Vec::new();
    loop {
        match queue.recv_timeout(Duration::from_millis(200)) {
            Ok(job) => match spawn(&job) {
                Ok(child) => children.push(child),
                Err(e) => {
                    let _ = failures.send(DaemonEvent::NotifyFailed {
                        group: job.event.group,
                        program: job.program,
                        error: e.to_string(),
                    });
                }
            },
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        children.retain_mut(|child| matches!(child.try_wait(), Ok(None)));
    }
    children.retain_mut(|child| matches!(child.try_wait(), Ok(None)));
}

fn spawn(job: &Job) -> std::io::Result<Child> {
    let event = &job.event;
    Command::new(&job.program)
        .args([event.group.as_str(), event.from.name(), event.to.name()])
        .env("VIPDRIFT_GROUP", &event.group)
        .env("VIPDRIFT_VRID", event.vrid.to_string())
        .env("VIPDRIFT_FAMILY", event.family.name())
        .env("VIPDRIFT_FROM", event.from.name())
        .env("VIPDRIFT_TO", event.to.name())
        .env("VIPDRIFT_REASON", event.reason.name())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
}
