//! Access tokens: what the request path reads and reports, and the manager that keeps a valid
//! one in a lock-free cache.
//!
//! The request path sees only a [`TokenSource`], and reads it with one function,
//! [`TokenSource::current`]: the token to send now, or `None` when none may be sent (absent,
//! about to expire, or dead). The [`TokenManager`]'s implementation is one atomic load from an
//! [`ArcSwapOption`], which bumps the token's reference count, and a clock read: no lock, no
//! await and no allocation. The token's `Authorization` value ([`AccessToken::header`]) is
//! built once per token from shared [`Bytes`], so the proxy's clone of it only bumps another
//! reference count; it is marked sensitive, so `Debug` prints `Sensitive` and HTTP/2 never
//! indexes it. `benches/hotpath.rs` measures this read through the `Arc<dyn TokenSource>` the
//! proxy holds.
//!
//! Besides that read, the request path waits for a token when none may be sent
//! ([`TokenSource::wait`]), reports that Zoho rejected one ([`TokenSource::report_rejected`]),
//! and records that Zoho accepted one ([`record_acceptance`]). A rejection is judged by what
//! the token has done, not by how it was made: a token that Zoho accepted at least once
//! ([`AccessToken::is_accepted`]) is replaced when it is rejected, however often that happens;
//! only a replacement ([`AccessToken::is_replacement`]) rejected before any request with it
//! was accepted means new tokens cannot help. A token that Zoho rejected and that cannot be
//! replaced is *dead* ([`AccessToken::is_dead`]): it is never handed out again.
//!
//! Submodules, from the bottom up. Only [`rejection`] is public; what the rest of the crate
//! needs of the others is re-exported here.
//! - `client`: one exchange with Zoho's token endpoint ([`OAuthClient`]), and the
//!   [`Credentials`] a refresh is made with;
//! - `governor`: the mint budget (10 per 10 minutes per refresh token);
//! - `store`: what survives a restart ([`TokenStore`], with file, memory and redis backends);
//! - `policy`: the pure refresh policy — when to attempt, what a trigger may do, backoff;
//! - `coordinator`: how a mint meets the store — alone, or as one replica of a fleet; it sees
//!   the manager only as a `Minter` (mint, adopt a stored token, the mint history);
//! - `manager`: the [`TokenManager`]: single flight, the dead-token state, minting, the
//!   background refresher, and the only writer of the cache;
//! - `status`: what `/status`, `/readyz` and `/metrics` see ([`TokenStatusView`]);
//! - [`rejection`]: whether an upstream answer rejects the access token (pure: the proxy's
//!   check, and `check --online`'s).

mod client;
mod coordinator;
mod governor;
mod login;
mod manager;
mod policy;
pub mod rejection;
mod status;
mod store;

// Running a token manager (`app` builds and reloads it, `cli` asks it for tokens), and the
// OAuth client that `login` and `check --online` use on their own.
pub use self::client::{Credentials, ErrorClass, Grant, OAuthClient, TokenError, http_client};
pub use self::manager::{DataCentreCheck, Settings, TokenManager};
pub use self::policy::{TERMINAL_RETRY, THROTTLE_MIN, refresh_at};
// What `/status`, `/readyz` and `/metrics` read.
pub use self::status::{TokenStatus, TokenStatusView};
// The token store: its backends, and the records it keeps.
pub use self::store::{FileStore, MemoryStore, RedisStore, StoreError, TokenStore};
pub use self::store::{StoredAccessToken, StoredRefreshToken, StoredState};
// Keeping a login in the store, and revoking refresh tokens.
pub use self::login::{
    Login, Retired, Revocation, forget_login, retire_login, revoke_refresh_token, save_login,
};
// The token endpoint's answer parser, for the fuzz target.
pub use self::client::parse_grant;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwapOption;
use bytes::Bytes;
use http::HeaderValue;
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use crate::config::AuthScheme;
use crate::secret::Secret;

/// A token is not handed out when it has less than this left: a request needs time to reach
/// Zoho, and an expired token must never be sent upstream. Capped to a tenth of the token's
/// lifetime, so that a short-lived token is usable at all and stays usable until the
/// refresher (a quarter of the lifetime ahead) has replaced it.
pub const EXPIRY_SKEW: Duration = Duration::from_secs(5);

