//! The table of configuration keys: one [`Key`] per dotted key of `proxy.toml.example`, in
//! the order `check` prints them.
//!
//! Each entry says how a hot reload takes a change to the key ([`Reload`]) and renders the
//! key's value from a [`Config`] as a [`Value`], which knows whether it is a secret. The same
//! rendering gives:
//! - the TOML line `check` prints ([`Config::redacted`]), secrets as `"[redacted]"`;
//! - the comparable form the reload diff uses ([`Key::comparable`]), secrets as their
//!   SHA-256, so no secret is copied into a plain string.
//!
//! `[[accounts]]` entries are printed after the keys, each with the keys of
//! `interface.md`'s "Accounts" section, secrets redacted the same way.
//!
//! A key that does not apply to a configuration (`token.path` with the redis store) renders
//! as `None`: `check` leaves it out, and the reload diff sees it as absent.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::{AuthScheme, Config, Listen, LogFormat, LogOutput, RouteUpstream, StoreConfig, origin};
use crate::secret::Secret;

/// How a running proxy takes a changed key on reload (SIGHUP or a changed `*_file` secret).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reload {
    /// Applied at once.
    Live,
    /// Takes effect after a restart.
    Restart,
    /// Partly both: `limits.max_header_bytes` is checked by the request guard at once, but
    /// sizes the connections' read buffers only at start.
    Both,
}

/// One configuration key.
#[derive(Clone, Copy)]
pub struct Key {
    /// The dotted name, `section.key`.
    pub name: &'static str,
    /// How a reload takes a change.
    pub reload: Reload,
    render: Render,
}

/// How a key's value is read from a [`Config`]; the variant fixes whether it is a secret.
#[derive(Clone, Copy)]
enum Render {
    /// A value shown as is, as a TOML literal; `None` when the key does not apply.
    Plain(fn(&Config) -> Option<String>),
    /// One secret; the outer `None` when the key does not apply, the inner when it is unset.
    Secret(fn(&Config) -> Option<Option<&Secret<String>>>),
    /// A list of secrets.
    Secrets(fn(&Config) -> &[Secret<String>]),
}

