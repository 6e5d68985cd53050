//! Meetings and webinars (Zoho calls them sessions): create, list, get, edit, delete, and
//! the participant report.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use http_body_util::Full;
use hyper::http::request::Parts;
use hyper::{Response, StatusCode};
use rand::Rng;
use serde_json::{Map, Value, json};

use super::reject::*;
use super::route::Op;
use super::time::{MS_PER_DAY, clock_time, now_ms, parse_start_time, zoho_time};
use super::{DEFAULT_TIMEZONE, MAX_PAGE_SIZE, MAX_SESSIONS, Shared};
use crate::sandbox::http::{Body, content_type, is_form, json, query_params};
/// Longest accepted `topic`, in characters.
pub(super) const MAX_TOPIC_CHARS: usize = 200;
/// Longest accepted `agenda`, in characters.
pub(super) const MAX_AGENDA_CHARS: usize = 5_000;
/// Longest accepted `timezone`, in bytes.
pub(super) const MAX_TIMEZONE_LEN: usize = 64;
/// Most participants one meeting may invite.
pub(super) const MAX_PARTICIPANTS: usize = 500;
/// Shortest meeting, in milliseconds (one minute).
pub(super) const MIN_DURATION_MS: u64 = 60_000;
/// Longest meeting, in milliseconds (one day).
pub(super) const MAX_DURATION_MS: u64 = 86_400_000;
/// Duration of a meeting created without one (one hour).
pub(super) const DEFAULT_DURATION_MS: u64 = 3_600_000;
/// The public host that join and start links point to, as Zoho's answers do.
pub(super) const PUBLIC_ORIGIN: &str = "https://meeting.zoho.com";

/// Meetings and webinars share one store and one key space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Meeting,
    Webinar,
}

/// A stored meeting or webinar.
#[derive(Clone, Debug)]
pub(super) struct Session {
    kind: Kind,
    key: u64,
    sys_id: u64,
    topic: String,
    agenda: String,
    presenter: u64,
    /// Start, in milliseconds since the Unix epoch (never negative).
    start_ms: i64,
    duration_ms: u64,
    timezone: String,
    participants: Vec<Participant>,
}

/// An invited participant.
#[derive(Clone, Debug)]
pub(super) struct Participant {
    id: u64,
    email: String,
}

