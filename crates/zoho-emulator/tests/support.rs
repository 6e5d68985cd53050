//! Shared test helpers: the emulators on ephemeral loopback ports, and a client for them.

use std::net::SocketAddr;

use zoho_emulator::accounts::{AccountsEmulator, AccountsOptions};
use zoho_emulator::meeting::{MeetingEmulator, MeetingOptions};
use zoho_emulator::webinar::WebinarEmulator;

/// A plain-HTTP accounts emulator on an ephemeral loopback port.
pub async fn emulator(opts: AccountsOptions) -> AccountsEmulator {
    AccountsEmulator::start(loopback(), opts)
        .await
        .expect("emulator starts")
}

/// A plain-HTTP Meeting emulator on an ephemeral loopback port that accepts the tokens
/// `accounts` mints.
pub async fn meeting_emulator(accounts: &AccountsEmulator) -> MeetingEmulator {
    MeetingEmulator::start(loopback(), MeetingOptions::default(), accounts.control())
        .await
        .expect("meeting emulator starts")
}

/// A plain-HTTP Zoho Webinar emulator on an ephemeral loopback port that accepts the tokens
/// `accounts` mints.
pub async fn webinar_emulator(accounts: &AccountsEmulator) -> WebinarEmulator {
    WebinarEmulator::start(loopback(), MeetingOptions::default(), accounts.control())
        .await
        .expect("webinar emulator starts")
}

/// 127.0.0.1 on a port the OS picks.
fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// A reqwest client that talks to the emulators directly, never through a system proxy. (The
/// Meeting endpoints never redirect, so it needs no redirect policy.)
pub fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}
