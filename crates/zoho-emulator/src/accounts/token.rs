//! `POST /oauth/v2/token`: the `authorization_code` and `refresh_token` grants.
//!
//! Client credentials come as parameters or as HTTP Basic; parameters come in the query
//! string or a form body (the body wins). Every answer is JSON with **HTTP 200**, errors
//! included, except outages and injected server errors (HTML). See the
//! [module docs](super) for the shape of a successful answer and the throttle body.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use super::{
    Failure, MAX_BODY_BYTES, MINT_WINDOW, RefreshToken, Shared, State, TokenRequestRecord,
    body_error_response, html_page, json, new_token,
};
use crate::http::{Body, BodyError, content_type, is_form, read_body};

/// Zoho's (English) text for a throttled token request.
const THROTTLE_DESCRIPTION: &str =
    "You have made too many requests continuously. Please try again after some time.";

/// Request parameters merged from the query string and a form body.
#[derive(Default)]
pub(super) struct Params {
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
    /// [`AccountsControl::set_throttling`](super::AccountsControl::set_throttling) is on.
    Throttling(StatusCode),
    Issued {
        access_token: String,
        refresh_token: Option<String>,
        scopes: Vec<String>,
        lifetime: Duration,
    },
}

// === impl Shared ===

impl Shared {
    /// Whether `id` and `secret` are the registered client's credentials.
    fn client_matches(&self, state: &State, id: &str, secret: &str) -> bool {
        let secret_digest: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
        let secret_ok = constant_time_eq(&secret_digest, &state.client_secret_digest);
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
        if let Some(status) = state.throttling {
            return TokenOutcome::Throttling(
                StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
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
            (Some(id), Some(secret)) if self.client_matches(&state, id, secret) => {}
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
            TokenOutcome::Throttling(status) => json(status, &throttle_body()),
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
                let (expires_in, expires_in_sec) =
                    expiry_fields(lifetime, self.expires_in_seconds_only);
                json(
                    StatusCode::OK,
                    &TokenResponse {
                        access_token: &access_token,
                        refresh_token: refresh_token.as_deref(),
                        scope: scopes.join(" "),
                        api_domain: self.location.zohoapis_url(),
                        token_type: "Bearer",
                        expires_in,
                        expires_in_sec,
                    },
                )
            }
        }
    }
}

// === impl Params ===

impl Params {
    /// Returns a parameter's value.
    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }
}

// === the endpoint ===

/// `POST /oauth/v2/token`.
pub(super) async fn handle(req: Request<Incoming>, shared: &Shared) -> Response<Body> {
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
    let delay = shared.lock().answer_delay;
    if !delay.is_zero() {
        // The token is minted already: a client that stops waiting does not undo it.
        tokio::time::sleep(delay).await;
    }
    shared.token_response(outcome)
}

// === helpers ===

