//! zoho-meeting-proxy: a local sidecar that lets any HTTP client call the Zoho Meeting API
//! without knowing OAuth.
#![forbid(unsafe_code)]

pub mod config;
pub mod secret;
pub mod token;
