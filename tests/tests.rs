//! Integration tests: one crate, one module per concern.
#![allow(clippy::unwrap_used)]
