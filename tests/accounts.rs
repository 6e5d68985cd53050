//! Several Zoho accounts behind one proxy (issue 23): every token that arrives at Zoho
//! belongs to the account its request named, under concurrent load, across a rejection in
//! one account, and across reloads that add and remove accounts.
//!
//! One accounts emulator stands for Zoho's accounts server, where each account consented
//! (one refresh token each); one Meeting emulator checks every token. The emulator's mint log
//! maps each access token to the refresh token that minted it, and its token-check log gives
//! each arrival's token and `X-Request-Id`, which the test sets to name the account it meant:
//! so every arrival is checked against the account that sent it.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use zoho_emulator::accounts::AccountsEmulator;
use zoho_emulator::meeting::MeetingEmulator;
use zoho_meeting_proxy::app::reload::{Cause, Reloader};
use zoho_meeting_proxy::app::{self, Running};
use zoho_meeting_proxy::config::Config;

use crate::support::{self, CLIENT_ID, CLIENT_SECRET};

const SCOPES: &[&str] = &["ZohoMeeting.manageOrg.READ", "ZohoMeeting.meeting.READ"];
const USER: &str = "/api/v2/user.json";

/// Zoho, a proxy configuration file, and each account's refresh token.
struct World {
    accounts: AccountsEmulator,
    meeting: MeetingEmulator,
    /// Account name → its refresh token.
    refresh: HashMap<String, String>,
    dir: tempfile::TempDir,
}

