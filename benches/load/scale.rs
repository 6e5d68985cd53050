//! The parts of the load bench where users live (issue 15): a TLS upstream that speaks
//! HTTP/1.1 or HTTP/2 (`tls`), 2,000 slow requests in flight (`wan`), and an HTTP/2 upstream
//! whose concurrent-stream limit binds (`h2-streams`); and the latency a user feels (issue
//! 24): a fixed request rate offered whatever the answers do (`latency`, an open loop).
//!
//! Each part runs ours next to nginx and haproxy where they do the same job (one worker or
//! thread each, as ours at `worker_threads = 1`), prints a table, and ends with issue 15's
//! targets, each with its figure and "met" or "not met". The upstreams run in the bench's
//! process: the plain one of the other parts (a `/sleep/MS` path answers after MS ms, on a
//! timer), and a TLS one here (rustls + hyper, HTTP/1.1 or HTTP/2 chosen by ALPN, certificate
//! from an rcgen CA that every proxy is told to trust).

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::{
    AUTHORIZATION, AccountsEmulator, Child, Command, Duration, Floor, FloorUpstream, Infallible,
    Instant, Nginx, Path, PathBuf, PeakSampler, Proxy, SocketAddr, Stdio, TokioExecutor, TokioIo,
    Wrk, before_name, free_port, have, hold_idle_connections, listener, ours_bin, route, rss_kib,
    run_wrk_under, run_wrk_url, serve_each, stat_path, terminate, with_cpu, wrapped,
};

/// `wan` and `h2-streams`: how long the upstream takes to answer, as a far data centre would.
const FAR_MS: u64 = 30;

/// `latency`: seconds of load before each measured run, not counted.
const WARM_UP_SECS: u64 = 2;

/// `wan`: client connections, each with one request in flight.
const WAN_CONNECTIONS: u32 = 2_000;

/// `h2-streams`: requests in flight, and the upstream's `SETTINGS_MAX_CONCURRENT_STREAMS`.
const H2_IN_FLIGHT: u32 = 1_000;
const H2_STREAM_LIMIT: u32 = 100;

/// Open files the parts need at most: wrk's, the proxies' and the in-process upstream's
/// sockets (`wan`: 2,000 client connections, as many upstream ones per proxy, kept idle
/// between runs).
const OPEN_FILES: u64 = 65_536;

/// What the parts share.
pub(super) struct Bench<'a> {
    pub(super) runtime: &'a tokio::runtime::Runtime,
    pub(super) accounts: &'a AccountsEmulator,
    pub(super) dir: &'a Path,
    /// Each wrk (or h2load) run's length.
    pub(super) secs: u64,
    pub(super) nginx: Option<&'a Path>,
    pub(super) haproxy: bool,
    pub(super) h2load: bool,
    /// oha, the open-loop load generator of `latency`.
    pub(super) oha: bool,
    /// The TLS upstream's certificate, its key, and the CA that signed it (PEM files).
    pub(super) tls: (PathBuf, PathBuf, PathBuf),
    /// `ZMP_BENCH_BEFORE_BIN`: a build of ours run next to it, as an "ours before" row.
    pub(super) before: Option<String>,
}

/// One row of a table: what drives the load at what, and the process whose CPU and RSS count.
struct Target {
    name: String,
    load: Load,
    /// The proxy process (nginx: its worker); `None` for the upstream itself and for a
    /// target in the bench's process.
    pid: Option<u32>,
    /// For a target in the bench's process (a hyper floor): the `/proc/…/stat` of the thread
    /// whose CPU counts.
    thread: Option<PathBuf>,
}

enum Load {
    /// wrk (HTTP/1.1, over TLS for an `https://` URL), one request in flight per connection.
    Wrk { url: String, connections: u32 },
    /// h2load: HTTP/2 over TLS, `streams` in flight on each of `connections`.
    H2load {
        url: String,
        connections: u32,
        streams: u32,
    },
}

/// What one run measured.
#[derive(Clone)]
struct Run {
    w: Wrk,
    /// Peak RSS of the target's process, KiB.
    rss_kib: Option<u64>,
    /// Peak established connections from the target's process to the upstream (sampled
    /// every 200 ms).
    upstream_conns: Option<u64>,
    /// Connections the kernel dropped during the run because a listener's accept queue was
    /// full (machine-wide `TcpExt: ListenOverflows`; runs do not overlap).
    listen_overflows: u64,
}

/// Ours with one configuration, and the before build (`ZMP_BENCH_BEFORE_BIN`) with the same
/// when there is one; stopped when dropped.
struct Ours {
    before: Option<Proxy>,
    now: Proxy,
}

/// `latency`'s CPUs: the proxies under test on CPU 1; the load generators and the bench's
/// own threads (the in-process upstream) on CPU 0. Dropped, it gives the bench back the CPUs
/// it had.
struct Pinning {
    /// The bench's CPUs before (`Cpus_allowed_list`).
    restore: String,
}

/// One of the issues' targets for one build of ours: what, its figure, and whether it is
/// met (`None`: not measured).
struct Check {
    what: String,
    figure: String,
    met: Option<bool>,
}

/// A proxy other than ours, stopped when dropped.
struct Haproxy {
    child: Child,
    addr: SocketAddr,
}

// === impl Bench ===

