//! Meetings and webinars (Zoho calls them sessions): create, list, get, edit, delete, and
//! the participant report.
//!
//! Each answer has the fields (and JSON types) of the Zoho page that documents it; see the
//! module docs of [`meeting`](super) for the remaining differences.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use http_body_util::Full;
use hyper::http::request::Parts;
use hyper::{Response, StatusCode};
use jiff::tz::TimeZone;
use rand::Rng;
use rand::distr::{Alphanumeric, SampleString};
use serde_json::{Map, Value, json};

use super::registration::Registrant;
use super::reject::*;
use super::route::Op;
use super::time::{
    clock_time, local_date, now_ms, offset_ms, parse_start_time, utc, zoho_time, zone,
};
use super::{DEFAULT_TIMEZONE, MAX_PAGE_SIZE, MAX_SESSIONS, Shared};
use crate::http::{Body, content_type, is_form, json, query_params};

/// Longest accepted `topic`, in characters.
const MAX_TOPIC_CHARS: usize = 200;
/// Longest accepted `agenda`, in characters.
const MAX_AGENDA_CHARS: usize = 5_000;
/// Most participants one meeting may invite.
const MAX_PARTICIPANTS: usize = 500;
/// Shortest meeting, in milliseconds (one minute).
const MIN_DURATION_MS: u64 = 60_000;
/// Longest meeting, in milliseconds (one day).
const MAX_DURATION_MS: u64 = 86_400_000;
/// Duration of a meeting created without one (one hour).
const DEFAULT_DURATION_MS: u64 = 3_600_000;
/// Where Zoho's participant avatars live.
const AVATAR_ORIGIN: &str = "https://contacts.zoho.com";
/// Length of a generated meeting password.
const PASSWORD_LEN: usize = 6;

/// Meetings and webinars share one store and one key space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Meeting,
    Webinar,
}

/// A stored meeting or webinar.
#[derive(Clone, Debug)]
pub(super) struct Session {
    pub(super) kind: Kind,
    pub(super) key: u64,
    pub(super) sys_id: u64,
    pub(super) topic: String,
    pub(super) agenda: String,
    pub(super) presenter: u64,
    /// Start, in milliseconds since the Unix epoch (never negative).
    pub(super) start_ms: i64,
    pub(super) duration_ms: u64,
    /// The `timezone` as the client gave it (Zoho echoes `Asia/Calcutta` as such).
    pub(super) timezone: String,
    /// The zone that name resolves to.
    pub(super) zone: TimeZone,
    /// The meeting password; answers show it masked, as Zoho's do.
    pub(super) password: String,
    /// The `t` parameter of `meetingEmbedUrl`.
    pub(super) embed_token: String,
    pub(super) participants: Vec<Participant>,
    /// A webinar's registrants, in the order they registered (`meeting/registration.rs`).
    pub(super) registrants: Vec<Registrant>,
}

/// An invited participant.
#[derive(Clone, Debug)]
pub(super) struct Participant {
    pub(super) id: u64,
    pub(super) email: String,
}

/// The validated fields of a create or edit body; `None` when absent (or `null`).
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct SessionInput {
    topic: Option<String>,
    agenda: Option<String>,
    presenter: Option<u64>,
    start_ms: Option<i64>,
    duration_ms: Option<u64>,
    /// The name as given, and its zone.
    timezone: Option<(String, TimeZone)>,
    participants: Option<Vec<String>>,
}

/// Which Zoho page an answer follows: each documents its own set of fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum View {
    /// "Create a Meeting" (`201`).
    Created,
    /// "Get Meeting API" and "Edit Meeting API".
    Detail,
    /// An entry of "List of Meeting API".
    Listed,
}

/// The `listtype` filter of the meeting list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ListType {
    All,
    Past,
    Today,
    Upcoming,
}

// === impl Shared ===

impl Shared {
    /// `sessions.json` / `webinar.json`: list or create.
    pub(super) fn collection(
        &self,
        kind: Kind,
        op: Op,
        parts: &Parts,
        body: &[u8],
    ) -> Result<Response<Body>, Reject> {
        match op {
            Op::Create => self.create(kind, content_type(&parts.headers), body),
            _ => self.list(kind, parts.uri.query()),
        }
    }

    /// `sessions/{key}.json` / `webinar/{key}.json`: get, edit or delete.
    pub(super) fn item(
        &self,
        kind: Kind,
        key: &str,
        op: Op,
        parts: &Parts,
        body: &[u8],
    ) -> Result<Response<Body>, Reject> {
        match op {
            Op::Update => self.update(kind, key, content_type(&parts.headers), body),
            Op::Delete => self.delete(kind, key),
            Op::Read | Op::Create => self.get(kind, key),
        }
    }

    /// `GET sessions.json` / `webinar.json`: `{"session":[..],"count":n}`, where `count` is
    /// how many match before paging and `index` is the offset of the first record.
    fn list(&self, kind: Kind, query: Option<&str>) -> Result<Response<Body>, Reject> {
        let params = query_params(query);
        let list_type = ListType::parse(params.get("listtype").map(String::as_str))?;
        let skip = index(&params)?;
        let take = count(&params)?;
        let now = now_ms();
        let (page, total) = {
            let state = self.lock();
            let mut matching: Vec<&Session> = state
                .sessions
                .values()
                .filter(|s| s.kind == kind && list_type.includes(s, now))
                .collect();
            matching.sort_by_key(|s| (s.start_ms, s.key));
            let total = matching.len();
            let page: Vec<Value> = matching
                .into_iter()
                .skip(skip)
                .take(take)
                .map(|s| self.render(s, View::Listed))
                .collect();
            (page, total)
        };
        let mut answer = Map::new();
        answer.insert(list_key(kind).to_owned(), Value::Array(page));
        answer.insert("count".to_owned(), json!(total));
        Ok(json(StatusCode::OK, &Value::Object(answer)))
    }

