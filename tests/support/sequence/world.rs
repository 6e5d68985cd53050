//! The world one sequence runs in: both emulators, the proxy started as `serve` starts it
//! (`app::start_with_store`) with a memory token store,
//! its configuration file and its [`Reloader`] (what SIGHUP runs), and a client; and how
//! each [`Step`] acts on them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;
use zoho_emulator::accounts::{
    AccountsControl, AccountsEmulator, AccountsOptions, Failure, MintRecord,
};
use zoho_emulator::meeting::{MeetingControl, MeetingEmulator, MeetingOptions, TokenCheck};
use zoho_meeting_proxy::app::reload::{Cause, Reloader};
use zoho_meeting_proxy::app::{self, Running};
use zoho_meeting_proxy::config::Config;
use zoho_meeting_proxy::secret::Secret;
use zoho_meeting_proxy::token::{
    EXPIRY_SKEW, MemoryStore, StoredRefreshToken, StoredState, TokenSource, TokenStatusView,
    TokenStore, unix_ms, unix_ms_of,
};

use super::clock;
use super::step::{Jump, Params, Step};
use crate::support::{CLIENT_ID, CLIENT_SECRET, loopback};

/// The scopes of every refresh token: enough for the requests clients send.
const SCOPES: &[&str] = &[
    "ZohoMeeting.manageOrg.READ",
    "ZohoMeeting.meeting.READ",
    "ZohoMeeting.meeting.CREATE",
];

/// Zoho's mint window, in milliseconds.
pub const WINDOW_MS: u64 = 600_000;

/// What a client got for one request.
#[derive(Clone, Debug)]
pub struct Answer {
    /// The `X-Request-Id` the client sent (the Meeting emulator logs it).
    pub id: String,
    pub method: &'static str,
    pub status: u16,
    pub retry_after: Option<String>,
    pub content_type: Option<String>,
    pub body: String,
}

/// A mint another process recorded in the token store.
#[derive(Clone, Debug)]
pub struct Phantom {
    /// The refresh token it counts for.
    pub refresh_token: String,
    /// When it was made: wall clock, unix milliseconds (up to ten minutes back).
    pub at: u64,
    /// How many mints the proxy had made when it was recorded: it counts for later ones.
    pub after_mints: usize,
}

/// Which faults are on now, as the steps set them.
#[derive(Clone, Debug, Default)]
pub struct Causes {
    pub outage: bool,
    pub throttling: bool,
    /// Throttle answers queued for the next token requests ([`Step::ThrottleOnce`]).
    pub queued_throttles: u64,
    /// The secret in the proxy's configuration is not the one Zoho accepts.
    pub secret_broken: bool,
    /// The refresh token in use was revoked at Zoho.
    pub refresh_revoked: bool,
    /// Every token is rejected (a wrong data centre).
    pub wrong_dc: bool,
}

/// What [`Step::Recover`] saw.
#[derive(Debug)]
pub struct Recovery {
    /// Nothing stood in the way when the step began: the second request must succeed.
    pub due: bool,
    /// The `Retry-After` the clock was moved by, when the first request got 503.
    pub waited: Option<u64>,
}

/// The result of one step, before the checks.
#[derive(Debug, Default)]
pub struct Acted {
    /// Every answer clients got, in the order the requests were sent.
    pub answers: Vec<Answer>,
    pub recovery: Option<Recovery>,
    /// A short note for the report.
    pub note: String,
}

/// Positions in the emulators' logs: what is new since a step began.
#[derive(Clone, Copy, Debug)]
pub struct Marks {
    pub checks: usize,
    pub mints: usize,
    pub token_requests: u64,
}

