//! The proxy over real sockets: injection, transparency, streaming, errors, admin, shutdown.

use std::time::Duration;

use sha2::{Digest, Sha256};

use zoho_meeting_proxy::token::TokenSource;

use crate::support::{self, TestProxy, TestUpstream, client, pattern_byte, raw};

async fn setup(
    extra: &[(&str, toml::Value)],
) -> (
    zoho_emulator::accounts::AccountsEmulator,
    TestUpstream,
    TestProxy,
) {
    support::proxy_with_upstream(extra).await
}

#[tokio::test]
async fn injects_the_token_and_removes_client_credentials() {
    let (accounts, upstream, proxy) = setup(&[]).await;
    let response = client()
        .get(proxy.url("/api/v2/user.json"))
        .header("authorization", "Basic dXNlcjpwYXNz")
        .header("cookie", "session=abc")
        .header("proxy-authorization", "Bearer client-key")
        .header("x-request-id", "req-42")
        .header("x-custom", "kept")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-request-id"], "req-42");
    let seen = upstream.seen().pop().unwrap();
    let auth = seen.headers_named("authorization");
    assert_eq!(auth.len(), 1);
    let token = auth[0]
        .strip_prefix("Zoho-oauthtoken ")
        .expect("Zoho-oauthtoken scheme");
    assert!(accounts.control().validate_access_token(token).is_some());
    assert!(seen.header("cookie").is_none());
    assert!(seen.header("proxy-authorization").is_none());
    assert_eq!(
        seen.header("host"),
        Some(upstream.addr.to_string().as_str())
    );
    assert_eq!(seen.header("x-request-id"), Some("req-42"));
    assert_eq!(seen.header("x-custom"), Some("kept"));
    for added in [
        "via",
        "x-forwarded-for",
        "x-forwarded-proto",
        "forwarded",
        "accept-encoding",
    ] {
        assert!(seen.header(added).is_none(), "{added} must not be added");
    }
    // A request without an id gets one.
    let response = client().get(proxy.url("/x")).send().await.unwrap();
    let id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        upstream.seen().pop().unwrap().header("x-request-id"),
        Some(id.as_str())
    );
}

#[tokio::test]
async fn path_and_query_reach_the_upstream_byte_for_byte() {
    let (_accounts, upstream, proxy) = setup(&[]).await;
    let targets = [
        "/api/v2/123/sessions.json?listtype=upcoming&index=1&count=20",
        "/api/v2/a%2Fb/x.json?q=a+b&q=c%20d&empty=&x=%E2%9C%93",
        "/meeting/api/v2/1/recordings.json",
        // Empty segments and dots inside a segment pass untouched (dot segments get 400:
        // tests/guard.rs).
        "/a//b/.c/..d?%zz&&=",
    ];
    for target in targets {
        let request =
            format!("GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        let answer = raw(proxy.addr, request.as_bytes()).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{target}: {answer}");
        assert_eq!(upstream.seen().pop().unwrap().target, target);
    }
}

#[tokio::test]
async fn hop_by_hop_headers_are_removed_both_ways() {
    let (_accounts, upstream, proxy) = setup(&[]).await;
    let request = "GET /hop HTTP/1.1\r\nHost: localhost\r\nConnection: close, x-foo\r\nX-Foo: 1\r\n\
                   Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\nX-Bar: 2\r\n\r\n";
    let answer = raw(proxy.addr, request.as_bytes())
        .await
        .to_ascii_lowercase();
    assert!(answer.starts_with("http/1.1 200"), "{answer}");
    let seen = upstream.seen().pop().unwrap();
    for gone in [
        "x-foo",
        "keep-alive",
        "proxy-connection",
        "te",
        "connection",
    ] {
        assert!(seen.header(gone).is_none(), "{gone} reached the upstream");
    }
    assert_eq!(seen.header("x-bar"), Some("2"));
    // The upstream's hop-by-hop headers do not reach the client.
    assert!(answer.contains("x-keep: 1"), "{answer}");
    for gone in ["x-drop:", "keep-alive:", "upgrade:"] {
        assert!(
            !answer.contains(gone),
            "{gone} reached the client: {answer}"
        );
    }
}

