//! An in-memory emulator of Zoho's accounts server (`accounts.zoho.com`).
//!
//! [`AccountsEmulator::start`] binds a TCP socket and serves, over HTTP/1.1 and HTTP/2
//! (plain, or TLS when [`AccountsOptions::tls`] is set), the three endpoints an OAuth client
//! of Zoho needs. [`AccountsControl`] drives and inspects the emulator from the same process:
//! it issues Self Client grant codes and refresh tokens, revokes them (and access tokens, one
//! or all), injects outages, throttling and failures (of the token endpoint and, separately,
//! of the revocation endpoint), rotates the client secret, keeps logs of the tokens minted
//! and of those revoked through the endpoint, and validates access tokens for the other
//! emulators.
//!
//! The module is split by endpoint: `authorize` (the consent page and redirect), `token` (the token
//! endpoint: grants, client authentication, the mint limit and the answers' shape), `revoke`
//! (revocation) and `control` ([`AccountsControl`]); this file holds the options, the server
//! and the state they share.
//!
//! # Endpoints
//!
//! | Method and path | Behaviour |
//! | --- | --- |
//! | `GET /oauth/v2/auth` | Consents at once (the sandbox has no user): `302` to `redirect_uri` with `code`, `state`, `location` and `accounts-server`. With [`AccountsOptions::consent_form`], shows a consent page instead. Bad requests get a `400` HTML page and no redirect. |
//! | `POST /oauth/v2/auth` | Only with [`AccountsOptions::consent_form`]: the consent page's form, submitted. `consent=allow` redirects as the `GET` above; `consent=deny` redirects with `error=access_denied`. |
//! | `POST /oauth/v2/token` | `authorization_code` and `refresh_token` grants. |
//! | `POST /oauth/v2/token/revoke` | Revokes a refresh token (and every access token minted from it) or one access token. |
//!
//! Any other path answers `404`; a known path with the wrong method answers `405`.
//!
//! # Zoho's behaviour, as emulated
//!
//! These follow the project's notes on how the real server answers (`zoho-facts.md` §3–§8):
//!
//! - Token-endpoint parameters may come in the query string or in an
//!   `application/x-www-form-urlencoded` body; both are merged and the body wins. Client
//!   credentials may also come as `Authorization: Basic base64(client_id:client_secret)`.
//! - A successful token answer is shaped like the example in Zoho's documentation that
//!   carries both expiry fields: `access_token`, `refresh_token` (code exchange only),
//!   `scope`, `api_domain`, `token_type: "Bearer"`, `expires_in` in **milliseconds** and
//!   `expires_in_sec` in seconds (Zoho Writer's OAuth step 4,
//!   <https://zoho.com.cn/writer/help/api/v1/oauth-step4.html>). With
//!   [`AccountsOptions::expires_in_seconds_only`] it is the accounts pages' shape instead:
//!   `expires_in` in seconds and no `expires_in_sec`
//!   (<https://www.zoho.com/accounts/protocol/oauth/web-apps/access-token.html>). Zoho's
//!   SDKs read both: milliseconds when `expires_in_sec` is present, seconds otherwise.
//! - `api_domain` is the data centre's API domain ([`DataCenter::zohoapis_url`]) for
//!   [`AccountsOptions::location`]: `https://www.zohoapis.com` for `us`,
//!   `https://www.zohoapis.eu` for `eu`, `https://www.zohoapis.ca` (not `zohocloud`) for
//!   `ca`, and so on (`zoho-facts.md` §3). The consent redirect's `location` is the same
//!   data centre's name.
//! - Token-endpoint errors (`invalid_client`, `invalid_code`, `invalid_redirect_uri`,
//!   `unsupported_grant_type`) are JSON bodies with **HTTP 200**. An unknown or revoked
//!   refresh token is `invalid_code`, as Zoho says.
//! - A refresh token mints at most [`AccountsOptions::max_mints_per_10m`] access tokens in a
//!   rolling 10-minute window; beyond that the endpoint answers Zoho's throttle body with
//!   **HTTP 200** (Zoho's Kaizen #43 says the status stays 200):
//!   `{"error":"Access Denied","error_description":"You have made too many requests
//!   continuously. Please try again after some time.","status":"failure"}`.
//! - Revoking an unknown token answers `400 {"status":"failure","error":"invalid_token"}`;
//!   a known one `200 {"status":"success"}`.
//! - Minting a new access token does not invalidate older ones.
//! - Request bodies over [`MAX_BODY_BYTES`] are refused with `413` (and still counted by
//!   [`AccountsControl::token_requests`] when sent to the token endpoint).
//!
//! Not emulated: the caps on live access tokens (15–30) and refresh tokens (20) per client,
//! multipart request bodies, the `client_credentials` grant and the device flow.
//!
//! # Clock and logging
//!
//! Expiries and the mint window use [`tokio::time::Instant`], so tests can drive them with a
//! paused clock. Each request is logged at `debug` with its method and path only: never the
//! query string, codes, secrets or tokens.

