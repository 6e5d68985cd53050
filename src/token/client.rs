//! One HTTP exchange with Zoho's token endpoint: code exchange, refresh and revocation; and
//! the [`Credentials`] a refresh is made with.
//!
//! Zoho answers the way its documentation and SDKs show, not the way RFC 6749 says
//! (zoho-facts §4–§5):
//! - errors come back with HTTP 200 (`{"error":"invalid_code"}`): success means "the body has
//!   an `access_token`", whatever the status;
//! - when `expires_in_sec` is present, `expires_in` is in milliseconds;
//! - throttling is `{"error":"Access Denied","status":"failure",...}`, with localised text,
//!   and HTTP 200 or 400.
//!
//! Parameters go in an `application/x-www-form-urlencoded` body, never the query string, so
//! the client secret and tokens stay out of URLs and access logs. This module never sleeps
//! or retries; [`TokenError::class`] tells the refresher what to do next.

use std::path::Path;
use std::time::Duration;

use arc_swap::ArcSwap;
use serde_json::Value;
use url::Url;

use super::fingerprint;
use crate::secret::Secret;

/// The largest token-endpoint body read; Zoho's are a few hundred bytes.
const MAX_BODY: usize = 64 * 1024;
/// Lifetime assumed when Zoho omits `expires_in` (the documented one hour).
const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);
/// Above this many "seconds", `expires_in` must be milliseconds (the SDKs' sanity rule).
const MAX_PLAUSIBLE_SECONDS: u64 = 86_400;

/// What a successful grant returns.
#[derive(Debug)]
pub struct Grant {
    /// The access token.
    pub access_token: Secret<String>,
    /// A refresh token, on code exchanges with `access_type=offline` or Self Client codes.
    pub refresh_token: Option<Secret<String>>,
    /// How long the access token lives from now.
    pub lifetime: Duration,
    /// Zoho's `api_domain` (informational: Meeting does not live there).
    pub api_domain: Option<String>,
    /// Granted scopes, when Zoho says.
    pub scope: Option<String>,
}

/// How a failure should be handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    /// Retrying cannot help until someone fixes the credentials (re-run `login`, fix the
    /// client secret, pick the right data centre).
    Terminal,
    /// Zoho is throttling this refresh token: wait at least a minute, longer is better.
    Throttled,
    /// Network trouble or a server error: retry with backoff.
    Transient,
}

/// A token-endpoint failure. Messages never contain a secret.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Zoho refused the grant with an OAuth error code.
    #[error("Zoho refused the request: {code}{}", hint(code, account.as_deref()))]
    Refused {
        /// Zoho's `error` value.
        code: String,
        /// The account (beside `default`) whose client asked, for the hint.
        account: Option<String>,
    },
    /// Zoho's throttling answer ("Access Denied", too many requests).
    #[error("Zoho is throttling token requests for this refresh token (too many requests)")]
    Throttled,
    /// A non-JSON or unexpected answer with this HTTP status.
    #[error("token endpoint answered HTTP {status} without a token")]
    Status {
        /// The HTTP status.
        status: u16,
    },
    /// The endpoint could not be reached, or the exchange broke off.
    #[error("cannot reach the token endpoint at {host}")]
    Network {
        /// The accounts server host.
        host: String,
        /// The cause.
        #[source]
        source: reqwest::Error,
    },
    /// The answer was too large or not the JSON Zoho sends.
    #[error("token endpoint answered with an unreadable body")]
    Malformed,
    /// The HTTP client could not be built (bad CA file).
    #[error("cannot set up the HTTPS client: {0}")]
    Setup(String),
}

/// The OAuth client: one registered Zoho client talking to accounts servers.
///
/// The client secret can be replaced while the client is in use
/// ([`OAuthClient::set_client_secret`], on SIGHUP): every exchange reads it once, so an
/// exchange in flight finishes with the secret it started with.
pub struct OAuthClient {
    http: reqwest::Client,
    client_id: String,
    client_secret: ArcSwap<Secret<String>>,
    /// The account beside `default` it serves, for error hints.
    account: Option<String>,
}

