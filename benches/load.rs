//! `cargo bench --bench load`: the proxy under a real load generator, next to nginx doing the
//! same job and to no proxy at all, on this machine, in one run.
//!
//! It starts a fast loopback upstream and the Zoho accounts emulator in this process, the
//! release binary (`serve`, token from the emulator, `log.level = "warn"` like nginx's
//! `access_log off`) at `worker_threads = 1` and at the default, and — when installed —
//! nginx as the equivalent header-injecting reverse proxy (one worker, keep-alive upstream,
//! `proxy_set_header Authorization`, buffering off), and a bare hyper proxy in-process (the
//! "hyper floor": what any hyper-based proxy costs before it does anything else; the `tls`
//! part has one over the TLS upstream too). `wrk` drives each in turn, alternating,
//! for 1 and 64 keep-alive connections; then it measures a 1 GiB streamed download and
//! upload through the proxy (GB/s, peak RSS growth), RSS idle and with 1,000 idle keep-alive
//! connections, and the time to the first byte of a chunked response. Then where users live
//! ([`scale`], issue 15): a TLS upstream speaking HTTP/1.1 and HTTP/2, 2,000 slow requests in
//! flight, and an HTTP/2 upstream whose stream limit binds, next to nginx and haproxy. Last,
//! under `valgrind --tool=callgrind`, the instructions each proxy executes per request: a
//! count the machine's noise does not change, to tell where time goes.
//!
//! Missing tools are named with their install command; what can be measured still is.
//! `ZMP_BENCH_SECS` sets each wrk run's length (default 5); `ZMP_BENCH_PARTS` picks parts
//! (comma-separated: `throughput`, `streaming`, `memory`, `ttfb`, `tls`, `wan`,
//! `h2-streams`, `latency`, `instructions`; default all); `ZMP_BENCH_KEEP=1` keeps the run's directory
//! (the callgrind outputs, for `callgrind_annotate`); `ZMP_BENCH_PROXY_BIN=PATH` runs that
//! build of ours (an older commit's, say) in this harness, for a before/after comparison;
//! `ZMP_BENCH_BEFORE_BIN=PATH` runs that build too, next to ours, as an "ours before" row in
//! the `latency`, `tls`, `wan`, `memory` and `instructions` parts (the targets stay ours').
//! BENCHMARKS.md tells more.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::convert::Infallible;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use zoho_emulator::accounts::{AccountsEmulator, AccountsOptions};

// The parts of issue 15 (TLS, WAN, HTTP/2 streams): `load.rs` + `load/`, as modules go.
#[path = "load/scale.rs"]
mod scale;

const GIB: u64 = 1 << 30;

/// The `Authorization` the other proxies (and the hyper floor) set: a token of Zoho's shape.
const AUTHORIZATION: &str =
    "Zoho-oauthtoken 1000.0123456789abcdef0123456789abcdef.0123456789abcdef0123456789abcdef";

static BENCH_DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

