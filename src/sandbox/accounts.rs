//! An in-memory emulator of Zoho's accounts server (`accounts.zoho.com`).
//!
//! [`AccountsEmulator::start`] binds a TCP socket and serves, over HTTP/1.1 and HTTP/2
//! (plain, or TLS when [`AccountsOptions::tls`] is set), the three endpoints an OAuth client
//! of Zoho needs. [`AccountsControl`] drives and inspects the emulator from the same process:
//! it issues Self Client grant codes and refresh tokens, revokes them, injects outages and
//! failures (of the token endpoint and, separately, of the revocation endpoint), keeps a log
//! of the tokens revoked through the endpoint, and validates access tokens for the other
//! emulators.
//!
//! # Endpoints
//!
//! | Method and path | Behaviour |
//! | --- | --- |
//! | `GET /oauth/v2/auth` | Consents at once (the sandbox has no user): `302` to `redirect_uri` with `code`, `state`, `location` and `accounts-server`. Bad requests get a `400` HTML page and no redirect. |
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
//! - Token-endpoint errors (`invalid_client`, `invalid_code`, `invalid_redirect_uri`,
//!   `unsupported_grant_type`) are JSON bodies with **HTTP 200**. An unknown or revoked
//!   refresh token is `invalid_code`, as Zoho says.
//! - A refresh token mints at most [`AccountsOptions::max_mints_per_10m`] access tokens in a
//!   rolling 10-minute window; beyond that the endpoint answers Zoho's throttle body
//!   (`"error":"Access Denied"`, `"status":"failure"`) with HTTP 200.
//! - `expires_in` is in seconds, or, with [`AccountsOptions::legacy_expiry_fields`], Zoho's
//!   legacy pair: `expires_in` in milliseconds plus `expires_in_sec` in seconds.
//! - Revoking an unknown token answers `400 {"status":"failure","error":"invalid_token"}`.
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

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use rand::Rng;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use super::http::{
    self, Body, BodyError, Handler, Listener, Server, content_type, is_form, query_params,
    read_body, with_allow,
};

/// Path of the consent (authorization) endpoint.
pub const AUTH_PATH: &str = "/oauth/v2/auth";
/// Path of the token endpoint.
pub const TOKEN_PATH: &str = "/oauth/v2/token";
/// Path of the revocation endpoint.
pub const REVOKE_PATH: &str = "/oauth/v2/token/revoke";

/// The `api_domain` every successful token response carries (Zoho's US value).
pub const API_DOMAIN: &str = "https://www.zohoapis.com";

/// The rolling window over which [`AccountsOptions::max_mints_per_10m`] counts mints.
pub const MINT_WINDOW: Duration = Duration::from_secs(600);

/// The largest request body the emulator reads; larger bodies get `413`.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// How many [`TokenRequestRecord`]s are kept; older ones are dropped first.
pub const REQUEST_LOG_CAPACITY: usize = 10_000;

/// Zoho's (English) text for a throttled token request.
const THROTTLE_DESCRIPTION: &str =
    "You have made too many requests continuously. Please try again after some time.";

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
    /// Whether token responses use Zoho's legacy pair `"expires_in": <milliseconds>,
    /// "expires_in_sec": <seconds>` instead of `"expires_in": <seconds>`. **(default: `false`)**
    pub legacy_expiry_fields: bool,
    /// Access tokens a refresh token may mint in a rolling 10-minute window.
    /// **(default: `10`)**
    pub max_mints_per_10m: u32,
    /// The `location` (data centre) returned on the consent redirect. **(default: `us`)**
    pub location: String,
    /// Lifetime of grant codes, from both the browser flow and the Self Client.
    /// **(default: 120 s)**
    pub grant_code_lifetime: Duration,
    /// TLS configuration; `None` serves plain HTTP. Set its `alpn_protocols` to
    /// `h2` and `http/1.1` to offer HTTP/2 over TLS. **(default: `None`)**
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

/// A running accounts-server emulator.
///
/// The server task stops on [`AccountsEmulator::shutdown`] or when the emulator is dropped.
pub struct AccountsEmulator {
    server: Server,
    control: AccountsControl,
}

/// A handle that drives and inspects a running [`AccountsEmulator`].
///
/// Cloning is cheap: all clones share the emulator's state.
#[derive(Clone)]
pub struct AccountsControl {
    shared: Arc<Shared>,
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

/// State shared by the server task and every [`AccountsControl`].
struct Shared {
    client_id: String,
    client_secret_digest: [u8; 32],
    legacy_expiry_fields: bool,
    max_mints_per_10m: u32,
    location: String,
    grant_code_lifetime: Duration,
    url: String,
    state: Mutex<State>,
}

/// The mutable part of the emulator. Never held across an `.await`.
#[derive(Default)]
struct State {
    token_lifetime: Duration,
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

/// Request parameters merged from the query string and a form body.
#[derive(Default)]
struct Params {
    values: HashMap<String, String>,
    in_query: bool,
    in_body: bool,
    content_type: Option<String>,
}

/// The JSON body of a successful token response.
#[derive(Serialize)]
struct TokenResponse<'a> {
    access_token: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<&'a str>,
    scope: String,
    api_domain: &'static str,
    token_type: &'static str,
    expires_in: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_in_sec: Option<u64>,
}

/// What the token endpoint decided, computed under the lock and rendered after it.
enum TokenOutcome {
    Outage(StatusCode),
    Failure(Failure),
    Error(&'static str),
    Throttled,
    Issued {
        access_token: String,
        refresh_token: Option<String>,
        scopes: Vec<String>,
        lifetime: Duration,
    },
}

// === impl AccountsOptions ===

impl Default for AccountsOptions {
    fn default() -> Self {
        Self {
            client_id: "1000.SANDBOXCLIENT".to_owned(),
            client_secret: "sandbox-secret".to_owned(),
            token_lifetime: Duration::from_secs(3600),
            legacy_expiry_fields: false,
            max_mints_per_10m: 10,
            location: "us".to_owned(),
            grant_code_lifetime: Duration::from_secs(120),
            tls: None,
        }
    }
}

impl fmt::Debug for AccountsOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccountsOptions")
            .field("client_id", &self.client_id)
            .field("client_secret", &crate::secret::REDACTED)
            .field("token_lifetime", &self.token_lifetime)
            .field("legacy_expiry_fields", &self.legacy_expiry_fields)
            .field("max_mints_per_10m", &self.max_mints_per_10m)
            .field("location", &self.location)
            .field("grant_code_lifetime", &self.grant_code_lifetime)
            .field("tls", &self.tls.is_some())
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
            client_secret_digest: Sha256::digest(opts.client_secret.as_bytes()).into(),
            legacy_expiry_fields: opts.legacy_expiry_fields,
            max_mints_per_10m: opts.max_mints_per_10m,
            location: opts.location,
            grant_code_lifetime: opts.grant_code_lifetime,
            url: listener.url(),
            state: Mutex::new(State {
                token_lifetime: opts.token_lifetime,
                ..State::default()
            }),
        });
        let server = listener.serve(Arc::clone(&shared));
        tracing::debug!(%addr, "accounts emulator listening");
        Ok(Self {
            server,
            control: AccountsControl { shared },
        })
    }

    /// Returns the bound socket address.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// Returns the base URL, without a trailing slash: `http://127.0.0.1:PORT`, or
    /// `https://localhost:PORT` with TLS.
    pub fn url(&self) -> String {
        self.control.shared.url.clone()
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
            .field("url", &self.control.shared.url)
            .finish()
    }
}

