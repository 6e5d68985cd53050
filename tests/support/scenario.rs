//! The end-to-end scenario, written once and run two ways: against the sandbox in
//! `cargo test` (`tests/scenario.rs`) and against the real Zoho (`tests/live.rs`).
//!
//! Both runs start the real binary's `serve` on ephemeral ports ([`Binary::serve`]), wait
//! for it with the binary's own `wait`, and call it with a plain HTTP client, as a user's
//! program would ([`run`]):
//!
//! 1. `GET /api/v2/user.json`, for `userDetails.zsoid`;
//! 2. create a meeting (`POST /api/v2/{zsoid}/sessions.json`, `201`), with the body Zoho's
//!    create-a-meeting page documents
//!    (<https://www.zoho.com/meeting/api-integration/meeting-api/create-a-meeting.html>);
//! 3. get it, edit its topic (`PUT`) and check the edit, find it in
//!    `sessions.json?listtype=upcoming`, delete it (`204`);
//! 4. a forced token rejection: the access token the proxy holds (printed by the binary's
//!    `token` command, which reads the same token store; its fingerprint is checked against
//!    `/status`) is revoked at the accounts server (`POST /oauth/v2/token/revoke?token=…`),
//!    then `GET /api/v2/user.json` through the proxy still succeeds, because the proxy saw
//!    `INVALID_OAUTHTOKEN`, refreshed once and replayed; `/metrics` shows exactly one
//!    rejection, one replay and one successful refresh more, and `/status` a new token.
//!
//! `meetingKey` and `zsoid` are read whether Zoho sends them as JSON numbers or strings. If a
//! step fails after the meeting was created, the meeting is deleted before the error is
//! returned. Nothing here prints or returns a token in clear: errors carry statuses and
//! bodies of Meeting answers, never a URL with a token in it.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use zoho_meeting_proxy::secret::Secret;

/// How long any one HTTP call may take (Zoho, through the proxy, can be slow).
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// How the scenario runs the binary: which one, with which configuration file, and what it
/// changes in the environment of every command.
#[derive(Clone, Debug)]
pub struct Binary {
    /// The executable: `$ZOHO_PROXY_TEST_BIN` when set, else the one cargo built.
    pub path: PathBuf,
    /// Passed as `-c`.
    pub config: PathBuf,
    /// Start from an empty environment (only `PATH` kept) instead of the test's.
    pub clear_env: bool,
    /// Variables set (`Some`) or removed (`None`), in order, after that.
    pub env: Vec<(String, Option<String>)>,
    /// Working directory of every command, when set.
    pub cwd: Option<PathBuf>,
}

/// A running `serve` process, its bound addresses and its log so far.
pub struct Served {
    child: tokio::process::Child,
    /// The proxy listener.
    pub proxy: std::net::SocketAddr,
    /// The admin listener.
    pub admin: std::net::SocketAddr,
    log: Arc<Mutex<String>>,
    reader: tokio::task::JoinHandle<()>,
}

/// What a successful [`run`] saw.
#[derive(Debug)]
pub struct Report {
    /// The organisation, from `userDetails.zsoid`.
    pub zsoid: String,
    /// The key of the meeting that was created and deleted.
    pub meeting_key: String,
    /// The access token revoked at the accounts server (redacted in `Debug`).
    pub revoked_token: Secret<String>,
    /// Its fingerprint, as `/status` showed it before the revocation.
    pub revoked_fingerprint: String,
    /// The fingerprint of the token the proxy minted after the rejection.
    pub new_fingerprint: String,
}

/// The proxy's counters that the forced rejection moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Counters {
    rejections: u64,
    replays: u64,
    refreshes_ok: u64,
}

// === impl Binary ===

