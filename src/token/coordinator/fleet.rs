//! Fleets: replicas sharing a store (`token.store = "redis"`) behave as one client of Zoho.
//!
//! A replica that needs a token first loads the shared one and adopts it, without minting,
//! when the same client and refresh token minted it and it satisfies the caller (for the
//! schedule: it is not due yet). Otherwise it takes the store's lease: if another replica
//! holds it, it waits for that replica's token (notified through the store, and polling)
//! and adopts it; if it gets the lease, it loads again (another replica may have finished
//! just before), and only then mints, counting the fleet's mint window from the store, saves
//! the token (which notifies the others) and releases the lease. After a failed mint the
//! lease is kept for the backoff, so the whole fleet backs off. The schedule gets a small
//! per-replica jitter so that replicas do not all look at once; the replica with the
//! earliest schedule normally mints and the others adopt its token.
//!
//! A replica that cannot reach the store keeps serving its valid token, retries the store
//! with backoff (up to [`STORE_RETRY_MAX`]), and mints on its own only when the store is
//! still unreachable once its token is about to enter the refresh margin (or when it has no
//! usable token at all), counted against its own copy of the mint window. It says so in the
//! log and in `/status` (`store_error`, `minting_alone`), and writes its token and mint
//! times to the store when the store answers again. So does any replica that saw the store
//! fail, or whose save after a mint failed or was cut short: no mint is lost from the
//! fleet's window (a restarted redis may have lost it; `tests.rs` drives this through
//! random sequences).

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

use super::{Coordinator, Minter, save};
use crate::token::client::Credentials;
use crate::token::policy::{Trigger, backoff};
use crate::token::store::{Lease, SharedStore, StoreError, StoredState};
use crate::token::{AccessToken, BoxFuture, Unavailable, expires_at_ms};

/// How long one replica may mint under the lease (a token request may take 30 s); the lease
/// of a replica that died mid-mint expires after this.
pub(crate) const LEASE_TTL: Duration = Duration::from_secs(35);
/// How often a replica waiting for another's token looks again, should a notification be
/// lost.
pub(crate) const LEASE_POLL: Duration = Duration::from_millis(500);
/// The longest wait between attempts to reach a store that is down.
pub(crate) const STORE_RETRY_MAX: Duration = Duration::from_secs(30);
/// The largest schedule jitter.
const JITTER_MAX: Duration = Duration::from_secs(30);

/// The fleet coordinator: see the [module docs](self).
pub(crate) struct Fleet {
    store: Arc<dyn SharedStore>,
    /// This replica's fixed share of the schedule jitter, in `[0, 1)`.
    jitter: f64,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// The store's last error while it cannot be used.
    store_error: Option<String>,
    /// Failed store calls in a row.
    store_failures: u32,
    /// When to try the store again while it is failing.
    store_retry_at: Option<Instant>,
    /// Minted alone during an outage; the token and mint times have yet to reach the store.
    alone: bool,
    /// The store may lack this replica's token or mint times: a mint's save failed or was
    /// interrupted, or the store failed (a restarted redis may have lost them). The next
    /// load that succeeds hands them over ([`Fleet::resync`]).
    unsaved: bool,
}

/// A lease on the shared store, released when dropped (should the mint be cancelled).
struct Held {
    store: Arc<dyn SharedStore>,
    lease: Option<Lease>,
}

// === impl Fleet ===

