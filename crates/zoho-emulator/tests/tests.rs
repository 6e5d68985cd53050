//! Integration tests: both emulators over real sockets, through their public API only.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    unreachable_pub
)]

// Shared helpers: the emulators on loopback ports, an HTTP client.
mod support;

// The meeting, webinar and participant-report answers against Zoho's documented examples.
mod meetings;
// The users, recordings and SDK-session answers against Zoho's documented examples.
mod endpoints;
// The Zoho Webinar emulator: webinars and registrations on a host of their own.
mod webinar;
