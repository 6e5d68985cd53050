//! Configuration layering, validation and redaction, each test in its own `figment::Jail`
//! (a fresh working directory; environment variables set through the jail are restored).

use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Jail;
use zoho_meeting_proxy::config::{
    AuthScheme, CONFIG_ENV, Config, ConfigError, DATA_CENTERS, DataCenter, Listen, LogFormat,
    LogOutput, StoreConfig, origin,
};

/// The file every test writes in its jail.
const FILE: &str = "proxy.toml";

/// The example shipped at the crate root.
const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/proxy.toml.example");

/// Every data centre with its accounts server and Meeting API host.
const DC_HOSTS: [(&str, &str, &str); 9] = [
    (
        "us",
        "https://accounts.zoho.com",
        "https://meeting.zoho.com",
    ),
    ("eu", "https://accounts.zoho.eu", "https://meeting.zoho.eu"),
    ("in", "https://accounts.zoho.in", "https://meeting.zoho.in"),
    (
        "au",
        "https://accounts.zoho.com.au",
        "https://meeting.zoho.com.au",
    ),
    ("jp", "https://accounts.zoho.jp", "https://meeting.zoho.jp"),
    (
        "ca",
        "https://accounts.zohocloud.ca",
        "https://meeting.zohocloud.ca",
    ),
    ("sa", "https://accounts.zoho.sa", "https://meeting.zoho.sa"),
    ("uk", "https://accounts.zoho.uk", "https://meeting.zoho.uk"),
    (
        "cn",
        "https://accounts.zoho.com.cn",
        "https://meeting.zoho.com.cn",
    ),
];

/// Distinctive secret values that must never be printed.
const CLIENT_SECRET: &str = "cs-SENTINEL-7f3a9";
const REFRESH_TOKEN: &str = "1000.rt-SENTINEL-b41c.e2d0";
const CLIENT_KEY_1: &str = "ck-SENTINEL-one-55aa";
const CLIENT_KEY_2: &str = "ck-SENTINEL-two-66bb";
const REDIS_URL: &str = "rediss://:pw-SENTINEL-c0ffee@redis.internal:6380";

// === helpers ===

/// Runs `f` in a fresh jail and returns what it returns.
#[expect(
    clippy::result_large_err,
    reason = "figment::Jail's closure must return figment::Error"
)]
fn in_jail<T>(f: impl FnOnce(&mut Jail) -> T) -> T {
    let mut out = None;
    Jail::expect_with(|jail| {
        out = Some(f(jail));
        Ok(())
    });
    out.expect("the jail ran the closure")
}

/// Writes `toml` to `./proxy.toml` in the jail and loads it with the jail's environment.
fn load_toml(jail: &Jail, toml: &str) -> Result<Config, ConfigError> {
    jail.create_file(FILE, toml).unwrap();
    Config::load(Some(Path::new(FILE)))
}

/// [`load_toml`] in a jail of its own, with no environment variables set.
fn load_file(toml: &str) -> Result<Config, ConfigError> {
    in_jail(|jail| load_toml(jail, toml))
}

/// A configuration that must load.
#[track_caller]
fn accepted(result: Result<Config, ConfigError>) -> Config {
    match result {
        Ok(config) => config,
        Err(e) => panic!("configuration refused: {e}"),
    }
}

/// Asserts an [`ConfigError::Invalid`] naming `key` and a source containing `source`, in its
/// fields and in its message; returns the message.
#[track_caller]
fn refused(result: Result<Config, ConfigError>, key: &str, source: &str) -> String {
    let err = match result {
        Ok(config) => panic!("accepted, but `{key}` should be refused: {config:?}"),
        Err(e) => e,
    };
    let text = err.to_string();
    let ConfigError::Invalid {
        key: got, origin, ..
    } = &err
    else {
        panic!("expected ConfigError::Invalid for `{key}`, got: {text}");
    };
    assert_eq!(got, key, "{text}");
    assert!(
        origin.contains(source),
        "origin should name {source}: {text}"
    );
    assert!(text.contains(key), "{text}");
    assert!(text.contains(source), "{text}");
    text
}

/// A file that must be refused for `key`, named with the file.
#[track_caller]
fn refused_file(toml: &str, key: &str) -> String {
    refused(load_file(toml), key, FILE)
}

/// Asserts the documented defaults (interface.md, Configuration).
#[track_caller]
fn assert_defaults(cfg: &Config) {
    let s = &cfg.server;
    assert_eq!(s.listen, Listen::Tcp("127.0.0.1:8080".parse().unwrap()));
    assert_eq!(s.admin_listen, Some("127.0.0.1:9090".parse().unwrap()));
    assert_eq!(s.allowed_hosts, ["localhost", "127.0.0.1", "[::1]"]);
    assert_eq!(s.shutdown_grace, Duration::from_secs(30));
    assert_eq!(s.worker_threads, 0);
    assert!(s.allowed_origins.is_empty());
    assert_eq!(s.client_keys_file, None);
    assert!(s.client_keys.is_empty());
    assert!(!s.allow_remote_without_keys);

    let o = &cfg.oauth;
    assert_eq!(o.data_center, DataCenter::Us);
    assert_eq!(o.client_id, "");
    assert!(o.client_secret.is_none());
    assert!(o.client_secret_file.is_none());
    assert!(o.refresh_token.is_none());
    assert!(o.refresh_token_file.is_none());
    assert_eq!(
        o.scopes,
        ["ZohoMeeting.manageOrg.READ", "ZohoMeeting.meeting.READ"]
    );
    assert_eq!(o.redirect_uri.as_str(), "http://127.0.0.1:8765/callback");
    assert_eq!(origin(&o.accounts_url), "https://accounts.zoho.com");
    assert_eq!(o.max_mints_per_10m, 10);

    let u = &cfg.upstream;
    assert_eq!(origin(&u.url), "https://meeting.zoho.com");
    assert_eq!(u.auth_scheme, AuthScheme::ZohoOauthtoken);
    assert_eq!(u.ca_file, None);
    assert_eq!(u.connect_timeout, Duration::from_secs(5));
    assert_eq!(u.timeout, Duration::from_secs(60));
    assert_eq!(u.replay_body_limit, 65536);
    assert_eq!(u.max_h2_connections, 16);
    assert_eq!(u.idle_timeout, Duration::from_secs(90));

    assert!(matches!(cfg.token.store, StoreConfig::File(None)));
    assert_eq!(cfg.token.refresh_margin, Duration::from_secs(300));

    assert!(cfg.access.rules.is_empty());
    assert!(!cfg.access.read_only);

    let l = &cfg.limits;
    assert_eq!(l.max_header_bytes, 65536);
    assert_eq!(l.max_uri_bytes, 8192);
    assert_eq!(l.max_body_bytes, None);
    assert_eq!(l.max_connections, 10000);
    assert_eq!(l.max_in_flight, None);

    assert_eq!(cfg.log.format, LogFormat::Pretty);
    assert_eq!(cfg.log.level, "info");
    assert_eq!(cfg.log.output, LogOutput::Stderr);
}

