//! The Meeting emulator's users, recordings and SDK-session answers against Zoho's
//! documented examples (`tests/fixtures/zoho/{user,recording,sdk}-*.json`), over real
//! sockets, with the shape comparison of [`meetings`](crate::meetings). zoho-meeting-proxy's
//! `tests/proxied_endpoints.rs` sends the same endpoints through the real proxy.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::meetings::{Zoho, assert_documented, fixture, mint, session_body};

/// Why a recording carries `meetingKey` and `topic`: the stored copy of the page stops
/// inside `endTime`, and third-party clients of the recording endpoints read both.
const RECORDING_EXTRAS: &[&str] = &["recordings[].meetingKey", "recordings[].topic"];
/// Why list entries carry more: Zoho documents no page for `recordings.json`; these are the
/// fields third-party clients of the list read, and `meta.moreRecords` pages it.
const LIST_EXTRAS: &[&str] = &[
    "recordings[].meetingKey",
    "recordings[].topic",
    "recordings[].startTimeinMs",
    "recordings[].durationInMins",
    "recordings[].status",
    "meta",
];

/// The session body, starting in the past so that the meeting has a recording.
fn ended_session_body() -> Value {
    let mut body = session_body();
    body["startTime"] = json!("2021-03-03T10:00:00+05:30");
    body
}

#[tokio::test]
async fn user_answers_have_the_documented_shapes() {
    let zoho = Zoho::start().await;
    let (status, listed) = zoho
        .call(Method::GET, &zoho.org("user?index=0&count=1"), None)
        .await;
    assert_documented("user-list", status, &listed, &[]);
    let user_id = listed["representation"][0]["userId"].as_str().unwrap();

    let (status, details) = zoho
        .call(Method::GET, &zoho.org(&format!("user/{user_id}")), None)
        .await;
    assert_documented("user-details", status, &details, &[]);

    // The documented "Invalid orgId" body, word for word but for our org id.
    for path in ["/api/v2/700000002/user", "/api/v2/700000002/user/1"] {
        let (status, body) = zoho.call(Method::GET, path, None).await;
        assert_documented("error-invalid-org-user", status, &body, &[]);
        assert_eq!(body, fixture("error-invalid-org-user").body, "{path}");
    }
}

#[tokio::test]
async fn recording_answers_have_the_documented_shapes() {
    let zoho = Zoho::start().await;
    let (status, created) = zoho
        .call(
            Method::POST,
            &zoho.org("sessions.json"),
            Some(&json!({ "session": ended_session_body() })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let key = created["session"]["meetingKey"].as_u64().unwrap();
    let zsoid = zoho.meeting.control().zsoid();

    let (status, got) = zoho
        .call(
            Method::GET,
            &format!("/meeting/api/v2/{zsoid}/recordings/{key}.json"),
            None,
        )
        .await;
    assert_documented("recording-get", status, &got, RECORDING_EXTRAS);

    let (status, listed) = zoho
        .call(
            Method::GET,
            &format!("/meeting/api/v2/{zsoid}/recordings.json"),
            None,
        )
        .await;
    assert_documented("recording-get", status, &listed, LIST_EXTRAS);
    assert_eq!(listed["meta"], json!({ "moreRecords": false }));

    // An unknown meeting key, another organisation: the documented bodies, word for word.
    for (name, path) in [
        (
            "error-invalid-meeting-key",
            format!("/meeting/api/v2/{zsoid}/recordings/1234567890.json"),
        ),
        (
            "error-invalid-organization",
            format!("/meeting/api/v2/700000002/recordings/{key}.json"),
        ),
    ] {
        let (status, body) = zoho.call(Method::GET, &path, None).await;
        assert_documented(name, status, &body, &[]);
        assert_eq!(body, fixture(name).body, "{path}");
    }
}

#[tokio::test]
async fn sdk_session_answers_have_the_documented_shapes() {
    let zoho = Zoho::start().await;
    let zsoid = zoho.meeting.control().zsoid();
    let (status, scheduled) = zoho
        .call(
            Method::POST,
            &format!("/meeting/api/v2/{zsoid}/sdk/session"),
            Some(&json!({ "session": session_body() })),
        )
        .await;
    assert_documented("sdk-session", status, &scheduled, &[]);

    let (status, instant) = zoho
        .call(
            Method::POST,
            &format!("/meeting/api/v2/{zsoid}/sdk/session/meet"),
            Some(&json!({ "session": { "conferenceType": "audio" } })),
        )
        .await;
    assert_documented("sdk-session-meet", status, &instant, &[]);
}

#[tokio::test]
async fn new_endpoints_answer_scope_mismatch_without_their_scope() {
    let zoho = Zoho::start().await;
    let mismatch = json!({
        "code": "OAUTH_SCOPE_MISMATCH",
        "message": "invalid oauth scope to access this URL",
        "status": "error",
    });
    let meeting_only = mint(&zoho.accounts, &["ZohoMeeting.meeting.ALL"]).await;
    let zsoid = zoho.meeting.control().zsoid();
    for (method, path) in [
        (Method::GET, format!("/api/v2/{zsoid}/user")),
        (Method::GET, format!("/api/v2/{zsoid}/user/800000001")),
        (
            Method::GET,
            format!("/meeting/api/v2/{zsoid}/recordings.json"),
        ),
        (
            Method::GET,
            format!("/meeting/api/v2/{zsoid}/recordings/1234567890.json"),
        ),
        (Method::POST, format!("/meeting/api/v2/{zsoid}/sdk/session")),
        (
            Method::POST,
            format!("/meeting/api/v2/{zsoid}/sdk/session/meet"),
        ),
    ] {
        let (status, body) = zoho.call_as(method, &path, Some(&meeting_only), None).await;
        assert_eq!(
            (status, body),
            (StatusCode::UNAUTHORIZED, mismatch.clone()),
            "{path}"
        );
    }
}
