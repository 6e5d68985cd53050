//! Configuration: figment layering, then validation into typed values.
//!
//! Sources, later ones winning:
//! 1. built-in defaults (the values in `proxy.toml.example`);
//! 2. the TOML file: `-c FILE`, else `$ZOHO_PROXY_CONFIG`, else `./proxy.toml` when it exists;
//! 3. environment variables `ZOHO_PROXY_<SECTION>__<KEY>`, e.g. `ZOHO_PROXY_OAUTH__CLIENT_SECRET`.
//!
//! Unknown keys are errors, so a typo fails at start-up instead of silently taking a default.
//! Every error names the key and the source it came from (the file, or the environment
//! variable), and `main` turns it into exit code 78 (`EX_CONFIG`). Secret values never appear
//! in an error, in `Debug` output, or in [`Config::redacted`].

pub mod keys;
mod raw;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Env, Format, Toml};
use figment::{Figment, Metadata, Source};
use url::Url;

use self::raw::RawConfig;
use crate::secret::Secret;

pub use zoho_data_centers::{ALL as DATA_CENTERS, DataCenter};

/// The environment variable naming the configuration file.
pub const CONFIG_ENV: &str = "ZOHO_PROXY_CONFIG";
/// The prefix of every configuration environment variable.
pub const ENV_PREFIX: &str = "ZOHO_PROXY_";
/// The file read from the working directory when no other is named.
pub const DEFAULT_FILE: &str = "proxy.toml";
/// The most access tokens Zoho lets one refresh token mint in 10 minutes: the bound on
/// `oauth.max_mints_per_10m` with Zoho's accounts servers.
pub const ZOHO_MAX_MINTS_PER_10M: u32 = 10;
/// The bound on `oauth.max_mints_per_10m` with a non-Zoho `oauth.accounts_url` (emulators).
pub const MAX_MINTS_PER_10M: u32 = 1000;

/// The name of the account `[oauth]` configures; `X-Zoho-Account` absent means it.
pub const DEFAULT_ACCOUNT: &str = "default";
/// The longest account name.
pub const MAX_ACCOUNT_NAME: usize = 32;

/// The URL schemes `token.redis_url` accepts: TCP, TLS, and a local Unix socket.
const REDIS_SCHEMES: &[&str] = &["redis://", "rediss://", "redis+unix://", "unix://"];

/// The validated configuration. Only this type travels past start-up.
#[derive(Clone, Debug)]
pub struct Config {
    /// `[server]`: the listeners and who may use them.
    pub server: ServerConfig,
    /// `[oauth]`: the Zoho client and where its tokens come from.
    pub oauth: OAuthConfig,
    /// `[upstream]`: the Zoho Meeting API.
    pub upstream: UpstreamConfig,
    /// `[token]`: the token store and refresh schedule.
    pub token: TokenConfig,
    /// `[access]`: which requests may pass.
    pub access: AccessConfig,
    /// `[limits]`: request size and concurrency limits.
    pub limits: LimitsConfig,
    /// `[log]`: log format and level.
    pub log: LogConfig,
    /// `[[routes]]`: path prefixes sent to other Zoho services, longest prefix first.
    pub routes: Vec<RouteConfig>,
    /// `[[accounts]]`: the Zoho accounts beside `default` (`[oauth]`), by name. Each
    /// account's [`OAuthConfig`] is complete: unset keys took `[oauth]`'s values (the client,
    /// the scopes, the mint budget) or the account's data centre's (the accounts server).
    /// [`Config::for_account`] is the configuration one account runs with.
    pub accounts: Vec<AccountConfig>,
    /// The file this configuration was read from, if any.
    pub file: Option<PathBuf>,
}

/// One `[[accounts]]` entry: a Zoho account beside `default`.
#[derive(Clone, Debug)]
pub struct AccountConfig {
    /// Its client, refresh token and data centre; `oauth.account` is its name.
    pub oauth: OAuthConfig,
    /// Keys (`client_keys` and `client_keys_file`) whose requests use this account, and no
    /// other, without `X-Zoho-Account`.
    pub client_keys: Vec<Secret<String>>,
    /// Where more of them were read from.
    pub client_keys_file: Option<PathBuf>,
}

/// One `[[routes]]` entry: requests whose path starts with `prefix` go to `upstream`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteConfig {
    /// The path prefix, e.g. `/crm/`; it matches whole segments (`/crm` matches `/crm` and
    /// `/crm/x`, not `/crmx`).
    pub prefix: String,
    /// Where matching requests go.
    pub upstream: RouteUpstream,
    /// Whether the prefix is removed: the rest of the path is appended to the upstream URL's
    /// path with one `/` between them **(default: false)**.
    pub strip_prefix: bool,
}

/// The upstream of a route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RouteUpstream {
    /// `meeting`: `upstream.url` (the Meeting API of the data centre, unless set).
    Meeting,
    /// `zohoapis`: the data centre's `www.zohoapis.*` API domain (CRM, Books, …).
    Zohoapis,
    /// `webinar`: the data centre's Zoho Webinar host (`https://webinar.zoho.*`), a product of
    /// its own beside Zoho Meeting, with the same OAuth tokens.
    Webinar,
    /// An `https://` URL on a Zoho domain (`http://` only for loopback), maybe with a path.
    Url(Url),
}

/// Where a listener binds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Listen {
    /// A TCP address.
    Tcp(SocketAddr),
    /// A Unix domain socket path (`unix:/path/to.sock`).
    Unix(PathBuf),
}

/// `[server]`
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// The proxy listener **(default: `127.0.0.1:8080`)**.
    pub listen: Listen,
    /// The admin listener; `None` when disabled with `""` **(default: `127.0.0.1:9090`)**.
    pub admin_listen: Option<SocketAddr>,
    /// Accepted `Host` header names, any port **(default: loopback names)**.
    pub allowed_hosts: Vec<String>,
    /// How long shutdown waits for in-flight requests **(default: `30s`)**.
    pub shutdown_grace: Duration,
    /// Runtime worker threads; 0 = one per CPU **(default: 0)**.
    pub worker_threads: usize,
    /// Browser origins allowed through **(default: none)**.
    pub allowed_origins: Vec<String>,
    /// A file of client keys, one per line **(default: none)**.
    pub client_keys_file: Option<PathBuf>,
    /// Inline client keys **(default: none)**.
    pub client_keys: Vec<Secret<String>>,
    /// Allow a non-loopback listener without client keys **(default: false)**.
    pub allow_remote_without_keys: bool,
}

