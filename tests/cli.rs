//! The real binary: exit codes, and login → token → check → revoke against the emulator.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use url::Url;

use zoho_emulator::accounts::AccountsOptions;

use crate::support::{self, CLIENT_ID, CLIENT_SECRET, bin, run, text};

/// A proxy.toml for the emulator at `accounts`, storing tokens in `home/token.json`.
pub(crate) fn write_config(home: &Path, accounts: &str, extra: &str) {
    let config = format!(
        r#"
[oauth]
client_id = "{CLIENT_ID}"
client_secret = "{CLIENT_SECRET}"
accounts_url = "{accounts}"
redirect_uri = "http://127.0.0.1:0/callback"
scopes = ["ZohoMeeting.manageOrg.READ", "ZohoMeeting.meeting.READ", "ZohoMeeting.meeting.CREATE"]

[token]
path = "{}"
{extra}
"#,
        home.join("token.json").display()
    );
    std::fs::write(home.join("proxy.toml"), config).unwrap();
}

pub(crate) fn stored(home: &Path) -> serde_json::Value {
    stored_in(home, "token.json")
}

/// The token store file `file` in `home` (`token-NAME.json` is account NAME's).
pub(crate) fn stored_in(home: &Path, file: &str) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(home.join(file)).unwrap()).unwrap()
}

/// An `[[accounts]]` entry named `name` on the emulator at `accounts`, for
/// [`write_config`]'s `extra` (an account's accounts server is its data centre's unless set).
pub(crate) fn account_entry(name: &str, accounts: &str) -> String {
    format!("\n[[accounts]]\nname = \"{name}\"\naccounts_url = \"{accounts}\"\n")
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Starts `login --no-browser ARGS` with `env` set and returns the child, the authorization
/// URL it printed and the rest of its standard output.
pub(crate) async fn spawn_login(
    home: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> (
    tokio::process::Child,
    Url,
    tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
) {
    let mut cmd = tokio::process::Command::from(bin(home));
    cmd.args(["login", "--no-browser", "--timeout", "30s"])
        .args(args)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("login prints the URL")
        .unwrap()
        .expect("a line");
    (child, Url::parse(&line).expect("the line is a URL"), lines)
}

/// Starts `login --no-browser` and returns the child and the authorization URL it printed.
async fn start_login(home: &Path) -> (tokio::process::Child, Url) {
    let (child, url, mut lines) = spawn_login(home, &[], &[]).await;
    // Nothing else may follow on stdout.
    tokio::spawn(async move {
        if let Ok(Some(extra)) = lines.next_line().await {
            panic!("login printed more than the URL on stdout: {extra}");
        }
    });
    (child, url)
}

/// The refresh token in `home`'s store, if it holds one.
pub(crate) fn stored_refresh_token(home: &Path) -> Option<String> {
    stored_refresh_token_in(home, "token.json")
}

/// The refresh token in the store file `file` in `home`, if it holds one.
pub(crate) fn stored_refresh_token_in(home: &Path, file: &str) -> Option<String> {
    let bytes = std::fs::read(home.join(file)).ok()?;
    let state: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    state["refresh_token"]["token"].as_str().map(str::to_owned)
}

pub(crate) async fn finish(child: tokio::process::Child) -> (i32, String) {
    let output = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .expect("login ends")
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Runs a whole browser login against the emulator: `login --no-browser`, the emulator's
/// consent, the redirect back. Returns the exit code and stderr.
async fn browser_login(home: &Path, args: &[&str]) -> (i32, String) {
    let login = browser_login_page(home, args, &[]).await;
    assert_eq!(login.status, 200);
    (login.code, login.stderr)
}

/// What a browser login showed, as [`browser_login_page`] ran it.
struct BrowserLogin {
    /// `login`'s exit code and standard error.
    code: i32,
    stderr: String,
    /// The status and page the browser got for the redirect.
    status: u16,
    page: String,
    /// The refresh token in the store when the page arrived.
    stored_at_answer: Option<String>,
}

/// As [`browser_login`], with `env` set for `login`, and what the browser was shown.
async fn browser_login_page(home: &Path, args: &[&str], env: &[(&str, &str)]) -> BrowserLogin {
    let (child, auth_url, _) = spawn_login(home, args, env).await;
    let http = no_redirects();
    let consent = http.get(auth_url).send().await.unwrap();
    assert_eq!(consent.status(), 302);
    let location = consent.headers()["location"].to_str().unwrap().to_owned();
    let answer = http.get(location).send().await.unwrap();
    let status = answer.status().as_u16();
    let page = answer.text().await.unwrap();
    let stored_at_answer = stored_refresh_token(home);
    let (code, stderr) = finish(child).await;
    BrowserLogin {
        code,
        stderr,
        status,
        page,
        stored_at_answer,
    }
}

/// Runs `check` (with `args`) and returns the exit code, stdout and stderr.
async fn check(home: &Path, args: &[&str]) -> (i32, String, String) {
    let out = run({
        let mut c = bin(home);
        c.arg("check").args(args);
        c
    })
    .await;
    let (stdout, stderr) = text(&out);
    (out.status.code().unwrap_or(-1), stdout, stderr)
}

/// The value printed for `key` in `[section]` of `check`'s output.
fn printed<'a>(stdout: &'a str, section: &str, key: &str) -> Option<&'a str> {
    let header = format!("[{section}]");
    let prefix = format!("{key} = ");
    stdout
        .lines()
        .skip_while(|l| *l != header)
        .skip(1)
        .take_while(|l| !l.starts_with('['))
        .find_map(|l| l.strip_prefix(prefix.as_str()))
}

#[tokio::test]
async fn help_lists_every_command_and_unknown_commands_exit_2() {
    let home = tempfile::tempdir().unwrap();
    let out = run({
        let mut c = bin(home.path());
        c.arg("--help");
        c
    })
    .await;
    assert_eq!(out.status.code(), Some(0));
    let (stdout, _) = text(&out);
    for command in ["login", "token", "revoke", "check"] {
        assert!(
            stdout.contains(command),
            "{command} missing from --help:\n{stdout}"
        );
    }
    let out = run({
        let mut c = bin(home.path());
        c.args(["login", "--help"]);
        c
    })
    .await;
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out).0.contains("--keep-old"));
    for command in ["login", "token", "revoke", "status"] {
        let out = run({
            let mut c = bin(home.path());
            c.args([command, "--help"]);
            c
        })
        .await;
        assert_eq!(out.status.code(), Some(0));
        assert!(
            text(&out).0.contains("--account <NAME>"),
            "{command}: {}",
            text(&out).0
        );
    }
    let out = run({
        let mut c = bin(home.path());
        c.arg("frobnicate");
        c
    })
    .await;
    assert_eq!(out.status.code(), Some(2));
}

