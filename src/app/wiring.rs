//! From a validated [`Config`] to the objects the commands use: the token store, the OAuth
//! client, the refresh token to use (from the configuration or the store) and the token
//! manager built from them.
//!
//! These live below `cli` so that the library's other users (tests, benches, the sandbox)
//! build a proxy the way the binary does. Their failures are [`WiringError`]s, which the
//! command line turns into exit codes (78 for [`WiringError::Config`]).

use std::sync::Arc;

use crate::config::{Config, ConfigError, DataCenter, StoreConfig, origin};
use crate::token::TokenCache;
use crate::token::client::{OAuthClient, TokenError};
use crate::token::refresh::{Credentials, Settings, TokenManager};
use crate::token::store::redis::RedisStore;
use crate::token::store::{self, FileStore, MemoryStore, StoreError, StoredState, TokenStore};

/// Why the pieces of a proxy could not be put together.
#[derive(Debug, thiserror::Error)]
pub enum WiringError {
    /// Bad or missing configuration (the command line exits 78).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The token store cannot be used.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The OAuth client cannot be set up.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// Anything else, said in words.
    #[error("{0}")]
    Failed(String),
}

/// Opens the configured token store. The redis store connects on first use.
///
/// # Errors
/// [`ConfigError`] when the default path cannot be determined, or `token.redis_url` cannot
/// be used (the message never quotes it).
pub fn open_store(config: &Config) -> Result<Arc<dyn TokenStore>, WiringError> {
    Ok(match &config.token.store {
        StoreConfig::File(Some(path)) => Arc::new(FileStore::new(path.clone())),
        StoreConfig::File(None) => match store::default_path() {
            Some(path) => Arc::new(FileStore::new(path)),
            None => {
                return Err(ConfigError::Invalid {
                    key: "token.path".into(),
                    origin: "defaults".into(),
                    message: "neither XDG_STATE_HOME nor HOME is set: give a path".into(),
                }
                .into());
            }
        },
        StoreConfig::Memory => Arc::new(MemoryStore::new()),
        StoreConfig::Redis { url, key_prefix } => match RedisStore::new(url, key_prefix) {
            Ok(store) => Arc::new(store),
            Err(e) => {
                return Err(ConfigError::Invalid {
                    key: "token.redis_url".into(),
                    origin: "the configuration".into(),
                    message: crate::telemetry::chain(&e),
                }
                .into());
            }
        },
    })
}

/// The OAuth client for the configured Zoho client.
///
/// # Errors
/// [`ConfigError`] when the client id or secret is missing; [`TokenError::Setup`] for a bad
/// CA file.
pub fn oauth_client(config: &Config) -> Result<OAuthClient, WiringError> {
    let (client_id, secret) = config.require_client()?;
    Ok(OAuthClient::new(
        client_id,
        secret,
        config.upstream.ca_file.as_deref(),
        config.upstream.connect_timeout,
    )?)
}

/// Which refresh token to use: the configuration's, else the store's (filled by `login`).
///
/// # Errors
/// [`ConfigError`] naming `oauth.refresh_token` when there is none, or when the stored one
/// belongs to another client.
pub fn credentials(config: &Config, state: &StoredState) -> Result<Credentials, WiringError> {
    let client_id = &config.oauth.client_id;
    if let Some(token) = &config.oauth.refresh_token {
        return Ok(Credentials::new(
            client_id,
            token.clone(),
            config.oauth.accounts_url.clone(),
        ));
    }
    let no_token = |message: String| ConfigError::Invalid {
        key: "oauth.refresh_token".into(),
        origin: "the defaults: it is not set, and the token store holds none".into(),
        message,
    };
    if matches!(config.token.store, StoreConfig::Redis { .. }) {
        return Err(no_token(
            "token.store = \"redis\" never holds refresh tokens: give every replica the refresh token with oauth.refresh_token_file (or oauth.refresh_token)".into(),
        )
        .into());
    }
    let Some(stored) = &state.refresh_token else {
        return Err(no_token(
            "no refresh token: run `zoho-meeting-proxy login` (or set oauth.refresh_token / oauth.refresh_token_file)".into(),
        )
        .into());
    };
    if &stored.client_id != client_id {
        return Err(no_token(format!(
            "the stored refresh token belongs to client {:?}, not {client_id:?}: run `zoho-meeting-proxy login` again",
            stored.client_id
        ))
        .into());
    }
    let accounts = url::Url::parse(&stored.accounts_server).map_err(|_| {
        WiringError::Failed(format!(
            "the token store names a bad accounts server {:?}",
            stored.accounts_server
        ))
    })?;
    Ok(Credentials::new(client_id, stored.token.clone(), accounts))
}

/// Builds the token manager from configuration and store, reusing a stored token.
///
/// A shared (redis) store that cannot be reached does not stop the start: the replica
/// starts without the shared state, as during an outage (see [`TokenManager`]). One that
/// answers with an error (a wrong password, say) does.
///
/// # Errors
/// As [`oauth_client`], [`credentials`], and a store that cannot be read.
pub async fn token_manager(
    config: &Config,
    store: Arc<dyn TokenStore>,
) -> Result<Arc<TokenManager>, WiringError> {
    let client = oauth_client(config)?;
    let state = match store.load().await {
        Ok(state) => state,
        Err(e) if store.is_shared() && e.is_unreachable() => {
            tracing::warn!(
                error = %crate::telemetry::chain(&e),
                store = %store.describe(),
                "shared token store unreachable at start; starting without it and retrying"
            );
            StoredState::default()
        }
        Err(e) => return Err(e.into()),
    };
    let creds = credentials(config, &state)?;
    let cache = Arc::new(TokenCache::new(config.upstream.auth_scheme));
    let settings = Settings {
        margin: config.token.refresh_margin,
        max_mints_per_10m: config.oauth.max_mints_per_10m,
        request_wait: config.upstream.timeout,
    };
    let manager = TokenManager::new(cache, client, store, creds, settings);
    manager.restore(&state);
    Ok(manager)
}

/// Names the data centre of an accounts server, or says it is a custom one.
pub fn describe_accounts(url: &url::Url) -> String {
    match DataCenter::from_accounts_url(origin(url)) {
        Some(dc) => format!("data centre {dc} ({})", origin(url)),
        None => format!("custom accounts server {}", origin(url)),
    }
}
