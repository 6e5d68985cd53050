//! Which endpoint a request names: the API prefixes, the route, its methods and the scope
//! it needs, and the access token.

use hyper::Method;
use hyper::header::{self, HeaderMap};

use super::recordings::RecordingFile;
use super::reject::Reject;
use super::sessions::Kind;
use super::{API_PREFIX, MEETING_API_PREFIX, WEBINAR_API_PREFIX};

/// Which Zoho product the emulator stands for: Zoho Meeting (`meeting.zoho.com`) or Zoho
/// Webinar (`webinar.zoho.com`), each on its own host with its own scopes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Product {
    Meeting,
    Webinar,
}

/// An API endpoint, parsed from the path after the prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Route<'a> {
    User,
    Collection {
        org: &'a str,
        kind: Kind,
    },
    Item {
        org: &'a str,
        kind: Kind,
        key: &'a str,
    },
    Participants {
        org: &'a str,
        key: &'a str,
    },
    /// `{org}/user`: the organisation's users.
    Users {
        org: &'a str,
    },
    /// `{org}/user/{userId}`: one user.
    UserItem {
        org: &'a str,
        id: &'a str,
    },
    /// `{org}/recordings`: every recording.
    Recordings {
        org: &'a str,
    },
    /// `{org}/recordings/{meetingKey}`: one meeting's recordings.
    MeetingRecordings {
        org: &'a str,
        key: &'a str,
    },
    /// `{org}/recordings/{meetingKey}/{file}`: a recording's file, where the emulator's
    /// `downloadUrl` (and the transcript and summary URLs) point.
    RecordingFile {
        org: &'a str,
        key: &'a str,
        file: RecordingFile,
    },
    /// `{org}/sdk/session` (scheduled) or `{org}/sdk/session/meet` (instant).
    Sdk {
        org: &'a str,
        instant: bool,
    },
    /// `{org}/register/{webinarKey}`: a webinar's registrants (Zoho Webinar only).
    Register {
        org: &'a str,
        key: &'a str,
    },
}

/// What a request does, for the scope check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Op {
    Read,
    Create,
    Update,
    Delete,
}

// === impl Route ===

impl<'a> Route<'a> {
    /// Parses the path after the API prefix; `None` for an unknown endpoint.
    pub(super) fn parse(rest: &'a str) -> Option<Self> {
        let rest = rest.strip_suffix(".json").unwrap_or(rest);
        let segments: Vec<&str> = rest.split('/').collect();
        let kind = |segment: &str| {
            [Kind::Meeting, Kind::Webinar]
                .into_iter()
                .find(|kind| kind.segment() == segment)
        };
        let org_ok = |org: &str| !org.is_empty();
        match segments.as_slice() {
            ["user"] => Some(Route::User),
            [org, "user"] if org_ok(org) => Some(Route::Users { org }),
            [org, "user", id] if org_ok(org) && !id.is_empty() => Some(Route::UserItem { org, id }),
            [org, "recordings"] if org_ok(org) => Some(Route::Recordings { org }),
            [org, "recordings", key] if org_ok(org) && !key.is_empty() => {
                Some(Route::MeetingRecordings { org, key })
            }
            [org, "recordings", key, file] if org_ok(org) && !key.is_empty() => {
                Some(Route::RecordingFile {
                    org,
                    key,
                    file: RecordingFile::parse(file)?,
                })
            }
            [org, "sdk", "session"] if org_ok(org) => Some(Route::Sdk {
                org,
                instant: false,
            }),
            [org, "sdk", "session", "meet"] if org_ok(org) => {
                Some(Route::Sdk { org, instant: true })
            }
            [org, collection] if !org.is_empty() => Some(Route::Collection {
                org,
                kind: kind(collection)?,
            }),
            [org, "participant", key] if !org.is_empty() && !key.is_empty() => {
                Some(Route::Participants { org, key })
            }
            [org, "register", key] if org_ok(org) && !key.is_empty() => {
                Some(Route::Register { org, key })
            }
            [org, collection, key] if !org.is_empty() && !key.is_empty() => Some(Route::Item {
                org,
                kind: kind(collection)?,
                key,
            }),
            _ => None,
        }
    }