impl Binary {
    /// The binary under test (`$ZOHO_PROXY_TEST_BIN`, else cargo's) with `config`, in the
    /// test's environment.
    pub fn new(config: PathBuf) -> Self {
        let path = std::env::var_os("ZOHO_PROXY_TEST_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_zoho-meeting-proxy")));
        Self {
            path,
            config,
            clear_env: false,
            env: Vec::new(),
            cwd: None,
        }
    }

    /// A command running the binary with `-c <config>` and `args`.
    pub fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = self.bare(&[]);
        cmd.arg("-c").arg(&self.config).args(args);
        cmd
    }

    /// A command running the binary with `args` only (no `-c`), in the same environment.
    pub fn bare(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(&self.path);
        if self.clear_env {
            cmd.env_clear()
                .env("PATH", std::env::var_os("PATH").unwrap_or_default());
        }
        for (key, value) in &self.env {
            match value {
                Some(value) => cmd.env(key, value),
                None => cmd.env_remove(key),
            };
        }
        if let Some(cwd) = &self.cwd {
            cmd.current_dir(cwd);
        }
        cmd.args(args).stdin(Stdio::null()).kill_on_drop(true);
        cmd
    }

    /// Starts `serve` on ephemeral loopback ports (`ZOHO_PROXY_SERVER__LISTEN` and
    /// `ZOHO_PROXY_SERVER__ADMIN_LISTEN` = `127.0.0.1:0`, logging at `info` to standard
    /// error) and reads the bound addresses from its log.
    ///
    /// # Errors
    /// When it cannot start, exits, or logs no addresses within 30 s.
    pub async fn serve(&self) -> Result<Served, String> {
        let mut cmd = self.command(&["serve"]);
        cmd.env("ZOHO_PROXY_SERVER__LISTEN", "127.0.0.1:0")
            .env("ZOHO_PROXY_SERVER__ADMIN_LISTEN", "127.0.0.1:0")
            .env("ZOHO_PROXY_LOG__LEVEL", "info")
            .env("ZOHO_PROXY_LOG__OUTPUT", "stderr")
            .env("ZOHO_PROXY_LOG__FORMAT", "pretty")
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", self.path.display()))?;
        let stderr = child
            .stderr
            .take()
            .ok_or_else(|| "serve has no standard error".to_owned())?;
        let mut lines = BufReader::new(stderr).lines();
        let log = Arc::new(Mutex::new(String::new()));
        let (mut proxy, mut admin) = (None, None);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while proxy.is_none() || admin.is_none() {
            let line = match tokio::time::timeout_at(deadline, lines.next_line()).await {
                Ok(Ok(Some(line))) => line,
                Ok(Ok(None) | Err(_)) => {
                    return Err(format!("serve exited before listening:\n{}", text(&log)));
                }
                Err(_) => return Err(format!("serve did not listen within 30 s:\n{}", text(&log))),
            };
            if line.contains("proxy listening") {
                proxy = logged_addr(&line);
            } else if line.contains("admin listening") {
                admin = logged_addr(&line);
            }
            push(&log, &line);
        }
        let sink = log.clone();
        let reader = tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                push(&sink, &line);
            }
        });
        match (proxy, admin) {
            (Some(proxy), Some(admin)) => Ok(Served {
                child,
                proxy,
                admin,
                log,
                reader,
            }),
            _ => Err(format!("no listening addresses in:\n{}", text(&log))),
        }
    }

    /// Runs `wait` against `served`'s admin listener until the proxy is ready.
    ///
    /// # Errors
    /// When `wait` gives up (it holds no token after 60 s) or cannot run.
    pub async fn wait(&self, served: &Served) -> Result<(), String> {
        let output = self
            .command(&["wait", "--timeout", "60s"])
            .env("ZOHO_PROXY_SERVER__ADMIN_LISTEN", served.admin.to_string())
            .output()
            .await
            .map_err(|e| format!("cannot run wait: {e}"))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(format!(
                "wait failed ({}): {}\nserve's log:\n{}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim(),
                served.log()
            ))
        }
    }

    /// The access token `token` prints: with a shared token store, the one `serve` holds.
    async fn token(&self) -> Result<Secret<String>, String> {
        let output = self
            .command(&["token"])
            .output()
            .await
            .map_err(|e| format!("cannot run token: {e}"))?;
        let stdout = String::from_utf8(output.stdout).unwrap_or_default();
        let token = Secret::new(stdout.trim().to_owned());
        if !output.status.success() || token.is_empty() {
            // Its standard error never carries the token (see `tests/security.rs`).
            return Err(format!(
                "token failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        Ok(token)
    }
}

// === impl Served ===

impl Served {
    /// The log so far.
    pub fn log(&self) -> String {
        text(&self.log)
    }

    /// `http://{proxy}{path}`.
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.proxy)
    }

    /// SIGTERM, then the exit code (`None` when killed by a signal) and the whole log.
    ///
    /// # Errors
    /// When the process cannot be signalled or does not exit within 30 s.
    pub async fn stop(mut self) -> Result<(Option<i32>, String), String> {
        let pid = self
            .child
            .id()
            .ok_or_else(|| "serve already exited".to_owned())?;
        let killed = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .map_err(|e| format!("cannot run kill: {e}"))?;
        if !killed.success() {
            return Err(format!("kill -TERM {pid} failed"));
        }
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .map_err(|_| "serve did not exit within 30 s of SIGTERM".to_owned())?
            .map_err(|e| format!("cannot wait for serve: {e}"))?;
        // The reader ends when the process closes its standard error.
        let _ = tokio::time::timeout(Duration::from_secs(5), &mut self.reader).await;
        Ok((status.code(), self.log()))
    }
}

