//! zoho-meeting-proxy: a local sidecar that lets any HTTP client call the Zoho Meeting API
//! without knowing OAuth.
//!
//! The library holds everything; `main.rs` only parses the command line. Modules:
//! [`config`] (figment layering and validation), [`secret`] (redacting secret type),
//! [`token`] (the lock-free token cache, the Zoho OAuth client, the token store and the
//! background refresher), [`proxy`] (the request path), [`upstream`] (the outbound client),
//! [`server`] (accept loops, graceful drain), [`admin`] (health, metrics and status),
//! [`metrics`], [`app`] (the composition root: start-up, signals, reload, drain, and the
//! commands' work), [`cli`] (parsing, dispatch and printing) and [`telemetry`] (logging).
//! The built-in Zoho emulator that `sandbox` serves is the `zoho-emulator` crate, and Zoho's
//! data centres (re-exported by [`config`]) the `zoho-data-centers` crate.
#![forbid(unsafe_code)]

pub mod admin;
pub mod app;
pub mod cli;
pub mod config;
pub mod metrics;
pub mod proxy;
pub mod secret;
pub mod server;
pub mod telemetry;
pub mod token;
pub mod upstream;