    /// The operation `method` performs here; `None` when the method is not allowed.
    pub(super) fn operation(&self, method: &Method) -> Option<Op> {
        match (self, method.as_str()) {
            (Route::Sdk { .. }, "POST") => Some(Op::Create),
            (Route::Sdk { .. }, _) => None,
            (_, "GET") => Some(Op::Read),
            (Route::Collection { .. } | Route::Register { .. }, "POST") => Some(Op::Create),
            (Route::Item { .. }, "PUT") => Some(Op::Update),
            (Route::Item { .. }, "DELETE") => Some(Op::Delete),
            _ => None,
        }
    }

    /// The methods allowed here, for the `Allow` header.
    pub(super) fn allow(&self) -> &'static str {
        match self {
            Route::User
            | Route::Participants { .. }
            | Route::Users { .. }
            | Route::UserItem { .. }
            | Route::Recordings { .. }
            | Route::MeetingRecordings { .. }
            | Route::RecordingFile { .. } => "GET",
            Route::Collection { .. } | Route::Register { .. } => "GET, POST",
            Route::Item { .. } => "GET, PUT, DELETE",
            Route::Sdk { .. } => "POST",
        }
    }

    /// The resource part of the scope `op` needs here (`ZohoMeeting.<resource>.<op>`). Zoho
    /// Webinar's registration pages give `ZohoWebinar.webinar.CREATE` for registering
    /// (<https://www.zoho.com/webinar/api/webinar-api/bulk-registration.html>) and
    /// `ZohoWebinar.registration.READ` for listing registrants
    /// (<https://www.zoho.com/deluge/help/webinar/get-registration-details.html>).
    pub(super) fn scope_resource(&self, op: Op) -> &'static str {
        match self {
            Route::Register { .. } if op == Op::Read => "registration",
            Route::Register { .. } => "webinar",
            Route::User => "manageOrg",
            Route::Collection { kind, .. } | Route::Item { kind, .. } => kind.resource(),
            Route::Participants { .. } => "meeting",
            Route::Users { .. } | Route::UserItem { .. } => "user",
            Route::Recordings { .. }
            | Route::MeetingRecordings { .. }
            | Route::RecordingFile { .. } => "recording",
            Route::Sdk { .. } => "sdk",
        }
    }

    /// The answer to a path naming another organisation, as each endpoint's page documents
    /// it: `403` code `1025` on the user pages (list of users, user details), which also
    /// give the `resourceType`; `401 UNAUTHORIZED_USER` on the meeting pages, and on the
    /// recording and SDK endpoints, whose pages (cut short in the stored copies) show no
    /// error: they are served under `/meeting/api/v2` as the participant report's documented
    /// `INVALID_MEETING_KEY` resolution ("a valid recording Id") suggests it shares their
    /// errors.
    pub(super) fn wrong_org(&self) -> Reject {
        match *self {
            Route::Users { org } | Route::UserItem { org, .. } => Reject::OrgMismatch {
                resource_type: format!("{MEETING_API_PREFIX}/{org}/user"),
            },
            Route::User
            | Route::Collection { .. }
            | Route::Item { .. }
            | Route::Participants { .. }
            | Route::Recordings { .. }
            | Route::MeetingRecordings { .. }
            | Route::RecordingFile { .. }
            | Route::Sdk { .. }
            | Route::Register { .. } => Reject::UnauthorizedUser,
        }
    }

    /// The organisation id in the path, if the endpoint has one.
    pub(super) fn org(&self) -> Option<&'a str> {
        match *self {
            Route::User => None,
            Route::Collection { org, .. }
            | Route::Item { org, .. }
            | Route::Participants { org, .. }
            | Route::Users { org }
            | Route::UserItem { org, .. }
            | Route::Recordings { org }
            | Route::MeetingRecordings { org, .. }
            | Route::RecordingFile { org, .. }
            | Route::Sdk { org, .. }
            | Route::Register { org, .. } => Some(org),
        }
    }
}