/// A key's value in one configuration.
#[derive(Clone, Debug)]
pub enum Value<'c> {
    /// Not a secret: its TOML literal, e.g. `"5m"` or `["localhost"]`.
    Plain(String),
    /// A secret, set or not.
    Secret(Option<&'c Secret<String>>),
    /// A list of secrets.
    Secrets(&'c [Secret<String>]),
}

/// The keys of an `[[accounts]]` entry whose values are secrets.
const ACCOUNT_SECRETS: &[&str] = &["client_secret", "refresh_token", "client_keys"];

/// What `check` shows for a secret.
const REDACTED: &str = "\"[redacted]\"";

/// Every configuration key, section by section, in the order `check` prints them.
pub static KEYS: &[Key] = &[
    // [server]
    plain("server.listen", Reload::Restart, |c| {
        Some(quote(&match &c.server.listen {
            Listen::Tcp(addr) => addr.to_string(),
            Listen::Unix(path) => format!("unix:{}", path.display()),
        }))
    }),
    plain("server.admin_listen", Reload::Restart, |c| {
        Some(quote(
            &c.server
                .admin_listen
                .map(|a| a.to_string())
                .unwrap_or_default(),
        ))
    }),
    plain("server.allowed_hosts", Reload::Live, |c| {
        Some(list(&c.server.allowed_hosts))
    }),
    plain("server.shutdown_grace", Reload::Restart, |c| {
        Some(duration(c.server.shutdown_grace))
    }),
    plain("server.worker_threads", Reload::Restart, |c| {
        Some(c.server.worker_threads.to_string())
    }),
    plain("server.allowed_origins", Reload::Live, |c| {
        Some(list(&c.server.allowed_origins))
    }),
    plain("server.client_keys_file", Reload::Live, |c| {
        Some(path_or_empty(&c.server.client_keys_file))
    }),
    Key {
        name: "server.client_keys",
        reload: Reload::Live,
        render: Render::Secrets(|c| &c.server.client_keys),
    },
    plain("server.allow_remote_without_keys", Reload::Live, |c| {
        Some(c.server.allow_remote_without_keys.to_string())
    }),
    // [oauth]
    plain("oauth.data_center", Reload::Restart, |c| {
        Some(quote(c.oauth.data_center.name()))
    }),
    plain("oauth.client_id", Reload::Restart, |c| {
        Some(quote(&c.oauth.client_id))
    }),
    secret("oauth.client_secret", Reload::Live, |c| {
        Some(c.oauth.client_secret.as_ref())
    }),
    plain("oauth.client_secret_file", Reload::Live, |c| {
        Some(path_or_empty(&c.oauth.client_secret_file))
    }),
    secret("oauth.refresh_token", Reload::Live, |c| {
        Some(c.oauth.refresh_token.as_ref())
    }),
    plain("oauth.refresh_token_file", Reload::Live, |c| {
        Some(path_or_empty(&c.oauth.refresh_token_file))
    }),
    // Read by `login` only: nothing running uses them.
    plain("oauth.scopes", Reload::Live, |c| {
        Some(list(&c.oauth.scopes))
    }),
    plain("oauth.redirect_uri", Reload::Live, |c| {
        Some(quote(c.oauth.redirect_uri.as_str()))
    }),
    plain("oauth.accounts_url", Reload::Restart, |c| {
        Some(quote(origin(&c.oauth.accounts_url)))
    }),
    plain("oauth.max_mints_per_10m", Reload::Restart, |c| {
        Some(c.oauth.max_mints_per_10m.to_string())
    }),
    // [upstream]
    plain("upstream.url", Reload::Restart, |c| {
        Some(quote(origin(&c.upstream.url)))
    }),
    plain("upstream.auth_scheme", Reload::Restart, |c| {
        Some(quote(match c.upstream.auth_scheme {
            AuthScheme::ZohoOauthtoken => "Zoho-oauthtoken",
            AuthScheme::Bearer => "Bearer",
        }))
    }),
    plain("upstream.ca_file", Reload::Restart, |c| {
        Some(path_or_empty(&c.upstream.ca_file))
    }),
    plain("upstream.connect_timeout", Reload::Restart, |c| {
        Some(duration(c.upstream.connect_timeout))
    }),
    plain("upstream.timeout", Reload::Restart, |c| {
        Some(duration(c.upstream.timeout))
    }),
    plain("upstream.replay_body_limit", Reload::Restart, |c| {
        Some(c.upstream.replay_body_limit.to_string())
    }),
    plain("upstream.max_h2_connections", Reload::Restart, |c| {
        Some(c.upstream.max_h2_connections.to_string())
    }),
    plain("upstream.idle_timeout", Reload::Restart, |c| {
        Some(duration(c.upstream.idle_timeout))
    }),
    // [token]: only the keys of the chosen store apply.
    plain("token.store", Reload::Restart, |c| {
        Some(quote(match c.token.store {
            StoreConfig::File(_) => "file",
            StoreConfig::Memory => "memory",
            StoreConfig::Redis { .. } => "redis",
        }))
    }),
    plain("token.path", Reload::Restart, |c| match &c.token.store {
        StoreConfig::File(path) => Some(path_or_empty(path)),
        StoreConfig::Memory | StoreConfig::Redis { .. } => None,
    }),
    secret("token.redis_url", Reload::Restart, |c| {
        match &c.token.store {
            StoreConfig::Redis { url, .. } => Some(Some(url)),
            StoreConfig::File(_) | StoreConfig::Memory => None,
        }
    }),
    plain("token.redis_key_prefix", Reload::Restart, |c| {
        match &c.token.store {
            StoreConfig::Redis { key_prefix, .. } => Some(quote(key_prefix)),
            StoreConfig::File(_) | StoreConfig::Memory => None,
        }
    }),
    plain("token.refresh_margin", Reload::Restart, |c| {
        Some(duration(c.token.refresh_margin))
    }),
    // [access]
    plain("access.rules", Reload::Live, |c| {
        let rules: Vec<String> = c.access.rules.iter().map(|r| r.text.clone()).collect();
        Some(list(&rules))
    }),
    plain("access.read_only", Reload::Live, |c| {
        Some(c.access.read_only.to_string())
    }),
    // [limits]
    plain("limits.max_header_bytes", Reload::Both, |c| {
        Some(c.limits.max_header_bytes.to_string())
    }),
    plain("limits.max_uri_bytes", Reload::Live, |c| {
        Some(c.limits.max_uri_bytes.to_string())
    }),
    plain("limits.max_body_bytes", Reload::Live, |c| {
        Some(c.limits.max_body_bytes.unwrap_or(0).to_string())
    }),
    plain("limits.max_connections", Reload::Restart, |c| {
        Some(c.limits.max_connections.to_string())
    }),
    plain("limits.max_in_flight", Reload::Live, |c| {
        Some(c.limits.max_in_flight.unwrap_or(0).to_string())
    }),
    plain("limits.header_read_timeout", Reload::Restart, |c| {
        Some(duration(c.limits.header_read_timeout))
    }),
    // [log]
    plain("log.format", Reload::Restart, |c| {
        Some(quote(match c.log.format {
            LogFormat::Pretty => "pretty",
            LogFormat::Json => "json",
        }))
    }),
    plain("log.level", Reload::Live, |c| Some(quote(&c.log.level))),
    plain("log.output", Reload::Restart, |c| {
        Some(quote(match c.log.output {
            LogOutput::Stderr => "stderr",
            LogOutput::Stdout => "stdout",
        }))
    }),
    plain("log.requests", Reload::Live, |c| {
        Some(c.log.requests.to_string())
    }),
];

const fn plain(name: &'static str, reload: Reload, f: fn(&Config) -> Option<String>) -> Key {
    Key {
        name,
        reload,
        render: Render::Plain(f),
    }
}

const fn secret(
    name: &'static str,
    reload: Reload,
    f: fn(&Config) -> Option<Option<&Secret<String>>>,
) -> Key {
    Key {
        name,
        reload,
        render: Render::Secret(f),
    }
}

/// The entry for a dotted key, e.g. `oauth.client_secret`.
pub fn find(name: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.name == name)
}

