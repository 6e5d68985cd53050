//! The token manager: one background refresher, single-flight minting, backoff, and the mint
//! budget.
//!
//! Every mint goes through [`TokenManager`], whoever asks for it:
//! - the background task ([`TokenManager::run`]) refreshes ahead of expiry, at
//!   [`refresh_at`]: `token.refresh_margin` before expiry, capped to a quarter of the
//!   lifetime so a short-lived token never causes a refresh loop;
//! - a request that saw its token rejected calls [`TokenManager::force_refresh`] with the
//!   rejected token's generation: any number of such callers cause one mint, and all get its
//!   result;
//! - a request that finds no usable token calls [`TokenManager::get`], which waits for the
//!   fetch in progress (or starts one) for at most `upstream.timeout`.
//!
//! Failures never drop the last good token, and the cache never hands out an expired one.
//! Transient failures back off exponentially with jitter from about a second up to five
//! minutes; Zoho's throttling answer waits at least a minute; a terminal error (revoked
//! refresh token, wrong client secret) stops the background task, after which a request
//! may trigger a new attempt at most every ten seconds and [`TokenManager::retry_now`]
//! (SIGHUP) one at once. The [`MintGovernor`] refuses any mint past
//! `oauth.max_mints_per_10m`, with a "retry after" answer.
//!
//! # Fleets (a shared store)
//!
//! With a shared store (`token.store = "redis"`) the replicas behave as one client of
//! Zoho. A replica that needs a token first loads the shared one and adopts it, without
//! minting, when the same client and refresh token minted it and it satisfies the caller
//! (for the schedule: it is not due yet). Otherwise it takes the store's lease: if another
//! replica holds it, it waits for that replica's token (notified through the store, and
//! polling) and adopts it; if it gets the lease, it loads again (another replica may have
//! finished just before), and only then mints, counting the fleet's mint window from the
//! store, saves the token (which notifies the others) and releases the lease. After a failed
//! mint the lease is kept for the backoff, so the whole fleet backs off. The schedule gets
//! a small per-replica jitter so that replicas do not all look at once; the replica with
//! the earliest schedule normally mints and the others adopt its token.
//!
//! A replica that cannot reach the store keeps serving its valid token, retries the store
//! with backoff (up to [`STORE_RETRY_MAX`]), and mints on its own only when the store is
//! still unreachable once its token is about to enter the refresh margin (or when it has no
//! usable token at all), counted against its own copy of the mint window. It says so in the
//! log and in [`TokenStatus::store_error`] and [`TokenStatus::minting_alone`], and writes its
//! token and mint times to the store when the store answers again.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use http::HeaderValue;
use serde::Serialize;
use tokio::sync::Notify;
use tokio::time::Instant;
use url::Url;

use super::client::{ErrorClass, OAuthClient, TokenError};
use super::governor::MintGovernor;
use super::store::{Lease, StoreError, StoredAccessToken, StoredState, TokenStore};
use super::{AccessToken, EXPIRY_SKEW, TokenCache, fingerprint};
use crate::secret::Secret;

/// First retry delay after a transient failure.
pub const BACKOFF_MIN: Duration = Duration::from_secs(1);
/// Longest retry delay.
pub const BACKOFF_MAX: Duration = Duration::from_secs(300);
/// Shortest wait after Zoho's throttling answer: hammering prolongs the block.
pub const THROTTLE_MIN: Duration = Duration::from_secs(60);
/// After a terminal error, requests may trigger a new attempt this often.
pub const TERMINAL_RETRY: Duration = Duration::from_secs(10);
/// Lifetime assumed for a token restored from the store (Zoho's is one hour).
const RESTORED_LIFETIME: Duration = Duration::from_secs(3600);
/// Shared stores: how long one replica may mint under the lease (a token request may take
/// 30 s); the lease of a replica that died mid-mint expires after this.
pub const LEASE_TTL: Duration = Duration::from_secs(35);
/// Shared stores: how often a replica waiting for another's token looks again, should a
/// notification be lost.
pub const LEASE_POLL: Duration = Duration::from_millis(500);
/// Shared stores: the longest wait between attempts to reach a store that is down.
pub const STORE_RETRY_MAX: Duration = Duration::from_secs(30);
/// Mint records of one process fall on one residue modulo this many milliseconds.
const MINT_SPREAD_MS: u64 = 1000;

/// Shared stores: the largest schedule jitter.
const JITTER_MAX: Duration = Duration::from_secs(30);

/// Tunables, from `[token]`, `[oauth]` and `[upstream]`.
#[derive(Clone, Debug)]
pub struct Settings {
    /// `token.refresh_margin`.
    pub margin: Duration,
    /// `oauth.max_mints_per_10m`.
    pub max_mints_per_10m: u32,
    /// How long a request waits for a token being fetched (`upstream.timeout`).
    pub request_wait: Duration,
}

/// The refresh token in use and the accounts server it belongs to.
pub struct Credentials {
    refresh_token: Secret<String>,
    accounts_url: Url,
    minted_by: String,
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
    #[error("the access-token budget ({max} per 10 minutes) is spent; retry after {}s", retry_after.as_secs().max(1))]
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
}

