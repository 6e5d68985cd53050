//! The command line: what each command does, and which exit code each failure gets.
//!
//! Exit codes: 0 ok; 1 runtime failure; 2 usage error (clap); 78 (`EX_CONFIG`) bad
//! configuration, with the key and its source named. Standard output carries only command
//! results (`token` prints the token and nothing else); messages and logs go to standard
//! error (`serve` and `sandbox` log to standard output instead with `log.output = "stdout"`).

mod login;
mod sandbox;
mod serve;

pub use self::sandbox::SandboxArgs;

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};

use crate::app::{
    WiringError, apply_stored_login, credentials, describe_accounts, effective_config,
    oauth_client, open_store, token_manager,
};
use crate::config::{Config, ConfigError, DataCenter, LogOutput, origin};
use crate::secret::Secret;
use crate::token::{
    Credentials, StoreError, StoredState, TokenError, TokenStatusView, TokenStore, Unavailable,
};

/// `EX_CONFIG` from sysexits.h.
pub const EXIT_CONFIG: u8 = 78;

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

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Bad configuration (exit 78).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The token store cannot be used.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A token-endpoint failure.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The proxy could not start.
    #[error(transparent)]
    Startup(#[from] crate::app::StartupError),
    /// No token could be had.
    #[error("no access token: {0}")]
    Unavailable(#[from] Unavailable),
    /// Anything else, said in words.
    #[error("{0}")]
    Failed(String),
    /// An I/O failure while doing `what`.
    #[error("{what}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

// === impl RunError ===

impl RunError {
    /// The process exit code for this failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            RunError::Config(_) => EXIT_CONFIG,
            RunError::Store(_)
            | RunError::Token(_)
            | RunError::Startup(_)
            | RunError::Unavailable(_)
            | RunError::Failed(_)
            | RunError::Io { .. } => 1,
        }
    }
}

impl From<WiringError> for RunError {
    fn from(error: WiringError) -> Self {
        match error {
            WiringError::Config(e) => RunError::Config(e),
            WiringError::Store(e) => RunError::Store(e),
            WiringError::Token(e) => RunError::Token(e),
            WiringError::Failed(why) => RunError::Failed(why),
        }
    }
}

/// Formats an error with its causes: `top: cause: cause`.
pub fn report(error: &(dyn std::error::Error + 'static)) -> String {
    crate::telemetry::chain(error)
}

/// Runs a parsed command line: loads the configuration, sets up logging, and dispatches.
///
/// # Errors
/// [`RunError`], whose [`RunError::exit_code`] `main` returns.
pub fn run(cli: Cli) -> Result<(), RunError> {
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
    let runtime = builder
        .enable_all()
        .build()
        .map_err(|source| RunError::Io {
            what: "cannot start the async runtime".into(),
            source,
        })?;
    let logging = logging.as_ref();
    runtime.block_on(async move {
        match command {
            Command::Serve => serve::run(&effective(&config).await?, path, logging).await,
            Command::Sandbox(args) => sandbox::run(&config, args).await,
            Command::Wait(args) => serve::wait(&config, args.timeout).await,
            Command::Status => serve::status(&config).await,
            Command::Login(args) => login::run(&config, args).await,
            Command::Token => token(&config).await,
            Command::Revoke => revoke(&config).await,
            Command::Check(args) => check(&config, args).await,
        }
    })
}

/// The configuration shaped by the stored login (see [`effective_config`]).
async fn effective(config: &Config) -> Result<Config, RunError> {
    let store = open_store(config)?;
    Ok(effective_config(config, store.as_ref()).await?)
}

/// `token`: prints one valid access token, reusing the stored one when it has more than the
/// refresh margin left.
async fn token(config: &Config) -> Result<(), RunError> {
    let store = open_store(config)?;
    let config = &effective_config(config, store.as_ref()).await?;
    let manager = token_manager(config, store).await?;
    let token = manager.fresh().await?;
    println!("{}", token.secret().expose());
    Ok(())
}

/// `revoke`: revokes the refresh token at Zoho, then removes it and its access token from the
/// store — only when Zoho confirmed or does not know the token; otherwise exits 1 and keeps it.
async fn revoke(config: &Config) -> Result<(), RunError> {
    let store = open_store(config)?;
    let client = oauth_client(config)?;
    let state = store.load().await?;
    let config = &apply_stored_login(config, &state, &store.describe())?;
    let creds = credentials(config, &state)?;
    let from_config = config.oauth.refresh_token.is_some();
    let answer = client
        .revoke(creds.accounts_url(), creds.refresh_token())
        .await;
    match revocation(answer) {
        Ok(Revocation::Revoked) => eprintln!(
            "Revoked the refresh token at {}.",
            describe_accounts(creds.accounts_url())
        ),
        Ok(Revocation::Unknown(code)) => eprintln!(
            "Zoho does not know this refresh token ({code}): it was already revoked. Removing it from the store."
        ),
        Err(e) => {
            let kept = if from_config {
                "Nothing was changed".to_owned()
            } else {
                format!(
                    "The refresh token is still in the token store ({})",
                    store.describe()
                )
            };
            return Err(RunError::Failed(format!(
                "the revocation at {} did not go through: {}. {kept}: run revoke again later",
                describe_accounts(creds.accounts_url()),
                report(&e)
            )));
        }
    }
    let minted_by = creds.minted_by().to_owned();
    store
        .update(Box::new(move |s: &mut StoredState| {
            if !from_config {
                s.refresh_token = None;
            }
            if s.access_token
                .as_ref()
                .is_some_and(|a| a.minted_by == minted_by)
            {
                s.access_token = None;
            }
        }))
        .await?;
    if from_config {
        eprintln!(
            "The refresh token came from the configuration ({}): remove it there.",
            match &config.oauth.refresh_token_file {
                Some(path) => format!("oauth.refresh_token_file = {}", path.display()),
                None => "oauth.refresh_token".to_owned(),
            }
        );
    } else {
        eprintln!("Removed it from the token store ({}).", store.describe());
    }
    Ok(())
}

/// `check`: prints the effective configuration, redacted; `--online` refreshes once and
/// calls the Meeting API with the fresh token.
async fn check(config: &Config, args: CheckArgs) -> Result<(), RunError> {
    config.require_client()?;
    let store = open_store(config)?;
    let state = store.load().await?;
    let config = &apply_stored_login(config, &state, &store.describe())?;
    let creds = credentials(config, &state)?;
    let source = match config.file.as_deref() {
        Some(path) => format!("{} + environment", path.display()),
        None => "defaults + environment".to_owned(),
    };
    println!("# configuration from {source}");
    println!("# token store: {}", store.describe());
    println!(
        "# refresh token: {}",
        if config.oauth.refresh_token.is_some() {
            "from the configuration"
        } else {
            "from the token store"
        }
    );
    println!(
        "# accounts server: {}",
        describe_accounts(creds.accounts_url())
    );
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
        let manager = token_manager(config, store).await?;
        let token = manager.mint_now().await?;
        let status = manager.status();
        if let Some(mismatch) = status.data_center_mismatch {
            return Err(RunError::Failed(mismatch));
        }
        println!(
            "# online: refreshed an access token at {}; it expires in {} s; {} of {} mints used in this 10-minute window",
            describe_accounts(creds.accounts_url()),
            token.remaining().as_secs(),
            status.mints_in_window,
            config.oauth.max_mints_per_10m,
        );
        let user = meeting_user(config, token.header()).await?;
        println!(
            "# online: GET {}{USER_PATH} answered: user {}, zsoid {}",
            origin(&config.upstream.url),
            user.who,
            user.zsoid
        );
    }
    println!("# ok");
    Ok(())
}

