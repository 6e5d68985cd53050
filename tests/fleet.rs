//! A fleet of proxies sharing one access token through a real `redis-server` (issue 7):
//! one mint per token lifetime for five replicas under load, a lease holder that dies, a
//! redis outage under load, and what is (and is never) written to redis.
//!
//! Each test starts its own `redis-server` on a Unix socket in a temporary directory (no
//! TCP port, so nothing to race for and nothing shared) and kills it when dropped. A missing
//! `redis-server` is installed by `support::tools` (as root, with apt-get); where it cannot
//! be, these tests fail rather than skip. Tokens live a few seconds so that refreshes happen
//! within a test; assertions are on counts with generous bounds, and the counts are printed
//! (`cargo test fleet -- --nocapture`).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;
use zoho_emulator::accounts::{AccountsControl, AccountsEmulator};
use zoho_emulator::meeting::MeetingEmulator;
use zoho_meeting_proxy::app::Running;
use zoho_meeting_proxy::token::{TokenSource, TokenStatus, TokenStatusView};

use crate::support::{self, CLIENT_SECRET};

const SCOPES: &[&str] = &["ZohoMeeting.manageOrg.READ", "ZohoMeeting.meeting.READ"];
/// An API path the Meeting emulator answers 200 to with a valid token.
const API: &str = "/api/v2/user.json";

// === a redis-server of the test's own ===

/// A `redis-server` on a Unix socket in a temporary directory, with persistence off (a
/// restart loses everything, the worst case for the fleet). Killed when dropped.
struct RedisServer {
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl RedisServer {
    fn start() -> Self {
        crate::support::tools::redis_server();
        let mut server = Self {
            dir: tempfile::tempdir().unwrap(),
            child: None,
        };
        server.spawn();
        server
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("redis.sock")
    }

    fn url(&self) -> String {
        format!("redis+unix://{}", self.socket().display())
    }

    /// Starts the server and waits until it answers PING.
    fn spawn(&mut self) {
        assert!(self.child.is_none());
        let child = Command::new("redis-server")
            .args(["--port", "0", "--unixsocket"])
            .arg(self.socket())
            .args(["--unixsocketperm", "700", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run redis-server ({e}): the fleet tests need a real redis (Debian: apt-get install redis-server)"
                )
            });
        self.child = Some(child);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !self.pings() {
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server did not answer within 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn pings(&self) -> bool {
        let Ok(mut stream) = UnixStream::connect(self.socket()) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
        let mut answer = [0u8; 7];
        stream.write_all(b"PING\r\n").is_ok()
            && stream.read_exact(&mut answer).is_ok()
            && &answer == b"+PONG\r\n"
    }

    /// Kills the server and waits for it to exit (its socket file goes with it).
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_file(self.socket());
        }
    }

    async fn conn(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url().as_str())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

// === replicas ===

/// The Zoho side: an accounts emulator minting tokens of `lifetime`, one refresh token that
/// the whole fleet shares, and the Meeting API checking every token against the emulator.
struct Zoho {
    accounts: AccountsEmulator,
    meeting: MeetingEmulator,
    refresh_token: String,
}

impl Zoho {
    async fn start(lifetime: Duration) -> Self {
        let accounts = support::emulator(support::options(lifetime)).await;
        let refresh_token = accounts.control().issue_refresh_token(SCOPES);
        let meeting = support::meeting_emulator(&accounts).await;
        Self {
            accounts,
            meeting,
            refresh_token,
        }
    }