fn main() {
    // The hyper floor alone, as its own process: how the instructions part profiles it.
    if let Ok(upstream) = std::env::var(FLOOR_ENV) {
        let floor = Floor::start(FloorUpstream::Plain(upstream.parse().unwrap()));
        println!("floor listening {}", floor.addr);
        loop {
            std::thread::park();
        }
    }
    if std::env::args().any(|a| a == "--list") {
        println!("load: bench");
        return;
    }
    // cargo bench passes --bench; a plain `cargo test --benches` passes nothing: skip then.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let secs: u64 = std::env::var("ZMP_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let parts = std::env::var("ZMP_BENCH_PARTS").unwrap_or_default();
    let part = |name: &str| parts.is_empty() || parts.split(',').any(|p| p.trim() == name);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    // ZMP_BENCH_KEEP=1 keeps the run's files (callgrind outputs, configs) for a closer look.
    let kept = std::env::var_os("ZMP_BENCH_KEEP").is_some();
    // run_wrk shows nginx's error log from here when answers are not 2xx.
    let _ = BENCH_DIR.set(dir.path().to_owned());
    let (upstream, accounts) = runtime.block_on(async {
        let upstream = start_upstream().await;
        let accounts =
            AccountsEmulator::start(([127, 0, 0, 1], 0).into(), AccountsOptions::default())
                .await
                .unwrap();
        (upstream, accounts)
    });
    machine();
    let wrk = have("wrk");
    let nginx = nginx_binary();
    if !wrk {
        println!(
            "wrk is not installed: `apt-get update && apt-get install -y wrk` (throughput rows skipped)"
        );
    }
    if nginx.is_none() {
        println!(
            "nginx is not installed: `apt-get update && apt-get install -y nginx-light` (nginx rows skipped)"
        );
    }

    let up_url = format!("http://{upstream}");
    let floor = Floor::start(FloorUpstream::Plain(upstream));
    let ours1 = Proxy::start(&runtime, &accounts, &up_url, None, 1, dir.path());
    let ours = Proxy::start(&runtime, &accounts, &up_url, None, 0, dir.path());
    let before = before_bin();
    let valgrind = have("valgrind");
    if !valgrind {
        println!(
            "valgrind is not installed: `apt-get update && apt-get install -y valgrind` (instruction counts skipped)"
        );
    }
    let nginx_proxy = nginx
        .as_ref()
        .map(|bin| Nginx::proxy(bin, dir.path(), &up_url, None));

    if wrk && part("throughput") {
        println!(
            "\n## Throughput and latency (wrk, {secs} s per run, 2 rounds alternating; small GET)\n"
        );
        println!(
            "| connections | target | requests/s | p50 | p99 | vs nginx (rps) | vs direct (rps) | proxy CPU per request (user + sys) |"
        );
        println!("|---|---|---|---|---|---|---|---|");
        for conns in [1u32, 64] {
            // The direct upstream lives in this process: its CPU is not told apart.
            let mut targets: Vec<(&str, SocketAddr, Option<PathBuf>)> =
                vec![("direct", upstream, None)];
            if let Some(n) = &nginx_proxy {
                targets.push(("nginx (1 worker)", n.addr, Some(stat_path(n.worker_pid()))));
            }
            targets.push((
                "hyper floor (1 thread)",
                floor.addr,
                Some(floor.stat.clone()),
            ));
            targets.push((
                "ours (worker_threads = 1)",
                ours1.addr,
                Some(stat_path(ours1.pid())),
            ));
            targets.push((
                "ours (default threads)",
                ours.addr,
                Some(stat_path(ours.pid())),
            ));
            let mut results: Vec<Vec<Wrk>> = vec![Vec::new(); targets.len()];
            for _round in 0..2 {
                for (i, (_, addr, stat)) in targets.iter().enumerate() {
                    results[i].push(run_wrk_cpu(*addr, "/x", conns, secs, stat.as_deref()));
                }
            }
            let best: Vec<Wrk> = results.iter().map(|r| Wrk::median(r)).collect();
            let direct = best[0].rps;
            let nginx_rps = nginx_proxy.as_ref().map(|_| best[1].rps);
            for ((name, _, _), w) in targets.iter().zip(&best) {
                println!(
                    "| {conns} | {name} | {:.0} | {:.0} µs | {:.0} µs | {} | {:.2} | {} |",
                    w.rps,
                    w.p50_us,
                    w.p99_us,
                    nginx_rps.map_or("-".to_owned(), |n| format!("{:.2}", w.rps / n)),
                    w.rps / direct,
                    w.cpu.map_or("-".to_owned(), |(u, s)| format!(
                        "{:.1} µs ({u:.1} + {s:.1})",
                        u + s
                    )),
                );
            }
        }
        println!(
            "\nAdded latency at 1 connection = target p50 − direct p50 (table above). Proxy CPU per \
             request: the proxy process's (nginx: its worker's) user and system CPU time over the \
             run, from /proc, divided by the requests wrk completed."
        );
    }

    runtime.block_on(async {
        if !part("streaming") {
            return;
        }
        println!("\n## Streaming through the proxy (default threads)\n");
        let idle = rss_kib(ours.pid());
        let sampler = PeakSampler::rss(ours.pid());
        let t = Instant::now();
        let got = download(ours.addr, GIB).await;
        let dl = t.elapsed();
        let peak_dl = sampler.stop();
        assert_eq!(got, GIB);
        let sampler = PeakSampler::rss(ours.pid());
        let t = Instant::now();
        let sent = upload(ours.addr, GIB).await;
        let ul = t.elapsed();
        let peak_ul = sampler.stop();
        assert_eq!(sent, GIB);
        println!("| transfer | GB/s | peak RSS growth |");
        println!("|---|---|---|");
        println!(
            "| 1 GiB download | {:.2} | {:.1} MB |",
            GIB as f64 / dl.as_secs_f64() / 1e9,
            (peak_dl.saturating_sub(idle)) as f64 / 1024.0
        );
        println!(
            "| 1 GiB upload | {:.2} | {:.1} MB |",
            GIB as f64 / ul.as_secs_f64() / 1e9,
            (peak_ul.saturating_sub(idle)) as f64 / 1024.0
        );
    });
    runtime.block_on(async {
        if !part("ttfb") {
            return;
        }
        println!("\n## Time to the first chunk of a chunked response (upstream sends a chunk, then waits 200 ms)\n");
        let mut targets = vec![("direct", upstream)];
        if let Some(n) = &nginx_proxy {
            targets.push(("nginx (1 worker)", n.addr));
        }
        targets.push(("ours (worker_threads = 1)", ours1.addr));
        targets.push(("ours (default threads)", ours.addr));
        println!("| target | first chunk, best of 20 | median |");
        println!("|---|---|---|");
        for (name, addr) in targets {
            let (best, median) = ttfb(addr).await;
            println!(
                "| {name} | {:.0} µs | {:.0} µs |",
                best.as_secs_f64() * 1e6,
                median.as_secs_f64() * 1e6
            );
        }
    });

    let bench = scale::Bench {
        runtime: &runtime,
        accounts: &accounts,
        dir: dir.path(),
        secs,
        nginx: nginx.as_deref(),
        haproxy: have("haproxy"),
        h2load: have("h2load"),
        oha: have("oha"),
        tls: tls_files(dir.path()),
        before: before.clone(),
    };
    if part("tls") || part("wan") || part("h2-streams") || part("latency") {
        bench.prepare();
    }
    if part("memory") {
        bench.idle_memory(upstream);
    }
    if wrk && part("tls") {
        bench.tls();
    }
    if wrk && part("wan") {
        bench.wan(upstream);
    }
    if wrk && part("h2-streams") {
        bench.h2_streams();
    }
    if wrk && bench.oha && part("latency") {
        bench.latency(upstream);
    }

    if valgrind && part("instructions") {
        println!(
            "\n## Instructions per proxied GET (valgrind --tool=callgrind, one keep-alive connection)\n"
        );
        println!("| target | instructions per request | vs nginx |");
        println!("|---|---|---|");
        let mut rows: Vec<(String, f64)> = Vec::new();
        if let Some(bin) = &nginx {
            let count = callgrind_per_request(dir.path(), "nginx", |wrapper| {
                let n = Nginx::proxy_under(wrapper, bin, dir.path(), &up_url, None);
                let addr = n.addr;
                (Box::new(n) as Box<dyn std::any::Any>, addr)
            });
            rows.push(("nginx (1 worker)".to_owned(), count));
        }
        let count = callgrind_per_request(dir.path(), "floor", |wrapper| {
            let mut child = wrapped(wrapper, &std::env::current_exe().unwrap())
                .env(FLOOR_ENV, upstream.to_string())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let mut line = String::new();
            BufReader::new(child.stdout.take().unwrap())
                .read_line(&mut line)
                .unwrap();
            let addr = line.trim().rsplit(' ').next().unwrap().parse().unwrap();
            (Box::new(Terminated(child)) as Box<dyn std::any::Any>, addr)
        });
        rows.push(("hyper floor (1 thread)".to_owned(), count));
        let ours_row = "ours (worker_threads = 1)";
        let builds = before
            .iter()
            .map(|b| ("ours-before", before_name(ours_row), b.clone()))
            .chain([("ours", ours_row.to_owned(), ours_bin())]);
        for (label, name, bin) in builds {
            let count = callgrind_per_request(dir.path(), label, |wrapper| {
                let command = [wrapper, &[bin.as_str()]].concat();
                let p = runtime.block_on(Proxy::start_under(
                    &command,
                    &accounts,
                    &up_url,
                    None,
                    1,
                    dir.path(),
                    "",
                ));
                let addr = p.addr;
                (Box::new(p) as Box<dyn std::any::Any>, addr)
            });
            rows.push((name, count));
        }
        let nginx_count = nginx.as_ref().map(|_| rows[0].1);
        for (name, count) in rows {
            println!(
                "| {name} | {count:.0} | {} |",
                nginx_count.map_or("-".to_owned(), |n| format!("{:.2}", count / n))
            );
        }
        println!(
            "\nEach target is started twice under callgrind and sent {FEW} then {MANY} requests \
             (`GET /x` with three headers) on one keep-alive connection; (instructions of the \
             second run − the first) / {}. Start-up and shutdown cancel out.",
            MANY - FEW
        );
        if kept {
            println!(
                "\nThe callgrind outputs are kept: `callgrind_annotate {}/callgrind.ours.{MANY}`.",
                dir.path().display()
            );
        }
    }
    if kept {
        let _ = dir.keep();
    }
}