impl Fleet {
    /// A coordinator over `store`.
    pub(crate) fn new(store: Arc<dyn SharedStore>) -> Self {
        Self {
            store,
            jitter: rand::random::<f64>(),
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn obtain_shared(
        &self,
        m: &dyn Minter,
        trigger: Trigger,
    ) -> Result<Arc<AccessToken>, Unavailable> {
        let creds = m.credentials();
        let give_up = Instant::now() + LEASE_TTL;
        let mut waiting = false;
        loop {
            let seen = self.store.change_count();
            let shared = match self.load_shared(m).await {
                Ok(shared) => shared,
                Err(reason) => return self.store_down(m, trigger, &reason).await,
            };
            if let Some(token) = self.adoptable(m, &shared, trigger, &creds) {
                return Ok(m.adopt(token));
            }
            let lease = match self.store.try_lease(LEASE_TTL).await {
                Ok(lease) => lease,
                Err(e) => {
                    let reason = self.store_failed(m, &e);
                    return self.store_down(m, trigger, &reason).await;
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
            let shared = match self.load_shared(m).await {
                Ok(shared) => shared,
                Err(reason) => {
                    drop(held);
                    return self.store_down(m, trigger, &reason).await;
                }
            };
            if let Some(token) = self.adoptable(m, &shared, trigger, &creds) {
                held.release(Duration::ZERO).await;
                return Ok(m.adopt(token));
            }
            // Set until the store has the new token and every mint time this replica knows,
            // so that a save that fails, or a caller that gives up between the mint and the
            // save, leaves them to the next load instead of losing them from the fleet's
            // window. A failed mint leaves it set: it may have been set for an earlier
            // failure, and costs one write at the next load.
            self.lock().unsaved = true;
            let result = m.mint().await;
            if let Ok(token) = &result {
                match save(&*self.store, Some(token), &creds, m.mint_times()).await {
                    Ok(_) => self.lock().unsaved = false,
                    Err(e) => {
                        self.store_failed(m, &e);
                    }
                }
            }
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

    /// The store cannot be used. Keeps the current token and lets the schedule retry the
    /// store, unless this replica must mint alone: it holds no usable token (or the one it
    /// holds was rejected), its token is about to enter the refresh margin, or a person
    /// asked (`check --online`).
    async fn store_down(
        &self,
        m: &dyn Minter,
        trigger: Trigger,
        reason: &str,
    ) -> Result<Arc<AccessToken>, Unavailable> {
        let alone = match (m.held().filter(|t| t.is_usable()), trigger) {
            (_, Trigger::Manual) | (None, _) => true,
            (Some(t), Trigger::Rejected(generation)) if t.generation() == generation => true,
            (Some(t), _) => Instant::now() >= alone_at(m, &t),
        };
        if !alone {
            let retry_after = self
                .lock()
                .store_retry_at
                .map_or(Duration::from_secs(1), |at| {
                    at.saturating_duration_since(Instant::now())
                });
            return Err(Unavailable::Pending { retry_after });
        }
        if !self.lock().alone {
            tracing::warn!(
                error = %reason,
                "shared token store unreachable and this replica's token is about to need replacing (or it has none): minting on this replica alone, counted against its own copy of the mint window"
            );
        }
        let result = m.mint().await;
        if result.is_ok() {
            // Handed to the store when it answers again (`load_shared`).
            self.lock().alone = true;
        }
        result
    }

    /// Loads the shared state and learns its mint times. The first success after a failure
    /// says so, and hands the store the token and mint times this replica kept meanwhile.
    async fn load_shared(&self, m: &dyn Minter) -> Result<StoredState, String> {
        match self.store.load().await {
            Ok(shared) => {
                m.merge_mints(&shared.mints);
                let resync = {
                    let mut state = self.lock();
                    state.store_failures = 0;
                    state.store_retry_at = None;
                    if let Some(error) = state.store_error.take() {
                        tracing::info!(previous_error = %error, "shared token store reachable again");
                    }
                    state.alone || state.unsaved
                };
                if resync {
                    self.resync(m).await;
                }
                Ok(shared)
            }
            Err(e) => Err(self.store_failed(m, &e)),
        }
    }

    /// Gives the store the token and mint times of a replica that minted alone, or whose
    /// save failed. A token the store already has a newer one of is not written (see the
    /// store), nor one that may not be sent (Zoho rejected it, or it expired): others would
    /// adopt it. Mint times are added to the ones it has.
    async fn resync(&self, m: &dyn Minter) {
        let token = m.held().filter(|t| t.is_usable());
        let creds = m.credentials();
        match save(&*self.store, token.as_deref(), &creds, m.mint_times()).await {
            Ok(_) => {
                let mut state = self.lock();
                state.alone = false;
                state.unsaved = false;
                drop(state);
                tracing::info!(
                    "handed the shared token store the token and mint times kept while it was unreachable"
                );
            }
            Err(e) => {
                self.store_failed(m, &e);
            }
        }
    }

    /// Records a store failure and when to try again; returns the reason.
    fn store_failed(&self, m: &dyn Minter, error: &StoreError) -> String {
        let reason = crate::telemetry::chain(error);
        let mut state = self.lock();
        state.store_failures = state.store_failures.saturating_add(1);
        let delay = backoff(state.store_failures, rand::random::<f64>()).min(STORE_RETRY_MAX);
        state.store_retry_at = Some(Instant::now() + delay);
        let first = state.store_error.is_none();
        state.store_error = Some(reason.clone());
        state.unsaved = true;
        drop(state);
        if first {
            tracing::warn!(
                error = %reason,
                retry_in_s = crate::telemetry::seconds(delay),
                "shared token store unreachable; serving the current token while it is valid and retrying"
            );
            // The background task may be asleep until the next refresh: let it retry.
            m.wake();
        } else {
            tracing::debug!(error = %reason, retry_in_s = crate::telemetry::seconds(delay), "shared token store still unreachable");
        }
        reason
    }

    /// The shared token, if this replica should use it rather than mint for `trigger`: the
    /// same client and refresh token minted it, it is not the token held (nor older), and it
    /// satisfies the caller.
    fn adoptable(
        &self,
        m: &dyn Minter,
        shared: &StoredState,
        trigger: Trigger,
        creds: &Credentials,
    ) -> Option<Arc<AccessToken>> {
        let stored = shared.access_token.as_ref()?;
        if stored.minted_by != creds.minted_by() || trigger == Trigger::Manual {
            return None;
        }
        if let Some(current) = m.held()
            && (current.secret().expose() == stored.token.expose()
                || stored.expires_at <= expires_at_ms(&current))
        {
            return None;
        }
        m.candidate(stored, trigger)
    }
}

impl Coordinator for Fleet {
    fn obtain<'a>(
        &'a self,
        minter: &'a dyn Minter,
        trigger: Trigger,
    ) -> BoxFuture<'a, Result<Arc<AccessToken>, Unavailable>> {
        Box::pin(self.obtain_shared(minter, trigger))
    }

    /// A store that is failing is tried again with backoff, but never past the moment this
    /// replica has to mint alone.
    fn postpone(&self, minter: &dyn Minter, token: &AccessToken, at: Instant) -> Instant {
        match self.lock().store_retry_at {
            Some(retry) => at.max(retry.min(alone_at(minter, token))),
            None => at,
        }
    }

    fn jitter(&self, margin: Duration) -> Duration {
        (margin / 5).min(JITTER_MAX).mul_f64(self.jitter)
    }

    fn wakeup(&self) -> Option<Instant> {
        self.lock().store_retry_at
    }

    fn on_wakeup<'a>(&'a self, minter: &'a dyn Minter) -> BoxFuture<'a, ()> {
        // Look again, and hand the store what was kept meanwhile.
        Box::pin(async move {
            let _ = self.load_shared(minter).await;
        })
    }

    fn store_error(&self) -> Option<String> {
        self.lock().store_error.clone()
    }

    fn minting_alone(&self) -> bool {
        self.lock().alone
    }
}

/// When a replica that cannot reach the store mints alone: halfway through the lead
/// [`refresh_at`](crate::token::policy::refresh_at) keeps before the margin, so that the new
/// token arrives before readiness would drop.
fn alone_at(m: &dyn Minter, token: &AccessToken) -> Instant {
    let margin = m.margin_of(token);
    let lead = (margin / 10).min(Duration::from_secs(30));
    let expires = token.expires_at();
    expires.checked_sub(margin + lead / 2).unwrap_or(expires)
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

#[cfg(test)]
mod tests;