/// A file setting every secret, inline, to the distinctive values above.
fn secrets_toml() -> String {
    format!(
        r#"
[server]
client_keys = ["{CLIENT_KEY_1}", "{CLIENT_KEY_2}"]

[oauth]
client_id = "1000.VISIBLECLIENTID"
client_secret = "{CLIENT_SECRET}"
refresh_token = "{REFRESH_TOKEN}"

[token]
redis_url = "{REDIS_URL}"
"#
    )
}

#[track_caller]
fn assert_no_secrets(text: &str) {
    for secret in [
        CLIENT_SECRET,
        REFRESH_TOKEN,
        CLIENT_KEY_1,
        CLIENT_KEY_2,
        REDIS_URL,
        "SENTINEL",
    ] {
        assert!(!text.contains(secret), "{secret:?} leaked into:\n{text}");
    }
}

// === defaults and layering ===

#[test]
fn defaults_without_file_or_env() {
    let cfg = in_jail(|_| accepted(Config::load(None)));
    assert_defaults(&cfg);
    assert_eq!(cfg.file, None);
}

#[test]
fn empty_file_gives_defaults_and_records_the_file() {
    let cfg = accepted(load_file(""));
    assert_defaults(&cfg);
    assert_eq!(cfg.file.as_deref(), Some(Path::new(FILE)));
}

#[test]
fn every_data_center_maps_to_its_accounts_and_meeting_hosts() {
    assert_eq!(DC_HOSTS.len(), DATA_CENTERS.len());
    for dc in DATA_CENTERS {
        assert!(DC_HOSTS.iter().any(|(name, ..)| *name == dc.name()), "{dc}");
    }
    for (name, accounts, meeting) in DC_HOSTS {
        let cfg = accepted(load_file(&format!("[oauth]\ndata_center = \"{name}\"\n")));
        assert_eq!(cfg.oauth.data_center.name(), name);
        assert_eq!(origin(&cfg.oauth.accounts_url), accounts, "{name}");
        assert_eq!(origin(&cfg.upstream.url), meeting, "{name}");
    }
}

#[test]
fn data_center_names_are_case_insensitive() {
    let cfg = accepted(load_file("[oauth]\ndata_center = \"EU\"\n"));
    assert_eq!(cfg.oauth.data_center, DataCenter::Eu);
}

#[test]
fn an_empty_data_center_is_unset_so_login_decides() {
    // proxy.toml.example's `data_center = ""`: the default, and not an explicit choice that
    // a stored EU login would have to agree with.
    let cfg = accepted(load_file("[oauth]\ndata_center = \"\"\n"));
    assert_eq!(cfg.oauth.data_center, DataCenter::Us);
    assert_eq!(cfg.oauth.data_center_source, None);
    let set = accepted(load_file("[oauth]\ndata_center = \"us\"\n"));
    assert!(set.oauth.data_center_source.is_some());
}

#[test]
fn data_center_from_env_overrides_the_file() {
    let cfg = in_jail(|jail| {
        jail.set_env("ZOHO_PROXY_OAUTH__DATA_CENTER", "eu");
        accepted(load_toml(jail, "[oauth]\ndata_center = \"us\"\n"))
    });
    assert_eq!(cfg.oauth.data_center, DataCenter::Eu);
    assert_eq!(origin(&cfg.oauth.accounts_url), "https://accounts.zoho.eu");
    assert_eq!(origin(&cfg.upstream.url), "https://meeting.zoho.eu");
}

#[test]
fn explicit_urls_override_the_data_center() {
    let cfg = accepted(load_file(
        "[oauth]\ndata_center = \"eu\"\naccounts_url = \"http://127.0.0.1:1234\"\n\
         [upstream]\nurl = \"https://meeting.zoho.com\"\n",
    ));
    assert_eq!(cfg.oauth.data_center, DataCenter::Eu);
    assert_eq!(origin(&cfg.oauth.accounts_url), "http://127.0.0.1:1234");
    assert_eq!(origin(&cfg.upstream.url), "https://meeting.zoho.com");
}

#[test]
fn hosts_outside_zoho_are_refused_for_upstream_and_accounts() {
    for (key, section, value) in [
        (
            "upstream.url",
            "upstream",
            "url = \"https://meeting.example.test\"",
        ),
        (
            "upstream.url",
            "upstream",
            "url = \"https://meeting.zoho.com.evil.example\"",
        ),
        (
            "oauth.accounts_url",
            "oauth",
            "accounts_url = \"https://accounts.zoho.co\"",
        ),
    ] {
        let message = refused(
            load_file(&format!("[{section}]\n{value}\n")),
            key,
            "proxy.toml",
        );
        assert!(message.contains("Zoho"), "{message}");
    }
    let cfg = accepted(load_file("[upstream]\nurl = \"https://localhost:8443\"\n"));
    assert_eq!(origin(&cfg.upstream.url), "https://localhost:8443");
}

#[test]
fn remote_listening_needs_client_keys_or_an_explicit_opt_out() {
    let message = refused(
        load_file("[server]\nlisten = \"0.0.0.0:8080\"\n"),
        "server.listen",
        "proxy.toml",
    );
    assert!(message.contains("client_keys"), "{message}");
    let cfg = accepted(load_file(
        "[server]\nlisten = \"0.0.0.0:8080\"\nclient_keys = [\"k1\"]\n",
    ));
    assert_eq!(cfg.server.client_keys.len(), 1);
    accepted(load_file(
        "[server]\nlisten = \"0.0.0.0:8080\"\nallow_remote_without_keys = true\n",
    ));
    accepted(load_file(
        "[server]\nlisten = \"unix:/tmp/zmp-test.sock\"\n",
    ));
}

#[test]
fn client_keys_file_is_read_one_key_per_line() {
    let cfg = in_jail(|jail| {
        jail.create_file("keys.txt", "# team keys\nalpha-key\n\n  beta-key  \n")
            .unwrap();
        accepted(load_toml(
            jail,
            "[server]\nclient_keys_file = \"keys.txt\"\nclient_keys = [\"inline\"]\n",
        ))
    });
    let keys: Vec<&str> = cfg
        .server
        .client_keys
        .iter()
        .map(|k| k.expose().as_str())
        .collect();
    assert_eq!(keys, vec!["inline", "alpha-key", "beta-key"]);
    assert!(!format!("{cfg:?}").contains("alpha-key"));
}

