//! zoho-emulator: in-memory emulators of Zoho's accounts server, the Zoho Meeting API and the
//! Zoho Webinar API.
//!
//! This is product code, not a test helper: zoho-meeting-proxy's `sandbox` command serves
//! it to users who want to try the proxy without a Zoho account, and the test suites use it
//! as a fake Zoho. Every emulator runs in-process, keeps its state in memory, and listens on
//! a real TCP socket (plain HTTP, or HTTPS when given a `rustls` server configuration), over
//! HTTP/1.1 and HTTP/2. A control handle drives and inspects each from the same process.
//!
//! - [`accounts`] emulates Zoho's accounts server (`accounts.zoho.com`), with Zoho's quirks
//!   (errors with HTTP 200, the access-token mint limit, `expires_in` in milliseconds beside
//!   `expires_in_sec`, the data centre's `api_domain`):
//!
//!   | Method and path | What it does |
//!   | --- | --- |
//!   | `GET /oauth/v2/auth` | the consent redirect, granted at once |
//!   | `POST /oauth/v2/token` | the `authorization_code` and `refresh_token` grants |
//!   | `POST /oauth/v2/token/revoke` | revokes a refresh token (with its access tokens) or an access token |
//!
//!   Other emulators check access tokens through
//!   [`accounts::AccountsControl::validate_access_token`].
//! - [`meeting`] emulates the Zoho Meeting API (`meeting.zoho.com`), each path under both
//!   `/api/v2` and `/meeting/api/v2`, with or without `.json`:
//!
//!   | Method and path | What it does |
//!   | --- | --- |
//!   | `GET /user.json` | the current user |
//!   | `GET`, `POST /{zsoid}/sessions.json` | lists and creates meetings |
//!   | `GET`, `PUT`, `DELETE /{zsoid}/sessions/{meetingKey}.json` | reads, edits and deletes a meeting |
//!   | `GET`, `POST /{zsoid}/webinar.json` | lists and creates webinars |
//!   | `GET`, `PUT`, `DELETE /{zsoid}/webinar/{webinarKey}.json` | reads, edits and deletes a webinar |
//!   | `GET /{zsoid}/participant/{meetingKey}.json` | a meeting's participant report |
//!   | `GET /{zsoid}/user.json`, `GET /{zsoid}/user/{userId}.json` | the organisation's users, one user |
//!   | `GET /{zsoid}/recordings.json`, `GET /{zsoid}/recordings/{meetingKey}.json` | the organisation's recordings, one meeting's |
//!   | `GET /{zsoid}/recordings/{meetingKey}/download` (`/transcript`, `/summary`) | a recording's file, where the recordings' links point |
//!   | `POST /{zsoid}/sdk/session`, `POST /{zsoid}/sdk/session/meet` | SDK sessions: a scheduled meeting, an instant one |
//!
//!   It answers Zoho's way to bad tokens (`400` code `2000`, `INVALID_OAUTHTOKEN`), missing
//!   scopes (`401 OAUTH_SCOPE_MISMATCH`) and another organisation (`401 UNAUTHORIZED_USER`;
//!   `403` code `1025` on the user endpoints), checks tokens against an accounts emulator,
//!   and can inject latency, `500`s and forced token rejections. Its module docs give the
//!   scopes, the answers' shapes and the remaining differences from Zoho.
//!
//! - [`webinar`] emulates the Zoho Webinar API (`webinar.zoho.com`), Zoho's webinar product
//!   on its own host, under `/api/v2` and `/webinar/api/v2`: the Meeting emulator started as
//!   that host, with `ZohoWebinar.*` scopes, the same token checks and error bodies:
//!
//!   | Method and path | What it does |
//!   | --- | --- |
//!   | `GET /user.json` | the current user |
//!   | `GET`, `POST /{zsoid}/webinar.json` | lists and creates webinars |
//!   | `GET`, `PUT`, `DELETE /{zsoid}/webinar/{webinarKey}.json` | reads, edits and deletes a webinar |
//!   | `GET`, `POST /{zsoid}/register/{webinarKey}.json` | lists a webinar's registrants, registers attendees |
//!
//! The emulators share their server plumbing (binding, the accept loop, TLS, HTTP/1.1 and
//! HTTP/2, body limits and JSON answers) through the private `http` module, so that each
//! emulator's file holds only the Zoho behaviour it emulates.

pub mod accounts;
mod http;
pub mod meeting;
pub mod webinar;

/// What the emulators' `Debug` output prints in place of a secret (a client secret, a token,
/// an `Authorization` header): the marker zoho-meeting-proxy's own secrets print.
const REDACTED: &str = "[redacted]";
