//! What the admin endpoints and the metrics see of tokens: a status view, never a token.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

/// What `/status` shows about tokens. Never the token itself.
#[derive(Clone, Debug, Serialize)]
pub struct TokenStatus {
    /// A token with more than the refresh margin left is held, and Zoho has not rejected it.
    pub ready: bool,
    /// Why not ready: `rejected_by_upstream` (Zoho rejected the token and no replacement
    /// can be had), `no_token`, or `expiring` (within the refresh margin); `null` when ready.
    pub reason: Option<&'static str>,
    /// What holds the next attempt back: `budget`, `terminal` or `refresh_failing`.
    pub blocked_by: Option<&'static str>,
    /// Seconds until the current token expires.
    pub token_expires_in_s: Option<u64>,
    /// When the last successful refresh happened (RFC 3339).
    pub last_refresh: Option<String>,
    /// The last refresh error (or budget refusal), cleared by a success.
    pub last_error: Option<String>,
    /// Mints in the current 10-minute window.
    pub mints_in_window: u32,
    /// Mints still allowed in the window.
    pub mints_left: u32,
    /// SHA-256 prefix of the current token.
    pub token_fingerprint: Option<String>,
    /// The background refresher stopped after a terminal error.
    pub refresh_stopped: bool,
    /// Seconds until the next refresh attempt, when one is scheduled.
    pub next_attempt_in_s: Option<u64>,
    /// The accounts server tokens come from.
    pub accounts_server: String,
    /// Zoho rejected a replacement before accepting any request with it: new tokens do not
    /// help (until Zoho accepts a token again).
    pub upstream_rejects_fresh_tokens: bool,
    /// Zoho's last token answer named another data centre (`api_domain`) than the Meeting
    /// host in use: what to set.
    pub data_center_mismatch: Option<String>,
    /// What to check when something is wrong, for a person.
    pub hint: Option<String>,
    /// Shared stores: why the store cannot be used right now (cleared when it answers).
    pub store_error: Option<String>,
    /// Shared stores: this replica minted on its own because the store stayed unreachable
    /// into its token's refresh margin; cleared once the store has its token and mints.
    pub minting_alone: bool,
}

/// Refresh attempts by outcome, since start.
#[derive(Debug, Default)]
pub struct RefreshCounts {
    pub(super) ok: AtomicU64,
    pub(super) failed: AtomicU64,
    pub(super) throttled: AtomicU64,
    pub(super) terminal: AtomicU64,
    pub(super) budget: AtomicU64,
    pub(super) adopted: AtomicU64,
}

/// What admin and metrics read.
pub trait TokenStatusView: Send + Sync + std::fmt::Debug {
    /// The status shown by `/status` and `status`.
    fn status(&self) -> TokenStatus;
    /// Whether `/readyz` may answer 200 as far as tokens go.
    fn is_ready(&self) -> bool;
    /// Refresh attempts by outcome.
    fn refresh_counts(&self) -> &RefreshCounts;
}

// === impl RefreshCounts ===

impl RefreshCounts {
    /// `(outcome, count)` pairs: ok, failed, throttled, terminal, budget (refused by the
    /// mint governor without asking Zoho), adopted (a token another replica of a fleet
    /// minted, taken from the shared store instead of minting).
    pub fn by_outcome(&self) -> [(&'static str, u64); 6] {
        [
            ("ok", self.ok.load(Ordering::Relaxed)),
            ("failed", self.failed.load(Ordering::Relaxed)),
            ("throttled", self.throttled.load(Ordering::Relaxed)),
            ("terminal", self.terminal.load(Ordering::Relaxed)),
            ("budget", self.budget.load(Ordering::Relaxed)),
            ("adopted", self.adopted.load(Ordering::Relaxed)),
        ]
    }

    pub(super) fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}