#[test]
fn env_overrides_file_values() {
    let cfg = in_jail(|jail| {
        jail.set_env("ZOHO_PROXY_SERVER__LISTEN", "127.0.0.1:2222");
        jail.set_env("ZOHO_PROXY_TOKEN__REFRESH_MARGIN", "90s");
        jail.set_env("ZOHO_PROXY_SERVER__ALLOWED_HOSTS", "[a.example,b.example]");
        jail.set_env("ZOHO_PROXY_OAUTH__MAX_MINTS_PER_10M", "3");
        accepted(load_toml(
            jail,
            r#"
[server]
listen = "127.0.0.1:1111"
allowed_hosts = ["file.example"]

[oauth]
max_mints_per_10m = 7

[token]
refresh_margin = "10m"

[log]
level = "debug"
"#,
        ))
    });
    assert_eq!(
        cfg.server.listen,
        Listen::Tcp("127.0.0.1:2222".parse().unwrap())
    );
    assert_eq!(cfg.token.refresh_margin, Duration::from_secs(90));
    assert_eq!(cfg.server.allowed_hosts, ["a.example", "b.example"]);
    assert_eq!(cfg.oauth.max_mints_per_10m, 3);
    // Not overridden: the file's value stays.
    assert_eq!(cfg.log.level, "debug");
}

#[test]
fn env_alone_without_a_file() {
    let cfg = in_jail(|jail| {
        jail.set_env("ZOHO_PROXY_LOG__FORMAT", "json");
        jail.set_env("ZOHO_PROXY_UPSTREAM__AUTH_SCHEME", "Bearer");
        accepted(Config::load(None))
    });
    assert_eq!(cfg.log.format, LogFormat::Json);
    assert_eq!(cfg.upstream.auth_scheme, AuthScheme::Bearer);
}

#[test]
fn config_path_env_var_is_not_an_unknown_key() {
    in_jail(|jail| {
        jail.set_env(CONFIG_ENV, "elsewhere.toml");
        accepted(Config::load(None));
        jail.create_file("named.toml", "[log]\nlevel = \"warn\"\n")
            .unwrap();
        jail.set_env(CONFIG_ENV, "named.toml");
        let path = Config::resolve_path(None);
        let cfg = accepted(Config::load(path.as_deref()));
        assert_eq!(cfg.log.level, "warn");
        assert_eq!(cfg.file.as_deref(), Some(Path::new("named.toml")));
    });
}

#[test]
fn named_file_that_is_missing_is_a_file_error() {
    let err = in_jail(|_| Config::load(Some(Path::new("missing.toml")))).unwrap_err();
    assert!(
        matches!(&err, ConfigError::File { path, .. } if path == Path::new("missing.toml")),
        "{err}"
    );
    assert!(err.to_string().contains("missing.toml"), "{err}");
}

// === Config::resolve_path ===

#[test]
fn resolve_path_explicit_path_wins() {
    in_jail(|jail| {
        jail.create_file(FILE, "").unwrap();
        jail.set_env(CONFIG_ENV, "from-env.toml");
        assert_eq!(
            Config::resolve_path(Some(Path::new("cli.toml"))),
            Some(PathBuf::from("cli.toml"))
        );
    });
}

#[test]
fn resolve_path_env_var_before_local_file() {
    in_jail(|jail| {
        jail.create_file(FILE, "").unwrap();
        jail.set_env(CONFIG_ENV, "/etc/zoho/from-env.toml");
        assert_eq!(
            Config::resolve_path(None),
            Some(PathBuf::from("/etc/zoho/from-env.toml"))
        );
    });
}

#[test]
fn resolve_path_local_file_only_when_it_exists() {
    in_jail(|jail| {
        assert_eq!(Config::resolve_path(None), None);
        jail.create_dir(FILE).unwrap();
        assert_eq!(
            Config::resolve_path(None),
            None,
            "a directory is not a file"
        );
    });
    in_jail(|jail| {
        jail.create_file(FILE, "").unwrap();
        assert_eq!(Config::resolve_path(None), Some(PathBuf::from(FILE)));
    });
}

#[test]
fn resolve_path_empty_env_var_is_ignored() {
    in_jail(|jail| {
        jail.set_env(CONFIG_ENV, "");
        assert_eq!(Config::resolve_path(None), None);
        jail.create_file(FILE, "").unwrap();
        assert_eq!(Config::resolve_path(None), Some(PathBuf::from(FILE)));
    });
}

// === unknown keys ===

#[test]
fn unknown_key_in_file_names_key_and_file() {
    let text = refused_file(
        "[oauth]\nclient_sekret = \"cs-SENTINEL\"\n",
        "oauth.client_sekret",
    );
    assert!(text.contains("unknown key"), "{text}");
    assert!(!text.contains("SENTINEL"), "{text}");
}

#[test]
fn unknown_keys_suggest_the_near_ones() {
    for (toml, key, near) in [
        ("[oauth]\nscope = [\"x\"]\n", "oauth.scope", "scopes"),
        (
            "[oauth]\ndata_centre = \"eu\"\n",
            "oauth.data_centre",
            "data_center",
        ),
        (
            "[oauth]\nclient_sekret = \"x\"\n",
            "oauth.client_sekret",
            "client_secret",
        ),
        (
            "[upstream]\ntimeuot = \"5s\"\n",
            "upstream.timeuot",
            "timeout",
        ),
        ("[oath]\nclient_id = \"x\"\n", "oath", "oauth"),
    ] {
        let text = refused_file(toml, key);
        assert!(text.contains(&format!("did you mean `{near}`?")), "{text}");
    }
    // Nothing near: no guess.
    let text = refused_file("[oauth]\nfrobnicate = 1\n", "oauth.frobnicate");
    assert!(!text.contains("did you mean"), "{text}");
    // The environment too.
    let result = in_jail(|jail| {
        jail.set_env("ZOHO_PROXY_OAUTH__SCOPE", "[\"x\"]");
        load_toml(jail, "")
    });
    let text = refused(result, "oauth.scope", "ZOHO_PROXY_OAUTH__SCOPE");
    assert!(text.contains("did you mean `scopes`?"), "{text}");
}

#[test]
fn unknown_section_in_file_names_it_and_lists_sections() {
    let text = refused_file("[oath]\nclient_id = \"x\"\n", "oath");
    assert!(text.contains("server, oauth, upstream"), "{text}");
}

