//! Shared test helpers: emulated Zoho accounts servers (plain and TLS with an rcgen CA),
//! configurations built in memory, and the real binary.

pub mod browser;
pub mod podman;
pub mod sandbox;
pub mod scenario;
pub mod sequence;
pub mod served;
pub mod tools;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use figment::Figment;
use zoho_emulator::accounts::{AccountsEmulator, AccountsOptions};
use zoho_meeting_proxy::config::Config;
use zoho_meeting_proxy::token::TokenStatusView;

/// The client the emulators register.
pub const CLIENT_ID: &str = "1000.TESTCLIENT";
/// Its secret.
pub const CLIENT_SECRET: &str = "test-client-secret-5f2c";

/// Emulator options for the test client with a token lifetime.
pub fn options(lifetime: Duration) -> AccountsOptions {
    AccountsOptions {
        client_id: CLIENT_ID.into(),
        client_secret: CLIENT_SECRET.into(),
        token_lifetime: lifetime,
        ..AccountsOptions::default()
    }
}

/// A plain-HTTP accounts emulator on an ephemeral loopback port.
pub async fn emulator(opts: AccountsOptions) -> AccountsEmulator {
    AccountsEmulator::start(loopback(), opts)
        .await
        .expect("emulator starts")
}

/// A plain-HTTP Meeting emulator on an ephemeral loopback port that accepts the tokens
/// `accounts` mints.
pub async fn meeting_emulator(
    accounts: &AccountsEmulator,
) -> zoho_emulator::meeting::MeetingEmulator {
    zoho_emulator::meeting::MeetingEmulator::start(
        loopback(),
        zoho_emulator::meeting::MeetingOptions::default(),
        accounts.control(),
    )
    .await
    .expect("meeting emulator starts")
}

/// A TLS accounts emulator whose certificate is signed by a fresh test CA; returns the CA's
/// PEM file (what `upstream.ca_file` points to).
pub async fn tls_emulator(mut opts: AccountsOptions, dir: &Path) -> (AccountsEmulator, PathBuf) {
    let (server_config, ca_pem) = test_ca();
    opts.tls = Some(server_config);
    let ca_file = dir.join("test-ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();
    (
        AccountsEmulator::start(loopback(), opts)
            .await
            .expect("tls emulator starts"),
        ca_file,
    )
}

/// 127.0.0.1 on a port the OS picks.
pub fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// A CA and a leaf for `localhost` and `127.0.0.1`, made with rcgen.
pub fn test_ca() -> (Arc<rustls::ServerConfig>, String) {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
        KeyUsagePurpose, SanType,
    };
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "zoho-meeting-proxy test CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();

    let leaf_key = KeyPair::generate().unwrap();
    let mut leaf_params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    leaf_params
        .subject_alt_names
        .push(SanType::IpAddress([127, 0, 0, 1].into()));
    leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let leaf = leaf_params.signed_by(&leaf_key, &ca_cert, &ca_key).unwrap();

    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(rustls::pki_types::PrivatePkcs8KeyDer::from(
        leaf_key.serialize_der(),
    ));
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![leaf.der().clone()], key)
    .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    (Arc::new(config), ca_cert.pem())
}

/// A validated configuration from defaults plus `overrides` (dotted keys), ignoring the
/// environment and any file.
pub fn config(overrides: &[(&str, toml::Value)]) -> Config {
    let mut figment = Figment::new();
    for (key, value) in overrides {
        figment = figment.merge((*key, value.clone()));
    }
    Config::from_figment(&figment, None).expect("test config is valid")
}

/// Overrides that point the OAuth client at an emulator, with the test client.
pub fn oauth_overrides(accounts_url: &str) -> Vec<(&'static str, toml::Value)> {
    vec![
        ("oauth.client_id", CLIENT_ID.into()),
        ("oauth.client_secret", CLIENT_SECRET.into()),
        ("oauth.accounts_url", accounts_url.into()),
    ]
}

