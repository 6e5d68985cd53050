//! Recordings: every recording of the organisation (`recordings.json`), one meeting's
//! (`recordings/{meetingKey}.json`), and the files their links point at.
//!
//! **Which meetings have one.** A meeting (not a webinar) whose end time has passed has
//! exactly one recording, as long as the whole meeting, uploaded when the meeting ended;
//! a meeting still to come or under way has none. Nothing is random: a recording's id,
//! times and file are computed from the meeting, so the same meeting always answers the same.
//!
//! **Shape.** One meeting's recordings follow
//! <https://prewww.zoho.com/meeting/api-integration/recording-api/get-specific-recording.html>
//! (`{"recordings":[..]}`, times in milliseconds as strings, `uploadedTime`, `duration` and
//! `creatorZuid` numbers). The stored copy of that page stops inside `endTime`; each
//! recording also carries `meetingKey` (a string) and `topic`, which third-party clients of
//! the recording endpoints read. Zoho documents no page for the list: it answers
//! `{"recordings":[..],"meta":{"moreRecords":bool}}` as third-party clients read it, whose
//! entries add `startTimeinMs`, `durationInMins` and `status`.
//!
//! **Links.** Zoho's `downloadUrl` points at `download.zoho.com`, and the transcript and
//! summary links at `files.zoho.com`. The emulator's point at paths it serves itself, under
//! the API prefix: `{emulator}/meeting/api/v2/{zsoid}/recordings/{meetingKey}/download`
//! (`video/mp4`), `.../transcript` and `.../summary` (`text/plain`), checked like any API
//! request (token, `ZohoMeeting.recording.READ`, organisation). A client that sends these
//! paths through the proxy, with the proxy's origin in place of the emulator's, downloads
//! the file with the injected token. `playUrl` and `shareUrl` are browser pages on
//! `meeting.zoho.com`, as Zoho's.

use bytes::Bytes;
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};
use serde_json::{Map, Value, json};

use super::reject::Reject;
use super::sessions::{Kind, Session, count, find, index, sha256_hex};
use super::time::{now_ms, recording_time};
use super::{MEETING_API_PREFIX, Shared};
use crate::http::{Body, json, query_params, response};

/// Where Zoho's recording players live.
const PLAYER_ORIGIN: &str = "https://meeting.zoho.com";

/// The size of every recording's video file, in bytes.
const VIDEO_LEN: usize = 4096;

/// A file of a recording, named by the last path segment of its link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum RecordingFile {
    /// `download`: the video (`downloadUrl`).
    Video,
    /// `transcript`: the transcript (`transcriptionDownloadUrl`).
    Transcript,
    /// `summary`: the summary (`summaryDownloadUrl`).
    Summary,
}

// === impl RecordingFile ===

impl RecordingFile {
    /// The file a path segment names; `None` for any other segment.
    pub(super) fn parse(segment: &str) -> Option<Self> {
        match segment {
            "download" => Some(RecordingFile::Video),
            "transcript" => Some(RecordingFile::Transcript),
            "summary" => Some(RecordingFile::Summary),
            _ => None,
        }
    }

    /// The path segment.
    fn segment(self) -> &'static str {
        match self {
            RecordingFile::Video => "download",
            RecordingFile::Transcript => "transcript",
            RecordingFile::Summary => "summary",
        }
    }
}

// === impl Shared ===

impl Shared {
    /// `GET recordings.json`: every recording, newest first. `index` is the position of the
    /// first record, counted from 1 (`0` is the first too), as the one client seen paging
    /// this undocumented list sends it; `count` is the page size (default and maximum 100);
    /// `meta.moreRecords` says whether records follow the page.
    pub(super) fn recordings(&self, query: Option<&str>) -> Result<Response<Body>, Reject> {
        let params = query_params(query);
        let skip = index(&params)?.saturating_sub(1);
        let take = count(&params)?;
        let now = now_ms();
        let (page, more) = {
            let state = self.lock();
            let mut recorded: Vec<&Session> = state
                .sessions
                .values()
                .filter(|s| has_recording(s, now))
                .collect();
            recorded.sort_by_key(|s| std::cmp::Reverse((s.start_ms, s.key)));
            let more = recorded.len() > skip.saturating_add(take);
            let page: Vec<Value> = recorded
                .into_iter()
                .skip(skip)
                .take(take)
                .map(|s| self.render_recording(s, true))
                .collect();
            (page, more)
        };
        Ok(json(
            StatusCode::OK,
            &json!({ "recordings": page, "meta": { "moreRecords": more } }),
        ))
    }

