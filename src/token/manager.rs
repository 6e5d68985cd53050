//! The token manager: single-flight minting, the dead-token state, and the background
//! refresher.
//!
//! Every mint goes through [`TokenManager`], whoever asks for it, and every ask is a
//! [`Trigger`] that the pure [`policy`](super::policy) judges:
//! - the background task ([`TokenManager::run`]) refreshes ahead of expiry, at
//!   [`refresh_at`](super::policy::refresh_at);
//! - a request that saw its token rejected reports it ([`TokenSource::report_rejected`]):
//!   any number of such callers cause one mint, and all get its result. When no replacement
//!   can be had (budget spent, terminal error, token endpoint failing), the rejected token
//!   is **dead**: it is never handed out again, requests get 503 with `Retry-After`,
//!   `/readyz` turns 503 and `/status` says why, until a new token is held;
//! - a request that finds no token to send waits ([`TokenSource::wait`]) for the fetch in
//!   progress (or starts one) for at most `upstream.timeout`;
//! - a reload ([`TokenManager::retry_now`]: SIGHUP, a changed secret file) makes an attempt at
//!   once when something is wrong (a terminal stop, backoff, a dead token or none).
//!
//! Failures never drop the last good token, and the cache never hands out an expired or dead
//! one. The [`MintGovernor`] refuses any mint past `oauth.max_mints_per_10m`. How a mint
//! meets the token store — alone, or as one replica of a fleet sharing a redis store — is
//! the [`coordinator`](super::coordinator)'s business.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::client::{Credentials, ErrorClass, OAuthClient, TokenError};
use super::coordinator::{self, Coordinator, Minter};
use super::governor::MintGovernor;
use super::policy::{self, Decision, Gate, Held, Trigger};
use super::status::{RefreshCounts, TokenStatus, TokenStatusView};
use super::store::{StoredAccessToken, StoredState, TokenStore};
use super::{
    AccessToken, BoxFuture, EXPIRY_SKEW, Rejection, TokenCache, TokenSource, Unavailable, unix_ms,
};
use crate::config::{AuthScheme, DataCenter};
use crate::secret::Secret;

/// Lifetime assumed for a token restored from the store (Zoho's is one hour).
const RESTORED_LIFETIME: Duration = Duration::from_secs(3600);
/// Mint records of one process fall on one residue modulo this many milliseconds.
const MINT_SPREAD_MS: u64 = 1000;

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

/// The data centre the proxy works in, to check Zoho's token answers against: their
/// `api_domain` names the account's data centre.
#[derive(Clone, Debug)]
pub struct DataCentreCheck {
    /// The data centre of the Meeting host requests go to (of `upstream.url` when it is one
    /// of Zoho's, else `oauth.data_center`).
    pub in_use: DataCenter,
    /// The Meeting host requests go to (an origin), for messages.
    pub meeting_host: String,
    /// `oauth.data_center` is unset and no `login` recorded one: the US servers are used
    /// without anyone having chosen them.
    pub guessed: bool,
    /// The accounts server is the US one.
    pub us_accounts: bool,
}

/// A refresh refused at the US accounts server while nobody chose a data centre.
const GUESSED_DATA_CENTRE: &str = "oauth.data_center is unset, so the US accounts server was asked: an account of another data centre (eu, in, au, jp, ca, sa, uk, cn) needs oauth.data_center set to it, or `login` to record it";

/// Why Zoho rejects freshly minted tokens, in the usual case.
const WRONG_DATA_CENTRE: &str = "Zoho rejected a new access token before accepting any request with it, so new tokens do not help: the data centre is probably wrong (set oauth.data_center to the account's; upstream.url, when set, must be that data centre's Meeting host; `login` records the data centre), or the scopes (oauth.scopes) do not cover the Meeting API. Zoho's answers pass through until it accepts a token again (the next scheduled refresh, SIGHUP, a new login)";