#[tokio::test]
async fn bad_configuration_exits_78_naming_key_and_source() {
    let home = tempfile::tempdir().unwrap();
    std::fs::write(
        home.path().join("proxy.toml"),
        "[oauth]\nclient_sekret = \"x\"\n",
    )
    .unwrap();
    let out = run({
        let mut c = bin(home.path());
        c.arg("check");
        c
    })
    .await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    assert!(
        stderr.contains("oauth.client_sekret") && stderr.contains("proxy.toml"),
        "{stderr}"
    );
    assert!(stdout.is_empty());

    std::fs::write(home.path().join("proxy.toml"), "").unwrap();
    let out = run({
        let mut c = bin(home.path());
        c.arg("check")
            .env("ZOHO_PROXY_TOKEN__REFRESH_MARGIN", "soon");
        c
    })
    .await;
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    assert!(
        stderr.contains("token.refresh_margin")
            && stderr.contains("ZOHO_PROXY_TOKEN__REFRESH_MARGIN"),
        "{stderr}"
    );

    let out = run({
        let mut c = bin(home.path());
        c.args(["-c", "missing.toml", "check"]);
        c
    })
    .await;
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    assert!(stderr.contains("missing.toml"), "{stderr}");
}

#[tokio::test]
async fn commands_without_a_refresh_token_say_to_log_in() {
    let emu = support::emulator(support::options(Duration::from_secs(3600))).await;
    let home = tempfile::tempdir().unwrap();
    write_config(home.path(), &emu.url(), "");
    let out = run({
        let mut c = bin(home.path());
        c.arg("token");
        c
    })
    .await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    assert!(stdout.is_empty());
    assert!(
        stderr.contains("oauth.refresh_token") && stderr.contains("login"),
        "{stderr}"
    );
}

/// The whole lifecycle through the real binary: browser login (with a forged redirect
/// refused on the way), token, check --online, revoke.
#[tokio::test]
async fn login_token_check_revoke_end_to_end() {
    let emu = support::emulator(support::options(Duration::from_secs(3600))).await;
    let control = emu.control();
    let meeting = support::meeting_emulator(&emu).await;
    let home = tempfile::tempdir().unwrap();
    write_config(
        home.path(),
        &emu.url(),
        &format!("\n[upstream]\nurl = \"{}\"\n", meeting.url()),
    );

    let (child, auth_url) = start_login(home.path()).await;
    let q: HashMap<String, String> = auth_url.query_pairs().into_owned().collect();
    assert_eq!(auth_url.path(), "/oauth/v2/auth");
    assert_eq!(q["client_id"], CLIENT_ID);
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["access_type"], "offline");
    assert_eq!(q["prompt"], "consent");
    assert_eq!(
        q["scope"],
        "ZohoMeeting.manageOrg.READ,ZohoMeeting.meeting.READ,ZohoMeeting.meeting.CREATE"
    );
    assert!(q["state"].len() >= 32);
    let redirect = Url::parse(&q["redirect_uri"]).unwrap();
    assert_ne!(redirect.port(), Some(0), "the bound port is in the URL");

    // The emulator consents at once and redirects to the proxy's loopback listener.
    let http = no_redirects();
    let consent = http.get(auth_url.clone()).send().await.unwrap();
    assert_eq!(consent.status(), 302);
    let location = Url::parse(consent.headers()["location"].to_str().unwrap()).unwrap();

    // A redirect with the wrong state is refused and does not end the login.
    let mut forged = location.clone();
    forged.set_query(Some("code=1000.stolen&state=wrong"));
    let answer = http.get(forged).send().await.unwrap();
    assert_eq!(answer.status(), 400);

    let answer = http.get(location).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    assert!(answer.text().await.unwrap().contains("Logged in"));
    let (code, stderr) = finish(child).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains(CLIENT_SECRET));

    let store = stored(home.path());
    let mode = std::fs::metadata(home.path().join("token.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let refresh_token = store["refresh_token"]["token"].as_str().unwrap().to_owned();
    assert!(refresh_token.starts_with("1000."));
    assert_eq!(
        control.mint_count(),
        1,
        "the code exchange minted the first token"
    );

    // `token` reuses the access token from the login: stdout is that token, nothing else.
    let out = run({
        let mut c = bin(home.path());
        c.arg("token");
        c
    })
    .await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(stdout.lines().count(), 1);
    let access = stdout.trim_end();
    assert!(control.validate_access_token(access).is_some());
    assert_eq!(
        control.mint_count(),
        1,
        "no new mint for a still-valid token"
    );
    assert!(!stderr.contains(access));

    // `check --online` mints once and prints the config with secrets redacted.
    let out = run({
        let mut c = bin(home.path());
        c.args(["check", "--online"]);
        c
    })
    .await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(control.mint_count(), 2);
    assert!(
        stdout.contains("[redacted]") && stdout.contains("# ok"),
        "{stdout}"
    );
    assert!(stdout.contains("online: refreshed"), "{stdout}");
    // ... and calls the Meeting API with the fresh token.
    assert!(
        stdout.contains(&format!("zsoid {}", meeting.control().zsoid()))
            && stdout.contains("sandbox.user@example.com"),
        "{stdout}"
    );
    let calls = meeting.control().requests();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].path, "/api/v2/user.json");
    assert!(
        calls[0]
            .authorization
            .as_deref()
            .is_some_and(|a| a.starts_with("Zoho-oauthtoken 1000."))
    );
    for secret in [CLIENT_SECRET, refresh_token.as_str(), access] {
        assert!(!stdout.contains(secret) && !stderr.contains(secret));
    }

    // `revoke` kills the refresh token at Zoho and removes it from the store.
    let out = run({
        let mut c = bin(home.path());
        c.arg("revoke");
        c
    })
    .await;
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        control.validate_access_token(access).is_none(),
        "revocation kills access tokens"
    );
    let store = stored(home.path());
    assert!(
        store["refresh_token"].is_null() && store["access_token"].is_null(),
        "{store}"
    );
    let out = run({
        let mut c = bin(home.path());
        c.arg("token");
        c
    })
    .await;
    assert_eq!(out.status.code(), Some(78));
}

