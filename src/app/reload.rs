//! Hot reload for `serve`: SIGHUP, or a change to a `*_file` secret, re-reads the
//! configuration (the same file and environment as at start) and swaps what can change
//! while connections stay open.
//!
//! Applied at once, with no connection or request dropped:
//! - the client secret (`oauth.client_secret[_file]`): the next mint uses it;
//! - the refresh token (`oauth.refresh_token[_file]`): new credentials for the next mint, and
//!   a fresh mint budget when it really changed (Zoho counts mints per refresh token);
//! - the token store's refresh token, when the configuration names none: the store is read
//!   again, so a `login` run beside the serving proxy takes effect, and after a `revoke`
//!   (the store holds none) token refresh stops with an error until the next `login`
//!   ([`TokenManager::credentials_revoked`]);
//! - `log.level` (unless `RUST_LOG` overrides it);
//! - everything the request [`Guard`] checks: `server.allowed_hosts`,
//!   `server.allowed_origins`, `server.client_keys[_file]`, `access.*`, and the
//!   `limits.max_uri_bytes` / `max_header_bytes` / `max_body_bytes` / `max_in_flight` checks.
//!   Requests in flight finish under the guard they started with.
//!
//! - `[[accounts]]`: an account added starts (its token store read, its refresher started)
//!   and serves the requests that start after the reload; an account removed stops (its
//!   refresher ends, its requests get 400 unknown-account), while its requests in flight
//!   finish. An account kept takes a new client secret or refresh token as `default` does;
//!   its other keys (data centre, client id, accounts server) wait for a restart.
//!
//! Every other key (listeners, worker threads, the upstream, the token store, the accounts
//! server, the log format and output, …) takes effect only after a restart; a reload that
//! changes one says so in the log. After a reload the token manager retries at once
//! ([`TokenManager::retry_now`]), so fixed credentials need no restart. A configuration that
//! fails to load is logged with the key at fault, and the running one stays.
//!
//! The secret files are watched by polling their size, modification time and inode every
//! [`WATCH_INTERVAL`]: a Kubernetes secret volume replaces files through a symlink swap,
//! which changes the inode, and no extra dependency is needed for three files.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use std::collections::BTreeMap;

use tracing::Instrument as _;

use super::{AccountSet, Running, Tokens};
use crate::config::keys::{KEYS, Reload};
use crate::config::{Config, ConfigError, Listen, StoreConfig};
use crate::proxy::{Guard, Proxy};
use crate::telemetry::{LevelChange, Logging};
use crate::token::{Credentials, TokenManager};

/// How often the `*_file` secrets are checked for changes.
pub const WATCH_INTERVAL: Duration = Duration::from_secs(2);

/// What set off a reload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    /// SIGHUP.
    Signal,
    /// A watched secret file changed.
    SecretFile,
}

/// Re-reads the configuration and applies it to the running proxy.
pub struct Reloader<'a> {
    path: Option<PathBuf>,
    /// The configuration the process started with: what restart-only keys are compared to.
    started: Config,
    /// The configuration last applied.
    current: Config,
    proxy: Arc<Proxy>,
    /// `default`'s token manager and credentials.
    default: Tracked,
    /// The other accounts', by name.
    others: BTreeMap<String, Tracked>,
    accounts: Arc<tokio::sync::Mutex<AccountSet>>,
    logging: Option<&'a Logging>,
    files: SecretFiles,
}

/// One running account's credentials, as reloads change them.
struct Tracked {
    /// The account's configuration at its start: its restart-only keys (client id,
    /// accounts server).
    started: Config,
    manager: Arc<TokenManager>,
    /// The refresh token in use came from the configuration (not the token store).
    refresh_token_from_config: bool,
}

/// What a reload did to the credentials the token manager mints with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CredentialsChange {
    /// Neither the client secret nor the refresh token changed.
    Unchanged,
    /// The client secret or the refresh token changed: mint with them at once.
    Changed,
    /// The token store's refresh token is gone: refresh stopped (no retry).
    Revoked,
}

