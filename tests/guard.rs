//! Request guards over real sockets: who may use the proxy and what may pass.

use std::time::Duration;

use crate::support::{self, TestProxy, TestUpstream, client, raw};

async fn setup(
    extra: &[(&str, toml::Value)],
) -> (
    zoho_emulator::accounts::AccountsEmulator,
    TestUpstream,
    TestProxy,
) {
    support::proxy_with_upstream(extra).await
}

fn problem_status(text: &str) -> u64 {
    let json: serde_json::Value = serde_json::from_str(text).unwrap();
    json["status"].as_u64().unwrap()
}

#[tokio::test]
async fn foreign_hosts_are_refused_dns_rebinding() {
    let (_accounts, upstream, proxy) = setup(&[]).await;
    for host in ["evil.example", "evil.example:8080", "10.0.0.1"] {
        let request =
            format!("GET /api/v2/user.json HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        let answer = raw(proxy.addr, request.as_bytes()).await;
        assert!(answer.starts_with("HTTP/1.1 403"), "{host}: {answer}");
        assert!(answer.contains("forbidden-host"));
    }
    for host in ["localhost:1234", "127.0.0.1", "[::1]:8080"] {
        let request = format!("GET /ok HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        assert!(
            raw(proxy.addr, request.as_bytes())
                .await
                .starts_with("HTTP/1.1 200"),
            "{host}"
        );
    }
    assert_eq!(
        upstream.seen().len(),
        3,
        "only the allowed requests reached the upstream"
    );
}

#[tokio::test]
async fn cross_site_browser_requests_are_refused_and_listed_origins_get_cors() {
    let (_accounts, upstream, proxy) = setup(&[(
        "server.allowed_origins",
        vec!["http://localhost:3000"].into(),
    )])
    .await;
    let evil = client()
        .post(proxy.url("/api/v2/1/sessions.json"))
        .header("origin", "https://evil.example")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(evil.status(), 403);
    assert!(evil.headers().get("access-control-allow-origin").is_none());
    let fetch = client()
        .get(proxy.url("/x"))
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(fetch.status(), 403);
    assert!(upstream.seen().is_empty());

    let allowed = client()
        .get(proxy.url("/x"))
        .header("origin", "http://localhost:3000")
        .header("sec-fetch-site", "same-site")
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), 200);
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "http://localhost:3000"
    );
    let preflight = client()
        .request(
            reqwest::Method::OPTIONS,
            proxy.url("/api/v2/1/sessions.json"),
        )
        .header("origin", "http://localhost:3000")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 204);
    assert_eq!(preflight.headers()["access-control-allow-methods"], "POST");
    assert_eq!(
        preflight.headers()["access-control-allow-headers"],
        "content-type"
    );
    assert_eq!(
        upstream.seen().len(),
        1,
        "the preflight is answered by the proxy"
    );
}