/// The refresh token in use and the accounts server it belongs to.
pub struct Credentials {
    refresh_token: Secret<String>,
    accounts_url: Url,
    minted_by: String,
}

// === impl TokenError ===

impl TokenError {
    /// Whether to stop, slow down, or retry.
    pub fn class(&self) -> ErrorClass {
        match self {
            TokenError::Refused { code, .. } if is_terminal_code(code) => ErrorClass::Terminal,
            // Zoho's documented advice: an unexpected error code is most likely throttling.
            TokenError::Refused { .. } | TokenError::Throttled => ErrorClass::Throttled,
            TokenError::Status { .. } | TokenError::Network { .. } | TokenError::Malformed => {
                ErrorClass::Transient
            }
            TokenError::Setup(_) => ErrorClass::Terminal,
        }
    }
}

fn is_terminal_code(code: &str) -> bool {
    matches!(
        code,
        "invalid_code"
            | "invalid_client"
            | "invalid_client_secret"
            | "invalid_redirect_uri"
            | "unauthorized_client"
            | "invalid_grant"
            | "unsupported_grant_type"
            | "invalid_request"
    )
}

/// What to do about Zoho's `code`, for `account` (`None`: `default`).
fn hint(code: &str, account: Option<&str>) -> String {
    let login = account.map_or_else(
        || "zoho-meeting-proxy login".to_owned(),
        |name| format!("zoho-meeting-proxy login --account {name}"),
    );
    match code {
        "invalid_code" => format!(
            " (the grant code expired or was used, or the refresh token was revoked: run `{login}` again)"
        ),
        "invalid_client" | "invalid_client_secret" => match account {
            None => {
                " (check oauth.client_id, oauth.client_secret and oauth.data_center)".to_owned()
            }
            Some(name) => format!(
                " (check accounts.{name}.client_id and client_secret, or [oauth]'s when they are unset, and accounts.{name}.data_center)"
            ),
        },
        "invalid_redirect_uri" => {
            " (oauth.redirect_uri must match the client's registered redirect URI)".to_owned()
        }
        _ => String::new(),
    }
}

// === impl OAuthClient ===

impl OAuthClient {
    /// Builds the client, trusting the public web roots plus any certificates in `ca_file`.
    ///
    /// # Errors
    /// [`TokenError::Setup`] when the CA file cannot be read or parsed.
    pub fn new(
        client_id: &str,
        client_secret: &Secret<String>,
        ca_file: Option<&Path>,
        connect_timeout: Duration,
    ) -> Result<Self, TokenError> {
        Ok(Self {
            http: http_client(ca_file, connect_timeout)?,
            client_id: client_id.to_owned(),
            client_secret: ArcSwap::from_pointee(client_secret.clone()),
            account: None,
        })
    }

    /// The client as account `name` (beside `default`) uses it: its errors' hints name the
    /// account's keys and `login --account`.
    #[must_use]
    pub fn for_account(mut self, name: &str) -> Self {
        self.account = Some(name.to_owned());
        self
    }

    /// Names this client's account in a refusal.
    fn tagged(&self, mut error: TokenError) -> TokenError {
        if let TokenError::Refused { account, .. } = &mut error {
            account.clone_from(&self.account);
        }
        error
    }

    /// The client id.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// Replaces the client secret for the exchanges that start from now on (a rotated
    /// secret, reloaded on SIGHUP). Returns whether it differs from the one in use.
    pub fn set_client_secret(&self, secret: Secret<String>) -> bool {
        let changed = **self.client_secret.load() != secret;
        self.client_secret.store(std::sync::Arc::new(secret));
        changed
    }

    /// Mints an access token from a refresh token (`grant_type=refresh_token`).
    ///
    /// # Errors
    /// See [`TokenError`].
    pub async fn refresh(
        &self,
        accounts: &Url,
        refresh_token: &Secret<String>,
    ) -> Result<Grant, TokenError> {
        let secret = self.client_secret.load_full();
        let form = [
            ("grant_type", "refresh_token"),
            ("client_id", self.client_id.as_str()),
            ("client_secret", secret.expose().as_str()),
            ("refresh_token", refresh_token.expose().as_str()),
        ];
        self.grant(accounts, &form).await
    }