/// What `/status` shows about tokens. Never the token itself.
#[derive(Clone, Debug, Serialize)]
pub struct TokenStatus {
    /// A token with more than the refresh margin left is held.
    pub ready: bool,
    /// Seconds until the current token expires.
    pub token_expires_in_s: Option<u64>,
    /// When the last successful refresh happened (RFC 3339).
    pub last_refresh: Option<String>,
    /// The last refresh error, cleared by a success.
    pub last_error: Option<String>,
    /// Mints in the current 10-minute window.
    pub mints_in_window: u32,
    /// Mints still allowed in the window.
    pub mints_left: u32,
    /// SHA-256 prefix of the current token.
    pub token_fingerprint: Option<String>,
    /// The background refresher stopped after a terminal error.
    pub refresh_stopped: bool,
    /// Seconds until the next refresh attempt, when one is scheduled.
    pub next_attempt_in_s: Option<u64>,
    /// The accounts server tokens come from.
    pub accounts_server: String,
    /// Shared stores: why the store cannot be used right now (cleared when it answers).
    pub store_error: Option<String>,
    /// Shared stores: this replica minted on its own because the store stayed unreachable
    /// into its token's refresh margin; cleared once the store has its token and mints.
    pub minting_alone: bool,
}

/// Refresh attempts by outcome, since start.
#[derive(Debug, Default)]
pub struct RefreshCounts {
    ok: AtomicU64,
    failed: AtomicU64,
    throttled: AtomicU64,
    terminal: AtomicU64,
    budget: AtomicU64,
    adopted: AtomicU64,
}

impl RefreshCounts {
    /// `(outcome, count)` pairs: ok, failed, throttled, terminal, budget (refused by the
    /// mint governor without asking Zoho), adopted (a token another replica of a fleet
    /// minted, taken from the shared store instead of minting).
    pub fn by_outcome(&self) -> [(&'static str, u64); 6] {
        [
            ("ok", self.ok.load(Ordering::Relaxed)),
            ("failed", self.failed.load(Ordering::Relaxed)),
            ("throttled", self.throttled.load(Ordering::Relaxed)),
            ("terminal", self.terminal.load(Ordering::Relaxed)),
            ("budget", self.budget.load(Ordering::Relaxed)),
            ("adopted", self.adopted.load(Ordering::Relaxed)),
        ]
    }
}

/// Owns the cache's write side: see the [module docs](self).
pub struct TokenManager {
    counts: RefreshCounts,
    cache: Arc<TokenCache>,
    client: OAuthClient,
    store: Arc<dyn TokenStore>,
    credentials: ArcSwap<Credentials>,
    settings: Settings,
    state: Mutex<State>,
    mint_lock: tokio::sync::Mutex<()>,
    wake: Notify,
    /// Shared stores: this replica's fixed share of the schedule jitter, in `[0, 1)`.
    jitter: f64,
    /// This process's residue for mint record times (see [`mint_record_time`]).
    mint_residue: u64,
}

#[derive(Debug)]
struct State {
    governor: MintGovernor,
    failures: u32,
    /// No attempt before this (backoff, throttling, budget).
    not_before: Option<Instant>,
    /// Set while stopped after a terminal error.
    terminal: Option<String>,
    last_attempt: Option<Instant>,
    last_refresh: Option<SystemTime>,
    last_error: Option<String>,
    /// What callers are told while `not_before` holds.
    unavailable: Option<Unavailable>,
    /// Shared stores: the store's last error while it cannot be used.
    store_error: Option<String>,
    /// Shared stores: failed store calls in a row.
    store_failures: u32,
    /// Shared stores: when to try the store again while it is failing.
    store_retry_at: Option<Instant>,
    /// Shared stores: minted alone during an outage; the token and mint times have yet to
    /// reach the store.
    alone: bool,
    /// The record time of this process's last mint.
    last_own_mint: u64,
}

/// How a mint talks to the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MintMode {
    /// A store of this process alone: learn mints made by other commands first, save after.
    Local,
    /// A shared store, under its lease, just loaded: save after (which notifies the fleet).
    Leased,
    /// A shared store that cannot be reached: neither load nor save.
    Alone,
}

/// A lease on a shared store, released when dropped (should the mint be cancelled).
struct Held {
    store: Arc<dyn TokenStore>,
    lease: Option<Lease>,
}

/// Who asks for a mint: decides whether gates apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Trigger {
    /// The background schedule.
    Schedule,
    /// A request with no usable token.
    Request,
    /// A request whose token (this generation) was rejected upstream.
    Rejected(u64),
    /// The `token` command: wants more than the refresh margin left.
    Fresh,
    /// A person (`check --online`): ignores backoff and terminal state, never the budget.
    Manual,
}

// === impl Credentials ===

impl Credentials {
    /// Credentials for `client_id`'s `refresh_token` at `accounts_url`.
    pub fn new(client_id: &str, refresh_token: Secret<String>, accounts_url: Url) -> Self {
        let minted_by = fingerprint(&format!("{client_id}\n{}", refresh_token.expose()));
        Self {
            refresh_token,
            accounts_url,
            minted_by,
        }
    }

    /// The accounts server.
    pub fn accounts_url(&self) -> &Url {
        &self.accounts_url
    }

    /// The refresh token.
    pub fn refresh_token(&self) -> &Secret<String> {
        &self.refresh_token
    }

    /// Identifies client and refresh token together, without revealing either.
    pub fn minted_by(&self) -> &str {
        &self.minted_by
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("accounts_url", &self.accounts_url.as_str())
            .field("minted_by", &self.minted_by)
            .finish_non_exhaustive()
    }
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
        }
    }
}

// === impl TokenManager ===