/// Whether a dotted path names a secret key or lies below one (`server.client_keys.0`, a list
/// item): errors about it must not quote the value.
pub fn is_secret_path(path: &str) -> bool {
    // `accounts.NAME.KEY`: an account's keys are secret where `[oauth]`'s are, and its
    // `client_keys` as `server.client_keys`. Any segment after the name counts (a name with a
    // dot would shift them): hiding too much is harmless.
    if let Some(rest) = path.strip_prefix("accounts.") {
        return rest
            .split('.')
            .skip(1)
            .any(|segment| ACCOUNT_SECRETS.contains(&segment));
    }
    KEYS.iter().any(|k| {
        k.is_secret()
            && path
                .strip_prefix(k.name)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
    })
}

/// The configuration as TOML, secrets as `"[redacted]"`, keys that do not apply left out:
/// what [`Config::redacted`] returns.
pub(super) fn redacted(config: &Config) -> String {
    let mut out = String::new();
    let mut section = "";
    for key in KEYS {
        let Some(value) = key.value(config) else {
            continue;
        };
        if key.section() != section {
            if !section.is_empty() {
                out.push('\n');
            }
            section = key.section();
            out.push_str(&format!("[{section}]\n"));
        }
        out.push_str(&format!("{} = {}\n", key.field(), value.toml()));
    }
    // `[[accounts]]` and `[[routes]]` are lists of tables, not keys: they come last, as
    // TOML wants. Each account's keys as it runs (what it took from `[oauth]` included).
    for account in &config.accounts {
        let oauth = &account.oauth;
        let secret = |s: Option<&Secret<String>>| Value::Secret(s).toml();
        let lines = [
            ("name", quote(&oauth.account)),
            ("data_center", quote(oauth.data_center.name())),
            ("client_id", quote(&oauth.client_id)),
            ("client_secret", secret(oauth.client_secret.as_ref())),
            (
                "client_secret_file",
                path_or_empty(&oauth.client_secret_file),
            ),
            ("refresh_token", secret(oauth.refresh_token.as_ref())),
            (
                "refresh_token_file",
                path_or_empty(&oauth.refresh_token_file),
            ),
            ("scopes", list(&oauth.scopes)),
            ("accounts_url", quote(origin(&oauth.accounts_url))),
            ("max_mints_per_10m", oauth.max_mints_per_10m.to_string()),
            ("client_keys", Value::Secrets(&account.client_keys).toml()),
            ("client_keys_file", path_or_empty(&account.client_keys_file)),
        ];
        out.push_str("\n[[accounts]]\n");
        for (key, value) in lines {
            out.push_str(&format!("{key} = {value}\n"));
        }
    }
    for route in &config.routes {
        let upstream = match &route.upstream {
            RouteUpstream::Meeting => "meeting".to_owned(),
            RouteUpstream::Zohoapis => "zohoapis".to_owned(),
            RouteUpstream::Webinar => "webinar".to_owned(),
            RouteUpstream::Url(url) => origin(url).to_owned(),
        };
        out.push_str(&format!(
            "\n[[routes]]\nprefix = {}\nupstream = {}\nstrip_prefix = {}\n",
            quote(&route.prefix),
            quote(&upstream),
            route.strip_prefix
        ));
    }
    out
}

