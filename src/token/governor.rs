//! The mint governor: never ask Zoho for more access tokens than it allows.
//!
//! Zoho lets one refresh token mint at most ten access tokens in any ten minutes; past that
//! it blocks the refresh token for the rest of the window, and retrying while blocked
//! prolongs the block (zoho-facts §6). The governor keeps the times of recent mints (wall
//! clock, so they survive a restart through the token store) and answers "not before N
//! seconds" once the configured budget is spent.

use std::collections::VecDeque;
use std::time::Duration;

/// Zoho's rolling window.
pub(super) const WINDOW: Duration = Duration::from_secs(600);

/// Rolling-window counter of access-token mints for one refresh token.
#[derive(Clone, Debug)]
pub(super) struct MintGovernor {
    max: u32,
    /// Unix milliseconds of mints, oldest first, as recorded (a process's own mints are
    /// recorded up to a second late, on its residue: see `refresh::mint_record_time`).
    mints: VecDeque<u64>,
}

// === impl MintGovernor ===

impl MintGovernor {
    /// A governor allowing `max` mints in any [`WINDOW`].
    pub(super) fn new(max: u32) -> Self {
        Self {
            max: max.max(1),
            mints: VecDeque::new(),
        }
    }

    /// Adds mint times learnt elsewhere (the token store, another process), keeping each once.
    pub(super) fn merge(&mut self, times: &[u64]) {
        let mut all: Vec<u64> = self
            .mints
            .iter()
            .copied()
            .chain(times.iter().copied())
            .collect();
        all.sort_unstable();
        all.dedup();
        self.mints = all.into();
    }

    /// Drops mints older than the window.
    fn prune(&mut self, now_ms: u64) {
        let horizon = now_ms.saturating_sub(window_ms());
        while self.mints.front().is_some_and(|&t| t <= horizon) {
            self.mints.pop_front();
        }
    }

    /// `Ok` when a mint may be made now; otherwise how long until the oldest mint leaves the
    /// window.
    ///
    /// # Errors
    /// The wait, when the budget is spent.
    pub(super) fn check(&mut self, now_ms: u64) -> Result<(), Duration> {
        self.prune(now_ms);
        if (self.mints.len() as u64) < u64::from(self.max) {
            return Ok(());
        }
        // The budget frees up when the mint that is `max`-th from the end leaves the window.
        let idx = self.mints.len() - self.max as usize;
        let frees_at = self.mints[idx] + window_ms();
        Err(Duration::from_millis(
            frees_at.saturating_sub(now_ms).max(1),
        ))
    }

    /// Records a successful mint.
    pub(super) fn record(&mut self, now_ms: u64) {
        self.mints.push_back(now_ms);
        self.prune(now_ms);
    }

    /// Mints within the window ending at `now_ms`.
    pub(super) fn in_window(&mut self, now_ms: u64) -> u32 {
        self.prune(now_ms);
        u32::try_from(self.mints.len()).unwrap_or(u32::MAX)
    }

    /// Mints still allowed in the window ending at `now_ms`.
    pub(super) fn left(&mut self, now_ms: u64) -> u32 {
        self.max.saturating_sub(self.in_window(now_ms))
    }

    /// The recorded mint times, oldest first (what the store keeps).
    pub(super) fn times(&self) -> Vec<u64> {
        self.mints.iter().copied().collect()
    }
}

fn window_ms() -> u64 {
    WINDOW.as_millis() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: u64 = 60_000;

    #[test]
    fn allows_up_to_max_then_says_when() {
        let mut g = MintGovernor::new(3);
        let t0 = 1_700_000_000_000;
        for i in 0..3 {
            assert!(g.check(t0 + i * MIN).is_ok());
            g.record(t0 + i * MIN);
        }
        // Three mints at t0, t0+1m, t0+2m: the next is allowed when t0's leaves, at t0+10m.
        let wait = g.check(t0 + 3 * MIN).unwrap_err();
        assert_eq!(wait, Duration::from_millis(7 * MIN));
        assert_eq!(g.left(t0 + 3 * MIN), 0);
        assert!(g.check(t0 + 10 * MIN + 1).is_ok());
        assert_eq!(g.in_window(t0 + 10 * MIN + 1), 2);
    }

    #[test]
    fn merge_deduplicates_and_sorts() {
        let mut g = MintGovernor::new(10);
        g.record(3);
        g.merge(&[1, 3, 2]);
        assert_eq!(g.times(), vec![1, 2, 3]);
    }

    #[test]
    fn merged_history_counts_against_the_budget() {
        let now = 30 * MIN;
        let mut g = MintGovernor::new(2);
        g.merge(&[now - MIN, now - 2 * MIN, now - 20 * MIN]);
        assert_eq!(g.in_window(now), 2);
        assert!(g.check(now).is_err());
    }
}
