//! An in-memory emulator of the Zoho Meeting API (`meeting.zoho.com`).
//!
//! [`MeetingEmulator::start`] binds a TCP socket and serves, over HTTP/1.1 and HTTP/2
//! (plain, or TLS when [`MeetingOptions::tls`] is set), the Meeting endpoints the proxy's
//! users call: the current user and the organisation's users, meetings (Zoho calls them
//! sessions), webinars, the participant report, recordings and SDK sessions. Access tokens are checked against an
//! [accounts emulator](crate::accounts) through
//! [`AccountsControl::validate_access_token`], so a token minted there works here until it
//! expires or is revoked. [`MeetingControl`] drives and inspects the emulator from the same
//! process: forced token rejection, latency and failure injection, a log of every
//! request received (with its `Authorization` header, so tests can check what a proxy
//! injected), and a log of every token check with its verdict.
//!
//! # Endpoints
//!
//! Every path exists under both prefixes Zoho uses, `/api/v2` and `/meeting/api/v2`
//! (`zoho-facts.md` §2). The `.json` suffix Zoho documents may be left out.
//!
//! | Method and path | Scope | Answer |
//! | --- | --- | --- |
//! | `GET /api/v2/user.json` | `ZohoMeeting.manageOrg.READ` | `200 {"userDetails":{..}}` |
//! | `GET /api/v2/{zsoid}/sessions.json` | `ZohoMeeting.meeting.READ` | `200 {"session":[..],"count":n}`; query `listtype` (`all`, `past`, `today`, `upcoming`), `index`, `count` |
//! | `POST /api/v2/{zsoid}/sessions.json` | `ZohoMeeting.meeting.CREATE` | `201 {"session":{..}}` |
//! | `GET /api/v2/{zsoid}/sessions/{meetingKey}.json` | `ZohoMeeting.meeting.READ` | `200 {"session":{..}}` |
//! | `PUT /api/v2/{zsoid}/sessions/{meetingKey}.json` | `ZohoMeeting.meeting.UPDATE` | `200 {"session":{..}}` |
//! | `DELETE /api/v2/{zsoid}/sessions/{meetingKey}.json` | `ZohoMeeting.meeting.DELETE` | `204`, empty body |
//! | `GET /api/v2/{zsoid}/webinar.json` | `ZohoMeeting.webinar.READ` | `200 {"webinar":[..],"count":n}`; query as for sessions |
//! | `POST /api/v2/{zsoid}/webinar.json` | `ZohoMeeting.webinar.CREATE` | `201 {"session":{"webinarKey":..,"meetingKey":..,..}}` |
//! | `GET`, `PUT`, `DELETE /api/v2/{zsoid}/webinar/{webinarKey}.json` | `ZohoMeeting.webinar.READ`, `.UPDATE`, `.DELETE` | as for sessions, with `webinarKey` |
//! | `GET /api/v2/{zsoid}/participant/{meetingKey}.json` | `ZohoMeeting.meeting.READ` | `200 {"participantsCount":n,"participants":[..]}`; query `index` (a page number), `count` |
//! | `GET /api/v2/{zsoid}/user.json` | `ZohoMeeting.user.READ` | `200 {"representation":[..],"totalCount":n,"resourceType":..}`; query `index` (a page number), `count` (default 20) |
//! | `GET /api/v2/{zsoid}/user/{userId}.json` | `ZohoMeeting.user.READ` | `200 {"representation":{..},"resourceType":..}`; `userId` or `zuid` |
//! | `GET /meeting/api/v2/{zsoid}/recordings.json` | `ZohoMeeting.recording.READ` | `200 {"recordings":[..],"meta":{"moreRecords":b}}`, newest first; query `index` (first record, from 1), `count` |
//! | `GET /meeting/api/v2/{zsoid}/recordings/{meetingKey}.json` | `ZohoMeeting.recording.READ` | `200 {"recordings":[..]}`: one once the meeting has ended, none before |
//! | `GET /meeting/api/v2/{zsoid}/recordings/{meetingKey}/download` (`transcript`, `summary`) | `ZohoMeeting.recording.READ` | `200` `video/mp4` (`text/plain`): where the recordings' links point |
//! | `POST /meeting/api/v2/{zsoid}/sdk/session` | `ZohoMeeting.sdk.CREATE` | `201 {"session":{..}}` in the SDK pages' shape; body as for create |
//! | `POST /meeting/api/v2/{zsoid}/sdk/session/meet` | `ZohoMeeting.sdk.CREATE` | `201 {"session":{..}}`; body `{"session":{"conferenceType":"audio"}}` (or `video`) |
//!
//! A scope `ZohoMeeting.<resource>.ALL` covers every operation on that resource; scope names
//! are compared without regard to case.
//!
//! # Zoho's behaviour, as emulated
//!
//! A request under an API prefix is checked in this order, and the first failure answers:
//!
//! 1. **Token** (`zoho-facts.md` §1, §9): `Authorization: Zoho-oauthtoken <token>` (or
//!    `Bearer <token>`). A missing, unknown, expired or revoked token, or a forced rejection
//!    ([`MeetingControl::reject_tokens`], [`MeetingControl::reject_all_tokens`]), answers
//!    **HTTP 400** `{"error":{"code":2000,"message":"INVALID_OAUTHTOKEN"}}`, as Zoho documents.
//! 2. **Path and method**: `404 {"error":{"code":404,"message":"Not found"}}`, or `405` with
//!    an `Allow` header.
//! 3. **Scope**: `401 {"code":"OAUTH_SCOPE_MISMATCH",..,"status":"error"}`, which is not a
//!    token rejection and must not make a proxy refresh. (The Meeting pages document no
//!    answer for a missing scope; this is the one other Zoho APIs give.)
//! 4. **Organisation**: a `{zsoid}` other than [`MeetingOptions::zsoid`] answers as the
//!    endpoint's page documents: on the meeting, webinar and participant endpoints (and the
//!    recording and SDK ones, whose pages' error sections are cut short in the copies read)
//!    `401 {"error":{"errorCode":3001,"message":"You do not have permission to access this
//!    organization account.","key":"UNAUTHORIZED_USER"}}` (a 401 that is **not** a token
//!    problem: a proxy passes it through without refreshing); on the user endpoints, as
//!    their pages document, `403 {"error":{"code":1025,"message":"Org doesn't matches with
//!    request uri"},"resourceType":"/meeting/api/v2/{zsoid}/user"}`.
//! 5. **Fault injection**: [`MeetingOptions::failure_rate`] of the requests that got this far
//!    answer `500 {"error":{"code":500,"message":"Internal server error"}}`.
//! 6. **The endpoint**: an unknown key answers the documented `400 {"error":{"errorCode":4000,
//!    "message":"The meeting key is invalid.","key":"INVALID_MEETING_KEY"}}`; an invalid
//!    body or query answers `400 {"error":{"errorCode":4001,"key":"INVALID_...","message":
//!    ".."}}` (Zoho documents no validation errors; this mirrors the documented one, and
//!    `4001` is the emulator's own number).
//!
//! Paths outside the API prefixes answer `404` without a token check. Request bodies over
//! [`MAX_BODY_BYTES`] answer `413` before any check, as a front-end would. Every answer is
//! delayed by the current latency ([`MeetingControl::set_latency`]). JSON answers carry
//! `Content-Type: application/json;charset=UTF-8` and `Vary: Accept-Encoding`, and are
//! gzip-compressed (`Content-Encoding: gzip`) when the request's `Accept-Encoding` accepts
//! gzip, error answers included, as Zoho's front-ends do: a proxy must see a token rejection
//! through the compression.
//!
//! # Meeting bodies
//!
//! Create and edit take `{"session":{"topic","agenda","presenter","startTime","duration",
//! "timezone","participants":[{"email"}]}}` (`"webinar"` is accepted as the wrapper too), as
//! a plain JSON body or in Zoho's documented `JSONString=<json>` form, URL-encoded
//! (`application/x-www-form-urlencoded`) or raw. Creating needs `topic` (at most 200
//! characters) and `startTime`; `duration` is in **milliseconds** (60 000 to 86 400 000,
//! default one hour); `timezone` defaults to `UTC`; `presenter`, when given, must be
//! [`MeetingOptions::zuid`]. Editing replaces only the fields given.
//!
//! **Time zones** come from the IANA database bundled into the binary (jiff's
//! `tzdb-bundle-always`, no `/usr/share/zoneinfo` needed); `timezone` is an IANA name, Zoho's
//! `Asia/Calcutta` included, and an unknown name answers `400` `INVALID_TIMEZONE`.
//! `startTime` is Zoho's `"Jun 19, 2030 07:00 PM"`, read in the meeting's `timezone` (a
//! trailing abbreviation such as `IST` is ignored), or ISO 8601: with an offset
//! (`2030-06-19T19:00:00+05:30`) it is that instant, without one it is read in the meeting's
//! zone. A local time skipped by a daylight-saving change moves forward by the gap; one that
//! happens twice is the first. On edit, a `startTime` without `timezone` is read in the
//! meeting's zone, and a new `timezone` alone keeps the instant. Answers give `startTime`
//! and `endTime` in the meeting's zone with its abbreviation (`"Jun 19, 2030 07:00 PM IST"`)
//! and, on create, `offset`: the zone's offset from UTC at the start, in milliseconds, a JSON
//! number. Start times in the past are accepted, so that `listtype=past` has something to
//! list.
//!
//! # Answers
//!
//! Each answer has the fields and JSON types of the page that documents it
//! (`tests/fixtures/zoho/` restates each example): `meetingKey`, `presenter`,
//! `creatorZuid`, `presenterZuid`, `offset` and the list's `sysId` are numbers; participant
//! `id`s and the report's `memberId` are strings. Create answers the create page's fields
//! (with `participants` and `offset`), get and edit the get page's (with `presenterEmail`,
//! `presenterName` and `meetingEmbedUrl`), list entries the list page's. `pwd` and
//! `encryptPwd` show a generated six-character password masked as the pages show it
//! (`"a***z"`); `meetingEmbedUrl` carries a generated 64-hex-digit `t`.
//!
//! Webinars are meetings kept apart: created, read and edited in `{"session":{..}}` with
//! `webinarKey` (equal to `meetingKey`), which is what Zoho's webinar clients read; listed
//! under `"webinar"`. Zoho's webinar pages were not available when this was written, so
//! their shape follows the meeting pages (numeric keys) and those clients.
//!
//! Lists: `index` is the offset of the first record, from 0 (the default), as the list page
//! calls it "Index of the Meeting Record"; `count` is the page size (default and maximum
//! 100); the answer's `count` is how many meetings match before paging. `listtype` defaults
//! to `all`; `past` lists meetings that have ended, `upcoming` those that have not, and
//! `today` those that start on today's date **in the meeting's own time zone**. The
//! participant report's `index` is a page number, as its page documents, counted from 1;
//! `index=0` is the first page too.
//!
//! The participant report has one entry per invited email, with made-up join and leave
//! times inside the meeting and clock times in the meeting's zone; it does not wait for the
//! meeting to happen.
//!
//! # Users, recordings and SDK sessions
//!
//! The organisation has one user, the emulator's, an administrator (so the user pages'
//! `403` code `1009` "Invalid org admin" never answers); an unknown `userId` answers `400`
//! `INVALID_USER` (undocumented; the emulator's own). Their module, `meeting/users.rs`, has
//! the shapes.
//!
//! A meeting whose end time has passed has exactly one recording, computed from the
//! meeting (same meeting, same answer); webinars have none. Zoho's `downloadUrl` points at
//! `download.zoho.com`: **the emulator's points at a path it serves itself**,
//! `/meeting/api/v2/{zsoid}/recordings/{meetingKey}/download` on its own origin (and the
//! transcript and summary links likewise), checked as any API request, so a client that
//! sends that path through the proxy downloads the file with the injected token. An
//! unknown meeting key answers the documented `INVALID_MEETING_KEY`. Their module,
//! `meeting/recordings.rs`, has the details.
//!
//! SDK sessions store a meeting (listed, read, reported on and recorded like any other)
//! and answer the SDK pages' shape, which differs from the meeting pages' (string
//! `meetingKey`, `pwd` in clear); the pages show no status, and the emulator answers `201`
//! as create does (`meeting/sdk.rs`).
//!
//! # Zoho Webinar
//!
//! Started through [`WebinarEmulator`](crate::webinar::WebinarEmulator), the same emulator
//! is Zoho Webinar's host (`webinar.zoho.com`): prefixes `/api/v2` and `/webinar/api/v2`,
//! scopes `ZohoWebinar.*`, links on `https://webinar.zoho.com`, only the current user, the
//! webinar endpoints and the registrations (`{zsoid}/register/{webinarKey}`,
//! `meeting/registration.rs`), which this Meeting host answers `404`. The
//! [`webinar`](crate::webinar) module docs list them with their sources.
//!
//! Not emulated: editing users, departments, webinar recordings, recurring meetings,
//! checking passwords, and Zoho's (undocumented) rate limits. At most [`MAX_SESSIONS`]
//! meetings and webinars are kept.
//!
//! # Logging
//!
//! Each request is logged at `debug` with its method and path only: never the query string,
//! headers or tokens. The [request log](MeetingControl::requests) does keep the
//! `Authorization` header, because tests assert on it; its `Debug` output redacts it.

