//! Zoho Webinar's registrations: registering attendees for a webinar and listing them.
//!
//! - `POST /api/v2/{zsoid}/register/{webinarKey}.json` (scope `ZohoWebinar.webinar.CREATE`),
//!   as Zoho Webinar's "Bulk Registration API" page documents it
//!   (<https://www.zoho.com/webinar/api/webinar-api/bulk-registration.html>): query
//!   `instanceId` (the occurrence; accepted and ignored, the emulator has no recurring
//!   webinars) and `sendMail` (`true` | `false`; no mail is sent), body
//!   `{"registrant":[{"email","firstName","lastName"}]}`, answer
//!   `{"registrant":[{"joinLink","email"}],"failedCount","successCount","totalCount",
//!   "registeredCount"}`. The page shows no status; the emulator answers `200`. An email
//!   already registered (or given twice) is not registered again and counts as failed;
//!   `totalCount` is how many the request held, `registeredCount` how many the webinar now
//!   has.
//! - `GET` on the same path (scope `ZohoWebinar.registration.READ`), the "Registration" API
//!   that Deluge's `zoho.webinar.getRegistrationDetails` wraps
//!   (<https://www.zoho.com/deluge/help/webinar/get-registration-details.html>): query
//!   `instanceId`, `status` (`1` auto-approved, `0` awaiting approval, `2` denied, `3`
//!   cancelled: every emulated registrant is `1`), `index` (a page number from 1, the
//!   default) and `count`. Its answer's shape is not in the pages read, so the emulator's is
//!   its own, in the registration page's vocabulary: `{"registrant":[{"email","firstName",
//!   "lastName","joinLink","registerKey","status"}],"count":n}` (`count`: how many match
//!   before paging).
//!
//! An unknown webinar key answers the documented `400` `INVALID_MEETING_KEY`, before the
//! body is read; an invalid body or query answers `400` with the emulator's `errorCode`
//! `4001` and a `key` naming the field, and registers nobody.

use hyper::http::request::Parts;
use hyper::{Response, StatusCode};
use rand::Rng;
use serde_json::{Map, Value, json};

use super::reject::*;
use super::route::Op;
use super::sessions::{Kind, find, find_mut, is_email, page, parse_key, parse_payload};
use super::{MAX_PAGE_SIZE, Shared};
use crate::http::{Body, content_type, json, query_params};

/// Most registrants one request may carry.
const MAX_PER_REQUEST: usize = 100;
/// Most registrants one webinar holds.
const MAX_PER_WEBINAR: usize = 1_000;
/// Longest `firstName` or `lastName`, in characters.
const MAX_NAME_CHARS: usize = 100;
/// The registration status of every emulated registrant: approved automatically.
const AUTO_APPROVED: u64 = 1;

/// One registrant of a webinar.
#[derive(Clone, Debug)]
pub(super) struct Registrant {
    email: String,
    first_name: String,
    last_name: String,
    /// The `registerKey` of the join link: nine hex digits, as the page's example shows.
    register_key: String,
}

// === impl Shared ===

impl Shared {
    /// `register/{webinarKey}.json`: registers (`POST`) or lists (`GET`) attendees.
    pub(super) fn registration(
        &self,
        key: &str,
        op: Op,
        parts: &Parts,
        body: &[u8],
    ) -> Result<Response<Body>, Reject> {
        let params = query_params(parts.uri.query());
        if params
            .get("instanceId")
            .is_some_and(|id| parse_key(id.trim()).is_none())
        {
            return Err(INVALID_INSTANCE_ID.into());
        }
        match op {
            Op::Create => self.register(key, &params, content_type(&parts.headers), body),
            _ => self.registrants(key, &params),
        }
    }