// === the scenario ===

/// Runs the scenario through `served`, reading the proxy's token with `binary`'s `token`.
/// Steps are announced on standard output (never a token).
///
/// # Errors
/// The first step that did not go as Zoho documents, in words, with the status and body of
/// the answer. A meeting created before the failure has been deleted again (or the error
/// says that it could not be).
pub async fn run(binary: &Binary, served: &Served) -> Result<Report, String> {
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(CALL_TIMEOUT)
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))?;

    step("GET /api/v2/user.json");
    let user = call(
        &http,
        served,
        reqwest::Method::GET,
        "/api/v2/user.json",
        None,
    )
    .await?;
    expect_status(&user, 200, "GET /api/v2/user.json")?;
    let zsoid = key_text(&user.json["userDetails"]["zsoid"])
        .ok_or_else(|| format!("no userDetails.zsoid in {}", user.body))?;

    let mut created = None;
    let outcome = meeting_steps(&http, served, &zsoid, &mut created).await;
    if let Some(key) = created {
        // A step failed between create and delete: do not leave the meeting behind.
        let path = format!("/api/v2/{zsoid}/sessions/{key}.json");
        let cleanup = call(&http, served, reqwest::Method::DELETE, &path, None).await;
        let cleaned = matches!(&cleanup, Ok(answer) if answer.status == 204);
        let error = outcome.err().unwrap_or_default();
        return Err(if cleaned {
            format!("{error}\n(the meeting {key} was deleted again)")
        } else {
            format!("{error}\n(the meeting {key} could NOT be deleted: delete it by hand)")
        });
    }
    let meeting_key = outcome?;

    let (revoked_token, revoked_fingerprint, new_fingerprint) =
        forced_rejection(&http, binary, served).await?;
    Ok(Report {
        zsoid,
        meeting_key,
        revoked_token,
        revoked_fingerprint,
        new_fingerprint,
    })
}

