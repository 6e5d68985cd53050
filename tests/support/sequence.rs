//! The sequence test's machinery (issue 20 item 3, "tests that live through a day"): a
//! proxy, its token manager and both emulators in one process, driven through seeded random
//! sequences of steps, with the user's promise checked after every step.
//!
//! - [`step`]: what can happen (requests, revocations, outages, throttling, a rotated secret,
//!   the clock, the mint budget, a wrong data centre, `login`, SIGHUP), drawn from a seed and
//!   printed as Rust for a regression test;
//! - [`clock`]: each sequence runs on a current-thread runtime whose clock moves only when a
//!   step moves it, so a day passes in milliseconds and nothing depends on how loaded the
//!   machine is;
//! - [`world`]: the emulators, the proxy (`app::start_with_store`, as `serve` starts it) and its reloader,
//!   and how each step acts on them;
//! - [`check`]: the invariants, judged from what the emulators recorded (every token check
//!   at the Meeting emulator, every mint at the accounts emulator) and what clients got;
//! - [`run`]: one sequence on its own thread, many in parallel, shrinking a failure, and the
//!   report.

pub mod check;
pub mod clock;
pub mod run;
pub mod step;
pub mod world;