    /// `GET recordings/{meetingKey}.json`: `{"recordings":[..]}`, with the meeting's one
    /// recording once it has ended and none before. An unknown key answers the documented
    /// `400 INVALID_MEETING_KEY`.
    pub(super) fn meeting_recordings(&self, key: &str) -> Result<Response<Body>, Reject> {
        let state = self.lock();
        let meeting = find(&state.sessions, Kind::Meeting, key)?;
        let recordings: Vec<Value> = if has_recording(meeting, now_ms()) {
            vec![self.render_recording(meeting, false)]
        } else {
            Vec::new()
        };
        drop(state);
        Ok(json(StatusCode::OK, &json!({ "recordings": recordings })))
    }

    /// `GET recordings/{meetingKey}/{download,transcript,summary}`: the file a recording's
    /// link points at. An unknown key answers `400 INVALID_MEETING_KEY`; a meeting without a
    /// recording (yet), `404`.
    pub(super) fn recording_file(
        &self,
        key: &str,
        file: RecordingFile,
    ) -> Result<Response<Body>, Reject> {
        let state = self.lock();
        let meeting = find(&state.sessions, Kind::Meeting, key)?;
        if !has_recording(meeting, now_ms()) {
            return Err(Reject::NotFound);
        }
        let (content_type, body) = match file {
            RecordingFile::Video => ("video/mp4", Bytes::from(video(meeting.key))),
            RecordingFile::Transcript => (
                "text/plain;charset=UTF-8",
                Bytes::from(format!(
                    "{} - {}\n{}: Welcome to \"{}\".\n",
                    recording_time(meeting.start_ms, &meeting.zone),
                    recording_time(meeting.end_ms(), &meeting.zone),
                    self.user_name,
                    meeting.topic
                )),
            ),
            RecordingFile::Summary => (
                "text/plain;charset=UTF-8",
                Bytes::from(format!(
                    "Summary of \"{}\": {} welcomed {} participant(s).\n",
                    meeting.topic,
                    self.user_name,
                    meeting.participants.len()
                )),
            ),
        };
        let name = resource_name(meeting);
        drop(state);
        let mut answer = response(StatusCode::OK, content_type, body);
        if file == RecordingFile::Video
            && let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\""))
        {
            answer
                .headers_mut()
                .insert(header::CONTENT_DISPOSITION, value);
        }
        Ok(answer)
    }

    /// A meeting's recording, with the fields of the get-specific-recording page (plus the
    /// list's when `listed`); see the [module docs](self).
    fn render_recording(&self, s: &Session, listed: bool) -> Value {
        let id = recording_id(self.zsoid, s.key);
        let end = s.end_ms();
        let file_url = |file: RecordingFile| {
            format!(
                "{}{MEETING_API_PREFIX}/{}/recordings/{}/{}",
                self.url,
                self.zsoid,
                s.key,
                file.segment()
            )
        };
        let player = format!(
            "{PLAYER_ORIGIN}/meeting/videoprv?recordingId={id}&x-meeting-org={}",
            self.zsoid
        );
        let mut out = Map::new();
        let mut put = |name: &str, value: Value| {
            out.insert(name.to_owned(), value);
        };
        put("erecordingId", json!(id));
        put("startTimeMillis", json!(s.start_ms.to_string()));
        put(
            "summaryDownloadUrl",
            json!(file_url(RecordingFile::Summary)),
        );
        put("uploadedTime", json!(end));
        put("creatorZuid", json!(self.zuid));
        put("downloadUrl", json!(file_url(RecordingFile::Video)));
        put(
            "transcriptionDownloadUrl",
            json!(file_url(RecordingFile::Transcript)),
        );
        put("isTranscriptGenerated", json!(true));
        put("isSummaryGenerated", json!(true));
        put("resourceName", json!(resource_name(s)));
        put("playUrl", json!(player));
        put("duration", json!(s.duration_ms));
        put("processingState", json!("UPLOADED"));
        put("endTimeMillis", json!(end.to_string()));
        put("fileSize", json!(VIDEO_LEN.to_string()));
        put("startTime", json!(recording_time(s.start_ms, &s.zone)));
        put("shareUrl", json!(player));
        put("endTime", json!(recording_time(end, &s.zone)));
        put("meetingKey", json!(s.key.to_string()));
        put("topic", json!(s.topic));
        if listed {
            put("startTimeinMs", json!(s.start_ms));
            put("durationInMins", json!(s.duration_ms.div_ceil(60_000)));
            put("status", json!("UPLOADED"));
        }
        Value::Object(out)
    }
}

// === helpers ===

/// Whether a meeting has its recording at `now`: a meeting that has ended.
fn has_recording(s: &Session, now: i64) -> bool {
    s.kind == Kind::Meeting && s.end_ms() <= now
}

/// The recording's `erecordingId`: 64 hex digits, as Zoho's, fixed for a meeting.
fn recording_id(zsoid: u64, key: u64) -> String {
    sha256_hex(&format!("zoho-meeting-proxy recording {zsoid} {key}"))
}