/// What re-reading the token store found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stored {
    /// The refresh token already in use.
    Same,
    /// Another refresh token, now in use.
    Taken,
    /// No refresh token any more: refresh stopped.
    Revoked,
    /// Nothing usable (an error, logged): the running refresh token stays.
    Kept,
}

/// The keys a reload changed, by what happens to them.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// Changed since the last reload and applied now.
    pub applied: Vec<&'static str>,
    /// Differ from the running process's start and wait for a restart.
    pub restart: Vec<&'static str>,
}

/// Size, modification time and inode of each watched secret file (`None`: unreadable).
#[derive(Debug, Default)]
struct SecretFiles {
    stamps: Vec<(PathBuf, Option<Stamp>)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
    dev: u64,
    ino: u64,
}

// === impl Reloader ===

impl<'a> Reloader<'a> {
    /// A reloader for `running`, whose configuration was read from `path`.
    pub async fn new(
        running: &Running,
        path: Option<PathBuf>,
        logging: Option<&'a Logging>,
    ) -> Self {
        let config = running.config();
        let others = running
            .accounts()
            .lock()
            .await
            .iter()
            .filter(|a| !a.config.oauth.is_default())
            .map(|a| {
                (
                    a.name().to_owned(),
                    Tracked::new(&a.config, a.manager.clone()),
                )
            })
            .collect();
        Self {
            path,
            started: config.clone(),
            current: config.clone(),
            proxy: running.proxy().clone(),
            default: Tracked::new(config, running.manager().clone()),
            others,
            accounts: running.accounts().clone(),
            logging,
            files: SecretFiles::watch(config),
        }
    }

    /// Whether a watched secret file changed since the last look (or the last reload).
    pub fn secret_files_changed(&mut self) -> bool {
        let now = SecretFiles::stamp(self.files.paths());
        let changed = now.stamps != self.files.stamps;
        if changed {
            let names: Vec<String> = now
                .stamps
                .iter()
                .zip(&self.files.stamps)
                .filter(|(a, b)| a != b)
                .map(|((path, _), _)| path.display().to_string())
                .collect();
            tracing::info!(files = %names.join(", "), "secret file changed");
        }
        self.files = now;
        changed
    }

    /// Re-reads the configuration and applies what can change live; logs what changed, what
    /// needs a restart, or why the configuration was refused.
    pub async fn reload(&mut self, cause: Cause) {
        let cause_name = match cause {
            Cause::Signal => "SIGHUP",
            Cause::SecretFile => "secret file",
        };
        // Stamp the files before reading them: a change while loading is seen next time.
        let before = SecretFiles::stamp(self.files.paths());
        let loaded = match Config::load(self.path.as_deref()) {
            // As at start: a data centre that `login` stored shapes the configuration.
            Ok(config) => {
                crate::app::effective_config(&config, self.default.manager.store().as_ref())
                    .await
                    .map_err(|e| match e {
                        crate::app::Error::Config(e) => e,
                        other => ConfigError::Invalid {
                            key: "token.store".into(),
                            origin: "the reloaded configuration".into(),
                            message: crate::telemetry::chain(&other),
                        },
                    })
            }
            Err(error) => Err(error),
        }
        .and_then(|config| {
            config.require_client()?;
            fits_running(&self.started, &config)?;
            Ok(config)
        });
        let new = match loaded {
            Ok(config) => config,
            Err(error) => {
                self.files = before;
                tracing::error!(
                    cause = cause_name,
                    error = %crate::telemetry::chain(&error),
                    "configuration reload failed; keeping the running configuration"
                );
                if cause == Cause::Signal {
                    self.retry_all();
                }
                return;
            }
        };
        // The accounts: those kept as they are now, those added started (their stores
        // read); a failure here keeps the running configuration too.
        let others = match self.account_views(&new).await {
            Ok(others) => others,
            Err(error) => {
                self.files = before;
                tracing::error!(
                    cause = cause_name,
                    error = %crate::telemetry::chain(&error),
                    "configuration reload failed; keeping the running configuration"
                );
                if cause == Cause::Signal {
                    self.retry_all();
                }
                return;
            }
        };
        let mut changes = changes(&self.started, &self.current, &new);
        let credentials = self.apply(&new, &mut changes).await;
        let (accounts_changed, accounts_restart) = self.apply_accounts(&new, others, cause).await;
        if accounts_changed {
            changes.applied.push("accounts");
        }
        if accounts_restart {
            changes.restart.push("accounts");
        }
        self.files = if before.paths().eq(SecretFiles::watch_paths(&new).iter()) {
            before
        } else {
            SecretFiles::watch(&new)
        };
        self.current = new;
        self.default.retry(credentials, cause);
        if changes.applied.is_empty() && changes.restart.is_empty() {
            tracing::info!(
                cause = cause_name,
                "configuration reloaded; nothing changed"
            );
            return;
        }
        tracing::info!(
            cause = cause_name,
            applied = %changes.applied.join(", "),
            "configuration reloaded"
        );
        if !changes.restart.is_empty() {
            tracing::warn!(
                keys = %changes.restart.join(", "),
                "these settings changed but take effect only after a restart"
            );
        }
    }