/// Owns the cache's write side: single-flight minting, the dead-token state and the
/// background refresher, as the top of `src/token/manager.rs` describes.
pub struct TokenManager {
    cache: Arc<TokenCache>,
    client: OAuthClient,
    store: Arc<dyn TokenStore>,
    coordinator: Box<dyn Coordinator>,
    credentials: ArcSwap<Credentials>,
    settings: Settings,
    state: Mutex<State>,
    /// Held for the whole of an attempt: one mint at a time.
    mint_lock: tokio::sync::Mutex<()>,
    /// Wakes the background task (a reload, a terminal stop lifted, a store failure).
    wake: Notify,
    /// A reload asked for an attempt.
    reload: AtomicBool,
    /// What Zoho's token answers are checked against, when set ([`TokenManager::check_data_centre`]).
    data_centre: std::sync::OnceLock<DataCentreCheck>,
    counts: RefreshCounts,
    /// This process's residue for mint record times (see [`mint_record_time`]).
    mint_residue: u64,
    /// The manager itself, for attempts that outlive the request that started them
    /// ([`TokenManager::bounded`]).
    this: Weak<Self>,
}

/// The manager's mutable state. Never held across an `.await`.
#[derive(Debug)]
struct State {
    gate: Gate,
    governor: MintGovernor,
    last_refresh: Option<SystemTime>,
    last_error: Option<String>,
    /// Zoho rejected a replacement before accepting any request with it, and has accepted
    /// no token since.
    rejects_fresh: bool,
    /// Zoho's last token answer named another data centre than the Meeting host in use.
    data_center_mismatch: Option<String>,
    /// The refresh token changed: the next reload mints whatever the token held.
    mint_on_reload: bool,
    /// The record time of this process's last mint.
    last_own_mint: u64,
}

// === impl TokenManager ===

impl TokenManager {
    /// A manager that mints with `client` and `credentials` tokens sent as `scheme`,
    /// persisting to `store` (and coordinating with the other replicas when the store is
    /// shared). Call [`TokenManager::restore`] before use to reuse a stored token and mint
    /// history.
    pub fn new(
        scheme: AuthScheme,
        client: OAuthClient,
        store: Arc<dyn TokenStore>,
        credentials: Credentials,
        settings: Settings,
    ) -> Arc<Self> {
        let coordinator = coordinator::for_store(&store);
        Arc::new_cyclic(|this| Self {
            cache: Arc::new(TokenCache::new(scheme)),
            client,
            credentials: ArcSwap::from_pointee(credentials),
            state: Mutex::new(State {
                gate: Gate::default(),
                governor: MintGovernor::new(settings.max_mints_per_10m),
                last_refresh: None,
                last_error: None,
                rejects_fresh: false,
                data_center_mismatch: None,
                mint_on_reload: false,
                last_own_mint: 0,
            }),
            settings,
            mint_lock: tokio::sync::Mutex::new(()),
            wake: Notify::new(),
            reload: AtomicBool::new(false),
            data_centre: std::sync::OnceLock::new(),
            counts: RefreshCounts::default(),
            mint_residue: rand::random::<u64>() % MINT_SPREAD_MS,
            this: this.clone(),
            coordinator,
            store,
        })
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
        self.merge_mints(&state.mints);
        let Some(stored) = &state.access_token else {
            return;
        };
        if stored.minted_by != self.credentials.load().minted_by() {
            tracing::info!("stored access token belongs to other credentials; not reused");
            return;
        }
        let remaining = Duration::from_millis(stored.expires_at.saturating_sub(unix_ms()));
        if remaining <= EXPIRY_SKEW {
            return;
        }
        let Some(token) = self.token_from_store(stored) else {
            return;
        };
        tracing::info!(
            expires_in_s = token.remaining().as_secs(),
            token.fingerprint = token.fingerprint(),
            "reusing stored access token"
        );
        self.cache.store(Arc::new(token));
    }

    /// The effective refresh margin for a token of this lifetime (see
    /// [`policy::margin_for`]).
    fn margin_for(&self, lifetime: Duration) -> Duration {
        policy::margin_for(self.settings.margin, lifetime)
    }

    /// Whether a token with more than the refresh margin left is held, and Zoho has not
    /// rejected it (`/readyz`).
    fn is_ready(&self) -> bool {
        self.cache
            .usable()
            .is_some_and(|t| t.remaining() > self.margin_for(t.lifetime()))
    }

    /// The cached token when it may be sent: one atomic load, no await.
    fn cached(&self) -> Option<Arc<AccessToken>> {
        self.cache.usable()
    }

    /// The token for a request: the cached one, or else the result of the fetch in
    /// progress (or a new one), waiting at most `upstream.timeout`.
    ///
    /// # Errors
    /// [`Unavailable`] with the reason and when to retry.
    async fn token(&self) -> Result<Arc<AccessToken>, Unavailable> {
        if let Some(token) = self.cached() {
            return Ok(token);
        }
        let dead = self.cache.load().is_some_and(|t| t.is_dead());
        self.bounded(Trigger::Request)
            .await
            .map_err(|u| if dead { u.after_rejection() } else { u })
    }