/// The real binary, with the configuration environment cleared and state kept under `home`.
pub fn bin(home: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zoho-meeting-proxy"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("ZOHO_PROXY_") || key == "RUST_LOG" {
            cmd.env_remove(key);
        }
    }
    cmd.env("HOME", home)
        .env("XDG_STATE_HOME", home.join("state"))
        .current_dir(home);
    cmd.stdin(std::process::Stdio::null());
    cmd
}

/// Runs the binary to completion on a blocking thread, so emulators in this test's runtime
/// keep serving.
pub async fn run(mut cmd: Command) -> Output {
    tokio::task::spawn_blocking(move || cmd.output().expect("binary runs"))
        .await
        .unwrap()
}

/// Standard output and error as text.
pub fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

// === a generic upstream for transport tests (not a fake Zoho: that is crates/zoho-emulator) ===

use std::convert::Infallible;
use std::sync::Mutex;

use bytes::Bytes;
use http_body_util::{BodyExt, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use sha2::{Digest, Sha256};

/// What the test upstream saw of one request.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    /// Path and query exactly as received.
    pub target: String,
    pub version: String,
    pub headers: Vec<(String, String)>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// A loopback HTTP/1.1 + h2c upstream with fixed routes for streaming and header tests:
/// - `/status/{code}`: that status, a small body and an `X-Upstream: yes` header;
/// - `/download/{bytes}`: that many bytes of a repeating pattern, in 64 KiB chunks;
/// - `/upload`: reads the body as it streams and answers its length and SHA-256;
/// - `/slow`: a chunked body whose first chunk comes at once and the second after the test
///   releases it with [`TestUpstream::release`];
/// - `/hop`: answers with hop-by-hop headers (`Connection: x-drop`, `X-Drop`, `Keep-Alive`,
///   `Upgrade`) that must not reach the client;
/// - `/delay/{ms}`: answers after that long;
/// - `/unauthorized`: Zoho Meeting's 401 `UNAUTHORIZED_USER` (a permission error);
/// - `/reject-first/{id}`: reads and hashes the body; the first request to that target gets
///   Zoho Meeting's 400 `INVALID_OAUTHTOKEN` (with the body's `len` and `sha256`), later ones
///   200 with `bodies`, the `len` and `sha256` of every body received at the target, in order;
/// - anything else: 200 `ok`.
pub struct TestUpstream {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    release: Arc<tokio::sync::Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl TestUpstream {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind(loopback()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let release = Arc::new(tokio::sync::Notify::new());
        let (s, r) = (seen.clone(), release.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (s, r) = (s.clone(), r.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let (s, r) = (s.clone(), r.clone());
                        async move { Ok::<_, Infallible>(route(req, &s, &r).await) }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self {
            addr,
            seen,
            release,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Lets `/slow` send its second chunk.
    pub fn release(&self) {
        self.release.notify_one();
    }
}

impl Drop for TestUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type TestBody = BoxBody<Bytes, Infallible>;

fn full(data: impl Into<Bytes>) -> TestBody {
    http_body_util::Full::new(data.into()).boxed()
}

async fn route(
    req: Request<Incoming>,
    seen: &Mutex<Vec<Seen>>,
    release: &Arc<tokio::sync::Notify>,
) -> Response<TestBody> {
    let target = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    seen.lock().unwrap().push(Seen {
        method: req.method().to_string(),
        target: target.clone(),
        version: format!("{:?}", req.version()),
        headers: req
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
    });
    let path = req.uri().path().to_owned();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        ["status", code] => {
            let status = code.parse().unwrap_or(500);
            Response::builder()
                .status(status)
                .header("x-upstream", "yes")
                .header("content-type", "application/json")
                .body(if status == 204 { full(Bytes::new()) } else { full(format!("{{\"status\":{status}}}")) })
                .unwrap()
        }
        ["download", size] => {
            let total: u64 = size.parse().unwrap_or(0);
            Response::builder()
                .header("content-length", total.to_string())
                .body(Pattern::new(total).boxed())
                .unwrap()
        }
        ["upload"] => {
            let mut body = req.into_body();
            let mut hasher = Sha256::new();
            let mut len = 0u64;
            while let Some(frame) = body.frame().await {
                let Ok(frame) = frame else { break };
                if let Ok(data) = frame.into_data() {
                    len += data.len() as u64;
                    hasher.update(&data);
                }
            }
            let hex: String = hasher.finalize().iter().map(|b| format!("{b:02x}")).collect();
            Response::new(full(format!("{{\"len\":{len},\"sha256\":\"{hex}\"}}")))
        }
        ["slow"] => {
            let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(2);
            let release = release.clone();
            tokio::spawn(async move {
                let _ = tx.send(Bytes::from_static(b"first\n")).await;
                release.notified().await;
                let _ = tx.send(Bytes::from_static(b"second\n")).await;
            });
            Response::builder()
                .header("content-type", "text/event-stream")
                .body(Channel(rx).boxed())
                .unwrap()
        }
        ["hop"] => Response::builder()
            .header("connection", "x-drop")
            .header("x-drop", "1")
            .header("keep-alive", "timeout=5")
            .header("upgrade", "h2c")
            .header("x-keep", "1")
            .body(full("hop"))
            .unwrap(),
        ["unauthorized"] => Response::builder()
            .status(401)
            .body(full(r#"{"error":{"errorCode":3001,"message":"You do not have permission to access this organization account.","key":"UNAUTHORIZED_USER"}}"#))
            .unwrap(),
        ["delay", ms] => {
            tokio::time::sleep(Duration::from_millis(ms.parse().unwrap_or(0))).await;
            Response::new(full("late"))
        }
        ["reject-first", _] => {
            let (len, sha256) = hash_body(req.into_body()).await;
            let bodies = {
                let mut all = REJECT_FIRST.lock().unwrap();
                all.push((target.clone(), len, sha256.clone()));
                all.iter()
                    .filter(|(t, _, _)| *t == target)
                    .map(|(_, len, sha256)| serde_json::json!({"len": len, "sha256": sha256}))
                    .collect::<Vec<_>>()
            };
            let (status, body) = if bodies.len() == 1 {
                (
                    400,
                    serde_json::json!({"error": {"code": 2000, "message": "INVALID_OAUTHTOKEN"},
                        "len": len, "sha256": sha256}),
                )
            } else {
                (200, serde_json::json!({ "bodies": bodies }))
            };
            Response::builder()
                .status(status)
                .header("content-type", "application/json;charset=UTF-8")
                .body(full(body.to_string()))
                .unwrap()
        }
        _ => Response::new(full("ok")),
    }
}

/// Bodies `/reject-first/{id}` received: target, length, SHA-256 (shared by all test
/// upstreams; each test uses its own id).
static REJECT_FIRST: Mutex<Vec<(String, u64, String)>> = Mutex::new(Vec::new());

/// The length and hex SHA-256 of a body, read as it streams.
async fn hash_body(mut body: Incoming) -> (u64, String) {
    let mut hasher = Sha256::new();
    let mut len = 0u64;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else { break };
        if let Ok(data) = frame.into_data() {
            len += data.len() as u64;
            hasher.update(&data);
        }
    }
    let hex = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    (len, hex)
}

/// The repeating byte pattern the upstream serves and tests expect: byte `i` is `i % 251`.
pub fn pattern_byte(i: u64) -> u8 {
    (i % 251) as u8
}

/// A body of `total` pattern bytes, made chunk by chunk (never held whole).
pub struct Pattern {
    sent: u64,
    total: u64,
}

impl Pattern {
    pub fn new(total: u64) -> Self {
        Self { sent: 0, total }
    }
}

impl hyper::body::Body for Pattern {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.sent >= self.total {
            return std::task::Poll::Ready(None);
        }
        let n = (self.total - self.sent).min(65536);
        let start = self.sent;
        let chunk: Vec<u8> = (start..start + n).map(pattern_byte).collect();
        self.sent += n;
        std::task::Poll::Ready(Some(Ok(Frame::data(Bytes::from(chunk)))))
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        hyper::body::SizeHint::with_exact(self.total - self.sent)
    }
}

/// A body fed by a channel.
pub struct Channel(pub tokio::sync::mpsc::Receiver<Bytes>);

impl hyper::body::Body for Channel {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b))))
    }
}

