//! The Zoho Webinar emulator over real sockets, with tokens minted by the accounts emulator:
//! a webinar's life (create, list, get, register attendees, list registrants), Zoho
//! Webinar's scopes, token rejection and unknown keys, and the separation from the Meeting
//! host.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use zoho_emulator::accounts::{AccountsEmulator, AccountsOptions};
use zoho_emulator::meeting::MeetingEmulator;
use zoho_emulator::webinar::WebinarEmulator;

use crate::meetings::{assert_documented, call_at, fixture, mint, refresh_with, session_body};
use crate::support;

/// Every scope the Webinar emulator checks.
const WEBINAR_SCOPES: &[&str] = &[
    "ZohoWebinar.manageOrg.READ",
    "ZohoWebinar.webinar.ALL",
    "ZohoWebinar.registration.READ",
];

/// An accounts emulator, the Webinar emulator and a Meeting emulator wired to it, and a
/// token with every Webinar scope.
struct Zoho {
    accounts: AccountsEmulator,
    webinar: WebinarEmulator,
    meeting: MeetingEmulator,
    token: String,
}

impl Zoho {
    async fn start() -> Self {
        let accounts = support::emulator(AccountsOptions::default()).await;
        let webinar = support::webinar_emulator(&accounts).await;
        let meeting = support::meeting_emulator(&accounts).await;
        let token = mint(&accounts, WEBINAR_SCOPES).await;
        Self {
            accounts,
            webinar,
            meeting,
            token,
        }
    }

    fn org(&self, rest: &str) -> String {
        format!("/api/v2/{}/{rest}", self.webinar.control().zsoid())
    }

    async fn call_as(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        call_at(&self.webinar.url(), method, path, token, body).await
    }

    async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> (StatusCode, Value) {
        self.call_as(method, path, Some(&self.token), body).await
    }

    /// Creates a webinar from the documented body and returns the answer.
    async fn create(&self) -> Value {
        let (status, body) = self
            .call(
                Method::POST,
                &self.org("webinar.json"),
                Some(&json!({ "session": session_body() })),
            )
            .await;
        assert_documented(
            "webinar-create",
            status,
            &body,
            &["session.meetingEmbedUrl"],
        );
        body
    }

    /// Creates a webinar and returns its key.
    async fn create_key(&self) -> u64 {
        self.create().await["session"]["webinarKey"]
            .as_u64()
            .unwrap()
    }
}

fn registrants(list: &[(&str, &str)]) -> Value {
    let entries: Vec<Value> = list
        .iter()
        .map(|(email, first)| json!({ "email": email, "firstName": first, "lastName": "S" }))
        .collect();
    json!({ "registrant": entries })
}