    /// Replaces a token of `rejected_generation` that the upstream rejected. Concurrent
    /// callers that pass the same generation cause one mint and all receive its result.
    /// (The request path calls [`TokenSource::report_rejected`], which also marks the token
    /// dead when this fails.)
    ///
    /// # Errors
    /// [`Unavailable`] with the reason and when to retry.
    async fn force_refresh(
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
        self.single_flight(Trigger::Fresh).await
    }

    /// Mints a token now, whatever the schedule (`check --online`). The budget still holds.
    ///
    /// # Errors
    /// [`Unavailable`] with the reason and when to retry.
    pub async fn mint_now(&self) -> Result<Arc<AccessToken>, Unavailable> {
        self.single_flight(Trigger::Manual).await
    }

    /// A reload happened (SIGHUP, a changed secret): the background task makes an attempt
    /// at once if the token is dead or missing, attempts were held back (a terminal stop,
    /// backoff), or Zoho rejects new tokens (the reload may have fixed why). A spent mint
    /// budget still holds.
    ///
    /// A reload also ends the state in which Zoho's rejections pass through
    /// (`upstream_rejects_fresh_tokens`): the token held becomes an ordinary one, whose
    /// rejection is refreshed (or makes it dead) like any other.
    pub fn retry_now(&self) {
        if let Some(token) = self.cache.load() {
            token.clear_replacement();
        }
        self.reload.store(true, Ordering::Relaxed);
        self.wake.notify_one();
    }

    /// The background refresher: fetches the first token at once, then refreshes ahead of
    /// expiry (and attempts after reloads) until `shutdown` resolves.
    pub async fn run(self: Arc<Self>, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            // Errors are logged and recorded by the attempt; the schedule handles them.
            if self.reload.swap(false, Ordering::Relaxed) {
                // While Zoho rejects new tokens the token held is not worth keeping: the
                // reload may have fixed why, and only a new token can tell. After a new
                // refresh token, the token held is the old one's.
                let trigger = {
                    let mut state = self.lock_state();
                    let rejects_fresh = std::mem::take(&mut state.rejects_fresh);
                    if std::mem::take(&mut state.mint_on_reload) || rejects_fresh {
                        Trigger::Manual
                    } else {
                        Trigger::Reload
                    }
                };
                let _ = self.single_flight(trigger).await;
            } else if self.due() {
                let _ = self.single_flight(Trigger::Scheduled).await;
            } else if self
                .coordinator
                .wakeup()
                .is_some_and(|at| at <= Instant::now())
            {
                self.coordinator.on_wakeup(&*self).await;
            }
            let wake = self.wake.notified();
            tokio::pin!(wake);
            if self.reload.load(Ordering::Relaxed) {
                continue;
            }
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
    fn status(&self) -> TokenStatus {
        let token = self.cache.load();
        let now = Instant::now();
        let now_ms = unix_ms();
        let ready = self.is_ready();
        let next = self.next_wakeup();
        let mut state = self.lock_state();
        let dead = token.as_ref().is_some_and(|t| t.is_dead());
        let reason = match &token {
            _ if ready => None,
            Some(_) if dead => Some("rejected_by_upstream"),
            Some(t) if t.is_usable() => Some("expiring"),
            _ => Some("no_token"),
        };
        let guessed = self.guessed_data_centre();
        let hint = if let Some(mismatch) = &state.data_center_mismatch {
            Some(mismatch.clone())
        } else if state.gate.is_terminal() && guessed.is_some() {
            guessed.map(str::to_owned)
        } else if dead {
            Some(
                "Zoho rejected the access token and no new one can be minted now (see blocked_by and last_error); fix the credentials and send SIGHUP, or wait for the next attempt".to_owned(),
            )
        } else if state.rejects_fresh {
            Some(WRONG_DATA_CENTRE.to_owned())
        } else {
            None
        };
        TokenStatus {
            ready,
            reason,
            blocked_by: state.gate.blocked_by(now),
            token_expires_in_s: token.as_ref().map(|t| t.remaining().as_secs()),
            last_refresh: state
                .last_refresh
                .map(|t| humantime::format_rfc3339_seconds(t).to_string()),
            last_error: state.last_error.clone(),
            mints_in_window: state.governor.in_window(now_ms),
            mints_left: state.governor.left(now_ms),
            token_fingerprint: token.as_ref().map(|t| t.fingerprint().to_owned()),
            refresh_stopped: state.gate.is_terminal(),
            next_attempt_in_s: next.map(|at| at.saturating_duration_since(now).as_secs()),
            accounts_server: crate::config::origin(self.credentials.load().accounts_url())
                .to_owned(),
            upstream_rejects_fresh_tokens: state.rejects_fresh,
            data_center_mismatch: state.data_center_mismatch.clone(),
            hint,
            store_error: self.coordinator.store_error(),
            minting_alone: self.coordinator.minting_alone(),
        }
    }

    /// Checks every token answer's `api_domain` against `check` from now on (set once).
    pub fn check_data_centre(&self, check: DataCentreCheck) {
        let _ = self.data_centre.set(check);
    }

    /// When the US servers are used because nobody chose a data centre, what to say about a
    /// refresh refused there.
    fn guessed_data_centre(&self) -> Option<&'static str> {
        self.data_centre
            .get()
            .filter(|c| c.guessed && c.us_accounts)
            .map(|_| GUESSED_DATA_CENTRE)
    }