/// A proxy running in this process against `upstream`, with tokens from `accounts`.
pub struct TestProxy {
    pub running: Option<zoho_meeting_proxy::app::Running>,
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    pub refresh_token: String,
}

impl TestProxy {
    /// Starts a proxy; `extra` overrides come last.
    pub async fn start(
        accounts: &AccountsEmulator,
        upstream: &str,
        extra: &[(&str, toml::Value)],
    ) -> Self {
        let refresh_token = accounts.control().issue_refresh_token(&[
            "ZohoMeeting.manageOrg.READ",
            "ZohoMeeting.meeting.READ",
            "ZohoMeeting.meeting.CREATE",
            "ZohoMeeting.meeting.UPDATE",
            "ZohoMeeting.meeting.DELETE",
        ]);
        let mut overrides = oauth_overrides(&accounts.url());
        overrides.extend([
            ("oauth.refresh_token", refresh_token.as_str().into()),
            ("server.listen", "127.0.0.1:0".into()),
            ("server.admin_listen", "127.0.0.1:0".into()),
            ("upstream.url", upstream.into()),
            ("token.store", "memory".into()),
        ]);
        overrides.extend(extra.iter().cloned());
        let config = config(&overrides);
        let running = zoho_meeting_proxy::app::start(&config).await.unwrap();
        let addr = running.proxy_addr().unwrap();
        let admin = running.admin_addr().unwrap();
        Self {
            running: Some(running),
            addr,
            admin,
            refresh_token,
        }
    }