// === the upstream ===

type Body = BoxBody<Bytes, Infallible>;

async fn start_upstream() -> SocketAddr {
    serve_each(listener(), |stream| async move {
        let service =
            hyper::service::service_fn(|req| async move { Ok::<_, Infallible>(route(req).await) });
        let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
            .serve_connection(TokioIo::new(stream), service)
            .await;
    })
}

/// Serves each connection `listener` accepts (`TCP_NODELAY` set) with `serve`, on a task of
/// its own, from a task of its own; returns the listener's address.
fn serve_each<F, Fut>(listener: tokio::net::TcpListener, serve: F) -> SocketAddr
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(serve(stream));
        }
    });
    addr
}

/// A loopback listener whose backlog takes 2,000 connections arriving at once (tokio's
/// `bind` allows 1,024; the rest would wait for SYN retransmits).
fn listener() -> tokio::net::TcpListener {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(([127, 0, 0, 1], 0).into()).unwrap();
    socket.listen(4096).unwrap()
}

async fn route(req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_owned();
    if let Some(n) = path.strip_prefix("/bytes/") {
        let total: u64 = n.parse().unwrap_or(0);
        return Response::builder()
            .header("content-length", total.to_string())
            .body(Zeros { left: total }.boxed())
            .unwrap();
    }
    if path == "/upload" {
        let mut body = req.into_body();
        let mut n = 0u64;
        while let Some(Ok(frame)) = body.frame().await {
            if let Ok(d) = frame.into_data() {
                n += d.len() as u64;
            }
        }
        return Response::new(Full::new(Bytes::from(n.to_string())).boxed());
    }
    if let Some(ms) = path.strip_prefix("/sleep/") {
        // A far upstream: the answer comes after this many milliseconds (a timer, no CPU).
        tokio::time::sleep(Duration::from_millis(ms.parse().unwrap_or(0))).await;
        return Response::new(Full::new(Bytes::from_static(b"ok\n")).boxed());
    }
    if path == "/chunked" {
        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(2);
        tokio::spawn(async move {
            let _ = tx.send(Bytes::from_static(b"data: first\n\n")).await;
            tokio::time::sleep(Duration::from_millis(200)).await;
            let _ = tx.send(Bytes::from_static(b"data: second\n\n")).await;
        });
        return Response::new(Chan(rx).boxed());
    }
    Response::new(Full::new(Bytes::from_static(b"ok\n")).boxed())
}

struct Zeros {
    left: u64,
}

static ZEROS: [u8; 256 * 1024] = [0; 256 * 1024];

impl hyper::body::Body for Zeros {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.left == 0 {
            return std::task::Poll::Ready(None);
        }
        let n = self.left.min(ZEROS.len() as u64) as usize;
        self.left -= n as u64;
        std::task::Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(&ZEROS[..n])))))
    }
    fn size_hint(&self) -> hyper::body::SizeHint {
        hyper::body::SizeHint::with_exact(self.left)
    }
}

struct Chan(tokio::sync::mpsc::Receiver<Bytes>);

impl hyper::body::Body for Chan {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b))))
    }
}

// === instructions (callgrind) ===

/// The variable that makes this binary run the hyper floor alone (its value: the upstream).
const FLOOR_ENV: &str = "ZMP_BENCH_FLOOR";
const FEW: usize = 500;
const MANY: usize = 2_500;

/// `program`, run by `wrapper` (a command and its arguments) when one is given.
fn wrapped(wrapper: &[&str], program: &Path) -> Command {
    match wrapper.split_first() {
        Some((first, args)) => {
            let mut c = Command::new(first);
            c.args(args).arg(program);
            c
        }
        None => Command::new(program),
    }
}

/// A process stopped by SIGTERM when dropped (callgrind writes its counts on the way out).
struct Terminated(Child);

impl Drop for Terminated {
    fn drop(&mut self) {
        terminate(&mut self.0);
    }
}

