//! The Meeting emulator's meeting, webinar and participant-report answers against Zoho's
//! documented examples, over real sockets: each `tests/fixtures/zoho/{meeting,webinar,
//! participant,error}-*.json` restates one example's shape (same status, wrapper, field
//! names and JSON value types, with our own values), and the emulator's real answer must have
//! that shape. Fields the emulator adds beyond a page's example are listed here, each with
//! its reason; any other extra field fails.

use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use zoho_emulator::accounts::{AccountsEmulator, AccountsOptions, TOKEN_PATH};
use zoho_emulator::meeting::MeetingEmulator;

use crate::support::{self, client};

/// One documented example, restated.
#[derive(Deserialize)]
pub(crate) struct Fixture {
    pub(crate) source: String,
    pub(crate) status: u16,
    pub(crate) body: Value,
}

/// Reads `tests/fixtures/zoho/{name}.json`.
pub(crate) fn fixture(name: &str) -> Fixture {
    let path = format!(
        "{}/tests/fixtures/zoho/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let fixture: Fixture = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert!(
        fixture.source.starts_with("https://") && fixture.source.contains("zoho.com/"),
        "{name}: the source is a Zoho page"
    );
    fixture
}

/// The JSON type of a value, as the comparison sees it.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Every way `actual` differs in shape from `doc`: a type, a missing field, an extra field
/// not in `extras` (paths such as `session.meetingEmbedUrl`; array items are `[]`), or an
/// empty array where the example has items (nothing would be compared).
fn shape_differences(doc: &Value, actual: &Value, at: &str, extras: &[&str]) -> Vec<String> {
    if kind(doc) != kind(actual) {
        return vec![format!(
            "{at}: {} in the docs, {} here",
            kind(doc),
            kind(actual)
        )];
    }
    let child = |name: &str| {
        if at.is_empty() {
            name.to_owned()
        } else {
            format!("{at}.{name}")
        }
    };
    match (doc, actual) {
        (Value::Object(doc), Value::Object(actual)) => {
            let mut out = Vec::new();
            for (name, value) in doc {
                match actual.get(name) {
                    Some(got) => out.extend(shape_differences(value, got, &child(name), extras)),
                    None => out.push(format!("{}: missing", child(name))),
                }
            }
            for name in actual.keys() {
                if !doc.contains_key(name) && !extras.contains(&child(name).as_str()) {
                    out.push(format!("{}: not in the docs", child(name)));
                }
            }
            out
        }
        (Value::Array(doc), Value::Array(actual)) => match doc.first() {
            None => Vec::new(),
            Some(_) if actual.is_empty() => vec![format!("{at}: empty, nothing to compare")],
            Some(item) => actual
                .iter()
                .flat_map(|got| shape_differences(item, got, &format!("{at}[]"), extras))
                .collect(),
        },
        _ => Vec::new(),
    }
}

/// Checks an answer against a fixture: status and shape.
pub(crate) fn assert_documented(name: &str, status: StatusCode, body: &Value, extras: &[&str]) {
    let fixture = fixture(name);
    assert_eq!(status.as_u16(), fixture.status, "{name}: {body}");
    let differences = shape_differences(&fixture.body, body, "", extras);
    assert!(
        differences.is_empty(),
        "{name} ({}): {differences:#?}\n{body:#}",
        fixture.source
    );
}

/// Both emulators and a token with every scope the Meeting emulator checks.
pub(crate) struct Zoho {
    pub(crate) accounts: AccountsEmulator,
    pub(crate) meeting: MeetingEmulator,
    pub(crate) token: String,
}

impl Zoho {
    pub(crate) async fn start() -> Self {
        let accounts = support::emulator(AccountsOptions::default()).await;
        let meeting = support::meeting_emulator(&accounts).await;
        let token = mint(
            &accounts,
            &[
                "ZohoMeeting.manageOrg.READ",
                "ZohoMeeting.meeting.ALL",
                "ZohoMeeting.webinar.ALL",
                "ZohoMeeting.user.READ",
                "ZohoMeeting.recording.READ",
                "ZohoMeeting.sdk.CREATE",
            ],
        )
        .await;
        Self {
            accounts,
            meeting,
            token,
        }
    }

