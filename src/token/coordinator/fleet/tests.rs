//! The fleet coordinator driven through sequences of store outages, failing commands, Zoho
//! failures and callers that give up, with the promise checked after every step: no mint a
//! replica made is lost from the fleet's mint window. Each mint is in the store, or held by
//! a replica that knows it still has to hand it over (and does, at its next load).
//!
//! Replicas are [`FakeReplica`] minters over one fake Zoho, each with its own [`Fleet`]; the
//! store is [`FakeStore`], a memory store with a lease, an outage switch and commands that
//! fail on demand (before or after taking effect, as a timed-out redis command may). Time is
//! tokio's paused clock, so waits for the lease cost nothing.
//!
//! `ZMP_FLEET_SEED=<seed>` replays one sequence (printed with a failure);
//! `ZMP_FLEET_SEQUENCES=<n>` runs more of them.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Waker};
use std::time::Duration;

use futures_util::FutureExt;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;

use super::*;
use crate::config::AuthScheme;
use crate::secret::Secret;
use crate::token::store::{MemoryStore, StoredAccessToken, TokenStore};
use crate::token::{BoxFuture as TokenFuture, unix_ms};

const LIFETIME: Duration = Duration::from_secs(3600);

// === the store ===

/// A shared store in memory: a lease with a TTL, an outage switch, and failing commands.
#[derive(Default)]
struct FakeStore {
    inner: MemoryStore,
    lease: Mutex<Option<(String, Instant)>>,
    down: AtomicBool,
    /// Commands left to fail (then they work again).
    failing: AtomicU64,
    /// Writes left to fail (reads and the lease work).
    failing_writes: AtomicU64,
    /// Whether a failing write still takes effect (its answer is what is lost).
    fail_after_write: AtomicBool,
    changes: AtomicU64,
}

impl FakeStore {
    /// One command: a point where a caller may give up, then the outage or failure, if any.
    async fn command(&self, what: &'static str) -> Result<(), StoreError> {
        tokio::task::yield_now().await;
        let take = |n: &AtomicU64| {
            n.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
        };
        if self.down.load(Ordering::SeqCst)
            || take(&self.failing)
            || (what == "write" && take(&self.failing_writes))
        {
            return Err(unreachable(what));
        }
        Ok(())
    }

    /// Loses everything, as a redis restarted without persistence does.
    async fn wipe(&self) {
        let wiped = self
            .inner
            .update(Box::new(|s| *s = StoredState::default()))
            .await;
        wiped.expect("the memory store always writes");
    }

    fn mints(&self) -> BTreeSet<u64> {
        let state = self
            .inner
            .load()
            .now_or_never()
            .expect("the memory store answers at once");
        state.unwrap().mints.into_iter().collect()
    }
}

fn unreachable(what: &'static str) -> StoreError {
    StoreError::Redis {
        what,
        detail: "no answer within 2s".to_owned(),
        unreachable: true,
    }
}

impl TokenStore for FakeStore {
    fn load(&self) -> TokenFuture<'_, Result<StoredState, StoreError>> {
        Box::pin(async move {
            self.command("read").await?;
            self.inner.load().await
        })
    }

    fn update<'a>(
        &'a self,
        f: Box<dyn FnOnce(&mut StoredState) + Send + 'a>,
    ) -> TokenFuture<'a, Result<StoredState, StoreError>> {
        Box::pin(async move {
            if let Err(e) = self.command("write").await {
                if self.fail_after_write.load(Ordering::SeqCst) && !self.down.load(Ordering::SeqCst)
                {
                    self.inner.update(f).await?;
                    self.changes.fetch_add(1, Ordering::SeqCst);
                }
                return Err(e);
            }
            let state = self.inner.update(f).await?;
            self.changes.fetch_add(1, Ordering::SeqCst);
            Ok(state)
        })
    }

    fn describe(&self) -> String {
        "fake".to_owned()
    }

    fn is_persistent(&self) -> bool {
        true
    }
}

