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
    /// Print the running proxy's token status (never the token itself): every account's,
    /// or one's with --account.
    Status(AccountArgs),
    /// Obtain and store a refresh token: browser flow with a loopback redirect, or
    /// `--code GRANT` to exchange a Self Client grant code.
    Login(LoginArgs),
    /// Print a valid access token on stdout (nothing else on stdout).
    Token(AccountArgs),
    /// Revoke the stored refresh token at Zoho and delete it from the store (kept when Zoho
    /// could not confirm).
    Revoke(AccountArgs),
    /// Validate the configuration and print it with secrets redacted.
    Check(CheckArgs),
}

/// The account a command is for.
#[derive(Debug, Args)]
pub struct AccountArgs {
    /// The account (an `[[accounts]]` name, or `default` for `[oauth]`) (default: default).
    #[arg(long, value_name = "NAME")]
    pub account: Option<String>,
}

/// `login` options.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Log in the account NAME of `[[accounts]]` (default: `[oauth]`'s, `default`); its
    /// refresh token and data centre go to its own store.
    #[arg(long, value_name = "NAME")]
    pub account: Option<String>,
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
    /// Wait for this account alone (`/readyz?account=NAME`) instead of every account.
    #[arg(long, value_name = "NAME")]
    pub account: Option<String>,
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
        | Command::Status(_)
        | Command::Login(_)
        | Command::Token(_)
        | Command::Revoke(_)
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
            Command::Wait(args) => {
                status::wait(&config, args.timeout, args.account.as_deref()).await
            }
            Command::Status(args) => status::status(&config, args.account.as_deref()).await,
            Command::Login(args) => {
                login::run(&account_view(&config, args.account.as_deref())?, args).await
            }
            Command::Token(args) => token(&account_view(&config, args.account.as_deref())?).await,
            Command::Revoke(args) => revoke(&account_view(&config, args.account.as_deref())?).await,
            Command::Check(args) => check(&config, args).await,
        }
    })
}

/// The configuration a command runs with for `--account NAME`: that account's view
/// ([`Config::require_account`]), or `config` itself (`default`) without the option.
///
/// # Errors
/// [`Error::Config`] (exit 78) for an account the configuration does not have, naming the
/// accounts it has.
fn account_view(config: &Config, account: Option<&str>) -> Result<Config, Error> {
    match account {
        Some(name) => Ok(config.require_account(name)?),
        None => Ok(config.clone()),
    }
}

/// ` of account NAME` for an account beside `default`, to end a sentence about it.
fn of_account(config: &Config) -> String {
    if config.oauth.is_default() {
        String::new()
    } else {
        format!(" of account {}", config.account())
    }
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
    let of = of_account(config);
    match &revoked.revocation {
        Revocation::Revoked => eprintln!("Revoked the refresh token{of} at {}.", revoked.accounts),
        Revocation::Unknown(code) => eprintln!(
            "Zoho does not know this refresh token{of} ({code}): it was already revoked. Removing it from the store."
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

/// `check`: prints the effective configuration, redacted, with every account's; `--online`
/// refreshes once and calls the Meeting API with the fresh token, for every account.
async fn check(config: &Config, args: CheckArgs) -> Result<(), Error> {
    let mut inspections = app::check::inspect_all(config).await?.into_iter();
    let Some(default) = inspections.next() else {
        return Err(Error::Failed("the configuration has no account".into()));
    };
    let others: Vec<_> = inspections.collect();
    let config = &app::check::shown_config(&default, &others);
    let source = match config.file.as_deref() {
        Some(path) => format!("{} + environment", path.display()),
        None => "defaults + environment".to_owned(),
    };
    println!("# configuration from {source}");
    println!("# token store: {}", default.store);
    println!("# refresh token: {}", refresh_token_source(&default));
    println!("# accounts server: {}", default.accounts);
    for other in &others {
        println!(
            "# account {}: token store {}; refresh token {}; accounts server {}; Meeting API {}",
            other.config.account(),
            other.store,
            refresh_token_source(other),
            other.accounts,
            crate::config::origin(&other.config.upstream.url)
        );
    }
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
        if others.is_empty() {
            // One account: as before there were several, its failure is the error.
            check_online(default, "").await?;
        } else {
            let total = others.len() + 1;
            let mut failed = Vec::new();
            for inspection in std::iter::once(default).chain(others) {
                let name = inspection.config.account().to_owned();
                if let Err(error) = check_online(inspection, &format!(" account {name}:")).await {
                    let why = report(&error);
                    println!("# online: account {name}: failed: {why}");
                    failed.push(format!("{name} ({why})"));
                }
            }
            if !failed.is_empty() {
                return Err(Error::Failed(format!(
                    "the online check failed for {} of {total} accounts: {}",
                    failed.len(),
                    failed.join("; ")
                )));
            }
        }
    }
    println!("# ok");
    Ok(())
}

/// Where an inspected account's refresh token comes from, for `check`.
fn refresh_token_source(inspection: &app::check::Inspection) -> &'static str {
    if inspection.refresh_token_from_config {
        "from the configuration"
    } else {
        "from the token store"
    }
}

/// `check --online` for one account: mints, then calls the Meeting API; prints each step's
/// result after `# online:` and `label`.
async fn check_online(inspection: app::check::Inspection, label: &str) -> Result<(), Error> {
    let max_mints = inspection.config.oauth.max_mints_per_10m;
    let minted = inspection.mint().await?;
    println!(
        "# online:{label} refreshed an access token at {}; it expires in {} s; {} of {max_mints} mints used in this 10-minute window",
        minted.accounts,
        minted.expires_in.as_secs(),
        minted.mints_in_window,
    );
    let user = minted.meeting_user().await?;
    println!(
        "# online:{label} GET {}{USER_PATH} answered: user {}, zsoid {}",
        user.meeting, user.who, user.zsoid
    );
    Ok(())
}
