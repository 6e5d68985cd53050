//! A headless Chromium, driven as a person would use it: Debian's `chromium`, started and
//! steered by its `chromedriver` over WebDriver (W3C WebDriver's JSON over HTTP, sent with
//! reqwest). Both are installed by [`tools::chromium`] when missing.
//!
//! Chromium runs with the flags this machine needs (no sandbox as root, no GPU, no
//! background connections to Google, which the closed network refuses) and a fresh profile.
//! Waits are generous (a minute): under a whole `cargo test` on two cores Chromium starts
//! slowly; alone, a login through it takes about a second.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

use super::tools;

/// What WebDriver calls an element reference's key.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A browser session; the browser and its driver stop when it is dropped.
pub struct Browser {
    http: reqwest::Client,
    /// `http://127.0.0.1:PORT/session/ID`.
    session: String,
    _driver: tokio::process::Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium with a fresh profile.
    pub async fn start() -> Self {
        tools::chromium();
        let port = free_port();
        let driver = tokio::process::Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver starts");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let (client, status_url) = (&http, &format!("{base}/status"));
        wait_until(
            "chromedriver is ready",
            Duration::from_secs(60),
            || async move {
                let status = client.get(status_url).send().await.ok()?;
                let body: Value = status.json().await.ok()?;
                body["value"]["ready"].as_bool().filter(|ready| *ready)
            },
        )
        .await;

        let profile = tempfile::tempdir().unwrap();
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1000,700",
        ]
        .map(str::to_owned)
        .into_iter()
        .chain([format!("--user-data-dir={}", profile.path().display())])
        .collect::<Vec<_>>();
        let capabilities = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": on_path("chromium"), "args": args },
        }}});
        let created = command(
            &http,
            reqwest::Method::POST,
            &format!("{base}/session"),
            &capabilities,
        )
        .await;
        let id = created["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("a session: {created}"));
        Self {
            session: format!("{base}/session/{id}"),
            http,
            _driver: driver,
            _profile: profile,
        }
    }

    /// Opens `url`, as typing it in the address bar does, and waits for the page to load.
    pub async fn open(&self, url: &str) {
        self.post("url", &json!({ "url": url })).await;
    }

    /// Clicks the element that the CSS `selector` finds.
    pub async fn click(&self, selector: &str) {
        let found = self
            .post(
                "element",
                &json!({ "using": "css selector", "value": selector }),
            )
            .await;
        let element = found[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("{selector} on the page: {found}"));
        self.post(&format!("element/{element}/click"), &json!({}))
            .await;
    }

    /// Waits until the page at a URL starting with `prefix` has loaded; returns that URL.
    pub async fn wait_for_page(&self, prefix: &str) -> String {
        wait_until(
            &format!("a loaded page at {prefix}"),
            Duration::from_secs(60),
            || async move {
                let url = self.eval("return location.href").await;
                let loaded = self.eval("return document.readyState").await == "complete";
                (loaded && url.starts_with(prefix)).then_some(url)
            },
        )
        .await
    }

    /// The page's title.
    pub async fn title(&self) -> String {
        self.eval("return document.title").await
    }

    /// The page's text, as a person reads it.
    pub async fn text(&self) -> String {
        self.eval("return document.body.innerText").await
    }

    /// Saves a PNG of the viewport to `path` (creating its folder) and prints where.
    pub async fn screenshot(&self, path: &Path) {
        let png = self.get("screenshot").await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().expect("base64"))
            .expect("a PNG in base64");
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, png).unwrap();
        eprintln!("screenshot: {}", path.display());
    }

    /// Runs `script` in the page and returns its result as text.
    async fn eval(&self, script: &str) -> String {
        let value = self
            .post("execute/sync", &json!({ "script": script, "args": [] }))
            .await;
        value
            .as_str()
            .map_or_else(|| value.to_string(), str::to_owned)
    }

    async fn post(&self, path: &str, body: &Value) -> Value {
        let url = format!("{}/{path}", self.session);
        command(&self.http, reqwest::Method::POST, &url, body).await
    }

    async fn get(&self, path: &str) -> Value {
        let url = format!("{}/{path}", self.session);
        command(&self.http, reqwest::Method::GET, &url, &Value::Null).await
    }
}

/// Sends one WebDriver command; returns its `value`, or panics with the driver's error.
async fn command(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    body: &Value,
) -> Value {
    let mut request = http.request(method.clone(), url);
    if !body.is_null() {
        request = request.json(body);
    }
    let response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("WebDriver {method} {url}: {e}"));
    let status = response.status();
    let mut answer: Value = response.json().await.expect("WebDriver answers JSON");
    assert!(
        status.is_success(),
        "WebDriver {method} {url}: {status} {answer}"
    );
    answer["value"].take()
}

/// Polls `probe` every 50 ms until it gives a value; panics after `limit`.
async fn wait_until<T, F, Fut>(what: &str, limit: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(start.elapsed() < limit, "waited {limit:?} for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A loopback port that was free a moment ago (chromedriver needs one named).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The full path of `program` on `PATH` (WebDriver wants Chromium's binary by path).
fn on_path(program: &str) -> PathBuf {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(program))
        .find(|path| path.is_file())
        .unwrap_or_else(|| panic!("{program} on PATH"))
}