mod authorize;
mod control;
mod revoke;
#[cfg(test)]
mod testing;
mod token;

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use rand::Rng;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::time::Instant;
use zoho_data_centers::DataCenter;

use crate::http::{self, Body, BodyError, Handler, Listener, Server, with_allow};

pub use self::control::AccountsControl;

/// Path of the consent (authorization) endpoint.
pub const AUTH_PATH: &str = "/oauth/v2/auth";
/// Path of the token endpoint.
pub const TOKEN_PATH: &str = "/oauth/v2/token";
/// Path of the revocation endpoint.
pub const REVOKE_PATH: &str = "/oauth/v2/token/revoke";

/// The rolling window over which [`AccountsOptions::max_mints_per_10m`] counts mints.
pub const MINT_WINDOW: Duration = Duration::from_secs(600);

/// The largest request body the emulator reads; larger bodies get `413`.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// How many [`TokenRequestRecord`]s are kept; older ones are dropped first.
pub const REQUEST_LOG_CAPACITY: usize = 10_000;

/// `Content-Type` of every HTML answer.
const HTML_CONTENT_TYPE: &str = "text/html;charset=UTF-8";

/// Settings of an [`AccountsEmulator`].
///
/// `Debug` redacts the client secret.
#[derive(Clone)]
pub struct AccountsOptions {
    /// The one registered client's id. **(default: `1000.SANDBOXCLIENT`)**
    pub client_id: String,
    /// The one registered client's secret. **(default: `sandbox-secret`)**
    pub client_secret: String,
    /// Lifetime of minted access tokens. **(default: 3600 s)**
    pub token_lifetime: Duration,
    /// Whether token responses carry `"expires_in": <seconds>` alone, as Zoho's accounts
    /// pages describe, instead of the default `"expires_in": <milliseconds>,
    /// "expires_in_sec": <seconds>` pair of Zoho's documented example (see the
    /// [module docs](self)). **(default: `false`)**
    pub expires_in_seconds_only: bool,
    /// Access tokens a refresh token may mint in a rolling 10-minute window.
    /// **(default: `10`)**
    pub max_mints_per_10m: u32,
    /// The emulated data centre: the consent redirect's `location` is its
    /// [name](DataCenter::name), and token responses' `api_domain` its
    /// [API domain](DataCenter::zohoapis_url). **(default: [`DataCenter::Us`])**
    pub location: DataCenter,
    /// Lifetime of grant codes, from both the browser flow and the Self Client.
    /// **(default: 120 s)**
    pub grant_code_lifetime: Duration,
    /// TLS configuration; `None` serves plain HTTP. Set its `alpn_protocols` to
    /// `h2` and `http/1.1` to offer HTTP/2 over TLS. **(default: `None`)**
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Whether `GET /oauth/v2/auth` asks, as Zoho asks a person: a consent page whose HTML
    /// form posts back to the same path with Allow or Deny. Off, a valid request consents at
    /// once. **(default: `false`)**
    pub consent_form: bool,
}