    /// `POST sessions.json` / `webinar.json`.
    fn create(
        &self,
        kind: Kind,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<Response<Body>, Reject> {
        let fields = session_fields(content_type, body)?;
        let rendered =
            self.insert_session(kind, &fields, |this, s| this.render(s, View::Created))?;
        Ok(json(StatusCode::CREATED, &wrap(rendered)))
    }

    /// Validates the fields of a create body, stores the new meeting or webinar under a fresh
    /// key and returns what `render` makes of it. Shared by create and the SDK sessions.
    pub(super) fn insert_session<T>(
        &self,
        kind: Kind,
        fields: &Map<String, Value>,
        render: impl FnOnce(&Self, &Session) -> T,
    ) -> Result<T, Reject> {
        let input = SessionInput::from_json(fields, self.zuid, &utc())?;
        let topic = input.topic.ok_or(Reject::Invalid(TOPIC_REQUIRED))?;
        let start_ms = input.start_ms.ok_or(Reject::Invalid(START_TIME_REQUIRED))?;
        let (timezone, zone) = input
            .timezone
            .unwrap_or_else(|| (DEFAULT_TIMEZONE.to_owned(), utc()));

        let mut rng = rand::rng();
        let participants = input
            .participants
            .unwrap_or_default()
            .into_iter()
            .map(|email| Participant {
                id: random_id(&mut rng),
                email,
            })
            .collect();
        let mut session = Session {
            kind,
            key: 0,
            sys_id: random_id(&mut rng),
            topic,
            agenda: input.agenda.unwrap_or_default(),
            presenter: input.presenter.unwrap_or(self.zuid),
            start_ms,
            duration_ms: input.duration_ms.unwrap_or(DEFAULT_DURATION_MS),
            timezone,
            zone,
            password: Alphanumeric.sample_string(&mut rng, PASSWORD_LEN),
            embed_token: hex_token(&mut rng),
            participants,
            registrants: Vec::new(),
        };

        let mut state = self.lock();
        if state.sessions.len() >= MAX_SESSIONS {
            return Err(Reject::Invalid(LIMIT_EXCEEDED));
        }
        session.key = loop {
            // Ten digits, like Zoho's meeting keys.
            let key = rng.random_range(1_000_000_000..10_000_000_000u64);
            if !state.sessions.contains_key(&key) {
                break key;
            }
        };
        let rendered = render(self, &session);
        state.sessions.insert(session.key, session);
        Ok(rendered)
    }

    /// `GET sessions/{key}.json` / `webinar/{key}.json`.
    fn get(&self, kind: Kind, key: &str) -> Result<Response<Body>, Reject> {
        let state = self.lock();
        let session = find(&state.sessions, kind, key)?;
        let rendered = self.render(session, View::Detail);
        drop(state);
        Ok(json(StatusCode::OK, &wrap(rendered)))
    }

    /// `PUT sessions/{key}.json` / `webinar/{key}.json`: replaces the fields given. A
    /// `startTime` without `timezone` is read in the meeting's time zone; a new `timezone`
    /// without `startTime` keeps the instant and changes how it is shown.
    fn update(
        &self,
        kind: Kind,
        key: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<Response<Body>, Reject> {
        // An unknown key wins over a bad body, as it would on a server that loads first.
        let zone = find(&self.lock().sessions, kind, key)?.zone.clone();
        let fields = session_fields(content_type, body)?;
        let input = SessionInput::from_json(&fields, self.zuid, &zone)?;

        let mut rng = rand::rng();
        let mut state = self.lock();
        let session = find_mut(&mut state.sessions, kind, key)?;
        if let Some(topic) = input.topic {
            session.topic = topic;
        }
        if let Some(agenda) = input.agenda {
            session.agenda = agenda;
        }
        if let Some(presenter) = input.presenter {
            session.presenter = presenter;
        }
        if let Some(start_ms) = input.start_ms {
            session.start_ms = start_ms;
        }
        if let Some(duration_ms) = input.duration_ms {
            session.duration_ms = duration_ms;
        }
        if let Some((timezone, zone)) = input.timezone {
            session.timezone = timezone;
            session.zone = zone;
        }
        if let Some(emails) = input.participants {
            // Participants who stay keep their ids.
            let old = std::mem::take(&mut session.participants);
            session.participants = emails
                .into_iter()
                .map(|email| {
                    let id = old
                        .iter()
                        .find(|p| p.email.eq_ignore_ascii_case(&email))
                        .map_or_else(|| random_id(&mut rng), |p| p.id);
                    Participant { id, email }
                })
                .collect();
        }
        let rendered = self.render(session, View::Detail);
        drop(state);
        Ok(json(StatusCode::OK, &wrap(rendered)))
    }

    /// `DELETE sessions/{key}.json` / `webinar/{key}.json`.
    fn delete(&self, kind: Kind, key: &str) -> Result<Response<Body>, Reject> {
        let mut state = self.lock();
        let key = find(&state.sessions, kind, key)?.key;
        state.sessions.remove(&key);
        drop(state);
        let mut response = Response::new(Full::new(Bytes::new()));
        *response.status_mut() = StatusCode::NO_CONTENT;
        Ok(response)
    }

    /// `GET participant/{key}.json`: one made-up attendance per invited email. `index` is a
    /// page number, as the page documents, counted from 1; `index=0` is the first page too.
    pub(super) fn participants(
        &self,
        key: &str,
        query: Option<&str>,
    ) -> Result<Response<Body>, Reject> {
        let (skip, take) = page(&query_params(query), MAX_PAGE_SIZE)?;
        let state = self.lock();
        let meeting = find(&state.sessions, Kind::Meeting, key)?;
        let end = meeting.end_ms();
        let entries: Vec<Value> = meeting
            .participants
            .iter()
            .enumerate()
            .skip(skip)
            .take(take)
            .map(|(i, p)| {
                // Stagger arrivals by a minute, within the first half of the meeting.
                let stagger = i64::try_from(i % 5).unwrap_or(0) * 60_000;
                let half = i64::try_from(meeting.duration_ms / 2).unwrap_or(0);
                let join = meeting.start_ms + stagger.min(half);
                json!({
                    "leaveTime": end,
                    "duration": end - join,
                    "role": "attendee",
                    "joinTime": join,
                    "participantAvatar":
                        format!("{AVATAR_ORIGIN}/file?ID={}&fs=thumb&t=user", p.id),
                    "inAndOutTime": format!(
                        "{} - {}",
                        clock_time(join, &meeting.zone),
                        clock_time(end, &meeting.zone)
                    ),
                    "source": "web",
                    "email": p.email,
                    "memberId": p.id.to_string(),
                })
            })
            .collect();
        let total = meeting.participants.len();
        drop(state);
        Ok(json(
            StatusCode::OK,
            &json!({ "participantsCount": total, "participants": entries }),
        ))
    }

    /// A meeting or webinar with the fields the `view`'s page documents.
    fn render(&self, s: &Session, view: View) -> Value {
        let end = s.end_ms();
        let masked = mask(&s.password);
        let origin = self.product.public_origin();
        let mut out = Map::new();
        let mut put = |name: &str, value: Value| {
            out.insert(name.to_owned(), value);
        };
        put("meetingKey", json!(s.key));
        if s.kind == Kind::Webinar {
            // Clients written against Zoho's webinar pages read `session.webinarKey`.
            put("webinarKey", json!(s.key));
        }
        put("topic", json!(s.topic));
        if view != View::Listed {
            put("agenda", json!(s.agenda));
        }
        match view {
            View::Created => put("presenter", json!(s.presenter)),
            View::Detail => {
                put("presenterEmail", json!(self.user_email));
                put("presenter", json!(s.presenter));
                put("presenterName", json!(self.user_name));
            }
            View::Listed => {
                put("presenterEmail", json!(self.user_email));
                put("presenterZuid", json!(s.presenter));
            }
        }
        put("startTime", json!(zoho_time(s.start_ms, &s.zone)));
        put("endTime", json!(zoho_time(end, &s.zone)));
        put("duration", json!(s.duration_ms));
        put("timezone", json!(s.timezone));
        if view == View::Created {
            put("offset", json!(offset_ms(s.start_ms, &s.zone)));
        }
        if view != View::Detail {
            put("creatorZuid", json!(self.zuid));
        }
        put("joinLink", json!(format!("{origin}/join?key={}", s.key)));
        if view != View::Listed {
            put(
                "startLink",
                json!(format!("{origin}/meeting-start?key={}", s.key)),
            );
        }
        put(
            "meetingEmbedUrl",
            json!(format!(
                "{origin}/meeting/login/embedmeeting.jsp?meetingKey={}&newWindow=true&t={}",
                s.key, s.embed_token
            )),
        );
        put("pwd", json!(masked));
        put("encryptPwd", json!(masked));
        if view == View::Listed {
            put("sysId", json!(s.sys_id));
        } else {
            let participants: Vec<Value> = s
                .participants
                .iter()
                .map(|p| json!({ "id": p.id.to_string(), "email": p.email }))
                .collect();
            put("participants", Value::Array(participants));
        }
        Value::Object(out)
    }
}

// === impl Kind ===

impl Kind {
    /// The path segment: `sessions` or `webinar`.
    pub(super) fn segment(self) -> &'static str {
        match self {
            Kind::Meeting => "sessions",
            Kind::Webinar => "webinar",
        }
    }

    /// The resource part of the scope: `meeting` or `webinar`.
    pub(super) fn resource(self) -> &'static str {
        match self {
            Kind::Meeting => "meeting",
            Kind::Webinar => "webinar",
        }
    }
}