// === impl Key ===

impl Key {
    /// The section, e.g. `oauth` for `oauth.client_secret`.
    pub fn section(&self) -> &'static str {
        self.name.split_once('.').map_or(self.name, |(s, _)| s)
    }

    /// The key within its section, e.g. `client_secret`.
    pub fn field(&self) -> &'static str {
        self.name.split_once('.').map_or(self.name, |(_, k)| k)
    }

    /// Whether the key's value is a secret.
    pub fn is_secret(&self) -> bool {
        !matches!(self.render, Render::Plain(_))
    }

    /// The key's value in `config`, or `None` when the key does not apply to it (a store's
    /// keys under another store).
    pub fn value<'c>(&self, config: &'c Config) -> Option<Value<'c>> {
        match self.render {
            Render::Plain(f) => f(config).map(Value::Plain),
            Render::Secret(f) => f(config).map(Value::Secret),
            Render::Secrets(f) => Some(Value::Secrets(f(config))),
        }
    }

    /// The value in a form to compare between configurations ([`Value::comparable`]);
    /// `None` when the key does not apply.
    pub fn comparable(&self, config: &Config) -> Option<String> {
        self.value(config).map(|v| v.comparable())
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("name", &self.name)
            .field("reload", &self.reload)
            .field("secret", &self.is_secret())
            .finish_non_exhaustive()
    }
}

// === impl Value ===

impl Value<'_> {
    /// Whether the value is a secret.
    pub fn is_secret(&self) -> bool {
        !matches!(self, Value::Plain(_))
    }

    /// The TOML literal `check` prints: secrets as `"[redacted]"` (an unset one as `""`).
    pub fn toml(&self) -> String {
        match self {
            Value::Plain(text) => text.clone(),
            Value::Secret(Some(_)) => REDACTED.to_owned(),
            Value::Secret(None) => "\"\"".to_owned(),
            Value::Secrets(items) => format!("[{}]", vec![REDACTED; items.len()].join(", ")),
        }
    }

    /// A form to compare: the TOML literal, or for secrets a SHA-256 in hex (an unset secret
    /// as `""`), never the secret itself.
    pub fn comparable(&self) -> String {
        match self {
            Value::Plain(text) => text.clone(),
            Value::Secret(Some(secret)) => hex(&Sha256::digest(secret.expose().as_bytes())),
            Value::Secret(None) => String::new(),
            Value::Secrets(items) => {
                let mut all = Sha256::new();
                for item in *items {
                    all.update(Sha256::digest(item.expose().as_bytes()));
                }
                hex(&all.finalize())
            }
        }
    }
}

fn quote(s: &str) -> String {
    format!("{s:?}")
}

fn list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| quote(s)).collect();
    format!("[{}]", quoted.join(", "))
}

fn path_or_empty(path: &Option<PathBuf>) -> String {
    quote(
        &path
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
    )
}