/// A running accounts-server emulator.
///
/// The server task stops on [`AccountsEmulator::shutdown`] or when the emulator is dropped.
pub struct AccountsEmulator {
    server: Server,
    control: AccountsControl,
}

/// A way to make upcoming token requests fail; see [`AccountsControl::fail_next`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Zoho's throttle body (`"error":"Access Denied"`, `"status":"failure"`) with HTTP 200.
    Throttle,
    /// `{"error":"invalid_client"}` with HTTP 200.
    InvalidClient,
    /// `{"error":"invalid_code"}` with HTTP 200.
    InvalidCode,
    /// HTTP 500 with an HTML body, as a failing load balancer would answer.
    ServerError,
}

/// What [`AccountsControl::validate_access_token`] knows about a live access token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessTokenInfo {
    /// The scopes the token was granted.
    pub scopes: Vec<String>,
    /// Time left before the token expires.
    pub expires_in: Duration,
}

/// One request received by the token endpoint, as logged by the emulator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRequestRecord {
    /// The `grant_type` parameter, or the empty string when it was missing.
    pub grant_type: String,
    /// Whether any parameter came in a form-encoded body.
    pub params_in_body: bool,
    /// Whether any parameter came in the query string.
    pub params_in_query: bool,
    /// The request's `Content-Type` header, when present and readable.
    pub content_type: Option<String>,
}

/// One access token the emulator minted, as [`AccountsControl::mints`] lists it.
///
/// The log is the emulator's own state and holds tokens in clear, for tests; `Debug`
/// redacts them.
#[derive(Clone, PartialEq, Eq)]
pub struct MintRecord {
    /// The access token.
    pub access_token: String,
    /// The refresh token it was minted from (`None` for a code exchange without one).
    pub refresh_token: Option<String>,
    /// When it was minted (tokio clock, as the emulator's expiries).
    pub minted_at: Instant,
    /// When it expires (tokio clock).
    pub expires_at: Instant,
    /// When it was minted, by the wall clock (what a mint budget of "10 per 10 minutes" is
    /// counted in by clients that persist mint times).
    pub wall: SystemTime,
}

/// State shared by the server task and every [`AccountsControl`].
struct Shared {
    client_id: String,
    expires_in_seconds_only: bool,
    max_mints_per_10m: u32,
    location: DataCenter,
    grant_code_lifetime: Duration,
    /// [`AccountsOptions::consent_form`].
    consent_form: bool,
    url: String,
    state: Mutex<State>,
}

/// The mutable part of the emulator. Never held across an `.await`.
#[derive(Default)]
struct State {
    token_lifetime: Duration,
    /// SHA-256 of the registered client's secret (changed by
    /// [`AccountsControl::set_client_secret`]).
    client_secret_digest: [u8; 32],
    grant_codes: HashMap<String, GrantCode>,
    refresh_tokens: HashMap<String, RefreshToken>,
    access_tokens: HashMap<String, AccessToken>,
    mint_count: u64,
    token_requests: u64,
    outage: Option<u16>,
    revoke_outage: Option<u16>,
    pending_failures: VecDeque<(u32, Failure)>,
    requests: VecDeque<TokenRequestRecord>,
    revocations: VecDeque<String>,
    /// Zoho's throttle answer with this HTTP status for every token request, while set.
    throttling: Option<u16>,
    /// How long token answers take to leave, once decided (and any token minted).
    answer_delay: Duration,
    mint_log: VecDeque<MintRecord>,
}

/// A grant code waiting to be exchanged.
struct GrantCode {
    scopes: Vec<String>,
    /// The `redirect_uri` of a browser-flow code; `None` for a Self Client code.
    redirect_uri: Option<String>,
    /// Whether the exchange also returns a refresh token.
    offline: bool,
    expires_at: Instant,
}

