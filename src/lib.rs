//! zoho-meeting-proxy: a local sidecar that lets any HTTP client call the Zoho Meeting API
//! without knowing OAuth.
//!
//! The library holds everything; `main.rs` only parses the command line. Modules:
//! [`config`] (figment layering and validation), [`secret`] (redacting secret type),
//! [`token`] (the lock-free token cache, the Zoho OAuth client, the token store and the
//! background refresher), [`cli`] (the commands), [`sandbox`] (the built-in Zoho emulator)
//! and [`telemetry`] (logging).
#![forbid(unsafe_code)]

pub mod cli;
pub mod config;
pub mod sandbox;
pub mod secret;
pub mod telemetry;
pub mod token;
