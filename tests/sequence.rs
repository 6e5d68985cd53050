//! Tests that live through a day (issue 20 item 3): the token wing — the real
//! `TokenManager` and proxy as `serve` wires them, against the accounts and Meeting
//! emulators over loopback sockets — driven through seeded random sequences of steps
//! (requests, revocations, outages, throttling, a rotated secret and SIGHUP, the clock
//! moving past refresh points and expiry, a spent mint budget, a wrong data centre, `login`
//! beside the running proxy), with the user's promise checked after every step. The steps
//! are in `support/sequence/step.rs`, the invariants in `support/sequence/check.rs`.
//!
//! Each sequence has its own emulators and proxy, on a runtime whose clock moves only when a
//! step moves it (`support/sequence/clock.rs`): a day of token lifetimes takes milliseconds,
//! and no check depends on how loaded the machine is.
//!
//! Environment (prefixed `ZMP_`, not `ZOHO_PROXY_`, which the proxy's configuration reads):
//! - `ZMP_SEQUENCES=5000`: how many random sequences (default 300);
//! - `ZMP_SEQUENCE_STEPS=60`: steps per sequence (default 30);
//! - `ZMP_SEQUENCE_SEED=<seed>`: replay that one sequence (with the run's
//!   `ZMP_SEQUENCE_STEPS`), printing its steps and the proxy's log;
//! - `ZMP_SEQUENCE_BASE=<seed>`: the first seed of the random run (default: random,
//!   printed);
//! - `ZMP_SEQUENCE_WORKERS=<n>`: sequences at once (default 8);
//! - `ZMP_SEQUENCE_SHRINK_SECS=<s>`: real time spent shrinking a failure (default 60; 0: none);
//! - `ZMP_SEQUENCE_TOLERATE_KNOWN=1`: a pass-through of a token Zoho had accepted before
//!   (issue 20's bug, fixed since: the old rule passed a replacement's rejection through
//!   however long it had served), or of a rejected replacement after a reload (the same
//!   rule), is taken as what the proxy does instead of failing the sequence, to look for
//!   other bugs past a regression of that rule.
//!
//! A failure prints the seed, how to replay it, every step with what came of it, and the
//! sequence shrunk to the fewest steps that still fail the same way, ready to paste into
//! [`check_steps`] as a regression test below. Seeds that found bugs stay in
//! [`REGRESSION_SEEDS`].

use std::time::Duration;

use crate::support::sequence::run::{self, Options};
use crate::support::sequence::step::{self, Jump::*, Params, Step::*};

/// Seeds that found bugs; run every time (with the default number of steps). What a seed
/// draws depends on `step::generate`: after changing it, shrink these seeds' failures into
/// [`check_steps`] tests (as below) before they drift.
const REGRESSION_SEEDS: &[u64] = &[
    // A replacement that served requests, rejected: Zoho's 400 passed to clients (issue
    // 20's bug; `a_replacement_that_served_requests_is_refreshed_when_rejected`).
    1,
    // A rejected replacement passed through after `login` and the data centre fixed
    // (`a_rejected_replacement_is_not_passed_through_after_login`).
    74,
    // A rejected replacement passed through after SIGHUP ended that state, once its refresh
    // token was revoked (`a_sighup_ends_the_pass_through_state_even_when_its_mint_fails`).
    9238162015104976217,
];

fn env<T: std::str::FromStr>(name: &str) -> Option<T> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

fn options() -> Options {
    Options {
        capture_log: false,
        tolerate_known_bug: env::<u8>("ZMP_SEQUENCE_TOLERATE_KNOWN") == Some(1),
    }
}

fn steps_per_sequence() -> usize {
    env("ZMP_SEQUENCE_STEPS").unwrap_or(30)
}

/// Runs one sequence; on failure, [`fail`]s.
fn check_one(
    seed: Option<u64>,
    params: Params,
    steps: &[step::Step],
    options: Options,
) -> run::Stats {
    let outcome = run::run_one(params, steps, options);
    match outcome.result {
        Ok(stats) => stats,
        Err(_) => fail(seed, params, steps, outcome, options),
    }
}

/// Panics with the report of a failed sequence: run again with the proxy's log captured
/// (that run's report, if it fails again), and shrunk within the shrink budget.
fn fail(
    seed: Option<u64>,
    params: Params,
    steps: &[step::Step],
    outcome: run::Outcome,
    options: Options,
) -> ! {
    let violation = outcome.result.as_ref().expect_err("a failure").clone();
    let outcome = if outcome.proxy_log.is_some() {
        outcome
    } else {
        let logged = run::run_one(
            params,
            steps,
            Options {
                capture_log: true,
                ..options
            },
        );
        if logged.result.is_err() {
            logged
        } else {
            outcome
        }
    };
    let budget = env("ZMP_SEQUENCE_SHRINK_SECS").unwrap_or(60);
    let failing = &steps[..violation.step.min(steps.len())];
    let shrunk = (budget > 0 && !failing.is_empty()).then(|| {
        run::shrink(
            params,
            failing,
            violation.kind,
            Duration::from_secs(budget),
            options,
        )
    });
    panic!(
        "{}",
        run::report(seed, params, steps.len(), &outcome, shrunk.as_deref())
    );
}