/// `[oauth]`, or one `[[accounts]]` entry's OAuth keys.
#[derive(Clone, Debug)]
pub struct OAuthConfig {
    /// The account's name: [`DEFAULT_ACCOUNT`] for `[oauth]`.
    pub account: String,
    /// The data centre of the Zoho account **(default: `us`)**.
    pub data_center: DataCenter,
    /// Where `oauth.data_center` was set (`file proxy.toml`, `environment variable ...`, or
    /// `recorded by login in …` once the effective configuration took the stored one), or
    /// `None` when it is the default: a data centre stored by `login` overrides only the
    /// default, and a default nobody chose is checked against Zoho's answers.
    pub data_center_source: Option<String>,
    /// The OAuth client id; empty when not configured.
    pub client_id: String,
    /// The client secret, from `client_secret` or `client_secret_file`.
    pub client_secret: Option<Secret<String>>,
    /// Where the client secret was read from, when it came from a file.
    pub client_secret_file: Option<PathBuf>,
    /// A refresh token from the configuration, from `refresh_token` or `refresh_token_file`;
    /// `None` means the token store's (filled by `login`).
    pub refresh_token: Option<Secret<String>>,
    /// Where the refresh token was read from, when it came from a file.
    pub refresh_token_file: Option<PathBuf>,
    /// Scopes requested by `login`.
    pub scopes: Vec<String>,
    /// The loopback redirect URI that `login` listens on.
    pub redirect_uri: Url,
    /// The accounts server: `accounts_url`, else the data centre's.
    pub accounts_url: Url,
    /// Access-token mints allowed per refresh token in any 10 minutes: 1 to
    /// [`ZOHO_MAX_MINTS_PER_10M`] with Zoho's accounts servers, up to [`MAX_MINTS_PER_10M`]
    /// with another accounts server **(default: 10)**.
    pub max_mints_per_10m: u32,
}

/// How the access token is presented upstream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthScheme {
    /// `Authorization: Zoho-oauthtoken <token>`, what every Zoho Meeting example uses.
    ZohoOauthtoken,
    /// `Authorization: Bearer <token>`.
    Bearer,
}

/// `[upstream]`
#[derive(Clone, Debug)]
pub struct UpstreamConfig {
    /// The Meeting API origin: `url`, else the data centre's.
    pub url: Url,
    /// Whether `upstream.url` was set rather than derived from the data centre.
    pub url_explicit: bool,
    /// The `Authorization` scheme **(default: `Zoho-oauthtoken`)**.
    pub auth_scheme: AuthScheme,
    /// Extra PEM trust roots, also trusted for the accounts server.
    pub ca_file: Option<PathBuf>,
    /// TCP + TLS connect timeout **(default: `5s`)**.
    pub connect_timeout: Duration,
    /// Time until response headers **(default: `60s`)**.
    pub timeout: Duration,
    /// Request bodies up to this size are kept for one replay **(default: 65536)**.
    pub replay_body_limit: u64,
    /// Most HTTP/2 connections to the upstream, opened as streams need them
    /// (1 to [`MAX_H2_CONNECTIONS`]) **(default: 16)**.
    pub max_h2_connections: usize,
    /// How long an idle upstream connection beyond the first is kept **(default: `90s`)**.
    pub idle_timeout: Duration,
}

/// The largest `upstream.max_h2_connections`.
pub const MAX_H2_CONNECTIONS: u64 = 64;

/// Which token store backend.
#[derive(Clone, Debug)]
pub enum StoreConfig {
    /// A JSON file at this path; `None` = the default,
    /// `$XDG_STATE_HOME/zoho-meeting-proxy/token.json`.
    File(Option<PathBuf>),
    /// Process memory only.
    Memory,
    /// A Redis server shared by replicas.
    Redis {
        /// `redis://`, `rediss://` or `redis+unix://` URL (may carry a user and password).
        url: Secret<String>,
        /// Prefix of every key.
        key_prefix: String,
    },
}

/// `[token]`
#[derive(Clone, Debug)]
pub struct TokenConfig {
    /// The store backend **(default: `file`)**.
    pub store: StoreConfig,
    /// Refresh this long before expiry, capped for short-lived tokens **(default: `5m`)**.
    pub refresh_margin: Duration,
}

/// One `[access] rules` entry: `METHOD /path/pattern`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessRule {
    /// Upper-case method, or `*` for any.
    pub method: String,
    /// Path segments; `*` matches one segment, `**` any number.
    pub segments: Vec<String>,
    /// The rule as written.
    pub text: String,
}

/// `[access]`
#[derive(Clone, Debug, Default)]
pub struct AccessConfig {
    /// Allowed requests; empty = allow all.
    pub rules: Vec<AccessRule>,
    /// GET and HEAD only **(default: false)**.
    pub read_only: bool,
}

/// `[limits]`
#[derive(Clone, Debug)]
pub struct LimitsConfig {
    /// Request header bytes before 431 **(default: 65536)**.
    pub max_header_bytes: usize,
    /// Request URI bytes before 414 **(default: 8192)**.
    pub max_uri_bytes: usize,
    /// Request body bytes before 413; `None` = unlimited **(default: unlimited)**.
    pub max_body_bytes: Option<u64>,
    /// Concurrent client connections **(default: 10000)**.
    pub max_connections: usize,
    /// Requests in flight before 503; `None` = unlimited **(default: unlimited)**.
    pub max_in_flight: Option<usize>,
    /// How long an HTTP/1 client connection may go without a request in flight (idle
    /// keep-alive, or sending a request's headers: slow-loris) before it is closed
    /// **(default: 30s)**.
    pub header_read_timeout: Duration,
}

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line.
    Json,
}

/// Where `serve` and `sandbox` write their logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogOutput {
    /// Standard error: standard output stays free for command results.
    Stderr,
    /// Standard output, as container runtimes collect it. Other commands still log to
    /// standard error, since their standard output is their result (`token`).
    Stdout,
}

/// `[log]`
#[derive(Clone, Debug)]
pub struct LogConfig {
    /// Output format **(default: `pretty`)**.
    pub format: LogFormat,
    /// An `EnvFilter` directive, e.g. `info` or `zoho_meeting_proxy=debug` **(default: `info`)**.
    pub level: String,
    /// Where `serve` and `sandbox` log **(default: `stderr`)**.
    pub output: LogOutput,
    /// A line per request at `info` (else at `debug`; a summary at `info` once a minute
    /// either way) **(default: `false`)**.
    pub requests: bool,
}

/// A configuration that cannot be used. Its message names the key and the source at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The named configuration file does not exist or cannot be read.
    #[error("cannot read configuration file {path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A key has a bad value, or is unknown.
    #[error("invalid configuration: `{key}` (from {origin}): {message}")]
    Invalid {
        /// The dotted key, e.g. `oauth.data_center`.
        key: String,
        /// Where the value came from: the file, an environment variable, or the defaults.
        origin: String,
        /// What is wrong, never quoting a secret.
        message: String,
    },
}

// === impl OAuthConfig ===

impl OAuthConfig {
    /// The dotted configuration key of this account's `key`: `oauth.KEY` for `default`,
    /// `accounts.NAME.KEY` for the others.
    pub fn key(&self, key: &str) -> String {
        if self.account == DEFAULT_ACCOUNT {
            format!("oauth.{key}")
        } else {
            format!("accounts.{}.{key}", self.account)
        }
    }

