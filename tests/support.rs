//! Shared test helpers: emulated Zoho accounts servers (plain and TLS with an rcgen CA),
//! configurations built in memory, and the real binary.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use figment::Figment;
use zoho_meeting_proxy::config::Config;
use zoho_meeting_proxy::sandbox::accounts::{AccountsEmulator, AccountsOptions};

/// The client the emulators register.
pub const CLIENT_ID: &str = "1000.TESTCLIENT";
/// Its secret.
pub const CLIENT_SECRET: &str = "test-client-secret-5f2c";

/// Emulator options for the test client with a token lifetime.
pub fn options(lifetime: Duration) -> AccountsOptions {
    AccountsOptions {
        client_id: CLIENT_ID.into(),
        client_secret: CLIENT_SECRET.into(),
        token_lifetime: lifetime,
        ..AccountsOptions::default()
    }
}

/// A plain-HTTP accounts emulator on an ephemeral loopback port.
pub async fn emulator(opts: AccountsOptions) -> AccountsEmulator {
    AccountsEmulator::start(loopback(), opts)
        .await
        .expect("emulator starts")
}

/// A TLS accounts emulator whose certificate is signed by a fresh test CA; returns the CA's
/// PEM file (what `upstream.ca_file` points to).
pub async fn tls_emulator(mut opts: AccountsOptions, dir: &Path) -> (AccountsEmulator, PathBuf) {
    let (server_config, ca_pem) = test_ca();
    opts.tls = Some(server_config);
    let ca_file = dir.join("test-ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();
    (
        AccountsEmulator::start(loopback(), opts)
            .await
            .expect("tls emulator starts"),
        ca_file,
    )
}

/// 127.0.0.1 on a port the OS picks.
pub fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// A CA and a leaf for `localhost` and `127.0.0.1`, made with rcgen.
pub fn test_ca() -> (Arc<rustls::ServerConfig>, String) {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
        KeyUsagePurpose, SanType,
    };
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "zoho-meeting-proxy test CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();

    let leaf_key = KeyPair::generate().unwrap();
    let mut leaf_params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    leaf_params
        .subject_alt_names
        .push(SanType::IpAddress([127, 0, 0, 1].into()));
    leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let leaf = leaf_params.signed_by(&leaf_key, &ca_cert, &ca_key).unwrap();

    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(rustls::pki_types::PrivatePkcs8KeyDer::from(
        leaf_key.serialize_der(),
    ));
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![leaf.der().clone()], key)
    .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    (Arc::new(config), ca_cert.pem())
}

/// A validated configuration from defaults plus `overrides` (dotted keys), ignoring the
/// environment and any file.
pub fn config(overrides: &[(&str, toml::Value)]) -> Config {
    let mut figment = Figment::new();
    for (key, value) in overrides {
        figment = figment.merge((*key, value.clone()));
    }
    Config::from_figment(&figment, None).expect("test config is valid")
}

/// Overrides that point the OAuth client at an emulator, with the test client.
pub fn oauth_overrides(accounts_url: &str) -> Vec<(&'static str, toml::Value)> {
    vec![
        ("oauth.client_id", CLIENT_ID.into()),
        ("oauth.client_secret", CLIENT_SECRET.into()),
        ("oauth.accounts_url", accounts_url.into()),
    ]
}

/// The real binary, with the configuration environment cleared and state kept under `home`.
pub fn bin(home: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zoho-meeting-proxy"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("ZOHO_PROXY_") || key == "RUST_LOG" {
            cmd.env_remove(key);
        }
    }
    cmd.env("HOME", home)
        .env("XDG_STATE_HOME", home.join("state"))
        .current_dir(home);
    cmd.stdin(std::process::Stdio::null());
    cmd
}

/// Runs the binary to completion on a blocking thread, so emulators in this test's runtime
/// keep serving.
pub async fn run(mut cmd: Command) -> Output {
    tokio::task::spawn_blocking(move || cmd.output().expect("binary runs"))
        .await
        .unwrap()
}

/// Standard output and error as text.
pub fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}
