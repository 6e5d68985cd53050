//! The refresh policy: pure decisions over plain values, no I/O and no clock of its own.
//!
//! Every mint is asked for by a [`Trigger`]. [`decide`] answers, from what is known of the
//! token held ([`Held`]) and of past failures ([`Gate`]), whether the token held already
//! satisfies the trigger ([`Decision::Keep`]), whether to ask Zoho ([`Decision::Attempt`]),
//! or why not ([`Decision::Refuse`]). One table per trigger:
//!
//! | trigger | keeps the token held when | past a terminal error | during backoff or a spent budget |
//! | --- | --- | --- | --- |
//! | [`Scheduled`](Trigger::Scheduled) (background) | it may be sent and is not due | refuses: the background stops | refuses until the hold ends |
//! | [`Rejected`](Trigger::Rejected) (Zoho refused a token) | it may be sent and is another generation | attempts at most every [`TERMINAL_RETRY`] | refuses until the hold ends |
//! | [`Request`](Trigger::Request) (no token to send) | it may be sent | attempts at most every [`TERMINAL_RETRY`] | refuses until the hold ends |
//! | [`Fresh`](Trigger::Fresh) (`token` command) | it has more than the margin left | attempts at most every [`TERMINAL_RETRY`] | refuses until the hold ends |
//! | [`Reload`](Trigger::Reload) (SIGHUP, a changed secret) | it may be sent and nothing holds attempts back | attempts at once | attempts at once after backoff; a spent budget still refuses |
//! | [`Manual`](Trigger::Manual) (`check --online`) | never | attempts | attempts (the budget is still checked when minting) |
//!
//! After an attempt, [`Gate::succeeded`], [`Gate::failed`] and [`Gate::budget_spent`]
//! record the outcome: transient failures back off exponentially with jitter ([`backoff`]),
//! Zoho's throttling answer waits at least [`THROTTLE_MIN`], a terminal error holds until a
//! reload or a successful mint. [`next_attempt`] says when the background refresher looks
//! next, and [`refresh_at`] when a token is due.

use std::time::Duration;

use tokio::time::Instant;

use super::Unavailable;
use super::client::ErrorClass;

/// First retry delay after a transient failure.
pub(super) const BACKOFF_MIN: Duration = Duration::from_secs(1);
/// Longest retry delay.
pub(super) const BACKOFF_MAX: Duration = Duration::from_secs(300);
/// Shortest wait after Zoho's throttling answer: hammering prolongs the block.
pub const THROTTLE_MIN: Duration = Duration::from_secs(60);
/// After a terminal error, requests may trigger a new attempt this often.
pub const TERMINAL_RETRY: Duration = Duration::from_secs(10);

/// Who asks for a mint. See the [module docs](self) for what each may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Trigger {
    /// The background schedule.
    Scheduled,
    /// A request whose token, of this generation, Zoho rejected.
    Rejected(u64),
    /// A request with no token to send.
    Request,
    /// The `token` command: wants more than the refresh margin left.
    Fresh,
    /// A reload (SIGHUP, a changed secret file): credentials may have been fixed.
    Reload,
    /// A person (`check --online`).
    Manual,
}

/// What is known of the token held, for [`decide`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Held {
    /// Its generation.
    pub generation: u64,
    /// It may be sent: not expired and not dead.
    pub usable: bool,
    /// It has more than the refresh margin left.
    pub fresh: bool,
    /// The schedule says it is time to replace it.
    pub due: bool,
}

/// What holds attempts back, if anything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Hold {
    /// Backing off after a transient failure or throttling, until `until`.
    Backoff {
        /// The last error.
        reason: String,
        /// No attempt before this.
        until: Instant,
    },
    /// The mint budget is spent until `until`.
    Budget {
        /// The configured maximum.
        max: u32,
        /// When the oldest mint leaves the window.
        until: Instant,
    },
    /// Zoho refused the credentials at `since`.
    Terminal {
        /// Zoho's refusal.
        reason: String,
        /// When the refused attempt was made.
        since: Instant,
    },
}

/// Failures so far and what holds attempts back.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Gate {
    /// Transient failures in a row.
    pub failures: u32,
    /// What holds attempts back.
    pub hold: Option<Hold>,
}