/// Both emulators, the proxy, and what the steps changed.
pub struct World {
    pub params: Params,
    accounts: AccountsEmulator,
    meeting: MeetingEmulator,
    running: Running,
    reloader: Reloader<'static>,
    store: Arc<MemoryStore>,
    _dir: tempfile::TempDir,
    config_path: PathBuf,
    http: reqwest::Client,
    /// For the admin listener, which has no timeouts: its connections are kept.
    admin_http: reqwest::Client,
    proxy: SocketAddr,
    admin: SocketAddr,
    /// The client secret Zoho accepts now.
    zoho_secret: String,
    /// The client secret in the proxy's configuration file.
    config_secret: String,
    secrets_rotated: u32,
    /// The refresh token in use (the store's or the configuration's).
    pub refresh_token: String,
    /// Mints that another process recorded in the store ([`Step::SpendBudget`]).
    pub phantoms: Vec<Phantom>,
    /// The `Retry-After` of the last 503 a client got, in seconds.
    pub last_retry_after: Option<u64>,
    /// When (tokio clock) each token request was made, in order, as [`World::settle`] saw
    /// them come (the clock stands still while it looks).
    attempts: std::cell::RefCell<Vec<Instant>>,
    pub causes: Causes,
}

impl World {
    /// Starts both emulators and a proxy between them, and waits for its first token.
    pub async fn start(params: Params) -> Self {
        let accounts = AccountsEmulator::start(
            loopback(),
            AccountsOptions {
                client_id: CLIENT_ID.into(),
                client_secret: CLIENT_SECRET.into(),
                token_lifetime: Duration::from_secs(params.lifetime_s),
                // The proxy's own budget is what is under test: the emulator never throttles
                // by itself (only when a step says so).
                max_mints_per_10m: 1000,
                ..AccountsOptions::default()
            },
        )
        .await
        .expect("accounts emulator starts");
        let meeting =
            MeetingEmulator::start(loopback(), MeetingOptions::default(), accounts.control())
                .await
                .expect("meeting emulator starts");
        let refresh_token = accounts.control().issue_refresh_token(SCOPES);
        let dir = tempfile::tempdir().expect("a temporary directory");
        let config_path = dir.path().join("proxy.toml");
        let mut state = StoredState::default();
        if params.refresh_token_in_store {
            state.refresh_token = Some(stored_refresh_token(&refresh_token, &accounts.url()));
        }
        let store = Arc::new(MemoryStore::with_state(state));
        write_config(
            &config_path,
            params,
            &accounts.url(),
            &meeting.url(),
            CLIENT_SECRET,
            &refresh_token,
        );
        let config = Config::load(Some(&config_path)).expect("the configuration loads");
        let dyn_store: Arc<dyn TokenStore> = store.clone();
        let running = app::start_with_store(&config, dyn_store)
            .await
            .expect("the proxy starts");
        let reloader = Reloader::new(&running, Some(config_path.clone()), None).await;
        let http = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            // A new connection per request: an idle one could meet the proxy's header read
            // timeout when the clock jumps.
            .pool_max_idle_per_host(0)
            .build()
            .expect("a client");
        let admin_http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("a client");
        let proxy = running.proxy_addr().expect("a TCP listener");
        let admin = running.admin_addr().expect("an admin listener");
        let world = Self {
            params,
            accounts,
            meeting,
            running,
            reloader,
            store,
            _dir: dir,
            config_path,
            http,
            admin_http,
            proxy,
            admin,
            zoho_secret: CLIENT_SECRET.to_owned(),
            config_secret: CLIENT_SECRET.to_owned(),
            secrets_rotated: 0,
            refresh_token,
            phantoms: Vec::new(),
            last_retry_after: None,
            attempts: std::cell::RefCell::new(Vec::new()),
            causes: Causes::default(),
        };
        world.settle().await;
        world
    }

    pub fn accounts(&self) -> AccountsControl {
        self.accounts.control()
    }

    pub fn meeting(&self) -> MeetingControl {
        self.meeting.control()
    }

    /// Where the emulators' logs stand.
    pub fn marks(&self) -> Marks {
        Marks {
            checks: self.meeting().token_checks().len(),
            mints: self.accounts().mints().len(),
            token_requests: self.accounts().token_requests(),
        }
    }

    /// The token checks and mints since `marks`, and how many token requests were made.
    pub fn since(&self, marks: Marks) -> (Vec<TokenCheck>, Vec<MintRecord>, u64) {
        let checks = self.meeting().token_checks().split_off(marks.checks);
        let mints = self.accounts().mints().split_off(marks.mints);
        let requests = self.accounts().token_requests() - marks.token_requests;
        (checks, mints, requests)
    }

