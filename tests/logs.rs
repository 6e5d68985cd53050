//! What `serve` logs about requests, through the real binary: by default no line per
//! request at `info` but a summary; `log.requests = true` a line each, numbers rounded.

use std::time::Duration;

use zoho_emulator::accounts::AccountsEmulator;

use crate::support::served::Served;
use crate::support::{self, TestUpstream, client};

/// A `proxy.toml` for `serve` in front of `upstream`, with `log` as its `[log]` table.
fn write_config(
    home: &std::path::Path,
    accounts: &AccountsEmulator,
    refresh: &str,
    upstream: &str,
    log: &str,
) {
    std::fs::write(
        home.join("proxy.toml"),
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n\n\
             [oauth]\nclient_id = \"{}\"\nclient_secret = \"{}\"\nrefresh_token = \"{refresh}\"\n\
             accounts_url = \"{}\"\n\n[upstream]\nurl = \"{upstream}\"\n\n[token]\nstore = \"memory\"\n\n\
             [log]\n{log}\n",
            support::CLIENT_ID,
            support::CLIENT_SECRET,
            accounts.url(),
        ),
    )
    .unwrap();
}

/// The accounts emulator, a refresh token it issued (meetings, read only), and an upstream.
async fn emulator_and_upstream() -> (AccountsEmulator, String, TestUpstream) {
    let accounts = support::emulator(support::options(Duration::from_secs(3600))).await;
    let refresh = accounts
        .control()
        .issue_refresh_token(&["ZohoMeeting.meeting.READ"]);
    let upstream = TestUpstream::start().await;
    (accounts, refresh, upstream)
}

#[tokio::test]
async fn requests_are_summarised_by_default_and_logged_one_by_one_on_request() {
    let (accounts, refresh, upstream) = emulator_and_upstream().await;
    for requests in [false, true] {
        let home = tempfile::tempdir().unwrap();
        let log = format!("requests = {requests}");
        write_config(home.path(), &accounts, &refresh, &upstream.url(), &log);
        let served = Served::start(home.path()).await;
        served.wait_ready(200).await;
        for path in ["/a", "/b", "/unauthorized"] {
            let response = client()
                .get(format!("http://{}{path}", served.proxy))
                .send()
                .await
                .unwrap();
            response.text().await.unwrap();
        }
        let log = served.stop(&[support::CLIENT_SECRET, &refresh]).await;
        let request_lines: Vec<&str> = log.lines().filter(|l| l.contains("http.status=")).collect();
        if requests {
            assert_eq!(request_lines.len(), 3, "{log}");
            for line in request_lines {
                assert!(line.contains(" INFO "), "{line}");
                // Rounded to hundredths: `latency_ms=0.16`, never `0.15693900000000002`.
                let latency = line
                    .split("latency_ms=")
                    .nth(1)
                    .and_then(|rest| rest.split(' ').next())
                    .unwrap();
                let decimals = latency.split('.').nth(1).map_or(0, str::len);
                assert!(decimals <= 2, "{line}");
            }
        } else {
            assert!(
                request_lines.is_empty(),
                "no line per request at info:\n{log}"
            );
        }
        assert!(
            log.contains("requests since the last summary: 3 requests: 2xx 2, 4xx 1"),
            "{log}"
        );
    }
}

/// At `debug`, every request's lines sit in its connection's span, which names the client's
/// address and the protocol: over HTTP/1.1, and over HTTP/2, whose requests run in tasks of
/// their own.
#[tokio::test]
async fn request_lines_nest_in_their_connections_span() {
    let (accounts, refresh, upstream) = emulator_and_upstream().await;
    let home = tempfile::tempdir().unwrap();
    let log = "level = \"info,zoho_meeting_proxy=debug\"";
    write_config(home.path(), &accounts, &refresh, &upstream.url(), log);
    let served = Served::start(home.path()).await;
    served.wait_ready(200).await;
    let h2 = reqwest::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    for (http, path) in [(client(), "/over-http1"), (h2, "/over-h2")] {
        // Refused by the guard (a cross-site request): its line is logged in the request span.
        let response = http
            .get(format!("http://{}{path}", served.proxy))
            .header("sec-fetch-site", "cross-site")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403);
    }
    let log = served.stop(&[support::CLIENT_SECRET, &refresh]).await;
    for (protocol, path) in [("http1", "/over-http1"), ("h2", "/over-h2")] {
        let line = log
            .lines()
            .find(|l| l.contains("request refused") && l.contains(path))
            .unwrap_or_else(|| panic!("a refusal logged for {path}:\n{log}"));
        let nested = format!(" http.protocol=\"{protocol}\"}}:request{{");
        assert!(
            line.contains("conn{client.addr=127.0.0.1:") && line.contains(&nested),
            "{line}"
        );
    }
}