/// What [`decide`] answers.
#[derive(Clone, Debug)]
pub(super) enum Decision {
    /// The token held satisfies the trigger.
    Keep,
    /// Ask Zoho for a new token.
    Attempt,
    /// Do not ask now, for this reason.
    Refuse(Unavailable),
}

/// Decides what `trigger` may do. See the [module docs](self) for the table.
pub(super) fn decide(trigger: Trigger, held: Option<Held>, gate: &Gate, now: Instant) -> Decision {
    let keep = held.is_some_and(|h| match trigger {
        Trigger::Scheduled => h.usable && !h.due,
        Trigger::Rejected(generation) => h.usable && h.generation != generation,
        Trigger::Request => h.usable,
        Trigger::Fresh => h.usable && h.fresh,
        Trigger::Reload => h.usable && gate.hold.is_none(),
        Trigger::Manual => false,
    });
    if keep {
        return Decision::Keep;
    }
    let Some(hold) = &gate.hold else {
        return Decision::Attempt;
    };
    match (trigger, hold) {
        (Trigger::Manual, _) => Decision::Attempt,
        (Trigger::Reload, Hold::Budget { .. }) => match gate.refusal(now) {
            Some(refusal) => Decision::Refuse(refusal),
            None => Decision::Attempt,
        },
        (Trigger::Reload, _) => Decision::Attempt,
        (Trigger::Scheduled, Hold::Terminal { .. }) => Decision::Refuse(gate.terminal(now)),
        (_, Hold::Terminal { since, .. }) if *since + TERMINAL_RETRY <= now => Decision::Attempt,
        (_, _) => match gate.refusal(now) {
            Some(refusal) => Decision::Refuse(refusal),
            None => Decision::Attempt,
        },
    }
}

/// When the background refresher should look next: `due_at` (the token's [`refresh_at`],
/// `None` when there is no token that may be sent), but not before a hold ends; `None` while
/// stopped after a terminal error.
pub(super) fn next_attempt(due_at: Option<Instant>, gate: &Gate, now: Instant) -> Option<Instant> {
    let due = due_at.unwrap_or(now);
    match &gate.hold {
        Some(Hold::Terminal { .. }) => None,
        Some(Hold::Backoff { until, .. } | Hold::Budget { until, .. }) => Some(due.max(*until)),
        None => Some(due),
    }
}

/// The effective refresh margin for a token of this lifetime: `margin`, capped to a quarter
/// of the lifetime so that a short-lived token never causes a refresh loop.
pub(super) fn margin_for(margin: Duration, lifetime: Duration) -> Duration {
    margin.min(lifetime / 4)
}

/// When to refresh a token expiring at `expires_at`: `margin` before expiry, plus a lead of
/// a tenth of the margin (at most 30 s) so that the new token arrives before readiness, which
/// requires more than `margin` left, would drop.
pub fn refresh_at(expires_at: Instant, margin: Duration) -> Instant {
    let lead = (margin / 10).min(Duration::from_secs(30));
    expires_at.checked_sub(margin + lead).unwrap_or(expires_at)
}

/// Delay before retry number `failures` (1-based): 1 s doubling to 5 min, with "equal
/// jitter" (between half and all of it) from `unit`, a random number in `[0, 1)`.
pub(super) fn backoff(failures: u32, unit: f64) -> Duration {
    let exp = failures.saturating_sub(1).min(16);
    let base = BACKOFF_MIN.saturating_mul(1 << exp).min(BACKOFF_MAX);
    base.mul_f64(0.5 + 0.5 * unit.clamp(0.0, 1.0))
}

// === impl Gate ===

impl Gate {
    /// A mint succeeded: nothing holds attempts back any more.
    pub(super) fn succeeded(&mut self) {
        self.failures = 0;
        self.hold = None;
    }

    /// An attempt failed with an error of `class`; returns what callers are told. `unit` is
    /// a random number in `[0, 1)` for the backoff's jitter.
    pub(super) fn failed(
        &mut self,
        class: ErrorClass,
        reason: String,
        now: Instant,
        unit: f64,
    ) -> Unavailable {
        if class == ErrorClass::Terminal {
            self.hold = Some(Hold::Terminal {
                reason: reason.clone(),
                since: now,
            });
            return Unavailable::Terminal {
                reason,
                retry_after: TERMINAL_RETRY,
            };
        }
        self.failures = self.failures.saturating_add(1);
        let mut delay = backoff(self.failures, unit);
        if class == ErrorClass::Throttled {
            delay = delay.max(THROTTLE_MIN);
        }
        self.hold = Some(Hold::Backoff {
            reason: reason.clone(),
            until: now + delay,
        });
        Unavailable::Failing {
            reason,
            retry_after: delay,
        }
    }