#[test]
fn unknown_key_from_env_names_the_variable() {
    let result = in_jail(|jail| {
        jail.set_env("ZOHO_PROXY_OAUTH__NOPE", "1");
        Config::load(None)
    });
    refused(result, "oauth.nope", "ZOHO_PROXY_OAUTH__NOPE");
}

#[test]
fn unknown_section_from_env_names_the_variable() {
    let result = in_jail(|jail| {
        jail.set_env("ZOHO_PROXY_NOPE", "1");
        Config::load(None)
    });
    refused(result, "nope", "ZOHO_PROXY_NOPE");
}

// === bad values ===

#[test]
fn bad_list_item_from_env_names_the_variable() {
    let result = in_jail(|jail| {
        jail.set_env("ZOHO_PROXY_SERVER__ALLOWED_HOSTS", "[[nested]]");
        Config::load(None)
    });
    let text = refused(
        result,
        "server.allowed_hosts.0",
        "environment variable ZOHO_PROXY_SERVER__ALLOWED_HOSTS",
    );
    assert!(!text.contains("ALLOWED_HOSTS__0"), "{text}");
}

#[test]
fn bad_duration_in_file_names_key_and_file() {
    refused_file(
        "[token]\nrefresh_margin = \"soon\"\n",
        "token.refresh_margin",
    );
}

#[test]
fn bad_duration_from_env_names_the_variable() {
    let result = in_jail(|jail| {
        jail.set_env("ZOHO_PROXY_TOKEN__REFRESH_MARGIN", "soon");
        load_toml(jail, "[token]\nrefresh_margin = \"1m\"\n")
    });
    refused(
        result,
        "token.refresh_margin",
        "ZOHO_PROXY_TOKEN__REFRESH_MARGIN",
    );
}

#[test]
fn bad_value_from_env_names_the_variable_not_the_file() {
    let result = in_jail(|jail| {
        jail.set_env("ZOHO_PROXY_OAUTH__DATA_CENTER", "mars");
        load_toml(jail, "[oauth]\ndata_center = \"eu\"\n")
    });
    let text = refused(result, "oauth.data_center", "ZOHO_PROXY_OAUTH__DATA_CENTER");
    assert!(!text.contains(FILE), "{text}");
}

#[test]
fn wrong_type_names_key_and_file() {
    refused_file(
        "[oauth]\nmax_mints_per_10m = \"many\"\n",
        "oauth.max_mints_per_10m",
    );
}

#[test]
fn max_h2_connections_is_1_to_64() {
    for bad in ["0", "65"] {
        let text = refused_file(
            &format!("[upstream]\nmax_h2_connections = {bad}\n"),
            "upstream.max_h2_connections",
        );
        assert!(text.contains("between 1 and 64"), "{text}");
    }
    refused_file(
        "[upstream]\nidle_timeout = \"0s\"\n",
        "upstream.idle_timeout",
    );
    let cfg = accepted(load_file(
        "[upstream]\nmax_h2_connections = 64\nidle_timeout = \"5s\"\n",
    ));
    assert_eq!(cfg.upstream.max_h2_connections, 64);
    assert_eq!(cfg.upstream.idle_timeout, Duration::from_secs(5));
}

#[test]
fn bad_data_center_is_refused() {
    let text = refused_file("[oauth]\ndata_center = \"mars\"\n", "oauth.data_center");
    assert!(text.contains("us, eu"), "{text}");
}

#[test]
fn bad_listen_is_refused() {
    refused_file("[server]\nlisten = \"localhost\"\n", "server.listen");
    refused_file("[server]\nlisten = \"127.0.0.1:99999\"\n", "server.listen");
    refused_file(
        "[server]\nadmin_listen = \"nowhere\"\n",
        "server.admin_listen",
    );
}

#[test]
fn empty_admin_listen_disables_it() {
    let cfg = accepted(load_file("[server]\nadmin_listen = \"\"\n"));
    assert_eq!(cfg.server.admin_listen, None);
}

#[test]
fn unix_listen_with_absolute_path_is_accepted() {
    let cfg = accepted(load_file("[server]\nlisten = \"unix:/tmp/x.sock\"\n"));
    assert_eq!(
        cfg.server.listen,
        Listen::Unix(PathBuf::from("/tmp/x.sock"))
    );
}

#[test]
fn unix_listen_with_relative_path_is_refused() {
    let text = refused_file("[server]\nlisten = \"unix:x.sock\"\n", "server.listen");
    assert!(text.contains("absolute"), "{text}");
}

#[test]
fn http_accounts_url_refused_for_remote_host() {
    let text = refused_file(
        "[oauth]\naccounts_url = \"http://accounts.zoho.com\"\n",
        "oauth.accounts_url",
    );
    assert!(text.contains("https://"), "{text}");
    refused_file(
        "[upstream]\nurl = \"http://meeting.zoho.com\"\n",
        "upstream.url",
    );
}

#[test]
fn http_urls_accepted_for_loopback() {
    for url in [
        "http://127.0.0.1:1234",
        "http://localhost:1234",
        "http://[::1]:1234",
    ] {
        let cfg = accepted(load_file(&format!(
            "[oauth]\naccounts_url = \"{url}\"\n[upstream]\nurl = \"{url}\"\n"
        )));
        assert_eq!(origin(&cfg.oauth.accounts_url), url);
        assert_eq!(origin(&cfg.upstream.url), url);
    }
}

#[test]
fn https_with_trailing_slash_is_accepted() {
    let cfg = accepted(load_file(
        "[oauth]\naccounts_url = \"https://accounts.zoho.eu/\"\n",
    ));
    assert_eq!(origin(&cfg.oauth.accounts_url), "https://accounts.zoho.eu");
}

#[test]
fn non_http_schemes_are_refused() {
    for url in [
        "ftp://accounts.zoho.com",
        "ws://127.0.0.1:1234",
        "accounts.zoho.com",
    ] {
        refused_file(
            &format!("[oauth]\naccounts_url = \"{url}\"\n"),
            "oauth.accounts_url",
        );
    }
    refused_file(
        "[upstream]\nurl = \"ftp://meeting.zoho.com\"\n",
        "upstream.url",
    );
}

