//! The end-to-end scenario of `tests/support/scenario.rs` against the sandbox, through the
//! real binary: `sandbox --emulator-only` is the fake Zoho, and `serve` runs in front of it
//! with the configuration the emulator prints, its token store switched to a file so that
//! the `token` command reads the token `serve` holds. `tests/live.rs` runs the same scenario
//! against the real Zoho.

use crate::support::sandbox::Sandbox;
use crate::support::scenario::{self, Binary};

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
    // The banner is a proxy.toml whose last line ends the `/webinar/` route.
    let emulator = Sandbox::start(&["--emulator-only"], "strip_prefix = true").await;
    let mut config: toml::Table = emulator.printed.parse().unwrap();
    let oauth = |key: &str| config["oauth"][key].as_str().unwrap().to_owned();
    let (client_secret, refresh_token) = (oauth("client_secret"), oauth("refresh_token"));
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
        client_secret,
        refresh_token,
        report.revoked_token.expose().clone(),
    ] {
        assert!(
            !log.contains(&secret),
            "a secret reached serve's log:\n{log}"
        );
    }
    emulator.stop().await;
}