    /// Applies `new` to the running parts. Says whether `default`'s client secret or
    /// refresh token changed, or its token store's refresh token is gone.
    async fn apply(&mut self, new: &Config, changes: &mut Changes) -> CredentialsChange {
        self.proxy.set_guard(Guard::new(new));
        self.proxy.set_log_requests(new.log.requests);
        let (outcome, stored) = self.default.apply(new).await;
        if stored == Some(Stored::Kept) {
            // Still the configured refresh token: the change did not apply.
            changes.applied.retain(|key| *key != "oauth.refresh_token");
        }
        if new.log.level != self.current.log.level
            && let Some(logging) = self.logging
        {
            match logging.set_level(&new.log.level) {
                Ok(LevelChange::Applied) => {}
                Ok(LevelChange::OverriddenByEnv) => {
                    tracing::info!("log.level changed, but RUST_LOG overrides it");
                }
                Err(e) => tracing::warn!(error = %e, "cannot change the log level"),
            }
        }
        outcome
    }

    /// The effective configuration of every account of `new` beside `default`: for an
    /// account that runs, its view as its store shapes it; for a new one, its token side
    /// ([`super::tokens`]: store opened, refresh token found).
    async fn account_views(&self, new: &Config) -> Result<Vec<View>, super::Error> {
        let mut views = Vec::with_capacity(new.accounts.len());
        for name in new.accounts.iter().map(|a| a.oauth.account.as_str()) {
            let view = new.require_account(name)?;
            views.push(match self.others.get(name) {
                Some(tracked) => {
                    let view =
                        super::effective_config(&view, tracked.manager.store().as_ref()).await?;
                    view.require_client()?;
                    View::Kept(view)
                }
                None => View::Added(super::tokens(&view).await?),
            });
        }
        Ok(views)
    }

