//! Containers for the tests: podman and buildah with their storage, configuration, locks,
//! events and state in a temporary directory, the image built from the repository's
//! `Dockerfile` with the release binary, and small client and Redis images. Everything a test
//! made is removed when its [`Engine`] is dropped.
//!
//! What is left outside the temporary directory, because podman 4.3 and buildah 1.28 fix the
//! paths for root and offer no setting: the empty directories `/run/netns` and `/run/runc`,
//! netavark's IP-allocation database `/run/containers/networks/ipam.db` (the pods have no
//! network, so it records nothing), and containers/image's blob-digest cache
//! `/var/lib/containers/cache/blob-info-cache-v1.boltdb`. No image, container, network or
//! lock outlives a test.
//!
//! What this machine needs, and why (found by trying; podman 4.3, buildah 1.28 from Debian):
//! - `runtime = "runc"`, `cgroup_manager = "cgroupfs"`: crun refuses this machine's cgroup
//!   layout, and there is no systemd to manage cgroups;
//! - explicit `default_ulimits`: podman's defaults are refused here;
//! - `--network none` pods: one network namespace with only loopback, which is what the
//!   sidecar needs (containers of a pod share it) and touches no host network; the tests reach
//!   the pod's loopback with `nsenter --net` into it;
//! - no registry can be reached, so the distroless runtime base is stood in for by an image
//!   made here from the host's files of the same packages ([`Engine::runtime_base`]), and the
//!   Dockerfile's build stage is replaced by the host's release binary through a build
//!   context named `build` (the stage is then skipped, so `rust:1.95-bookworm` is never pulled).
//! - healthcheck timers need systemd: podman logs that it cannot add them, and the tests run
//!   the checks with `podman healthcheck run` instead.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::tools;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The tag the test image gets.
pub const PROXY_IMAGE: &str = "localhost/zoho-meeting-proxy:test";
/// The stand-in for `gcr.io/distroless/cc-debian12:nonroot`.
pub const BASE_IMAGE: &str = "localhost/zoho-test-cc-base:latest";
/// The application image: a shell, `sleep`, curl, and the proxy binary (for `wait`).
pub const CLIENT_IMAGE: &str = "localhost/zoho-test-client:latest";
/// The stand-in for `redis:7-bookworm`.
pub const REDIS_IMAGE: &str = "localhost/zoho-test-redis:latest";

/// podman and buildah with everything in one temporary directory.
pub struct Engine {
    dir: tempfile::TempDir,
}

impl Engine {
    /// Installs podman, buildah and runc when missing (see `tools`) and writes the
    /// configuration.
    pub fn new() -> Self {
        tools::podman();
        let dir = tempfile::Builder::new()
            .prefix("zoho-podman-")
            .tempdir()
            .unwrap();
        let p = dir.path();
        for sub in ["root", "run", "tmp", "networks"] {
            std::fs::create_dir(p.join(sub)).unwrap();
        }
        std::fs::write(
            p.join("containers.conf"),
            format!(
                "[containers]\n\
                 default_ulimits = [\"nofile=4096:4096\", \"nproc=4096:4096\"]\n\
                 log_driver = \"k8s-file\"\n\
                 [network]\n\
                 network_config_dir = \"{p}/networks\"\n\
                 [engine]\n\
                 runtime = \"runc\"\n\
                 cgroup_manager = \"cgroupfs\"\n\
                 events_logger = \"file\"\n\
                 events_logfile_path = \"{p}/events.log\"\n\
                 tmp_dir = \"{p}/tmp\"\n\
                 lock_type = \"file\"\n",
                p = p.display()
            ),
        )
        .unwrap();
        std::fs::write(
            p.join("storage.conf"),
            format!(
                "[storage]\ndriver = \"vfs\"\ngraphroot = \"{p}/root\"\nrunroot = \"{p}/run\"\n",
                p = p.display()
            ),
        )
        .unwrap();
        Self { dir }
    }