    /// Waits until nothing is in flight: every token request the accounts emulator received
    /// has been handled by the proxy, and nothing changed for a few rounds. The clock stands
    /// still meanwhile, so this only waits for work already started (a mint the refresher
    /// began when the clock moved, a reload's attempt).
    ///
    /// # Panics
    /// When the proxy is still busy after 30 s of real time.
    pub async fn settle(&self) {
        let started = std::time::Instant::now();
        let mut last = None;
        let mut quiet = 0;
        loop {
            clock::breathe().await;
            let now = self.activity();
            {
                let mut attempts = self.attempts.borrow_mut();
                let seen = u64::try_from(attempts.len()).unwrap_or(u64::MAX);
                for _ in seen..now.0 {
                    attempts.push(Instant::now());
                }
            }
            let handled = now.0 <= now.1;
            if handled && last == Some(now) {
                quiet += 1;
                if quiet >= 3 {
                    return;
                }
            } else {
                quiet = 0;
                last = Some(now);
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "harness: the proxy never settled: {now:?} (token requests received, handled, \
                 Meeting requests, token generation)"
            );
        }
    }

    /// Token requests received by the emulator and handled by the proxy, Meeting requests,
    /// and the generation of the proxy's token.
    fn activity(&self) -> (u64, u64, u64, u64) {
        let manager = self.running.manager();
        let handled = manager
            .refresh_counts()
            .by_outcome()
            .iter()
            .filter(|(outcome, _)| matches!(*outcome, "ok" | "failed" | "throttled" | "terminal"))
            .map(|(_, n)| n)
            .sum();
        (
            self.accounts().token_requests(),
            handled,
            self.meeting().request_count(),
            manager.current().map_or(0, |t| t.generation()),
        )
    }

    /// When (tokio clock) each token request so far was made.
    pub fn attempt_times(&self) -> Vec<Instant> {
        self.attempts.borrow().clone()
    }

    /// `/readyz`'s status and `/status`'s body.
    pub async fn readiness(&self) -> (u16, serde_json::Value) {
        let readyz = self
            .admin_http
            .get(format!("http://{}/readyz", self.admin))
            .send()
            .await
            .expect("/readyz answers")
            .status()
            .as_u16();
        let status = self
            .admin_http
            .get(format!("http://{}/status", self.admin))
            .send()
            .await
            .expect("/status answers")
            .json()
            .await
            .expect("/status is JSON");
        (readyz, status)
    }

    /// The last token the proxy minted, with when it was minted and expires.
    pub fn current_token(&self) -> Option<MintRecord> {
        self.accounts().mints().pop()
    }

