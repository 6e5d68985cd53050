//! HTTP/2 upstreams that cap concurrent streams, send GOAWAY, or go idle (issue 15, item 1):
//! the proxy opens more connections when the open ones are full, up to
//! `upstream.max_h2_connections`, retries what a GOAWAY refused, and closes idle extra ones.
//! The upstream is a TLS HTTP/2 server (rcgen CA) in this process, over real sockets.

use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::{TokioExecutor, TokioIo};

use crate::support::{self, TestProxy};

/// What the upstream saw.
#[derive(Default)]
struct Counts {
    /// Connections accepted.
    accepted: AtomicUsize,
    /// Connections open now.
    live: AtomicUsize,
    /// Requests answered.
    answered: AtomicUsize,
    /// Most requests in progress at once, over all connections.
    peak: AtomicUsize,
    in_progress: AtomicUsize,
}

/// A TLS HTTP/2-only upstream allowing `streams` concurrent streams per connection, answering
/// `200 ok` after `delay`; with `goaway_after`, each connection starts a graceful shutdown
/// (GOAWAY) once it has received that many requests.
async fn h2_upstream(
    streams: u32,
    delay: Duration,
    goaway_after: Option<usize>,
) -> (String, String, Arc<Counts>) {
    let (config, ca_pem) = support::test_ca();
    let mut config = (*config).clone();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "https://localhost:{}",
        listener.local_addr().unwrap().port()
    );
    let counts = Arc::new(Counts::default());
    let seen = counts.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            seen.accepted.fetch_add(1, Ordering::SeqCst);
            let acceptor = acceptor.clone();
            let counts = seen.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                counts.live.fetch_add(1, Ordering::SeqCst);
                let received = Arc::new(AtomicUsize::new(0));
                let shutdown = Arc::new(tokio::sync::Notify::new());
                let service = {
                    let counts = counts.clone();
                    let received = received.clone();
                    let shutdown = shutdown.clone();
                    hyper::service::service_fn(move |_req: http::Request<hyper::body::Incoming>| {
                        let counts = counts.clone();
                        let n = received.fetch_add(1, Ordering::SeqCst) + 1;
                        if goaway_after == Some(n) {
                            shutdown.notify_one();
                        }
                        async move {
                            let now = counts.in_progress.fetch_add(1, Ordering::SeqCst) + 1;
                            counts.peak.fetch_max(now, Ordering::SeqCst);
                            tokio::time::sleep(delay).await;
                            counts.in_progress.fetch_sub(1, Ordering::SeqCst);
                            counts.answered.fetch_add(1, Ordering::SeqCst);
                            Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(
                                Bytes::from_static(b"ok"),
                            )))
                        }
                    })
                };
                let connection = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .max_concurrent_streams(streams)
                    .serve_connection(TokioIo::new(tls), service);
                let mut connection = pin!(connection);
                tokio::select! {
                    _ = connection.as_mut() => {}
                    () = shutdown.notified() => {
                        connection.as_mut().graceful_shutdown();
                        let _ = connection.await;
                    }
                }
                counts.live.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    (url, ca_pem, counts)
}

/// A proxy in front of `url`, trusting the test CA, with `extra` settings.
async fn proxy_for(
    url: &str,
    ca_pem: &str,
    dir: &std::path::Path,
    extra: &[(&str, toml::Value)],
) -> (zoho_emulator::accounts::AccountsEmulator, TestProxy) {
    let accounts = support::emulator(support::options(Duration::from_secs(3600))).await;
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();
    let mut overrides = vec![("upstream.ca_file", ca_file.to_str().unwrap().into())];
    overrides.extend(extra.iter().cloned());
    let proxy = TestProxy::start(&accounts, url, &overrides).await;
    proxy.ready().await;
    (accounts, proxy)
}

/// `n` concurrent GETs through the proxy; their statuses.
async fn concurrent_gets(proxy: &TestProxy, n: usize) -> Vec<u16> {
    futures_util::future::join_all((0..n).map(|i| {
        let url = proxy.url(&format!("/api/v2/user.json?i={i}"));
        async move {
            match support::client().get(url).send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    if status != 200 {
                        eprintln!("{status}: {}", response.text().await.unwrap_or_default());
                    }
                    status
                }
                Err(_) => 0,
            }
        }
    }))
    .await
}