    /// Starts the added accounts, stops the removed ones, applies the kept ones' credentials
    /// and puts the new table in place. Says whether the accounts changed, and whether a
    /// kept account's restart-only keys (client id, data centre, accounts server, scopes,
    /// mint budget) differ from its start.
    async fn apply_accounts(
        &mut self,
        new: &Config,
        views: Vec<View>,
        cause: Cause,
    ) -> (bool, bool) {
        let mut changed = false;
        let mut restart = false;
        let removed: Vec<String> = self
            .others
            .keys()
            .filter(|name| new.account_config(name).is_none())
            .cloned()
            .collect();
        let mut added = Vec::new();
        for view in views {
            match view {
                View::Kept(view) => {
                    let name = view.account().to_owned();
                    let Some(tracked) = self.others.get_mut(&name) else {
                        continue;
                    };
                    let (was, now) = (&tracked.started.oauth, &view.oauth);
                    if was.client_id != now.client_id
                        || was.data_center != now.data_center
                        || was.accounts_url != now.accounts_url
                        || was.scopes != now.scopes
                        || was.max_mints_per_10m != now.max_mints_per_10m
                    {
                        tracing::warn!(
                            account = %name,
                            "the account's client id, data centre, accounts server, scopes or mint budget changed: they take effect after a restart"
                        );
                        restart = true;
                    }
                    let span = tracing::info_span!("account", account = %name);
                    let (outcome, _) = tracked.apply(&view).instrument(span).await;
                    changed |= outcome != CredentialsChange::Unchanged;
                    tracked.retry(outcome, cause);
                }
                View::Added(tokens) => {
                    self.others.insert(
                        tokens.config.account().to_owned(),
                        Tracked::new(&tokens.config, tokens.manager.clone()),
                    );
                    added.push(tokens);
                }
            }
        }
        if added.is_empty() && removed.is_empty() {
            // The guard (client keys bound to accounts) was put in place by `apply`.
            return (changed, restart);
        }
        let added_names: Vec<String> = added
            .iter()
            .map(|t| t.config.account().to_owned())
            .collect();
        let result =
            self.accounts
                .lock()
                .await
                .change(&self.proxy, Guard::new(new), added, &removed);
        match result {
            Ok(()) => {
                for name in &removed {
                    self.others.remove(name);
                }
                (true, restart)
            }
            Err(error) => {
                for name in &added_names {
                    self.others.remove(name);
                }
                tracing::error!(
                    error = %crate::telemetry::chain(&error),
                    "cannot start the added accounts; the running ones stay"
                );
                (changed, restart)
            }
        }
    }

    /// Makes every account's token manager retry a failed refresh at once.
    fn retry_all(&self) {
        self.default.manager.retry_now();
        for tracked in self.others.values() {
            tracked.manager.retry_now();
        }
    }
}

/// An account of a reloaded configuration.
enum View {
    /// It runs: its effective configuration.
    Kept(Config),
    /// It is new: its token side, ready to start.
    Added(Tokens),
}

// === impl Tracked ===

impl Tracked {
    fn new(config: &Config, manager: Arc<TokenManager>) -> Self {
        Self {
            started: config.clone(),
            manager,
            refresh_token_from_config: config.oauth.refresh_token.is_some(),
        }
    }

    /// After a reload that did `outcome` to the credentials: a failed refresh is retried at
    /// once on SIGHUP or new credentials. After a revoke there is nothing to retry with: the
    /// stop stays until a new refresh token arrives.
    fn retry(&self, outcome: CredentialsChange, cause: Cause) {
        if outcome != CredentialsChange::Revoked
            && (cause == Cause::Signal || outcome == CredentialsChange::Changed)
        {
            self.manager.retry_now();
        }
    }

    /// Applies the account's client secret and refresh token of `new` (its view). Says what
    /// changed, and what re-reading the token store found when it was read.
    async fn apply(&mut self, new: &Config) -> (CredentialsChange, Option<Stored>) {
        let mut outcome = CredentialsChange::Unchanged;
        let mut stored = None;
        if let Some(secret) = &new.oauth.client_secret
            && self.manager.set_client_secret(secret.clone())
        {
            outcome = CredentialsChange::Changed;
        }
        match &new.oauth.refresh_token {
            Some(token) => {
                // The accounts server and client id are restart-only: keep the running ones.
                let credentials = Credentials::new(
                    &self.started.oauth.client_id,
                    token.clone(),
                    self.manager.credentials().accounts_url().clone(),
                );
                if self.manager.set_credentials(credentials).await {
                    outcome = CredentialsChange::Changed;
                    tracing::info!(
                        "refresh token replaced; the mint budget starts afresh for the new one"
                    );
                }
                self.refresh_token_from_config = true;
            }
            None => {
                let found = self.reread_store(new).await;
                match found {
                    Stored::Same => self.refresh_token_from_config = false,
                    Stored::Taken => {
                        self.refresh_token_from_config = false;
                        outcome = CredentialsChange::Changed;
                    }
                    Stored::Revoked => outcome = CredentialsChange::Revoked,
                    Stored::Kept => {}
                }
                stored = Some(found);
            }
        }
        (outcome, stored)
    }

