//! Logging setup: one `tracing` subscriber, human-readable or JSON, on standard error (or
//! standard output for `serve` in a container, with `log.output = "stdout"`).
//!
//! Standard output belongs to command results (`token` prints only the token there, `login
//! --no-browser` only the URL), so only the long-running commands may log to it. Lines are
//! handed to a writer thread (tracing-appender's non-blocking writer), so a request never
//! waits on the output lock; when its buffer is full the writer applies back-pressure rather
//! than dropping lines. The level filter sits in a `reload` layer, so SIGHUP can change
//! `log.level` without a restart ([`Logging::set_level`]). Called once, from the command
//! line's entry.

use std::io::IsTerminal;

use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _, Registry, reload};

use crate::config::{LogConfig, LogFormat, LogOutput};

/// The span of one client connection (at `debug`), the parent of its requests' spans.
pub const CONNECTION_SPAN: &str = "conn";
/// The connection span's field: the client's address and port (TCP connections only).
pub const CLIENT_ADDR: &str = "client.addr";
/// The connection span's field: `http1` or `h2`, recorded at the connection's first request.
pub const HTTP_PROTOCOL: &str = "http.protocol";

/// Keeps the log writer thread alive; dropping it flushes what is buffered.
pub type Guard = tracing_appender::non_blocking::WorkerGuard;

/// The installed subscriber: the writer thread's guard and the handle that changes the
/// level filter. Keep it until the process ends.
pub struct Logging {
    _guard: Guard,
    filter: reload::Handle<EnvFilter, Registry>,
    /// `RUST_LOG` was set at start: it wins over `log.level`, on reload too.
    from_env: bool,
}

/// What [`Logging::set_level`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LevelChange {
    /// The new filter is in force.
    Applied,
    /// `RUST_LOG` overrides `log.level`; nothing changed.
    OverriddenByEnv,
}

// === impl Logging ===

impl Logging {
    /// Replaces the level filter with `level` (an `EnvFilter` directive), unless `RUST_LOG`
    /// was set at start.
    ///
    /// # Errors
    /// When the directive does not parse (validation prevents it) or the subscriber is gone.
    pub fn set_level(
        &self,
        level: &str,
    ) -> Result<LevelChange, Box<dyn std::error::Error + Send + Sync>> {
        if self.from_env {
            return Ok(LevelChange::OverriddenByEnv);
        }
        let filter = EnvFilter::try_new(level)?;
        self.filter.reload(filter)?;
        Ok(LevelChange::Applied)
    }
}

impl std::fmt::Debug for Logging {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Logging")
            .field("from_env", &self.from_env)
            .finish_non_exhaustive()
    }
}

/// Installs the global subscriber, writing to `output`. `RUST_LOG`, when set, overrides
/// `log.level`. Keep the returned [`Logging`] until the process ends.
///
/// # Errors
/// When a subscriber is already installed or the filter does not parse.
pub fn init(
    config: &LogConfig,
    output: LogOutput,
) -> Result<Logging, Box<dyn std::error::Error + Send + Sync>> {
    let (filter, from_env) = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.is_empty() => (EnvFilter::try_new(directives)?, true),
        _ => (EnvFilter::try_new(&config.level)?, false),
    };
    let (filter, handle) = reload::Layer::new(filter);
    let builder = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .thread_name("log-writer");
    let (writer, guard, terminal) = match output {
        LogOutput::Stderr => {
            let (w, g) = builder.finish(std::io::stderr());
            (w, g, std::io::stderr().is_terminal())
        }
        LogOutput::Stdout => {
            let (w, g) = builder.finish(std::io::stdout());
            (w, g, std::io::stdout().is_terminal())
        }
    };
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(terminal && std::env::var_os("NO_COLOR").is_none())
        .with_span_events(FmtSpan::NONE);
    let fmt = match config.format {
        LogFormat::Pretty => fmt.with_target(false).boxed(),
        LogFormat::Json => fmt
            .json()
            .flatten_event(true)
            // The request span's fields (request.id, …) on every line of a request.
            .with_current_span(true)
            .with_span_list(false)
            .boxed(),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .try_init()?;
    Ok(Logging {
        _guard: guard,
        filter: handle,
        from_env,
    })
}

/// Milliseconds for a log field, rounded to hundredths (`0.16`, not `0.15693900000000002`).
pub fn millis(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 100_000.0).round() / 100.0
}

/// Seconds for a log field, rounded to hundredths (`0.55`, not `0.5523998737335205`).
pub fn seconds(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 100.0).round() / 100.0
}

/// `error` and its sources, outermost first.
pub fn error_chain<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(error), |e| e.source())
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn log_figures_are_rounded_to_hundredths() {
        assert_eq!(super::millis(Duration::from_nanos(156_939)), 0.16);
        assert_eq!(super::seconds(Duration::from_secs_f64(0.552_399_873)), 0.55);
        assert_eq!(super::seconds(Duration::from_secs(600)), 600.0);
    }
}