/// One access token, ready for the request path.
pub struct AccessToken {
    header: HeaderValue,
    secret: Secret<String>,
    expires_at: Instant,
    expires_at_wall: SystemTime,
    lifetime: Duration,
    generation: u64,
    fingerprint: String,
    /// Zoho rejected it and no replacement could be had: never sent again.
    dead: AtomicBool,
    /// Zoho answered a request with it with anything but a token rejection.
    accepted: AtomicBool,
    /// It was minted (or taken) to replace a token that Zoho rejected.
    replacement: AtomicBool,
}

/// The current access token, swapped atomically by the refresher.
struct TokenCache {
    current: ArcSwapOption<AccessToken>,
    scheme: AuthScheme,
}

// === impl AccessToken ===

impl AccessToken {
    /// Builds a token that expires `remaining` from now. `lifetime` is its whole lifetime as
    /// minted (it drives the refresh schedule).
    ///
    /// # Errors
    /// When the token holds bytes that cannot appear in a header (Zoho's never do).
    fn new(
        secret: Secret<String>,
        scheme: AuthScheme,
        remaining: Duration,
        lifetime: Duration,
        generation: u64,
    ) -> Result<Self, http::header::InvalidHeaderValue> {
        let prefix = match scheme {
            AuthScheme::ZohoOauthtoken => "Zoho-oauthtoken ",
            AuthScheme::Bearer => "Bearer ",
        };
        let mut value = Vec::with_capacity(prefix.len() + secret.expose().len());
        value.extend_from_slice(prefix.as_bytes());
        value.extend_from_slice(secret.expose().as_bytes());
        let bytes = Bytes::from(value);
        // Make the buffer shared now, so that clones on the request path never allocate.
        drop(bytes.clone());
        let mut header = HeaderValue::from_maybe_shared(bytes)?;
        header.set_sensitive(true);
        Ok(Self {
            header,
            fingerprint: fingerprint(secret.expose()),
            secret,
            expires_at: Instant::now() + remaining,
            expires_at_wall: SystemTime::now() + remaining,
            lifetime,
            generation,
            dead: AtomicBool::new(false),
            accepted: AtomicBool::new(false),
            replacement: AtomicBool::new(false),
        })
    }

    /// The prebuilt `Authorization` value (`<scheme> <token>`), marked sensitive.
    pub fn header(&self) -> &HeaderValue {
        &self.header
    }

    /// The raw token, for the `token` command and the store.
    pub fn secret(&self) -> &Secret<String> {
        &self.secret
    }

    /// When it expires (tokio clock).
    pub fn expires_at(&self) -> Instant {
        self.expires_at
    }

    /// When it expires (wall clock).
    pub fn expires_at_wall(&self) -> SystemTime {
        self.expires_at_wall
    }

    /// Time left before expiry.
    pub fn remaining(&self) -> Duration {
        self.expires_at.saturating_duration_since(Instant::now())
    }

    /// Its lifetime as minted.
    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// Increases by one with every token the cache holds; a request that saw its token
    /// rejected passes this to a forced refresh, so that only one refresh happens.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// A short SHA-256 prefix that identifies the token without revealing it.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Whether it may still be sent upstream: not dead, and more than [`EXPIRY_SKEW`] (or a
    /// tenth of its lifetime if less) left.
    pub fn is_usable(&self) -> bool {
        !self.is_dead()
            && self.expires_at.saturating_duration_since(Instant::now())
                > EXPIRY_SKEW.min(self.lifetime / 10)
    }

    /// Whether Zoho rejected it and no replacement could be had (see the [module docs](self)).
    pub fn is_dead(&self) -> bool {
        self.dead.load(Ordering::Relaxed)
    }

    /// Marks it dead: from now on it is never handed out.
    fn mark_dead(&self) {
        self.dead.store(true, Ordering::Relaxed);
    }

    /// Whether Zoho has answered a request with it with anything but a token rejection. One
    /// atomic load: the request path checks it on every answer.
    pub fn is_accepted(&self) -> bool {
        self.accepted.load(Ordering::Relaxed)
    }

    /// Records that Zoho accepted it; returns `true` for the first caller only.
    fn mark_accepted(&self) -> bool {
        !self.accepted.swap(true, Ordering::Relaxed)
    }

    /// Whether it was minted (or taken) to replace a token that Zoho rejected.
    pub fn is_replacement(&self) -> bool {
        self.replacement.load(Ordering::Relaxed)
    }

    /// Records that it replaces a token that Zoho rejected.
    fn mark_replacement(&self) {
        self.replacement.store(true, Ordering::Relaxed);
    }