    /// The refresh token comes from the token store: reads the store again, as at start, so
    /// that a `login` (or `revoke`) run beside the serving proxy takes effect.
    async fn reread_store(&self, new: &Config) -> Stored {
        let store = self.manager.store();
        let login = new.oauth.login_command();
        let state = match store.load().await {
            Ok(state) => state,
            Err(error) => {
                tracing::error!(
                    store = %store.describe(),
                    error = %crate::telemetry::chain(&error),
                    "cannot read the token store; keeping the running refresh token"
                );
                return Stored::Kept;
            }
        };
        let from_config = self.refresh_token_from_config;
        if state.refresh_token.is_none() && !matches!(new.token.store, StoreConfig::Redis { .. }) {
            if from_config {
                tracing::error!(
                    store = %store.describe(),
                    "{} was removed from the configuration, but the token store holds no \
                     refresh token: keeping the configured one; run `{login}`, then reload",
                    new.oauth.key("refresh_token"),
                );
                return Stored::Kept;
            }
            tracing::error!(
                store = %store.describe(),
                "the token store holds no refresh token any more (`revoke` ran): token refresh \
                 stopped; run `{login}`, then reload (SIGHUP)"
            );
            self.manager.credentials_revoked(format!(
                "the token store's refresh token was removed (revoked); run `{login}`"
            ));
            return Stored::Revoked;
        }
        // The client id is restart-only: the stored token must belong to the running client.
        let mut config = new.clone();
        config
            .oauth
            .client_id
            .clone_from(&self.started.oauth.client_id);
        let credentials = match crate::app::credentials(&config, &state) {
            Ok(credentials) => credentials,
            Err(error) => {
                tracing::error!(
                    store = %store.describe(),
                    error = %crate::telemetry::chain(&error),
                    "cannot use the token store's refresh token; keeping the running one"
                );
                return Stored::Kept;
            }
        };
        if credentials.minted_by() == self.manager.credentials().minted_by() {
            return Stored::Same;
        }
        self.manager.set_credentials(credentials).await;
        if from_config {
            tracing::info!(
                store = %store.describe(),
                "took the token store's refresh token in place of the configured one; the mint \
                 budget starts afresh for it"
            );
        } else {
            tracing::info!(
                store = %store.describe(),
                "took the token store's refresh token: a new `login` ran beside the serving \
                 proxy; the mint budget starts afresh for it"
            );
        }
        Stored::Taken
    }
}

// === impl SecretFiles ===

impl SecretFiles {
    fn watch_paths(config: &Config) -> Vec<PathBuf> {
        let mut paths: Vec<PathBuf> = [
            &config.oauth.client_secret_file,
            &config.oauth.refresh_token_file,
            &config.server.client_keys_file,
        ]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
        for account in &config.accounts {
            for path in [
                &account.oauth.client_secret_file,
                &account.oauth.refresh_token_file,
                &account.client_keys_file,
            ]
            .into_iter()
            .flatten()
            {
                if !paths.contains(path) {
                    paths.push(path.clone());
                }
            }
        }
        paths
    }

    fn watch(config: &Config) -> Self {
        Self::stamp(Self::watch_paths(config).iter())
    }

    fn paths(&self) -> impl Iterator<Item = &PathBuf> {
        self.stamps.iter().map(|(path, _)| path)
    }

    fn stamp<'p>(paths: impl Iterator<Item = &'p PathBuf>) -> Self {
        Self {
            stamps: paths
                .map(|path| {
                    // `metadata` follows symlinks: a secret volume's swapped `..data` link
                    // shows as a new inode.
                    let stamp = std::fs::metadata(path).ok().map(|m| Stamp {
                        len: m.len(),
                        modified: m.modified().ok(),
                        dev: m.dev(),
                        ino: m.ino(),
                    });
                    (path.clone(), stamp)
                })
                .collect(),
        }
    }
}

