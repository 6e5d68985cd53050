//! The token store: what must survive a restart.
//!
//! Zoho allows only 10 access-token mints per 10 minutes per refresh token, and a refresh
//! token is only obtained by an interactive `login`. So the proxy persists the refresh token
//! and the accounts server it belongs to (refreshes and revocation must go back there), the
//! current access token with its absolute expiry (a restart reuses it instead of minting),
//! and the times of recent mints (the mint governor must count mints made before a restart,
//! or by a concurrent `token` command).
//!
//! Every backend implements the small [`TokenStore`] trait. It is async and works on the whole
//! state with a read-modify-write under the store's lock ([`TokenStore::update`]), so that a
//! shared remote backend (redis, for fleets) fits the same shape as the local file.
//!
//! [`FileStore`] keeps one pretty-printed JSON file (mode 0600, with a `"version"` field). It
//! is replaced atomically (temp file in the same directory, `fsync`, `rename`, `fsync` of the
//! directory), so a reader sees either the old or the new state, never a torn one. `update`
//! holds an exclusive advisory lock on a sibling `<file>.lock` so that two processes (`serve`
//! and a `token` command) never lose each other's mints. A corrupt file is reported, never
//! overwritten. [`MemoryStore`] keeps the state in the process, for tests and for deployments
//! that accept minting again after every restart.
//!
//! [`redis::RedisStore`] is shared by the replicas of a fleet, so that they behave as one
//! client of Zoho: it keeps the current access token and the mint window (never a refresh
//! token), and adds what a shared store needs on top of the trait's load and update: a
//! lease that lets one replica mint at a time ([`TokenStore::try_lease`]) and a way to wait
//! for another replica's token ([`TokenStore::changed`]). The local backends keep the
//! trait's default methods, which grant the lease at once and never notify.

mod file;
mod memory;
mod redis;

pub use file::FileStore;
pub use memory::MemoryStore;
pub use redis::RedisStore;

use std::ffi::OsString;
use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::secret::Secret;

/// The on-disk format version this build reads and writes.
pub(super) const FORMAT_VERSION: u64 = 1;

/// Everything the store holds. `Default` is the empty store.
///
/// `Debug` does not show secrets: the [`Secret`] fields redact themselves.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StoredState {
    /// The refresh token obtained by `login`, if any.
    pub refresh_token: Option<StoredRefreshToken>,
    /// The most recently minted access token, if any.
    pub access_token: Option<StoredAccessToken>,
    /// Unix times in milliseconds of recent successful mints, oldest first (the governor prunes).
    pub mints: Vec<u64>,
}

/// A refresh token and the credentials and server it belongs to.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredRefreshToken {
    /// The refresh token itself.
    pub token: Secret<String>,
    /// The accounts server that issued it, e.g. `https://accounts.zoho.eu`: where refreshes
    /// and revocation must go.
    pub accounts_server: String,
    /// The OAuth client it was issued to.
    pub client_id: String,
    /// The account's data centre (`us`, `eu`, …) as the login redirect's `location` (or its
    /// accounts server) named it; `None` in stores written before it was recorded.
    pub data_center: Option<String>,
    /// The scopes granted.
    pub scopes: Vec<String>,
    /// When it was obtained, in unix milliseconds.
    pub obtained_at: u64,
}

/// An access token with its absolute expiry.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredAccessToken {
    /// The access token itself.
    pub token: Secret<String>,
    /// When it expires, in unix milliseconds.
    pub expires_at: u64,
    /// The accounts server that minted it.
    pub accounts_server: String,
    /// Identifies the refresh token + client that minted it (e.g. a SHA-256 hex prefix,
    /// computed by the caller), so a stored access token is only reused with the credentials
    /// that made it.
    pub minted_by: String,
    /// Its whole lifetime as minted, where the backend keeps it (redis does; the file format
    /// does not, and a restored token is then assumed to have Zoho's one hour).
    pub lifetime: Option<Duration>,
}

/// The right to mint for a fleet sharing a store, held by one process at a time; see
/// [`TokenStore::try_lease`].
#[derive(Debug)]
pub struct Lease {
    fence: String,
}

