//! How a mint meets the token store: the seam between the manager and the store.
//!
//! A [`Coordinator`] obtains a token once the [policy](super::policy) allowed an attempt. It
//! sees the manager only as a [`Minter`]: it can have a token minted, adopt one taken from
//! the store, and read and add to the mint history; single flight, the budget and the
//! dead-token state stay the manager's.
//! [`Local`] serves a store of this process alone (file or memory): it learns the mints that
//! other commands (`token`) recorded in the store, mints, and saves the token and the mint
//! times. [`fleet::Fleet`] serves a store shared by replicas (redis): they behave as one
//! client of Zoho, adopting each other's tokens and minting one at a time under the store's
//! lease, and a replica keeps serving through a store outage. [`for_store`] picks one.

mod fleet;

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::client::Credentials;
use super::policy::Trigger;
use super::store::{StoreError, StoredAccessToken, StoredState, TokenStore};
use super::{AccessToken, BoxFuture, Unavailable, expires_at_ms, unix_ms};

/// What a [`Coordinator`] may ask of the manager, and nothing more.
pub(crate) trait Minter: Send + Sync {
    /// The credentials in use: one obtain works with one snapshot.
    fn credentials(&self) -> Arc<Credentials>;

    /// Asks Zoho for a new token unless the mint budget is spent, and caches it. Touches no
    /// store.
    ///
    /// # Errors
    /// The budget refusal or Zoho's failure, as callers are told.
    fn mint(&self) -> BoxFuture<'_, Result<Arc<AccessToken>, Unavailable>>;

    /// The token held, usable or not.
    fn held(&self) -> Option<Arc<AccessToken>>;

    /// A stored access token (another replica's, say) as the next one the cache may hold, if
    /// it may still be sent and satisfies `trigger`.
    fn candidate(&self, stored: &StoredAccessToken, trigger: Trigger) -> Option<Arc<AccessToken>>;

    /// Makes a token taken from the store (another replica minted it) the one held.
    fn adopt(&self, token: Arc<AccessToken>) -> Arc<AccessToken>;

    /// Adds mint times learnt elsewhere (the store, another process) to the mint history.
    fn merge_mints(&self, times: &[u64]);

    /// The mint times this process knows of.
    fn mint_times(&self) -> Vec<u64>;

    /// The refresh margin for `token`.
    fn margin_of(&self, token: &AccessToken) -> Duration;

    /// Wakes the background task (the coordinator's wake-up moved).
    fn wake(&self);
}

/// Obtains tokens for the manager; see the [module docs](self).
pub(crate) trait Coordinator: Send + Sync {
    /// A token for `trigger`, which the policy allowed to attempt: minted with
    /// [`Minter::mint`], or taken from the store.
    ///
    /// # Errors
    /// What callers are told when none can be had.
    fn obtain<'a>(
        &'a self,
        minter: &'a dyn Minter,
        trigger: Trigger,
    ) -> BoxFuture<'a, Result<Arc<AccessToken>, Unavailable>>;

    /// The schedule's refresh time `at` for `token`, possibly postponed (a fleet replica
    /// that cannot reach its store waits for it, up to a point).
    fn postpone(&self, minter: &dyn Minter, token: &AccessToken, at: Instant) -> Instant {
        let _ = (minter, token);
        at
    }

    /// How much earlier than the schedule this process refreshes, for a token whose margin
    /// is `margin` (fleet replicas spread out).
    fn jitter(&self, margin: Duration) -> Duration {
        let _ = margin;
        Duration::ZERO
    }

    /// When the background task should call [`Coordinator::on_wakeup`], if ever.
    fn wakeup(&self) -> Option<Instant> {
        None
    }

    /// The wake-up asked for by [`Coordinator::wakeup`] is due.
    fn on_wakeup<'a>(&'a self, minter: &'a dyn Minter) -> BoxFuture<'a, ()> {
        let _ = minter;
        Box::pin(async {})
    }

    /// Why the store cannot be used right now, for `/status`.
    fn store_error(&self) -> Option<String> {
        None
    }

    /// Whether this replica minted on its own during a store outage, for `/status`.
    fn minting_alone(&self) -> bool {
        false
    }
}

/// A store of this process alone: see the [module docs](self).
pub(crate) struct Local {
    store: Arc<dyn TokenStore>,
}

/// The coordinator for `store`: [`fleet::Fleet`] when it is shared, else [`Local`].
pub(crate) fn for_store(store: &Arc<dyn TokenStore>) -> Box<dyn Coordinator> {
    match store.clone().into_shared() {
        Some(shared) => Box::new(fleet::Fleet::new(shared)),
        None => Box::new(Local {
            store: store.clone(),
        }),
    }
}

// === impl Local ===

impl Coordinator for Local {
    fn obtain<'a>(
        &'a self,
        minter: &'a dyn Minter,
        trigger: Trigger,
    ) -> BoxFuture<'a, Result<Arc<AccessToken>, Unavailable>> {
        let _ = trigger;
        Box::pin(async move {
            // Learn mints made by other commands sharing the store first.
            match self.store.load().await {
                Ok(stored) => minter.merge_mints(&stored.mints),
                Err(e) => {
                    tracing::warn!(error = %crate::telemetry::chain(&e), "cannot read the token store; using the mint history in memory");
                }
            }
            let creds = minter.credentials();
            let token = minter.mint().await?;
            if let Err(e) = save(&*self.store, Some(&token), &creds, minter.mint_times()).await {
                tracing::warn!(error = %crate::telemetry::chain(&e), "cannot save the access token to the store; it stays in memory");
            }
            Ok(token)
        })
    }
}

/// Saves `token` (if any) and adds `mints` to the store's mint history (pruned to the
/// window).
///
/// # Errors
/// The store's.
pub(crate) async fn save(
    store: &dyn TokenStore,
    token: Option<&AccessToken>,
    creds: &Credentials,
    mints: Vec<u64>,
) -> Result<StoredState, StoreError> {
    let stored = token.map(|token| StoredAccessToken {
        token: token.secret().clone(),
        expires_at: expires_at_ms(token),
        accounts_server: crate::config::origin(creds.accounts_url()).to_owned(),
        minted_by: creds.minted_by().to_owned(),
        lifetime: Some(token.lifetime()),
    });
    store
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