    /// Compares the data centre a token answer names (`api_domain`) with the one in use;
    /// logs a disagreement as an error when it is new, and keeps it for `/status`.
    fn check_api_domain(&self, api_domain: Option<&str>) {
        let Some(check) = self.data_centre.get() else {
            return;
        };
        let named = api_domain.and_then(DataCenter::from_api_domain);
        let mismatch = match named {
            Some(dc) if dc != check.in_use => Some(format!(
                "Zoho's token answer names the {dc} data centre (api_domain {}) but requests go to {}, a {} Meeting host{}: set oauth.data_center = \"{dc}\"{}",
                dc.zohoapis_url(),
                check.meeting_host,
                check.in_use,
                if check.guessed {
                    " (oauth.data_center is unset, so the US servers are used)"
                } else {
                    ""
                },
                if check.guessed {
                    String::new()
                } else {
                    format!(
                        " (and upstream.url = \"{}\" if you set it)",
                        dc.meeting_url()
                    )
                },
            )),
            // No api_domain, one of another kind, or the same data centre.
            _ => None,
        };
        let mut state = self.lock_state();
        if mismatch != state.data_center_mismatch {
            if let Some(message) = &mismatch {
                tracing::error!(
                    key = "oauth.data_center",
                    value = named.map(DataCenter::name),
                    "{message}"
                );
            }
            state.data_center_mismatch = mismatch;
        }
    }

    /// Zoho rejected `token`: replaces it, or marks it dead, or (a replacement rejected before
    /// any acceptance) says that new tokens do not help. See the [module docs](self).
    async fn rejected(&self, token: &Arc<AccessToken>) -> Rejection {
        // Only the token held counts: a request that still carried an older one replays
        // with the one held (`force_refresh` keeps it).
        let held = self.cache.generation() == token.generation();
        if held && token.is_replacement() && !token.is_accepted() {
            let mut state = self.lock_state();
            if !state.rejects_fresh {
                tracing::error!(
                    token.fingerprint = token.fingerprint(),
                    cause = WRONG_DATA_CENTRE,
                    "Zoho rejected a new access token before accepting any request with it; \
                     passing Zoho's answers through until it accepts a token again"
                );
            }
            state.rejects_fresh = true;
            return Rejection::Repeated;
        }
        tracing::info!(
            token.fingerprint = token.fingerprint(),
            "upstream rejected the access token; refreshing"
        );
        match self.force_refresh(token.generation()).await {
            Ok(fresh) => {
                // Whoever minted it (this caller, another request, the schedule, another
                // replica), it is what replaces a rejected token; one Zoho already accepted
                // stays an ordinary token.
                fresh.mark_replacement();
                Rejection::Replaced(fresh)
            }
            Err(unavailable) => {
                token.mark_dead();
                // The background task sleeps until the token's refresh time: a dead token is
                // due now (once the hold ends).
                self.wake.notify_one();
                tracing::warn!(
                    token.fingerprint = token.fingerprint(),
                    error = %unavailable,
                    retry_after_s = unavailable.retry_after().as_secs(),
                    "Zoho rejected the access token and no replacement can be had: it is not sent again"
                );
                Rejection::Dead(unavailable.after_rejection())
            }
        }
    }

