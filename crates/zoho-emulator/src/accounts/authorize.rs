//! `GET /oauth/v2/auth`: the consent step of the browser flow.
//!
//! The sandbox has no user to ask, so a valid request consents at once: `302` to the
//! `redirect_uri` with `code`, `state`, `location` (the emulated data centre's name) and
//! `accounts-server` (the emulator's URL), URL-encoded as Zoho's redirects are
//! (<https://www.zoho.com/accounts/protocol/oauth/multi-dc/client-authorization.html>). A bad
//! request gets a `400` HTML page and no redirect.

use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use tokio::time::Instant;

use super::{GrantCode, Shared, html_page, new_token};
use crate::http::{Body, query_params};

/// `GET /oauth/v2/auth`: consents at once and redirects with a browser-flow code.
pub(super) fn handle(req: &Request<Incoming>, shared: &Shared) -> Response<Body> {
    let query = query_params(req.uri().query());
    let get = |name: &str| query.get(name).map(String::as_str);

    if get("client_id") != Some(shared.client_id.as_str()) {
        return html_page(StatusCode::BAD_REQUEST, "Invalid client");
    }
    if get("response_type") != Some("code") {
        return html_page(StatusCode::BAD_REQUEST, "Invalid response type");
    }
    let Some(redirect_uri) = get("redirect_uri") else {
        return html_page(StatusCode::BAD_REQUEST, "Invalid redirect URI");
    };
    let Ok(mut location) = url::Url::parse(redirect_uri) else {
        return html_page(StatusCode::BAD_REQUEST, "Invalid redirect URI");
    };
    if location.cannot_be_a_base() {
        return html_page(StatusCode::BAD_REQUEST, "Invalid redirect URI");
    }

    let scopes = parse_scopes(get("scope").unwrap_or_default());
    let offline = get("access_type").is_some_and(|a| a.eq_ignore_ascii_case("offline"));
    let code = new_token();
    let now = Instant::now();
    {
        let mut state = shared.lock();
        state.grant_codes.retain(|_, c| c.expires_at > now);
        state.grant_codes.insert(
            code.clone(),
            GrantCode {
                scopes,
                redirect_uri: Some(redirect_uri.to_owned()),
                offline,
                expires_at: now + shared.grant_code_lifetime,
            },
        );
    }

    {
        let mut pairs = location.query_pairs_mut();
        pairs.append_pair("code", &code);
        if let Some(state) = get("state") {
            pairs.append_pair("state", state);
        }
        pairs.append_pair("location", shared.location.name());
        pairs.append_pair("accounts-server", &shared.url);
    }
    match HeaderValue::from_str(location.as_str()) {
        Ok(value) => {
            let mut response = html_page(StatusCode::FOUND, "Redirecting");
            response.headers_mut().insert(header::LOCATION, value);
            response
        }
        Err(_) => html_page(StatusCode::BAD_REQUEST, "Invalid redirect URI"),
    }
}

// === helpers ===

