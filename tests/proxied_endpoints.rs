//! The Meeting emulator's users and recordings endpoints through the real proxy: listed and
//! downloaded with the token the proxy injects. The emulator's own answers are checked
//! against Zoho's documented examples in `crates/zoho-emulator/tests`.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{self, TestProxy, client};

/// The documented create body, with our own values, starting in the past so that the meeting
/// has a recording.
fn ended_session_body() -> Value {
    json!({
        "topic": "Quarterly review",
        "agenda": "Numbers first.",
        "presenter": 800_000_001u64,
        "startTime": "2021-03-03T10:00:00+05:30",
        "duration": 3_600_000,
        "timezone": "Asia/Calcutta",
        "participants": [{ "email": "guest@example.com" }],
    })
}

#[tokio::test]
async fn the_proxy_lists_users_and_downloads_recordings_with_its_token() {
    let accounts = support::emulator(support::options(Duration::from_secs(3600))).await;
    let meeting = support::meeting_emulator(&accounts).await;
    let refresh = accounts.control().issue_refresh_token(&[
        "ZohoMeeting.meeting.ALL",
        "ZohoMeeting.user.READ",
        "ZohoMeeting.recording.READ",
    ]);
    let proxy = TestProxy::start(
        &accounts,
        &meeting.url(),
        &[("oauth.refresh_token", refresh.as_str().into())],
    )
    .await;
    proxy.ready().await;
    let zsoid = meeting.control().zsoid();
    let http = client();

    // No Authorization from the client: the proxy adds its own.
    let users: Value = http
        .get(proxy.url(&format!("/api/v2/{zsoid}/user")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(users["representation"][0]["zuid"], "800000001", "{users}");

    let created = http
        .post(proxy.url(&format!("/api/v2/{zsoid}/sessions.json")))
        .json(&json!({ "session": ended_session_body() }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let created: Value = created.json().await.unwrap();
    let key = created["session"]["meetingKey"].as_u64().unwrap();

    let recordings: Value = http
        .get(proxy.url(&format!("/meeting/api/v2/{zsoid}/recordings/{key}.json")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let recording = &recordings["recordings"][0];
    // The download link names the emulator; the same path through the proxy downloads it.
    let link = recording["downloadUrl"].as_str().unwrap();
    let path = link.strip_prefix(meeting.url().as_str()).unwrap();
    let video = http.get(proxy.url(path)).send().await.unwrap();
    assert_eq!(video.status(), StatusCode::OK);
    assert_eq!(video.headers()["content-type"], "video/mp4");
    let bytes = video.bytes().await.unwrap();
    assert_eq!(
        bytes.len().to_string(),
        recording["fileSize"].as_str().unwrap()
    );

    // Every request reached the emulator with the proxy's token.
    let seen = meeting.control().requests();
    assert_eq!(seen.len(), 4);
    for request in &seen {
        let auth = request.authorization.as_deref().unwrap_or_default();
        let access = auth.strip_prefix("Zoho-oauthtoken ").unwrap();
        assert!(
            accounts.control().validate_access_token(access).is_some(),
            "{}",
            request.path
        );
    }
}