    /// Exchanges a grant code (`grant_type=authorization_code`). `redirect_uri` is `None` for
    /// Self Client codes.
    ///
    /// # Errors
    /// See [`TokenError`].
    pub async fn exchange_code(
        &self,
        accounts: &Url,
        code: &Secret<String>,
        redirect_uri: Option<&str>,
    ) -> Result<Grant, TokenError> {
        let secret = self.client_secret.load_full();
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("client_id", self.client_id.as_str()),
            ("client_secret", secret.expose().as_str()),
            ("code", code.expose().as_str()),
        ];
        if let Some(uri) = redirect_uri {
            form.push(("redirect_uri", uri));
        }
        self.grant(accounts, &form).await
    }

    /// Revokes a refresh token (and every access token minted from it) at
    /// `POST {accounts}/oauth/v2/token/revoke`.
    ///
    /// # Errors
    /// [`TokenError::Refused`] with code `invalid_token` when Zoho does not know the token
    /// (already revoked); others as for [`OAuthClient::refresh`].
    pub async fn revoke(&self, accounts: &Url, token: &Secret<String>) -> Result<(), TokenError> {
        let url = endpoint(accounts, "oauth/v2/token/revoke");
        let response = self
            .http
            .post(url)
            .form(&[("token", token.expose().as_str())])
            .send()
            .await
            .map_err(|source| network(accounts, source))?;
        let status = response.status().as_u16();
        let body = read_limited(response, accounts).await?;
        parse_revoke(status, &body).map_err(|e| self.tagged(e))
    }

    async fn grant(&self, accounts: &Url, form: &[(&str, &str)]) -> Result<Grant, TokenError> {
        let response = self
            .http
            .post(endpoint(accounts, "oauth/v2/token"))
            .form(form)
            .send()
            .await
            .map_err(|source| network(accounts, source))?;
        let status = response.status().as_u16();
        let body = read_limited(response, accounts).await?;
        parse_grant(status, &body).map_err(|e| self.tagged(e))
    }
}

impl Clone for OAuthClient {
    /// A client with the same connection pool and the secret in use now; later
    /// [`OAuthClient::set_client_secret`] calls on either do not reach the other.
    fn clone(&self) -> Self {
        Self {
            http: self.http.clone(),
            client_id: self.client_id.clone(),
            client_secret: ArcSwap::new(self.client_secret.load_full()),
            account: self.account.clone(),
        }
    }
}

impl std::fmt::Debug for OAuthClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthClient")
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.load_full())
            .finish_non_exhaustive()
    }
}

// === impl Credentials ===

impl Credentials {
    /// Credentials for `client_id`'s `refresh_token` at `accounts_url`.
    pub fn new(client_id: &str, refresh_token: Secret<String>, accounts_url: Url) -> Self {
        let minted_by = fingerprint(&format!("{client_id}\n{}", refresh_token.expose()));
        Self {
            refresh_token,
            accounts_url,
            minted_by,
        }
    }

    /// The accounts server.
    pub fn accounts_url(&self) -> &Url {
        &self.accounts_url
    }

    /// The refresh token.
    pub fn refresh_token(&self) -> &Secret<String> {
        &self.refresh_token
    }

    /// Identifies client and refresh token together, without revealing either.
    pub fn minted_by(&self) -> &str {
        &self.minted_by
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("accounts_url", &self.accounts_url.as_str())
            .field("minted_by", &self.minted_by)
            .finish_non_exhaustive()
    }
}