/// A live refresh token.
struct RefreshToken {
    scopes: Vec<String>,
    /// When each access token minted from this refresh token within the window was minted.
    mints: VecDeque<Instant>,
}

/// A minted access token.
struct AccessToken {
    scopes: Vec<String>,
    expires_at: Instant,
    /// The refresh token it was minted from, if any.
    parent: Option<String>,
}

// === impl AccountsOptions ===

impl Default for AccountsOptions {
    fn default() -> Self {
        Self {
            client_id: "1000.SANDBOXCLIENT".to_owned(),
            client_secret: "sandbox-secret".to_owned(),
            token_lifetime: Duration::from_secs(3600),
            expires_in_seconds_only: false,
            max_mints_per_10m: 10,
            location: DataCenter::Us,
            grant_code_lifetime: Duration::from_secs(120),
            tls: None,
            consent_form: false,
        }
    }
}

impl fmt::Debug for AccountsOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccountsOptions")
            .field("client_id", &self.client_id)
            .field("client_secret", &crate::REDACTED)
            .field("token_lifetime", &self.token_lifetime)
            .field("expires_in_seconds_only", &self.expires_in_seconds_only)
            .field("max_mints_per_10m", &self.max_mints_per_10m)
            .field("location", &self.location)
            .field("grant_code_lifetime", &self.grant_code_lifetime)
            .field("tls", &self.tls.is_some())
            .field("consent_form", &self.consent_form)
            .finish()
    }
}

// === impl MintRecord ===

impl fmt::Debug for MintRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MintRecord")
            .field("access_token", &crate::REDACTED)
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| crate::REDACTED),
            )
            .field("minted_at", &self.minted_at)
            .field("expires_at", &self.expires_at)
            .field("wall", &self.wall)
            .finish()
    }
}

// === impl AccountsEmulator ===

impl AccountsEmulator {
    /// Binds `addr` and serves the emulator until [`shutdown`](Self::shutdown) or drop.
    ///
    /// Tests pass `127.0.0.1:0` and read the chosen port from [`addr`](Self::addr).
    ///
    /// # Errors
    ///
    /// Returns the error from binding the socket or reading its local address.
    pub async fn start(addr: SocketAddr, opts: AccountsOptions) -> std::io::Result<Self> {
        let listener = Listener::bind(addr, opts.tls).await?;
        let addr = listener.addr();
        let shared = Arc::new(Shared {
            client_id: opts.client_id,
            expires_in_seconds_only: opts.expires_in_seconds_only,
            max_mints_per_10m: opts.max_mints_per_10m,
            location: opts.location,
            grant_code_lifetime: opts.grant_code_lifetime,
            consent_form: opts.consent_form,
            url: listener.url(),
            state: Mutex::new(State {
                token_lifetime: opts.token_lifetime,
                client_secret_digest: Sha256::digest(opts.client_secret.as_bytes()).into(),
                ..State::default()
            }),
        });
        let server = listener.serve(Arc::clone(&shared));
        tracing::debug!(%addr, "accounts emulator listening");
        Ok(Self {
            server,
            control: AccountsControl::new(shared),
        })
    }

    /// Returns the bound socket address.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// Returns the base URL, without a trailing slash: `http://127.0.0.1:PORT`, or
    /// `https://localhost:PORT` with TLS.
    pub fn url(&self) -> String {
        self.control.shared().url.clone()
    }

    /// Returns a handle on the emulator's state.
    pub fn control(&self) -> AccountsControl {
        self.control.clone()
    }

    /// Stops accepting connections, closes the open ones and waits for the server task to end.
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}

impl fmt::Debug for AccountsEmulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccountsEmulator")
            .field("addr", &self.server.addr())
            .field("url", &self.control.shared().url)
            .finish()
    }
}

// === impl Shared ===