// === impl AccountsControl ===

impl AccountsControl {
    /// Issues a Self Client grant code for `scopes`.
    ///
    /// The code is single-use, valid for [`AccountsOptions::grant_code_lifetime`], needs no
    /// `redirect_uri`, and its exchange returns a refresh token.
    pub fn issue_grant_code(&self, scopes: &[&str]) -> String {
        let now = Instant::now();
        let code = new_token();
        let mut state = self.shared.lock();
        state.grant_codes.retain(|_, c| c.expires_at > now);
        state.grant_codes.insert(
            code.clone(),
            GrantCode {
                scopes: owned_scopes(scopes),
                redirect_uri: None,
                offline: true,
                expires_at: now + self.shared.grant_code_lifetime,
            },
        );
        code
    }

    /// Registers a new refresh token for `scopes`, as if a grant code had been exchanged.
    pub fn issue_refresh_token(&self, scopes: &[&str]) -> String {
        let token = new_token();
        self.shared.lock().refresh_tokens.insert(
            token.clone(),
            RefreshToken {
                scopes: owned_scopes(scopes),
                mints: VecDeque::new(),
            },
        );
        token
    }

    /// Revokes a refresh token and every access token minted from it, as if revoked in
    /// Zoho's console. Returns whether the token was live.
    pub fn revoke_refresh_token(&self, token: &str) -> bool {
        self.shared.lock().revoke_refresh_token(token)
    }

    /// Returns how many access tokens were minted, by either grant.
    pub fn mint_count(&self) -> u64 {
        self.shared.lock().mint_count
    }

    /// Returns how many `POST`s the token endpoint received, successful or not.
    pub fn token_requests(&self) -> u64 {
        self.shared.lock().token_requests
    }

    /// Starts (`Some(status)`) or ends (`None`) an outage of the token endpoint.
    ///
    /// During an outage every token request is answered with `status` and an HTML body, as a
    /// load balancer would; pending [`fail_next`](Self::fail_next) failures are kept for
    /// later. A value that is not a valid HTTP status code is served as `503`.
    pub fn set_outage(&self, status: Option<u16>) {
        self.shared.lock().outage = status;
    }

    /// Starts (`Some(status)`) or ends (`None`) an outage of the revocation endpoint
    /// (`POST /oauth/v2/token/revoke`), independent of [`set_outage`](Self::set_outage).
    ///
    /// During it every revocation request is answered with `status` and an HTML body, and
    /// nothing is revoked. A value that is not a valid HTTP status code is served as `503`.
    pub fn set_revoke_outage(&self, status: Option<u16>) {
        self.shared.lock().revoke_outage = status;
    }

    /// Returns the tokens (refresh or access) that the revocation endpoint revoked, oldest
    /// first (at most [`REQUEST_LOG_CAPACITY`] entries).
    ///
    /// Only revocations that succeeded are listed: not unknown tokens, not requests refused
    /// during a [`set_revoke_outage`](Self::set_revoke_outage), and not
    /// [`revoke_refresh_token`](Self::revoke_refresh_token), which stands for Zoho's console.
    /// The log is the emulator's own state and holds tokens in clear, for tests.
    pub fn revocations(&self) -> Vec<String> {
        self.shared.lock().revocations.iter().cloned().collect()
    }

    /// Makes the next `n` token requests fail as `failure` says.
    ///
    /// The failing requests still count in [`token_requests`](Self::token_requests) and the
    /// request log. Calls queue up: `fail_next(1, Throttle)` then `fail_next(2, ServerError)`
    /// fails the next three requests in that order. See also
    /// [`clear_failures`](Self::clear_failures).
    pub fn fail_next(&self, n: u32, failure: Failure) {
        if n > 0 {
            self.shared.lock().pending_failures.push_back((n, failure));
        }
    }

    /// Drops every failure queued by [`fail_next`](Self::fail_next).
    pub fn clear_failures(&self) {
        self.shared.lock().pending_failures.clear();
    }

    /// Sets the lifetime of access tokens minted from now on.
    pub fn set_token_lifetime(&self, d: Duration) {
        self.shared.lock().token_lifetime = d;
    }

    /// Returns what is known about `token` while it is issued, unexpired and not revoked.
    pub fn validate_access_token(&self, token: &str) -> Option<AccessTokenInfo> {
        let now = Instant::now();
        let state = self.shared.lock();
        let access = state.access_tokens.get(token)?;
        let expires_in = access.expires_at.checked_duration_since(now)?;
        if expires_in.is_zero() {
            return None;
        }
        Some(AccessTokenInfo {
            scopes: access.scopes.clone(),
            expires_in,
        })
    }

    /// Returns the log of token-endpoint requests, oldest first (at most
    /// [`REQUEST_LOG_CAPACITY`] entries).
    pub fn requests(&self) -> Vec<TokenRequestRecord> {
        self.shared.lock().requests.iter().cloned().collect()
    }

    /// Returns the emulator's base URL, as [`AccountsEmulator::url`] does.
    pub fn url(&self) -> String {
        self.shared.url.clone()
    }
}