/// Reads the query string and, for a form-encoded request, the body (at most
/// [`MAX_BODY_BYTES`]). Body parameters override query parameters of the same name.
///
/// On error, also returns the request's content type so that it can still be logged.
pub(super) async fn read_params(
    req: Request<Incoming>,
) -> Result<Params, (BodyError, Option<String>)> {
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

/// `(expires_in, expires_in_sec)` for a token living `lifetime`: milliseconds plus seconds,
/// as Zoho's documented example has them, or seconds alone with `seconds_only`.
fn expiry_fields(lifetime: Duration, seconds_only: bool) -> (u64, Option<u64>) {
    if seconds_only {
        (lifetime.as_secs(), None)
    } else {
        let millis = u64::try_from(lifetime.as_millis()).unwrap_or(u64::MAX);
        (millis, Some(lifetime.as_secs()))
    }
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
pub(super) fn throttle_body() -> serde_json::Value {
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

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::*;
    use super::*;

    use reqwest::header::CONTENT_TYPE;
    use serde_json::Value;

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

    /// The answer keys and JSON types of Zoho's documented example (Zoho Writer's OAuth step 4,
    /// <https://zoho.com.cn/writer/help/api/v1/oauth-step4.html>), plus the optional `scope`.
    #[tokio::test]
    async fn refresh_answers_milliseconds_and_expires_in_sec_by_default() {
        let emu = start(AccountsOptions::default()).await;
        let token = emu.control().issue_refresh_token(&[SCOPE]);
        let (status, body) = refresh(&emu, &token).await;
        assert_eq!(status, StatusCode::OK);
        let mut keys: Vec<&str> = body
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "access_token",
                "api_domain",
                "expires_in",
                "expires_in_sec",
                "scope",
                "token_type"
            ]
        );
        assert_token_shape(body["access_token"].as_str().unwrap());
        assert_eq!(body["expires_in"], 3_600_000);
        assert!(body["expires_in"].is_u64());
        assert_eq!(body["expires_in_sec"], 3600);
        assert!(body["expires_in_sec"].is_u64());
        assert_eq!(body["scope"], SCOPE);
        assert_eq!(body["api_domain"], "https://www.zohoapis.com");
        assert_eq!(body["token_type"], "Bearer");

        emu.control().set_token_lifetime(Duration::from_secs(60));
        let (_, body) = refresh(&emu, &token).await;
        assert_eq!(body["expires_in"], 60_000);
        assert_eq!(body["expires_in_sec"], 60);
        let info = emu
            .control()
            .validate_access_token(body["access_token"].as_str().unwrap())
            .unwrap();
        assert!(info.expires_in <= Duration::from_secs(60));

        // Below a second, the milliseconds keep what the seconds cannot.
        emu.control()
            .set_token_lifetime(Duration::from_millis(1500));
        let (_, body) = refresh(&emu, &token).await;
        assert_eq!(body["expires_in"], 1500);
        assert_eq!(body["expires_in_sec"], 1);
    }

    #[tokio::test]
    async fn seconds_only_mode_answers_expires_in_seconds_alone() {
        let emu = start(AccountsOptions {
            expires_in_seconds_only: true,
            ..AccountsOptions::default()
        })
        .await;
        let token = emu.control().issue_refresh_token(&[SCOPE]);
        let (status, body) = refresh(&emu, &token).await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.get("refresh_token").is_none());
        assert_eq!(body["expires_in"], 3600);
        assert!(body.get("expires_in_sec").is_none());
        assert_eq!(body["api_domain"], "https://www.zohoapis.com");
        assert_eq!(body["token_type"], "Bearer");

        let code = emu.control().issue_grant_code(&[SCOPE]);
        let (_, body) = post_token(
            &emu,
            &[("grant_type", "authorization_code"), ("code", &code)],
        )
        .await;
        assert!(body["refresh_token"].is_string(), "{body}");
        assert_eq!(body["expires_in"], 3600);
        assert!(body.get("expires_in_sec").is_none());
    }

    #[tokio::test]
    async fn api_domain_and_location_follow_the_data_centre() {
        use zoho_data_centers::DataCenter;
        // zoho-facts.md §3; Canada's API domain is zohoapis.ca, not zohocloud.
        let expected = [
            (DataCenter::Us, "us", "https://www.zohoapis.com"),
            (DataCenter::Eu, "eu", "https://www.zohoapis.eu"),
            (DataCenter::In, "in", "https://www.zohoapis.in"),
            (DataCenter::Au, "au", "https://www.zohoapis.com.au"),
            (DataCenter::Jp, "jp", "https://www.zohoapis.jp"),
            (DataCenter::Ca, "ca", "https://www.zohoapis.ca"),
            (DataCenter::Sa, "sa", "https://www.zohoapis.sa"),
            (DataCenter::Uk, "uk", "https://www.zohoapis.uk"),
            (DataCenter::Cn, "cn", "https://www.zohoapis.com.cn"),
        ];
        assert_eq!(expected.len(), zoho_data_centers::ALL.len());
        for (dc, name, api_domain) in expected {
            let emu = start(AccountsOptions {
                location: dc,
                ..AccountsOptions::default()
            })
            .await;
            let token = emu.control().issue_refresh_token(&[SCOPE]);
            let (_, body) = refresh(&emu, &token).await;
            assert_eq!(body["api_domain"], api_domain, "{dc}");
            let query = consent(&emu, &[("access_type", "offline")]).await;
            assert_eq!(query["location"], name);
            let (_, body) = post_token(
                &emu,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &query["code"]),
                    ("redirect_uri", "http://localhost:9/cb"),
                ],
            )
            .await;
            assert_eq!(body["api_domain"], api_domain, "{dc}");
            emu.shutdown().await;
        }
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
        assert_eq!(
            body,
            serde_json::json!({
                "error": "Access Denied",
                "error_description": "You have made too many requests continuously. Please try again after some time.",
                "status": "failure",
            })
        );
        // The limit is per refresh token.
        let other = control.issue_refresh_token(&[SCOPE]);
        let (_, body) = refresh(&emu, &other).await;
        assert!(body["access_token"].is_string(), "{body}");
        assert_eq!(control.mint_count(), 4);
        assert_eq!(control.token_requests(), 5);
    }

    #[tokio::test]
    async fn by_default_the_eleventh_mint_in_ten_minutes_gets_zohos_throttle_with_http_200() {
        // zoho-facts.md §5 and §6: ten tokens per ten minutes, then this exact body, HTTP 200.
        let emu = start(AccountsOptions::default()).await;
        let token = emu.control().issue_refresh_token(&[SCOPE]);
        for _ in 0..10 {
            let (_, body) = refresh(&emu, &token).await;
            assert!(body["access_token"].is_string(), "{body}");
        }
        let (status, body) = refresh(&emu, &token).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            body,
            serde_json::json!({
                "error_description": "You have made too many requests continuously. Please try again after some time.",
                "error": "Access Denied",
                "status": "failure",
            })
        );
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
}
