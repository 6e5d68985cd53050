//! The users endpoints: the current user (`user.json`), the organisation's users
//! (`{zsoid}/user`) and one user's details (`{zsoid}/user/{userId}`).
//!
//! The organisation has one user, the emulator's ([`MeetingOptions::zuid`](super::MeetingOptions::zuid)),
//! an administrator with meeting and webinar licences. Answers follow
//! <https://zoho.com/meeting/api-integration/user-api/list-of-users.html> and
//! <https://zoho.com/meeting/api-integration/user-api/get-user-details.html>: the user
//! wrapped in `representation`, every id a string, with the `resourceType` of the path.

use hyper::{Response, StatusCode};
use serde_json::{Value, json};

use super::reject::{Reject, UNKNOWN_USER};
use super::sessions::page;
use super::{API_PREFIX, DEFAULT_TIMEZONE, Shared};
use crate::http::{Body, json, query_params};

/// The list's default page size, as the list-of-users page documents it.
const DEFAULT_USER_COUNT: usize = 20;

/// The organisation's name in `organization.orgName`.
const ORG_NAME: &str = "Sandbox";

/// The licence edition shown in `meetingLicense` and `webinarLicense`.
const EDITION: &str = "Professional";

// === impl Shared ===

impl Shared {
    /// `GET user.json`.
    pub(super) fn user(&self) -> Response<Body> {
        json(
            StatusCode::OK,
            &json!({
                "userDetails": {
                    "zsoid": self.zsoid,
                    "zuid": self.zuid,
                    "primaryEmail": self.user_email,
                    "displayName": self.user_name,
                    "isAdmin": true,
                    "role": "admin",
                    "timezone": DEFAULT_TIMEZONE,
                }
            }),
        )
    }

    /// `GET {zsoid}/user`: `{"representation":[..],"totalCount":n,"resourceType":..}`.
    /// `index` is a page number and `count` the page size (default 20), as the page
    /// documents; pages count from 1, and `index=0` (the documented default) is the first.
    pub(super) fn users(&self, query: Option<&str>) -> Result<Response<Body>, Reject> {
        let (skip, take) = page(&query_params(query), DEFAULT_USER_COUNT)?;
        let users: Vec<Value> = [self.user_representation(true)]
            .into_iter()
            .skip(skip)
            .take(take)
            .collect();
        Ok(json(
            StatusCode::OK,
            &json!({
                "representation": users,
                "totalCount": 1,
                "resourceType": format!("{API_PREFIX}/{}/user", self.zsoid),
            }),
        ))
    }

    /// `GET {zsoid}/user/{userId}`: `{"representation":{..},"resourceType":..}`. The user is
    /// found by their `userId` or, since clients hold it from `user.json`, their `zuid`.
    pub(super) fn user_details(&self, id: &str) -> Result<Response<Body>, Reject> {
        if id != self.user_id() && id != self.zuid.to_string() {
            return Err(UNKNOWN_USER.into());
        }
        Ok(json(
            StatusCode::OK,
            &json!({
                "representation": self.user_representation(false),
                "resourceType": format!("{API_PREFIX}/{}/user/{}", self.zsoid, self.user_id()),
            }),
        ))
    }

    /// The user's Meeting `userId`, a string as the pages show it, distinct from the `zuid`.
    fn user_id(&self) -> String {
        format!("{}{:09}", self.zsoid, 1)
    }