#[test]
fn urls_with_path_query_or_userinfo_are_refused() {
    for url in [
        "https://accounts.zoho.com/oauth/v2",
        "https://accounts.zoho.com/?a=b",
        "https://accounts.zoho.com/#frag",
    ] {
        refused_file(
            &format!("[oauth]\naccounts_url = \"{url}\"\n"),
            "oauth.accounts_url",
        );
    }
    for url in [
        "https://meeting.zoho.com/?a=b",
        "https://meeting.zoho.com/a/../b",
    ] {
        refused_file(&format!("[upstream]\nurl = \"{url}\"\n"), "upstream.url");
    }
    let text = refused_file(
        "[oauth]\naccounts_url = \"https://user:pw-SENTINEL@accounts.zoho.com\"\n",
        "oauth.accounts_url",
    );
    assert!(!text.contains("SENTINEL"), "the password is echoed: {text}");
}

#[test]
fn max_mints_above_zoho_limit_is_refused() {
    let text = refused_file(
        "[oauth]\nmax_mints_per_10m = 11\n",
        "oauth.max_mints_per_10m",
    );
    assert!(text.contains("10"), "{text}");
    refused_file(
        "[oauth]\nmax_mints_per_10m = 0\n",
        "oauth.max_mints_per_10m",
    );
    let cfg = accepted(load_file("[oauth]\nmax_mints_per_10m = 1\n"));
    assert_eq!(cfg.oauth.max_mints_per_10m, 1);
}

#[test]
fn max_mints_above_ten_only_with_a_non_zoho_accounts_server() {
    // Zoho's accounts server: the data centre's default, or named as accounts_url.
    for oauth in [
        "data_center = \"eu\"\n",
        "accounts_url = \"https://accounts.zoho.com.au\"\n",
    ] {
        let text = refused_file(
            &format!("[oauth]\n{oauth}max_mints_per_10m = 11\n"),
            "oauth.max_mints_per_10m",
        );
        assert!(text.contains("Zoho"), "{text}");
    }
    let message = in_jail(|jail| {
        jail.set_env("ZOHO_PROXY_OAUTH__MAX_MINTS_PER_10M", "11");
        refused(
            Config::load(None),
            "oauth.max_mints_per_10m",
            "ZOHO_PROXY_OAUTH__MAX_MINTS_PER_10M",
        )
    });
    assert!(message.contains("accounts.zoho.com"), "{message}");

    // An emulator: up to 1000.
    let emulator = "[oauth]\naccounts_url = \"http://127.0.0.1:9999\"\n";
    let cfg = accepted(load_file(&format!("{emulator}max_mints_per_10m = 20\n")));
    assert_eq!(cfg.oauth.max_mints_per_10m, 20);
    let cfg = accepted(load_file(&format!("{emulator}max_mints_per_10m = 1000\n")));
    assert_eq!(cfg.oauth.max_mints_per_10m, 1000);
    let text = refused_file(
        &format!("{emulator}max_mints_per_10m = 1001\n"),
        "oauth.max_mints_per_10m",
    );
    assert!(text.contains("1000"), "{text}");
    refused_file(
        &format!("{emulator}max_mints_per_10m = 0\n"),
        "oauth.max_mints_per_10m",
    );
}

#[test]
fn bad_auth_scheme_is_refused() {
    refused_file(
        "[upstream]\nauth_scheme = \"Basic\"\n",
        "upstream.auth_scheme",
    );
    let cfg = accepted(load_file("[upstream]\nauth_scheme = \"bearer\"\n"));
    assert_eq!(cfg.upstream.auth_scheme, AuthScheme::Bearer);
}

#[test]
fn bad_log_format_is_refused() {
    refused_file("[log]\nformat = \"xml\"\n", "log.format");
}

#[test]
fn log_output_is_stderr_or_stdout_from_file_or_env() {
    let cfg = accepted(load_file("[log]\noutput = \"stdout\"\n"));
    assert_eq!(cfg.log.output, LogOutput::Stdout);
    let cfg = in_jail(|jail| {
        jail.set_env("ZOHO_PROXY_LOG__OUTPUT", "STDOUT");
        accepted(Config::load(None))
    });
    assert_eq!(cfg.log.output, LogOutput::Stdout);
    assert!(cfg.redacted().contains("output = \"stdout\""));
    refused_file("[log]\noutput = \"syslog\"\n", "log.output");
    let message = in_jail(|jail| {
        jail.set_env("ZOHO_PROXY_LOG__OUTPUT", "file");
        refused(Config::load(None), "log.output", "ZOHO_PROXY_LOG__OUTPUT")
    });
    assert!(message.contains("stderr or stdout"), "{message}");
}

#[test]
fn bad_log_level_is_refused() {
    refused_file("[log]\nlevel = \"zoho_meeting_proxy=loud\"\n", "log.level");
    let cfg = accepted(load_file(
        "[log]\nlevel = \"warn,zoho_meeting_proxy=debug\"\n",
    ));
    assert_eq!(cfg.log.level, "warn,zoho_meeting_proxy=debug");
}

#[test]
fn empty_scopes_are_refused() {
    refused_file("[oauth]\nscopes = []\n", "oauth.scopes");
    refused_file("[oauth]\nscopes = [\" \", \"\"]\n", "oauth.scopes");
}

#[test]
fn comma_separated_scopes_are_refused() {
    refused_file(
        "[oauth]\nscopes = [\"ZohoMeeting.meeting.READ,ZohoMeeting.manageOrg.READ\"]\n",
        "oauth.scopes",
    );
}

#[test]
fn non_loopback_redirect_uri_is_refused() {
    for uri in [
        "http://example.com:8765/callback",
        "https://127.0.0.1:8765/callback",
        "http://127.0.0.1/callback",
        "not a url",
    ] {
        refused_file(
            &format!("[oauth]\nredirect_uri = \"{uri}\"\n"),
            "oauth.redirect_uri",
        );
    }
    let cfg = accepted(load_file(
        "[oauth]\nredirect_uri = \"http://localhost:9999/cb\"\n",
    ));
    assert_eq!(cfg.oauth.redirect_uri.as_str(), "http://localhost:9999/cb");
}

#[test]
fn redis_store_needs_a_redis_url_and_keeps_it_secret() {
    let cfg = accepted(load_file(&format!(
        "[token]\nstore = \"redis\"\nredis_url = \"{REDIS_URL}\"\nredis_key_prefix = \"team-a\"\n"
    )));
    let StoreConfig::Redis { url, key_prefix } = &cfg.token.store else {
        panic!("not the redis store: {:?}", cfg.token.store);
    };
    assert_eq!(url.expose(), REDIS_URL);
    assert_eq!(key_prefix, "team-a");
    assert_no_secrets(&format!("{cfg:?}\n{}", cfg.redacted()));
    for local in [
        "redis://127.0.0.1:6379",
        "redis+unix:///run/redis/redis.sock",
    ] {
        let cfg = accepted(load_file(&format!(
            "[token]\nstore = \"redis\"\nredis_url = \"{local}\"\n"
        )));
        assert!(matches!(cfg.token.store, StoreConfig::Redis { .. }));
    }
    // No URL, or one of another scheme: the key is named and the value never printed.
    let text = refused(
        load_file("[token]\nstore = \"redis\"\n"),
        "token.redis_url",
        "defaults",
    );
    assert!(
        text.contains("redis://") && text.contains("rediss://"),
        "{text}"
    );
    let text = refused_file(
        "[token]\nstore = \"redis\"\nredis_url = \"http://:pw-SENTINEL@h\"\n",
        "token.redis_url",
    );
    assert_no_secrets(&text);
}