/// Runs `steps` with `params`, and fails with the report (shrunk) when an invariant breaks:
/// what a shrunk failure becomes as a regression test.
fn check_steps(params: Params, steps: &[step::Step]) -> run::Stats {
    check_one(None, params, steps, Options::default())
}

#[test]
fn random_sequences_keep_the_promise() {
    let len = steps_per_sequence();
    let options = options();
    if let Some(seed) = env::<u64>("ZMP_SEQUENCE_SEED") {
        let (params, steps) = step::generate(seed, len);
        let outcome = run::run_one(
            params,
            &steps,
            Options {
                capture_log: true,
                ..options
            },
        );
        if outcome.result.is_err() {
            fail(Some(seed), params, &steps, outcome, options);
        }
        println!("{}", run::report(Some(seed), params, len, &outcome, None));
        return;
    }
    let count = env("ZMP_SEQUENCES").unwrap_or(300);
    let base = env("ZMP_SEQUENCE_BASE").unwrap_or_else(rand::random::<u64>);
    let workers = env("ZMP_SEQUENCE_WORKERS").unwrap_or(8);
    let started = std::time::Instant::now();
    let (stats, passed, failure) = run::run_many(base, count, len, workers, options);
    println!(
        "{passed} of {count} sequences of {len} steps passed in {:.1} s (seeds {base}..; \
         ZMP_SEQUENCE_BASE={base} repeats them): {stats:?}",
        started.elapsed().as_secs_f64()
    );
    if let Some((seed, outcome)) = failure {
        let (params, steps) = step::generate(seed, len);
        fail(Some(seed), params, &steps, outcome, options);
    }
}

#[test]
fn regression_seeds() {
    let len = steps_per_sequence();
    for &seed in REGRESSION_SEEDS {
        let (params, steps) = step::generate(seed, len);
        check_one(Some(seed), params, &steps, options());
    }
}

/// An hour-long token: the defaults.
const HOUR: Params = Params {
    max_mints: 10,
    lifetime_s: 3600,
    margin_s: 300,
    refresh_token_in_store: true,
};

/// The clock moves past refresh points and expiry with and without requests; nothing goes
/// wrong, and tokens are replaced ahead of expiry.
#[test]
fn a_quiet_day() {
    let mut steps = Vec::new();
    for _ in 0..24 {
        steps.extend([
            Requests { gets: 2, posts: 1 },
            Advance(PastRefresh),
            Requests { gets: 1, posts: 0 },
            Advance(Secs(600)),
        ]);
    }
    // A day's refreshes happen within a second of wall clock, where the mint budget counts.
    check_steps(
        Params {
            max_mints: 60,
            lifetime_s: 3600,
            margin_s: 300,
            refresh_token_in_store: true,
        },
        &steps,
    );
}

/// Issue 20's bug: a token that replaced a rejected one and then served requests is
/// ordinary; when Zoho rejects it too, it is refreshed and the request replayed, not Zoho's
/// 400 passed to the client (the old rule: `Rejection::Repeated` for `generation ==
/// state.replacement` in `TokenManager::rejected`). Found by every random run before the
/// fix; shrunk.
#[test]
fn a_replacement_that_served_requests_is_refreshed_when_rejected() {
    check_steps(
        Params {
            max_mints: 10,
            lifetime_s: 3600,
            margin_s: 300,
            refresh_token_in_store: false,
        },
        &[
            RevokeCurrent,
            Requests { gets: 1, posts: 0 },
            RevokeCurrent,
            Requests { gets: 1, posts: 0 },
        ],
    );
}

/// A replacement Zoho rejected before accepting it (a wrong data centre) is passed through,
/// but only until a reload (`login`, SIGHUP) ends that state: here `login` revoked the old
/// refresh token and its access tokens, the data centre was fixed, and the next request must
/// be refreshed and replayed with the new refresh token, not answered Zoho's 400. Found by
/// seed 3722995172288735763 (and others); shrunk.
#[test]
fn a_rejected_replacement_is_not_passed_through_after_login() {
    check_steps(
        Params {
            max_mints: 24,
            lifetime_s: 40,
            margin_s: 900,
            refresh_token_in_store: false,
        },
        &[
            WrongDataCentre(true),
            Requests { gets: 1, posts: 0 },
            Login { revoke_old: true },
            WrongDataCentre(false),
            Requests { gets: 0, posts: 1 },
        ],
    );
}

