//! Logging for the daemon: `tracing` events, filtered by `--log-level` or
//! the `VIPDRIFT_LOG` environment variable (which wins; `tracing`'s filter
//! syntax, like `info` or `vipdrift_control=debug`), written to stderr by a
//! writer thread so a slow or stuck stderr never stalls the control thread
//! (lines are dropped instead, and the writer counts them).

use clap::{Args, ValueEnum};
use std::io::IsTerminal;
use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

/// The environment variable that sets the log filter.
pub(crate) const LOG_ENV: &str = "VIPDRIFT_LOG";

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    /// One readable line per event: time, level, message, then the fields.
    Text,
    /// One JSON object per line, the event's fields at the top level
    /// (`event`, `group`, `from`, `to`, `reason`, … for transitions).
    Json,
}

#[derive(Args, Debug)]
pub(crate) struct LogArgs {
    /// Least severe level logged: error, warn, info, debug or trace (VIPDRIFT_LOG overrides).
    #[arg(long, default_value = "info")]
    log_level: String,
    /// Log line format.
    #[arg(long, value_enum, default_value = "text")]
    log_format: LogFormat,
}

/// Installs the subscriber; keep the guard until exit (dropping it flushes).
pub(crate) fn init(args: &LogArgs) -> Result<WorkerGuard, String> {
    let (filter, source) = match std::env::var(LOG_ENV) {
        Ok(spec) if !spec.trim().is_empty() => (spec, LOG_ENV),
        _ => (args.log_level.clone(), "--log-level"),
    };
    let filter = EnvFilter::try_new(&filter).map_err(|e| {
        format!("{source} {filter:?}: {e}; expected a level (error, warn, info, debug, trace) or a tracing filter")
    })?;
    let (writer, guard) = NonBlockingBuilder::default().lossy(true).finish(std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer).with_target(false);
    let installed = match args.log_format {
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(false).with_span_list(false).try_init(),
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).try_init(),
    };
    installed.map_err(|e| format!("cannot install the logger: {e}"))?;
    Ok(guard)
}
