//! A login's life in the token store: keeping the refresh token `login` obtained, and
//! revoking refresh tokens at Zoho — the one a new login replaces, or the one `revoke` ends.
//!
//! A revocation is final only when Zoho confirmed it (`{"status":"success"}`) or does not
//! know the token (HTTP 400 `invalid_token`: revoked already, or never issued by this
//! accounts server). Anything else — the network, a 5xx, throttling, another error code —
//! leaves the token possibly live, and the store keeps it.

use std::sync::Arc;

use url::Url;

use super::client::{Credentials, Grant, OAuthClient, TokenError};
use super::store::{StoreError, StoredAccessToken, StoredRefreshToken, StoredState, TokenStore};
use super::unix_ms;
use crate::config::{DataCenter, origin};
use crate::secret::Secret;

/// What Zoho said to a revocation, when it settled the token's fate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revocation {
    /// Zoho confirmed it.
    Revoked,
    /// Zoho does not know the token (the error code it gave): revoked already, or never
    /// issued by this accounts server.
    Unknown(String),
}

/// Revokes `token` at the accounts server `accounts`.
///
/// # Errors
/// Any answer that does not settle the token's fate: it may still be valid.
pub async fn revoke_refresh_token(
    client: &OAuthClient,
    accounts: &Url,
    token: &Secret<String>,
) -> Result<Revocation, TokenError> {
    match client.revoke(accounts, token).await {
        Ok(()) => Ok(Revocation::Revoked),
        Err(TokenError::Refused { code, .. }) if code == "invalid_token" => {
            Ok(Revocation::Unknown(code))
        }
        Err(e) => Err(e),
    }
}

/// A refresh token `login` obtained, with what its grant said.
pub struct Login {
    /// The OAuth client it was granted to.
    pub client_id: String,
    /// The refresh token.
    pub refresh_token: Secret<String>,
    /// The accounts server that issued it.
    pub accounts: Url,
    /// The account's data centre.
    pub data_center: DataCenter,
    /// The grant, with the first access token.
    pub grant: Grant,
    /// The scopes asked for, kept when the grant does not list those given.
    pub scopes: Vec<String>,
}

/// Keeps `login` in the store: the refresh token with its data centre and scopes, and its
/// first access token. A new refresh token starts a new mint budget.
///
/// # Errors
/// The store cannot be written.
pub async fn save_login(store: &Arc<dyn TokenStore>, login: Login) -> Result<(), StoreError> {
    let Login {
        client_id,
        refresh_token,
        accounts,
        data_center,
        grant,
        scopes,
    } = login;
    let creds = Credentials::new(&client_id, refresh_token.clone(), accounts.clone());
    let now = unix_ms();
    let scopes = match &grant.scope {
        Some(scope) => scope
            .split([' ', ','])
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        None => scopes,
    };
    let accounts_server = origin(&accounts).to_owned();
    let access = StoredAccessToken {
        token: grant.access_token,
        expires_at: now + u64::try_from(grant.lifetime.as_millis()).unwrap_or(u64::MAX / 2),
        accounts_server: accounts_server.clone(),
        minted_by: creds.minted_by().to_owned(),
        lifetime: Some(grant.lifetime),
    };
    let refresh = StoredRefreshToken {
        token: refresh_token,
        accounts_server,
        client_id,
        data_center: Some(data_center.name().to_owned()),
        scopes,
        obtained_at: now,
    };
    store
        .update(Box::new(move |s: &mut StoredState| {
            s.refresh_token = Some(refresh);
            s.access_token = Some(access);
            s.mints.clear();
        }))
        .await?;
    Ok(())
}

/// After `revoke`: forgets the access token minted with `creds`, and the stored refresh
/// token too unless the refresh token in use came from the configuration (the store's, if
/// any, is another one).
///
/// # Errors
/// The store cannot be written.
pub async fn forget_login(
    store: &Arc<dyn TokenStore>,
    creds: &Credentials,
    refresh_token_from_config: bool,
) -> Result<(), StoreError> {
    let minted_by = creds.minted_by().to_owned();
    store
        .update(Box::new(move |s: &mut StoredState| {
            if !refresh_token_from_config {
                s.refresh_token = None;
            }
            if s.access_token
                .as_ref()
                .is_some_and(|a| a.minted_by == minted_by)
            {
                s.access_token = None;
            }
        }))
        .await?;
    Ok(())
}

/// What became of the refresh token a new login replaced.
#[derive(Debug)]
pub enum Retired {
    /// There was none, or it is the new one.
    Nothing,
    /// Its accounts server cannot be parsed, so it was not revoked.
    BadAccountsServer,
    /// Kept valid, as asked (`--keep-old`), at this accounts server.
    Kept(Url),
    /// Revoked at this accounts server: Zoho confirmed or did not know it.
    Revoked(Url, Revocation),
    /// The revocation at this accounts server did not go through: it may still be valid.
    Failed(Url, TokenError),
}

/// After a new refresh token `new` was stored: revokes the one it replaced (`old`) at the
/// accounts server that issued it, unless `keep_old`.
pub async fn retire_login(
    client: &OAuthClient,
    old: Option<StoredRefreshToken>,
    new: &Secret<String>,
    keep_old: bool,
) -> Retired {
    let Some(old) = old.filter(|old| &old.token != new) else {
        return Retired::Nothing;
    };
    let Ok(accounts) = Url::parse(&old.accounts_server) else {
        return Retired::BadAccountsServer;
    };
    if keep_old {
        return Retired::Kept(accounts);
    }
    match revoke_refresh_token(client, &accounts, &old.token).await {
        Ok(revocation) => Retired::Revoked(accounts, revocation),
        Err(e) => Retired::Failed(accounts, e),
    }
}
