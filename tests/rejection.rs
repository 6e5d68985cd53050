//! Token rejections in compressed answers, over real sockets: a gzip or br
//! `INVALID_OAUTHTOKEN` is seen through (one refresh, one replay), and whatever is passed on
//! reaches the client exactly as the upstream sent it, still compressed.

use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use zoho_emulator::accounts::AccountsEmulator;

use crate::support::{self, TestProxy, client};

const MEETING_REJECTION: &[u8] = br#"{"error":{"code":2000,"message":"INVALID_OAUTHTOKEN"}}"#;
const UNAUTHORIZED_USER: &[u8] = br#"{"error":{"errorCode":3001,"message":"You do not have permission to access this organization account.","key":"UNAUTHORIZED_USER"}}"#;
const INVALID_MEETING_KEY: &[u8] =
    br#"{"error":{"errorCode":4000,"key":"INVALID_MEETING_KEY","message":"Invalid meeting key"}}"#;

/// One canned answer: status, `Content-Encoding` (if any) and the body as sent.
#[derive(Clone)]
struct Answer {
    status: u16,
    encoding: Option<&'static str>,
    body: Vec<u8>,
}

impl Answer {
    fn new(status: u16, encoding: Option<&'static str>, body: Vec<u8>) -> Self {
        Self {
            status,
            encoding,
            body,
        }
    }

    fn ok() -> Self {
        Self::new(200, None, b"{\"ok\":true}".to_vec())
    }
}

/// What the upstream saw of one request.
#[derive(Clone, Debug)]
struct Seen {
    authorization: String,
    accept_encoding: String,
}

