//! Fault injection and the request log: [`MeetingControl`]'s methods and what the server
//! task records.

use std::fmt;
use std::time::Duration;

use hyper::Response;
use hyper::header::{self, HeaderValue};
use hyper::http::request::Parts;
use rand::Rng;

use super::reject::Reject;
use super::route::{access_token, api_path};
use super::{MeetingControl, MeetingRequest, REQUEST_LOG_CAPACITY, Shared, TokenCheck};
use crate::http::Body;

// === impl MeetingControl ===

impl MeetingControl {
    /// Makes the next `n` API requests answer `INVALID_OAUTHTOKEN` whatever their token
    /// ("forced token rejection"), as if Zoho had invalidated the token early.
    ///
    /// Calls add up: `reject_tokens(1)` twice rejects the next two requests. Paths outside
    /// the API prefixes neither count nor get rejected.
    pub fn reject_tokens(&self, n: u32) {
        let mut state = self.shared.lock();
        state.reject_next = state.reject_next.saturating_add(n);
    }

    /// Revokes the access token in use `n` times, as Zoho does when a user removes the
    /// connection or an admin rotates access: each of the next `n` API requests whose token
    /// has already passed the token check once (since this call) finds it revoked and is
    /// answered `INVALID_OAUTHTOKEN`, and that token stays rejected. A token is accepted at
    /// least once before it is revoked, so a proxy that refreshes and replays serves every
    /// request. Calls add up.
    pub fn revoke_tokens_in_use(&self, n: u32) {
        let mut state = self.shared.lock();
        state.revoke_next = state.revoke_next.saturating_add(n);
    }

    /// Rejects every API request's token while `on`; pending
    /// [`reject_tokens`](Self::reject_tokens) rejections are kept for later.
    pub fn reject_all_tokens(&self, on: bool) {
        self.shared.lock().reject_all = on;
    }

    /// Sets the delay added before every answer from now on.
    pub fn set_latency(&self, d: Duration) {
        self.shared.lock().latency = d;
    }

    /// Sets the share of API requests answered `500`. Values are clamped to 0.0–1.0, and
    /// NaN counts as 0.0.
    pub fn set_failure_rate(&self, r: f64) {
        self.shared.lock().failure_rate = sanitize_rate(r);
    }

    /// Returns the request log, oldest first (at most [`REQUEST_LOG_CAPACITY`] entries).
    pub fn requests(&self) -> Vec<MeetingRequest> {
        self.shared.lock().requests.iter().cloned().collect()
    }

    /// Empties the request log; [`request_count`](Self::request_count) keeps counting.
    pub fn clear_requests(&self) {
        self.shared.lock().requests.clear();
    }

    /// Returns how many requests were received, on any path, since the start.
    pub fn request_count(&self) -> u64 {
        self.shared.lock().request_count
    }

    /// Returns the organisation id the emulator serves.
    pub fn zsoid(&self) -> u64 {
        self.shared.zsoid
    }

    /// Returns the Zoho user id of the organisation's user.
    pub fn zuid(&self) -> u64 {
        self.shared.zuid
    }

    /// Returns the emulator's base URL, as [`MeetingEmulator::url`](super::MeetingEmulator::url) does.
    pub fn url(&self) -> String {
        self.shared.url.clone()
    }

    /// Returns the token check of every API request whose token was checked, oldest first
    /// (at most [`REQUEST_LOG_CAPACITY`] entries): the token, the request's `X-Request-Id`,
    /// whether the token was accepted, and when. Requests outside the API prefixes and
    /// bodies refused before the check are not listed. The log holds tokens in clear, for
    /// tests (a proxy's: was a rejected token sent again? an expired one?).
    pub fn token_checks(&self) -> Vec<TokenCheck> {
        self.shared.lock().token_checks.iter().cloned().collect()
    }
}

impl fmt::Debug for MeetingControl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MeetingControl")
            .field("url", &self.shared.url)
            .finish()
    }
}

// === impl TokenCheck ===

impl fmt::Debug for TokenCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCheck")
            .field("token", &self.token.as_ref().map(|_| crate::REDACTED))
            .field("request_id", &self.request_id)
            .field("accepted", &self.accepted)
            .field("at", &self.at)
            .finish()
    }
}

// === impl MeetingRequest ===

impl fmt::Debug for MeetingRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(name, value)| {
                let value = if is_secret_header(name) {
                    crate::REDACTED
                } else {
                    value.as_str()
                };
                (name.as_str(), value)
            })
            .collect();
        f.debug_struct("MeetingRequest")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("query", &self.query)
            .field(
                "authorization",
                &self.authorization.as_ref().map(|_| crate::REDACTED),
            )
            .field("body_len", &self.body_len)
            .field("headers", &headers)
            .finish()
    }
}
// === impl Shared ===