impl TokenManager {
    /// A manager that fills `cache` using `client` and `credentials`, persisting to `store`.
    /// Call [`TokenManager::restore`] before use to reuse a stored token and mint history.
    pub fn new(
        cache: Arc<TokenCache>,
        client: OAuthClient,
        store: Arc<dyn TokenStore>,
        credentials: Credentials,
        settings: Settings,
    ) -> Arc<Self> {
        Arc::new(Self {
            cache,
            client,
            credentials: ArcSwap::from_pointee(credentials),
            state: Mutex::new(State {
                governor: MintGovernor::new(settings.max_mints_per_10m),
                failures: 0,
                not_before: None,
                terminal: None,
                last_attempt: None,
                last_refresh: None,
                last_error: None,
                unavailable: None,
                store_error: None,
                store_failures: 0,
                store_retry_at: None,
                alone: false,
                last_own_mint: 0,
            }),
            settings,
            mint_lock: tokio::sync::Mutex::new(()),
            wake: Notify::new(),
            counts: RefreshCounts::default(),
            jitter: if store.is_shared() {
                rand::random::<f64>()
            } else {
                0.0
            },
            mint_residue: rand::random::<u64>() % MINT_SPREAD_MS,
            store,
        })
    }

    /// Refresh attempts by outcome.
    pub fn refresh_counts(&self) -> &RefreshCounts {
        &self.counts
    }

    /// The cache this manager fills.
    pub fn cache(&self) -> &Arc<TokenCache> {
        &self.cache
    }

    /// The token store.
    pub fn store(&self) -> &Arc<dyn TokenStore> {
        &self.store
    }

    /// The credentials in use.
    pub fn credentials(&self) -> Arc<Credentials> {
        self.credentials.load_full()
    }

    /// Takes the mint history and a still-valid access token from a loaded store state. A
    /// stored token is reused only if the same client and refresh token minted it.
    pub fn restore(&self, state: &StoredState) {
        let creds = self.credentials.load();
        self.lock_state().governor.merge(&state.mints);
        let Some(stored) = &state.access_token else {
            return;
        };
        if stored.minted_by != creds.minted_by {
            tracing::info!("stored access token belongs to other credentials; not reused");
            return;
        }
        let remaining = Duration::from_millis(stored.expires_at.saturating_sub(unix_ms()));
        if remaining <= EXPIRY_SKEW {
            return;
        }
        let lifetime = stored
            .lifetime
            .unwrap_or_else(|| remaining.max(RESTORED_LIFETIME));
        match AccessToken::new(
            stored.token.clone(),
            self.cache.scheme(),
            remaining,
            lifetime,
            self.cache.generation() + 1,
        ) {
            Ok(token) => {
                tracing::info!(
                    expires_in_s = remaining.as_secs(),
                    token.fingerprint = token.fingerprint(),
                    "reusing stored access token"
                );
                self.cache.store(Arc::new(token));
            }
            Err(_) => tracing::warn!("stored access token is not a valid header value; ignored"),
        }
    }

    /// The effective refresh margin for a token of this lifetime: `token.refresh_margin`,
    /// capped to a quarter of the lifetime.
    pub fn margin_for(&self, lifetime: Duration) -> Duration {
        self.settings.margin.min(lifetime / 4)
    }

    /// Whether a token with more than the refresh margin left is held (`/readyz`).
    pub fn is_ready(&self) -> bool {
        self.cache
            .usable()
            .is_some_and(|t| t.remaining() > self.margin_for(t.lifetime()))
    }

    /// The `Authorization` value for a request: the cached one, or else the result of the
    /// fetch in progress (or a new one), waiting at most `upstream.timeout`.
    ///
    /// # Errors
    /// [`Unavailable`] with the reason and when to retry.
    pub async fn get(&self) -> Result<HeaderValue, Unavailable> {
        if let Some(header) = self.cache.current() {
            return Ok(header);
        }
        self.bounded(Trigger::Request)
            .await
            .map(|t| t.header().clone())
    }

    /// The current usable token for a request (lock-free and allocation-free when one is
    /// cached), or else the result of the fetch in progress, waiting at most
    /// `upstream.timeout`.
    ///
    /// # Errors
    /// [`Unavailable`] with the reason and when to retry.
    pub async fn token(&self) -> Result<Arc<AccessToken>, Unavailable> {
        if let Some(token) = self.cached() {
            return Ok(token);
        }
        self.bounded(Trigger::Request).await
    }

    /// The cached token when it is still usable: one atomic load, no await (the request
    /// path's fast path; [`TokenManager::token`] is the slow one).
    pub fn cached(&self) -> Option<Arc<AccessToken>> {
        self.cache.usable()
    }

    /// Replaces a token that the upstream rejected. Concurrent callers that pass the same
    /// `rejected_generation` cause one mint and all receive its result.
    ///
    /// # Errors
    /// [`Unavailable`] with the reason and when to retry.
    pub async fn force_refresh(
        &self,
        rejected_generation: u64,
    ) -> Result<Arc<AccessToken>, Unavailable> {
        self.bounded(Trigger::Rejected(rejected_generation)).await
    }

    /// A token with more than the refresh margin left, minting one if needed (the `token`
    /// command).
    ///
    /// # Errors
    /// [`Unavailable`] with the reason and when to retry.
    pub async fn fresh(&self) -> Result<Arc<AccessToken>, Unavailable> {
        match self.cache.usable() {
            Some(t) if t.remaining() > self.margin_for(t.lifetime()) => Ok(t),
            _ => self.single_flight(Trigger::Fresh).await,
        }
    }

    /// Mints a token now, whatever the schedule (`check --online`). The budget still holds.
    ///
    /// # Errors
    /// [`Unavailable`] with the reason and when to retry.
    pub async fn mint_now(&self) -> Result<Arc<AccessToken>, Unavailable> {
        self.single_flight(Trigger::Manual).await
    }

    /// Clears backoff and a terminal stop, and wakes the background task to try at once
    /// (SIGHUP). The mint budget still holds.
    pub fn retry_now(&self) {
        {
            let mut state = self.lock_state();
            state.terminal = None;
            state.not_before = None;
            state.unavailable = None;
            state.failures = 0;
        }
        self.wake.notify_one();
    }

