//! `sandbox`: the whole product against the built-in Zoho emulator, no account needed.
//!
//! Starts the accounts, Meeting and Webinar emulators on loopback ports, then the real proxy — the
//! same code path as `serve`, with a memory token store — wired to them, and prints where
//! everything listens and curl lines to paste (tested as printed). `--emulator-only` serves
//! just the fake Zoho and prints a matching `proxy.toml`, for pointing your own `serve` (or
//! your own integration tests) at it.
//!
//! `--accounts N` configures N-1 more Zoho accounts beside `default` ([`EXTRA_ACCOUNTS`]):
//! one Zoho client, each account consenting with its own refresh token at the same emulated
//! accounts server, so each mints its own access tokens; requests choose one with
//! `X-Zoho-Account`.
//!
//! The emulator's mint limit and the proxy's `oauth.max_mints_per_10m` both follow
//! `--token-lifetime` ([`mint_budget`]), so short-lived tokens do not spend the budget and
//! leave the sandbox answering 503.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use tokio::time::Instant;
use zoho_emulator::accounts::{AccountsEmulator, AccountsOptions, MINT_WINDOW};
use zoho_emulator::meeting::{MeetingEmulator, MeetingOptions};
use zoho_emulator::webinar::WebinarEmulator;

use super::Error;
use crate::app::{self, Signals};
use crate::config::{
    AccountConfig, Config, DEFAULT_ACCOUNT, Listen, MAX_MINTS_PER_10M, OAuthConfig, RouteConfig,
    RouteUpstream, StoreConfig, ZOHO_MAX_MINTS_PER_10M,
};
use crate::secret::Secret;
use crate::token::refresh_at;

/// Every scope the emulator knows, granted to the sandbox's refresh token.
const SCOPES: [&str; 18] = [
    "ZohoMeeting.manageOrg.READ",
    "ZohoMeeting.meeting.READ",
    "ZohoMeeting.meeting.CREATE",
    "ZohoMeeting.meeting.UPDATE",
    "ZohoMeeting.meeting.DELETE",
    "ZohoMeeting.webinar.READ",
    "ZohoMeeting.webinar.CREATE",
    "ZohoMeeting.webinar.UPDATE",
    "ZohoMeeting.webinar.DELETE",
    "ZohoMeeting.user.READ",
    "ZohoMeeting.recording.READ",
    "ZohoMeeting.sdk.CREATE",
    "ZohoWebinar.manageOrg.READ",
    "ZohoWebinar.webinar.READ",
    "ZohoWebinar.webinar.CREATE",
    "ZohoWebinar.webinar.UPDATE",
    "ZohoWebinar.webinar.DELETE",
    "ZohoWebinar.registration.READ",
];

/// The route that sends requests to the emulated Zoho Webinar (README's example route:
/// `upstream = "webinar"` with the prefix stripped).
const WEBINAR_PREFIX: &str = "/webinar/";

/// The names `--accounts N` gives the accounts beside `default`, the first N-1 of them.
const EXTRA_ACCOUNTS: [&str; 7] = [
    "acme", "globex", "initech", "umbrella", "hooli", "stark", "wayne",
];

/// The most accounts `--accounts` configures: `default` and every one of [`EXTRA_ACCOUNTS`].
const MAX_ACCOUNTS: u8 = 8;