    /// The user as the user pages show them. The details page's example has no `emailId`;
    /// the list's has, and `with_email` says which to follow.
    fn user_representation(&self, with_email: bool) -> Value {
        let (first, last) = self
            .user_name
            .split_once(' ')
            .unwrap_or((self.user_name.as_str(), ""));
        let mut user = json!({
            "userId": self.user_id(),
            "zuid": self.zuid.to_string(),
            "role": "Administrator",
            "organization": {
                "orgId": self.zsoid.to_string(),
                "orgName": ORG_NAME,
                "link": format!("{API_PREFIX}/org/{}", self.zsoid),
            },
            "firstName": first,
            "lastName": last,
            "fullName": self.user_name,
            "meetingLicense": { "enabled": true, "edition": EDITION },
            "webinarLicense": { "enabled": true, "edition": EDITION },
        });
        if with_email && let Value::Object(fields) = &mut user {
            fields.insert("emailId".to_owned(), json!(self.user_email));
        }
        user
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meeting::testing::*;

    #[tokio::test]
    async fn user_json_answers_the_user_details() {
        let sb = Sandbox::start().await;
        for path in [
            "/api/v2/user.json",
            "/meeting/api/v2/user.json",
            "/api/v2/user",
        ] {
            let (status, body) = sb.call(Method::GET, path, None).await;
            assert_eq!(status, StatusCode::OK, "{path}");
            let user = &body["userDetails"];
            assert_eq!(user["zsoid"], 700_000_001u64);
            assert_eq!(user["zuid"], 800_000_001u64);
            assert_eq!(user["primaryEmail"], "sandbox.user@example.com");
            assert_eq!(user["displayName"], "Sandbox User");
            assert_eq!(user["isAdmin"], true);
        }
    }

    #[tokio::test]
    async fn lists_the_one_user_with_page_numbers() {
        let sb = Sandbox::start().await;
        for path in [
            sb.org("user"),
            sb.org("user.json?index=0&count=1"),
            sb.org("user?index=1"),
            format!("/meeting/api/v2/{}/user.json", sb.meeting.control().zsoid()),
        ] {
            let (status, body) = sb.call(Method::GET, &path, None).await;
            assert_eq!(status, StatusCode::OK, "{path}");
            assert_eq!(body["totalCount"], 1, "{path}");
            assert_eq!(body["resourceType"], "/api/v2/700000001/user");
            let users = body["representation"].as_array().unwrap();
            assert_eq!(users.len(), 1, "{path}");
            assert_eq!(users[0]["zuid"], "800000001");
            assert_eq!(users[0]["userId"], "700000001000000001");
            assert_eq!(users[0]["emailId"], "sandbox.user@example.com");
            assert_eq!(users[0]["firstName"], "Sandbox");
            assert_eq!(users[0]["lastName"], "User");
            assert_eq!(users[0]["organization"]["orgId"], "700000001");
        }
        let (status, body) = sb.call(Method::GET, &sb.org("user?index=2"), None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["representation"], json!([]));
        assert_eq!(body["totalCount"], 1);
        let (status, body) = sb.call(Method::GET, &sb.org("user?count=0"), None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"]["key"], "INVALID_COUNT");
    }

    #[tokio::test]
    async fn user_details_by_user_id_or_zuid() {
        let sb = Sandbox::start().await;
        for id in ["700000001000000001", "800000001"] {
            let (status, body) = sb
                .call(Method::GET, &sb.org(&format!("user/{id}")), None)
                .await;
            assert_eq!(status, StatusCode::OK, "{id}");
            assert_eq!(body["representation"]["userId"], "700000001000000001");
            assert_eq!(body["representation"]["fullName"], "Sandbox User");
            assert!(body["representation"].get("emailId").is_none());
            assert_eq!(
                body["resourceType"],
                "/api/v2/700000001/user/700000001000000001"
            );
        }
        let (status, body) = sb.call(Method::GET, &sb.org("user/1234"), None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"]["key"], "INVALID_USER");
    }

    #[tokio::test]
    async fn user_pages_answer_403_code_1025_for_another_org_and_need_user_read() {
        let sb = Sandbox::start().await;
        for path in ["/api/v2/1/user", "/meeting/api/v2/2/user/800000001.json"] {
            let (status, body) = sb.call(Method::GET, path, None).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
            assert_eq!(body["error"]["code"], 1025, "{path}");
            assert_eq!(
                body["error"]["message"],
                "Org doesn't matches with request uri"
            );
            assert!(body["resourceType"].as_str().unwrap().ends_with("/user"));
        }
        let (meeting_only, _) = mint(&sb.accounts, &["ZohoMeeting.meeting.ALL"]).await;
        let (status, body) = sb
            .call_as(Method::GET, &sb.org("user"), Some(&meeting_only), None)
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["code"], "OAUTH_SCOPE_MISMATCH");
        let (user_read, _) = mint(&sb.accounts, &["ZohoMeeting.user.READ"]).await;
        let (status, _) = sb
            .call_as(
                Method::GET,
                &sb.org("user/800000001"),
                Some(&user_read),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
    }
}