    pub(crate) fn org(&self, rest: &str) -> String {
        format!("/api/v2/{}/{rest}", self.meeting.control().zsoid())
    }

    pub(crate) async fn call_as(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        call_at(&self.meeting.url(), method, path, token, body).await
    }

    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        self.call_as(method, path, Some(&self.token), body).await
    }
}

/// Sends a request to the emulator at `base` with `token` (if any) and returns the status and
/// JSON body (`Null` when empty).
pub(crate) async fn call_at(
    base: &str,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> (StatusCode, Value) {
    let mut request = client().request(method, format!("{base}{path}"));
    if let Some(token) = token {
        request = request.header("authorization", format!("Zoho-oauthtoken {token}"));
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let bytes = response.bytes().await.unwrap();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    };
    (status, body)
}

/// Mints an access token for `scopes` at the accounts emulator.
pub(crate) async fn mint(accounts: &AccountsEmulator, scopes: &[&str]) -> String {
    let refresh = accounts.control().issue_refresh_token(scopes);
    refresh_with(accounts, &refresh).await
}

/// Mints an access token from `refresh`.
pub(crate) async fn refresh_with(accounts: &AccountsEmulator, refresh: &str) -> String {
    let opts = AccountsOptions::default();
    let body: Value = client()
        .post(format!("{}{TOKEN_PATH}", accounts.url()))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
            ("client_id", opts.client_id.as_str()),
            ("client_secret", opts.client_secret.as_str()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

/// The documented create body, with our own values.
pub(crate) fn session_body() -> Value {
    json!({
        "topic": "Quarterly review",
        "agenda": "Numbers first.",
        "presenter": 800_000_001u64,
        "startTime": "Mar 03, 2031 10:00 AM",
        "duration": 3_600_000,
        "timezone": "Asia/Calcutta",
        "participants": [{ "email": "guest@example.com" }],
    })
}

/// Why create answers `meetingEmbedUrl`: the stored copy of the create page's example stops
/// inside `participants`, and every other meeting page shows the field.
const CREATE_EXTRAS: &[&str] = &["session.meetingEmbedUrl"];
/// Why get and edit answer `participants`: the get page's text says the answer includes
/// "the email addresses of participants" although its example leaves them out; edit answers
/// what get does.
const DETAIL_EXTRAS: &[&str] = &["session.participants"];
/// Why edit answers `endTime`: the get page has it, and edit answers what get does.
const EDIT_EXTRAS: &[&str] = &["session.participants", "session.endTime"];

#[tokio::test]
async fn meeting_answers_have_the_documented_shapes() {
    let zoho = Zoho::start().await;
    let (status, created) = zoho
        .call(
            Method::POST,
            &zoho.org("sessions.json"),
            Some(&json!({ "session": session_body() })),
        )
        .await;
    assert_documented("meeting-create", status, &created, CREATE_EXTRAS);
    let key = created["session"]["meetingKey"].as_u64().unwrap();
    let item = zoho.org(&format!("sessions/{key}.json"));

    let (status, got) = zoho.call(Method::GET, &item, None).await;
    assert_documented("meeting-get", status, &got, DETAIL_EXTRAS);

    let edit = json!({ "session": { "topic": "Quarterly review, moved", "startTime": "Mar 04, 2031 10:00 AM" } });
    let (status, edited) = zoho.call(Method::PUT, &item, Some(&edit)).await;
    assert_documented("meeting-edit", status, &edited, EDIT_EXTRAS);

    let (status, listed) = zoho
        .call(
            Method::GET,
            &zoho.org("sessions.json?listtype=all&index=0&count=10"),
            None,
        )
        .await;
    assert_documented("meeting-list", status, &listed, &[]);

    let (status, report) = zoho
        .call(
            Method::GET,
            &zoho.org(&format!("participant/{key}.json?index=1&count=10")),
            None,
        )
        .await;
    assert_documented("participant-report", status, &report, &[]);

    let (status, deleted) = zoho.call(Method::DELETE, &item, None).await;
    assert_documented("meeting-delete", status, &deleted, &[]);
}

#[tokio::test]
async fn webinar_answers_have_the_shapes_zoho_clients_read() {
    let zoho = Zoho::start().await;
    let (status, created) = zoho
        .call(
            Method::POST,
            &zoho.org("webinar.json"),
            Some(&json!({ "session": session_body() })),
        )
        .await;
    assert_documented("webinar-create", status, &created, CREATE_EXTRAS);
    let key = created["session"]["webinarKey"].as_u64().unwrap();
    let item = zoho.org(&format!("webinar/{key}.json"));

    let (status, got) = zoho.call(Method::GET, &item, None).await;
    assert_documented("webinar-get", status, &got, DETAIL_EXTRAS);

    let edit = json!({ "session": { "topic": "Quarterly review, moved" } });
    let (status, edited) = zoho.call(Method::PUT, &item, Some(&edit)).await;
    assert_documented("webinar-edit", status, &edited, EDIT_EXTRAS);
}

#[tokio::test]
async fn documented_errors_have_the_documented_bodies() {
    let zoho = Zoho::start().await;
    // The bodies are the documented ones word for word; compare them whole as well.
    for (name, path, token) in [
        ("error-invalid-token", zoho.org("sessions.json"), None),
        (
            "error-invalid-token",
            zoho.org("sessions.json"),
            Some("1000.not.a-token"),
        ),
        (
            "error-invalid-meeting-key",
            zoho.org("sessions/1234567890.json"),
            Some(zoho.token.as_str()),
        ),
        (
            "error-invalid-meeting-key",
            zoho.org("participant/1234567890.json?index=1&count=10"),
            Some(zoho.token.as_str()),
        ),
        (
            "error-invalid-organization",
            "/api/v2/700000002/participant/1234567890.json".to_owned(),
            Some(zoho.token.as_str()),
        ),
        (
            "error-invalid-organization",
            "/api/v2/700000002/sessions.json".to_owned(),
            Some(zoho.token.as_str()),
        ),
    ] {
        let (status, body) = zoho.call_as(Method::GET, &path, token, None).await;
        assert_documented(name, status, &body, &[]);
        assert_eq!(body, fixture(name).body, "{name} {path}");
    }
    // A revoked token is an invalid token too.
    let refresh = zoho
        .accounts
        .control()
        .issue_refresh_token(&["ZohoMeeting.meeting.READ"]);
    let access = refresh_with(&zoho.accounts, &refresh).await;
    assert!(zoho.accounts.control().revoke_refresh_token(&refresh));
    let (status, body) = zoho
        .call_as(Method::GET, &zoho.org("sessions.json"), Some(&access), None)
        .await;
    assert_documented("error-invalid-token", status, &body, &[]);
}

#[test]
fn the_shape_comparison_catches_each_kind_of_difference() {
    let doc = json!({ "session": { "meetingKey": 1, "participants": [{ "id": "1" }] } });
    let same =
        json!({ "session": { "meetingKey": 2, "participants": [{ "id": "9" }, { "id": "8" }] } });
    assert!(shape_differences(&doc, &same, "", &[]).is_empty());
    let cases = [
        (
            json!({ "session": { "meetingKey": "2", "participants": [{ "id": "9" }] } }),
            "session.meetingKey: number in the docs, string here",
        ),
        (
            json!({ "session": { "participants": [{ "id": "9" }] } }),
            "session.meetingKey: missing",
        ),
        (
            json!({ "session": { "meetingKey": 2, "participants": [{ "id": 9 }] } }),
            "session.participants[].id: string in the docs, number here",
        ),
        (
            json!({ "session": { "meetingKey": 2, "participants": [] } }),
            "session.participants: empty, nothing to compare",
        ),
        (
            json!({ "session": { "meetingKey": 2, "participants": [{ "id": "9" }], "x": 1 } }),
            "session.x: not in the docs",
        ),
        (json!({ "webinar": {} }), "session: missing"),
    ];
    for (actual, expected) in cases {
        let differences = shape_differences(&doc, &actual, "", &[]);
        assert!(
            differences.iter().any(|d| d == expected),
            "{actual}: {differences:?}"
        );
    }
    let extra = json!({ "session": { "meetingKey": 2, "participants": [{ "id": "9" }], "x": 1 } });
    assert!(shape_differences(&doc, &extra, "", &["session.x"]).is_empty());
}