// === impl Session ===

impl Session {
    /// End, in milliseconds since the Unix epoch.
    pub(super) fn end_ms(&self) -> i64 {
        self.start_ms
            .saturating_add(i64::try_from(self.duration_ms).unwrap_or(i64::MAX))
    }
}

// === impl SessionInput ===

impl SessionInput {
    /// Validates the fields of a `session` object. Unknown fields are ignored. `startTime`
    /// is read in the given `timezone`, or else in `fallback` (the meeting's zone when
    /// editing, UTC when creating).
    pub(super) fn from_json(
        fields: &Map<String, Value>,
        zuid: u64,
        fallback: &TimeZone,
    ) -> Result<Self, Invalid> {
        let present = |name: &str| fields.get(name).filter(|v| !v.is_null());
        let mut input = Self::default();

        if let Some(topic) = present("topic") {
            let topic = topic.as_str().map(str::trim).unwrap_or_default();
            if topic.is_empty() || topic.chars().count() > MAX_TOPIC_CHARS {
                return Err(INVALID_TOPIC);
            }
            input.topic = Some(topic.to_owned());
        }
        if let Some(agenda) = present("agenda") {
            match agenda.as_str() {
                Some(agenda) if agenda.chars().count() <= MAX_AGENDA_CHARS => {
                    input.agenda = Some(agenda.to_owned());
                }
                _ => return Err(INVALID_AGENDA),
            }
        }
        if let Some(presenter) = present("presenter") {
            if whole_number(presenter) != Some(zuid) {
                return Err(INVALID_PRESENTER);
            }
            input.presenter = Some(zuid);
        }
        if let Some(timezone) = present("timezone") {
            let name = timezone.as_str().map(str::trim).unwrap_or_default();
            let zone = zone(name).ok_or(INVALID_TIMEZONE)?;
            input.timezone = Some((name.to_owned(), zone));
        }
        if let Some(start) = present("startTime") {
            let zone = input.timezone.as_ref().map_or(fallback, |(_, zone)| zone);
            let start = start.as_str().and_then(|s| parse_start_time(s, zone));
            input.start_ms = Some(start.ok_or(INVALID_START_TIME)?);
        }
        if let Some(duration) = present("duration") {
            match whole_number(duration) {
                Some(ms) if (MIN_DURATION_MS..=MAX_DURATION_MS).contains(&ms) => {
                    input.duration_ms = Some(ms);
                }
                _ => return Err(INVALID_DURATION),
            }
        }
        if let Some(participants) = present("participants") {
            input.participants = Some(participant_emails(participants)?);
        }
        Ok(input)
    }
}

// === impl ListType ===

impl ListType {
    /// Parses `listtype`, case-insensitively; absent means `all`.
    pub(super) fn parse(value: Option<&str>) -> Result<Self, Invalid> {
        let Some(value) = value else {
            return Ok(ListType::All);
        };
        match value.trim().to_ascii_lowercase().as_str() {
            "all" => Ok(ListType::All),
            "past" => Ok(ListType::Past),
            "today" => Ok(ListType::Today),
            "upcoming" => Ok(ListType::Upcoming),
            _ => Err(INVALID_LISTTYPE),
        }
    }

    /// Whether the list includes `s` at `now` (milliseconds since the epoch). `today` is the
    /// calendar day in the meeting's own time zone.
    pub(super) fn includes(self, s: &Session, now: i64) -> bool {
        match self {
            ListType::All => true,
            ListType::Past => s.end_ms() <= now,
            ListType::Upcoming => s.end_ms() > now,
            ListType::Today => local_date(s.start_ms, &s.zone) == local_date(now, &s.zone),
        }
    }
}

// === helpers ===