/// A rotated secret: the background task stops at the terminal error and does not retry by
/// itself however long the clock runs; requests try again at most every 10 s; the fixed
/// secret and SIGHUP mint at once.
#[test]
fn a_rotated_secret_waits_for_the_fix_and_sighup() {
    let stats = check_steps(
        HOUR,
        &[
            BreakSecret,
            Advance(PastRefresh),
            Advance(Secs(600)),
            Advance(PastExpiry),
            Requests { gets: 2, posts: 1 },
            Requests { gets: 1, posts: 0 },
            Advance(Secs(10)),
            Requests { gets: 1, posts: 0 },
            FixSecret,
            Requests { gets: 1, posts: 1 },
            Recover,
        ],
    );
    assert!(stats.unavailable >= 4, "{stats:?}");
}

/// Zoho's throttling (HTTP 400 and 200) and an outage of the token endpoint, each outliving
/// the token: 503s with `Retry-After` meanwhile, and a success one `Retry-After` after each
/// ends.
#[test]
fn throttling_and_outages_are_waited_out() {
    let stats = check_steps(
        HOUR,
        &[
            Throttling(Some(400)),
            Advance(PastExpiry),
            Requests { gets: 3, posts: 1 },
            Throttling(None),
            Recover,
            Outage(Some(503)),
            Advance(PastExpiry),
            Requests { gets: 2, posts: 0 },
            Advance(RetryAfter),
            Requests { gets: 1, posts: 0 },
            Outage(None),
            Recover,
            ThrottleOnce,
            RevokeCurrent,
            Requests { gets: 1, posts: 0 },
            Recover,
        ],
    );
    assert!(stats.unavailable >= 6, "{stats:?}");
}

/// Another process spent the mint budget: a rejected token is dead (503, never sent again)
/// until the window frees, then one `Retry-After` later a request succeeds.
#[test]
fn a_spent_budget_makes_a_rejected_token_dead_until_the_window_frees() {
    let stats = check_steps(
        HOUR,
        &[
            SpendBudget { frees_ms: 300 },
            RevokeCurrent,
            Requests { gets: 3, posts: 2 },
            Requests { gets: 1, posts: 0 },
            BudgetFrees,
            Recover,
            Requests { gets: 2, posts: 0 },
        ],
    );
    assert!(stats.unavailable >= 6, "{stats:?}");
}

/// `login` beside the running proxy, keeping or revoking the old refresh token, with the
/// refresh token in the store and in the configuration.
#[test]
fn login_beside_the_running_proxy_takes_effect_at_sighup() {
    for refresh_token_in_store in [true, false] {
        check_steps(
            Params {
                refresh_token_in_store,
                ..HOUR
            },
            &[
                Requests { gets: 1, posts: 0 },
                RevokeRefresh,
                Requests { gets: 1, posts: 0 },
                Advance(PastRefresh),
                Requests { gets: 1, posts: 0 },
                Login { revoke_old: false },
                Recover,
                Login { revoke_old: true },
                Requests { gets: 2, posts: 1 },
                Advance(PastExpiry),
                Recover,
            ],
        );
    }
}

/// Requests whose token Zoho rejected are answered while the clock passes the refresh point:
/// the refresher's new token is the replacement they are replayed with (one token for all),
/// and it is an ordinary token afterwards: rejected in turn, it is refreshed, not passed
/// through (issue 20's bug, reached through the scheduled refresh: the old rule's
/// `replacement` took the generation of the token the rejected requests adopted).
#[test]
fn a_scheduled_token_adopted_by_rejected_requests_is_ordinary() {
    check_steps(
        HOUR,
        &[
            RevokeCurrent,
            InFlight { gets: 2, posts: 1 },
            Requests { gets: 1, posts: 0 },
            RevokeCurrent,
            Requests { gets: 1, posts: 1 },
        ],
    );
}

/// SIGHUP ends the state in which a rejected replacement's answers pass through, even when
/// the mint it makes fails: here the refresh token was revoked (killing the held token), so
/// the held token's next rejection makes it dead (503 + `Retry-After`), not Zoho's 400.
/// Found by seed 9238162015104976217 after the rule of issue 20; shrunk.
#[test]
fn a_sighup_ends_the_pass_through_state_even_when_its_mint_fails() {
    check_steps(
        Params {
            max_mints: 26,
            lifetime_s: 900,
            margin_s: 900,
            refresh_token_in_store: true,
        },
        &[
            WrongDataCentre(true),
            Requests { gets: 1, posts: 0 },
            WrongDataCentre(false),
            RevokeRefresh,
            FixSecret,
            InFlight { gets: 5, posts: 2 },
        ],
    );
}
