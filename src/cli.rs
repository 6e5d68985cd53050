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

use crate::config::{Config, ConfigError, DataCenter, LogOutput, StoreConfig, origin};
use crate::secret::Secret;
use crate::token::TokenCache;
use crate::token::client::{OAuthClient, TokenError};
use crate::token::refresh::{Credentials, Settings, TokenManager, Unavailable};
use crate::token::store::redis::RedisStore;
use crate::token::store::{self, FileStore, MemoryStore, StoreError, StoredState, TokenStore};

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
    /// Revoke the stored refresh token at Zoho and delete it from the store.
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
    /// Also perform one real token refresh.
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
            Command::Serve => serve::run(&config, path, logging).await,
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

/// Opens the configured token store. The redis store connects on first use.
///
/// # Errors
/// [`ConfigError`] when the default path cannot be determined, or `token.redis_url` cannot
/// be used (the message never quotes it).
pub fn open_store(config: &Config) -> Result<Arc<dyn TokenStore>, RunError> {
    Ok(match &config.token.store {
        StoreConfig::File(Some(path)) => Arc::new(FileStore::new(path.clone())),
        StoreConfig::File(None) => match store::default_path() {
            Some(path) => Arc::new(FileStore::new(path)),
            None => {
                return Err(ConfigError::Invalid {
                    key: "token.path".into(),
                    origin: "defaults".into(),
                    message: "neither XDG_STATE_HOME nor HOME is set: give a path".into(),
                }
                .into());
            }
        },
        StoreConfig::Memory => Arc::new(MemoryStore::new()),
        StoreConfig::Redis { url, key_prefix } => match RedisStore::new(url, key_prefix) {
            Ok(store) => Arc::new(store),
            Err(e) => {
                return Err(ConfigError::Invalid {
                    key: "token.redis_url".into(),
                    origin: "the configuration".into(),
                    message: crate::telemetry::chain(&e),
                }
                .into());
            }
        },
    })
}

/// The OAuth client for the configured Zoho client.
///
/// # Errors
/// [`ConfigError`] when the client id or secret is missing; [`TokenError::Setup`] for a bad
/// CA file.
pub fn oauth_client(config: &Config) -> Result<OAuthClient, RunError> {
    let (client_id, secret) = config.require_client()?;
    Ok(OAuthClient::new(
        client_id,
        secret,
        config.upstream.ca_file.as_deref(),
        config.upstream.connect_timeout,
    )?)
}

/// Which refresh token to use: the configuration's, else the store's (filled by `login`).
///
/// # Errors
/// [`ConfigError`] naming `oauth.refresh_token` when there is none, or when the stored one
/// belongs to another client.
pub fn credentials(config: &Config, state: &StoredState) -> Result<Credentials, RunError> {
    let client_id = &config.oauth.client_id;
    if let Some(token) = &config.oauth.refresh_token {
        return Ok(Credentials::new(
            client_id,
            token.clone(),
            config.oauth.accounts_url.clone(),
        ));
    }
    let no_token = |message: String| ConfigError::Invalid {
        key: "oauth.refresh_token".into(),
        origin: "the defaults: it is not set, and the token store holds none".into(),
        message,
    };
    if matches!(config.token.store, StoreConfig::Redis { .. }) {
        return Err(no_token(
            "token.store = \"redis\" never holds refresh tokens: give every replica the refresh token with oauth.refresh_token_file (or oauth.refresh_token)".into(),
        )
        .into());
    }
    let Some(stored) = &state.refresh_token else {
        return Err(no_token(
            "no refresh token: run `zoho-meeting-proxy login` (or set oauth.refresh_token / oauth.refresh_token_file)".into(),
        )
        .into());
    };
    if &stored.client_id != client_id {
        return Err(no_token(format!(
            "the stored refresh token belongs to client {:?}, not {client_id:?}: run `zoho-meeting-proxy login` again",
            stored.client_id
        ))
        .into());
    }
    let accounts = url::Url::parse(&stored.accounts_server).map_err(|_| {
        RunError::Failed(format!(
            "the token store names a bad accounts server {:?}",
            stored.accounts_server
        ))
    })?;
    Ok(Credentials::new(client_id, stored.token.clone(), accounts))
}