/// `sandbox` options.
#[derive(Debug, Args)]
pub struct SandboxArgs {
    /// Lifetime of the emulator's access tokens (Zoho's is 1h); shorten it to watch
    /// refreshes happen. The emulator's mint limit and the proxy's budget
    /// (`oauth.max_mints_per_10m`) scale with it: Zoho's 10 per 10 minutes for long-lived
    /// tokens, more for short ones (up to 1000), so the sandbox keeps serving.
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    pub token_lifetime: Duration,
    /// Delay added to every Meeting API answer.
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    pub latency: Duration,
    /// Share of Meeting API requests answered with HTTP 500 (0.0 to 1.0).
    #[arg(long, default_value_t = 0.0, value_parser = parse_rate)]
    pub failure_rate: f64,
    /// Start with the token endpoint down (HTTP 503) for this long (e.g. `2m`), to watch the
    /// proxy back off and then recover; without a value, until the sandbox stops.
    #[arg(
        long,
        value_name = "DURATION",
        num_args = 0..=1,
        default_missing_value = "forever",
        value_parser = parse_outage
    )]
    pub token_outage: Option<Outage>,
    /// Revoke the access token in use this many times (each after it has served a request),
    /// as Zoho does when access is removed, to see the proxy refresh and replay.
    #[arg(long, default_value_t = 0)]
    pub reject_tokens: u32,
    /// How many Zoho accounts (1 to 8): `default` and, beyond one, `acme`, `globex`,
    /// `initech`, `umbrella`, `hooli`, `stark`, `wayne`, each with its own refresh token for
    /// the same client; a request picks one with `X-Zoho-Account: NAME`. They replace any
    /// `[[accounts]]` of the configuration.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=i64::from(MAX_ACCOUNTS)))]
    pub accounts: u8,
    /// Serve only the emulator and print a matching proxy.toml.
    #[arg(long)]
    pub emulator_only: bool,
    /// With `--emulator-only`: the emulator accepts the refresh token in this file (read
    /// once, surrounding whitespace ignored) instead of issuing a random one, and the
    /// printed proxy.toml names the file instead of the value. For a pod or compose file in
    /// which the emulator and the proxy are given the same secret file. It is `default`'s:
    /// the other accounts of `--accounts` get random ones, printed inline.
    #[arg(long, value_name = "FILE", requires = "emulator_only")]
    pub refresh_token_file: Option<PathBuf>,
    /// Where the proxy listens, instead of `server.listen` (127.0.0.1:8080), e.g. when
    /// another program uses that port.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Where the admin endpoints listen, instead of `server.admin_listen` (127.0.0.1:9090).
    #[arg(long, value_name = "ADDR")]
    pub admin_listen: Option<SocketAddr>,
    /// Where the emulated accounts server listens.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub accounts_listen: SocketAddr,
    /// Where the emulated Meeting API listens.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub meeting_listen: SocketAddr,
    /// Where the emulated Zoho Webinar API listens (the proxy routes `/webinar/` to it).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub webinar_listen: SocketAddr,
}

/// How long `--token-outage` lasts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outage {
    /// This long from the start.
    For(Duration),
    /// Until the sandbox stops.
    Forever,
}

/// `server.admin_listen`'s default, where `status` and `wait` look unless told otherwise.
const DEFAULT_ADMIN_LISTEN: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 9090));

