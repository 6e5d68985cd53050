//! `/oauth/v2/auth`: the consent step of the browser flow.
//!
//! By default the sandbox has no user to ask, so a valid `GET` consents at once: `302` to the
//! `redirect_uri` with `code`, `state`, `location` (the emulated data centre's name) and
//! `accounts-server` (the emulator's URL), URL-encoded as Zoho's redirects are
//! (<https://www.zoho.com/accounts/protocol/oauth/multi-dc/client-authorization.html>).
//!
//! With [`AccountsOptions::consent_form`](super::AccountsOptions::consent_form) a valid `GET`
//! shows a consent page instead, as Zoho does to a person: an HTML form that carries the
//! request's parameters as hidden fields and `POST`s them back here with `consent=allow`
//! (the redirect above) or `consent=deny` (a redirect with `error=access_denied` and the
//! `state`, RFC 6749 §4.1.2.1).
//!
//! A bad request, by either method, gets a `400` HTML page and no redirect.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use tokio::time::Instant;

use super::{
    AUTH_PATH, GrantCode, HTML_CONTENT_TYPE, MAX_BODY_BYTES, Shared, body_error_response,
    html_page, new_token, no_store,
};
use crate::http::{self, Body, content_type, is_form, query_params, read_body};

/// `GET /oauth/v2/auth`: the consent page with [`Shared::consent_form`], else consents at
/// once and redirects with a browser-flow code.
pub(super) fn handle(req: &Request<Incoming>, shared: &Shared) -> Response<Body> {
    let query = query_params(req.uri().query());
    match redirect_uri(&query, shared) {
        Err(bad) => html_page(StatusCode::BAD_REQUEST, bad),
        Ok(_) if shared.consent_form => consent_page(&query),
        Ok(location) => grant(&query, location, shared),
    }
}

/// `POST /oauth/v2/auth` (only with [`Shared::consent_form`]): the consent page's form,
/// submitted.
pub(super) async fn submit(req: Request<Incoming>, shared: &Shared) -> Response<Body> {
    let (parts, body) = req.into_parts();
    if !content_type(&parts.headers).is_some_and(is_form) {
        return html_page(StatusCode::BAD_REQUEST, "Bad request");
    }
    let body = match read_body(&parts.headers, body, MAX_BODY_BYTES).await {
        Ok(body) => body,
        Err(error) => return body_error_response(&error),
    };
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let location = match redirect_uri(&form, shared) {
        Ok(location) => location,
        Err(bad) => return html_page(StatusCode::BAD_REQUEST, bad),
    };
    match form.get("consent").map(String::as_str) {
        Some("allow") => grant(&form, location, shared),
        Some("deny") => {
            let mut location = location;
            {
                let mut pairs = location.query_pairs_mut();
                pairs.append_pair("error", "access_denied");
                if let Some(state) = form.get("state") {
                    pairs.append_pair("state", state);
                }
            }
            redirect(&location)
        }
        _ => html_page(StatusCode::BAD_REQUEST, "Bad request"),
    }
}

/// Checks the client, the response type and the redirect URI; returns the redirect URI, or
/// the title of the `400` page.
fn redirect_uri(
    params: &HashMap<String, String>,
    shared: &Shared,
) -> Result<url::Url, &'static str> {
    let get = |name: &str| params.get(name).map(String::as_str);
    if get("client_id") != Some(shared.client_id.as_str()) {
        return Err("Invalid client");
    }
    if get("response_type") != Some("code") {
        return Err("Invalid response type");
    }
    let invalid = "Invalid redirect URI";
    let location = url::Url::parse(get("redirect_uri").ok_or(invalid)?).map_err(|_| invalid)?;
    if location.cannot_be_a_base() {
        return Err(invalid);
    }
    Ok(location)
}

/// Issues a grant code and redirects to `location` with it.
fn grant(
    params: &HashMap<String, String>,
    mut location: url::Url,
    shared: &Shared,
) -> Response<Body> {
    let get = |name: &str| params.get(name).map(String::as_str);
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
                redirect_uri: get("redirect_uri").map(str::to_owned),
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
    redirect(&location)
}

/// `302` to `location`.
fn redirect(location: &url::Url) -> Response<Body> {
    match HeaderValue::from_str(location.as_str()) {
        Ok(value) => {
            let mut response = html_page(StatusCode::FOUND, "Redirecting");
            response.headers_mut().insert(header::LOCATION, value);
            response
        }
        Err(_) => html_page(StatusCode::BAD_REQUEST, "Invalid redirect URI"),
    }
}

/// The consent page: who asks for what, and a form that posts the request back with
/// `consent=allow` or `consent=deny`.
fn consent_page(params: &HashMap<String, String>) -> Response<Body> {
    let get = |name: &str| params.get(name).map_or("", String::as_str);
    let mut scopes = String::new();
    for scope in parse_scopes(get("scope")) {
        let _ = write!(scopes, "<li><code>{}</code></li>", escape(&scope));
    }
    let mut hidden = String::new();
    // Sorted, so that the page is the same for the same request.
    for (name, value) in params.iter().collect::<BTreeMap<_, _>>() {
        let _ = write!(
            hidden,
            "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
            escape(name),
            escape(value)
        );
    }
    let body = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Allow access?</title></head>\
         <body style=\"font-family:sans-serif;max-width:40em;margin:4em auto\">\
         <h1>Allow access?</h1>\
         <p>The application <strong>{client}</strong> asks to access your Zoho account with:</p>\
         <ul>{scopes}</ul><p>You will be sent back to <code>{redirect}</code>.</p>\
         <form method=\"post\" action=\"{AUTH_PATH}\">{hidden}\
         <button type=\"submit\" id=\"allow\" name=\"consent\" value=\"allow\">Allow</button> \
         <button type=\"submit\" id=\"deny\" name=\"consent\" value=\"deny\">Deny</button>\
         </form><hr><p>Zoho accounts sandbox</p></body></html>\n",
        client = escape(get("client_id")),
        redirect = escape(get("redirect_uri")),
    );
    no_store(http::response(
        StatusCode::OK,
        HTML_CONTENT_TYPE,
        Bytes::from(body),
    ))
}

