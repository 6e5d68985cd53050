//! `login` as a person does it, in a real browser: headless Chromium (tests/support/browser.rs)
//! opens the authorization URL that `login --no-browser` prints, the emulator's consent page
//! is submitted with a click, the redirect reaches login's loopback listener, and the page
//! the browser ends on says what happened. The consent page and the final page of each login
//! are kept as screenshots in `target/tmp/browser-login/` (`NAME-consent.png`,
//! `NAME-result.png`; `--nocapture` prints their paths) for a reviewer to look at.

use std::path::{Path, PathBuf};
use std::time::Duration;

use zoho_emulator::accounts::{AccountsControl, AccountsEmulator, AccountsOptions, Failure};

use crate::cli::{
    account_entry, finish, spawn_login, stored_in, stored_refresh_token_in, write_config,
};
use crate::support;
use crate::support::browser::Browser;

/// One way a person runs `login` in the browser.
struct Login {
    /// Names the screenshots.
    name: &'static str,
    /// `login`'s arguments beside `--no-browser`.
    args: &'static [&'static str],
    /// The token store file (in the home) the refresh token must reach; the other one of
    /// [`STORES`] must stay untouched.
    store: &'static str,
    /// What the "Logged in" page says about the account, if anything.
    page_says: &'static str,
}

/// The logins tested end to end: `default`'s, and a second account's (issue 23, item 8),
/// which [`start`]'s configuration names.
const LOGINS: &[Login] = &[
    Login {
        name: "login",
        args: &[],
        store: "token.json",
        page_says: "",
    },
    Login {
        name: "login-account",
        args: &["--account", "acme"],
        store: "token-acme.json",
        page_says: "for account acme",
    },
];

/// The token store files of [`start`]'s configuration: `default`'s and acme's.
const STORES: &[&str] = &["token.json", "token-acme.json"];

/// What the browser ended on, and how `login` ended.
struct Seen {
    code: i32,
    stderr: String,
    title: String,
    text: String,
    /// The refresh token in the store when the browser showed the page.
    stored_at_answer: Option<String>,
}

/// An emulator that asks for consent with a form, and a configuration for it in a fresh
/// home whose redirect URI is a loopback port the system picks, with a second account,
/// `acme`, on the same emulator.
async fn start() -> (AccountsEmulator, tempfile::TempDir) {
    let emu = support::emulator(AccountsOptions {
        consent_form: true,
        ..support::options(Duration::from_secs(3600))
    })
    .await;
    let home = tempfile::tempdir().unwrap();
    write_config(home.path(), &emu.url(), &account_entry("acme", &emu.url()));
    (emu, home)
}

/// Where the screenshot called `name` goes.
fn screenshot(name: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("browser-login")
        .join(format!("{name}.png"))
}

/// Runs `login --no-browser ARGS`, opens the URL it prints in `browser`, checks the consent
/// page, clicks `button` on it (`allow` or `deny`) and waits for login's answer page, of
/// which it takes the screenshot `shot`; `store` is the store file to look at then.
async fn log_in(
    browser: &Browser,
    home: &Path,
    (args, store): (&[&str], &str),
    button: &str,
    shot: &str,
) -> Seen {
    let (child, auth_url, _) = spawn_login(home, args, &[]).await;
    let redirect_uri = auth_url
        .query_pairs()
        .find(|(k, _)| k == "redirect_uri")
        .expect("a redirect_uri")
        .1
        .into_owned();

    browser.open(auth_url.as_str()).await;
    assert_eq!(browser.title().await, "Allow access?");
    let consent = browser.text().await;
    assert!(consent.contains("ZohoMeeting.meeting.READ"), "{consent}");
    browser
        .screenshot(&screenshot(&format!("{shot}-consent")))
        .await;

    browser.click(&format!("#{button}")).await;
    browser.wait_for_page(&redirect_uri).await;
    let seen = Seen {
        stored_at_answer: stored_refresh_token_in(home, store),
        title: browser.title().await,
        text: browser.text().await,
        code: 0,
        stderr: String::new(),
    };
    browser
        .screenshot(&screenshot(&format!("{shot}-result")))
        .await;
    let (code, stderr) = finish(child).await;
    Seen {
        code,
        stderr,
        ..seen
    }
}

/// The refresh token the emulator gave for the last code exchange.
fn minted_refresh_token(control: &AccountsControl) -> String {
    control
        .mints()
        .last()
        .and_then(|mint| mint.refresh_token.clone())
        .expect("a code exchange with a refresh token")
}

/// Allowing access ends on "Logged in", shown once the store holds the refresh token the
/// exchange gave.
#[tokio::test]
async fn a_login_in_the_browser_ends_on_logged_in_with_the_refresh_token_stored() {
    let browser = Browser::start().await;
    for login in LOGINS {
        let (emu, home) = start().await;
        let seen = log_in(
            &browser,
            home.path(),
            (login.args, login.store),
            "allow",
            login.name,
        )
        .await;
        let name = login.name;
        assert_eq!(seen.code, 0, "{name}: {}", seen.stderr);
        assert_eq!(seen.title, "Logged in", "{name}: {}", seen.text);
        assert!(seen.text.contains("stored it"), "{name}: {}", seen.text);
        assert!(seen.text.contains(login.page_says), "{name}: {}", seen.text);
        assert!(
            seen.stderr.contains("Logged in at"),
            "{name}: {}",
            seen.stderr
        );
        assert!(seen.stderr.contains(login.store), "{name}: {}", seen.stderr);
        let minted = minted_refresh_token(&emu.control());
        assert_eq!(seen.stored_at_answer.as_ref(), Some(&minted), "{name}");
        assert_eq!(
            stored_in(home.path(), login.store)["refresh_token"]["token"].as_str(),
            Some(minted.as_str()),
            "{name}"
        );
        // The login's data centre is recorded with it (a custom accounts server names
        // none: the configured one).
        assert_eq!(
            stored_in(home.path(), login.store)["refresh_token"]["data_center"],
            "us",
            "{name}"
        );
        for other in STORES.iter().filter(|s| **s != login.store) {
            assert!(!home.path().join(other).exists(), "{name} wrote {other}");
        }
    }
}

/// When the accounts server refuses the code, or the person denies access, the browser ends
/// on "Login failed" with the reason, and nothing is stored.
#[tokio::test]
async fn a_refused_code_or_a_denied_consent_ends_on_login_failed_with_nothing_stored() {
    let browser = Browser::start().await;
    // (the button clicked, the screenshots' name, the reason shown, the exchanges tried)
    let cases = [
        ("allow", "refused-code", "invalid_code", 1),
        ("deny", "denied", "access_denied", 0),
    ];
    for (button, shot, reason, exchanges) in cases {
        let (emu, home) = start().await;
        let control = emu.control();
        if exchanges > 0 {
            control.fail_next(1, Failure::InvalidCode);
        }
        let seen = log_in(&browser, home.path(), (&[], "token.json"), button, shot).await;
        assert_eq!(seen.code, 1, "{shot}: {}", seen.stderr);
        assert_eq!(seen.title, "Login failed", "{shot}: {}", seen.text);
        assert!(seen.text.contains(reason), "{shot}: {}", seen.text);
        assert!(seen.stderr.contains(reason), "{shot}: {}", seen.stderr);
        assert_eq!(control.token_requests(), exchanges, "{shot}");
        assert_eq!(control.mint_count(), 0, "{shot}");
        assert_eq!(seen.stored_at_answer, None, "{shot}");
        for store in STORES {
            assert!(!home.path().join(store).exists(), "{shot}: {store}");
        }
    }
}