#[tokio::test]
async fn create_list_get_register_and_list_registrants() {
    let zoho = Zoho::start().await;

    // Create: the Meeting emulator's webinar answer, with links on the Webinar host.
    let created = zoho.create().await;
    let session = &created["session"];
    let key = session["webinarKey"].as_u64().unwrap();
    assert_eq!(session["topic"], "Quarterly review");
    assert_eq!(session["duration"], 3_600_000);
    assert!(
        session["joinLink"]
            .as_str()
            .unwrap()
            .starts_with("https://webinar.zoho.com/"),
        "{session}"
    );

    // List and get.
    let (status, list) = zoho
        .call(Method::GET, &zoho.org("webinar.json"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["count"], 1);
    assert_eq!(list["webinar"][0]["webinarKey"], key);
    let item = zoho.org(&format!("webinar/{key}.json"));
    let (status, got) = zoho.call(Method::GET, &item, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got["session"]["webinarKey"], key);
    assert_eq!(got["session"]["startTime"], "Mar 03, 2031 10:00 AM IST");
    // The second prefix, as the registration page's request example spells it.
    let (status, _) = zoho
        .call(
            Method::GET,
            &format!("/webinar/api/v2/700000001/webinar/{key}.json"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    // Register: the documented shape; a repeated email fails, the others succeed.
    let register = zoho.org(&format!("register/{key}.json"));
    let (status, body) = zoho
        .call(
            Method::POST,
            &format!("{register}?sendMail=false&instanceId=5584780030000116026"),
            Some(&registrants(&[("ada@example.com", "Ada")])),
        )
        .await;
    assert_documented("webinar-register", status, &body, &[]);
    let join = body["registrant"][0]["joinLink"].as_str().unwrap();
    assert!(
        join.starts_with("https://webinar.zoho.com/webinar/register/join?registerKey="),
        "{join}"
    );
    assert!(
        join.ends_with(&format!("&sessionId={key}&uname=Ada")),
        "{join}"
    );
    let (status, body) = zoho
        .call(
            Method::POST,
            &register,
            Some(&registrants(&[
                ("ADA@example.com", "Ada"),
                ("grace@example.com", "Grace Brewster"),
                ("grace@example.com", "Grace"),
                ("alan@example.com", "Alan"),
            ])),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["successCount"], 2);
    assert_eq!(body["failedCount"], 2);
    assert_eq!(body["totalCount"], 4);
    assert_eq!(body["registeredCount"], 3);
    assert_eq!(body["registrant"][0]["email"], "grace@example.com");
    assert!(
        body["registrant"][0]["joinLink"]
            .as_str()
            .unwrap()
            .ends_with("&uname=Grace+Brewster")
    );

    // List registrants, in registration order, paged by page number.
    let (status, body) = zoho.call(Method::GET, &register, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["count"], 3);
    let emails: Vec<&str> = body["registrant"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["email"].as_str().unwrap())
        .collect();
    assert_eq!(
        emails,
        ["ada@example.com", "grace@example.com", "alan@example.com"]
    );
    let first = &body["registrant"][0];
    assert_eq!(first["firstName"], "Ada");
    assert_eq!(first["lastName"], "S");
    assert_eq!(first["status"], 1);
    assert_eq!(first["joinLink"].as_str().unwrap(), join);
    for (query, expected) in [
        ("index=2&count=1", json!(["grace@example.com"])),
        (
            "index=1&count=2&status=1",
            json!(["ada@example.com", "grace@example.com"]),
        ),
        ("status=0", json!([])),
        ("index=4&count=1", json!([])),
    ] {
        let (status, body) = zoho
            .call(Method::GET, &format!("{register}?{query}"), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{query}");
        let got: Vec<Value> = body["registrant"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["email"].clone())
            .collect();
        assert_eq!(Value::Array(got), expected, "{query}");
    }

    // Deleting the webinar takes its registrants with it.
    let (status, _) = zoho.call(Method::DELETE, &item, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = zoho.call(Method::GET, &register, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body, fixture("error-invalid-meeting-key").body);
}

#[tokio::test]
async fn each_endpoint_needs_its_zoho_webinar_scope() {
    let zoho = Zoho::start().await;
    let key = zoho.create_key().await;
    let list = zoho.org("webinar.json");
    let item = zoho.org(&format!("webinar/{key}.json"));
    let register = zoho.org(&format!("register/{key}.json"));
    let one = registrants(&[("ada@example.com", "Ada")]);
    let create = json!({ "session": session_body() });
    let mismatch = json!({
        "code": "OAUTH_SCOPE_MISMATCH",
        "message": "invalid oauth scope to access this URL",
        "status": "error",
    });

    // Meeting's webinar scopes do not open Zoho Webinar (nor Webinar's Meeting).
    let meeting_scoped = mint(&zoho.accounts, &["ZohoMeeting.webinar.ALL"]).await;
    for (method, path) in [(Method::GET, &list), (Method::GET, &item)] {
        let (status, body) = zoho
            .call_as(method, path, Some(&meeting_scoped), None)
            .await;
        assert_eq!((status, body), (StatusCode::UNAUTHORIZED, mismatch.clone()));
    }
    let (status, _) = call_at(
        &zoho.meeting.url(),
        Method::GET,
        &list,
        Some(&zoho.token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // READ reads but neither creates nor registers nor lists registrants.
    let read = mint(&zoho.accounts, &["ZohoWebinar.webinar.READ"]).await;
    for (method, path) in [(Method::GET, &list), (Method::GET, &item)] {
        let (status, _) = zoho.call_as(method, path, Some(&read), None).await;
        assert_eq!(status, StatusCode::OK, "{path}");
    }
    for (method, path, body) in [
        (Method::POST, &list, Some(&create)),
        (Method::POST, &register, Some(&one)),
        (Method::GET, &register, None),
        (Method::DELETE, &item, None),
    ] {
        let (status, answer) = zoho.call_as(method.clone(), path, Some(&read), body).await;
        assert_eq!(
            (status, answer),
            (StatusCode::UNAUTHORIZED, mismatch.clone()),
            "{method} {path}"
        );
    }

    // Registering needs webinar.CREATE; listing registrants registration.READ.
    let creator = mint(&zoho.accounts, &["zohowebinar.WEBINAR.create"]).await;
    let (status, _) = zoho
        .call_as(Method::POST, &register, Some(&creator), Some(&one))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = zoho
        .call_as(Method::GET, &register, Some(&creator), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let registration = mint(&zoho.accounts, &["ZohoWebinar.registration.READ"]).await;
    let (status, body) = zoho
        .call_as(Method::GET, &register, Some(&registration), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["count"], 1);
}

#[tokio::test]
async fn invalid_and_revoked_tokens_are_400_code_2000() {
    let zoho = Zoho::start().await;
    let key = zoho.create_key().await;
    let invalid = fixture("error-invalid-token");
    let paths = [
        zoho.org("webinar.json"),
        zoho.org(&format!("webinar/{key}.json")),
        zoho.org(&format!("register/{key}.json")),
        "/api/v2/user.json".to_owned(),
    ];
    for path in &paths {
        for token in [None, Some("1000.unknown.unknown")] {
            let (status, body) = zoho.call_as(Method::GET, path, token, None).await;
            assert_eq!(status.as_u16(), invalid.status, "{path}");
            assert_eq!(body, invalid.body, "{path}");
        }
    }

    // A token that worked stops working once its refresh token is revoked.
    let refresh = zoho.accounts.control().issue_refresh_token(WEBINAR_SCOPES);
    let access = refresh_with(&zoho.accounts, &refresh).await;
    let (status, _) = zoho
        .call_as(Method::GET, &paths[2], Some(&access), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(zoho.accounts.control().revoke_refresh_token(&refresh));
    for path in &paths {
        let (status, body) = zoho.call_as(Method::GET, path, Some(&access), None).await;
        assert_eq!(
            (status.as_u16(), &body),
            (invalid.status, &invalid.body),
            "{path}"
        );
    }
    // Forced rejection works as on the Meeting host, and every check is logged.
    zoho.webinar.control().reject_tokens(1);
    let (status, _) = zoho.call(Method::GET, &paths[0], None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let checks = zoho.webinar.control().token_checks();
    assert!(checks.iter().any(|check| check.accepted));
    assert!(!checks.last().unwrap().accepted);
}

#[tokio::test]
async fn unknown_keys_other_orgs_bad_input_and_meeting_paths() {
    let zoho = Zoho::start().await;
    let key = zoho.create_key().await;
    let invalid_key = fixture("error-invalid-meeting-key").body;

    // Unknown webinar keys, and a meeting's key, on every keyed endpoint.
    let meeting_key = {
        let (status, body) = call_at(
            &zoho.meeting.url(),
            Method::POST,
            &zoho.org("webinar.json"),
            Some(&mint(&zoho.accounts, &["ZohoMeeting.webinar.ALL"]).await),
            Some(&json!({ "session": session_body() })),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED);
        body["session"]["webinarKey"].as_u64().unwrap()
    };
    for bad in ["1".to_owned(), "abc".to_owned(), meeting_key.to_string()] {
        for (method, path, body) in [
            (Method::GET, format!("webinar/{bad}.json"), None),
            (Method::GET, format!("register/{bad}.json"), None),
            (
                Method::POST,
                format!("register/{bad}.json"),
                Some(registrants(&[("ada@example.com", "Ada")])),
            ),
        ] {
            let (status, answer) = zoho
                .call(method.clone(), &zoho.org(&path), body.as_ref())
                .await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{method} {path}");
            assert_eq!(answer, invalid_key, "{method} {path}");
        }
    }

    // Another organisation: the registration page's 401 UNAUTHORIZED_USER.
    for path in [
        "/api/v2/700000002/webinar.json".to_owned(),
        format!("/api/v2/700000002/register/{key}.json"),
    ] {
        let (status, body) = zoho.call(Method::GET, &path, None).await;
        assert_documented("error-invalid-organization", status, &body, &[]);
    }

    // Invalid registrations register nobody.
    let register = zoho.org(&format!("register/{key}.json"));
    let many: Vec<(String, String)> = (0..101)
        .map(|i| (format!("p{i}@example.com"), format!("P{i}")))
        .collect();
    let many: Vec<(&str, &str)> = many.iter().map(|(e, n)| (e.as_str(), n.as_str())).collect();
    for (query, body, error) in [
        ("", json!({ "registrant": [] }), "INVALID_INPUT"),
        ("", json!({ "attendee": [] }), "INVALID_INPUT"),
        ("", json!([1]), "INVALID_INPUT"),
        ("", registrants(&many), "INVALID_INPUT"),
        (
            "",
            json!({ "registrant": [{ "email": "nope", "firstName": "A" }] }),
            "INVALID_REGISTRANT",
        ),
        (
            "",
            json!({ "registrant": [{ "email": "a@b.co" }] }),
            "INVALID_REGISTRANT",
        ),
        (
            "",
            json!({ "registrant": [{ "email": "a@b.co", "firstName": " " }] }),
            "INVALID_REGISTRANT",
        ),
        (
            "",
            json!({ "registrant": [{ "email": "a@b.co", "firstName": "A", "lastName": 7 }] }),
            "INVALID_REGISTRANT",
        ),
        (
            "",
            json!({ "registrant": ["a@b.co"] }),
            "INVALID_REGISTRANT",
        ),
        (
            "?sendMail=yes",
            registrants(&[("a@b.co", "A")]),
            "INVALID_SEND_MAIL",
        ),
        (
            "?instanceId=x",
            registrants(&[("a@b.co", "A")]),
            "INVALID_INSTANCE_ID",
        ),
    ] {
        let (status, answer) = zoho
            .call(Method::POST, &format!("{register}{query}"), Some(&body))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(answer["error"]["key"], error, "{body}");
        assert_eq!(answer["error"]["errorCode"], 4001, "{body}");
    }
    for query in [
        "status=4",
        "status=x",
        "index=-1",
        "count=0",
        "instanceId=1.5",
    ] {
        let (status, answer) = zoho
            .call(Method::GET, &format!("{register}?{query}"), None)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(answer["error"]["errorCode"], 4001, "{query}");
    }
    let resp = support::client()
        .post(format!("{}{register}", zoho.webinar.url()))
        .header("authorization", format!("Zoho-oauthtoken {}", zoho.token))
        .header("content-type", "application/json")
        .body("{\"registrant\":")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let answer: Value = resp.json().await.unwrap();
    assert_eq!(answer["error"]["key"], "INVALID_JSON");
    // Zoho's `JSONString=` form is accepted, as on create.
    let resp = support::client()
        .post(format!("{}{register}", zoho.webinar.url()))
        .header("authorization", format!("Zoho-oauthtoken {}", zoho.token))
        .form(&[(
            "JSONString",
            registrants(&[("ada@example.com", "Ada")]).to_string(),
        )])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let (_, body) = zoho.call(Method::GET, &register, None).await;
    assert_eq!(body["count"], 1, "only the valid registration counted");

    // Zoho Meeting's own paths are not on the Webinar host, nor registrations on Meeting's;
    // a wrong method is 405 with Allow.
    for path in [
        zoho.org("sessions.json"),
        zoho.org("participant/1.json"),
        zoho.org("user.json"),
        "/meeting/api/v2/700000001/webinar.json".to_owned(),
        zoho.org("register.json"),
    ] {
        let (status, _) = zoho.call(Method::GET, &path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
    let (status, _) = call_at(
        &zoho.meeting.url(),
        Method::GET,
        &register,
        Some(&mint(&zoho.accounts, &["ZohoMeeting.webinar.ALL"]).await),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let resp = support::client()
        .put(format!("{}{register}", zoho.webinar.url()))
        .header("authorization", format!("Zoho-oauthtoken {}", zoho.token))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(resp.headers()["allow"], "GET, POST");

    // The current user, for the zsoid.
    let (status, body) = zoho.call(Method::GET, "/api/v2/user.json", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["userDetails"]["zsoid"], 700_000_001u64);
}