    /// `POST register/{webinarKey}.json`.
    fn register(
        &self,
        key: &str,
        params: &std::collections::HashMap<String, String>,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<Response<Body>, Reject> {
        // An unknown key wins over a bad body, as on edit.
        find(&self.lock().sessions, Kind::Webinar, key)?;
        if let Some(send_mail) = params.get("sendMail")
            && !matches!(send_mail.trim(), "true" | "false")
        {
            return Err(INVALID_SEND_MAIL.into());
        }
        let requested = registrants_of(&parse_payload(content_type, body)?)?;
        let total = requested.len();

        let mut rng = rand::rng();
        let origin = self.product.public_origin();
        let mut state = self.lock();
        let webinar = find_mut(&mut state.sessions, Kind::Webinar, key)?;
        let mut added = Vec::new();
        for (email, first_name, last_name) in requested {
            let known = webinar
                .registrants
                .iter()
                .any(|r| r.email.eq_ignore_ascii_case(&email));
            if known {
                continue;
            }
            if webinar.registrants.len() >= MAX_PER_WEBINAR {
                return Err(REGISTRANT_LIMIT.into());
            }
            let registrant = Registrant {
                email,
                first_name,
                last_name,
                register_key: format!("{:09x}", rng.random_range(0..0x10_0000_0000u64)),
            };
            added.push(json!({
                "joinLink": join_link(origin, webinar.key, &registrant),
                "email": registrant.email,
            }));
            webinar.registrants.push(registrant);
        }
        let registered = webinar.registrants.len();
        drop(state);
        let succeeded = added.len();
        Ok(json(
            StatusCode::OK,
            &json!({
                "registrant": added,
                "failedCount": total - succeeded,
                "successCount": succeeded,
                "totalCount": total,
                "registeredCount": registered,
            }),
        ))
    }

    /// `GET register/{webinarKey}.json`.
    fn registrants(
        &self,
        key: &str,
        params: &std::collections::HashMap<String, String>,
    ) -> Result<Response<Body>, Reject> {
        let status = match params.get("status") {
            None => None,
            Some(value) => match parse_key(value.trim()) {
                Some(status @ 0..=3) => Some(status),
                _ => return Err(INVALID_STATUS.into()),
            },
        };
        let (skip, take) = page(params, MAX_PAGE_SIZE)?;
        let origin = self.product.public_origin();
        let state = self.lock();
        let webinar = find(&state.sessions, Kind::Webinar, key)?;
        let matching: Vec<&Registrant> = webinar
            .registrants
            .iter()
            .filter(|_| status.is_none_or(|status| status == AUTO_APPROVED))
            .collect();
        let entries: Vec<Value> = matching
            .iter()
            .skip(skip)
            .take(take)
            .map(|r| {
                json!({
                    "email": r.email,
                    "firstName": r.first_name,
                    "lastName": r.last_name,
                    "joinLink": join_link(origin, webinar.key, r),
                    "registerKey": r.register_key,
                    "status": AUTO_APPROVED,
                })
            })
            .collect();
        let count = matching.len();
        drop(state);
        Ok(json(
            StatusCode::OK,
            &json!({ "registrant": entries, "count": count }),
        ))
    }
}

// === helpers ===

/// The registrant's join link, as the registration page's example shows it.
fn join_link(origin: &str, webinar_key: u64, r: &Registrant) -> String {
    let name: String = url::form_urlencoded::byte_serialize(r.first_name.as_bytes()).collect();
    format!(
        "{origin}/webinar/register/join?registerKey={}&sessionId={webinar_key}&uname={name}",
        r.register_key
    )
}

/// Validates a registration body: `{"registrant":[..]}` with 1 to [`MAX_PER_REQUEST`]
/// entries, each with a valid `email` and a `firstName`; returns (email, first, last) each.
fn registrants_of(payload: &Value) -> Result<Vec<(String, String, String)>, Invalid> {
    let list = payload
        .get("registrant")
        .and_then(Value::as_array)
        .filter(|list| (1..=MAX_PER_REQUEST).contains(&list.len()))
        .ok_or(MISSING_REGISTRANT)?;
    list.iter()
        .map(|entry| {
            let fields = entry.as_object().ok_or(INVALID_REGISTRANT)?;
            let email = text(fields, "email")
                .filter(|email| is_email(email))
                .ok_or(INVALID_REGISTRANT)?;
            let first = text(fields, "firstName")
                .filter(|name| !name.is_empty() && name.chars().count() <= MAX_NAME_CHARS)
                .ok_or(INVALID_REGISTRANT)?;
            let last = match fields.get("lastName") {
                None | Some(Value::Null) => "",
                Some(_) => text(fields, "lastName")
                    .filter(|name| name.chars().count() <= MAX_NAME_CHARS)
                    .ok_or(INVALID_REGISTRANT)?,
            };
            Ok((email.to_owned(), first.to_owned(), last.to_owned()))
        })
        .collect()
}

/// A string field, trimmed.
fn text<'a>(fields: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    fields.get(name)?.as_str().map(str::trim)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_registrants_and_builds_join_links() {
        let body = json!({ "registrant": [
            { "email": " ada@example.com ", "firstName": "Ada", "lastName": "Lovelace" },
            { "email": "alan@example.com", "firstName": "Alan", "lastName": null },
        ] });
        assert_eq!(
            registrants_of(&body),
            Ok(vec![
                (
                    "ada@example.com".to_owned(),
                    "Ada".to_owned(),
                    "Lovelace".to_owned()
                ),
                (
                    "alan@example.com".to_owned(),
                    "Alan".to_owned(),
                    String::new()
                ),
            ])
        );
        let long = "x".repeat(MAX_NAME_CHARS + 1);
        for (bad, error) in [
            (json!({}), MISSING_REGISTRANT),
            (json!({ "registrant": {} }), MISSING_REGISTRANT),
            (
                json!({ "registrant": [{ "email": "a@b.co", "firstName": long }] }),
                INVALID_REGISTRANT,
            ),
            (
                json!({ "registrant": [{ "email": "a@b", "firstName": "A" }] }),
                INVALID_REGISTRANT,
            ),
        ] {
            assert_eq!(registrants_of(&bad), Err(error), "{bad}");
        }
        let registrant = Registrant {
            email: "ada@example.com".to_owned(),
            first_name: "Ada & co".to_owned(),
            last_name: String::new(),
            register_key: "0a1b2c3d4".to_owned(),
        };
        assert_eq!(
            join_link("https://webinar.zoho.com", 1_234_509_876, &registrant),
            "https://webinar.zoho.com/webinar/register/join?registerKey=0a1b2c3d4\
             &sessionId=1234509876&uname=Ada+%26+co"
        );
    }
}
