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
// The proxy over real sockets: injection, streaming, errors, admin, shutdown.
mod proxy;
// README's quick start, followed as written against `sandbox`.
mod readme;
// Configuration layering, validation and redaction (figment::Jail).
mod config;
// The token manager against the accounts emulator: schedule, single flight, backoff, budget.
mod token;
