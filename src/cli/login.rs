//! `login`: obtain a refresh token and keep it in the token store.
//!
//! Two ways:
//! - the browser flow (authorization code grant, RFC 6749 §4.1, with Zoho's multi-DC
//!   redirect parameters): print — and unless `--no-browser`, open — the authorization URL
//!   with `access_type=offline`, `prompt=consent` and a random `state`; listen once on the
//!   loopback `oauth.redirect_uri`; check `state`; accept the redirect's `accounts-server`
//!   only if it is one of Zoho's accounts servers or the configured `oauth.accounts_url`
//!   (it arrives through the browser, and the client secret is about to be sent to it);
//!   exchange the code there and store the refresh token, and only then answer the browser:
//!   "Logged in" once the token is stored, "Login failed" with the reason otherwise;
//! - `--code GRANT`: exchange a Self Client grant code at the configured accounts server.
//!
//! `--account NAME` logs in that `[[accounts]]` entry: `run` gets the account's view
//! ([`Config::for_account`]), whose client, scopes and store (`token-NAME.json`) are its own.
//!
//! Either way the account's data centre is stored with the refresh token (the redirect's
//! `location`, else its accounts server's, else `oauth.data_center`), and a refresh token the
//! store held before is revoked once the new one is stored, unless `--keep-old`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rand::RngCore;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use url::Url;

use super::{Error, LoginArgs};
use crate::app::{describe_accounts, oauth_client, open_store};
use crate::config::{Config, DataCenter, origin};
use crate::secret::Secret;
use crate::token::{Login, Retired, Revocation, retire_login, save_login};

/// A redirect that reached the listener, with the way to answer the browser.
struct Callback {
    query: String,
    reply: oneshot::Sender<Response<Full<Bytes>>>,
}

/// A redirect with a grant code, whose browser still waits for its answer.
struct Redirect {
    code: Secret<String>,
    /// The accounts server to exchange the code at.
    accounts: Url,
    /// The redirect URI the code was issued for.
    uri: Url,
    /// The data centre the redirect's `location` names.
    location: Option<DataCenter>,
    browser: Browser,
}

/// The browser waiting on the redirect listener, until [`Browser::answer`].
struct Browser {
    reply: oneshot::Sender<Response<Full<Bytes>>>,
    server: tokio::task::JoinHandle<()>,
}

/// What the redirect said, once `state` matched.
enum Outcome {
    Code {
        code: Secret<String>,
        accounts: Url,
        /// The redirect's `location`, when it names one of Zoho's data centres.
        location: Option<DataCenter>,
    },
    Refused(String),
}

/// Runs `login`.
pub(super) async fn run(config: &Config, args: LoginArgs) -> Result<(), Error> {
    let client = oauth_client(config)?;
    if matches!(config.token.store, crate::config::StoreConfig::Redis { .. }) {
        return Err(Error::Failed(
            "token.store = \"redis\" never keeps refresh tokens: log in with token.store = \"file\", then give every replica the refresh token with oauth.refresh_token_file".into(),
        ));
    }
    let store = open_store(config)?;
    if !store.is_persistent() {
        return Err(Error::Failed(
            "token.store = \"memory\" cannot keep a refresh token: use the file store for login"
                .into(),
        ));
    }
    // Refuse early, before any code is spent, if the store is unusable.
    let previous = store.load().await?.refresh_token;

    let (accounts, code, redirect_uri, location, browser) = match args.code {
        Some(code) => (
            config.oauth.accounts_url.clone(),
            Secret::new(code),
            None,
            None,
            None,
        ),
        None => {
            let redirect = browser_flow(config, args.no_browser, args.timeout).await?;
            (
                redirect.accounts,
                redirect.code,
                Some(redirect.uri),
                redirect.location,
                Some(redirect.browser),
            )
        }
    };
    let data_center = account_data_center(config, location, &accounts);
    let stored = exchange_and_store(
        &client,
        &store,
        config,
        &accounts,
        &code,
        redirect_uri.as_ref(),
        data_center,
    )
    .await;
    if let Some(browser) = browser {
        browser.answer(result_page(config, &stored)).await;
    }
    let refresh_token = stored?;
    eprintln!(
        "Logged in at {} (data centre {data_center}){}. The refresh token is stored in {}.",
        describe_accounts(&accounts),
        as_account(config),
        store.describe()
    );
    // Only now that the new token is safe: each login mints a refresh token, and Zoho
    // silently drops the oldest past 20 per client.
    let retired = retire_login(&client, previous, &refresh_token, args.keep_old).await;
    print_retired(retired);
    Ok(())
}

