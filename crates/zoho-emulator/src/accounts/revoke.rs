//! `POST /oauth/v2/token/revoke?token=…`: revokes a refresh token (and every access token
//! minted from it) or one access token, as Zoho documents
//! (<https://zoho.com/accounts/protocol/oauth/revoke-refresh-token.html>): `200
//! {"status":"success"}` for a live token, `400` for an unknown one. The token may also come
//! in a form body, as Zoho's SDKs send it.

use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};

use super::token::read_params;
use super::{REQUEST_LOG_CAPACITY, Shared, body_error_response, html_page, json};
use crate::http::Body;

/// `POST /oauth/v2/token/revoke`.
pub(super) async fn handle(req: Request<Incoming>, shared: &Shared) -> Response<Body> {
    let params = match read_params(req).await {
        Ok(params) => params,
        Err((error, _)) => return body_error_response(&error),
    };
    let mut state = shared.lock();
    if let Some(status) = state.revoke_outage {
        drop(state);
        return html_page(
            StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
            "Service unavailable",
        );
    }
    let revoked = params.get("token").is_some_and(|token| {
        let revoked =
            state.revoke_refresh_token(token) || state.access_tokens.remove(token).is_some();
        if revoked {
            if state.revocations.len() >= REQUEST_LOG_CAPACITY {
                state.revocations.pop_front();
            }
            state.revocations.push_back(token.to_owned());
        }
        revoked
    });
    drop(state);
    if revoked {
        json(StatusCode::OK, &serde_json::json!({ "status": "success" }))
    } else {
        json(
            StatusCode::BAD_REQUEST,
            &serde_json::json!({ "status": "failure", "error": "invalid_token" }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::*;

    use reqwest::header::CONTENT_TYPE;
    use serde_json::Value;

    use crate::http::JSON_CONTENT_TYPE;

    #[tokio::test]
    async fn revoking_a_refresh_token_kills_its_access_tokens() {
        let emu = start(AccountsOptions::default()).await;
        let control = emu.control();
        let token = control.issue_refresh_token(&[SCOPE]);
        let survivor_rt = control.issue_refresh_token(&[SCOPE]);
        let (_, first) = refresh(&emu, &token).await;
        let (_, second) = refresh(&emu, &token).await;
        let (_, survivor) = refresh(&emu, &survivor_rt).await;
        let first = first["access_token"].as_str().unwrap();
        let second = second["access_token"].as_str().unwrap();
        let survivor = survivor["access_token"].as_str().unwrap();
        assert!(control.validate_access_token(first).is_some());
        assert!(control.validate_access_token(second).is_some());

        let revoke_url = format!("{}{REVOKE_PATH}", emu.url());
        let resp = client()
            .post(&revoke_url)
            .form(&[("token", token.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()[CONTENT_TYPE], JSON_CONTENT_TYPE);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body, serde_json::json!({ "status": "success" }));
        assert_eq!(control.validate_access_token(first), None);
        assert_eq!(control.validate_access_token(second), None);
        assert!(control.validate_access_token(survivor).is_some());
        let (_, body) = refresh(&emu, &token).await;
        assert_eq!(body, serde_json::json!({ "error": "invalid_code" }));

        // An access token alone, in the query string.
        let resp = client()
            .post(&revoke_url)
            .query(&[("token", survivor)])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(control.validate_access_token(survivor), None);

        // Unknown (and already revoked) tokens.
        for unknown in [token.as_str(), "1000.unknown.unknown", ""] {
            let resp = client()
                .post(&revoke_url)
                .query(&[("token", unknown)])
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
            let body: Value = resp.json().await.unwrap();
            assert_eq!(
                body,
                serde_json::json!({ "status": "failure", "error": "invalid_token" })
            );
        }
        let resp = client().post(&revoke_url).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);

        // The control-side revoke.
        let (_, body) = refresh(&emu, &survivor_rt).await;
        let access = body["access_token"].as_str().unwrap();
        assert!(control.revoke_refresh_token(&survivor_rt));
        assert!(!control.revoke_refresh_token(&survivor_rt));
        assert_eq!(control.validate_access_token(access), None);
    }

    #[tokio::test]
    async fn revocations_are_logged_in_order_and_a_revoke_outage_revokes_nothing() {
        let emu = start(AccountsOptions::default()).await;
        let control = emu.control();
        let revoke_url = format!("{}{REVOKE_PATH}", emu.url());
        let revoke = |token: String| {
            let url = revoke_url.clone();
            async move {
                client()
                    .post(url)
                    .form(&[("token", token)])
                    .send()
                    .await
                    .unwrap()
                    .status()
            }
        };
        let first = control.issue_refresh_token(&[SCOPE]);
        let second = control.issue_refresh_token(&[SCOPE]);
        let (_, body) = refresh(&emu, &second).await;
        let access = body["access_token"].as_str().unwrap().to_owned();
        assert!(control.revocations().is_empty());

        // During an outage nothing is revoked or logged, and the token endpoint still works.
        control.set_revoke_outage(Some(503));
        let resp = client()
            .post(&revoke_url)
            .form(&[("token", first.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(resp.headers()[CONTENT_TYPE], HTML_CONTENT_TYPE);
        control.set_revoke_outage(Some(9999));
        assert_eq!(revoke(first.clone()).await, StatusCode::SERVICE_UNAVAILABLE);
        let (_, body) = refresh(&emu, &first).await;
        assert!(body["access_token"].is_string(), "{body}");
        assert!(control.revocations().is_empty());

        control.set_revoke_outage(None);
        assert_eq!(revoke(second.clone()).await, StatusCode::OK);
        assert_eq!(revoke(first.clone()).await, StatusCode::OK);
        // Unknown tokens and console revocations are not logged.
        assert_eq!(revoke(second.clone()).await, StatusCode::BAD_REQUEST);
        let third = control.issue_refresh_token(&[SCOPE]);
        assert!(control.revoke_refresh_token(&third));
        assert_eq!(control.revocations(), [second, first]);
        // The access token died with its refresh token: revoking it is unknown too.
        assert_eq!(revoke(access).await, StatusCode::BAD_REQUEST);
        assert_eq!(control.revocations().len(), 2);
    }
}