/// Runs `sandbox`.
pub(super) async fn run(config: &Config, args: SandboxArgs) -> Result<(), Error> {
    // Before the banner: Ctrl-C (or a test's SIGINT) as soon as it appears is a clean stop.
    let signals = Signals::install()?;
    let max_mints = mint_budget(args.token_lifetime, config.token.refresh_margin);
    let accounts_options = AccountsOptions {
        token_lifetime: args.token_lifetime,
        max_mints_per_10m: max_mints,
        ..AccountsOptions::default()
    };
    let (client_id, client_secret) = (
        accounts_options.client_id.clone(),
        accounts_options.client_secret.clone(),
    );
    let accounts = AccountsEmulator::start(args.accounts_listen, accounts_options)
        .await
        .map_err(cannot_start("accounts", args.accounts_listen))?;
    let meeting_options = MeetingOptions {
        latency: args.latency,
        failure_rate: args.failure_rate,
        ..MeetingOptions::default()
    };
    let zsoid = meeting_options.zsoid;
    let meeting = MeetingEmulator::start(
        args.meeting_listen,
        meeting_options.clone(),
        accounts.control(),
    )
    .await
    .map_err(cannot_start("Meeting", args.meeting_listen))?;
    let webinar = WebinarEmulator::start(args.webinar_listen, meeting_options, accounts.control())
        .await
        .map_err(cannot_start("Webinar", args.webinar_listen))?;
    let refresh_token = match &args.refresh_token_file {
        None => accounts.control().issue_refresh_token(&SCOPES),
        Some(path) => {
            let token = read_refresh_token(path)?;
            accounts.control().register_refresh_token(&token, &SCOPES);
            token
        }
    };
    // One client, many consenting accounts: a refresh token each, with the same scopes.
    let extra: Vec<(&str, String)> = extra_accounts(args.accounts)
        .iter()
        .map(|name| (*name, accounts.control().issue_refresh_token(&SCOPES)))
        .collect();
    match args.token_outage {
        None => {}
        Some(Outage::Forever) => accounts.control().set_outage(Some(503)),
        Some(Outage::For(outage)) => {
            accounts.control().set_outage(Some(503));
            let control = accounts.control();
            tokio::spawn(async move {
                tokio::time::sleep(outage).await;
                control.set_outage(None);
                tracing::info!("the emulated token endpoint is back (--token-outage ended)");
            });
        }
    }
    if args.reject_tokens > 0 {
        meeting.control().revoke_tokens_in_use(args.reject_tokens);
    }
    let urls = EmulatorUrls {
        accounts: accounts.url(),
        meeting: meeting.url(),
        webinar: webinar.url(),
    };
    tracing::info!(accounts = %urls.accounts, meeting = %urls.meeting, webinar = %urls.webinar, "emulator listening");

    if args.emulator_only {
        let state = private_dir(&std::env::temp_dir())?;
        print_banner(&emulator_banner(
            &urls,
            &client_id,
            &client_secret,
            &match &args.refresh_token_file {
                None => RefreshTokenLine::Value(&refresh_token),
                Some(path) => RefreshTokenLine::File(path),
            },
            &extra,
            &state.join("token.json"),
        ));
        signals.stopped().await;
        // Its tokens die with the emulator.
        if let Err(error) = std::fs::remove_dir_all(&state) {
            tracing::warn!(path = %state.display(), error = %error, "cannot remove the sandbox's token directory");
        }
        return Ok(());
    }

    let mut config = config.clone();
    config.oauth.client_id = client_id;
    config.oauth.client_secret = Some(Secret::new(client_secret));
    config.oauth.refresh_token = Some(Secret::new(refresh_token));
    config.oauth.scopes = SCOPES.iter().map(|s| (*s).to_owned()).collect();
    config.oauth.accounts_url = parse_url(&urls.accounts)?;
    config.upstream.url = parse_url(&urls.meeting)?;
    // Every account's Meeting host: the emulator's, not its data centre's.
    config.upstream.url_explicit = true;
    // The emulator is not Zoho: a budget above Zoho's 10 is allowed (see `mint_budget`).
    config.oauth.max_mints_per_10m = max_mints;
    config.token.store = StoreConfig::Memory;
    // The sandbox's accounts replace the configuration's (which name real Zoho accounts).
    config.accounts = extra
        .into_iter()
        .map(|(name, token)| AccountConfig {
            oauth: OAuthConfig {
                account: name.to_owned(),
                refresh_token: Some(Secret::new(token)),
                refresh_token_file: None,
                ..config.oauth.clone()
            },
            client_keys: Vec::new(),
            client_keys_file: None,
        })
        .collect();
    // In name order, as the configuration orders them.
    config
        .accounts
        .sort_by(|a, b| a.oauth.account.cmp(&b.oauth.account));
    // `/webinar/` goes to the emulated Zoho Webinar, whatever the configuration routed there.
    config
        .routes
        .retain(|r| r.prefix.trim_end_matches('/') != WEBINAR_PREFIX.trim_end_matches('/'));
    config.routes.push(RouteConfig {
        prefix: WEBINAR_PREFIX.to_owned(),
        upstream: RouteUpstream::Url(parse_url(&urls.webinar)?),
        strip_prefix: true,
    });
    // Longest prefix first, as the configuration orders them.
    config
        .routes
        .sort_by_key(|r| std::cmp::Reverse(r.prefix.trim_end_matches('/').len()));
    if let Some(listen) = args.listen {
        config.server.listen = Listen::Tcp(listen);
    }
    if let Some(admin) = args.admin_listen {
        config.server.admin_listen = Some(admin);
    }
    let running = app::start(&config).await?;
    let proxy = match (&config.server.listen, running.proxy_addr()) {
        (_, Some(addr)) => format!("http://{addr}"),
        (Listen::Unix(path), None) => format!("unix:{}", path.display()),
        (Listen::Tcp(addr), None) => format!("http://{addr}"),
    };
    let names: Vec<&str> = config.account_names().collect();
    print_banner(&banner(
        &proxy,
        running.admin_addr(),
        &urls,
        zsoid,
        args.token_lifetime,
        &names,
    ));
    running.serve_until_stopped(signals, None).await;
    Ok(())
}