/// Says what became of the refresh token the new login replaced. A failure is a warning:
/// the new token is stored either way.
fn print_retired(retired: Retired) {
    match retired {
        Retired::Nothing => {}
        Retired::BadAccountsServer => eprintln!(
            "warning: the previous refresh token names a bad accounts server, so it was not revoked: revoke it in Zoho's console (Connected Apps)."
        ),
        Retired::Kept(accounts) => eprintln!(
            "Kept the previous refresh token (--keep-old): it stays valid at {} until revoked there.",
            describe_accounts(&accounts)
        ),
        Retired::Revoked(accounts, Revocation::Revoked) => eprintln!(
            "Revoked the previous refresh token at {}.",
            describe_accounts(&accounts)
        ),
        Retired::Revoked(accounts, Revocation::Unknown(code)) => eprintln!(
            "The previous refresh token was already unknown at {} ({code}): nothing to revoke.",
            describe_accounts(&accounts)
        ),
        Retired::Failed(accounts, e) => eprintln!(
            "warning: could not revoke the previous refresh token at {}: {}. The new one is stored; the old one may still be valid: revoke it in Zoho's console (Connected Apps).",
            describe_accounts(&accounts),
            super::report(&e)
        ),
    }
}

/// Exchanges the grant code at `accounts` and stores the refresh token with its first access
/// token and the account's data centre; returns the refresh token.
///
/// # Errors
/// The token endpoint's refusal or failure, an answer without a refresh token, or a store
/// that cannot be written.
async fn exchange_and_store(
    client: &crate::token::OAuthClient,
    store: &Arc<dyn crate::token::TokenStore>,
    config: &Config,
    accounts: &Url,
    code: &Secret<String>,
    redirect_uri: Option<&Url>,
    data_center: DataCenter,
) -> Result<Secret<String>, Error> {
    let grant = client
        .exchange_code(accounts, code, redirect_uri.map(Url::as_str))
        .await?;
    let Some(refresh_token) = grant
        .refresh_token
        .as_ref()
        .map(|t| Secret::new(t.expose().clone()))
    else {
        return Err(Error::Failed(
            "Zoho returned no refresh token: the grant must be made with access_type=offline (Self Client codes always are)".into(),
        ));
    };
    let login = Login {
        client_id: config.oauth.client_id.clone(),
        refresh_token: refresh_token.clone(),
        accounts: accounts.clone(),
        data_center,
        grant,
        scopes: config.oauth.scopes.clone(),
    };
    save_login(store, login).await?;
    Ok(refresh_token)
}