/// Stops a process gracefully: SIGTERM, up to 10 s to exit, then SIGKILL.
fn terminate(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Instructions per request of the target `start` launches under the given wrapper
/// command (`valgrind --tool=callgrind …`): the counts for [`MANY`] and for [`FEW`] requests
/// on one keep-alive connection, differenced.
fn callgrind_per_request(
    dir: &Path,
    label: &str,
    mut start: impl FnMut(&[&str]) -> (Box<dyn std::any::Any>, SocketAddr),
) -> f64 {
    let mut totals = Vec::new();
    for n in [FEW, MANY] {
        let out = dir.join(format!("callgrind.{label}.{n}"));
        let out_arg = format!("--callgrind-out-file={}", out.display());
        let (target, addr) = start(&["valgrind", "--tool=callgrind", &out_arg]);
        send_requests(addr, n);
        // Dropping the target stops it (SIGTERM): callgrind writes the file then.
        drop(target);
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        let total: f64 = text
            .lines()
            .find_map(|l| l.strip_prefix("summary:").or(l.strip_prefix("totals:")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("callgrind wrote no count to {}", out.display()));
        totals.push(total);
    }
    (totals[1] - totals[0]) / (MANY - FEW) as f64
}

/// `n` small GETs, one after another, on one connection (a raw socket: no client library's
/// work is counted, and it is not profiled anyway).
fn send_requests(addr: SocketAddr, n: usize) {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_nodelay(true).unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    for _ in 0..n {
        s.write_all(
            b"GET /x HTTP/1.1\r\nHost: localhost\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n",
        )
        .unwrap();
        loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                assert!(
                    head.starts_with("http/1.1 200"),
                    "{addr} answers 200: {head}"
                );
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .expect("a Content-Length");
                if buf.len() >= end + 4 + length {
                    buf.drain(..end + 4 + length);
                    break;
                }
            }
            let got = s.read(&mut chunk).unwrap();
            assert!(got > 0, "{addr} keeps the connection open");
            buf.extend_from_slice(&chunk[..got]);
        }
    }
}

// === the hyper floor ===

/// The least a hyper-based proxy does, for scale: on its own thread and current-thread
/// runtime, hyper's HTTP/1 server in front of hyper's client, setting `Authorization` (and
/// `Host`, or over HTTP/2 the URI's authority); no checks, timeouts, logs or metrics. Over
/// HTTP/1.1 (plain or TLS) one pinned client connection per client connection; over HTTP/2
/// one connection that every request shares. Dropped, it stops.
struct Floor {
    addr: SocketAddr,
    /// The thread's `/proc/self/task/<tid>/stat`.
    stat: PathBuf,
    /// Dropped with the floor: its thread's runtime ends then.
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// The upstream a [`Floor`] sends to.
enum FloorUpstream {
    /// Plain HTTP/1.1 at this address.
    Plain(SocketAddr),
    /// TLS to `localhost` at this port (127.0.0.1), trusting the CA in `ca`: HTTP/2 when
    /// `h2` (ALPN `h2`), else HTTP/1.1 (ALPN `http/1.1`).
    Tls { port: u16, ca: PathBuf, h2: bool },
}

/// How a [`Floor`] reaches its upstream, in the floor's runtime.
enum Dial {
    /// A connection of its own for each client connection (over TLS with `tls`), `Host` set
    /// to `host`.
    Http1 {
        addr: SocketAddr,
        tls: Option<tokio_rustls::TlsConnector>,
        host: hyper::header::HeaderValue,
    },
    /// The one HTTP/2 connection.
    Http2(std::sync::Arc<Shared>),
}

/// The HTTP/2 connection a [`Floor`] shares, opened again should it close (in one short run
/// it did, after wrk stopped with requests in flight, and every request after failed).
struct Shared {
    sender: tokio::sync::Mutex<hyper::client::conn::http2::SendRequest<Incoming>>,
    tls: tokio_rustls::TlsConnector,
    addr: SocketAddr,
    /// What each request's URI gets (`:authority`; `Host` is dropped).
    authority: hyper::http::uri::Authority,
}

/// The way to the upstream of one client connection.
enum Sender {
    /// Its own HTTP/1.1 connection, and the `Host` to set.
    Http1(
        std::sync::Arc<tokio::sync::Mutex<hyper::client::conn::http1::SendRequest<Incoming>>>,
        hyper::header::HeaderValue,
    ),
    /// The shared HTTP/2 connection.
    Http2(std::sync::Arc<Shared>),
}

impl Floor {
    fn start(upstream: FloorUpstream) -> Self {
        let (tx, rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            let tid = std::fs::read_to_string("/proc/thread-self/stat")
                .unwrap()
                .split_whitespace()
                .next()
                .unwrap()
                .to_owned();
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let dial = Dial::new(upstream).await;
                let stat = PathBuf::from(format!("/proc/self/task/{tid}/stat"));
                tx.send((listener.local_addr().unwrap(), stat)).unwrap();
                let auth = hyper::header::HeaderValue::from_static(AUTHORIZATION);
                tokio::spawn(async move {
                    loop {
                        let Ok((stream, _)) = listener.accept().await else {
                            continue;
                        };
                        let _ = stream.set_nodelay(true);
                        let Some(sender) = dial.sender().await else {
                            continue;
                        };
                        let auth = auth.clone();
                        // A service of its own for each way: one future type for both would
                        // be as large as the larger, and hyper moves it (memcpy).
                        match sender {
                            Sender::Http1(sender, host) => {
                                tokio::spawn(serve_client(stream, move |req| {
                                    send_http1(sender.clone(), host.clone(), auth.clone(), req)
                                }))
                            }
                            Sender::Http2(shared) => {
                                tokio::spawn(serve_client(stream, move |req| {
                                    shared.clone().send(auth.clone(), req)
                                }))
                            }
                        };
                    }
                });
                // The floor's sender dropped: the runtime, and every task of it, ends.
                let _ = stopped.await;
            });
        });
        let (addr, stat) = rx.recv().unwrap();
        Self {
            addr,
            stat,
            _stop: stop,
        }
    }
}