/// The error of an emulator (`which`) that cannot listen on `addr`.
fn cannot_start(which: &str, addr: SocketAddr) -> impl FnOnce(std::io::Error) -> Error {
    let what = format!("cannot start the {which} emulator on {addr}");
    move |source| Error::Io { what, source }
}

/// Prints `text` on stdout in one write. A closed stdout (`sandbox | head -3`) is no reason to
/// stop (or panic, as `println!` would): the sandbox goes on serving.
fn print_banner(text: &str) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(format!("{text}\n").as_bytes());
    let _ = out.flush();
}

/// Where the emulated accounts server, Meeting API and Zoho Webinar API listen.
struct EmulatorUrls {
    accounts: String,
    meeting: String,
    webinar: String,
}

/// The first `accounts - 1` of [`EXTRA_ACCOUNTS`]: the accounts beside `default`.
fn extra_accounts(accounts: u8) -> &'static [&'static str] {
    let extra = usize::from(accounts.saturating_sub(1)).min(EXTRA_ACCOUNTS.len());
    &EXTRA_ACCOUNTS[..extra]
}

/// The banner: where everything listens, and curl lines to paste; with more accounts than
/// `default` (`accounts`, `default` first), a line naming them, a curl line through each
/// other one, and one for `/status`, which shows them all.
fn banner(
    proxy: &str,
    admin: Option<SocketAddr>,
    urls: &EmulatorUrls,
    zsoid: u64,
    lifetime: Duration,
    accounts: &[&str],
) -> String {
    // `status` and `wait` read `server.admin_listen` from their own configuration: away from
    // its default they must be told where the admin endpoints are.
    let commands = match admin {
        Some(addr) if addr != DEFAULT_ADMIN_LISTEN => format!(
            "\n\nThe admin endpoints are not on {DEFAULT_ADMIN_LISTEN}, so tell status and wait where they are:\
             \n  ZOHO_PROXY_SERVER__ADMIN_LISTEN={addr} zoho-meeting-proxy status\
             \n  ZOHO_PROXY_SERVER__ADMIN_LISTEN={addr} zoho-meeting-proxy wait --timeout 30s"
        ),
        _ => String::new(),
    };
    let (accounts_line, accounts_curls) = if accounts.len() > 1 {
        let named: Vec<String> = accounts
            .iter()
            .map(|name| {
                if *name == DEFAULT_ACCOUNT {
                    format!("{name} (no header)")
                } else {
                    format!("{name} (X-Zoho-Account: {name})")
                }
            })
            .collect();
        let line = format!(
            "\n  accounts  {}; one Zoho client, a refresh token each",
            named.join(", ")
        );
        let mut curls: String = accounts
            .iter()
            .filter(|name| **name != DEFAULT_ACCOUNT)
            .map(|name| format!("\n  curl {proxy}/api/v2/user.json -H 'X-Zoho-Account: {name}'"))
            .collect();
        if let Some(addr) = admin {
            curls.push_str(&format!(
                "\n  curl http://{addr}/status   # \"accounts\": each account's token status"
            ));
        }
        (line, curls)
    } else {
        (String::new(), String::new())
    };
    let admin = admin.map_or_else(
        || "disabled".to_owned(),
        |a| format!("http://{a}  (/livez /readyz /metrics /status)"),
    );
    let create = r#"{"session":{"topic":"Hello from the sandbox","startTime":"Jun 19, 2030 07:00 PM","duration":3600000,"timezone":"UTC","participants":[{"email":"guest@example.com"}]}}"#;
    format!(
        "zoho-meeting-proxy sandbox: the real proxy against a built-in Zoho emulator\n\
         \n  proxy     {proxy}  (send Zoho Meeting API requests here, without Authorization)\
         \n  admin     {admin}\
         \n  emulator  accounts {accounts_url}, meeting {meeting}, webinar {webinar} (the proxy's {WEBINAR_PREFIX})\
         \n  org       zsoid {zsoid}; access tokens live {lifetime}{accounts_line}\
         \n\nTry, from another terminal (README.md has edit, delete and more):\
         \n  curl {proxy}/api/v2/user.json\
         \n  KEY=$(curl -s -X POST {proxy}/api/v2/{zsoid}/sessions.json -H 'Content-Type: application/json' -d '{create}' | grep -o '\"meetingKey\":[0-9]*' | cut -d: -f2); echo \"meetingKey $KEY\"\
         \n  curl {proxy}/api/v2/{zsoid}/sessions/$KEY.json\
         \n  curl '{proxy}/api/v2/{zsoid}/sessions.json?listtype=upcoming'\
         \n  curl {proxy}{WEBINAR_PREFIX}api/v2/{zsoid}/webinar.json{accounts_curls}{commands}\
         \n\nCtrl-C stops it.",
        accounts_url = urls.accounts,
        meeting = urls.meeting,
        webinar = urls.webinar,
        lifetime = humantime::format_duration(lifetime),
    )
}

