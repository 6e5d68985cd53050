//! Access tokens: the lock-free cache the request path reads, and everything that fills it.
//!
//! The request path calls [`TokenCache::current`] (or [`TokenCache::load`]) for every request.
//! That is one atomic load from an [`ArcSwapOption`] and a clock read: no lock, and no
//! allocation, because the `Authorization` header value is built once per token and cloning a
//! `HeaderValue` built from shared [`Bytes`] only bumps a reference count. The value is marked
//! sensitive, so `Debug` prints `Sensitive` and HTTP/2 never indexes it.
//!
//! Submodules: [`client`] talks to Zoho's token endpoint, [`governor`] keeps the mint
//! budget, [`store`] persists tokens, [`refresh`] runs the background refresher.

pub mod client;
pub mod governor;
pub mod refresh;
pub mod store;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

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
}

/// The current access token, swapped atomically by the refresher.
pub struct TokenCache {
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
    pub fn new(
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

    /// Whether it may still be sent upstream (more than [`EXPIRY_SKEW`], or a tenth of its
    /// lifetime if less, left).
    pub fn is_usable(&self) -> bool {
        self.expires_at.saturating_duration_since(Instant::now())
            > EXPIRY_SKEW.min(self.lifetime / 10)
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("fingerprint", &self.fingerprint)
            .field("remaining", &self.remaining())
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

// === impl TokenCache ===

impl TokenCache {
    /// An empty cache producing `Authorization: <scheme> <token>`.
    pub fn new(scheme: AuthScheme) -> Self {
        Self {
            current: ArcSwapOption::empty(),
            scheme,
        }
    }

    /// The header scheme tokens are built with.
    pub fn scheme(&self) -> AuthScheme {
        self.scheme
    }

    /// The `Authorization` value of the current token, or `None` when there is none that may
    /// be sent (absent, or about to expire). Lock-free and allocation-free.
    pub fn current(&self) -> Option<HeaderValue> {
        let guard = self.current.load();
        match guard.as_deref() {
            Some(token) if token.is_usable() => Some(token.header.clone()),
            _ => None,
        }
    }

    /// The current token, usable or not (for status and for forced refreshes).
    pub fn load(&self) -> Option<Arc<AccessToken>> {
        self.current.load_full()
    }

    /// The current token if it may be sent.
    pub fn usable(&self) -> Option<Arc<AccessToken>> {
        self.current.load_full().filter(|t| t.is_usable())
    }

    /// The generation of the current token (0 when there is none).
    pub fn generation(&self) -> u64 {
        self.current
            .load()
            .as_deref()
            .map_or(0, AccessToken::generation)
    }

    /// Replaces the current token.
    pub fn store(&self, token: Arc<AccessToken>) {
        self.current.store(Some(token));
    }

    /// Forgets the current token (after revocation).
    pub fn clear(&self) {
        self.current.store(None);
    }
}

impl fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCache")
            .field("current", &self.current.load().as_deref())
            .finish()
    }
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
    fn fingerprint_is_short_and_stable() {
        assert_eq!(fingerprint("abc"), "ba7816bf8f01");
    }
}