    /// Makes it an ordinary token again: a reload (SIGHUP, a new `login`) may have fixed why
    /// Zoho rejects new tokens, so its rejection says nothing about the tokens minted from
    /// now on.
    fn clear_replacement(&self) {
        self.replacement.store(false, Ordering::Relaxed);
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("fingerprint", &self.fingerprint)
            .field("remaining", &self.remaining())
            .field("generation", &self.generation)
            .field("dead", &self.is_dead())
            .field("accepted", &self.is_accepted())
            .field("replacement", &self.is_replacement())
            .finish_non_exhaustive()
    }
}

// === impl TokenCache ===

impl TokenCache {
    /// An empty cache producing `Authorization: <scheme> <token>`.
    fn new(scheme: AuthScheme) -> Self {
        Self {
            current: ArcSwapOption::empty(),
            scheme,
        }
    }

    /// The header scheme tokens are built with.
    fn scheme(&self) -> AuthScheme {
        self.scheme
    }

    /// The `Authorization` value of the current token, or `None` when there is none that may
    /// be sent (absent, or about to expire). Lock-free and allocation-free.
    #[cfg(test)]
    fn current(&self) -> Option<HeaderValue> {
        let guard = self.current.load();
        match guard.as_deref() {
            Some(token) if token.is_usable() => Some(token.header.clone()),
            _ => None,
        }
    }

    /// The current token, usable or not (for status and for forced refreshes).
    fn load(&self) -> Option<Arc<AccessToken>> {
        self.current.load_full()
    }

    /// The current token if it may be sent.
    fn usable(&self) -> Option<Arc<AccessToken>> {
        self.current.load_full().filter(|t| t.is_usable())
    }

    /// The generation of the current token (0 when there is none).
    fn generation(&self) -> u64 {
        self.current
            .load()
            .as_deref()
            .map_or(0, AccessToken::generation)
    }

    /// Replaces the current token.
    fn store(&self, token: Arc<AccessToken>) {
        self.current.store(Some(token));
    }
}

impl fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCache")
            .field("current", &self.current.load().as_deref())
            .finish()
    }
}

/// A boxed, `Send` future.
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What the request path needs of tokens, and nothing more.
pub trait TokenSource: Send + Sync {
    /// The token to send now, when one is held that may be sent: one atomic load, no await.
    fn current(&self) -> Option<Arc<AccessToken>>;

    /// The token to send, waiting (at most `upstream.timeout`) for the fetch in progress or
    /// starting one.
    ///
    /// # Errors
    /// [`Unavailable`]: why no token can be had, and when to retry.
    fn wait(&self) -> BoxFuture<'_, Result<Arc<AccessToken>, Unavailable>>;

    /// Zoho rejected `token`: replaces it (one mint for every caller that reports the same
    /// token), or says why it cannot be, in which case the token is dead.
    fn report_rejected<'a>(&'a self, token: &'a Arc<AccessToken>) -> BoxFuture<'a, Rejection>;

    /// Zoho answered a request with `token` with anything but a token rejection, for the
    /// first time: the request path calls this once per token, through
    /// [`record_acceptance`].
    fn accepted(&self, token: &AccessToken);
}

/// Records that Zoho accepted `token`: one atomic load when it already had, and a call to
/// [`TokenSource::accepted`] the first time.
pub fn record_acceptance(tokens: &dyn TokenSource, token: &AccessToken) {
    if !token.is_accepted() && token.mark_accepted() {
        tokens.accepted(token);
    }
}

/// The answer to [`TokenSource::report_rejected`].
#[derive(Debug)]
pub enum Rejection {
    /// A newer token to replay with.
    Replaced(Arc<AccessToken>),
    /// No replacement can be had: the token is dead; answer 503.
    Dead(Unavailable),
    /// The rejected token was minted to replace a rejected one and Zoho rejected it before
    /// accepting any request with it: new tokens do not help (wrong data centre or scopes).
    /// Pass Zoho's answer through.
    Repeated,
}

