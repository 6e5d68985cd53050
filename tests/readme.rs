//! README's quick start, as a user would follow it: `sandbox`, then the README's curl calls
//! (with the real curl binary where installed), through at least two token refreshes.
//!
//! The binary is `$ZOHO_PROXY_TEST_BIN` when set (CI points it at the release build, as
//! README's `cargo run --release -- sandbox` runs), else the one cargo built for the tests.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

use crate::support;

/// The curl lines of README's block marked `<!-- readme-test: sandbox -->`.
fn readme_curls() -> Vec<String> {
    let readme = include_str!("../README.md");
    let start = readme
        .find("<!-- readme-test: sandbox -->")
        .expect("README marks its sandbox block");
    let block = &readme[start..];
    let open = block
        .find("```sh\n")
        .expect("a sh block follows the marker")
        + 6;
    let close = block[open..].find("```").expect("the block ends") + open;
    block[open..close]
        .lines()
        .filter(|l| l.starts_with("curl "))
        .map(str::to_owned)
        .collect()
}

/// Splits a README curl line into arguments, honouring single quotes (all it uses).
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in line.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                any = true;
            }
            ' ' if !quoted => {
                if any {
                    words.push(std::mem::take(&mut word));
                    any = false;
                }
            }
            c => {
                word.push(c);
                any = true;
            }
        }
    }
    if any {
        words.push(word);
    }
    words
}

/// Runs one curl command line (with curl, or reqwest when curl is missing); returns status
/// and body.
async fn curl(args: &[String]) -> (u16, String) {
    if which_curl() {
        let output = tokio::process::Command::new("curl")
            .args(["-sS", "-w", "\n%{http_code}"])
            .args(&args[1..])
            .output()
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap();
        return (code.trim().parse().unwrap(), body.to_owned());
    }
    // The same request with an HTTP client: -X METHOD, -H 'K: V', -d BODY, URL.
    let (mut method, mut headers, mut body, mut url) =
        ("GET".to_owned(), Vec::new(), None, String::new());
    let mut it = args[1..].iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-X" => method = it.next().unwrap().clone(),
            "-H" => headers.push(it.next().unwrap().clone()),
            "-d" => {
                body = Some(it.next().unwrap().clone());
                if method == "GET" {
                    method = "POST".into();
                }
            }
            other => url = other.to_owned(),
        }
    }
    let mut request = support::client().request(method.parse().unwrap(), url);
    for h in headers {
        let (k, v) = h.split_once(':').unwrap();
        request = request.header(k.trim(), v.trim());
    }
    if let Some(body) = body {
        request = request.body(body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

fn which_curl() -> bool {
    std::process::Command::new("curl")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[tokio::test]
async fn readme_quick_start_works_as_written() {
    let curls = readme_curls();
    assert!(curls.len() >= 7, "{curls:?}");
    let home = tempfile::tempdir().unwrap();
    let binary = std::env::var("ZOHO_PROXY_TEST_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_zoho-meeting-proxy").to_owned());
    let mut cmd = tokio::process::Command::from({
        let mut c = std::process::Command::new(&binary);
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", home.path())
            .current_dir(home.path())
            // Ephemeral ports instead of 8080/9090, which may be taken on a shared machine.
            .env("ZOHO_PROXY_SERVER__LISTEN", "127.0.0.1:0")
            .env("ZOHO_PROXY_SERVER__ADMIN_LISTEN", "127.0.0.1:0");
        c
    });
    cmd.args(["sandbox", "--token-lifetime", "4s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut banner = String::new();
    let (mut proxy, mut admin) = (None, None);
    while proxy.is_none() || admin.is_none() {
        let line = tokio::time::timeout(Duration::from_secs(20), out.next_line())
            .await
            .expect("the banner appears")
            .unwrap()
            .expect("sandbox is running");
        banner.push_str(&line);
        banner.push('\n');
        let url = |l: &str| {
            l.split_whitespace()
                .nth(1)
                .unwrap()
                .trim_start_matches("http://")
                .to_owned()
        };
        if line.trim_start().starts_with("proxy ") {
            proxy = Some(url(&line));
        } else if line.trim_start().starts_with("admin ") {
            admin = Some(url(&line));
        }
    }
    let (proxy, admin) = (proxy.unwrap(), admin.unwrap());
    let stderr = child.stderr.take().unwrap();
    let log = tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        let mut log = String::new();
        while let Ok(Some(l)) = lines.next_line().await {
            log.push_str(&l);
            log.push('\n');
        }
        log
    });

    // Every README call, in order, on the actual ports; MEETING_KEY from the create answer.
    let mut meeting_key = String::new();
    let mut statuses = Vec::new();
    for (i, line) in curls.iter().enumerate() {
        let line = line
            .replace("127.0.0.1:8080", &proxy)
            .replace("127.0.0.1:9090", &admin)
            .replace("MEETING_KEY", &meeting_key);
        let (status, body) = curl(&shell_words(&line)).await;
        if line.contains("-X POST") {
            let json: serde_json::Value = serde_json::from_str(&body).unwrap();
            // A number, as Zoho's create page shows it.
            meeting_key = json["session"]["meetingKey"].as_u64().unwrap().to_string();
        }
        statuses.push(status);
        assert!(
            status < 300,
            "README call {i} `{line}` gave {status}: {body}"
        );
        // Spread the calls over several token lifetimes.
        tokio::time::sleep(Duration::from_millis(1200)).await;
    }
    assert_eq!(statuses[1], 201, "create answers 201");
    assert!(statuses.contains(&204), "delete answers 204: {statuses:?}");
    // The deleted meeting is gone.
    let (status, body) = curl(&shell_words(&format!(
        "curl http://{proxy}/api/v2/700000001/sessions/{meeting_key}.json"
    )))
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("INVALID_MEETING_KEY"));

    let kill = std::process::Command::new("kill")
        .args(["-INT", &child.id().unwrap().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let exit = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .unwrap()
        .unwrap();
    let log = log.await.unwrap();
    assert_eq!(exit.code(), Some(0), "{log}");
    let refreshes = log.matches("access token refreshed").count();
    assert!(
        refreshes >= 3,
        "the first token and at least two refreshes, got {refreshes}:\n{log}"
    );
    // Per-request lines are at debug; the summary on the way out counts them by class.
    let summary = log
        .lines()
        .find(|l| l.contains("requests since the last summary:"))
        .unwrap_or_else(|| panic!("a summary of the requests:\n{log}"));
    assert!(!summary.contains("5xx"), "no request failed: {summary}");
}
