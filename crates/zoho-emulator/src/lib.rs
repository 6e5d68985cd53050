//! The built-in Zoho emulator.
//!
//! This is product code, not a test helper: the `sandbox` command serves it to users who
//! want to try the proxy without a Zoho account, and the test suites use it as a fake Zoho.
//! Every emulator runs in-process, keeps its state in memory, and listens on a real TCP
//! socket (plain HTTP, or HTTPS when given a `rustls` server configuration).
//!
//! - [`accounts`] emulates Zoho's accounts server (`accounts.zoho.com`): the consent
//!   redirect, the token endpoint with Zoho's quirks (errors with HTTP 200, the
//!   access-token mint limit, `expires_in` in milliseconds beside `expires_in_sec`, the data
//!   centre's `api_domain`) and token revocation. Other
//!   emulators check access tokens through [`accounts::AccountsControl::validate_access_token`].
//! - [`meeting`] emulates the Zoho Meeting API (`meeting.zoho.com`): the current user,
//!   meetings, webinars and the participant report, kept in memory, with Zoho's answers to
//!   bad tokens (`400` code `2000`), missing scopes (`401 OAUTH_SCOPE_MISMATCH`) and a wrong
//!   organisation (`401 UNAUTHORIZED_USER`, as the meeting pages document). It checks
//!   tokens against an accounts emulator and can inject latency, `500`s and forced token
//!   rejections. The proxy's tests use it as the upstream.
//!
//! Both emulators share their server plumbing (binding, the accept loop, TLS, HTTP/1.1 and
//! HTTP/2, body limits and JSON answers) through the private `http` module, so that each
//! emulator's file holds only the Zoho behaviour it emulates.

pub mod accounts;
mod http;
pub mod meeting;

/// What the emulators' `Debug` output prints in place of a secret (a client secret, a token,
/// an `Authorization` header): the marker zoho-meeting-proxy's own secrets print.
const REDACTED: &str = "[redacted]";