    /// The background refresher: fetches the first token at once, then refreshes ahead of
    /// expiry until `shutdown` resolves.
    pub async fn run(self: Arc<Self>, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            if self.due() {
                // Errors are logged and recorded by `mint`; the schedule below handles them.
                let _ = self.single_flight(Trigger::Schedule).await;
            } else if self.store_retry_due() {
                // A shared store that failed: look again, and hand it what was kept meanwhile.
                let _ = self.load_shared().await;
            }
            let wake = self.wake.notified();
            tokio::pin!(wake);
            match self.next_wakeup() {
                Some(at) => tokio::select! {
                    _ = &mut shutdown => return,
                    _ = &mut wake => {}
                    _ = tokio::time::sleep_until(at) => {}
                },
                None => tokio::select! {
                    _ = &mut shutdown => return,
                    _ = &mut wake => {}
                },
            }
        }
    }

    /// The status shown by `/status` and `status`.
    pub fn status(&self) -> TokenStatus {
        let token = self.cache.load();
        let now = Instant::now();
        let now_ms = unix_ms();
        let mut state = self.lock_state();
        TokenStatus {
            ready: self.is_ready(),
            token_expires_in_s: token.as_ref().map(|t| t.remaining().as_secs()),
            last_refresh: state
                .last_refresh
                .map(|t| humantime::format_rfc3339_seconds(t).to_string()),
            last_error: state.last_error.clone(),
            mints_in_window: state.governor.in_window(now_ms),
            mints_left: state.governor.left(now_ms),
            token_fingerprint: token.as_ref().map(|t| t.fingerprint().to_owned()),
            refresh_stopped: state.terminal.is_some(),
            next_attempt_in_s: self
                .next_wakeup_locked(&state)
                .map(|at| at.saturating_duration_since(now).as_secs()),
            accounts_server: crate::config::origin(&self.credentials.load().accounts_url)
                .to_owned(),
            store_error: state.store_error.clone(),
            minting_alone: state.alone,
        }
    }

    // --- internals ---

    fn lock_state(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means a panic elsewhere; the state itself stays consistent.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// When the background task should next look, or `None` to wait for a wake-up.
    fn next_wakeup(&self) -> Option<Instant> {
        let state = self.lock_state();
        self.next_wakeup_locked(&state)
    }

    fn next_wakeup_locked(&self, state: &State) -> Option<Instant> {
        match (self.refresh_due_locked(state), state.store_retry_at) {
            (Some(due), Some(retry)) => Some(due.min(retry)),
            (due, retry) => due.or(retry),
        }
    }

    /// When the schedule next refreshes, or `None` while stopped after a terminal error.
    fn refresh_due_locked(&self, state: &State) -> Option<Instant> {
        if state.terminal.is_some() {
            return None;
        }
        let token = self.cache.load();
        let due = match &token {
            Some(t) => self.refresh_due_at(t),
            None => Instant::now(),
        };
        let mut at = match state.not_before {
            Some(nb) => nb.max(due),
            None => due,
        };
        // A shared store that is failing is tried again with backoff, but never past the
        // moment this replica has to mint alone.
        if let (Some(retry), Some(t)) = (state.store_retry_at, token.filter(|t| t.is_usable())) {
            at = at.max(retry.min(self.alone_at(&t)));
        }
        Some(at)
    }

    /// When a token should be replaced: [`refresh_at`], minus this replica's jitter when the
    /// store is shared.
    fn refresh_due_at(&self, token: &AccessToken) -> Instant {
        let margin = self.margin_for(token.lifetime());
        let at = refresh_at(token.expires_at(), margin);
        let jitter = (margin / 5).min(JITTER_MAX).mul_f64(self.jitter);
        at.checked_sub(jitter).unwrap_or(at)
    }

    /// Shared stores: when a replica that cannot reach the store mints alone: halfway
    /// through the lead [`refresh_at`] keeps before the margin, so that the new token
    /// arrives before readiness would drop.
    fn alone_at(&self, token: &AccessToken) -> Instant {
        let margin = self.margin_for(token.lifetime());
        let lead = (margin / 10).min(Duration::from_secs(30));
        let expires = token.expires_at();
        expires.checked_sub(margin + lead / 2).unwrap_or(expires)
    }

    fn due(&self) -> bool {
        let state = self.lock_state();
        self.refresh_due_locked(&state)
            .is_some_and(|at| at <= Instant::now())
    }

    fn store_retry_due(&self) -> bool {
        self.lock_state()
            .store_retry_at
            .is_some_and(|at| at <= Instant::now())
    }

    async fn bounded(&self, trigger: Trigger) -> Result<Arc<AccessToken>, Unavailable> {
        match tokio::time::timeout(self.settings.request_wait, self.single_flight(trigger)).await {
            Ok(result) => result,
            Err(_) => Err(Unavailable::Pending {
                retry_after: Duration::from_secs(1),
            }),
        }
    }

    /// One mint at a time; callers that queued behind a mint take its result.
    async fn single_flight(&self, trigger: Trigger) -> Result<Arc<AccessToken>, Unavailable> {
        let _guard = self.mint_lock.lock().await;
        if let Some(current) = self.cache.usable() {
            let satisfied = match trigger {
                Trigger::Request => true,
                Trigger::Rejected(generation) => current.generation() != generation,
                Trigger::Fresh => current.remaining() > self.margin_for(current.lifetime()),
                Trigger::Schedule => !self.due(),
                Trigger::Manual => false,
            };
            if satisfied {
                return Ok(current);
            }
        }
        self.gate(trigger)?;
        if self.store.is_shared() {
            self.mint_shared(trigger).await
        } else {
            self.mint(MintMode::Local).await
        }
    }

    /// Refuses an attempt during backoff, throttling, a spent budget or a terminal stop.
    fn gate(&self, trigger: Trigger) -> Result<(), Unavailable> {
        let now = Instant::now();
        let mut state = self.lock_state();
        if trigger == Trigger::Manual {
            return Ok(());
        }
        if let Some(reason) = &state.terminal {
            let next = state.last_attempt.map_or(now, |t| t + TERMINAL_RETRY);
            if trigger == Trigger::Schedule || next > now {
                return Err(Unavailable::Terminal {
                    reason: reason.clone(),
                    retry_after: next
                        .saturating_duration_since(now)
                        .max(Duration::from_secs(1)),
                });
            }
            return Ok(());
        }
        if let Some(nb) = state.not_before
            && nb > now
        {
            let retry_after = nb - now;
            return Err(match state.unavailable.take() {
                Some(u) => {
                    let u = with_retry_after(u, retry_after);
                    state.unavailable = Some(u.clone());
                    u
                }
                None => Unavailable::Pending { retry_after },
            });
        }
        Ok(())
    }

    async fn mint(&self, mode: MintMode) -> Result<Arc<AccessToken>, Unavailable> {
        if mode == MintMode::Local {
            self.sync_mints().await;
        }
        let creds = self.credentials.load_full();
        let now_ms = unix_ms();
        {
            let mut state = self.lock_state();
            if let Err(wait) = state.governor.check(now_ms) {
                let u = Unavailable::Budget {
                    max: self.settings.max_mints_per_10m,
                    retry_after: wait,
                };
                tracing::warn!(
                    retry_after_s = wait.as_secs(),
                    "mint budget spent; not asking Zoho"
                );
                self.counts.budget.fetch_add(1, Ordering::Relaxed);
                state.not_before = Some(Instant::now() + wait);
                state.unavailable = Some(u.clone());
                return Err(u);
            }
            state.last_attempt = Some(Instant::now());
        }
        let result = self
            .client
            .refresh(&creds.accounts_url, &creds.refresh_token)
            .await;
        match result {
            Ok(grant) => {
                let token = AccessToken::new(
                    grant.access_token,
                    self.cache.scheme(),
                    grant.lifetime,
                    grant.lifetime,
                    self.cache.generation() + 1,
                )
                .map_err(|_| self.failed(TokenError::Malformed))?;
                let token = Arc::new(token);
                self.cache.store(token.clone());
                let (mints, resumed) = {
                    let mut state = self.lock_state();
                    let at = mint_record_time(now_ms, self.mint_residue, state.last_own_mint);
                    state.last_own_mint = at;
                    state.governor.record(at);
                    state.failures = 0;
                    state.not_before = None;
                    let resumed = state.terminal.take().is_some();
                    state.unavailable = None;
                    state.last_error = None;
                    state.last_refresh = Some(SystemTime::now());
                    self.counts.ok.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(
                        outcome = "ok",
                        expires_in_s = grant.lifetime.as_secs(),
                        mints_in_window = state.governor.in_window(now_ms),
                        token.fingerprint = token.fingerprint(),
                        "access token refreshed"
                    );
                    (state.governor.times(), resumed)
                };
                if resumed {
                    // The background task waits for a wake-up while stopped: restart its
                    // schedule now that the credentials work again.
                    self.wake.notify_one();
                }
                match mode {
                    MintMode::Local => self.persist(&token, &creds, mints).await,
                    MintMode::Leased => {
                        if let Err(e) = self.save(Some(&token), &creds, mints).await {
                            self.store_failed(&e);
                        }
                    }
                    // Handed to the store when it answers again (`load_shared`).
                    MintMode::Alone => {}
                }
                Ok(token)
            }
            Err(e) => Err(self.failed(e)),
        }
    }

    /// A mint for a fleet: adopt the shared token, or mint under the lease, or wait for the
    /// replica that holds it. See the [module docs](self).
    async fn mint_shared(&self, trigger: Trigger) -> Result<Arc<AccessToken>, Unavailable> {
        let creds = self.credentials.load_full();
        let give_up = Instant::now() + LEASE_TTL;
        let mut waiting = false;
        loop {
            let seen = self.store.change_count();
            let shared = match self.load_shared().await {
                Ok(shared) => shared,
                Err(reason) => return self.store_down(trigger, &reason).await,
            };
            if let Some(token) = self.adoptable(&shared, trigger, &creds) {
                return Ok(self.adopt(token));
            }
            let lease = match self.store.try_lease(LEASE_TTL).await {
                Ok(lease) => lease,
                Err(e) => {
                    let reason = self.store_failed(&e);
                    return self.store_down(trigger, &reason).await;
                }
            };
            let Some(lease) = lease else {
                let now = Instant::now();
                if now >= give_up {
                    return Err(Unavailable::Pending {
                        retry_after: Duration::from_secs(1),
                    });
                }
                if !waiting {
                    tracing::debug!("another replica holds the lease; waiting for its token");
                    waiting = true;
                }
                self.store
                    .changed(seen, LEASE_POLL.min(give_up - now))
                    .await;
                continue;
            };
            let held = Held {
                store: self.store.clone(),
                lease: Some(lease),
            };
            // Another replica may have saved its token just before the lease came free.
            let shared = match self.load_shared().await {
                Ok(shared) => shared,
                Err(reason) => {
                    drop(held);
                    return self.store_down(trigger, &reason).await;
                }
            };
            if let Some(token) = self.adoptable(&shared, trigger, &creds) {
                held.release(Duration::ZERO).await;
                return Ok(self.adopt(token));
            }
            let result = self.mint(MintMode::Leased).await;
            // After a failure the lease is kept for the backoff: the fleet backs off too.
            let linger = match &result {
                Err(Unavailable::Failing { retry_after, .. }) => {
                    retry_after.saturating_sub(LEASE_POLL)
                }
                _ => Duration::ZERO,
            };
            held.release(linger).await;
            return result;
        }
    }

    /// Shared stores: the store cannot be used. Keeps the current token and lets the
    /// schedule retry the store, unless this replica must mint alone: it holds no usable
    /// token (or the one it holds was rejected), its token is about to enter the refresh
    /// margin, or a person asked (`check --online`).
    async fn store_down(
        &self,
        trigger: Trigger,
        reason: &str,
    ) -> Result<Arc<AccessToken>, Unavailable> {
        let alone = match (self.cache.usable(), trigger) {
            (_, Trigger::Manual) | (None, _) => true,
            (Some(t), Trigger::Rejected(generation)) if t.generation() == generation => true,
            (Some(t), _) => Instant::now() >= self.alone_at(&t),
        };
        if !alone {
            let retry_after = self.lock_state().store_retry_at.map_or(BACKOFF_MIN, |at| {
                at.saturating_duration_since(Instant::now())
            });
            return Err(Unavailable::Pending { retry_after });
        }
        if !self.lock_state().alone {
            tracing::warn!(
                error = %reason,
                "shared token store unreachable and this replica's token is about to need replacing (or it has none): minting on this replica alone, counted against its own copy of the mint window"
            );
        }
        let result = self.mint(MintMode::Alone).await;
        if result.is_ok() {
            self.lock_state().alone = true;
        }
        result
    }

    /// Shared stores: loads the shared state and learns its mint times. The first success
    /// after a failure says so, and hands the store the token and mint times this replica
    /// kept meanwhile.
    async fn load_shared(&self) -> Result<StoredState, String> {
        match self.store.load().await {
            Ok(shared) => {
                let resync = {
                    let mut state = self.lock_state();
                    state.governor.merge(&shared.mints);
                    state.store_failures = 0;
                    state.store_retry_at = None;
                    if let Some(error) = state.store_error.take() {
                        tracing::info!(previous_error = %error, "shared token store reachable again");
                    }
                    state.alone
                };
                if resync {
                    self.resync().await;
                }
                Ok(shared)
            }
            Err(e) => Err(self.store_failed(&e)),
        }
    }

    /// Shared stores: gives the store the token and mint times of a replica that minted
    /// alone. A token the store already has a newer one of is not written (see the store).
    async fn resync(&self) {
        let token = self.cache.load();
        let creds = self.credentials.load_full();
        let mints = self.lock_state().governor.times();
        match self.save(token.as_deref(), &creds, mints).await {
            Ok(_) => {
                self.lock_state().alone = false;
                tracing::info!(
                    "handed the shared token store the token and mint times kept while it was unreachable"
                );
            }
            Err(e) => {
                self.store_failed(&e);
            }
        }
    }

    /// Shared stores: records a store failure and when to try again; returns the reason.
    fn store_failed(&self, error: &StoreError) -> String {
        let reason = crate::telemetry::chain(error);
        let mut state = self.lock_state();
        state.store_failures = state.store_failures.saturating_add(1);
        let delay = backoff(state.store_failures, rand::random::<f64>()).min(STORE_RETRY_MAX);
        state.store_retry_at = Some(Instant::now() + delay);
        let first = state.store_error.is_none();
        state.store_error = Some(reason.clone());
        drop(state);
        if first {
            tracing::warn!(
                error = %reason,
                retry_in_s = delay.as_secs_f32(),
                "shared token store unreachable; serving the current token while it is valid and retrying"
            );
            // The background task may be asleep until the next refresh: let it retry.
            self.wake.notify_one();
        } else {
            tracing::debug!(error = %reason, retry_in_s = delay.as_secs_f32(), "shared token store still unreachable");
        }
        reason
    }

    /// Shared stores: the shared token, if this replica should use it rather than mint for
    /// `trigger`: the same client and refresh token minted it, it is not the token held
    /// (nor older), and it satisfies the caller.
    fn adoptable(
        &self,
        shared: &StoredState,
        trigger: Trigger,
        creds: &Credentials,
    ) -> Option<Arc<AccessToken>> {
        let stored = shared.access_token.as_ref()?;
        if stored.minted_by != creds.minted_by || trigger == Trigger::Manual {
            return None;
        }
        if let Some(current) = self.cache.load()
            && (current.secret().expose() == stored.token.expose()
                || stored.expires_at <= unix_ms_of(current.expires_at_wall()))
        {
            return None;
        }
        let remaining = Duration::from_millis(stored.expires_at.saturating_sub(unix_ms()));
        let lifetime = stored
            .lifetime
            .unwrap_or_else(|| remaining.max(RESTORED_LIFETIME));
        let token = AccessToken::new(
            stored.token.clone(),
            self.cache.scheme(),
            remaining,
            lifetime,
            self.cache.generation() + 1,
        )
        .ok()
        .filter(AccessToken::is_usable)?;
        let satisfies = match trigger {
            Trigger::Request | Trigger::Rejected(_) => true,
            Trigger::Schedule => self.refresh_due_at(&token) > Instant::now(),
            Trigger::Fresh => token.remaining() > self.margin_for(lifetime),
            Trigger::Manual => false,
        };
        satisfies.then(|| Arc::new(token))
    }

    /// Shared stores: makes another replica's token this replica's.
    fn adopt(&self, token: Arc<AccessToken>) -> Arc<AccessToken> {
        self.cache.store(token.clone());
        let mut state = self.lock_state();
        state.failures = 0;
        state.not_before = None;
        state.unavailable = None;
        state.last_error = None;
        state.last_refresh = Some(SystemTime::now());
        self.counts.adopted.fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            outcome = "adopted",
            expires_in_s = token.remaining().as_secs(),
            token.fingerprint = token.fingerprint(),
            "adopted the access token another replica minted"
        );
        token
    }

    /// Records a failed attempt, schedules the next, and says what callers get meanwhile.
    fn failed(&self, error: TokenError) -> Unavailable {
        let reason = error.to_string();
        let mut state = self.lock_state();
        state.last_error = Some(reason.clone());
        let class = error.class();
        let counter = match class {
            ErrorClass::Terminal => &self.counts.terminal,
            ErrorClass::Throttled => &self.counts.throttled,
            ErrorClass::Transient => &self.counts.failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        if class == ErrorClass::Terminal {
            tracing::error!(
                outcome = "terminal",
                error = %reason,
                "token refresh refused; background refresh stopped until the credentials are fixed (SIGHUP retries at once)"
            );
            state.terminal = Some(reason.clone());
            state.not_before = None;
            return Unavailable::Terminal {
                reason,
                retry_after: TERMINAL_RETRY,
            };
        }
        state.failures = state.failures.saturating_add(1);
        let mut delay = backoff(state.failures, rand::random::<f64>());
        if class == ErrorClass::Throttled {
            delay = delay.max(THROTTLE_MIN);
        }
        tracing::warn!(
            outcome = if class == ErrorClass::Throttled { "throttled" } else { "failed" },
            error = %reason,
            retry_in_s = delay.as_secs_f32(),
            failures = state.failures,
            "token refresh failed; keeping the current token while it is valid"
        );
        let u = Unavailable::Failing {
            reason,
            retry_after: delay,
        };
        state.not_before = Some(Instant::now() + delay);
        state.unavailable = Some(u.clone());
        u
    }

    /// Learns mints made by other processes sharing the store.
    async fn sync_mints(&self) {
        match self.store.load().await {
            Ok(stored) => self.lock_state().governor.merge(&stored.mints),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the token store; using the mint history in memory")
            }
        }
    }

    async fn persist(&self, token: &AccessToken, creds: &Credentials, mints: Vec<u64>) {
        if let Err(e) = self.save(Some(token), creds, mints).await {
            tracing::warn!(error = %crate::telemetry::chain(&e), "cannot save the access token to the store; it stays in memory");
        }
    }

    /// Saves `token` (if any) and adds `mints` to the store's mint history.
    async fn save(
        &self,
        token: Option<&AccessToken>,
        creds: &Credentials,
        mints: Vec<u64>,
    ) -> Result<StoredState, StoreError> {
        let stored = token.map(|token| StoredAccessToken {
            token: token.secret().clone(),
            expires_at: unix_ms_of(token.expires_at_wall()),
            accounts_server: crate::config::origin(&creds.accounts_url).to_owned(),
            minted_by: creds.minted_by.clone(),
            lifetime: Some(token.lifetime()),
        });
        self.store
            .update(Box::new(move |s: &mut StoredState| {
                let mut all = std::mem::take(&mut s.mints);
                all.extend(mints);
                all.sort_unstable();
                all.dedup();
                let horizon = unix_ms().saturating_sub(super::governor::WINDOW.as_millis() as u64);
                all.retain(|&t| t > horizon);
                s.mints = all;
                if let Some(stored) = stored {
                    s.access_token = Some(stored);
                }
            }))
            .await
    }
}