/// Refuses what validation alone cannot see: a reload that would take every client key away
/// from a listener that is already bound beyond loopback (`server.listen` itself changes only
/// at a restart, so validating the new file's `listen` is not enough).
fn fits_running(started: &Config, new: &Config) -> Result<(), ConfigError> {
    let remote = match &started.server.listen {
        Listen::Tcp(addr) => !addr.ip().is_loopback(),
        Listen::Unix(_) => false,
    };
    let keys = !new.server.client_keys.is_empty()
        || new.accounts.iter().any(|a| !a.client_keys.is_empty());
    if remote && !keys && !new.server.allow_remote_without_keys {
        return Err(ConfigError::Invalid {
            key: "server.client_keys".into(),
            origin: "the reloaded configuration".into(),
            message: "the running proxy listens beyond loopback: a reload cannot remove every \
                      client key (set server.allow_remote_without_keys = true if a network \
                      policy guards the port)"
                .into(),
        });
    }
    Ok(())
}

/// Compares configurations key by key, as the [`KEYS`] table renders them (secrets by
/// digest): live keys against the one last applied, restart-only keys against the one the
/// process started with (so a pending restart is mentioned on every reload until it
/// happens).
pub fn changes(started: &Config, current: &Config, new: &Config) -> Changes {
    let mut out = Changes::default();
    for key in KEYS {
        let value = key.comparable(new);
        if matches!(key.reload, Reload::Live | Reload::Both) && key.comparable(current) != value {
            out.applied.push(key.name);
        }
        if matches!(key.reload, Reload::Restart | Reload::Both) && key.comparable(started) != value
        {
            out.restart.push(key.name);
        }
    }
    if started.routes != new.routes {
        out.restart.push("routes");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::config::test_config as config;

    #[test]
    fn live_keys_are_applied_and_the_rest_wait_for_a_restart() {
        let started = config(&[]);
        let new = config(&[
            ("access.rules", vec!["GET /api/v2/**"].into()),
            ("oauth.client_secret", "rotated".into()),
            ("log.level", "debug".into()),
            ("upstream.timeout", "5s".into()),
            ("limits.max_header_bytes", 1000.into()),
        ]);
        let c = changes(&started, &started, &new);
        assert_eq!(
            c.applied,
            [
                "oauth.client_secret",
                "access.rules",
                "limits.max_header_bytes",
                "log.level"
            ]
        );
        assert_eq!(c.restart, ["upstream.timeout", "limits.max_header_bytes"]);
        // Applied once; a later reload with the same file reports only the pending restart.
        let c = changes(&started, &new, &new);
        assert!(c.applied.is_empty());
        assert_eq!(c.restart, ["upstream.timeout", "limits.max_header_bytes"]);
        assert_eq!(changes(&started, &started, &started), Changes::default());
    }

    #[test]
    fn a_remote_listener_keeps_its_client_keys() {
        let remote = config(&[
            ("server.listen", "0.0.0.0:8080".into()),
            ("server.client_keys", vec!["k"].into()),
        ]);
        // The new file says loopback (a restart-only change) and has no keys.
        let keyless = config(&[]);
        let err = fits_running(&remote, &keyless).unwrap_err();
        assert!(err.to_string().contains("server.client_keys"), "{err}");
        assert!(fits_running(&remote, &remote).is_ok());
        let allowed = config(&[("server.allow_remote_without_keys", true.into())]);
        assert!(fits_running(&remote, &allowed).is_ok());
        assert!(fits_running(&keyless, &keyless).is_ok());
    }

    #[test]
    fn secrets_are_compared_by_digest() {
        let a = config(&[("oauth.refresh_token", "1000.aaa".into())]);
        let b = config(&[("oauth.refresh_token", "1000.bbb".into())]);
        assert_eq!(changes(&a, &a, &b).applied, ["oauth.refresh_token"]);
        assert!(changes(&a, &b, &b).applied.is_empty());
    }
}