impl Shared {
    /// Logs a request and returns the latency to add to its answer.
    pub(super) fn record(&self, parts: &Parts, body_len: usize) -> Duration {
        let headers: Vec<(String, String)> = parts
            .headers
            .iter()
            .map(|(name, value)| (name.as_str().to_owned(), header_text(value)))
            .collect();
        let record = MeetingRequest {
            method: parts.method.as_str().to_owned(),
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().map(str::to_owned),
            authorization: parts.headers.get(header::AUTHORIZATION).map(header_text),
            body_len,
            headers,
        };
        let mut state = self.lock();
        state.request_count += 1;
        if state.requests.len() >= REQUEST_LOG_CAPACITY {
            state.requests.pop_front();
        }
        state.requests.push_back(record);
        state.latency
    }

    /// Logs the token check of an API request answered `answer` (see
    /// [`MeetingControl::token_checks`]); requests whose body was refused never reached it.
    pub(super) fn record_token_check(
        &self,
        parts: &Parts,
        answer: &Result<Response<Body>, Reject>,
    ) {
        if api_path(parts.uri.path(), self.product).is_none()
            || matches!(answer, Err(Reject::TooLarge | Reject::BadBody))
        {
            return;
        }
        let check = TokenCheck {
            token: access_token(&parts.headers).map(str::to_owned),
            request_id: parts.headers.get("x-request-id").map(header_text),
            accepted: !matches!(answer, Err(Reject::InvalidToken)),
            at: tokio::time::Instant::now(),
        };
        let mut state = self.lock();
        if state.token_checks.len() >= REQUEST_LOG_CAPACITY {
            state.token_checks.pop_front();
        }
        state.token_checks.push_back(check);
    }

    /// Whether fault injection picks this request.
    pub(super) fn should_fail(&self) -> bool {
        let rate = self.lock().failure_rate;
        rate > 0.0 && rand::rng().random::<f64>() < rate
    }
}

// === helpers ===

/// A failure rate in 0.0–1.0; NaN counts as 0.0.
pub(super) fn sanitize_rate(rate: f64) -> f64 {
    if rate.is_nan() {
        0.0
    } else {
        rate.clamp(0.0, 1.0)
    }
}

/// A header value as text, lossily decoded when it is not visible ASCII.
pub(super) fn header_text(value: &HeaderValue) -> String {
    match value.to_str() {
        Ok(text) => text.to_owned(),
        Err(_) => String::from_utf8_lossy(value.as_bytes()).into_owned(),
    }
}