impl Dial {
    /// Over HTTP/2, opens the shared connection.
    async fn new(upstream: FloorUpstream) -> Self {
        let (port, ca, h2) = match upstream {
            FloorUpstream::Plain(addr) => {
                return Self::Http1 {
                    addr,
                    tls: None,
                    host: hyper::header::HeaderValue::from_str(&addr.to_string()).unwrap(),
                };
            }
            FloorUpstream::Tls { port, ca, h2 } => (port, ca, h2),
        };
        let roots = CertificateDer::pem_file_iter(&ca)
            .unwrap()
            .map(|c| c.unwrap())
            .collect::<Vec<_>>();
        let mut store = rustls::RootCertStore::empty();
        store.add_parsable_certificates(roots);
        let mut config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(store)
        .with_no_client_auth();
        config.alpn_protocols = vec![if h2 {
            b"h2".to_vec()
        } else {
            b"http/1.1".to_vec()
        }];
        let tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let authority = format!("localhost:{port}");
        if !h2 {
            return Self::Http1 {
                addr,
                tls: Some(tls),
                host: hyper::header::HeaderValue::from_str(&authority).unwrap(),
            };
        }
        let sender = Shared::open(&tls, addr)
            .await
            .expect("the floor's HTTP/2 connection");
        Self::Http2(std::sync::Arc::new(Shared {
            sender: tokio::sync::Mutex::new(sender),
            tls,
            addr,
            authority: authority.parse().unwrap(),
        }))
    }

    /// The way to the upstream for a new client connection: over HTTP/1.1 a new connection.
    async fn sender(&self) -> Option<Sender> {
        let (addr, tls, host) = match self {
            Self::Http2(shared) => return Some(Sender::Http2(shared.clone())),
            Self::Http1 { addr, tls, host } => (*addr, tls, host.clone()),
        };
        match tls {
            Some(tls) => Sender::http1(TokioIo::new(tls_connect(tls, addr).await?), host).await,
            None => Sender::http1(TokioIo::new(tcp_connect(addr).await?), host).await,
        }
    }
}

async fn tcp_connect(addr: SocketAddr) -> Option<tokio::net::TcpStream> {
    let tcp = tokio::net::TcpStream::connect(addr).await.ok()?;
    let _ = tcp.set_nodelay(true);
    Some(tcp)
}

/// A TLS connection to `localhost` at `addr`.
async fn tls_connect(
    tls: &tokio_rustls::TlsConnector,
    addr: SocketAddr,
) -> Option<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    tls.connect(name, tcp_connect(addr).await?).await.ok()
}

impl Shared {
    /// An HTTP/2 connection (its task spawned) over TLS to `addr`.
    async fn open(
        tls: &tokio_rustls::TlsConnector,
        addr: SocketAddr,
    ) -> Option<hyper::client::conn::http2::SendRequest<Incoming>> {
        let io = tls_connect(tls, addr).await?;
        assert_eq!(
            io.get_ref().1.alpn_protocol(),
            Some(&b"h2"[..]),
            "the upstream chooses HTTP/2"
        );
        let (sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(io))
                .await
                .ok()?;
        tokio::spawn(conn);
        Some(sender)
    }

    /// One request on the shared connection, its URI made absolute.
    async fn send(
        self: std::sync::Arc<Self>,
        auth: hyper::header::HeaderValue,
        mut req: Request<Incoming>,
    ) -> std::io::Result<Response<Incoming>> {
        req.headers_mut().insert(hyper::header::AUTHORIZATION, auth);
        req.headers_mut().remove(hyper::header::HOST);
        let mut parts = std::mem::take(req.uri_mut()).into_parts();
        parts.scheme = Some(hyper::http::uri::Scheme::HTTPS);
        parts.authority = Some(self.authority.clone());
        *req.uri_mut() = hyper::Uri::from_parts(parts).map_err(std::io::Error::other)?;
        let mut sender =
            (self.sender().await).ok_or_else(|| std::io::Error::other("no HTTP/2 connection"))?;
        sender.ready().await.map_err(std::io::Error::other)?;
        sender
            .send_request(req)
            .await
            .map_err(std::io::Error::other)
    }

    /// The connection for one request: the one open, or a new one if it closed.
    async fn sender(&self) -> Option<hyper::client::conn::http2::SendRequest<Incoming>> {
        let mut sender = self.sender.lock().await;
        if sender.is_closed() {
            eprintln!("the hyper floor's HTTP/2 connection closed: it opens another");
            // Boxed: inline, its future (TLS and HTTP/2 handshakes) would make every
            // request's future kilobytes larger, and hyper moves it (memcpy).
            *sender = Box::pin(Self::open(&self.tls, self.addr)).await?;
        }
        Some(sender.clone())
    }
}

impl Sender {
    /// An HTTP/1.1 client connection over `io` (its task spawned), setting `host`.
    async fn http1<T>(io: T, host: hyper::header::HeaderValue) -> Option<Self>
    where
        T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let (sender, conn) = hyper::client::conn::http1::handshake::<_, Incoming>(io)
            .await
            .ok()?;
        tokio::spawn(conn);
        Some(Self::Http1(
            std::sync::Arc::new(tokio::sync::Mutex::new(sender)),
            host,
        ))
    }
}

/// Serves one client connection with hyper's HTTP/1 server, each request through `send`.
async fn serve_client<F, Fut, E>(stream: tokio::net::TcpStream, send: F)
where
    F: Fn(Request<Incoming>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<Response<Incoming>, E>> + Send + 'static,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), hyper::service::service_fn(send))
        .await;
}