/// The validated fields of a create or edit body; `None` when absent (or `null`).
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct SessionInput {
    topic: Option<String>,
    agenda: Option<String>,
    presenter: Option<u64>,
    start_ms: Option<i64>,
    duration_ms: Option<u64>,
    timezone: Option<String>,
    participants: Option<Vec<String>>,
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

    /// `GET sessions.json` / `webinar.json`.
    pub(super) fn list(&self, kind: Kind, query: Option<&str>) -> Result<Response<Body>, Reject> {
        let params = query_params(query);
        let list_type = ListType::parse(params.get("listtype").map(String::as_str))?;
        let (skip, take) = page(&params)?;
        let now = now_ms();
        let page: Vec<Value> = {
            let state = self.lock();
            let mut matching: Vec<&Session> = state
                .sessions
                .values()
                .filter(|s| s.kind == kind && list_type.includes(s, now))
                .collect();
            matching.sort_by_key(|s| (s.start_ms, s.key));
            matching
                .into_iter()
                .skip(skip)
                .take(take)
                .map(|s| self.render(s))
                .collect()
        };
        Ok(json(StatusCode::OK, &wrap(kind, Value::Array(page))))
    }

    /// `POST sessions.json` / `webinar.json`.
    pub(super) fn create(
        &self,
        kind: Kind,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<Response<Body>, Reject> {
        let fields = session_fields(content_type, body)?;
        let input = SessionInput::from_json(&fields, self.zuid)?;
        let topic = input.topic.ok_or(Reject::Invalid(TOPIC_REQUIRED))?;
        let start_ms = input.start_ms.ok_or(Reject::Invalid(START_TIME_REQUIRED))?;

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
            timezone: input
                .timezone
                .unwrap_or_else(|| DEFAULT_TIMEZONE.to_owned()),
            participants,
        };

        let rendered = {
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
            let rendered = self.render(&session);
            state.sessions.insert(session.key, session);
            rendered
        };
        Ok(json(StatusCode::CREATED, &wrap(kind, rendered)))
    }

    /// `GET sessions/{key}.json` / `webinar/{key}.json`.
    pub(super) fn get(&self, kind: Kind, key: &str) -> Result<Response<Body>, Reject> {
        let state = self.lock();
        let session = find(&state.sessions, kind, key)?;
        let rendered = self.render(session);
        drop(state);
        Ok(json(StatusCode::OK, &wrap(kind, rendered)))
    }

    /// `PUT sessions/{key}.json` / `webinar/{key}.json`: replaces the fields given.
    pub(super) fn update(
        &self,
        kind: Kind,
        key: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<Response<Body>, Reject> {
        // An unknown key wins over a bad body, as it would on a server that loads first.
        find(&self.lock().sessions, kind, key)?;
        let fields = session_fields(content_type, body)?;
        let input = SessionInput::from_json(&fields, self.zuid)?;

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
        if let Some(timezone) = input.timezone {
            session.timezone = timezone;
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
        let rendered = self.render(session);
        drop(state);
        Ok(json(StatusCode::OK, &wrap(kind, rendered)))
    }

    /// `DELETE sessions/{key}.json` / `webinar/{key}.json`.
    pub(super) fn delete(&self, kind: Kind, key: &str) -> Result<Response<Body>, Reject> {
        let mut state = self.lock();
        let key = find(&state.sessions, kind, key)?.key;
        state.sessions.remove(&key);
        drop(state);
        let mut response = Response::new(Full::new(Bytes::new()));
        *response.status_mut() = StatusCode::NO_CONTENT;
        Ok(response)
    }

    /// `GET participant/{key}.json`: one made-up attendance per invited email.
    pub(super) fn participants(
        &self,
        key: &str,
        query: Option<&str>,
    ) -> Result<Response<Body>, Reject> {
        let params = query_params(query);
        let (skip, take) = page(&params)?;
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
                    "email": p.email,
                    "memberId": p.id.to_string(),
                    "role": "attendee",
                    "source": "web",
                    "joinTime": join,
                    "leaveTime": end,
                    "duration": end - join,
                    "inAndOutTime": format!("{} - {}", clock_time(join), clock_time(end)),
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

    /// A meeting or webinar as Zoho renders it.
    pub(super) fn render(&self, s: &Session) -> Value {
        let end = s.end_ms();
        let participants: Vec<Value> = s
            .participants
            .iter()
            .map(|p| json!({ "id": p.id.to_string(), "email": p.email }))
            .collect();
        json!({
            "meetingKey": s.key.to_string(),
            "sysId": s.sys_id.to_string(),
            "topic": s.topic,
            "agenda": s.agenda,
            "presenter": s.presenter,
            "presenterEmail": self.user_email,
            "presenterName": self.user_name,
            "creatorZuid": self.zuid,
            "startTime": format!("{} UTC", zoho_time(s.start_ms)),
            "endTime": format!("{} UTC", zoho_time(end)),
            "startTimeMillis": s.start_ms,
            "endTimeMillis": end,
            "duration": s.duration_ms,
            "timezone": s.timezone,
            "joinLink": format!("{PUBLIC_ORIGIN}/join?key={}", s.key),
            "startLink": format!("{PUBLIC_ORIGIN}/meeting-start?key={}", s.key),
            "participants": participants,
            "isRecurring": false,
        })
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

    /// The JSON key that wraps bodies and answers: `session` or `webinar`.
    pub(super) fn wrapper(self) -> &'static str {
        match self {
            Kind::Meeting => "session",
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
    /// Validates the fields of a `session` object. Unknown fields are ignored.
    pub(super) fn from_json(fields: &Map<String, Value>, zuid: u64) -> Result<Self, Invalid> {
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
        if let Some(start) = present("startTime") {
            let start = start.as_str().and_then(parse_start_time);
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
        if let Some(timezone) = present("timezone") {
            match timezone.as_str().map(str::trim) {
                Some(tz) if is_timezone_name(tz) => input.timezone = Some(tz.to_owned()),
                _ => return Err(INVALID_TIMEZONE),
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

    /// Whether the list includes `s` at `now` (milliseconds since the epoch, UTC).
    pub(super) fn includes(self, s: &Session, now: i64) -> bool {
        match self {
            ListType::All => true,
            ListType::Past => s.end_ms() <= now,
            ListType::Upcoming => s.end_ms() > now,
            ListType::Today => s.start_ms.div_euclid(MS_PER_DAY) == now.div_euclid(MS_PER_DAY),
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

/// Wraps a value in `{"session": ..}` or `{"webinar": ..}`.
pub(super) fn wrap(kind: Kind, value: Value) -> Value {
    let mut map = Map::new();
    map.insert(kind.wrapper().to_owned(), value);
    Value::Object(map)
}

/// Reads the object under `"session"` (or `"webinar"`) from a create or edit body.
pub(super) fn session_fields(
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Map<String, Value>, Invalid> {
    let Value::Object(mut outer) = parse_payload(content_type, body)? else {
        return Err(MISSING_SESSION);
    };
    let inner = match outer.remove(Kind::Meeting.wrapper()) {
        Some(inner) => Some(inner),
        None => outer.remove(Kind::Webinar.wrapper()),
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

/// Whether `s` looks like a time-zone name (`Asia/Kolkata`, `UTC`, `Etc/GMT+5`). Names are
/// not checked against a time-zone database.
pub(super) fn is_timezone_name(s: &str) -> bool {
    s.len() <= MAX_TIMEZONE_LEN
        && s.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'-' | b'+' | b':'))
}

/// Reads `index` (1-based, default 1) and `count` (default and maximum
/// [`MAX_PAGE_SIZE`]) as `(records to skip, records to take)`.
pub(super) fn page(params: &HashMap<String, String>) -> Result<(usize, usize), Invalid> {
    let positive = |name: &str, invalid: Invalid| match params.get(name) {
        None => Ok(None),
        Some(value) => match parse_key(value.trim()) {
            Some(n) if n > 0 => Ok(Some(usize::try_from(n).unwrap_or(usize::MAX))),
            _ => Err(invalid),
        },
    };
    let index = positive("index", INVALID_INDEX)?.unwrap_or(1);
    let count = positive("count", INVALID_COUNT)?
        .unwrap_or(MAX_PAGE_SIZE)
        .min(MAX_PAGE_SIZE);
    Ok((index - 1, count))
}

/// A random 18-digit id, like Zoho's `sysId` and participant ids.
pub(super) fn random_id(rng: &mut impl Rng) -> u64 {
    rng.random_range(100_000_000_000_000_000..1_000_000_000_000_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::meeting::testing::*;

    #[tokio::test]
    async fn meeting_crud_answers_201_200_200_204_then_invalid_key() {
        let sb = Sandbox::start().await;
        let created = sb.create(meeting_body()).await;
        let key = created["meetingKey"].as_str().unwrap().to_owned();
        assert_eq!(key.len(), 10);
        assert!(key.bytes().all(|b| b.is_ascii_digit()));
        assert_eq!(created["topic"], "Monthly Marketing Meeting");
        assert_eq!(created["agenda"], "Points to get noted during meeting.");
        assert_eq!(created["presenter"], 800_000_001u64);
        assert_eq!(created["presenterEmail"], "sandbox.user@example.com");
        assert_eq!(created["startTime"], "Jun 19, 2030 07:00 PM UTC");
        assert_eq!(created["endTime"], "Jun 19, 2030 08:00 PM UTC");
        assert_eq!(created["startTimeMillis"], 1_908_126_000_000i64);
        assert_eq!(created["endTimeMillis"], 1_908_129_600_000i64);
        assert_eq!(created["duration"], 3_600_000);
        assert_eq!(created["timezone"], "Asia/Kolkata");
        assert_eq!(
            created["joinLink"],
            format!("https://meeting.zoho.com/join?key={key}")
        );
        assert!(created["startLink"].as_str().unwrap().ends_with(&key));
        assert!(created["sysId"].as_str().unwrap().parse::<u64>().is_ok());
        assert_eq!(created["participants"][0]["email"], "dummy@email.com");
        assert_eq!(created["participants"][1]["email"], "other@example.org");

        let item = sb.org(&format!("sessions/{key}.json"));
        let (status, body) = sb.call(Method::GET, &item, None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["session"], created);

        let edit = json!({ "session": {
            "topic": "Renamed",
            "startTime": "2030-06-20T09:30:00+05:30",
            "duration": "1800000",
            "participants": [{ "email": "OTHER@example.org" }, { "email": "new@example.com" }],
        }});
        let (status, body) = sb.call(Method::PUT, &item, Some(&edit)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let edited = &body["session"];
        assert_eq!(edited["meetingKey"], key.as_str());
        assert_eq!(edited["topic"], "Renamed");
        assert_eq!(edited["agenda"], created["agenda"]);
        assert_eq!(edited["startTime"], "Jun 20, 2030 04:00 AM UTC");
        assert_eq!(edited["duration"], 1_800_000);
        assert_eq!(edited["timezone"], "Asia/Kolkata");
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
        assert_eq!(body["session"][0], past);
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

        let (_, body) = sb
            .call(Method::GET, &format!("{list}?index=2&count=2"), None)
            .await;
        assert_eq!(topics(&body), ["today", "future 1"]);
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
        assert_eq!(body, json!({ "session": [] }));

        // Webinars are listed apart.
        let (_, body) = sb.call(Method::GET, &sb.org("webinar.json"), None).await;
        assert_eq!(body, json!({ "webinar": [] }));

        for (query, code) in [
            ("listtype=later", "INVALID_LISTTYPE"),
            ("index=0", "INVALID_INDEX"),
            ("index=-1", "INVALID_INDEX"),
            ("count=0", "INVALID_COUNT"),
            ("count=ten", "INVALID_COUNT"),
        ] {
            let (status, body) = sb.call(Method::GET, &format!("{list}?{query}"), None).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
            assert_eq!(body["error"]["errorCode"], code, "{query}");
        }
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
            .call(Method::GET, &format!("{list}?index=101"), None)
            .await;
        assert_eq!(body["session"].as_array().unwrap().len(), 5);
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
            assert_eq!(body["error"]["errorCode"], "INVALID_JSON");
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
            assert_eq!(answer["error"]["errorCode"], *code, "{body}");
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
            assert_eq!(body["error"]["errorCode"], "INVALID_JSON");
        }

        // A failed edit changes nothing.
        let created = sb.create(meeting_body()).await;
        let item = sb.org(&format!(
            "sessions/{}.json",
            created["meetingKey"].as_str().unwrap()
        ));
        let (status, body) = sb
            .call(
                Method::PUT,
                &item,
                Some(&json!({ "session": { "topic": "new", "duration": 3600 } })),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"]["errorCode"], "INVALID_DURATION");
        let (_, body) = sb.call(Method::GET, &item, None).await;
        assert_eq!(body["session"], created);
    }

    #[tokio::test]
    async fn webinar_crud_uses_the_webinar_key() {
        let sb = Sandbox::start().await;
        let collection = sb.org("webinar.json");
        let (status, body) = sb
            .call(
                Method::POST,
                &collection,
                Some(&json!({ "webinar": meeting_body() })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let created = body["webinar"].clone();
        let key = created["meetingKey"].as_str().unwrap().to_owned();
        assert_eq!(created["topic"], "Monthly Marketing Meeting");

        let (_, body) = sb.call(Method::GET, &collection, None).await;
        assert_eq!(body, json!({ "webinar": [created.clone()] }));
        let (_, body) = sb.call(Method::GET, &sb.org("sessions.json"), None).await;
        assert_eq!(body, json!({ "session": [] }));

        let item = sb.org(&format!("webinar/{key}.json"));
        let (status, body) = sb.call(Method::GET, &item, None).await;
        assert_eq!((status, &body["webinar"]), (StatusCode::OK, &created));
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
                Some(&json!({ "webinar": { "agenda": "" } })),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["webinar"]["agenda"], "");
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
        let key = created["meetingKey"].as_str().unwrap();
        let report = sb.org(&format!("participant/{key}.json"));
        let (status, body) = sb
            .call(Method::GET, &format!("{report}?index=1&count=10"), None)
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["participantsCount"], 2);
        let entries = body["participants"].as_array().unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0]["email"], "dummy@email.com");
        assert_eq!(entries[0]["joinTime"], 1_908_126_000_000i64);
        assert_eq!(entries[0]["leaveTime"], 1_908_129_600_000i64);
        assert_eq!(entries[0]["duration"], 3_600_000);
        assert_eq!(entries[0]["inAndOutTime"], "07:00 PM - 08:00 PM");
        assert_eq!(entries[1]["joinTime"], 1_908_126_060_000i64);
        assert_eq!(entries[1]["memberId"], created["participants"][1]["id"]);
        let (_, body) = sb
            .call(Method::GET, &format!("{report}?index=2&count=1"), None)
            .await;
        assert_eq!(body["participants"].as_array().unwrap().len(), 1);
        assert_eq!(body["participants"][0]["email"], "other@example.org");

        let lonely = sb
            .create(json!({ "topic": "alone", "startTime": "2030-01-01T00:00:00Z" }))
            .await;
        let path = sb.org(&format!(
            "participant/{}.json",
            lonely["meetingKey"].as_str().unwrap()
        ));
        let (_, body) = sb.call(Method::GET, &path, None).await;
        assert_eq!(body, json!({ "participantsCount": 0, "participants": [] }));

        let (status, body) = sb
            .call(Method::GET, &sb.org("participant/1.json"), None)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"]["key"], "INVALID_MEETING_KEY");
    }

    #[test]
    fn checks_emails_and_timezone_names() {
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
        for good in [
            "Asia/Kolkata",
            "UTC",
            "America/Argentina/Buenos_Aires",
            "Etc/GMT+5",
        ] {
            assert!(is_timezone_name(good), "{good}");
        }
        for bad in ["", "/Asia", "Asia Kolkata", "Asia/Kolkata\n", "5"] {
            assert!(!is_timezone_name(bad), "{bad}");
        }
    }
}
