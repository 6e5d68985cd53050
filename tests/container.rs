//! The container for real (issue 21): the image built from `Dockerfile` with buildah and run
//! with podman, the pod from `deploy/kubernetes/pod.yaml` played with `podman kube play`, the
//! emulator (`sandbox --emulator-only`) in the pod standing in for Zoho. See
//! tests/support/podman.rs for what this machine needs and how the tests keep to a
//! temporary directory. These tests install podman, buildah and runc when missing (apt-get,
//! as root) and fail naming the command otherwise.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::podman::{Engine, PROXY_IMAGE};

/// The emulator's client (its built-in one; `sandbox --emulator-only` prints it).
pub(crate) const EMULATOR_CLIENT_ID: &str = "1000.SANDBOXCLIENT";
pub(crate) const EMULATOR_CLIENT_SECRET: &str = "sandbox-secret";
/// Where the emulator listens inside a pod.
pub(crate) const ACCOUNTS: &str = "127.0.0.1:9401";
pub(crate) const MEETING: &str = "127.0.0.1:9402";

/// A directory laid out as the secret volume: `client_secret` and `refresh_token`, readable
/// by the container user (65532), with a fresh refresh token that the emulator accepts
/// (`--refresh-token-file`).
pub(crate) fn secrets(engine: &Engine) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = engine.scratch("secrets");
    let refresh = format!(
        "1000.{:032x}.{:032x}",
        rand::random::<u128>(),
        rand::random::<u128>()
    );
    for (name, value) in [
        ("client_secret", EMULATOR_CLIENT_SECRET.to_owned()),
        ("refresh_token", refresh),
    ] {
        std::fs::write(dir.join(name), format!("{value}\n")).unwrap();
        std::fs::set_permissions(dir.join(name), std::fs::Permissions::from_mode(0o444)).unwrap();
    }
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// The emulator's arguments inside a pod.
pub(crate) fn emulator_args(extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "sandbox",
        "--emulator-only",
        "--refresh-token-file",
        "/run/secrets/zoho/refresh_token",
        "--accounts-listen",
        ACCOUNTS,
        "--meeting-listen",
        MEETING,
    ]
    .map(str::to_owned)
    .to_vec();
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    args
}