#[tokio::test]
async fn statuses_and_headers_pass_through() {
    let (_accounts, _upstream, proxy) = setup(&[]).await;
    for status in [201u16, 204, 404, 500] {
        let response = client()
            .get(proxy.url(&format!("/status/{status}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status);
        assert_eq!(response.headers()["x-upstream"], "yes");
        assert!(response.headers().get("x-proxy-error").is_none());
    }
}

#[tokio::test]
async fn large_bodies_stream_both_ways_intact() {
    const SIZE: u64 = 200 * 1024 * 1024;
    let (_accounts, _upstream, proxy) = setup(&[]).await;

    // Download: every byte checked against the pattern, hashed, never held whole.
    let mut response = client()
        .get(proxy.url(&format!("/download/{SIZE}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.content_length(), Some(SIZE));
    let mut offset = 0u64;
    let mut mismatches = 0u64;
    while let Some(chunk) = response.chunk().await.unwrap() {
        for (i, b) in chunk.iter().enumerate() {
            if *b != pattern_byte(offset + i as u64) {
                mismatches += 1;
            }
        }
        offset += chunk.len() as u64;
    }
    assert_eq!(offset, SIZE);
    assert_eq!(mismatches, 0);

    // Upload: streamed from a generator; the upstream hashes what arrives.
    let mut expected = Sha256::new();
    for start in (0..SIZE).step_by(65536) {
        let n = (SIZE - start).min(65536);
        expected.update((start..start + n).map(pattern_byte).collect::<Vec<u8>>());
    }
    let expected: String = expected
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let body = reqwest::Body::wrap(support::Pattern::new(SIZE));
    let response = client()
        .post(proxy.url("/upload"))
        .header("content-length", SIZE.to_string())
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let json: serde_json::Value = response.json().await.unwrap();
    assert_eq!(json["len"], SIZE);
    assert_eq!(json["sha256"], expected);
}

#[tokio::test]
async fn chunks_of_a_slow_response_arrive_as_they_are_sent() {
    let (_accounts, upstream, proxy) = setup(&[]).await;
    let mut response = client().get(proxy.url("/slow")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let first = tokio::time::timeout(Duration::from_secs(5), response.chunk())
        .await
        .expect("the first chunk arrives while the upstream is still sending")
        .unwrap()
        .unwrap();
    assert_eq!(&first[..], b"first\n");
    upstream.release();
    let second = response.chunk().await.unwrap().unwrap();
    assert_eq!(&second[..], b"second\n");
    assert!(response.chunk().await.unwrap().is_none());
}

#[tokio::test]
async fn permission_errors_never_cause_a_refresh() {
    let (accounts, _upstream, proxy) = setup(&[]).await;
    let mints = accounts.control().mint_count();
    for path in ["/status/403", "/unauthorized", "/status/400", "/status/401"] {
        let response = client().get(proxy.url(path)).send().await.unwrap();
        assert!(response.status().is_client_error());
        assert!(response.headers().get("x-proxy-error").is_none());
    }
    assert_eq!(accounts.control().mint_count(), mints);
}

fn problem(body: &str, status: u16) -> serde_json::Value {
    let json: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(json["status"], status, "{json}");
    assert!(
        json["type"]
            .as_str()
            .unwrap()
            .starts_with("urn:zoho-meeting-proxy:problem:")
    );
    assert!(json["title"].is_string() && json["detail"].is_string());
    json
}

#[tokio::test]
async fn unreachable_upstream_is_502_problem_json() {
    let accounts = support::emulator(support::options(Duration::from_secs(3600))).await;
    // A port that was just free and is closed again: connections are refused.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let proxy = TestProxy::start(&accounts, &format!("http://{closed}"), &[]).await;
    proxy.ready().await;
    let response = client()
        .get(proxy.url("/api/v2/user.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    assert_eq!(response.headers()["x-proxy-error"], "upstream-unreachable");
    problem(&response.text().await.unwrap(), 502);
}

#[tokio::test]
async fn slow_upstream_is_504_problem_json() {
    let (_accounts, _upstream, proxy) = setup(&[("upstream.timeout", "1s".into())]).await;
    let response = client().get(proxy.url("/delay/3000")).send().await.unwrap();
    assert_eq!(response.status(), 504);
    problem(&response.text().await.unwrap(), 504);
}

#[tokio::test]
async fn no_token_is_503_with_retry_after_and_readiness_follows() {
    let accounts = support::emulator(support::options(Duration::from_secs(3600))).await;
    accounts.control().set_outage(Some(503));
    let upstream = TestUpstream::start().await;
    let proxy = TestProxy::start(
        &accounts,
        &upstream.url(),
        &[("upstream.timeout", "2s".into())],
    )
    .await;
    let readyz = client()
        .get(proxy.admin_url("/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(readyz.status(), 503);
    let response = client()
        .get(proxy.url("/api/v2/user.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    let retry: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=300).contains(&retry), "{retry}");
    let json = problem(&response.text().await.unwrap(), 503);
    assert!(json["detail"].as_str().unwrap().contains("503"), "{json}");
    assert!(
        upstream.seen().is_empty(),
        "nothing is sent upstream without a token"
    );

    // Zoho recovers; SIGHUP's retry brings the token at once.
    accounts.control().set_outage(None);
    proxy.running().manager().retry_now();
    proxy.ready().await;
    let readyz = client()
        .get(proxy.admin_url("/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(readyz.status(), 200);
    let response = client()
        .get(proxy.url("/api/v2/user.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    // Shutdown begins: readiness drops at once.
    proxy.running().begin_shutdown();
    let readyz = client()
        .get(proxy.admin_url("/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(readyz.status(), 503);
}

#[tokio::test]
async fn connect_and_absolute_form_are_refused() {
    let (_accounts, upstream, proxy) = setup(&[]).await;
    let answer = raw(
        proxy.addr,
        b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
    )
    .await;
    assert!(
        answer.starts_with("HTTP/1.1 405") || answer.starts_with("HTTP/1.1 400"),
        "{answer}"
    );
    let answer = raw(
        proxy.addr,
        b"GET http://example.com/api HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("application/problem+json"));
    assert!(upstream.seen().is_empty());
}

#[tokio::test]
async fn graceful_shutdown_finishes_in_flight_requests() {
    let (_accounts, _upstream, mut proxy) = setup(&[]).await;
    let url = proxy.url("/delay/800");
    let in_flight = tokio::spawn(async move { client().get(url).send().await.map(|r| r.status()) });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let running = proxy.running.take().unwrap();
    let addr = proxy.addr;
    let drained = tokio::spawn(running.finish());
    assert_eq!(in_flight.await.unwrap().unwrap(), 200);
    assert!(drained.await.unwrap(), "drained within the grace period");
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "no longer accepting"
    );
}

#[tokio::test]
async fn http2_clients_are_served() {
    let (_accounts, upstream, proxy) = setup(&[]).await;
    let h2 = reqwest::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let response = h2
        .get(proxy.url("/api/v2/user.json?x=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(response.status(), 200);
    let seen = upstream.seen().pop().unwrap();
    assert_eq!(seen.method, "GET");
    assert_eq!(seen.version, "HTTP/1.1", "cleartext upstreams get HTTP/1.1");
    assert_eq!(seen.target, "/api/v2/user.json?x=1");
    assert!(
        seen.header("authorization")
            .unwrap()
            .starts_with("Zoho-oauthtoken ")
    );
    assert_eq!(
        seen.header("host"),
        Some(upstream.addr.to_string().as_str())
    );
}

/// Reads until the proxy closes `stream` (or 10 s pass): what it sent, and when it closed.
async fn read_until_closed(
    stream: &mut (impl tokio::io::AsyncRead + Unpin),
) -> (Vec<u8>, tokio::time::Instant) {
    use tokio::io::AsyncReadExt;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => panic!("still open after 10 s; read so far: {got:?}"),
            Ok(Ok(0) | Err(_)) => return (got, tokio::time::Instant::now()),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// The `Content-Length` of an HTTP/1.1 head.
fn content_length(head: &str) -> Option<usize> {
    head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse().unwrap())
    })
}

/// Reads one HTTP/1.1 answer with a `Content-Length` body from `stream`; returns its head.
async fn read_answer(stream: &mut tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&got[..end]).into_owned();
            let length =
                content_length(&head).unwrap_or_else(|| panic!("no content-length: {head}"));
            if got.len() >= end + 4 + length {
                return head;
            }
        }
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
            .await
            .expect("an answer within 10 s")
            .unwrap();
        assert!(n > 0, "closed before a whole answer: {got:?}");
        got.extend_from_slice(&buf[..n]);
    }
}

/// `limits.header_read_timeout`: an HTTP/1 connection without a request in flight that long
/// is closed, whether it sent nothing, is stuck halfway through its headers however it
/// trickles them (slow-loris), or is idle after an answer; a request that takes longer than
/// the timeout is answered and its connection kept; an HTTP/2 connection stays open.
#[tokio::test]
async fn connections_without_a_request_for_the_header_read_timeout_are_closed() {
    use tokio::io::AsyncWriteExt;
    let timeout = Duration::from_secs(1);
    let (_accounts, _upstream, proxy) = setup(&[("limits.header_read_timeout", "1s".into())]).await;
    let early = |what: &str, open_for: Duration| {
        assert!(
            open_for >= timeout - Duration::from_millis(50),
            "{what}: closed after {open_for:?}, before the timeout"
        );
    };

    // Nothing sent.
    let opened = tokio::time::Instant::now();
    let mut silent = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    let (got, closed) = read_until_closed(&mut silent).await;
    assert!(got.is_empty(), "{got:?}");
    early("silent", closed - opened);

    // Headers trickled a byte every 200 ms, never finished.
    let opened = tokio::time::Instant::now();
    let mut slow = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    let (mut read_half, mut write_half) = slow.split();
    let trickle = async {
        write_half
            .write_all(b"GET /x HTTP/1.1\r\nHost: a\r\nX-Slow: ")
            .await
            .unwrap();
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if write_half.write_all(b"a").await.is_err() {
                return;
            }
        }
    };
    let closed = tokio::select! {
        () = trickle => tokio::time::Instant::now(),
        (_, closed) = read_until_closed(&mut read_half) => closed,
    };
    early("slow-loris", closed - opened);
    drop(slow);

    // A request longer than the timeout is answered, and its connection serves the next at
    // once; then, idle, it is closed one timeout after its last answer.
    let mut keep = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    keep.write_all(b"GET /delay/1500 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let head = read_answer(&mut keep).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    keep.write_all(b"GET /x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let head = read_answer(&mut keep).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let answered = tokio::time::Instant::now();
    let (got, closed) = read_until_closed(&mut keep).await;
    assert!(got.is_empty(), "{got:?}");
    early("idle keep-alive", closed - answered);

    // HTTP/2: still usable after twice the timeout without a request.
    let stream = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    for _ in 0..2 {
        let request = http::Request::get(proxy.url("/x"))
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .unwrap();
        let response = sender.send_request(request).await.unwrap();
        assert_eq!(response.status(), 200);
        tokio::time::sleep(timeout * 2).await;
    }
}

#[tokio::test]
async fn admin_endpoints_report_without_secrets() {
    let (accounts, _upstream, proxy) = setup(&[]).await;
    client().get(proxy.url("/x")).send().await.unwrap();
    let livez = client()
        .get(proxy.admin_url("/livez"))
        .send()
        .await
        .unwrap();
    assert_eq!(livez.status(), 200);
    let status: serde_json::Value = client()
        .get(proxy.admin_url("/status"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["ready"], true);
    assert!(status["token_expires_in_s"].as_u64().unwrap() > 3000);
    assert_eq!(status["mints_in_window"], 1);
    assert_eq!(status["token_fingerprint"].as_str().unwrap().len(), 12);
    for key in ["last_refresh", "last_error"] {
        assert!(status.get(key).is_some(), "{key}");
    }
    let metrics = client()
        .get(proxy.admin_url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for name in [
        "zoho_proxy_http_requests_total{account=\"default\",route=\"default\",method=\"GET\",status_class=\"2xx\"} 1",
        "zoho_proxy_upstream_latency_seconds_bucket",
        "zoho_proxy_http_request_duration_seconds_count",
        "zoho_proxy_in_flight_requests",
        "zoho_proxy_token_refreshes_total{account=\"default\",outcome=\"ok\"} 1",
        "zoho_proxy_token_expiry_seconds",
        "zoho_proxy_token_mints_left{account=\"default\"} 9",
        "zoho_proxy_replays_total{account=\"default\"} 0",
    ] {
        assert!(metrics.contains(name), "{name} missing:\n{metrics}");
    }
    let token = proxy.running().manager().current().unwrap();
    let secret = token.secret().expose();
    let all = format!("{status}{metrics}");
    assert!(!all.contains(secret.as_str()) && !all.contains(&proxy.refresh_token));
    assert!(accounts.control().validate_access_token(secret).is_some());
}

// === token rejection, against the Meeting emulator ===

use zoho_emulator::accounts::AccountsEmulator;
use zoho_emulator::meeting::{MeetingEmulator, MeetingOptions};

async fn with_meeting(
    extra: &[(&str, toml::Value)],
) -> (AccountsEmulator, MeetingEmulator, TestProxy) {
    let accounts = support::emulator(support::options(Duration::from_secs(3600))).await;
    let meeting = support::meeting_emulator(&accounts).await;
    let proxy = TestProxy::start(&accounts, &meeting.url(), extra).await;
    proxy.ready().await;
    (accounts, meeting, proxy)
}

/// Revokes the proxy's current access token at the emulated accounts server, as Zoho does
/// when a token is invalidated early.
async fn revoke_current(accounts: &AccountsEmulator, proxy: &TestProxy) {
    let token = proxy.running().manager().current().unwrap();
    let response = client()
        .post(format!("{}/oauth/v2/token/revoke", accounts.url()))
        .form(&[("token", token.secret().expose().as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

/// A client that half-closes its connection once its request is sent (`printf .. | nc -N`,
/// Python's `sock.shutdown(SHUT_WR)`) gets the whole answer, every time, although the proxy
/// reads the end of the stream while the request is still waiting for the upstream.
/// See issue 20, item 1 (no answer 94 times in 100).
#[tokio::test]
async fn a_client_that_half_closes_after_its_request_gets_the_whole_answer() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (_accounts, _meeting, proxy) = with_meeting(&[]).await;
    for attempt in 0..50 {
        let mut stream = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
        stream
            .write_all(
                b"GET /api/v2/user.json HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
            )
            .await
            .unwrap();
        // shutdown(SHUT_WR): the request is all there is.
        stream.shutdown().await.unwrap();
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut answer))
            .await
            .expect("the proxy closes the connection after its answer")
            .unwrap();
        let answer = String::from_utf8_lossy(&answer);
        let (head, body) = answer
            .split_once("\r\n\r\n")
            .unwrap_or_else(|| panic!("attempt {attempt}: no complete answer: {answer:?}"));
        assert!(
            head.starts_with("HTTP/1.1 200 "),
            "attempt {attempt}: {head}"
        );
        let length = content_length(head)
            .unwrap_or_else(|| panic!("attempt {attempt}: no content-length: {head}"));
        assert_eq!(body.len(), length, "attempt {attempt}: the whole body");
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert!(json["userDetails"]["zsoid"].is_number(), "{json}");
    }
}

fn meeting_body(agenda: &str) -> String {
    serde_json::json!({"session": {
        "topic": "Replay check", "agenda": agenda, "startTime": "Jun 19, 2030 07:00 PM",
        "duration": 3_600_000, "timezone": "Europe/Paris",
        "participants": [{"email": "a@example.com"}]}})
    .to_string()
}

#[tokio::test]
async fn a_rejected_token_is_refreshed_once_and_the_request_replayed_with_its_body() {
    let (accounts, meeting, proxy) = with_meeting(&[]).await;
    let zsoid = meeting.control().zsoid();
    revoke_current(&accounts, &proxy).await;
    let mints = accounts.control().mint_count();
    let body = meeting_body("kept for the replay");
    let response = client()
        .post(proxy.url(&format!("/api/v2/{zsoid}/sessions.json")))
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    assert_eq!(accounts.control().mint_count(), mints + 1);
    let seen = meeting.control().requests();
    assert_eq!(seen.len(), 2, "the original and one replay");
    assert_eq!(seen[0].body_len, body.len());
    assert_eq!(seen[1].body_len, body.len());
    assert_ne!(
        seen[0].authorization, seen[1].authorization,
        "the replay has the new token"
    );
    let metrics = client()
        .get(proxy.admin_url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("zoho_proxy_replays_total{account=\"default\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn fifty_concurrent_rejections_cause_one_mint() {
    let (accounts, meeting, proxy) = with_meeting(&[]).await;
    revoke_current(&accounts, &proxy).await;
    let mints = accounts.control().mint_count();
    let url = proxy.url("/api/v2/user.json");
    let requests: Vec<_> = (0..50)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { client().get(url).send().await.unwrap().status() })
        })
        .collect();
    for request in requests {
        assert_eq!(request.await.unwrap(), 200);
    }
    assert_eq!(
        accounts.control().mint_count(),
        mints + 1,
        "one mint for fifty rejections"
    );
    assert!(meeting.control().request_count() >= 100);
}

#[tokio::test]
async fn bodies_over_the_replay_limit_are_not_replayed_but_the_token_is_replaced() {
    let (accounts, meeting, proxy) =
        with_meeting(&[("upstream.replay_body_limit", 1024.into())]).await;
    let zsoid = meeting.control().zsoid();
    revoke_current(&accounts, &proxy).await;
    let mints = accounts.control().mint_count();
    let response = client()
        .post(proxy.url(&format!("/api/v2/{zsoid}/sessions.json")))
        .header("content-type", "application/json")
        .body(meeting_body(&"x".repeat(4000)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("INVALID_OAUTHTOKEN")
    );
    assert_eq!(meeting.control().request_count(), 1, "no replay");
    assert_eq!(
        accounts.control().mint_count(),
        mints + 1,
        "the token was still replaced"
    );
    // The client's retry goes through with the new token.
    let response = client()
        .post(proxy.url(&format!("/api/v2/{zsoid}/sessions.json")))
        .header("content-type", "application/json")
        .body(meeting_body(&"x".repeat(4000)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
}

#[tokio::test]
async fn scope_mismatch_is_passed_through_without_a_refresh() {
    let accounts = support::emulator(support::options(Duration::from_secs(3600))).await;
    let meeting = support::meeting_emulator(&accounts).await;
    let read_only = accounts
        .control()
        .issue_refresh_token(&["ZohoMeeting.meeting.READ"]);
    let proxy = TestProxy::start(
        &accounts,
        &meeting.url(),
        &[("oauth.refresh_token", read_only.as_str().into())],
    )
    .await;
    proxy.ready().await;
    let mints = accounts.control().mint_count();
    let zsoid = meeting.control().zsoid();
    let response = client()
        .post(proxy.url(&format!("/api/v2/{zsoid}/sessions.json")))
        .body(meeting_body("no scope"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("OAUTH_SCOPE_MISMATCH")
    );
    assert_eq!(accounts.control().mint_count(), mints);
    assert_eq!(meeting.control().request_count(), 1);
}

#[tokio::test]
async fn a_token_refused_right_after_refresh_is_not_refreshed_again() {
    let (accounts, meeting, proxy) = with_meeting(&[]).await;
    meeting.control().reject_all_tokens(true);
    let mints = accounts.control().mint_count();
    for _ in 0..3 {
        let response = client()
            .get(proxy.url("/api/v2/user.json"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400);
        assert!(
            response
                .text()
                .await
                .unwrap()
                .contains("INVALID_OAUTHTOKEN")
        );
    }
    assert_eq!(
        accounts.control().mint_count(),
        mints + 1,
        "one refresh, then no loop"
    );
    assert_eq!(
        meeting.control().request_count(),
        4,
        "first request + its replay, then one each"
    );
}

#[tokio::test]
async fn tls_upstream_verified_with_the_configured_ca() {
    let dir = tempfile::tempdir().unwrap();
    let accounts = support::emulator(support::options(Duration::from_secs(3600))).await;
    let (server_config, ca_pem) = support::test_ca();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();
    let options = MeetingOptions {
        tls: Some(server_config),
        ..MeetingOptions::default()
    };
    let meeting = MeetingEmulator::start(support::loopback(), options, accounts.control())
        .await
        .unwrap();
    assert!(meeting.url().starts_with("https://localhost:"));
    let proxy = TestProxy::start(
        &accounts,
        &meeting.url(),
        &[("upstream.ca_file", ca_file.to_str().unwrap().into())],
    )
    .await;
    proxy.ready().await;
    let response = client()
        .get(proxy.url("/api/v2/user.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let json: serde_json::Value = response.json().await.unwrap();
    assert_eq!(json["userDetails"]["zsoid"], meeting.control().zsoid());

    // Without the CA the certificate is not trusted: 502, never a plaintext fallback.
    let untrusted = TestProxy::start(&accounts, &meeting.url(), &[]).await;
    untrusted.ready().await;
    let response = client()
        .get(untrusted.url("/api/v2/user.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
}

#[tokio::test]
async fn python_http_client_is_served() {
    let python = std::process::Command::new("python3")
        .arg("--version")
        .output();
    if !python.is_ok_and(|o| o.status.success()) {
        eprintln!("python3 is not installed; skipping the http.client check");
        return;
    }
    let (_accounts, upstream, proxy) = setup(&[]).await;
    let script = format!(
        "import http.client\n\
         c = http.client.HTTPConnection('127.0.0.1', {port})\n\
         c.request('POST', '/api/v2/1/sessions.json?a=1', body=b'{{\"x\":1}}', headers={{'Content-Type': 'application/json'}})\n\
         r = c.getresponse(); b = r.read()\n\
         c.request('GET', '/status/204')\n\
         r2 = c.getresponse(); r2.read()\n\
         print(r.status, b.decode(), r2.status)\n",
        port = proxy.addr.port()
    );
    let output = tokio::process::Command::new("python3")
        .args(["-c", &script])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(stdout.trim(), "200 ok 204");
    let seen = upstream.seen();
    assert_eq!(seen[0].method, "POST");
    assert_eq!(seen[0].target, "/api/v2/1/sessions.json?a=1");
    assert_eq!(seen[0].header("content-length"), Some("7"));
}

/// How the raw upstream below treats its connections after each response.
#[derive(Clone, Copy, PartialEq)]
enum AfterResponse {
    KeepAlive,
    /// `Connection: close`, then close.
    AnnounceClose,
    /// Close 30 ms later without a word, as an idle timeout does.
    SilentClose,
}

/// A raw HTTP/1.1 upstream that answers every request with the number of the connection it
/// came on (1, 2, …); returns its URL and the count of connections accepted.
async fn numbering_upstream(
    after: AfterResponse,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let accepted = std::sync::Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let n = count.fetch_add(1, Ordering::SeqCst) + 1;
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(k) => buf.extend_from_slice(&chunk[..k]),
                        }
                        continue;
                    };
                    buf.drain(..end + 4);
                    let body = n.to_string();
                    let close = if after == AfterResponse::AnnounceClose {
                        "Connection: close\r\n"
                    } else {
                        ""
                    };
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n{close}\r\n{body}",
                        body.len()
                    );
                    if stream.write_all(head.as_bytes()).await.is_err() {
                        return;
                    }
                    match after {
                        AfterResponse::KeepAlive => {}
                        AfterResponse::AnnounceClose => return,
                        AfterResponse::SilentClose => {
                            tokio::time::sleep(Duration::from_millis(30)).await;
                            return;
                        }
                    }
                }
            });
        }
    });
    (url, accepted)
}

/// One keep-alive client connection through the proxy: sends `GET /n` `count` times,
/// `pause` apart, and returns the bodies (upstream connection numbers).
async fn sequential_gets(
    proxy: std::net::SocketAddr,
    count: usize,
    pause: Duration,
) -> Vec<String> {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    let stream = tokio::net::TcpStream::connect(proxy).await.unwrap();
    let mut stream = BufReader::new(stream);
    let mut bodies = Vec::new();
    for _ in 0..count {
        stream
            .get_mut()
            .write_all(b"GET /n HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await
            .unwrap();
        let mut length = 0usize;
        let mut status = String::new();
        stream.read_line(&mut status).await.unwrap();
        assert!(status.starts_with("HTTP/1.1 200"), "{status}");
        loop {
            let mut line = String::new();
            stream.read_line(&mut line).await.unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0u8; length];
        stream.read_exact(&mut body).await.unwrap();
        bodies.push(String::from_utf8(body).unwrap());
        tokio::time::sleep(pause).await;
    }
    bodies
}

#[tokio::test]
async fn each_client_connection_keeps_one_upstream_connection_and_hands_it_on() {
    use std::sync::atomic::Ordering;
    let accounts = support::emulator(support::options(Duration::from_secs(3600))).await;
    let (url, accepted) = numbering_upstream(AfterResponse::KeepAlive).await;
    let proxy = TestProxy::start(&accounts, &url, &[]).await;
    proxy.ready().await;

    // Three client connections at once: three upstream connections, each client's requests
    // all on its own.
    let runs = futures_util::future::join_all(
        (0..3).map(|_| sequential_gets(proxy.addr, 4, Duration::from_millis(20))),
    )
    .await;
    let mut used: Vec<&String> = runs.iter().map(|bodies| &bodies[0]).collect();
    for bodies in &runs {
        assert!(bodies.iter().all(|b| b == &bodies[0]), "{bodies:?}");
    }
    used.sort();
    used.dedup();
    assert_eq!(used.len(), 3, "{runs:?}");
    assert_eq!(accepted.load(Ordering::SeqCst), 3);

    // Those client connections are closed: the next ones reuse the parked upstream
    // connections instead of opening new ones.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..3 {
        let bodies = sequential_gets(proxy.addr, 2, Duration::ZERO).await;
        assert_eq!(bodies[0], bodies[1]);
    }
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        3,
        "parked upstream connections are reused"
    );
}

#[tokio::test]
async fn upstream_connections_closed_between_requests_are_replaced() {
    use std::sync::atomic::Ordering;
    let accounts = support::emulator(support::options(Duration::from_secs(3600))).await;
    for after in [AfterResponse::AnnounceClose, AfterResponse::SilentClose] {
        let (url, accepted) = numbering_upstream(after).await;
        let proxy = TestProxy::start(&accounts, &url, &[]).await;
        proxy.ready().await;
        let bodies = sequential_gets(proxy.addr, 4, Duration::from_millis(100)).await;
        assert_eq!(bodies, ["1", "2", "3", "4"], "a new connection each time");
        assert_eq!(accepted.load(Ordering::SeqCst), 4);
    }
}

#[tokio::test]
async fn http2_streams_share_the_client_connections_upstream_connections() {
    use std::sync::atomic::Ordering;
    let accounts = support::emulator(support::options(Duration::from_secs(3600))).await;
    let (url, accepted) = numbering_upstream(AfterResponse::KeepAlive).await;
    let proxy = TestProxy::start(&accounts, &url, &[]).await;
    proxy.ready().await;
    let h2 = reqwest::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let batch = || {
        futures_util::future::join_all((0..24).map(|_| {
            let h2 = h2.clone();
            let url = proxy.url("/n?from=h2");
            async move {
                let r = h2.get(url).send().await.unwrap();
                assert_eq!(r.version(), reqwest::Version::HTTP_2);
                assert_eq!(r.status(), 200);
                r.text().await.unwrap()
            }
        }))
    };
    let first = batch().await;
    let opened = accepted.load(Ordering::SeqCst);
    assert!((1..=24).contains(&opened), "{opened}");
    // The connections are kept (by the client connection, or parked): the second batch
    // opens one only where it runs more streams at once than the first did.
    let second = batch().await;
    let reopened = accepted.load(Ordering::SeqCst) - opened;
    println!("h2: {opened} upstream connections, then {reopened} more");
    assert!(opened + reopened <= 24, "{opened} then {reopened} more");
    assert_eq!(first.len() + second.len(), 48);
    assert!(
        first
            .iter()
            .chain(&second)
            .all(|b| b.parse::<usize>().is_ok())
    );
}

/// A TLS upstream with `config` that answers 200 and records each request's HTTP version;
/// returns its URL, the versions and the count of TLS connections accepted.
async fn version_recording_tls_upstream(
    config: rustls::ServerConfig,
) -> (
    String,
    std::sync::Arc<std::sync::Mutex<Vec<http::Version>>>,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "https://localhost:{}",
        listener.local_addr().unwrap().port()
    );
    let versions = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = versions.clone();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let connections = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let accepted = connections.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            accepted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let acceptor = acceptor.clone();
            let seen = seen.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                let service =
                    hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        seen.lock().unwrap().push(req.version());
                        async move {
                            Ok::<_, std::convert::Infallible>(http::Response::new(
                                http_body_util::Full::new(bytes::Bytes::from_static(b"ok")),
                            ))
                        }
                    });
                let _ = hyper_util::server::conn::auto::Builder::new(
                    hyper_util::rt::TokioExecutor::new(),
                )
                .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                .await;
            });
        }
    });
    (url, versions, connections)
}

#[tokio::test]
async fn tls_upstreams_get_http2_when_they_choose_it_and_http1_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let accounts = support::emulator(support::options(Duration::from_secs(3600))).await;
    let (server_config, ca_pem) = support::test_ca();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();
    for (alpn, expected) in [
        (
            vec![b"h2".to_vec(), b"http/1.1".to_vec()],
            http::Version::HTTP_2,
        ),
        (vec![b"http/1.1".to_vec()], http::Version::HTTP_11),
    ] {
        let mut config = (*server_config).clone();
        config.alpn_protocols = alpn;
        let (url, versions, connections) = version_recording_tls_upstream(config).await;
        let proxy = TestProxy::start(
            &accounts,
            &url,
            &[("upstream.ca_file", ca_file.to_str().unwrap().into())],
        )
        .await;
        proxy.ready().await;
        let client = client();
        for _ in 0..3 {
            let response = client
                .get(proxy.url("/api/v2/user.json"))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            assert_eq!(response.text().await.unwrap(), "ok");
        }
        let seen = versions.lock().unwrap().clone();
        assert_eq!(
            seen,
            vec![expected; 3],
            "interface: HTTP/2 upstream when ALPN offers it"
        );
        if expected == http::Version::HTTP_2 {
            // Concurrent requests from many client connections share the one HTTP/2
            // connection.
            let all = futures_util::future::join_all((0..20).map(|_| {
                let url = proxy.url("/api/v2/user.json");
                async move { support::client().get(url).send().await.unwrap().status() }
            }))
            .await;
            assert!(all.iter().all(|s| *s == 200));
            assert_eq!(
                connections.load(std::sync::atomic::Ordering::SeqCst),
                1,
                "one multiplexed connection"
            );
        }
    }
}

// === request bodies of unknown length: replayed when small, streamed when not (issue 13) ===

/// A body of unknown length (no size hint, so clients send it chunked, or over HTTP/2 with
/// no `content-length`) made of the iterator's chunks, each made when it is sent.
struct Chunked<I>(I);

impl<I: Iterator<Item = bytes::Bytes> + Unpin> hyper::body::Body for Chunked<I> {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<bytes::Bytes>, Self::Error>>> {
        std::task::Poll::Ready(self.0.next().map(|b| Ok(hyper::body::Frame::data(b))))
    }
}

/// `total` pattern bytes in chunks of `chunk`, chunked: never held whole.
fn chunked_pattern(total: u64, chunk: u64) -> reqwest::Body {
    let chunks = (0..total).step_by(chunk as usize).map(move |start| {
        let end = (start + chunk).min(total);
        bytes::Bytes::from((start..end).map(pattern_byte).collect::<Vec<u8>>())
    });
    reqwest::Body::wrap(Chunked(chunks))
}

/// The hex SHA-256 of `total` pattern bytes, computed piece by piece.
fn pattern_sha256(total: u64) -> String {
    let mut hasher = Sha256::new();
    for start in (0..total).step_by(65536) {
        let end = (start + 65536).min(total);
        hasher.update((start..end).map(pattern_byte).collect::<Vec<u8>>());
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test]
async fn a_chunked_body_within_the_replay_limit_is_replayed_byte_identical() {
    // Zoho's own rejection, from the Meeting emulator: the replay creates the meeting.
    let (_accounts, meeting, proxy) = with_meeting(&[]).await;
    let zsoid = meeting.control().zsoid();
    let body = meeting_body(&"r".repeat(300 - meeting_body("").len()));
    assert_eq!(body.len(), 300);
    meeting.control().reject_tokens(1);
    let chunks: Vec<bytes::Bytes> = body
        .as_bytes()
        .chunks(100)
        .map(bytes::Bytes::copy_from_slice)
        .collect();
    let response = client()
        .post(proxy.url(&format!("/api/v2/{zsoid}/sessions.json")))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap(Chunked(chunks.into_iter())))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    let seen = meeting.control().requests();
    assert_eq!(seen.len(), 2, "the original and one replay");
    assert_eq!((seen[0].body_len, seen[1].body_len), (300, 300));
    assert_ne!(seen[0].authorization, seen[1].authorization);

    // An upstream that hashes what it gets: the same bytes twice, over HTTP/1.1 (chunked) and
    // HTTP/2 (no content-length). A proxy each: a replacement token rejected again would
    // not be replaced.
    let h2 = reqwest::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let expected = pattern_sha256(300);
    for (name, client) in [("h1", client()), ("h2", h2)] {
        let (_accounts, upstream, proxy) = setup(&[]).await;
        let target = format!("/reject-first/replay-300-{name}");
        let response = client
            .post(proxy.url(&target))
            .body(chunked_pattern(300, 100))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{name}");
        let json: serde_json::Value = response.json().await.unwrap();
        let once = serde_json::json!({"len": 300, "sha256": expected});
        assert_eq!(json["bodies"], serde_json::json!([once, once]), "{name}");
        let sent: Vec<_> = upstream
            .seen()
            .into_iter()
            .filter(|s| s.target == target)
            .collect();
        assert_eq!(sent.len(), 2, "{name}");
    }
}

#[tokio::test]
async fn a_chunked_body_over_the_replay_limit_streams_whole_and_is_not_replayed() {
    let (_accounts, upstream, proxy) = setup(&[("upstream.replay_body_limit", 1000.into())]).await;
    let expected = pattern_sha256(5000);
    let response = client()
        .post(proxy.url("/upload"))
        .body(chunked_pattern(5000, 700))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let json: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        (json["len"].as_u64(), json["sha256"].as_str()),
        (Some(5000), Some(expected.as_str()))
    );
    let seen = upstream.seen().pop().unwrap();
    assert_eq!(
        seen.header("content-length"),
        None,
        "no exact size is claimed"
    );
    assert_eq!(seen.header("transfer-encoding"), Some("chunked"));

    // Rejected: Zoho's answer reaches the client, and nothing is sent again.
    let response = client()
        .post(proxy.url("/reject-first/over-the-replay-limit"))
        .body(chunked_pattern(5000, 700))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let json: serde_json::Value = response.json().await.unwrap();
    assert_eq!(json["error"]["message"], "INVALID_OAUTHTOKEN");
    assert_eq!(
        (json["len"].as_u64(), json["sha256"].as_str()),
        (Some(5000), Some(expected.as_str()))
    );
    let sent = upstream
        .seen()
        .iter()
        .filter(|s| s.target == "/reject-first/over-the-replay-limit")
        .count();
    assert_eq!(sent, 1, "no replay");
}

#[tokio::test]
async fn a_streamed_body_past_max_body_bytes_is_413_problem_json() {
    // Past the limit while read for the replay (limit 65536), and while streaming (100).
    for replay_limit in [65536, 100] {
        let (_accounts, upstream, proxy) = setup(&[
            ("limits.max_body_bytes", 1000.into()),
            ("upstream.replay_body_limit", replay_limit.into()),
        ])
        .await;
        let response = client()
            .post(proxy.url("/upload"))
            .body(chunked_pattern(2000, 250))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 413, "replay limit {replay_limit}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
        assert_eq!(response.headers()["x-proxy-error"], "body-too-large");
        problem(&response.text().await.unwrap(), 413);

        // The same with a Content-Length: refused before forwarding.
        let forwarded = upstream.seen().len();
        let response = client()
            .post(proxy.url("/upload"))
            .body(vec![b'x'; 2000])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 413);
        problem(&response.text().await.unwrap(), 413);
        assert_eq!(upstream.seen().len(), forwarded, "not forwarded");

        // Exactly the limit, chunked, passes.
        let response = client()
            .post(proxy.url("/upload"))
            .body(chunked_pattern(1000, 250))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let json: serde_json::Value = response.json().await.unwrap();
        assert_eq!(json["len"], 1000);
    }

    // Raw HTTP/1.1 chunked framing, read for the replay.
    let (_accounts, _upstream, proxy) = setup(&[("limits.max_body_bytes", 1000.into())]).await;
    let mut request = b"POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
    for _ in 0..4 {
        request.extend_from_slice(b"1f4\r\n");
        request.extend_from_slice(&[b'y'; 500]);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    let answer = raw(proxy.addr, &request).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("application/problem+json"), "{answer}");
}

#[tokio::test]
async fn a_large_chunked_upload_streams_byte_identical() {
    const SIZE: u64 = 64 * 1024 * 1024;
    let (_accounts, upstream, proxy) =
        setup(&[("limits.max_body_bytes", (2 * SIZE as i64).into())]).await;
    let response = client()
        .post(proxy.url("/upload"))
        .body(chunked_pattern(SIZE, 65536))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let json: serde_json::Value = response.json().await.unwrap();
    assert_eq!(json["len"], SIZE);
    assert_eq!(json["sha256"], pattern_sha256(SIZE));
    let seen = upstream.seen().pop().unwrap();
    assert_eq!(seen.header("content-length"), None);
}

/// A TLS upstream with `config` that reads each request's body to its end (or failure), then
/// answers 200 with the bytes it got; returns its URL and the HTTP versions it saw.
async fn reading_tls_upstream(
    config: rustls::ServerConfig,
) -> (String, std::sync::Arc<std::sync::Mutex<Vec<http::Version>>>) {
    use http_body_util::BodyExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "https://localhost:{}",
        listener.local_addr().unwrap().port()
    );
    let versions = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = versions.clone();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (acceptor, seen) = (acceptor.clone(), seen.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                let service =
                    hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        seen.lock().unwrap().push(req.version());
                        async move {
                            let mut body = req.into_body();
                            let mut len = 0;
                            while let Some(Ok(frame)) = body.frame().await {
                                len += frame.data_ref().map_or(0, |d| d.len());
                            }
                            Ok::<_, std::convert::Infallible>(http::Response::new(
                                http_body_util::Full::new(bytes::Bytes::from(len.to_string())),
                            ))
                        }
                    });
                let _ = hyper_util::server::conn::auto::Builder::new(
                    hyper_util::rt::TokioExecutor::new(),
                )
                .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                .await;
            });
        }
    });
    (url, versions)
}