    /// Acts out `step` (number `index`) and lets the proxy settle.
    pub async fn act(&mut self, index: usize, step: Step) -> Acted {
        let mut acted = Acted::default();
        let token_requests = self.accounts().token_requests();
        match step {
            Step::Requests { gets, posts } => {
                acted.answers = self.requests(index, 0, gets, posts, None).await;
            }
            Step::InFlight { gets, posts } => {
                let (answers, by) = self.in_flight(index, gets, posts).await;
                acted.answers = answers;
                acted.note = format!("the clock moved {} s meanwhile", by.as_secs());
            }
            Step::RevokeCurrent => {
                let revoked = self
                    .current_token()
                    .is_some_and(|t| self.accounts().revoke_access_token(&t.access_token));
                acted.note = format!("revoked: {revoked}");
            }
            Step::RevokeAllAccess => {
                acted.note = format!("revoked {}", self.accounts().revoke_access_tokens());
            }
            Step::RevokeRefresh => {
                self.accounts().revoke_refresh_token(&self.refresh_token);
                self.causes.refresh_revoked = true;
            }
            Step::Outage(status) => {
                self.accounts().set_outage(status);
                self.causes.outage = status.is_some();
            }
            Step::Throttling(status) => {
                self.accounts().set_throttling(status);
                self.causes.throttling = status.is_some();
            }
            Step::ThrottleOnce => {
                self.accounts().fail_next(1, Failure::Throttle);
                self.causes.queued_throttles += 1;
            }
            Step::BreakSecret => {
                self.secrets_rotated += 1;
                self.zoho_secret = format!("rotated-secret-{}", self.secrets_rotated);
                self.accounts().set_client_secret(&self.zoho_secret);
                self.causes.secret_broken = true;
            }
            Step::FixSecret => {
                self.config_secret.clone_from(&self.zoho_secret);
                self.write_config();
                self.causes.secret_broken = false;
                self.reloader.reload(Cause::Signal).await;
            }
            Step::Advance(jump) => {
                let by = self.jump(jump);
                acted.note = format!("by {} s", by.as_secs_f64());
                tokio::time::advance(by).await;
            }
            Step::SpendBudget { frees_ms } => {
                acted.note = self.spend_budget(frees_ms).await;
            }
            Step::BudgetFrees => {
                let now = unix_ms();
                let until = self
                    .phantoms
                    .iter()
                    .map(|p| p.at + WINDOW_MS)
                    .max()
                    .unwrap_or(0);
                if until >= now {
                    let wait = Duration::from_millis(until - now + 2);
                    acted.note = format!("waited {} ms (wall clock)", wait.as_millis());
                    // Only the wall clock has to move; nothing is due on the tokio clock.
                    std::thread::sleep(wait);
                }
            }
            Step::WrongDataCentre(on) => {
                self.meeting().reject_all_tokens(on);
                self.causes.wrong_dc = on;
            }
            Step::Login { revoke_old } => self.login(revoke_old).await,
            Step::Sighup => self.reloader.reload(Cause::Signal).await,
            Step::Recover => {
                let due = self.nothing_in_the_way();
                let mut answers = self.requests(index, 0, 1, 0, None).await;
                let mut waited = None;
                if answers[0].status == 503 {
                    let secs = answers[0]
                        .retry_after
                        .as_deref()
                        .and_then(|s| s.parse::<u64>().ok())
                        .unwrap_or(1);
                    waited = Some(secs);
                    self.settle().await;
                    tokio::time::advance(Duration::from_secs(secs)).await;
                    self.settle().await;
                    answers.extend(self.requests(index, 1, 1, 0, None).await);
                }
                acted.answers = answers;
                acted.recovery = Some(Recovery { due, waited });
            }
        }
        self.settle().await;
        // Queued failures wait out outages and throttling; each other request takes one.
        if !self.causes.outage && !self.causes.throttling {
            let taken = self.accounts().token_requests() - token_requests;
            self.causes.queued_throttles = self.causes.queued_throttles.saturating_sub(taken);
        }
        if let Some(secs) = acted
            .answers
            .iter()
            .rev()
            .find(|a| a.status == 503)
            .and_then(|a| a.retry_after.as_deref()?.parse().ok())
        {
            self.last_retry_after = Some(secs);
        }
        acted
    }

    /// Whether no fault stands between the proxy and a working token: nothing on at the
    /// emulators, the configuration's secret is Zoho's, the refresh token is live, and the
    /// mint budget has room (other processes' mints included).
    pub fn nothing_in_the_way(&self) -> bool {
        let c = &self.causes;
        !(c.outage
            || c.throttling
            || c.queued_throttles > 0
            || c.secret_broken
            || c.refresh_revoked
            || c.wrong_dc
            || self.budget_spent())
    }

    /// Whether the current refresh token's mint budget is spent now (wall clock).
    pub fn budget_spent(&self) -> bool {
        self.mints_in_window(unix_ms()) >= u64::from(self.params.max_mints)
    }

    /// Mints counted against the current refresh token's budget at `now_ms` (wall clock):
    /// the proxy's own and those of [`Step::SpendBudget`].
    pub fn mints_in_window(&self, now_ms: u64) -> u64 {
        let horizon = now_ms.saturating_sub(WINDOW_MS);
        let own = self
            .accounts()
            .mints()
            .iter()
            .filter(|m| m.refresh_token.as_deref() == Some(self.refresh_token.as_str()))
            .filter(|m| unix_ms_of(m.wall) > horizon)
            .count();
        let others = self
            .phantoms
            .iter()
            .filter(|p| p.refresh_token == self.refresh_token && p.at > horizon)
            .count();
        (own + others) as u64
    }