// === impl TokenManager: hot reload (SIGHUP, secret files) ===

impl TokenManager {
    /// Uses `secret` as the client secret for the mints that start from now on; a mint in
    /// flight finishes with the old one. Returns whether it changed.
    pub fn set_client_secret(&self, secret: Secret<String>) -> bool {
        self.client.set_client_secret(secret)
    }

    /// Uses `credentials` for the mints that start from now on. When the refresh token
    /// changed, the mint history is cleared here and in the store: Zoho's budget is per
    /// refresh token, so a new one starts with a full budget (as after `login`). The cached
    /// access token stays in use until it expires or the upstream rejects it. Returns whether
    /// the refresh token changed.
    pub async fn set_credentials(&self, credentials: Credentials) -> bool {
        let old = self.credentials.load_full();
        let changed = old.refresh_token != credentials.refresh_token;
        self.credentials.store(Arc::new(credentials));
        if !changed {
            return false;
        }
        self.lock_state().governor = MintGovernor::new(self.settings.max_mints_per_10m);
        let cleared = self
            .store
            .update(Box::new(|s: &mut StoredState| s.mints.clear()))
            .await;
        if let Err(e) = cleared {
            tracing::warn!(error = %e, "cannot clear the mint history in the token store");
        }
        true
    }

    /// The refresh token in use is gone (a `revoke` emptied the token store): stops as after
    /// a terminal token-endpoint error, so that the background refresher stops and requests
    /// that need a mint get the terminal 503 with `reason`, until the next successful mint.
    pub fn credentials_revoked(&self, reason: String) {
        let mut state = self.lock_state();
        state.last_error = Some(reason.clone());
        state.terminal = Some(reason);
        state.not_before = None;
    }
}