    /// Zoho accepted `token` for the first time: if it had been rejecting new tokens, that
    /// state ends.
    fn first_accepted(&self, token: &AccessToken) {
        let mut state = self.lock_state();
        if std::mem::take(&mut state.rejects_fresh) {
            tracing::info!(
                token.fingerprint = token.fingerprint(),
                "Zoho accepts access tokens again"
            );
        }
    }

    // --- for the coordinators (through [`Minter`]) ---

    /// Asks Zoho for a new token unless the budget is spent, and caches it. Touches no store.
    ///
    /// # Errors
    /// The budget refusal or Zoho's failure, as callers are told.
    async fn mint(&self) -> Result<Arc<AccessToken>, Unavailable> {
        let creds = self.credentials.load_full();
        let now_ms = unix_ms();
        {
            let mut state = self.lock_state();
            if let Err(wait) = state.governor.check(now_ms) {
                let max = self.settings.max_mints_per_10m;
                let u = state.gate.budget_spent(max, wait, Instant::now());
                tracing::warn!(
                    retry_after_s = wait.as_secs(),
                    "mint budget spent; not asking Zoho"
                );
                RefreshCounts::add(&self.counts.budget);
                state.last_error = Some(u.to_string());
                return Err(u);
            }
        }
        let grant = self
            .client
            .refresh(creds.accounts_url(), creds.refresh_token())
            .await
            .map_err(|e| self.failed(e))?;
        let token = AccessToken::new(
            grant.access_token,
            self.cache.scheme(),
            grant.lifetime,
            grant.lifetime,
            self.cache.generation() + 1,
        )
        .map_err(|_| self.failed(TokenError::Malformed))?;
        self.check_api_domain(grant.api_domain.as_deref());
        let token = Arc::new(token);
        self.cache.store(token.clone());
        let resumed = {
            let mut state = self.lock_state();
            let at = mint_record_time(now_ms, self.mint_residue, state.last_own_mint);
            state.last_own_mint = at;
            state.governor.record(at);
            let resumed = state.gate.is_terminal();
            state.gate.succeeded();
            state.last_error = None;
            state.last_refresh = Some(SystemTime::now());
            RefreshCounts::add(&self.counts.ok);
            tracing::info!(
                outcome = "ok",
                expires_in_s = grant.lifetime.as_secs(),
                mints_in_window = state.governor.in_window(now_ms),
                token.fingerprint = token.fingerprint(),
                "access token refreshed"
            );
            resumed
        };
        if resumed {
            // The background task waits for a wake-up while stopped: restart its schedule
            // now that the credentials work again.
            self.wake.notify_one();
        }
        Ok(token)
    }

    /// Makes a token another replica minted this one's.
    fn adopt(&self, token: Arc<AccessToken>) -> Arc<AccessToken> {
        self.cache.store(token.clone());
        let mut state = self.lock_state();
        state.gate.succeeded();
        state.last_error = None;
        state.last_refresh = Some(SystemTime::now());
        RefreshCounts::add(&self.counts.adopted);
        tracing::info!(
            outcome = "adopted",
            expires_in_s = token.remaining().as_secs(),
            token.fingerprint = token.fingerprint(),
            "adopted the access token another replica minted"
        );
        token
    }

