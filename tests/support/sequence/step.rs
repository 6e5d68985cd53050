//! The steps of a sequence, the knobs it runs with, and how both are drawn from a seed.
//!
//! `Debug` prints steps as Rust: with `use Step::*; use Jump::*;` a printed sequence pastes
//! into a regression test as it is.

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};

/// The knobs one sequence runs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    /// `oauth.max_mints_per_10m`.
    pub max_mints: u32,
    /// Lifetime of the access tokens the accounts emulator mints, in seconds.
    pub lifetime_s: u64,
    /// `token.refresh_margin`, in seconds (capped by the proxy to a quarter of the lifetime).
    pub margin_s: u64,
    /// The refresh token comes from the token store, as `login` leaves it (else from
    /// `oauth.refresh_token` in the configuration file).
    pub refresh_token_in_store: bool,
}

/// One thing that happens to the proxy or around it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Clients send `gets` GETs and `posts` small POSTs, all at once.
    Requests { gets: u8, posts: u8 },
    /// The same, answered slowly: the clock passes the current token's refresh point (at
    /// most 50 s on) while they are in flight, with Zoho's verdicts given before.
    InFlight { gets: u8, posts: u8 },
    /// Zoho revokes the proxy's current access token.
    RevokeCurrent,
    /// Zoho revokes every access token (the refresh token stays).
    RevokeAllAccess,
    /// Zoho revokes the refresh token in use (and its access tokens).
    RevokeRefresh,
    /// The token endpoint answers this HTTP status from now on (`Some`), or works again.
    Outage(Option<u16>),
    /// The token endpoint answers Zoho's throttle body with this HTTP status (200 or 400)
    /// from now on (`Some`), or stops.
    Throttling(Option<u16>),
    /// The next token request gets Zoho's throttle answer.
    ThrottleOnce,
    /// The client secret is rotated in Zoho's console: the proxy's stops working.
    BreakSecret,
    /// The configuration gets the secret Zoho accepts, and SIGHUP.
    FixSecret,
    /// The clock moves.
    Advance(Jump),
    /// Another process sharing the token store (a `token` command) spent the rest of the
    /// mint budget; those mints leave the 10-minute window `frees_ms` (wall clock) from now.
    SpendBudget { frees_ms: u32 },
    /// The wall clock passes until the mints of [`Step::SpendBudget`] have left the window.
    BudgetFrees,
    /// Every token is rejected (a wrong data centre), or no longer.
    WrongDataCentre(bool),
    /// `login` beside the running proxy: a new refresh token in the store (or the
    /// configuration), the old one revoked at Zoho unless `--keep-old`, and SIGHUP.
    Login { revoke_old: bool },
    /// SIGHUP with nothing changed.
    Sighup,
    /// When nothing stands in the way any more: a request, and when it gets 503, another
    /// once its `Retry-After` has passed, which must succeed.
    Recover,
}

/// How far [`Step::Advance`] moves the clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Jump {
    /// This many seconds.
    Secs(u64),
    /// Just past the current token's refresh point.
    PastRefresh,
    /// Into the last moments of the current token, where it is no longer sent.
    IntoSkew,
    /// Just past the current token's expiry.
    PastExpiry,
    /// The `Retry-After` of the last 503.
    RetryAfter,
}

/// What the generator knows of the state it drives, to keep sequences recovering.
#[derive(Debug, Default)]
struct Drawn {
    outage: bool,
    throttling: bool,
    secret_broken: bool,
    refresh_revoked: bool,
    wrong_dc: bool,
    phantoms: bool,
}