/// Whether a (lower-case) header name carries credentials.
pub(super) fn is_secret_header(name: &str) -> bool {
    matches!(name, "authorization" | "proxy-authorization" | "cookie")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meeting::testing::*;

    #[tokio::test]
    async fn forced_rejection_rejects_that_many_requests_or_all_while_on() {
        let sb = Sandbox::start().await;
        let control = sb.meeting.control();
        let path = "/api/v2/user.json";

        control.reject_tokens(1);
        assert_eq!(
            sb.call(Method::GET, path, None).await,
            (StatusCode::BAD_REQUEST, invalid_token())
        );
        assert_eq!(sb.call(Method::GET, path, None).await.0, StatusCode::OK);

        control.reject_tokens(1);
        control.reject_tokens(1);
        // Paths outside the API neither count nor get rejected.
        assert_eq!(
            sb.call(Method::GET, "/elsewhere", None).await.0,
            StatusCode::NOT_FOUND
        );
        for _ in 0..2 {
            assert_eq!(
                sb.call(Method::GET, path, None).await.0,
                StatusCode::BAD_REQUEST
            );
        }
        assert_eq!(sb.call(Method::GET, path, None).await.0, StatusCode::OK);

        control.reject_all_tokens(true);
        for _ in 0..3 {
            assert_eq!(
                sb.call(Method::GET, path, None).await,
                (StatusCode::BAD_REQUEST, invalid_token())
            );
        }
        control.reject_all_tokens(false);
        assert_eq!(sb.call(Method::GET, path, None).await.0, StatusCode::OK);
    }

    #[tokio::test]
    async fn tokens_in_use_are_revoked_after_serving_once_and_stay_revoked() {
        let sb = Sandbox::start().await;
        let control = sb.meeting.control();
        let path = "/api/v2/user.json";
        control.revoke_tokens_in_use(1);
        // The token serves once, then is revoked, and stays so.
        assert_eq!(sb.call(Method::GET, path, None).await.0, StatusCode::OK);
        for _ in 0..2 {
            assert_eq!(
                sb.call(Method::GET, path, None).await,
                (StatusCode::BAD_REQUEST, invalid_token())
            );
        }
    }

    #[tokio::test]
    async fn failure_rate_one_answers_500_after_the_token_check() {
        let sb = Sandbox::with(MeetingOptions {
            failure_rate: 1.0,
            ..MeetingOptions::default()
        })
        .await;
        let path = sb.org("sessions.json");
        for _ in 0..3 {
            let (status, body) = sb.call(Method::GET, &path, None).await;
            assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
            assert_eq!(
                body,
                json!({ "error": { "code": 500, "message": "Internal server error" } })
            );
        }
        // A bad token is still a token error.
        let (status, body) = sb.call_as(Method::GET, &path, None, None).await;
        assert_eq!((status, body), (StatusCode::BAD_REQUEST, invalid_token()));
        sb.meeting.control().set_failure_rate(0.0);
        assert_eq!(sb.call(Method::GET, &path, None).await.0, StatusCode::OK);
        sb.meeting.control().set_failure_rate(f64::NAN);
        assert_eq!(sb.call(Method::GET, &path, None).await.0, StatusCode::OK);
        sb.meeting.control().set_failure_rate(7.0);
        assert_eq!(
            sb.call(Method::GET, &path, None).await.0,
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }

    #[tokio::test]
    async fn latency_delays_every_answer() {
        let latency = Duration::from_millis(150);
        let sb = Sandbox::with(MeetingOptions {
            latency,
            ..MeetingOptions::default()
        })
        .await;
        for path in ["/api/v2/user.json", "/nope"] {
            let started = Instant::now();
            sb.call(Method::GET, path, None).await;
            assert!(started.elapsed() >= latency, "{path}");
        }
        sb.meeting.control().set_latency(Duration::from_millis(300));
        let started = Instant::now();
        sb.call_as(Method::GET, "/api/v2/user.json", None, None)
            .await;
        assert!(started.elapsed() >= Duration::from_millis(300));
    }

    #[tokio::test]
    async fn request_log_keeps_authorization_and_headers() {
        let sb = Sandbox::start().await;
        let control = sb.meeting.control();
        let body = json!({ "session": meeting_body() });
        let path = sb.org("sessions.json");
        let resp = sb
            .http
            .post(format!("{}{path}?a=1&b=%20", sb.meeting.url()))
            .header("authorization", format!("Zoho-oauthtoken {}", sb.token))
            .header("X-Custom", "value")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::CREATED);
        sb.call_as(Method::GET, "/other", None, None).await;

        let log = control.requests();
        assert_eq!(log.len(), 2);
        assert_eq!(control.request_count(), 2);
        let first = &log[0];
        assert_eq!(first.method, "POST");
        assert_eq!(first.path, path);
        assert_eq!(first.query.as_deref(), Some("a=1&b=%20"));
        assert_eq!(
            first.authorization.as_deref(),
            Some(format!("Zoho-oauthtoken {}", sb.token).as_str())
        );
        assert_eq!(first.body_len, serde_json::to_vec(&body).unwrap().len());
        let header = |name: &str| {
            first
                .headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(header("x-custom"), Some("value"));
        assert_eq!(header("content-type"), Some("application/json"));
        assert!(header("host").is_some());
        assert!(
            first
                .headers
                .iter()
                .all(|(n, _)| *n == n.to_ascii_lowercase())
        );
        assert_eq!(log[1].authorization, None);
        assert_eq!(log[1].query, None);
        assert_eq!(log[1].body_len, 0);

        // Debug output never shows the token.
        let debug = format!("{first:?}");
        assert!(!debug.contains(&sb.token), "{debug}");
        assert!(debug.contains("x-custom"));

        control.clear_requests();
        assert!(control.requests().is_empty());
        assert_eq!(control.request_count(), 2);
    }

    #[tokio::test]
    async fn token_checks_list_each_api_request_with_its_verdict() {
        let sb = Sandbox::start().await;
        let control = sb.meeting.control();
        let path = "/api/v2/user.json";
        let send = |token: Option<String>, id: &'static str| {
            let mut req = sb
                .http
                .get(format!("{}{path}", sb.meeting.url()))
                .header("x-request-id", id);
            if let Some(token) = token {
                req = req.header("authorization", format!("Zoho-oauthtoken {token}"));
            }
            req.send()
        };
        assert_eq!(
            send(Some(sb.token.clone()), "a").await.unwrap().status(),
            StatusCode::OK
        );
        control.reject_all_tokens(true);
        send(Some(sb.token.clone()), "b").await.unwrap();
        control.reject_all_tokens(false);
        send(None, "c").await.unwrap();
        send(Some("1000.unknown.token".into()), "d").await.unwrap();
        // Outside the API: no token check.
        sb.call(Method::GET, "/elsewhere", None).await;
        // A body too large is refused before the check.
        sb.http
            .post(format!("{}{}", sb.meeting.url(), sb.org("sessions.json")))
            .header("authorization", format!("Zoho-oauthtoken {}", sb.token))
            .body(vec![b' '; super::super::MAX_BODY_BYTES + 1])
            .send()
            .await
            .unwrap();

        let checks = control.token_checks();
        let seen: Vec<(Option<&str>, Option<&str>, bool)> = checks
            .iter()
            .map(|c| (c.token.as_deref(), c.request_id.as_deref(), c.accepted))
            .collect();
        assert_eq!(
            seen,
            [
                (Some(sb.token.as_str()), Some("a"), true),
                (Some(sb.token.as_str()), Some("b"), false),
                (None, Some("c"), false),
                (Some("1000.unknown.token"), Some("d"), false),
            ]
        );
        assert!(checks.windows(2).all(|w| w[0].at <= w[1].at));
        let debug = format!("{checks:?}");
        assert!(!debug.contains(&sb.token), "{debug}");
    }
}