/// One request on the client connection's own HTTP/1.1 connection.
async fn send_http1(
    sender: std::sync::Arc<tokio::sync::Mutex<hyper::client::conn::http1::SendRequest<Incoming>>>,
    host: hyper::header::HeaderValue,
    auth: hyper::header::HeaderValue,
    mut req: Request<Incoming>,
) -> hyper::Result<Response<Incoming>> {
    req.headers_mut().insert(hyper::header::AUTHORIZATION, auth);
    req.headers_mut().insert(hyper::header::HOST, host);
    let mut sender = sender.lock().await;
    sender.ready().await?;
    sender.send_request(req).await
}

// === our proxy, as a process ===

struct Proxy {
    child: Child,
    addr: SocketAddr,
}

impl Proxy {
    fn start(
        runtime: &tokio::runtime::Runtime,
        accounts: &AccountsEmulator,
        upstream: &str,
        ca: Option<&Path>,
        threads: usize,
        dir: &Path,
    ) -> Self {
        runtime.block_on(Self::start_in(accounts, upstream, ca, threads, dir))
    }

    async fn start_in(
        accounts: &AccountsEmulator,
        upstream: &str,
        ca: Option<&Path>,
        threads: usize,
        dir: &Path,
    ) -> Self {
        Self::start_under(&[&ours_bin()], accounts, upstream, ca, threads, dir, "").await
    }

    /// [`Proxy::start`] of the build `bin` (ours: [`ours_bin`]), with `extra` configuration:
    /// TOML lines that end the `[upstream]` table (written last), and may open tables after
    /// it (`[limits]` …).
    fn start_tuned(
        bench: &scale::Bench<'_>,
        bin: &str,
        upstream: &str,
        ca: Option<&Path>,
        threads: usize,
        extra: &str,
    ) -> Self {
        bench.runtime.block_on(Self::start_under(
            &[bin],
            bench.accounts,
            upstream,
            ca,
            threads,
            bench.dir,
            extra,
        ))
    }

    /// [`Proxy::start_in`], run by `command`: the binary (ours: [`ours_bin`]), after a wrapper
    /// and its arguments when one is given (`valgrind …`); `extra` configuration as in
    /// [`Proxy::start_tuned`].
    async fn start_under(
        command: &[&str],
        accounts: &AccountsEmulator,
        upstream: &str,
        ca: Option<&Path>,
        threads: usize,
        dir: &Path,
        extra: &str,
    ) -> Self {
        let refresh = accounts
            .control()
            .issue_refresh_token(&["ZohoMeeting.meeting.READ"]);
        let opts = AccountsOptions::default();
        let config = dir.join(format!("proxy-{}.toml", rand::random::<u32>()));
        let ca_line = ca.map_or(String::new(), |c| {
            format!("ca_file = {:?}\n", c.display().to_string())
        });
        std::fs::write(
            &config,
            format!(
                "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"\"\nworker_threads = {threads}\n\
                 [oauth]\nclient_id = {:?}\nclient_secret = {:?}\nrefresh_token = {refresh:?}\naccounts_url = {:?}\n\
                 [token]\nstore = \"memory\"\n[log]\nlevel = \"warn,zoho_meeting_proxy=info,zoho_meeting_proxy::proxy=warn\"\n\
                 [upstream]\nurl = {upstream:?}\n{ca_line}{extra}",
                opts.client_id,
                opts.client_secret,
                accounts.url()
            ),
        )
        .unwrap();
        let (bin, wrapper) = command.split_last().expect("a binary");
        let mut child = wrapped(wrapper, Path::new(bin))
            .args(["-c", config.to_str().unwrap(), "serve"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if !sent && line.contains("proxy listening") {
                    let addr = line[line.find("addr=").unwrap() + 5..]
                        .split_whitespace()
                        .next()
                        .unwrap()
                        .to_owned();
                    let _ = tx.send(addr);
                    sent = true;
                }
            }
        });
        let addr: SocketAddr = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("the proxy starts")
            .parse()
            .unwrap();
        // Wait for the first token.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let client = reqwest::Client::builder().no_proxy().build().unwrap();
            if let Ok(r) = client.get(format!("http://{addr}/x")).send().await
                && r.status() == 200
            {
                break;
            }
            assert!(Instant::now() < deadline, "the proxy serves");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self { child, addr }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// The build of ours measured: `ZMP_BENCH_PROXY_BIN`, else this checkout's release binary.
fn ours_bin() -> String {
    std::env::var("ZMP_BENCH_PROXY_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_zoho-meeting-proxy").to_owned())
}

/// The build of ours run next to it for a before/after comparison: `ZMP_BENCH_BEFORE_BIN`.
fn before_bin() -> Option<String> {
    std::env::var("ZMP_BENCH_BEFORE_BIN")
        .ok()
        .filter(|b| !b.is_empty())
}

/// A before row's name: ours' with "ours before" for "ours".
fn before_name(ours: &str) -> String {
    ours.replacen("ours", "ours before", 1)
}

impl Drop for Proxy {
    /// A graceful stop (SIGTERM), as a supervisor would.
    fn drop(&mut self) {
        terminate(&mut self.child);
    }
}

// === nginx ===

struct Nginx {
    child: Child,
    addr: SocketAddr,
}

impl Nginx {
    fn proxy(bin: &Path, dir: &Path, upstream: &str, ca: Option<&Path>) -> Self {
        Self::proxy_under(&[], bin, dir, upstream, ca)
    }

