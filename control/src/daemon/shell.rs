//! The control thread: one mio poll over the workers' waker, the admin and
//! metrics listeners and the handle's commands, driving the running node.

use super::operations::Operations;
use super::running::RunningNode;
use super::{report, Command, RunReport, RuntimeError};
use crate::admin::{self, Applied, Reply, Request};
use crate::config::Config;
use crate::event::DaemonEvent;
use crate::listeners::{Incoming, Listeners};
use crate::responder::{ResponderCommand, VipHandler};
use crate::workers::WorkerInfo;
use crossbeam_channel::{Receiver, Sender, TrySendError};
use mio::{Events, Poll, Token, Waker};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use vipdrift_engine::BoundMode;
use vipdrift_wire::Time;

const WAKER: Token = Token(0);
/// Longest the control thread sleeps, so a stop request is seen promptly.
const MAX_SLEEP: Duration = Duration::from_millis(10);
/// Time given to the workers to put the parting adverts on the wire.
const DRAIN_ON_STOP: Duration = Duration::from_millis(30);
/// How often queue rates are sampled (and idle admin connections expired).
const RATE_WINDOW: Duration = Duration::from_secs(1);

/// The answer to an admin request, from the socket or the handle.
pub(crate) enum Answer {
    Status(Box<admin::Status>),
    Stats(Box<admin::Stats>),
    Applied(Result<Applied, String>),
}

impl Answer {
    fn into_reply(self) -> Reply {
        match self {
            Answer::Status(status) => Reply::success(&*status),
            Answer::Stats(stats) => Reply::success(&*stats),
            Answer::Applied(Ok(applied)) => Reply::success(&applied),
            Answer::Applied(Err(error)) => Reply::failure(error),
        }
    }
}

/// The control thread's state. Fields drop in order: the node (workers,
/// NICs) before the listeners remove the admin socket.
pub(super) struct Shell {
    running: RunningNode,
    ops: Operations,
    listeners: Listeners,
    poll: Poll,
    waker: Arc<Waker>,
    commands: Receiver<Command>,
    subscribers: Vec<Sender<DaemonEvent>>,
    next_sample: Time,
    stopping: bool,
}

impl Shell {
    /// Opens the listeners, then the node (see [`RunningNode::open`]).
    pub(super) fn open<V: VipHandler>(
        config: &Config,
        config_path: Option<PathBuf>,
        admin_socket: Option<&Path>,
        make_handler: &mut dyn FnMut(&WorkerInfo) -> V,
        leave_echo: bool,
        has_handler: bool,
        commands: Receiver<Command>,
    ) -> Result<Shell, RuntimeError> {
        let poll = Poll::new().map_err(|e| RuntimeError::Io(format!("cannot create the poller: {e}")))?;
        let waker = Arc::new(
            Waker::new(poll.registry(), WAKER)
                .map_err(|e| RuntimeError::Io(format!("cannot create the waker: {e}")))?,
        );
        let listeners =
            Listeners::open(poll.registry(), admin_socket, config.metrics).map_err(RuntimeError::Endpoint)?;
        let running = RunningNode::open(config, make_handler, leave_echo, &waker)?;
        let ops = Operations {
            config: config.clone(),
            config_path,
            has_handler,
            reloads: 0,
            reload_failures: 0,
            last_reload_error: None,
            events_dropped: 0,
        };
        Ok(Shell {
            running,
            ops,
            listeners,
            poll,
            waker,
            commands,
            subscribers: Vec::new(),
            next_sample: Time::ZERO,
            stopping: false,
        })
    }

    pub(super) fn waker(&self) -> Arc<Waker> {
        self.waker.clone()
    }

    pub(super) fn admin_socket(&self) -> Option<PathBuf> {
        self.listeners.admin_path().map(Path::to_owned)
    }

    pub(super) fn metrics_address(&self) -> Option<SocketAddr> {
        self.listeners.metrics_address()
    }

    pub(super) fn bound_modes(&self) -> Vec<(String, u32, BoundMode)> {
        let interfaces = self.running.interfaces.iter();
        interfaces.flat_map(|i| i.workers.iter().map(|w| (i.config.name.clone(), w.queue, w.bound))).collect()
    }