#[test]
fn image_from_the_dockerfile_is_small_non_root_shell_less_and_healthy() {
    let engine = Engine::new();
    let image = engine.proxy_image();

    // Size and user.
    let size: u64 = engine
        .podman(&["image", "inspect", "--format", "{{.Size}}", image])
        .parse()
        .unwrap();
    eprintln!("{image}: {size} bytes ({:.1} MB)", size as f64 / 1e6);
    assert!(size <= 20_000_000, "the image is {size} bytes, over 20 MB");
    assert_eq!(
        engine.podman(&["image", "inspect", "--format", "{{.Config.User}}", image]),
        "65532:65532"
    );

    // Its files: the binary root's and read-only to the user, the state directory the
    // user's alone, no shell anywhere.
    let container = engine.podman(&["create", image]);
    let tar = engine.scratch("export").join("rootfs.tar");
    engine.podman(&["export", "-o", tar.to_str().unwrap(), &container]);
    engine.podman(&["rm", &container]);
    let out = Command::new("tar")
        .args(["--numeric-owner", "-tvf"])
        .arg(&tar)
        .output()
        .unwrap();
    assert!(out.status.success());
    let listing = String::from_utf8_lossy(&out.stdout).into_owned();
    let entry = |path: &str| -> (String, String) {
        let line = listing
            .lines()
            .find(|l| l.split_whitespace().nth(5) == Some(path))
            .unwrap_or_else(|| panic!("no {path} in the image:\n{listing}"));
        let mut fields = line.split_whitespace();
        (
            fields.next().unwrap().to_owned(),
            fields.next().unwrap().to_owned(),
        )
    };
    assert_eq!(
        entry("usr/local/bin/zoho-meeting-proxy"),
        ("-rwxr-xr-x".to_owned(), "0/0".to_owned())
    );
    assert_eq!(
        entry("var/lib/zoho-meeting-proxy/"),
        ("drwx------".to_owned(), "65532/65532".to_owned())
    );
    for line in listing.lines() {
        let path = line.split_whitespace().nth(5).unwrap_or_default();
        let name = path.trim_end_matches('/').rsplit('/').next().unwrap();
        assert!(
            !["sh", "bash", "dash", "ash", "zsh", "busybox"].contains(&name),
            "a shell in the image: {line}"
        );
    }
    let shell = engine.try_run(
        "podman",
        &[
            "run",
            "--rm",
            "--entrypoint",
            "/bin/sh",
            image,
            "-c",
            "true",
        ],
    );
    assert!(!shell.status.success(), "/bin/sh ran in the image");

    // The HEALTHCHECK (`wait`) fails while no token can be had and passes once Zoho (the
    // emulator, started later in the same pod) answers.
    let secrets = secrets(&engine);
    let mount = format!("{}:/run/secrets/zoho:ro", secrets.display());
    engine.podman(&["pod", "create", "--name", "hc", "--network", "none"]);
    engine.podman(&[
        "run",
        "-d",
        "--pod",
        "hc",
        "--name",
        "hc-proxy",
        "-v",
        &mount,
        "-e",
        &format!("ZOHO_PROXY_OAUTH__CLIENT_ID={EMULATOR_CLIENT_ID}"),
        "-e",
        "ZOHO_PROXY_OAUTH__CLIENT_SECRET_FILE=/run/secrets/zoho/client_secret",
        "-e",
        "ZOHO_PROXY_OAUTH__REFRESH_TOKEN_FILE=/run/secrets/zoho/refresh_token",
        "-e",
        &format!("ZOHO_PROXY_OAUTH__ACCOUNTS_URL=http://{ACCOUNTS}"),
        "-e",
        &format!("ZOHO_PROXY_UPSTREAM__URL=http://{MEETING}"),
        image,
    ]);
    let unhealthy = engine.try_run("podman", &["healthcheck", "run", "hc-proxy"]);
    assert!(
        !unhealthy.status.success(),
        "healthy without Zoho: {}",
        String::from_utf8_lossy(&unhealthy.stdout)
    );
    let mut args = vec![
        "run", "-d", "--pod", "hc", "--name", "hc-zoho", "-v", &mount, image,
    ];
    let emulator = emulator_args(&[]);
    args.extend(emulator.iter().map(String::as_str));
    engine.podman(&args);
    let started = Instant::now();
    engine.until(
        "podman healthcheck run: healthy",
        Duration::from_secs(90),
        &["hc-proxy", "hc-zoho"],
        || {
            engine
                .try_run("podman", &["healthcheck", "run", "hc-proxy"])
                .status
                .success()
                .then_some(())
        },
    );
    eprintln!(
        "healthy {:.1?} after the emulator started (the proxy retried with backoff)",
        started.elapsed()
    );
    let (status, body) = engine.curl_in("hc-proxy", &["http://127.0.0.1:8080/api/v2/user.json"]);
    assert_eq!(status, 200, "{body}");
    assert_eq!(PROXY_IMAGE, image);
}

