//! The command line: parses, dispatches to the library, and prints.
//!
//! Exit codes: 0 ok; 1 runtime failure; 2 usage error (clap); 78 (`EX_CONFIG`) bad
//! configuration, with the key and its source named ([`Error::exit_code`]). Standard output
//! carries only command results (`token` prints the token and nothing else); messages and
//! logs go to standard error (`serve` and `sandbox` log to standard output instead with
//! `log.output = "stdout"`).

mod login;
mod sandbox;
mod status;

pub use self::sandbox::SandboxArgs;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::app::{self, check::USER_PATH};
pub use crate::app::{EXIT_CONFIG, Error};
use crate::config::{Config, LogOutput};
use crate::token::Revocation;

/// zoho-meeting-proxy: call the Zoho Meeting API from any HTTP client without OAuth.
#[derive(Debug, Parser)]
#[command(name = "zoho-meeting-proxy", version, about, long_about = None)]
pub struct Cli {
    /// Configuration file (else $ZOHO_PROXY_CONFIG, else ./proxy.toml when it exists).
    #[arg(short, long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the proxy (the default when no command is given).
    Serve,
    /// Run the proxy against the built-in Zoho emulator: no account needed.
    Sandbox(SandboxArgs),
    /// Block until the running proxy is ready (exit 0) or --timeout passes (exit 1).
    Wait(WaitArgs),
    /// Print the running proxy's token status (never the token itself).
    Status,
    /// Obtain and store a refresh token: browser flow with a loopback redirect, or
    /// `--code GRANT` to exchange a Self Client grant code.
    Login(LoginArgs),
    /// Print a valid access token on stdout (nothing else on stdout).
    Token,
    /// Revoke the stored refresh token at Zoho and delete it from the store (kept when Zoho
    /// could not confirm).
    Revoke,
    /// Validate the configuration and print it with secrets redacted.
    Check(CheckArgs),
}

/// `login` options.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Exchange this Self Client grant code instead of running the browser flow.
    #[arg(long, value_name = "GRANT")]
    pub code: Option<String>,
    /// Only print the authorization URL (one line on stdout); do not open a browser.
    #[arg(long)]
    pub no_browser: bool,
    /// How long to wait for the browser's redirect.
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    pub timeout: std::time::Duration,
    /// Keep the refresh token the store already holds valid at Zoho (by default it is
    /// revoked once the new one is stored).
    #[arg(long)]
    pub keep_old: bool,
}

/// `wait` options.
#[derive(Debug, Args)]
pub struct WaitArgs {
    /// How long to wait for readiness.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub timeout: std::time::Duration,
}

/// `check` options.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Also perform one real token refresh, then call the Meeting API
    /// (GET /api/v2/user.json) with the fresh token.
    #[arg(long)]
    pub online: bool,
}

/// Formats an error with its causes: `top: cause: cause`.
pub fn report(error: &(dyn std::error::Error + 'static)) -> String {
    crate::telemetry::chain(error)
}

/// Runs a parsed command line: loads the configuration, sets up logging, and dispatches.
///
/// # Errors
/// [`Error`], whose [`Error::exit_code`] `main` returns.
pub fn run(cli: Cli) -> Result<(), Error> {
    let path = Config::resolve_path(cli.config.as_deref());
    let config = Config::load(path.as_deref())?;
    let command = cli.command.unwrap_or(Command::Serve);
    // Only the long-running commands may log to standard output: for the others it carries
    // the result.
    let output = match command {
        Command::Serve | Command::Sandbox(_) => config.log.output,
        Command::Wait(_)
        | Command::Status
        | Command::Login(_)
        | Command::Token
        | Command::Revoke
        | Command::Check(_) => LogOutput::Stderr,
    };
    let logging = match crate::telemetry::init(&config.log, output) {
        Ok(logging) => Some(logging),
        Err(e) => {
            eprintln!("warning: logging not set up: {e}");
            None
        }
    };
    let threads = match config.server.worker_threads {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        n => n,
    };
    // One thread: a current-thread runtime runs the I/O driver, timers and every task on
    // the same thread, with no work-stealing or cross-thread wake-ups (nginx's model).
    let mut builder = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(threads);
        b
    };
    let runtime = builder.enable_all().build().map_err(|source| Error::Io {
        what: "cannot start the async runtime".into(),
        source,
    })?;
    let logging = logging.as_ref();
    runtime.block_on(async move {
        match command {
            Command::Serve => app::serve(&config, path, logging).await,
            Command::Sandbox(args) => sandbox::run(&config, args).await,
            Command::Wait(args) => status::wait(&config, args.timeout).await,
            Command::Status => status::status(&config).await,
            Command::Login(args) => login::run(&config, args).await,
            Command::Token => token(&config).await,
            Command::Revoke => revoke(&config).await,
            Command::Check(args) => check(&config, args).await,
        }
    })
}

/// `token`: prints one valid access token, reusing the stored one when it has more than the
/// refresh margin left.
async fn token(config: &Config) -> Result<(), Error> {
    let token = app::tokens(config).await?.manager.fresh().await?;
    println!("{}", token.secret().expose());
    Ok(())
}

/// `revoke`: revokes the refresh token at Zoho, then removes it and its access token from the
/// store — only when Zoho confirmed or does not know the token; otherwise exits 1 and keeps it.
async fn revoke(config: &Config) -> Result<(), Error> {
    let revoked = app::revoke(config).await?;
    match &revoked.revocation {
        Revocation::Revoked => eprintln!("Revoked the refresh token at {}.", revoked.accounts),
        Revocation::Unknown(code) => eprintln!(
            "Zoho does not know this refresh token ({code}): it was already revoked. Removing it from the store."
        ),
    }
    match &revoked.config_key {
        Some(key) => {
            eprintln!("The refresh token came from the configuration ({key}): remove it there.")
        }
        None => eprintln!("Removed it from the token store ({}).", revoked.store),
    }
    Ok(())
}

/// `check`: prints the effective configuration, redacted; `--online` refreshes once and
/// calls the Meeting API with the fresh token.
async fn check(config: &Config, args: CheckArgs) -> Result<(), Error> {
    let inspection = app::check::inspect(config).await?;
    let config = &inspection.config;
    let source = match config.file.as_deref() {
        Some(path) => format!("{} + environment", path.display()),
        None => "defaults + environment".to_owned(),
    };
    println!("# configuration from {source}");
    println!("# token store: {}", inspection.store);
    println!(
        "# refresh token: {}",
        if inspection.refresh_token_from_config {
            "from the configuration"
        } else {
            "from the token store"
        }
    );
    println!("# accounts server: {}", inspection.accounts);
    for route in &config.routes {
        println!(
            "# route {} -> {}{}",
            route.prefix,
            crate::config::origin(&config.route_url(route)),
            if route.strip_prefix {
                " (prefix stripped)"
            } else {
                " + the path"
            }
        );
    }
    println!(
        "# route everything else -> {} + the path",
        crate::config::origin(&config.upstream.url)
    );
    print!("{}", config.redacted());
    if args.online {
        let max_mints = config.oauth.max_mints_per_10m;
        let minted = inspection.mint().await?;
        println!(
            "# online: refreshed an access token at {}; it expires in {} s; {} of {max_mints} mints used in this 10-minute window",
            minted.accounts,
            minted.expires_in.as_secs(),
            minted.mints_in_window,
        );
        let user = minted.meeting_user().await?;
        println!(
            "# online: GET {}{USER_PATH} answered: user {}, zsoid {}",
            user.meeting, user.who, user.zsoid
        );
    }
    println!("# ok");
    Ok(())
}