    /// [`Nginx::proxy`], run by `wrapper` (a command and its arguments) when one is given.
    fn proxy_under(
        wrapper: &[&str],
        bin: &Path,
        dir: &Path,
        upstream: &str,
        ca: Option<&Path>,
    ) -> Self {
        let port = free_port();
        let url = url::Url::parse(upstream).unwrap();
        let server = format!(
            "{}:{}",
            url.host_str().unwrap().replace("localhost", "127.0.0.1"),
            url.port().unwrap()
        );
        let tls = match ca {
            Some(ca) => format!(
                "proxy_ssl_trusted_certificate {}; proxy_ssl_verify on; proxy_ssl_name localhost; proxy_ssl_server_name on; proxy_ssl_session_reuse on;",
                ca.display()
            ),
            None => String::new(),
        };
        let scheme = url.scheme();
        let conf = format!(
            "upstream up {{ server {server}; keepalive 4096; }}\n\
             server {{ listen 127.0.0.1:{port} backlog=4096; keepalive_requests 1000000;\n\
               location / {{ proxy_pass {scheme}://up; proxy_http_version 1.1; proxy_set_header Connection \"\";\n\
                 proxy_set_header Host {host}; proxy_set_header Authorization \"{AUTHORIZATION}\";\n\
                 proxy_buffering off; proxy_request_buffering off; {tls} }} }}",
            host = url.host_str().unwrap(),
        );
        Self::run(wrapper, bin, dir, &conf, port)
    }