/// The browser hears "Logged in" only once the code is exchanged and the refresh token
/// stored; when the exchange fails it gets "Login failed" with the reason, and no secret.
/// See issue 20, item 3 (the success page came before the exchange).
#[tokio::test]
async fn the_browser_is_told_the_outcome_of_the_code_exchange() {
    let emu = support::emulator(support::options(Duration::from_secs(3600))).await;
    let control = emu.control();
    let home = tempfile::tempdir().unwrap();
    write_config(home.path(), &emu.url(), "");

    // A wrong client secret: the consent needs only the client id; the exchange is refused.
    let wrong = "wrong-client-secret-7c41";
    let failed = browser_login_page(
        home.path(),
        &[],
        &[("ZOHO_PROXY_OAUTH__CLIENT_SECRET", wrong)],
    )
    .await;
    let (page, stderr) = (&failed.page, &failed.stderr);
    assert_eq!(failed.code, 1, "{stderr}");
    assert_eq!(control.token_requests(), 1, "the exchange was tried");
    assert_eq!(failed.status, 502, "{page}");
    assert!(
        page.contains("Login failed") && !page.contains("Logged in"),
        "{page}"
    );
    assert!(page.contains("invalid_client"), "the reason: {page}");
    assert!(
        !page.contains(wrong) && !page.contains(CLIENT_SECRET),
        "{page}"
    );
    assert!(stderr.contains("invalid_client"), "{stderr}");
    assert_eq!(failed.stored_at_answer, None);

    // The right secret: "Logged in", once the refresh token is in the store.
    let login = browser_login_page(home.path(), &[], &[]).await;
    assert_eq!(login.code, 0, "{}", login.stderr);
    assert_eq!(login.status, 200, "{}", login.page);
    assert!(login.page.contains("Logged in"), "{}", login.page);
    let stored = login.stored_at_answer.expect("stored before the page");
    assert!(stored.starts_with("1000."), "{stored}");
}

#[tokio::test]
async fn login_refuses_an_accounts_server_that_is_not_zohos() {
    let emu = support::emulator(support::options(Duration::from_secs(3600))).await;
    let control = emu.control();
    let home = tempfile::tempdir().unwrap();
    write_config(home.path(), &emu.url(), "");

    let (child, auth_url) = start_login(home.path()).await;
    let q: HashMap<String, String> = auth_url.query_pairs().into_owned().collect();
    let mut evil = Url::parse(&q["redirect_uri"]).unwrap();
    evil.query_pairs_mut()
        .append_pair("code", "1000.abc")
        .append_pair("state", &q["state"])
        .append_pair("location", "us")
        .append_pair("accounts-server", "https://accounts.zoho.com.evil.example");
    let answer = no_redirects().get(evil).send().await.unwrap();
    assert_eq!(answer.status(), 400);
    let (code, stderr) = finish(child).await;
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("not one of Zoho's"), "{stderr}");
    assert_eq!(
        control.token_requests(),
        0,
        "the client secret went nowhere"
    );
    assert!(!home.path().join("token.json").exists());
}

#[tokio::test]
async fn login_with_a_self_client_code_over_tls() {
    let home = tempfile::tempdir().unwrap();
    let (emu, ca_file) =
        support::tls_emulator(support::options(Duration::from_secs(3600)), home.path()).await;
    let control = emu.control();
    write_config(
        home.path(),
        &emu.url(),
        &format!("\n[upstream]\nca_file = \"{}\"\n", ca_file.display()),
    );
    let grant = control.issue_grant_code(&["ZohoMeeting.meeting.READ"]);
    let out = run({
        let mut c = bin(home.path());
        c.args(["login", "--code", &grant]);
        c
    })
    .await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stdout.is_empty());
    assert!(!stderr.contains(&grant));
    let store = stored(home.path());
    assert_eq!(store["refresh_token"]["accounts_server"], emu.url());
    // A custom accounts server names no data centre: the configured one is recorded.
    assert_eq!(store["refresh_token"]["data_center"], "us");

    // A used code is refused, terminally, with advice.
    let out = run({
        let mut c = bin(home.path());
        c.args(["login", "--code", &grant]);
        c
    })
    .await;
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("invalid_code"), "{stderr}");

    let out = run({
        let mut c = bin(home.path());
        c.arg("token");
        c
    })
    .await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(control.validate_access_token(stdout.trim_end()).is_some());
}

#[tokio::test]
async fn token_mints_when_the_stored_token_is_gone_and_reports_zoho_errors() {
    let emu = support::emulator(support::options(Duration::from_secs(3600))).await;
    let control = emu.control();
    let home = tempfile::tempdir().unwrap();
    let refresh = control.issue_refresh_token(&["ZohoMeeting.meeting.READ"]);
    write_config(home.path(), &emu.url(), "");
    let token = || {
        let mut c = bin(home.path());
        c.arg("token")
            .env("ZOHO_PROXY_OAUTH__REFRESH_TOKEN", &refresh);
        c
    };
    let out = run(token()).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(control.validate_access_token(stdout.trim_end()).is_some());
    assert_eq!(control.mint_count(), 1);
    assert!(!stderr.contains(&refresh));
    // A second run reuses the stored access token.
    let out = run(token()).await;
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out).0, stdout);
    assert_eq!(control.mint_count(), 1);

    // A revoked refresh token is a clear, terminal failure, and the stored token is not
    // reused for other credentials.
    control.revoke_refresh_token(&refresh);
    let other = control.issue_refresh_token(&["ZohoMeeting.meeting.READ"]);
    control.revoke_refresh_token(&other);
    let out = run({
        let mut c = bin(home.path());
        c.arg("token")
            .env("ZOHO_PROXY_OAUTH__REFRESH_TOKEN", &other);
        c
    })
    .await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stdout.is_empty());
    assert!(
        stderr.contains("invalid_code") && stderr.contains("login"),
        "{stderr}"
    );
    assert!(!stderr.contains(&other));
}

