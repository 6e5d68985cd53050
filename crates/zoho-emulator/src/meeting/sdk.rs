//! SDK sessions: schedule one (`sdk/session`) or start one now (`sdk/session/meet`).
//!
//! Both store a meeting, like [create](super::sessions) (it is listed, read, edited,
//! reported on and, once over, recorded like any other), and answer the SDK pages' shape:
//! <https://zoho.com/meeting/api-integration/sdk/schedule-a-session.html> and
//! <https://www.zoho.com/meeting/api-integration/sdk/create-instant-session.html>, whose
//! examples are the same `{"session":{..}}`: ids as strings (`meetingKey`, `sys_id`,
//! `creatorZuid`, `offset`), `presenter`, `UID` and the `...Millisec` times as numbers,
//! `pwd` in clear, `encryptPwd` as 64 hex digits, the participants in `participants` and
//! again as the text `addedParticipants` (`"[a@x.com, b@y.com]"`).
//!
//! Scheduling takes the create page's body and checks it the same way (`topic` and
//! `startTime` required). Starting now takes `{"session":{"conferenceType":"audio"}}`
//! (`audio` or `video`, in any case; absent means `video`; anything else answers `400`
//! `INVALID_CONFERENCE_TYPE`) and opens a one-hour meeting from now, named after the user.
//!
//! The pages show no status line; both answer `201 Created`, as creating a meeting does.
//! Their error section is cut short in the stored copies: the checks and error bodies are
//! those of the other `/meeting/api/v2` endpoints.

use hyper::http::request::Parts;
use hyper::{Response, StatusCode};
use rand::distr::{Alphanumeric, SampleString};
use serde_json::{Map, Value, json};

use super::Shared;
use super::reject::{INVALID_CONFERENCE_TYPE, Invalid, Reject};
use super::sessions::{Kind, Session, parse_payload, session_fields, sha256_hex};
use super::time::{now_ms, offset_ms, start_date, zoho_time};
use crate::http::{Body, content_type, json};

/// Where the SDK pages' `startLink` points.
const START_ORIGIN: &str = "https://meeting.zoho.com";
/// Where the SDK pages' short `joinLink` points.
const JOIN_ORIGIN: &str = "https://meet.zoho.com";
/// The SDK pages' `dialinUrl`.
const DIALIN_URL: &str = "https://help.zoho.com/portal/kb/articles/zoho-meeting-dial-in-numbers";
/// The department every session belongs to.
const DEPARTMENT_NAME: &str = "My Department";
/// The length of the code in `joinLink`.
const JOIN_CODE_LEN: usize = 10;

// === impl Shared ===

impl Shared {
    /// `POST sdk/session` (`instant` false) or `POST sdk/session/meet` (`instant` true).
    pub(super) fn sdk_session(
        &self,
        instant: bool,
        parts: &Parts,
        body: &[u8],
    ) -> Result<Response<Body>, Reject> {
        let content_type = content_type(&parts.headers);
        let fields = if instant {
            self.instant_fields(content_type, body)?
        } else {
            session_fields(content_type, body)?
        };
        let rendered = self.insert_session(Kind::Meeting, &fields, Self::render_sdk)?;
        Ok(json(StatusCode::CREATED, &json!({ "session": rendered })))
    }