    /// The command that logs this account in: `zoho-meeting-proxy login`, with
    /// `--account NAME` for an account beside `default`.
    pub fn login_command(&self) -> String {
        if self.account == DEFAULT_ACCOUNT {
            "zoho-meeting-proxy login".to_owned()
        } else {
            format!("zoho-meeting-proxy login --account {}", self.account)
        }
    }

    /// Whether this is the `default` account (`[oauth]`).
    pub fn is_default(&self) -> bool {
        self.account == DEFAULT_ACCOUNT
    }
}

// === impl Config ===

impl Config {
    /// The name of the account this configuration is for ([`Config::for_account`]):
    /// [`DEFAULT_ACCOUNT`] unless it is one account's view.
    pub fn account(&self) -> &str {
        &self.oauth.account
    }

    /// Every account's name, `default` first, then `[[accounts]]` in name order.
    pub fn account_names(&self) -> impl Iterator<Item = &str> {
        std::iter::once(DEFAULT_ACCOUNT)
            .chain(self.accounts.iter().map(|a| a.oauth.account.as_str()))
    }

    /// The configuration account `name` runs with, or `None` when there is no such account:
    /// `[oauth]` replaced by the account's keys, and the Meeting host (`upstream.url`,
    /// unless set explicitly, which applies to every account) its data centre's. Routes to
    /// `meeting`, `webinar` and `zohoapis` follow from it ([`Config::route_url`]).
    pub fn for_account(&self, name: &str) -> Option<Config> {
        if name == DEFAULT_ACCOUNT {
            return Some(self.clone());
        }
        let account = self.accounts.iter().find(|a| a.oauth.account == name)?;
        let mut view = self.clone();
        view.oauth = account.oauth.clone();
        if !view.upstream.url_explicit
            && let Ok(url) = Url::parse(account.oauth.data_center.meeting_url())
        {
            view.upstream.url = url;
        }
        Some(view)
    }

    /// `name`'s `[[accounts]]` entry.
    pub fn account_config(&self, name: &str) -> Option<&AccountConfig> {
        self.accounts.iter().find(|a| a.oauth.account == name)
    }

    /// Checks that account `name` exists (the `--account` option of the commands).
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] for key `accounts` listing the names there are.
    pub fn require_account(&self, name: &str) -> Result<Config, ConfigError> {
        self.for_account(name).ok_or_else(|| ConfigError::Invalid {
            key: "accounts".into(),
            origin: self.file.as_ref().map_or_else(
                || "the environment".to_owned(),
                |f| format!("file {}", f.display()),
            ),
            message: format!(
                "there is no account {name:?}; the accounts are {}",
                self.account_names().collect::<Vec<_>>().join(", ")
            ),
        })
    }

    /// Where `route` sends requests: its URL, or the data centre's service it names.
    pub fn route_url(&self, route: &RouteConfig) -> Url {
        match &route.upstream {
            RouteUpstream::Meeting => self.upstream.url.clone(),
            RouteUpstream::Zohoapis => Url::parse(self.oauth.data_center.zohoapis_url())
                .unwrap_or_else(|_| self.upstream.url.clone()),
            RouteUpstream::Webinar => Url::parse(self.oauth.data_center.webinar_url())
                .unwrap_or_else(|_| self.upstream.url.clone()),
            RouteUpstream::Url(url) => url.clone(),
        }
    }

    /// Finds the configuration file: `cli`, else `$ZOHO_PROXY_CONFIG`, else `./proxy.toml`
    /// when it exists, else none (defaults and environment only).
    pub fn resolve_path(cli: Option<&Path>) -> Option<PathBuf> {
        if let Some(path) = cli {
            return Some(path.to_owned());
        }
        if let Some(path) = std::env::var_os(CONFIG_ENV).filter(|p| !p.is_empty()) {
            return Some(PathBuf::from(path));
        }
        let default = PathBuf::from(DEFAULT_FILE);
        default.is_file().then_some(default)
    }

    /// The figment recipe: the TOML file (when given), then `ZOHO_PROXY_*` variables.
    /// Defaults come from the raw structs' `Default` impls.
    pub fn figment(file: Option<&Path>) -> Figment {
        let mut figment = Figment::new();
        if let Some(file) = file {
            figment = figment.merge(AccountsByName(Toml::file_exact(file)));
        }
        figment.merge(Env::prefixed(ENV_PREFIX).split("__").ignore(&["config"]))
    }

    /// Loads and validates the configuration from `file` (see [`Config::resolve_path`]) and
    /// the environment.
    ///
    /// # Errors
    /// [`ConfigError`] when the file is missing or unreadable, a key is unknown, a value has
    /// the wrong type, or validation fails; a `*_file` secret that cannot be read too.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        if let Some(path) = file {
            // figment silently skips a missing file; a named file that is missing is an error.
            std::fs::metadata(path).map_err(|source| ConfigError::File {
                path: path.to_owned(),
                source,
            })?;
        }
        Self::from_figment(&Self::figment(file), file)
    }

    /// Extracts and validates a configuration from any figment (tests build their own).
    ///
    /// # Errors
    /// As [`Config::load`].
    pub fn from_figment(figment: &Figment, file: Option<&Path>) -> Result<Config, ConfigError> {
        let raw: RawConfig = figment.extract().map_err(|e| figment_error(figment, e))?;
        let v = Validator { figment };
        let mut config = v.validate(raw)?;
        config.file = file.map(Path::to_owned);
        Ok(config)
    }

    /// Returns the client secret, or the error `main` reports when a command needs one.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming `oauth.client_secret` when neither it nor
    /// `oauth.client_secret_file` is set, and likewise for `oauth.client_id`.
    pub fn require_client(&self) -> Result<(&str, &Secret<String>), ConfigError> {
        if self.oauth.client_id.is_empty() {
            return Err(unset(
                &self.oauth.key("client_id"),
                "register a client at https://api-console.zoho.com",
            ));
        }
        match &self.oauth.client_secret {
            Some(secret) => Ok((&self.oauth.client_id, secret)),
            None => {
                let key = self.oauth.key("client_secret");
                let variable = format!(
                    "{ENV_PREFIX}{}",
                    key.replace('.', "__").to_ascii_uppercase()
                );
                Err(unset(
                    &key,
                    &format!("set it, or {key}_file, or {variable}"),
                ))
            }
        }
    }

    /// Renders the effective configuration as TOML with every secret replaced by
    /// `[redacted]` (what `check` prints): one line per key of the [`keys::KEYS`] table, the
    /// `[token]` keys of the chosen store only.
    pub fn redacted(&self) -> String {
        keys::redacted(self)
    }
}

// === impl AccessRule ===