    /// When the proxy refreshes its current token: its refresh margin (plus a tenth, at most
    /// 30 s) before expiry (`policy::refresh_at`).
    fn refresh_point(&self) -> Option<Instant> {
        self.current_token().map(|t| {
            let margin = self.margin(&t);
            let lead = (margin / 10).min(Duration::from_secs(30));
            t.expires_at - margin - lead
        })
    }

    /// [`Step::InFlight`]: the clock moves to 20 s before the current token's refresh point
    /// (when it is further), then requests are sent that the Meeting emulator answers after
    /// the clock moved past that point (at most 50 s, within `upstream.timeout`): its
    /// verdicts are given when they arrive, the answers come once the refresher had its turn.
    /// Returns the answers and how far the clock moved while they were in flight.
    async fn in_flight(&self, index: usize, gets: u8, posts: u8) -> (Vec<Answer>, Duration) {
        if let Some(at) = self.refresh_point() {
            let now = Instant::now();
            if at > now + Duration::from_secs(40) {
                tokio::time::advance(at - now - Duration::from_secs(20)).await;
                self.settle().await;
            }
        }
        let now = Instant::now();
        let by = self
            .refresh_point()
            .filter(|at| *at > now)
            .map_or(Duration::from_secs(30), |at| {
                at - now + Duration::from_secs(1)
            })
            .min(Duration::from_secs(50));
        let n = usize::from(gets + posts);
        let arrived_before = self.meeting().request_count();
        let finished = std::cell::Cell::new(0);
        self.meeting().set_latency(by);
        let moved = async {
            // Every request has reached Zoho (and waits there) or been answered already.
            let started = std::time::Instant::now();
            loop {
                self.settle().await;
                let arrived = self.meeting().request_count() - arrived_before;
                if usize::try_from(arrived).unwrap_or(usize::MAX) + finished.get() >= n {
                    break;
                }
                assert!(
                    started.elapsed() < Duration::from_secs(30),
                    "harness: {n} requests never reached the Meeting emulator"
                );
            }
            // Replays after the clock moved are answered at once.
            self.meeting().set_latency(Duration::ZERO);
            tokio::time::advance(by).await;
        };
        let (answers, ()) =
            tokio::join!(self.requests(index, 0, gets, posts, Some(&finished)), moved);
        (answers, by)
    }

    /// How far `jump` moves the clock from now.
    fn jump(&self, jump: Jump) -> Duration {
        let now = Instant::now();
        let token = self.current_token();
        let after = |at: Option<Instant>| {
            at.filter(|at| *at > now)
                .map_or(Duration::from_secs(1), |at| at - now)
        };
        match jump {
            Jump::Secs(s) => Duration::from_secs(s),
            Jump::RetryAfter => Duration::from_secs(self.last_retry_after.unwrap_or(1)),
            Jump::PastRefresh => after(self.refresh_point().map(|at| at + Duration::from_secs(1))),
            Jump::IntoSkew => after(token.map(|t| {
                let skew = EXPIRY_SKEW.min((t.expires_at - t.minted_at) / 10);
                t.expires_at - skew / 2
            })),
            Jump::PastExpiry => after(token.map(|t| t.expires_at + Duration::from_secs(1))),
        }
    }

    /// The proxy's refresh margin for `token`: `token.refresh_margin`, capped to a quarter
    /// of its lifetime.
    pub fn margin(&self, token: &MintRecord) -> Duration {
        Duration::from_secs(self.params.margin_s).min((token.expires_at - token.minted_at) / 4)
    }

    /// Another process (a `token` command sharing the store) used the rest of the budget:
    /// its mints, recorded in the store, leave the window `frees_ms` from now.
    async fn spend_budget(&mut self, frees_ms: u32) -> String {
        let now = unix_ms();
        let room = u64::from(self.params.max_mints).saturating_sub(self.mints_in_window(now));
        let at = now - WINDOW_MS + u64::from(frees_ms);
        let times: Vec<u64> = (0..room).map(|i| at - i).collect();
        let after_mints = self.accounts().mints().len();
        self.phantoms.extend(times.iter().map(|&at| Phantom {
            refresh_token: self.refresh_token.clone(),
            at,
            after_mints,
        }));
        self.store
            .update(Box::new(move |s: &mut StoredState| {
                s.mints.extend(times);
                s.mints.sort_unstable();
            }))
            .await
            .expect("the memory store updates");
        format!("{room} mints recorded")
    }