    /// The create fields of an instant session: now, for an hour, named after the user.
    fn instant_fields(
        &self,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<Map<String, Value>, Invalid> {
        let conference = if body.trim_ascii().is_empty() {
            None
        } else {
            let payload = parse_payload(content_type, body)?;
            payload
                .get("session")
                .and_then(|session| session.get("conferenceType"))
                .filter(|value| !value.is_null())
                .cloned()
        };
        if let Some(conference) = conference {
            let known = conference.as_str().is_some_and(|kind| {
                kind.eq_ignore_ascii_case("audio") || kind.eq_ignore_ascii_case("video")
            });
            if !known {
                return Err(INVALID_CONFERENCE_TYPE);
            }
        }
        let start = jiff::Timestamp::from_millisecond(now_ms())
            .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
            .to_string();
        let mut fields = Map::new();
        fields.insert(
            "topic".to_owned(),
            json!(format!("{}'s Meeting", self.user_name)),
        );
        fields.insert("startTime".to_owned(), json!(start));
        Ok(fields)
    }

    /// A session as the SDK pages show it.
    fn render_sdk(&self, s: &Session) -> Value {
        let mut rng = rand::rng();
        let end = s.end_ms();
        let key = s.key.to_string();
        let emails: Vec<&str> = s.participants.iter().map(|p| p.email.as_str()).collect();
        let participants: Vec<Value> = s
            .participants
            .iter()
            .map(|p| json!({ "id": p.id.to_string(), "email": p.email }))
            .collect();
        let (head, tail) = key.split_at(key.len() / 2);
        json!({
            "dialinUrl": DIALIN_URL,
            "timezone": s.timezone,
            "departmentId": department_id(self.zsoid),
            "addedParticipants": format!("[{}]", emails.join(", ")),
            "webServer": "meeting.zoho.com",
            "creatorZuid": self.zuid.to_string(),
            "source": "Meeting Create page",
            "endTimeMillisec": end,
            "encryptPwd": sha256_hex(&s.password),
            "duration": s.duration_ms,
            "sys_id": s.sys_id.to_string(),
            "accessCode": format!("{head} {tail} #"),
            "sessionType": "meeting",
            "startTime": zoho_time(s.start_ms, &s.zone),
            "meeting": { "zsoid": self.zsoid.to_string() },
            "participants": participants,
            "departmentName": DEPARTMENT_NAME,
            "creator": self.zuid.to_string(),
            "presenter": s.presenter,
            "offset": offset_ms(s.start_ms, &s.zone).to_string(),
            "isRecurring": false,
            "joinLink": format!(
                "{JOIN_ORIGIN}/{}",
                Alphanumeric.sample_string(&mut rng, JOIN_CODE_LEN)
            ),
            "agenda": s.agenda,
            "startLink": format!(
                "{START_ORIGIN}/meeting/statelessStart?signature={}&key={key}",
                Alphanumeric.sample_string(&mut rng, 32)
            ),
            "UID": s.sys_id,
            "startTimeMillisec": s.start_ms,
            "topic": s.topic,
            "endTime": zoho_time(end, &s.zone),
            "pwd": s.password,
            "meetingKey": key,
            "removedParticipants": "[]",
            "startDate": start_date(s.start_ms, &s.zone),
        })
    }
}

// === helpers ===

/// The department's id, a string of 18 digits fixed for an organisation.
fn department_id(zsoid: u64) -> String {
    format!("{:06}000000025015", zsoid % 1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meeting::testing::*;

    fn sdk_path(rest: &str) -> String {
        format!("/meeting/api/v2/700000001/sdk/{rest}")
    }

    #[tokio::test]
    async fn scheduling_stores_a_meeting_and_answers_the_sdk_shape() {
        let sb = Sandbox::start().await;
        let (status, body) = sb
            .call(
                Method::POST,
                &sdk_path("session"),
                Some(&json!({ "session": meeting_body() })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let s = &body["session"];
        let key = s["meetingKey"].as_str().unwrap();
        assert_eq!(key.len(), 10);
        assert_eq!(s["topic"], "Monthly Marketing Meeting");
        assert_eq!(s["timezone"], "Asia/Calcutta");
        assert_eq!(s["startTime"], "Jun 19, 2030 07:00 PM IST");
        assert_eq!(s["endTime"], "Jun 19, 2030 08:00 PM IST");
        assert_eq!(s["startDate"], "Jun 19, 2030 07:00 PM");
        assert_eq!(s["offset"], "19800000");
        assert_eq!(s["presenter"], 800_000_001u64);
        assert_eq!(s["creatorZuid"], "800000001");
        assert_eq!(s["meeting"]["zsoid"], "700000001");
        assert_eq!(
            s["endTimeMillisec"].as_i64().unwrap() - s["startTimeMillisec"].as_i64().unwrap(),
            3_600_000
        );
        assert_eq!(
            s["addedParticipants"],
            "[dummy@email.com, other@example.org]"
        );
        assert_eq!(s["participants"].as_array().unwrap().len(), 2);
        assert_eq!(s["UID"].to_string(), s["sys_id"].as_str().unwrap());
        assert_eq!(s["accessCode"], format!("{} {} #", &key[..5], &key[5..]));
        assert_eq!(s["pwd"].as_str().unwrap().len(), 6);
        assert_eq!(s["encryptPwd"], sha256_hex(s["pwd"].as_str().unwrap()));
        // A meeting like any other.
        let (status, got) = sb
            .call(Method::GET, &sb.org(&format!("sessions/{key}.json")), None)
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(got["session"]["topic"], "Monthly Marketing Meeting");
    }

    #[tokio::test]
    async fn scheduling_checks_the_body_as_create_does() {
        let sb = Sandbox::start().await;
        for (body, key) in [
            (
                json!({ "session": { "startTime": "Jun 19, 2030 07:00 PM" } }),
                "INVALID_TOPIC",
            ),
            (json!({ "session": { "topic": "t" } }), "INVALID_START_TIME"),
            (json!({ "topic": "t" }), "INVALID_INPUT"),
            (
                json!({ "session": { "topic": "t", "startTime": "Jun 19, 2030 07:00 PM", "timezone": "Mars/Olympus" } }),
                "INVALID_TIMEZONE",
            ),
        ] {
            let (status, answer) = sb
                .call(Method::POST, &sdk_path("session"), Some(&body))
                .await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(answer["error"]["key"], key, "{body}");
        }
    }

    #[tokio::test]
    async fn an_instant_session_starts_now_for_an_hour() {
        let sb = Sandbox::start().await;
        for body in [
            Some(json!({ "session": { "conferenceType": "audio" } })),
            Some(json!({ "session": { "conferenceType": "Video" } })),
            None,
        ] {
            let before = now_ms();
            let (status, answer) = sb
                .call(Method::POST, &sdk_path("session/meet"), body.as_ref())
                .await;
            assert_eq!(status, StatusCode::CREATED, "{body:?}");
            let s = &answer["session"];
            assert_eq!(s["topic"], "Sandbox User's Meeting");
            let start = s["startTimeMillisec"].as_i64().unwrap();
            assert!((before - 1_000..=now_ms()).contains(&start), "{start}");
            assert_eq!(s["endTimeMillisec"].as_i64().unwrap() - start, 3_600_000);
        }
        let (status, answer) = sb
            .call(
                Method::POST,
                &sdk_path("session/meet"),
                Some(&json!({ "session": { "conferenceType": "screen" } })),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(answer["error"]["key"], "INVALID_CONFERENCE_TYPE");
    }

    #[tokio::test]
    async fn sdk_sessions_need_sdk_create_post_and_the_right_org() {
        let sb = Sandbox::start().await;
        let body = json!({ "session": meeting_body() });
        let (meeting_all, _) = mint(&sb.accounts, &["ZohoMeeting.meeting.ALL"]).await;
        let (sdk_create, _) = mint(&sb.accounts, &["ZohoMeeting.sdk.CREATE"]).await;
        for path in [sdk_path("session"), sdk_path("session/meet")] {
            let (status, answer) = sb
                .call_as(Method::POST, &path, Some(&meeting_all), Some(&body))
                .await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
            assert_eq!(answer["code"], "OAUTH_SCOPE_MISMATCH");
            let (status, _) = sb
                .call_as(Method::POST, &path, Some(&sdk_create), Some(&body))
                .await;
            assert_eq!(status, StatusCode::CREATED, "{path}");
            let resp = sb
                .http
                .get(format!("{}{path}", sb.meeting.url()))
                .header("authorization", format!("Zoho-oauthtoken {}", sb.token))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
            assert_eq!(resp.headers()["allow"], "POST");
        }
        let (status, answer) = sb
            .call(Method::POST, "/meeting/api/v2/9/sdk/session", Some(&body))
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(answer["error"]["key"], "UNAUTHORIZED_USER");
    }
}
