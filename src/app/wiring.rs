//! From a validated [`Config`] to the objects the commands use: the token store, the OAuth
//! client, the refresh token to use (from the configuration or the store) and the token
//! manager built from them.
//!
//! [`start`](super::start) puts them together; the commands that need only a part (`check`,
//! `login`, `revoke`) use these pieces themselves.

use std::sync::Arc;

use super::Error;
use crate::config::{Config, ConfigError, DataCenter, StoreConfig, origin};
use crate::token::{
    Credentials, DataCentreCheck, FileStore, MemoryStore, OAuthClient, RedisStore, Settings,
    StoredState, TokenManager, TokenStore,
};

/// Opens the configured token store of `config`'s account ([`Config::account`]). The redis
/// store connects on first use.
///
/// Each account has its own: `default` uses `token.path` (or the default path), account
/// NAME the file `token-NAME.json` beside it; in Redis, account NAME's keys start with
/// `<redis_key_prefix>:NAME:`; in memory, each account has its own.
///
/// # Errors
/// [`ConfigError`] when the default path cannot be determined, or `token.redis_url` cannot
/// be used (the message never quotes it).
pub fn open_store(config: &Config) -> Result<Arc<dyn TokenStore>, Error> {
    let account = config.account();
    let file = |path: std::path::PathBuf| -> Arc<dyn TokenStore> {
        if config.oauth.is_default() {
            Arc::new(FileStore::new(path))
        } else {
            Arc::new(FileStore::new(
                path.with_file_name(format!("token-{account}.json")),
            ))
        }
    };
    Ok(match &config.token.store {
        StoreConfig::File(Some(path)) => file(path.clone()),
        StoreConfig::File(None) => match FileStore::default_path() {
            Some(path) => file(path),
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
        StoreConfig::Redis { url, key_prefix } => match RedisStore::new(
            url,
            &if config.oauth.is_default() {
                key_prefix.clone()
            } else {
                format!("{key_prefix}:{account}")
            },
        ) {
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
/// [`ConfigError`] when the client id or secret is missing;
/// [`TokenError::Setup`](crate::token::TokenError::Setup) for a bad CA file.
pub fn oauth_client(config: &Config) -> Result<OAuthClient, Error> {
    let (client_id, secret) = config.require_client()?;
    let client = OAuthClient::new(
        client_id,
        secret,
        config.upstream.ca_file.as_deref(),
        config.upstream.connect_timeout,
    )?;
    Ok(if config.oauth.is_default() {
        client
    } else {
        client.for_account(config.account())
    })
}

/// Which refresh token to use: the configuration's, else the store's (filled by `login`).
///
/// # Errors
/// [`ConfigError`] naming `oauth.refresh_token` when there is none, or when the stored one
/// belongs to another client.
pub fn credentials(config: &Config, state: &StoredState) -> Result<Credentials, Error> {
    let client_id = &config.oauth.client_id;
    if let Some(token) = &config.oauth.refresh_token {
        return Ok(Credentials::new(
            client_id,
            token.clone(),
            config.oauth.accounts_url.clone(),
        ));
    }
    let key = config.oauth.key("refresh_token");
    let login = config.oauth.login_command();
    let no_token = |message: String| ConfigError::Invalid {
        key: key.clone(),
        origin: "the defaults: it is not set, and the token store holds none".into(),
        message,
    };
    if matches!(config.token.store, StoreConfig::Redis { .. }) {
        return Err(no_token(
            format!("token.store = \"redis\" never holds refresh tokens: give every replica the refresh token with {key}_file (or {key})"),
        )
        .into());
    }
    let Some(stored) = &state.refresh_token else {
        return Err(no_token(format!(
            "no refresh token: run `{login}` (or set {key} / {key}_file)"
        ))
        .into());
    };
    if &stored.client_id != client_id {
        return Err(no_token(format!(
            "the stored refresh token belongs to client {:?}, not {client_id:?}: run `{login}` again",
            stored.client_id
        ))
        .into());
    }
    let accounts = url::Url::parse(&stored.accounts_server).map_err(|_| {
        Error::Failed(format!(
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
pub(super) async fn token_manager(
    config: &Config,
    store: Arc<dyn TokenStore>,
) -> Result<Arc<TokenManager>, Error> {
    let client = oauth_client(config)?;
    let state = match store.load().await {
        Ok(state) => state,
        Err(e) if store.clone().into_shared().is_some() && e.is_unreachable() => {
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
    let settings = Settings {
        margin: config.token.refresh_margin,
        max_mints_per_10m: config.oauth.max_mints_per_10m,
        request_wait: config.upstream.timeout,
    };
    let manager = TokenManager::new(config.upstream.auth_scheme, client, store, creds, settings);
    manager.check_data_centre(data_centre_check(config));
    manager.restore(&state);
    Ok(manager)
}

/// What Zoho's token answers are checked against: the data centre of the Meeting host in
/// use (of `upstream.url` when it is one of Zoho's, else `oauth.data_center`), and whether
/// nobody chose it (`oauth.data_center` unset and no data centre recorded by `login`).
fn data_centre_check(config: &Config) -> DataCentreCheck {
    let meeting_host = origin(&config.upstream.url).to_owned();
    DataCentreCheck {
        in_use: DataCenter::from_meeting_url(&meeting_host).unwrap_or(config.oauth.data_center),
        meeting_host,
        guessed: config.oauth.data_center_source.is_none(),
        us_accounts: DataCenter::from_accounts_url(origin(&config.oauth.accounts_url))
            == Some(DataCenter::Us),
    }
}

/// Names the data centre of an accounts server, or says it is a custom one.
pub fn describe_accounts(url: &url::Url) -> String {
    match DataCenter::from_accounts_url(origin(url)) {
        Some(dc) => format!("data centre {dc} ({})", origin(url)),
        None => format!("custom accounts server {}", origin(url)),
    }
}

/// The configuration that the commands run with: `config` as the stored login shapes it.
///
/// When the refresh token comes from the token store (not from `oauth.refresh_token`) and
/// the store records the account's data centre (`login` does), that data centre wins over
/// the default: `oauth.data_center` becomes it, the Meeting host (`upstream.url`) follows it
/// unless `upstream.url` was set, and the accounts server becomes the stored one when
/// `oauth.accounts_url` was the default data centre's. An `oauth.data_center` set in the
/// file or the environment that disagrees is a configuration error rather than a silent
/// choice. Loads the store only when the refresh token can come from it.
///
/// # Errors
/// As [`apply_stored_login`], and [`Error::Store`] when the store cannot be read.
pub async fn effective_config(config: &Config, store: &dyn TokenStore) -> Result<Config, Error> {
    if config.oauth.refresh_token.is_some()
        || matches!(config.token.store, StoreConfig::Redis { .. })
    {
        return Ok(config.clone());
    }
    let state = store.load().await?;
    apply_stored_login(config, &state, &store.describe())
}

/// [`effective_config`] for a store state already loaded; `store` names the store in
/// messages.
///
/// # Errors
/// [`Error::Config`] for key `oauth.data_center` when it was set explicitly to
/// another data centre than the stored one (the message names both and the fix);
/// [`Error::Failed`] when the store names a data centre that does not exist.
pub fn apply_stored_login(
    config: &Config,
    state: &StoredState,
    store: &str,
) -> Result<Config, Error> {
    let mut effective = config.clone();
    if config.oauth.refresh_token.is_some() {
        return Ok(effective);
    }
    let Some(stored) = &state.refresh_token else {
        return Ok(effective);
    };
    // A token of another client is refused by `credentials`; its data centre says nothing.
    if stored.client_id != config.oauth.client_id {
        return Ok(effective);
    }
    let Some(name) = &stored.data_center else {
        return Ok(effective);
    };
    let stored_dc: DataCenter = name.parse().map_err(|_: String| {
        Error::Failed(format!(
            "the token store {store} names an unknown data centre {:?}: run `{}` again",
            name.chars().take(16).collect::<String>(),
            config.oauth.login_command()
        ))
    })?;
    let configured = config.oauth.data_center;
    if let Some(source) = &config.oauth.data_center_source {
        if configured != stored_dc {
            let key = config.oauth.key("data_center");
            return Err(ConfigError::Invalid {
                key: key.clone(),
                origin: source.clone(),
                message: format!(
                    "{key} is {:?} ({source}) but `login` stored a refresh token of the {stored_dc} data centre in {store}: remove {key}, set it to {:?}, or run login again",
                    configured.name(),
                    stored_dc.name(),
                ),
            }
            .into());
        }
        return Ok(effective);
    }
    effective.oauth.data_center = stored_dc;
    effective.oauth.data_center_source = Some(format!("recorded by `login` in {store}"));
    if !config.upstream.url_explicit {
        effective.upstream.url = url::Url::parse(stored_dc.meeting_url())
            .map_err(|e| Error::Failed(format!("data centre {stored_dc}: {e}")))?;
    }
    let accounts_was_default =
        DataCenter::from_accounts_url(origin(&config.oauth.accounts_url)) == Some(configured);
    if accounts_was_default && let Ok(accounts) = url::Url::parse(&stored.accounts_server) {
        effective.oauth.accounts_url = accounts;
    }
    Ok(effective)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;
    use crate::token::StoredRefreshToken;

    fn config(extra: &[(&str, &str)]) -> Config {
        let mut figment = Config::figment(None).merge(("oauth.client_id", "1000.ABC"));
        for (key, value) in extra {
            figment = figment.merge((*key, *value));
        }
        Config::from_figment(&figment, None).unwrap()
    }

    fn state(data_center: Option<&str>, client_id: &str) -> StoredState {
        StoredState {
            refresh_token: Some(StoredRefreshToken {
                token: Secret::new("1000.refresh".to_owned()),
                accounts_server: "https://accounts.zoho.eu".to_owned(),
                client_id: client_id.to_owned(),
                data_center: data_center.map(str::to_owned),
                scopes: vec![],
                obtained_at: 0,
            }),
            ..StoredState::default()
        }
    }

    #[test]
    fn a_stored_data_centre_moves_the_meeting_and_accounts_hosts() {
        let c = config(&[]);
        let e = apply_stored_login(&c, &state(Some("eu"), "1000.ABC"), "t.json").unwrap();
        assert_eq!(e.oauth.data_center, DataCenter::Eu);
        assert_eq!(origin(&e.upstream.url), "https://meeting.zoho.eu");
        assert_eq!(origin(&e.oauth.accounts_url), "https://accounts.zoho.eu");
        // The configuration itself is untouched.
        assert_eq!(c.oauth.data_center, DataCenter::Us);
    }

    #[test]
    fn a_set_upstream_url_is_kept() {
        let c = config(&[("upstream.url", "https://meeting.zoho.in")]);
        let e = apply_stored_login(&c, &state(Some("eu"), "1000.ABC"), "t.json").unwrap();
        assert_eq!(e.oauth.data_center, DataCenter::Eu);
        assert_eq!(origin(&e.upstream.url), "https://meeting.zoho.in");
    }

    #[test]
    fn an_explicit_data_centre_that_disagrees_is_a_config_error_naming_both() {
        let c = config(&[("oauth.data_center", "us")]);
        assert!(c.oauth.data_center_source.is_some());
        let err = apply_stored_login(&c, &state(Some("eu"), "1000.ABC"), "t.json").unwrap_err();
        let Error::Config(ConfigError::Invalid { key, message, .. }) = &err else {
            panic!("{err:?}");
        };
        assert_eq!(key, "oauth.data_center");
        for part in [
            "\"us\"",
            "eu data centre",
            "t.json",
            "set it to \"eu\"",
            "login",
        ] {
            assert!(message.contains(part), "{part}: {message}");
        }
        // Agreeing is fine.
        let c = config(&[("oauth.data_center", "eu")]);
        let e = apply_stored_login(&c, &state(Some("eu"), "1000.ABC"), "t.json").unwrap();
        assert_eq!(origin(&e.upstream.url), "https://meeting.zoho.eu");
    }

    #[test]
    fn nothing_changes_without_a_stored_data_centre_of_this_client() {
        let c = config(&[]);
        for s in [
            StoredState::default(),
            state(None, "1000.ABC"),
            state(Some("eu"), "1000.OTHER"),
        ] {
            let e = apply_stored_login(&c, &s, "t.json").unwrap();
            assert_eq!(e.oauth.data_center, DataCenter::Us);
            assert_eq!(origin(&e.upstream.url), "https://meeting.zoho.com");
        }
        // A refresh token from the configuration is not the stored one.
        let c = config(&[("oauth.refresh_token", "1000.configured")]);
        let e = apply_stored_login(&c, &state(Some("eu"), "1000.ABC"), "t.json").unwrap();
        assert_eq!(e.oauth.data_center, DataCenter::Us);
        // A store naming no real data centre says so.
        let c = config(&[]);
        let err = apply_stored_login(&c, &state(Some("mars"), "1000.ABC"), "t.json").unwrap_err();
        assert!(matches!(err, Error::Failed(_)), "{err:?}");
    }
}