    fn control(&self) -> AccountsControl {
        self.accounts.control()
    }
}

/// One proxy of the fleet: its own configuration, token manager and redis store instance.
struct Replica {
    running: Running,
    url: String,
}

impl Replica {
    async fn start(zoho: &Zoho, redis_url: &str, prefix: &str) -> Self {
        let mut overrides = support::oauth_overrides(&zoho.accounts.url());
        overrides.extend([
            ("oauth.refresh_token", zoho.refresh_token.as_str().into()),
            ("server.listen", "127.0.0.1:0".into()),
            ("server.admin_listen", "".into()),
            ("upstream.url", zoho.meeting.url().into()),
            ("upstream.timeout", "15s".into()),
            ("token.store", "redis".into()),
            ("token.redis_url", redis_url.into()),
            ("token.redis_key_prefix", prefix.into()),
        ]);
        let config = support::config(&overrides);
        let store = zoho_meeting_proxy::app::open_store(&config).unwrap();
        assert!(store.clone().into_shared().is_some());
        let running = zoho_meeting_proxy::app::start_with_store(&config, store)
            .await
            .unwrap();
        let url = format!("http://{}{API}", running.proxy_addr().unwrap());
        Self { running, url }
    }

    fn status(&self) -> TokenStatus {
        self.running.manager().status()
    }

    /// `(minted, adopted)` by this replica.
    fn counts(&self) -> (u64, u64) {
        let counts = self.running.manager().refresh_counts().by_outcome();
        let get = |name| counts.iter().find(|(n, _)| *n == name).unwrap().1;
        (get("ok"), get("adopted"))
    }

    fn fingerprint(&self) -> Option<String> {
        self.status().token_fingerprint
    }
}

/// Requests sent through the fleet and how they went.
#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    failed: AtomicU64,
    first_failure: std::sync::Mutex<Option<String>>,
}

impl Tally {
    fn failed(&self, what: String) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        self.first_failure.lock().unwrap().get_or_insert(what);
    }

    fn assert_all_ok(&self) {
        let (ok, failed) = (
            self.ok.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        );
        assert!(ok > 0, "no request went through");
        assert_eq!(
            failed,
            0,
            "{failed} of {} requests failed; first: {:?}",
            ok + failed,
            self.first_failure.lock().unwrap()
        );
    }
}

/// Sends requests through every replica (`per_replica` clients each, one request every
/// 25 ms per client) for `duration`.
async fn load(replicas: &[Replica], per_replica: usize, duration: Duration) -> Arc<Tally> {
    let urls = replicas.iter().map(|r| r.url.clone()).collect();
    load_urls(urls, per_replica, duration).await
}