/// The application: waits for the proxy as the manifest's comment says (podman 4.3 has no
/// native sidecars), then creates a meeting and reads it back through the proxy on
/// 127.0.0.1:8080, with no credentials of any kind, and stays up for the test's `exec`s.
const APP_SCRIPT: &str = r#"zoho-meeting-proxy wait --timeout 60s || exit 1
echo "app: the proxy is ready"
created=$(curl -sS -X POST "$ZOHO_MEETING_API/api/v2/700000001/sessions.json" -H 'Content-Type: application/json' -d '{"session":{"topic":"Hello from the pod","startTime":"Jun 19, 2030 07:00 PM","duration":3600000,"timezone":"UTC","participants":[{"email":"guest@example.com"}]}}')
key=${created#*\"meetingKey\":}
key=${key%%[!0-9]*}
echo "app: created meetingKey $key"
curl -sS -w '\napp: read status %{http_code}\n' "$ZOHO_MEETING_API/api/v2/700000001/sessions/$key.json"
echo "app: done"
exec sleep 3600
"#;

/// Pod and container names as `podman kube play` makes them.
const POD: &str = "meeting-app";
const PROXY: &str = "meeting-app-zoho-meeting-proxy";
const APP: &str = "meeting-app-app";
const ZOHO: &str = "meeting-app-zoho";

fn mapping(v: &mut serde_norway::Value) -> &mut serde_norway::Mapping {
    v.as_mapping_mut().unwrap()
}

fn set_env(container: &mut serde_norway::Value, name: &str, value: &str) {
    let env = container["env"].as_sequence_mut().unwrap();
    env.retain(|v| v["name"].as_str() != Some(name));
    env.push(serde_norway::from_str(&format!("{{name: {name}, value: {value:?}}}")).unwrap());
}

/// deploy/kubernetes/pod.yaml with what the test must substitute: the images, the emulator's
/// client and endpoints, the Secret as a host directory (podman's secret volumes are podman
/// secrets, not kube Secrets), and the emulator as a third container. And what podman 4.3
/// cannot run: a native sidecar. It runs `initContainers` to completion before starting
/// `containers` and ignores `restartPolicy: Always` (tried: `kube play` blocks on the
/// sidecar), so the proxy moves to `containers` and the application is gated by `wait`, as
/// the manifest's comment describes for clusters without native sidecars. The `ports`
/// entry goes too (see below).
fn pod_manifest(image: &str, client: &str, secrets: &std::path::Path) -> String {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/kubernetes/pod.yaml"
    ))
    .unwrap();
    let mut pod: serde_norway::Value = serde_norway::from_str(&text).unwrap();
    assert_eq!(pod["metadata"]["name"].as_str(), Some(POD));
    let spec = &mut pod["spec"];
    let mut proxy = mapping(spec)
        .remove("initContainers")
        .and_then(|mut init| init.as_sequence_mut().map(|s| s.remove(0)))
        .expect("the proxy is a native sidecar in initContainers");
    assert_eq!(proxy["name"].as_str(), Some("zoho-meeting-proxy"));
    assert_eq!(proxy["restartPolicy"].as_str(), Some("Always"));
    mapping(&mut proxy).remove("restartPolicy");
    // The pod runs with `--network none` (loopback only, no host network touched), where
    // podman refuses port mappings, and `kube play` turns `containerPort` into one.
    assert!(mapping(&mut proxy).remove("ports").is_some());
    proxy["image"] = image.into();
    set_env(
        &mut proxy,
        "ZOHO_PROXY_OAUTH__CLIENT_ID",
        EMULATOR_CLIENT_ID,
    );
    set_env(
        &mut proxy,
        "ZOHO_PROXY_OAUTH__ACCOUNTS_URL",
        &format!("http://{ACCOUNTS}"),
    );
    set_env(
        &mut proxy,
        "ZOHO_PROXY_UPSTREAM__URL",
        &format!("http://{MEETING}"),
    );

    let containers = spec["containers"].as_sequence_mut().unwrap();
    let app = &mut containers[0];
    assert_eq!(app["name"].as_str(), Some("app"));
    app["image"] = client.into();
    app["command"] = serde_norway::to_value(["sh", "-c", APP_SCRIPT]).unwrap();

    let zoho: serde_norway::Value = serde_norway::from_str(&format!(
        "name: zoho\n\
         image: {image}\n\
         args: {args}\n\
         env: [{{name: ZOHO_PROXY_LOG__LEVEL, value: debug}}]\n\
         volumeMounts: [{{name: zoho-oauth, mountPath: /run/secrets/zoho, readOnly: true}}]\n",
        args = serde_json::to_string(&emulator_args(&["--latency", "3s"])).unwrap(),
    ))
    .unwrap();
    containers.insert(0, proxy);
    containers.insert(0, zoho);

    let volumes = spec["volumes"].as_sequence_mut().unwrap();
    let secret = volumes
        .iter_mut()
        .find(|v| v["name"].as_str() == Some("zoho-oauth"))
        .unwrap();
    assert_eq!(secret["secret"]["secretName"].as_str(), Some("zoho-oauth"));
    mapping(secret).remove("secret");
    secret["hostPath"] = serde_norway::from_str(&format!(
        "{{path: {:?}, type: Directory}}",
        secrets.display().to_string()
    ))
    .unwrap();
    serde_norway::to_string(&pod).unwrap()
}