/// How the printed `proxy.toml` gives the refresh token.
enum RefreshTokenLine<'a> {
    /// `refresh_token = "…"`: the emulator's own random one.
    Value(&'a str),
    /// `refresh_token_file = "…"`: the file `--refresh-token-file` named.
    File(&'a Path),
}

/// Reads `--refresh-token-file`: the token, trimmed, not empty.
fn read_refresh_token(path: &Path) -> Result<String, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        what: format!("cannot read --refresh-token-file {}", path.display()),
        source,
    })?;
    let token = text.trim();
    if token.is_empty() {
        return Err(Error::Failed(format!(
            "--refresh-token-file {} is empty",
            path.display()
        )));
    }
    Ok(token.to_owned())
}

/// The `proxy.toml` that `--emulator-only` prints, with its file token store at `token_path`.
///
/// A file store, so that `token` and `serve` reuse one access token instead of each minting
/// one (the emulator, like Zoho, allows few per 10 minutes); one file per run, since each
/// run has its own refresh token.
fn emulator_banner(
    urls: &EmulatorUrls,
    client_id: &str,
    client_secret: &str,
    refresh_token: &RefreshTokenLine<'_>,
    extra: &[(&str, String)],
    token_path: &Path,
) -> String {
    let scopes: Vec<String> = SCOPES.iter().map(|s| format!("{s:?}")).collect();
    let refresh_token = match refresh_token {
        RefreshTokenLine::Value(token) => format!("refresh_token = {token:?}"),
        RefreshTokenLine::File(path) => {
            format!("refresh_token_file = {:?}", path.display().to_string())
        }
    };
    // The other accounts: [oauth]'s client and scopes, a refresh token each (stored beside
    // `default`'s as token-NAME.json).
    let accounts: String = extra
        .iter()
        .map(|(name, token)| {
            format!(
                "\n\n[[accounts]]\n\
                 name = {name:?}\n\
                 refresh_token = {token:?}\n\
                 accounts_url = {url:?}",
                url = urls.accounts,
            )
        })
        .collect();
    format!(
        "# zoho-meeting-proxy sandbox --emulator-only: a fake Zoho; these are not real credentials.\n\
         # Save as proxy.toml and run `zoho-meeting-proxy serve` (Ctrl-C stops the emulator).\n\
         # The token store is in a private directory (mode 0700) that Ctrl-C removes.\n\
         [oauth]\n\
         client_id = {client_id:?}\n\
         client_secret = {client_secret:?}\n\
         {refresh_token}\n\
         accounts_url = {accounts_url:?}\n\
         scopes = [{scopes}]{accounts}\n\
         \n[upstream]\n\
         url = {meeting:?}\n\
         \n[token]\n\
         path = {path:?}\n\
         store = \"file\"\n\
         \n[[routes]]\n\
         prefix = {WEBINAR_PREFIX:?}\n\
         upstream = {webinar:?}\n\
         strip_prefix = true",
        accounts_url = urls.accounts,
        meeting = urls.meeting,
        webinar = urls.webinar,
        scopes = scopes.join(", "),
        path = token_path.display().to_string(),
    )
}