#[tokio::test]
async fn a_streamed_body_past_max_body_bytes_is_413_over_an_http2_upstream_too() {
    // HTTP/2 reports a failed request body as a reset stream, without its cause.
    let dir = tempfile::tempdir().unwrap();
    let accounts = support::emulator(support::options(Duration::from_secs(3600))).await;
    let (server_config, ca_pem) = support::test_ca();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();
    let (url, versions) = reading_tls_upstream((*server_config).clone()).await;
    let proxy = TestProxy::start(
        &accounts,
        &url,
        &[
            ("upstream.ca_file", ca_file.to_str().unwrap().into()),
            ("limits.max_body_bytes", 1000.into()),
            ("upstream.replay_body_limit", 100.into()),
        ],
    )
    .await;
    proxy.ready().await;
    let response = client()
        .post(proxy.url("/api/v2/upload"))
        .body(chunked_pattern(1000, 250))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "1000");
    let response = client()
        .post(proxy.url("/api/v2/upload"))
        .body(chunked_pattern(2000, 250))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    problem(&response.text().await.unwrap(), 413);
    assert!(
        versions
            .lock()
            .unwrap()
            .iter()
            .all(|v| *v == http::Version::HTTP_2),
        "the upstream spoke HTTP/2"
    );
}

// === routes (issue 13): a base path, and prefixes sent to other upstreams ===