impl std::fmt::Debug for TokenManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenManager")
            .field("cache", &self.cache)
            .field("credentials", &self.credentials.load())
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// When to refresh a token expiring at `expires_at`: `margin` before expiry, plus a lead of
/// a tenth of the margin (at most 30 s) so that the new token arrives before readiness, which
/// requires more than `margin` left, would drop.
pub fn refresh_at(expires_at: Instant, margin: Duration) -> Instant {
    let lead = (margin / 10).min(Duration::from_secs(30));
    expires_at.checked_sub(margin + lead).unwrap_or(expires_at)
}

/// The time a mint is recorded at: `now_ms` rounded up to this process's `residue` modulo
/// [`MINT_SPREAD_MS`], and later than its `previous` record. Mint records are unix
/// milliseconds, merged by value across the fleet; replicas that mint in the same
/// millisecond (they do, when the shared store is down and each mints alone) would become one
/// record and the fleet would undercount its mints. With distinct residues their records
/// always differ. A record is at most [`MINT_SPREAD_MS`] late, so the budget counts it that
/// much longer: on the safe side.
fn mint_record_time(now_ms: u64, residue: u64, previous: u64) -> u64 {
    let residue = residue % MINT_SPREAD_MS;
    let floor = now_ms - now_ms % MINT_SPREAD_MS + residue;
    let at = if floor < now_ms {
        floor + MINT_SPREAD_MS
    } else {
        floor
    };
    if at > previous {
        at
    } else {
        // Same residue, first spread step past `previous`.
        at + (previous - at) / MINT_SPREAD_MS * MINT_SPREAD_MS + MINT_SPREAD_MS
    }
}

