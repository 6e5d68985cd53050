//! When a token goes bad, through the real binary against the in-process emulators: a
//! rejected token that cannot be replaced is dead (never sent again, 503 + `Retry-After`,
//! `/readyz` 503, `/status` says why) until a new one is held; a fixed secret and SIGHUP
//! mint at once; a replacement rejected before any acceptance passes through and `/status`
//! says so, while one that served is replaced like any token.

use std::path::Path;
use std::time::Duration;

use tokio::time::Instant;
use zoho_emulator::accounts::{AccountsControl, AccountsEmulator};
use zoho_emulator::meeting::{MeetingControl, MeetingEmulator};
use zoho_meeting_proxy::secret::Secret;
use zoho_meeting_proxy::token::{
    FileStore, StoredAccessToken, StoredState, TokenStore, fingerprint, unix_ms,
};

use crate::support::served::Served;
use crate::support::{self, CLIENT_ID, CLIENT_SECRET};

const SCOPES: &[&str] = &["ZohoMeeting.manageOrg.READ", "ZohoMeeting.meeting.READ"];

/// The accounts and Meeting emulators, and a live refresh token.
async fn zoho() -> (AccountsEmulator, MeetingEmulator, String) {
    let accounts = support::emulator(support::options(Duration::from_secs(3600))).await;
    let meeting = support::meeting_emulator(&accounts).await;
    let refresh = accounts.control().issue_refresh_token(SCOPES);
    (accounts, meeting, refresh)
}