    /// A stored access token as one the cache may hold (the next generation), if it may
    /// still be sent.
    fn token_from_store(&self, stored: &StoredAccessToken) -> Option<AccessToken> {
        let remaining = Duration::from_millis(stored.expires_at.saturating_sub(unix_ms()));
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
            Ok(token) => Some(token).filter(AccessToken::is_usable),
            Err(_) => {
                tracing::warn!("stored access token is not a valid header value; ignored");
                None
            }
        }
    }

    /// Whether `token` satisfies `trigger` (a token another replica minted, say).
    fn satisfies(&self, token: &AccessToken, trigger: Trigger) -> bool {
        matches!(
            policy::decide(
                trigger,
                Some(self.held(token)),
                &Gate::default(),
                Instant::now()
            ),
            Decision::Keep
        )
    }

    /// Adds mint times learnt elsewhere (the store, another process).
    fn merge_mints(&self, times: &[u64]) {
        self.lock_state().governor.merge(times);
    }

    /// The mint times this process knows of.
    fn mint_times(&self) -> Vec<u64> {
        self.lock_state().governor.times()
    }

    /// Wakes the background task (the coordinator's wake-up moved).
    fn wake(&self) {
        self.wake.notify_one();
    }

    /// The refresh margin for `token` (see [`TokenManager::margin_for`]).
    fn margin_of(&self, token: &AccessToken) -> Duration {
        self.margin_for(token.lifetime())
    }

    // --- internals ---

    fn lock_state(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means a panic elsewhere; the state itself stays consistent.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// When a token should be replaced: [`refresh_at`](policy::refresh_at), minus this
    /// replica's share of the coordinator's jitter.
    fn due_at(&self, token: &AccessToken) -> Instant {
        let margin = self.margin_of(token);
        let at = policy::refresh_at(token.expires_at(), margin);
        let jitter = self.coordinator.jitter(margin);
        at.checked_sub(jitter).unwrap_or(at)
    }

    fn held(&self, token: &AccessToken) -> Held {
        Held {
            generation: token.generation(),
            usable: token.is_usable(),
            fresh: token.remaining() > self.margin_of(token),
            due: self.due_at(token) <= Instant::now(),
        }
    }

    /// When the background task should next attempt a refresh, or `None` while stopped.
    fn next_attempt(&self) -> Option<Instant> {
        let now = Instant::now();
        let due_at = self.cache.usable().map(|t| {
            let at = self.due_at(&t);
            self.coordinator.postpone(self, &t, at)
        });
        policy::next_attempt(due_at, &self.lock_state().gate, now)
    }

    /// When the background task should next wake up.
    fn next_wakeup(&self) -> Option<Instant> {
        match (self.next_attempt(), self.coordinator.wakeup()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn due(&self) -> bool {
        self.next_attempt().is_some_and(|at| at <= Instant::now())
    }

    /// An attempt for a request, waited for at most `upstream.timeout`. The attempt runs in
    /// its own task: a request that stops waiting (its client went away, the wait ran out)
    /// must not cut a token request short, since Zoho counts a mint it answered even when
    /// the answer is never read, and the token and its mint record would be lost.
    async fn bounded(&self, trigger: Trigger) -> Result<Arc<AccessToken>, Unavailable> {
        let pending = || Unavailable::Pending {
            retry_after: Duration::from_secs(1),
        };
        let Some(this) = self.this.upgrade() else {
            return Err(pending());
        };
        let attempt = tokio::spawn(async move { this.single_flight(trigger).await });
        match tokio::time::timeout(self.settings.request_wait, attempt).await {
            Ok(Ok(result)) => result,
            // The attempt panicked (a bug): the caller gets what a timeout gives.
            Ok(Err(_)) | Err(_) => Err(pending()),
        }
    }

    /// One attempt at a time; callers that queued behind one take its result when it
    /// satisfies them.
    async fn single_flight(&self, trigger: Trigger) -> Result<Arc<AccessToken>, Unavailable> {
        let _guard = self.mint_lock.lock().await;
        let current = self.cache.load();
        let held = current.as_deref().map(|t| self.held(t));
        let decision = policy::decide(trigger, held, &self.lock_state().gate, Instant::now());
        match (decision, current) {
            (Decision::Keep, Some(token)) => Ok(token),
            (Decision::Refuse(refusal), _) => Err(refusal),
            (Decision::Keep | Decision::Attempt, _) => self.coordinator.obtain(self, trigger).await,
        }
    }

    /// Records a failed attempt, schedules the next, and says what callers get meanwhile.
    fn failed(&self, error: TokenError) -> Unavailable {
        let class = error.class();
        let reason = match self.guessed_data_centre() {
            Some(guess) if class == ErrorClass::Terminal => format!("{error}; {guess}"),
            _ => error.to_string(),
        };
        let mut state = self.lock_state();
        state.last_error = Some(reason.clone());
        RefreshCounts::add(match class {
            ErrorClass::Terminal => &self.counts.terminal,
            ErrorClass::Throttled => &self.counts.throttled,
            ErrorClass::Transient => &self.counts.failed,
        });
        let u = state
            .gate
            .failed(class, reason, Instant::now(), rand::random::<f64>());
        match class {
            ErrorClass::Terminal => tracing::error!(
                outcome = "terminal",
                error = %u,
                "token refresh refused; background refresh stopped until the credentials are fixed (SIGHUP retries at once)"
            ),
            ErrorClass::Throttled | ErrorClass::Transient => {
                let outcome = if class == ErrorClass::Throttled {
                    "throttled"
                } else {
                    "failed"
                };
                let meanwhile = if self.cache.usable().is_some() {
                    "the still-valid token stays in use meanwhile"
                } else {
                    "no usable token meanwhile: requests get 503 with Retry-After"
                };
                tracing::warn!(
                    outcome,
                    error = %u,
                    retry_in_s = crate::telemetry::seconds(u.retry_after()),
                    failures = state.gate.failures,
                    "token refresh failed; retrying ({meanwhile})"
                );
            }
        }
        u
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
    /// access token came from the old refresh token (which `login` revokes, and which may be
    /// another account's): the next reload ([`TokenManager::retry_now`]) mints with the new
    /// one, and until then a rejection of the cached token is refreshed as any is. Returns
    /// whether the refresh token changed.
    pub async fn set_credentials(&self, credentials: Credentials) -> bool {
        let old = self.credentials.load_full();
        let changed = old.refresh_token() != credentials.refresh_token();
        self.credentials.store(Arc::new(credentials));
        if !changed {
            return false;
        }
        {
            let mut state = self.lock_state();
            state.governor = MintGovernor::new(self.settings.max_mints_per_10m);
            state.rejects_fresh = false;
            // The token held came from the old refresh token (`login` may have revoked it,
            // or it may belong to another account): the next reload mints with the new one,
            // and a rejection of it until then is an ordinary one.
            state.mint_on_reload = true;
        }
        if let Some(token) = self.cache.load() {
            token.clear_replacement();
        }
        let cleared = self
            .store
            .update(Box::new(|s: &mut StoredState| s.mints.clear()))
            .await;
        if let Err(e) = cleared {
            tracing::warn!(error = %e, "cannot clear the mint history in the token store");
        }
        true
    }

    /// The refresh token is gone (the token store lost it: `revoke` ran): stops attempts as
    /// a terminal error does, with `reason`, until a reload brings credentials that work.
    pub fn credentials_revoked(&self, reason: String) {
        let mut state = self.lock_state();
        state.last_error = Some(reason.clone());
        state.gate.stop(reason, Instant::now());
    }
}

impl TokenSource for TokenManager {
    fn current(&self) -> Option<Arc<AccessToken>> {
        self.cached()
    }

    fn wait(&self) -> BoxFuture<'_, Result<Arc<AccessToken>, Unavailable>> {
        Box::pin(self.token())
    }

    fn report_rejected<'a>(&'a self, token: &'a Arc<AccessToken>) -> BoxFuture<'a, Rejection> {
        Box::pin(self.rejected(token))
    }

    fn accepted(&self, token: &AccessToken) {
        self.first_accepted(token);
    }
}

/// The coordinators' view of the manager: see [`Minter`].
impl Minter for TokenManager {
    fn credentials(&self) -> Arc<Credentials> {
        TokenManager::credentials(self)
    }

    fn mint(&self) -> BoxFuture<'_, Result<Arc<AccessToken>, Unavailable>> {
        Box::pin(TokenManager::mint(self))
    }

    fn held(&self) -> Option<Arc<AccessToken>> {
        self.cache.load()
    }

    fn candidate(&self, stored: &StoredAccessToken, trigger: Trigger) -> Option<Arc<AccessToken>> {
        let token = self.token_from_store(stored)?;
        self.satisfies(&token, trigger).then(|| Arc::new(token))
    }

    fn adopt(&self, token: Arc<AccessToken>) -> Arc<AccessToken> {
        TokenManager::adopt(self, token)
    }

    fn merge_mints(&self, times: &[u64]) {
        TokenManager::merge_mints(self, times);
    }

    fn mint_times(&self) -> Vec<u64> {
        TokenManager::mint_times(self)
    }

    fn margin_of(&self, token: &AccessToken) -> Duration {
        TokenManager::margin_of(self, token)
    }

    fn wake(&self) {
        TokenManager::wake(self);
    }
}

impl TokenStatusView for TokenManager {
    fn status(&self) -> TokenStatus {
        TokenManager::status(self)
    }

    fn is_ready(&self) -> bool {
        TokenManager::is_ready(self)
    }

    fn refresh_counts(&self) -> &RefreshCounts {
        &self.counts
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
}