/// Finds a meeting or webinar by the key in the path.
pub(super) fn find<'s>(
    sessions: &'s BTreeMap<u64, Session>,
    kind: Kind,
    key: &str,
) -> Result<&'s Session, Reject> {
    parse_key(key)
        .and_then(|key| sessions.get(&key))
        .filter(|s| s.kind == kind)
        .ok_or(Reject::UnknownKey)
}

/// Finds a meeting or webinar by the key in the path, for editing.
pub(super) fn find_mut<'s>(
    sessions: &'s mut BTreeMap<u64, Session>,
    kind: Kind,
    key: &str,
) -> Result<&'s mut Session, Reject> {
    parse_key(key)
        .and_then(|key| sessions.get_mut(&key))
        .filter(|s| s.kind == kind)
        .ok_or(Reject::UnknownKey)
}

/// A key made of ASCII digits only.
pub(super) fn parse_key(key: &str) -> Option<u64> {
    if key.is_empty() || !key.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    key.parse().ok()
}

/// Reads the object under `"session"` (or `"webinar"`) from a create or edit body.
pub(super) fn session_fields(
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Map<String, Value>, Invalid> {
    let Value::Object(mut outer) = parse_payload(content_type, body)? else {
        return Err(MISSING_SESSION);
    };
    let inner = match outer.remove("session") {
        Some(inner) => Some(inner),
        None => outer.remove("webinar"),
    };
    match inner {
        Some(Value::Object(fields)) => Ok(fields),
        _ => Err(MISSING_SESSION),
    }
}

/// Parses a body that is plain JSON, a form with a `JSONString` field, or the raw
/// `JSONString=<json>` that Zoho's curl examples send.
pub(super) fn parse_payload(content_type: Option<&str>, body: &[u8]) -> Result<Value, Invalid> {
    let from_form = |form: &[u8]| {
        url::form_urlencoded::parse(form)
            .find(|(name, _)| name == "JSONString")
            .map(|(_, value)| value.into_owned())
            .ok_or(MISSING_JSONSTRING)
    };
    if content_type.is_some_and(is_form) {
        let text = from_form(body)?;
        return serde_json::from_str(&text).map_err(|_| MALFORMED_JSON);
    }
    let trimmed = body.trim_ascii_start();
    if let Some(raw) = trimmed.strip_prefix(b"JSONString=") {
        if let Ok(value) = serde_json::from_slice(raw) {
            return Ok(value);
        }
        // URL-encoded after all, as `curl --data-urlencode` sends it.
        let text = from_form(trimmed)?;
        return serde_json::from_str(&text).map_err(|_| MALFORMED_JSON);
    }
    serde_json::from_slice(body).map_err(|_| MALFORMED_JSON)
}

/// A whole, non-negative number given as a JSON number or a string of digits.
pub(super) fn whole_number(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => parse_key(s.trim()),
        _ => None,
    }
}

/// Validates `participants`: an array of objects with a valid `email`. Duplicates (compared
/// without regard to case) are dropped.
pub(super) fn participant_emails(value: &Value) -> Result<Vec<String>, Invalid> {
    let list = value.as_array().ok_or(INVALID_PARTICIPANTS)?;
    if list.len() > MAX_PARTICIPANTS {
        return Err(INVALID_PARTICIPANTS);
    }
    let mut emails: Vec<String> = Vec::with_capacity(list.len());
    for entry in list {
        let email = entry
            .get("email")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|email| is_email(email))
            .ok_or(INVALID_PARTICIPANTS)?;
        if !emails.iter().any(|e| e.eq_ignore_ascii_case(email)) {
            emails.push(email.to_owned());
        }
    }
    Ok(emails)
}

/// Whether `s` looks like an email address: `local@domain.tld`, ASCII, no spaces.
pub(super) fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && local
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'@' | b'<' | b'>' | b',' | b';' | b'"'));
    let domain_ok = domain.contains('.')
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    s.len() <= 254 && local_ok && domain_ok
}

/// A random 18-digit id, like Zoho's `sysId` and participant ids.
pub(super) fn random_id(rng: &mut impl Rng) -> u64 {
    rng.random_range(100_000_000_000_000_000..1_000_000_000_000_000_000)
}

/// The key a list is wrapped in: `session` for meetings; `webinar` for webinars, which
/// Zoho's webinar-list clients read (Pipedream's `response.webinar`).
fn list_key(kind: Kind) -> &'static str {
    match kind {
        Kind::Meeting => "session",
        Kind::Webinar => "webinar",
    }
}

/// Wraps a single meeting or webinar in `{"session": ..}`, as both Zoho's meeting pages and
/// its webinar clients (`session.webinarKey`) have it.
fn wrap(value: Value) -> Value {
    json!({ "session": value })
}

/// Reads `index`, a whole number (default 0).
pub(super) fn index(params: &HashMap<String, String>) -> Result<usize, Invalid> {
    match params.get("index") {
        None => Ok(0),
        Some(value) => parse_key(value.trim())
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
            .ok_or(INVALID_INDEX),
    }
}

/// Reads `count`, a positive whole number (default and maximum [`MAX_PAGE_SIZE`]).
pub(super) fn count(params: &HashMap<String, String>) -> Result<usize, Invalid> {
    count_or(params, MAX_PAGE_SIZE)
}

/// Reads `count`, a positive whole number (default `default`, at most [`MAX_PAGE_SIZE`]).
fn count_or(params: &HashMap<String, String>, default: usize) -> Result<usize, Invalid> {
    match params.get("count") {
        None => Ok(default),
        Some(value) => match parse_key(value.trim()) {
            Some(n) if n > 0 => Ok(usize::try_from(n).unwrap_or(usize::MAX).min(MAX_PAGE_SIZE)),
            _ => Err(INVALID_COUNT),
        },
    }
}

/// Reads `index` as a page number counted from 1 (`0` is the first page too) and `count`
/// as the page size (default `default_count`); returns how many records to skip and take.
pub(super) fn page(
    params: &HashMap<String, String>,
    default_count: usize,
) -> Result<(usize, usize), Invalid> {
    let take = count_or(params, default_count)?;
    let skip = index(params)?.saturating_sub(1).saturating_mul(take);
    Ok((skip, take))
}

/// A password masked as Zoho's answers show it: first and last character around `***`.
fn mask(password: &str) -> String {
    let first = password.chars().next().unwrap_or('*');
    let last = password.chars().last().unwrap_or('*');
    format!("{first}***{last}")
}

