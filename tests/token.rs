//! The token manager against the accounts emulator, with real sockets and real time: the
//! background schedule, single flight, backoff, terminal errors, throttling, the mint budget,
//! the token store, expiry, TLS and redaction.
//!
//! Lifetimes are short (2–4 s) so that refreshes happen within a test; assertions are on
//! counts and generous bounds, never on exact timings.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use url::Url;
use zoho_emulator::accounts::{AccountsControl, AccountsEmulator, Failure};
use zoho_meeting_proxy::config::{AuthScheme, Config};
use zoho_meeting_proxy::secret::Secret;
use zoho_meeting_proxy::token::{
    Credentials, ErrorClass, FileStore, MemoryStore, OAuthClient, Rejection, Settings,
    StoredAccessToken, StoredState, THROTTLE_MIN, TokenManager, TokenSource, TokenStatusView,
    TokenStore, Unavailable,
};

use crate::support::{self, CLIENT_ID, CLIENT_SECRET};

const SCOPES: &[&str] = &["ZohoMeeting.meeting.ALL"];
const HOUR: Duration = Duration::from_secs(3600);

/// An emulator minting tokens of `lifetime`, and a live refresh token for the test client.
async fn accounts(lifetime: Duration) -> (AccountsEmulator, AccountsControl, String) {
    let emu = support::emulator(support::options(lifetime)).await;
    let ctl = emu.control();
    let refresh_token = ctl.issue_refresh_token(SCOPES);
    (emu, ctl, refresh_token)
}

/// Default tunables: a 5 minute margin (capped to a quarter of short lifetimes), Zoho's
/// budget, and a 3 s wait for requests.
fn settings() -> Settings {
    Settings {
        margin: Duration::from_secs(300),
        max_mints_per_10m: 10,
        request_wait: Duration::from_secs(3),
    }
}

fn client(ca_file: Option<&Path>) -> OAuthClient {
    OAuthClient::new(
        CLIENT_ID,
        &Secret::from(CLIENT_SECRET),
        ca_file,
        Duration::from_secs(5),
    )
    .unwrap()
}

fn manager_with(
    url: &str,
    refresh_token: &str,
    client: OAuthClient,
    store: Arc<dyn TokenStore>,
    settings: Settings,
) -> Arc<TokenManager> {
    TokenManager::new(
        AuthScheme::ZohoOauthtoken,
        client,
        store,
        Credentials::new(
            CLIENT_ID,
            Secret::from(refresh_token),
            Url::parse(url).unwrap(),
        ),
        settings,
    )
}

/// A manager on a memory store with default settings.
fn manager(emu: &AccountsEmulator, refresh_token: &str) -> Arc<TokenManager> {
    manager_with(
        &emu.url(),
        refresh_token,
        client(None),
        Arc::new(MemoryStore::new()),
        settings(),
    )
}