    /// The budget of `max` mints is spent for `wait`; returns what callers are told.
    pub(super) fn budget_spent(&mut self, max: u32, wait: Duration, now: Instant) -> Unavailable {
        self.hold = Some(Hold::Budget {
            max,
            until: now + wait,
        });
        Unavailable::Budget {
            max,
            retry_after: wait,
        }
    }

    /// Stops attempts as a terminal error does (the credentials are gone, e.g. revoked).
    pub(super) fn stop(&mut self, reason: String, now: Instant) {
        self.hold = Some(Hold::Terminal { reason, since: now });
    }

    /// A name for what holds attempts back now, for `/status`: `budget`, `terminal` or
    /// `refresh_failing`.
    pub(super) fn blocked_by(&self, now: Instant) -> Option<&'static str> {
        match &self.hold {
            Some(Hold::Terminal { .. }) => Some("terminal"),
            Some(Hold::Budget { until, .. }) if *until > now => Some("budget"),
            Some(Hold::Backoff { .. }) => Some("refresh_failing"),
            Some(Hold::Budget { .. }) | None => None,
        }
    }

    /// Whether the background refresher stopped after a terminal error.
    pub(super) fn is_terminal(&self) -> bool {
        matches!(self.hold, Some(Hold::Terminal { .. }))
    }

    /// What a refused caller is told while a hold lasts; `None` once it has ended.
    fn refusal(&self, now: Instant) -> Option<Unavailable> {
        match self.hold.as_ref()? {
            Hold::Terminal { .. } => Some(self.terminal(now)),
            Hold::Backoff { reason, until } => (*until > now).then(|| Unavailable::Failing {
                reason: reason.clone(),
                retry_after: *until - now,
            }),
            Hold::Budget { max, until } => (*until > now).then(|| Unavailable::Budget {
                max: *max,
                retry_after: *until - now,
            }),
        }
    }

    fn terminal(&self, now: Instant) -> Unavailable {
        match &self.hold {
            Some(Hold::Terminal { reason, since }) => Unavailable::Terminal {
                reason: reason.clone(),
                retry_after: (*since + TERMINAL_RETRY)
                    .saturating_duration_since(now)
                    .max(Duration::from_secs(1)),
            },
            _ => Unavailable::Pending {
                retry_after: BACKOFF_MIN,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    /// A token that may be sent and is not due: the steady state.
    fn fine(generation: u64) -> Option<Held> {
        Some(Held {
            generation,
            usable: true,
            fresh: true,
            due: false,
        })
    }

    fn due(generation: u64) -> Option<Held> {
        Some(Held {
            generation,
            usable: true,
            fresh: false,
            due: true,
        })
    }

    /// Dead (rejected and not replaced) or expired: may not be sent.
    fn unusable(generation: u64) -> Option<Held> {
        Some(Held {
            generation,
            usable: false,
            fresh: false,
            due: true,
        })
    }

    fn backoff_until(now: Instant, secs: u32) -> Gate {
        Gate {
            failures: 1,
            hold: Some(Hold::Backoff {
                reason: "token endpoint returned 503".into(),
                until: now + secs * S,
            }),
        }
    }

    fn budget_until(now: Instant, secs: u32) -> Gate {
        Gate {
            failures: 0,
            hold: Some(Hold::Budget {
                max: 10,
                until: now + secs * S,
            }),
        }
    }

    fn terminal_since(now: Instant, secs_ago: u32) -> Gate {
        Gate {
            failures: 0,
            hold: Some(Hold::Terminal {
                reason: "invalid_client".into(),
                since: now - secs_ago * S,
            }),
        }
    }

    /// "keep", "attempt", or the refusal's variant and retry-after in seconds.
    fn answer(d: Decision) -> String {
        match d {
            Decision::Keep => "keep".into(),
            Decision::Attempt => "attempt".into(),
            Decision::Refuse(u) => {
                let kind = match u {
                    Unavailable::Pending { .. } => "pending",
                    Unavailable::Failing { .. } => "failing",
                    Unavailable::Budget { .. } => "budget",
                    Unavailable::Terminal { .. } => "terminal",
                    Unavailable::Rejected { .. } => "rejected",
                };
                format!("{kind} {}", u.retry_after().as_secs())
            }
        }
    }

    fn table(trigger: Trigger, rows: &[(&str, Option<Held>, Gate, &str)], now: Instant) {
        for (name, held, gate, expected) in rows {
            assert_eq!(
                answer(decide(trigger, *held, gate, now)),
                *expected,
                "{trigger:?}, {name}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn scheduled() {
        tokio::time::advance(Duration::from_secs(1000)).await;
        let now = Instant::now();
        table(
            Trigger::Scheduled,
            &[
                ("not due", fine(1), Gate::default(), "keep"),
                ("due", due(1), Gate::default(), "attempt"),
                ("no token", None, Gate::default(), "attempt"),
                ("dead token", unusable(1), Gate::default(), "attempt"),
                ("backing off", due(1), backoff_until(now, 8), "failing 8"),
                ("backoff over", due(1), backoff_until(now, 0), "attempt"),
                (
                    "budget spent",
                    unusable(1),
                    budget_until(now, 300),
                    "budget 300",
                ),
                ("terminal", None, terminal_since(now, 60), "terminal 1"),
                (
                    "terminal, fine token",
                    fine(1),
                    terminal_since(now, 0),
                    "keep",
                ),
            ],
            now,
        );
    }

    #[tokio::test(start_paused = true)]
    async fn forced_by_rejection() {
        tokio::time::advance(Duration::from_secs(1000)).await;
        let now = Instant::now();
        table(
            Trigger::Rejected(1),
            &[
                ("already replaced", fine(2), Gate::default(), "keep"),
                ("the rejected one", fine(1), Gate::default(), "attempt"),
                (
                    "replacement expired",
                    unusable(2),
                    Gate::default(),
                    "attempt",
                ),
                ("no token", None, Gate::default(), "attempt"),
                ("backing off", fine(1), backoff_until(now, 30), "failing 30"),
                (
                    "budget spent",
                    fine(1),
                    budget_until(now, 394),
                    "budget 394",
                ),
                ("budget freed", fine(1), budget_until(now, 0), "attempt"),
                (
                    "terminal, just now",
                    fine(1),
                    terminal_since(now, 3),
                    "terminal 7",
                ),
                (
                    "terminal, 10 s ago",
                    fine(1),
                    terminal_since(now, 10),
                    "attempt",
                ),
            ],
            now,
        );
    }

    #[tokio::test(start_paused = true)]
    async fn request_after_terminal() {
        tokio::time::advance(Duration::from_secs(1000)).await;
        let now = Instant::now();
        table(
            Trigger::Request,
            &[
                ("token held", fine(1), terminal_since(now, 0), "keep"),
                ("within 10 s", None, terminal_since(now, 0), "terminal 10"),
                ("9 s later", None, terminal_since(now, 9), "terminal 1"),
                ("10 s later", None, terminal_since(now, 10), "attempt"),
                (
                    "dead, 11 s later",
                    unusable(3),
                    terminal_since(now, 11),
                    "attempt",
                ),
                ("no hold", None, Gate::default(), "attempt"),
                ("budget", unusable(1), budget_until(now, 42), "budget 42"),
            ],
            now,
        );
        table(
            Trigger::Fresh,
            &[
                ("fresh", fine(1), Gate::default(), "keep"),
                ("within the margin", due(1), Gate::default(), "attempt"),
                (
                    "within the margin, terminal",
                    due(1),
                    terminal_since(now, 1),
                    "terminal 9",
                ),
            ],
            now,
        );
    }

    #[tokio::test(start_paused = true)]
    async fn reload() {
        tokio::time::advance(Duration::from_secs(1000)).await;
        let now = Instant::now();
        table(
            Trigger::Reload,
            &[
                ("all well", fine(1), Gate::default(), "keep"),
                ("no token", None, Gate::default(), "attempt"),
                ("dead", unusable(1), Gate::default(), "attempt"),
                (
                    "terminal, just now",
                    None,
                    terminal_since(now, 0),
                    "attempt",
                ),
                (
                    "terminal, token held",
                    fine(1),
                    terminal_since(now, 0),
                    "attempt",
                ),
                ("backing off", fine(1), backoff_until(now, 200), "attempt"),
                (
                    "budget spent",
                    unusable(1),
                    budget_until(now, 120),
                    "budget 120",
                ),
                ("budget freed", unusable(1), budget_until(now, 0), "attempt"),
            ],
            now,
        );
        table(
            Trigger::Manual,
            &[
                ("all well", fine(1), Gate::default(), "attempt"),
                ("terminal", None, terminal_since(now, 0), "attempt"),
                (
                    "budget (checked at the mint)",
                    None,
                    budget_until(now, 9),
                    "attempt",
                ),
            ],
            now,
        );
    }

    #[tokio::test(start_paused = true)]
    async fn outcomes_set_the_hold() {
        let now = Instant::now();
        let mut gate = Gate::default();
        let u = gate.failed(ErrorClass::Transient, "503".into(), now, 1.0);
        assert_eq!(answer(Decision::Refuse(u)), "failing 1");
        assert_eq!(gate.blocked_by(now), Some("refresh_failing"));
        let u = gate.failed(ErrorClass::Transient, "503".into(), now, 1.0);
        assert_eq!(u.retry_after(), 2 * S);
        let u = gate.failed(ErrorClass::Throttled, "Access Denied".into(), now, 0.0);
        assert_eq!(u.retry_after(), THROTTLE_MIN);
        assert_eq!(gate.failures, 3);
        gate.succeeded();
        assert_eq!(gate, Gate::default());
        assert_eq!(gate.blocked_by(now), None);
        let u = gate.budget_spent(10, 300 * S, now);
        assert_eq!(answer(Decision::Refuse(u)), "budget 300");
        assert_eq!(gate.blocked_by(now), Some("budget"));
        assert_eq!(gate.blocked_by(now + 301 * S), None);
        let u = gate.failed(ErrorClass::Terminal, "invalid_client".into(), now, 0.5);
        assert_eq!(answer(Decision::Refuse(u)), "terminal 10");
        assert!(gate.is_terminal());
        assert_eq!(gate.blocked_by(now), Some("terminal"));
    }

    #[tokio::test(start_paused = true)]
    async fn next_attempt_waits_for_the_hold_and_stops_after_a_terminal_error() {
        tokio::time::advance(Duration::from_secs(1000)).await;
        let now = Instant::now();
        let later = now + 600 * S;
        assert_eq!(
            next_attempt(Some(later), &Gate::default(), now),
            Some(later)
        );
        assert_eq!(next_attempt(None, &Gate::default(), now), Some(now));
        assert_eq!(
            next_attempt(None, &budget_until(now, 120), now),
            Some(now + 120 * S)
        );
        assert_eq!(
            next_attempt(Some(later), &backoff_until(now, 5), now),
            Some(later)
        );
        assert_eq!(next_attempt(None, &terminal_since(now, 0), now), None);
    }

    #[test]
    fn backoff_doubles_from_about_a_second_to_five_minutes() {
        assert_eq!(backoff(1, 1.0), Duration::from_secs(1));
        assert_eq!(backoff(1, 0.0), Duration::from_millis(500));
        assert_eq!(backoff(2, 1.0), Duration::from_secs(2));
        assert_eq!(backoff(5, 1.0), Duration::from_secs(16));
        assert_eq!(backoff(9, 1.0), Duration::from_secs(256));
        assert_eq!(backoff(10, 1.0), BACKOFF_MAX);
        assert_eq!(backoff(u32::MAX, 1.0), BACKOFF_MAX);
        for n in 1..40 {
            for u in [0.0, 0.3, 0.999] {
                let d = backoff(n, u);
                assert!(
                    d >= Duration::from_millis(500) && d <= BACKOFF_MAX,
                    "{n} {u} {d:?}"
                );
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn refresh_schedule_is_margin_plus_a_small_lead() {
        let now = Instant::now();
        let exp = now + Duration::from_secs(3600);
        assert_eq!(
            refresh_at(exp, Duration::from_secs(300)),
            exp - Duration::from_secs(330)
        );
        assert_eq!(
            refresh_at(exp, Duration::from_secs(20)),
            exp - Duration::from_secs(22)
        );
        assert_eq!(refresh_at(exp, Duration::ZERO), exp);
        assert_eq!(margin_for(300 * S, 3600 * S), 300 * S);
        assert_eq!(margin_for(300 * S, 4 * S), S);
    }
}
