//! `sandbox` as a user tries it, through the real binary: an outage that ends
//! (`--token-outage 2s`), revocations the proxy refreshes and replays past (`--reject-tokens`),
//! `--emulator-only` printing a configuration whose `token` calls reuse one token, a taken
//! port and `--listen`, and the banner's curl lines (and its `status` and `wait` lines for a
//! moved admin listener) pasted into bash, and `--accounts` (several accounts, each with its
//! own token, in the sandbox and in the `proxy.toml` of `--emulator-only`).

use std::time::Duration;

use crate::support::client;
use crate::support::sandbox::{Sandbox, bash, binary, command};

#[tokio::test]
async fn a_token_outage_with_a_duration_ends_and_the_proxy_recovers() {
    let sandbox = Sandbox::start(&["--token-outage", "2s"], "\n  admin ").await;
    let admin = sandbox.addr("admin");
    let readyz = format!("{admin}/readyz");
    let first = client().get(&readyz).send().await.unwrap().status();
    assert_eq!(first, 503, "no token during the outage");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if client().get(&readyz).send().await.unwrap().status() == 200 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "ready after the outage"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let proxy = sandbox.addr("proxy");
    let me = client()
        .get(format!("{proxy}/api/v2/user.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    let log = sandbox.stop().await;
    assert!(log.contains("--token-outage ended"), "{log}");
}

/// `--reject-tokens 3` as README offers it: Zoho revokes the token in use three times; the
/// proxy refreshes and replays each time, and no client sees a rejection.
#[tokio::test]
async fn revoked_tokens_are_refreshed_and_replayed_and_no_client_sees_one() {
    let sandbox = Sandbox::start(&["--reject-tokens", "3"], "\n  admin ").await;
    let (proxy, admin) = (sandbox.addr("proxy"), sandbox.addr("admin"));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while client()
        .get(format!("{admin}/readyz"))
        .send()
        .await
        .unwrap()
        .status()
        != 200
    {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for i in 0..8 {
        let response = client()
            .get(format!("{proxy}/api/v2/user.json"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "request {i}");
    }
    let status: serde_json::Value = client()
        .get(format!("{admin}/status"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["upstream_rejects_fresh_tokens"], false, "{status}");
    assert_eq!(status["ready"], true, "{status}");
    assert!(status["hint"].is_null(), "{status}");
    let metrics = client()
        .get(format!("{admin}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("zoho_proxy_replays_total{account=\"default\"} 3"),
        "{metrics}"
    );
    let log = sandbox.stop().await;
    assert_eq!(
        log.matches("the Meeting emulator revoked the access token in use")
            .count(),
        3,
        "{log}"
    );
    assert_eq!(
        log.matches("upstream rejected the access token; refreshing")
            .count(),
        3,
        "{log}"
    );
    assert!(!log.contains("data centre is probably wrong"), "{log}");
}

/// With the system's temporary directory (`TMPDIR` unset, as users run it, unlike the other
/// tests), the printed file store is one the proxy accepts: `token` twice gives one token and
/// `check` passes. See issue 20, item 2 (the store was put in `/tmp` itself, which the proxy
/// refuses as world-writable).
#[tokio::test]
async fn emulator_only_prints_a_file_store_so_token_calls_reuse_one_token() {
    use std::os::unix::fs::PermissionsExt;
    let no_tmpdir = |c: &mut tokio::process::Command| {
        c.env_remove("TMPDIR");
    };
    let sandbox = Sandbox::start_with(&["--emulator-only"], "strip_prefix = true", no_tmpdir).await;
    let config: toml::Table = sandbox.printed.parse().unwrap();
    assert_eq!(config["token"]["store"].as_str(), Some("file"));
    // `/webinar/` goes to the emulated Zoho Webinar, prefix stripped.
    let route = &config["routes"][0];
    assert_eq!(route["prefix"].as_str(), Some("/webinar/"));
    assert!(
        route["upstream"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:")
    );
    assert_eq!(route["strip_prefix"].as_bool(), Some(true));
    let path = std::path::PathBuf::from(config["token"]["path"].as_str().unwrap());
    assert!(
        !path.starts_with(sandbox.home.path()),
        "{}: not in the test's TMPDIR",
        path.display()
    );
    let dir = path.parent().unwrap().to_owned();
    let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700, "{}", dir.display());
    let file = sandbox.home.path().join("proxy.toml");
    std::fs::write(&file, &sandbox.printed).unwrap();
    let configured = |args: &[&str]| {
        let mut c = command(sandbox.home.path());
        no_tmpdir(&mut c);
        c.args(["-c", file.to_str().unwrap()]).args(args);
        c
    };
    let mut tokens = Vec::new();
    for _ in 0..2 {
        let out = configured(&["token"]).output().await.unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        tokens.push(String::from_utf8(out.stdout).unwrap());
    }
    assert!(!tokens[0].trim().is_empty());
    assert_eq!(
        tokens[0], tokens[1],
        "one token, reused from the file store"
    );
    assert!(path.exists(), "{}", path.display());
    let check = configured(&["check"]).output().await.unwrap();
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert_eq!(
        check.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(
        stdout.contains(&format!("# token store: {}", path.display()))
            && stdout.ends_with("# ok\n"),
        "{stdout}"
    );
    sandbox.stop().await;
    assert!(!dir.exists(), "{} is removed on Ctrl-C", dir.display());
}

#[tokio::test]
async fn a_taken_port_says_how_to_move_and_listen_moves_it() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().to_string();
    let home = tempfile::tempdir().unwrap();
    let out = command(home.path())
        .env("ZOHO_PROXY_SERVER__LISTEN", &port)
        .arg("sandbox")
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot listen on {port}")),
        "{stderr}"
    );
    assert!(
        stderr.contains("ZOHO_PROXY_SERVER__LISTEN=127.0.0.1:PORT")
            && stderr.contains("sandbox --listen 127.0.0.1:PORT"),
        "{stderr}"
    );

    // The flag wins over the configuration (here the environment naming the taken port).
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let moved = free.local_addr().unwrap().to_string();
    drop(free);
    let sandbox = Sandbox::start(&["--listen", &moved], "\n  admin ").await;
    assert_eq!(sandbox.addr("proxy"), format!("http://{moved}"));
    let me = client()
        .get(format!("http://{moved}/api/v2/user.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    sandbox.stop().await;
}

/// The banner's curl lines, pasted into bash, all succeed: five for one account; with
/// `--accounts 2`, also one through `acme` (`X-Zoho-Account`) and the `/status` line, which
/// shows both accounts.
#[tokio::test]
async fn the_banners_try_lines_work_pasted_into_a_shell() {
    for (args, expected) in [(&[][..], 5), (&["--accounts", "2"][..], 7)] {
        let sandbox = Sandbox::start(args, "Ctrl-C stops it.").await;
        let lines: Vec<&str> = sandbox
            .printed
            .lines()
            .skip_while(|l| !l.starts_with("Try"))
            .map(str::trim)
            .filter(|l| l.starts_with("curl ") || l.starts_with("KEY="))
            .collect();
        assert_eq!(lines.len(), expected, "{args:?}: {}", sandbox.printed);
        crate::support::tools::curl();
        // Stop at the first failure; curl fails on an HTTP error.
        let script = format!(
            "set -euo pipefail\ncurl() {{ command curl -sS --fail-with-body \"$@\"; }}\n{}\n",
            lines.join("\n")
        );
        let run = bash(&script).await;
        let stdout = String::from_utf8_lossy(&run.stdout);
        assert!(
            run.status.success(),
            "{args:?}: {}\n{stdout}",
            String::from_utf8_lossy(&run.stderr)
        );
        let key = stdout
            .split_once("meetingKey ")
            .map(|(_, rest)| rest.split_whitespace().next().unwrap_or(""))
            .unwrap_or("");
        assert!(
            !key.is_empty() && key.bytes().all(|b| b.is_ascii_digit()),
            "{stdout}"
        );
        // The read by $KEY answered that meeting.
        assert!(
            stdout.contains(&format!("\"meetingKey\":{key},")),
            "{stdout}"
        );
        if expected == 7 {
            assert!(
                lines[5].contains("-H 'X-Zoho-Account: acme'"),
                "{}",
                sandbox.printed
            );
            // The /status line printed both accounts, each ready.
            let status: serde_json::Value = serde_json::from_str(
                &stdout[stdout
                    .find("{\n  \"ready\"")
                    .unwrap_or_else(|| panic!("{stdout}"))..],
            )
            .unwrap();
            for name in ["default", "acme"] {
                assert_eq!(status["accounts"][name]["ready"], true, "{status}");
            }
        }
        sandbox.stop().await;
    }
}

/// `--accounts 2`: `default` and `acme`, one emulated Zoho client with a refresh token each.
/// Requests without the header use `default`, with `X-Zoho-Account: acme` acme's token (a
/// token of its own: another fingerprint), and an unknown name is refused; `/status`,
/// `/readyz?account=` and `/metrics` show each account.
#[tokio::test]
async fn several_accounts_each_with_its_own_token() {
    let sandbox = Sandbox::start(&["--accounts", "2"], "Ctrl-C stops it.").await;
    assert!(
        sandbox.printed.contains(
            "\n  accounts  default (no header), acme (X-Zoho-Account: acme); one Zoho client, a refresh token each\n"
        ),
        "{}",
        sandbox.printed
    );
    let (proxy, admin) = (sandbox.addr("proxy"), sandbox.addr("admin"));
    wait_ready(&admin).await;
    let user = format!("{proxy}/api/v2/user.json");
    let plain = client().get(&user).send().await.unwrap();
    assert_eq!(plain.status(), 200);
    for _ in 0..2 {
        let acme = client()
            .get(&user)
            .header("X-Zoho-Account", "acme")
            .send()
            .await
            .unwrap();
        assert_eq!(acme.status(), 200);
    }
    let nope = client()
        .get(&user)
        .header("X-Zoho-Account", "nope")
        .send()
        .await
        .unwrap();
    assert_eq!(nope.status(), 400);
    assert_eq!(
        nope.headers()["content-type"].to_str().unwrap(),
        "application/problem+json"
    );
    let problem: serde_json::Value = nope.json().await.unwrap();
    assert_eq!(
        problem["type"], "urn:zoho-meeting-proxy:problem:unknown-account",
        "{problem}"
    );

    let status: serde_json::Value = client()
        .get(format!("{admin}/status"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let accounts = status["accounts"].as_object().unwrap();
    let mut names: Vec<&str> = accounts.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(names, ["acme", "default"], "{status}");
    let fingerprint = |name: &str| {
        let account = &status["accounts"][name];
        assert_eq!(account["ready"], true, "{name}: {status}");
        let print = account["token_fingerprint"].as_str().unwrap().to_owned();
        assert_eq!(print.len(), 12, "{status}");
        print
    };
    assert_ne!(fingerprint("default"), fingerprint("acme"), "{status}");
    // The top level is default's, as with one account.
    assert_eq!(
        status["token_fingerprint"].as_str(),
        Some(fingerprint("default").as_str())
    );
    for (query, expected) in [("acme", 200), ("default", 200), ("nope", 404)] {
        let readyz = client()
            .get(format!("{admin}/readyz?account={query}"))
            .send()
            .await
            .unwrap();
        assert_eq!(readyz.status(), expected, "/readyz?account={query}");
    }

    let metrics = client()
        .get(format!("{admin}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let sample = |name: &str, labels: &[&str]| -> Option<String> {
        metrics
            .lines()
            .find(|l| {
                l.starts_with(&format!("{name}{{")) && labels.iter().all(|label| l.contains(label))
            })
            .and_then(|l| l.rsplit_once(' '))
            .map(|(_, value)| value.to_owned())
    };
    let get_2xx = [
        r#"route="default""#,
        r#"method="GET""#,
        r#"status_class="2xx""#,
    ];
    let with = |account: &'static str| {
        let mut labels = vec![account];
        labels.extend(get_2xx);
        labels
    };
    assert_eq!(
        sample("zoho_proxy_http_requests_total", &with(r#"account="acme""#)).as_deref(),
        Some("2"),
        "{metrics}"
    );
    assert_eq!(
        sample(
            "zoho_proxy_http_requests_total",
            &with(r#"account="default""#)
        )
        .as_deref(),
        Some("1"),
        "{metrics}"
    );
    for account in ["default", "acme"] {
        let label = format!("account=\"{account}\"");
        assert_eq!(
            sample(
                "zoho_proxy_token_refreshes_total",
                &[&label, r#"outcome="ok""#]
            )
            .as_deref(),
            Some("1"),
            "{metrics}"
        );
        assert_eq!(
            sample("zoho_proxy_ready", &[&label]).as_deref(),
            Some("1"),
            "{metrics}"
        );
    }
    let log = sandbox.stop().await;
    assert!(log.contains("account=acme"), "{log}");
}

/// `--accounts` is 1 to 8: beyond, a usage error (exit 2) naming the range.
#[tokio::test]
async fn accounts_beyond_eight_or_below_one_are_a_usage_error() {
    let home = tempfile::tempdir().unwrap();
    for n in ["0", "9"] {
        let out = command(home.path())
            .args(["sandbox", "--accounts", n])
            .output()
            .await
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{n}: {stderr}");
        assert!(stderr.contains("1..=8"), "{stderr}");
    }
}

/// `--emulator-only --accounts 3` prints `[[accounts]]` entries (acme and globex, each with
/// its own refresh token and the emulator's accounts server) that `serve` runs with: a
/// request for each account succeeds with a token of its own, and each account's file store
/// sits beside default's (`token-NAME.json`).
#[tokio::test]
async fn emulator_only_prints_the_other_accounts_and_serve_runs_them() {
    let sandbox = Sandbox::start(
        &["--emulator-only", "--accounts", "3"],
        "strip_prefix = true",
    )
    .await;
    let config: toml::Table = sandbox.printed.parse().unwrap();
    let accounts = config["accounts"].as_array().unwrap();
    let names: Vec<&str> = accounts
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["acme", "globex"]);
    let mut tokens = vec![config["oauth"]["refresh_token"].as_str().unwrap()];
    for account in accounts {
        assert_eq!(account["accounts_url"], config["oauth"]["accounts_url"]);
        tokens.push(account["refresh_token"].as_str().unwrap());
    }
    tokens.sort_unstable();
    tokens.dedup();
    assert_eq!(tokens.len(), 3, "a refresh token each");
    let file = sandbox.home.path().join("proxy.toml");
    std::fs::write(&file, &sandbox.printed).unwrap();

    let ports: Vec<String> = (0..2)
        .map(|_| {
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .to_string()
        })
        .collect();
    let mut serve = command(sandbox.home.path())
        .env("ZOHO_PROXY_SERVER__LISTEN", &ports[0])
        .env("ZOHO_PROXY_SERVER__ADMIN_LISTEN", &ports[1])
        .args(["-c", file.to_str().unwrap(), "serve"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let admin = format!("http://{}", ports[1]);
    wait_ready(&admin).await;
    for account in ["default", "acme", "globex"] {
        let me = client()
            .get(format!("http://{}/api/v2/user.json", ports[0]))
            .header("X-Zoho-Account", account)
            .send()
            .await
            .unwrap();
        assert_eq!(me.status(), 200, "{account}");
    }
    let status: serde_json::Value = client()
        .get(format!("{admin}/status"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut prints: Vec<&str> = ["default", "acme", "globex"]
        .iter()
        .map(|name| {
            status["accounts"][name]["token_fingerprint"]
                .as_str()
                .unwrap()
        })
        .collect();
    prints.sort_unstable();
    prints.dedup();
    assert_eq!(prints.len(), 3, "{status}");
    let store = std::path::PathBuf::from(config["token"]["path"].as_str().unwrap());
    let dir = store.parent().unwrap();
    for name in ["token.json", "token-acme.json", "token-globex.json"] {
        assert!(dir.join(name).exists(), "{name} in {}", dir.display());
    }
    serve.start_kill().unwrap();
    serve.wait().await.unwrap();
    sandbox.stop().await;
    assert!(!dir.exists(), "{} is removed on Ctrl-C", dir.display());
}

/// Waits (at most 10 s) until `admin`'s `/readyz` answers 200.
async fn wait_ready(admin: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while client()
        .get(format!("{admin}/readyz"))
        .send()
        .await
        .map(|r| r.status())
        .ok()
        != Some(reqwest::StatusCode::OK)
    {
        assert!(tokio::time::Instant::now() < deadline, "{admin} ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// With the admin endpoints away from their default (`--admin-listen`), the banner prints the
/// `status` and `wait` lines that find them, and they work pasted into a shell (with the
/// binary on PATH, in a directory without a proxy.toml). See issue 20, item 5.
#[tokio::test]
async fn the_banner_says_how_status_and_wait_find_a_moved_admin_listener() {
    let sandbox = Sandbox::start(&["--admin-listen", "127.0.0.1:0"], "Ctrl-C stops it.").await;
    let admin = sandbox.addr("admin");
    let admin = admin.trim_start_matches("http://");
    assert_ne!(admin, "127.0.0.1:9090");
    let lines: Vec<&str> = sandbox
        .printed
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("ZOHO_PROXY_SERVER__ADMIN_LISTEN="))
        .collect();
    assert_eq!(
        lines,
        [
            format!("ZOHO_PROXY_SERVER__ADMIN_LISTEN={admin} zoho-meeting-proxy status"),
            format!(
                "ZOHO_PROXY_SERVER__ADMIN_LISTEN={admin} zoho-meeting-proxy wait --timeout 30s"
            ),
        ],
        "{}",
        sandbox.printed
    );
    let bin_dir = std::path::Path::new(&binary()).parent().unwrap().to_owned();
    let script = format!(
        "set -euo pipefail\ncd '{home}'\nexport PATH='{bin}':\"$PATH\"\n{}\n",
        lines.join("\n"),
        home = sandbox.home.path().display(),
        bin = bin_dir.display(),
    );
    let run = bash(&script).await;
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{}\n{stdout}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        stdout.contains("ready:"),
        "status printed the token status: {stdout}"
    );
    sandbox.stop().await;
}

/// `--refresh-token-file`: the emulator accepts the refresh token in the file (as a pod or
/// compose file gives the emulator and the proxy the same secret), and the printed
/// proxy.toml names the file; `token` with it works, and an empty file is refused.
#[tokio::test]
async fn emulator_only_accepts_the_refresh_token_from_a_file() {
    let secrets = tempfile::tempdir().unwrap();
    let file = secrets.path().join("refresh_token");
    std::fs::write(&file, "1000.chosen-by-the-test.0123456789abcdef\n").unwrap();
    let sandbox = Sandbox::start(
        &[
            "--emulator-only",
            "--refresh-token-file",
            file.to_str().unwrap(),
        ],
        "strip_prefix = true",
    )
    .await;
    let config: toml::Table = sandbox.printed.parse().unwrap();
    assert_eq!(
        config["oauth"]["refresh_token_file"].as_str(),
        file.to_str()
    );
    assert!(config["oauth"].get("refresh_token").is_none(), "{config}");
    let printed = sandbox.home.path().join("proxy.toml");
    std::fs::write(&printed, &sandbox.printed).unwrap();
    let out = command(sandbox.home.path())
        .args(["-c", printed.to_str().unwrap(), "token"])
        .output()
        .await
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!String::from_utf8_lossy(&out.stdout).trim().is_empty());
    sandbox.stop().await;

    std::fs::write(&file, " \n").unwrap();
    let home = tempfile::tempdir().unwrap();
    let out = command(home.path())
        .args(["sandbox", "--emulator-only", "--refresh-token-file"])
        .arg(&file)
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is empty"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
