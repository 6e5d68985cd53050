//! A `sandbox` process as a user runs it: the real binary (`$ZOHO_PROXY_TEST_BIN` when set,
//! as CI sets it to the release build), on ephemeral ports, in an empty home.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

/// A `sandbox` process with `args`, on ephemeral ports, in an empty home.
pub struct Sandbox {
    child: tokio::process::Child,
    /// The empty home (and working and temporary directory) it runs in.
    pub home: tempfile::TempDir,
    /// The banner, up to the addresses (or the whole printed proxy.toml).
    pub printed: String,
    log: tokio::task::JoinHandle<String>,
}

/// The binary under test.
pub fn binary() -> String {
    std::env::var("ZOHO_PROXY_TEST_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_zoho-meeting-proxy").to_owned())
}

/// The binary, to run in `home` with nothing of this process's environment but `PATH`, and
/// its listeners on ephemeral ports.
pub fn command(home: &std::path::Path) -> tokio::process::Command {
    let mut c = std::process::Command::new(binary());
    c.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("TMPDIR", home)
        .current_dir(home)
        .env("ZOHO_PROXY_SERVER__LISTEN", "127.0.0.1:0")
        .env("ZOHO_PROXY_SERVER__ADMIN_LISTEN", "127.0.0.1:0");
    tokio::process::Command::from(c)
}

impl Sandbox {
    /// Starts it and reads stdout until `until` has been printed.
    pub async fn start(args: &[&str], until: &str) -> Self {
        Self::start_with(args, until, |_| {}).await
    }

    /// As [`Sandbox::start`], with the command changed by `adjust` first (an environment
    /// variable removed, say).
    pub async fn start_with(
        args: &[&str],
        until: &str,
        adjust: impl FnOnce(&mut tokio::process::Command),
    ) -> Self {
        let home = tempfile::tempdir().unwrap();
        let mut cmd = command(home.path());
        adjust(&mut cmd);
        cmd.arg("sandbox")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
        let stderr = child.stderr.take().unwrap();
        let log = tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            let mut log = String::new();
            while let Ok(Some(l)) = lines.next_line().await {
                log.push_str(&l);
                log.push('\n');
            }
            log
        });
        let mut printed = String::new();
        while !printed.contains(until) {
            let line = tokio::time::timeout(Duration::from_secs(30), out.next_line())
                .await
                .expect("sandbox prints its banner")
                .unwrap();
            let Some(line) = line else {
                let log = log.await.unwrap();
                panic!("sandbox exited after printing:\n{printed}\nits log:\n{log}");
            };
            printed.push_str(&line);
            printed.push('\n');
        }
        Self {
            child,
            home,
            printed,
            log,
        }
    }

    /// The address on the banner line starting with `name` (`proxy`, `admin`).
    pub fn addr(&self, name: &str) -> String {
        self.printed
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{name} ")))
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap()
            .to_owned()
    }

    /// SIGINT, a clean exit, and the log.
    pub async fn stop(mut self) -> String {
        let pid = self.child.id().unwrap().to_string();
        assert!(
            std::process::Command::new("kill")
                .args(["-INT", &pid])
                .status()
                .unwrap()
                .success()
        );
        let exit = tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .unwrap()
            .unwrap();
        let log = self.log.await.unwrap();
        assert_eq!(exit.code(), Some(0), "{log}");
        log
    }
}

/// Runs `script` with `bash -c`, as a user pastes lines into a shell.
pub async fn bash(script: &str) -> std::process::Output {
    tokio::process::Command::new("bash")
        .args(["-c", script])
        .output()
        .await
        .expect("bash runs")
}
