//! The end-to-end scenario of `tests/support/scenario.rs` against the sandbox, through the
//! real binary: `sandbox --emulator-only` is the fake Zoho, and `serve` runs in front of it
//! with the configuration the emulator prints, its token store switched to a file so that
//! the `token` command reads the token `serve` holds. `tests/live.rs` runs the same scenario
//! against the real Zoho.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

use crate::support::scenario::{self, Binary};

/// `sandbox --emulator-only`, running, and the `proxy.toml` it printed.
struct Emulator {
    child: tokio::process::Child,
    config: toml::Table,
}

impl Emulator {
    async fn start(binary: &Binary) -> Self {
        let mut cmd = binary.bare(&["sandbox", "--emulator-only"]);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
        let log = tokio::spawn(async move {
            let mut log = String::new();
            while let Ok(Some(line)) = stderr.next_line().await {
                log.push_str(&line);
                log.push('\n');
            }
            log
        });
        let mut printed = String::new();
        // The banner is a proxy.toml whose last line is the token store.
        while !printed.contains("\nstore = ") {
            let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
                .await
                .expect("the emulator prints its proxy.toml")
                .unwrap();
            let Some(line) = line else {
                let log = log.await.unwrap();
                panic!("the emulator exited after printing:\n{printed}\nits log:\n{log}");
            };
            printed.push_str(&line);
            printed.push('\n');
        }
        let config = printed.parse::<toml::Table>().unwrap();
        Self { child, config }
    }

    fn oauth(&self, key: &str) -> String {
        self.config["oauth"][key].as_str().unwrap().to_owned()
    }

    async fn stop(mut self) {
        let pid = self.child.id().unwrap().to_string();
        let status = std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap();
        assert!(status.success());
        let exit = tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .expect("the emulator exits on SIGINT")
            .unwrap();
        assert_eq!(exit.code(), Some(0));
    }
}

#[tokio::test]
async fn the_end_to_end_scenario_passes_against_the_sandbox() {
    let home = tempfile::tempdir().unwrap();
    let mut binary = Binary::new(home.path().join("serve.toml"));
    binary.clear_env = true;
    binary.cwd = Some(home.path().to_owned());
    binary.env = vec![
        ("HOME".into(), Some(home.path().display().to_string())),
        (
            "XDG_STATE_HOME".into(),
            Some(home.path().join("state").display().to_string()),
        ),
    ];
    let emulator = Emulator::start(&binary).await;
    let mut config = emulator.config.clone();
    let token_path = home.path().join("token.json");
    config["token"] = toml::Value::Table(toml::Table::from_iter([
        ("store".to_owned(), toml::Value::from("file")),
        (
            "path".to_owned(),
            toml::Value::from(token_path.display().to_string()),
        ),
    ]));
    std::fs::write(&binary.config, toml::to_string(&config).unwrap()).unwrap();

    let served = binary.serve().await.unwrap();
    binary.wait(&served).await.unwrap();
    let report = match scenario::run(&binary, &served).await {
        Ok(report) => report,
        Err(error) => panic!("{error}\nserve's log:\n{}", served.log()),
    };
    // The emulator's organisation (MeetingOptions::default), read through the proxy.
    assert_eq!(report.zsoid, "700000001");
    assert!(!report.meeting_key.is_empty());
    assert_ne!(report.revoked_fingerprint, report.new_fingerprint);
    // The file store holds the replacement, not the revoked token.
    let stored: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&token_path).unwrap()).unwrap();
    let stored = stored["access_token"]["token"].as_str().unwrap();
    assert_eq!(
        zoho_meeting_proxy::token::fingerprint(stored),
        report.new_fingerprint
    );

    let (code, log) = served.stop().await.unwrap();
    assert_eq!(code, Some(0), "{log}");
    // The replay, in the summary line (per-request lines are at debug by default).
    assert!(log.contains("; 1 replayed;"), "{log}");
    for secret in [
        emulator.oauth("client_secret"),
        emulator.oauth("refresh_token"),
        report.revoked_token.expose().clone(),
    ] {
        assert!(
            !log.contains(&secret),
            "a secret reached serve's log:\n{log}"
        );
    }
    emulator.stop().await;
}