/// Why the token store could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store exists but could not be read.
    #[error("cannot read token store {}", path.display())]
    Read {
        /// The store file.
        path: PathBuf,
        /// The underlying I/O error.
        source: io::Error,
    },
    /// The store is not valid JSON or does not have the expected shape.
    #[error("token store {} is corrupt; fix or delete it", path.display())]
    Corrupt {
        /// The store file.
        path: PathBuf,
        /// Where parsing failed (without quoting the file, which holds secrets).
        source: ParseError,
    },
    /// The store was written by a newer (or unknown) format version.
    #[error(
        "token store {} has format version {version} but this build only understands version {FORMAT_VERSION}; upgrade zoho-meeting-proxy or delete the file",
        path.display()
    )]
    UnsupportedVersion {
        /// The store file.
        path: PathBuf,
        /// The version found in the file.
        version: u64,
    },
    /// The directory that should hold the store could not be created.
    #[error("cannot create token store directory {}", path.display())]
    CreateDirectory {
        /// The directory.
        path: PathBuf,
        /// The underlying I/O error.
        source: io::Error,
    },
    /// The directory that holds the store is world-writable, so anyone could replace the file.
    #[error(
        "refusing to use token store directory {} because it is world-writable; run `chmod o-w` on it or choose another token.path",
        path.display()
    )]
    InsecureDirectory {
        /// The directory.
        path: PathBuf,
    },
    /// The store's lock file could not be opened or locked.
    #[error("cannot lock token store lock file {}", path.display())]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// The underlying I/O error.
        source: io::Error,
    },
    /// The store could not be written.
    #[error("cannot write token store {}", path.display())]
    Write {
        /// The store file.
        path: PathBuf,
        /// The underlying I/O error.
        source: io::Error,
    },
    /// The runtime shut down while a store operation was running.
    #[error("token store operation was cancelled")]
    Cancelled,
    /// The redis server could not be reached or refused a command. The detail never holds
    /// the URL or its password.
    #[error("redis token store (token.redis_url): cannot {what}: {detail}")]
    Redis {
        /// What was being done.
        what: &'static str,
        /// The client's error, with any credential removed.
        detail: String,
        /// Whether the server could not be reached (or did not answer in time), as opposed
        /// to a refusal such as a wrong password.
        unreachable: bool,
    },
}

/// Where a token store file failed to parse.
///
/// Unlike `serde_json::Error`, whose messages can quote a string value from the file, this
/// only says what kind of problem was found and where, so printing the error chain never
/// prints a secret.
#[derive(Debug, thiserror::Error)]
#[error("{kind} at line {line}, column {column}")]
pub struct ParseError {
    kind: &'static str,
    line: usize,
    column: usize,
}

/// A boxed, `Send` future, as returned by [`TokenStore`] methods.
pub(super) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One small trait for every backend.
pub trait TokenStore: Send + Sync + 'static {
    /// Reads the whole state.
    ///
    /// # Errors
    ///
    /// An absent store is `Ok(StoredState::default())`; an unreadable or corrupt one is an
    /// error.
    fn load(&self) -> BoxFuture<'_, Result<StoredState, StoreError>>;

    /// Read-modify-write under the store's lock: loads, applies `f`, writes the result
    /// atomically and returns it.
    ///
    /// # Errors
    ///
    /// If the load fails (for example, a corrupt file), `f` is not called and nothing is
    /// written: a corrupt store is never silently overwritten. If `f` panics, nothing is
    /// written either.
    fn update<'a>(
        &'a self,
        f: Box<dyn FnOnce(&mut StoredState) + Send + 'a>,
    ) -> BoxFuture<'a, Result<StoredState, StoreError>>;

    /// Returns a human-readable location for logs and `check` (a path, `memory`, ...).
    fn describe(&self) -> String;

    /// Returns whether the state survives the process. `login` refuses a non-persistent store.
    fn is_persistent(&self) -> bool;

    /// The same store as a `SharedStore` when other processes share it to coordinate
    /// minting (redis): the token manager then adopts tokens other processes minted and
    /// mints only under the lease. Local stores answer `None`.
    fn into_shared(self: Arc<Self>) -> Option<Arc<dyn SharedStore>> {
        None
    }
}