#[tokio::test]
async fn streams_past_the_servers_limit_open_more_connections_up_to_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    let (url, ca, counts) = h2_upstream(4, Duration::from_millis(300), None).await;
    let (_accounts, proxy) = proxy_for(
        &url,
        &ca,
        dir.path(),
        &[("upstream.max_h2_connections", 3.into())],
    )
    .await;
    let statuses = concurrent_gets(&proxy, 40).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let accepted = counts.accepted.load(Ordering::SeqCst);
    assert!(
        (2..=3).contains(&accepted),
        "more than one upstream connection, at most the cap of 3: {accepted}"
    );
    // The server's limit held on every connection, and the extra connections were used.
    let peak = counts.peak.load(Ordering::SeqCst);
    assert!(peak > 4 && peak <= 12, "peak streams in progress: {peak}");
    assert_eq!(counts.answered.load(Ordering::SeqCst), 40);
}

#[tokio::test]
async fn one_connection_when_the_cap_is_one() {
    let dir = tempfile::tempdir().unwrap();
    let (url, ca, counts) = h2_upstream(4, Duration::from_millis(100), None).await;
    let (_accounts, proxy) = proxy_for(
        &url,
        &ca,
        dir.path(),
        &[("upstream.max_h2_connections", 1.into())],
    )
    .await;
    let statuses = concurrent_gets(&proxy, 12).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(counts.accepted.load(Ordering::SeqCst), 1);
    assert!(counts.peak.load(Ordering::SeqCst) <= 4);
}

#[tokio::test]
async fn a_goaway_mid_run_fails_no_request() {
    let dir = tempfile::tempdir().unwrap();
    // Every connection says GOAWAY once it has received 10 requests, and finishes those.
    let (url, ca, counts) = h2_upstream(100, Duration::from_millis(100), Some(10)).await;
    let (_accounts, proxy) = proxy_for(&url, &ca, dir.path(), &[]).await;
    // One request every 5 ms (GETs and POSTs), each taking 100 ms: requests keep arriving
    // while a connection drains, and are sent on it until its GOAWAY is seen; those it
    // refused go again on another connection (without that, about one in ten fails).
    let statuses = futures_util::future::join_all((0..80u64).map(|i| {
        let url = proxy.url(&format!("/api/v2/user.json?i={i}"));
        async move {
            tokio::time::sleep(Duration::from_millis(5 * i)).await;
            let request = if i % 2 == 0 {
                support::client().get(url)
            } else {
                support::client().post(url).body("{}")
            };
            match request.send().await {
                Ok(response) => response.status().as_u16(),
                Err(_) => 0,
            }
        }
    }))
    .await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let accepted = counts.accepted.load(Ordering::SeqCst);
    assert!(
        accepted >= 4,
        "draining connections were replaced: {accepted}"
    );
    assert_eq!(counts.answered.load(Ordering::SeqCst), 80);
}

#[tokio::test]
async fn idle_extra_connections_are_closed() {
    let dir = tempfile::tempdir().unwrap();
    let (url, ca, counts) = h2_upstream(2, Duration::from_millis(200), None).await;
    let (_accounts, proxy) = proxy_for(
        &url,
        &ca,
        dir.path(),
        &[
            ("upstream.max_h2_connections", 4.into()),
            ("upstream.idle_timeout", "1s".into()),
        ],
    )
    .await;
    let statuses = concurrent_gets(&proxy, 8).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert!(counts.accepted.load(Ordering::SeqCst) > 1);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while counts.live.load(Ordering::SeqCst) > 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "extra connections still open: {}",
            counts.live.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(counts.live.load(Ordering::SeqCst), 1, "the first one stays");
    // The pool still serves, on the connection it kept (or a new one).
    let statuses = concurrent_gets(&proxy, 2).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
}