impl SharedStore for FakeStore {
    fn try_lease(&self, ttl: Duration) -> TokenFuture<'_, Result<Option<Lease>, StoreError>> {
        Box::pin(async move {
            self.command("take the lease").await?;
            let mut lease = self.lease.lock().unwrap();
            let now = Instant::now();
            if lease.as_ref().is_some_and(|(_, until)| *until > now) {
                return Ok(None);
            }
            let fence = format!("{:032x}", rand::random::<u128>());
            *lease = Some((fence.clone(), now + ttl));
            Ok(Some(Lease::new(fence)))
        })
    }

    fn release(&self, lease: Lease, linger: Duration) -> TokenFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            self.command("release the lease").await?;
            let mut held = self.lease.lock().unwrap();
            if held.as_ref().is_some_and(|(f, _)| f == lease.fence()) {
                *held = (!linger.is_zero())
                    .then(|| (lease.fence().to_owned(), Instant::now() + linger));
            }
            Ok(())
        })
    }

    fn change_count(&self) -> u64 {
        self.changes.load(Ordering::SeqCst)
    }

    fn changed(&self, seen: u64, timeout: Duration) -> TokenFuture<'_, ()> {
        Box::pin(async move {
            let deadline = Instant::now() + timeout;
            while self.change_count() == seen && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(50).min(timeout)).await;
            }
        })
    }
}

// === Zoho and the replicas ===

/// Every token Zoho minted, by its (unique) mint time.
#[derive(Default)]
struct Zoho {
    minted: Mutex<BTreeSet<u64>>,
    failing: AtomicBool,
}

/// A minter as the manager is one, reduced to what the fleet sees: a token held, the mint
/// times known, and a mint that Zoho counts and the replica records in one step.
struct FakeReplica {
    zoho: Arc<Zoho>,
    creds: Arc<Credentials>,
    held: Mutex<Option<Arc<AccessToken>>>,
    times: Mutex<BTreeSet<u64>>,
    generation: AtomicU64,
}

impl FakeReplica {
    fn new(zoho: &Arc<Zoho>) -> Self {
        Self {
            zoho: zoho.clone(),
            creds: Arc::new(Credentials::new(
                "1000.FLEET",
                Secret::from("1000.refresh".to_owned()),
                "https://accounts.zoho.com".parse().unwrap(),
            )),
            held: Mutex::new(None),
            times: Mutex::new(BTreeSet::new()),
            generation: AtomicU64::new(0),
        }
    }

    fn token(&self, secret: String, remaining: Duration) -> Option<Arc<AccessToken>> {
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        AccessToken::new(
            Secret::from(secret),
            AuthScheme::ZohoOauthtoken,
            remaining,
            LIFETIME,
            generation,
        )
        .ok()
        .map(Arc::new)
    }

    fn knows(&self, t: u64) -> bool {
        self.times.lock().unwrap().contains(&t)
    }
}

impl Minter for FakeReplica {
    fn credentials(&self) -> Arc<Credentials> {
        self.creds.clone()
    }

    fn mint(&self) -> TokenFuture<'_, Result<Arc<AccessToken>, Unavailable>> {
        Box::pin(async move {
            tokio::task::yield_now().await;
            if self.zoho.failing.load(Ordering::SeqCst) {
                return Err(Unavailable::Failing {
                    reason: "Zoho answered 500".to_owned(),
                    retry_after: Duration::from_secs(2),
                });
            }
            let t = {
                let mut minted = self.zoho.minted.lock().unwrap();
                let t = minted
                    .last()
                    .map_or(unix_ms(), |last| last + 1)
                    .max(unix_ms());
                minted.insert(t);
                t
            };
            self.times.lock().unwrap().insert(t);
            let token = self
                .token(format!("token-{t}"), LIFETIME)
                .expect("a valid header value");
            *self.held.lock().unwrap() = Some(token.clone());
            Ok(token)
        })
    }

    fn held(&self) -> Option<Arc<AccessToken>> {
        self.held.lock().unwrap().clone()
    }

    fn candidate(&self, stored: &StoredAccessToken, _trigger: Trigger) -> Option<Arc<AccessToken>> {
        let remaining = Duration::from_millis(stored.expires_at.saturating_sub(unix_ms()));
        self.token(stored.token.expose().clone(), remaining)
            .filter(|t| t.is_usable())
    }

    fn adopt(&self, token: Arc<AccessToken>) -> Arc<AccessToken> {
        *self.held.lock().unwrap() = Some(token.clone());
        token
    }

    fn merge_mints(&self, times: &[u64]) {
        self.times.lock().unwrap().extend(times);
    }

    fn mint_times(&self) -> Vec<u64> {
        self.times.lock().unwrap().iter().copied().collect()
    }

    fn margin_of(&self, token: &AccessToken) -> Duration {
        token.lifetime() / 4
    }

    fn wake(&self) {}
}