impl Shared {
    /// Locks the state. A poisoned lock is recovered: no code panics while holding it, and
    /// the state stays consistent between statements.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Handler for Shared {
    /// Dispatches a request to its endpoint.
    async fn handle(&self, req: Request<Incoming>) -> Response<Body> {
        tracing::debug!(method = %req.method(), path = req.uri().path(), "accounts request");
        let method = req.method().clone();
        match (req.uri().path(), method) {
            (AUTH_PATH, Method::GET) => authorize::handle(&req, self),
            (AUTH_PATH, Method::POST) if self.consent_form => authorize::submit(req, self).await,
            (TOKEN_PATH, Method::POST) => token::handle(req, self).await,
            (REVOKE_PATH, Method::POST) => revoke::handle(req, self).await,
            (AUTH_PATH, _) if self.consent_form => method_not_allowed("GET, POST"),
            (AUTH_PATH, _) => method_not_allowed("GET"),
            (TOKEN_PATH | REVOKE_PATH, _) => method_not_allowed("POST"),
            _ => html_page(StatusCode::NOT_FOUND, "Not found"),
        }
    }
}

// === impl State ===

impl State {
    /// Appends to the request log, dropping the oldest entry when it is full.
    fn record(&mut self, record: TokenRequestRecord) {
        if self.requests.len() >= REQUEST_LOG_CAPACITY {
            self.requests.pop_front();
        }
        self.requests.push_back(record);
    }

    /// Takes one failure from the `fail_next` queue.
    fn take_failure(&mut self) -> Option<Failure> {
        let (remaining, failure) = self.pending_failures.front_mut()?;
        let failure = *failure;
        *remaining = remaining.saturating_sub(1);
        if *remaining == 0 {
            self.pending_failures.pop_front();
        }
        Some(failure)
    }

    /// Mints an access token, forgetting tokens that have expired.
    fn mint(
        &mut self,
        scopes: Vec<String>,
        parent: Option<String>,
        now: Instant,
    ) -> (String, Duration) {
        self.access_tokens.retain(|_, t| t.expires_at > now);
        let token = new_token();
        let lifetime = self.token_lifetime;
        if self.mint_log.len() >= REQUEST_LOG_CAPACITY {
            self.mint_log.pop_front();
        }
        self.mint_log.push_back(MintRecord {
            access_token: token.clone(),
            refresh_token: parent.clone(),
            minted_at: now,
            expires_at: now + lifetime,
            wall: SystemTime::now(),
        });
        self.access_tokens.insert(
            token.clone(),
            AccessToken {
                scopes,
                expires_at: now + lifetime,
                parent,
            },
        );
        self.mint_count += 1;
        (token, lifetime)
    }

    /// Revokes a refresh token and its access tokens; returns whether it was live.
    fn revoke_refresh_token(&mut self, token: &str) -> bool {
        if self.refresh_tokens.remove(token).is_none() {
            return false;
        }
        self.access_tokens
            .retain(|_, t| t.parent.as_deref() != Some(token));
        true
    }
}

// === helpers ===

/// Returns a fresh random value shaped like Zoho's tokens and codes:
/// `1000.` + 32 lowercase hex + `.` + 32 lowercase hex.
fn new_token() -> String {
    let mut rng = rand::rng();
    let first: [u8; 16] = rng.random();
    let second: [u8; 16] = rng.random();
    format!("1000.{}.{}", hex(&first), hex(&second))
}

/// Lowercase hexadecimal.
fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// Copies scopes given by a caller, skipping empty ones.
fn owned_scopes(scopes: &[&str]) -> Vec<String> {
    scopes
        .iter()
        .filter(|s| !s.is_empty())
        .map(|&s| s.to_owned())
        .collect()
}

/// A JSON response that must not be cached.
fn json<T: Serialize>(status: StatusCode, value: &T) -> Response<Body> {
    no_store(http::json(status, value))
}

/// A small HTML page; `title` is always a static string, never request input.
fn html_page(status: StatusCode, title: &'static str) -> Response<Body> {
    let code = status.as_u16();
    let body = format!(
        "<!DOCTYPE html>\n<html><head><title>{code} {title}</title></head>\
         <body><h1>{code} {title}</h1><hr><p>Zoho accounts sandbox</p></body></html>\n"
    );
    no_store(http::response(status, HTML_CONTENT_TYPE, Bytes::from(body)))
}