/// A loopback HTTP/1.1 upstream that answers `first` to the first request and `then` to
/// every later one.
struct ScriptedUpstream {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl ScriptedUpstream {
    async fn start(first: Answer, then: Answer) -> Self {
        let listener = tokio::net::TcpListener::bind(support::loopback())
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new((first, then));
        let shared = seen.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (seen, script) = (shared.clone(), script.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: Request<_>| {
                        let (seen, script) = (seen.clone(), script.clone());
                        async move {
                            let header = |name: &str| {
                                req.headers()
                                    .get(name)
                                    .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                                    .unwrap_or_default()
                            };
                            let answer = {
                                let mut seen = seen.lock().unwrap();
                                seen.push(Seen {
                                    authorization: header("authorization"),
                                    accept_encoding: header("accept-encoding"),
                                });
                                if seen.len() == 1 {
                                    script.0.clone()
                                } else {
                                    script.1.clone()
                                }
                            };
                            let mut response = Response::builder()
                                .status(answer.status)
                                .header("content-type", "application/json;charset=UTF-8");
                            if let Some(encoding) = answer.encoding {
                                response = response.header("content-encoding", encoding);
                            }
                            Ok::<_, Infallible>(
                                response.body(Full::new(Bytes::from(answer.body))).unwrap(),
                            )
                        }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { addr, seen, task }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for ScriptedUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn gzip(body: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(body).unwrap();
    e.finish().unwrap()
}

fn zlib(body: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(body).unwrap();
    e.finish().unwrap()
}

fn br(body: &[u8]) -> Vec<u8> {
    let mut e = brotli::CompressorWriter::new(Vec::new(), 4096, 11, 22);
    e.write_all(body).unwrap();
    e.into_inner()
}

/// Deterministic bytes that do not compress (xorshift).
fn noise(len: usize) -> Vec<u8> {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// The accounts emulator, `upstream` answering `first` then `then`, and a ready proxy.
async fn setup(first: Answer, then: Answer) -> (AccountsEmulator, ScriptedUpstream, TestProxy) {
    let accounts = support::emulator(support::options(Duration::from_secs(3600))).await;
    let upstream = ScriptedUpstream::start(first, then).await;
    let proxy = TestProxy::start(&accounts, &upstream.url(), &[]).await;
    proxy.ready().await;
    (accounts, upstream, proxy)
}

/// A GET through the proxy with `Accept-Encoding: gzip, deflate, br`, read raw (the
/// project's reqwest has no decompression): status, `Content-Encoding`, body bytes.
async fn get(proxy: &TestProxy) -> (u16, Option<String>, Bytes) {
    let response = client()
        .get(proxy.url("/api/v2/user.json"))
        .header("accept-encoding", "gzip, deflate, br")
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let encoding = response
        .headers()
        .get("content-encoding")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, encoding, response.bytes().await.unwrap())
}

/// The upstream answers a compressed rejection, then 200: one refresh, one replay.
async fn compressed_rejection_is_refreshed_and_replayed(encoding: &'static str, body: Vec<u8>) {
    assert!(
        !body
            .windows(b"INVALID_OAUTHTOKEN".len())
            .any(|w| w == b"INVALID_OAUTHTOKEN"),
        "{encoding}: the compressed body must not show the rejection in clear"
    );
    let (accounts, upstream, proxy) =
        setup(Answer::new(400, Some(encoding), body), Answer::ok()).await;
    let mints = accounts.control().mint_count();

    let (status, content_encoding, received) = get(&proxy).await;

    assert_eq!(status, 200, "{encoding}: {received:?}");
    assert_eq!(content_encoding, None);
    assert_eq!(&received[..], b"{\"ok\":true}");
    assert_eq!(
        accounts.control().mint_count(),
        mints + 1,
        "{encoding}: one refresh"
    );
    let seen = upstream.seen();
    assert_eq!(seen.len(), 2, "{encoding}: the original and one replay");
    assert_ne!(
        seen[0].authorization, seen[1].authorization,
        "{encoding}: the replay carries the new token"
    );
    assert!(seen[1].authorization.starts_with("Zoho-oauthtoken "));
    // The client's Accept-Encoding was forwarded both times: that is why Zoho compresses.
    for s in &seen {
        assert_eq!(s.accept_encoding, "gzip, deflate, br");
    }
}

/// Zoho's rejection three times over, so that the compressors really compress (a lone short
/// body is stored as it is, in clear).
fn rejection_body() -> Vec<u8> {
    [MEETING_REJECTION, b"\n"].concat().repeat(3)
}

#[tokio::test]
async fn a_gzip_rejection_is_refreshed_and_replayed() {
    compressed_rejection_is_refreshed_and_replayed("gzip", gzip(&rejection_body())).await;
}

#[tokio::test]
async fn a_br_rejection_is_refreshed_and_replayed() {
    compressed_rejection_is_refreshed_and_replayed("br", br(&rejection_body())).await;
}

#[tokio::test]
async fn a_deflate_rejection_is_refreshed_and_replayed() {
    compressed_rejection_is_refreshed_and_replayed("deflate", zlib(&rejection_body())).await;
}

/// The upstream answers `answer` to everything: it reaches the client byte for byte with its
/// Content-Encoding, and no token is minted.
async fn passes_through_unchanged(answer: Answer) {
    let (accounts, upstream, proxy) = setup(answer.clone(), answer.clone()).await;
    let mints = accounts.control().mint_count();

    let (status, encoding, received) = get(&proxy).await;

    let label = answer.encoding.unwrap_or("identity");
    assert_eq!(status, answer.status, "{label}");
    assert_eq!(encoding.as_deref(), answer.encoding, "{label}");
    assert_eq!(received.len(), answer.body.len(), "{label}");
    assert!(received[..] == answer.body[..], "{label}: bytes differ");
    assert_eq!(
        accounts.control().mint_count(),
        mints,
        "{label}: no refresh"
    );
    assert_eq!(upstream.seen().len(), 1, "{label}: no replay");
}

#[tokio::test]
async fn a_compressed_non_rejection_reaches_the_client_byte_identical() {
    passes_through_unchanged(Answer::new(400, Some("gzip"), gzip(INVALID_MEETING_KEY))).await;
    passes_through_unchanged(Answer::new(401, Some("br"), br(UNAUTHORIZED_USER))).await;
    passes_through_unchanged(Answer::new(400, Some("deflate"), zlib(INVALID_MEETING_KEY))).await;
}

#[tokio::test]
async fn an_uncompressed_non_rejection_reaches_the_client_byte_identical() {
    passes_through_unchanged(Answer::new(400, None, INVALID_MEETING_KEY.to_vec())).await;
    passes_through_unchanged(Answer::new(401, None, UNAUTHORIZED_USER.to_vec())).await;
}

#[tokio::test]
async fn a_compressed_answer_longer_than_the_peek_arrives_whole() {
    // 64 KiB of incompressible detail after the error: the peek sees a prefix of the gzip
    // stream, the client gets every byte.
    let mut body = INVALID_MEETING_KEY.to_vec();
    body.extend(noise(64 * 1024));
    let compressed = gzip(&body);
    assert!(compressed.len() > 4 * zoho_meeting_proxy::token::rejection::PEEK_LIMIT);
    passes_through_unchanged(Answer::new(400, Some("gzip"), compressed)).await;
}

#[tokio::test]
async fn a_gzip_bomb_or_garbage_is_passed_through_without_a_refresh() {
    // About 4 KiB that inflate to megabytes of zeros, the rejection only at the very end.
    let zeros = vec![0u8; 256 * 1024];
    let member = gzip(&zeros);
    let mut bomb = member.repeat(12);
    bomb.extend(gzip(&[&zeros[..], MEETING_REJECTION].concat()));
    assert!(bomb.len() <= zoho_meeting_proxy::token::rejection::PEEK_LIMIT);
    passes_through_unchanged(Answer::new(400, Some("gzip"), bomb)).await;
    // Not gzip at all, whatever the header says: passed on as sent.
    passes_through_unchanged(Answer::new(400, Some("gzip"), noise(3000))).await;
    // A plain rejection under a coding the proxy does not know: not judged, passed on.
    passes_through_unchanged(Answer::new(400, Some("zstd"), MEETING_REJECTION.to_vec())).await;
}

/// The Meeting emulator, the accounts emulator it trusts, and a ready proxy in front of it.
async fn setup_emulated() -> (
    AccountsEmulator,
    zoho_emulator::meeting::MeetingEmulator,
    TestProxy,
) {
    let accounts = support::emulator(support::options(Duration::from_secs(3600))).await;
    let meeting = support::meeting_emulator(&accounts).await;
    let proxy = TestProxy::start(&accounts, &meeting.url(), &[]).await;
    proxy.ready().await;
    (accounts, meeting, proxy)
}

#[tokio::test]
async fn the_emulators_wrong_org_answer_is_passed_through_without_a_refresh() {
    let (accounts, meeting, proxy) = setup_emulated().await;
    let mints = accounts.control().mint_count();

    for encoding in [None, Some("gzip")] {
        meeting.control().clear_requests();
        let mut request = client().get(proxy.url("/api/v2/700000002/sessions.json"));
        if let Some(encoding) = encoding {
            request = request.header("accept-encoding", encoding);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401, "{encoding:?}");
        let compressed = response.headers().get("content-encoding").is_some();
        let body = response.bytes().await.unwrap();
        let body = if compressed {
            gunzip(&body)
        } else {
            body.to_vec()
        };
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let expected: serde_json::Value = serde_json::from_slice(UNAUTHORIZED_USER).unwrap();
        assert_eq!(body, expected, "{encoding:?}");
        // A 401 that is not a token problem: no refresh, no replay.
        assert_eq!(meeting.control().requests().len(), 1, "{encoding:?}");
    }
    assert_eq!(accounts.control().mint_count(), mints);
}

#[tokio::test]
async fn a_gzip_rejection_from_the_emulator_is_replayed_and_the_client_gets_gzip() {
    let (accounts, meeting, proxy) = setup_emulated().await;
    // The emulator's own JSON, uncompressed, for comparison.
    let plain = client()
        .get(proxy.url("/api/v2/user.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), 200);
    assert!(plain.headers().get("content-encoding").is_none());
    let plain: serde_json::Value = plain.json().await.unwrap();
    let mints = accounts.control().mint_count();
    meeting.control().clear_requests();
    meeting.control().reject_tokens(1);

    let response = client()
        .get(proxy.url("/api/v2/user.json"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-encoding"], "gzip");
    assert_eq!(response.headers()["vary"], "Accept-Encoding");
    let body = response.bytes().await.unwrap();
    let decoded: serde_json::Value = serde_json::from_slice(&gunzip(&body)).unwrap();
    assert_eq!(decoded, plain);
    assert_eq!(accounts.control().mint_count(), mints + 1, "one refresh");
    let seen = meeting.control().requests();
    assert_eq!(seen.len(), 2, "the original and one replay");
    assert_ne!(seen[0].authorization, seen[1].authorization);
    for request in &seen {
        let accept = request
            .headers
            .iter()
            .find(|(name, _)| name == "accept-encoding")
            .map(|(_, value)| value.as_str());
        assert_eq!(
            accept,
            Some("gzip"),
            "the client's Accept-Encoding was forwarded"
        );
    }
}

/// Inflates a gzip body.
fn gunzip(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(body), &mut out).unwrap();
    out
}