mod control;
mod recordings;
mod registration;
mod reject;
mod route;
mod sdk;
mod sessions;
#[cfg(test)]
mod testing;
mod time;
mod users;

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use std::io::Write as _;

use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::http::request::Parts;
use hyper::{Request, Response};

use self::control::sanitize_rate;
use self::reject::Reject;
pub(crate) use self::route::Product;
use self::route::{Route, access_token, api_path, has_scope};
use self::sessions::Session;
use crate::accounts::AccountsControl;
use crate::http::{Body, BodyError, Handler, Listener, Server, read_body};

/// The main API prefix (sessions, users, participants).
pub const API_PREFIX: &str = "/api/v2";
/// The second API prefix Zoho uses on the same host (recordings, SDK sessions).
pub const MEETING_API_PREFIX: &str = "/meeting/api/v2";
/// The second API prefix on Zoho Webinar's host, beside [`API_PREFIX`] (see
/// [`crate::webinar`]).
pub const WEBINAR_API_PREFIX: &str = "/webinar/api/v2";

/// The largest request body the emulator reads; larger bodies get `413`.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// How many [`MeetingRequest`]s are kept; older ones are dropped first.
pub const REQUEST_LOG_CAPACITY: usize = 10_000;

/// How many meetings and webinars the emulator keeps; creating more answers `400`.
pub const MAX_SESSIONS: usize = 10_000;