/// Delay before retry number `failures` (1-based): 1 s doubling to 5 min, with "equal
/// jitter" (between half and all of it) from `unit`, a random number in `[0, 1)`.
pub fn backoff(failures: u32, unit: f64) -> Duration {
    let exp = failures.saturating_sub(1).min(16);
    let base = BACKOFF_MIN.saturating_mul(1 << exp).min(BACKOFF_MAX);
    base.mul_f64(0.5 + 0.5 * unit.clamp(0.0, 1.0))
}

// === impl Held ===

impl Held {
    /// Releases the lease (or keeps it `linger` longer). A store that cannot be reached lets
    /// it expire by itself.
    async fn release(mut self, linger: Duration) {
        if let Some(lease) = self.lease.take()
            && let Err(e) = self.store.release(lease, linger).await
        {
            tracing::debug!(error = %crate::telemetry::chain(&e), "cannot release the lease; it expires by itself");
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(lease) = self.lease.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let store = self.store.clone();
            runtime.spawn(async move {
                let _ = store.release(lease, Duration::ZERO).await;
            });
        }
    }
}

fn with_retry_after(u: Unavailable, retry_after: Duration) -> Unavailable {
    match u {
        Unavailable::Pending { .. } => Unavailable::Pending { retry_after },
        Unavailable::Failing { reason, .. } => Unavailable::Failing {
            reason,
            retry_after,
        },
        Unavailable::Budget { max, .. } => Unavailable::Budget { max, retry_after },
        Unavailable::Terminal { reason, .. } => Unavailable::Terminal {
            reason,
            retry_after,
        },
    }
}