/// The Meeting API call `check --online` makes: the current user, which every account has.
const USER_PATH: &str = "/api/v2/user.json";

/// The largest Meeting answer `check --online` reads.
const MAX_USER_BODY: usize = 64 * 1024;

/// What `GET /api/v2/user.json` says about the account, made printable.
struct MeetingUser {
    who: String,
    zsoid: String,
}

/// Calls `GET {upstream.url}/api/v2/user.json` with the fresh token, trusting
/// `upstream.ca_file` as the proxy does.
///
/// # Errors
/// [`RunError::Failed`] when the Meeting API cannot be reached, rejects the token (the data
/// centre or the scopes are then probably wrong: a fresh token cannot be stale), or answers
/// anything but 2xx.
async fn meeting_user(
    config: &Config,
    authorization: &http::HeaderValue,
) -> Result<MeetingUser, RunError> {
    let host = origin(&config.upstream.url);
    let client = crate::token::http_client(
        config.upstream.ca_file.as_deref(),
        config.upstream.connect_timeout,
    )?;
    let mut url = config.upstream.url.clone();
    let path = format!("{}{USER_PATH}", url.path().trim_end_matches('/'));
    url.set_path(&path);
    url.set_query(None);
    let unreachable = |e: reqwest::Error| {
        RunError::Failed(format!(
            "cannot reach the Meeting API at {host}: {}",
            report(&e.without_url())
        ))
    };
    let mut response = client
        .get(url)
        .header(http::header::AUTHORIZATION, authorization.clone())
        .timeout(config.upstream.timeout)
        .send()
        .await
        .map_err(unreachable)?;
    let status = response.status().as_u16();
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
        if body.len() + chunk.len() > MAX_USER_BODY {
            return Err(RunError::Failed(format!(
                "the Meeting API at {host} answered {USER_PATH} with more than {MAX_USER_BODY} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    if matches!(status, 400 | 401) && crate::token::rejection::is_token_rejection(&body) {
        return Err(RunError::Failed(format!(
            "the Meeting API at {host} rejected a freshly minted token (HTTP {status}): the data centre ({}) or the scopes are probably wrong; a token from one data centre's accounts server is refused by another's Meeting host (set oauth.data_center or upstream.url), and {USER_PATH} needs ZohoMeeting.manageOrg.READ",
            config.oauth.data_center
        )));
    }
    if !(200..300).contains(&status) {
        let scope = if contains(&body, b"OAUTH_SCOPE_MISMATCH") {
            " (OAUTH_SCOPE_MISMATCH: the token lacks a scope; this call needs ZohoMeeting.manageOrg.READ: add it to oauth.scopes and run login again)"
        } else {
            ""
        };
        return Err(RunError::Failed(format!(
            "the Meeting API at {host} answered HTTP {status} to GET {USER_PATH}{scope}"
        )));
    }
    let json: serde_json::Value = serde_json::from_slice(&body).map_err(|_| {
        RunError::Failed(format!(
            "the Meeting API at {host} answered {USER_PATH} with a body that is not JSON"
        ))
    })?;
    let user = &json["userDetails"];
    let text = |value: &serde_json::Value| match value {
        serde_json::Value::String(s) if !s.is_empty() => Some(printable(s)),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    let who = ["primaryEmail", "email", "emailId", "displayName", "name"]
        .iter()
        .find_map(|key| text(&user[*key]))
        .unwrap_or_else(|| "(unnamed)".to_owned());
    let Some(zsoid) = text(&user["zsoid"]) else {
        return Err(RunError::Failed(format!(
            "the Meeting API at {host} answered {USER_PATH} without userDetails.zsoid"
        )));
    };
    Ok(MeetingUser { who, zsoid })
}

/// Text from the network, safe to print: control characters dropped, at most 120 characters.
fn printable(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(120).collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// What Zoho said to a revocation, when it settled the token's fate.
enum Revocation {
    /// Zoho confirmed it (`{"status":"success"}`).
    Revoked,
    /// Zoho does not know the token (HTTP 400, `invalid_token`): revoked already, or never
    /// issued by this accounts server.
    Unknown(String),
}

/// Sorts a revocation answer: only a confirmation or an unknown token is final; anything
/// else (network, 5xx, throttling, another error code) leaves the token possibly live.
fn revocation(answer: Result<(), TokenError>) -> Result<Revocation, TokenError> {
    match answer {
        Ok(()) => Ok(Revocation::Revoked),
        Err(TokenError::Refused { code }) if code == "invalid_token" => {
            Ok(Revocation::Unknown(code))
        }
        Err(e) => Err(e),
    }
}

/// After `login` stored a new refresh token: revokes the one it replaced at the accounts
/// server that issued it, unless `keep_old`. A failure is a warning: the new token is
/// stored either way.
async fn retire_old_login(
    client: &crate::token::OAuthClient,
    old: Option<crate::token::StoredRefreshToken>,
    new: &Secret<String>,
    keep_old: bool,
) {
    let Some(old) = old.filter(|old| &old.token != new) else {
        return;
    };
    let Ok(accounts) = url::Url::parse(&old.accounts_server) else {
        eprintln!(
            "warning: the previous refresh token names a bad accounts server, so it was not revoked: revoke it in Zoho's console (Connected Apps)."
        );
        return;
    };
    let at = describe_accounts(&accounts);
    if keep_old {
        eprintln!(
            "Kept the previous refresh token (--keep-old): it stays valid at {at} until revoked there."
        );
        return;
    }
    match revocation(client.revoke(&accounts, &old.token).await) {
        Ok(Revocation::Revoked) => eprintln!("Revoked the previous refresh token at {at}."),
        Ok(Revocation::Unknown(code)) => eprintln!(
            "The previous refresh token was already unknown at {at} ({code}): nothing to revoke."
        ),
        Err(e) => eprintln!(
            "warning: could not revoke the previous refresh token at {at}: {}. The new one is stored; the old one may still be valid: revoke it in Zoho's console (Connected Apps).",
            report(&e)
        ),
    }
}

/// Keeps a refresh token obtained by `login` in the store, with its first access token and
/// the account's data centre.
async fn save_login(
    store: &Arc<dyn TokenStore>,
    config: &Config,
    accounts: &url::Url,
    data_center: DataCenter,
    refresh_token: Secret<String>,
    grant: crate::token::Grant,
) -> Result<(), RunError> {
    use crate::token::unix_ms;
    use crate::token::{StoredAccessToken, StoredRefreshToken};
    let client_id = config.oauth.client_id.clone();
    let creds = Credentials::new(&client_id, refresh_token.clone(), accounts.clone());
    let now = unix_ms();
    let scopes = match &grant.scope {
        Some(scope) => scope
            .split([' ', ','])
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        None => config.oauth.scopes.clone(),
    };
    let accounts_server = origin(accounts).to_owned();
    let access = StoredAccessToken {
        token: grant.access_token,
        expires_at: now + u64::try_from(grant.lifetime.as_millis()).unwrap_or(u64::MAX / 2),
        accounts_server: accounts_server.clone(),
        minted_by: creds.minted_by().to_owned(),
        lifetime: Some(grant.lifetime),
    };
    let refresh = StoredRefreshToken {
        token: refresh_token,
        accounts_server,
        client_id,
        data_center: Some(data_center.name().to_owned()),
        scopes,
        obtained_at: now,
    };
    store
        .update(Box::new(move |s: &mut StoredState| {
            s.refresh_token = Some(refresh);
            s.access_token = Some(access);
            // A new refresh token starts a new mint budget.
            s.mints.clear();
        }))
        .await?;
    Ok(())
}