/// The largest (and default) `count` of a list or report page.
pub const MAX_PAGE_SIZE: usize = 100;

/// Time zone of a meeting created without one.
const DEFAULT_TIMEZONE: &str = "UTC";

/// Settings of a [`MeetingEmulator`].
#[derive(Clone)]
pub struct MeetingOptions {
    /// The organisation id (`zsoid`) in every API path. **(default: `700000001`)**
    pub zsoid: u64,
    /// The Zoho user id of the organisation's one user. **(default: `800000001`)**
    pub zuid: u64,
    /// The user's email. **(default: `sandbox.user@example.com`)**
    pub user_email: String,
    /// The user's display name. **(default: `Sandbox User`)**
    pub user_name: String,
    /// Delay added before every answer. **(default: 0)**
    pub latency: Duration,
    /// Share (0.0 to 1.0) of API requests answered `500`, picked at random.
    /// **(default: `0.0`)**
    pub failure_rate: f64,
    /// TLS configuration; `None` serves plain HTTP. Set its `alpn_protocols` to
    /// `h2` and `http/1.1` to offer HTTP/2 over TLS. **(default: `None`)**
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

/// A running Zoho Meeting emulator.
///
/// The server task stops on [`MeetingEmulator::shutdown`] or when the emulator is dropped.
pub struct MeetingEmulator {
    server: Server,
    control: MeetingControl,
}

/// A handle that drives and inspects a running [`MeetingEmulator`].
///
/// Cloning is cheap: all clones share the emulator's state.
#[derive(Clone)]
pub struct MeetingControl {
    shared: Arc<Shared>,
}

/// One request received by the emulator, as logged.
///
/// `Debug` redacts the `Authorization`, `Proxy-Authorization` and `Cookie` values.
#[derive(Clone, PartialEq, Eq)]
pub struct MeetingRequest {
    /// The request method, e.g. `GET`.
    pub method: String,
    /// The path, without the query string.
    pub path: String,
    /// The raw query string, if any.
    pub query: Option<String>,
    /// The `Authorization` header as received (lossily decoded when not UTF-8).
    pub authorization: Option<String>,
    /// Bytes of body read; for a body refused with `413`, the bytes read before refusing.
    pub body_len: usize,
    /// Every request header, in order, with lower-case names.
    pub headers: Vec<(String, String)>,
}

/// The token check of one API request, as [`MeetingControl::token_checks`] lists it.
///
/// `Debug` redacts the token.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenCheck {
    /// The access token sent (without its scheme), when the `Authorization` header held one.
    pub token: Option<String>,
    /// The request's `X-Request-Id`, when it had one.
    pub request_id: Option<String>,
    /// Whether the token was accepted (`false`: the request was answered
    /// `INVALID_OAUTHTOKEN`).
    pub accepted: bool,
    /// When the request was checked (tokio clock, as the accounts emulator's expiries).
    pub at: tokio::time::Instant,
}