struct World {
    zoho: Arc<Zoho>,
    store: Arc<FakeStore>,
    replicas: Vec<(FakeReplica, Fleet)>,
}

impl World {
    fn new(replicas: usize) -> Self {
        let zoho = Arc::new(Zoho::default());
        let store = Arc::new(FakeStore::default());
        let replicas = (0..replicas)
            .map(|_| (FakeReplica::new(&zoho), Fleet::new(store.clone())))
            .collect();
        Self {
            zoho,
            store,
            replicas,
        }
    }

    async fn obtain(&self, r: usize, trigger: Trigger) -> Result<Arc<AccessToken>, Unavailable> {
        let (m, fleet) = &self.replicas[r];
        fleet.obtain(m, trigger).await
    }

    async fn wakeup(&self, r: usize) {
        let (m, fleet) = &self.replicas[r];
        fleet.on_wakeup(m).await;
    }

    /// Whether replica `r` knows it still owes the store something.
    fn owes(&self, r: usize) -> bool {
        let state = self.replicas[r].1.lock();
        state.alone || state.unsaved
    }

    /// The promise: every mint is in the store or owed to it by a replica that made or
    /// learnt it; the store holds no mint Zoho did not make.
    fn check(&self) -> Result<(), String> {
        let minted = self.zoho.minted.lock().unwrap().clone();
        let stored = self.store.mints();
        if let Some(t) = stored.difference(&minted).next() {
            return Err(format!("the store holds a mint Zoho never made: {t}"));
        }
        for &t in minted.difference(&stored) {
            let owed =
                (0..self.replicas.len()).any(|r| self.replicas[r].0.knows(t) && self.owes(r));
            if !owed {
                return Err(format!(
                    "mint {t} is missing from the store and no replica will hand it over \
                     (stored {stored:?}, minted {minted:?})"
                ));
            }
        }
        Ok(())
    }
}

/// Polls `fut` `polls` times, then drops it: a caller that gave up (a request whose client
/// went away, a timeout).
async fn give_up_after(fut: impl Future, polls: usize) {
    let mut fut = std::pin::pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..polls {
        if fut.as_mut().poll(&mut cx).is_ready() {
            return;
        }
        tokio::task::yield_now().await;
    }
}

// === rules, one at a time ===

