//! `sandbox`: the whole product against the built-in Zoho emulator, no account needed.
//!
//! Starts the accounts and Meeting emulators on loopback ports, then the real proxy — the
//! same code path as `serve`, with a memory token store — wired to them, and prints where
//! everything listens and three curl commands to try. `--emulator-only` serves just the fake
//! Zoho and prints a matching `proxy.toml`, for pointing your own `serve` (or your own
//! integration tests) at it.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;

use super::RunError;
use super::serve::until_signal;
use crate::app::{self, token_manager};
use crate::config::{Config, Listen, StoreConfig};
use crate::sandbox::accounts::{AccountsEmulator, AccountsOptions};
use crate::sandbox::meeting::{MeetingEmulator, MeetingOptions};
use crate::secret::Secret;
use crate::token::store::{MemoryStore, TokenStore};

/// Every scope the emulator knows, granted to the sandbox's refresh token.
const SCOPES: [&str; 9] = [
    "ZohoMeeting.manageOrg.READ",
    "ZohoMeeting.meeting.READ",
    "ZohoMeeting.meeting.CREATE",
    "ZohoMeeting.meeting.UPDATE",
    "ZohoMeeting.meeting.DELETE",
    "ZohoMeeting.webinar.READ",
    "ZohoMeeting.webinar.CREATE",
    "ZohoMeeting.webinar.UPDATE",
    "ZohoMeeting.webinar.DELETE",
];

/// `sandbox` options.
#[derive(Debug, Args)]
pub struct SandboxArgs {
    /// Lifetime of the emulator's access tokens (Zoho's is 1h); shorten it to watch
    /// refreshes happen. Below about 4 minutes Zoho's 10-mints-per-10-minutes budget runs
    /// out, as it would with Zoho.
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    pub token_lifetime: Duration,
    /// Delay added to every Meeting API answer.
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    pub latency: Duration,
    /// Share of Meeting API requests answered with HTTP 500 (0.0 to 1.0).
    #[arg(long, default_value_t = 0.0, value_parser = parse_rate)]
    pub failure_rate: f64,
    /// Start with the token endpoint down (HTTP 503), to see the proxy back off.
    #[arg(long)]
    pub token_outage: bool,
    /// Reject this many Meeting API requests as if their token were invalid, to see the
    /// proxy refresh and replay.
    #[arg(long, default_value_t = 0)]
    pub reject_tokens: u32,
    /// Serve only the emulator and print a matching proxy.toml.
    #[arg(long)]
    pub emulator_only: bool,
    /// Where the emulated accounts server listens.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub accounts_listen: SocketAddr,
    /// Where the emulated Meeting API listens.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub meeting_listen: SocketAddr,
}

/// Runs `sandbox`.
pub(super) async fn run(config: &Config, args: SandboxArgs) -> Result<(), RunError> {
    let accounts_options = AccountsOptions {
        token_lifetime: args.token_lifetime,
        ..AccountsOptions::default()
    };
    let (client_id, client_secret) = (
        accounts_options.client_id.clone(),
        accounts_options.client_secret.clone(),
    );
    let accounts = AccountsEmulator::start(args.accounts_listen, accounts_options)
        .await
        .map_err(|source| RunError::Io {
            what: format!(
                "cannot start the accounts emulator on {}",
                args.accounts_listen
            ),
            source,
        })?;
    let meeting_options = MeetingOptions {
        latency: args.latency,
        failure_rate: args.failure_rate,
        ..MeetingOptions::default()
    };
    let zsoid = meeting_options.zsoid;
    let meeting = MeetingEmulator::start(args.meeting_listen, meeting_options, accounts.control())
        .await
        .map_err(|source| RunError::Io {
            what: format!(
                "cannot start the Meeting emulator on {}",
                args.meeting_listen
            ),
            source,
        })?;
    let refresh_token = accounts.control().issue_refresh_token(&SCOPES);
    if args.token_outage {
        accounts.control().set_outage(Some(503));
    }
    if args.reject_tokens > 0 {
        meeting.control().reject_tokens(args.reject_tokens);
    }
    tracing::info!(accounts = %accounts.url(), meeting = %meeting.url(), "emulator listening");

    if args.emulator_only {
        println!(
            "{}",
            emulator_banner(
                &accounts,
                &meeting,
                &client_id,
                &client_secret,
                &refresh_token
            )
        );
        until_signal(None, None).await?;
        return Ok(());
    }

    let mut config = config.clone();
    config.oauth.client_id = client_id;
    config.oauth.client_secret = Some(Secret::new(client_secret));
    config.oauth.refresh_token = Some(Secret::new(refresh_token));
    config.oauth.scopes = SCOPES.iter().map(|s| (*s).to_owned()).collect();
    config.oauth.accounts_url = parse_url(&accounts.url())?;
    config.upstream.url = parse_url(&meeting.url())?;
    config.token.store = StoreConfig::Memory;
    let store: std::sync::Arc<dyn TokenStore> = std::sync::Arc::new(MemoryStore::new());
    let manager = token_manager(&config, store).await?;
    let running = app::start(&config, manager.clone()).await?;
    let proxy = match (&config.server.listen, running.proxy_addr()) {
        (_, Some(addr)) => format!("http://{addr}"),
        (Listen::Unix(path), None) => format!("unix:{}", path.display()),
        (Listen::Tcp(addr), None) => format!("http://{addr}"),
    };
    println!(
        "{}",
        banner(
            &proxy,
            running.admin_addr(),
            &accounts,
            &meeting,
            zsoid,
            args.token_lifetime
        )
    );
    until_signal(Some(&manager), None).await?;
    running.begin_shutdown();
    if running.finish().await {
        tracing::info!("shutdown complete");
    }
    Ok(())
}