/// State shared by the server task and every [`MeetingControl`].
struct Shared {
    /// The product whose host this is: its routes, scopes, prefixes and links.
    product: Product,
    zsoid: u64,
    zuid: u64,
    user_email: String,
    user_name: String,
    url: String,
    accounts: AccountsControl,
    state: Mutex<State>,
}

/// The mutable part of the emulator. Never held across an `.await`.
#[derive(Default)]
struct State {
    latency: Duration,
    failure_rate: f64,
    reject_next: u32,
    reject_all: bool,
    /// [`MeetingControl::revoke_tokens_in_use`]: revocations still to make.
    revoke_next: u32,
    /// Tokens that passed the token check since revocations were asked for (the candidates).
    served: HashSet<String>,
    /// Tokens revoked here: rejected from now on.
    revoked: HashSet<String>,
    request_count: u64,
    requests: VecDeque<MeetingRequest>,
    sessions: BTreeMap<u64, Session>,
    token_checks: VecDeque<TokenCheck>,
}

// === impl MeetingOptions ===

impl Default for MeetingOptions {
    fn default() -> Self {
        Self {
            zsoid: 700_000_001,
            zuid: 800_000_001,
            user_email: "sandbox.user@example.com".to_owned(),
            user_name: "Sandbox User".to_owned(),
            latency: Duration::ZERO,
            failure_rate: 0.0,
            tls: None,
        }
    }
}

