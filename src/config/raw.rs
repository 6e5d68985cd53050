//! The configuration as written: plain serde data with every default, unknown keys refused.
//!
//! These structs mirror the TOML file and the `ZOHO_PROXY_<SECTION>__<KEY>` environment
//! variables one to one. Nothing here is checked beyond its type; [`super::Config`] is the
//! validated form that the rest of the crate uses.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::secret::Secret;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RawConfig {
    pub(crate) server: RawServer,
    pub(crate) oauth: RawOAuth,
    pub(crate) upstream: RawUpstream,
    pub(crate) token: RawToken,
    pub(crate) access: RawAccess,
    pub(crate) limits: RawLimits,
    pub(crate) log: RawLog,
    pub(crate) routes: Vec<RawRoute>,
    /// `[[accounts]]`, by name: [`super::AccountsByName`] turns the file's array into a
    /// table keyed by `name`, so that `ZOHO_PROXY_ACCOUNTS__<NAME>__<KEY>` merges into the
    /// entry of that name.
    pub(crate) accounts: BTreeMap<String, RawAccount>,
}

/// One `[[accounts]]` entry. Unset keys fall back as [`super::Config::accounts`] says.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RawAccount {
    #[serde(deserialize_with = "lenient_string")]
    pub(crate) name: String,
    #[serde(deserialize_with = "lenient_string")]
    pub(crate) data_center: String,
    #[serde(deserialize_with = "lenient_string")]
    pub(crate) client_id: String,
    #[serde(deserialize_with = "lenient_secret")]
    pub(crate) client_secret: Secret<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub(crate) client_secret_file: String,
    #[serde(deserialize_with = "lenient_secret")]
    pub(crate) refresh_token: Secret<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub(crate) refresh_token_file: String,
    pub(crate) scopes: Option<Vec<String>>,
    #[serde(deserialize_with = "lenient_string")]
    pub(crate) accounts_url: String,
    pub(crate) max_mints_per_10m: Option<u32>,
    pub(crate) client_keys: Vec<Secret<String>>,
    #[serde(deserialize_with = "lenient_string")]
    pub(crate) client_keys_file: String,
}

/// One `[[routes]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRoute {
    pub(crate) prefix: String,
    pub(crate) upstream: String,
    #[serde(default)]
    pub(crate) strip_prefix: bool,
}

/// `[server]`
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RawServer {
    #[serde(deserialize_with = "lenient_string")]
    pub(crate) listen: String,
    #[serde(deserialize_with = "lenient_string")]
    pub(crate) admin_listen: String,
    pub(crate) allowed_hosts: Vec<String>,
    #[serde(with = "humantime_serde")]
    pub(crate) shutdown_grace: Duration,
    pub(crate) worker_threads: usize,
    pub(crate) allowed_origins: Vec<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub(crate) client_keys_file: String,
    pub(crate) client_keys: Vec<Secret<String>>,
    pub(crate) allow_remote_without_keys: bool,
}

/// `[oauth]`
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RawOAuth {
    #[serde(deserialize_with = "lenient_string")]
    pub(crate) data_center: String,
    #[serde(deserialize_with = "lenient_string")]
    pub(crate) client_id: String,
    #[serde(deserialize_with = "lenient_secret")]
    pub(crate) client_secret: Secret<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub(crate) client_secret_file: String,
    #[serde(deserialize_with = "lenient_secret")]
    pub(crate) refresh_token: Secret<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub(crate) refresh_token_file: String,
    pub(crate) scopes: Vec<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub(crate) redirect_uri: String,
    #[serde(deserialize_with = "lenient_string")]
    pub(crate) accounts_url: String,
    pub(crate) max_mints_per_10m: u32,
}

/// `[upstream]`
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RawUpstream {
    #[serde(deserialize_with = "lenient_string")]
    pub(crate) url: String,
    #[serde(deserialize_with = "lenient_string")]
    pub(crate) auth_scheme: String,
    #[serde(deserialize_with = "lenient_string")]
    pub(crate) ca_file: String,
    #[serde(with = "humantime_serde")]
    pub(crate) connect_timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub(crate) timeout: Duration,
    pub(crate) replay_body_limit: u64,
    pub(crate) max_h2_connections: u64,
    #[serde(with = "humantime_serde")]
    pub(crate) idle_timeout: Duration,
}