impl Bench<'_> {
    /// Raises the open-file limit (see [`raise_open_files`]) and names the install command
    /// of each missing tool these parts use.
    pub(super) fn prepare(&self) {
        raise_open_files();
        if !self.haproxy {
            println!(
                "haproxy is not installed: `apt-get update && apt-get install -y haproxy` (haproxy rows skipped)"
            );
        }
        if !self.h2load {
            println!(
                "h2load is not installed: `apt-get update && apt-get install -y nghttp2-client` (h2load rows skipped)"
            );
        }
        if !self.oha {
            println!(
                "oha is not installed: `cargo install oha --locked` (the latency part skipped)"
            );
        }
    }

    /// `latency`: the latency a user feels. A fixed request rate (oha `-q`, with its latency
    /// correction: a request late because an earlier one was slow counts from when it was
    /// due) at half and at 80 % of nginx's capacity, measured first in the same shape (wrk's
    /// closed loop, same connections), against a TLS upstream offering HTTP/2 that answers
    /// after 30 ms; 200 and 2,000 client connections. Added latency = target − direct, at
    /// p50, p99 and p99.9. Direct is the plain upstream (`plain`, the same 30 ms answers
    /// over HTTP/1.1 without TLS): what the upstream itself takes, without the TLS handshakes
    /// of oha's own connections, which would swamp its p99. Each measured run follows a
    /// warm-up of [`WARM_UP_SECS`] at the same rate: the figures are a proxy's steady state,
    /// not its first connections to the upstream.
    ///
    /// With 2 CPUs or more and `taskset`, the whole part is pinned ([`Pinning`]): the proxies
    /// under test (ours and before's, all threads; nginx's master and worker; haproxy) on
    /// CPU 1, everything else (oha, the wrk runs that measure nginx's capacity, the bench's
    /// own threads with the in-process upstream) on CPU 0, so that a proxy's tail latency is
    /// its own rather than the machine's saturation; direct, too, runs with generator and
    /// upstream on CPU 0. Unpinned otherwise, and the part says so.
    pub(super) fn latency(&self, plain: SocketAddr) {
        let secs = self.secs;
        println!(
            "\n## Added latency under a fixed request rate (oha -q, latency-corrected; TLS upstream offering HTTP/2, answers after {FAR_MS} ms; {secs} s per run, 2 rounds alternating)\n"
        );
        if !enough_open_files() {
            return;
        }
        let Some(nginx_bin) = self.nginx else {
            println!("No nginx: its capacity sets the rates (part skipped).");
            return;
        };
        // First: what starts from here on (proxies, the upstream's tasks) starts on CPU 0.
        let pinning = Pinning::start();
        let load = Pinning::load(pinning.as_ref());
        let upstream = self.tls_upstream(&["h2", "http/1.1"], None);
        let url = format!("https://localhost:{}", upstream.port());
        let ca = &self.tls.2;
        let limits = "[limits]\nmax_connections = 10000\n";
        let ours = self.ours(&url, Some(ca), 1, limits);
        let nginx = Nginx::proxy(nginx_bin, self.dir, &url, Some(ca));
        let haproxy = self.haproxy.then(|| {
            Haproxy::start(
                self.dir,
                &format!(
                    "127.0.0.1:{} ssl verify required ca-file {} sni str(localhost) alpn h2",
                    upstream.port(),
                    ca.display()
                ),
            )
        });
        if let Some(pinning) = &pinning {
            let ours_pids = ours.before.iter().chain([&ours.now]).map(Proxy::pid);
            let others = [nginx.child.id(), nginx.worker_pid()]
                .into_iter()
                .chain(haproxy.as_ref().map(|h| h.child.id()));
            for pid in ours_pids.chain(others) {
                pinning.proxy(pid);
            }
        }
        let path = format!("/sleep/{FAR_MS}");
        let mut targets = vec![(
            "direct (the upstream's own 30 ms, plain HTTP/1.1)".to_owned(),
            format!("http://{plain}{path}"),
        )];
        targets.push((
            "nginx (1 worker; HTTP/1.1 upstream)".to_owned(),
            format!("http://{}{path}", nginx.addr),
        ));
        if let Some(h) = &haproxy {
            targets.push((
                "haproxy (1 thread; HTTP/2 upstream)".to_owned(),
                format!("http://{}{path}", h.addr),
            ));
        }
        for (name, p) in ours.rows("ours (worker_threads = 1; HTTP/2 upstream)") {
            targets.push((name, format!("http://{}{path}", p.addr)));
        }
        println!(
            "| connections | rate | target | requests/s | p50 | p99 | p99.9 | added p50 | added p99 | added p99.9 | errors |"
        );
        println!("|---|---|---|---|---|---|---|---|---|---|---|");
        let mut verdicts = Vec::new();
        for connections in [200, WAN_CONNECTIONS] {
            // nginx's capacity in this shape: as many requests as it serves with the
            // connections each keeping one in flight.
            let capacity = run_wrk_under(load, &targets[1].1, connections, secs).rps;
            for share in [0.5, 0.8] {
                let rate = (capacity * share).round().max(1.0) as u64;
                let mut rounds: Vec<Vec<Oha>> = vec![Vec::new(); targets.len()];
                for _round in 0..2 {
                    for (i, (_, url)) in targets.iter().enumerate() {
                        run_oha(load, url, connections, rate, WARM_UP_SECS);
                        rounds[i].push(run_oha(load, url, connections, rate, secs));
                    }
                }
                // Per target, the round with the higher p99: the worse of two.
                let runs: Vec<Oha> = rounds
                    .into_iter()
                    .map(|r| {
                        r.into_iter()
                            .max_by(|a, b| a.p99_us.total_cmp(&b.p99_us))
                            .expect("two rounds")
                    })
                    .collect();
                let direct = runs[0].clone();
                let label = format!(
                    "{:.0} % of nginx's {capacity:.0}/s = {rate}/s",
                    share * 100.0
                );
                for (i, ((name, _), r)) in targets.iter().zip(&runs).enumerate() {
                    let added = |v: f64, d: f64| {
                        if i == 0 { "-".to_owned() } else { ms(v - d) }
                    };
                    println!(
                        "| {connections} | {label} | {name} | {:.0} | {} | {} | {} | {} | {} | {} | {} |",
                        r.rps,
                        ms(r.p50_us),
                        ms(r.p99_us),
                        ms(r.p999_us),
                        added(r.p50_us, direct.p50_us),
                        added(r.p99_us, direct.p99_us),
                        added(r.p999_us, direct.p999_us),
                        r.errors,
                    );
                }
                let nginx_added = runs[1].p99_us - direct.p99_us;
                let at = format!("latency, {connections} connections, {:.0} %", share * 100.0);
                verdicts.extend(judged(&runs, ours.before.is_some(), |who, r| {
                    let added = r.p99_us - direct.p99_us;
                    vec![if share < 0.6 {
                        Check::new(
                            format!("{at}: {who} adds ≤ 1 ms at p99"),
                            ms(added),
                            added <= 1_000.0 && r.errors == 0,
                        )
                    } else {
                        Check::new(
                            format!("{at}: {who} adds no more than nginx at p99"),
                            format!("{} vs {}", ms(added), ms(nginx_added)),
                            added <= nginx_added && r.errors == 0,
                        )
                    }]
                }));
            }
        }
        let pinned = if pinning.is_some() {
            "Pinned with taskset: the proxies under test (ours and, if any, ours before, all \
             their threads; nginx's master and worker; haproxy) on CPU 1; oha, the wrk capacity runs and the bench's own \
             threads (the in-process upstream) on CPU 0, direct's included, so that the \
             generator and the upstream do not take the proxy's CPU."
        } else {
            "Unpinned: proxies, oha and the upstream share the machine's CPUs."
        };
        println!(
            "\noha offers the rate whatever the answers do (`-q`, `--latency-correction`: a \
             request counts from when it was due, so a queue in front of a slow target shows); \
             direct is oha to the same upstream routes over plain HTTP (the upstream's own \
             latency); each measured run follows a {WARM_UP_SECS} s warm-up at the same rate. \
             nginx's capacity: wrk's closed loop \
             with the same connections against nginx (`{FAR_MS}` ms upstream). Each row is the \
             worse (higher p99) of two rounds. Errors: oha's, and answers that were not 2xx. \
             {pinned}\n\nTargets:\n"
        );
        for v in verdicts {
            println!("{v}");
        }
    }

    /// `tls`: a TLS upstream speaking HTTP/1.1, then one choosing HTTP/2 by ALPN, at 64 and
    /// 512 connections; with a hyper floor over the same TLS upstream (one HTTP/1.1
    /// connection per client connection, or one shared HTTP/2 connection): the bound, what
    /// hyper itself costs on that path.
    pub(super) fn tls(&self) {
        let secs = self.secs;
        println!(
            "\n## TLS upstream, HTTP/1.1 and HTTP/2 (wrk, {secs} s per run, 2 rounds alternating; small GET)\n"
        );
        println!(
            "| upstream | connections | target | requests/s | p50 | p99 | vs nginx (rps) | proxy CPU per request (user + sys) | errors |"
        );
        println!("|---|---|---|---|---|---|---|---|---|");
        let mut verdicts = Vec::new();
        for h2 in [false, true] {
            let (mode, alpn): (&str, &[&str]) = if h2 {
                ("HTTP/2", &["h2", "http/1.1"])
            } else {
                ("HTTP/1.1", &["http/1.1"])
            };
            let upstream = self.tls_upstream(alpn, None);
            let url = format!("https://localhost:{}", upstream.port());
            let ca = &self.tls.2;
            let ours = self.ours(&url, Some(ca), 1, "");
            let nginx = self
                .nginx
                .map(|bin| Nginx::proxy(bin, self.dir, &url, Some(ca)));
            let haproxy = self.haproxy.then(|| {
                Haproxy::start(
                    self.dir,
                    &format!(
                        "127.0.0.1:{} ssl verify required ca-file {} sni str(localhost) alpn {}",
                        upstream.port(),
                        ca.display(),
                        alpn[0]
                    ),
                )
            });
            let floor = Floor::start(FloorUpstream::Tls {
                port: upstream.port(),
                ca: ca.clone(),
                h2,
            });
            for connections in [64, 512] {
                let wrk = |url: String| Load::Wrk { url, connections };
                let row = |name: String, addr: SocketAddr, pid: Option<u32>| Target {
                    name,
                    load: wrk(format!("http://{addr}/x")),
                    pid,
                    thread: None,
                };
                let mut targets = vec![Target {
                    name: "direct (wrk: HTTP/1.1 over TLS)".to_owned(),
                    load: wrk(format!("https://127.0.0.1:{}/x", upstream.port())),
                    pid: None,
                    thread: None,
                }];
                let mut at_row = |target: Target| {
                    targets.push(target);
                    targets.len() - 1
                };
                let nginx_i = nginx.as_ref().map(|n| {
                    let name = "nginx (1 worker; HTTP/1.1 upstream)".to_owned();
                    at_row(row(name, n.addr, Some(n.worker_pid())))
                });
                let haproxy_i = haproxy.as_ref().map(|h| {
                    let name = format!("haproxy (1 thread; {mode} upstream)");
                    at_row(row(name, h.addr, Some(h.child.id())))
                });
                let floor_i = at_row(Target {
                    thread: Some(floor.stat.clone()),
                    ..row(
                        format!("hyper floor (1 thread; {mode} upstream)"),
                        floor.addr,
                        None,
                    )
                });
                for (name, p) in ours.rows(&format!("ours (worker_threads = 1; {mode} upstream)")) {
                    at_row(row(name, p.addr, Some(p.pid())));
                }
                let runs = self.measure(&targets, None);
                let nginx_run = nginx_i.map(|i| &runs[i]);
                for (t, r) in targets.iter().zip(&runs) {
                    println!(
                        "| {mode} | {connections} | {} | {:.0} | {} | {} | {} | {} | {} |",
                        t.name,
                        r.w.rps,
                        us(r.w.p50_us),
                        us(r.w.p99_us),
                        nginx_run.map_or("-".to_owned(), |n| format!("{:.2}", r.w.rps / n.w.rps)),
                        cpu(&r.w),
                        errors(&r.w),
                    );
                }
                if connections != 64 {
                    continue;
                }
                let at = format!("tls, {mode} upstream, 64 connections");
                let haproxy_run = haproxy_i.map(|i| &runs[i]);
                verdicts.extend(judged(&runs, ours.before.is_some(), |who, r| {
                    let mut checks =
                        nginx_run.map_or_else(Vec::new, |n| versus_nginx(&at, who, r, n));
                    // Issue 24's: against haproxy over HTTP/2, against nginx over HTTP/1.1.
                    match (h2, haproxy_run, nginx_run) {
                        (true, Some(h), _) => {
                            checks.push(cpu_within(&at, who, r, (h, "1.1 × haproxy's", 1.1)))
                        }
                        (false, _, Some(n)) => {
                            checks.push(cpu_within(&at, who, r, (n, "nginx's", 1.0)))
                        }
                        _ => {}
                    }
                    checks
                }));
                if nginx_run.is_none() {
                    verdicts.push(format!("- {at}: no nginx to compare with"));
                }
                let others = [
                    ("ours", Some(runs.len() - 1)),
                    ("ours before", ours.before.as_ref().map(|_| runs.len() - 2)),
                    ("haproxy", haproxy_i),
                    ("nginx", nginx_i),
                ];
                verdicts.push(over_floor(
                    &at,
                    &runs[floor_i],
                    &others.map(|(name, i)| (name, i.map(|i| &runs[i]))),
                ));
            }
        }
        println!(
            "\nThe upstream is in the bench's process (rustls + hyper; rcgen CA in each proxy's trust \
             store: `upstream.ca_file`, `proxy_ssl_trusted_certificate`, haproxy's `ca-file`). \
             An HTTP/2 upstream also accepts HTTP/1.1, for nginx (which speaks only HTTP/1.x to \
             an upstream) and wrk. The hyper floor: hyper's HTTP/1 server and client on a thread \
             of the bench's own (its CPU: that thread's), over TLS with tokio-rustls (ring), \
             setting `Authorization`; to the HTTP/1.1 upstream one client connection per \
             client connection, to the HTTP/2 one a single connection all requests share: \
             what hyper itself costs on that path, the bound. CPU per request: the proxy \
             process's user and system time over the run, from /proc, divided by the requests \
             wrk completed. Errors: wrk's socket errors + non-2xx answers.\n\nTargets:\n"
        );
        for v in verdicts {
            println!("{v}");
        }
    }

    /// `wan`: 2,000 connections, each with a request the upstream answers after 30 ms: over
    /// the plain HTTP/1.1 upstream, then over a TLS upstream offering HTTP/2 (Zoho's shape:
    /// nginx speaks HTTP/1.1 to it, haproxy and ours HTTP/2).
    pub(super) fn wan(&self, upstream: SocketAddr) {
        // Direct is the plain upstream in both tables: the same 30 ms answers without the TLS
        // handshakes of wrk's own 2,000 connections, which would swamp its p99.
        let direct = format!("http://{upstream}");
        self.wan_over(
            "plain HTTP/1.1 upstream",
            &direct,
            (&direct, upstream.port()),
            None,
            &upstream.to_string(),
        );
        let tls = self.tls_upstream(&["h2", "http/1.1"], None);
        let ca = &self.tls.2;
        self.wan_over(
            "TLS upstream offering HTTP/2",
            &direct,
            (&format!("https://localhost:{}", tls.port()), tls.port()),
            Some(ca),
            &format!(
                "127.0.0.1:{} ssl verify required ca-file {} sni str(localhost) alpn h2",
                tls.port(),
                ca.display()
            ),
        );
    }

    /// `memory`: what an idle keep-alive client connection costs, with the upstream
    /// connection its request opened: RSS at rest, then with 1,000 such connections, over the
    /// plain HTTP/1.1 upstream (one upstream connection per client connection) and over a
    /// TLS upstream offering HTTP/2 (ours: one multiplexed connection), for ours at default
    /// threads and nginx's worker.
    pub(super) fn idle_memory(&self, plain: SocketAddr) {
        const HELD: usize = 1_000;
        println!(
            "\n## Memory per idle keep-alive connection ({HELD} connections, each after one request)\n"
        );
        if !enough_open_files() {
            return;
        }
        println!(
            "| target | upstream | RSS at rest | RSS with {HELD} idle connections | per connection |"
        );
        println!("|---|---|---|---|---|");
        let tls = self.tls_upstream(&["h2", "http/1.1"], None);
        let ca = self.tls.2.as_path();
        let plain_url = format!("http://{plain}");
        let tls_url = format!("https://localhost:{}", tls.port());
        let shapes: [(&str, &str, Option<&Path>); 2] = [
            ("plain HTTP/1.1", &plain_url, None),
            ("TLS, HTTP/2 offered", &tls_url, Some(ca)),
        ];
        let measure = |name: &str, shape: &str, addr: SocketAddr, pid: u32| {
            std::thread::sleep(Duration::from_millis(300));
            let rest = rss_kib(pid);
            let held = self.runtime.block_on(hold_idle_connections(addr, HELD));
            std::thread::sleep(Duration::from_millis(300));
            let with = rss_kib(pid);
            drop(held);
            println!(
                "| {name} | {shape} | {:.1} MB | {:.1} MB | {:.1} KB |",
                rest as f64 / 1024.0,
                with as f64 / 1024.0,
                with.saturating_sub(rest) as f64 / HELD as f64
            );
        };
        for (shape, url, ca) in shapes {
            let ours = self.ours(url, ca, 0, "");
            for (name, p) in ours.rows("ours (default threads)") {
                measure(&name, shape, p.addr, p.pid());
            }
            drop(ours);
            if let Some(bin) = self.nginx {
                let nginx = Nginx::proxy(bin, self.dir, url, ca);
                measure("nginx (1 worker)", shape, nginx.addr, nginx.worker_pid());
            }
        }
        println!(
            "\nEach connection sent one `GET /x` and read its answer, then stays open, idle. Per \
             connection: (with − at rest) / {HELD}, in KiB (nginx: its worker's RSS).\n"
        );
    }

    /// One `wan` table: `direct` is the upstream's routes as wrk reaches them, `up` the
    /// upstream's URL as the proxies reach it (trusting `ca`) and its port,
    /// `haproxy_server` the rest of haproxy's `server` line.
    fn wan_over(
        &self,
        shape: &str,
        direct: &str,
        up: (&str, u16),
        ca: Option<&Path>,
        haproxy_server: &str,
    ) {
        let (up_url, upstream_port) = up;
        let (secs, conns) = (self.secs, WAN_CONNECTIONS);
        println!(
            "\n## {conns} slow requests in flight, {shape} (upstream answers after {FAR_MS} ms; wrk -c {conns}, {secs} s per run, 2 rounds alternating)\n"
        );
        if !enough_open_files() {
            return;
        }
        // The default (10,000) allows 2,000 connections already; said here so that it shows.
        let limits = "[limits]\nmax_connections = 10000\n";
        let ours1 = self.ours(up_url, ca, 1, limits);
        let ours = self.ours(up_url, ca, 0, limits);
        let nginx = self
            .nginx
            .map(|bin| Nginx::proxy(bin, self.dir, up_url, ca));
        let haproxy = self
            .haproxy
            .then(|| Haproxy::start(self.dir, haproxy_server));
        let path = format!("/sleep/{FAR_MS}");
        let wrk = |base: String| Load::Wrk {
            url: format!("{base}{path}"),
            connections: conns,
        };
        let row = |name: String, base: String, pid: Option<u32>| Target {
            name,
            load: wrk(base),
            pid,
            thread: None,
        };
        let mut targets = vec![row("direct".to_owned(), direct.to_owned(), None)];
        if let Some(n) = &nginx {
            let name = "nginx (1 worker)".to_owned();
            targets.push(row(
                name,
                format!("http://{}", n.addr),
                Some(n.worker_pid()),
            ));
        }
        if let Some(h) = &haproxy {
            let name = "haproxy (1 thread)".to_owned();
            targets.push(row(name, format!("http://{}", h.addr), Some(h.child.id())));
        }
        // Where ours' rows end (each after its before row, if any).
        let mut ours_ends = Vec::new();
        for (name, o) in [
            ("ours (worker_threads = 1)", &ours1),
            ("ours (default threads)", &ours),
        ] {
            for (name, p) in o.rows(name) {
                targets.push(row(name, format!("http://{}", p.addr), Some(p.pid())));
            }
            ours_ends.push(targets.len());
        }
        let runs = self.measure(&targets, Some(upstream_port));
        println!(
            "| target | requests/s | p50 | p99 | added p50 | added p99 | socket errors | non-2xx | listen overflows | upstream connections | peak RSS |"
        );
        println!("|---|---|---|---|---|---|---|---|---|---|---|");
        let direct_w = &runs[0].w;
        for (t, r) in targets.iter().zip(&runs) {
            let added = |v: f64, d: f64| match t.pid {
                Some(_) => ms(v - d),
                None => "-".to_owned(),
            };
            println!(
                "| {} | {:.0} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                t.name,
                r.w.rps,
                ms(r.w.p50_us),
                ms(r.w.p99_us),
                added(r.w.p50_us, direct_w.p50_us),
                added(r.w.p99_us, direct_w.p99_us),
                r.w.socket_errors,
                r.w.non_2xx,
                r.listen_overflows,
                r.upstream_conns.map_or("-".to_owned(), |n| n.to_string()),
                r.rss_kib
                    .map_or("-".to_owned(), |k| format!("{:.1} MB", k as f64 / 1024.0)),
            );
        }
        println!(
            "\nAdded = target − direct. wrk's closed loop offers {conns} / {FAR_MS} ms = {:.0} \
             requests/s; where a proxy cannot serve that many, requests wait in it and the added \
             latency is that queue (the `latency` part offers a fixed rate instead). Socket \
             errors: wrk's connect, read, write and timeout (2 s) errors. Listen overflows: \
             connection attempts the kernel dropped during the run because the target's accept \
             queue was full (the client retries the SYN after 1 s; a backlog of 4,096 here for \
             the upstream, nginx and haproxy). Upstream connections: the most the target held to \
             the upstream at once (sampled every 200 ms). Peak RSS: sampled every 20 ms (nginx: \
             its worker).\n\nTargets:\n",
            f64::from(conns) / (FAR_MS as f64 / 1000.0)
        );
        let nginx_run = nginx.as_ref().map(|_| runs[1].clone());
        let rss_mb = |r: &Run| r.rss_kib.unwrap_or(0) as f64 / 1024.0;
        for end in ours_ends {
            let (t, r) = (&targets[end - 1], &runs[end - 1]);
            let at = format!("wan, {shape}, {}", t.name);
            let errors = r.w.socket_errors + r.w.non_2xx;
            verdict(
                &format!("{at}: zero errors"),
                errors.to_string(),
                errors == 0,
            );
            let rss = rss_mb(r);
            verdict(
                &format!("{at}: peak RSS ≤ 100 MB"),
                format!("{rss:.1} MB"),
                rss <= 100.0,
            );
            let Some(n) = &nginx_run else {
                println!("- {at}: no nginx to compare with");
                continue;
            };
            let nginx_rss = rss_mb(n);
            let judge = |who: &str, r: &Run| {
                let at = format!("wan, {shape}, {}", t.name.replacen("ours", who, 1));
                let rss = rss_mb(r);
                vec![
                    Check::new(
                        format!("{at}: peak RSS ≤ 2 × nginx's"),
                        format!("{rss:.1} vs {nginx_rss:.1} MB ({:.2} ×)", rss / nginx_rss),
                        rss <= 2.0 * nginx_rss,
                    ),
                    Check::new(
                        format!("{at}: p99 ≤ nginx's"),
                        format!("{} vs {}", ms(r.w.p99_us), ms(n.w.p99_us)),
                        r.w.p99_us <= n.w.p99_us,
                    ),
                ]
            };
            for l in judged(&runs[..end], self.before.is_some(), judge) {
                println!("{l}");
            }
        }
    }

    /// `h2-streams`: 1,000 requests in flight through an HTTP/2 upstream that allows 100
    /// streams per connection, with one upstream connection and with the default cap.
    pub(super) fn h2_streams(&self) {
        let (secs, n) = (self.secs, H2_IN_FLIGHT);
        println!(
            "\n## HTTP/2 upstream limited to {H2_STREAM_LIMIT} concurrent streams, {n} requests in flight (upstream answers after {FAR_MS} ms; {secs} s per run, 2 rounds alternating)\n"
        );
        if !enough_open_files() {
            return;
        }
        let upstream = self.tls_upstream(&["h2", "http/1.1"], Some(H2_STREAM_LIMIT));
        let url = format!("https://localhost:{}", upstream.port());
        let ca = &self.tls.2;
        let bin = ours_bin();
        let before = Proxy::start_tuned(self, &bin, &url, Some(ca), 0, "max_h2_connections = 1\n");
        let after = Proxy::start_tuned(self, &bin, &url, Some(ca), 0, "");
        let path = format!("/sleep/{FAR_MS}");
        let mut targets = vec![Target {
            name: format!("direct (wrk: HTTP/1.1 over TLS, {n} connections)"),
            load: Load::Wrk {
                url: format!("https://127.0.0.1:{}{path}", upstream.port()),
                connections: n,
            },
            pid: None,
            thread: None,
        }];
        if self.h2load {
            let connections = n / H2_STREAM_LIMIT;
            targets.push(Target {
                name: format!(
                    "direct (h2load: HTTP/2, {connections} connections × {H2_STREAM_LIMIT} streams)"
                ),
                load: Load::H2load {
                    url: format!("https://127.0.0.1:{}{path}", upstream.port()),
                    connections,
                    streams: H2_STREAM_LIMIT,
                },
                pid: None,
                thread: None,
            });
        }
        for (name, p) in [
            ("ours, max_h2_connections = 1 (before)", &before),
            ("ours, max_h2_connections = 16 (after, the default)", &after),
        ] {
            targets.push(Target {
                name: format!("{name}; wrk, {n} connections"),
                load: Load::Wrk {
                    url: format!("http://{}{path}", p.addr),
                    connections: n,
                },
                pid: Some(p.pid()),
                thread: None,
            });
        }
        let runs = self.measure(&targets, Some(upstream.port()));
        println!(
            "| target | requests/s | p50 | p99 | errors | upstream connections (peak) | proxy CPU per request (user + sys) |"
        );
        println!("|---|---|---|---|---|---|---|");
        for (t, r) in targets.iter().zip(&runs) {
            println!(
                "| {} | {:.0} | {} | {} | {} | {} | {} |",
                t.name,
                r.w.rps,
                ms(r.w.p50_us),
                ms(r.w.p99_us),
                errors(&r.w),
                r.upstream_conns.map_or("-".to_owned(), |c| c.to_string()),
                cpu(&r.w),
            );
        }
        println!(
            "\nAt most {H2_STREAM_LIMIT} streams per upstream connection each {FAR_MS} ms: one \
             connection carries at most {:.0} requests/s. Upstream connections: the proxy's \
             established TCP connections to the upstream, sampled every 200 ms.\n\nTargets:\n",
            f64::from(H2_STREAM_LIMIT) / (FAR_MS as f64 / 1000.0)
        );
        let ours = &runs.last().expect("ours is a target").w;
        let what =
            "h2-streams: ours (default) requests/s within 10 % of direct at the same concurrency";
        for (t, direct) in targets.iter().zip(&runs).filter(|(t, _)| t.pid.is_none()) {
            let direct = direct.w.rps;
            if direct > 0.0 {
                verdict(
                    &format!("{what}, {}", t.name),
                    format!("{:.0} vs {direct:.0} ({:.2})", ours.rps, ours.rps / direct),
                    ours.rps >= 0.9 * direct,
                );
            } else {
                println!(
                    "- {what}, {}: not measured (the direct runs completed no request; wrk over \
                     TLS needs runs of 3 s or more to open 1,000 connections)",
                    t.name
                );
            }
        }
    }

    /// Ours (this build, or `ZMP_BENCH_PROXY_BIN`) with this configuration, and the before
    /// build with the same when `ZMP_BENCH_BEFORE_BIN` is set.
    fn ours(&self, upstream: &str, ca: Option<&Path>, threads: usize, extra: &str) -> Ours {
        let start = |bin: &str| Proxy::start_tuned(self, bin, upstream, ca, threads, extra);
        Ours {
            before: self.before.as_deref().map(start),
            now: start(&ours_bin()),
        }
    }

    /// An in-process TLS upstream offering `alpn`; HTTP/2 connections allow `streams`
    /// concurrent streams (hyper's default when `None`).
    fn tls_upstream(&self, alpn: &[&str], streams: Option<u32>) -> SocketAddr {
        let (cert, key, _) = &self.tls;
        let certs = CertificateDer::pem_file_iter(cert)
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_file(key).unwrap();
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
        config.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        self.runtime.block_on(async move {
            serve_each(listener(), move |stream| {
                serve_tls(acceptor.clone(), stream, streams)
            })
        })
    }

    /// Each target in turn, two rounds; per target, the round with the median (here: the
    /// higher) requests/s. `upstream_port` given, the peak count of connections to it too.
    fn measure(&self, targets: &[Target], upstream_port: Option<u16>) -> Vec<Run> {
        let mut rounds: Vec<Vec<Run>> = vec![Vec::new(); targets.len()];
        for _round in 0..2 {
            for (i, t) in targets.iter().enumerate() {
                rounds[i].push(self.run(t, upstream_port));
            }
        }
        rounds
            .into_iter()
            .map(|mut r| {
                r.sort_by(|a, b| a.w.rps.total_cmp(&b.w.rps));
                r.swap_remove(r.len() / 2)
            })
            .collect()
    }

    fn run(&self, t: &Target, upstream_port: Option<u16>) -> Run {
        let rss = t.pid.map(PeakSampler::rss);
        let conns = upstream_port.zip(t.pid).map(|(port, pid)| {
            PeakSampler::start(Duration::from_millis(200), move || {
                connections_to(port, pid)
            })
        });
        let overflows = listen_overflows();
        let stat = t.thread.clone().or_else(|| t.pid.map(stat_path));
        let w = with_cpu(stat.as_deref(), || match &t.load {
            Load::Wrk { url, connections } => run_wrk_url(url, *connections, self.secs),
            Load::H2load {
                url,
                connections,
                streams,
            } => run_h2load(self.dir, url, *connections, *streams, self.secs),
        });
        Run {
            w,
            rss_kib: rss.map(PeakSampler::stop),
            upstream_conns: conns.map(PeakSampler::stop),
            listen_overflows: listen_overflows().saturating_sub(overflows),
        }
    }
}