impl World {
    async fn new(names: &[&str]) -> Self {
        let accounts = support::emulator(support::options(Duration::from_secs(3600))).await;
        let meeting = support::meeting_emulator(&accounts).await;
        let refresh = std::iter::once("default")
            .chain(names.iter().copied())
            .map(|name| {
                (
                    name.to_owned(),
                    accounts.control().issue_refresh_token(SCOPES),
                )
            })
            .collect();
        Self {
            accounts,
            meeting,
            refresh,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// Writes proxy.toml with `default` and `names`; `extra` is appended (TOML).
    fn write(&self, names: &[&str], extra: &str) -> std::path::PathBuf {
        let mut toml = format!(
            r#"
[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"

[oauth]
client_id = "{CLIENT_ID}"
client_secret = "{CLIENT_SECRET}"
accounts_url = "{accounts}"
refresh_token = "{default}"
max_mints_per_10m = 100

[upstream]
url = "{meeting}"

[token]
store = "memory"
"#,
            accounts = self.accounts.url(),
            meeting = self.meeting.url(),
            default = self.refresh["default"],
        );
        for name in names {
            toml.push_str(&format!(
                "\n[[accounts]]\nname = \"{name}\"\naccounts_url = \"{}\"\nrefresh_token = \"{}\"\n",
                self.accounts.url(),
                self.refresh[*name],
            ));
        }
        toml.push_str(extra);
        let path = self.dir.path().join("proxy.toml");
        std::fs::write(&path, toml).unwrap();
        path
    }

    /// The refresh token that minted `access`.
    fn minted_by(&self, access: &str) -> Option<String> {
        self.accounts
            .control()
            .mints()
            .into_iter()
            .find(|m| m.access_token == access)
            .and_then(|m| m.refresh_token)
    }

    /// Every token that reached the Meeting emulator belongs to the account its request
    /// named (request ids are `ACCOUNT-n`); returns how many arrivals were checked.
    fn check_arrivals(&self) -> usize {
        let checks = self.meeting.control().token_checks();
        for check in &checks {
            let id = check
                .request_id
                .as_deref()
                .expect("every request has an id");
            let account = id.rsplit_once('-').map_or(id, |(a, _)| a);
            let token = check.token.as_deref().expect("a token arrived");
            assert_eq!(
                self.minted_by(token).as_deref(),
                Some(self.refresh[account].as_str()),
                "request {id} of account {account} carried another account's token"
            );
        }
        assert!(
            self.meeting
                .control()
                .requests()
                .iter()
                .all(|r| r.headers.iter().all(|(name, _)| name != "x-zoho-account")),
            "X-Zoho-Account reached Zoho"
        );
        checks.len()
    }
}

async fn start(path: &Path) -> Running {
    let config = Config::load(Some(path)).expect("the configuration loads");
    let running = app::start(&config).await.expect("the proxy starts");
    wait_ready(&running).await;
    running
}

async fn wait_ready(running: &Running) {
    let url = format!("http://{}/readyz", running.admin_addr().unwrap());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let status = support::client().get(&url).send().await.map(|r| r.status());
        if status.is_ok_and(|s| s == 200) {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "not ready in 10 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A GET of the user through the proxy for `account` (`None`: no header).
async fn get(
    client: &reqwest::Client,
    running: &Running,
    account: Option<&str>,
    id: &str,
) -> reqwest::Response {
    let mut request = client
        .get(format!("http://{}{USER}", running.proxy_addr().unwrap()))
        .header("x-request-id", id);
    if let Some(account) = account {
        request = request.header("x-zoho-account", account);
    }
    request.send().await.expect("the proxy answers")
}

async fn status(running: &Running) -> serde_json::Value {
    support::client()
        .get(format!("http://{}/status", running.admin_addr().unwrap()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn every_arrival_carries_its_own_accounts_token_under_concurrent_load() {
    let names = ["acme", "globex"];
    let world = World::new(&names).await;
    let running = start(&world.write(&names, "")).await;
    let client = support::client();
    // Seeded, replayable: which account each of 300 concurrent requests names.
    let mut rng = rand::rngs::StdRng::seed_from_u64(23);
    let picks: Vec<usize> = (0..300).map(|_| rng.random_range(0..4)).collect();
    let requests = picks.iter().enumerate().map(|(i, pick)| {
        let (header, account) = match pick {
            0 => (None, "default"),
            1 => (Some("default"), "default"),
            2 => (Some("acme"), "acme"),
            _ => (Some("globex"), "globex"),
        };
        let client = &client;
        let running = &running;
        async move {
            let response = get(client, running, header, &format!("{account}-{i}")).await;
            assert_eq!(response.status(), 200, "{account}-{i}");
        }
    });
    futures_util::future::join_all(requests).await;
    assert_eq!(world.check_arrivals(), 300);
    // One mint per account, each from its own refresh token.
    let mints = world.accounts.control().mints();
    for name in ["default", "acme", "globex"] {
        let n = mints
            .iter()
            .filter(|m| m.refresh_token.as_deref() == Some(world.refresh[name].as_str()))
            .count();
        assert_eq!(n, 1, "{name} minted {n} times");
    }
    // Seen per account.
    let status = status(&running).await;
    let fingerprints: Vec<&str> = ["default", "acme", "globex"]
        .iter()
        .map(|name| {
            assert_eq!(status["accounts"][name]["ready"], true, "{status}");
            status["accounts"][name]["token_fingerprint"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(
        status["token_fingerprint"].as_str(),
        Some(fingerprints[0]),
        "the top level is default's"
    );
    assert!(fingerprints[0] != fingerprints[1] && fingerprints[1] != fingerprints[2]);
    let metrics = support::client()
        .get(format!("http://{}/metrics", running.admin_addr().unwrap()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for name in ["default", "acme", "globex"] {
        let line = format!(
            "zoho_proxy_http_requests_total{{account=\"{name}\",route=\"default\",method=\"GET\",status_class=\"2xx\"}}"
        );
        let count: u64 = metrics
            .lines()
            .find_map(|l| l.strip_prefix(&line))
            .unwrap_or_else(|| panic!("{line} missing:\n{metrics}"))
            .trim()
            .parse()
            .unwrap();
        let expected = picks
            .iter()
            .filter(|p| match name {
                "default" => **p < 2,
                "acme" => **p == 2,
                _ => **p == 3,
            })
            .count() as u64;
        assert_eq!(count, expected, "{name}");
        assert!(
            metrics.contains(&format!("zoho_proxy_ready{{account=\"{name}\"}} 1")),
            "{metrics}"
        );
    }
    running.finish().await;
}

#[tokio::test]
async fn a_rejection_in_one_account_is_mended_there_and_touches_no_other() {
    let names = ["acme"];
    let world = World::new(&names).await;
    let running = start(&world.write(&names, "")).await;
    let client = support::client();
    let before = status(&running).await;
    for (i, account) in ["default", "acme"].iter().enumerate() {
        let response = get(&client, &running, Some(account), &format!("{account}-w{i}")).await;
        assert_eq!(response.status(), 200);
    }
    // Zoho revokes acme's access token.
    let acme_token = world
        .accounts
        .control()
        .mints()
        .into_iter()
        .find(|m| m.refresh_token.as_deref() == Some(world.refresh["acme"].as_str()))
        .unwrap()
        .access_token;
    assert!(world.accounts.control().revoke_access_token(&acme_token));
    // Both accounts' requests, interleaved and concurrent: all succeed (acme's replayed with
    // a new token).
    let requests = (0..40).map(|i| {
        let account = if i % 2 == 0 { "default" } else { "acme" };
        let (client, running) = (&client, &running);
        async move {
            let response = get(client, running, Some(account), &format!("{account}-{i}")).await;
            assert_eq!(response.status(), 200, "{account}-{i}");
        }
    });
    futures_util::future::join_all(requests).await;
    world.check_arrivals();
    let after = status(&running).await;
    assert_eq!(
        before["accounts"]["default"]["token_fingerprint"],
        after["accounts"]["default"]["token_fingerprint"],
        "default's token changed"
    );
    assert_ne!(
        before["accounts"]["acme"]["token_fingerprint"],
        after["accounts"]["acme"]["token_fingerprint"]
    );
    let mints = world.accounts.control().mints();
    let of = |name: &str| {
        mints
            .iter()
            .filter(|m| m.refresh_token.as_deref() == Some(world.refresh[name].as_str()))
            .count()
    };
    assert_eq!((of("default"), of("acme")), (1, 2));
    running.finish().await;
}

#[tokio::test]
async fn an_unknown_account_is_400_and_a_key_keeps_to_its_account() {
    let names = ["acme"];
    let world = World::new(&names).await;
    let path = world.write(
        &names,
        "client_keys = [\"acme-key\"]\n\n[server.client_keys_extra]\n",
    );
    // (The extra table above is an unknown key: the configuration must say so.)
    let error = Config::load(Some(&path)).unwrap_err().to_string();
    assert!(error.contains("server.client_keys_extra"), "{error}");
    let mut toml = std::fs::read_to_string(&path).unwrap();
    toml = toml.replace("\n[server.client_keys_extra]\n", "");
    toml = toml.replace(
        "admin_listen = \"127.0.0.1:0\"",
        "admin_listen = \"127.0.0.1:0\"\nclient_keys = [\"any-key\"]",
    );
    std::fs::write(&path, toml).unwrap();
    let running = start(&path).await;
    let client = support::client();
    let send = |key: &'static str, account: Option<&'static str>, id: String| {
        let client = &client;
        let running = &running;
        async move {
            let mut request = client
                .get(format!("http://{}{USER}", running.proxy_addr().unwrap()))
                .header("proxy-authorization", format!("Bearer {key}"))
                .header("x-request-id", id);
            if let Some(account) = account {
                request = request.header("x-zoho-account", account);
            }
            request.send().await.unwrap()
        }
    };
    // The bound key uses its account without a header, and with its own name.
    assert_eq!(send("acme-key", None, "acme-1".into()).await.status(), 200);
    assert_eq!(
        send("acme-key", Some("acme"), "acme-2".into())
            .await
            .status(),
        200
    );
    // ... and no other.
    let refused = send("acme-key", Some("default"), "default-x".into()).await;
    assert_eq!(refused.status(), 403);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(
        body["type"],
        "urn:zoho-meeting-proxy:problem:account-forbidden"
    );
    // A server key may use any account.
    assert_eq!(
        send("any-key", None, "default-3".into()).await.status(),
        200
    );
    assert_eq!(
        send("any-key", Some("acme"), "acme-4".into())
            .await
            .status(),
        200
    );
    // An unknown name: 400, not forwarded.
    let arrivals = world.meeting.control().requests().len();
    let unknown = send("any-key", Some("nope"), "nope-5".into()).await;
    assert_eq!(unknown.status(), 400);
    let body: serde_json::Value = unknown.json().await.unwrap();
    assert_eq!(
        body["type"],
        "urn:zoho-meeting-proxy:problem:unknown-account"
    );
    assert_eq!(world.meeting.control().requests().len(), arrivals);
    // No key at all: 407 before any account is looked at.
    let bare = client
        .get(format!("http://{}{USER}", running.proxy_addr().unwrap()))
        .header("x-zoho-account", "nope")
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status(), 407);
    assert_eq!(world.check_arrivals(), 4);
    // The refusals before an account was chosen count as account "-", not as default's.
    let metrics = support::client()
        .get(format!("http://{}/metrics", running.admin_addr().unwrap()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for (account, class, n) in [
        ("-", "4xx", 3),
        ("default", "4xx", 0),
        ("default", "2xx", 1),
        ("acme", "2xx", 3),
    ] {
        let line = format!(
            "zoho_proxy_http_requests_total{{account=\"{account}\",route=\"default\",method=\"GET\",status_class=\"{class}\"}} {n}"
        );
        assert!(metrics.lines().any(|l| l == line), "{line}:\n{metrics}");
    }
    // Two headers are ambiguous: 400, not forwarded, even when both name the same account.
    let arrivals = world.meeting.control().requests().len();
    let twice = client
        .get(format!("http://{}{USER}", running.proxy_addr().unwrap()))
        .header("proxy-authorization", "Bearer any-key")
        .header("x-zoho-account", "acme")
        .header("x-zoho-account", "acme")
        .send()
        .await
        .unwrap();
    assert_eq!(twice.status(), 400);
    assert_eq!(world.meeting.control().requests().len(), arrivals);
    // Names match without regard to case.
    assert_eq!(
        send("any-key", Some("ACME"), "acme-6".into())
            .await
            .status(),
        200
    );
    assert_eq!(world.check_arrivals(), 5);
    running.finish().await;
}

#[tokio::test]
async fn readiness_is_per_account_and_every_account_must_be_ready() {
    let names = ["acme"];
    let world = World::new(&names).await;
    let running = start(&world.write(&names, "")).await;
    let admin = running.admin_addr().unwrap();
    let readyz = |query: &'static str| async move {
        support::client()
            .get(format!("http://{admin}/readyz{query}"))
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(readyz("").await, 200);
    assert_eq!(readyz("?account=acme").await, 200);
    assert_eq!(readyz("?account=default").await, 200);
    assert_eq!(readyz("?account=nope").await, 404);
    running.finish().await;

    // An account whose refresh token Zoho revoked: it is not ready, the proxy is not, the
    // other account is and serves.
    let world = World::new(&names).await;
    assert!(
        world
            .accounts
            .control()
            .revoke_refresh_token(&world.refresh["acme"])
    );
    let config = Config::load(Some(&world.write(&names, ""))).unwrap();
    let running = app::start(&config).await.expect("the proxy starts");
    let admin = running.admin_addr().unwrap();
    let get_admin = |path: &'static str| async move {
        let response = support::client()
            .get(format!("http://{admin}{path}"))
            .send()
            .await
            .unwrap();
        (response.status(), response.text().await.unwrap())
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while get_admin("/readyz?account=default").await.0 != 200 {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, body) = get_admin("/readyz").await;
    assert_eq!(status, 503);
    assert!(body.contains("acme") && !body.contains("default"), "{body}");
    assert_eq!(get_admin("/readyz?account=acme").await.0, 503);
    let client = support::client();
    assert_eq!(
        get(&client, &running, None, "default-1").await.status(),
        200
    );
    let refused = get(&client, &running, Some("acme"), "acme-2").await;
    assert_eq!(refused.status(), 503, "acme has no token");
    let (_, body) = get_admin("/status").await;
    let status: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(status["ready"], true, "the top level is default's");
    assert_eq!(status["accounts"]["acme"]["ready"], false);
    // What to do names the account.
    let error = status["accounts"]["acme"]["last_error"]
        .as_str()
        .unwrap_or("");
    assert!(
        error.contains("zoho-meeting-proxy login --account acme"),
        "{status}"
    );
    world.check_arrivals();
    running.finish().await;
}

#[tokio::test]
async fn a_reload_adds_and_removes_accounts_and_in_flight_requests_finish() {
    let world = World::new(&["acme", "globex"]).await;
    let path = world.write(&["acme"], "");
    let running = start(&path).await;
    let mut reloader = Reloader::new(&running, Some(path.clone()), None).await;
    let client = support::client();
    assert_eq!(
        get(&client, &running, Some("globex"), "globex-0")
            .await
            .status(),
        400
    );

    // Add globex, remove acme.
    world.write(&["globex"], "");
    // An acme request in flight across the reload (the Meeting emulator answers slowly).
    world
        .meeting
        .control()
        .set_latency(Duration::from_millis(600));
    let in_flight = {
        let client = client.clone();
        let url = format!("http://{}{USER}", running.proxy_addr().unwrap());
        tokio::spawn(async move {
            client
                .get(url)
                .header("x-zoho-account", "acme")
                .header("x-request-id", "acme-inflight")
                .send()
                .await
                .unwrap()
                .status()
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    reloader.reload(Cause::Signal).await;
    world.meeting.control().set_latency(Duration::ZERO);
    assert_eq!(
        in_flight.await.unwrap(),
        200,
        "the in-flight request finished"
    );
    assert_eq!(
        get(&client, &running, Some("acme"), "acme-1")
            .await
            .status(),
        400
    );
    assert_eq!(
        get(&client, &running, Some("globex"), "globex-2")
            .await
            .status(),
        200
    );
    assert_eq!(
        get(&client, &running, None, "default-3").await.status(),
        200
    );
    let status = status(&running).await;
    let names: Vec<&String> = status["accounts"].as_object().unwrap().keys().collect();
    assert_eq!(names, ["default", "globex"], "{status}");
    // Add acme back: its refresher starts again and it serves.
    world.write(&["acme", "globex"], "");
    reloader.reload(Cause::Signal).await;
    assert_eq!(
        get(&client, &running, Some("acme"), "acme-4")
            .await
            .status(),
        200
    );
    world.check_arrivals();
    running.finish().await;
}

#[tokio::test]
#[expect(
    clippy::result_large_err,
    reason = "figment::Jail's closure must return figment::Error"
)]
async fn accounts_from_the_environment_merge_by_name_and_bad_entries_name_their_key() {
    let world = World::new(&["acme"]).await;
    let path = world.write(&["acme"], "");
    figment::Jail::expect_with(|jail| {
        // The variable overrides the file's entry of that name, and makes a new one.
        jail.set_env(
            "ZOHO_PROXY_ACCOUNTS__ACME__SCOPES",
            "[ZohoMeeting.meeting.READ]",
        );
        jail.set_env("ZOHO_PROXY_ACCOUNTS__GLOBEX__REFRESH_TOKEN", "1000.globex");
        let config = Config::load(Some(&path)).expect("loads");
        let names: Vec<&str> = config.account_names().collect();
        assert_eq!(names, ["default", "acme", "globex"]);
        let acme = config.for_account("acme").unwrap();
        assert_eq!(acme.oauth.scopes, ["ZohoMeeting.meeting.READ"]);
        assert_eq!(acme.oauth.client_id, CLIENT_ID, "the client is [oauth]'s");
        let globex = config.for_account("globex").unwrap();
        assert_eq!(
            globex.oauth.refresh_token.as_ref().unwrap().expose(),
            "1000.globex"
        );
        // [oauth]'s scopes, and the Meeting host stays the explicit upstream.url.
        assert_eq!(globex.oauth.scopes, config.oauth.scopes);
        assert_eq!(globex.upstream.url, config.upstream.url);
        // A bad name names its key and its source.
        jail.set_env("ZOHO_PROXY_ACCOUNTS__BAD_NAME__REFRESH_TOKEN", "x");
        let error = Config::load(Some(&path)).unwrap_err().to_string();
        assert!(error.contains("accounts.bad_name.name"), "{error}");
        Ok(())
    });
    for (extra, key) in [
        (
            "\n[[accounts]]\nname = \"acme\"\nrefresh_token = \"x\"\n",
            "accounts.acme",
        ),
        (
            "\n[[accounts]]\nname = \"default\"\nrefresh_token = \"x\"\n",
            "accounts.default.name",
        ),
        (
            "\n[[accounts]]\nname = \"Big\"\nrefresh_token = \"x\"\n",
            "accounts.Big.name",
        ),
        (
            "\n[[accounts]]\nname = \"x\"\nrefresh_token = \"y\"\nscope = []\n",
            "accounts.x.scope",
        ),
        (
            "\n[[accounts]]\nname = \"x\"\nrefresh_token = \"y\"\ndata_center = \"mars\"\n",
            "accounts.x.data_center",
        ),
    ] {
        std::fs::write(&path, std::fs::read_to_string(&path).unwrap() + extra).unwrap();
        let error = Config::load(Some(&path)).unwrap_err().to_string();
        assert!(error.contains(key), "{key}: {error}");
        assert!(error.contains("proxy.toml"), "the source is named: {error}");
        world.write(&["acme"], "");
    }
}

#[tokio::test]
async fn each_account_keeps_its_own_store_file() {
    let world = World::new(&["acme"]).await;
    let path = world.write(&["acme"], "");
    let store_dir = world.dir.path().join("state");
    let toml = std::fs::read_to_string(&path).unwrap().replace(
        "store = \"memory\"",
        &format!(
            "store = \"file\"\npath = \"{}\"",
            store_dir.join("token.json").display()
        ),
    );
    std::fs::write(&path, toml).unwrap();
    let running = start(&path).await;
    running.finish().await;
    for (file, account) in [("token.json", "default"), ("token-acme.json", "acme")] {
        let text =
            std::fs::read_to_string(store_dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        let stored: serde_json::Value = serde_json::from_str(&text).unwrap();
        let fingerprint = stored.to_string();
        // Each file holds an access token minted from its own account's refresh token.
        let own = world
            .accounts
            .control()
            .mints()
            .into_iter()
            .find(|m| m.refresh_token.as_deref() == Some(world.refresh[account].as_str()))
            .unwrap();
        assert!(
            fingerprint.contains(&own.access_token),
            "{file} does not hold {account}'s token"
        );
    }
}

// === sequences ===
//
// Rules one at a time are not enough: what one account does must not break the promise to
// another at any point of a life. A seeded sequence of steps — requests across accounts,
// Zoho revoking one account's access or refresh token, `login` for one account, accounts
// removed and added by SIGHUP — runs against the real proxy and emulators, and after every
// step: each arrival carries a token of its own account; a client of a healthy account gets
// its answer; a client of a revoked account gets the answer or a 503 problem, never Zoho's
// rejection; a removed account's client gets 400 unknown-account; `/status` lists exactly
// the configured accounts, and `/readyz?account=` says ready for an account that just
// served. `ZMP_ACCOUNT_SEQUENCES` (default 12) sequences of `ZMP_ACCOUNT_SEQUENCE_STEPS`
// (default 25) steps; `ZMP_ACCOUNT_SEQUENCE_SEED=<seed>` replays one.

/// The accounts of the sequences: `default` always runs; the others come and go.
const NAMES: [&str; 3] = ["default", "acme", "globex"];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Act {
    /// Clients of each account send this many GETs, all at once.
    Requests([u8; 3]),
    /// Zoho revokes every access token of the account's refresh token.
    RevokeAccess(usize),
    /// Zoho revokes the account's refresh token: it can mint no more.
    RevokeRefresh(usize),
    /// `login --account`: a new refresh token in the configuration, the old one revoked at
    /// Zoho, SIGHUP.
    Login(usize),
    /// The account leaves the configuration; SIGHUP.
    Remove(usize),
    /// The account comes (back) into the configuration; SIGHUP.
    Add(usize),
    /// SIGHUP with nothing changed.
    Sighup,
}

/// What the steps have done to each account.
#[derive(Clone, Debug)]
struct Model {
    configured: [bool; 3],
    /// Its refresh token works at Zoho.
    refresh_ok: [bool; 3],
    /// Every refresh token it had, the current last.
    refresh: [Vec<String>; 3],
}

fn draw(seed: u64, len: usize) -> Vec<Act> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..len)
        .map(|_| {
            let account = rng.random_range(0..3);
            match rng.random_range(0..100) {
                0..45 => Act::Requests([
                    rng.random_range(0..4),
                    rng.random_range(0..4),
                    rng.random_range(0..4),
                ]),
                45..58 => Act::RevokeAccess(account),
                58..64 => Act::RevokeRefresh(account),
                64..74 => Act::Login(account),
                74..82 => Act::Remove(account.max(1)),
                82..94 => Act::Add(account.max(1)),
                _ => Act::Sighup,
            }
        })
        .collect()
}

/// One sequence's world: [`World`] with its proxy, reloader and model.
struct Sequence {
    world: World,
    running: Option<Running>,
    /// What SIGHUP runs: one for the life of the proxy, as `serve` keeps it.
    reloader: Option<Reloader<'static>>,
    path: std::path::PathBuf,
    model: Model,
    client: reqwest::Client,
}

impl Sequence {
    async fn start() -> Self {
        let world = World::new(&NAMES[1..]).await;
        let model = Model {
            configured: [true, true, false],
            refresh_ok: [true; 3],
            refresh: NAMES.map(|name| vec![world.refresh[name].clone()]),
        };
        let mut sequence = Self {
            path: world.dir.path().join("proxy.toml"),
            world,
            running: None,
            reloader: None,
            model,
            client: support::client(),
        };
        sequence.write();
        let running = start(&sequence.path).await;
        sequence.reloader = Some(Reloader::new(&running, Some(sequence.path.clone()), None).await);
        sequence.running = Some(running);
        sequence
    }

    fn running(&self) -> &Running {
        self.running.as_ref().expect("running")
    }

    /// The configuration file as the model says.
    fn write(&mut self) {
        let names: Vec<&str> = (1..3)
            .filter(|&i| self.model.configured[i])
            .map(|i| NAMES[i])
            .collect();
        for (i, name) in NAMES.iter().enumerate() {
            let current = self.model.refresh[i].last().expect("one at least").clone();
            self.world.refresh.insert((*name).to_owned(), current);
        }
        self.world.write(&names, "");
    }

    /// Does one step; says what it found wrong.
    async fn act(&mut self, n: usize, act: Act) -> Result<(), String> {
        let control = self.world.accounts.control();
        match act {
            Act::Requests(counts) => return self.requests(n, counts).await,
            Act::RevokeAccess(i) => {
                for mint in control.mints() {
                    if mint.refresh_token.as_deref()
                        == self.model.refresh[i].last().map(String::as_str)
                    {
                        control.revoke_access_token(&mint.access_token);
                    }
                }
            }
            Act::RevokeRefresh(i) => {
                let current = self.model.refresh[i].last().expect("one").clone();
                control.revoke_refresh_token(&current);
                self.model.refresh_ok[i] = false;
            }
            Act::Login(i) => {
                let old = self.model.refresh[i].last().expect("one").clone();
                let new = control.issue_refresh_token(SCOPES);
                self.model.refresh[i].push(new);
                self.model.refresh_ok[i] = true;
                self.write();
                self.reload().await;
                control.revoke_refresh_token(&old);
            }
            Act::Remove(i) => {
                self.model.configured[i] = false;
                self.write();
                self.reload().await;
            }
            Act::Add(i) => {
                let was = self.model.configured[i];
                self.model.configured[i] = true;
                self.write();
                self.reload().await;
                if !was {
                    // Its refresher starts: wait for its first token, as `wait` does.
                    self.ready(i).await;
                }
            }
            Act::Sighup => self.reload().await,
        }
        self.check_status().await
    }

    async fn reload(&mut self) {
        if let Some(reloader) = self.reloader.as_mut() {
            reloader.reload(Cause::Signal).await;
        }
    }

    async fn requests(&mut self, n: usize, counts: [u8; 3]) -> Result<(), String> {
        let mut sent = Vec::new();
        for (i, count) in counts.iter().enumerate() {
            for k in 0..*count {
                // `default` is named by the header, or by no header at all.
                let header = (i > 0 || k % 2 == 1).then_some(NAMES[i]);
                sent.push((i, header, format!("{}-{n}-{k}", NAMES[i])));
            }
        }
        let before = self.world.meeting.control().token_checks().len();
        let answers = futures_util::future::join_all(
            sent.iter()
                .map(|(_, header, id)| get(&self.client, self.running(), *header, id)),
        )
        .await;
        let mut served = [false; 3];
        for ((i, _, id), response) in sent.iter().zip(answers) {
            let status = response.status().as_u16();
            let retry_after = response.headers().contains_key("retry-after");
            let body = response.text().await.unwrap_or_default();
            let problem =
                |kind: &str| body.contains(&format!("urn:zoho-meeting-proxy:problem:{kind}"));
            let healthy = self.model.configured[*i] && self.model.refresh_ok[*i];
            let ok = if !self.model.configured[*i] {
                status == 400 && problem("unknown-account")
            } else if healthy {
                status == 200
            } else {
                status == 200 || status == 503 && retry_after && problem("no-token")
            };
            if !ok {
                return Err(format!("{id}: got {status} {body}"));
            }
            served[*i] |= status == 200;
        }
        // Every arrival of this step carries a token of its own account.
        let mints = self.world.accounts.control().mints();
        for check in &self.world.meeting.control().token_checks()[before..] {
            let id = check.request_id.clone().unwrap_or_default();
            let name = id.split('-').next().unwrap_or("");
            let i = NAMES
                .iter()
                .position(|n| *n == name)
                .ok_or(format!("arrival {id}"))?;
            let token = check.token.clone().unwrap_or_default();
            let minted_by = mints
                .iter()
                .find(|m| m.access_token == token)
                .and_then(|m| m.refresh_token.clone())
                .unwrap_or_default();
            if !self.model.refresh[i].contains(&minted_by) {
                return Err(format!("{id} arrived with another account's token"));
            }
        }
        // An account that just served is ready.
        let admin = self.running().admin_addr().expect("admin");
        for (i, name) in NAMES.iter().enumerate() {
            if served[i] && self.model.refresh_ok[i] {
                let status = self
                    .client
                    .get(format!("http://{admin}/readyz?account={name}"))
                    .send()
                    .await
                    .map_err(|e| e.to_string())?
                    .status();
                if status != 200 {
                    return Err(format!(
                        "{name} served, yet /readyz?account={name} is {status}"
                    ));
                }
            }
        }
        self.check_status().await
    }

    /// Waits (at most 5 s) for a healthy account `i` to hold a token.
    async fn ready(&self, i: usize) {
        if !self.model.refresh_ok[i] {
            return;
        }
        let url = format!(
            "http://{}/readyz?account={}",
            self.running().admin_addr().expect("admin"),
            NAMES[i]
        );
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while tokio::time::Instant::now() < deadline {
            if self
                .client
                .get(&url)
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// `/status` lists exactly the configured accounts; `/readyz?account=` knows no other.
    async fn check_status(&self) -> Result<(), String> {
        let status = status(self.running()).await;
        let listed: Vec<&str> = status["accounts"]
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        let configured: Vec<&str> = (0..3)
            .filter(|&i| self.model.configured[i])
            .map(|i| NAMES[i])
            .collect();
        let mut sorted = configured.clone();
        sorted.sort_unstable();
        if listed != sorted {
            return Err(format!(
                "/status lists {listed:?}, configured {configured:?}"
            ));
        }
        Ok(())
    }
}

async fn run_sequence(seed: u64, acts: &[Act]) -> Result<(), String> {
    let mut sequence = Sequence::start().await;
    let mut done = Vec::new();
    for (n, act) in acts.iter().enumerate() {
        done.push(*act);
        if let Err(problem) = sequence.act(n, *act).await {
            return Err(format!(
                "seed {seed}, step {n} {act:?}: {problem}\nsteps: {done:?}\nreplay: ZMP_ACCOUNT_SEQUENCE_SEED={seed} cargo test --test integration accounts::sequences"
            ));
        }
    }
    if let Some(running) = sequence.running.take() {
        running.finish().await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequences_of_accounts_keep_every_clients_promise() {
    let env = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
    let steps = env("ZMP_ACCOUNT_SEQUENCE_STEPS").unwrap_or(25) as usize;
    let seeds: Vec<u64> = match env("ZMP_ACCOUNT_SEQUENCE_SEED") {
        Some(seed) => vec![seed],
        None => {
            let base = rand::random::<u32>() as u64;
            (base..base + env("ZMP_ACCOUNT_SEQUENCES").unwrap_or(12)).collect()
        }
    };
    for seed in seeds {
        let acts = draw(seed, steps);
        if let Err(problem) = run_sequence(seed, &acts).await {
            panic!("{problem}");
        }
    }
}