    /// Under a `wrapper`, nginx runs without its master process, so that the wrapped
    /// process is the one serving.
    fn run(wrapper: &[&str], bin: &Path, dir: &Path, server: &str, port: u16) -> Self {
        let name = format!("nginx-{port}");
        let path = dir.join(format!("{name}.conf"));
        let mut f = std::fs::File::create(&path).unwrap();
        write!(
            f,
            "worker_processes 1; worker_rlimit_nofile 65536; daemon off; pid {d}/{name}.pid; error_log {d}/{name}.err;\n\
             {master}events {{ worker_connections 16384; }}\n\
             http {{ access_log off; client_body_temp_path {d}; proxy_temp_path {d}; {server} }}\n",
            d = dir.display(),
            master = if wrapper.is_empty() {
                ""
            } else {
                "master_process off;\n"
            },
        )
        .unwrap();
        let child = wrapped(wrapper, bin)
            .args([
                "-c",
                path.to_str().unwrap(),
                "-e",
                dir.join(format!("{name}.err")).to_str().unwrap(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "nginx starts ({})",
                path.display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { child, addr }
    }
}

impl Nginx {
    /// The worker process (nginx runs a master and, here, one worker).
    fn worker_pid(&self) -> u32 {
        let master = self.child.id();
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let children =
                std::fs::read_to_string(format!("/proc/{master}/task/{master}/children"))
                    .unwrap_or_default();
            if let Some(pid) = children
                .split_whitespace()
                .next()
                .and_then(|p| p.parse().ok())
            {
                return pid;
            }
            assert!(Instant::now() < deadline, "nginx starts a worker");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Nginx {
    /// A graceful stop, so that the master takes its worker along (SIGKILL would leave the
    /// worker running, orphaned).
    fn drop(&mut self) {
        terminate(&mut self.child);
    }
}

fn nginx_binary() -> Option<PathBuf> {
    ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// A port that was free a moment ago (nginx needs one in its configuration).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn tls_files(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    // Distinct names: with rcgen's default for both, OpenSSL takes the leaf for self-signed.
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "zoho-meeting-proxy bench CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut leaf_params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    leaf_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "localhost");
    let leaf = leaf_params.signed_by(&key, &ca, &ca_key).unwrap();
    let (c, k, a) = (
        dir.join("leaf.pem"),
        dir.join("leaf.key"),
        dir.join("ca.pem"),
    );
    std::fs::write(&c, leaf.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    std::fs::write(&a, ca.pem()).unwrap();
    (c, k, a)
}

// === wrk ===

#[derive(Clone, Debug, Default)]
struct Wrk {
    rps: f64,
    p50_us: f64,
    p99_us: f64,
    requests: f64,
    /// CPU µs per request of the process measured: (user, system).
    cpu: Option<(f64, f64)>,
    /// wrk's socket errors: connect, read, write and timeout, added up.
    socket_errors: u64,
    /// Answers that were not 2xx or 3xx.
    non_2xx: u64,
}

impl Wrk {
    fn median(runs: &[Wrk]) -> Wrk {
        let mut sorted = runs.to_vec();
        sorted.sort_by(|a, b| a.rps.total_cmp(&b.rps));
        sorted[sorted.len() / 2].clone()
    }
}

/// [`run_wrk`], with the CPU time spent during the run by the process or thread whose
/// `/proc/…/stat` is `stat`.
fn run_wrk_cpu(addr: SocketAddr, path: &str, conns: u32, secs: u64, stat: Option<&Path>) -> Wrk {
    with_cpu(stat, || run_wrk(addr, path, conns, secs))
}

/// The wrk `run`, with the CPU time spent during it by the process or thread whose
/// `/proc/…/stat` is `stat`.
fn with_cpu(stat: Option<&Path>, run: impl FnOnce() -> Wrk) -> Wrk {
    let before = stat.map(cpu_ticks);
    let mut w = run();
    if let (Some(stat), Some((u0, s0))) = (stat, before)
        && w.requests > 0.0
    {
        let (u1, s1) = cpu_ticks(stat);
        let per = |ticks: u64| ticks as f64 / clock_ticks_per_second() * 1e6 / w.requests;
        w.cpu = Some((per(u1.saturating_sub(u0)), per(s1.saturating_sub(s0))));
    }
    w
}

fn stat_path(pid: u32) -> PathBuf {
    PathBuf::from(format!("/proc/{pid}/stat"))
}

/// User and system CPU time of a process or thread so far, in clock ticks.
fn cpu_ticks(stat: &Path) -> (u64, u64) {
    let stat = std::fs::read_to_string(stat).unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15; `rest` starts at field 3.
    let field = |i: usize| fields.get(i - 3).and_then(|v| v.parse().ok()).unwrap_or(0);
    (field(14), field(15))
}

fn clock_ticks_per_second() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

fn run_wrk(addr: SocketAddr, path: &str, conns: u32, secs: u64) -> Wrk {
    run_wrk_url(&format!("http://{addr}{path}"), conns, secs)
}

/// wrk against `url` (`http://` or `https://`; wrk speaks HTTP/1.1 only).
fn run_wrk_url(url: &str, conns: u32, secs: u64) -> Wrk {
    run_wrk_under(&[], url, conns, secs)
}

/// [`run_wrk_url`], wrk run by `wrapper` (a command and its arguments, `taskset -c 0`) when
/// one is given.
fn run_wrk_under(wrapper: &[&str], url: &str, conns: u32, secs: u64) -> Wrk {
    let threads = if conns == 1 { 1 } else { 2 };
    let out = wrapped(wrapper, Path::new("wrk"))
        .args([
            &format!("-t{threads}"),
            &format!("-c{conns}"),
            &format!("-d{secs}s"),
            "--latency",
            url,
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let mut w = Wrk::default();
    for line in text.lines() {
        let line = line.trim();
        if line.contains(" requests in ") {
            w.requests = line
                .split_whitespace()
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0.0);
        } else if let Some(v) = line.strip_prefix("Requests/sec:") {
            w.rps = v.trim().parse().unwrap_or(0.0);
        } else if let Some(v) = line.strip_prefix("50%") {
            w.p50_us = micros(v.trim());
        } else if let Some(v) = line.strip_prefix("99%") {
            w.p99_us = micros(v.trim());
        } else if let Some(v) = line.strip_prefix("Socket errors:") {
            // "connect 0, read 0, write 0, timeout 0"
            w.socket_errors = v
                .split(',')
                .filter_map(|kv| kv.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum();
        } else if let Some(v) = line.strip_prefix("Non-2xx or 3xx responses:") {
            w.non_2xx = v.trim().parse().unwrap_or(0);
        }
    }
    if text.contains("Non-2xx") {
        eprintln!("warning: non-2xx answers from {url}");
        if let Some(dir) = BENCH_DIR.get() {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                if entry.path().extension().is_some_and(|e| e == "err") {
                    let log = std::fs::read_to_string(entry.path()).unwrap_or_default();
                    let tail: Vec<&str> = log.lines().rev().take(3).collect();
                    eprintln!("{}: {tail:?}", entry.path().display());
                }
            }
        }
    }
    w
}

fn micros(v: &str) -> f64 {
    let (num, unit) = v.split_at(v.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(v.len()));
    let n: f64 = num.parse().unwrap_or(0.0);
    match unit {
        "us" => n,
        "ms" => n * 1e3,
        "s" => n * 1e6,
        _ => n,
    }
}

// === streaming, memory, TTFB ===

async fn download(addr: SocketAddr, size: u64) -> u64 {
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut r = client
        .get(format!("http://{addr}/bytes/{size}"))
        .send()
        .await
        .unwrap();
    let mut n = 0u64;
    while let Some(c) = r.chunk().await.unwrap() {
        n += c.len() as u64;
    }
    n
}

async fn upload(addr: SocketAddr, size: u64) -> u64 {
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let body = reqwest::Body::wrap(Zeros { left: size });
    let r = client
        .post(format!("http://{addr}/upload"))
        .header("content-length", size.to_string())
        .body(body)
        .send()
        .await
        .unwrap();
    r.text().await.unwrap().trim().parse().unwrap()
}

async fn hold_idle_connections(addr: SocketAddr, n: usize) -> Vec<tokio::net::TcpStream> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut held = Vec::with_capacity(n);
    for _ in 0..n {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /x HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 512];
        let _ = s.read(&mut buf).await;
        held.push(s);
    }
    held
}

/// Time from sending `GET /chunked` on a warm keep-alive connection until the first chunk's
/// data has arrived: (best, median) of 20. A raw socket, so that no client library's
/// buffering is measured.
async fn ttfb(addr: SocketAddr) -> (Duration, Duration) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.set_nodelay(true).unwrap();
    let mut buf = Vec::new();
    let read_until = async |s: &mut tokio::net::TcpStream, buf: &mut Vec<u8>, end: &[u8]| {
        let mut chunk = [0u8; 4096];
        while !buf.windows(end.len()).any(|w| w == end) {
            let n = s.read(&mut chunk).await.unwrap();
            assert!(n > 0, "the connection stays open");
            buf.extend_from_slice(&chunk[..n]);
        }
    };
    let mut times = Vec::new();
    // The first round warms the connections on both sides; it is not counted.
    for round in 0..21 {
        buf.clear();
        let t = Instant::now();
        s.write_all(b"GET /chunked HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await
            .unwrap();
        read_until(&mut s, &mut buf, b"data: first").await;
        if round > 0 {
            times.push(t.elapsed());
        }
        read_until(&mut s, &mut buf, b"0\r\n\r\n").await;
    }
    times.sort();
    (times[0], times[times.len() / 2])
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The highest value a reading took while it ran, read on a thread of its own.
struct PeakSampler {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    handle: std::thread::JoinHandle<u64>,
}

impl PeakSampler {
    fn start(every: Duration, read: impl Fn() -> u64 + Send + 'static) -> Self {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let s = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut peak = 0;
            while !s.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(read());
                std::thread::sleep(every);
            }
            peak
        });
        Self { stop, handle }
    }

    /// The peak RSS of process `pid`, in KiB, read every 20 ms.
    fn rss(pid: u32) -> Self {
        Self::start(Duration::from_millis(20), move || rss_kib(pid))
    }

    fn stop(self) -> u64 {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.handle.join().unwrap()
    }
}

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

fn machine() {
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("model name"))
        .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        .unwrap_or_default();
    println!(
        "# zoho-meeting-proxy load bench\n\nMachine: {cpus} CPUs ({model}); upstream, emulator, load generator and proxies share them."
    );
}