/// `405` with an `Allow` header.
fn method_not_allowed(allow: &'static str) -> Response<Body> {
    with_allow(
        html_page(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed"),
        allow,
    )
}

/// The answer to a body that could not be read.
fn body_error_response(error: &BodyError) -> Response<Body> {
    match error {
        BodyError::TooLarge { .. } => html_page(StatusCode::PAYLOAD_TOO_LARGE, "Request too large"),
        BodyError::Read => html_page(StatusCode::BAD_REQUEST, "Bad request"),
    }
}

/// Adds `Cache-Control: no-store`, which every answer of the accounts server carries
/// (RFC 6749 §5.1 requires it on token responses).
fn no_store(mut response: Response<Body>) -> Response<Body> {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    use http_body_util::{BodyExt, Full};
    use hyper_util::rt::TokioExecutor;
    use reqwest::header::{CONTENT_TYPE, LOCATION};
    use serde_json::Value;
    use tokio::net::TcpStream;

    use crate::http::testing::{assert_stops_serving, raw_exchange, test_tls};

    #[tokio::test]
    async fn tls_serves_https_localhost() {
        let (config, ca_pem) = test_tls();
        let emu = start(AccountsOptions {
            tls: Some(config),
            ..AccountsOptions::default()
        })
        .await;
        assert_eq!(
            emu.url(),
            format!("https://localhost:{}", emu.addr().port())
        );
        let https = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap())
            .resolve("localhost", emu.addr())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let token = emu.control().issue_refresh_token(&[SCOPE]);
        let mut form = creds();
        form.extend([
            ("grant_type", "refresh_token".to_owned()),
            ("refresh_token", token.clone()),
        ]);

        // A plain-HTTP client on the TLS port is just dropped.
        let answer = raw_exchange(
            emu.addr(),
            b"POST /oauth/v2/token HTTP/1.1\r\nHost: x\r\n\r\n",
        )
        .await;
        assert!(!answer.starts_with("HTTP/"), "{answer}");

        let resp = https
            .post(format!("{}{TOKEN_PATH}", emu.url()))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let body: Value = resp.json().await.unwrap();
        assert!(body["access_token"].is_string(), "{body}");

        // The consent redirect names the https server.
        let resp = https
            .get(format!("{}{AUTH_PATH}", emu.url()))
            .query(&[
                ("client_id", "1000.SANDBOXCLIENT"),
                ("response_type", "code"),
                ("redirect_uri", "https://app.example/cb"),
            ])
            .send()
            .await
            .unwrap();
        let location = resp.headers()[LOCATION].to_str().unwrap();
        assert!(location.ends_with(&format!(
            "accounts-server=https%3A%2F%2Flocalhost%3A{}",
            emu.addr().port()
        )));
        emu.shutdown().await;
    }

    #[tokio::test]
    async fn serves_http2_with_prior_knowledge() {
        use hyper_util::client::legacy::Client;
        let emu = start(AccountsOptions::default()).await;
        let token = emu.control().issue_refresh_token(&[SCOPE]);
        let h2: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new())
            .http2_only(true)
            .build_http();
        let form = format!(
            "client_id=1000.SANDBOXCLIENT&client_secret=sandbox-secret&grant_type=refresh_token&refresh_token={token}"
        );
        let req = Request::post(format!("{}{TOKEN_PATH}", emu.url()))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Full::new(Bytes::from(form)))
            .unwrap();
        let resp = h2.request(req).await.unwrap();
        assert_eq!(resp.version(), hyper::Version::HTTP_2);
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert!(body["access_token"].is_string(), "{body}");
    }

    #[tokio::test]
    async fn unknown_paths_and_wrong_methods() {
        let emu = start(AccountsOptions::default()).await;
        let resp = client()
            .get(format!("{}/nope", emu.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
        let resp = client()
            .get(format!("{}{TOKEN_PATH}", emu.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(resp.headers()["allow"], "POST");
        let resp = client()
            .get(format!("{}{REVOKE_PATH}", emu.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
        let resp = client()
            .post(format!("{}{AUTH_PATH}", emu.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(resp.headers()["allow"], "GET");
        assert_eq!(emu.control().token_requests(), 0);
    }

    #[tokio::test]
    async fn garbage_and_oversized_requests_never_panic() {
        let emu = start(AccountsOptions::default()).await;
        let control = emu.control();
        let url = format!("{}{TOKEN_PATH}", emu.url());
        let form = "application/x-www-form-urlencoded";

        // Declared too large.
        let resp = client()
            .post(&url)
            .header(CONTENT_TYPE, form)
            .body(vec![b'a'; MAX_BODY_BYTES + 1])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
        // Exactly at the limit is read.
        let resp = client()
            .post(&url)
            .header(CONTENT_TYPE, form)
            .body(vec![b'a'; MAX_BODY_BYTES])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        // Too large, but chunked, so only counting finds out.
        let mut chunked = format!(
            "POST {TOKEN_PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: {form}\r\n\
             Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n",
            MAX_BODY_BYTES + 10
        )
        .into_bytes();
        chunked.extend(vec![b'a'; MAX_BODY_BYTES + 10]);
        chunked.extend(b"\r\n0\r\n\r\n");
        let answer = raw_exchange(emu.addr(), &chunked).await;
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
        // A lying Content-Length.
        let answer = raw_exchange(
            emu.addr(),
            format!("POST {TOKEN_PATH} HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n")
                .as_bytes(),
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
        // Not HTTP at all.
        let answer = raw_exchange(emu.addr(), b"\x00\xff\x16\x03 garbage\r\n\r\n").await;
        assert!(!answer.contains("200 OK"), "{answer}");
        // Invalid UTF-8, stray percent signs and odd Basic headers.
        for (content_type, body, auth) in [
            (
                form,
                b"\xff\xfe=%%%&&==&grant_type=%E0%A4".to_vec(),
                "Basic %%%",
            ),
            (form, b"client_id=%ZZ&code".to_vec(), "Basic Zg="),
            ("application/json", b"{\"grant_type\":".to_vec(), "Basic"),
            ("", vec![0; 100], "Bearer x"),
        ] {
            let resp = client()
                .post(&url)
                .header(CONTENT_TYPE, content_type)
                .header("authorization", auth)
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::OK);
            let body: Value = resp.json().await.unwrap();
            assert_eq!(body["error"], "invalid_client");
        }
        let resp = client()
            .get(format!("{}{AUTH_PATH}?%ff%%=&&client_id", emu.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);

        // Still serving, and everything that reached the token endpoint was counted.
        let token = control.issue_refresh_token(&[SCOPE]);
        let (_, body) = refresh(&emu, &token).await;
        assert!(body["access_token"].is_string());
        assert!(control.token_requests() >= 8);
    }

    #[tokio::test]
    async fn shutdown_and_drop_stop_the_server() {
        let emu = start(AccountsOptions::default()).await;
        let addr = emu.addr();
        emu.shutdown().await;
        assert!(TcpStream::connect(addr).await.is_err());

        let emu = start(AccountsOptions::default()).await;
        let addr = emu.addr();
        drop(emu);
        assert_stops_serving(addr).await;
    }

    #[test]
    fn tokens_look_like_zoho_tokens() {
        let a = new_token();
        assert_token_shape(&a);
        assert_ne!(a, new_token());
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
    }

    #[test]
    fn options_debug_redacts_the_secret() {
        let opts = AccountsOptions {
            client_secret: "very-secret-value".to_owned(),
            ..AccountsOptions::default()
        };
        let debug = format!("{opts:?}");
        assert!(!debug.contains("very-secret-value"));
        assert!(debug.contains(crate::REDACTED));
    }
}