fn write_config(home: &Path, accounts: &str, meeting: &str, oauth: &str, token: &str) {
    let config = format!(
        r#"
[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"

[oauth]
client_id = "{CLIENT_ID}"
accounts_url = "{accounts}"
{oauth}

[upstream]
url = "{meeting}"

[token]
{token}
"#
    );
    std::fs::write(home.join("proxy.toml"), config).unwrap();
}

async fn get(served: &Served, path: &str) -> reqwest::Response {
    support::client()
        .get(format!("http://{}{path}", served.proxy))
        .send()
        .await
        .unwrap()
}

async fn status(served: &Served) -> serde_json::Value {
    let (code, body) = served.admin("/status").await;
    assert_eq!(code, 200);
    serde_json::from_str(&body).unwrap()
}

/// How many requests carrying `token` reached the Meeting emulator.
fn arrivals(meeting: &MeetingControl, token: &str) -> usize {
    let header = format!("Zoho-oauthtoken {token}");
    meeting
        .requests()
        .iter()
        .filter(|r| r.authorization.as_deref() == Some(header.as_str()))
        .count()
}

async fn until(within: Duration, what: &str, served: &Served, mut cond: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !cond().await {
        assert!(Instant::now() < deadline, "{what}:\n{}", served.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_rejected_token_with_the_budget_spent_is_dead_until_the_window_frees() {
    let (accounts, meeting, refresh) = zoho().await;
    let home = tempfile::tempdir().unwrap();
    let store_path = home.path().join("token.json");
    // The store holds an access token Zoho does not know (revoked, say) and ten mints made
    // almost ten minutes ago: the budget is spent for a few more seconds.
    let dead_token = "1000.00000000000000000000000000dead.00000000000000000000000000dead";
    let now = unix_ms();
    let frees_in = Duration::from_secs(6);
    let oldest = now - 600_000 + u64::try_from(frees_in.as_millis()).unwrap();
    let minted_by = fingerprint(&format!("{CLIENT_ID}\n{refresh}"));
    let store = FileStore::new(store_path.clone());
    let accounts_url = accounts.url();
    store
        .update(Box::new(move |s: &mut StoredState| {
            s.access_token = Some(StoredAccessToken {
                token: Secret::from(dead_token),
                expires_at: now + 3_000_000,
                accounts_server: accounts_url,
                minted_by,
                lifetime: None,
            });
            s.mints = (0..10).map(|i| oldest + i).collect();
        }))
        .await
        .unwrap();
    write_config(
        home.path(),
        &accounts.url(),
        &meeting.url(),
        &format!("client_secret = \"{CLIENT_SECRET}\"\nrefresh_token = \"{refresh}\""),
        &format!("store = \"file\"\npath = \"{}\"", store_path.display()),
    );
    let served = Served::start(home.path()).await;
    served.wait_ready(200).await;
    let started = Instant::now();

    // Zoho rejects it; no replacement can be had: 503 with Retry-After, problem+json.
    let response = get(&served, "/api/v2/user.json").await;
    assert_eq!(response.status(), 503);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=6).contains(&retry_after), "Retry-After {retry_after}");
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let problem: serde_json::Value = response.json().await.unwrap();
    assert!(
        problem["detail"].as_str().unwrap().contains("rejected"),
        "{problem}"
    );
    assert_eq!(arrivals(&meeting.control(), dead_token), 1);

    // The dead token is never sent again.
    for _ in 0..5 {
        assert_eq!(get(&served, "/api/v2/user.json").await.status(), 503);
    }
    assert_eq!(arrivals(&meeting.control(), dead_token), 1);
    assert_eq!(meeting.control().request_count(), 1);
    assert_eq!(accounts.control().mint_count(), 0, "the budget held");

    if started.elapsed() < frees_in {
        assert_eq!(served.admin("/readyz").await.0, 503);
        let s = status(&served).await;
        assert_eq!(s["ready"], false, "{s}");
        assert_eq!(s["reason"], "rejected_by_upstream", "{s}");
        assert_eq!(s["blocked_by"], "budget", "{s}");
        assert!(s["last_error"].as_str().unwrap().contains("budget"), "{s}");
        let (_, metrics) = served.admin("/metrics").await;
        assert!(
            metrics.contains("zoho_proxy_token_rejected_by_upstream{account=\"default\"} 1"),
            "{metrics}"
        );
    }

    // When the window frees, the background refresher mints by itself: ready again.
    served.wait_ready(200).await;
    assert_eq!(accounts.control().mint_count(), 1);
    let response = get(&served, "/api/v2/user.json").await;
    assert_eq!(response.status(), 200);
    let s = status(&served).await;
    assert_eq!(s["ready"], true, "{s}");
    assert!(s["reason"].is_null(), "{s}");
    assert_eq!(arrivals(&meeting.control(), dead_token), 1);
    served.stop(&[CLIENT_SECRET, &refresh]).await;
}

#[tokio::test]
async fn a_fixed_secret_file_and_sighup_mint_at_once_without_a_request() {
    let (accounts, meeting, refresh) = zoho().await;
    let home = tempfile::tempdir().unwrap();
    let secret_file = home.path().join("client_secret");
    std::fs::write(&secret_file, "wrong-secret").unwrap();
    write_config(
        home.path(),
        &accounts.url(),
        &meeting.url(),
        &format!(
            "client_secret_file = \"{}\"\nrefresh_token = \"{refresh}\"",
            secret_file.display()
        ),
        "store = \"memory\"",
    );
    let served = Served::start(home.path()).await;
    let control: AccountsControl = accounts.control();
    until(
        Duration::from_secs(10),
        "no terminal stop",
        &served,
        async || status(&served).await["refresh_stopped"] == true,
    )
    .await;
    let s = status(&served).await;
    assert_eq!(s["blocked_by"], "terminal", "{s}");
    assert_eq!(served.admin("/readyz").await.0, 503);
    let requests_before = control.token_requests();

    std::fs::write(&secret_file, CLIENT_SECRET).unwrap();
    served.signal("-HUP");
    until(
        Duration::from_secs(5),
        "no mint after SIGHUP",
        &served,
        async || served.admin("/readyz").await.0 == 200,
    )
    .await;
    assert_eq!(control.mint_count(), 1, "one mint");
    assert_eq!(control.token_requests(), requests_before + 1, "one attempt");
    assert_eq!(
        meeting.control().request_count(),
        0,
        "no request was needed"
    );
    let s = status(&served).await;
    assert_eq!(s["refresh_stopped"], false, "{s}");
    assert!(s["blocked_by"].is_null(), "{s}");
    served.stop(&[CLIENT_SECRET, &refresh]).await;
}

/// A rejection is judged by what the token has done: a replacement that Zoho rejects on its
/// first use passes through (new tokens do not help: wrong data centre), and that state ends
/// when Zoho accepts a token again; a replacement that served and is rejected later (an
/// hour's second revocation) is refreshed and replayed like any token.
#[tokio::test]
async fn a_replacement_rejected_before_acceptance_passes_through_one_that_served_is_replaced() {
    let (accounts, meeting, refresh) = zoho().await;
    let home = tempfile::tempdir().unwrap();
    write_config(
        home.path(),
        &accounts.url(),
        &meeting.url(),
        &format!("client_secret = \"{CLIENT_SECRET}\"\nrefresh_token = \"{refresh}\""),
        "store = \"memory\"",
    );
    let served = Served::start(home.path()).await;
    served.wait_ready(200).await;

    // As a wrong data centre would: every token is rejected.
    meeting.control().reject_all_tokens(true);
    let response = get(&served, "/api/v2/user.json").await;
    assert_eq!(response.status(), 400);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("INVALID_OAUTHTOKEN")
    );
    // One replacement was minted and rejected too; later rejections mint nothing.
    assert_eq!(accounts.control().mint_count(), 2);
    for _ in 0..3 {
        assert_eq!(get(&served, "/api/v2/user.json").await.status(), 400);
    }
    assert_eq!(accounts.control().mint_count(), 2);
    let s = status(&served).await;
    assert_eq!(s["upstream_rejects_fresh_tokens"], true, "{s}");
    let hint = s["hint"].as_str().unwrap();
    assert!(
        hint.contains("data centre") && hint.contains("scopes"),
        "{s}"
    );

    // Zoho accepts the replacement now: the state ends by itself.
    meeting.control().reject_all_tokens(false);
    assert_eq!(get(&served, "/api/v2/user.json").await.status(), 200);
    let s = status(&served).await;
    assert_eq!(s["upstream_rejects_fresh_tokens"], false, "{s}");
    assert!(s["hint"].is_null(), "{s}");

    // The replacement served; Zoho revokes it (an hour's second revocation), then the
    // next one after it served too: each is refreshed and replayed, no client sees a 400.
    for round in 0..2 {
        meeting.control().revoke_tokens_in_use(1);
        let mints = accounts.control().mint_count();
        for i in 0..3 {
            let response = get(&served, "/api/v2/user.json").await;
            assert_eq!(response.status(), 200, "round {round}, request {i}");
        }
        assert_eq!(accounts.control().mint_count(), mints + 1, "round {round}");
        let s = status(&served).await;
        assert_eq!(s["upstream_rejects_fresh_tokens"], false, "{s}");
        assert_eq!(s["ready"], true, "{s}");
    }
    served.stop(&[CLIENT_SECRET, &refresh]).await;
}

/// A refresh token of another data centre with `oauth.data_center` unset: Zoho's token
/// answer names the account's data centre (`api_domain`), and the proxy says so at start
/// (an error naming `oauth.data_center` and the value), in `/status` and in
/// `check --online`, instead of silently using the US servers.
#[tokio::test]
async fn a_data_centre_nobody_chose_is_not_silently_guessed() {
    use zoho_meeting_proxy::config::DataCenter;
    let mut options = support::options(Duration::from_secs(3600));
    options.location = DataCenter::Eu;
    let accounts = support::emulator(options).await;
    let meeting = support::meeting_emulator(&accounts).await;
    let refresh = accounts.control().issue_refresh_token(SCOPES);
    let home = tempfile::tempdir().unwrap();
    let oauth = format!("client_secret = \"{CLIENT_SECRET}\"\nrefresh_token = \"{refresh}\"");
    write_config(
        home.path(),
        &accounts.url(),
        &meeting.url(),
        &oauth,
        "store = \"memory\"",
    );
    let served = Served::start(home.path()).await;
    served.wait_ready(200).await;
    let s = status(&served).await;
    let mismatch = s["data_center_mismatch"].as_str().unwrap_or_default();
    assert!(
        mismatch.contains("set oauth.data_center = \"eu\"")
            && mismatch.contains("https://www.zohoapis.eu"),
        "{s}"
    );
    assert_eq!(s["hint"].as_str(), Some(mismatch), "{s}");
    let log = served.stop(&[CLIENT_SECRET, &refresh]).await;
    assert!(
        log.lines().any(|l| l.contains("ERROR")
            && l.contains("oauth.data_center")
            && l.contains("set oauth.data_center = \"eu\"")),
        "{log}"
    );

    let check = |extra: &str| {
        let mut c = support::bin(home.path());
        c.args(["check", "--online"])
            .env("ZOHO_PROXY_OAUTH__DATA_CENTER", extra);
        c
    };
    let out = support::run(check("")).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("set oauth.data_center = \"eu\""),
        "{stderr}"
    );
    // Told, the proxy agrees with Zoho: nothing to say.
    let out = support::run(check("eu")).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("# ok"), "{stdout}");
}