// === impl Haproxy ===

impl Haproxy {
    /// haproxy in HTTP mode, one thread, keep-alive both sides, setting `Host` and
    /// `Authorization`, in front of `server` (the rest of a `server` line: address and options).
    fn start(dir: &Path, server: &str) -> Self {
        let port = free_port();
        let config = dir.join(format!("haproxy-{port}.cfg"));
        std::fs::write(
            &config,
            format!(
                "global\n  maxconn 8000\n  nbthread 1\n\n\
                 defaults\n  mode http\n  maxconn 8000\n  timeout connect 5s\n  timeout client 60s\n  \
                 timeout server 60s\n  http-reuse always\n\n\
                 frontend proxy\n  bind 127.0.0.1:{port}\n  default_backend zoho\n\n\
                 backend zoho\n  http-request set-header Host localhost\n  \
                 http-request set-header Authorization \"{AUTHORIZATION}\"\n  server up {server}\n"
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.join(format!("haproxy-{port}.err"))).unwrap();
        let mut child = Command::new("haproxy")
            .args(["-db", "-f", config.to_str().unwrap()])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(addr).is_err() {
            let exited = child.try_wait().ok().flatten().is_some();
            assert!(
                !exited && Instant::now() < deadline,
                "haproxy starts ({}; its log: {})",
                config.display(),
                dir.join(format!("haproxy-{port}.err")).display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { child, addr }
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        terminate(&mut self.child);
    }
}

// === helpers ===

/// One TLS connection of the in-process upstream: HTTP/2 when ALPN chose it, else HTTP/1.1.
async fn serve_tls(
    acceptor: tokio_rustls::TlsAcceptor,
    stream: tokio::net::TcpStream,
    streams: Option<u32>,
) {
    let Ok(tls) = acceptor.accept(stream).await else {
        return;
    };
    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
    let service =
        hyper::service::service_fn(|req| async move { Ok::<_, Infallible>(route(req).await) });
    let io = TokioIo::new(tls);
    if h2 {
        let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
        if let Some(n) = streams {
            builder.max_concurrent_streams(n);
        }
        let _ = builder.serve_connection(io, service).await;
    } else {
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(io, service)
            .await;
    }
}

/// h2load for `secs` against `url`: requests/s, and p50/p99 from its per-request log.
fn run_h2load(dir: &Path, url: &str, connections: u32, streams: u32, secs: u64) -> Wrk {
    let log = dir.join(format!("h2load-{}.log", rand::random::<u32>()));
    let out = Command::new("h2load")
        .args([
            "-t2",
            &format!("-c{connections}"),
            &format!("-m{streams}"),
            &format!("-D{secs}"),
            &format!("--log-file={}", log.display()),
            url,
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let mut w = Wrk::default();
    for line in text.lines().map(str::trim) {
        if let Some(v) = line.strip_prefix("finished in ") {
            // "1.00s, 3276.00 req/s, 125.86KB/s"
            w.rps = v
                .split(", ")
                .nth(1)
                .and_then(|r| r.strip_suffix(" req/s"))
                .and_then(|r| r.parse().ok())
                .unwrap_or(0.0);
        } else if let Some(v) = line.strip_prefix("requests: ") {
            // "N total, N started, N done, N succeeded, N failed, N errored, N timeout"
            let count = |what: &str| -> u64 {
                v.split(", ")
                    .find_map(|kv| kv.strip_suffix(what)?.trim().parse().ok())
                    .unwrap_or(0)
            };
            w.requests = count(" done") as f64;
            w.socket_errors = count(" errored") + count(" timeout");
            w.non_2xx = count(" failed").saturating_sub(count(" errored"));
        }
    }
    // Each line: start time (µs since the epoch), status, duration (µs).
    let mut durations: Vec<f64> = std::fs::read_to_string(&log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split('\t').nth(2)?.trim().parse().ok())
        .collect();
    durations.sort_by(f64::total_cmp);
    let at = |q: f64| {
        durations
            .get(((durations.len() as f64 * q) as usize).min(durations.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0.0)
    };
    (w.p50_us, w.p99_us) = (at(0.50), at(0.99));
    let _ = std::fs::remove_file(log);
    w
}

/// What one oha run measured.
#[derive(Clone, Debug, Default)]
struct Oha {
    rps: f64,
    p50_us: f64,
    p99_us: f64,
    p999_us: f64,
    /// oha's errors, and answers that were not 2xx.
    errors: u64,
}

/// oha for `secs` against `url`: `rate` requests/s over `connections` (HTTP/1.1, keep-alive),
/// latency-corrected, requests in flight at the end waited for.
/// oha is run by `wrapper` (a command and its arguments: `taskset -c 0`) when one is given.
fn run_oha(wrapper: &[&str], url: &str, connections: u32, rate: u64, secs: u64) -> Oha {
    let mut command = wrapped(wrapper, Path::new("oha"));
    command.args([
        "-z",
        &format!("{secs}s"),
        "-c",
        &connections.to_string(),
        "-q",
        &rate.to_string(),
        "--latency-correction",
        "-w",
        "--no-tui",
        "--output-format",
        "json",
    ]);
    if url.starts_with("https://") {
        // The upstream's certificate is the bench's own CA's.
        command.arg("--insecure");
    }
    let out = command.arg(url).output().unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let seconds = |v: &serde_json::Value| v.as_f64().unwrap_or(f64::NAN) * 1e6;
    let percentiles = &json["latencyPercentiles"];
    let count = |map: &serde_json::Value, keep: &dyn Fn(&str) -> bool| -> u64 {
        map.as_object()
            .map(|m| {
                m.iter()
                    .filter(|(k, _)| keep(k))
                    .filter_map(|(_, v)| v.as_u64())
                    .sum()
            })
            .unwrap_or(0)
    };
    Oha {
        rps: json["summary"]["requestsPerSec"].as_f64().unwrap_or(0.0),
        p50_us: seconds(&percentiles["p50"]),
        p99_us: seconds(&percentiles["p99"]),
        p999_us: seconds(&percentiles["p99.9"]),
        errors: count(&json["errorDistribution"], &|_| true)
            + count(&json["statusCodeDistribution"], &|k| !k.starts_with('2')),
    }
}

/// Established TCP connections from process `pid` to `port`: its sockets (`/proc/PID/fd`)
/// found in `/proc/net/tcp` with that remote port.
fn connections_to(port: u16, pid: u32) -> u64 {
    let inodes: std::collections::HashSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|fd| {
            let link = std::fs::read_link(fd.path()).ok()?;
            let link = link.to_str()?;
            Some(link.strip_prefix("socket:[")?.strip_suffix(']')?.to_owned())
        })
        .collect();
    std::fs::read_to_string("/proc/net/tcp")
        .unwrap_or_default()
        .lines()
        .skip(1)
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let remote_port = fields
                .get(2)
                .and_then(|a| a.rsplit(':').next())
                .and_then(|p| u16::from_str_radix(p, 16).ok());
            fields.get(3) == Some(&"01")
                && remote_port == Some(port)
                && fields.get(9).is_some_and(|i| inodes.contains(*i))
        })
        .count() as u64
}

/// The kernel's count of connections dropped because a listener's accept queue was full
/// (`TcpExt: ListenOverflows` in `/proc/net/netstat`).
fn listen_overflows() -> u64 {
    let netstat = std::fs::read_to_string("/proc/net/netstat").unwrap_or_default();
    let mut tcp_ext = netstat.lines().filter(|l| l.starts_with("TcpExt:"));
    let (Some(names), Some(values)) = (tcp_ext.next(), tcp_ext.next()) else {
        return 0;
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(n, _)| *n == "ListenOverflows")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

/// Raises this process's open-file limit (children, wrk and the proxies, inherit it) with
/// `prlimit`: to [`OPEN_FILES`] as root, else to the hard limit.
fn raise_open_files() {
    let pid = std::process::id().to_string();
    let set = |n: u64| {
        let _ = Command::new("prlimit")
            .args(["--pid", &pid, &format!("--nofile={n}:{n}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    };
    if open_files().0 < OPEN_FILES {
        set(OPEN_FILES);
    }
    let (soft, hard) = open_files();
    if soft < OPEN_FILES && hard > soft {
        set(hard);
    }
}

/// Whether the open-file limit allows 2,000 client connections and as many upstream ones,
/// each end in a process of this machine; if not, says what to do.
fn enough_open_files() -> bool {
    let soft = open_files().0;
    let enough = soft >= 16_384;
    if !enough {
        println!(
            "The open-file limit is {soft}: raise it (`ulimit -n {OPEN_FILES}`, as root) and run again (part skipped)."
        );
    }
    enough
}

/// This process's open-file limit: (soft, hard), from `/proc/self/limits`.
fn open_files() -> (u64, u64) {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap_or_default();
    let mut values = line
        .trim_start_matches("Max open files")
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(u64::MAX));
    (values.next().unwrap_or(0), values.next().unwrap_or(0))
}

/// The figures of `who` (ours, or ours before) against nginx's, as issue 15 asks at 64
/// connections.
fn versus_nginx(at: &str, who: &str, ours: &Run, nginx: &Run) -> Vec<Check> {
    let (o, n) = (&ours.w, &nginx.w);
    vec![
        Check::new(
            format!("{at}: {who} requests/s ≥ nginx's"),
            format!("{:.0} vs {:.0}", o.rps, n.rps),
            o.rps >= n.rps,
        ),
        Check::new(
            format!("{at}: {who} p99 ≤ nginx's"),
            format!("{} vs {}", us(o.p99_us), us(n.p99_us)),
            o.p99_us <= n.p99_us,
        ),
        cpu_within(at, who, ours, (nginx, "1.2 × nginx's", 1.2)),
    ]
}

/// `who`'s CPU per request at most `factor` × `other`'s (`bound` says it in words).
fn cpu_within(at: &str, who: &str, ours: &Run, (other, bound, factor): (&Run, &str, f64)) -> Check {
    let what = format!("{at}: {who} CPU per request ≤ {bound}");
    match (cpu_total(&ours.w), cpu_total(&other.w)) {
        (Some(o), Some(n)) => Check::new(
            what,
            format!("{o:.1} µs vs {n:.1} µs ({:.2} ×)", o / n),
            o <= factor * n,
        ),
        _ => Check {
            what,
            figure: "not measured".to_owned(),
            met: None,
        },
    }
}

/// For information: each of `rows`' CPU per request (name, run if it ran) as a multiple of
/// the hyper floor's.
fn over_floor(at: &str, floor: &Run, rows: &[(&str, Option<&Run>)]) -> String {
    let Some(f) = cpu_total(&floor.w) else {
        return format!("- {at}: the hyper floor's CPU per request not measured");
    };
    let ratios: Vec<String> = rows
        .iter()
        .filter_map(|(name, run)| {
            let c = cpu_total(&(*run)?.w)?;
            Some(format!("{name} {:.2} ×", c / f))
        })
        .collect();
    format!(
        "- {at}: CPU per request as a multiple of the hyper floor's ({f:.1} µs), for information: {}",
        ratios.join(", ")
    )
}

/// User + system CPU per request, µs, where measured.
fn cpu_total(w: &Wrk) -> Option<f64> {
    w.cpu.map(|(u, s)| u + s)
}

/// The lines of `checks` for ours, the last of `runs`: targets, met or not; when `before`
/// (the before build's row is the one before ours), each followed by the same for before,
/// for information only.
fn judged<R>(runs: &[R], before: bool, checks: impl Fn(&str, &R) -> Vec<Check>) -> Vec<String> {
    let [.., then, now] = runs else {
        panic!("ours is a target, after direct");
    };
    let then = if before {
        checks("ours before", then)
    } else {
        Vec::new()
    };
    let mut then = then.into_iter();
    let mut lines = Vec::new();
    for check in checks("ours", now) {
        lines.push(check.line());
        if let Some(b) = then.next() {
            lines.push(format!("- {}: {} (for information)", b.what, b.figure));
        }
    }
    lines
}

impl Check {
    fn new(what: String, figure: String, met: bool) -> Self {
        Self {
            what,
            figure,
            met: Some(met),
        }
    }

    fn line(self) -> String {
        match self.met {
            Some(met) => line(&self.what, self.figure, met),
            None => format!("- {}: {}", self.what, self.figure),
        }
    }
}

impl Ours {
    /// Rows of a table for ours, named `name` ("ours (…)"): before's first when there is one,
    /// then ours' (the last), as (name, proxy).
    fn rows(&self, name: &str) -> Vec<(String, &Proxy)> {
        self.before
            .iter()
            .map(|b| (before_name(name), b))
            .chain([(name.to_owned(), &self.now)])
            .collect()
    }
}

impl Pinning {
    /// The wrapper that runs a load generator on CPU 0.
    const LOAD: [&'static str; 3] = ["taskset", "-c", "0"];

    /// Pins every thread of the bench to CPU 0 when the machine has 2 CPUs or more and
    /// `taskset` is installed (what the bench starts afterwards inherits CPU 0, until
    /// [`Pinning::proxy`]); else says, in one line, that the part runs unpinned.
    fn start() -> Option<Self> {
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        let restore = std::fs::read_to_string("/proc/self/status")
            .unwrap_or_default()
            .lines()
            .find_map(|l| Some(l.strip_prefix("Cpus_allowed_list:")?.trim().to_owned()))
            .unwrap_or_default();
        let taskset_installed = have("taskset");
        if cpus >= 2 && taskset_installed && !restore.is_empty() && taskset("0", std::process::id())
        {
            return Some(Self { restore });
        }
        println!(
            "Unpinned ({cpus} CPUs; taskset {}): proxies, oha and the upstream share the CPUs.\n",
            if taskset_installed {
                "installed"
            } else {
                "not installed: `apt-get install -y util-linux`"
            }
        );
        None
    }

    /// Pins every thread of process `pid`, a proxy under test, to CPU 1.
    fn proxy(&self, pid: u32) {
        assert!(taskset("1", pid), "taskset pins process {pid} to CPU 1");
    }

    /// The wrapper for a load generator: `taskset -c 0` when pinned, else none.
    fn load(pinning: Option<&Self>) -> &'static [&'static str] {
        pinning.map_or(&[], |_| &Self::LOAD)
    }
}

impl Drop for Pinning {
    /// The bench's threads back on the CPUs they had.
    fn drop(&mut self) {
        taskset(&self.restore, std::process::id());
    }
}

/// `taskset -a -p -c CPUS PID`: every thread of process `pid` on `cpus`; whether it worked.
fn taskset(cpus: &str, pid: u32) -> bool {
    Command::new("taskset")
        .args(["-a", "-p", "-c", cpus, &pid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn verdict(what: &str, figure: String, met: bool) {
    println!("{}", line(what, figure, met));
}

fn line(what: &str, figure: String, met: bool) -> String {
    format!(
        "- {what}: {figure} — {}",
        if met { "met" } else { "**not met**" }
    )
}

fn us(v: f64) -> String {
    format!("{v:.0} µs")
}

fn ms(v_us: f64) -> String {
    format!("{:.2} ms", v_us / 1000.0)
}

fn cpu(w: &Wrk) -> String {
    w.cpu.map_or("-".to_owned(), |(u, s)| {
        format!("{:.1} µs ({u:.1} + {s:.1})", u + s)
    })
}

fn errors(w: &Wrk) -> String {
    (w.socket_errors + w.non_2xx).to_string()
}