impl AccessRule {
    /// Parses `METHOD /path/pattern`.
    ///
    /// # Errors
    /// A message saying what is wrong with the rule.
    pub fn parse(text: &str) -> Result<AccessRule, String> {
        let mut parts = text.split_whitespace();
        let (Some(method), Some(path), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(format!("rule {text:?} must be \"METHOD /path\""));
        };
        let method = method.to_ascii_uppercase();
        if method != "*" && !method.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(format!("rule {text:?}: {method:?} is not an HTTP method"));
        }
        if !path.starts_with('/') {
            return Err(format!("rule {text:?}: the path must start with '/'"));
        }
        let segments = path[1..].split('/').map(str::to_owned).collect();
        Ok(AccessRule {
            method,
            segments,
            text: text.trim().to_owned(),
        })
    }
}

// === validation ===

struct Validator<'a> {
    figment: &'a Figment,
}

impl Validator<'_> {
    fn err(&self, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            key: key.to_owned(),
            origin: origin_of(self.figment.find_metadata(key), key),
            message: message.into(),
        }
    }

    fn validate(&self, raw: RawConfig) -> Result<Config, ConfigError> {
        let server = self.server(raw.server)?;
        let raw_oauth = raw.oauth.clone();
        let oauth = self.oauth(raw.oauth, DEFAULT_ACCOUNT)?;
        let accounts = self.accounts(raw.accounts, &raw_oauth, &oauth, &server)?;
        self.remote_needs_keys(&server, &accounts)?;
        let upstream = self.upstream(raw.upstream, oauth.data_center)?;
        let token = self.token(raw.token)?;
        let access = AccessConfig {
            rules: raw
                .access
                .rules
                .iter()
                .map(|r| AccessRule::parse(r))
                .collect::<Result<_, _>>()
                .map_err(|m| self.err("access.rules", m))?,
            read_only: raw.access.read_only,
        };
        let l = raw.limits;
        for (key, value) in [
            ("limits.max_header_bytes", l.max_header_bytes),
            ("limits.max_uri_bytes", l.max_uri_bytes),
            ("limits.max_connections", l.max_connections),
        ] {
            if value == 0 {
                return Err(self.err(key, "must be greater than 0"));
            }
        }
        if l.header_read_timeout.is_zero() {
            return Err(self.err("limits.header_read_timeout", "must be greater than 0"));
        }
        let limits = LimitsConfig {
            max_header_bytes: l.max_header_bytes,
            max_uri_bytes: l.max_uri_bytes,
            max_body_bytes: (l.max_body_bytes > 0).then_some(l.max_body_bytes),
            max_connections: l.max_connections,
            max_in_flight: (l.max_in_flight > 0).then_some(l.max_in_flight),
            header_read_timeout: l.header_read_timeout,
        };
        let format = match raw.log.format.to_ascii_lowercase().as_str() {
            "pretty" => LogFormat::Pretty,
            "json" => LogFormat::Json,
            other => return Err(self.err("log.format", format!("{other:?} is not pretty or json"))),
        };
        let output = match raw.log.output.to_ascii_lowercase().as_str() {
            "stderr" => LogOutput::Stderr,
            "stdout" => LogOutput::Stdout,
            other => {
                return Err(self.err("log.output", format!("{other:?} is not stderr or stdout")));
            }
        };
        tracing_subscriber::EnvFilter::try_new(&raw.log.level)
            .map_err(|e| self.err("log.level", format!("not a valid log filter: {e}")))?;
        Ok(Config {
            server,
            oauth,
            upstream,
            token,
            access,
            limits,
            log: LogConfig {
                format,
                level: raw.log.level,
                output,
                requests: raw.log.requests,
            },
            routes: self.routes(raw.routes)?,
            accounts,
            file: None,
        })
    }

    /// `[[accounts]]`: names checked, unset keys filled from `[oauth]` (`raw_oauth`, as
    /// written, and `oauth`, validated), client keys read and checked against every other's.
    fn accounts(
        &self,
        raw: BTreeMap<String, raw::RawAccount>,
        raw_oauth: &raw::RawOAuth,
        oauth: &OAuthConfig,
        server: &ServerConfig,
    ) -> Result<Vec<AccountConfig>, ConfigError> {
        let mut accounts: Vec<AccountConfig> = Vec::with_capacity(raw.len());
        let mut digests: Vec<([u8; 32], String)> = server
            .client_keys
            .iter()
            .map(|k| (key_digest(k), "server.client_keys".to_owned()))
            .collect();
        for (entry, a) in raw {
            let name = if a.name.trim().is_empty() {
                entry.trim_end_matches('#').to_owned()
            } else {
                a.name.trim().to_owned()
            };
            // A second entry of a name is keyed `name#`: its errors name the first's key.
            let section = format!("accounts.{}", entry.trim_end_matches('#'));
            if !valid_account_name(&name) {
                return Err(self.err(
                    &format!("{section}.name"),
                    format!(
                        "{name:?}: an account name is 1 to {MAX_ACCOUNT_NAME} of a-z, 0-9 and -"
                    ),
                ));
            }
            if name == DEFAULT_ACCOUNT {
                return Err(self.err(
                    &format!("{section}.name"),
                    "\"default\" is the account of [oauth]; give this one another name",
                ));
            }
            if entry != name || accounts.iter().any(|o| o.oauth.account == name) {
                return Err(self.err(
                    &format!("{section}.name"),
                    format!("two accounts are named {name:?}"),
                ));
            }
            // One Zoho client, many consenting accounts: an unset client is [oauth]'s.
            let own_client = !a.client_id.trim().is_empty();
            let merged = raw::RawOAuth {
                data_center: a.data_center,
                client_id: if own_client {
                    a.client_id
                } else {
                    raw_oauth.client_id.clone()
                },
                client_secret: if own_client {
                    a.client_secret
                } else {
                    raw_oauth.client_secret.clone()
                },
                client_secret_file: if own_client {
                    a.client_secret_file
                } else {
                    raw_oauth.client_secret_file.clone()
                },
                refresh_token: a.refresh_token,
                refresh_token_file: a.refresh_token_file,
                scopes: a.scopes.unwrap_or_else(|| oauth.scopes.clone()),
                redirect_uri: raw_oauth.redirect_uri.clone(),
                accounts_url: a.accounts_url,
                // Unset: [oauth]'s budget (below), within the bound of this account's server.
                max_mints_per_10m: a.max_mints_per_10m.unwrap_or(1),
            };
            let mut validated = self.oauth(merged, &name)?;
            if a.max_mints_per_10m.is_none() {
                validated.max_mints_per_10m = oauth
                    .max_mints_per_10m
                    .min(mint_bound(&validated.accounts_url));
            }
            let client_keys_file = non_empty_path(&a.client_keys_file);
            let keys_key = format!("{section}.client_keys");
            let client_keys = self.client_keys(
                a.client_keys,
                client_keys_file.as_deref(),
                &format!("{keys_key}_file"),
            )?;
            for key in &client_keys {
                let d = key_digest(key);
                if let Some((_, other)) = digests.iter().find(|(o, _)| *o == d) {
                    return Err(self.err(
                        &keys_key,
                        format!("a key here is also listed under {other}: a key chooses one account, or (under server.client_keys) any"),
                    ));
                }
                digests.push((d, keys_key.clone()));
            }
            accounts.push(AccountConfig {
                oauth: validated,
                client_keys,
                client_keys_file,
            });
        }
        Ok(accounts)
    }

    /// A listener beyond loopback needs client keys (under `server` or an account).
    fn remote_needs_keys(
        &self,
        server: &ServerConfig,
        accounts: &[AccountConfig],
    ) -> Result<(), ConfigError> {
        let remote = match &server.listen {
            Listen::Tcp(addr) => !addr.ip().is_loopback(),
            Listen::Unix(_) => false,
        };
        let keys =
            !server.client_keys.is_empty() || accounts.iter().any(|a| !a.client_keys.is_empty());
        if remote && !keys && !server.allow_remote_without_keys {
            return Err(self.err(
                "server.listen",
                "listening beyond loopback hands the Zoho account to anyone who can reach the \
                 port: set server.client_keys or server.client_keys_file, or set \
                 server.allow_remote_without_keys = true if a network policy guards it",
            ));
        }
        Ok(())
    }

    /// Inline keys (trimmed, empty ones dropped) and those of `file`, one per line (`#`
    /// comments).
    fn client_keys(
        &self,
        inline: Vec<Secret<String>>,
        file: Option<&Path>,
        file_key: &str,
    ) -> Result<Vec<Secret<String>>, ConfigError> {
        let mut client_keys: Vec<Secret<String>> = inline
            .into_iter()
            .map(|k| Secret::new(k.expose().trim().to_owned()))
            .filter(|k| !k.is_empty())
            .collect();
        if let Some(path) = file {
            let keys = read_secret_file(path).map_err(|m| self.err(file_key, m))?;
            client_keys.extend(
                keys.expose()
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(|l| Secret::new(l.to_owned())),
            );
        }
        Ok(client_keys)
    }

    fn routes(&self, raw: Vec<raw::RawRoute>) -> Result<Vec<RouteConfig>, ConfigError> {
        let mut routes: Vec<RouteConfig> = Vec::with_capacity(raw.len());
        // figment keeps one source for the whole list.
        let source = origin_of(self.figment.find_metadata("routes"), "routes");
        let with_source = |e: ConfigError| match e {
            ConfigError::Invalid { key, message, .. } => ConfigError::Invalid {
                key,
                origin: source.clone(),
                message,
            },
            other => other,
        };
        for (i, r) in raw.into_iter().enumerate() {
            let key = |field: &str| format!("routes.{i}.{field}");
            let prefix = r.prefix.trim().to_owned();
            if !prefix.starts_with('/') || prefix.contains(['?', '#', ' ']) {
                return Err(with_source(self.err(
                    &key("prefix"),
                    format!("{prefix:?} must be a path starting with '/', e.g. \"/crm/\""),
                )));
            }
            let trimmed = prefix.trim_end_matches('/');
            if routes
                .iter()
                .any(|o| o.prefix.trim_end_matches('/') == trimmed)
            {
                return Err(with_source(
                    self.err(&key("prefix"), format!("{prefix:?} is routed twice")),
                ));
            }
            let upstream = match r.upstream.trim() {
                "meeting" => RouteUpstream::Meeting,
                "zohoapis" => RouteUpstream::Zohoapis,
                "webinar" => RouteUpstream::Webinar,
                url => RouteUpstream::Url(self.base_url(&key("upstream"), url).map_err(|e| {
                    match with_source(e) {
                        ConfigError::Invalid { key, origin, message } => ConfigError::Invalid {
                            key,
                            origin,
                            message: format!(
                                "{message} (or \"meeting\", \"webinar\" or \"zohoapis\", the data centre's services)"
                            ),
                        },
                        other => other,
                    }
                })?),
            };
            routes.push(RouteConfig {
                prefix,
                upstream,
                strip_prefix: r.strip_prefix,
            });
        }
        // Longest prefix first: the first match wins.
        routes.sort_by_key(|r| std::cmp::Reverse(r.prefix.trim_end_matches('/').len()));
        Ok(routes)
    }

    fn server(&self, s: raw::RawServer) -> Result<ServerConfig, ConfigError> {
        let listen = if let Some(path) = s.listen.strip_prefix("unix:") {
            if !path.starts_with('/') {
                return Err(self.err("server.listen", "a unix socket path must be absolute"));
            }
            Listen::Unix(PathBuf::from(path))
        } else {
            Listen::Tcp(s.listen.parse().map_err(|_| {
                self.err(
                    "server.listen",
                    format!("{:?} is not ip:port or unix:/path", s.listen),
                )
            })?)
        };
        let admin_listen = if s.admin_listen.trim().is_empty() {
            None
        } else {
            Some(s.admin_listen.parse().map_err(|_| {
                self.err(
                    "server.admin_listen",
                    format!("{:?} is not ip:port (\"\" disables it)", s.admin_listen),
                )
            })?)
        };
        if s.allowed_hosts.iter().any(|h| h.trim().is_empty()) {
            return Err(self.err("server.allowed_hosts", "entries must not be empty"));
        }
        let client_keys_file = non_empty_path(&s.client_keys_file);
        let client_keys = self.client_keys(
            s.client_keys,
            client_keys_file.as_deref(),
            "server.client_keys_file",
        )?;
        Ok(ServerConfig {
            listen,
            admin_listen,
            allowed_hosts: s.allowed_hosts,
            shutdown_grace: s.shutdown_grace,
            worker_threads: s.worker_threads,
            allowed_origins: s.allowed_origins,
            client_keys_file,
            client_keys,
            allow_remote_without_keys: s.allow_remote_without_keys,
        })
    }

    fn oauth(&self, o: raw::RawOAuth, account: &str) -> Result<OAuthConfig, ConfigError> {
        let key = |name: &str| {
            if account == DEFAULT_ACCOUNT {
                format!("oauth.{name}")
            } else {
                format!("accounts.{account}.{name}")
            }
        };
        // Unset or "": us here; the data centre `login` stored replaces it later
        // (`app::effective_config`), since only an explicit choice must agree with it.
        let unset = o.data_center.trim().is_empty();
        let data_center: DataCenter = if unset {
            DataCenter::Us
        } else {
            o.data_center
                .parse()
                .map_err(|m: String| self.err(&key("data_center"), m))?
        };
        let (client_secret, client_secret_file) = self.secret_pair(
            &key("client_secret"),
            o.client_secret,
            &o.client_secret_file,
        )?;
        let (refresh_token, refresh_token_file) = self.secret_pair(
            &key("refresh_token"),
            o.refresh_token,
            &o.refresh_token_file,
        )?;
        let scopes: Vec<String> = o
            .scopes
            .into_iter()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect();
        if scopes.is_empty() {
            return Err(self.err(&key("scopes"), "at least one scope is needed"));
        }
        if let Some(bad) = scopes.iter().find(|s| s.contains([',', ' '])) {
            return Err(self.err(
                &key("scopes"),
                format!("{bad:?}: give one scope per list entry"),
            ));
        }
        let redirect_uri = Url::parse(&o.redirect_uri)
            .map_err(|e| self.err(&key("redirect_uri"), format!("not a URL: {e}")))?;
        if redirect_uri.scheme() != "http"
            || !is_loopback_url(&redirect_uri)
            || redirect_uri.port().is_none()
        {
            return Err(self.err(
                &key("redirect_uri"),
                "must be an http:// loopback URL with a port (login listens on it), e.g. http://127.0.0.1:8765/callback",
            ));
        }
        let accounts_url = if o.accounts_url.trim().is_empty() {
            Url::parse(data_center.accounts_url())
                .map_err(|e| self.err(&key("data_center"), e.to_string()))?
        } else {
            self.origin_url(&key("accounts_url"), &o.accounts_url)?
        };
        let most = mint_bound(&accounts_url);
        let zoho_accounts = most == ZOHO_MAX_MINTS_PER_10M;
        let max_mints_per_10m = o.max_mints_per_10m;
        if !(1..=most).contains(&max_mints_per_10m) {
            return Err(self.err(
                &key("max_mints_per_10m"),
                if zoho_accounts {
                    format!(
                        "must be between 1 and {ZOHO_MAX_MINTS_PER_10M} with Zoho's accounts server {}: \
                         Zoho blocks a refresh token that mints more than {ZOHO_MAX_MINTS_PER_10M} access \
                         tokens in 10 minutes (up to {MAX_MINTS_PER_10M} only with a non-Zoho \
                         oauth.accounts_url, such as an emulator)",
                        origin(&accounts_url)
                    )
                } else {
                    format!(
                        "must be between 1 and {MAX_MINTS_PER_10M} (1 to {ZOHO_MAX_MINTS_PER_10M} with \
                         Zoho's accounts servers)"
                    )
                },
            ));
        }
        Ok(OAuthConfig {
            account: account.to_owned(),
            data_center,
            data_center_source: (!unset && self.figment.find_value(&key("data_center")).is_ok())
                .then(|| {
                    origin_of(
                        self.figment.find_metadata(&key("data_center")),
                        &key("data_center"),
                    )
                }),
            client_id: o.client_id.trim().to_owned(),
            client_secret,
            client_secret_file,
            refresh_token,
            refresh_token_file,
            scopes,
            redirect_uri,
            accounts_url,
            max_mints_per_10m,
        })
    }

    fn upstream(&self, u: raw::RawUpstream, dc: DataCenter) -> Result<UpstreamConfig, ConfigError> {
        let url = if u.url.trim().is_empty() {
            Url::parse(dc.meeting_url())
                .map_err(|e| self.err("oauth.data_center", e.to_string()))?
        } else {
            self.base_url("upstream.url", &u.url)?
        };
        let auth_scheme = match u.auth_scheme.as_str() {
            s if s.eq_ignore_ascii_case("Zoho-oauthtoken") => AuthScheme::ZohoOauthtoken,
            s if s.eq_ignore_ascii_case("Bearer") => AuthScheme::Bearer,
            other => {
                return Err(self.err(
                    "upstream.auth_scheme",
                    format!("{other:?} is not \"Zoho-oauthtoken\" or \"Bearer\""),
                ));
            }
        };
        let ca_file = non_empty_path(&u.ca_file);
        if let Some(path) = &ca_file {
            self.readable("upstream.ca_file", path)?;
        }
        if !(1..=MAX_H2_CONNECTIONS).contains(&u.max_h2_connections) {
            return Err(self.err(
                "upstream.max_h2_connections",
                format!("must be between 1 and {MAX_H2_CONNECTIONS}"),
            ));
        }
        for (key, value) in [
            ("upstream.connect_timeout", u.connect_timeout),
            ("upstream.timeout", u.timeout),
            ("upstream.idle_timeout", u.idle_timeout),
        ] {
            if value.is_zero() {
                return Err(self.err(key, "must be greater than 0"));
            }
        }
        Ok(UpstreamConfig {
            url,
            url_explicit: !u.url.trim().is_empty(),
            auth_scheme,
            ca_file,
            connect_timeout: u.connect_timeout,
            timeout: u.timeout,
            replay_body_limit: u.replay_body_limit,
            max_h2_connections: usize::try_from(u.max_h2_connections).unwrap_or(1),
            idle_timeout: u.idle_timeout,
        })
    }

    fn token(&self, t: raw::RawToken) -> Result<TokenConfig, ConfigError> {
        let store = match t.store.to_ascii_lowercase().as_str() {
            "file" => StoreConfig::File(non_empty_path(&t.path)),
            "memory" => StoreConfig::Memory,
            "redis" => {
                let url = t.redis_url.expose();
                if !REDIS_SCHEMES.iter().any(|scheme| url.starts_with(scheme)) {
                    return Err(self.err(
                        "token.redis_url",
                        "store = \"redis\" needs a redis:// or rediss:// URL (or redis+unix:///path for a local socket)",
                    ));
                }
                StoreConfig::Redis {
                    url: t.redis_url.clone(),
                    key_prefix: t.redis_key_prefix.clone(),
                }
            }
            other => {
                return Err(self.err(
                    "token.store",
                    format!("{other:?} is not one of file, memory, redis"),
                ));
            }
        };
        if t.redis_key_prefix.trim().is_empty() {
            return Err(self.err("token.redis_key_prefix", "must not be empty"));
        }
        Ok(TokenConfig {
            store,
            refresh_margin: t.refresh_margin,
        })
    }

    /// A secret given inline or as a `*_file`; both at once is an error.
    fn secret_pair(
        &self,
        key: &str,
        inline: Secret<String>,
        file: &str,
    ) -> Result<(Option<Secret<String>>, Option<PathBuf>), ConfigError> {
        let file_key = format!("{key}_file");
        match (inline.is_empty(), non_empty_path(file)) {
            (true, None) => Ok((None, None)),
            (false, None) => Ok((Some(Secret::new(inline.expose().trim().to_owned())), None)),
            (false, Some(_)) => Err(self.err(
                &file_key,
                format!("set either `{key}` or `{file_key}`, not both"),
            )),
            (true, Some(path)) => {
                let secret = read_secret_file(&path).map_err(|m| self.err(&file_key, m))?;
                Ok((Some(secret), Some(path)))
            }
        }
    }

    fn readable(&self, key: &str, path: &Path) -> Result<(), ConfigError> {
        std::fs::File::open(path)
            .map(drop)
            .map_err(|e| self.err(key, format!("cannot read {}: {e}", path.display())))
    }

    /// An `http(s)://host[:port]` origin: https, or http for loopback hosts only.
    /// A Zoho URL that may carry a base path (`upstream.url`, a route's upstream): requests
    /// go to its path + theirs. A trailing `/` is dropped.
    fn base_url(&self, key: &str, value: &str) -> Result<Url, ConfigError> {
        // Parsing resolves dot segments: look at the path as written.
        let written = value
            .trim()
            .split_once("://")
            .and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..]))
            .unwrap_or("");
        let written = written.split(['?', '#']).next().unwrap_or("");
        if written
            .split('/')
            .any(|segment| segment == "." || segment == "..")
        {
            return Err(self.err(key, "the path must not have . or .. segments"));
        }
        let Ok(mut url) = Url::parse(value.trim()) else {
            return self.origin_url(key, value);
        };
        let path = url.path().trim_end_matches('/').to_owned();
        url.set_path("/");
        let mut url = self.origin_url(key, url.as_str())?;
        url.set_path(&path);
        Ok(url)
    }

    fn origin_url(&self, key: &str, value: &str) -> Result<Url, ConfigError> {
        let url = Url::parse(value.trim())
            .map_err(|e| self.err(key, format!("{value:?} is not a URL: {e}")))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(self.err(key, "must not contain a user name or password"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(self.err(key, "must not have a query or fragment"));
        }
        if url.path() != "/" {
            return Err(self.err(
                key,
                "must be an origin (scheme, host and port) without a path",
            ));
        }
        if !is_loopback_url(&url) && !is_zoho_host(url.host_str().unwrap_or("")) {
            return Err(self.err(
                key,
                "must be one of Zoho's hosts (zoho.com, .eu, .in, .com.au, .jp, .sa, .uk, \
                 .com.cn, zohocloud.ca, or zohoapis.* of those) or a loopback host, so that a \
                 typo cannot send the token elsewhere",
            ));
        }
        match url.scheme() {
            "https" => Ok(url),
            "http" if is_loopback_url(&url) => Ok(url),
            "http" => Err(self.err(
                key,
                "http:// is accepted only for loopback hosts (local development); use https://",
            )),
            other => Err(self.err(key, format!("unsupported scheme {other:?}; use https://"))),
        }
    }
}