/// Create, get, edit, list and delete one meeting. `created` holds its key while it exists.
async fn meeting_steps(
    http: &reqwest::Client,
    served: &Served,
    zsoid: &str,
    created: &mut Option<String>,
) -> Result<String, String> {
    use reqwest::Method;

    let start_time = zoho_start_time(SystemTime::now());
    let stamp = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let topic = format!("zoho-meeting-proxy end-to-end check {stamp}");
    let edited_topic = format!("{topic} (edited)");
    let session = |topic: &str| {
        json!({
            "session": {
                "topic": topic,
                "agenda": "Created and deleted at once by zoho-meeting-proxy's end-to-end test.",
                "startTime": start_time,
                "duration": 3_600_000,
                "timezone": "Asia/Calcutta",
                "participants": [{ "email": "end-to-end-check@example.com" }],
            }
        })
    };

    step(&format!(
        "POST /api/v2/{zsoid}/sessions.json ({start_time} Asia/Calcutta)"
    ));
    let path = format!("/api/v2/{zsoid}/sessions.json");
    let answer = call(http, served, Method::POST, &path, Some(session(&topic))).await?;
    expect_status(&answer, 201, "create")?;
    let key = key_text(&answer.json["session"]["meetingKey"])
        .ok_or_else(|| format!("create answered no session.meetingKey: {}", answer.body))?;
    *created = Some(key.clone());
    expect_topic(&answer.json, &topic, "create")?;

    let one = format!("/api/v2/{zsoid}/sessions/{key}.json");
    step(&format!("GET {one}"));
    let answer = call(http, served, Method::GET, &one, None).await?;
    expect_status(&answer, 200, "get")?;
    expect_topic(&answer.json, &topic, "get")?;
    if key_text(&answer.json["session"]["meetingKey"]).as_deref() != Some(key.as_str()) {
        return Err(format!("get answered another meeting: {}", answer.body));
    }
    let answered_start = answer.json["session"]["startTime"]
        .as_str()
        .unwrap_or_default();
    if !answered_start.starts_with(&start_time) {
        return Err(format!(
            "get answered startTime {answered_start:?}, not {start_time:?} (+ a zone)"
        ));
    }

    step(&format!("PUT {one} (new topic)"));
    let answer = call(
        http,
        served,
        Method::PUT,
        &one,
        Some(session(&edited_topic)),
    )
    .await?;
    expect_status(&answer, 200, "edit")?;
    expect_topic(&answer.json, &edited_topic, "edit")?;
    let answer = call(http, served, Method::GET, &one, None).await?;
    expect_status(&answer, 200, "get after edit")?;
    expect_topic(&answer.json, &edited_topic, "get after edit")?;

    let list = format!("/api/v2/{zsoid}/sessions.json?listtype=upcoming");
    step(&format!("GET {list}"));
    let answer = call(http, served, Method::GET, &list, None).await?;
    expect_status(&answer, 200, "list")?;
    let listed = answer.json["session"]
        .as_array()
        .ok_or_else(|| format!("list answered no session array: {}", answer.body))?;
    if !listed
        .iter()
        .any(|s| key_text(&s["meetingKey"]).as_deref() == Some(key.as_str()))
    {
        return Err(format!(
            "meeting {key} is not among the {} upcoming meetings listed",
            listed.len()
        ));
    }

    step(&format!("DELETE {one}"));
    let answer = call(http, served, Method::DELETE, &one, None).await?;
    expect_status(&answer, 204, "delete")?;
    *created = None;
    Ok(key)
}