/// Mints per 10 minutes for the emulator and the proxy when tokens live `lifetime`: twice
/// the refreshes the proxy schedules in 10 minutes, plus 10 for reactive ones (rejections,
/// the first mint), never below Zoho's 10 and at most [`MAX_MINTS_PER_10M`].
///
/// The proxy refreshes [`refresh_at`] before expiry, with the margin capped as
/// the [`TokenManager`](crate::token::TokenManager) caps it:
/// `token.refresh_margin`, at most a quarter of the lifetime.
fn mint_budget(lifetime: Duration, refresh_margin: Duration) -> u32 {
    let margin = refresh_margin.min(lifetime / 4);
    let now = Instant::now();
    let every = match now.checked_add(lifetime) {
        Some(expires_at) => refresh_at(expires_at, margin).saturating_duration_since(now),
        // Beyond what the clock can add: no refresh is due within 10 minutes anyway.
        None => lifetime,
    };
    if every.is_zero() {
        return MAX_MINTS_PER_10M;
    }
    let scheduled = MINT_WINDOW.as_nanos().div_ceil(every.as_nanos());
    let wanted = scheduled.saturating_mul(2).saturating_add(10);
    u32::try_from(wanted)
        .unwrap_or(u32::MAX)
        .clamp(ZOHO_MAX_MINTS_PER_10M, MAX_MINTS_PER_10M)
}

/// Creates a fresh directory in `parent` that only this user may enter (mode 0700), for
/// `--emulator-only`'s token store: the file store refuses a world-writable directory such
/// as `/tmp` itself, where another user could swap the file.
fn private_dir(parent: &Path) -> Result<PathBuf, Error> {
    use std::os::unix::fs::DirBuilderExt as _;
    let mut attempt = 0;
    loop {
        let dir = parent.join(format!(
            "zoho-meeting-proxy-sandbox-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            // Taken (by an earlier run with the same process id, or another user): another name.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 16 => {
                attempt += 1;
            }
            Err(source) => {
                return Err(Error::Io {
                    what: format!(
                        "cannot create a private directory in {} for the token store (set TMPDIR to another directory)",
                        parent.display()
                    ),
                    source,
                });
            }
        }
    }
}

fn parse_url(text: &str) -> Result<url::Url, Error> {
    url::Url::parse(text).map_err(|e| Error::Failed(format!("emulator URL {text:?}: {e}")))
}

fn parse_outage(text: &str) -> Result<Outage, String> {
    if text == "forever" {
        return Ok(Outage::Forever);
    }
    humantime::parse_duration(text)
        .map(Outage::For)
        .map_err(|e| format!("{text:?} is not a duration such as 30s or 2m: {e}"))
}