    /// Runs the control loop until asked to stop, then stops gracefully
    /// (see [`super::Daemon::stop`]).
    pub(super) fn run(mut self) -> RunReport {
        let now = self.running.now();
        self.next_sample = now.after(RATE_WINDOW);
        self.running.start(now);
        self.publish();
        let mut events = Events::with_capacity(64);
        let mut incoming = Vec::new();
        while !self.stopping {
            let now = self.running.now();
            let deadline = self.running.next_deadline().min(self.next_sample);
            let mut sleep = deadline.since(now).min(MAX_SLEEP);
            if self.listeners.has_unread() {
                sleep = Duration::ZERO;
            }
            if let Err(e) = self.poll.poll(&mut events, Some(sleep)) {
                if e.kind() != std::io::ErrorKind::Interrupted {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            self.listeners.resume(self.poll.registry(), &mut incoming);
            for event in events.iter().filter(|e| e.token() != WAKER) {
                self.listeners.handle(self.poll.registry(), event, &mut incoming);
            }
            let now = self.running.now();
            self.running.poll(now);
            self.publish();
            for (token, request) in incoming.drain(..) {
                self.answer_client(token, request);
            }
            self.take_commands();
            if now >= self.next_sample {
                self.next_sample = now.after(RATE_WINDOW);
                report::sample_rates(&mut self.running);
                self.listeners.expire(self.poll.registry(), Instant::now());
            }
        }
        self.stop()
    }

    fn stop(mut self) -> RunReport {
        let final_states = report::group_states(&self.running);
        let mut events = Events::with_capacity(16);
        let poll = &mut self.poll;
        self.running.hand_over(|| {
            let _ = poll.poll(&mut events, Some(Duration::from_millis(1)));
        });
        self.running.clear_loopback();
        self.publish();
        std::thread::sleep(DRAIN_ON_STOP);
        let report = report::finish(&mut self.running, final_states);
        self.publish();
        report
    }

    /// Logs what happened and hands it to every subscriber, never waiting
    /// on one: a subscriber that is behind loses the event, one that went
    /// away is forgotten.
    fn publish(&mut self) {
        for event in self.running.outbox.drain(..) {
            event.log();
            self.subscribers.retain(|subscriber| match subscriber.try_send(event.clone()) {
                Ok(()) => true,
                Err(TrySendError::Full(_)) => {
                    self.ops.events_dropped += 1;
                    true
                }
                Err(TrySendError::Disconnected(_)) => false,
            });
        }
    }

    fn take_commands(&mut self) {
        while let Ok(command) = self.commands.try_recv() {
            match command {
                Command::Request(request, reply) => {
                    let answer = self.answer(request);
                    let _ = reply.send(answer);
                }
                Command::Subscribe(subscriber) => self.subscribers.push(subscriber),
                Command::Vip(command) => {
                    for iface in &self.running.interfaces {
                        iface.command_all(ResponderCommand::Vip(command.clone()));
                    }
                }
                Command::Stop => self.stopping = true,
            }
        }
    }

    fn answer_client(&mut self, token: Token, request: Incoming) {
        match request {
            Incoming::Scrape { head_only } => {
                let body = crate::metrics::render(&self.status(), &self.stats());
                self.listeners.reply_metrics(self.poll.registry(), token, &body, head_only);
            }
            Incoming::Admin(request) => {
                let reply = self.answer(request).into_reply();
                self.listeners.reply(self.poll.registry(), token, &reply);
            }
        }
    }

    /// Carries out one admin request, from the socket or the handle.
    fn answer(&mut self, request: Request) -> Answer {
        let now = self.running.now();
        let answer = match request {
            Request::Status => Answer::Status(Box::new(self.status())),
            Request::Stats => Answer::Stats(Box::new(self.stats())),
            Request::Maintenance { group, on } => {
                let result = self.running.node.set_maintenance(now, &group, on).map(|changes| Applied { changes });
                if let Ok(applied) = &result {
                    let changes = applied.changes.join("; ");
                    tracing::info!(event = "ctl", changes = %changes, "maintenance {}", if on { "on" } else { "off" });
                }
                Answer::Applied(result)
            }
            Request::Priority { group, priority } => {
                let result = self.running.node.set_priority(now, &group, priority).map(|changes| Applied { changes });
                if let Ok(applied) = &result {
                    tracing::info!(event = "ctl", changes = %applied.changes.join("; "), "priority set");
                }
                Answer::Applied(result)
            }
            Request::Reload => Answer::Applied(super::reload::reload(&mut self.running, &mut self.ops, now)),
        };
        self.running.carry_out();
        self.publish();
        answer
    }

    fn status(&self) -> admin::Status {
        report::status(&self.running, &self.ops)
    }

    fn stats(&self) -> admin::Stats {
        report::stats(&self.running, &self.ops, self.listeners.counters)
    }
}