/// A `serve` process and the addresses it logged.
struct Served {
    child: tokio::process::Child,
    proxy: std::net::SocketAddr,
    admin: std::net::SocketAddr,
    stderr: tokio::task::JoinHandle<String>,
}

/// Runs `serve` (the default command) and reads its bound addresses from the log.
async fn serve(home: &Path, env: &[(&str, &str)]) -> Served {
    let mut cmd = tokio::process::Command::from(bin(home));
    cmd.envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut proxy = None;
    let mut admin = None;
    let mut log = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while proxy.is_none() || admin.is_none() {
        let line = tokio::time::timeout_at(deadline, lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("no listening lines:\n{log}"))
            .unwrap()
            .unwrap_or_else(|| panic!("serve exited:\n{log}"));
        log.push_str(&line);
        log.push('\n');
        let addr = || {
            let rest = &line[line.find("addr=").unwrap() + 5..];
            rest.split_whitespace().next().unwrap().parse().unwrap()
        };
        if line.contains("proxy listening") {
            proxy = Some(addr());
        } else if line.contains("admin listening") {
            admin = Some(addr());
        }
    }
    let stderr = tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            log.push_str(&line);
            log.push('\n');
        }
        log
    });
    Served {
        child,
        proxy: proxy.unwrap(),
        admin: admin.unwrap(),
        stderr,
    }
}

fn kill(child: &tokio::process::Child, signal: &str) {
    let pid = child.id().unwrap().to_string();
    let status = std::process::Command::new("kill")
        .args([signal, &pid])
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test]
async fn serve_proxies_then_exits_cleanly_on_sigterm() {
    let emu = support::emulator(support::options(Duration::from_secs(3600))).await;
    let upstream = support::TestUpstream::start().await;
    let home = tempfile::tempdir().unwrap();
    let refresh = emu
        .control()
        .issue_refresh_token(&["ZohoMeeting.meeting.READ"]);
    write_config(
        home.path(),
        &emu.url(),
        &format!(
            "store = \"memory\"\n\n[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n\n[upstream]\nurl = \"{}\"\n",
            upstream.url()
        ),
    );
    // The refresh token comes from the environment, as in a container.
    let served = serve(
        home.path(),
        &[("ZOHO_PROXY_OAUTH__REFRESH_TOKEN", refresh.as_str())],
    )
    .await;

    // `wait` and `status` talk to the admin listener named in the configuration.
    let status_config = home.path().join("status.toml");
    std::fs::write(
        &status_config,
        format!("[server]\nadmin_listen = \"{}\"\n", served.admin),
    )
    .unwrap();
    let out = run({
        let mut c = bin(home.path());
        c.args([
            "-c",
            status_config.to_str().unwrap(),
            "wait",
            "--timeout",
            "10s",
        ]);
        c
    })
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    let response = support::client()
        .get(format!("http://{}/api/v2/user.json", served.proxy))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let seen = upstream.seen().pop().unwrap();
    assert!(
        seen.header("authorization")
            .unwrap()
            .starts_with("Zoho-oauthtoken 1000.")
    );
    let out = run({
        let mut c = bin(home.path());
        c.args(["-c", status_config.to_str().unwrap(), "status"]);
        c
    })
    .await;
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout.contains("ready:              true"), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("token expires in:   35") && l.ends_with(" s")),
        "{stdout}"
    );
    assert!(stdout.contains("last error:         -\n"), "{stdout}");
    assert!(
        !stdout.contains("- s"),
        "no unit after a missing figure: {stdout}"
    );
    assert!(!stdout.contains(&refresh));

    kill(&served.child, "-TERM");
    let mut child = served.child;
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("exits after SIGTERM")
        .unwrap();
    let log = served.stderr.await.unwrap();
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(log.contains("shutdown complete"), "{log}");
    let token = seen
        .header("authorization")
        .unwrap()
        .trim_start_matches("Zoho-oauthtoken ")
        .to_owned();
    for secret in [refresh.as_str(), token.as_str(), CLIENT_SECRET] {
        assert!(!log.contains(secret), "a secret reached the log");
    }

    // `wait` against nothing gives up with exit 1.
    let out = run({
        let mut c = bin(home.path());
        c.args([
            "-c",
            status_config.to_str().unwrap(),
            "wait",
            "--timeout",
            "1s",
        ]);
        c
    })
    .await;
    assert_eq!(out.status.code(), Some(1));
    // Saying why: nothing listens there any more.
    let nothing = format!("nothing is listening on {}", served.admin);
    assert!(text(&out).1.contains(&nothing), "{}", text(&out).1);
    let out = run({
        let mut c = bin(home.path());
        c.args(["-c", status_config.to_str().unwrap(), "status"]);
        c
    })
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).1.contains(&nothing), "{}", text(&out).1);
}

/// `login` records the redirect's data centre; the Meeting host follows it unless
/// `upstream.url` is set, and an `oauth.data_center` that disagrees exits 78 naming both.
#[tokio::test]
async fn login_records_the_data_centre_and_the_meeting_host_follows_it() {
    let emu = support::emulator(AccountsOptions {
        location: zoho_meeting_proxy::config::DataCenter::Eu,
        ..support::options(Duration::from_secs(3600))
    })
    .await;
    let home = tempfile::tempdir().unwrap();
    write_config(home.path(), &emu.url(), "");
    let (code, stderr) = browser_login(home.path(), &[]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("data centre eu"), "{stderr}");
    assert_eq!(stored(home.path())["refresh_token"]["data_center"], "eu");

    let (code, stdout, stderr) = check(home.path(), &[]).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        printed(&stdout, "upstream", "url"),
        Some("\"https://meeting.zoho.eu\""),
        "{stdout}"
    );
    assert_eq!(printed(&stdout, "oauth", "data_center"), Some("\"eu\""));

    // An explicit oauth.data_center that disagrees is a configuration error.
    let file = home.path().join("proxy.toml");
    let plain = std::fs::read_to_string(&file).unwrap();
    std::fs::write(
        &file,
        plain.replace("[oauth]\n", "[oauth]\ndata_center = \"us\"\n"),
    )
    .unwrap();
    for command in ["check", "token"] {
        let out = run({
            let mut c = bin(home.path());
            c.arg(command);
            c
        })
        .await;
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(78), "{command}: {stderr}");
        assert!(stdout.is_empty(), "{stdout}");
        assert!(
            stderr.contains("oauth.data_center")
                && stderr.contains("\"us\"")
                && stderr.contains("eu data centre")
                && stderr.contains("proxy.toml"),
            "{stderr}"
        );
    }
    // One that agrees is fine.
    std::fs::write(
        &file,
        plain.replace("[oauth]\n", "[oauth]\ndata_center = \"eu\"\n"),
    )
    .unwrap();
    let (code, stdout, stderr) = check(home.path(), &[]).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        printed(&stdout, "upstream", "url"),
        Some("\"https://meeting.zoho.eu\"")
    );

    // A configured upstream.url is kept.
    write_config(
        home.path(),
        &emu.url(),
        "\n[upstream]\nurl = \"https://meeting.zoho.in\"\n",
    );
    let (code, stdout, stderr) = check(home.path(), &[]).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        printed(&stdout, "upstream", "url"),
        Some("\"https://meeting.zoho.in\""),
        "{stdout}"
    );
    assert_eq!(printed(&stdout, "oauth", "data_center"), Some("\"eu\""));
}