/// `[token]`
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RawToken {
    #[serde(deserialize_with = "lenient_string")]
    pub(crate) store: String,
    #[serde(deserialize_with = "lenient_string")]
    pub(crate) path: String,
    #[serde(with = "humantime_serde")]
    pub(crate) refresh_margin: Duration,
    #[serde(deserialize_with = "lenient_secret")]
    pub(crate) redis_url: Secret<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub(crate) redis_key_prefix: String,
}

/// `[access]`
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RawAccess {
    pub(crate) rules: Vec<String>,
    pub(crate) read_only: bool,
}

/// `[limits]`
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RawLimits {
    pub(crate) max_header_bytes: usize,
    pub(crate) max_uri_bytes: usize,
    pub(crate) max_body_bytes: u64,
    pub(crate) max_connections: usize,
    pub(crate) max_in_flight: usize,
    #[serde(with = "humantime_serde")]
    pub(crate) header_read_timeout: Duration,
}

/// `[log]`
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RawLog {
    #[serde(deserialize_with = "lenient_string")]
    pub(crate) format: String,
    #[serde(deserialize_with = "lenient_string")]
    pub(crate) level: String,
    #[serde(deserialize_with = "lenient_string")]
    pub(crate) output: String,
    pub(crate) requests: bool,
}

// === defaults (interface.md is the source of every value) ===

impl Default for RawServer {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            admin_listen: "127.0.0.1:9090".into(),
            allowed_hosts: vec!["localhost".into(), "127.0.0.1".into(), "[::1]".into()],
            shutdown_grace: Duration::from_secs(30),
            worker_threads: 0,
            allowed_origins: Vec::new(),
            client_keys_file: String::new(),
            client_keys: Vec::new(),
            allow_remote_without_keys: false,
        }
    }
}

impl Default for RawOAuth {
    fn default() -> Self {
        Self {
            // Unset: the data centre `login` stored, else us (`Validator::oauth`).
            data_center: String::new(),
            client_id: String::new(),
            client_secret: Secret::default(),
            client_secret_file: String::new(),
            refresh_token: Secret::default(),
            refresh_token_file: String::new(),
            scopes: vec![
                "ZohoMeeting.manageOrg.READ".into(),
                "ZohoMeeting.meeting.READ".into(),
            ],
            redirect_uri: "http://127.0.0.1:8765/callback".into(),
            accounts_url: String::new(),
            max_mints_per_10m: 10,
        }
    }
}

impl Default for RawUpstream {
    fn default() -> Self {
        Self {
            url: String::new(),
            auth_scheme: "Zoho-oauthtoken".into(),
            ca_file: String::new(),
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(60),
            replay_body_limit: 65536,
            max_h2_connections: 16,
            idle_timeout: Duration::from_secs(90),
        }
    }
}

impl Default for RawToken {
    fn default() -> Self {
        Self {
            store: "file".into(),
            path: String::new(),
            refresh_margin: Duration::from_secs(300),
            redis_url: Secret::default(),
            redis_key_prefix: "zoho-meeting-proxy".into(),
        }
    }
}

impl Default for RawLimits {
    fn default() -> Self {
        Self {
            max_header_bytes: 65536,
            max_uri_bytes: 8192,
            max_body_bytes: 0,
            max_connections: 10000,
            max_in_flight: 0,
            header_read_timeout: Duration::from_secs(30),
        }
    }
}

impl Default for RawLog {
    fn default() -> Self {
        Self {
            format: "pretty".into(),
            level: "info".into(),
            output: "stderr".into(),
            requests: false,
        }
    }
}

// === helpers ===

/// Accepts a string, or a number or boolean written where a string is meant.
///
/// Environment variables carry no types: figment reads `ZOHO_PROXY_OAUTH__CLIENT_ID=1000`
/// as the integer 1000, which must still become the string `"1000"`.
fn lenient_string<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Scalar {
        Str(String),
        Int(i64),
        UInt(u64),
        Float(f64),
        Bool(bool),
    }
    Ok(match Scalar::deserialize(deserializer)? {
        Scalar::Str(s) => s,
        Scalar::Int(i) => i.to_string(),
        Scalar::UInt(u) => u.to_string(),
        Scalar::Float(f) => f.to_string(),
        Scalar::Bool(b) => b.to_string(),
    })
}

/// [`lenient_string`] for secrets. Its error never repeats the value.
fn lenient_secret<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Secret<String>, D::Error> {
    lenient_string(deserializer)
        .map(Secret::new)
        .map_err(|_| serde::de::Error::custom("expected a string"))
}