impl fmt::Debug for MeetingOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MeetingOptions")
            .field("zsoid", &self.zsoid)
            .field("zuid", &self.zuid)
            .field("user_email", &self.user_email)
            .field("user_name", &self.user_name)
            .field("latency", &self.latency)
            .field("failure_rate", &self.failure_rate)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

// === impl MeetingEmulator ===

impl MeetingEmulator {
    /// Binds `addr` and serves the emulator until [`shutdown`](Self::shutdown) or drop.
    ///
    /// Access tokens are validated by `accounts`. Tests pass `127.0.0.1:0` and read the
    /// chosen port from [`addr`](Self::addr).
    ///
    /// # Errors
    ///
    /// Returns the error from binding the socket or reading its local address.
    pub async fn start(
        addr: SocketAddr,
        opts: MeetingOptions,
        accounts: AccountsControl,
    ) -> std::io::Result<Self> {
        Self::start_as(Product::Meeting, addr, opts, accounts).await
    }

    /// [`start`](Self::start), as the host of `product`: the Webinar emulator is this one
    /// answering Zoho Webinar's routes and scopes.
    pub(crate) async fn start_as(
        product: Product,
        addr: SocketAddr,
        opts: MeetingOptions,
        accounts: AccountsControl,
    ) -> std::io::Result<Self> {
        let listener = Listener::bind(addr, opts.tls).await?;
        let addr = listener.addr();
        let shared = Arc::new(Shared {
            product,
            zsoid: opts.zsoid,
            zuid: opts.zuid,
            user_email: opts.user_email,
            user_name: opts.user_name,
            url: listener.url(),
            accounts,
            state: Mutex::new(State {
                latency: opts.latency,
                failure_rate: sanitize_rate(opts.failure_rate),
                ..State::default()
            }),
        });
        let server = listener.serve(Arc::clone(&shared));
        tracing::debug!(%addr, ?product, "emulator listening");
        Ok(Self {
            server,
            control: MeetingControl { shared },
        })
    }

    /// Returns the bound socket address.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// Returns the base URL, without a trailing slash: `http://127.0.0.1:PORT`, or
    /// `https://localhost:PORT` with TLS.
    pub fn url(&self) -> String {
        self.control.shared.url.clone()
    }

    /// Returns a handle on the emulator's state.
    pub fn control(&self) -> MeetingControl {
        self.control.clone()
    }

    /// Stops accepting connections, closes the open ones and waits for the server task to end.
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}

impl fmt::Debug for MeetingEmulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MeetingEmulator")
            .field("addr", &self.server.addr())
            .field("url", &self.control.shared.url)
            .finish()
    }
}

// === impl Shared ===

impl Shared {
    /// Locks the state. A poisoned lock is recovered: no code panics while holding it, and
    /// the state stays consistent between statements.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Answers a request whose body was read.
    fn answer(&self, parts: &Parts, body: &[u8]) -> Result<Response<Body>, Reject> {
        let Some(rest) = api_path(parts.uri.path(), self.product) else {
            return Err(Reject::NotFound);
        };
        let scopes = self.authenticate(&parts.headers)?;
        let route = Route::parse(rest)
            .filter(|route| self.product.serves(route))
            .ok_or(Reject::NotFound)?;
        let op = route
            .operation(&parts.method)
            .ok_or(Reject::MethodNotAllowed(route.allow()))?;
        if !has_scope(
            &scopes,
            self.product.service(),
            route.scope_resource(op),
            op,
        ) {
            return Err(Reject::ScopeMismatch);
        }
        if let Some(org) = route.org()
            && org.parse::<u64>().ok() != Some(self.zsoid)
        {
            return Err(route.wrong_org());
        }
        if self.should_fail() {
            return Err(Reject::ServerError);
        }

        match route {
            Route::User => Ok(self.user()),
            Route::Collection { kind, .. } => self.collection(kind, op, parts, body),
            Route::Item { kind, key, .. } => self.item(kind, key, op, parts, body),
            Route::Participants { key, .. } => self.participants(key, parts.uri.query()),
            Route::Users { .. } => self.users(parts.uri.query()),
            Route::UserItem { id, .. } => self.user_details(id),
            Route::Recordings { .. } => self.recordings(parts.uri.query()),
            Route::MeetingRecordings { key, .. } => self.meeting_recordings(key),
            Route::RecordingFile { key, file, .. } => self.recording_file(key, file),
            Route::Sdk { instant, .. } => self.sdk_session(instant, parts, body),
            Route::Register { key, .. } => self.registration(key, op, parts, body),
        }
    }