#[test]
fn unknown_store_is_refused_and_memory_accepted() {
    refused_file("[token]\nstore = \"sqlite\"\n", "token.store");
    let cfg = accepted(load_file("[token]\nstore = \"memory\"\n"));
    assert!(matches!(cfg.token.store, StoreConfig::Memory));
    let cfg = accepted(load_file(
        "[token]\nstore = \"file\"\npath = \"/var/lib/zmp/token.json\"\n",
    ));
    assert!(matches!(
        &cfg.token.store,
        StoreConfig::File(Some(p)) if p == Path::new("/var/lib/zmp/token.json")
    ));
}

#[test]
fn zero_limits_and_timeouts_are_refused() {
    refused_file("[limits]\nmax_connections = 0\n", "limits.max_connections");
    refused_file("[upstream]\ntimeout = \"0s\"\n", "upstream.timeout");
    let cfg = accepted(load_file(
        "[limits]\nmax_body_bytes = 1024\nmax_in_flight = 8\n",
    ));
    assert_eq!(cfg.limits.max_body_bytes, Some(1024));
    assert_eq!(cfg.limits.max_in_flight, Some(8));
}

#[test]
fn bad_access_rule_is_refused() {
    refused_file("[access]\nrules = [\"GET api/v2\"]\n", "access.rules");
    let cfg = accepted(load_file("[access]\nrules = [\"get /api/v2/**\"]\n"));
    assert!(cfg.access.rules[0].matches("GET", "/api/v2/user.json"));
}

// === secrets ===

#[test]
fn client_secret_file_is_read_and_trimmed() {
    let cfg = in_jail(|jail| {
        jail.create_file("client_secret", &format!("  {CLIENT_SECRET}\n\n"))
            .unwrap();
        accepted(load_toml(
            jail,
            "[oauth]\nclient_id = \"1000.X\"\nclient_secret_file = \"client_secret\"\n",
        ))
    });
    assert_eq!(
        cfg.oauth.client_secret.as_ref().unwrap().expose(),
        CLIENT_SECRET
    );
    assert_eq!(
        cfg.oauth.client_secret_file.as_deref(),
        Some(Path::new("client_secret"))
    );
    let (id, secret) = cfg.require_client().unwrap();
    assert_eq!(id, "1000.X");
    assert_eq!(secret.expose(), CLIENT_SECRET);
}

#[test]
fn client_secret_and_client_secret_file_together_are_refused() {
    let result = in_jail(|jail| {
        jail.create_file("client_secret", "from-file").unwrap();
        load_toml(
            jail,
            &format!(
                "[oauth]\nclient_secret = \"{CLIENT_SECRET}\"\nclient_secret_file = \"client_secret\"\n"
            ),
        )
    });
    let text = refused(result, "oauth.client_secret_file", FILE);
    assert_no_secrets(&text);
}

#[test]
fn missing_client_secret_file_is_refused() {
    let text = refused_file(
        "[oauth]\nclient_secret_file = \"no-such-secret\"\n",
        "oauth.client_secret_file",
    );
    assert!(text.contains("no-such-secret"), "{text}");
}

#[test]
fn empty_client_secret_file_is_refused() {
    let result = in_jail(|jail| {
        jail.create_file("client_secret", " \n").unwrap();
        load_toml(jail, "[oauth]\nclient_secret_file = \"client_secret\"\n")
    });
    refused(result, "oauth.client_secret_file", FILE);
}

#[test]
fn refresh_token_file_is_read_and_trimmed() {
    let cfg = in_jail(|jail| {
        jail.create_file("refresh_token", &format!("{REFRESH_TOKEN}\n"))
            .unwrap();
        accepted(load_toml(
            jail,
            "[oauth]\nrefresh_token_file = \"refresh_token\"\n",
        ))
    });
    assert_eq!(
        cfg.oauth.refresh_token.as_ref().unwrap().expose(),
        REFRESH_TOKEN
    );
    assert_eq!(
        cfg.oauth.refresh_token_file.as_deref(),
        Some(Path::new("refresh_token"))
    );
}

#[test]
fn refresh_token_and_refresh_token_file_together_are_refused() {
    let result = in_jail(|jail| {
        jail.create_file("refresh_token", "from-file").unwrap();
        load_toml(
            jail,
            &format!(
                "[oauth]\nrefresh_token = \"{REFRESH_TOKEN}\"\nrefresh_token_file = \"refresh_token\"\n"
            ),
        )
    });
    let text = refused(result, "oauth.refresh_token_file", FILE);
    assert_no_secrets(&text);
}

#[test]
fn missing_refresh_token_file_is_refused() {
    refused_file(
        "[oauth]\nrefresh_token_file = \"no-such-token\"\n",
        "oauth.refresh_token_file",
    );
}

#[test]
fn secret_file_from_env_is_named_by_its_variable() {
    let result = in_jail(|jail| {
        jail.set_env("ZOHO_PROXY_OAUTH__CLIENT_SECRET_FILE", "no-such-secret");
        Config::load(None)
    });
    refused(
        result,
        "oauth.client_secret_file",
        "ZOHO_PROXY_OAUTH__CLIENT_SECRET_FILE",
    );
}

#[test]
fn numeric_client_credentials_from_env_are_strings() {
    let cfg = in_jail(|jail| {
        jail.set_env("ZOHO_PROXY_OAUTH__CLIENT_ID", "1000");
        jail.set_env("ZOHO_PROXY_OAUTH__CLIENT_SECRET", "12345");
        accepted(Config::load(None))
    });
    let (id, secret) = cfg.require_client().unwrap();
    assert_eq!(id, "1000");
    assert_eq!(secret.expose(), "12345");
}