/// Reads a secret file, trimming surrounding whitespace (a trailing newline is usual).
/// Warns when the file is readable by group or others.
pub(crate) fn read_secret_file(path: &Path) -> Result<Secret<String>, String> {
    use std::os::unix::fs::PermissionsExt;
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(path = %path.display(), "secret file is readable by group or others; chmod 600 it");
    }
    let secret = Secret::new(text.trim().to_owned());
    drop(Secret::new(text));
    if secret.is_empty() {
        return Err(format!("{} is empty", path.display()));
    }
    Ok(secret)
}

/// Zoho's registrable domains: every data centre's accounts and Meeting hosts are below one.
const ZOHO_DOMAINS: [&str; 18] = [
    "zoho.com",
    "zoho.eu",
    "zoho.in",
    "zoho.com.au",
    "zoho.jp",
    "zoho.sa",
    "zoho.uk",
    "zoho.com.cn",
    "zohocloud.ca",
    "zohoapis.com",
    "zohoapis.eu",
    "zohoapis.in",
    "zohoapis.com.au",
    "zohoapis.jp",
    "zohoapis.sa",
    "zohoapis.uk",
    "zohoapis.com.cn",
    "zohoapis.ca",
];

/// Whether `host` is one of Zoho's domains or below one (`meeting.zoho.eu`).
pub fn is_zoho_host(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    ZOHO_DOMAINS
        .iter()
        .any(|d| host == *d || host.strip_suffix(d).is_some_and(|rest| rest.ends_with('.')))
}

