//! Micro-benchmarks of the request path's pure parts (criterion): the request rewrite on a
//! realistic request, the request path's token read ([`TokenSource::current`] on a token
//! manager, alone and while the token is being replaced), the token-rejection detector
//! (plain and gzip), and problem+json rendering. Fixtures are built outside the timed loops.
#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{StatusCode, Uri};
use zoho_meeting_proxy::config::AuthScheme;
use zoho_meeting_proxy::proxy::ProxyError;
use zoho_meeting_proxy::proxy::headers;
use zoho_meeting_proxy::secret::Secret;
use zoho_meeting_proxy::token::rejection::is_token_rejection_with_headers;
use zoho_meeting_proxy::token::{
    Credentials, MemoryStore, OAuthClient, Settings, StoredAccessToken, StoredState, TokenManager,
    TokenSource, Unavailable, unix_ms,
};

/// A realistic client request: what curl, Python requests and browsers' fetch send.
fn client_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in [
        ("host", "localhost:8080"),
        ("user-agent", "python-requests/2.32.3"),
        ("accept-encoding", "gzip, deflate"),
        ("accept", "application/json"),
        ("connection", "keep-alive, x-trace"),
        ("x-trace", "abc"),
        ("content-type", "application/json"),
        ("content-length", "211"),
        ("authorization", "Basic dXNlcjpwYXNz"),
        ("cookie", "session=abc; theme=dark"),
        ("x-request-id", "3f0c2a7e-1b5d-4c55-9e0f-2a4b8c6d7e8f"),
        (
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ),
    ] {
        h.append(HeaderName::from_static(k), HeaderValue::from_static(v));
    }
    h
}

const CLIENT_ID: &str = "1000.BENCHCLIENT";
const ACCOUNTS: &str = "https://accounts.zoho.com";

/// A token manager as the proxy gets it, holding a valid token: built with the public
/// constructor and handed its token as at a restart ([`TokenManager::restore`]), so that
/// nothing here talks to Zoho.
fn token_manager() -> (Arc<TokenManager>, StoredState) {
    let client = OAuthClient::new(
        CLIENT_ID,
        &Secret::from("bench-secret"),
        None,
        Duration::from_secs(5),
    )
    .unwrap();
    let credentials = Credentials::new(
        CLIENT_ID,
        Secret::from("1000.refresh.token"),
        url::Url::parse(ACCOUNTS).unwrap(),
    );
    let state = StoredState {
        access_token: Some(StoredAccessToken {
            token: Secret::from(
                "1000.2f8c1e0b6d3a49f7a5c8e1d2b3f4a5c6.9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b",
            ),
            expires_at: unix_ms() + 3_600_000,
            accounts_server: ACCOUNTS.into(),
            minted_by: credentials.minted_by().to_owned(),
            lifetime: Some(Duration::from_secs(3600)),
        }),
        ..StoredState::default()
    };
    let manager = TokenManager::new(
        AuthScheme::ZohoOauthtoken,
        client,
        Arc::new(MemoryStore::new()),
        credentials,
        Settings {
            margin: Duration::from_secs(300),
            max_mints_per_10m: 10,
            request_wait: Duration::from_secs(30),
        },
    );
    manager.restore(&state);
    assert!(manager.current().is_some(), "the stored token is held");
    (manager, state)
}

fn rewrite(c: &mut Criterion) {
    let original: Uri = "/api/v2/700000001/sessions.json?listtype=upcoming&index=1&count=20"
        .parse()
        .unwrap();
    let host = HeaderValue::from_static("meeting.zoho.com");
    let headers = client_headers();
    let auth = token_manager().0.current().unwrap().header().clone();
    c.bench_function("rewrite: headers and URI of a 12-header request", |b| {
        b.iter_batched_ref(
            || headers.clone(),
            |h| {
                headers::strip_hop_by_hop(h);
                headers::strip_client_credentials(h);
                headers::override_host(h, &host);
                headers::override_authorization(h, auth.clone());
                black_box(headers::origin_form(&original));
            },
            criterion::BatchSize::SmallInput,
        );
    });
}

/// What the proxy calls for every request: [`TokenSource::current`], through the same
/// `Arc<dyn TokenSource>` the proxy holds.
fn token_read(c: &mut Criterion) {
    let (manager, state) = token_manager();
    let tokens: Arc<dyn TokenSource> = manager.clone();
    c.bench_function("token: TokenSource::current", |b| {
        b.iter(|| black_box(tokens.current()));
    });
    // The same read while three other threads read too and one replaces the token.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut threads = Vec::new();
    for i in 0..4 {
        let (manager, tokens, state, stop) =
            (manager.clone(), tokens.clone(), state.clone(), stop.clone());
        threads.push(std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if i == 0 {
                    manager.restore(&state);
                    std::thread::sleep(Duration::from_millis(1));
                } else {
                    black_box(tokens.current());
                }
            }
        }));
    }
    c.bench_function(
        "token: TokenSource::current under contention (3 readers, 1 writer)",
        |b| {
            b.iter(|| black_box(tokens.current()));
        },
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
}

fn rejection(c: &mut Criterion) {
    let rejected = br#"{"error":{"code":2000,"message":"INVALID_OAUTHTOKEN"}}"#;
    let other = br#"{"error":{"errorCode":3001,"message":"You do not have permission to access this organization account.","key":"UNAUTHORIZED_USER"}}"#;
    let plain = HeaderMap::new();
    c.bench_function("rejection: INVALID_OAUTHTOKEN body", |b| {
        b.iter(|| {
            black_box(is_token_rejection_with_headers(
                black_box(&plain),
                black_box(rejected),
            ))
        });
    });
    c.bench_function("rejection: permission error body", |b| {
        b.iter(|| {
            black_box(is_token_rejection_with_headers(
                black_box(&plain),
                black_box(other),
            ))
        });
    });
    let mut gzip = HeaderMap::new();
    gzip.insert("content-encoding", HeaderValue::from_static("gzip"));
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut encoder, rejected).unwrap();
    let gzipped = encoder.finish().unwrap();
    c.bench_function("rejection: gzip INVALID_OAUTHTOKEN body", |b| {
        b.iter(|| {
            black_box(is_token_rejection_with_headers(
                black_box(&gzip),
                black_box(&gzipped),
            ))
        });
    });
}

fn problem(c: &mut Criterion) {
    c.bench_function("problem+json: 503 no-token", |b| {
        b.iter(|| {
            let e = ProxyError::NoToken(Unavailable::Budget {
                max: 10,
                retry_after: Duration::from_secs(42),
            });
            black_box(e.to_response())
        });
    });
    c.bench_function("problem+json: 502", |b| {
        b.iter(|| {
            let r = ProxyError::UpstreamUnreachable("refused".into()).to_response();
            assert_eq!(r.status(), StatusCode::BAD_GATEWAY);
            black_box(r)
        });
    });
}

criterion_group!(benches, rewrite, token_read, rejection, problem);
criterion_main!(benches);