/// `/status` of the proxy, asked inside the pod.
fn status(engine: &Engine) -> serde_json::Value {
    let (code, body) = engine.curl_in(APP, &["http://127.0.0.1:9090/status"]);
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// `podman start` on the stopped proxy, then `/readyz` 200: how long that took.
fn start_until_ready(engine: &Engine) -> Duration {
    let started = Instant::now();
    engine.podman(&["start", PROXY]);
    engine.until(
        "/readyz 200 after podman start",
        Duration::from_secs(60),
        &[PROXY, ZOHO],
        || (engine.curl_in(APP, &["http://127.0.0.1:9090/readyz"]).0 == 200).then_some(()),
    );
    started.elapsed()
}

#[test]
fn pod_from_the_manifest_serves_the_application_on_localhost_and_stops_like_a_sidecar() {
    let engine = Engine::new();
    let image = engine.proxy_image();
    let client = engine.client_image();
    let secrets = secrets(&engine);
    let manifest = engine.scratch("kube").join("pod.yaml");
    std::fs::write(&manifest, pod_manifest(image, client, &secrets)).unwrap();
    let played = Instant::now();
    engine.podman(&[
        "kube",
        "play",
        "--network",
        "none",
        manifest.to_str().unwrap(),
    ]);

    // The application creates and reads a meeting through the proxy on localhost.
    engine.until(
        "the application's calls",
        Duration::from_secs(90),
        &[APP, PROXY, ZOHO],
        || engine.logs(APP).contains("app: done").then_some(()),
    );
    eprintln!(
        "pod played to the application's second answer in {:.1?}",
        played.elapsed()
    );
    let app_log = engine.logs(APP);
    assert!(app_log.contains("app: read status 200"), "{app_log}");
    assert!(app_log.contains("Hello from the pod"), "{app_log}");
    let key = app_log
        .lines()
        .find_map(|l| l.strip_prefix("app: created meetingKey "))
        .unwrap();
    assert!(!key.is_empty(), "{app_log}");

    // As the manifest says: a read-only root, the token store on the emptyDir.
    assert_eq!(
        engine.podman(&[
            "inspect",
            "--format",
            "{{.HostConfig.ReadonlyRootfs}}",
            PROXY
        ]),
        "true"
    );
    let state = engine.podman(&[
        "inspect",
        "--format",
        "{{range .Mounts}}{{if eq .Destination \"/var/lib/zoho-meeting-proxy\"}}{{.Source}}{{end}}{{end}}",
        PROXY,
    ]);
    let token_file = std::path::Path::new(&state).join("state/token.json");
    let stored: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&token_file).unwrap()).unwrap();
    let access_token = stored["access_token"]["token"].as_str().unwrap().to_owned();

    // The application never holds a token: not in its environment, its output, or its
    // filesystem (the store is the proxy's alone).
    let app_env = engine.podman(&["inspect", "--format", "{{.Config.Env}}", APP]);
    assert!(!app_env.contains(&access_token) && !app_env.contains("ZOHO_PROXY_OAUTH"));
    assert!(!app_log.contains(&access_token));
    assert!(
        !engine
            .try_run(
                "podman",
                &[
                    "exec",
                    APP,
                    "cat",
                    "/var/lib/zoho-meeting-proxy/state/token.json"
                ]
            )
            .status
            .success()
    );

    let before = status(&engine);
    assert_eq!(before["ready"], true, "{before}");

    // Stop like a sidecar: a slow request (the emulator answers after 3 s) is in flight when
    // `podman stop` sends SIGTERM; /readyz turns 503 while it completes; exit 0 within the
    // grace (`podman stop --time 30` would SIGKILL at 30 s, making the exit code 137).
    engine.podman(&[
        "exec",
        "-d",
        APP,
        "sh",
        "-c",
        "while :; do curl -s -o /dev/null -w 'readyz %{http_code}\\n' http://127.0.0.1:9090/readyz >> /tmp/events; sleep 0.05; done",
    ]);
    let seen = |needle: &str| engine.logs(ZOHO).matches(needle).count();
    let user_calls = seen("/api/v2/user.json");
    engine.podman(&[
        "exec",
        "-d",
        APP,
        "sh",
        "-c",
        "curl -sS -o /dev/null -w 'slow %{http_code}\\n' \"$ZOHO_MEETING_API/api/v2/user.json\" >> /tmp/events 2>&1",
    ]);
    engine.until(
        "the slow request at the emulator",
        Duration::from_secs(30),
        &[ZOHO],
        || (seen("/api/v2/user.json") > user_calls).then_some(()),
    );
    let stopping = Instant::now();
    engine.podman(&["stop", "--time", "30", PROXY]);
    let stop_took = stopping.elapsed();
    let exit = engine.podman(&["inspect", "--format", "{{.State.ExitCode}}", PROXY]);
    assert_eq!(exit, "0", "{}", engine.logs(PROXY));
    let events = engine.podman(&["exec", APP, "cat", "/tmp/events"]);
    let first = |line: &str| events.lines().position(|l| l == line);
    let completed = first("slow 200").unwrap_or_else(|| panic!("slow request:\n{events}"));
    let not_ready = first("readyz 503").unwrap_or_else(|| panic!("no 503:\n{events}"));
    assert!(
        first("readyz 200").is_some_and(|i| i < not_ready),
        "{events}"
    );
    assert!(
        not_ready < completed,
        "/readyz turned 503 only after the request completed:\n{events}"
    );
    eprintln!("podman stop during a 3 s request took {stop_took:.1?}; the request completed");

    // A restarted proxy reuses the stored token: same fingerprint, no new mint.
    let with_store = start_until_ready(&engine);
    let after = status(&engine);
    assert_eq!(after["token_fingerprint"], before["token_fingerprint"]);
    assert_eq!(after["mints_in_window"], before["mints_in_window"]);
    assert!(engine.logs(PROXY).contains("reusing stored access token"));

    // Without a stored token it mints one.
    engine.podman(&["stop", "--time", "30", PROXY]);
    std::fs::remove_file(&token_file).unwrap();
    let without_store = start_until_ready(&engine);
    let fresh = status(&engine);
    assert_ne!(fresh["token_fingerprint"], before["token_fingerprint"]);
    eprintln!(
        "podman start to /readyz 200: {with_store:.2?} with a stored token, \
         {without_store:.2?} without one"
    );
}