/// The background task, stopped when dropped.
struct Background {
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Background {
    fn start(manager: &Arc<TokenManager>) -> Self {
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(manager.clone().run(async {
            let _ = rx.await;
        }));
        Self {
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    /// Stops the task and checks that it ended by itself.
    async fn stop(mut self) {
        let _ = self.shutdown.take().unwrap().send(());
        let task = self.task.take().unwrap();
        tokio::time::timeout(Duration::from_secs(2), task)
            .await
            .expect("the background task ends on shutdown")
            .expect("the background task does not panic");
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Polls `cond` every 20 ms until it holds or `within` has passed; returns whether it held.
async fn eventually(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A manager built from a configuration, as `serve` and `token` build theirs.
async fn manager_for(config: &Config) -> Arc<TokenManager> {
    zoho_meeting_proxy::app::tokens(config)
        .await
        .unwrap()
        .manager
}

/// The raw access token the manager holds.
fn raw_token(manager: &TokenManager) -> String {
    manager.current().unwrap().secret().expose().clone()
}

/// Debug and Display of anything, checked against every secret in play.
fn assert_no_secret(text: &str, secrets: &[&str]) {
    for secret in secrets {
        assert!(!secret.is_empty());
        assert!(!text.contains(secret), "a secret leaked into {text:?}");
    }
}

#[tokio::test]
async fn first_token_is_fetched_at_start_and_is_valid() {
    let (emu, ctl, rt) = accounts(HOUR).await;
    let m = manager(&emu, &rt);
    assert!(!m.is_ready());
    assert!(m.current().is_none());
    let bg = Background::start(&m);

    // Nobody asks: the background task fetches the first token by itself.
    assert!(
        eventually(Duration::from_secs(3), || m.current().is_some()).await,
        "no token within 3 s"
    );
    let header = m.current().unwrap().header().clone();
    let token = raw_token(&m);
    assert_eq!(header, format!("Zoho-oauthtoken {token}").as_str());
    assert!(header.is_sensitive());
    let info = ctl
        .validate_access_token(&token)
        .expect("the emulator knows the token");
    assert!(info.expires_in > Duration::from_secs(3500));
    assert!(m.is_ready());
    assert_eq!(m.wait().await.map(|t| t.header().clone()).unwrap(), header);
    assert_eq!(ctl.mint_count(), 1);

    let status = m.status();
    assert!(status.ready);
    assert!(status.last_refresh.is_some());
    assert!(status.last_error.is_none());
    assert_eq!(status.mints_in_window, 1);
    assert_eq!(
        status.token_fingerprint.as_deref(),
        Some(m.current().unwrap().fingerprint())
    );
    assert!(!status.refresh_stopped);
    bg.stop().await;
}

#[tokio::test]
async fn refreshes_ahead_of_expiry_without_a_gap() {
    let (emu, ctl, rt) = accounts(Duration::from_secs(4)).await;
    let m = manager(&emu, &rt);
    let bg = Background::start(&m);
    assert!(eventually(Duration::from_secs(3), || m.current().is_some()).await);
    let first = m.current().unwrap();
    let start = Instant::now();

    // The 4 s token is refreshed ~2.9 s after minting; it stays usable for ~3.6 s.
    let mut polls = 0;
    while start.elapsed() < Duration::from_millis(3500)
        || (ctl.mint_count() < 2 && start.elapsed() < Duration::from_secs(5))
    {
        assert!(
            m.current().is_some(),
            "no token {:?} after the first (mints: {})",
            start.elapsed(),
            ctl.mint_count()
        );
        polls += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(polls > 20);
    assert_eq!(ctl.mint_count(), 2, "one refresh ahead of expiry");
    let second = m.current().unwrap();
    assert_ne!(second.fingerprint(), first.fingerprint());
    assert_eq!(second.generation(), first.generation() + 1);
    assert!(
        ctl.validate_access_token(second.secret().expose())
            .is_some()
    );
    assert!(m.current().is_some());
    bg.stop().await;
}

#[tokio::test]
async fn concurrent_forced_refreshes_mint_once() {
    let (emu, ctl, rt) = accounts(HOUR).await;
    let m = manager(&emu, &rt);
    let bg = Background::start(&m);
    assert!(eventually(Duration::from_secs(3), || m.current().is_some()).await);
    let rejected = m.current().unwrap();
    let gen0 = rejected.generation();
    assert_eq!(ctl.mint_count(), 1);

    let calls: Vec<_> = (0..100)
        .map(|_| {
            let (m, rejected) = (m.clone(), rejected.clone());
            tokio::spawn(async move {
                match m.report_rejected(&rejected).await {
                    Rejection::Replaced(token) => Ok(token),
                    other => Err(other),
                }
            })
        })
        .collect();
    let mut fingerprints = std::collections::HashSet::new();
    for call in calls {
        let token = call.await.unwrap().expect("forced refresh succeeds");
        assert_eq!(token.generation(), gen0 + 1);
        fingerprints.insert(token.fingerprint().to_owned());
    }
    assert_eq!(ctl.mint_count(), 2, "100 callers, one mint");
    assert_eq!(fingerprints.len(), 1, "every caller got the same new token");
    assert!(!fingerprints.contains(rejected.fingerprint()));
    assert_eq!(m.current().map_or(0, |t| t.generation()), gen0 + 1);

    // A late caller with the old generation gets the current token, no mint.
    let Rejection::Replaced(late) = m.report_rejected(&rejected).await else {
        panic!("the late caller gets the current token");
    };
    assert_eq!(late.generation(), gen0 + 1);
    assert!(fingerprints.contains(late.fingerprint()));
    assert_eq!(ctl.mint_count(), 2);
    assert_eq!(ctl.token_requests(), 2);
    bg.stop().await;
}

#[tokio::test]
async fn requests_without_a_token_wait_for_the_fetch_in_progress() {
    let (emu, ctl, rt) = accounts(HOUR).await;
    let m = manager(&emu, &rt);
    let bg = Background::start(&m);
    let calls: Vec<_> = (0..20)
        .map(|_| {
            let m = m.clone();
            tokio::spawn(async move { m.wait().await.map(|t| t.header().clone()) })
        })
        .collect();
    let mut headers = std::collections::HashSet::new();
    for call in calls {
        let header = call.await.unwrap().expect("get waits for the token");
        headers.insert(header.to_str().unwrap().to_owned());
    }
    assert_eq!(headers.len(), 1);
    assert_eq!(ctl.mint_count(), 1);
    assert_eq!(ctl.token_requests(), 1);
    // The background task did not mint again once the requests had their token.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(ctl.token_requests(), 1);
    bg.stop().await;
}

#[tokio::test]
async fn a_request_that_stops_waiting_loses_neither_the_mint_nor_the_token() {
    let (emu, ctl, rt) = accounts(HOUR).await;
    // Zoho mints at once and its answer takes a while to arrive.
    ctl.set_answer_delay(Duration::from_millis(400));
    let m = manager(&emu, &rt);
    // Requests whose clients go away while Zoho's answer is on its way. Had the first
    // attempt been cut short with its request, the next wait would mint again.
    for _ in 0..3 {
        let wait = m.wait();
        tokio::pin!(wait);
        tokio::select! {
            _ = &mut wait => panic!("answered before Zoho did"),
            true = eventually(Duration::from_secs(5), || ctl.mint_count() >= 1) => {}
        }
    }
    let token = m
        .wait()
        .await
        .expect("the attempt went on without its request");
    assert_eq!(ctl.mint_count(), 1, "one mint for all of them");
    assert!(ctl.validate_access_token(token.secret().expose()).is_some());
    let status = m.status();
    assert_eq!(
        status.mints_in_window, 1,
        "the mint is on record: {status:?}"
    );
}

#[tokio::test]
async fn failing_endpoint_backs_off_exponentially() {
    let (emu, ctl, rt) = accounts(HOUR).await;
    ctl.set_outage(Some(503));
    let m = manager(&emu, &rt);
    let bg = Background::start(&m);

    assert!(eventually(Duration::from_secs(2), || ctl.token_requests() >= 1).await);
    assert!(eventually(Duration::from_secs(2), || m.status().last_error.is_some()).await);
    // While backing off, requests are told why and when to come back.
    match m.wait().await.map(|t| t.header().clone()) {
        Err(Unavailable::Failing {
            reason,
            retry_after,
        }) => {
            assert!(!reason.is_empty());
            assert!(retry_after > Duration::ZERO);
            assert!(retry_after <= Duration::from_secs(4), "{retry_after:?}");
        }
        other => panic!("expected Failing, got {other:?}"),
    }
    tokio::time::sleep(Duration::from_millis(3500)).await;

    // Attempts at ~0, ~0.5–1, ~1.5–3 (and perhaps ~3.5) s: no hot loop.
    let requests = ctl.token_requests();
    assert!((2..=5).contains(&requests), "{requests} token requests");
    assert_eq!(ctl.mint_count(), 0);
    let status = m.status();
    let error = status.last_error.clone().expect("the error is shown");
    assert!(error.contains("503"), "{error}");
    assert_no_secret(&format!("{status:?}"), &[&rt, CLIENT_SECRET]);
    assert!(!status.ready);
    assert!(!status.refresh_stopped);
    assert!(status.next_attempt_in_s.is_some());
    let err = m.wait().await.map(|t| t.header().clone()).unwrap_err();
    assert!(matches!(err, Unavailable::Failing { .. }), "{err:?}");
    assert!(err.retry_after() > Duration::ZERO);

    // The outage ends; SIGHUP retries at once instead of waiting out the backoff.
    ctl.set_outage(None);
    m.retry_now();
    assert!(
        eventually(Duration::from_secs(2), || m.current().is_some()).await,
        "no token promptly after retry_now"
    );
    assert_eq!(ctl.mint_count(), 1);
    assert!(m.status().last_error.is_none());
    bg.stop().await;
}

#[tokio::test]
async fn transient_errors_recover_by_themselves() {
    let (emu, ctl, rt) = accounts(HOUR).await;
    ctl.fail_next(1, Failure::ServerError);
    let m = manager(&emu, &rt);
    let bg = Background::start(&m);
    assert!(
        eventually(Duration::from_secs(3), || m.current().is_some()).await,
        "no recovery from one server error"
    );
    assert_eq!(ctl.token_requests(), 2);
    assert_eq!(ctl.mint_count(), 1);
    assert!(m.status().last_error.is_none());
    assert!(m.is_ready());
    bg.stop().await;
}

#[tokio::test]
async fn terminal_error_stops_the_background_task() {
    let (emu, ctl, rt) = accounts(HOUR).await;
    assert!(ctl.revoke_refresh_token(&rt));
    let m = manager(&emu, &rt);
    let bg = Background::start(&m);

    assert!(eventually(Duration::from_secs(3), || m.status().refresh_stopped).await);
    let attempts = ctl.token_requests();
    assert_eq!(attempts, 1);
    let status = m.status();
    assert!(status.last_error.as_deref().unwrap().contains("login"));
    assert_eq!(status.next_attempt_in_s, None);

    // No retry on its own.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(ctl.token_requests(), 1);

    // A request within 10 s of the last attempt does not trigger one either.
    match m.wait().await.map(|t| t.header().clone()) {
        Err(Unavailable::Terminal {
            reason,
            retry_after,
        }) => {
            assert!(reason.contains("invalid_code"), "{reason}");
            assert!(retry_after > Duration::ZERO);
            assert!(retry_after <= Duration::from_secs(10), "{retry_after:?}");
        }
        other => panic!("expected Terminal, got {other:?}"),
    }
    // With no token held, a rejection could only be reported as a request is: refused alike.
    let err = m.wait().await.unwrap_err();
    assert!(matches!(err, Unavailable::Terminal { .. }), "{err:?}");
    assert_eq!(ctl.token_requests(), 1);

    // SIGHUP: one attempt at once (still refused), then stopped again.
    m.retry_now();
    assert!(eventually(Duration::from_secs(2), || ctl.token_requests() == 2).await);
    assert!(eventually(Duration::from_secs(2), || m.status().refresh_stopped).await);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(ctl.token_requests(), 2);
    assert_eq!(ctl.mint_count(), 0);
    bg.stop().await;
}

#[tokio::test]
async fn background_refresh_resumes_after_a_terminal_stop_is_cleared() {
    // invalid_client once (say, a secret being rotated), then the credentials work again.
    let (emu, ctl, rt) = accounts(Duration::from_secs(4)).await;
    ctl.fail_next(1, Failure::InvalidClient);
    let m = manager(&emu, &rt);
    let bg = Background::start(&m);
    assert!(eventually(Duration::from_secs(3), || m.status().refresh_stopped).await);

    // `check --online` style mint succeeds and clears the stop...
    m.mint_now().await.expect("the credentials work again");
    assert!(!m.status().refresh_stopped);
    assert_eq!(ctl.mint_count(), 1);
    // ...so the background task refreshes that 4 s token ahead of expiry again.
    assert!(
        eventually(Duration::from_secs(4), || ctl.mint_count() >= 2).await,
        "the background refresher stayed stopped"
    );
    bg.stop().await;
}

#[tokio::test]
async fn throttling_waits_at_least_a_minute() {
    let (emu, ctl, rt) = accounts(HOUR).await;
    ctl.fail_next(1, Failure::Throttle);
    let m = manager(&emu, &rt);
    let bg = Background::start(&m);
    assert!(eventually(Duration::from_secs(3), || m.status().last_error.is_some()).await);

    match m.wait().await.map(|t| t.header().clone()) {
        Err(Unavailable::Failing {
            reason,
            retry_after,
        }) => {
            assert!(reason.contains("throttl"), "{reason}");
            assert!(retry_after >= Duration::from_secs(30), "{retry_after:?}");
            assert!(retry_after <= THROTTLE_MIN, "{retry_after:?}");
        }
        other => panic!("expected Failing, got {other:?}"),
    }
    assert!(m.status().next_attempt_in_s.unwrap() >= 30);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(ctl.token_requests(), 1, "retried while throttled");
    assert!(m.status().token_fingerprint.is_none());
    bg.stop().await;
}

#[tokio::test]
async fn mint_budget_is_enforced_and_persisted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.json");
    let (emu, ctl, rt) = accounts(HOUR).await;
    let budget = Settings {
        max_mints_per_10m: 3,
        ..settings()
    };
    let store = Arc::new(FileStore::new(path.clone()));
    let m = manager_with(&emu.url(), &rt, client(None), store, budget.clone());
    for _ in 0..3 {
        m.mint_now().await.expect("within the budget");
    }
    assert_eq!(ctl.mint_count(), 3);
    let refused = m.mint_now().await.unwrap_err();
    match &refused {
        Unavailable::Budget { max, retry_after } => {
            assert_eq!(*max, 3);
            assert!(
                // Mint records may sit up to a second late (`mint_record_time`).
                *retry_after > Duration::from_secs(540) && *retry_after <= Duration::from_secs(601),
                "{retry_after:?}"
            );
        }
        other => panic!("expected Budget, got {other:?}"),
    }
    assert!(refused.to_string().contains("budget"));
    assert_eq!(ctl.token_requests(), 3, "the 4th mint reached Zoho");
    let status = m.status();
    assert_eq!((status.mints_in_window, status.mints_left), (3, 0));

    // Another manager (a restart, or the `token` command) on the same file also refuses.
    let store = Arc::new(FileStore::new(path));
    let state = store.load().await.unwrap();
    assert_eq!(state.mints.len(), 3);
    let m2 = manager_with(&emu.url(), &rt, client(None), store, budget);
    m2.restore(&state);
    assert_eq!(m2.status().mints_left, 0);
    let err = m2.mint_now().await.unwrap_err();
    assert!(matches!(err, Unavailable::Budget { .. }), "{err:?}");
    assert_eq!(ctl.token_requests(), 3);
}

#[tokio::test]
async fn stored_token_is_reused_only_with_the_same_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state").join("tokens.json");
    let (emu, ctl, rt) = accounts(HOUR).await;
    let config_for = |refresh_token: &str| {
        let mut overrides = support::oauth_overrides(&emu.url());
        overrides.push(("oauth.refresh_token", refresh_token.into()));
        overrides.push(("token.store", "file".into()));
        overrides.push(("token.path", path.to_str().unwrap().into()));
        support::config(&overrides)
    };
    let config = config_for(&rt);

    let a = manager_for(&config).await;
    let minted = a.fresh().await.unwrap();
    assert_eq!(ctl.mint_count(), 1);

    // B (a restart): the stored token is usable at once, without a mint.
    let b = manager_for(&config).await;
    let restored = b.current().expect("the stored token is reused");
    assert_eq!(restored.fingerprint(), minted.fingerprint());
    assert!(b.current().is_some());
    assert!(b.is_ready());
    let fresh = b.fresh().await.unwrap();
    assert_eq!(fresh.fingerprint(), minted.fingerprint());
    assert_eq!(
        b.wait().await.map(|t| t.header().clone()).unwrap(),
        format!("Zoho-oauthtoken {}", minted.secret().expose()).as_str()
    );
    assert_eq!(ctl.mint_count(), 1);
    assert_eq!(ctl.token_requests(), 1);

    // C: another refresh token on the same store does not take A's access token.
    let other_rt = ctl.issue_refresh_token(SCOPES);
    let other = config_for(&other_rt);
    let c = manager_for(&other).await;
    assert!(c.status().token_fingerprint.is_none());
    let own = c.fresh().await.unwrap();
    assert_ne!(own.fingerprint(), minted.fingerprint());
    assert_eq!(ctl.mint_count(), 2);
}

#[tokio::test]
async fn fresh_mints_when_the_token_is_within_the_refresh_margin() {
    // A stored token with 200 s left: usable, but inside the 300 s refresh margin.
    let (emu, ctl, rt) = accounts(HOUR).await;
    let creds = Credentials::new(
        CLIENT_ID,
        Secret::from(rt.as_str()),
        Url::parse(&emu.url()).unwrap(),
    );
    let now_ms = zoho_meeting_proxy::token::unix_ms();
    let state = StoredState {
        access_token: Some(StoredAccessToken {
            token: Secret::from("1000.stored.token"),
            expires_at: now_ms + 200_000,
            accounts_server: emu.url(),
            minted_by: creds.minted_by().to_owned(),
            lifetime: None,
        }),
        ..StoredState::default()
    };
    let m = manager_with(
        &emu.url(),
        &rt,
        client(None),
        Arc::new(MemoryStore::with_state(state.clone())),
        settings(),
    );
    m.restore(&state);
    assert!(m.current().is_some(), "the stored token is usable");
    assert!(!m.is_ready(), "but not fresh");

    let fresh = m.fresh().await.unwrap();
    assert_eq!(
        ctl.mint_count(),
        1,
        "fresh() must mint a token within the margin"
    );
    assert_ne!(fresh.secret().expose(), "1000.stored.token");
    assert!(fresh.remaining() > Duration::from_secs(3000));
    assert!(m.is_ready());
}

#[tokio::test]
async fn expired_tokens_are_never_handed_out() {
    let (emu, ctl, rt) = accounts(Duration::from_secs(2)).await;
    let m = manager_with(
        &emu.url(),
        &rt,
        client(None),
        Arc::new(MemoryStore::new()),
        Settings {
            request_wait: Duration::from_secs(1),
            ..settings()
        },
    );
    let bg = Background::start(&m);
    assert!(eventually(Duration::from_secs(2), || m.current().is_some()).await);
    ctl.set_outage(Some(503));
    let token = m.current().unwrap();

    // Until it has expired, whenever the cache hands out a header, it is that live token.
    let expired = eventually(Duration::from_secs(4), || {
        if let Some(header) = m.current().map(|t| t.header().clone()) {
            assert!(token.remaining() > Duration::ZERO);
            assert_eq!(header, *token.header());
        }
        token.remaining().is_zero()
    })
    .await;
    assert!(expired);
    assert!(m.current().is_none());
    assert!(m.current().is_none());
    assert!(!m.is_ready());
    let err = m
        .wait()
        .await
        .map(|t| t.header().clone())
        .expect_err("no token once it expired");
    assert!(
        matches!(
            err,
            Unavailable::Failing { .. } | Unavailable::Pending { .. }
        ),
        "{err:?}"
    );
    assert!(m.fresh().await.is_err());
    assert_eq!(ctl.mint_count(), 1);
    assert!(ctl.token_requests() >= 2, "the refresh was attempted");
    bg.stop().await;
}

/// Zoho's documented example (`expires_in` in milliseconds beside `expires_in_sec`, the
/// emulator's default) and the accounts pages' seconds-only shape give the same lifetime.
#[tokio::test]
async fn both_expiry_shapes_give_the_same_lifetime() {
    for seconds_only in [false, true] {
        let emu = support::emulator(zoho_emulator::accounts::AccountsOptions {
            expires_in_seconds_only: seconds_only,
            ..support::options(HOUR)
        })
        .await;
        let ctl = emu.control();
        let rt = ctl.issue_refresh_token(SCOPES);
        let mut overrides = support::oauth_overrides(&emu.url());
        overrides.push(("oauth.refresh_token", rt.as_str().into()));
        overrides.push(("token.store", "memory".into()));
        let config = support::config(&overrides);
        let m = manager_for(&config).await;

        let token = m.fresh().await.unwrap();
        let remaining = token.remaining();
        assert!(
            remaining > Duration::from_secs(3590) && remaining <= HOUR,
            "seconds_only={seconds_only}: {remaining:?}"
        );
        assert_eq!(token.lifetime(), HOUR, "seconds_only={seconds_only}");
        let expires_in = m.status().token_expires_in_s.unwrap();
        assert!((3590..=3600).contains(&expires_in), "{expires_in}");
    }
}

#[tokio::test]
async fn tls_accounts_server_needs_the_configured_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (emu, ca_file) = support::tls_emulator(support::options(HOUR), dir.path()).await;
    let ctl = emu.control();
    let rt = ctl.issue_refresh_token(SCOPES);
    assert!(emu.url().starts_with("https://"));

    let trusted = manager_with(
        &emu.url(),
        &rt,
        client(Some(&ca_file)),
        Arc::new(MemoryStore::new()),
        settings(),
    );
    let token = trusted.mint_now().await.expect("mints over TLS");
    assert!(ctl.validate_access_token(token.secret().expose()).is_some());
    assert_eq!(ctl.mint_count(), 1);

    // Without the CA the certificate is refused: a transient (network) failure, not a panic
    // and not a terminal stop.
    let url = Url::parse(&emu.url()).unwrap();
    let error = client(None)
        .refresh(&url, &Secret::from(rt.as_str()))
        .await
        .expect_err("an unknown CA is refused");
    assert_eq!(error.class(), ErrorClass::Transient);
    assert_no_secret(&format!("{error} {error:?}"), &[&rt, CLIENT_SECRET]);

    let untrusted = manager_with(
        &emu.url(),
        &rt,
        client(None),
        Arc::new(MemoryStore::new()),
        settings(),
    );
    let err = untrusted.mint_now().await.unwrap_err();
    assert!(matches!(err, Unavailable::Failing { .. }), "{err:?}");
    assert!(!untrusted.status().refresh_stopped);
    assert_eq!(ctl.mint_count(), 1);
}

#[tokio::test]
async fn debug_output_never_shows_secrets() {
    let (emu, ctl, rt) = accounts(HOUR).await;
    let m = manager(&emu, &rt);
    let token = m.mint_now().await.unwrap();
    let access = token.secret().expose().clone();
    let secrets = [rt.as_str(), access.as_str(), CLIENT_SECRET];

    let status = m.status();
    let text = format!(
        "{m:?} {:?} {status:?} {token:?} {:?} {:?} {}",
        m.current(),
        m.credentials(),
        m.current().unwrap().header().clone(),
        serde_json::to_string(&status).unwrap(),
    );
    assert!(text.contains(token.fingerprint()));
    assert_no_secret(&text, &secrets);

    // Every kind of refusal, in Debug and Display.
    let mut refusals = Vec::new();
    ctl.fail_next(1, Failure::Throttle);
    refusals.push(m.mint_now().await.unwrap_err());
    ctl.fail_next(1, Failure::InvalidClient);
    refusals.push(m.mint_now().await.unwrap_err());
    let tight = manager_with(
        &emu.url(),
        &rt,
        client(None),
        Arc::new(MemoryStore::new()),
        Settings {
            max_mints_per_10m: 1,
            ..settings()
        },
    );
    tight.mint_now().await.unwrap();
    refusals.push(tight.mint_now().await.unwrap_err());
    assert!(matches!(refusals[0], Unavailable::Failing { .. }));
    assert!(matches!(refusals[1], Unavailable::Terminal { .. }));
    assert!(matches!(refusals[2], Unavailable::Budget { .. }));
    for refusal in &refusals {
        assert_no_secret(&format!("{refusal} {refusal:?}"), &secrets);
    }
    let status = m.status();
    assert!(status.refresh_stopped);
    assert_no_secret(&format!("{m:?} {status:?}"), &secrets);
}

/// A refresh refused at the US accounts server while nobody chose a data centre says that an
/// account of another data centre needs `oauth.data_center`, in the error and the status hint.
#[tokio::test]
async fn a_refusal_at_the_guessed_us_accounts_server_names_oauth_data_center() {
    use zoho_meeting_proxy::config::DataCenter;
    use zoho_meeting_proxy::token::DataCentreCheck;

    let (emu, ctl, rt) = accounts(HOUR).await;
    assert!(ctl.revoke_refresh_token(&rt));
    let check = |guessed| DataCentreCheck {
        in_use: DataCenter::Us,
        meeting_host: "https://meeting.zoho.com".into(),
        guessed,
        us_accounts: true,
    };
    for guessed in [true, false] {
        let m = manager(&emu, &rt);
        m.check_data_centre(check(guessed));
        let err = m.mint_now().await.unwrap_err();
        let status = m.status();
        let hint = status.hint.clone().unwrap_or_default();
        let says = |text: &str| text.contains("oauth.data_center is unset");
        assert!(matches!(err, Unavailable::Terminal { .. }), "{err:?}");
        assert_eq!(says(&err.to_string()), guessed, "{err}");
        assert_eq!(says(&hint), guessed, "{status:?}");
        assert_eq!(
            says(status.last_error.as_deref().unwrap()),
            guessed,
            "{status:?}"
        );
    }
}