/// Splits a `scope` parameter, which Zoho accepts comma- or space-separated.
fn parse_scopes(scope: &str) -> Vec<String> {
    scope
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::*;
    use super::*;

    use reqwest::header::{CONTENT_TYPE, LOCATION};

    use crate::http::is_form;

    #[tokio::test]
    async fn auth_redirect_carries_code_state_location_and_server_and_code_exchanges_once() {
        let emu = start(AccountsOptions::default()).await;
        let resp = client()
            .get(format!("{}{AUTH_PATH}", emu.url()))
            .query(&[
                ("client_id", "1000.SANDBOXCLIENT"),
                ("response_type", "code"),
                ("redirect_uri", "http://localhost:9/cb?keep=1"),
                (
                    "scope",
                    "ZohoMeeting.meeting.READ,ZohoMeeting.manageOrg.READ",
                ),
                ("state", "st ate/1&x"),
                ("access_type", "offline"),
                ("prompt", "consent"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::FOUND);
        let raw = resp.headers()[LOCATION].to_str().unwrap().to_owned();
        assert!(
            raw.starts_with("http://localhost:9/cb?keep=1&code=1000."),
            "{raw}"
        );
        let encoded_server = format!(
            "accounts-server=http%3A%2F%2F127.0.0.1%3A{}",
            emu.addr().port()
        );
        assert!(raw.ends_with(&encoded_server), "{raw}");

        let query: HashMap<String, String> = url::Url::parse(&raw)
            .unwrap()
            .query_pairs()
            .into_owned()
            .collect();
        assert_eq!(query["keep"], "1");
        assert_eq!(query["state"], "st ate/1&x");
        assert_eq!(query["location"], "us");
        assert_eq!(query["accounts-server"], emu.url());
        let code = &query["code"];
        assert_token_shape(code);

        let exchange = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", "http://localhost:9/cb?keep=1"),
        ];
        let (status, body) = post_token(&emu, &exchange).await;
        assert_eq!(status, StatusCode::OK);
        assert_token_shape(body["access_token"].as_str().unwrap());
        assert_token_shape(body["refresh_token"].as_str().unwrap());
        assert_eq!(
            body["scope"],
            "ZohoMeeting.meeting.READ ZohoMeeting.manageOrg.READ"
        );
        assert_eq!(body["api_domain"], "https://www.zohoapis.com");
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["expires_in"], 3_600_000);
        assert_eq!(body["expires_in_sec"], 3600);

        let info = emu
            .control()
            .validate_access_token(body["access_token"].as_str().unwrap())
            .unwrap();
        assert_eq!(
            info.scopes,
            ["ZohoMeeting.meeting.READ", "ZohoMeeting.manageOrg.READ"]
        );
        assert!(info.expires_in <= Duration::from_secs(3600));
        assert!(info.expires_in > Duration::from_secs(3500));

        let (status, body) = post_token(&emu, &exchange).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, serde_json::json!({ "error": "invalid_code" }));
        assert_eq!(emu.control().mint_count(), 1);
        assert_eq!(emu.control().token_requests(), 2);
    }

    #[tokio::test]
    async fn online_code_gets_no_refresh_token_and_space_separated_scopes_parse() {
        let emu = start(AccountsOptions::default()).await;
        let query = consent(&emu, &[("scope", "A.b.READ  C.d.ALL")]).await;
        assert!(!query.contains_key("state"));
        let (_, body) = post_token(
            &emu,
            &[
                ("grant_type", "authorization_code"),
                ("code", &query["code"]),
                ("redirect_uri", "http://localhost:9/cb"),
            ],
        )
        .await;
        assert!(body.get("refresh_token").is_none(), "{body}");
        assert_eq!(body["scope"], "A.b.READ C.d.ALL");
    }

    #[tokio::test]
    async fn wrong_redirect_uri_is_invalid_redirect_uri() {
        let emu = start(AccountsOptions::default()).await;
        let query = consent(&emu, &[("access_type", "offline")]).await;
        let code = query["code"].as_str();
        for wrong in [vec![("redirect_uri", "http://localhost:9/other")], vec![]] {
            let mut form = vec![("grant_type", "authorization_code"), ("code", code)];
            form.extend(wrong);
            let (status, body) = post_token(&emu, &form).await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(body, serde_json::json!({ "error": "invalid_redirect_uri" }));
        }
        // The mistake did not burn the code.
        let (_, body) = post_token(
            &emu,
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", "http://localhost:9/cb"),
            ],
        )
        .await;
        assert!(body["access_token"].is_string(), "{body}");
    }

    #[tokio::test]
    async fn auth_rejects_bad_requests_without_redirecting() {
        let emu = start(AccountsOptions::default()).await;
        let cases: [&[(&str, &str)]; 4] = [
            &[
                ("client_id", "1000.OTHER"),
                ("response_type", "code"),
                ("redirect_uri", "http://x/cb"),
            ],
            &[
                ("client_id", "1000.SANDBOXCLIENT"),
                ("response_type", "token"),
                ("redirect_uri", "http://x/cb"),
            ],
            &[
                ("client_id", "1000.SANDBOXCLIENT"),
                ("response_type", "code"),
            ],
            &[
                ("client_id", "1000.SANDBOXCLIENT"),
                ("response_type", "code"),
                ("redirect_uri", "not a url"),
            ],
        ];
        for query in cases {
            let resp = client()
                .get(format!("{}{AUTH_PATH}", emu.url()))
                .query(query)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{query:?}");
            assert!(resp.headers().get(LOCATION).is_none());
            assert_eq!(resp.headers()[CONTENT_TYPE], HTML_CONTENT_TYPE);
            assert!(resp.text().await.unwrap().contains("<html>"));
        }
    }

    #[test]
    fn parses_scopes_and_form_content_types() {
        assert_eq!(parse_scopes("a,b c,,  d"), ["a", "b", "c", "d"]);
        assert!(parse_scopes("").is_empty());
        assert!(is_form("application/x-www-form-urlencoded"));
        assert!(is_form("Application/X-WWW-Form-Urlencoded ; charset=UTF-8"));
        assert!(!is_form("application/json"));
        assert!(!is_form("multipart/form-data; boundary=x"));
    }
}
