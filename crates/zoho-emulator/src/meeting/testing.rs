//! Test support shared by the emulator's unit tests: a sandbox of both emulators and a
//! client.
//!
//! Compiled only for tests (`#[cfg(test)]` here and where the parent declares it): its
//! `unwrap`s fail a test, never the proxy.
#![cfg(test)]

pub(super) use std::time::Duration;

pub(super) use hyper::{Method, StatusCode};
pub(super) use reqwest::header::CONTENT_TYPE;
pub(super) use serde_json::{Value, json};
pub(super) use tokio::time::Instant;

pub(super) use super::{API_PREFIX, MeetingEmulator, MeetingOptions};
pub(super) use crate::accounts::{AccountsEmulator, AccountsOptions, TOKEN_PATH};
use crate::http::JSON_CONTENT_TYPE;
pub(super) use crate::http::testing::localhost;

/// Every scope the emulator checks.
pub(super) const ALL_SCOPES: &[&str] = &[
    "ZohoMeeting.manageOrg.READ",
    "ZohoMeeting.meeting.ALL",
    "ZohoMeeting.webinar.ALL",
    "ZohoMeeting.user.READ",
    "ZohoMeeting.recording.READ",
    "ZohoMeeting.sdk.CREATE",
];

/// A plain reqwest client.
pub(super) fn client() -> reqwest::Client {
    reqwest::Client::new()
}

/// An accounts emulator, a Meeting emulator wired to it, and a token with every scope.
pub(super) struct Sandbox {
    pub(super) accounts: AccountsEmulator,
    pub(super) meeting: MeetingEmulator,
    pub(super) token: String,
    pub(super) http: reqwest::Client,
}

impl Sandbox {
    pub(super) async fn start() -> Self {
        Self::with(MeetingOptions::default()).await
    }

    pub(super) async fn with(opts: MeetingOptions) -> Self {
        let accounts = AccountsEmulator::start(localhost(), AccountsOptions::default())
            .await
            .unwrap();
        let meeting = MeetingEmulator::start(localhost(), opts, accounts.control())
            .await
            .unwrap();
        let (token, _) = mint(&accounts, ALL_SCOPES).await;
        Self {
            accounts,
            meeting,
            token,
            http: client(),
        }
    }

    /// `/api/v2/{zsoid}/{rest}`.
    pub(super) fn org(&self, rest: &str) -> String {
        format!("{API_PREFIX}/{}/{rest}", self.meeting.control().zsoid())
    }

    /// Sends a request with `token` (if any) and returns the status and JSON body
    /// (`Null` when the body is empty).
    pub(super) async fn call_as(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.meeting.url()));
        if let Some(token) = token {
            req = req.header("authorization", format!("Zoho-oauthtoken {token}"));
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        read(req.send().await.unwrap()).await
    }

    pub(super) async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        self.call_as(method, path, Some(&self.token), body).await
    }

    /// Creates a meeting and returns its rendering.
    pub(super) async fn create(&self, session: Value) -> Value {
        let (status, body) = self
            .call(
                Method::POST,
                &self.org("sessions.json"),
                Some(&json!({ "session": session })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["session"].clone()
    }
}

/// Mints an access token for `scopes`; returns it with its refresh token.
pub(super) async fn mint(accounts: &AccountsEmulator, scopes: &[&str]) -> (String, String) {
    let refresh = accounts.control().issue_refresh_token(scopes);
    let opts = AccountsOptions::default();
    let body: Value = client()
        .post(format!("{}{TOKEN_PATH}", accounts.url()))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.as_str()),
            ("client_id", opts.client_id.as_str()),
            ("client_secret", opts.client_secret.as_str()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    (body["access_token"].as_str().unwrap().to_owned(), refresh)
}

/// The status and JSON body of a response; every non-empty body must be JSON.
pub(super) async fn read(resp: reqwest::Response) -> (StatusCode, Value) {
    let status = resp.status();
    let content_type = resp.headers().get(CONTENT_TYPE).cloned();
    let bytes = resp.bytes().await.unwrap();
    if bytes.is_empty() {
        return (status, Value::Null);
    }
    assert_eq!(content_type.unwrap(), JSON_CONTENT_TYPE);
    (status, serde_json::from_slice(&bytes).unwrap())
}

pub(super) fn invalid_token() -> Value {
    json!({ "error": { "code": 2000, "message": "INVALID_OAUTHTOKEN" } })
}

pub(super) fn meeting_body() -> Value {
    json!({
        "topic": "Monthly Marketing Meeting",
        "agenda": "Points to get noted during meeting.",
        "presenter": 800_000_001u64,
        "startTime": "Jun 19, 2030 07:00 PM",
        "duration": 3_600_000,
        "timezone": "Asia/Calcutta",
        "participants": [{ "email": "dummy@email.com" }, { "email": "other@example.org" }],
    })
}

/// ISO 8601 for milliseconds since the epoch, in UTC.
pub(super) fn iso(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).unwrap().to_string()
}

/// The `meetingKey` of a rendered meeting (a JSON number, as Zoho's meeting pages show it),
/// as a path segment.
pub(super) fn key_of(session: &Value) -> String {
    session["meetingKey"]
        .as_u64()
        .expect("a numeric meetingKey")
        .to_string()
}