/// Whether the URL's host is loopback (`localhost`, 127.0.0.0/8, `::1`).
pub fn is_loopback_url(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// The URL without its trailing `/`, as written in configuration.
pub fn origin(url: &Url) -> &str {
    url.as_str().trim_end_matches('/')
}

/// The most mints per 10 minutes `accounts_url` may be given: Zoho's limit for Zoho's
/// servers, more for another (an emulator).
fn mint_bound(accounts_url: &Url) -> u32 {
    let zoho = DataCenter::from_accounts_url(origin(accounts_url)).is_some()
        || is_zoho_host(accounts_url.host_str().unwrap_or(""));
    if zoho {
        ZOHO_MAX_MINTS_PER_10M
    } else {
        MAX_MINTS_PER_10M
    }
}

/// 1 to [`MAX_ACCOUNT_NAME`] of `a-z`, `0-9` and `-`: safe in a file name, a Redis key, a
/// header and a metrics label as it is.
pub fn valid_account_name(name: &str) -> bool {
    (1..=MAX_ACCOUNT_NAME).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn key_digest(key: &Secret<String>) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(key.expose().as_bytes()).into()
}

/// The TOML file with its `[[accounts]]` array turned into a table keyed by each entry's
/// `name`, as `ZOHO_PROXY_ACCOUNTS__<NAME>__<KEY>` variables are read: the variables then
/// merge into the entry of that name (or make a new one), key by key, and an error still
/// names the file. An entry without a string `name` is keyed by its place (`#0`), and a
/// second entry of a name gets a `#` appended; validation names both faults.
struct AccountsByName<P>(P);

impl<P: figment::Provider> figment::Provider for AccountsByName<P> {
    fn metadata(&self) -> Metadata {
        self.0.metadata()
    }

    fn data(
        &self,
    ) -> Result<figment::value::Map<figment::Profile, figment::value::Dict>, figment::Error> {
        use figment::value::{Dict, Value};
        let mut data = self.0.data()?;
        for dict in data.values_mut() {
            let Some(Value::Array(tag, entries)) = dict.remove("accounts") else {
                continue;
            };
            let mut by_name = Dict::new();
            for (i, entry) in entries.into_iter().enumerate() {
                let mut key = match &entry {
                    Value::Dict(_, fields) => match fields.get("name") {
                        Some(Value::String(_, name)) => name.trim().to_owned(),
                        _ => format!("#{i}"),
                    },
                    _ => format!("#{i}"),
                };
                while by_name.contains_key(&key) {
                    key.push('#');
                }
                by_name.insert(key, entry);
            }
            dict.insert("accounts".to_owned(), Value::Dict(tag, by_name));
        }
        Ok(data)
    }
}

fn non_empty_path(value: &str) -> Option<PathBuf> {
    let value = value.trim();
    (!value.is_empty()).then(|| PathBuf::from(value))
}

fn unset(key: &str, hint: &str) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_owned(),
        origin: "the defaults: it is not set".to_owned(),
        message: format!("is required for this command; {hint}"),
    }
}