/// Builds the token manager from configuration and store, reusing a stored token.
///
/// A shared (redis) store that cannot be reached does not stop the start: the replica
/// starts without the shared state, as during an outage (see [`TokenManager`]). One that
/// answers with an error (a wrong password, say) does.
///
/// # Errors
/// As [`oauth_client`], [`credentials`], and a store that cannot be read.
pub async fn token_manager(
    config: &Config,
    store: Arc<dyn TokenStore>,
) -> Result<Arc<TokenManager>, RunError> {
    let client = oauth_client(config)?;
    let state = match store.load().await {
        Ok(state) => state,
        Err(e) if store.is_shared() && e.is_unreachable() => {
            tracing::warn!(
                error = %crate::telemetry::chain(&e),
                store = %store.describe(),
                "shared token store unreachable at start; starting without it and retrying"
            );
            StoredState::default()
        }
        Err(e) => return Err(e.into()),
    };
    let creds = credentials(config, &state)?;
    let cache = Arc::new(TokenCache::new(config.upstream.auth_scheme));
    let settings = Settings {
        margin: config.token.refresh_margin,
        max_mints_per_10m: config.oauth.max_mints_per_10m,
        request_wait: config.upstream.timeout,
    };
    let manager = TokenManager::new(cache, client, store, creds, settings);
    manager.restore(&state);
    Ok(manager)
}

/// Names the data centre of an accounts server, or says it is a custom one.
pub fn describe_accounts(url: &url::Url) -> String {
    match DataCenter::from_accounts_url(origin(url)) {
        Some(dc) => format!("data centre {dc} ({})", origin(url)),
        None => format!("custom accounts server {}", origin(url)),
    }
}

/// `token`: prints one valid access token, reusing the stored one when it has more than the
/// refresh margin left.
async fn token(config: &Config) -> Result<(), RunError> {
    let store = open_store(config)?;
    let manager = token_manager(config, store).await?;
    let token = manager.fresh().await?;
    println!("{}", token.secret().expose());
    Ok(())
}

/// `revoke`: revokes the refresh token at Zoho, then removes it and its access token from the
/// store.
async fn revoke(config: &Config) -> Result<(), RunError> {
    let store = open_store(config)?;
    let client = oauth_client(config)?;
    let state = store.load().await?;
    let creds = credentials(config, &state)?;
    let from_config = config.oauth.refresh_token.is_some();
    match client
        .revoke(creds.accounts_url(), creds.refresh_token())
        .await
    {
        Ok(()) => eprintln!(
            "Revoked the refresh token at {}.",
            describe_accounts(creds.accounts_url())
        ),
        Err(TokenError::Refused { code }) => eprintln!(
            "Zoho does not know this refresh token ({code}): it was already revoked. Removing it from the store."
        ),
        Err(e) => return Err(e.into()),
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

/// `check`: prints the effective configuration, redacted; `--online` refreshes once.
async fn check(config: &Config, args: CheckArgs) -> Result<(), RunError> {
    config.require_client()?;
    let store = open_store(config)?;
    let state = store.load().await?;
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
    print!("{}", config.redacted());
    if args.online {
        let manager = token_manager(config, store).await?;
        let token = manager.mint_now().await?;
        let status = manager.status();
        println!(
            "# online: refreshed an access token at {}; it expires in {} s; {} of {} mints used in this 10-minute window",
            describe_accounts(creds.accounts_url()),
            token.remaining().as_secs(),
            status.mints_in_window,
            config.oauth.max_mints_per_10m,
        );
    }
    println!("# ok");
    Ok(())
}

/// Keeps a refresh token obtained by `login` in the store, with its first access token.
async fn save_login(
    store: &Arc<dyn TokenStore>,
    config: &Config,
    accounts: &url::Url,
    refresh_token: Secret<String>,
    grant: crate::token::client::Grant,
) -> Result<(), RunError> {
    use crate::token::refresh::unix_ms;
    use crate::token::store::{StoredAccessToken, StoredRefreshToken};
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
        data_center: None,
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