    /// `login` beside the running proxy, then SIGHUP.
    async fn login(&mut self, revoke_old: bool) {
        let new = self.accounts().issue_refresh_token(SCOPES);
        let old = std::mem::replace(&mut self.refresh_token, new.clone());
        if self.params.refresh_token_in_store {
            let stored = stored_refresh_token(&new, &self.accounts.url());
            self.store
                .update(Box::new(move |s: &mut StoredState| {
                    s.refresh_token = Some(stored);
                }))
                .await
                .expect("the memory store updates");
        } else {
            self.write_config();
        }
        if revoke_old {
            self.accounts().revoke_refresh_token(&old);
        }
        self.causes.refresh_revoked = false;
        self.reloader.reload(Cause::Signal).await;
    }

    fn write_config(&self) {
        write_config(
            &self.config_path,
            self.params,
            &self.accounts.url(),
            &self.meeting.url(),
            &self.config_secret,
            &self.refresh_token,
        );
    }

    /// Sends `gets` GETs and `posts` POSTs at once, ids `s{step}.{round}.{n}`; counts the
    /// answered ones in `finished`.
    async fn requests(
        &self,
        step: usize,
        round: usize,
        gets: u8,
        posts: u8,
        finished: Option<&std::cell::Cell<usize>>,
    ) -> Vec<Answer> {
        let zsoid = self.meeting().zsoid();
        let sends = (0..gets + posts).map(|n| {
            let id = format!("s{step}.{round}.{n}");
            let (method, request) = if n < gets {
                let path = if n % 2 == 0 {
                    "/api/v2/user.json".to_owned()
                } else {
                    format!("/api/v2/{zsoid}/sessions.json")
                };
                ("GET", self.http.get(format!("http://{}{path}", self.proxy)))
            } else {
                let body = serde_json::json!({ "session": {
                    "topic": format!("sequence step {step}"),
                    "startTime": "2030-06-19T19:00:00Z",
                } });
                (
                    "POST",
                    self.http
                        .post(format!(
                            "http://{}/api/v2/{zsoid}/sessions.json",
                            self.proxy
                        ))
                        .json(&body),
                )
            };
            async move {
                let response = request
                    .header("x-request-id", &id)
                    .send()
                    .await
                    .expect("the proxy answers");
                let header = |name: &str| {
                    response
                        .headers()
                        .get(name)
                        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                };
                let (retry_after, content_type) = (header("retry-after"), header("content-type"));
                let status = response.status().as_u16();
                let body = response.text().await.expect("the body arrives");
                if let Some(finished) = finished {
                    finished.set(finished.get() + 1);
                }
                Answer {
                    id,
                    method,
                    status,
                    retry_after,
                    content_type,
                    body,
                }
            }
        });
        futures_util::future::join_all(sends).await
    }
}

/// A refresh token as `login` stores it.
fn stored_refresh_token(token: &str, accounts: &str) -> StoredRefreshToken {
    StoredRefreshToken {
        token: Secret::from(token),
        accounts_server: accounts.to_owned(),
        client_id: CLIENT_ID.to_owned(),
        data_center: None,
        scopes: SCOPES.iter().map(|s| (*s).to_owned()).collect(),
        obtained_at: unix_ms_of(SystemTime::now()),
    }
}

fn write_config(
    path: &std::path::Path,
    params: Params,
    accounts: &str,
    meeting: &str,
    secret: &str,
    refresh_token: &str,
) {
    let refresh = if params.refresh_token_in_store {
        String::new()
    } else {
        format!("refresh_token = \"{refresh_token}\"")
    };
    let config = format!(
        r#"[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"

[oauth]
client_id = "{CLIENT_ID}"
client_secret = "{secret}"
accounts_url = "{accounts}"
max_mints_per_10m = {max}
{refresh}

[upstream]
url = "{meeting}"

[token]
store = "memory"
refresh_margin = "{margin}s"
"#,
        max = params.max_mints,
        margin = params.margin_s,
    );
    std::fs::write(path, config).expect("the configuration is written");
}
