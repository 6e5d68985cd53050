//! The end-to-end scenario of `tests/support/scenario.rs` against the real Zoho.
//!
//! A no-op (it prints a notice and passes) unless `ZOHO_PROXY_LIVE_CONFIG` names a
//! `proxy.toml` with real credentials: a client id and secret, and a refresh token (in the
//! file, a `*_file`, the environment, or the token store `login` filled), with the scopes
//! `ZohoMeeting.manageOrg.READ` and `ZohoMeeting.meeting.READ`, `.CREATE`, `.UPDATE`,
//! `.DELETE`. Then it runs the binary's `serve -c $ZOHO_PROXY_LIVE_CONFIG` on ephemeral
//! loopback ports, waits for it with `wait`, and runs the scenario: it creates, edits and
//! deletes one meeting in the account, and revokes the access token the proxy holds to watch
//! it refresh and replay.
//!
//! ```sh
//! ZOHO_PROXY_LIVE_CONFIG=/path/proxy.toml cargo test --test live -- --nocapture
//! ```
//!
//! The `token` command and `serve` must share the token store for "the token the proxy
//! holds" to be true: a file store (the default) or redis is used as configured; a memory
//! store is replaced, for this run only, by a file store in a temporary directory. Nothing
//! printed carries a token or a secret: the scenario never formats one, and everything shown
//! on failure (its errors, `serve`'s log) is also scrubbed of the configured secrets.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    unreachable_pub
)]

#[path = "support/scenario.rs"]
mod scenario;

use std::path::{Path, PathBuf};

use scenario::{Binary, redact};

/// Names the configuration to check against the real Zoho.
const VAR: &str = "ZOHO_PROXY_LIVE_CONFIG";

#[tokio::test]
async fn the_end_to_end_scenario_passes_against_the_real_zoho() {
    let Some(config) = std::env::var_os(VAR).filter(|v| !v.is_empty()) else {
        println!(
            "live check skipped: {VAR} is not set. To run the end-to-end scenario against the \
             real Zoho (it creates and deletes one meeting in the account): \
             {VAR}=/path/proxy.toml cargo test --test live -- --nocapture"
        );
        return;
    };
    let config = PathBuf::from(config);
    let text = std::fs::read_to_string(&config)
        .unwrap_or_else(|e| panic!("{VAR}={}: {e}", config.display()));
    // A parse error would quote the file, secrets included: say where to look instead.
    let Ok(table) = text.parse::<toml::Table>() else {
        panic!(
            "{VAR}={} is not valid TOML; `zoho-meeting-proxy -c {0} check` says why",
            config.display()
        );
    };
    let secrets = configured_secrets(&table, &config);
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    let fail = |message: String| -> ! { panic!("{}", redact(&message, &secrets)) };

    let temp = tempfile::tempdir().unwrap();
    let mut binary = Binary::new(config.clone());
    // The test's own variables are not configuration keys: the binary would refuse them.
    binary.env = vec![
        (VAR.into(), None),
        ("ZOHO_PROXY_TEST_BIN".into(), None),
        ("RUST_LOG".into(), None),
    ];
    let store = std::env::var("ZOHO_PROXY_TOKEN__STORE")
        .ok()
        .or_else(|| {
            let store = table.get("token")?.get("store")?.as_str()?;
            Some(store.to_owned())
        })
        .unwrap_or_else(|| "file".to_owned());
    if store.trim().eq_ignore_ascii_case("memory") {
        println!(
            "live check: the configuration keeps tokens in memory; this run uses a file store in \
             a temporary directory instead, so that `token` reads the token `serve` holds"
        );
        binary.env.extend([
            (
                "ZOHO_PROXY_TOKEN__STORE".to_owned(),
                Some("file".to_owned()),
            ),
            (
                "ZOHO_PROXY_TOKEN__PATH".to_owned(),
                Some(temp.path().join("token.json").display().to_string()),
            ),
        ]);
    }

    let served = binary.serve().await.unwrap_or_else(|e| fail(e));
    println!(
        "live check: serve -c {} on proxy {}, admin {}",
        config.display(),
        served.proxy,
        served.admin
    );
    if let Err(e) = binary.wait(&served).await {
        fail(e);
    }
    let outcome = scenario::run(&binary, &served).await;
    let (code, log) = served.stop().await.unwrap_or_else(|e| fail(e));
    let report = match outcome {
        Ok(report) => report,
        Err(error) => fail(format!("{error}\nserve's log:\n{log}")),
    };
    if code != Some(0) {
        fail(format!("serve exited with {code:?}:\n{log}"));
    }
    assert!(
        !log.contains(report.revoked_token.expose().as_str()),
        "the access token reached serve's log"
    );
    println!(
        "live check passed: org {}, meeting {} created, edited, listed and deleted; the access \
         token {} was revoked, the proxy refreshed once (now {}) and replayed",
        report.zsoid, report.meeting_key, report.revoked_fingerprint, report.new_fingerprint
    );
}

/// The secrets the configuration names (in the file, in `*_file`s, in the environment), to
/// scrub from anything printed.
fn configured_secrets(table: &toml::Table, config: &Path) -> Vec<String> {
    let oauth = table.get("oauth");
    let value = |key: &str| {
        oauth
            .and_then(|o| o.get(key))
            .and_then(toml::Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let dir = config.parent().unwrap_or(Path::new("."));
    let mut secrets = Vec::new();
    for key in ["client_secret", "refresh_token"] {
        secrets.extend(value(key));
        let env = format!("ZOHO_PROXY_OAUTH__{}", key.to_ascii_uppercase());
        secrets.extend(std::env::var(env).ok().filter(|s| !s.trim().is_empty()));
        if let Some(file) = value(&format!("{key}_file")) {
            let contents = std::fs::read_to_string(dir.join(file)).unwrap_or_default();
            secrets.extend(Some(contents.trim().to_owned()).filter(|s| !s.is_empty()));
        }
    }
    secrets
}