#[tokio::test(start_paused = true)]
async fn a_mint_whose_save_failed_reaches_the_store_at_the_next_load() {
    let world = World::new(2);
    world.obtain(0, Trigger::Scheduled).await.unwrap();
    world.obtain(1, Trigger::Scheduled).await.unwrap();
    assert_eq!(
        world.zoho.minted.lock().unwrap().len(),
        1,
        "the second adopted"
    );
    // The save fails after taking effect (its answer was lost), then before.
    for after in [true, false] {
        world.store.fail_after_write.store(after, Ordering::SeqCst);
        world.store.failing_writes.store(1, Ordering::SeqCst);
        let token = world.obtain(0, Trigger::Manual).await.unwrap();
        let t = minted_at(&token);
        assert_eq!(world.store.mints().contains(&t), after);
        assert!(
            world.owes(0),
            "the replica knows the store may lack its mint"
        );
        assert!(
            !world.replicas[0].1.minting_alone(),
            "it did not mint alone"
        );
        world.check().unwrap();
        // The schedule's next look at the store hands it over.
        world.wakeup(0).await;
        assert!(world.store.mints().contains(&t), "handed over");
        assert!(!world.owes(0));
        world.check().unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn a_caller_that_gives_up_between_the_mint_and_the_save_loses_no_mint() {
    let world = World::new(1);
    // Each poll gets past at most one command: give up at every point of the obtain.
    for polls in 1..12 {
        let minted = world.zoho.minted.lock().unwrap().len();
        give_up_after(world.obtain(0, Trigger::Manual), polls).await;
        world.check().unwrap();
        let made = world.zoho.minted.lock().unwrap().len() > minted;
        world.wakeup(0).await;
        world.check().unwrap();
        if made {
            assert!(!world.owes(0));
        }
    }
    let minted = world.zoho.minted.lock().unwrap().clone();
    assert_eq!(world.store.mints(), minted, "every mint reached the store");
}

#[tokio::test(start_paused = true)]
async fn replicas_that_noticed_an_outage_refill_a_store_that_lost_everything() {
    // A redis restarted without persistence comes back empty.
    let world = World::new(3);
    for r in 0..3 {
        world.obtain(r, Trigger::Scheduled).await.unwrap();
    }
    world.store.down.store(true, Ordering::SeqCst);
    // Each replica notices at its schedule's look; none has to mint yet.
    for r in 0..3 {
        assert!(world.obtain(r, Trigger::Scheduled).await.is_err());
    }
    world.store.wipe().await;
    world.store.down.store(false, Ordering::SeqCst);
    world.wakeup(1).await;
    let minted = world.zoho.minted.lock().unwrap().clone();
    assert_eq!(minted.len(), 1);
    assert_eq!(world.store.mints(), minted, "the window is whole again");
    for r in 0..3 {
        world.wakeup(r).await;
        assert!(!world.owes(r) && !world.replicas[r].1.minting_alone());
    }
    world.check().unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_replica_holding_a_rejected_token_hands_back_its_mints_but_not_the_token() {
    let world = World::new(2);
    world.obtain(0, Trigger::Scheduled).await.unwrap();
    world.obtain(1, Trigger::Scheduled).await.unwrap();
    // Zoho rejected the token, and the replacement could not be had: redis is down.
    world.replicas[0].0.held().unwrap().mark_dead();
    world.store.down.store(true, Ordering::SeqCst);
    world.store.wipe().await;
    world.zoho.failing.store(true, Ordering::SeqCst);
    assert!(world.obtain(0, Trigger::Scheduled).await.is_err());
    world.store.down.store(false, Ordering::SeqCst);
    world.wakeup(0).await;
    let stored = world.store.inner.load().await.unwrap();
    assert_eq!(world.store.mints(), *world.zoho.minted.lock().unwrap());
    assert!(
        stored.access_token.is_none(),
        "a rejected token is not offered to the fleet"
    );
    assert!(!world.owes(0));
}

// === sequences ===

/// One event of a sequence.
#[derive(Clone, Copy, Debug)]
enum Step {
    /// Replica `r` obtains a token for a trigger, to the end.
    Obtain(usize, Trig),
    /// Replica `r`'s caller gives up after `polls` polls.
    GiveUp(usize, Trig, usize),
    /// Two replicas obtain at the same time (the lease decides).
    Together(usize, usize, Trig),
    /// Replica `r`'s background task looks at the store (its retry is due).
    Wakeup(usize),
    Down,
    Up,
    /// The next `n` commands fail, taking effect or not.
    Flaky(u64, bool),
    /// The next `n` writes fail, taking effect or not.
    FlakyWrites(u64, bool),
    ZohoFails,
    ZohoWorks,
    /// Time passes (seconds): tokens near their margin, leases expire.
    Advance(u64),
}

#[derive(Clone, Copy, Debug)]
enum Trig {
    Scheduled,
    Request,
    Manual,
    /// The token held was rejected.
    Rejected,
}

const REPLICAS: usize = 3;

fn draw(rng: &mut StdRng) -> Step {
    let r = rng.random_range(0..REPLICAS);
    let trig = match rng.random_range(0..10) {
        0..5 => Trig::Scheduled,
        5..7 => Trig::Request,
        7..9 => Trig::Rejected,
        _ => Trig::Manual,
    };
    match rng.random_range(0..100) {
        0..25 => Step::Obtain(r, trig),
        25..40 => Step::GiveUp(r, trig, rng.random_range(1..16)),
        40..50 => Step::Together(r, (r + rng.random_range(1..REPLICAS)) % REPLICAS, trig),
        50..62 => Step::Wakeup(r),
        62..69 => Step::Down,
        69..78 => Step::Up,
        78..83 => Step::Flaky(rng.random_range(1..4), rng.random_bool(0.5)),
        83..88 => Step::FlakyWrites(rng.random_range(1..3), rng.random_bool(0.5)),
        88..91 => Step::ZohoFails,
        91..94 => Step::ZohoWorks,
        _ => Step::Advance(rng.random_range(0..1200)),
    }
}

impl World {
    fn trigger(&self, r: usize, trig: Trig) -> Trigger {
        match trig {
            Trig::Scheduled => Trigger::Scheduled,
            Trig::Request => Trigger::Request,
            Trig::Manual => Trigger::Manual,
            Trig::Rejected => {
                Trigger::Rejected(self.replicas[r].0.held().map_or(0, |t| t.generation()))
            }
        }
    }

    async fn run(&self, step: Step) {
        let flag = |b: &AtomicBool, v| b.store(v, Ordering::SeqCst);
        match step {
            Step::Obtain(r, t) => {
                let _ = self.obtain(r, self.trigger(r, t)).await;
            }
            Step::GiveUp(r, t, polls) => {
                give_up_after(self.obtain(r, self.trigger(r, t)), polls).await
            }
            Step::Together(a, b, t) => {
                let _ = tokio::join!(
                    self.obtain(a, self.trigger(a, t)),
                    self.obtain(b, self.trigger(b, t))
                );
            }
            Step::Wakeup(r) => self.wakeup(r).await,
            Step::Down => flag(&self.store.down, true),
            Step::Up => flag(&self.store.down, false),
            Step::Flaky(n, after) => {
                self.store.failing.store(n, Ordering::SeqCst);
                flag(&self.store.fail_after_write, after);
            }
            Step::FlakyWrites(n, after) => {
                self.store.failing_writes.store(n, Ordering::SeqCst);
                flag(&self.store.fail_after_write, after);
            }
            Step::ZohoFails => flag(&self.zoho.failing, true),
            Step::ZohoWorks => flag(&self.zoho.failing, false),
            Step::Advance(s) => tokio::time::advance(Duration::from_secs(s)).await,
        }
    }
}

/// Runs the sequence of `seed`, checking the promise after every step and, once the store
/// and Zoho work again and every replica has looked at the store, that the store's window
/// holds every mint.
async fn sequence(seed: u64, steps: usize) -> Result<(), String> {
    let mut rng = StdRng::seed_from_u64(seed);
    let world = World::new(REPLICAS);
    let mut done = Vec::new();
    for _ in 0..steps {
        let step = draw(&mut rng);
        world.run(step).await;
        done.push(format!(
            "{step:?} -> minted {}, stored {}, owing {:?}, known {:?}",
            world.zoho.minted.lock().unwrap().len(),
            world.store.mints().len(),
            (0..REPLICAS).map(|r| world.owes(r)).collect::<Vec<_>>(),
            (0..REPLICAS)
                .map(|r| world.replicas[r].0.times.lock().unwrap().len())
                .collect::<Vec<_>>()
        ));
        world
            .check()
            .map_err(|e| format!("after\n{}\n: {e}", done.join("\n")))?;
    }
    for step in [Step::Up, Step::Flaky(0, false), Step::FlakyWrites(0, false)] {
        world.run(step).await;
    }
    for r in 0..REPLICAS {
        world.wakeup(r).await;
        if world.owes(r) {
            return Err(format!(
                "after {done:?}: replica {r} still owes the store once it answers"
            ));
        }
    }
    let minted = world.zoho.minted.lock().unwrap().clone();
    let stored = world.store.mints();
    if stored != minted {
        return Err(format!(
            "after {done:?}: once every replica looked at the store, it holds {stored:?} of the mints {minted:?}"
        ));
    }
    Ok(())
}

fn env(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

#[test]
fn random_sequences_lose_no_mint() {
    const STEPS: usize = 60;
    let seeds: Vec<u64> = match env("ZMP_FLEET_SEED") {
        Some(seed) => vec![seed],
        None => {
            let first = rand::random::<u64>() >> 16;
            (first..first + env("ZMP_FLEET_SEQUENCES").unwrap_or(200)).collect()
        }
    };
    for seed in seeds {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .unwrap();
        if let Err(e) = runtime.block_on(sequence(seed, STEPS)) {
            panic!(
                "{e}\nreplay: ZMP_FLEET_SEED={seed} cargo test --lib random_sequences_lose_no_mint"
            );
        }
    }
}

fn minted_at(token: &AccessToken) -> u64 {
    token.secret().expose()["token-".len()..].parse().unwrap()
}