/// Why no access token can be had right now. Every variant says when to try again.
#[derive(Clone, Debug, thiserror::Error)]
pub enum Unavailable {
    /// The first token (or a replacement) is still being fetched.
    #[error("no access token yet: one is being fetched")]
    Pending {
        /// Suggested wait.
        retry_after: Duration,
    },
    /// Refreshing is failing for a reason that may pass (network, Zoho errors, throttling).
    #[error("token refresh is failing: {reason}")]
    Failing {
        /// The last error.
        reason: String,
        /// When the next attempt is due.
        retry_after: Duration,
    },
    /// `oauth.max_mints_per_10m` mints were made in the last ten minutes.
    #[error("the access-token budget ({max} per 10 minutes) is spent")]
    Budget {
        /// The configured maximum.
        max: u32,
        /// When the oldest mint leaves the window.
        retry_after: Duration,
    },
    /// Zoho refused the credentials; someone has to fix them.
    #[error("{reason}")]
    Terminal {
        /// Zoho's refusal.
        reason: String,
        /// When a request may trigger the next attempt.
        retry_after: Duration,
    },
    /// Zoho rejected the access token held, and no replacement can be had, for `cause`.
    #[error("Zoho rejected the access token and no replacement can be had: {cause}")]
    Rejected {
        /// Why no replacement can be had.
        cause: Box<Unavailable>,
    },
}

// === impl Unavailable ===

impl Unavailable {
    /// When the caller should try again (the `Retry-After` of a 503).
    pub fn retry_after(&self) -> Duration {
        match self {
            Unavailable::Pending { retry_after }
            | Unavailable::Failing { retry_after, .. }
            | Unavailable::Budget { retry_after, .. }
            | Unavailable::Terminal { retry_after, .. } => *retry_after,
            Unavailable::Rejected { cause } => cause.retry_after(),
        }
    }

    /// The same refusal, because the token held was rejected by Zoho.
    pub fn after_rejection(self) -> Unavailable {
        match self {
            already @ Unavailable::Rejected { .. } => already,
            cause => Unavailable::Rejected {
                cause: Box::new(cause),
            },
        }
    }
}

/// Now, in Unix milliseconds.
pub fn unix_ms() -> u64 {
    unix_ms_of(SystemTime::now())
}

/// A wall-clock time in Unix milliseconds (0 before the epoch).
pub fn unix_ms_of(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A token's expiry in unix milliseconds (as the store records it).
fn expires_at_ms(token: &AccessToken) -> u64 {
    unix_ms_of(token.expires_at_wall())
}

/// A short, stable, non-reversible identifier of a secret: the first 12 hex digits of its
/// SHA-256.
pub fn fingerprint(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(remaining: u64) -> Arc<AccessToken> {
        Arc::new(
            AccessToken::new(
                Secret::from("1000.abc.def"),
                AuthScheme::ZohoOauthtoken,
                Duration::from_secs(remaining),
                Duration::from_secs(3600),
                1,
            )
            .unwrap(),
        )
    }

    #[test]
    fn header_is_prebuilt_and_sensitive() {
        let cache = TokenCache::new(AuthScheme::ZohoOauthtoken);
        assert!(cache.current().is_none());
        cache.store(token(3600));
        let h = cache.current().unwrap();
        assert_eq!(h, "Zoho-oauthtoken 1000.abc.def");
        assert!(h.is_sensitive());
        assert!(!format!("{h:?} {cache:?}").contains("1000.abc"));
    }

    #[test]
    fn bearer_scheme() {
        let t = AccessToken::new(
            Secret::from("x"),
            AuthScheme::Bearer,
            Duration::from_secs(60),
            Duration::from_secs(60),
            1,
        )
        .unwrap();
        assert_eq!(t.header(), "Bearer x");
    }

    #[tokio::test(start_paused = true)]
    async fn expired_tokens_are_never_handed_out() {
        let cache = TokenCache::new(AuthScheme::ZohoOauthtoken);
        cache.store(token(60));
        assert!(cache.current().is_some());
        tokio::time::advance(Duration::from_secs(56)).await;
        assert!(cache.current().is_none(), "within the skew of expiry");
        assert!(cache.load().is_some());
    }

    #[test]
    fn tokens_with_control_bytes_are_refused() {
        assert!(
            AccessToken::new(
                Secret::from("a\r\nb"),
                AuthScheme::Bearer,
                Duration::from_secs(1),
                Duration::from_secs(1),
                1
            )
            .is_err()
        );
    }

    #[test]
    fn dead_tokens_are_never_handed_out() {
        let cache = TokenCache::new(AuthScheme::ZohoOauthtoken);
        let t = token(3600);
        cache.store(t.clone());
        assert!(cache.usable().is_some());
        t.mark_dead();
        assert!(cache.current().is_none());
        assert!(cache.usable().is_none());
        assert!(cache.load().is_some_and(|t| t.is_dead()));
    }

    #[test]
    fn fingerprint_is_short_and_stable() {
        assert_eq!(fingerprint("abc"), "ba7816bf8f01");
    }
}