fn banner(
    proxy: &str,
    admin: Option<SocketAddr>,
    accounts: &AccountsEmulator,
    meeting: &MeetingEmulator,
    zsoid: u64,
    lifetime: Duration,
) -> String {
    let admin = admin.map_or_else(
        || "disabled".to_owned(),
        |a| format!("http://{a}  (/livez /readyz /metrics /status)"),
    );
    let create = r#"{"session":{"topic":"Hello from the sandbox","startTime":"Jun 19, 2030 07:00 PM","duration":3600000,"timezone":"UTC","participants":[{"email":"guest@example.com"}]}}"#;
    format!(
        "zoho-meeting-proxy sandbox: the real proxy against a built-in Zoho emulator\n\
         \n  proxy     {proxy}  (send Zoho Meeting API requests here, without Authorization)\
         \n  admin     {admin}\
         \n  emulator  accounts {accounts}, meeting {meeting}\
         \n  org       zsoid {zsoid}; access tokens live {lifetime}\
         \n\nTry:\
         \n  curl {proxy}/api/v2/user.json\
         \n  curl -X POST {proxy}/api/v2/{zsoid}/sessions.json -H 'Content-Type: application/json' -d '{create}'\
         \n  curl '{proxy}/api/v2/{zsoid}/sessions.json?listtype=upcoming'\
         \n\nCtrl-C stops it.",
        accounts = accounts.url(),
        meeting = meeting.url(),
        lifetime = humantime::format_duration(lifetime),
    )
}

fn emulator_banner(
    accounts: &AccountsEmulator,
    meeting: &MeetingEmulator,
    client_id: &str,
    client_secret: &str,
    refresh_token: &str,
) -> String {
    let scopes: Vec<String> = SCOPES.iter().map(|s| format!("{s:?}")).collect();
    format!(
        "# zoho-meeting-proxy sandbox --emulator-only: a fake Zoho; these are not real credentials.\n\
         # Save as proxy.toml and run `zoho-meeting-proxy serve` (Ctrl-C stops the emulator).\n\
         [oauth]\n\
         client_id = {client_id:?}\n\
         client_secret = {client_secret:?}\n\
         refresh_token = {refresh_token:?}\n\
         accounts_url = {accounts:?}\n\
         scopes = [{scopes}]\n\
         \n[upstream]\n\
         url = {meeting:?}\n\
         \n[token]\n\
         store = \"memory\"",
        accounts = accounts.url(),
        meeting = meeting.url(),
        scopes = scopes.join(", "),
    )
}

fn parse_url(text: &str) -> Result<url::Url, RunError> {
    url::Url::parse(text).map_err(|e| RunError::Failed(format!("emulator URL {text:?}: {e}")))
}

fn parse_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rate) if (0.0..=1.0).contains(&rate) => Ok(rate),
        _ => Err(format!("{text:?} is not a number from 0.0 to 1.0")),
    }
}
