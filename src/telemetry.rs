//! Logging setup: one `tracing` subscriber, human-readable or JSON, always on standard error.
//!
//! Standard output belongs to command results (`token` prints only the token there, `login
//! --no-browser` only the URL), so logs never go to it. Lines are handed to a writer thread
//! (tracing-appender's non-blocking writer), so a request never waits on the stderr lock;
//! when its buffer is full the writer applies back-pressure rather than dropping lines.
//! Called once, from the command line's entry.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

use crate::config::{LogConfig, LogFormat};

/// Keeps the log writer thread alive; dropping it flushes what is buffered.
pub type Guard = tracing_appender::non_blocking::WorkerGuard;

/// Installs the global subscriber. `RUST_LOG`, when set, overrides `log.level`. Keep the
/// returned guard until the process ends.
///
/// # Errors
/// When a subscriber is already installed or the filter does not parse.
pub fn init(config: &LogConfig) -> Result<Guard, Box<dyn std::error::Error + Send + Sync>> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.is_empty() => EnvFilter::try_new(directives)?,
        _ => EnvFilter::try_new(&config.level)?,
    };
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .thread_name("log-writer")
        .finish(std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        .with_span_events(FmtSpan::NONE);
    match config.format {
        LogFormat::Pretty => builder.with_target(false).try_init()?,
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init()?,
    }
    Ok(guard)
}

/// Formats an error with its causes, `top: cause: cause`, skipping a cause whose text the
/// previous message already contains.
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}

/// Replaces the default panic message, which would print the panic's payload — text that
/// could, through some future bug, include request data or a secret — with the location
/// only. The process (or the task) still fails as it would.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let location = info.location().map_or_else(
            || "an unknown place".to_owned(),
            |l| format!("{}:{}", l.file(), l.line()),
        );
        eprintln!(
            "internal error: zoho-meeting-proxy panicked at {location} (message withheld: it could \
             contain request data); please report this"
        );
    }));
}