#[tokio::test]
async fn client_keys_are_required_and_never_forwarded() {
    let (_accounts, upstream, proxy) =
        setup(&[("server.client_keys", vec!["key-123"].into())]).await;
    let missing = client().get(proxy.url("/x")).send().await.unwrap();
    assert_eq!(missing.status(), 407);
    assert!(
        missing.headers()["proxy-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    let wrong = client()
        .get(proxy.url("/x"))
        .header("proxy-authorization", "Bearer key-124")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 407);
    assert_eq!(problem_status(&wrong.text().await.unwrap()), 407);
    assert!(upstream.seen().is_empty());
    let good = client()
        .get(proxy.url("/x"))
        .header("proxy-authorization", "Bearer key-123")
        .send()
        .await
        .unwrap();
    assert_eq!(good.status(), 200);
    let seen = upstream.seen().pop().unwrap();
    assert!(seen.header("proxy-authorization").is_none());
    assert!(
        seen.header("authorization")
            .unwrap()
            .starts_with("Zoho-oauthtoken ")
    );
}

#[tokio::test]
async fn access_rules_and_read_only_refuse_what_is_not_allowed() {
    let (_accounts, upstream, proxy) = setup(&[(
        "access.rules",
        vec!["GET /api/v2/**", "POST /api/v2/*/sessions.json"].into(),
    )])
    .await;
    let ok = client()
        .get(proxy.url("/api/v2/user.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let ok = client()
        .post(proxy.url("/api/v2/7/sessions.json"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let refused = client()
        .delete(proxy.url("/api/v2/7/sessions/1.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    let text = refused.text().await.unwrap();
    assert!(text.contains("access.rules"), "{text}");
    assert_eq!(upstream.seen().len(), 2);

    let (_accounts, upstream, proxy) = setup(&[("access.read_only", true.into())]).await;
    assert_eq!(
        client()
            .head(proxy.url("/x"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let refused = client()
        .put(proxy.url("/x"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    assert_eq!(upstream.seen().len(), 1);
}

#[tokio::test]
async fn size_limits_answer_414_431_413() {
    let (_accounts, upstream, proxy) = setup(&[
        ("limits.max_uri_bytes", 100.into()),
        ("limits.max_header_bytes", 2048.into()),
        ("limits.max_body_bytes", 1000.into()),
    ])
    .await;
    let long = client()
        .get(proxy.url(&format!("/{}", "a".repeat(200))))
        .send()
        .await
        .unwrap();
    assert_eq!(long.status(), 414);
    let big = client()
        .get(proxy.url("/x"))
        .header("x-big", "b".repeat(3000))
        .send()
        .await
        .unwrap();
    assert_eq!(big.status(), 431);
    let declared = client()
        .post(proxy.url("/upload"))
        .body(vec![b'x'; 1001])
        .send()
        .await
        .unwrap();
    assert_eq!(declared.status(), 413);
    assert!(
        upstream.seen().is_empty(),
        "nothing oversized was forwarded"
    );
    // A body with its length declared in the stream of a Pattern: reqwest sends a
    // Content-Length, refused by the guard (chunked bodies: tests/proxy.rs).
    let chunked = reqwest::Body::wrap(support::Pattern::new(5000));
    let streamed = client()
        .post(proxy.url("/upload"))
        .body(chunked)
        .send()
        .await
        .unwrap();
    assert_eq!(streamed.status(), 413);
    let small = client()
        .post(proxy.url("/upload"))
        .body(vec![b'x'; 1000])
        .send()
        .await
        .unwrap();
    assert_eq!(small.status(), 200);
}

#[tokio::test]
async fn requests_past_max_in_flight_get_503_with_retry_after() {
    let (_accounts, _upstream, proxy) = setup(&[("limits.max_in_flight", 2.into())]).await;
    let slow: Vec<_> = (0..2)
        .map(|_| {
            let url = proxy.url("/delay/1500");
            tokio::spawn(async move { client().get(url).send().await.unwrap().status() })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let third = client().get(proxy.url("/x")).send().await.unwrap();
    assert_eq!(third.status(), 503);
    assert_eq!(third.headers()["retry-after"], "1");
    assert_eq!(third.headers()["x-proxy-error"], "overloaded");
    for s in slow {
        assert_eq!(s.await.unwrap(), 200);
    }
    assert_eq!(
        client().get(proxy.url("/x")).send().await.unwrap().status(),
        200
    );
}

#[tokio::test]
async fn unix_socket_listener_is_private_and_removed_on_exit() {
    use std::os::unix::fs::PermissionsExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("proxy.sock");
    let accounts = support::emulator(support::options(Duration::from_secs(3600))).await;
    let upstream = TestUpstream::start().await;
    let mut proxy_addr_less = TestProxy::start_unix(&accounts, &upstream.url(), &path).await;
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660);
    let mut stream = tokio::net::UnixStream::connect(&path).await.unwrap();
    stream
        .write_all(b"GET /via-unix HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(upstream.seen().pop().unwrap().target, "/via-unix");
    proxy_addr_less.take().unwrap().finish().await;
    assert!(!path.exists(), "the socket is removed on exit");
}

/// Sends one HTTP/1.1 request as raw bytes (clients would merge headers or resolve dot
/// segments) and returns the whole answer.
async fn raw_get(proxy: &TestProxy, target: &str, headers: &str) -> String {
    let request = format!("GET {target} HTTP/1.1\r\n{headers}Connection: close\r\n\r\n");
    raw(proxy.addr, request.as_bytes()).await
}

fn problem_name(answer: &str) -> Option<&str> {
    answer
        .lines()
        .find_map(|l| l.strip_prefix("x-proxy-error: "))
        .map(str::trim)
}

// See: issue 13, item 4.
#[tokio::test]
async fn more_than_one_host_is_400_and_not_forwarded() {
    let (_accounts, upstream, proxy) = setup(&[]).await;
    for hosts in [
        "Host: localhost\r\nHost: localhost\r\n",
        "Host: localhost\r\nX-Between: 1\r\nHost: evil.example\r\n",
        "Host: evil.example\r\nHost: localhost\r\n",
        "Host: localhost, localhost\r\n",
    ] {
        let answer = raw_get(&proxy, "/api/v2/user.json", hosts).await;
        assert!(answer.starts_with("HTTP/1.1 400"), "{hosts:?}: {answer}");
        assert_eq!(problem_name(&answer), Some("duplicate-host"), "{answer}");
        assert!(answer.contains("application/problem+json"), "{answer}");
        let body = &answer[answer.find("\r\n\r\n").unwrap() + 4..];
        assert_eq!(problem_status(body), 400);
    }
    assert!(upstream.seen().is_empty(), "{:?}", upstream.seen());
    // One Host still passes.
    let answer = raw_get(&proxy, "/api/v2/user.json", "Host: localhost\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(upstream.seen().len(), 1);
}

// See: issue 13, item 4.
#[tokio::test]
async fn dot_segments_are_400_and_not_forwarded() {
    let (_accounts, upstream, proxy) = setup(&[]).await;
    for target in [
        "/a/../b",
        "/a/./b",
        "/a/%2e%2e/b",
        "/a/%2E%2e/b",
        "/a/.%2e/b",
        "/a/%2e/b",
        "/..",
        "/.",
        "/a/%2e%2e%2fb",
        "/a/..%2F..%2Fb",
    ] {
        let answer = raw_get(&proxy, target, "Host: localhost\r\n").await;
        assert!(answer.starts_with("HTTP/1.1 400"), "{target}: {answer}");
        assert_eq!(problem_name(&answer), Some("dot-segment"), "{target}");
    }
    assert!(upstream.seen().is_empty(), "{:?}", upstream.seen());
    for target in [
        "/a/b?x=../y",
        "/a/..b/c",
        "/a/b.",
        "/.well-known/x",
        "/a//b",
        "/a/%2e%2e%2e/b",
    ] {
        let answer = raw_get(&proxy, target, "Host: localhost\r\n").await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{target}: {answer}");
        assert_eq!(
            upstream.seen().pop().unwrap().target,
            target,
            "forwarded byte for byte"
        );
    }
    assert_eq!(upstream.seen().len(), 6);
}

// See: issue 13, item 4: `GET /api/v2/../../echo/x` used to pass `GET /api/v2/**`.
#[tokio::test]
async fn dot_segments_cannot_climb_out_of_access_rules() {
    let (_accounts, upstream, proxy) = setup(&[
        ("access.rules", vec!["GET /api/v2/**"].into()),
        (
            "server.allowed_origins",
            vec!["http://localhost:3000"].into(),
        ),
    ])
    .await;
    for target in [
        "/api/v2/../../echo/x",
        "/api/v2/%2e%2e/%2e%2e/echo/x",
        "/api/v2/..%2f..%2fecho/x",
    ] {
        let answer = raw_get(&proxy, target, "Host: localhost\r\n").await;
        assert!(answer.starts_with("HTTP/1.1 400"), "{target}: {answer}");
        assert_eq!(problem_name(&answer), Some("dot-segment"), "{target}");
    }
    // A CORS preflight from an allowed origin is answered by the proxy, but not for such a
    // path.
    let preflight = "OPTIONS /api/v2/%2e%2e/x HTTP/1.1\r\nHost: localhost\r\n\
                     Origin: http://localhost:3000\r\nAccess-Control-Request-Method: GET\r\n\
                     Connection: close\r\n\r\n";
    let answer = raw(proxy.addr, preflight.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert_eq!(problem_name(&answer), Some("dot-segment"));
    assert!(upstream.seen().is_empty(), "{:?}", upstream.seen());
    let answer = raw_get(&proxy, "/api/v2/user.json", "Host: localhost\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(upstream.seen().len(), 1);
}

/// One HTTP/2 prior-knowledge request through hyper's client connection, which sends the
/// URI's path as `:path` untouched and the headers as given: the status and `x-proxy-error`.
async fn h2_send(proxy: &TestProxy, path: &str, hosts: &[&str]) -> (u16, Option<String>) {
    use http_body_util::{BodyExt, Empty};
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let stream = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    let conn = tokio::spawn(conn);
    let mut request = http::Request::get(format!("http://localhost:{}{path}", proxy.addr.port()));
    for host in hosts {
        request = request.header(http::header::HOST, *host);
    }
    let response = sender
        .send_request(request.body(Empty::<bytes::Bytes>::new()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.version(), http::Version::HTTP_2);
    let status = response.status().as_u16();
    let problem = response
        .headers()
        .get("x-proxy-error")
        .map(|v| v.to_str().unwrap().to_owned());
    let _ = response.into_body().collect().await.unwrap();
    drop(sender);
    let _ = conn.await;
    (status, problem)
}

// See: issue 13, item 4.
#[tokio::test]
async fn http2_dot_segments_and_conflicting_hosts_are_400_and_not_forwarded() {
    let (_accounts, upstream, proxy) =
        setup(&[("access.rules", vec!["GET /api/v2/**"].into())]).await;
    for path in ["/api/v2/../../echo/x", "/api/v2/%2E%2e/x", "/api/v2/./x"] {
        assert_eq!(
            h2_send(&proxy, path, &[]).await,
            (400, Some("dot-segment".to_owned())),
            "{path}"
        );
    }
    let port = proxy.addr.port();
    let same = format!("localhost:{port}");
    assert_eq!(
        h2_send(&proxy, "/api/v2/x", &[&same, &same]).await,
        (400, Some("duplicate-host".to_owned()))
    );
    // RFC 9113 §8.3.1: a host that names another entity than :authority is malformed.
    assert_eq!(
        h2_send(&proxy, "/api/v2/x", &[&format!("127.0.0.1:{port}")]).await,
        (400, Some("host-mismatch".to_owned()))
    );
    assert!(upstream.seen().is_empty(), "{:?}", upstream.seen());
    // :authority alone, or a host that agrees with it, is forwarded.
    assert_eq!(
        h2_send(&proxy, "/api/v2/a?next=../b", &[]).await,
        (200, None)
    );
    assert_eq!(
        h2_send(&proxy, "/api/v2/b", &[&format!("LOCALHOST:{port}")]).await,
        (200, None)
    );
    let seen = upstream.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].target, "/api/v2/a?next=../b");
}

/// Every log line of a request names its request id, guard refusals included (issue 13).
#[tokio::test]
async fn refusals_are_logged_with_the_request_id() {
    use crate::support::served::Served;
    let accounts = support::emulator(support::options(Duration::from_secs(3600))).await;
    let refresh = accounts
        .control()
        .issue_refresh_token(&["ZohoMeeting.meeting.READ"]);
    let upstream = TestUpstream::start().await;
    for (format, expected) in [
        ("pretty", "request.id=req-guard-42"),
        ("json", "\"request.id\":\"req-guard-42\""),
    ] {
        let home = tempfile::tempdir().unwrap();
        std::fs::write(
            home.path().join("proxy.toml"),
            format!(
                "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n\n\
                 [oauth]\nclient_id = \"{}\"\nclient_secret = \"{}\"\nrefresh_token = \"{refresh}\"\n\
                 accounts_url = \"{}\"\n\n[upstream]\nurl = \"{}\"\n\n[token]\nstore = \"memory\"\n\n\
                 [log]\nformat = \"{format}\"\n",
                support::CLIENT_ID,
                support::CLIENT_SECRET,
                accounts.url(),
                upstream.url()
            ),
        )
        .unwrap();
        let served = Served::start(home.path()).await;
        let answer = raw(
            served.proxy,
            b"GET /api/v2/user.json HTTP/1.1\r\nHost: evil.example\r\nX-Request-Id: req-guard-42\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
        served
            .wait_log(&["refused a request for a host outside", expected], 1)
            .await;
        served.stop(&[support::CLIENT_SECRET, &refresh]).await;
    }
    assert!(upstream.seen().is_empty());
}