#[test]
fn quoted_env_value_keeps_leading_zeros() {
    // figment parses unquoted env values, so `0071` would become the number 71; quoting keeps
    // the string as written.
    let cfg = in_jail(|jail| {
        jail.set_env("ZOHO_PROXY_OAUTH__CLIENT_ID", "1000.X");
        jail.set_env("ZOHO_PROXY_OAUTH__CLIENT_SECRET", "\"0071\"");
        accepted(Config::load(None))
    });
    assert_eq!(cfg.require_client().unwrap().1.expose(), "0071");
}

#[test]
fn require_client_names_the_missing_key() {
    let cfg = accepted(load_file(""));
    let err = cfg.require_client().unwrap_err();
    assert!(
        matches!(&err, ConfigError::Invalid { key, .. } if key == "oauth.client_id"),
        "{err}"
    );
    assert!(err.to_string().contains("oauth.client_id"), "{err}");

    let cfg = accepted(load_file("[oauth]\nclient_id = \"1000.X\"\n"));
    let err = cfg.require_client().unwrap_err();
    assert!(
        matches!(&err, ConfigError::Invalid { key, .. } if key == "oauth.client_secret"),
        "{err}"
    );
    let text = err.to_string();
    assert!(text.contains("oauth.client_secret"), "{text}");
    assert!(text.contains("ZOHO_PROXY_OAUTH__CLIENT_SECRET"), "{text}");
}

// === redaction ===

#[test]
fn debug_and_redacted_never_show_secrets() {
    let cfg = accepted(load_file(&secrets_toml()));
    // The values were read.
    assert_eq!(
        cfg.oauth.client_secret.as_ref().unwrap().expose(),
        CLIENT_SECRET
    );
    assert_eq!(
        cfg.oauth.refresh_token.as_ref().unwrap().expose(),
        REFRESH_TOKEN
    );
    assert_eq!(cfg.server.client_keys.len(), 2);

    let debug = format!("{cfg:?}");
    assert_no_secrets(&debug);
    let pretty = format!("{cfg:#?}");
    assert_no_secrets(&pretty);

    let redacted = cfg.redacted();
    assert_no_secrets(&redacted);
    assert!(redacted.contains("[redacted]"), "{redacted}");
    assert!(
        redacted.contains("client_secret = \"[redacted]\""),
        "{redacted}"
    );
    assert!(
        redacted.contains("refresh_token = \"[redacted]\""),
        "{redacted}"
    );
    // Not a secret: the client id is shown.
    assert!(redacted.contains("1000.VISIBLECLIENTID"), "{redacted}");
}

#[test]
fn secrets_from_env_and_files_are_not_shown() {
    let cfg = in_jail(|jail| {
        jail.create_file("client_secret", CLIENT_SECRET).unwrap();
        jail.set_env("ZOHO_PROXY_OAUTH__REFRESH_TOKEN", REFRESH_TOKEN);
        jail.set_env(
            "ZOHO_PROXY_SERVER__CLIENT_KEYS",
            format!("[{CLIENT_KEY_1},{CLIENT_KEY_2}]"),
        );
        accepted(load_toml(
            jail,
            "[oauth]\nclient_secret_file = \"client_secret\"\n",
        ))
    });
    assert_eq!(cfg.server.client_keys.len(), 2);
    assert_eq!(cfg.server.client_keys[1].expose(), CLIENT_KEY_2);
    assert_no_secrets(&format!("{cfg:?}"));
    assert_no_secrets(&cfg.redacted());
}

#[test]
fn invalid_secret_values_are_not_echoed() {
    let cases = [
        (
            "[oauth]\nclient_secret = [\"cs-SENTINEL\", 2]\n",
            "oauth.client_secret",
        ),
        ("[oauth]\nclient_secret = [1, 2]\n", "oauth.client_secret"),
        (
            "[oauth]\nrefresh_token = { t = \"rt-SENTINEL\" }\n",
            "oauth.refresh_token",
        ),
        (
            "[server]\nclient_keys = \"ck-SENTINEL\"\n",
            "server.client_keys",
        ),
        // A list item's key ends in its index.
        (
            "[server]\nclient_keys = [98765432123]\n",
            "server.client_keys.0",
        ),
        (
            "[token]\nredis_url = [\"redis://:pw-SENTINEL@h\"]\n",
            "token.redis_url",
        ),
    ];
    for (toml, key) in cases {
        let text = refused_file(toml, key);
        assert_no_secrets(&text);
        assert!(!text.contains("98765432123"), "{text}");
        assert!(!text.contains("[1, 2]") && !text.contains("1, 2"), "{text}");
    }
}

#[test]
fn invalid_secret_from_env_is_not_echoed() {
    let result = in_jail(|jail| {
        jail.set_env("ZOHO_PROXY_OAUTH__CLIENT_SECRET", "[cs-SENTINEL,x]");
        Config::load(None)
    });
    let text = refused(
        result,
        "oauth.client_secret",
        "ZOHO_PROXY_OAUTH__CLIENT_SECRET",
    );
    assert_no_secrets(&text);
}

#[test]
fn redacted_output_is_valid_toml_that_loads_back() {
    let toml = r#"
[server]
listen = "unix:/run/zmp/proxy.sock"
admin_listen = ""
allowed_hosts = ["proxy.internal", "localhost"]
shutdown_grace = "1m 30s"
allowed_origins = ["https://app.example"]
client_keys = ["ck-SENTINEL-one-55aa"]

[oauth]
data_center = "eu"
client_id = "1000.VISIBLE \"quoted\" id"
client_secret = "cs-SENTINEL-7f3a9"
scopes = ["ZohoMeeting.meeting.READ"]
redirect_uri = "http://localhost:9999/cb"
max_mints_per_10m = 4

[upstream]
url = "http://127.0.0.1:4000"
auth_scheme = "Bearer"
connect_timeout = "2s"
timeout = "2m"
replay_body_limit = 1024

[token]
store = "memory"
refresh_margin = "90s"

[access]
rules = ["GET /api/v2/**"]
read_only = true

[limits]
max_body_bytes = 4096
max_in_flight = 16

[log]
format = "json"
level = "warn,zoho_meeting_proxy=debug"
"#;
    in_jail(|jail| {
        let cfg = accepted(load_toml(jail, toml));
        let redacted = cfg.redacted();
        toml::from_str::<toml::Value>(&redacted)
            .unwrap_or_else(|e| panic!("redacted() is not TOML: {e}\n{redacted}"));
        jail.create_file("redacted.toml", &redacted).unwrap();
        let back = accepted(Config::load(Some(Path::new("redacted.toml"))));
        // Secrets come back as the placeholder, never as the original.
        assert_eq!(
            back.oauth.client_secret.as_ref().unwrap().expose(),
            "[redacted]"
        );
        assert_eq!(back.server.client_keys[0].expose(), "[redacted]");
        // Everything else round-trips: rendering again gives the same text.
        assert_eq!(back.redacted(), redacted);
        assert_eq!(back.server.listen, cfg.server.listen);
        assert_eq!(back.server.shutdown_grace, Duration::from_secs(90));
        assert_eq!(back.oauth.client_id, "1000.VISIBLE \"quoted\" id");
        assert_eq!(back.oauth.data_center, DataCenter::Eu);
        assert_eq!(back.upstream.auth_scheme, AuthScheme::Bearer);
        assert!(matches!(back.token.store, StoreConfig::Memory));
        assert_eq!(back.log.format, LogFormat::Json);
    });
}