/// Revokes the proxy's access token at the accounts server and checks that the proxy
/// refreshes once and replays. Returns the revoked token and the old and new fingerprints.
async fn forced_rejection(
    http: &reqwest::Client,
    binary: &Binary,
    served: &Served,
) -> Result<(Secret<String>, String, String), String> {
    step("forced token rejection: read the proxy's token with `token`, revoke it at Zoho");
    let status = admin_json(http, served, "/status").await?;
    let held = status["token_fingerprint"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let accounts = status["accounts_server"]
        .as_str()
        .ok_or_else(|| format!("/status has no accounts_server: {status}"))?
        .trim_end_matches('/')
        .to_owned();
    let before = counters(http, served).await?;
    let token = binary.token().await?;
    let printed = zoho_meeting_proxy::token::fingerprint(token.expose());
    if printed != held {
        return Err(format!(
            "`token` printed a token with fingerprint {printed}, but the proxy holds {held}: \
             they do not share a token store"
        ));
    }

    // Zoho's documented revoke call; the token goes in the query string, as documented, so
    // reqwest errors are reported without their URL.
    let revoke = reqwest::Client::builder()
        .timeout(CALL_TIMEOUT)
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))?
        .post(format!("{accounts}/oauth/v2/token/revoke"))
        .query(&[("token", token.expose().as_str())])
        .send()
        .await
        .map_err(|e| format!("revoke at {accounts}: {}", e.without_url()))?;
    let revoke_status = revoke.status().as_u16();
    let revoke_body = revoke
        .text()
        .await
        .map_err(|e| format!("revoke at {accounts}: {}", e.without_url()))?;
    let revoke_json: Value = serde_json::from_str(&revoke_body).unwrap_or(Value::Null);
    if revoke_status != 200 || revoke_json["status"] != "success" {
        return Err(format!(
            "revoking the access token at {accounts} answered {revoke_status}: {}",
            redact(&revoke_body, &[token.expose()])
        ));
    }

    step("GET /api/v2/user.json with the revoked token: the proxy refreshes and replays");
    let answer = call(
        http,
        served,
        reqwest::Method::GET,
        "/api/v2/user.json",
        None,
    )
    .await?;
    expect_status(&answer, 200, "GET /api/v2/user.json after the revocation")?;
    let after = counters(http, served).await?;
    let expected = Counters {
        rejections: before.rejections + 1,
        replays: before.replays + 1,
        refreshes_ok: before.refreshes_ok + 1,
    };
    if after.rejections == before.rejections {
        return Err(
            "the accounts server confirmed the revocation, but the Meeting API still accepted \
             the revoked token: the proxy saw no rejection to refresh and replay"
                .to_owned(),
        );
    }
    if after != expected {
        return Err(format!(
            "after the revocation /metrics shows {after:?}, expected {expected:?} (before: {before:?})"
        ));
    }
    let status = admin_json(http, served, "/status").await?;
    let new = status["token_fingerprint"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    if new.is_empty() || new == held {
        return Err(format!(
            "/status still shows token {held:?} after the refresh (now {new:?})"
        ));
    }
    Ok((token, held, new))
}

// === helpers ===

/// One answer from the proxy: status, body text and the body as JSON (`Null` if it is not).
struct Answer {
    status: u16,
    body: String,
    json: Value,
}

/// Sends one request through the proxy (no `Authorization`: the proxy adds it).
async fn call(
    http: &reqwest::Client,
    served: &Served,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Result<Answer, String> {
    let mut request = http.request(method.clone(), served.url(path));
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json;charset=UTF-8")
            .body(body.to_string());
    }
    let response = request
        .send()
        .await
        .map_err(|e| format!("{method} {path} through the proxy: {e}"))?;
    let status = response.status().as_u16();
    let body = response
        .text()
        .await
        .map_err(|e| format!("{method} {path} through the proxy: {e}"))?;
    let json = serde_json::from_str(&body).unwrap_or(Value::Null);
    Ok(Answer { status, body, json })
}

fn expect_status(answer: &Answer, status: u16, what: &str) -> Result<(), String> {
    if answer.status == status {
        Ok(())
    } else {
        Err(format!(
            "{what} answered {} instead of {status}: {}",
            answer.status,
            clip(&answer.body)
        ))
    }
}

fn expect_topic(json: &Value, topic: &str, what: &str) -> Result<(), String> {
    let answered = &json["session"]["topic"];
    if answered == topic {
        Ok(())
    } else {
        Err(format!("{what} answered topic {answered}, not {topic:?}"))
    }
}