/// What a store shared by a fleet adds to [`TokenStore`]: a lease that lets one process
/// mint at a time, and notifications of tokens other processes saved. Only the redis
/// backend is shared.
pub trait SharedStore: TokenStore {
    /// Tries to take the minting lease for `ttl`; `Ok(None)` when another process holds it.
    ///
    /// # Errors
    ///
    /// When the store cannot be reached.
    fn try_lease(&self, ttl: Duration) -> BoxFuture<'_, Result<Option<Lease>, StoreError>>;

    /// Gives the lease up if it is still ours. A non-zero `linger` keeps it that much longer
    /// instead, which holds the other processes off (after a failed mint, for the backoff).
    ///
    /// # Errors
    ///
    /// When the store cannot be reached (the lease then expires by itself).
    fn release(&self, lease: Lease, linger: Duration) -> BoxFuture<'_, Result<(), StoreError>>;

    /// A number that grows whenever another process may have saved a token (a
    /// notification): read it before [`load`](TokenStore::load), then pass it to
    /// [`changed`](Self::changed) so that no notification is missed.
    fn change_count(&self) -> u64;

    /// Waits until [`change_count`](Self::change_count) passes `seen`, or for `timeout`.
    fn changed(&self, seen: u64, timeout: Duration) -> BoxFuture<'_, ()>;
}

/// Computes [`FileStore::default_path`] from the values of `XDG_STATE_HOME` and `HOME`.
///
/// As the XDG Base Directory specification requires, an empty or relative
/// `XDG_STATE_HOME` is ignored. An empty `HOME` counts as unset.
pub(crate) fn default_path_from(
    xdg_state_home: Option<OsString>,
    home: Option<OsString>,
) -> Option<PathBuf> {
    let state_dir = match xdg_state_home.map(PathBuf::from) {
        Some(xdg) if xdg.is_absolute() => xdg,
        _ => {
            let home = home.filter(|h| !h.is_empty())?;
            PathBuf::from(home).join(".local").join("state")
        }
    };
    Some(state_dir.join("zoho-meeting-proxy").join("token.json"))
}

// === impl Lease ===

impl Lease {
    /// A lease identified by `fence`, a value only its holder knows.
    pub fn new(fence: String) -> Self {
        Self { fence }
    }

    /// The fencing value.
    pub fn fence(&self) -> &str {
        &self.fence
    }
}

// === impl StoreError ===

impl StoreError {
    /// Whether the store could not be reached (a redis outage), as opposed to a store that
    /// answered with a problem.
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            StoreError::Redis {
                unreachable: true,
                ..
            }
        )
    }
}

// === impl ParseError ===

impl ParseError {
    pub(crate) fn from_json(error: &serde_json::Error) -> Self {
        use serde_json::error::Category;
        let kind = match error.classify() {
            Category::Syntax => "invalid JSON",
            Category::Eof => "unexpected end of file",
            Category::Data => "missing, unknown or mistyped field",
            Category::Io => "read error",
        };
        Self {
            kind,
            line: error.line(),
            column: error.column(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_path_prefers_xdg_state_home() {
        assert_eq!(
            default_path_from(Some("/xdg/state".into()), Some("/home/u".into())),
            Some(PathBuf::from("/xdg/state/zoho-meeting-proxy/token.json"))
        );
    }

    #[test]
    fn default_path_falls_back_to_home() {
        let expected = Some(PathBuf::from(
            "/home/u/.local/state/zoho-meeting-proxy/token.json",
        ));
        assert_eq!(default_path_from(None, Some("/home/u".into())), expected);
        // The XDG spec says to ignore empty and relative values.
        assert_eq!(
            default_path_from(Some("".into()), Some("/home/u".into())),
            expected
        );
        assert_eq!(
            default_path_from(Some("rel/state".into()), Some("/home/u".into())),
            expected
        );
    }

    #[test]
    fn default_path_is_none_without_home() {
        assert_eq!(default_path_from(None, None), None);
        assert_eq!(default_path_from(None, Some("".into())), None);
        assert_eq!(default_path_from(Some("rel".into()), None), None);
    }
}