/// The knobs and `len` steps for `seed`.
pub fn generate(seed: u64, len: usize) -> (Params, Vec<Step>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let params = Params {
        max_mints: if rng.random_bool(0.5) {
            rng.random_range(3..=12)
        } else {
            rng.random_range(20..=60)
        },
        lifetime_s: *[3600, 3600, 3600, 900, 120, 40]
            .choose(&mut rng)
            .expect("not empty"),
        margin_s: *[300, 300, 60, 900].choose(&mut rng).expect("not empty"),
        refresh_token_in_store: rng.random_bool(0.5),
    };
    let mut drawn = Drawn::default();
    let steps = (0..len).map(|_| drawn.next(&mut rng)).collect();
    (params, steps)
}

impl Drawn {
    /// The next step: mostly requests and the clock; faults now and then, and the fault on
    /// at the moment cleared with a good chance, so that sequences go in and out of trouble.
    fn next(&mut self, rng: &mut StdRng) -> Step {
        // Clearing a fault that is on.
        if rng.random_bool(0.2) {
            let mut clear = Vec::new();
            if self.outage {
                clear.push(Step::Outage(None));
            }
            if self.throttling {
                clear.push(Step::Throttling(None));
            }
            if self.secret_broken {
                clear.push(Step::FixSecret);
            }
            if self.refresh_revoked {
                clear.push(Step::Login {
                    revoke_old: rng.random_bool(0.5),
                });
            }
            if self.wrong_dc {
                clear.push(Step::WrongDataCentre(false));
            }
            if self.phantoms {
                clear.push(Step::BudgetFrees);
            }
            if let Some(step) = clear.choose(rng) {
                let step = *step;
                self.apply(step);
                return step;
            }
        }
        let step = match rng.random_range(0..100) {
            0..30 => {
                let total = if rng.random_bool(0.6) {
                    1
                } else {
                    rng.random_range(2..=8)
                };
                let posts = rng.random_range(0..=total);
                let gets = total - posts;
                if rng.random_bool(0.15) {
                    Step::InFlight { gets, posts }
                } else {
                    Step::Requests { gets, posts }
                }
            }
            30..46 => Step::Advance(match rng.random_range(0..10) {
                0..2 => Jump::Secs(rng.random_range(1..=90)),
                2 => Jump::Secs(rng.random_range(600..=7200)),
                3..5 => Jump::PastRefresh,
                5 => Jump::IntoSkew,
                6..8 => Jump::PastExpiry,
                _ => Jump::RetryAfter,
            }),
            46..53 => Step::RevokeCurrent,
            53..56 => Step::RevokeAllAccess,
            56..58 => Step::RevokeRefresh,
            58..62 => Step::Outage(Some(*[500, 502, 503].choose(rng).expect("not empty"))),
            62..64 => Step::Throttling(Some(*[200, 400].choose(rng).expect("not empty"))),
            64..66 => Step::ThrottleOnce,
            66..69 => Step::BreakSecret,
            69..71 => Step::FixSecret,
            71..74 => Step::SpendBudget {
                frees_ms: rng.random_range(100..=600),
            },
            74..76 => Step::BudgetFrees,
            76..80 => Step::WrongDataCentre(!self.wrong_dc),
            80..83 => Step::Login {
                revoke_old: rng.random_bool(0.5),
            },
            83..85 => Step::Sighup,
            _ => Step::Recover,
        };
        self.apply(step);
        step
    }

    fn apply(&mut self, step: Step) {
        match step {
            Step::Outage(on) => self.outage = on.is_some(),
            Step::Throttling(on) => self.throttling = on.is_some(),
            Step::BreakSecret => self.secret_broken = true,
            Step::FixSecret => self.secret_broken = false,
            Step::RevokeRefresh => self.refresh_revoked = true,
            Step::Login { .. } => {
                self.refresh_revoked = false;
                self.phantoms = false;
            }
            Step::WrongDataCentre(on) => self.wrong_dc = on,
            Step::SpendBudget { .. } => self.phantoms = true,
            Step::BudgetFrees => self.phantoms = false,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_draws_the_same_sequence() {
        assert_eq!(generate(7, 40), generate(7, 40));
        assert_ne!(generate(7, 40), generate(8, 40));
    }
}