/// A key (`meetingKey`, `zsoid`) as text, whether Zoho sent a JSON number or a string.
fn key_text(value: &Value) -> Option<String> {
    match value {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

/// A JSON document from the admin listener.
async fn admin_json(http: &reqwest::Client, served: &Served, path: &str) -> Result<Value, String> {
    let response = http
        .get(format!("http://{}{path}", served.admin))
        .send()
        .await
        .map_err(|e| format!("admin {path}: {e}"))?;
    response
        .json()
        .await
        .map_err(|e| format!("admin {path} is not JSON: {e}"))
}

/// The rejection, replay and successful-refresh counters from `/metrics`.
async fn counters(http: &reqwest::Client, served: &Served) -> Result<Counters, String> {
    let text = http
        .get(format!("http://{}/metrics", served.admin))
        .send()
        .await
        .map_err(|e| format!("admin /metrics: {e}"))?
        .text()
        .await
        .map_err(|e| format!("admin /metrics: {e}"))?;
    let find = |suffix: &str, labels: &str| -> Result<u64, String> {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .find_map(|line| {
                let (series, value) = line.rsplit_once(' ')?;
                let (name, rest) = series.split_once('{').unwrap_or((series, ""));
                (name.ends_with(suffix) && rest.contains(labels))
                    .then(|| value.trim().parse::<f64>().ok())
                    .flatten()
            })
            .map(|v| v as u64)
            .ok_or_else(|| format!("no {suffix}{{{labels}}} in /metrics:\n{text}"))
    };
    // The sandbox's one account; series of others (`account="-"`: refusals) may come first.
    let default = "account=\"default\"";
    Ok(Counters {
        rejections: find("token_rejections_total", default)?,
        replays: find("replays_total", default)?,
        refreshes_ok: find(
            "token_refreshes_total",
            "account=\"default\",outcome=\"ok\"",
        )?,
    })
}

/// A start time one day from `now`, in Zoho's format (`Jun 19, 2030 07:00 PM`), as a
/// wall-clock time in Asia/Calcutta (UTC+05:30, no daylight saving), on a 5-minute mark.
pub fn zoho_start_time(now: SystemTime) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let ist = now + Duration::from_secs(24 * 3600 + 5 * 3600 + 30 * 60);
    // `2030-06-19T19:05:42Z`
    let iso = humantime::format_rfc3339_seconds(ist).to_string();
    let field = |range: std::ops::Range<usize>| -> u32 {
        iso.get(range).and_then(|s| s.parse().ok()).unwrap_or(0)
    };
    let (year, month, day) = (field(0..4), field(5..7), field(8..10));
    let (hour, minute) = (field(11..13), field(14..16) / 5 * 5);
    let month = MONTHS
        .get(usize::try_from(month).unwrap_or(1).saturating_sub(1))
        .copied()
        .unwrap_or("Jan");
    let half = if hour < 12 { "AM" } else { "PM" };
    let hour12 = if hour % 12 == 0 { 12 } else { hour % 12 };
    format!("{month} {day:02}, {year} {hour12:02}:{minute:02} {half}")
}

/// Replaces every occurrence of `secrets` in `text` by `[redacted]`.
pub fn redact(text: &str, secrets: &[&str]) -> String {
    secrets
        .iter()
        .filter(|s| !s.is_empty())
        .fold(text.to_owned(), |t, s| t.replace(s, "[redacted]"))
}

/// A body cut to a readable length for an error message.
fn clip(body: &str) -> String {
    const MAX: usize = 2000;
    match body.char_indices().nth(MAX) {
        Some((at, _)) => format!("{}…", &body[..at]),
        None => body.to_owned(),
    }
}

/// The address in a `… listening addr=127.0.0.1:1234 …` (pretty) or `"addr":"…"` (JSON) line.
fn logged_addr(line: &str) -> Option<std::net::SocketAddr> {
    let (start, end): (&str, char) = if line.contains("addr=") {
        ("addr=", ' ')
    } else {
        ("\"addr\":\"", '"')
    };
    let rest = &line[line.find(start)? + start.len()..];
    rest.split(end).next()?.parse().ok()
}

fn step(what: &str) {
    println!("scenario: {what}");
}

fn push(log: &Mutex<String>, line: &str) {
    let mut log = log
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    log.push_str(line);
    log.push('\n');
}

fn text(log: &Mutex<String>) -> String {
    log.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}