impl fmt::Debug for AccountsControl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccountsControl")
            .field("url", &self.shared.url)
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

    /// Whether `id` and `secret` are the registered client's credentials.
    fn client_matches(&self, id: &str, secret: &str) -> bool {
        let secret_digest: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
        let secret_ok = constant_time_eq(&secret_digest, &self.client_secret_digest);
        id == self.client_id && secret_ok
    }

    /// Decides the answer to a token request. Runs entirely under the lock.
    fn token_outcome(&self, params: &Params, authorization: Option<&HeaderValue>) -> TokenOutcome {
        let now = Instant::now();
        let mut state = self.lock();
        state.token_requests += 1;
        state.record(TokenRequestRecord {
            grant_type: params.get("grant_type").unwrap_or_default().to_owned(),
            params_in_body: params.in_body,
            params_in_query: params.in_query,
            content_type: params.content_type.clone(),
        });

        if let Some(status) = state.outage {
            return TokenOutcome::Outage(
                StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
            );
        }
        if let Some(failure) = state.take_failure() {
            return TokenOutcome::Failure(failure);
        }

        let basic = authorization.and_then(basic_credentials);
        let (basic_id, basic_secret) = match &basic {
            Some((id, secret)) => (Some(id.as_str()), Some(secret.as_str())),
            None => (None, None),
        };
        let client_id = params.get("client_id").or(basic_id);
        let client_secret = params.get("client_secret").or(basic_secret);
        match (client_id, client_secret) {
            (Some(id), Some(secret)) if self.client_matches(id, secret) => {}
            _ => return TokenOutcome::Error("invalid_client"),
        }

        match params.get("grant_type") {
            Some("authorization_code") => self.exchange_code(&mut state, params, now),
            Some("refresh_token") => self.refresh(&mut state, params, now),
            _ => TokenOutcome::Error("unsupported_grant_type"),
        }
    }

    /// The `authorization_code` grant.
    fn exchange_code(&self, state: &mut State, params: &Params, now: Instant) -> TokenOutcome {
        let Some(code) = params.get("code") else {
            return TokenOutcome::Error("invalid_code");
        };
        let Some(grant) = state.grant_codes.get(code) else {
            return TokenOutcome::Error("invalid_code");
        };
        if grant.expires_at <= now {
            state.grant_codes.remove(code);
            return TokenOutcome::Error("invalid_code");
        }
        if let Some(issued_for) = &grant.redirect_uri
            && params.get("redirect_uri") != Some(issued_for.as_str())
        {
            // Not consumed: the client may retry with the right redirect_uri.
            return TokenOutcome::Error("invalid_redirect_uri");
        }
        let Some(grant) = state.grant_codes.remove(code) else {
            return TokenOutcome::Error("invalid_code");
        };
        let refresh_token = grant.offline.then(|| {
            let token = new_token();
            state.refresh_tokens.insert(
                token.clone(),
                RefreshToken {
                    scopes: grant.scopes.clone(),
                    mints: VecDeque::new(),
                },
            );
            token
        });
        // Tokens minted by the exchange belong to the new refresh token: revoking it kills them.
        let (access_token, lifetime) = state.mint(grant.scopes.clone(), refresh_token.clone(), now);
        TokenOutcome::Issued {
            access_token,
            refresh_token,
            scopes: grant.scopes,
            lifetime,
        }
    }

    /// The `refresh_token` grant, with Zoho's mint limit.
    fn refresh(&self, state: &mut State, params: &Params, now: Instant) -> TokenOutcome {
        let Some(token) = params.get("refresh_token") else {
            return TokenOutcome::Error("invalid_code");
        };
        let Some(refresh) = state.refresh_tokens.get_mut(token) else {
            return TokenOutcome::Error("invalid_code");
        };
        if !record_mint(&mut refresh.mints, now, self.max_mints_per_10m) {
            return TokenOutcome::Throttled;
        }
        let scopes = refresh.scopes.clone();
        let (access_token, lifetime) = state.mint(scopes.clone(), Some(token.to_owned()), now);
        TokenOutcome::Issued {
            access_token,
            refresh_token: None,
            scopes,
            lifetime,
        }
    }

    /// Renders a token outcome as Zoho would.
    fn token_response(&self, outcome: TokenOutcome) -> Response<Body> {
        match outcome {
            TokenOutcome::Outage(status) => html_page(status, "Service unavailable"),
            TokenOutcome::Failure(Failure::Throttle) | TokenOutcome::Throttled => {
                json(StatusCode::OK, &throttle_body())
            }
            TokenOutcome::Failure(Failure::InvalidClient) => error_json("invalid_client"),
            TokenOutcome::Failure(Failure::InvalidCode) => error_json("invalid_code"),
            TokenOutcome::Failure(Failure::ServerError) => {
                html_page(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")
            }
            TokenOutcome::Error(code) => error_json(code),
            TokenOutcome::Issued {
                access_token,
                refresh_token,
                scopes,
                lifetime,
            } => {
                let (expires_in, expires_in_sec) = if self.legacy_expiry_fields {
                    let millis = u64::try_from(lifetime.as_millis()).unwrap_or(u64::MAX);
                    (millis, Some(lifetime.as_secs()))
                } else {
                    (lifetime.as_secs(), None)
                };
                json(
                    StatusCode::OK,
                    &TokenResponse {
                        access_token: &access_token,
                        refresh_token: refresh_token.as_deref(),
                        scope: scopes.join(" "),
                        api_domain: API_DOMAIN,
                        token_type: "Bearer",
                        expires_in,
                        expires_in_sec,
                    },
                )
            }
        }
    }
}