    /// A scratch directory inside the engine's temporary directory.
    pub fn scratch(&self, name: &str) -> PathBuf {
        let path = self.dir.path().join("scratch").join(name);
        std::fs::create_dir_all(&path).unwrap();
        path
    }

    /// `program` (podman or buildah) with this engine's configuration.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("CONTAINERS_CONF", self.dir.path().join("containers.conf"))
            .env(
                "CONTAINERS_STORAGE_CONF",
                self.dir.path().join("storage.conf"),
            )
            .stdin(Stdio::null());
        cmd
    }

    /// Runs `program args` and returns its output, whatever the exit status.
    pub fn try_run(&self, program: &str, args: &[&str]) -> Output {
        self.command(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{program}: {e}"))
    }

    /// Runs `program args`, panics unless it succeeds, returns its trimmed stdout.
    pub fn run(&self, program: &str, args: &[&str]) -> String {
        let out = self.try_run(program, args);
        assert!(
            out.status.success(),
            "{program} {args:?}: {}\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    pub fn podman(&self, args: &[&str]) -> String {
        self.run("podman", args)
    }

    /// The stand-in for the distroless `cc-debian12:nonroot` base, from the host's files of
    /// the same Debian packages: the shared libraries `binary` loads (glibc, libm, libgcc_s,
    /// the dynamic loader), the CA bundle, and `/etc/passwd` with `nonroot` (65532).
    pub fn runtime_base(&self, binary: &Path) -> &'static str {
        let rootfs = self.scratch("base-rootfs");
        debian_base(&rootfs);
        copy_libraries(binary, &rootfs);
        self.image_from_rootfs(BASE_IMAGE, &rootfs, &[]);
        BASE_IMAGE
    }

    /// The image from the repository's `Dockerfile`, its runtime stage on
    /// [`Engine::runtime_base`], its binary the release build (the build stage replaced by a
    /// build context). Prints how long the build took.
    pub fn proxy_image(&self) -> &'static str {
        let binary = release_binary();
        let base = self.runtime_base(&binary);
        let context = self.scratch("build-context");
        let bin = context.join("out/usr/local/bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::copy(&binary, bin.join("zoho-meeting-proxy")).unwrap();
        std::fs::set_permissions(
            bin.join("zoho-meeting-proxy"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        let state = context.join("out/var/lib/zoho-meeting-proxy");
        std::fs::create_dir_all(&state).unwrap();
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::os::unix::fs::chown(&state, Some(65532), Some(65532)).unwrap();

        let started = Instant::now();
        self.run(
            "buildah",
            &[
                "bud",
                "--quiet",
                "--layers=false",
                // The Docker format keeps HEALTHCHECK (OCI image configs have no field for it).
                "--format",
                "docker",
                "--build-context",
                &format!("build={}", context.display()),
                "--build-arg",
                &format!("RUNTIME_BASE={base}"),
                "-t",
                PROXY_IMAGE,
                "-f",
                &format!("{ROOT}/Dockerfile"),
                ROOT,
            ],
        );
        eprintln!(
            "built {PROXY_IMAGE} from Dockerfile with {} in {:.1?}",
            binary.display(),
            started.elapsed()
        );
        PROXY_IMAGE
    }

    /// The application's image: `sh` (dash), `sleep`, `cat`, curl, and the proxy binary as
    /// `/usr/local/bin/zoho-meeting-proxy` (for `wait`), with their libraries, user 65532.
    pub fn client_image(&self) -> &'static str {
        tools::curl();
        self.image_of_programs(
            CLIENT_IMAGE,
            &[
                (PathBuf::from("/bin/dash"), "bin/sh"),
                (PathBuf::from("/bin/sleep"), "bin/sleep"),
                (PathBuf::from("/bin/cat"), "bin/cat"),
                (which("curl"), "usr/bin/curl"),
                (release_binary(), "usr/local/bin/zoho-meeting-proxy"),
            ],
        );
        CLIENT_IMAGE
    }

    /// A stand-in for `redis:7-bookworm` (no registry here): the host's `redis-server` and
    /// `redis-cli` (Debian's, installed when missing) with their libraries, user 65532.
    pub fn redis_image(&self) -> &'static str {
        tools::redis_server();
        self.image_of_programs(
            REDIS_IMAGE,
            &[
                (which("redis-server"), "usr/bin/redis-server"),
                (which("redis-cli"), "usr/bin/redis-cli"),
            ],
        );
        REDIS_IMAGE
    }

    /// An image `FROM scratch` with `programs` (host path, path in the image), their
    /// libraries, the base files, `PATH` and user 65532.
    fn image_of_programs(&self, name: &str, programs: &[(PathBuf, &str)]) {
        let rootfs = self.scratch(&format!("rootfs-{}", name.replace(['/', ':'], "_")));
        debian_base(&rootfs);
        for (from, to) in programs {
            let dest = rootfs.join(to);
            std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
            std::fs::copy(from, &dest).unwrap_or_else(|e| panic!("{}: {e}", from.display()));
            copy_libraries(from, &rootfs);
        }
        self.image_from_rootfs(
            name,
            &rootfs,
            &["--env", "PATH=/usr/local/bin:/usr/bin:/bin"],
        );
    }

    fn image_from_rootfs(&self, name: &str, rootfs: &Path, config: &[&str]) {
        let container = self.run("buildah", &["from", "--quiet", "scratch"]);
        self.run(
            "buildah",
            &[
                "copy",
                "--quiet",
                &container,
                &rootfs.display().to_string(),
                "/",
            ],
        );
        let mut args = vec!["config", "--user", "65532:65532"];
        args.extend_from_slice(config);
        args.push(&container);
        self.run("buildah", &args);
        self.run(
            "buildah",
            &[
                "commit", "--quiet", "--rm", "--format", "docker", &container, name,
            ],
        );
    }

    /// The PID of a running container (for `nsenter`).
    pub fn pid(&self, container: &str) -> String {
        let pid = self.podman(&["inspect", "--format", "{{.State.Pid}}", container]);
        assert!(pid != "0", "{container} is not running");
        pid
    }

    /// `curl args` run inside the network namespace of the running container `netns_of`
    /// (all of a pod's containers share it): (HTTP status, body); status 0 when nothing
    /// answered.
    pub fn curl_in(&self, netns_of: &str, args: &[&str]) -> (u16, String) {
        tools::curl();
        let pid = self.pid(netns_of);
        let out = Command::new("nsenter")
            .args(["-t", &pid, "-n", "curl", "-sS", "-w", "\n%{http_code}"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
        (code.trim().parse().unwrap_or(0), body.to_owned())
    }

    /// Polls `check` every 50 ms until it returns `Some`, for at most `limit` (then panics
    /// with `what` and the logs of `containers`).
    pub fn until<T>(
        &self,
        what: &str,
        limit: Duration,
        containers: &[&str],
        mut check: impl FnMut() -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(value) = check() {
                return value;
            }
            if Instant::now() > deadline {
                let logs: Vec<String> = containers
                    .iter()
                    .map(|c| {
                        let out = self.try_run("podman", &["logs", c]);
                        format!(
                            "--- {c}:\n{}{}",
                            String::from_utf8_lossy(&out.stdout),
                            String::from_utf8_lossy(&out.stderr)
                        )
                    })
                    .collect();
                panic!("{what}: not within {limit:?}\n{}", logs.join("\n"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `podman logs CONTAINER`, stdout and stderr.
    pub fn logs(&self, container: &str) -> String {
        let out = self.try_run("podman", &["logs", container]);
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }
}

impl Drop for Engine {
    /// Removes every pod, container and image this engine made (they all live in its
    /// storage), then the directory.
    fn drop(&mut self) {
        // Containers that share another's network namespace must go first: `rm --all`
        // removes what it can, and again until none is left.
        for _ in 0..3 {
            let left = self.try_run("podman", &["ps", "--all", "--quiet"]);
            if left.stdout.trim_ascii().is_empty() {
                break;
            }
            self.try_run("podman", &["rm", "--all", "--force", "--time", "0"]);
        }
        for (program, args) in [
            (
                "podman",
                &["pod", "rm", "--all", "--force", "--time", "0"][..],
            ),
            (
                "podman",
                &["rm", "--all", "--force", "--volumes", "--time", "0"][..],
            ),
            ("podman", &["volume", "rm", "--all", "--force"][..]),
            ("podman", &["rmi", "--all", "--force"][..]),
            ("buildah", &["rm", "--all"][..]),
        ] {
            let out = self.try_run(program, args);
            if !out.status.success() {
                eprintln!(
                    "cleanup: {program} {args:?}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
    }
}

/// The release binary the image is built from: `$ZOHO_PROXY_TEST_BIN` when set, else this
/// build's `target/release/zoho-meeting-proxy`, brought up to date by `cargo build --release`
/// (a no-op when CI has just built it; said on stderr when it was missing).
pub fn release_binary() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            if let Some(bin) = std::env::var_os("ZOHO_PROXY_TEST_BIN") {
                return PathBuf::from(bin);
            }
            // CARGO_BIN_EXE_… is <target dir>/<profile>/zoho-meeting-proxy.
            let target = Path::new(env!("CARGO_BIN_EXE_zoho-meeting-proxy"))
                .parent()
                .and_then(Path::parent)
                .unwrap()
                .to_owned();
            let release = target.join("release/zoho-meeting-proxy");
            if !release.exists() {
                eprintln!(
                    "{} is missing: building it with `cargo build --release` for the container \
                     tests (this takes minutes; .ci/run builds it before the tests)",
                    release.display()
                );
            }
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let status = Command::new(cargo)
                .args(["build", "--release", "--locked", "--quiet"])
                .env("CARGO_TARGET_DIR", &target)
                .current_dir(ROOT)
                .stdin(Stdio::null())
                .status()
                .unwrap();
            assert!(status.success(), "cargo build --release failed");
            release
        })
        .clone()
}

fn which(program: &str) -> PathBuf {
    let out = Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .unwrap();
    assert!(out.status.success(), "{program} is not on PATH");
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// What distroless's `base` layer holds besides libraries: users and groups with `nonroot`
/// (65532), its home, a world-writable `/tmp`, the CA bundle.
fn debian_base(rootfs: &Path) {
    for dir in ["etc/ssl/certs", "tmp", "home/nonroot"] {
        std::fs::create_dir_all(rootfs.join(dir)).unwrap();
    }
    std::fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0:root:/root:/sbin/nologin\n\
         nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n\
         nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n",
    )
    .unwrap();
    std::fs::write(
        rootfs.join("etc/group"),
        "root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n",
    )
    .unwrap();
    std::fs::copy(
        "/etc/ssl/certs/ca-certificates.crt",
        rootfs.join("etc/ssl/certs/ca-certificates.crt"),
    )
    .unwrap();
    std::fs::set_permissions(rootfs.join("tmp"), std::fs::Permissions::from_mode(0o1777)).unwrap();
    std::os::unix::fs::chown(rootfs.join("home/nonroot"), Some(65532), Some(65532)).unwrap();
}

/// Copies the shared libraries `ldd` names for `program` (and the dynamic loader) into
/// `rootfs` at the same paths.
fn copy_libraries(program: &Path, rootfs: &Path) {
    let out = Command::new("ldd").arg(program).output().unwrap();
    assert!(out.status.success(), "ldd {}", program.display());
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(lib) = line.split_whitespace().find(|t| t.starts_with('/')) else {
            continue; // linux-vdso
        };
        let dest = rootfs.join(lib.trim_start_matches('/'));
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(lib, &dest).unwrap_or_else(|e| panic!("{lib}: {e}"));
    }
}
