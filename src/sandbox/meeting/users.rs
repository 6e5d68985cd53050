//! The users endpoints: the current user (`user.json`).

use hyper::{Response, StatusCode};
use serde_json::json;

use super::{DEFAULT_TIMEZONE, Shared};
use crate::sandbox::http::{Body, json};

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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::meeting::testing::*;

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
}