/// Escapes text for an HTML element or a double-quoted attribute.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
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

    /// The hidden fields of a consent page, unescaped.
    fn hidden_fields(page: &str) -> Vec<(String, String)> {
        let unescape = |s: &str| {
            s.replace("&quot;", "\"")
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&amp;", "&")
        };
        page.split("<input type=\"hidden\" name=\"")
            .skip(1)
            .map(|rest| {
                let (name, rest) = rest.split_once("\" value=\"").unwrap();
                let (value, _) = rest.split_once("\">").unwrap();
                (unescape(name), unescape(value))
            })
            .collect()
    }

    #[tokio::test]
    async fn the_consent_form_asks_then_allow_redirects_with_a_code_and_deny_with_an_error() {
        let emu = start(AccountsOptions {
            consent_form: true,
            ..AccountsOptions::default()
        })
        .await;
        let state = "st\"ate<b>&x";
        let resp = client()
            .get(format!("{}{AUTH_PATH}", emu.url()))
            .query(&[
                ("client_id", "1000.SANDBOXCLIENT"),
                ("response_type", "code"),
                ("redirect_uri", "http://localhost:9/cb"),
                (
                    "scope",
                    "ZohoMeeting.meeting.READ,ZohoMeeting.manageOrg.READ",
                ),
                ("state", state),
                ("access_type", "offline"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert!(resp.headers().get(LOCATION).is_none());
        assert_eq!(resp.headers()[CONTENT_TYPE], HTML_CONTENT_TYPE);
        let page = resp.text().await.unwrap();
        assert!(
            page.contains("<form method=\"post\" action=\"/oauth/v2/auth\">"),
            "{page}"
        );
        assert!(
            page.contains("<code>ZohoMeeting.manageOrg.READ</code>"),
            "{page}"
        );
        assert!(!page.contains("<b>"), "request input is escaped: {page}");
        let fields = hidden_fields(&page);
        assert_eq!(fields.len(), 6, "{fields:?}");
        assert!(fields.contains(&("state".to_owned(), state.to_owned())));
        assert_eq!(emu.control().mint_count(), 0);

        let submit = |consent: &'static str| {
            let mut form = fields.clone();
            form.push(("consent".to_owned(), consent.to_owned()));
            let url = format!("{}{AUTH_PATH}", emu.url());
            async move {
                let resp = client().post(url).form(&form).send().await.unwrap();
                assert_eq!(resp.status(), StatusCode::FOUND);
                let location = url::Url::parse(resp.headers()[LOCATION].to_str().unwrap()).unwrap();
                let query: HashMap<String, String> = location.query_pairs().into_owned().collect();
                query
            }
        };
        let denied = submit("deny").await;
        assert_eq!(
            denied.get("error").map(String::as_str),
            Some("access_denied")
        );
        assert_eq!(denied["state"], state);
        assert!(!denied.contains_key("code"));

        let allowed = submit("allow").await;
        assert_eq!(allowed["state"], state);
        assert_eq!(allowed["accounts-server"], emu.url());
        let (_, body) = post_token(
            &emu,
            &[
                ("grant_type", "authorization_code"),
                ("code", &allowed["code"]),
                ("redirect_uri", "http://localhost:9/cb"),
            ],
        )
        .await;
        assert!(body["refresh_token"].is_string(), "{body}");
    }

    #[tokio::test]
    async fn a_submitted_consent_is_checked_as_the_request_was() {
        let emu = start(AccountsOptions {
            consent_form: true,
            ..AccountsOptions::default()
        })
        .await;
        let url = format!("{}{AUTH_PATH}", emu.url());
        let good = [
            ("client_id", "1000.SANDBOXCLIENT"),
            ("response_type", "code"),
            ("redirect_uri", "http://localhost:9/cb"),
        ];
        let cases: [(&[(&str, &str)], &str); 3] = [
            (
                &[("client_id", "1000.OTHER"), ("consent", "allow")],
                "Invalid client",
            ),
            (&[("consent", "maybe")], "Bad request"),
            (&[], "Bad request"),
        ];
        for (changes, title) in cases {
            let mut form: HashMap<&str, &str> = good.into_iter().collect();
            form.extend(changes.iter().copied());
            let resp = client().post(&url).form(&form).send().await.unwrap();
            assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{changes:?}");
            assert!(resp.headers().get(LOCATION).is_none());
            assert!(resp.text().await.unwrap().contains(title), "{changes:?}");
        }
        // Not a form.
        let resp = client()
            .post(&url)
            .body("consent=allow")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        let resp = client().put(&url).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(resp.headers()["allow"], "GET, POST");
        assert_eq!(emu.control().mint_count(), 0);
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