/// `check --online` whose fresh token the Meeting API rejects blames the data centre or the
/// scopes, and exits 1; other failures name the status.
#[tokio::test]
async fn check_online_fails_when_the_meeting_api_rejects_the_fresh_token() {
    let emu = support::emulator(support::options(Duration::from_secs(3600))).await;
    let meeting = support::meeting_emulator(&emu).await;
    let home = tempfile::tempdir().unwrap();
    let refresh = emu
        .control()
        .issue_refresh_token(&["ZohoMeeting.manageOrg.READ"]);
    write_config(
        home.path(),
        &emu.url(),
        &format!("\n[upstream]\nurl = \"{}\"\n", meeting.url()),
    );
    let online = || {
        let mut c = bin(home.path());
        c.args(["check", "--online"])
            .env("ZOHO_PROXY_OAUTH__REFRESH_TOKEN", &refresh);
        c
    };
    meeting.control().reject_tokens(1);
    let out = run(online()).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("rejected a freshly minted token")
            && stderr.contains("data centre (us)")
            && stderr.contains("scopes")
            && stderr.contains(&meeting.url()),
        "{stderr}"
    );
    assert!(!stdout.contains("# ok"), "{stdout}");
    assert!(!stderr.contains(&refresh) && !stderr.contains(CLIENT_SECRET));

    // The rejection was used up: the next run passes.
    let out = run(online()).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stdout.contains("zsoid 700000001") && stdout.contains("# ok"),
        "{stdout}"
    );

    // A failing Meeting API is named by its status.
    meeting.control().set_failure_rate(1.0);
    let out = run(online()).await;
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("HTTP 500"), "{stderr}");
}

/// `login` over an existing refresh token stores the new one, then revokes the old one at
/// Zoho; `--keep-old` keeps it; a failed revocation is only a warning.
#[tokio::test]
async fn login_over_an_existing_refresh_token_revokes_the_old_one() {
    let emu = support::emulator(support::options(Duration::from_secs(3600))).await;
    let control = emu.control();
    let home = tempfile::tempdir().unwrap();
    write_config(home.path(), &emu.url(), "");
    let refresh_token = || {
        stored(home.path())["refresh_token"]["token"]
            .as_str()
            .unwrap()
            .to_owned()
    };

    let (code, stderr) = browser_login(home.path(), &[]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains("previous"), "{stderr}");
    let first = refresh_token();

    let (code, stderr) = browser_login(home.path(), &[]).await;
    assert_eq!(code, 0, "{stderr}");
    let second = refresh_token();
    assert_ne!(first, second);
    assert_eq!(control.revocations(), std::slice::from_ref(&first));
    assert!(
        stderr.contains("Revoked the previous refresh token"),
        "{stderr}"
    );
    assert!(!stderr.contains(&first) && !stderr.contains(&second));

    let (code, stderr) = browser_login(home.path(), &["--keep-old"]).await;
    assert_eq!(code, 0, "{stderr}");
    let third = refresh_token();
    assert_ne!(third, second);
    assert_eq!(
        control.revocations(),
        std::slice::from_ref(&first),
        "--keep-old revokes nothing"
    );
    assert!(
        stderr.contains("Kept the previous refresh token"),
        "{stderr}"
    );

    // The revocation endpoint is down: the new token is stored all the same.
    control.set_revoke_outage(Some(503));
    let (code, stderr) = browser_login(home.path(), &[]).await;
    assert_eq!(code, 0, "{stderr}");
    let fourth = refresh_token();
    assert_ne!(fourth, third);
    assert!(
        stderr.contains("warning") && stderr.contains("could not revoke the previous"),
        "{stderr}"
    );
    assert_eq!(control.revocations(), [first]);
    assert!(!stderr.contains(&third));
}

/// `revoke` deletes the local token only when Zoho confirmed or does not know the token.
#[tokio::test]
async fn revoke_keeps_the_token_unless_zoho_settled_it() {
    let emu = support::emulator(support::options(Duration::from_secs(3600))).await;
    let control = emu.control();
    let home = tempfile::tempdir().unwrap();
    write_config(home.path(), &emu.url(), "");
    let revoke = || {
        let mut c = bin(home.path());
        c.arg("revoke");
        c
    };
    let (code, stderr) = browser_login(home.path(), &[]).await;
    assert_eq!(code, 0, "{stderr}");
    let token = stored(home.path())["refresh_token"]["token"]
        .as_str()
        .unwrap()
        .to_owned();

    // Zoho's revocation endpoint fails: exit 1, and the token stays.
    control.set_revoke_outage(Some(503));
    let out = run(revoke()).await;
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("503") && stderr.contains("still in the token store"),
        "{stderr}"
    );
    assert_eq!(
        stored(home.path())["refresh_token"]["token"],
        token.as_str()
    );
    assert!(control.revocations().is_empty());

    // Unreachable: the same.
    let dead = support::emulator(support::options(Duration::from_secs(3600))).await;
    let dead_url = dead.url();
    dead.shutdown().await;
    let store = home.path().join("token.json");
    let saved = std::fs::read_to_string(&store).unwrap();
    std::fs::write(&store, saved.replace(&emu.url(), &dead_url)).unwrap();
    let out = run(revoke()).await;
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("still in the token store"), "{stderr}");
    assert_eq!(
        stored(home.path())["refresh_token"]["token"],
        token.as_str()
    );
    std::fs::write(&store, saved).unwrap();

    // A token Zoho no longer knows (revoked in the console) is removed.
    control.set_revoke_outage(None);
    assert!(control.revoke_refresh_token(&token));
    let out = run(revoke()).await;
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("does not know"), "{stderr}");
    assert!(stored(home.path())["refresh_token"].is_null());
    assert!(!stderr.contains(&token));
}

