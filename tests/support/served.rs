//! A `serve` process run from the real binary, its log read while it runs.

use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::time::Instant;

use super::bin;

/// A `serve` process whose log can be read while it runs.
pub struct Served {
    child: tokio::process::Child,
    pub proxy: std::net::SocketAddr,
    pub admin: std::net::SocketAddr,
    log: Arc<Mutex<String>>,
    /// Reads the log until the process closes it.
    reader: tokio::task::JoinHandle<()>,
}

impl Served {
    /// Runs `serve` in `home` (its `proxy.toml`) and reads the bound addresses from the log.
    pub async fn start(home: &Path) -> Self {
        let mut cmd = tokio::process::Command::from(bin(home));
        cmd.stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let log = Arc::new(Mutex::new(String::new()));
        let (mut proxy, mut admin) = (None, None);
        let deadline = Instant::now() + Duration::from_secs(20);
        while proxy.is_none() || admin.is_none() {
            let line = tokio::time::timeout_at(deadline, lines.next_line())
                .await
                .unwrap_or_else(|_| panic!("no listening lines:\n{}", log.lock().unwrap()))
                .unwrap()
                .unwrap_or_else(|| panic!("serve exited:\n{}", log.lock().unwrap()));
            // `addr=…` (pretty) or `"addr":"…"` (json).
            let addr = || {
                let (start, end): (&str, &[char]) = if line.contains("addr=") {
                    ("addr=", &[' '])
                } else {
                    ("\"addr\":\"", &['"'])
                };
                let rest = &line[line.find(start).unwrap() + start.len()..];
                rest.split(end)
                    .next()
                    .unwrap()
                    .parse::<std::net::SocketAddr>()
                    .unwrap()
            };
            if line.contains("proxy listening") {
                proxy = Some(addr());
            } else if line.contains("admin listening") {
                admin = Some(addr());
            }
            push(&log, &line);
        }
        let sink = log.clone();
        let reader = tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                push(&sink, &line);
            }
        });
        Self {
            child,
            proxy: proxy.unwrap(),
            admin: admin.unwrap(),
            log,
            reader,
        }
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits until the log holds `count` lines containing all of `needles`.
    pub async fn wait_log(&self, needles: &[&str], count: usize) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let found = self
                .log()
                .lines()
                .filter(|l| needles.iter().all(|n| l.contains(n)))
                .count();
            if found >= count {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no log line with {needles:?} (wanted {count}):\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn signal(&self, signal: &str) {
        let pid = self.child.id().unwrap().to_string();
        let status = std::process::Command::new("kill")
            .args([signal, &pid])
            .status()
            .unwrap();
        assert!(status.success());
    }

    pub async fn admin(&self, path: &str) -> (u16, String) {
        let response = super::client()
            .get(format!("http://{}{path}", self.admin))
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    /// Waits until `/readyz` answers `status`.
    pub async fn wait_ready(&self, status: u16) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while self.admin("/readyz").await.0 != status {
            assert!(
                Instant::now() < deadline,
                "/readyz never answered {status}:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGTERM, a clean exit, and the whole log, checked for secrets.
    pub async fn stop(mut self, secrets: &[&str]) -> String {
        self.signal("-TERM");
        let status = tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .expect("exits after SIGTERM")
            .unwrap();
        // The last lines, written on the way out.
        let _ = tokio::time::timeout(Duration::from_secs(5), &mut self.reader).await;
        let log = self.log();
        assert_eq!(status.code(), Some(0), "{log}");
        for secret in secrets {
            assert!(!log.contains(secret), "a secret reached the log:\n{log}");
        }
        log
    }
}

fn push(log: &Mutex<String>, line: &str) {
    let mut log = log.lock().unwrap();
    log.push_str(line);
    log.push('\n');
}