/// The browser's answer once the exchange and the store are done: "Logged in", or "Login
/// failed" with the reason (errors never carry a secret).
fn result_page(config: &Config, stored: &Result<Secret<String>, Error>) -> Response<Full<Bytes>> {
    match stored {
        Ok(_) => page(
            StatusCode::OK,
            "Logged in",
            &format!(
                "zoho-meeting-proxy exchanged the authorization for a refresh token{} and stored it. You can close this window.",
                if config.oauth.is_default() {
                    String::new()
                } else {
                    format!(" for account {}", config.account())
                }
            ),
        ),
        Err(error) => {
            let status = match error {
                Error::Token(_) => StatusCode::BAD_GATEWAY,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            page(
                status,
                "Login failed",
                &format!(
                    "zoho-meeting-proxy could not complete the login: {}. The terminal running login says more.",
                    super::report(error)
                ),
            )
        }
    }
}

/// ` as account NAME` when logging in an account beside `default`, else nothing.
fn as_account(config: &Config) -> String {
    if config.oauth.is_default() {
        String::new()
    } else {
        format!(" as account {}", config.account())
    }
}

/// The account's data centre: the redirect's `location` when it names one, else the one
/// whose accounts server issued the code, else (a custom accounts server) the configured
/// `oauth.data_center`.
fn account_data_center(
    config: &Config,
    location: Option<DataCenter>,
    accounts: &Url,
) -> DataCenter {
    location
        .or_else(|| DataCenter::from_accounts_url(origin(accounts)))
        .unwrap_or(config.oauth.data_center)
}

/// The browser flow up to a verified grant code, with the browser left waiting for the
/// result ([`Browser::answer`]). A redirect that is refused is answered at once.
///
/// A redirect URI with port 0 listens on a port the system picks (handy with the sandbox's
/// emulator; a real Zoho client needs the exact registered URI).
async fn browser_flow(
    config: &Config,
    no_browser: bool,
    timeout: Duration,
) -> Result<Redirect, Error> {
    let mut redirect = config.oauth.redirect_uri.clone();
    let addr = redirect_addr(&redirect)?;
    let listener = TcpListener::bind(addr).await.map_err(|source| Error::Io {
        what: format!("cannot listen on {addr} for the login redirect (oauth.redirect_uri)"),
        source,
    })?;
    if redirect.port() == Some(0) {
        let bound = listener.local_addr().map_err(|source| Error::Io {
            what: "cannot read the login listener's port".into(),
            source,
        })?;
        // Cannot fail for an http URL with a host, which validation guarantees.
        let _ = redirect.set_port(Some(bound.port()));
    }
    let state = random_state();
    let auth_url = authorization_url(config, &redirect, &state);
    println!("{auth_url}");
    if !no_browser {
        eprintln!(
            "Opening the authorization page in your browser; if nothing opens, visit the URL above."
        );
        open_browser(auth_url.as_str());
    }
    eprintln!("Waiting for Zoho's redirect to {redirect} ...");
    let redirect_for_exchange = redirect.clone();

    let (tx, mut rx) = mpsc::channel::<Callback>(16);
    let path = redirect.path().to_owned();
    let server = tokio::spawn(serve_redirects(listener, path, tx));
    let result = tokio::time::timeout(timeout, async {
        while let Some(cb) = rx.recv().await {
            let params: HashMap<String, String> = url::form_urlencoded::parse(cb.query.as_bytes())
                .into_owned()
                .collect();
            if !params
                .get("state")
                .is_some_and(|s| constant_time_eq(s.as_bytes(), state.as_bytes()))
            {
                tracing::warn!("login redirect with a missing or wrong state ignored");
                let _ = cb.reply.send(page(
                    StatusCode::BAD_REQUEST,
                    "Login not accepted",
                    "This redirect does not belong to the login in progress (state mismatch).",
                ));
                continue;
            }
            return Some((judge(config, &params), cb.reply));
        }
        None
    })
    .await;
    // Redirects that arrive from now on are told the login is over.
    drop(rx);
    match result {
        Err(_) => {
            server.abort();
            Err(Error::Failed(format!(
                "no redirect arrived within {}; run login again",
                humantime::format_duration(timeout)
            )))
        }
        Ok(None) => {
            server.abort();
            Err(Error::Failed("the redirect listener stopped".into()))
        }
        Ok(Some((Outcome::Refused(why), reply))) => {
            Browser { reply, server }
                .answer(page(StatusCode::BAD_REQUEST, "Login failed", &why))
                .await;
            Err(Error::Failed(why))
        }
        Ok(Some((
            Outcome::Code {
                code,
                accounts,
                location,
            },
            reply,
        ))) => Ok(Redirect {
            code,
            accounts,
            uri: redirect_for_exchange,
            location,
            browser: Browser { reply, server },
        }),
    }
}

// === impl Browser ===

impl Browser {
    /// Answers the waiting browser with `page`, then closes the redirect listener.
    async fn answer(self, page: Response<Full<Bytes>>) {
        // The browser may have given up; the terminal says what happened either way.
        let _ = self.reply.send(page);
        // Let the answer reach the browser before the listener goes.
        tokio::time::sleep(Duration::from_millis(100)).await;
        self.server.abort();
    }
}

/// Decides what a redirect with the right `state` means.
fn judge(config: &Config, params: &HashMap<String, String>) -> Outcome {
    if let Some(error) = params.get("error") {
        return Outcome::Refused(format!("Zoho refused the authorization: {}", short(error)));
    }
    let Some(code) = params.get("code").filter(|c| !c.is_empty()) else {
        return Outcome::Refused("the redirect carried no code".into());
    };
    let accounts = match params.get("accounts-server") {
        None => config.oauth.accounts_url.clone(),
        Some(server) => match allowed_accounts_server(config, server) {
            Some(url) => url,
            None => {
                tracing::warn!(
                    "login redirect named an accounts server that is not Zoho's; refused"
                );
                return Outcome::Refused(format!(
                    "the redirect names accounts server {:?}, which is not one of Zoho's: refusing to send the client secret there",
                    short(server)
                ));
            }
        },
    };
    let location = params.get("location").and_then(|l| l.parse().ok());
    Outcome::Code {
        code: Secret::new(code.clone()),
        accounts,
        location,
    }
}

/// The accounts server from a redirect, if it is one of Zoho's or the configured one.
fn allowed_accounts_server(config: &Config, server: &str) -> Option<Url> {
    let url = Url::parse(server).ok()?;
    if DataCenter::from_accounts_url(origin(&url)).is_some() && url.path() == "/" {
        return Some(url);
    }
    (origin(&url) == origin(&config.oauth.accounts_url)).then_some(url)
}

/// `{accounts}/oauth/v2/auth?scope=..&client_id=..&response_type=code&access_type=offline&prompt=consent&redirect_uri=..&state=..`
fn authorization_url(config: &Config, redirect: &Url, state: &str) -> Url {
    let mut url = config.oauth.accounts_url.clone();
    url.set_path("oauth/v2/auth");
    url.query_pairs_mut()
        .append_pair("scope", &config.oauth.scopes.join(","))
        .append_pair("client_id", &config.oauth.client_id)
        .append_pair("response_type", "code")
        .append_pair("access_type", "offline")
        .append_pair("prompt", "consent")
        .append_pair("redirect_uri", redirect.as_str())
        .append_pair("state", state);
    url
}

fn redirect_addr(redirect: &Url) -> Result<SocketAddr, Error> {
    let port = redirect.port().unwrap_or(80);
    let ip = match redirect.host() {
        Some(url::Host::Ipv4(ip)) => ip.into(),
        Some(url::Host::Ipv6(ip)) => ip.into(),
        _ => std::net::Ipv4Addr::LOCALHOST.into(),
    };
    Ok(SocketAddr::new(ip, port))
}

/// Accepts connections and hands each request on the redirect path to the login task.
async fn serve_redirects(listener: TcpListener, path: String, tx: mpsc::Sender<Callback>) {
    let path = Arc::new(path);
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let tx = tx.clone();
        let path = path.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req: Request<Incoming>| {
                let tx = tx.clone();
                let path = path.clone();
                async move { Ok::<_, Infallible>(handle(req, &path, &tx).await) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn handle(
    req: Request<Incoming>,
    path: &str,
    tx: &mpsc::Sender<Callback>,
) -> Response<Full<Bytes>> {
    if req.uri().path() != path {
        return page(
            StatusCode::NOT_FOUND,
            "Not found",
            "This is zoho-meeting-proxy's login listener.",
        );
    }
    let (reply, answer) = oneshot::channel();
    let query = req.uri().query().unwrap_or("").to_owned();
    if tx.send(Callback { query, reply }).await.is_err() {
        return page(
            StatusCode::GONE,
            "Login over",
            "This login has already finished.",
        );
    }
    answer.await.unwrap_or_else(|_| {
        page(
            StatusCode::GONE,
            "Login over",
            "This login has already finished.",
        )
    })
}

fn page(status: StatusCode, title: &str, text: &str) -> Response<Full<Bytes>> {
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{t}</title></head>\
         <body style=\"font-family:sans-serif;max-width:40em;margin:4em auto\"><h1>{t}</h1><p>{x}</p></body></html>\n",
        t = escape(title),
        x = escape(text)
    );
    let mut response = Response::new(Full::new(Bytes::from(html)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    headers.insert(
        http::header::CONNECTION,
        http::HeaderValue::from_static("close"),
    );
    response
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Caps text taken from a redirect before it is shown or logged.
fn short(text: &str) -> String {
    text.chars().take(120).collect()
}

fn random_state() -> String {
    let mut bytes = [0u8; 24];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Best effort: hands the URL to the desktop's opener; failures are silent (the URL is printed).
fn open_browser(url: &str) {
    let candidates: &[&str] = if cfg!(target_os = "macos") {
        &["open"]
    } else {
        &["xdg-open", "sensible-browser"]
    };
    for program in candidates {
        let spawned = std::process::Command::new(program)
            .arg(url)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        if spawned.is_ok() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        let figment = Config::figment(None).merge(("oauth.client_id", "1000.ABC"));
        Config::from_figment(&figment, None).unwrap()
    }

    #[test]
    fn authorization_url_has_every_parameter() {
        let c = config();
        let url = authorization_url(&c, &c.oauth.redirect_uri, "s123");
        let q: HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(url.path(), "/oauth/v2/auth");
        assert_eq!(url.host_str(), Some("accounts.zoho.com"));
        assert_eq!(
            q["scope"],
            "ZohoMeeting.manageOrg.READ,ZohoMeeting.meeting.READ"
        );
        assert_eq!(q["client_id"], "1000.ABC");
        assert_eq!(q["response_type"], "code");
        assert_eq!(q["access_type"], "offline");
        assert_eq!(q["prompt"], "consent");
        assert_eq!(q["redirect_uri"], "http://127.0.0.1:8765/callback");
        assert_eq!(q["state"], "s123");
    }

    #[test]
    fn only_zoho_accounts_servers_are_trusted() {
        let c = config();
        assert!(allowed_accounts_server(&c, "https://accounts.zoho.eu").is_some());
        assert!(allowed_accounts_server(&c, "https://accounts.zohocloud.ca").is_some());
        assert!(allowed_accounts_server(&c, "https://accounts.zoho.eu.evil.com").is_none());
        assert!(allowed_accounts_server(&c, "http://accounts.zoho.eu").is_none());
        assert!(allowed_accounts_server(&c, "https://evil.example").is_none());
        assert!(allowed_accounts_server(&c, "not a url").is_none());
    }

    #[test]
    fn the_data_centre_comes_from_location_then_accounts_server_then_configuration() {
        let c = config();
        let custom = Url::parse("http://127.0.0.1:9/").unwrap();
        let eu = Url::parse("https://accounts.zoho.eu").unwrap();
        assert_eq!(
            account_data_center(&c, Some(DataCenter::Jp), &eu),
            DataCenter::Jp
        );
        assert_eq!(account_data_center(&c, None, &eu), DataCenter::Eu);
        assert_eq!(account_data_center(&c, None, &custom), DataCenter::Us);

        let params = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        let judged = |pairs: &[(&str, &str)]| match judge(&c, &params(pairs)) {
            Outcome::Code { location, .. } => location,
            Outcome::Refused(why) => panic!("{why}"),
        };
        assert_eq!(
            judged(&[("code", "1000.x"), ("location", "EU")]),
            Some(DataCenter::Eu)
        );
        assert_eq!(judged(&[("code", "1000.x"), ("location", "mars")]), None);
        assert_eq!(judged(&[("code", "1000.x")]), None);
    }

    #[test]
    fn states_compare_exactly() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert_eq!(random_state().len(), 48);
        assert_ne!(random_state(), random_state());
    }
}