/// Polls `cond` every 50 ms until it holds or `within` has passed; returns whether it held.
async fn eventually(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn ready(replicas: &[Replica]) {
    let all = || replicas.iter().all(|r| r.running.manager().is_ready());
    assert!(
        eventually(Duration::from_secs(10), all).await,
        "the fleet did not get a token"
    );
}

// === the tests ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_replicas_mint_once_per_token_lifetime() {
    const LIFETIME: Duration = Duration::from_secs(4);
    const RUN: Duration = Duration::from_secs(12);
    let redis = RedisServer::start();
    let zoho = Zoho::start(LIFETIME).await;
    let mut replicas = Vec::new();
    for _ in 0..5 {
        replicas.push(Replica::start(&zoho, &redis.url(), "fleet-a").await);
    }
    ready(&replicas).await;
    let started = Instant::now();
    let tally = load(&replicas, 2, RUN).await;
    let elapsed = started.elapsed();

    let mints = zoho.control().mint_count();
    let counts: Vec<(u64, u64)> = replicas.iter().map(Replica::counts).collect();
    // A 4 s token is refreshed 1 s (its margin, a quarter of the lifetime) + 0.1 s lead +
    // at most 0.2 s jitter before expiry: at least every 2.7 s.
    let cycles = (elapsed.as_secs_f64() / 2.7).ceil() as u64;
    println!(
        "fleet: 5 replicas, {}s tokens, {:.1}s under load: {mints} mints at Zoho (at most {} allowed: one per refresh cycle + the first); (minted, adopted) per replica: {counts:?}; requests ok {}, failed {}",
        LIFETIME.as_secs(),
        elapsed.as_secs_f64(),
        cycles + 1,
        tally.ok.load(Ordering::Relaxed),
        tally.failed.load(Ordering::Relaxed),
    );
    tally.assert_all_ok();
    assert!(mints >= 3, "tokens were refreshed during the run: {mints}");
    assert!(
        mints <= cycles + 1,
        "{mints} mints for {cycles} refresh cycles: the fleet did not behave as one client"
    );
    let minted: u64 = counts.iter().map(|c| c.0).sum();
    let adopted: u64 = counts.iter().map(|c| c.1).sum();
    assert_eq!(minted, mints, "every mint at Zoho was made by a replica");
    assert!(
        adopted >= 4 * (mints - 1),
        "the other replicas adopted each refreshed token: {counts:?}"
    );
    for replica in &replicas {
        let status = replica.status();
        assert!(status.store_error.is_none(), "{status:?}");
        assert!(!status.minting_alone, "{status:?}");
        // Every replica counts the fleet's mints (the very last may not have reached all).
        assert!(u64::from(status.mints_in_window) + 1 >= mints, "{status:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_lease_holder_is_taken_over_when_its_lease_expires() {
    let redis = RedisServer::start();
    let zoho = Zoho::start(Duration::from_secs(3600)).await;
    // A replica took the lease to mint and died: nobody releases it for 3 s.
    let mut conn = redis.conn().await;
    let _: () = redis::cmd("SET")
        .arg("fleet-b:lease")
        .arg("a-replica-that-died")
        .arg("PX")
        .arg(3000)
        .query_async(&mut conn)
        .await
        .unwrap();
    let held_since = Instant::now();

    let replicas = vec![
        Replica::start(&zoho, &redis.url(), "fleet-b").await,
        Replica::start(&zoho, &redis.url(), "fleet-b").await,
    ];
    // Requests that arrive meanwhile wait for the token (upstream.timeout is 15 s).
    let tally = load(&replicas, 1, Duration::from_millis(200)).await;
    let waited = held_since.elapsed();
    println!(
        "lease takeover: first token after {:.1}s; mints {}; requests ok {}",
        waited.as_secs_f64(),
        zoho.control().mint_count(),
        tally.ok.load(Ordering::Relaxed)
    );
    tally.assert_all_ok();
    assert!(
        waited >= Duration::from_millis(2500),
        "nobody minted while the lease was held: {waited:?}"
    );
    assert!(waited < Duration::from_secs(10), "{waited:?}");
    ready(&replicas).await;
    assert_eq!(zoho.control().mint_count(), 1, "one replica took over");
    assert_eq!(replicas[0].fingerprint(), replicas[1].fingerprint());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_under_load_fails_no_request() {
    const LIFETIME: Duration = Duration::from_secs(6);
    let mut redis = RedisServer::start();
    let zoho = Zoho::start(LIFETIME).await;
    let mut replicas = Vec::new();
    for _ in 0..3 {
        replicas.push(Replica::start(&zoho, &redis.url(), "fleet-c").await);
    }
    ready(&replicas).await;
    let start = Instant::now();
    let traffic = tokio::spawn({
        let urls: Vec<String> = replicas.iter().map(|r| r.url.clone()).collect();
        async move { load_urls(urls, 2, Duration::from_secs(11)).await }
    });

    // Down before the refresh is due (at about 4.3 s) and back well after: every replica
    // has to mint on its own once its token nears its margin.
    tokio::time::sleep_until(start + Duration::from_secs(3)).await;
    redis.stop();
    let alone = eventually(Duration::from_secs(3), || {
        replicas.iter().all(|r| {
            let s = r.status();
            s.minting_alone && s.store_error.is_some()
        })
    })
    .await;
    let during: Vec<TokenStatus> = replicas.iter().map(Replica::status).collect();
    tokio::time::sleep_until(start + Duration::from_secs(6)).await;
    redis.spawn();

    let tally = traffic.await.unwrap();
    let mints = zoho.control().mint_count();
    let recovered = eventually(Duration::from_secs(20), || {
        replicas.iter().all(|r| {
            let s = r.status();
            !s.minting_alone && s.store_error.is_none()
        })
    })
    .await;
    let recovered_after = start.elapsed();
    // A refresh may be on its way (Zoho counted it, its save has not landed yet): the window
    // has to catch up, and a mint lost from it never does.
    let mut conn = redis.conn().await;
    let settle = Instant::now() + Duration::from_secs(5);
    let (window, mints_now) = loop {
        let mints_now = zoho.control().mint_count();
        let window: u64 = redis::cmd("ZCARD")
            .arg("fleet-c:mints")
            .query_async(&mut conn)
            .await
            .unwrap();
        if window == mints_now || Instant::now() >= settle {
            break (window, mints_now);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    println!(
        "redis outage: {mints} mints at Zoho in 11 s (1 + one per replica alone + refreshes after); all replicas back on redis {:.1}s after the start; shared window then {window} for {mints_now} mints; requests ok {}, failed {}; during the outage: {:?}",
        recovered_after.as_secs_f64(),
        tally.ok.load(Ordering::Relaxed),
        tally.failed.load(Ordering::Relaxed),
        during
            .iter()
            .map(|s| (s.minting_alone, s.store_error.is_some()))
            .collect::<Vec<_>>()
    );
    tally.assert_all_ok();
    assert!(alone, "every replica said it minted alone: {during:?}");
    let error = during[0].store_error.as_deref().unwrap();
    assert!(error.contains("token.redis_url"), "{error}");
    assert!(
        !error.contains("redis.sock"),
        "the URL is never shown: {error}"
    );
    assert!(recovered, "every replica found redis again");
    // Before the outage one, during it one per replica; after it one per 4.35 s cycle.
    assert!(mints <= 1 + 3 + 2, "{mints}");
    assert_eq!(
        window, mints_now,
        "after recovery the shared window counts every mint, including those made alone"
    );
}

/// [`load`] on URLs, for a task that cannot borrow the replicas.
async fn load_urls(urls: Vec<String>, per_url: usize, duration: Duration) -> Arc<Tally> {
    let tally = Arc::new(Tally::default());
    let until = Instant::now() + duration;
    let mut tasks = Vec::new();
    for url in urls {
        for _ in 0..per_url {
            let (url, tally) = (url.clone(), tally.clone());
            tasks.push(tokio::spawn(async move {
                let client = support::client();
                while Instant::now() < until {
                    match client.get(&url).send().await {
                        Ok(r) if r.status() == 200 => {
                            tally.ok.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(r) => {
                            let status = r.status();
                            let body = r.text().await.unwrap_or_default();
                            tally.failed(format!("{status} {body}"));
                        }
                        Err(e) => tally.failed(format!("{e}")),
                    }
                    tokio::time::sleep(Duration::from_millis(25)).await;
                }
            }));
        }
    }
    for task in tasks {
        task.await.unwrap();
    }
    tally
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_never_holds_the_refresh_token_or_client_secret() {
    let redis = RedisServer::start();
    let zoho = Zoho::start(Duration::from_secs(4)).await;
    let replicas = vec![
        Replica::start(&zoho, &redis.url(), "fleet-d").await,
        Replica::start(&zoho, &redis.url(), "fleet-d").await,
    ];
    ready(&replicas).await;
    // Through one refresh (at about 2.9 s), so that every kind of write has happened.
    load(&replicas, 1, Duration::from_millis(3500))
        .await
        .assert_all_ok();

    let mut conn = redis.conn().await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut conn)
        .await
        .unwrap();
    let mut everything = String::new();
    for key in &keys {
        assert!(key.starts_with("fleet-d:"), "{key} lacks the prefix");
        let kind: String = redis::cmd("TYPE")
            .arg(key)
            .query_async(&mut conn)
            .await
            .unwrap();
        let values: Vec<String> = match kind.as_str() {
            "string" => vec![
                redis::cmd("GET")
                    .arg(key)
                    .query_async(&mut conn)
                    .await
                    .unwrap(),
            ],
            "zset" => redis::cmd("ZRANGE")
                .arg(key)
                .arg(0)
                .arg(-1)
                .arg("WITHSCORES")
                .query_async(&mut conn)
                .await
                .unwrap(),
            other => panic!("unexpected {other} key {key}"),
        };
        everything.push_str(&format!("{key} ({kind}): {}\n", values.join(" ")));
    }
    let channels: Vec<String> = redis::cmd("PUBSUB")
        .arg("CHANNELS")
        .query_async(&mut conn)
        .await
        .unwrap();
    println!("redis holds:\n{everything}channels: {channels:?}");
    assert!(
        keys.contains(&"fleet-d:access_token".to_owned()),
        "{keys:?}"
    );
    assert!(keys.contains(&"fleet-d:mints".to_owned()), "{keys:?}");
    assert!(!channels.is_empty());
    for channel in &channels {
        assert!(
            channel.starts_with("fleet-d:"),
            "{channel} lacks the prefix"
        );
    }
    // The access token is there (that is the point), with its expiry and lifetime.
    let token = replicas[0]
        .running
        .manager()
        .current()
        .unwrap()
        .secret()
        .expose()
        .clone();
    assert!(everything.contains(&token), "{everything}");
    assert!(everything.contains("\"lifetime_ms\":4000"), "{everything}");
    for secret in [zoho.refresh_token.as_str(), CLIENT_SECRET] {
        assert!(
            !everything.contains(secret),
            "a secret is in redis:\n{everything}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_redis_at_start_is_survived_and_a_wrong_password_is_not() {
    let zoho = Zoho::start(Duration::from_secs(3600)).await;
    // Nothing listens there: the replica starts anyway, mints on its own and says so.
    let dir = tempfile::tempdir().unwrap();
    let missing = format!("redis+unix://{}", dir.path().join("none.sock").display());
    let replica = Replica::start(&zoho, &missing, "fleet-e").await;
    ready(std::slice::from_ref(&replica)).await;
    load(
        std::slice::from_ref(&replica),
        1,
        Duration::from_millis(100),
    )
    .await
    .assert_all_ok();
    let status = replica.status();
    assert!(status.minting_alone, "{status:?}");
    let error = status.store_error.unwrap();
    assert!(error.contains("token.redis_url"), "{error}");
    assert_eq!(zoho.control().mint_count(), 1);

    // A server that answers but refuses the credentials is a configuration error at start,
    // and the message names the key without the password.
    let redis = RedisServer::start();
    let url = format!(
        "redis+unix://{}?user=app&pass=pw-SENTINEL-9",
        redis.socket().display()
    );
    let mut overrides = support::oauth_overrides(&zoho.accounts.url());
    overrides.extend([
        ("oauth.refresh_token", zoho.refresh_token.as_str().into()),
        ("token.store", "redis".into()),
        ("token.redis_url", url.as_str().into()),
    ]);
    let config = support::config(&overrides);
    let Err(err) = zoho_meeting_proxy::app::tokens(&config).await else {
        panic!("a wrong password starts nothing");
    };
    let text = zoho_meeting_proxy::cli::report(&err);
    println!("wrong password: {text}");
    assert!(text.contains("token.redis_url"), "{text}");
    assert!(!text.contains("SENTINEL"), "{text}");
}

/// Several accounts in a fleet (issue 23): each account's token is shared through its own
/// keys (`<prefix>:acme:…` beside `<prefix>:…`), so three replicas mint once per account,
/// hold the same token per account, and each request carries its own account's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_of_two_accounts_mints_once_per_account() {
    let redis = RedisServer::start();
    let zoho = Zoho::start(Duration::from_secs(3600)).await;
    let acme = zoho.control().issue_refresh_token(SCOPES);
    let mut replicas = Vec::new();
    for _ in 0..3 {
        let mut overrides = support::oauth_overrides(&zoho.accounts.url());
        overrides.extend([
            ("oauth.refresh_token", zoho.refresh_token.as_str().into()),
            ("accounts.acme.refresh_token", acme.as_str().into()),
            ("accounts.acme.accounts_url", zoho.accounts.url().into()),
            ("server.listen", "127.0.0.1:0".into()),
            ("server.admin_listen", "127.0.0.1:0".into()),
            ("upstream.url", zoho.meeting.url().into()),
            ("token.store", "redis".into()),
            ("token.redis_url", redis.url().into()),
            ("token.redis_key_prefix", "fleet-accounts".into()),
        ]);
        let config = support::config(&overrides);
        let running = zoho_meeting_proxy::app::start(&config).await.unwrap();
        let url = format!("http://{}{API}", running.proxy_addr().unwrap());
        replicas.push(Replica { running, url });
    }
    let client = support::client();
    let statuses = || async {
        let mut all = Vec::new();
        for replica in &replicas {
            let admin = replica.running.admin_addr().unwrap();
            let status: serde_json::Value = client
                .get(format!("http://{admin}/status"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            all.push(status);
        }
        all
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let all = statuses().await;
        if all.iter().all(|s| {
            s["accounts"]["default"]["ready"] == true && s["accounts"]["acme"]["ready"] == true
        }) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the fleet did not get tokens: {all:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Requests for both accounts through every replica.
    for (r, replica) in replicas.iter().enumerate() {
        for account in ["default", "acme"] {
            let response = client
                .get(&replica.url)
                .header("x-zoho-account", account)
                .header("x-request-id", format!("{account}-{r}"))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200, "{account} through replica {r}");
        }
    }
    // One mint per account, from its own refresh token, shared by every replica.
    let mints = zoho.control().mints();
    for (account, refresh) in [("default", &zoho.refresh_token), ("acme", &acme)] {
        let minted: Vec<_> = mints
            .iter()
            .filter(|m| m.refresh_token.as_deref() == Some(refresh.as_str()))
            .collect();
        assert_eq!(minted.len(), 1, "{account}: {} mints", minted.len());
    }
    assert_eq!(mints.len(), 2);
    let all = statuses().await;
    for account in ["default", "acme"] {
        let fingerprints: Vec<&serde_json::Value> = all
            .iter()
            .map(|s| &s["accounts"][account]["token_fingerprint"])
            .collect();
        assert!(
            fingerprints.iter().all(|f| *f == fingerprints[0]),
            "{account}: {fingerprints:?}"
        );
    }
    assert_ne!(
        all[0]["accounts"]["default"]["token_fingerprint"],
        all[0]["accounts"]["acme"]["token_fingerprint"]
    );
    // Every arrival carried its own account's token.
    for check in zoho.meeting.control().token_checks() {
        let id = check.request_id.unwrap_or_default();
        let refresh = if id.starts_with("acme-") {
            &acme
        } else {
            &zoho.refresh_token
        };
        let token = check.token.unwrap_or_default();
        assert!(
            mints
                .iter()
                .any(|m| m.access_token == token
                    && m.refresh_token.as_deref() == Some(refresh.as_str())),
            "{id} carried another account's token"
        );
    }
    // The keys: default's under the prefix, acme's under prefix:acme.
    let mut conn = redis.conn().await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("fleet-accounts:*")
        .query_async(&mut conn)
        .await
        .unwrap();
    for key in [
        "fleet-accounts:access_token",
        "fleet-accounts:acme:access_token",
    ] {
        assert!(keys.iter().any(|k| k == key), "{key} missing: {keys:?}");
    }
    for replica in replicas {
        replica.running.finish().await;
    }
}