    /// Checks the token (or a forced rejection) and returns the token's scopes.
    fn authenticate(&self, headers: &HeaderMap) -> Result<Vec<String>, Reject> {
        {
            let mut state = self.lock();
            if state.reject_all {
                return Err(Reject::InvalidToken);
            }
            if state.reject_next > 0 {
                state.reject_next -= 1;
                return Err(Reject::InvalidToken);
            }
        }
        let token = access_token(headers).ok_or(Reject::InvalidToken)?;
        let scopes = self
            .accounts
            .validate_access_token(token)
            .map(|info| info.scopes)
            .ok_or(Reject::InvalidToken)?;
        let mut state = self.lock();
        if state.revoked.contains(token) {
            return Err(Reject::InvalidToken);
        }
        if state.revoke_next > 0 {
            if state.served.remove(token) {
                state.revoke_next -= 1;
                state.revoked.insert(token.to_owned());
                tracing::info!(
                    left = state.revoke_next,
                    "the Meeting emulator revoked the access token in use, as asked \
                     (--reject-tokens): the proxy should refresh and replay"
                );
                return Err(Reject::InvalidToken);
            }
            state.served.insert(token.to_owned());
        }
        Ok(scopes)
    }
}

impl Handler for Shared {
    /// Reads the body, logs the request, answers it and applies the latency.
    async fn handle(&self, req: Request<Incoming>) -> Response<Body> {
        tracing::debug!(method = %req.method(), path = req.uri().path(), "meeting request");
        let (parts, body) = req.into_parts();
        let body = read_body(&parts.headers, body, MAX_BODY_BYTES).await;
        let body_len = match &body {
            Ok(bytes) => bytes.len(),
            Err(BodyError::TooLarge { read }) => *read,
            Err(BodyError::Read) => 0,
        };
        let latency = self.record(&parts, body_len);
        let answer = match body {
            Ok(bytes) => self.answer(&parts, &bytes),
            Err(BodyError::TooLarge { .. }) => Err(Reject::TooLarge),
            Err(BodyError::Read) => Err(Reject::BadBody),
        };
        self.record_token_check(&parts, &answer);
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        let response = answer.unwrap_or_else(Reject::into_response);
        encode(response, accepts_gzip(&parts.headers)).await
    }
}

// === helpers ===

/// Whether `Accept-Encoding` accepts gzip (`gzip`, `x-gzip` or `*`, with a `q` above 0).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|item| {
            let mut params = item.split(';');
            let coding = params.next().unwrap_or_default().trim();
            let known = ["gzip", "x-gzip", "*"]
                .iter()
                .any(|name| coding.eq_ignore_ascii_case(name));
            let refused = params.any(|param| {
                param
                    .trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            known && !refused
        })
}