// === impl Product ===

impl Product {
    /// The service part of every scope name: `ZohoMeeting` or `ZohoWebinar`.
    pub(super) fn service(self) -> &'static str {
        match self {
            Product::Meeting => "ZohoMeeting",
            Product::Webinar => "ZohoWebinar",
        }
    }

    /// The two API prefixes of the product's host: `/api/v2` and `/meeting/api/v2` on
    /// Meeting's, `/api/v2` and `/webinar/api/v2` on Webinar's (its registration page's
    /// request example uses the second).
    pub(super) fn prefixes(self) -> [&'static str; 2] {
        match self {
            Product::Meeting => [API_PREFIX, MEETING_API_PREFIX],
            Product::Webinar => [API_PREFIX, WEBINAR_API_PREFIX],
        }
    }

    /// The public origin the answers' links point to, as Zoho's do.
    pub(super) fn public_origin(self) -> &'static str {
        match self {
            Product::Meeting => "https://meeting.zoho.com",
            Product::Webinar => "https://webinar.zoho.com",
        }
    }

    /// Whether the product's host serves `route`: Zoho Webinar answers its webinars, their
    /// registrations and the current user; Zoho Meeting everything but the registrations.
    pub(super) fn serves(self, route: &Route<'_>) -> bool {
        match self {
            Product::Meeting => !matches!(route, Route::Register { .. }),
            Product::Webinar => matches!(
                route,
                Route::User
                    | Route::Register { .. }
                    | Route::Collection {
                        kind: Kind::Webinar,
                        ..
                    }
                    | Route::Item {
                        kind: Kind::Webinar,
                        ..
                    }
            ),
        }
    }
}

// === impl Op ===

impl Op {
    /// The last part of the scope name.
    pub(super) fn scope_name(self) -> &'static str {
        match self {
            Op::Read => "READ",
            Op::Create => "CREATE",
            Op::Update => "UPDATE",
            Op::Delete => "DELETE",
        }
    }
}

// === helpers ===

/// The path after one of `product`'s API prefixes (`""` for the bare prefix); `None` outside
/// the API.
pub(super) fn api_path(path: &str, product: Product) -> Option<&str> {
    product.prefixes().into_iter().find_map(|prefix| {
        let rest = path.strip_prefix(prefix)?;
        if rest.is_empty() {
            Some(rest)
        } else {
            rest.strip_prefix('/')
        }
    })
}

/// The token of an `Authorization: Zoho-oauthtoken <token>` or `Bearer <token>` header.
pub(super) fn access_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    let known =
        scheme.eq_ignore_ascii_case("Zoho-oauthtoken") || scheme.eq_ignore_ascii_case("Bearer");
    (known && !token.is_empty()).then_some(token)
}