/// Builds the HTTPS client used for Zoho's servers: rustls with the public web roots plus
/// any certificates in `ca_file`, no redirects followed, `connect_timeout` to connect and
/// 30 s for a whole exchange (a caller may set a shorter one per request).
///
/// # Errors
/// [`TokenError::Setup`] when the CA file cannot be read, holds no certificate, or the
/// client cannot be built.
pub fn http_client(
    ca_file: Option<&Path>,
    connect_timeout: Duration,
) -> Result<reqwest::Client, TokenError> {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(connect_timeout)
        .timeout(Duration::from_secs(30))
        .user_agent(concat!("zoho-meeting-proxy/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = ca_file {
        let pem = std::fs::read(path)
            .map_err(|e| TokenError::Setup(format!("cannot read {}: {e}", path.display())))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| TokenError::Setup(format!("{}: {e}", path.display())))?;
        if certs.is_empty() {
            return Err(TokenError::Setup(format!(
                "{} holds no certificate",
                path.display()
            )));
        }
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder
        .build()
        .map_err(|e| TokenError::Setup(e.to_string()))
}

/// Classifies a revocation answer (zoho-facts §8): `{"status":"success"}` is a revocation;
/// HTTP 400 is Zoho's answer for a token it does not know, [`TokenError::Refused`] with the
/// body's `error` (`invalid_token` when it has none); a server error (5xx) is
/// [`TokenError::Status`] whatever its body, since the token may well still be live.
///
/// # Errors
/// The failure, as above; the throttle body is [`TokenError::Throttled`].
pub(super) fn parse_revoke(status: u16, body: &[u8]) -> Result<(), TokenError> {
    let json: Option<Value> = serde_json::from_slice(body).ok();
    let field = |name: &str| {
        json.as_ref()
            .and_then(|j| j.get(name))
            .and_then(Value::as_str)
            .filter(|v| v.len() <= 64 && v.bytes().all(|b| b.is_ascii_graphic() || b == b' '))
            .map(str::to_owned)
    };
    match (status, field("status").as_deref()) {
        (200, Some("success")) => Ok(()),
        (_, Some("failure")) if field("error").is_some_and(|e| is_throttle(&e)) => {
            Err(TokenError::Throttled)
        }
        (500.., _) => Err(TokenError::Status { status }),
        (400, _) => Err(TokenError::Refused {
            code: field("error").unwrap_or_else(|| "invalid_token".to_owned()),
            account: None,
        }),
        (_, Some(_)) => Err(TokenError::Refused {
            code: field("error").unwrap_or_else(|| "revoke_failed".to_owned()),
            account: None,
        }),
        (status, None) => Err(TokenError::Status { status }),
    }
}

/// Parses a token-endpoint answer the way Zoho really answers (see the module docs).
///
/// # Errors
/// The failure, classified.
pub fn parse_grant(status: u16, body: &[u8]) -> Result<Grant, TokenError> {
    let Ok(Value::Object(json)) = serde_json::from_slice::<Value>(body) else {
        return Err(if (200..300).contains(&status) {
            TokenError::Malformed
        } else {
            TokenError::Status { status }
        });
    };
    let text = |name: &str| {
        json.get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    if let Some(token) = text("access_token") {
        let lifetime = lifetime(json.get("expires_in"), json.get("expires_in_sec"));
        return Ok(Grant {
            access_token: Secret::new(token.to_owned()),
            refresh_token: text("refresh_token").map(|t| Secret::new(t.to_owned())),
            lifetime,
            api_domain: text("api_domain").map(str::to_owned),
            scope: text("scope").map(str::to_owned),
        });
    }
    match text("error") {
        Some(code) if is_throttle(code) => Err(TokenError::Throttled),
        Some(code) if is_terminal_code(code) => Err(TokenError::Refused {
            code: code.to_owned(),
            account: None,
        }),
        // Zoho's "Access Denied" text is localised ("拒绝访问"): an unknown error with
        // `status: failure` or a description is its throttling answer.
        Some(_) if text("status") == Some("failure") || text("error_description").is_some() => {
            Err(TokenError::Throttled)
        }
        Some(code) if code.len() <= 64 && code.bytes().all(|b| b.is_ascii_graphic()) => {
            Err(TokenError::Refused {
                code: code.to_owned(),
                account: None,
            })
        }
        Some(_) => Err(TokenError::Throttled),
        None if (500..600).contains(&status) => Err(TokenError::Status { status }),
        None => Err(TokenError::Malformed),
    }
}

fn is_throttle(code: &str) -> bool {
    code.eq_ignore_ascii_case("Access Denied") || code.eq_ignore_ascii_case("access_denied")
}

/// The SDKs' rule: with `expires_in_sec`, `expires_in` is milliseconds (read to the
/// millisecond when the two agree; `expires_in_sec` wins when they do not). Without it,
/// `expires_in` is seconds unless implausibly large. Missing or zero: the documented hour.
fn lifetime(expires_in: Option<&Value>, expires_in_sec: Option<&Value>) -> Duration {
    let number = |v: Option<&Value>| -> Option<u64> {
        match v? {
            Value::Number(n) => n.as_u64().or_else(|| n.as_f64().map(|f| f.max(0.0) as u64)),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    };
    let duration = match (number(expires_in_sec), number(expires_in)) {
        (Some(sec), Some(ms)) if ms / 1000 == sec => Duration::from_millis(ms),
        (Some(sec), _) if sec > 0 => Duration::from_secs(sec),
        (Some(_), Some(ms)) => Duration::from_millis(ms),
        (None, Some(v)) if v > MAX_PLAUSIBLE_SECONDS => Duration::from_millis(v),
        (None, Some(secs)) => Duration::from_secs(secs),
        (_, None) => DEFAULT_LIFETIME,
    };
    if duration.is_zero() {
        DEFAULT_LIFETIME
    } else {
        duration
    }
}

fn endpoint(accounts: &Url, path: &str) -> Url {
    let mut url = accounts.clone();
    url.set_path(path);
    url.set_query(None);
    url
}

fn network(accounts: &Url, source: reqwest::Error) -> TokenError {
    TokenError::Network {
        host: accounts.host_str().unwrap_or("?").to_owned(),
        // The URL carries no secret (parameters are in the body), but keep errors short.
        source: source.without_url(),
    }
}

async fn read_limited(
    mut response: reqwest::Response,
    accounts: &Url,
) -> Result<Vec<u8>, TokenError> {
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|source| network(accounts, source))?
    {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(TokenError::Malformed);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(body: &str) -> Grant {
        parse_grant(200, body.as_bytes()).unwrap()
    }

    fn err(status: u16, body: &str) -> TokenError {
        parse_grant(status, body.as_bytes()).unwrap_err()
    }

    #[test]
    fn seconds_by_default() {
        let g = ok(
            r#"{"access_token":"a","api_domain":"https://www.zohoapis.com","token_type":"Bearer","expires_in":3600}"#,
        );
        assert_eq!(g.lifetime, Duration::from_secs(3600));
        assert_eq!(g.access_token.expose(), "a");
        assert!(g.refresh_token.is_none());
    }

    #[test]
    fn expires_in_sec_makes_expires_in_milliseconds() {
        // Zoho's documented example (the accounts emulator's default answer).
        let g = ok(
            r#"{"access_token":"a","expires_in_sec":3600,"api_domain":"https://www.zohoapis.com","token_type":"Bearer","expires_in":3600000}"#,
        );
        assert_eq!(g.lifetime, Duration::from_secs(3600));
        let g = ok(r#"{"access_token":"a","expires_in":120000,"expires_in_sec":0}"#);
        assert_eq!(g.lifetime, Duration::from_secs(120));
        // The milliseconds keep what whole seconds cannot.
        let g = ok(r#"{"access_token":"a","expires_in":1500,"expires_in_sec":1}"#);
        assert_eq!(g.lifetime, Duration::from_millis(1500));
        let g = ok(r#"{"access_token":"a","expires_in":"60000","expires_in_sec":"60"}"#);
        assert_eq!(g.lifetime, Duration::from_secs(60));
        // Two fields that disagree (seconds in both): `expires_in_sec` is believed.
        let g = ok(r#"{"access_token":"a","expires_in":3600,"expires_in_sec":3600}"#);
        assert_eq!(g.lifetime, Duration::from_secs(3600));
        let g = ok(r#"{"access_token":"a","expires_in_sec":90}"#);
        assert_eq!(g.lifetime, Duration::from_secs(90));
    }

    #[test]
    fn implausible_seconds_are_milliseconds_and_missing_is_an_hour() {
        assert_eq!(
            ok(r#"{"access_token":"a","expires_in":3600000}"#).lifetime,
            Duration::from_secs(3600)
        );
        assert_eq!(
            ok(r#"{"access_token":"a"}"#).lifetime,
            Duration::from_secs(3600)
        );
        assert_eq!(
            ok(r#"{"access_token":"a","expires_in":"90"}"#).lifetime,
            Duration::from_secs(90)
        );
    }

    #[test]
    fn code_exchange_carries_refresh_token() {
        let g = ok(
            r#"{"access_token":"a","refresh_token":"r","expires_in":3600,"scope":"ZohoMeeting.meeting.READ"}"#,
        );
        assert_eq!(g.refresh_token.unwrap().expose(), "r");
        assert_eq!(g.scope.as_deref(), Some("ZohoMeeting.meeting.READ"));
    }

    #[test]
    fn errors_with_http_200_are_failures() {
        let e = err(200, r#"{"error":"invalid_code"}"#);
        assert_eq!(e.class(), ErrorClass::Terminal);
        assert!(e.to_string().contains("login"));
        assert_eq!(
            err(200, r#"{"error":"invalid_client"}"#).class(),
            ErrorClass::Terminal
        );
        assert_eq!(
            err(400, r#"{"error":"invalid_client_secret"}"#).class(),
            ErrorClass::Terminal
        );
    }

    #[test]
    fn throttling_is_recognised_in_any_language() {
        let en = r#"{"error_description":"You have made too many requests continuously. Please try again after some time.","error":"Access Denied","status":"failure"}"#;
        let zh = r#"{"error_description":"您已连续提出过多请求，请稍后再试。","error":"拒绝访问","status":"failure"}"#;
        for status in [200, 400] {
            assert_eq!(err(status, en).class(), ErrorClass::Throttled);
            assert_eq!(err(status, zh).class(), ErrorClass::Throttled);
        }
    }

    #[test]
    fn server_errors_and_garbage_are_transient() {
        assert_eq!(err(503, "<html>down</html>").class(), ErrorClass::Transient);
        assert_eq!(err(500, "{}").class(), ErrorClass::Transient);
        assert_eq!(err(200, "not json").class(), ErrorClass::Transient);
        assert_eq!(err(200, "[1,2]").class(), ErrorClass::Transient);
        assert_eq!(
            err(200, r#"{"access_token":""}"#).class(),
            ErrorClass::Transient
        );
    }

    #[test]
    fn revocations_are_classified_so_only_a_confirmation_or_unknown_token_is_final() {
        assert!(parse_revoke(200, br#"{"status":"success"}"#).is_ok());
        for (status, body) in [
            (400, r#"{"status":"failure","error":"invalid_token"}"#),
            (400, ""),
            (400, "<html>Bad Request</html>"),
        ] {
            assert!(
                matches!(parse_revoke(status, body.as_bytes()), Err(TokenError::Refused { code, .. }) if code == "invalid_token"),
                "{status} {body}"
            );
        }
        for (status, body) in [
            (503, "<html>down</html>"),
            (500, r#"{"status":"failure","error":"invalid_token"}"#),
            (502, r#"{"status":"success"}"#),
        ] {
            assert!(
                matches!(parse_revoke(status, body.as_bytes()), Err(TokenError::Status { status: s }) if s == status),
                "{status} {body}"
            );
        }
        assert!(matches!(
            parse_revoke(400, br#"{"status":"failure","error":"Access Denied"}"#),
            Err(TokenError::Throttled)
        ));
        assert!(matches!(
            parse_revoke(200, br#"{"status":"failure"}"#),
            Err(TokenError::Refused { code, .. }) if code == "revoke_failed"
        ));
        assert!(matches!(
            parse_revoke(200, b"not json"),
            Err(TokenError::Status { status: 200 })
        ));
    }

    #[test]
    fn errors_never_echo_tokens() {
        let e = err(
            200,
            r#"{"error":"invalid_code","refresh_token":"1000.secret"}"#,
        );
        assert!(!format!("{e} {e:?}").contains("1000.secret"));
    }
}