/// The application of the compose test: waits for the proxy, makes one call with the client
/// key (the replicas listen beyond loopback, so a key is required), and stays up. `$$` is
/// compose's escape for `$`.
const COMPOSE_APP_SCRIPT: &str = r#"zoho-meeting-proxy wait --timeout 60s || exit 1
curl -sS -H "Proxy-Authorization: Bearer $$(cat /run/secrets/client_keys)" -w '\napp: status %{http_code}\n' http://127.0.0.1:8080/api/v2/user.json
echo "app: done"
exec sleep 3600
"#;

/// deploy/docker-compose.yml with what the test must substitute, and why:
/// - the emulator and an application as two more services, the images made here (the
///   proxy's image is tagged as the file names it, and `up --no-build` uses it: the build
///   stage's `rust` image cannot be pulled here);
/// - one network namespace for all services instead of a bridge network (no host network is
///   touched, and no address beyond loopback is used): Redis's, joined by the others with
///   `network_mode: service:redis`, so Redis is `127.0.0.1:6379`, not `redis:6379`;
/// - one replica, not two: two replicas in one network namespace cannot both listen on
///   0.0.0.0:8080 (two replicas sharing Redis are tested in tests/fleet.rs), and no published
///   ports (podman cannot publish from a shared or empty network namespace).
fn compose_file(image: &str, client: &str, redis: &str) -> String {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/docker-compose.yml"
    ))
    .unwrap();
    let mut compose: serde_norway::Value = serde_norway::from_str(&text).unwrap();
    let services = &mut compose["services"];
    services["redis"]["image"] = redis.into();
    services["redis"]["network_mode"] = "none".into();

    let proxy = &mut services["proxy"];
    assert_eq!(proxy["deploy"]["replicas"].as_u64(), Some(2));
    proxy["deploy"]["replicas"] = 1.into();
    assert!(mapping(proxy).remove("ports").is_some());
    proxy["network_mode"] = "service:redis".into();
    let env = &mut proxy["environment"];
    assert_eq!(
        env["ZOHO_PROXY_TOKEN__REDIS_URL"].as_str(),
        Some("redis://redis:6379/0")
    );
    env["ZOHO_PROXY_TOKEN__REDIS_URL"] = "redis://127.0.0.1:6379/0".into();
    env["ZOHO_PROXY_OAUTH__CLIENT_ID"] = EMULATOR_CLIENT_ID.into();
    env["ZOHO_PROXY_OAUTH__ACCOUNTS_URL"] = format!("http://{ACCOUNTS}").into();
    env["ZOHO_PROXY_UPSTREAM__URL"] = format!("http://{MEETING}").into();
    let image_name = proxy["image"].as_str().unwrap().to_owned();

    // Compose mounts each secret at /run/secrets/NAME.
    let emulator: Vec<String> = emulator_args(&[])
        .into_iter()
        .map(|a| a.replace("/run/secrets/zoho/", "/run/secrets/"))
        .collect();
    services["zoho"] = serde_norway::from_str(&format!(
        "image: {image}\n\
         command: {emulator}\n\
         network_mode: 'service:redis'\n\
         secrets: [refresh_token]\n",
        emulator = serde_json::to_string(&emulator).unwrap(),
    ))
    .unwrap();
    services["app"] = serde_norway::from_str(&format!(
        "image: {client}\n\
         entrypoint: ['sh', '-c']\n\
         command: [{script:?}]\n\
         network_mode: 'service:redis'\n\
         secrets: [client_keys]\n\
         depends_on: [proxy]\n",
        script = COMPOSE_APP_SCRIPT,
    ))
    .unwrap();
    // As JSON (which is YAML): serde_norway writes the string "no" unquoted, which
    // podman-compose's YAML 1.1 parser reads as false (redis then refuses `--appendonly`).
    let mut text = serde_json::to_string_pretty(&compose).unwrap();
    text.push_str(&format!("\n# proxy image: {image_name}\n"));
    text
}