    /// Starts a proxy listening on a Unix socket at `path`; returns the running handle.
    pub async fn start_unix(
        accounts: &AccountsEmulator,
        upstream: &str,
        path: &Path,
    ) -> Option<zoho_meeting_proxy::app::Running> {
        let refresh_token = accounts
            .control()
            .issue_refresh_token(&["ZohoMeeting.meeting.READ"]);
        let mut overrides = oauth_overrides(&accounts.url());
        let listen = format!("unix:{}", path.display());
        overrides.extend([
            ("oauth.refresh_token", refresh_token.as_str().into()),
            ("server.listen", listen.as_str().into()),
            ("server.admin_listen", "".into()),
            ("upstream.url", upstream.into()),
            ("token.store", "memory".into()),
        ]);
        let config = config(&overrides);
        let running = zoho_meeting_proxy::app::start(&config).await.unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !running.manager().is_ready() {
            assert!(tokio::time::Instant::now() < deadline);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Some(running)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.admin)
    }

    pub fn running(&self) -> &zoho_meeting_proxy::app::Running {
        self.running.as_ref().unwrap()
    }

    /// Waits until the proxy holds a token (at most 5 s).
    pub async fn ready(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !self.running().manager().is_ready() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no token within 5 s"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// A reqwest client that talks to the proxy directly (no system proxy, no redirects).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Sends raw bytes on a new connection and returns everything read until the server closes
/// (or 5 s pass).
pub async fn raw(addr: SocketAddr, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// The accounts emulator, a [`TestUpstream`] and a ready proxy between them.
pub async fn proxy_with_upstream(
    extra: &[(&str, toml::Value)],
) -> (AccountsEmulator, TestUpstream, TestProxy) {
    let accounts = emulator(options(Duration::from_secs(3600))).await;
    let upstream = TestUpstream::start().await;
    let proxy = TestProxy::start(&accounts, &upstream.url(), extra).await;
    proxy.ready().await;
    (accounts, upstream, proxy)
}