fn parse_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rate) if (0.0..=1.0).contains(&rate) => Ok(rate),
        _ => Err(format!("{text:?} is not a number from 0.0 to 1.0")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_other_accounts_are_named_in_order() {
        assert!(extra_accounts(1).is_empty());
        assert_eq!(extra_accounts(2), ["acme"]);
        assert_eq!(extra_accounts(3), ["acme", "globex"]);
        assert_eq!(extra_accounts(MAX_ACCOUNTS), EXTRA_ACCOUNTS);
        assert_eq!(usize::from(MAX_ACCOUNTS), EXTRA_ACCOUNTS.len() + 1);
        // Past the list (clap refuses it first): every name, never a panic.
        assert_eq!(extra_accounts(u8::MAX), EXTRA_ACCOUNTS);
        for name in EXTRA_ACCOUNTS {
            assert!(crate::config::valid_account_name(name) && name != DEFAULT_ACCOUNT);
        }
    }

    #[test]
    fn token_outages_last_a_duration_or_until_the_end() {
        assert_eq!(
            parse_outage("90s"),
            Ok(Outage::For(Duration::from_secs(90)))
        );
        assert_eq!(parse_outage("forever"), Ok(Outage::Forever));
        assert!(parse_outage("soon").is_err());
    }

    #[test]
    fn the_default_admin_address_is_the_configurations() {
        let config = Config::from_figment(&Config::figment(None), None).unwrap();
        assert_eq!(config.server.admin_listen, Some(DEFAULT_ADMIN_LISTEN));
    }

    #[test]
    fn private_directories_are_fresh_and_only_for_this_user() {
        use std::os::unix::fs::PermissionsExt as _;
        let parent = tempfile::tempdir().unwrap();
        std::fs::set_permissions(parent.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
        let one = private_dir(parent.path()).unwrap();
        let two = private_dir(parent.path()).unwrap();
        assert_ne!(one, two);
        for dir in [&one, &two] {
            assert_eq!(dir.parent(), Some(parent.path()));
            let mode = std::fs::metadata(dir).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700, "{}", dir.display());
        }
        let missing = parent.path().join("missing");
        let error = private_dir(&missing).unwrap_err().to_string();
        assert!(error.contains("set TMPDIR"), "{error}");
    }

    #[test]
    fn the_mint_budget_scales_with_the_token_lifetime() {
        let margin = Duration::from_secs(300);
        let s = Duration::from_secs;
        // Zoho's hour (or longer): one mint in 10 minutes.
        assert_eq!(mint_budget(s(3600), margin), 12);
        assert_eq!(mint_budget(s(365 * 86_400), margin), 12);
        // 2 s: a refresh every 1.45 s (margin 0.5 s, lead 0.05 s), 414 in 10 minutes.
        assert_eq!(mint_budget(s(2), margin), 838);
        // 4 minutes: every 2 min 51 s (margin 1 min, lead 6 s): 4 in 10 minutes.
        assert_eq!(mint_budget(s(240), margin), 18);
        // Very short, zero or absurd lifetimes: capped, never a panic.
        assert_eq!(
            mint_budget(Duration::from_millis(100), margin),
            MAX_MINTS_PER_10M
        );
        assert_eq!(mint_budget(Duration::ZERO, margin), MAX_MINTS_PER_10M);
        assert_eq!(mint_budget(Duration::MAX, margin), 12);
        assert_eq!(mint_budget(s(2), Duration::ZERO), 610);
    }

    #[test]
    fn the_budget_covers_every_scheduled_refresh() {
        for ms in [500, 1_000, 2_000, 5_000, 30_000, 60_000, 600_000] {
            let lifetime = Duration::from_millis(ms);
            let margin = Duration::from_secs(300).min(lifetime / 4);
            let lead = (margin / 10).min(Duration::from_secs(30));
            let every = lifetime - margin - lead;
            let scheduled = (MINT_WINDOW.as_secs_f64() / every.as_secs_f64()).ceil() as u32;
            let budget = mint_budget(lifetime, Duration::from_secs(300));
            assert!(
                budget >= scheduled.min(MAX_MINTS_PER_10M) && budget >= ZOHO_MAX_MINTS_PER_10M,
                "{ms} ms: {budget} < {scheduled}"
            );
        }
    }
}
