//! README's quick start, as a user would follow it: `sandbox`, then README's block of curl
//! calls pasted into bash (the real curl; `$KEY` captured by the block's own one-liner),
//! through at least two token refreshes; and its "Several accounts" block against
//! `sandbox --accounts 2`.
//!
//! The binary is `$ZOHO_PROXY_TEST_BIN` when set (CI points it at the release build, as
//! README's `cargo run --release -- sandbox` runs), else the one cargo built for the tests
//! (`support::sandbox`).

use crate::support;
use crate::support::sandbox::{Sandbox, bash};

/// README's block marked `<!-- readme-test: NAME -->`, as written.
fn readme_block(name: &str) -> &'static str {
    let readme = include_str!("../README.md");
    let start = readme
        .find(&format!("<!-- readme-test: {name} -->"))
        .unwrap_or_else(|| panic!("README marks its {name} block"));
    let block = &readme[start..];
    let open = block
        .find("```sh\n")
        .expect("a sh block follows the marker")
        + 6;
    let close = block[open..].find("```").expect("the block ends") + open;
    &block[open..close]
}

/// Put before the block: stop at the first failure, and a `curl` that fails on an HTTP
/// error and reports each status on stderr (a user's curl prints the body only).
const PRELUDE: &str = r#"set -euo pipefail
curl() {
    command curl -sS --fail-with-body -w '%{stderr}README-STATUS %{http_code}\n' "$@"
    # Spread the calls over several token lifetimes.
    sleep 1.2
}
"#;

#[tokio::test]
async fn readme_quick_start_works_as_written() {
    let sandbox = Sandbox::start(&["--token-lifetime", "4s"], "\n  admin ").await;
    let proxy = sandbox
        .addr("proxy")
        .trim_start_matches("http://")
        .to_owned();
    let admin = sandbox
        .addr("admin")
        .trim_start_matches("http://")
        .to_owned();

    // The block as a user pastes it into bash, on the actual ports.
    crate::support::tools::curl();
    let block = readme_block("sandbox");
    let calls = block.matches("curl ").count();
    assert!(calls >= 7, "{block}");
    let script = format!(
        "{PRELUDE}{}",
        block
            .replace("127.0.0.1:8080", &proxy)
            .replace("127.0.0.1:9090", &admin)
    );
    let run = bash(&script).await;
    let (stdout, stderr) = (
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr),
    );
    assert!(
        run.status.success(),
        "README's block failed: {stderr}\n{stdout}"
    );
    let statuses: Vec<u16> = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("README-STATUS "))
        .map(|code| code.parse().unwrap())
        .collect();
    assert_eq!(statuses.len(), calls, "every call ran: {stderr}");
    assert!(statuses.iter().all(|s| *s < 300), "{statuses:?}");
    assert_eq!(statuses[1], 201, "create answers 201");
    assert_eq!(statuses[5], 204, "delete answers 204: {statuses:?}");
    // The one-liner kept the key: a number, as Zoho's create page shows it.
    let meeting_key: String = stdout
        .split_once("meetingKey ")
        .unwrap_or_else(|| panic!("the create line prints the key: {stdout}"))
        .1
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();
    assert!(
        !meeting_key.is_empty() && meeting_key.bytes().all(|b| b.is_ascii_digit()),
        "{meeting_key:?}"
    );
    // The deleted meeting is gone.
    let gone = support::client()
        .get(format!(
            "http://{proxy}/api/v2/700000001/sessions/{meeting_key}.json"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 400);
    assert!(gone.text().await.unwrap().contains("INVALID_MEETING_KEY"));

    let log = sandbox.stop().await;
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

/// README's "Several accounts" block as written, against `sandbox --accounts 2`: no header and
/// `acme` answer, `nope` is refused as unknown, `/status` shows both accounts with tokens of
/// their own, and the metrics line README shows is there.
#[tokio::test]
async fn readme_several_accounts_works_as_written() {
    let sandbox = Sandbox::start(&["--accounts", "2"], "\n  admin ").await;
    let proxy = sandbox
        .addr("proxy")
        .trim_start_matches("http://")
        .to_owned();
    let admin = sandbox
        .addr("admin")
        .trim_start_matches("http://")
        .to_owned();
    crate::support::tools::curl();
    let block = readme_block("accounts");
    // Each status on stderr; no --fail: one call is meant to get 400.
    let prelude = "set -euo pipefail\ncurl() { command curl -sS -w '%{stderr}README-STATUS %{http_code}\\n' \"$@\"; }\n";
    let script = format!(
        "{prelude}{}",
        block
            .replace("127.0.0.1:8080", &proxy)
            .replace("127.0.0.1:9090", &admin)
    );
    let run = bash(&script).await;
    let (stdout, stderr) = (
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr),
    );
    assert!(
        run.status.success(),
        "README's block failed: {stderr}\n{stdout}"
    );
    let statuses: Vec<u16> = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("README-STATUS "))
        .map(|code| code.parse().unwrap())
        .collect();
    assert_eq!(statuses, [200, 200, 400, 200, 200], "{stderr}");
    assert!(
        stdout.contains(r#"{"type":"urn:zoho-meeting-proxy:problem:unknown-account","title":"X-Zoho-Account names no account","status":400,"#),
        "{stdout}"
    );
    let start = stdout
        .find("{\n  \"ready\"")
        .unwrap_or_else(|| panic!("the /status document: {stdout}"));
    let end = stdout[start..]
        .find("\n}")
        .unwrap_or_else(|| panic!("{stdout}"))
        + start
        + 2;
    let status: serde_json::Value = serde_json::from_str(&stdout[start..end]).unwrap();
    let print = |name: &str| {
        assert_eq!(status["accounts"][name]["ready"], true, "{status}");
        status["accounts"][name]["token_fingerprint"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_ne!(print("default"), print("acme"), "{status}");
    assert_eq!(
        status["token_fingerprint"].as_str(),
        Some(print("default").as_str())
    );
    // The grep printed the line README shows, and nothing else.
    let metrics = stdout[end..].trim();
    assert_eq!(
        metrics,
        r#"zoho_proxy_http_requests_total{account="acme",route="default",method="GET",status_class="2xx"} 1"#
    );
    let readme = include_str!("../README.md");
    assert!(
        readme.contains(&format!("\n{metrics}\n")),
        "README shows {metrics}"
    );
    sandbox.stop().await;
}