/// Whether `scopes` hold `<service>.<resource>.<op>` or `<service>.<resource>.ALL` (service
/// `ZohoMeeting` or `ZohoWebinar`), compared without regard to case.
pub(super) fn has_scope(scopes: &[String], service: &str, resource: &str, op: Op) -> bool {
    scopes.iter().any(|scope| {
        let mut parts = scope.split('.');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(name), Some(res), Some(operation), None) => {
                name.eq_ignore_ascii_case(service)
                    && res.eq_ignore_ascii_case(resource)
                    && (operation.eq_ignore_ascii_case(op.scope_name())
                        || operation.eq_ignore_ascii_case("ALL"))
            }
            _ => false,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meeting::testing::*;

    #[test]
    fn parses_routes_and_scopes() {
        assert_eq!(
            api_path("/api/v2/user.json", Product::Meeting),
            Some("user.json")
        );
        assert_eq!(api_path("/meeting/api/v2", Product::Meeting), Some(""));
        assert_eq!(api_path("/api/v2x/user.json", Product::Meeting), None);
        assert_eq!(Route::parse("user.json"), Some(Route::User));
        assert_eq!(
            Route::parse("7/sessions.json"),
            Some(Route::Collection {
                org: "7",
                kind: Kind::Meeting
            })
        );
        assert_eq!(
            Route::parse("7/webinar/9.json"),
            Some(Route::Item {
                org: "7",
                kind: Kind::Webinar,
                key: "9"
            })
        );
        assert_eq!(
            Route::parse("7/participant/9"),
            Some(Route::Participants { org: "7", key: "9" })
        );
        for bad in [
            "",
            "7",
            "7/users.json",
            "7/sdk.json",
            "7/sdk/session/later",
            "7/recordings/9/video",
            "/user.json",
            "7/sessions/9/x.json",
            "/sessions.json",
            "7/participant.json",
        ] {
            assert_eq!(Route::parse(bad), None, "{bad}");
        }
        assert_eq!(Route::parse("7/user.json"), Some(Route::Users { org: "7" }));
        assert_eq!(
            Route::parse("7/user/9"),
            Some(Route::UserItem { org: "7", id: "9" })
        );
        assert_eq!(
            Route::parse("7/recordings.json"),
            Some(Route::Recordings { org: "7" })
        );
        assert_eq!(
            Route::parse("7/recordings/9.json"),
            Some(Route::MeetingRecordings { org: "7", key: "9" })
        );
        assert_eq!(
            Route::parse("7/recordings/9/download"),
            Some(Route::RecordingFile {
                org: "7",
                key: "9",
                file: RecordingFile::Video
            })
        );
        assert_eq!(
            Route::parse("7/sdk/session"),
            Some(Route::Sdk {
                org: "7",
                instant: false
            })
        );
        assert_eq!(
            Route::parse("7/sdk/session/meet.json"),
            Some(Route::Sdk {
                org: "7",
                instant: true
            })
        );
        let scopes = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(has_scope(
            &scopes(&["ZohoMeeting.meeting.READ"]),
            "ZohoMeeting",
            "meeting",
            Op::Read
        ));
        assert!(!has_scope(
            &scopes(&["ZohoMeeting.meeting.READ"]),
            "ZohoMeeting",
            "meeting",
            Op::Create
        ));
        assert!(has_scope(
            &scopes(&["ZohoMeeting.meeting.ALL"]),
            "ZohoMeeting",
            "meeting",
            Op::Delete
        ));
        assert!(!has_scope(
            &scopes(&["ZohoMeeting.meeting.ALL"]),
            "ZohoMeeting",
            "webinar",
            Op::Read
        ));
        assert!(!has_scope(
            &scopes(&["ZohoCRM.meeting.ALL"]),
            "ZohoMeeting",
            "meeting",
            Op::Read
        ));
        assert!(!has_scope(
            &scopes(&["ZohoMeeting.meeting.READ.x"]),
            "ZohoMeeting",
            "meeting",
            Op::Read
        ));
        assert!(!has_scope(&[], "ZohoMeeting", "manageOrg", Op::Read));
        assert!(has_scope(
            &scopes(&["ZohoWebinar.registration.READ"]),
            "ZohoWebinar",
            "registration",
            Op::Read
        ));
        assert!(!has_scope(
            &scopes(&["ZohoMeeting.webinar.ALL"]),
            "ZohoWebinar",
            "webinar",
            Op::Read
        ));
        assert_eq!(
            api_path("/webinar/api/v2/7/register/9.json", Product::Webinar),
            Some("7/register/9.json")
        );
        assert_eq!(
            api_path("/meeting/api/v2/user.json", Product::Webinar),
            None
        );
        assert_eq!(
            api_path("/webinar/api/v2/user.json", Product::Meeting),
            None
        );
        assert_eq!(
            Route::parse("7/register/9.json"),
            Some(Route::Register { org: "7", key: "9" })
        );
        assert_eq!(Route::parse("7/register"), None);
    }

    #[tokio::test]
    async fn unknown_paths_and_wrong_methods() {
        let sb = Sandbox::start().await;
        let not_found = json!({ "error": { "code": 404, "message": "Not found" } });
        // Outside the API: 404 without a token check.
        for path in ["/", "/nope", "/api/v20/user.json", "/meeting/join"] {
            let (status, body) = sb.call_as(Method::GET, path, None, None).await;
            assert_eq!(
                (status, body),
                (StatusCode::NOT_FOUND, not_found.clone()),
                "{path}"
            );
        }
        // Inside the API: the token first, then 404.
        let inside = [
            "/api/v2".to_owned(),
            "/api/v2/".to_owned(),
            "/api/v2/nope.json".to_owned(),
            sb.org("recording.json"),
            sb.org("recordings/1/play"),
            sb.org("sessions/1/extra.json"),
            sb.org("sessions/"),
            "/api/v2//sessions.json".to_owned(),
        ];
        for path in &inside {
            let (status, _) = sb.call_as(Method::GET, path, None, None).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
            let (status, body) = sb.call(Method::GET, path, None).await;
            assert_eq!(
                (status, body),
                (StatusCode::NOT_FOUND, not_found.clone()),
                "{path}"
            );
        }
        for (method, path, allow) in [
            (Method::POST, "/api/v2/user.json".to_owned(), "GET"),
            (Method::DELETE, sb.org("sessions.json"), "GET, POST"),
            (
                Method::POST,
                sb.org("sessions/1234567890.json"),
                "GET, PUT, DELETE",
            ),
            (Method::PUT, sb.org("participant/1234567890.json"), "GET"),
        ] {
            let resp = sb
                .http
                .request(method.clone(), format!("{}{path}", sb.meeting.url()))
                .header("authorization", format!("Zoho-oauthtoken {}", sb.token))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.headers()["allow"], allow);
            let (status, body) = read(resp).await;
            assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
            assert_eq!(body["error"]["code"], 405);
        }
    }

    #[tokio::test]
    async fn missing_unknown_expired_and_revoked_tokens_are_400_code_2000() {
        let sb = Sandbox::start().await;
        let path = sb.org("sessions.json");
        let url = format!("{}{path}", sb.meeting.url());

        let (status, body) = sb.call_as(Method::GET, &path, None, None).await;
        assert_eq!((status, body), (StatusCode::BAD_REQUEST, invalid_token()));
        let (status, body) = sb
            .call_as(Method::GET, &path, Some("1000.unknown.unknown"), None)
            .await;
        assert_eq!((status, body), (StatusCode::BAD_REQUEST, invalid_token()));
        for header in [
            format!("Basic {}", sb.token),
            sb.token.clone(),
            "Zoho-oauthtoken ".to_owned(),
            "Zoho-oauthtoken".to_owned(),
        ] {
            let resp = sb
                .http
                .get(&url)
                .header("authorization", header)
                .send()
                .await
                .unwrap();
            assert_eq!(read(resp).await, (StatusCode::BAD_REQUEST, invalid_token()));
        }
        // Bearer is accepted too, and the scheme is case-insensitive.
        for scheme in ["Bearer", "zoho-OAuthToken"] {
            let resp = sb
                .http
                .get(&url)
                .header("authorization", format!("{scheme} {}", sb.token))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::OK, "{scheme}");
        }

        // Expired.
        sb.accounts.control().set_token_lifetime(Duration::ZERO);
        let (expired, _) = mint(&sb.accounts, ALL_SCOPES).await;
        let (status, body) = sb.call_as(Method::GET, &path, Some(&expired), None).await;
        assert_eq!((status, body), (StatusCode::BAD_REQUEST, invalid_token()));

        // Revoked.
        sb.accounts
            .control()
            .set_token_lifetime(Duration::from_secs(3600));
        let (access, refresh) = mint(&sb.accounts, ALL_SCOPES).await;
        let (status, _) = sb.call_as(Method::GET, &path, Some(&access), None).await;
        assert_eq!(status, StatusCode::OK);
        assert!(sb.accounts.control().revoke_refresh_token(&refresh));
        let (status, body) = sb.call_as(Method::GET, &path, Some(&access), None).await;
        assert_eq!((status, body), (StatusCode::BAD_REQUEST, invalid_token()));
    }

    #[tokio::test]
    async fn missing_scope_is_401_scope_mismatch_not_a_token_error() {
        let sb = Sandbox::start().await;
        let mismatch = json!({
            "code": "OAUTH_SCOPE_MISMATCH",
            "message": "invalid oauth scope to access this URL",
            "status": "error",
        });
        let (read_only, _) = mint(&sb.accounts, &["ZohoMeeting.meeting.READ"]).await;
        let list = sb.org("sessions.json");
        let (status, _) = sb.call_as(Method::GET, &list, Some(&read_only), None).await;
        assert_eq!(status, StatusCode::OK);
        let body = json!({ "session": meeting_body() });
        let (status, answer) = sb
            .call_as(Method::POST, &list, Some(&read_only), Some(&body))
            .await;
        assert_eq!(
            (status, answer),
            (StatusCode::UNAUTHORIZED, mismatch.clone())
        );
        for path in ["/api/v2/user.json".to_owned(), sb.org("webinar.json")] {
            let (status, answer) = sb.call_as(Method::GET, &path, Some(&read_only), None).await;
            assert_eq!(
                (status, answer),
                (StatusCode::UNAUTHORIZED, mismatch.clone()),
                "{path}"
            );
        }

        // Each operation needs its own scope; ALL covers them; case does not matter.
        let created = sb.create(meeting_body()).await;
        let item = sb.org(&format!("sessions/{}.json", &key_of(&created)));
        let (update_only, _) = mint(&sb.accounts, &["zohomeeting.MEETING.update"]).await;
        let edit = json!({ "session": { "topic": "t" } });
        let (status, _) = sb
            .call_as(Method::PUT, &item, Some(&update_only), Some(&edit))
            .await;
        assert_eq!(status, StatusCode::OK);
        let (status, _) = sb
            .call_as(Method::DELETE, &item, Some(&update_only), None)
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (webinar_all, _) = mint(&sb.accounts, &["ZohoMeeting.webinar.ALL"]).await;
        let (status, _) = sb
            .call_as(Method::DELETE, &item, Some(&webinar_all), None)
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, _) = sb
            .call_as(
                Method::GET,
                &sb.org("webinar.json"),
                Some(&webinar_all),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        // The participant report needs meeting.READ.
        let report = sb.org(&format!("participant/{}.json", &key_of(&created)));
        let (status, _) = sb
            .call_as(Method::GET, &report, Some(&webinar_all), None)
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, _) = sb
            .call_as(Method::GET, &report, Some(&read_only), None)
            .await;
        assert_eq!(status, StatusCode::OK);
        // The scope check comes before the organisation check.
        let (status, _) = sb
            .call_as(
                Method::GET,
                "/api/v2/1/webinar.json",
                Some(&read_only),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }

    #[tokio::test]
    async fn wrong_zsoid_is_401_unauthorized_user_on_the_meeting_pages() {
        let sb = Sandbox::start().await;
        // As the participant-report page documents for an invalid organization id.
        let unauthorized = json!({ "error": {
            "errorCode": 3001,
            "message": "You do not have permission to access this organization account.",
            "key": "UNAUTHORIZED_USER",
        }});
        for path in [
            "/api/v2/700000002/sessions.json",
            "/meeting/api/v2/1/sessions.json",
            "/api/v2/abc/webinar.json",
            "/api/v2/700000002/sessions/1234567890.json",
            "/api/v2/700000002/participant/1234567890.json",
        ] {
            let (status, body) = sb.call(Method::GET, path, None).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
            assert_eq!(body, unauthorized, "{path}");
        }
        // The right zsoid under the second prefix works.
        let (status, _) = sb
            .call(Method::GET, "/meeting/api/v2/700000001/sessions.json", None)
            .await;
        assert_eq!(status, StatusCode::OK);
    }
}
