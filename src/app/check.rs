//! `check`: what a configuration resolves to, and, with `--online`, whether it really works:
//! one real token refresh, then one Meeting API call with the fresh token, for every account
//! ([`inspect_all`]; each account's view is inspected like a configuration of its own).

use std::sync::Arc;
use std::time::Duration;

use super::{Error, apply_stored_login, credentials, describe_accounts, open_store};
use crate::config::{Config, origin};
use crate::token::{AccessToken, TokenStatusView, TokenStore};

/// The Meeting API call `check --online` makes: the current user, which every account has.
pub const USER_PATH: &str = "/api/v2/user.json";

/// The largest Meeting answer `check --online` reads.
const MAX_USER_BODY: usize = 64 * 1024;

/// A configuration as `check` resolves it, with the token store it names opened.
pub struct Inspection {
    /// The configuration as the stored login shapes it.
    pub config: Config,
    /// The token store, described.
    pub store: String,
    /// Whether the refresh token comes from the configuration (else from the token store).
    pub refresh_token_from_config: bool,
    /// The accounts server the refresh token belongs to, described.
    pub accounts: String,
    opened: Arc<dyn TokenStore>,
}

/// The access token `check --online` minted.
pub struct Minted {
    /// The accounts server that minted, described.
    pub accounts: String,
    /// The fresh token's remaining lifetime.
    pub expires_in: Duration,
    /// Mints used in the current 10-minute window.
    pub mints_in_window: u32,
    config: Config,
    token: Arc<AccessToken>,
}

/// What the Meeting API said about the account.
pub struct MeetingUser {
    /// The Meeting host asked.
    pub meeting: String,
    /// Who the account is (an address or a name), printable.
    pub who: String,
    /// The account's organisation id, printable.
    pub zsoid: String,
}

/// Resolves `config` as `check` prints it: the client must be configured, and a refresh
/// token must be at hand (in the configuration or the token store).
///
/// # Errors
/// [`Error::Config`] for a missing client or refresh token; a store that cannot be read.
pub async fn inspect(config: &Config) -> Result<Inspection, Error> {
    config.require_client()?;
    let opened = open_store(config)?;
    let state = opened.load().await?;
    let config = apply_stored_login(config, &state, &opened.describe())?;
    let creds = credentials(&config, &state)?;
    Ok(Inspection {
        store: opened.describe(),
        refresh_token_from_config: config.oauth.refresh_token.is_some(),
        accounts: describe_accounts(creds.accounts_url()),
        config,
        opened,
    })
}

/// [`inspect`] for every account of `config`, `default` first, each on its own view
/// ([`Config::for_account`]) and store.
///
/// # Errors
/// As [`inspect`], for any account; the message names that account's keys.
pub async fn inspect_all(config: &Config) -> Result<Vec<Inspection>, Error> {
    let mut all = Vec::with_capacity(config.accounts.len() + 1);
    for name in config.account_names() {
        all.push(inspect(&config.require_account(name)?).await?);
    }
    Ok(all)
}

/// The configuration `check` prints: `default`'s, with each `[[accounts]]` entry's OAuth
/// keys as that account's own stored login shapes them (the data centre `login --account`
/// recorded, say), from its inspection among `others`.
pub fn shown_config(default: &Inspection, others: &[Inspection]) -> Config {
    let mut config = default.config.clone();
    for account in &mut config.accounts {
        if let Some(view) = others
            .iter()
            .find(|i| i.config.account() == account.oauth.account)
        {
            account.oauth = view.config.oauth.clone();
        }
    }
    config
}

// === impl Inspection ===

impl Inspection {
    /// Mints one access token now and checks the data centre Zoho's answer names.
    ///
    /// # Errors
    /// No token could be minted, or the answer's data centre is not the one in use.
    pub async fn mint(self) -> Result<Minted, Error> {
        let manager = super::wiring::token_manager(&self.config, self.opened).await?;
        let token = manager.mint_now().await?;
        let status = manager.status();
        if let Some(mismatch) = status.data_center_mismatch {
            return Err(Error::Failed(mismatch));
        }
        Ok(Minted {
            accounts: self.accounts,
            expires_in: token.remaining(),
            mints_in_window: status.mints_in_window,
            config: self.config,
            token,
        })
    }
}