fn duration(d: Duration) -> String {
    quote(&humantime::format_duration(d).to_string())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::config::test_config as config;

    #[test]
    fn every_key_is_compared() {
        // One entry per key of proxy.toml.example, none twice.
        let example: toml::Table =
            toml::from_str(include_str!("../../proxy.toml.example")).unwrap();
        let mut expected: Vec<String> = example
            .iter()
            .flat_map(|(section, keys)| {
                let keys = keys.as_table().unwrap();
                keys.keys().map(move |k| format!("{section}.{k}"))
            })
            .collect();
        let mut table: Vec<String> = KEYS.iter().map(|k| k.name.to_owned()).collect();
        expected.sort();
        table.sort();
        assert_eq!(table, expected);
    }

    #[test]
    fn redacted_prints_every_key_of_the_defaults_in_order() {
        let expected = "\
[server]
listen = \"127.0.0.1:8080\"
admin_listen = \"127.0.0.1:9090\"
allowed_hosts = [\"localhost\", \"127.0.0.1\", \"[::1]\"]
shutdown_grace = \"30s\"
worker_threads = 0
allowed_origins = []
client_keys_file = \"\"
client_keys = []
allow_remote_without_keys = false

[oauth]
data_center = \"us\"
client_id = \"\"
client_secret = \"\"
client_secret_file = \"\"
refresh_token = \"\"
refresh_token_file = \"\"
scopes = [\"ZohoMeeting.manageOrg.READ\", \"ZohoMeeting.meeting.READ\"]
redirect_uri = \"http://127.0.0.1:8765/callback\"
accounts_url = \"https://accounts.zoho.com\"
max_mints_per_10m = 10

[upstream]
url = \"https://meeting.zoho.com\"
auth_scheme = \"Zoho-oauthtoken\"
ca_file = \"\"
connect_timeout = \"5s\"
timeout = \"1m\"
replay_body_limit = 65536
max_h2_connections = 16
idle_timeout = \"1m 30s\"

[token]
store = \"file\"
path = \"\"
refresh_margin = \"5m\"

[access]
rules = []
read_only = false

[limits]
max_header_bytes = 65536
max_uri_bytes = 8192
max_body_bytes = 0
max_connections = 10000
max_in_flight = 0
header_read_timeout = \"30s\"

[log]
format = \"pretty\"
level = \"info\"
output = \"stderr\"
requests = false
";
        assert_eq!(config(&[]).redacted(), expected);
    }

    #[test]
    fn sections_are_contiguous() {
        // `redacted` opens a section at each change: a section split in two would print twice.
        let mut seen: Vec<&str> = Vec::new();
        for key in KEYS {
            if seen.last() != Some(&key.section()) {
                assert!(!seen.contains(&key.section()), "{} out of place", key.name);
                seen.push(key.section());
            }
        }
    }

    #[test]
    fn secrets_are_redacted_and_compared_by_digest() {
        let c = config(&[
            ("oauth.client_secret", "cs-SENTINEL".into()),
            ("oauth.refresh_token", "1000.rt-SENTINEL".into()),
            ("server.client_keys", vec!["ck-SENTINEL"].into()),
            ("token.store", "redis".into()),
            ("token.redis_url", "redis://:pw-SENTINEL@localhost".into()),
        ]);
        let secrets: Vec<&str> = KEYS
            .iter()
            .filter(|k| k.is_secret())
            .map(|k| k.name)
            .collect();
        assert_eq!(
            secrets,
            [
                "server.client_keys",
                "oauth.client_secret",
                "oauth.refresh_token",
                "token.redis_url"
            ]
        );
        for key in KEYS {
            // `token.path` does not apply to the redis store.
            let Some(value) = key.value(&c) else {
                assert_eq!(key.name, "token.path");
                continue;
            };
            assert_eq!(value.is_secret(), key.is_secret(), "{}", key.name);
            assert!(!value.toml().contains("SENTINEL"), "{}", key.name);
            assert!(!value.comparable().contains("SENTINEL"), "{}", key.name);
        }
        let other = config(&[("oauth.client_secret", "cs-other".into())]);
        let key = find("oauth.client_secret").unwrap();
        assert_ne!(key.comparable(&c), key.comparable(&other));
        assert_eq!(key.value(&c).unwrap().toml(), REDACTED);
        assert_eq!(
            find("server.client_keys")
                .unwrap()
                .value(&c)
                .unwrap()
                .toml(),
            "[\"[redacted]\"]"
        );
    }

    #[test]
    fn accounts_are_printed_after_the_keys_with_their_secrets_redacted() {
        let c = config(&[
            ("oauth.client_id", "1000.ABC".into()),
            ("oauth.client_secret", "cs-SENTINEL".into()),
            ("accounts.acme.data_center", "eu".into()),
            ("accounts.acme.refresh_token", "1000.rt-SENTINEL".into()),
            (
                "accounts.acme.client_keys",
                vec!["ck-SENTINEL", "ck2-SENTINEL"].into(),
            ),
            ("accounts.beta.client_id", "1000.BETA".into()),
            ("accounts.beta.client_secret", "cs2-SENTINEL".into()),
        ]);
        let printed = c.redacted();
        assert!(!printed.contains("SENTINEL"), "{printed}");
        let acme = "\
[[accounts]]
name = \"acme\"
data_center = \"eu\"
client_id = \"1000.ABC\"
client_secret = \"[redacted]\"
client_secret_file = \"\"
refresh_token = \"[redacted]\"
refresh_token_file = \"\"
scopes = [\"ZohoMeeting.manageOrg.READ\", \"ZohoMeeting.meeting.READ\"]
accounts_url = \"https://accounts.zoho.eu\"
max_mints_per_10m = 10
client_keys = [\"[redacted]\", \"[redacted]\"]
client_keys_file = \"\"
";
        assert!(printed.contains(acme), "{printed}");
        // The whole output is TOML whose accounts read back as printed, in name order.
        let table: toml::Table = toml::from_str(&printed).unwrap();
        let accounts = table["accounts"].as_array().unwrap();
        let field = |i: usize, key: &str| accounts[i][key].as_str().unwrap().to_owned();
        assert_eq!(accounts.len(), 2);
        assert_eq!(field(0, "name"), "acme");
        assert_eq!(field(1, "name"), "beta");
        assert_eq!(field(1, "client_id"), "1000.BETA");
        assert_eq!(field(1, "client_secret"), "[redacted]");
        assert_eq!(field(1, "refresh_token"), "");
        assert_eq!(field(1, "data_center"), "us");
        assert!(accounts[1]["client_keys"].as_array().unwrap().is_empty());
        // Without accounts, nothing is printed for them.
        assert!(!config(&[]).redacted().contains("[[accounts]]"));
    }

    #[test]
    fn secret_paths_cover_list_items_but_not_neighbours() {
        assert!(is_secret_path("oauth.client_secret"));
        assert!(is_secret_path("server.client_keys.0"));
        assert!(is_secret_path("token.redis_url"));
        assert!(!is_secret_path("oauth.client_secret_file"));
        assert!(!is_secret_path("oauth.client_id"));
        assert!(!is_secret_path("oauth"));
        assert!(is_secret_path("accounts.acme.client_secret"));
        assert!(is_secret_path("accounts.acme.refresh_token"));
        assert!(is_secret_path("accounts.acme.client_keys.0"));
        assert!(is_secret_path("accounts.#0.client_keys.1"));
        assert!(!is_secret_path("accounts.acme.client_secret_file"));
        assert!(!is_secret_path("accounts.acme.client_id"));
        assert!(!is_secret_path("accounts.acme.data_center"));
    }

    #[test]
    fn store_keys_apply_to_their_store_only() {
        let applies = |c: &Config| -> Vec<&str> {
            KEYS.iter()
                .filter(|k| k.section() == "token" && k.value(c).is_some())
                .map(|k| k.field())
                .collect()
        };
        assert_eq!(applies(&config(&[])), ["store", "path", "refresh_margin"]);
        assert_eq!(
            applies(&config(&[("token.store", "memory".into())])),
            ["store", "refresh_margin"]
        );
        assert_eq!(
            applies(&config(&[
                ("token.store", "redis".into()),
                ("token.redis_url", "redis://localhost".into())
            ])),
            ["store", "redis_url", "redis_key_prefix", "refresh_margin"]
        );
    }
}