fn route(prefix: &str, upstream: &str, strip: bool) -> toml::Value {
    let mut table = toml::Table::new();
    table.insert("prefix".into(), prefix.into());
    table.insert("upstream".into(), upstream.into());
    table.insert("strip_prefix".into(), strip.into());
    toml::Value::Table(table)
}

#[tokio::test]
async fn routes_send_prefixes_to_their_upstreams_with_the_token() {
    let accounts = support::emulator(support::options(Duration::from_secs(3600))).await;
    let meeting = TestUpstream::start().await;
    let other = TestUpstream::start().await;
    let routes = toml::Value::Array(vec![
        route("/crm/", &format!("{}/crm-api", other.url()), false),
        route("/dl", &format!("{}/files/", other.url()), true),
    ]);
    let proxy = TestProxy::start(
        &accounts,
        &format!("{}/base", meeting.url()),
        &[
            ("routes", routes),
            (
                "access.rules",
                vec!["GET /api/v2/**", "GET /crm/**", "GET /dl/allowed/*"].into(),
            ),
        ],
    )
    .await;
    proxy.ready().await;
    let token = proxy.running().manager().current().unwrap();
    let expected_auth = format!("Zoho-oauthtoken {}", token.secret().expose());
    for (sent, upstream, target) in [
        (
            "/api/v2/user.json?a=b",
            &meeting,
            "/base/api/v2/user.json?a=b",
        ),
        (
            "/crm/v6/Leads?page=2",
            &other,
            "/crm-api/crm/v6/Leads?page=2",
        ),
        ("/dl/allowed/x%20y?s=1", &other, "/files/allowed/x%20y?s=1"),
    ] {
        let answer = raw(
            proxy.addr,
            format!("GET {sent} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{sent}: {answer}");
        let seen = upstream.seen().pop().unwrap();
        assert_eq!(seen.target, target, "{sent}");
        assert_eq!(seen.header("authorization"), Some(expected_auth.as_str()));
        assert_eq!(
            seen.header("host"),
            Some(upstream.addr.to_string().as_str()),
            "{sent}"
        );
    }
    // The access rules see the path as the client sent it, on every route.
    let (before_meeting, before_other) = (meeting.seen().len(), other.seen().len());
    for refused in ["/dl/secret/x", "/crmx/a", "/other/x"] {
        let response = client().get(proxy.url(refused)).send().await.unwrap();
        assert_eq!(response.status(), 403, "{refused}");
    }
    assert_eq!(meeting.seen().len(), before_meeting);
    assert_eq!(other.seen().len(), before_other);
    // Metrics carry the route.
    let metrics = client()
        .get(proxy.admin_url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for label in ["route=\"/crm/\"", "route=\"/dl\"", "route=\"default\""] {
        assert!(
            metrics.lines().any(|l| l.contains(label)
                && l.contains("status_class=\"2xx\"")
                && l.ends_with(" 1")),
            "{label}:\n{metrics}"
        );
    }
}