/// Turns a figment extraction error into a [`ConfigError`] naming key and source, without
/// quoting secret values.
fn figment_error(figment: &Figment, error: figment::Error) -> ConfigError {
    let mut key = error.path.join(".");
    let mut message = error.kind.to_string();
    if let figment::error::Kind::UnknownField(field, expected) = &error.kind {
        // figment usually puts the unknown field in the path already.
        if error.path.last() != Some(field) {
            key = if key.is_empty() {
                field.clone()
            } else {
                format!("{key}.{field}")
            };
        }
        message = "unknown key".to_owned();
        if let Some(near) = did_you_mean(field, expected) {
            message.push_str(&format!("; did you mean `{near}`?"));
        }
        if !key.contains('.') {
            message.push_str(
                "; sections are server, oauth, upstream, token, access, limits, log, routes",
            );
        }
    }
    // A list item's path ends in its index (`server.client_keys.0`).
    if keys::is_secret_path(&key) {
        message = "invalid value (a string is expected)".to_owned();
    }
    let origin = match error.metadata.as_ref() {
        Some(md) => origin_of(Some(md), &key),
        None => origin_of(figment.find_metadata(&key), &key),
    };
    ConfigError::Invalid {
        key,
        origin,
        message,
    }
}

/// The known key closest to an unknown one, when it is close enough to be a typo
/// (`scope` → `scopes`, `data_centre` → `data_center`).
fn did_you_mean<'a>(unknown: &str, known: &[&'a str]) -> Option<&'a str> {
    let unknown = unknown.to_ascii_lowercase();
    known
        .iter()
        .map(|k| (strsim::jaro_winkler(&unknown, k), *k))
        .filter(|(score, _)| *score >= 0.85)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k)
}