/// Adds `Vary: Accept-Encoding` to a JSON answer and, when the client accepts gzip,
/// compresses its body (`Content-Encoding: gzip`), as Zoho's front-ends do. Other answers
/// (the empty `204`) pass unchanged.
async fn encode(response: Response<Body>, gzip: bool) -> Response<Body> {
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"));
    if !is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    parts
        .headers
        .insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    if !gzip {
        return Response::from_parts(parts, body);
    }
    // A `Full` body is one chunk, already in memory: collecting it cannot fail or wait.
    let plain = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(never) => match never {},
    };
    let mut encoder = GzEncoder::new(
        Vec::with_capacity(plain.len() / 2 + 32),
        Compression::fast(),
    );
    let compressed = encoder.write_all(&plain).and_then(|()| encoder.finish());
    match compressed {
        Ok(compressed) => {
            parts
                .headers
                .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            parts.headers.remove(header::CONTENT_LENGTH);
            Response::from_parts(parts, Full::new(Bytes::from(compressed)))
        }
        // Writing to a `Vec` does not fail; answer uncompressed all the same.
        Err(_) => Response::from_parts(parts, Full::new(plain)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use bytes::Bytes;
    use http_body_util::{BodyExt, Full};
    use hyper::header;
    use hyper_util::rt::TokioExecutor;
    use tokio::net::TcpStream;

    use crate::http::testing::{assert_stops_serving, raw_exchange, test_tls};
    use crate::meeting::testing::*;

    #[tokio::test]
    async fn tls_serves_https_localhost() {
        let (config, ca_pem) = test_tls();
        let sb = Sandbox::with(MeetingOptions {
            tls: Some(config),
            ..MeetingOptions::default()
        })
        .await;
        let addr = sb.meeting.addr();
        assert_eq!(
            sb.meeting.url(),
            format!("https://localhost:{}", addr.port())
        );
        let https = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap())
            .resolve("localhost", addr)
            .build()
            .unwrap();

        // A plain-HTTP client on the TLS port is just dropped.
        let answer = raw_exchange(addr, b"GET /api/v2/user.json HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(!answer.starts_with("HTTP/"), "{answer}");

        let resp = https
            .get(format!("{}/api/v2/user.json", sb.meeting.url()))
            .header("authorization", format!("Zoho-oauthtoken {}", sb.token))
            .send()
            .await
            .unwrap();
        let (status, body) = read(resp).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["userDetails"]["zsoid"], 700_000_001u64);
        let Sandbox { meeting, .. } = sb;
        meeting.shutdown().await;
    }

    #[tokio::test]
    async fn garbage_and_oversized_requests_never_panic() {
        let sb = Sandbox::start().await;
        let addr = sb.meeting.addr();
        let path = sb.org("sessions.json");
        let url = format!("{}{path}", sb.meeting.url());
        let auth = format!("Zoho-oauthtoken {}", sb.token);

        // Declared too large: refused before the token check.
        let resp = sb
            .http
            .post(&url)
            .body(vec![b'a'; MAX_BODY_BYTES + 1])
            .send()
            .await
            .unwrap();
        let (status, body) = read(resp).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(body["error"]["code"], 413);
        // Exactly at the limit is read (and is not JSON).
        let resp = sb
            .http
            .post(&url)
            .header("authorization", &auth)
            .body(vec![b' '; MAX_BODY_BYTES])
            .send()
            .await
            .unwrap();
        assert_eq!(read(resp).await.1["error"]["key"], "INVALID_JSON");
        // Too large, but chunked, so only counting finds out.
        let mut chunked = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\
             Connection: close\r\n\r\n{:x}\r\n",
            MAX_BODY_BYTES + 10
        )
        .into_bytes();
        chunked.extend(vec![b'a'; MAX_BODY_BYTES + 10]);
        chunked.extend(b"\r\n0\r\n\r\n");
        let answer = raw_exchange(addr, &chunked).await;
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
        assert!(sb.meeting.control().requests().last().unwrap().body_len > MAX_BODY_BYTES);
        // A lying Content-Length, a non-UTF-8 Authorization, not HTTP at all.
        let answer = raw_exchange(
            addr,
            format!("POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n").as_bytes(),
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
        let mut odd_auth = format!(
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Zoho-oauthtoken "
        )
        .into_bytes();
        odd_auth.extend(b"\xff\xfe\r\n\r\n");
        let answer = raw_exchange(addr, &odd_auth).await;
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
        assert!(answer.contains("INVALID_OAUTHTOKEN"), "{answer}");
        let answer = raw_exchange(addr, b"\x00\xff\x16\x03 garbage\r\n\r\n").await;
        assert!(!answer.contains("200 OK"), "{answer}");

        // Odd paths, queries and bodies.
        for target in [
            format!("{path}?listtype=%ff%%&index=99999999999999999999999&count=%00"),
            format!("{path}?index=18446744073709551615"),
            "/api/v2/%2e%2e/sessions.json".to_owned(),
            "/api/v2/700000001/sessions/%00.json".to_owned(),
            "/api/v2/700000001/participant/99999999999999999999.json?index=1".to_owned(),
        ] {
            let resp = sb
                .http
                .get(format!("{}{target}", sb.meeting.url()))
                .header("authorization", &auth)
                .send()
                .await
                .unwrap();
            assert!(!resp.status().is_server_error(), "{target}");
        }
        for body in [
            b"JSONString=%ZZ".to_vec(),
            b"JSONString=".to_vec(),
            b"\xff\xfe{".to_vec(),
            br#"{"session":{"topic":"t","startTime":"Feb 29, 2031 01:00 AM"}}"#.to_vec(),
            br#"{"session":{"topic":"t","startTime":"9999-12-31T23:59:59.999-23:59"}}"#.to_vec(),
            br#"{"session":{"topic":"t","startTime":"0000-01-01T00:00:00Z"}}"#.to_vec(),
            br#"{"session":{"topic":"t","startTime":"\u00e9\u00e9\u00e9\u00e9-01-01T00:00"}}"#.to_vec(),
            br#"{"session":{"topic":"t","startTime":"Jun 19, 2030 07:00 PM","duration":1e300}}"#.to_vec(),
            br#"{"session":{"topic":"t","startTime":"Jun 19, 2030 07:00 PM","participants":[null,1]}}"#.to_vec(),
            format!("{}1{}", "[".repeat(200), "]".repeat(200)).into_bytes(),
        ] {
            for content_type in ["application/json", "application/x-www-form-urlencoded"] {
                let resp = sb
                    .http
                    .post(&url)
                    .header("authorization", &auth)
                    .header(CONTENT_TYPE, content_type)
                    .body(body.clone())
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{}", String::from_utf8_lossy(&body));
            }
        }

        // Still serving.
        assert_eq!(sb.call(Method::GET, &path, None).await.0, StatusCode::OK);
    }

    #[tokio::test]
    async fn json_answers_are_gzipped_for_clients_that_accept_gzip() {
        let sb = Sandbox::start().await;
        let gunzip = |body: &[u8]| -> Value {
            let mut out = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(body), &mut out).unwrap();
            serde_json::from_slice(&out).unwrap()
        };
        let get = |path: String, accept: Option<&'static str>, token: bool| {
            let mut req = sb.http.get(format!("{}{path}", sb.meeting.url()));
            if let Some(accept) = accept {
                req = req.header("accept-encoding", accept);
            }
            if token {
                req = req.header("authorization", format!("Zoho-oauthtoken {}", sb.token));
            }
            req.send()
        };
        let plain = get("/api/v2/user.json".to_owned(), None, true)
            .await
            .unwrap();
        assert_eq!(plain.headers()["vary"], "Accept-Encoding");
        assert!(plain.headers().get("content-encoding").is_none());
        let plain: Value = plain.json().await.unwrap();
        for accept in ["gzip", "br, gzip;q=0.5", "x-gzip", "*", "GZIP"] {
            let resp = get("/api/v2/user.json".to_owned(), Some(accept), true)
                .await
                .unwrap();
            assert_eq!(resp.headers()["content-encoding"], "gzip", "{accept}");
            assert_eq!(resp.headers()["vary"], "Accept-Encoding", "{accept}");
            let body = resp.bytes().await.unwrap();
            assert_eq!(gunzip(&body), plain, "{accept}");
        }
        // Error answers too, the token rejection first of all.
        let resp = get("/api/v2/user.json".to_owned(), Some("gzip"), false)
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        assert_eq!(resp.headers()["content-encoding"], "gzip");
        assert_eq!(gunzip(&resp.bytes().await.unwrap()), invalid_token());
        // Refused or not offered: plain.
        for accept in ["gzip;q=0", "br", "identity", "deflate, gzip; q=0.0"] {
            let resp = get("/api/v2/user.json".to_owned(), Some(accept), true)
                .await
                .unwrap();
            assert!(resp.headers().get("content-encoding").is_none(), "{accept}");
            assert_eq!(resp.json::<Value>().await.unwrap(), plain, "{accept}");
        }
        // An empty 204 is not encoded.
        let created = sb.create(meeting_body()).await;
        let resp = sb
            .http
            .delete(format!(
                "{}{}",
                sb.meeting.url(),
                sb.org(&format!("sessions/{}.json", key_of(&created)))
            ))
            .header("authorization", format!("Zoho-oauthtoken {}", sb.token))
            .header("accept-encoding", "gzip")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::NO_CONTENT);
        assert!(resp.headers().get("content-encoding").is_none());
        assert!(resp.bytes().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn serves_http2_with_prior_knowledge() {
        use hyper_util::client::legacy::Client;
        let sb = Sandbox::start().await;
        let h2: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new())
            .http2_only(true)
            .build_http();
        let req = Request::get(format!("{}/api/v2/user.json", sb.meeting.url()))
            .header(
                header::AUTHORIZATION,
                format!("Zoho-oauthtoken {}", sb.token),
            )
            .body(Full::new(Bytes::new()))
            .unwrap();
        let resp = h2.request(req).await.unwrap();
        assert_eq!(resp.version(), hyper::Version::HTTP_2);
        assert_eq!(resp.status(), StatusCode::OK);
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["userDetails"]["zuid"], 800_000_001u64);
    }

    #[tokio::test]
    async fn shutdown_and_drop_stop_the_server() {
        let accounts = AccountsEmulator::start(localhost(), AccountsOptions::default())
            .await
            .unwrap();
        let emu =
            MeetingEmulator::start(localhost(), MeetingOptions::default(), accounts.control())
                .await
                .unwrap();
        let addr = emu.addr();
        emu.shutdown().await;
        assert!(TcpStream::connect(addr).await.is_err());

        let emu =
            MeetingEmulator::start(localhost(), MeetingOptions::default(), accounts.control())
                .await
                .unwrap();
        let addr = emu.addr();
        drop(emu);
        assert_stops_serving(addr).await;
    }
}
