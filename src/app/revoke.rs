//! `revoke`: ends the refresh token in use at Zoho, then forgets it. For one account: given
//! an account's view ([`Config::for_account`]), only that account's token and store.

use super::{Error, apply_stored_login, credentials, describe_accounts, oauth_client, open_store};
use crate::config::Config;
use crate::token::{Revocation, forget_login, revoke_refresh_token};

/// What `revoke` did.
pub struct Revoked {
    /// What Zoho said.
    pub revocation: Revocation,
    /// The accounts server that revoked it, described.
    pub accounts: String,
    /// The token store, described.
    pub store: String,
    /// Where the refresh token came from when it was the configuration's
    /// (`oauth.refresh_token` or `oauth.refresh_token_file = PATH`, `accounts.NAME.…` for
    /// another account): it stays there. `None`
    /// when it came from the token store, which no longer holds it.
    pub config_key: Option<String>,
}

/// Revokes the refresh token in use at the accounts server that issued it, then removes it
/// (unless it came from the configuration) and its access token from the store: only when
/// Zoho confirmed or does not know the token.
///
/// # Errors
/// [`Error::Failed`] when the revocation did not go through (nothing is changed; the message
/// says where the token still is); configuration and store errors.
pub async fn revoke(config: &Config) -> Result<Revoked, Error> {
    let store = open_store(config)?;
    let client = oauth_client(config)?;
    let state = store.load().await?;
    let config = &apply_stored_login(config, &state, &store.describe())?;
    let creds = credentials(config, &state)?;
    let accounts = describe_accounts(creds.accounts_url());
    let config_key =
        config
            .oauth
            .refresh_token
            .as_ref()
            .map(|_| match &config.oauth.refresh_token_file {
                Some(path) => format!(
                    "{} = {}",
                    config.oauth.key("refresh_token_file"),
                    path.display()
                ),
                None => config.oauth.key("refresh_token"),
            });
    let revocation = match revoke_refresh_token(
        &client,
        creds.accounts_url(),
        creds.refresh_token(),
    )
    .await
    {
        Ok(revocation) => revocation,
        Err(e) => {
            let kept = if config_key.is_some() {
                "Nothing was changed".to_owned()
            } else {
                format!(
                    "The refresh token is still in the token store ({})",
                    store.describe()
                )
            };
            return Err(Error::Failed(format!(
                "the revocation at {accounts} did not go through: {}. {kept}: run revoke again later",
                crate::telemetry::chain(&e)
            )));
        }
    };
    forget_login(&store, &creds, config_key.is_some()).await?;
    Ok(Revoked {
        revocation,
        accounts,
        store: store.describe(),
        config_key,
    })
}
