//! The two commands that talk to a running proxy's admin listener: `wait` and `status`
//! (every account's, or one's with `--account`).

use std::time::Duration;

use super::Error;
use crate::config::{Config, ConfigError, DEFAULT_ACCOUNT};

/// `wait`: polls `/readyz` (every account; with `account`, `/readyz?account=NAME`, the name
/// checked against the configuration first) until 200 or the timeout.
pub(super) async fn wait(
    config: &Config,
    timeout: Duration,
    account: Option<&str>,
) -> Result<(), Error> {
    let url = match account {
        Some(name) => {
            config.require_account(name)?;
            admin_url(config, &format!("/readyz?account={name}"))?
        }
        None => admin_url(config, "/readyz")?,
    };
    let client = local_client()?;
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let answer = client.get(&url).send().await;
        if let Ok(response) = &answer
            && response.status().is_success()
        {
            eprintln!("ready");
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            let why = match &answer {
                Err(error) if is_refused(error) => format!(
                    "nothing is listening on {} (is the proxy running, with this configuration's server.admin_listen?)",
                    admin_addr(&url)
                ),
                Err(error) => format!("{url}: {}", crate::telemetry::chain(error)),
                Ok(response) => format!("{url} answers {}", response.status()),
            };
            return Err(Error::Failed(format!(
                "not ready after {}: {why}",
                humantime::format_duration(timeout)
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `status`: prints the running proxy's `/status` for a person: with `account`, that
/// account's entry of `accounts` (the name checked against the configuration first);
/// without, `default`'s as the only one, or every account's, `default` first, each labelled,
/// when the proxy runs more than one.
pub(super) async fn status(config: &Config, account: Option<&str>) -> Result<(), Error> {
    if let Some(name) = account {
        config.require_account(name)?;
    }
    let url = admin_url(config, "/status")?;
    let response = local_client()?.get(&url).send().await.map_err(|e| {
        Error::Failed(if is_refused(&e) {
            format!(
                "nothing is listening on {} (is the proxy running, with this configuration's server.admin_listen?)",
                admin_addr(&url)
            )
        } else {
            format!("no proxy answers at {url}: {}", crate::telemetry::chain(&e))
        })
    })?;
    let json: serde_json::Value = response
        .json()
        .await
        .map_err(|_| Error::Failed(format!("{url} did not answer JSON")))?;
    let accounts = json["accounts"].as_object();
    if let Some(name) = account {
        let entry = accounts.and_then(|a| a.get(name)).or_else(|| {
            // A proxy from before several accounts reports `default` at the top level only.
            (name == DEFAULT_ACCOUNT && accounts.is_none()).then_some(&json)
        });
        let Some(entry) = entry else {
            return Err(Error::Failed(format!(
                "the proxy at {} runs no account {name:?} (its accounts: {}): it runs another configuration, or has not been reloaded (SIGHUP) since the account was added",
                admin_addr(&url),
                names(accounts).join(", ")
            )));
        };
        println!("account:            {name}");
        print_status(entry);
        return Ok(());
    }
    match accounts.filter(|a| a.len() > 1) {
        None => print_status(&json),
        Some(all) => {
            for (i, name) in names(Some(all)).iter().enumerate() {
                if i > 0 {
                    println!();
                }
                println!("account:            {name}");
                print_status(&all[name.as_str()]);
            }
        }
    }
    Ok(())
}

/// The account names of a `/status` `accounts` map, `default` first, then by name.
fn names(accounts: Option<&serde_json::Map<String, serde_json::Value>>) -> Vec<String> {
    let mut names: Vec<String> = accounts
        .map(|a| a.keys().cloned().collect())
        .unwrap_or_default();
    names.sort_by_key(|n| (n != DEFAULT_ACCOUNT, n.clone()));
    names
}

/// Prints one account's `/status` fields, one per line.
fn print_status(json: &serde_json::Value) {
    let field = |name: &str| match &json[name] {
        serde_json::Value::Null => "-".to_owned(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    println!("ready:              {}", field("ready"));
    if !json["reason"].is_null() {
        println!("reason:             {}", field("reason"));
    }
    if !json["blocked_by"].is_null() {
        println!("blocked by:         {}", field("blocked_by"));
    }
    if json["upstream_rejects_fresh_tokens"] == true {
        println!("upstream rejects freshly minted tokens: true");
    }
    if !json["hint"].is_null() {
        println!("hint:               {}", field("hint"));
    }
    let seconds = |name: &str| match json[name].as_u64() {
        Some(s) => format!("{s} s"),
        None => "-".to_owned(),
    };
    println!("token expires in:   {}", seconds("token_expires_in_s"));
    println!("token fingerprint:  {}", field("token_fingerprint"));
    println!("last refresh:       {}", field("last_refresh"));
    println!("last error:         {}", field("last_error"));
    println!(
        "mints in window:    {} ({} left)",
        field("mints_in_window"),
        field("mints_left")
    );
    println!("refresh stopped:    {}", field("refresh_stopped"));
    println!("next attempt in:    {}", seconds("next_attempt_in_s"));
    println!("accounts server:    {}", field("accounts_server"));
}

fn admin_url(config: &Config, path: &str) -> Result<String, Error> {
    match config.server.admin_listen {
        Some(mut addr) => {
            // Listening on every address (a container's `0.0.0.0:9090`): ask over loopback.
            if addr.ip().is_unspecified() {
                addr.set_ip(match addr {
                    std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                    std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
                });
            }
            Ok(format!("http://{addr}{path}"))
        }
        None => Err(ConfigError::Invalid {
            key: "server.admin_listen".into(),
            origin: "the configuration".into(),
            message: "the admin listener is disabled; this command needs it".into(),
        }
        .into()),
    }
}

/// Whether nothing listens where `error` tried to connect.
fn is_refused(error: &reqwest::Error) -> bool {
    error.is_connect()
        && crate::telemetry::error_chain(error).any(|e| {
            e.downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::ConnectionRefused)
        })
}

/// `host:port` of an admin URL.
fn admin_addr(url: &str) -> &str {
    let rest = url.strip_prefix("http://").unwrap_or(url);
    rest.split('/').next().unwrap_or(rest)
}

fn local_client() -> Result<reqwest::Client, Error> {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(2))
        .build()
        .map_err(|e| Error::Failed(format!("cannot build an HTTP client: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_are_listed_default_first_then_by_name() {
        let json = serde_json::json!({ "beta": {}, "acme": {}, "default": {}, "zeta": {} });
        assert_eq!(names(json.as_object()), ["default", "acme", "beta", "zeta"]);
        assert!(names(None).is_empty());
    }

    #[test]
    fn commands_reach_an_admin_listener_on_every_address_over_loopback() {
        let mut config = Config::from_figment(&figment::Figment::new(), None).unwrap();
        config.server.admin_listen = Some("0.0.0.0:9090".parse().unwrap());
        assert_eq!(
            admin_url(&config, "/readyz").unwrap(),
            "http://127.0.0.1:9090/readyz"
        );
        config.server.admin_listen = Some("[::]:9090".parse().unwrap());
        assert_eq!(admin_url(&config, "/x").unwrap(), "http://[::1]:9090/x");
        config.server.admin_listen = Some("10.1.2.3:9090".parse().unwrap());
        assert_eq!(admin_url(&config, "/x").unwrap(), "http://10.1.2.3:9090/x");
    }
}