/// Now, in Unix milliseconds.
pub fn unix_ms() -> u64 {
    unix_ms_of(SystemTime::now())
}

fn unix_ms_of(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mint_records_of_different_processes_never_coincide() {
        let now = 1_795_891_303_085;
        let records: Vec<u64> = [0, 1, 999]
            .iter()
            .map(|&residue| mint_record_time(now, residue, 0))
            .collect();
        for (&at, residue) in records.iter().zip([0, 1, 999]) {
            assert!(at >= now && at < now + MINT_SPREAD_MS, "{at}");
            assert_eq!(at % MINT_SPREAD_MS, residue);
        }
        assert_eq!(records, [now - 85 + 1000, now - 85 + 1001, now - 85 + 999]);
        // The same millisecond in three processes: three records.
        let mut distinct = records.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), 3);
    }

    #[test]
    fn mint_records_of_one_process_always_increase() {
        let residue = 400;
        let mut previous = 0;
        for now in [10_000, 10_001, 10_500, 10_401, 12_000, 12_399, 12_400] {
            let at = mint_record_time(now, residue, previous);
            assert!(at > previous && at >= now, "{now} -> {at} after {previous}");
            assert_eq!(at % MINT_SPREAD_MS, residue);
            previous = at;
        }
        assert_eq!(mint_record_time(10_400, residue, 0), 10_400);
    }

    #[test]
    fn backoff_doubles_from_about_a_second_to_five_minutes() {
        assert_eq!(backoff(1, 1.0), Duration::from_secs(1));
        assert_eq!(backoff(1, 0.0), Duration::from_millis(500));
        assert_eq!(backoff(2, 1.0), Duration::from_secs(2));
        assert_eq!(backoff(5, 1.0), Duration::from_secs(16));
        assert_eq!(backoff(9, 1.0), Duration::from_secs(256));
        assert_eq!(backoff(10, 1.0), BACKOFF_MAX);
        assert_eq!(backoff(u32::MAX, 1.0), BACKOFF_MAX);
        for n in 1..40 {
            for u in [0.0, 0.3, 0.999] {
                let d = backoff(n, u);
                assert!(
                    d >= Duration::from_millis(500) && d <= BACKOFF_MAX,
                    "{n} {u} {d:?}"
                );
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn refresh_schedule_is_margin_plus_a_small_lead() {
        let now = Instant::now();
        let exp = now + Duration::from_secs(3600);
        assert_eq!(
            refresh_at(exp, Duration::from_secs(300)),
            exp - Duration::from_secs(330)
        );
        assert_eq!(
            refresh_at(exp, Duration::from_secs(20)),
            exp - Duration::from_secs(22)
        );
        assert_eq!(refresh_at(exp, Duration::ZERO), exp);
    }
}