/// 64 lower-case hex digits: the SHA-256 of `text`.
pub(super) fn sha256_hex(text: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// 64 lower-case hex digits, like the `t` of Zoho's `meetingEmbedUrl`.
fn hex_token(rng: &mut impl Rng) -> String {
    (0..4)
        .map(|_| format!("{:016x}", rng.random::<u64>()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meeting::testing::*;

    #[tokio::test]
    async fn meeting_crud_answers_201_200_200_204_then_invalid_key() {
        let sb = Sandbox::start().await;
        let created = sb.create(meeting_body()).await;
        let key = key_of(&created);
        assert_eq!(key.len(), 10);
        assert!(key.bytes().all(|b| b.is_ascii_digit()));
        assert_eq!(created["topic"], "Monthly Marketing Meeting");
        assert_eq!(created["agenda"], "Points to get noted during meeting.");
        assert_eq!(created["presenter"], 800_000_001u64);
        assert_eq!(created["creatorZuid"], 800_000_001u64);
        // Read in the meeting's time zone, answered with its abbreviation and offset.
        assert_eq!(created["startTime"], "Jun 19, 2030 07:00 PM IST");
        assert_eq!(created["endTime"], "Jun 19, 2030 08:00 PM IST");
        assert_eq!(created["offset"], 19_800_000);
        assert_eq!(created["duration"], 3_600_000);
        assert_eq!(created["timezone"], "Asia/Calcutta");
        assert_eq!(
            created["joinLink"],
            format!("https://meeting.zoho.com/join?key={key}")
        );
        assert!(created["startLink"].as_str().unwrap().ends_with(&key));
        // The password is shown masked, as Zoho's pages show it.
        let pwd = created["pwd"].as_str().unwrap();
        assert_eq!((pwd.len(), &pwd[1..4]), (5, "***"), "{pwd}");
        assert_eq!(created["encryptPwd"], pwd);
        let embed = created["meetingEmbedUrl"].as_str().unwrap();
        let prefix = format!(
            "https://meeting.zoho.com/meeting/login/embedmeeting.jsp?meetingKey={key}&newWindow=true&t="
        );
        let token = embed.strip_prefix(&prefix).unwrap();
        assert_eq!(token.len(), 64);
        assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(created["participants"][0]["email"], "dummy@email.com");
        assert_eq!(created["participants"][1]["email"], "other@example.org");
        assert!(created["participants"][0]["id"].is_string());
        for invented in ["sysId", "startTimeMillis", "isRecurring", "presenterEmail"] {
            assert!(created.get(invented).is_none(), "{invented}");
        }

        // Get answers the fields of Zoho's get page, the same meeting.
        let item = sb.org(&format!("sessions/{key}.json"));
        let (status, body) = sb.call(Method::GET, &item, None).await;
        assert_eq!(status, StatusCode::OK);
        let got = &body["session"];
        for same in [
            "meetingKey",
            "topic",
            "agenda",
            "presenter",
            "startTime",
            "endTime",
            "duration",
            "timezone",
            "joinLink",
            "startLink",
            "pwd",
            "encryptPwd",
            "meetingEmbedUrl",
            "participants",
        ] {
            assert_eq!(got[same], created[same], "{same}");
        }
        assert_eq!(got["presenterEmail"], "sandbox.user@example.com");
        assert_eq!(got["presenterName"], "Sandbox User");
        assert!(got.get("offset").is_none());

        let edit = json!({ "session": {
            "topic": "Renamed",
            "startTime": "2030-06-20T09:30:00+05:30",
            "duration": "1800000",
            "participants": [{ "email": "OTHER@example.org" }, { "email": "new@example.com" }],
        }});
        let (status, body) = sb.call(Method::PUT, &item, Some(&edit)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let edited = &body["session"];
        assert_eq!(edited["meetingKey"], created["meetingKey"]);
        assert_eq!(edited["topic"], "Renamed");
        assert_eq!(edited["agenda"], created["agenda"]);
        assert_eq!(edited["startTime"], "Jun 20, 2030 09:30 AM IST");
        assert_eq!(edited["endTime"], "Jun 20, 2030 10:00 AM IST");
        assert_eq!(edited["duration"], 1_800_000);
        assert_eq!(edited["timezone"], "Asia/Calcutta");
        assert_eq!(edited["pwd"], created["pwd"]);
        // A participant who stays keeps their id.
        assert_eq!(
            edited["participants"][0]["id"],
            created["participants"][1]["id"]
        );
        assert_eq!(edited["participants"][1]["email"], "new@example.com");
        let (_, body) = sb.call(Method::GET, &item, None).await;
        assert_eq!(&body["session"], edited);

        let (status, body) = sb.call(Method::DELETE, &item, None).await;
        assert_eq!((status, body), (StatusCode::NO_CONTENT, Value::Null));

        let unknown = json!({ "error": {
            "errorCode": 4000,
            "key": "INVALID_MEETING_KEY",
            "message": "The meeting key is invalid.",
        }});
        for method in [Method::GET, Method::DELETE, Method::PUT] {
            let (status, body) = sb.call(method.clone(), &item, Some(&edit)).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{method}");
            assert_eq!(body, unknown, "{method}");
        }
        for bad in ["sessions/abc.json", "sessions/12345678901234567890123.json"] {
            let (status, body) = sb.call(Method::GET, &sb.org(bad), None).await;
            assert_eq!((status, body), (StatusCode::BAD_REQUEST, unknown.clone()));
        }
    }

    #[tokio::test]
    async fn list_filters_by_listtype_and_pages_with_index_and_count() {
        let sb = Sandbox::start().await;
        let today = iso(now_ms()).get(..10).unwrap().to_owned();
        let past = sb
            .create(json!({ "topic": "past", "startTime": "Jan 02, 2001 09:15 AM" }))
            .await;
        for i in 1..=3 {
            sb.create(json!({ "topic": format!("future {i}"), "startTime": format!("Mar 0{i}, 2031 10:00 AM") }))
                .await;
        }
        // Today at noon UTC: whether it has ended depends on the hour, it is "today" either way.
        sb.create(json!({ "topic": "today", "startTime": format!("{today}T12:00:00Z") }))
            .await;

        let list = sb.org("sessions.json");
        let topics = |body: &Value| -> Vec<String> {
            body["session"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["topic"].as_str().unwrap().to_owned())
                .collect()
        };
        let (status, body) = sb.call(Method::GET, &list, None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            topics(&body),
            ["past", "today", "future 1", "future 2", "future 3"]
        );
        assert_eq!(body["count"], 5);
        // A list entry has the fields of Zoho's list page.
        let entry = &body["session"][0];
        assert_eq!(entry["meetingKey"], past["meetingKey"]);
        assert_eq!(entry["presenterZuid"], 800_000_001u64);
        assert_eq!(entry["creatorZuid"], 800_000_001u64);
        assert!(entry["sysId"].is_u64());
        assert_eq!(entry["startTime"], "Jan 02, 2001 09:15 AM UTC");
        assert_eq!(entry["meetingEmbedUrl"], past["meetingEmbedUrl"]);
        for absent in ["agenda", "presenter", "startLink", "participants", "offset"] {
            assert!(entry.get(absent).is_none(), "{absent}");
        }
        let (_, body) = sb
            .call(Method::GET, &format!("{list}?listtype=all"), None)
            .await;
        assert_eq!(topics(&body).len(), 5);

        let (_, body) = sb
            .call(Method::GET, &format!("{list}?listtype=past"), None)
            .await;
        let listed = topics(&body);
        assert_eq!(listed[0], "past");
        assert!(!listed.iter().any(|t| t.starts_with("future")));
        let (_, body) = sb
            .call(Method::GET, &format!("{list}?listtype=Upcoming"), None)
            .await;
        let listed = topics(&body);
        assert!(!listed.contains(&"past".to_owned()));
        assert!(listed.ends_with(&[
            "future 1".to_owned(),
            "future 2".to_owned(),
            "future 3".to_owned()
        ]));
        let (_, body) = sb
            .call(Method::GET, &format!("{list}?listtype=today"), None)
            .await;
        assert_eq!(topics(&body), ["today"]);

        // `index` is the offset of the first record, from 0 (the default).
        for query in ["", "?index=0", "?index=0&count=2"] {
            let (status, body) = sb.call(Method::GET, &format!("{list}{query}"), None).await;
            assert_eq!(status, StatusCode::OK, "{query}");
            assert_eq!(topics(&body)[0], "past", "{query}");
        }
        let (_, body) = sb
            .call(Method::GET, &format!("{list}?index=1&count=2"), None)
            .await;
        assert_eq!(topics(&body), ["today", "future 1"]);
        assert_eq!(body["count"], 5);
        let (_, body) = sb
            .call(
                Method::GET,
                &format!("{list}?listtype=upcoming&index=3&count=500"),
                None,
            )
            .await;
        assert!(topics(&body).len() <= 2);
        let (_, body) = sb
            .call(Method::GET, &format!("{list}?index=99"), None)
            .await;
        assert_eq!(body, json!({ "session": [], "count": 5 }));

        // Webinars are listed apart.
        let (_, body) = sb.call(Method::GET, &sb.org("webinar.json"), None).await;
        assert_eq!(body, json!({ "webinar": [], "count": 0 }));

        for (query, code) in [
            ("listtype=later", "INVALID_LISTTYPE"),
            ("index=-1", "INVALID_INDEX"),
            ("index=one", "INVALID_INDEX"),
            ("count=0", "INVALID_COUNT"),
            ("count=ten", "INVALID_COUNT"),
        ] {
            let (status, body) = sb.call(Method::GET, &format!("{list}?{query}"), None).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
            assert_eq!(body["error"]["key"], code, "{query}");
            assert_eq!(body["error"]["errorCode"], 4001, "{query}");
        }
    }

    #[tokio::test]
    async fn today_is_the_calendar_day_in_each_meeting_time_zone() {
        let sb = Sandbox::start().await;
        // UTC+14 and UTC-11: on most hours one of them is not on today's UTC date.
        for zone in ["Pacific/Kiritimati", "Pacific/Pago_Pago"] {
            let tz = jiff::tz::TimeZone::get(zone).unwrap();
            let local_today = jiff::Timestamp::now().to_zoned(tz).date();
            sb.create(json!({
                "topic": zone,
                "timezone": zone,
                "startTime": format!("{local_today}T12:00:00"),
            }))
            .await;
        }
        sb.create(json!({ "topic": "last year", "startTime": iso(now_ms() - 366 * 86_400_000) }))
            .await;
        let (_, body) = sb
            .call(Method::GET, &sb.org("sessions.json?listtype=today"), None)
            .await;
        let mut topics: Vec<&str> = body["session"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["topic"].as_str().unwrap())
            .collect();
        topics.sort_unstable();
        assert_eq!(topics, ["Pacific/Kiritimati", "Pacific/Pago_Pago"]);
    }

    #[tokio::test]
    async fn edits_read_start_times_in_the_meeting_time_zone() {
        let sb = Sandbox::start().await;
        let created = sb
            .create(json!({
                "topic": "t",
                "startTime": "Jun 19, 2030 07:00 PM",
                "timezone": "America/New_York",
            }))
            .await;
        assert_eq!(created["startTime"], "Jun 19, 2030 07:00 PM EDT");
        assert_eq!(created["offset"], -14_400_000);
        let item = sb.org(&format!("sessions/{}.json", key_of(&created)));
        // A start time alone is read in the meeting's zone; winter is EST.
        let edit = json!({ "session": { "startTime": "Jan 15, 2031 09:00 AM" } });
        let (status, body) = sb.call(Method::PUT, &item, Some(&edit)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["session"]["startTime"], "Jan 15, 2031 09:00 AM EST");
        // A time zone alone keeps the instant and changes how it is shown.
        let edit = json!({ "session": { "timezone": "Asia/Calcutta" } });
        let (_, body) = sb.call(Method::PUT, &item, Some(&edit)).await;
        assert_eq!(body["session"]["startTime"], "Jan 15, 2031 07:30 PM IST");
        assert_eq!(body["session"]["timezone"], "Asia/Calcutta");
        // Both: the start time is read in the new zone.
        let edit =
            json!({ "session": { "timezone": "UTC", "startTime": "Jan 15, 2031 09:00 AM" } });
        let (_, body) = sb.call(Method::PUT, &item, Some(&edit)).await;
        assert_eq!(body["session"]["startTime"], "Jan 15, 2031 09:00 AM UTC");
        // An unknown zone changes nothing.
        let edit = json!({ "session": { "timezone": "Mars/Olympus_Mons", "topic": "x" } });
        let (status, body) = sb.call(Method::PUT, &item, Some(&edit)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"]["key"], "INVALID_TIMEZONE");
        let (_, body) = sb.call(Method::GET, &item, None).await;
        assert_eq!(body["session"]["topic"], "t");
    }

    #[tokio::test]
    async fn count_is_capped_at_100() {
        let sb = Sandbox::start().await;
        for i in 0..105 {
            sb.create(json!({ "topic": format!("m{i}"), "startTime": "2030-01-01T00:00:00Z" }))
                .await;
        }
        let list = sb.org("sessions.json");
        for query in ["", "?count=1000"] {
            let (_, body) = sb.call(Method::GET, &format!("{list}{query}"), None).await;
            assert_eq!(body["session"].as_array().unwrap().len(), 100, "{query}");
        }
        let (_, body) = sb
            .call(Method::GET, &format!("{list}?index=100"), None)
            .await;
        assert_eq!(body["session"].as_array().unwrap().len(), 5);
        assert_eq!(body["count"], 105);
    }

    #[tokio::test]
    async fn jsonstring_bodies_are_accepted() {
        let sb = Sandbox::start().await;
        let url = format!("{}{}", sb.meeting.url(), sb.org("sessions.json"));
        let payload = json!({ "session": meeting_body() }).to_string();
        let auth = format!("Zoho-oauthtoken {}", sb.token);

        // A real form, URL-encoded.
        let resp = sb
            .http
            .post(&url)
            .header("authorization", &auth)
            .form(&[("JSONString", payload.as_str())])
            .send()
            .await
            .unwrap();
        let (status, body) = read(resp).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["session"]["topic"], "Monthly Marketing Meeting");

        // What Zoho's curl example sends: `-d JSONString='{..}'` with a JSON content type.
        let encoded: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("JSONString", &payload)
            .finish();
        for raw in [format!("JSONString={payload}"), encoded] {
            let resp = sb
                .http
                .post(&url)
                .header("authorization", &auth)
                .header(CONTENT_TYPE, "application/json;charset=UTF-8")
                .body(raw)
                .send()
                .await
                .unwrap();
            let (status, body) = read(resp).await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
        }

        // A form without JSONString, or with broken JSON in it.
        for form in [vec![("topic", "x")], vec![("JSONString", "{\"session\":")]] {
            let resp = sb
                .http
                .post(&url)
                .header("authorization", &auth)
                .form(&form)
                .send()
                .await
                .unwrap();
            let (status, body) = read(resp).await;
            assert_eq!(status, StatusCode::BAD_REQUEST);
            assert_eq!(body["error"]["key"], "INVALID_JSON");
        }
    }

    #[tokio::test]
    async fn invalid_bodies_answer_400_with_an_error_code() {
        let sb = Sandbox::start().await;
        let create = sb.org("sessions.json");
        let with = |field: &str, value: Value| {
            let mut session = meeting_body();
            session[field] = value;
            json!({ "session": session })
        };
        let without = |field: &str| {
            let mut session = meeting_body();
            session.as_object_mut().unwrap().remove(field);
            json!({ "session": session })
        };
        let cases = [
            (with("duration", json!(3600)), "INVALID_DURATION"),
            (with("duration", json!(86_400_001)), "INVALID_DURATION"),
            (with("duration", json!(3_600_000.5)), "INVALID_DURATION"),
            (with("duration", json!(-60_000)), "INVALID_DURATION"),
            (
                with("startTime", json!("19/06/2030 19:00")),
                "INVALID_START_TIME",
            ),
            (
                with("startTime", json!("Jun 31, 2030 07:00 PM")),
                "INVALID_START_TIME",
            ),
            (
                with("startTime", json!("Jun 19, 2030 13:00 PM")),
                "INVALID_START_TIME",
            ),
            (
                with("startTime", json!(1_908_126_000_000i64)),
                "INVALID_START_TIME",
            ),
            (without("startTime"), "INVALID_START_TIME"),
            (without("topic"), "INVALID_TOPIC"),
            (with("topic", json!("   ")), "INVALID_TOPIC"),
            (with("topic", json!("x".repeat(201))), "INVALID_TOPIC"),
            (with("topic", json!(42)), "INVALID_TOPIC"),
            (with("timezone", json!("")), "INVALID_TIMEZONE"),
            (with("timezone", json!("Asia Kolkata")), "INVALID_TIMEZONE"),
            (with("timezone", json!("Asia/Atlantis")), "INVALID_TIMEZONE"),
            (with("timezone", json!(5.5)), "INVALID_TIMEZONE"),
            (with("presenter", json!(1)), "INVALID_PRESENTER"),
            (with("agenda", json!(["a"])), "INVALID_AGENDA"),
            (
                with("participants", json!([{ "email": "not-an-email" }])),
                "INVALID_PARTICIPANTS",
            ),
            (
                with("participants", json!([{ "mail": "a@b.co" }])),
                "INVALID_PARTICIPANTS",
            ),
            (
                with("participants", json!("a@b.co")),
                "INVALID_PARTICIPANTS",
            ),
            (json!({ "topic": "no wrapper" }), "INVALID_INPUT"),
            (json!({ "session": "text" }), "INVALID_INPUT"),
            (json!([1, 2]), "INVALID_INPUT"),
        ];
        for (body, code) in &cases {
            let (status, answer) = sb.call(Method::POST, &create, Some(body)).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(answer["error"]["key"], *code, "{body}");
            assert_eq!(answer["error"]["errorCode"], 4001, "{body}");
            assert!(answer["error"]["message"].is_string());
            assert!(answer["error"].get("code").is_none(), "not a token error");
        }
        // Exactly 200 characters, and the smallest duration, are fine.
        let ok = with("topic", json!("é".repeat(200)));
        let (status, _) = sb.call(Method::POST, &create, Some(&ok)).await;
        assert_eq!(status, StatusCode::CREATED);

        // Malformed JSON.
        let url = format!("{}{create}", sb.meeting.url());
        for raw in ["{\"session\":", "", "nope", "\u{0}"] {
            let resp = sb
                .http
                .post(&url)
                .header("authorization", format!("Zoho-oauthtoken {}", sb.token))
                .header(CONTENT_TYPE, "application/json")
                .body(raw)
                .send()
                .await
                .unwrap();
            let (status, body) = read(resp).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{raw:?}");
            assert_eq!(body["error"]["key"], "INVALID_JSON");
        }

        // A failed edit changes nothing.
        let created = sb.create(meeting_body()).await;
        let item = sb.org(&format!("sessions/{}.json", key_of(&created)));
        let (_, before) = sb.call(Method::GET, &item, None).await;
        let (status, body) = sb
            .call(
                Method::PUT,
                &item,
                Some(&json!({ "session": { "topic": "new", "duration": 3600 } })),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"]["key"], "INVALID_DURATION");
        let (_, body) = sb.call(Method::GET, &item, None).await;
        assert_eq!(body, before);
    }

    #[tokio::test]
    async fn webinar_crud_uses_the_webinar_key() {
        let sb = Sandbox::start().await;
        let collection = sb.org("webinar.json");
        // Zoho's webinar clients send (and read) `session`; `webinar` is accepted too.
        for wrapper in ["session", "webinar"] {
            let (status, body) = sb
                .call(
                    Method::POST,
                    &collection,
                    Some(&json!({ wrapper: meeting_body() })),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
            let created = &body["session"];
            assert_eq!(created["webinarKey"], created["meetingKey"]);
            assert!(created["webinarKey"].is_u64());
            assert_eq!(created["topic"], "Monthly Marketing Meeting");
        }

        let (_, body) = sb.call(Method::GET, &collection, None).await;
        assert_eq!(body["count"], 2);
        let listed = body["webinar"][0].clone();
        let key = key_of(&listed);
        assert_eq!(listed["webinarKey"], listed["meetingKey"]);
        let (_, body) = sb.call(Method::GET, &sb.org("sessions.json"), None).await;
        assert_eq!(body, json!({ "session": [], "count": 0 }));

        let item = sb.org(&format!("webinar/{key}.json"));
        let (status, body) = sb.call(Method::GET, &item, None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["session"]["webinarKey"], listed["meetingKey"]);
        assert_eq!(body["session"]["startTime"], "Jun 19, 2030 07:00 PM IST");
        // A webinar is not a meeting.
        let (status, body) = sb
            .call(Method::GET, &sb.org(&format!("sessions/{key}.json")), None)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"]["key"], "INVALID_MEETING_KEY");

        let (status, body) = sb
            .call(
                Method::PUT,
                &item,
                Some(&json!({ "session": { "agenda": "" } })),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["session"]["agenda"], "");
        let (status, _) = sb.call(Method::DELETE, &item, None).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, body) = sb.call(Method::GET, &item, None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"]["errorCode"], 4000);
    }

    #[tokio::test]
    async fn participant_report_lists_invited_emails() {
        let sb = Sandbox::start().await;
        let created = sb.create(meeting_body()).await;
        let key = &key_of(&created);
        let report = sb.org(&format!("participant/{key}.json"));
        let (status, body) = sb
            .call(Method::GET, &format!("{report}?index=1&count=10"), None)
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["participantsCount"], 2);
        let entries = body["participants"].as_array().unwrap();
        assert_eq!(entries.len(), 2);
        // 7 PM in Kolkata is 13:30 UTC.
        let start = 1_908_106_200_000i64;
        assert_eq!(entries[0]["email"], "dummy@email.com");
        assert_eq!(entries[0]["joinTime"], start);
        assert_eq!(entries[0]["leaveTime"], start + 3_600_000);
        assert_eq!(entries[0]["duration"], 3_600_000);
        // Clock times in the meeting's time zone.
        assert_eq!(entries[0]["inAndOutTime"], "07:00 PM - 08:00 PM");
        assert!(entries[0]["participantAvatar"].is_string());
        assert_eq!(entries[1]["joinTime"], start + 60_000);
        assert_eq!(entries[1]["memberId"], created["participants"][1]["id"]);
        // `index` is a page number: 0 and 1 are the first page, 2 the second.
        for (query, email) in [
            ("index=0&count=1", "dummy@email.com"),
            ("index=1&count=1", "dummy@email.com"),
            ("count=1", "dummy@email.com"),
            ("index=2&count=1", "other@example.org"),
        ] {
            let (status, body) = sb
                .call(Method::GET, &format!("{report}?{query}"), None)
                .await;
            assert_eq!(status, StatusCode::OK, "{query}");
            assert_eq!(body["participants"].as_array().unwrap().len(), 1, "{query}");
            assert_eq!(body["participants"][0]["email"], email, "{query}");
            assert_eq!(body["participantsCount"], 2, "{query}");
        }
        let (_, body) = sb
            .call(Method::GET, &format!("{report}?index=3&count=1"), None)
            .await;
        assert_eq!(body["participants"], json!([]));

        let lonely = sb
            .create(json!({ "topic": "alone", "startTime": "2030-01-01T00:00:00Z" }))
            .await;
        let path = sb.org(&format!("participant/{}.json", &key_of(&lonely)));
        let (_, body) = sb.call(Method::GET, &path, None).await;
        assert_eq!(body, json!({ "participantsCount": 0, "participants": [] }));

        let (status, body) = sb
            .call(Method::GET, &sb.org("participant/1.json"), None)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"]["key"], "INVALID_MEETING_KEY");
    }

    #[test]
    fn checks_emails() {
        for good in ["a@b.co", "first.last+tag@sub.example.org", "x_y@a-b.io"] {
            assert!(is_email(good), "{good}");
        }
        for bad in [
            "", "a", "@b.co", "a@", "a@b", "a@b.", "a@.co", "a@@b.co", "a b@c.co", "a@b_c.co",
            "é@b.co", "<a@b.co>",
        ] {
            assert!(!is_email(bad), "{bad}");
        }
        assert!(!is_email(&format!("{}@b.co", "a".repeat(65))));
    }

    #[test]
    fn pages_and_masks() {
        let params = |query: &str| query_params(Some(query));
        assert_eq!(index(&params("")), Ok(0));
        assert_eq!(index(&params("index=0")), Ok(0));
        assert_eq!(index(&params("index=7")), Ok(7));
        assert_eq!(index(&params("index=-1")), Err(INVALID_INDEX));
        assert_eq!(index(&params("index=")), Err(INVALID_INDEX));
        assert_eq!(
            index(&params("index=99999999999999999999999")),
            Err(INVALID_INDEX)
        );
        assert_eq!(count(&params("")), Ok(MAX_PAGE_SIZE));
        assert_eq!(count(&params("count=5")), Ok(5));
        assert_eq!(count(&params("count=500")), Ok(MAX_PAGE_SIZE));
        assert_eq!(count(&params("count=0")), Err(INVALID_COUNT));
        assert_eq!(mask("GLivoM"), "G***M");
        assert_eq!(mask(""), "*****");
        let token = hex_token(&mut rand::rng());
        assert_eq!(token.len(), 64);
        assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
    }
}