/// Names the source of a key's value: the file, the environment variable, or the defaults.
fn origin_of(metadata: Option<&Metadata>, key: &str) -> String {
    match metadata {
        Some(Metadata {
            source: Some(Source::File(path)),
            ..
        }) => format!("file {}", path.display()),
        Some(md) if md.name.contains("environment") => {
            // List indices (`server.allowed_hosts.0`) are not part of the variable's name.
            let var: Vec<String> = key
                .split('.')
                .filter(|segment| !segment.bytes().all(|b| b.is_ascii_digit()))
                .map(str::to_ascii_uppercase)
                .collect();
            format!("environment variable {ENV_PREFIX}{}", var.join("__"))
        }
        Some(md) => md.name.to_string(),
        None => "defaults".to_owned(),
    }
}

/// A validated configuration from defaults plus `pairs` (dotted keys), for unit tests.
#[cfg(test)]
pub(crate) fn test_config(pairs: &[(&str, toml::Value)]) -> Config {
    let mut figment = Figment::new();
    for (k, v) in pairs {
        figment = figment.merge((*k, v.clone()));
    }
    Config::from_figment(&figment, None).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(pairs: &[(&str, toml::Value)]) -> Result<Config, ConfigError> {
        let mut figment = Figment::new();
        for (k, v) in pairs {
            figment = figment.merge((*k, v.clone()));
        }
        Config::from_figment(&figment, None)
    }

    #[test]
    fn accounts_take_oauths_client_and_a_key_belongs_to_one_place() {
        let config = load(&[
            ("oauth.client_id", "1000.ONE".into()),
            ("oauth.client_secret", "s".into()),
            ("oauth.max_mints_per_10m", 7.into()),
            ("accounts.acme.refresh_token", "1000.acme".into()),
            ("accounts.acme.data_center", "eu".into()),
            ("accounts.own.client_id", "1000.OWN".into()),
        ])
        .unwrap();
        let acme = config.for_account("acme").unwrap();
        assert_eq!(acme.account(), "acme");
        assert_eq!(acme.oauth.client_id, "1000.ONE");
        assert!(acme.oauth.client_secret.is_some());
        assert_eq!(acme.oauth.max_mints_per_10m, 7);
        assert_eq!(origin(&acme.upstream.url), "https://meeting.zoho.eu");
        assert_eq!(origin(&acme.oauth.accounts_url), "https://accounts.zoho.eu");
        assert_eq!(
            acme.oauth.key("refresh_token"),
            "accounts.acme.refresh_token"
        );
        // Its own client id without a secret: no [oauth] secret borrowed.
        let own = config.for_account("own").unwrap();
        let error = own.require_client().unwrap_err().to_string();
        assert!(error.contains("accounts.own.client_secret"), "{error}");
        assert!(
            error.contains("ZOHO_PROXY_ACCOUNTS__OWN__CLIENT_SECRET"),
            "{error}"
        );
        assert!(config.for_account("nope").is_none());
        assert!(config.require_account("nope").is_err());
        let names: Vec<&str> = config.account_names().collect();
        assert_eq!(names, ["default", "acme", "own"]);

        for (pairs, key) in [
            (
                vec![
                    ("server.client_keys", vec!["k"].into()),
                    ("accounts.acme.client_keys", vec!["k"].into()),
                ],
                "accounts.acme.client_keys",
            ),
            (
                vec![
                    ("accounts.acme.client_keys", vec!["k"].into()),
                    ("accounts.globex.client_keys", vec!["k"].into()),
                ],
                "accounts.globex.client_keys",
            ),
            (
                vec![("accounts.acme.max_mints_per_10m", 11.into())],
                "accounts.acme.max_mints_per_10m",
            ),
            (
                vec![("accounts.a_b.refresh_token", "x".into())],
                "accounts.a_b.name",
            ),
        ] {
            let Err(ConfigError::Invalid { key: got, .. }) = load(&pairs) else {
                panic!("{key}: accepted");
            };
            assert_eq!(got, key);
        }
        // Keys only under an account let a remote listener start.
        assert!(
            load(&[
                ("server.listen", "0.0.0.0:8080".into()),
                ("accounts.acme.client_keys", vec!["k"].into()),
            ])
            .is_ok()
        );
    }

    #[test]
    fn bad_access_rules_are_refused() {
        assert!(AccessRule::parse("GET").is_err());
        assert!(AccessRule::parse("GET api/v2").is_err());
        assert!(AccessRule::parse("G3T /x").is_err());
        assert!(AccessRule::parse("GET /x extra").is_err());
    }

    #[test]
    fn zoho_hosts() {
        for ok in [
            "meeting.zoho.com",
            "accounts.zoho.eu",
            "meeting.zohocloud.ca",
            "zoho.com.cn",
            "MEETING.ZOHO.COM.",
        ] {
            assert!(is_zoho_host(ok), "{ok}");
        }
        for bad in [
            "zoho.com.evil.example",
            "evilzoho.com",
            "meeting.zoho.co",
            "example.com",
            "",
        ] {
            assert!(!is_zoho_host(bad), "{bad}");
        }
    }

    #[test]
    fn loopback_detection() {
        for ok in [
            "http://127.0.0.1:1",
            "http://localhost:1",
            "http://[::1]:1",
            "http://127.9.9.9/",
        ] {
            assert!(is_loopback_url(&Url::parse(ok).unwrap()), "{ok}");
        }
        for bad in [
            "http://10.0.0.1/",
            "http://example.com/",
            "http://localhost.evil.com/",
        ] {
            assert!(!is_loopback_url(&Url::parse(bad).unwrap()), "{bad}");
        }
    }
}