/// Runs the binary in `home` with `args` and returns the exit code, stdout and stderr.
async fn command(home: &Path, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = run({
        let mut c = bin(home);
        c.args(args).envs(env.iter().copied());
        c
    })
    .await;
    let (stdout, stderr) = text(&out);
    (out.status.code().unwrap_or(-1), stdout, stderr)
}

/// The refresh token the emulator minted `access` from.
fn minted_from(control: &zoho_emulator::accounts::AccountsControl, access: &str) -> String {
    control
        .mints()
        .into_iter()
        .find(|m| m.access_token == access)
        .and_then(|m| m.refresh_token)
        .unwrap_or_else(|| panic!("the emulator minted no such access token"))
}

/// `login`, `token` and `revoke` with `--account acme` work on acme's store only
/// (`token-acme.json`), and `login --account` records acme's data centre there, which
/// `check` then prints in acme's `[[accounts]]` entry. Issue 23, item 5.
#[tokio::test]
async fn login_token_and_revoke_take_an_account_and_touch_its_store_only() {
    let emu = support::emulator(AccountsOptions {
        location: zoho_meeting_proxy::config::DataCenter::Eu,
        ..support::options(Duration::from_secs(3600))
    })
    .await;
    let control = emu.control();
    let home = tempfile::tempdir().unwrap();
    write_config(home.path(), &emu.url(), &account_entry("acme", &emu.url()));
    let scopes = ["ZohoMeeting.manageOrg.READ", "ZohoMeeting.meeting.READ"];

    // `default` logs in with a Self Client code, into token.json as before.
    let grant = control.issue_grant_code(&scopes);
    let (code, _, stderr) = command(home.path(), &["login", "--code", &grant], &[]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(!home.path().join("token-acme.json").exists());
    let default_refresh = stored_refresh_token(home.path()).unwrap();
    let default_store = std::fs::read(home.path().join("token.json")).unwrap();

    // acme logs in with a Self Client code too, into its own file.
    let grant = control.issue_grant_code(&scopes);
    let (code, stdout, stderr) = command(
        home.path(),
        &["login", "--account", "acme", "--code", &grant],
        &[],
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(stderr.contains("as account acme"), "{stderr}");
    assert!(stderr.contains("token-acme.json"), "{stderr}");
    let acme_refresh = stored_refresh_token_in(home.path(), "token-acme.json").unwrap();
    assert_ne!(acme_refresh, default_refresh);
    assert_eq!(
        std::fs::read(home.path().join("token.json")).unwrap(),
        default_store,
        "default's store untouched"
    );
    let mode = std::fs::metadata(home.path().join("token-acme.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    // ... and again in the browser flow, whose redirect names the eu data centre: recorded
    // in acme's store, which replaces (and revokes) its previous refresh token.
    let login = browser_login_page(home.path(), &["--account", "acme"], &[]).await;
    assert_eq!(login.code, 0, "{}", login.stderr);
    assert!(
        login.page.contains("Logged in") && login.page.contains("for account acme"),
        "{}",
        login.page
    );
    assert!(login.stderr.contains("data centre eu"), "{}", login.stderr);
    let acme_store = stored_in(home.path(), "token-acme.json");
    assert_eq!(acme_store["refresh_token"]["data_center"], "eu");
    let acme_refresh_2 = acme_store["refresh_token"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(acme_refresh_2, acme_refresh);
    assert_eq!(control.revocations(), std::slice::from_ref(&acme_refresh));
    assert_eq!(
        std::fs::read(home.path().join("token.json")).unwrap(),
        default_store,
        "default's store untouched"
    );
    let acme_refresh = acme_refresh_2;

    // `check` prints acme's entry with the recorded data centre, its secrets redacted.
    let (code, stdout, stderr) = check(home.path(), &[]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("\n[[accounts]]\nname = \"acme\"\ndata_center = \"eu\"\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("# account acme: token store") && stdout.contains("token-acme.json"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Meeting API https://meeting.zoho.eu"),
        "{stdout}"
    );
    assert_eq!(printed(&stdout, "oauth", "data_center"), Some("\"us\""));
    for secret in [CLIENT_SECRET, &default_refresh, &acme_refresh] {
        assert!(!stdout.contains(secret) && !stderr.contains(secret));
    }

    // `token --account acme` prints a token minted from acme's refresh token; plain `token`
    // default's.
    let (code, acme_access, stderr) =
        command(home.path(), &["token", "--account", "acme"], &[]).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(acme_access.lines().count(), 1, "{acme_access}");
    let acme_access = acme_access.trim_end().to_owned();
    assert_eq!(minted_from(&control, &acme_access), acme_refresh);
    let (code, default_access, stderr) = command(home.path(), &["token"], &[]).await;
    assert_eq!(code, 0, "{stderr}");
    let default_access = default_access.trim_end().to_owned();
    assert_eq!(minted_from(&control, &default_access), default_refresh);
    assert_ne!(acme_access, default_access);
    // `--account default` is plain `token`.
    let (code, again, _) = command(home.path(), &["token", "--account", "default"], &[]).await;
    assert_eq!(code, 0);
    assert_eq!(again.trim_end(), default_access);

    // `revoke --account acme` revokes acme's refresh token and empties acme's store only.
    let default_store = std::fs::read(home.path().join("token.json")).unwrap();
    let (code, _, stderr) = command(home.path(), &["revoke", "--account", "acme"], &[]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("of account acme"), "{stderr}");
    assert!(stderr.contains("token-acme.json"), "{stderr}");
    assert_eq!(control.revocations().last(), Some(&acme_refresh));
    assert!(control.validate_access_token(&acme_access).is_none());
    assert!(control.validate_access_token(&default_access).is_some());
    let acme_store = stored_in(home.path(), "token-acme.json");
    assert!(
        acme_store["refresh_token"].is_null() && acme_store["access_token"].is_null(),
        "{acme_store}"
    );
    assert_eq!(
        std::fs::read(home.path().join("token.json")).unwrap(),
        default_store,
        "default's store untouched"
    );
    let (code, stdout, _) = command(home.path(), &["token"], &[]).await;
    assert_eq!(code, 0);
    assert_eq!(stdout.trim_end(), default_access);

    // acme has no refresh token now: its commands say how to log it in.
    let (code, stdout, stderr) = command(home.path(), &["token", "--account", "acme"], &[]).await;
    assert_eq!(code, 78, "{stderr}");
    assert!(stdout.is_empty());
    assert!(
        stderr.contains("accounts.acme.refresh_token") && stderr.contains("login --account acme"),
        "{stderr}"
    );
}

/// `--account` with a name the configuration does not have exits 78 naming the key
/// `accounts` and the accounts there are, before doing anything.
#[tokio::test]
async fn an_unknown_account_exits_78_naming_the_accounts() {
    let emu = support::emulator(support::options(Duration::from_secs(3600))).await;
    let home = tempfile::tempdir().unwrap();
    write_config(
        home.path(),
        &emu.url(),
        &format!(
            "{}\n[server]\nadmin_listen = \"127.0.0.1:9\"\n",
            account_entry("acme", &emu.url())
        ),
    );
    for args in [
        &["login", "--account", "acme2", "--code", "1000.x"][..],
        &["token", "--account", "acme2"],
        &["revoke", "--account", "acme2"],
        &["status", "--account", "acme2"],
    ] {
        let (code, stdout, stderr) = command(home.path(), args, &[]).await;
        assert_eq!(code, 78, "{args:?}: {stderr}");
        assert!(stdout.is_empty(), "{args:?}: {stdout}");
        assert!(
            stderr.contains("accounts")
                && stderr.contains("\"acme2\"")
                && stderr.contains("default, acme")
                && stderr.contains("proxy.toml"),
            "{args:?}: {stderr}"
        );
    }
    assert_eq!(emu.control().token_requests(), 0);
    assert!(!home.path().join("token-acme2.json").exists());
    // A bad name is refused the same way, not taken for a file name.
    let (code, _, stderr) = command(home.path(), &["token", "--account", "../x"], &[]).await;
    assert_eq!(code, 78, "{stderr}");
}

/// `check --online` mints and calls the Meeting API for every account, labelled; when one
/// account's refresh token is revoked it names that account and exits 1.
#[tokio::test]
async fn check_online_checks_every_account_and_names_the_failing_one() {
    let emu = support::emulator(support::options(Duration::from_secs(3600))).await;
    let control = emu.control();
    let meeting = support::meeting_emulator(&emu).await;
    let home = tempfile::tempdir().unwrap();
    let scopes = ["ZohoMeeting.manageOrg.READ"];
    let default_refresh = control.issue_refresh_token(&scopes);
    let acme_refresh = control.issue_refresh_token(&scopes);
    write_config(
        home.path(),
        &emu.url(),
        &format!(
            "{}\n[upstream]\nurl = \"{}\"\n",
            account_entry("acme", &emu.url()),
            meeting.url()
        ),
    );
    let env = [
        ("ZOHO_PROXY_OAUTH__REFRESH_TOKEN", default_refresh.as_str()),
        (
            "ZOHO_PROXY_ACCOUNTS__ACME__REFRESH_TOKEN",
            acme_refresh.as_str(),
        ),
    ];

    let (code, stdout, stderr) = command(home.path(), &["check", "--online"], &env).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(control.mint_count(), 2);
    for name in ["default", "acme"] {
        assert!(
            stdout.contains(&format!(
                "# online: account {name}: refreshed an access token"
            )) && stdout.contains(&format!("# online: account {name}: GET {}", meeting.url())),
            "{stdout}"
        );
    }
    assert!(
        stdout.find("account default: GET") < stdout.find("account acme: refreshed"),
        "default first: {stdout}"
    );
    assert!(stdout.ends_with("# ok\n"), "{stdout}");
    // Each account's own token reached the Meeting API.
    let calls = meeting.control().requests();
    assert_eq!(calls.len(), 2);
    let used: Vec<String> = calls
        .iter()
        .map(|c| {
            let access = c
                .authorization
                .as_deref()
                .unwrap()
                .trim_start_matches("Zoho-oauthtoken ");
            minted_from(&control, access)
        })
        .collect();
    assert_eq!(used, [default_refresh.clone(), acme_refresh.clone()]);
    assert!(
        stdout.contains("\n[[accounts]]\nname = \"acme\"\n")
            && stdout.contains("refresh_token = \"[redacted]\""),
        "{stdout}"
    );

    // acme's refresh token is revoked at Zoho: default still passes, acme is named.
    assert!(control.revoke_refresh_token(&acme_refresh));
    let (code, stdout, stderr) = command(home.path(), &["check", "--online"], &env).await;
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stdout.contains("# online: account default: GET"),
        "{stdout}"
    );
    assert!(
        stdout.contains("# online: account acme: failed"),
        "{stdout}"
    );
    assert!(!stdout.contains("# ok"), "{stdout}");
    assert!(
        stderr.contains("failed for 1 of 2 accounts: acme (")
            && stderr.contains("invalid_code")
            && !stderr.contains("default ("),
        "{stderr}"
    );
    for secret in [CLIENT_SECRET, &default_refresh, &acme_refresh] {
        assert!(!stdout.contains(secret) && !stderr.contains(secret));
    }

    // Both revoked: both named.
    assert!(control.revoke_refresh_token(&default_refresh));
    let (code, _, stderr) = command(home.path(), &["check", "--online"], &env).await;
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("failed for 2 of 2 accounts: default (") && stderr.contains("; acme ("),
        "{stderr}"
    );
}

/// `status` against a running two-account proxy prints both accounts, `default` first, each
/// labelled; `status --account NAME` prints that account's entry alone.
#[tokio::test]
async fn status_prints_every_account_or_the_one_asked_for() {
    let emu = support::emulator(support::options(Duration::from_secs(3600))).await;
    let upstream = support::TestUpstream::start().await;
    let control = emu.control();
    let default_refresh = control.issue_refresh_token(&["ZohoMeeting.meeting.READ"]);
    let acme_refresh = control.issue_refresh_token(&["ZohoMeeting.meeting.READ"]);
    let mut overrides = support::oauth_overrides(&emu.url());
    overrides.extend([
        ("oauth.refresh_token", default_refresh.as_str().into()),
        ("accounts.acme.refresh_token", acme_refresh.as_str().into()),
        ("accounts.acme.accounts_url", emu.url().as_str().into()),
        ("server.listen", "127.0.0.1:0".into()),
        ("server.admin_listen", "127.0.0.1:0".into()),
        ("upstream.url", upstream.url().as_str().into()),
        ("token.store", "memory".into()),
    ]);
    let running = zoho_meeting_proxy::app::start(&support::config(&overrides))
        .await
        .unwrap();
    let admin = running.admin_addr().unwrap();
    let client = support::client();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let ready = client
            .get(format!("http://{admin}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200);
        if ready {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "not ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let json: serde_json::Value = client
        .get(format!("http://{admin}/status"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let fingerprint = |name: &str| {
        json["accounts"][name]["token_fingerprint"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (default_print, acme_print) = (fingerprint("default"), fingerprint("acme"));
    assert_ne!(default_print, acme_print);

    // The commands' configuration names the admin listener and the account.
    let home = tempfile::tempdir().unwrap();
    std::fs::write(
        home.path().join("proxy.toml"),
        format!("[server]\nadmin_listen = \"{admin}\"\n\n[[accounts]]\nname = \"acme\"\n"),
    )
    .unwrap();

    let (code, stdout, stderr) = command(home.path(), &["status"], &[]).await;
    assert_eq!(code, 0, "{stderr}");
    let blocks: Vec<&str> = stdout.split("\n\n").collect();
    assert_eq!(blocks.len(), 2, "{stdout}");
    assert!(
        blocks[0].starts_with("account:            default\nready:              true\n"),
        "{stdout}"
    );
    assert!(
        blocks[1].starts_with("account:            acme\nready:              true\n"),
        "{stdout}"
    );
    assert!(
        blocks[0].contains(&format!("token fingerprint:  {default_print}\n")),
        "{stdout}"
    );
    assert!(
        blocks[1].contains(&format!("token fingerprint:  {acme_print}")),
        "{stdout}"
    );
    for block in &blocks {
        assert!(block.contains("token expires in:   35"), "{stdout}");
    }

    let (code, stdout, stderr) = command(home.path(), &["status", "--account", "acme"], &[]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.starts_with("account:            acme\nready:              true\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("token fingerprint:  {acme_print}\n")),
        "{stdout}"
    );
    assert!(
        !stdout.contains(&default_print) && !stdout.contains("\n\n"),
        "{stdout}"
    );
    let (code, stdout, stderr) =
        command(home.path(), &["status", "--account", "default"], &[]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains(&format!("token fingerprint:  {default_print}\n")),
        "{stdout}"
    );
    assert!(!stdout.contains(&acme_print), "{stdout}");
    for secret in [&default_refresh, &acme_refresh] {
        assert!(!stdout.contains(secret.as_str()));
    }

    // An account the configuration has but the running proxy does not: said, exit 1.
    std::fs::write(
        home.path().join("proxy.toml"),
        format!("[server]\nadmin_listen = \"{admin}\"\n\n[[accounts]]\nname = \"acme\"\n\n[[accounts]]\nname = \"beta\"\n"),
    )
    .unwrap();
    let (code, _, stderr) = command(home.path(), &["status", "--account", "beta"], &[]).await;
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("runs no account \"beta\"") && stderr.contains("default, acme"),
        "{stderr}"
    );
    // `wait --account`: that account's readiness; one the proxy does not run never is.
    let (code, _, stderr) = command(home.path(), &["wait", "--account", "acme"], &[]).await;
    assert_eq!(code, 0, "{stderr}");
    let (code, _, stderr) = command(
        home.path(),
        &["wait", "--account", "beta", "--timeout", "1s"],
        &[],
    )
    .await;
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("404"), "{stderr}");
    let (code, _, _) = command(home.path(), &["wait", "--account", "nope"], &[]).await;
    assert_eq!(code, 78);

    running.begin_shutdown();
    running.finish().await;
}

/// A `sandbox` child process, killed when dropped (also when an assertion fails).
struct Sandbox {
    child: std::process::Child,
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn sandbox_with_two_second_tokens_keeps_serving() {
    // The default budget of 10 mints per 10 minutes would be spent after about 15 s of
    // refreshing every 1.5 s; the sandbox's budget scales with the lifetime instead.
    let home = tempfile::tempdir().unwrap();
    std::fs::write(
        home.path().join("proxy.toml"),
        "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n",
    )
    .unwrap();
    let log = home.path().join("sandbox.log");
    let mut cmd = bin(home.path());
    cmd.args(["sandbox", "--token-lifetime", "2s"])
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap());
    let mut sandbox = Sandbox {
        child: cmd.spawn().unwrap(),
    };
    let stdout = sandbox.child.stdout.take().unwrap();
    // The banner's `proxy` line names the bound address.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if let Some(rest) = line.trim_start().strip_prefix("proxy ") {
                let url = rest.split_whitespace().next().unwrap_or("").to_owned();
                let _ = tx.send(url);
            }
        }
    });
    let proxy = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(30)))
        .await
        .unwrap()
        .unwrap_or_else(|_| {
            panic!(
                "no banner:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            )
        });
    assert!(proxy.starts_with("http://127.0.0.1:"), "{proxy}");

    let client = support::client();
    let url = format!("{proxy}/api/v2/user.json");
    let until = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut statuses = Vec::new();
    while tokio::time::Instant::now() < until {
        let status = match client.get(&url).send().await {
            Ok(response) => response.status().as_u16(),
            Err(e) => panic!("request {} failed: {e}", statuses.len()),
        };
        statuses.push(status);
        if status != 200 {
            panic!(
                "request {} got {status} (all: {statuses:?}):\n{}",
                statuses.len(),
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(statuses.len() >= 100, "{} requests", statuses.len());
    drop(sandbox);
}