/// The recording's file name, made as the page's example is: `{meetingKey}_{id}_{start}.mp4`.
fn resource_name(s: &Session) -> String {
    format!("{}_{}_{}.mp4", s.key, s.sys_id, s.start_ms)
}

/// The video: an MP4 `ftyp` box, then a `free` box that names the meeting and pads the file
/// to [`VIDEO_LEN`] bytes. Not playable; always the same for a meeting.
fn video(key: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(VIDEO_LEN);
    out.extend_from_slice(&24u32.to_be_bytes());
    out.extend_from_slice(b"ftypmp42\0\0\0\0mp42isom");
    let free_len = u32::try_from(VIDEO_LEN - out.len()).unwrap_or(0);
    out.extend_from_slice(&free_len.to_be_bytes());
    out.extend_from_slice(b"free");
    out.extend_from_slice(format!("zoho-meeting-proxy sandbox recording {key}\n").as_bytes());
    out.resize(VIDEO_LEN, 0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meeting::testing::*;

    /// A meeting that ended in 2020, and one still to come.
    async fn past_and_future(sb: &Sandbox) -> (Value, Value) {
        let mut past = meeting_body();
        past["startTime"] = json!("2020-01-02T10:00:00+05:30");
        past["topic"] = json!("Retrospective");
        let past = sb.create(past).await;
        let future = sb.create(meeting_body()).await;
        (past, future)
    }

    #[tokio::test]
    async fn an_ended_meeting_has_one_recording_and_a_future_one_none() {
        let sb = Sandbox::start().await;
        let (past, future) = past_and_future(&sb).await;
        let key = key_of(&past);
        for prefix in ["/api/v2", "/meeting/api/v2"] {
            let path = format!("{prefix}/700000001/recordings/{key}.json");
            let (status, body) = sb.call(Method::GET, &path, None).await;
            assert_eq!(status, StatusCode::OK, "{path}");
            let recordings = body["recordings"].as_array().unwrap();
            assert_eq!(recordings.len(), 1);
            let rec = &recordings[0];
            assert_eq!(rec["meetingKey"], json!(key));
            assert_eq!(rec["topic"], "Retrospective");
            assert_eq!(rec["startTimeMillis"], "1577939400000");
            assert_eq!(rec["endTimeMillis"], "1577943000000");
            assert_eq!(rec["uploadedTime"], 1_577_943_000_000i64);
            assert_eq!(rec["duration"], 3_600_000);
            assert_eq!(rec["startTime"], "2020-01-02T10:00:00 IST");
            assert_eq!(rec["endTime"], "2020-01-02T11:00:00 IST");
            assert_eq!(rec["processingState"], "UPLOADED");
            assert_eq!(rec["fileSize"], VIDEO_LEN.to_string());
            assert_eq!(rec["creatorZuid"], 800_000_001u64);
            assert_eq!(rec["erecordingId"].as_str().unwrap().len(), 64);
            assert_eq!(
                rec["downloadUrl"],
                format!(
                    "{}/meeting/api/v2/700000001/recordings/{key}/download",
                    sb.meeting.url()
                )
            );
            // Deterministic: the same meeting answers the same.
            assert_eq!(sb.call(Method::GET, &path, None).await.1, body);
        }
        let (status, body) = sb
            .call(
                Method::GET,
                &sb.org(&format!("recordings/{}.json", key_of(&future))),
                None,
            )
            .await;
        assert_eq!(
            (status, body),
            (StatusCode::OK, json!({ "recordings": [] }))
        );
    }

    #[tokio::test]
    async fn unknown_keys_answer_invalid_meeting_key() {
        let sb = Sandbox::start().await;
        let (status, webinar) = sb
            .call(
                Method::POST,
                &sb.org("webinar.json"),
                Some(&json!({ "session": meeting_body() })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
        for key in [
            "1234567890".to_owned(),
            "abc".to_owned(),
            key_of(&webinar["session"]),
        ] {
            for path in [
                sb.org(&format!("recordings/{key}.json")),
                sb.org(&format!("recordings/{key}/download")),
            ] {
                let (status, body) = sb.call(Method::GET, &path, None).await;
                assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
                assert_eq!(body["error"]["key"], "INVALID_MEETING_KEY", "{path}");
                assert_eq!(body["error"]["errorCode"], 4000, "{path}");
            }
        }
    }

    #[tokio::test]
    async fn the_list_is_newest_first_and_pages_with_index_and_count() {
        let sb = Sandbox::start().await;
        let mut keys = Vec::new();
        for day in 1..=3 {
            let mut body = meeting_body();
            body["startTime"] = json!(format!("2021-03-0{day}T09:00:00Z"));
            keys.push(key_of(&sb.create(body).await));
        }
        sb.create(meeting_body()).await; // upcoming: no recording
        keys.reverse();
        let keys_of = |body: &Value| -> Vec<String> {
            body["recordings"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["meetingKey"].as_str().unwrap().to_owned())
                .collect()
        };
        let (status, body) = sb.call(Method::GET, &sb.org("recordings.json"), None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(keys_of(&body), keys);
        assert_eq!(body["meta"]["moreRecords"], false);
        assert_eq!(body["recordings"][0]["status"], "UPLOADED");
        assert_eq!(body["recordings"][0]["durationInMins"], 60);
        assert!(body["recordings"][0]["startTimeinMs"].is_i64());
        for (query, expected, more) in [
            ("count=2", &keys[..2], true),
            ("index=0&count=2", &keys[..2], true),
            ("index=1&count=2", &keys[..2], true),
            ("index=3&count=2", &keys[2..], false),
            ("index=9", &keys[..0], false),
        ] {
            let (status, body) = sb
                .call(
                    Method::GET,
                    &sb.org(&format!("recordings.json?{query}")),
                    None,
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{query}");
            assert_eq!(keys_of(&body), expected, "{query}");
            assert_eq!(body["meta"]["moreRecords"], more, "{query}");
        }
        let (status, body) = sb
            .call(Method::GET, &sb.org("recordings.json?count=x"), None)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"]["key"], "INVALID_COUNT");
    }

    #[tokio::test]
    async fn links_point_at_files_the_emulator_serves() {
        let sb = Sandbox::start().await;
        let (past, future) = past_and_future(&sb).await;
        let (_, body) = sb
            .call(
                Method::GET,
                &sb.org(&format!("recordings/{}.json", key_of(&past))),
                None,
            )
            .await;
        let rec = &body["recordings"][0];
        let get = |url: &str, token: &str| {
            sb.http
                .get(url)
                .header("authorization", format!("Zoho-oauthtoken {token}"))
                .send()
        };
        let resp = get(rec["downloadUrl"].as_str().unwrap(), &sb.token)
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["content-type"], "video/mp4");
        let disposition = resp.headers()["content-disposition"].to_str().unwrap();
        assert!(
            disposition.contains(rec["resourceName"].as_str().unwrap()),
            "{disposition}"
        );
        let video = resp.bytes().await.unwrap();
        assert_eq!(video.len().to_string(), rec["fileSize"].as_str().unwrap());
        assert_eq!(&video[4..8], b"ftyp");
        for name in ["transcriptionDownloadUrl", "summaryDownloadUrl"] {
            let resp = get(rec[name].as_str().unwrap(), &sb.token).await.unwrap();
            assert_eq!(resp.status(), StatusCode::OK, "{name}");
            let text = resp.text().await.unwrap();
            assert!(text.contains("Retrospective"), "{name}: {text}");
        }
        // The links are API paths: a token, the recording scope and the right org.
        let (meeting_only, _) = mint(&sb.accounts, &["ZohoMeeting.meeting.ALL"]).await;
        let resp = get(rec["downloadUrl"].as_str().unwrap(), &meeting_only)
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        let (status, body) = sb
            .call_as(
                Method::GET,
                &sb.org(&format!("recordings/{}/download", key_of(&past))),
                None,
                None,
            )
            .await;
        assert_eq!((status, body), (StatusCode::BAD_REQUEST, invalid_token()));
        // No recording yet: 404.
        let (status, _) = sb
            .call(
                Method::GET,
                &sb.org(&format!("recordings/{}/download", key_of(&future))),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn recordings_need_recording_read_and_the_right_org() {
        let sb = Sandbox::start().await;
        let (past, _) = past_and_future(&sb).await;
        let (meeting_all, _) = mint(&sb.accounts, &["ZohoMeeting.meeting.ALL"]).await;
        let (recording_read, _) = mint(&sb.accounts, &["ZohoMeeting.recording.READ"]).await;
        for path in [
            sb.org("recordings.json"),
            sb.org(&format!("recordings/{}.json", key_of(&past))),
        ] {
            let (status, body) = sb
                .call_as(Method::GET, &path, Some(&meeting_all), None)
                .await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
            assert_eq!(body["code"], "OAUTH_SCOPE_MISMATCH", "{path}");
            let (status, _) = sb
                .call_as(Method::GET, &path, Some(&recording_read), None)
                .await;
            assert_eq!(status, StatusCode::OK, "{path}");
        }
        for path in [
            "/meeting/api/v2/1/recordings.json".to_owned(),
            format!("/meeting/api/v2/2/recordings/{}.json", key_of(&past)),
        ] {
            let (status, body) = sb.call(Method::GET, &path, None).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
            assert_eq!(body["error"]["key"], "UNAUTHORIZED_USER", "{path}");
            assert_eq!(body["error"]["errorCode"], 3001, "{path}");
        }
    }
}
