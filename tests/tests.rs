//! Integration tests: one crate, one module per concern. Real sockets, real binary.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    unreachable_pub
)]

// Shared helpers: emulators, test CA, configs, the binary.
mod support;

// The command line, run as a real binary: exit codes, login, token, revoke, check.
mod cli;
// `login` in headless Chromium: the consent form clicked, login's answer page seen.
mod browser_login;
// The proxy over real sockets: injection, streaming, errors, admin, shutdown.
mod proxy;
// Request guards: hosts, origins, client keys, access rules, limits.
mod guard;
// README's quick start, followed as written against `sandbox`.
mod readme;
// Several Zoho accounts behind one proxy: isolation under load, rejections, reloads.
mod accounts;
// Configuration layering, validation and redaction (figment::Jail).
mod config;
// Bad input over raw sockets, and secrets absent from a trace-level log of a whole session.
mod security;
// When a token goes bad, through the real binary: dead tokens, SIGHUP, repeated rejections.
mod dead_token;
// The token manager against the accounts emulator: schedule, single flight, backoff, budget.
mod token;
// Hot reload through the real binary: SIGHUP, watched secret files, kept connections.
mod reload;
// The Dockerfile and deploy/ manifests: parsed, cross-checked, linted where linters exist.
mod deploy;
// The image built from the Dockerfile and the pod from deploy/kubernetes/pod.yaml, run by podman.
mod container;
// A fleet sharing one token through a real redis-server: one mint per lifetime, outages.
mod fleet;
// Token rejections in gzip/deflate/br answers: seen through, passed on byte for byte.
mod rejection;
// HTTP/2 upstreams: more connections past the stream limit, GOAWAY, idle extra ones closed.
mod h2_upstream;
// /metrics parsed by a real OpenMetrics parser, names exactly as README documents them.
mod metrics;
// What serve logs about requests: a summary by default, a line each with log.requests.
mod logs;
// The end-to-end scenario (tests/support/scenario.rs) against `sandbox --emulator-only`.
mod scenario;
// The Meeting emulator's users and recordings endpoints through the proxy, with its token.
mod proxied_endpoints;
// sandbox's fault flags through the binary: an outage that ends, owned-up rejections, a file store.
mod sandbox_flags;
// Sequences through a day: seeded random steps against the token wing, the promise after each.
mod sequence;