#[test]
fn redacted_defaults_load_back_to_the_defaults() {
    in_jail(|jail| {
        let redacted = accepted(Config::load(None)).redacted();
        jail.create_file("redacted.toml", &redacted).unwrap();
        assert_defaults(&accepted(Config::load(Some(Path::new("redacted.toml")))));
    });
}

#[test]
fn redacted_output_with_secret_files_is_valid_toml() {
    // With a secret read from a file, redacted() shows both the placeholder and the file, so
    // it is valid TOML but not a loadable configuration (both keys set); only parse it.
    let redacted = in_jail(|jail| {
        jail.create_file("client_secret", CLIENT_SECRET).unwrap();
        jail.create_file("refresh_token", REFRESH_TOKEN).unwrap();
        accepted(load_toml(
            jail,
            "[oauth]\nclient_secret_file = \"client_secret\"\nrefresh_token_file = \"refresh_token\"\n",
        ))
        .redacted()
    });
    assert_no_secrets(&redacted);
    let value: toml::Value = toml::from_str(&redacted)
        .unwrap_or_else(|e| panic!("redacted() is not TOML: {e}\n{redacted}"));
    assert_eq!(
        value["oauth"]["client_secret_file"].as_str(),
        Some("client_secret")
    );
}

// === the shipped example ===

#[test]
fn example_file_is_valid_with_documented_defaults() {
    let cfg = in_jail(|_| accepted(Config::load(Some(Path::new(EXAMPLE)))));
    assert_defaults(&cfg);
    assert_eq!(cfg.file.as_deref(), Some(Path::new(EXAMPLE)));
}

/// `upstream.url` may carry a base path; requests go to it + their path (issue 13).
#[test]
fn upstream_url_may_carry_a_base_path() {
    let c = accepted(load_file(
        "[upstream]\nurl = \"https://gw.example.zoho.com/zoho/\"\n",
    ));
    assert_eq!(c.upstream.url.as_str(), "https://gw.example.zoho.com/zoho");
    assert!(
        c.redacted()
            .contains("url = \"https://gw.example.zoho.com/zoho\"\n")
    );
}

/// `upstream = "webinar"`: Zoho Webinar's host of the configured data centre, printed back
/// as `webinar` by `check`.
#[test]
fn a_webinar_route_goes_to_the_data_centres_webinar_host() {
    for (dc, host) in [
        ("us", "https://webinar.zoho.com/"),
        ("eu", "https://webinar.zoho.eu/"),
        ("in", "https://webinar.zoho.in/"),
        ("au", "https://webinar.zoho.com.au/"),
        ("jp", "https://webinar.zoho.jp/"),
        ("ca", "https://webinar.zohocloud.ca/"),
        ("sa", "https://webinar.zoho.sa/"),
        ("cn", "https://webinar.zoho.com.cn/"),
    ] {
        let c = accepted(load_file(&format!(
            "[oauth]\ndata_center = \"{dc}\"\n\n[[routes]]\nprefix = \"/webinar/\"\nupstream = \"webinar\"\nstrip_prefix = true\n"
        )));
        assert_eq!(c.route_url(&c.routes[0]).as_str(), host, "{dc}");
        let printed = c.redacted();
        assert!(
            printed.contains(
                "[[routes]]\nprefix = \"/webinar/\"\nupstream = \"webinar\"\nstrip_prefix = true\n"
            ),
            "{printed}"
        );
    }
    let message = refused_file(
        "[[routes]]\nprefix = \"/w/\"\nupstream = \"webinars\"\n",
        "routes.0.upstream",
    );
    assert!(message.contains("\"webinar\""), "{message}");
}

/// `[[routes]]`: data-centre services or Zoho URLs, longest prefix first (issue 13).
#[test]
fn routes_name_zoho_services_or_zoho_urls() {
    let c = accepted(load_file(
        r#"
[oauth]
data_center = "eu"

[[routes]]
prefix = "/crm/"
upstream = "zohoapis"

[[routes]]
prefix = "/download/files"
upstream = "https://download.zoho.eu"
strip_prefix = true

[[routes]]
prefix = "/m"
upstream = "meeting"
"#,
    ));
    let prefixes: Vec<&str> = c.routes.iter().map(|r| r.prefix.as_str()).collect();
    assert_eq!(prefixes, ["/download/files", "/crm/", "/m"]);
    let urls: Vec<String> = c
        .routes
        .iter()
        .map(|r| c.route_url(r).to_string())
        .collect();
    assert_eq!(
        urls,
        [
            "https://download.zoho.eu/",
            "https://www.zohoapis.eu/",
            "https://meeting.zoho.eu/"
        ]
    );
    assert!(c.routes[0].strip_prefix && !c.routes[1].strip_prefix);
    let printed = c.redacted();
    assert!(
        printed.contains(
            "[[routes]]\nprefix = \"/crm/\"\nupstream = \"zohoapis\"\nstrip_prefix = false\n"
        ),
        "{printed}"
    );
    for (routes, key) in [
        (
            "prefix = \"crm\"\nupstream = \"zohoapis\"",
            "routes.0.prefix",
        ),
        (
            "prefix = \"/x/\"\nupstream = \"https://evil.example\"",
            "routes.0.upstream",
        ),
        (
            "prefix = \"/x/\"\nupstream = \"http://crm.zoho.com\"",
            "routes.0.upstream",
        ),
        ("prefix = \"/x/\"\nupstream = \"crm\"", "routes.0.upstream"),
        (
            "prefix = \"/x/\"\nupstream = \"zohoapis\"\nstrip = true",
            "routes.0.strip",
        ),
    ] {
        refused_file(&format!("[[routes]]\n{routes}\n"), key);
    }
    refused_file(
        "[[routes]]\nprefix = \"/a/\"\nupstream = \"zohoapis\"\n[[routes]]\nprefix = \"/a\"\nupstream = \"meeting\"\n",
        "routes.1.prefix",
    );
}