// === impl Minted ===

impl Minted {
    /// Calls `GET {upstream.url}/api/v2/user.json` with the fresh token, trusting
    /// `upstream.ca_file` as the proxy does.
    ///
    /// # Errors
    /// The Meeting API cannot be reached, rejects the fresh token (the data centre or the
    /// scopes are then probably wrong: a fresh token cannot be stale), or answers anything
    /// but 2xx.
    pub async fn meeting_user(&self) -> Result<MeetingUser, Error> {
        let (who, zsoid) = meeting_user(&self.config, self.token.header()).await?;
        Ok(MeetingUser {
            meeting: origin(&self.config.upstream.url).to_owned(),
            who,
            zsoid,
        })
    }
}

/// Who the account is and its zsoid, from `GET {upstream.url}/api/v2/user.json`.
async fn meeting_user(
    config: &Config,
    authorization: &http::HeaderValue,
) -> Result<(String, String), Error> {
    let host = origin(&config.upstream.url);
    let client = crate::token::http_client(
        config.upstream.ca_file.as_deref(),
        config.upstream.connect_timeout,
    )?;
    let mut url = config.upstream.url.clone();
    let path = format!("{}{USER_PATH}", url.path().trim_end_matches('/'));
    url.set_path(&path);
    url.set_query(None);
    let unreachable = |e: reqwest::Error| {
        Error::Failed(format!(
            "cannot reach the Meeting API at {host}: {}",
            crate::telemetry::chain(&e.without_url())
        ))
    };
    let mut response = client
        .get(url)
        .header(http::header::AUTHORIZATION, authorization.clone())
        .timeout(config.upstream.timeout)
        .send()
        .await
        .map_err(unreachable)?;
    let status = response.status().as_u16();
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
        if body.len() + chunk.len() > MAX_USER_BODY {
            return Err(Error::Failed(format!(
                "the Meeting API at {host} answered {USER_PATH} with more than {MAX_USER_BODY} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    if matches!(status, 400 | 401) && crate::token::rejection::is_token_rejection(&body) {
        return Err(Error::Failed(format!(
            "the Meeting API at {host} rejected a freshly minted token (HTTP {status}): the data centre ({}) or the scopes are probably wrong; a token from one data centre's accounts server is refused by another's Meeting host (set oauth.data_center or upstream.url), and {USER_PATH} needs ZohoMeeting.manageOrg.READ",
            config.oauth.data_center
        )));
    }
    if !(200..300).contains(&status) {
        let scope = if contains(&body, b"OAUTH_SCOPE_MISMATCH") {
            " (OAUTH_SCOPE_MISMATCH: the token lacks a scope; this call needs ZohoMeeting.manageOrg.READ: add it to oauth.scopes and run login again)"
        } else {
            ""
        };
        return Err(Error::Failed(format!(
            "the Meeting API at {host} answered HTTP {status} to GET {USER_PATH}{scope}"
        )));
    }
    let json: serde_json::Value = serde_json::from_slice(&body).map_err(|_| {
        Error::Failed(format!(
            "the Meeting API at {host} answered {USER_PATH} with a body that is not JSON"
        ))
    })?;
    let user = &json["userDetails"];
    let text = |value: &serde_json::Value| match value {
        serde_json::Value::String(s) if !s.is_empty() => Some(printable(s)),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    let who = ["primaryEmail", "email", "emailId", "displayName", "name"]
        .iter()
        .find_map(|key| text(&user[*key]))
        .unwrap_or_else(|| "(unnamed)".to_owned());
    let Some(zsoid) = text(&user["zsoid"]) else {
        return Err(Error::Failed(format!(
            "the Meeting API at {host} answered {USER_PATH} without userDetails.zsoid"
        )));
    };
    Ok((who, zsoid))
}

/// Text from the network, safe to print: control characters dropped, at most 120 characters.
fn printable(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(120).collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
