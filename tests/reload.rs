//! Hot reload through the real binary: SIGHUP and watched `*_file` secrets swap the client
//! secret, the refresh token, access rules and client keys while a client keeps one
//! keep-alive connection open. See issue 7.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::time::Instant;

use crate::support::served::Served;
use crate::support::{self, CLIENT_ID, CLIENT_SECRET, bin};

const SCOPES: &[&str] = &["ZohoMeeting.meeting.READ"];

/// One HTTP/1.1 keep-alive connection to the proxy: if the proxy closed it, the next
/// request fails at the transport level.
struct KeepAlive {
    sender: SendRequest<Empty<Bytes>>,
}

impl KeepAlive {
    async fn connect(addr: std::net::SocketAddr) -> Self {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(conn);
        Self { sender }
    }

    /// GET `path`; the status, or the transport error in words.
    async fn get(&mut self, path: &str, headers: &[(&str, &str)]) -> Result<u16, String> {
        let mut request = hyper::Request::get(path).header("host", "localhost");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Empty::new()).unwrap();
        self.sender.ready().await.map_err(|e| e.to_string())?;
        let response = self
            .sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?;
        Ok(status)
    }
}

/// Writes a secret file with mode 0600, atomically (temporary file + rename), as a secret
/// volume updates.
fn write_secret(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// A `proxy.toml` for the emulator at `accounts` and `upstream`, with a memory store and
/// ephemeral ports; `oauth` and `tail` (later sections) are added as given.
fn write_config(
    home: &Path,
    accounts: &str,
    upstream: &str,
    server: &str,
    oauth: &str,
    tail: &str,
) {
    let config = format!(
        r#"
[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
{server}

[oauth]
client_id = "{CLIENT_ID}"
accounts_url = "{accounts}"
{oauth}

[upstream]
url = "{upstream}"

[token]
store = "memory"

{tail}
"#
    );
    std::fs::write(home.join("proxy.toml"), config).unwrap();
}

#[tokio::test]
async fn sighup_swaps_a_rotated_client_secret_without_dropping_a_connection() {
    let emu = support::emulator(support::options(Duration::from_secs(3600))).await;
    let control = emu.control();
    let upstream = support::TestUpstream::start().await;
    let home = tempfile::tempdir().unwrap();
    let secret_file = home.path().join("client_secret");
    let refresh_file = home.path().join("refresh_token");
    let refresh = control.issue_refresh_token(SCOPES);
    write_secret(&secret_file, "wrong-secret-0000\n");
    write_secret(&refresh_file, &refresh);
    write_config(
        home.path(),
        &emu.url(),
        &upstream.url(),
        "",
        &format!(
            "client_secret_file = \"{}\"\nrefresh_token_file = \"{}\"",
            secret_file.display(),
            refresh_file.display()
        ),
        "",
    );
    let served = Served::start(home.path()).await;

    // The wrong secret is refused terminally: not ready, background refresh stopped.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, status) = served.admin("/status").await;
        let status: serde_json::Value = serde_json::from_str(&status).unwrap();
        if status["refresh_stopped"] == true {
            assert!(
                status["last_error"]
                    .as_str()
                    .unwrap()
                    .contains("invalid_client"),
                "{status}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "{}", served.log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(served.admin("/readyz").await.0, 503);

    // A client on one keep-alive connection, throughout.
    let mut conn = KeepAlive::connect(served.proxy).await;
    let stop = Arc::new(tokio::sync::Notify::new());
    let outcomes = Arc::new(Mutex::new(Vec::<Result<u16, String>>::new()));
    let client = {
        let (stop, outcomes) = (stop.clone(), outcomes.clone());
        tokio::spawn(async move {
            loop {
                let outcome = conn.get("/api/v2/user.json", &[]).await;
                let failed = outcome.is_err();
                outcomes.lock().unwrap().push(outcome);
                if failed {
                    return;
                }
                tokio::select! {
                    _ = stop.notified() => return,
                    _ = tokio::time::sleep(Duration::from_millis(10)) => {}
                }
            }
        })
    };
    let count = || outcomes.lock().unwrap().len();
    while count() < 5 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    write_secret(&secret_file, &format!("{CLIENT_SECRET}\n"));
    served.signal("-HUP");
    served.wait_ready(200).await;
    served
        .wait_log(&["configuration reloaded", "oauth.client_secret"], 1)
        .await;
    let at_fix = count();
    while count() < at_fix + 20 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.notify_one();
    client.await.unwrap();

    let outcomes = outcomes.lock().unwrap().clone();
    let statuses: Vec<u16> = outcomes
        .iter()
        .map(|o| {
            *o.as_ref()
                .unwrap_or_else(|e| panic!("transport failure: {e}"))
        })
        .collect();
    assert_eq!(statuses[0], 503, "no token before the fix: {statuses:?}");
    let first_ok = statuses.iter().position(|&s| s == 200).unwrap();
    assert!(
        statuses[..first_ok].iter().all(|&s| s == 503)
            && statuses[first_ok..].iter().all(|&s| s == 200),
        "503 until the fix, 200 after: {statuses:?}"
    );
    assert_eq!(control.mint_count(), 1, "one mint, with the right secret");
    let seen = upstream.seen();
    assert!(seen.len() >= 20);
    served.stop(&[CLIENT_SECRET, &refresh]).await;
}

#[tokio::test]
async fn sighup_applies_changed_access_rules_to_the_next_request() {
    let emu = support::emulator(support::options(Duration::from_secs(3600))).await;
    let upstream = support::TestUpstream::start().await;
    let home = tempfile::tempdir().unwrap();
    let refresh = emu.control().issue_refresh_token(SCOPES);
    let oauth = format!("client_secret = \"{CLIENT_SECRET}\"\nrefresh_token = \"{refresh}\"");
    let config = |tail: &str| {
        write_config(home.path(), &emu.url(), &upstream.url(), "", &oauth, tail);
    };
    config("[access]\nrules = [\"GET /api/v2/user.json\"]\n");
    let served = Served::start(home.path()).await;
    served.wait_ready(200).await;
    let mut conn = KeepAlive::connect(served.proxy).await;
    assert_eq!(conn.get("/api/v2/user.json", &[]).await, Ok(200));
    assert_eq!(conn.get("/api/v2/1/sessions.json", &[]).await, Ok(403));

    // Wider rules, and a key that needs a restart.
    config("[access]\nrules = [\"GET /api/v2/**\"]\n\n[limits]\nmax_connections = 5\n");
    served.signal("-HUP");
    served
        .wait_log(&["configuration reloaded", "access.rules"], 1)
        .await;
    assert_eq!(conn.get("/api/v2/1/sessions.json", &[]).await, Ok(200));
    served
        .wait_log(
            &["take effect only after a restart", "limits.max_connections"],
            1,
        )
        .await;
    let log = served.log();
    let reloaded = log
        .lines()
        .find(|l| l.contains("configuration reloaded"))
        .unwrap();
    assert!(
        !reloaded.contains("limits.max_connections"),
        "not applied: {reloaded}"
    );

    // Narrower again, on the same connection.
    config("[access]\nrules = [\"GET /api/v2/user.json\"]\nread_only = true\n");
    served.signal("-HUP");
    served
        .wait_log(&["configuration reloaded", "access.rules"], 2)
        .await;
    assert_eq!(conn.get("/api/v2/1/sessions.json", &[]).await, Ok(403));
    assert_eq!(conn.get("/api/v2/user.json", &[]).await, Ok(200));
    served.stop(&[CLIENT_SECRET, &refresh]).await;
}

#[tokio::test]
async fn a_broken_configuration_on_sighup_keeps_the_running_one() {
    let emu = support::emulator(support::options(Duration::from_secs(3600))).await;
    let upstream = support::TestUpstream::start().await;
    let home = tempfile::tempdir().unwrap();
    let refresh = emu.control().issue_refresh_token(SCOPES);
    let oauth = format!("client_secret = \"{CLIENT_SECRET}\"\nrefresh_token = \"{refresh}\"");
    let config = |tail: &str| {
        write_config(home.path(), &emu.url(), &upstream.url(), "", &oauth, tail);
    };
    config("[access]\nrules = [\"GET /api/v2/user.json\"]\n");
    let served = Served::start(home.path()).await;
    served.wait_ready(200).await;
    let mut conn = KeepAlive::connect(served.proxy).await;

    // A bad rule: refused, naming the key; the old rules stay.
    config("[access]\nrules = [\"GET api/v2/**\"]\n");
    served.signal("-HUP");
    served
        .wait_log(&["configuration reload failed", "access.rules"], 1)
        .await;
    assert_eq!(conn.get("/api/v2/user.json", &[]).await, Ok(200));
    assert_eq!(conn.get("/api/v2/1/sessions.json", &[]).await, Ok(403));

    // An unknown key: the same.
    config("[access]\nrules = [\"GET /api/v2/**\"]\nrulez = []\n");
    served.signal("-HUP");
    served
        .wait_log(&["configuration reload failed", "access.rulez"], 1)
        .await;
    assert_eq!(conn.get("/api/v2/1/sessions.json", &[]).await, Ok(403));
    assert!(!served.log().contains("configuration reloaded"));
    assert_eq!(served.admin("/readyz").await.0, 200);
    served.stop(&[CLIENT_SECRET, &refresh]).await;
}

#[tokio::test]
async fn a_changed_client_keys_file_is_picked_up_without_sighup() {
    let emu = support::emulator(support::options(Duration::from_secs(3600))).await;
    let upstream = support::TestUpstream::start().await;
    let home = tempfile::tempdir().unwrap();
    let keys = home.path().join("client_keys");
    // Written in place (not renamed), as an editor would.
    std::fs::write(&keys, "key-one\n").unwrap();
    std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o600)).unwrap();
    let refresh = emu.control().issue_refresh_token(SCOPES);
    write_config(
        home.path(),
        &emu.url(),
        &upstream.url(),
        &format!("client_keys_file = \"{}\"", keys.display()),
        &format!("client_secret = \"{CLIENT_SECRET}\"\nrefresh_token = \"{refresh}\""),
        "",
    );
    let served = Served::start(home.path()).await;
    served.wait_ready(200).await;
    let mut conn = KeepAlive::connect(served.proxy).await;
    let one = [("proxy-authorization", "Bearer key-one")];
    let two = [("proxy-authorization", "Bearer key-two")];
    assert_eq!(conn.get("/api/v2/user.json", &one).await, Ok(200));
    assert_eq!(conn.get("/api/v2/user.json", &two).await, Ok(407));

    std::fs::write(&keys, "# rotated\nkey-two\n").unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while conn.get("/api/v2/user.json", &two).await != Ok(200) {
        assert!(Instant::now() < deadline, "{}", served.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(conn.get("/api/v2/user.json", &one).await, Ok(407));
    served.wait_log(&["secret file changed"], 1).await;
    served
        .wait_log(&["configuration reloaded", "server.client_keys"], 1)
        .await;
    let log = served
        .stop(&[CLIENT_SECRET, &refresh, "key-one", "key-two"])
        .await;
    assert!(!log.contains("SIGHUP"), "no signal was sent:\n{log}");
}

#[tokio::test]
async fn a_rotated_refresh_token_file_is_picked_up_without_sighup() {
    let emu = support::emulator(support::options(Duration::from_secs(3600))).await;
    let control = emu.control();
    let upstream = support::TestUpstream::start().await;
    let home = tempfile::tempdir().unwrap();
    let refresh_file = home.path().join("refresh_token");
    let revoked = control.issue_refresh_token(SCOPES);
    control.revoke_refresh_token(&revoked);
    write_secret(&refresh_file, &revoked);
    write_config(
        home.path(),
        &emu.url(),
        &upstream.url(),
        "",
        &format!(
            "client_secret = \"{CLIENT_SECRET}\"\nrefresh_token_file = \"{}\"",
            refresh_file.display()
        ),
        "",
    );
    let served = Served::start(home.path()).await;
    served.wait_log(&["token refresh refused"], 1).await;
    assert_eq!(served.admin("/readyz").await.0, 503);

    let fresh = control.issue_refresh_token(SCOPES);
    write_secret(&refresh_file, &fresh);
    served.wait_ready(200).await;
    served.wait_log(&["refresh token replaced"], 1).await;
    served
        .wait_log(&["configuration reloaded", "oauth.refresh_token"], 1)
        .await;
    let response = support::client()
        .get(format!("http://{}/api/v2/user.json", served.proxy))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(control.mint_count(), 1);
    served.stop(&[CLIENT_SECRET, &revoked, &fresh]).await;
}

/// Runs one command of the binary in `home` to completion and asserts it succeeded.
async fn run_ok(home: &Path, args: &[&str]) {
    let mut cmd = bin(home);
    cmd.args(args);
    let out = support::run(cmd).await;
    let (_, stderr) = support::text(&out);
    assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
}

/// The refresh token in the file store, if any.
fn stored_refresh_token(store: &Path) -> Option<String> {
    let state: serde_json::Value = serde_json::from_slice(&std::fs::read(store).unwrap()).unwrap();
    state["refresh_token"]["token"].as_str().map(str::to_owned)
}

#[tokio::test]
async fn sighup_takes_the_refresh_token_of_a_login_run_beside_the_proxy() {
    let emu = support::emulator(support::options(Duration::from_secs(3600))).await;
    let control = emu.control();
    // The Meeting emulator checks every access token at the accounts emulator.
    let meeting = support::meeting_emulator(&emu).await;
    let home = tempfile::tempdir().unwrap();
    let store = home.path().join("token.json");
    std::fs::write(
        home.path().join("proxy.toml"),
        format!(
            r#"
[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"

[oauth]
client_id = "{CLIENT_ID}"
client_secret = "{CLIENT_SECRET}"
accounts_url = "{}"

[upstream]
url = "{}"

[token]
store = "file"
path = "{}"
"#,
            emu.url(),
            meeting.url(),
            store.display()
        ),
    )
    .unwrap();
    let scopes = ["ZohoMeeting.manageOrg.READ", "ZohoMeeting.meeting.READ"];
    run_ok(
        home.path(),
        &["login", "--code", &control.issue_grant_code(&scopes)],
    )
    .await;
    let old = stored_refresh_token(&store).expect("login stored a refresh token");
    let served = Served::start(home.path()).await;
    served.wait_ready(200).await;
    let user = format!("http://{}/api/v2/user.json", served.proxy);
    let get = || async { support::client().get(&user).send().await.unwrap().status() };
    assert_eq!(get().await, 200);

    // A second login beside the serving proxy stores a new refresh token; the old one is
    // revoked at Zoho (login does so; once more here, with every access token it minted).
    run_ok(
        home.path(),
        &["login", "--code", &control.issue_grant_code(&scopes)],
    )
    .await;
    let new = stored_refresh_token(&store).expect("the second login stored one");
    assert_ne!(new, old);
    control.revoke_refresh_token(&old);
    // Without a reload the proxy still mints with the old refresh token, and Zoho refuses it
    // (the request gets the upstream's rejection or the proxy's 503).
    assert_ne!(get().await, 200);
    served.wait_log(&["token refresh refused"], 1).await;

    served.signal("-HUP");
    served
        .wait_log(&["took the token store's refresh token", "login"], 1)
        .await;
    served.wait_ready(200).await;
    assert_eq!(get().await, 200);
    let (_, status) = served.admin("/status").await;
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["refresh_stopped"], false, "{status}");

    // A `revoke` beside it empties the store: after SIGHUP refresh stops, with advice.
    run_ok(home.path(), &["revoke"]).await;
    assert_eq!(stored_refresh_token(&store), None);
    served.signal("-HUP");
    served
        .wait_log(
            &["holds no refresh token", "run `zoho-meeting-proxy login`"],
            1,
        )
        .await;
    let (_, status) = served.admin("/status").await;
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["refresh_stopped"], true, "{status}");
    // The access token died with its refresh token, and no new one can be minted: Zoho's
    // rejection makes it dead, and no request carries it again (503, not Zoho's 400).
    assert_eq!(get().await, 503);
    assert_eq!(get().await, 503);
    let (_, status) = served.admin("/status").await;
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["reason"], "rejected_by_upstream", "{status}");
    assert_eq!(status["blocked_by"], "terminal", "{status}");
    served.stop(&[CLIENT_SECRET, &old, &new]).await;
}

/// A secret volume as the kubelet lays it out (its `AtomicWriter`): each key is a symlink
/// `KEY -> ..data/KEY`, `..data` a symlink to a timestamped directory holding the files.
/// An update writes a whole new timestamped directory, points `..data_tmp` at it, renames
/// `..data_tmp` over `..data` (the one atomic step) and removes the old directory.
struct KubeletVolume {
    dir: std::path::PathBuf,
    generation: u32,
}

impl KubeletVolume {
    fn new(dir: &Path, files: &[(&str, &str)]) -> Self {
        let mut volume = Self {
            dir: dir.to_owned(),
            generation: 0,
        };
        let first = volume.write_generation(files);
        std::os::unix::fs::symlink(&first, dir.join("..data")).unwrap();
        for (key, _) in files {
            std::os::unix::fs::symlink(format!("..data/{key}"), dir.join(key)).unwrap();
        }
        volume
    }

    /// Writes the next timestamped directory, not yet visible through `..data`.
    fn write_generation(&mut self, files: &[(&str, &str)]) -> String {
        self.generation += 1;
        let name = format!(
            "..2026_12_07_18_00_{:02}.{}",
            self.generation,
            100 + self.generation
        );
        let path = self.dir.join(&name);
        std::fs::create_dir(&path).unwrap();
        for (key, value) in files {
            std::fs::write(path.join(key), value).unwrap();
            std::fs::set_permissions(path.join(key), std::fs::Permissions::from_mode(0o400))
                .unwrap();
        }
        name
    }

    /// Makes `generation` the visible one, as the kubelet does, and removes the old one.
    fn swap_to(&self, generation: &str) {
        let old = std::fs::read_link(self.dir.join("..data")).unwrap();
        let tmp = self.dir.join("..data_tmp");
        if tmp.symlink_metadata().is_err() {
            std::os::unix::fs::symlink(generation, &tmp).unwrap();
        }
        std::fs::rename(&tmp, self.dir.join("..data")).unwrap();
        std::fs::remove_dir_all(self.dir.join(old)).unwrap();
    }
}

/// Issue 21, item 4: the client secret and the refresh token rotated in a secret volume the
/// way the kubelet rotates them. The proxy picks up the new pair without a restart and
/// without one failed request, and never reads a rotation that is only half written.
#[tokio::test]
async fn a_secret_volume_rotated_as_the_kubelet_does_is_picked_up_whole() {
    const NEW_SECRET: &str = "rotated-client-secret-9d41";
    let scopes = &["ZohoMeeting.manageOrg.READ"];
    let emu = support::emulator(support::options(Duration::from_secs(3600))).await;
    let control = emu.control();
    let meeting = support::meeting_emulator(&emu).await;
    let home = tempfile::tempdir().unwrap();
    let secrets = home.path().join("secrets");
    std::fs::create_dir(&secrets).unwrap();
    let old_refresh = control.issue_refresh_token(scopes);
    let mut volume = KubeletVolume::new(
        &secrets,
        &[
            ("client_secret", &format!("{CLIENT_SECRET}\n")),
            ("refresh_token", &format!("{old_refresh}\n")),
        ],
    );
    write_config(
        home.path(),
        &emu.url(),
        &meeting.url(),
        "",
        &format!(
            "client_secret_file = \"{}\"\nrefresh_token_file = \"{}\"",
            secrets.join("client_secret").display(),
            secrets.join("refresh_token").display()
        ),
        "",
    );
    let served = Served::start(home.path()).await;
    served.wait_ready(200).await;
    assert_eq!(control.mint_count(), 1);

    // A client on one keep-alive connection, throughout.
    let mut conn = KeepAlive::connect(served.proxy).await;
    let stop = Arc::new(tokio::sync::Notify::new());
    let outcomes = Arc::new(Mutex::new(Vec::<Result<u16, String>>::new()));
    let client = {
        let (stop, outcomes) = (stop.clone(), outcomes.clone());
        tokio::spawn(async move {
            loop {
                let outcome = conn.get("/api/v2/user.json", &[]).await;
                let failed = outcome.is_err();
                outcomes.lock().unwrap().push(outcome);
                if failed {
                    return;
                }
                tokio::select! {
                    _ = stop.notified() => return,
                    _ = tokio::time::sleep(Duration::from_millis(20)) => {}
                }
            }
        })
    };
    let count = || outcomes.lock().unwrap().len();
    let wait_for_requests = |n: usize| async move {
        let target = count() + n;
        while count() < target {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    wait_for_requests(5).await;

    // The secret is regenerated at Zoho (the old one is refused from now on) and a new
    // refresh token issued; the kubelet starts writing them: the new directory is half
    // written (the client secret whole, the refresh token cut short), and `..data_tmp`
    // already points at it, but `..data` does not yet.
    control.set_client_secret(NEW_SECRET);
    let new_refresh = control.issue_refresh_token(scopes);
    let half = &new_refresh[..new_refresh.len() / 2];
    let next = volume.write_generation(&[
        ("client_secret", &format!("{NEW_SECRET}\n")),
        ("refresh_token", half),
    ]);
    std::os::unix::fs::symlink(&next, secrets.join("..data_tmp")).unwrap();
    // Three rounds of the watcher (every 2 s): nothing of it is read.
    tokio::time::sleep(3 * Duration::from_secs(2)).await;
    assert!(
        !served.log().contains("secret file changed"),
        "a half-written rotation was read:\n{}",
        served.log()
    );
    assert_eq!(control.mint_count(), 1);

    // The kubelet finishes writing and swaps `..data`.
    std::fs::set_permissions(
        secrets.join(&next).join("refresh_token"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    std::fs::write(
        secrets.join(&next).join("refresh_token"),
        format!("{new_refresh}\n"),
    )
    .unwrap();
    volume.swap_to(&next);
    served
        .wait_log(
            &[
                "configuration reloaded",
                "oauth.client_secret",
                "oauth.refresh_token",
            ],
            1,
        )
        .await;
    wait_for_requests(5).await;

    // Zoho forgets the old refresh token and its access tokens: the next request is
    // rejected, and the proxy refreshes and replays it. A mint now succeeds only with the
    // new pair (the old secret and refresh token are both refused).
    assert!(control.revoke_refresh_token(&old_refresh));
    let deadline = Instant::now() + Duration::from_secs(15);
    while control.mint_count() < 2 {
        assert!(Instant::now() < deadline, "no new mint:\n{}", served.log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    wait_for_requests(10).await;
    stop.notify_one();
    client.await.unwrap();

    let outcomes = outcomes.lock().unwrap().clone();
    let statuses: Vec<u16> = outcomes
        .iter()
        .map(|o| {
            *o.as_ref()
                .unwrap_or_else(|e| panic!("transport failure: {e}"))
        })
        .collect();
    assert!(
        statuses.iter().all(|&s| s == 200),
        "every request answered 200 across the rotation: {statuses:?}\n{}",
        served.log()
    );
    eprintln!(
        "{} requests across the rotation, all 200; {} mints",
        statuses.len(),
        control.mint_count()
    );
    let (_, status) = served.admin("/status").await;
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["ready"], true, "{status}");
    served
        .stop(&[CLIENT_SECRET, NEW_SECRET, &old_refresh, &new_refresh])
        .await;
}