impl Handler for Shared {
    /// Dispatches a request to its endpoint.
    async fn handle(&self, req: Request<Incoming>) -> Response<Body> {
        tracing::debug!(method = %req.method(), path = req.uri().path(), "accounts request");
        let method = req.method().clone();
        match (req.uri().path(), method) {
            (AUTH_PATH, Method::GET) => handle_auth(&req, self),
            (TOKEN_PATH, Method::POST) => handle_token(req, self).await,
            (REVOKE_PATH, Method::POST) => handle_revoke(req, self).await,
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

// === impl Params ===

impl Params {
    /// Returns a parameter's value.
    fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }
}

// === endpoints ===

/// `GET /oauth/v2/auth`: consents at once and redirects with a browser-flow code.
fn handle_auth(req: &Request<Incoming>, shared: &Shared) -> Response<Body> {
    let query = query_params(req.uri().query());
    let get = |name: &str| query.get(name).map(String::as_str);

    if get("client_id") != Some(shared.client_id.as_str()) {
        return html_page(StatusCode::BAD_REQUEST, "Invalid client");
    }
    if get("response_type") != Some("code") {
        return html_page(StatusCode::BAD_REQUEST, "Invalid response type");
    }
    let Some(redirect_uri) = get("redirect_uri") else {
        return html_page(StatusCode::BAD_REQUEST, "Invalid redirect URI");
    };
    let Ok(mut location) = url::Url::parse(redirect_uri) else {
        return html_page(StatusCode::BAD_REQUEST, "Invalid redirect URI");
    };
    if location.cannot_be_a_base() {
        return html_page(StatusCode::BAD_REQUEST, "Invalid redirect URI");
    }

    let scopes = parse_scopes(get("scope").unwrap_or_default());
    let offline = get("access_type").is_some_and(|a| a.eq_ignore_ascii_case("offline"));
    let code = new_token();
    let now = Instant::now();
    {
        let mut state = shared.lock();
        state.grant_codes.retain(|_, c| c.expires_at > now);
        state.grant_codes.insert(
            code.clone(),
            GrantCode {
                scopes,
                redirect_uri: Some(redirect_uri.to_owned()),
                offline,
                expires_at: now + shared.grant_code_lifetime,
            },
        );
    }

    {
        let mut pairs = location.query_pairs_mut();
        pairs.append_pair("code", &code);
        if let Some(state) = get("state") {
            pairs.append_pair("state", state);
        }
        pairs.append_pair("location", &shared.location);
        pairs.append_pair("accounts-server", &shared.url);
    }
    match HeaderValue::from_str(location.as_str()) {
        Ok(value) => {
            let mut response = html_page(StatusCode::FOUND, "Redirecting");
            response.headers_mut().insert(header::LOCATION, value);
            response
        }
        Err(_) => html_page(StatusCode::BAD_REQUEST, "Invalid redirect URI"),
    }
}

/// `POST /oauth/v2/token`.
async fn handle_token(req: Request<Incoming>, shared: &Shared) -> Response<Body> {
    let authorization = req.headers().get(header::AUTHORIZATION).cloned();
    let params = match read_params(req).await {
        Ok(params) => params,
        Err((error, content_type)) => {
            let mut state = shared.lock();
            state.token_requests += 1;
            state.record(TokenRequestRecord {
                grant_type: String::new(),
                params_in_body: false,
                params_in_query: false,
                content_type,
            });
            return body_error_response(&error);
        }
    };
    let outcome = shared.token_outcome(&params, authorization.as_ref());
    shared.token_response(outcome)
}

/// `POST /oauth/v2/token/revoke`.
async fn handle_revoke(req: Request<Incoming>, shared: &Shared) -> Response<Body> {
    let params = match read_params(req).await {
        Ok(params) => params,
        Err((error, _)) => return body_error_response(&error),
    };
    let mut state = shared.lock();
    if let Some(status) = state.revoke_outage {
        drop(state);
        return html_page(
            StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
            "Service unavailable",
        );
    }
    let revoked = params.get("token").is_some_and(|token| {
        let revoked =
            state.revoke_refresh_token(token) || state.access_tokens.remove(token).is_some();
        if revoked {
            if state.revocations.len() >= REQUEST_LOG_CAPACITY {
                state.revocations.pop_front();
            }
            state.revocations.push_back(token.to_owned());
        }
        revoked
    });
    drop(state);
    if revoked {
        json(StatusCode::OK, &serde_json::json!({ "status": "success" }))
    } else {
        json(
            StatusCode::BAD_REQUEST,
            &serde_json::json!({ "status": "failure", "error": "invalid_token" }),
        )
    }
}

// === helpers ===

/// Reads the query string and, for a form-encoded request, the body (at most
/// [`MAX_BODY_BYTES`]). Body parameters override query parameters of the same name.
///
/// On error, also returns the request's content type so that it can still be logged.
async fn read_params(req: Request<Incoming>) -> Result<Params, (BodyError, Option<String>)> {
    let (parts, body) = req.into_parts();
    let mut params = Params {
        content_type: content_type(&parts.headers).map(str::to_owned),
        ..Params::default()
    };
    for (name, value) in
        url::form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes())
    {
        params.in_query = true;
        params.values.insert(name.into_owned(), value.into_owned());
    }

    let body = match read_body(&parts.headers, body, MAX_BODY_BYTES).await {
        Ok(body) => body,
        Err(error) => return Err((error, params.content_type)),
    };
    if params.content_type.as_deref().is_some_and(is_form) {
        for (name, value) in url::form_urlencoded::parse(&body) {
            params.in_body = true;
            params.values.insert(name.into_owned(), value.into_owned());
        }
    }
    Ok(params)
}

/// Records one mint in a refresh token's rolling window, unless `max` mints were already made
/// in the last [`MINT_WINDOW`]. Returns whether the mint is allowed.
///
/// Entries older than the window are forgotten, so the list never holds more than `max`.
fn record_mint(mints: &mut VecDeque<Instant>, now: Instant, max: u32) -> bool {
    while mints
        .front()
        .is_some_and(|&at| now.saturating_duration_since(at) >= MINT_WINDOW)
    {
        mints.pop_front();
    }
    if mints.len() >= max as usize {
        return false;
    }
    mints.push_back(now);
    true
}

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

/// Splits a `scope` parameter, which Zoho accepts comma- or space-separated.
fn parse_scopes(scope: &str) -> Vec<String> {
    scope
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Copies scopes given by a caller, skipping empty ones.
fn owned_scopes(scopes: &[&str]) -> Vec<String> {
    scopes
        .iter()
        .filter(|s| !s.is_empty())
        .map(|&s| s.to_owned())
        .collect()
}

/// Extracts `(client_id, client_secret)` from an `Authorization: Basic` header.
fn basic_credentials(value: &HeaderValue) -> Option<(String, String)> {
    let value = value.to_str().ok()?.trim();
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(decode_base64(encoded.trim())?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

/// Decodes standard base64 (RFC 4648 §4); the `=` padding is optional. Returns `None` on
/// any invalid input.
fn decode_base64(input: &str) -> Option<Vec<u8>> {
    let data = input.trim_end_matches('=');
    let padding = input.len() - data.len();
    if padding > 2 || data.len() % 4 == 1 || (padding > 0 && !input.len().is_multiple_of(4)) {
        return None;
    }
    let mut out = Vec::with_capacity(data.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for &byte in data.as_bytes() {
        let sextet = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(sextet);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(((acc >> bits) & 0xff) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// Compares two equal-length byte strings without an early exit.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Zoho's throttle answer.
fn throttle_body() -> serde_json::Value {
    serde_json::json!({
        "error_description": THROTTLE_DESCRIPTION,
        "error": "Access Denied",
        "status": "failure",
    })
}

/// `{"error": code}` with HTTP 200, as Zoho's token endpoint answers errors.
fn error_json(code: &str) -> Response<Body> {
    json(StatusCode::OK, &serde_json::json!({ "error": code }))
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
    use super::*;

    use http_body_util::{BodyExt, Full};
    use hyper_util::rt::TokioExecutor;
    use reqwest::header::{CONTENT_TYPE, LOCATION};
    use serde_json::Value;
    use tokio::net::TcpStream;

    use crate::sandbox::http::JSON_CONTENT_TYPE;
    use crate::sandbox::http::testing::{assert_stops_serving, localhost, raw_exchange, test_tls};

    const SCOPE: &str = "ZohoMeeting.meeting.READ";

    async fn start(opts: AccountsOptions) -> AccountsEmulator {
        AccountsEmulator::start(localhost(), opts).await.unwrap()
    }

    fn client() -> reqwest::Client {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    }

    fn creds() -> Vec<(&'static str, String)> {
        let opts = AccountsOptions::default();
        vec![
            ("client_id", opts.client_id),
            ("client_secret", opts.client_secret),
        ]
    }

    /// POSTs a form to the token endpoint; returns the status and the JSON body.
    async fn post_token(emu: &AccountsEmulator, form: &[(&str, &str)]) -> (StatusCode, Value) {
        let mut params: Vec<(&str, String)> = creds();
        params.extend(form.iter().map(|&(k, v)| (k, v.to_owned())));
        let resp = client()
            .post(format!("{}{TOKEN_PATH}", emu.url()))
            .form(&params)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        assert_eq!(resp.headers()[CONTENT_TYPE], JSON_CONTENT_TYPE);
        (status, resp.json().await.unwrap())
    }

    async fn refresh(emu: &AccountsEmulator, token: &str) -> (StatusCode, Value) {
        post_token(
            emu,
            &[("grant_type", "refresh_token"), ("refresh_token", token)],
        )
        .await
    }

    fn assert_token_shape(token: &str) {
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3, "{token}");
        assert_eq!(parts[0], "1000");
        for part in &parts[1..] {
            assert_eq!(part.len(), 32);
            assert!(
                part.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            );
        }
    }

    /// Runs the consent step and returns the redirect's query pairs.
    async fn consent(emu: &AccountsEmulator, extra: &[(&str, &str)]) -> HashMap<String, String> {
        let mut query = vec![
            ("client_id", AccountsOptions::default().client_id),
            ("response_type", "code".to_owned()),
            ("redirect_uri", "http://localhost:9/cb".to_owned()),
        ];
        query.extend(extra.iter().map(|&(k, v)| (k, v.to_owned())));
        let resp = client()
            .get(format!("{}{AUTH_PATH}", emu.url()))
            .query(&query)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::FOUND);
        let location = url::Url::parse(resp.headers()[LOCATION].to_str().unwrap()).unwrap();
        location.query_pairs().into_owned().collect()
    }

    #[tokio::test]
    async fn auth_redirect_carries_code_state_location_and_server_and_code_exchanges_once() {
        let emu = start(AccountsOptions::default()).await;
        let resp = client()
            .get(format!("{}{AUTH_PATH}", emu.url()))
            .query(&[
                ("client_id", "1000.SANDBOXCLIENT"),
                ("response_type", "code"),
                ("redirect_uri", "http://localhost:9/cb?keep=1"),
                (
                    "scope",
                    "ZohoMeeting.meeting.READ,ZohoMeeting.manageOrg.READ",
                ),
                ("state", "st ate/1&x"),
                ("access_type", "offline"),
                ("prompt", "consent"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::FOUND);
        let raw = resp.headers()[LOCATION].to_str().unwrap().to_owned();
        assert!(
            raw.starts_with("http://localhost:9/cb?keep=1&code=1000."),
            "{raw}"
        );
        let encoded_server = format!(
            "accounts-server=http%3A%2F%2F127.0.0.1%3A{}",
            emu.addr().port()
        );
        assert!(raw.ends_with(&encoded_server), "{raw}");

        let query: HashMap<String, String> = url::Url::parse(&raw)
            .unwrap()
            .query_pairs()
            .into_owned()
            .collect();
        assert_eq!(query["keep"], "1");
        assert_eq!(query["state"], "st ate/1&x");
        assert_eq!(query["location"], "us");
        assert_eq!(query["accounts-server"], emu.url());
        let code = &query["code"];
        assert_token_shape(code);

        let exchange = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", "http://localhost:9/cb?keep=1"),
        ];
        let (status, body) = post_token(&emu, &exchange).await;
        assert_eq!(status, StatusCode::OK);
        assert_token_shape(body["access_token"].as_str().unwrap());
        assert_token_shape(body["refresh_token"].as_str().unwrap());
        assert_eq!(
            body["scope"],
            "ZohoMeeting.meeting.READ ZohoMeeting.manageOrg.READ"
        );
        assert_eq!(body["api_domain"], API_DOMAIN);
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["expires_in"], 3600);
        assert!(body.get("expires_in_sec").is_none());

        let info = emu
            .control()
            .validate_access_token(body["access_token"].as_str().unwrap())
            .unwrap();
        assert_eq!(
            info.scopes,
            ["ZohoMeeting.meeting.READ", "ZohoMeeting.manageOrg.READ"]
        );
        assert!(info.expires_in <= Duration::from_secs(3600));
        assert!(info.expires_in > Duration::from_secs(3500));

        let (status, body) = post_token(&emu, &exchange).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, serde_json::json!({ "error": "invalid_code" }));
        assert_eq!(emu.control().mint_count(), 1);
        assert_eq!(emu.control().token_requests(), 2);
    }

    #[tokio::test]
    async fn online_code_gets_no_refresh_token_and_space_separated_scopes_parse() {
        let emu = start(AccountsOptions::default()).await;
        let query = consent(&emu, &[("scope", "A.b.READ  C.d.ALL")]).await;
        assert!(!query.contains_key("state"));
        let (_, body) = post_token(
            &emu,
            &[
                ("grant_type", "authorization_code"),
                ("code", &query["code"]),
                ("redirect_uri", "http://localhost:9/cb"),
            ],
        )
        .await;
        assert!(body.get("refresh_token").is_none(), "{body}");
        assert_eq!(body["scope"], "A.b.READ C.d.ALL");
    }

    #[tokio::test]
    async fn wrong_redirect_uri_is_invalid_redirect_uri() {
        let emu = start(AccountsOptions::default()).await;
        let query = consent(&emu, &[("access_type", "offline")]).await;
        let code = query["code"].as_str();
        for wrong in [vec![("redirect_uri", "http://localhost:9/other")], vec![]] {
            let mut form = vec![("grant_type", "authorization_code"), ("code", code)];
            form.extend(wrong);
            let (status, body) = post_token(&emu, &form).await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(body, serde_json::json!({ "error": "invalid_redirect_uri" }));
        }
        // The mistake did not burn the code.
        let (_, body) = post_token(
            &emu,
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", "http://localhost:9/cb"),
            ],
        )
        .await;
        assert!(body["access_token"].is_string(), "{body}");
    }

    #[tokio::test]
    async fn auth_rejects_bad_requests_without_redirecting() {
        let emu = start(AccountsOptions::default()).await;
        let cases: [&[(&str, &str)]; 4] = [
            &[
                ("client_id", "1000.OTHER"),
                ("response_type", "code"),
                ("redirect_uri", "http://x/cb"),
            ],
            &[
                ("client_id", "1000.SANDBOXCLIENT"),
                ("response_type", "token"),
                ("redirect_uri", "http://x/cb"),
            ],
            &[
                ("client_id", "1000.SANDBOXCLIENT"),
                ("response_type", "code"),
            ],
            &[
                ("client_id", "1000.SANDBOXCLIENT"),
                ("response_type", "code"),
                ("redirect_uri", "not a url"),
            ],
        ];
        for query in cases {
            let resp = client()
                .get(format!("{}{AUTH_PATH}", emu.url()))
                .query(query)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{query:?}");
            assert!(resp.headers().get(LOCATION).is_none());
            assert_eq!(resp.headers()[CONTENT_TYPE], HTML_CONTENT_TYPE);
            assert!(resp.text().await.unwrap().contains("<html>"));
        }
    }

    #[tokio::test]
    async fn self_client_code_exchanges_without_redirect_uri() {
        let emu = start(AccountsOptions::default()).await;
        let control = emu.control();
        let code = control.issue_grant_code(&[SCOPE, "ZohoMeeting.manageOrg.READ"]);
        assert_token_shape(&code);
        let (status, body) = post_token(
            &emu,
            &[("grant_type", "authorization_code"), ("code", &code)],
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            body["scope"],
            "ZohoMeeting.meeting.READ ZohoMeeting.manageOrg.READ"
        );
        let refresh_token = body["refresh_token"].as_str().unwrap();
        let (_, body) = refresh(&emu, refresh_token).await;
        assert!(body["access_token"].is_string());
        assert_eq!(control.mint_count(), 2);
    }

    #[tokio::test]
    async fn expired_grant_code_is_invalid_code() {
        let emu = start(AccountsOptions {
            grant_code_lifetime: Duration::ZERO,
            ..AccountsOptions::default()
        })
        .await;
        let code = emu.control().issue_grant_code(&[SCOPE]);
        let (status, body) = post_token(
            &emu,
            &[("grant_type", "authorization_code"), ("code", &code)],
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, serde_json::json!({ "error": "invalid_code" }));
    }

    #[tokio::test]
    async fn refresh_answers_expires_in_seconds_without_refresh_token() {
        let emu = start(AccountsOptions::default()).await;
        let token = emu.control().issue_refresh_token(&[SCOPE]);
        let (status, body) = refresh(&emu, &token).await;
        assert_eq!(status, StatusCode::OK);
        assert_token_shape(body["access_token"].as_str().unwrap());
        assert!(body.get("refresh_token").is_none());
        assert_eq!(body["expires_in"], 3600);
        assert!(body.get("expires_in_sec").is_none());
        assert_eq!(body["scope"], SCOPE);
        assert_eq!(body["api_domain"], API_DOMAIN);
        assert_eq!(body["token_type"], "Bearer");
    }

    #[tokio::test]
    async fn legacy_mode_answers_milliseconds_and_expires_in_sec() {
        let emu = start(AccountsOptions {
            legacy_expiry_fields: true,
            ..AccountsOptions::default()
        })
        .await;
        let token = emu.control().issue_refresh_token(&[SCOPE]);
        let (_, body) = refresh(&emu, &token).await;
        assert_eq!(body["expires_in"], 3_600_000);
        assert_eq!(body["expires_in_sec"], 3600);

        emu.control().set_token_lifetime(Duration::from_secs(60));
        let (_, body) = refresh(&emu, &token).await;
        assert_eq!(body["expires_in"], 60_000);
        assert_eq!(body["expires_in_sec"], 60);
        let info = emu
            .control()
            .validate_access_token(body["access_token"].as_str().unwrap())
            .unwrap();
        assert!(info.expires_in <= Duration::from_secs(60));
    }

    #[tokio::test]
    async fn expired_access_token_does_not_validate() {
        let emu = start(AccountsOptions {
            token_lifetime: Duration::ZERO,
            ..AccountsOptions::default()
        })
        .await;
        let token = emu.control().issue_refresh_token(&[SCOPE]);
        let (_, body) = refresh(&emu, &token).await;
        assert_eq!(body["expires_in"], 0);
        let access = body["access_token"].as_str().unwrap();
        assert_eq!(emu.control().validate_access_token(access), None);
        assert_eq!(emu.control().validate_access_token("1000.nope.nope"), None);
    }

    #[tokio::test]
    async fn bad_client_credentials_are_invalid_client_with_http_200() {
        let emu = start(AccountsOptions::default()).await;
        let token = emu.control().issue_refresh_token(&[SCOPE]);
        let cases: [&[(&str, &str)]; 3] = [
            &[
                ("client_id", "1000.SANDBOXCLIENT"),
                ("client_secret", "wrong"),
            ],
            &[
                ("client_id", "1000.OTHER"),
                ("client_secret", "sandbox-secret"),
            ],
            &[("client_id", "1000.SANDBOXCLIENT")],
        ];
        for creds in cases {
            let mut form = creds.to_vec();
            form.extend([("grant_type", "refresh_token"), ("refresh_token", &token)]);
            let resp = client()
                .post(format!("{}{TOKEN_PATH}", emu.url()))
                .form(&form)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::OK);
            let body: Value = resp.json().await.unwrap();
            assert_eq!(
                body,
                serde_json::json!({ "error": "invalid_client" }),
                "{creds:?}"
            );
        }
        assert_eq!(emu.control().mint_count(), 0);
        assert_eq!(emu.control().token_requests(), 3);
    }

    #[tokio::test]
    async fn unknown_grant_type_and_unknown_refresh_token() {
        let emu = start(AccountsOptions::default()).await;
        let (_, body) = post_token(&emu, &[("grant_type", "password")]).await;
        assert_eq!(
            body,
            serde_json::json!({ "error": "unsupported_grant_type" })
        );
        let (_, body) = post_token(&emu, &[]).await;
        assert_eq!(
            body,
            serde_json::json!({ "error": "unsupported_grant_type" })
        );
        let (status, body) = refresh(&emu, "1000.unknown.unknown").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, serde_json::json!({ "error": "invalid_code" }));
        let (_, body) = post_token(&emu, &[("grant_type", "refresh_token")]).await;
        assert_eq!(body, serde_json::json!({ "error": "invalid_code" }));
    }

    #[tokio::test]
    async fn params_are_accepted_in_query_body_or_basic_auth() {
        let emu = start(AccountsOptions::default()).await;
        let control = emu.control();
        let token = control.issue_refresh_token(&[SCOPE]);
        let url = format!("{}{TOKEN_PATH}", emu.url());
        let grant = [
            ("grant_type", "refresh_token"),
            ("refresh_token", token.as_str()),
        ];
        let all: Vec<(&str, String)> = creds()
            .into_iter()
            .chain(grant.iter().map(|&(k, v)| (k, v.to_owned())))
            .collect();

        // Everything in the query string, no body.
        let body: Value = client()
            .post(&url)
            .query(&all)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(body["access_token"].is_string(), "{body}");
        // Everything in the body.
        let body: Value = client()
            .post(&url)
            .form(&all)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(body["access_token"].is_string(), "{body}");
        // Client credentials as HTTP Basic, the grant in the body.
        let body: Value = client()
            .post(&url)
            .basic_auth("1000.SANDBOXCLIENT", Some("sandbox-secret"))
            .form(&grant)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(body["access_token"].is_string(), "{body}");
        // Wrong Basic credentials.
        let body: Value = client()
            .post(&url)
            .basic_auth("1000.SANDBOXCLIENT", Some("nope"))
            .form(&grant)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(body["error"], "invalid_client");
        // The body wins over the query string.
        let body: Value = client()
            .post(&url)
            .query(&[("client_secret", "wrong")])
            .form(&all)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(body["access_token"].is_string(), "{body}");
        let body: Value = client()
            .post(&url)
            .query(&all)
            .form(&[("client_secret", "wrong")])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(body["error"], "invalid_client");
        // A body that is not form-encoded is not read for parameters.
        let body: Value = client()
            .post(&url)
            .header(CONTENT_TYPE, "text/plain")
            .body(serde_urlencoded_form(&all))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(body["error"], "invalid_client");

        let log = control.requests();
        assert_eq!(log.len(), 7);
        assert!(
            log.iter()
                .all(|r| r.grant_type == "refresh_token" || r.grant_type.is_empty())
        );
        assert_eq!(
            log[0],
            TokenRequestRecord {
                grant_type: "refresh_token".to_owned(),
                params_in_body: false,
                params_in_query: true,
                content_type: None,
            }
        );
        assert!(log[1].params_in_body && !log[1].params_in_query);
        assert_eq!(
            log[1].content_type.as_deref(),
            Some("application/x-www-form-urlencoded")
        );
        assert!(log[4].params_in_body && log[4].params_in_query);
        assert!(!log[6].params_in_body && log[6].grant_type.is_empty());
        assert_eq!(control.mint_count(), 4);
    }

    fn serde_urlencoded_form(pairs: &[(&str, String)]) -> String {
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish()
    }

    #[tokio::test]
    async fn mint_limit_throttles_with_access_denied_and_http_200() {
        let emu = start(AccountsOptions {
            max_mints_per_10m: 3,
            ..AccountsOptions::default()
        })
        .await;
        let control = emu.control();
        let token = control.issue_refresh_token(&[SCOPE]);
        for _ in 0..3 {
            let (_, body) = refresh(&emu, &token).await;
            assert!(body["access_token"].is_string(), "{body}");
        }
        let (status, body) = refresh(&emu, &token).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, throttle_body());
        assert_eq!(body["error"], "Access Denied");
        assert_eq!(body["status"], "failure");
        // The limit is per refresh token.
        let other = control.issue_refresh_token(&[SCOPE]);
        let (_, body) = refresh(&emu, &other).await;
        assert!(body["access_token"].is_string(), "{body}");
        assert_eq!(control.mint_count(), 4);
        assert_eq!(control.token_requests(), 5);
    }

    #[test]
    fn mint_window_rolls_after_ten_minutes() {
        let start = Instant::now();
        let mut mints = VecDeque::new();
        for i in 0..3 {
            assert!(record_mint(
                &mut mints,
                start + Duration::from_secs(i * 60),
                3
            ));
        }
        // Fourth mint, at 9 minutes: refused, and refusals are not recorded.
        assert!(!record_mint(
            &mut mints,
            start + Duration::from_secs(540),
            3
        ));
        assert!(!record_mint(
            &mut mints,
            start + Duration::from_secs(599),
            3
        ));
        assert_eq!(mints.len(), 3);
        // At 10 minutes the first mint leaves the window: exactly one slot opens.
        assert!(record_mint(&mut mints, start + MINT_WINDOW, 3));
        assert!(!record_mint(&mut mints, start + MINT_WINDOW, 3));
        // At 11 minutes the second one leaves.
        assert!(record_mint(&mut mints, start + Duration::from_secs(660), 3));
        assert_eq!(mints.len(), 3);
        // A limit of zero refuses everything.
        assert!(!record_mint(&mut VecDeque::new(), start, 0));
    }

    #[tokio::test]
    async fn revoking_a_refresh_token_kills_its_access_tokens() {
        let emu = start(AccountsOptions::default()).await;
        let control = emu.control();
        let token = control.issue_refresh_token(&[SCOPE]);
        let survivor_rt = control.issue_refresh_token(&[SCOPE]);
        let (_, first) = refresh(&emu, &token).await;
        let (_, second) = refresh(&emu, &token).await;
        let (_, survivor) = refresh(&emu, &survivor_rt).await;
        let first = first["access_token"].as_str().unwrap();
        let second = second["access_token"].as_str().unwrap();
        let survivor = survivor["access_token"].as_str().unwrap();
        assert!(control.validate_access_token(first).is_some());
        assert!(control.validate_access_token(second).is_some());

        let revoke_url = format!("{}{REVOKE_PATH}", emu.url());
        let resp = client()
            .post(&revoke_url)
            .form(&[("token", token.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()[CONTENT_TYPE], JSON_CONTENT_TYPE);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body, serde_json::json!({ "status": "success" }));
        assert_eq!(control.validate_access_token(first), None);
        assert_eq!(control.validate_access_token(second), None);
        assert!(control.validate_access_token(survivor).is_some());
        let (_, body) = refresh(&emu, &token).await;
        assert_eq!(body, serde_json::json!({ "error": "invalid_code" }));

        // An access token alone, in the query string.
        let resp = client()
            .post(&revoke_url)
            .query(&[("token", survivor)])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(control.validate_access_token(survivor), None);

        // Unknown (and already revoked) tokens.
        for unknown in [token.as_str(), "1000.unknown.unknown", ""] {
            let resp = client()
                .post(&revoke_url)
                .query(&[("token", unknown)])
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
            let body: Value = resp.json().await.unwrap();
            assert_eq!(
                body,
                serde_json::json!({ "status": "failure", "error": "invalid_token" })
            );
        }
        let resp = client().post(&revoke_url).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);

        // The control-side revoke.
        let (_, body) = refresh(&emu, &survivor_rt).await;
        let access = body["access_token"].as_str().unwrap();
        assert!(control.revoke_refresh_token(&survivor_rt));
        assert!(!control.revoke_refresh_token(&survivor_rt));
        assert_eq!(control.validate_access_token(access), None);
    }

    #[tokio::test]
    async fn revocations_are_logged_in_order_and_a_revoke_outage_revokes_nothing() {
        let emu = start(AccountsOptions::default()).await;
        let control = emu.control();
        let revoke_url = format!("{}{REVOKE_PATH}", emu.url());
        let revoke = |token: String| {
            let url = revoke_url.clone();
            async move {
                client()
                    .post(url)
                    .form(&[("token", token)])
                    .send()
                    .await
                    .unwrap()
                    .status()
            }
        };
        let first = control.issue_refresh_token(&[SCOPE]);
        let second = control.issue_refresh_token(&[SCOPE]);
        let (_, body) = refresh(&emu, &second).await;
        let access = body["access_token"].as_str().unwrap().to_owned();
        assert!(control.revocations().is_empty());

        // During an outage nothing is revoked or logged, and the token endpoint still works.
        control.set_revoke_outage(Some(503));
        let resp = client()
            .post(&revoke_url)
            .form(&[("token", first.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(resp.headers()[CONTENT_TYPE], HTML_CONTENT_TYPE);
        control.set_revoke_outage(Some(9999));
        assert_eq!(revoke(first.clone()).await, StatusCode::SERVICE_UNAVAILABLE);
        let (_, body) = refresh(&emu, &first).await;
        assert!(body["access_token"].is_string(), "{body}");
        assert!(control.revocations().is_empty());

        control.set_revoke_outage(None);
        assert_eq!(revoke(second.clone()).await, StatusCode::OK);
        assert_eq!(revoke(first.clone()).await, StatusCode::OK);
        // Unknown tokens and console revocations are not logged.
        assert_eq!(revoke(second.clone()).await, StatusCode::BAD_REQUEST);
        let third = control.issue_refresh_token(&[SCOPE]);
        assert!(control.revoke_refresh_token(&third));
        assert_eq!(control.revocations(), [second, first]);
        // The access token died with its refresh token: revoking it is unknown too.
        assert_eq!(revoke(access).await, StatusCode::BAD_REQUEST);
        assert_eq!(control.revocations().len(), 2);
    }

    #[tokio::test]
    async fn outage_answers_html_with_the_chosen_status() {
        let emu = start(AccountsOptions::default()).await;
        let control = emu.control();
        let token = control.issue_refresh_token(&[SCOPE]);
        control.set_outage(Some(503));
        let resp = client()
            .post(format!("{}{TOKEN_PATH}", emu.url()))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", token.as_str()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(resp.headers()[CONTENT_TYPE], HTML_CONTENT_TYPE);
        assert!(resp.text().await.unwrap().contains("<html>"));
        control.set_outage(Some(9999));
        let resp = client()
            .post(format!("{}{TOKEN_PATH}", emu.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        control.set_outage(None);
        let (_, body) = refresh(&emu, &token).await;
        assert!(body["access_token"].is_string());
        assert_eq!(control.token_requests(), 3);
        assert_eq!(control.requests().len(), 3);
        assert_eq!(control.mint_count(), 1);
    }

    #[tokio::test]
    async fn fail_next_fails_that_many_requests_in_order() {
        let emu = start(AccountsOptions::default()).await;
        let control = emu.control();
        let token = control.issue_refresh_token(&[SCOPE]);
        control.fail_next(1, Failure::Throttle);
        control.fail_next(2, Failure::ServerError);
        control.fail_next(1, Failure::InvalidClient);
        control.fail_next(1, Failure::InvalidCode);
        control.fail_next(0, Failure::InvalidCode);

        let (status, body) = refresh(&emu, &token).await;
        assert_eq!((status, body), (StatusCode::OK, throttle_body()));
        for _ in 0..2 {
            let resp = client()
                .post(format!("{}{TOKEN_PATH}", emu.url()))
                .form(&[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", token.as_str()),
                ])
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
            assert_eq!(resp.headers()[CONTENT_TYPE], HTML_CONTENT_TYPE);
        }
        let (_, body) = refresh(&emu, &token).await;
        assert_eq!(body, serde_json::json!({ "error": "invalid_client" }));
        let (_, body) = refresh(&emu, &token).await;
        assert_eq!(body, serde_json::json!({ "error": "invalid_code" }));
        let (_, body) = refresh(&emu, &token).await;
        assert!(body["access_token"].is_string());
        assert_eq!(control.token_requests(), 6);
        assert_eq!(control.mint_count(), 1);

        control.fail_next(5, Failure::Throttle);
        control.clear_failures();
        let (_, body) = refresh(&emu, &token).await;
        assert!(body["access_token"].is_string());
    }

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
    fn decodes_base64() {
        assert_eq!(decode_base64("").unwrap(), b"");
        assert_eq!(decode_base64("Zg==").unwrap(), b"f");
        assert_eq!(decode_base64("Zg").unwrap(), b"f");
        assert_eq!(decode_base64("Zm8=").unwrap(), b"fo");
        assert_eq!(decode_base64("Zm9v").unwrap(), b"foo");
        assert_eq!(decode_base64("Zm9vYmFy").unwrap(), b"foobar");
        assert_eq!(decode_base64("+/+/").unwrap(), [0xfb, 0xff, 0xbf]);
        for bad in ["Z", "Zg===", "Zg=", "Zm9v!", "Zm 9v", "=", "Zm9vY", "é"] {
            assert_eq!(decode_base64(bad), None, "{bad}");
        }
    }

    #[test]
    fn reads_basic_credentials() {
        // base64("1000.ID:se:cret")
        let value = HeaderValue::from_static("Basic MTAwMC5JRDpzZTpjcmV0");
        assert_eq!(
            basic_credentials(&value),
            Some(("1000.ID".to_owned(), "se:cret".to_owned()))
        );
        let value = HeaderValue::from_static("basic   MTAwMC5JRDpzZTpjcmV0");
        assert!(basic_credentials(&value).is_some());
        for bad in [
            "Bearer MTAwMC5JRDpzZTpjcmV0",
            "Basic",
            "Basic Zm9v",
            "Basic !!",
        ] {
            assert_eq!(
                basic_credentials(&HeaderValue::from_static(bad)),
                None,
                "{bad}"
            );
        }
    }

    #[test]
    fn tokens_look_like_zoho_tokens() {
        let a = new_token();
        assert_token_shape(&a);
        assert_ne!(a, new_token());
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
    }

    #[test]
    fn parses_scopes_and_form_content_types() {
        assert_eq!(parse_scopes("a,b c,,  d"), ["a", "b", "c", "d"]);
        assert!(parse_scopes("").is_empty());
        assert!(is_form("application/x-www-form-urlencoded"));
        assert!(is_form("Application/X-WWW-Form-Urlencoded ; charset=UTF-8"));
        assert!(!is_form("application/json"));
        assert!(!is_form("multipart/form-data; boundary=x"));
    }

    #[test]
    fn options_debug_redacts_the_secret() {
        let opts = AccountsOptions {
            client_secret: "very-secret-value".to_owned(),
            ..AccountsOptions::default()
        };
        let debug = format!("{opts:?}");
        assert!(!debug.contains("very-secret-value"));
        assert!(debug.contains(crate::secret::REDACTED));
    }
}