#[test]
fn compose_file_brings_up_the_proxy_and_an_application_that_reaches_it() {
    use std::os::unix::fs::PermissionsExt;
    crate::support::tools::podman_compose();
    let engine = Engine::new();
    let image = engine.proxy_image();
    let client = engine.client_image();
    let redis = engine.redis_image();
    let project = engine.scratch("compose");
    let compose = compose_file(image, client, redis);
    let named = compose
        .lines()
        .last()
        .and_then(|l| l.strip_prefix("# proxy image: "))
        .unwrap()
        .to_owned();
    engine.podman(&["tag", image, &named]);
    std::fs::write(project.join("docker-compose.yml"), &compose).unwrap();
    // The secret files as the compose file's header says to make them.
    let secrets = project.join("secrets");
    std::fs::create_dir(&secrets).unwrap();
    let refresh = format!("1000.{:032x}", rand::random::<u128>());
    let key = format!("{:048x}", rand::random::<u128>());
    for (name, value) in [
        ("client_secret", EMULATOR_CLIENT_SECRET),
        ("refresh_token", refresh.as_str()),
        ("client_keys", key.as_str()),
    ] {
        std::fs::write(secrets.join(name), format!("{value}\n")).unwrap();
        std::fs::set_permissions(secrets.join(name), std::fs::Permissions::from_mode(0o444))
            .unwrap();
    }

    let up = Instant::now();
    let mut cmd = engine.command("python3");
    cmd.args([
        "-m",
        "podman_compose",
        "--in-pod",
        "false",
        "-p",
        "zohocompose",
        "-f",
    ])
    .arg(project.join("docker-compose.yml"))
    .args(["up", "-d", "--no-build"])
    .current_dir(&project);
    // podman-compose waits for dependencies forever when one fails to start: bounded here,
    // so that the engine's cleanup still runs.
    let log = std::fs::File::create(project.join("up.log")).unwrap();
    let mut child = cmd
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let status = engine.until(
        "podman-compose up -d",
        Duration::from_secs(120),
        &[],
        || child.try_wait().unwrap(),
    );
    if !status.success() {
        let _ = child.kill();
    }
    assert!(
        status.success(),
        "podman-compose up: {status}\n{}",
        std::fs::read_to_string(project.join("up.log")).unwrap()
    );
    let names = engine.podman(&["ps", "-a", "--format", "{{.Names}}"]);
    let name_of = |service: &str| {
        names
            .lines()
            .find(|n| n.contains(&format!("_{service}_")))
            .unwrap_or_else(|| panic!("no {service} container in:\n{names}"))
            .to_owned()
    };
    let (app, proxy, zoho) = (name_of("app"), name_of("proxy"), name_of("zoho"));
    engine.until(
        "the application's call",
        Duration::from_secs(90),
        &[&app, &proxy, &zoho],
        || engine.logs(&app).contains("app: done").then_some(()),
    );
    eprintln!(
        "compose up to the application's answer in {:.1?}",
        up.elapsed()
    );
    let app_log = engine.logs(&app);
    assert!(app_log.contains("app: status 200"), "{app_log}");
    assert!(app_log.contains("userDetails"), "{app_log}");

    // Without the key: 407, the proxy listens beyond loopback with keys required.
    let (status, _) = engine.curl_in(&app, &["http://127.0.0.1:8080/api/v2/user.json"]);
    assert_eq!(status, 407);
    // The token is in Redis, shared: /status says so.
    let (status, body) = engine.curl_in(&app, &["http://127.0.0.1:9090/status"]);
    assert_eq!(status, 200, "{body}");
    let status: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(status["ready"], true, "{status}");
    let keys = engine.podman(&["exec", &name_of("redis"), "redis-cli", "--scan"]);
    assert!(
        keys.lines()
            .any(|k| k.starts_with("zoho-meeting-proxy:") && k.ends_with("access_token")),
        "{keys}"
    );
}
