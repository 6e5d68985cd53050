//! Programs that some tests need beside Rust: `redis-server` (the fleet tests run a real
//! one), Python's `prometheus_client` (the metrics test parses `/metrics` with it), `curl`
//! (README's quick start is run with it), `podman`, `buildah` and `runc` (the container
//! tests build the image and run the pod), `podman-compose` (from PyPI, for the compose
//! file), and `chromium` with `chromedriver` (the browser login drives a headless Chromium).
//!
//! So that `cargo test` is the only set-up step on a fresh machine, a missing one is
//! installed once per test run, where that can be done without asking anyone: `redis-server`,
//! `curl`, `podman`, `buildah`, `runc` and Debian's `chromium` and `chromium-driver` through
//! `apt-get` when running as root,
//! `podman-compose` and `prometheus_client` through `pip`. What is done is
//! said on standard error. `ZOHO_PROXY_TEST_NO_INSTALL=1` turns this off; then, or when the
//! install fails, the test fails with the command to run by hand.

use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock, PoisonError};

type Ready = OnceLock<Result<(), String>>;

/// Makes sure `redis-server` runs; panics with the install command when it cannot be had.
pub fn redis_server() {
    static READY: Ready = OnceLock::new();
    require(&READY, || debian_program("redis-server"));
}

/// Makes sure `curl` runs (README's block is run with it); panics with the install command
/// when it cannot be had.
pub fn curl() {
    static READY: Ready = OnceLock::new();
    require(&READY, || debian_program("curl"));
}

/// Makes sure `podman`, `buildah` and `runc` run (the container tests); panics with the
/// install command when they cannot be had.
pub fn podman() {
    static READY: Ready = OnceLock::new();
    require(&READY, || {
        ["podman", "buildah", "runc"]
            .into_iter()
            .try_for_each(debian_program)
    });
}

/// Makes sure `chromium` and `chromedriver` run (the browser login); panics with the install
/// command when they cannot be had.
pub fn chromium() {
    static READY: Ready = OnceLock::new();
    require(&READY, || {
        debian_package("chromium", "chromium")?;
        debian_package("chromedriver", "chromium-driver")
    });
}

/// Makes sure `python3 -m podman_compose` runs (the compose test); panics with the install
/// command when it cannot be had.
pub fn podman_compose() {
    static READY: Ready = OnceLock::new();
    require(&READY, || {
        ensure(
            "podman-compose",
            || succeeds(Command::new("python3").args(["-m", "podman_compose", "--version"])),
            "python3 -m pip install podman-compose",
            &[&[
                "python3",
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "podman-compose",
            ]],
            true,
        )
    });
}

/// Makes sure `python3 -c 'import prometheus_client'` works; panics with the install
/// command when it cannot be had.
pub fn prometheus_client() {
    static READY: Ready = OnceLock::new();
    require(&READY, || {
        ensure(
            "Python's prometheus_client",
            || succeeds(Command::new("python3").args(["-c", "import prometheus_client"])),
            "python3 -m pip install prometheus_client",
            &[&[
                "python3",
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "prometheus_client",
            ]],
            true,
        )
    });
}

/// Runs `check` once per test run (other tests wait for it) and panics with its error.
fn require(ready: &'static Ready, check: impl FnOnce() -> Result<(), String>) {
    if let Err(e) = ready.get_or_init(check) {
        panic!("{e}");
    }
}

/// A program that Debian's package of the same name installs.
fn debian_program(name: &str) -> Result<(), String> {
    debian_package(name, name)
}

/// `program`, which Debian's `package` installs.
fn debian_package(program: &str, package: &str) -> Result<(), String> {
    ensure(
        program,
        || succeeds(Command::new(program).arg("--version")),
        &format!("apt-get install {package}"),
        &[
            &["apt-get", "update", "-qq"],
            &["apt-get", "install", "-y", "-qq", package],
        ],
        is_root(),
    )
}

/// `present()`, else the `steps` (when `allowed` and not turned off), then `present()` again.
fn ensure(
    what: &str,
    present: impl Fn() -> bool,
    by_hand: &str,
    steps: &[&[&str]],
    allowed: bool,
) -> Result<(), String> {
    if present() {
        return Ok(());
    }
    let refused = |why: &str| {
        Err(format!(
            "these tests need {what}, which is missing ({why}); install it with `{by_hand}` \
             (`.ci/run` and `cargo test` as root do this themselves)"
        ))
    };
    if std::env::var_os("ZOHO_PROXY_TEST_NO_INSTALL").is_some_and(|v| v != "0") {
        return refused("ZOHO_PROXY_TEST_NO_INSTALL is set");
    }
    if !allowed {
        return refused("installing it needs root");
    }
    // One install at a time: two apt-get runs at once would fight over dpkg's lock.
    static INSTALLING: Mutex<()> = Mutex::new(());
    let _one_at_a_time = INSTALLING.lock().unwrap_or_else(PoisonError::into_inner);
    eprintln!("{what} is missing: installing it for the tests ({by_hand})");
    for step in steps {
        let ok = Command::new(step[0])
            .args(&step[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return refused(&format!("`{}` failed", step.join(" ")));
        }
    }
    if present() {
        Ok(())
    } else {
        refused("still missing after the install")
    }
}

fn succeeds(command: &mut Command) -> bool {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.trim_ascii() == b"0")
}
