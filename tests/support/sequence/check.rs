//! The invariants: the user's promise ("When a token goes bad", "Behaviour details users
//! rely on"), judged after every step from what the emulators recorded and what clients got.
//!
//! Each step's new token checks (Meeting emulator, in arrival order, with the request's
//! `X-Request-Id`) and new mints (accounts emulator) are matched against the steps before:
//!
//! 1. **Answers.** A client gets a success, or a 503 `application/problem+json` with a
//!    `Retry-After` of at least 1 s and at most the mint window (600 s) plus a second per
//!    mint so far (the governor records a process's mints at least a second apart, late
//!    rather than early: `mint_record_time`; a sequence makes them all within a second or
//!    two of wall clock), or Zoho's token rejection passed
//!    through, and nothing else. The pass-through is allowed only for a token Zoho rejected
//!    *before any request with it was accepted* while every token is rejected (the
//!    wrong-data-centre state), and for such a token until a reload (SIGHUP, `login`) ends
//!    that state; a token Zoho accepted once is ordinary: rejected, it is refreshed (once)
//!    and the request replayed, or the client gets 503. `/status` says
//!    `upstream_rejects_fresh_tokens` after a pass-through.
//! 2. **No rejected token is sent again** once a step in which Zoho rejected it has ended
//!    (the proxy has learnt it), except a fresh token whose rejection was passed through as
//!    above, which may be sent again (that is how the proxy learns that Zoho accepts tokens
//!    again).
//! 3. **No expired token is sent**: every token arrives before its expiry (tokio clock, which
//!    stands still during a step).
//! 4. **One replay, with another token**: a request reaches Zoho at most twice, the second
//!    time only after a rejection and with a different token; replays of requests that saw
//!    the same token rejected all carry one token (single flight), and a step makes at most
//!    one token request per token rejected in it, plus one (for a request that found no
//!    token); a step without requests at most one.
//! 5. **The budget**: in any 10 minutes (wall clock, as the governor counts), the mints of
//!    one refresh token plus those another process had recorded in the store never exceed
//!    `oauth.max_mints_per_10m`.
//! 6. **Readiness**: `/readyz` answers 503 exactly while the proxy holds no usable token
//!    (none minted, the last one within its refresh margin, or Zoho rejected it and no
//!    replacement came), and `/status`'s `ready` agrees.
//! 7. **After a terminal error** (`/status` says `refresh_stopped`): the clock moving makes
//!    no token request (the background task stopped), requests make one only 10 s or more
//!    after the last, and SIGHUP makes one at once.
//! 8. **Recovery**: once nothing stands in the way any more, a request succeeds, or gets 503
//!    and the next one succeeds after its `Retry-After`.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::time::Duration;

use tokio::time::Instant;
use zoho_emulator::accounts::MintRecord;
use zoho_emulator::meeting::TokenCheck;
use zoho_meeting_proxy::token::{TERMINAL_RETRY, unix_ms_of};

use super::step::Step;
use super::world::{Acted, Answer, WINDOW_MS, World};

/// What went wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A client got Zoho's token rejection for a token that was not a fresh one in the
    /// wrong-data-centre state.
    ClientGotRejection,
    /// The same, for a token Zoho had accepted before: issue 20's bug, fixed since (the old
    /// rule's `Rejection::Repeated` for a replacement that served requests).
    AcceptedTokenPassedThrough,
    /// The same, for a token once rejected as a fresh token in the wrong-data-centre state,
    /// after a reload (SIGHUP, `login`) ended that state: the same rule as issue 20's bug
    /// (a replacement `Repeated` for ever).
    PassedThroughAfterReload,
    /// A token Zoho rejected was sent again after the proxy had learnt it.
    RejectedTokenResent,
    /// A token arrived after its expiry.
    ExpiredTokenSent,
    /// A request arrived without a token, or with one the accounts emulator never minted.
    UnknownToken,
    /// A request reached Zoho more than twice, or was replayed after an acceptance or with
    /// the token that was rejected.
    BadReplay,
    /// Concurrent rejections of one token were replayed with different tokens, or a step
    /// made more token requests than its rejections justify.
    NotSingleFlight,
    /// More mints in 10 minutes than `oauth.max_mints_per_10m`.
    BudgetExceeded,
    /// An answer other than success, 503 problem+json with `Retry-After`, or a permitted
    /// pass-through.
    BadAnswer,
    /// `/readyz` or `/status` wrong about whether a usable token is held.
    Readiness,
    /// A pass-through, and `/status` does not say `upstream_rejects_fresh_tokens`.
    FreshRejectionsNotShown,
    /// Nothing stood in the way, and the request after the announced `Retry-After` failed.
    NoRecovery,
    /// After a terminal error: a token request by the background task, or by requests
    /// sooner than 10 s after the last attempt, or none at a reload.
    TerminalRetry,
    /// The sequence did not finish (a request that never got an answer, say).
    Hung,
    /// The test's own machinery failed (a panic).
    Harness,
}

/// A broken invariant.
#[derive(Clone, Debug)]
pub struct Violation {
    pub step: usize,
    pub kind: Kind,
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "step {}: {:?}: {}", self.step, self.kind, self.detail)
    }
}

/// What is known of one minted token.
#[derive(Debug)]
struct Token {
    /// Its number in mint order (for messages: tokens are never printed).
    n: usize,
    minted_at: Instant,
    expires_at: Instant,
    accepted: u32,
    /// Zoho rejected it in an earlier step, not as a fresh token in the wrong-data-centre
    /// state: it must never be sent again.
    learnt_rejected: bool,
    /// Zoho rejected it before accepting it, while every token was rejected, and neither
    /// an acceptance nor a reload (SIGHUP, `login`) has happened since: the proxy may pass
    /// Zoho's answers to it through, and send it again.
    fresh_rejected: bool,
    /// Zoho rejected it so at least once.
    ever_fresh_rejected: bool,
}

/// What one step did, as observed.
pub struct Observed<'a> {
    /// The step's number (from 1).
    pub index: usize,
    pub step: Step,
    /// What clients got.
    pub acted: &'a Acted,
    /// The Meeting emulator's token checks during the step.
    pub checks: &'a [TokenCheck],
    /// The accounts emulator's mints during the step.
    pub mints: &'a [MintRecord],
    /// Token requests during the step, successful or not.
    pub token_requests: u64,
    /// Token requests before the step.
    pub token_requests_before: u64,
    /// Every token was rejected (a wrong data centre) while the step ran.
    pub wrong_dc: bool,
    /// The mint budget was spent when the step began (it frees by the wall clock, maybe
    /// during the step).
    pub budget_spent: bool,
}

/// The invariants' memory across steps.
pub struct Checker {
    tokens: HashMap<String, Token>,
    /// Tokens in mint order.
    order: Vec<String>,
    /// Every mint: refresh token and wall-clock time.
    mints: Vec<(Option<String>, u64)>,
    /// `/status` after the last step.
    status: serde_json::Value,
    /// Take the known bug's pass-throughs as what the proxy does (see
    /// `run::Options::tolerate_known_bug`).
    tolerate_known_bug: bool,
    /// Such a pass-through happened.
    known_bug_met: bool,
}

/// One token check as judged.
struct Judged<'a> {
    check: &'a TokenCheck,
    token: &'a str,
    /// A rejection the proxy may pass through: of a token rejected before any acceptance
    /// while every token was rejected (now, or earlier with no reload since).
    fresh: bool,
    /// Accepted at least once before this check.
    accepted_before: bool,
    /// Rejected as a fresh token in the wrong-data-centre state before this check.
    fresh_before: bool,
}

impl Checker {
    pub fn new(tolerate_known_bug: bool) -> Self {
        Self {
            tokens: HashMap::new(),
            order: Vec::new(),
            mints: Vec::new(),
            status: serde_json::Value::Null,
            tolerate_known_bug,
            known_bug_met: false,
        }
    }

    /// Checks the state the proxy starts in (its first token).
    pub async fn start(&mut self, world: &World, mints: &[MintRecord]) -> Result<(), Violation> {
        self.learn_mints(mints);
        self.readiness(0, world).await
    }

    /// Checks one step, from what was observed during it.
    pub async fn step(&mut self, observed: Observed<'_>, world: &World) -> Result<(), Violation> {
        let Observed {
            index,
            step,
            acted,
            checks,
            mints,
            token_requests,
            token_requests_before,
            wrong_dc,
            budget_spent,
        } = observed;
        let fail = |kind, detail: String| Violation {
            step: index,
            kind,
            detail,
        };
        // Passing Zoho's answers through when the step began: no recovery is promised
        // until a reload or an acceptance.
        let passing_through = self
            .order
            .last()
            .is_some_and(|t| self.tokens[t].fresh_rejected);
        self.learn_mints(mints);

        // 2, 3: every arrival.
        let mut judged = Vec::with_capacity(checks.len());
        for check in checks {
            let Some(raw) = check.token.as_deref() else {
                return Err(fail(Kind::UnknownToken, "a request without a token".into()));
            };
            let Some(token) = self.tokens.get_mut(raw) else {
                return Err(fail(
                    Kind::UnknownToken,
                    "a token the accounts emulator never minted".into(),
                ));
            };
            if check.at >= token.expires_at {
                return Err(fail(
                    Kind::ExpiredTokenSent,
                    format!(
                        "token #{} arrived {:?} after its expiry",
                        token.n,
                        check.at - token.expires_at
                    ),
                ));
            }
            if token.learnt_rejected {
                return Err(fail(
                    Kind::RejectedTokenResent,
                    format!(
                        "token #{} was sent again after Zoho had rejected it in an earlier step",
                        token.n
                    ),
                ));
            }
            let accepted_before = token.accepted > 0;
            let fresh = !check.accepted && ((wrong_dc && !accepted_before) || token.fresh_rejected);
            if check.accepted {
                token.accepted += 1;
            }
            judged.push(Judged {
                check,
                token: raw,
                fresh,
                accepted_before,
                fresh_before: token.ever_fresh_rejected,
            });
        }
        // 1, 4: each answer with the arrivals of its request.
        let mut replays: HashMap<&str, HashSet<&str>> = HashMap::new();
        let mut passed_through = false;
        // The arrivals whose rejection reached the client.
        let mut passed = HashSet::<usize>::new();
        // Known-bug pass-throughs taken as the proxy's behaviour.
        let mut tolerated = HashSet::<usize>::new();
        for answer in &acted.answers {
            let mine: Vec<usize> = (0..judged.len())
                .filter(|&i| judged[i].check.request_id.as_deref() == Some(answer.id.as_str()))
                .collect();
            let arrivals: Vec<&Judged<'_>> = mine.iter().map(|&i| &judged[i]).collect();
            let longest = 601 + self.mints.len() as u64;
            match self.answer(answer, &arrivals, longest, &mut passed_through) {
                None => {
                    if is_rejection(answer) {
                        passed.extend(mine.last().copied());
                    }
                }
                Some((Kind::AcceptedTokenPassedThrough | Kind::PassedThroughAfterReload, _))
                    if self.tolerate_known_bug =>
                {
                    self.known_bug_met = true;
                    tolerated.extend(mine.last().copied());
                }
                Some((kind, detail)) => {
                    return Err(fail(
                        kind,
                        format!("{} {}: {detail}", answer.method, answer.id),
                    ));
                }
            }
            if let [first, second] = arrivals[..] {
                replays.entry(first.token).or_default().insert(second.token);
            }
        }
        // Learnt at the end of the step: the proxy has seen every answer by now. A rejected
        // token is never sent again, unless its rejection was passed through as a fresh
        // token's (the proxy may send it again to learn when Zoho accepts tokens again);
        // one that was replaced, or declared dead (503), is not, however fresh.
        for (i, j) in judged.iter().enumerate() {
            let token = self.tokens.get_mut(j.token).expect("checked above");
            if j.check.accepted {
                token.fresh_rejected = false;
            } else {
                let fresh = j.fresh && passed.contains(&i) || tolerated.contains(&i);
                token.learnt_rejected |= !fresh;
                token.fresh_rejected = fresh;
                token.ever_fresh_rejected |= fresh;
            }
        }
        // A reload ends passing Zoho's answers through ("until Zoho accepts a token again:
        // the next scheduled refresh, SIGHUP, a new login").
        if matches!(step, Step::Sighup | Step::FixSecret | Step::Login { .. }) {
            for token in self.tokens.values_mut() {
                token.fresh_rejected = false;
            }
        }

        if let Some((_, tokens)) = replays.iter().find(|(_, t)| t.len() > 1) {
            return Err(fail(
                Kind::NotSingleFlight,
                format!(
                    "requests that saw one token rejected were replayed with {} different tokens",
                    tokens.len()
                ),
            ));
        }
        let rejected: HashSet<&str> = judged
            .iter()
            .filter(|j| !j.check.accepted)
            .map(|j| j.token)
            .collect();
        let allowed = match step {
            Step::Requests { .. } => 1 + rejected.len() as u64,
            // And the refresher, when the clock passed the refresh point.
            Step::InFlight { .. } => 2 + rejected.len() as u64,
            // A request, the refresher when the clock moves by Retry-After, a request.
            Step::Recover => 3 + rejected.len() as u64,
            _ => 1,
        };
        if token_requests > allowed {
            return Err(fail(
                Kind::NotSingleFlight,
                format!(
                    "{token_requests} token requests in a step with {} token(s) rejected",
                    rejected.len()
                ),
            ));
        }

        // 7. After a terminal error ("Behaviour details users rely on"): the background task
        // stops retrying on its own; a request that needs a token triggers an attempt at most
        // once every 10 s; SIGHUP makes one at once.
        if self.status["refresh_stopped"] == true {
            // The step's first token request, and the one before.
            let times = world.attempt_times();
            let first = usize::try_from(token_requests_before).unwrap_or(usize::MAX);
            let since = first
                .checked_sub(1)
                .and_then(|previous| Some(*times.get(first)? - *times.get(previous)?));
            let early = since.is_some_and(|d| d < TERMINAL_RETRY);
            let problem = match step {
                Step::Advance(_) | Step::BudgetFrees if token_requests > 0 => {
                    Some("the background task retried on its own".to_owned())
                }
                Step::Requests { .. } if token_requests > 0 && early => Some(format!(
                    "requests made a token request {since:?} after the last attempt"
                )),
                // (None when the budget is spent: the attempt is refused without asking Zoho.)
                Step::Sighup | Step::FixSecret | Step::Login { .. }
                    if token_requests > 1 || token_requests == 0 && !budget_spent =>
                {
                    Some(format!(
                        "SIGHUP made {token_requests} token request(s), not 1"
                    ))
                }
                _ => None,
            };
            if let Some(problem) = problem {
                return Err(fail(
                    Kind::TerminalRetry,
                    format!("after a terminal error: {problem}"),
                ));
            }
        }

        // 5.
        self.budget(index, world)?;

        // 6.
        self.readiness(index, world).await?;
        if passed_through {
            let (_, status) = world.readiness().await;
            if status["upstream_rejects_fresh_tokens"] != true {
                return Err(fail(
                    Kind::FreshRejectionsNotShown,
                    format!("a rejection was passed through; /status: {status}"),
                ));
            }
        }

        // 8.
        if let Some(recovery) = &acted.recovery
            && recovery.due
            && !passing_through
            && tolerated.is_empty()
        {
            let last = acted.answers.last().expect("Recover sends requests");
            if !(200..300).contains(&last.status) {
                return Err(fail(
                    Kind::NoRecovery,
                    format!(
                        "nothing stood in the way, yet the request{} got {} {}",
                        recovery.waited.map_or(String::new(), |s| format!(
                            " after the announced Retry-After ({s} s)"
                        )),
                        last.status,
                        last.body
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Whether a known-bug pass-through was taken as the proxy's behaviour.
    pub fn known_bug_met(&self) -> bool {
        self.known_bug_met
    }

    fn learn_mints(&mut self, mints: &[MintRecord]) {
        for m in mints {
            self.mints
                .push((m.refresh_token.clone(), unix_ms_of(m.wall)));
            self.order.push(m.access_token.clone());
            self.tokens.insert(
                m.access_token.clone(),
                Token {
                    n: self.order.len(),
                    minted_at: m.minted_at,
                    expires_at: m.expires_at,
                    accepted: 0,
                    learnt_rejected: false,
                    fresh_rejected: false,
                    ever_fresh_rejected: false,
                },
            );
        }
    }

    /// Judges one answer against its request's arrivals: `None` when it is allowed.
    /// `longest` is the longest `Retry-After` allowed.
    fn answer(
        &self,
        answer: &Answer,
        arrivals: &[&Judged<'_>],
        longest: u64,
        passed_through: &mut bool,
    ) -> Option<(Kind, String)> {
        let n = |j: &Judged<'_>| self.tokens[j.token].n;
        match arrivals {
            [] | [_] => {}
            [first, second] => {
                if first.check.accepted {
                    return Some((Kind::BadReplay, "replayed after Zoho accepted it".into()));
                }
                if first.token == second.token {
                    return Some((
                        Kind::BadReplay,
                        format!("replayed with token #{}, the one Zoho rejected", n(first)),
                    ));
                }
            }
            more => {
                return Some((
                    Kind::BadReplay,
                    format!("reached Zoho {} times", more.len()),
                ));
            }
        }
        match answer.status {
            200..300 => match arrivals.last() {
                Some(last) if last.check.accepted => None,
                _ => Some((Kind::BadAnswer, "a success that Zoho did not give".into())),
            },
            503 => {
                let retry_after = answer
                    .retry_after
                    .as_deref()
                    .and_then(|s| s.parse::<u64>().ok());
                if !retry_after.is_some_and(|s| (1..=longest).contains(&s))
                    || answer.content_type.as_deref() != Some("application/problem+json")
                {
                    return Some((
                        Kind::BadAnswer,
                        format!(
                            "503 with Retry-After {:?} and Content-Type {:?}: {}",
                            answer.retry_after, answer.content_type, answer.body
                        ),
                    ));
                }
                match arrivals {
                    [] => None,
                    [only] if !only.check.accepted => None,
                    _ => Some((
                        Kind::BadAnswer,
                        format!("503 after {} arrival(s) at Zoho", arrivals.len()),
                    )),
                }
            }
            400 | 401 if is_rejection(answer) => {
                let Some(last) = arrivals.last().filter(|l| !l.check.accepted) else {
                    return Some((
                        Kind::BadAnswer,
                        "a token rejection that Zoho did not give".into(),
                    ));
                };
                if last.fresh {
                    *passed_through = true;
                    return None;
                }
                let history = arrivals
                    .iter()
                    .map(|j| {
                        format!(
                            "token #{} {}",
                            n(j),
                            if j.check.accepted {
                                "accepted"
                            } else {
                                "rejected"
                            }
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(", then ");
                if last.fresh_before && !last.accepted_before {
                    Some((
                        Kind::PassedThroughAfterReload,
                        format!(
                            "Zoho's rejection of token #{}, rejected as a fresh token in the \
                             wrong-data-centre state earlier, was passed to the client after a \
                             reload ended that state ({history})",
                            n(last)
                        ),
                    ))
                } else if last.accepted_before {
                    Some((
                        Kind::AcceptedTokenPassedThrough,
                        format!(
                            "Zoho's rejection of token #{}, which Zoho had accepted before, \
                             was passed to the client ({history})",
                            n(last)
                        ),
                    ))
                } else {
                    Some((
                        Kind::ClientGotRejection,
                        format!(
                            "Zoho's rejection of token #{} was passed to the client, though it \
                             was no fresh token in the wrong-data-centre state, nor one since \
                             the last reload ({history})",
                            n(last)
                        ),
                    ))
                }
            }
            status => Some((Kind::BadAnswer, format!("{status}: {}", answer.body))),
        }
    }

    /// 5: every mint, with the mints of the same refresh token in the 10 minutes up to it,
    /// and those another process had recorded in the store by then.
    fn budget(&self, index: usize, world: &World) -> Result<(), Violation> {
        let max = u64::from(world.params.max_mints);
        for (i, (refresh, at)) in self.mints.iter().enumerate() {
            let from = at.saturating_sub(WINDOW_MS);
            let own = self
                .mints
                .iter()
                .filter(|(r, t)| r == refresh && *t > from && t <= at)
                .count();
            let others = world
                .phantoms
                .iter()
                .filter(|p| p.after_mints <= i && Some(&p.refresh_token) == refresh.as_ref())
                .filter(|p| p.at > from && p.at <= *at)
                .count();
            if (own + others) as u64 > max {
                return Err(Violation {
                    step: index,
                    kind: Kind::BudgetExceeded,
                    detail: format!(
                        "mint #{}: {own} mints and {others} recorded by another process in the \
                         10 minutes up to it; oauth.max_mints_per_10m = {max}",
                        i + 1
                    ),
                });
            }
        }
        Ok(())
    }

    /// 6: `/readyz` and `/status` against the last token minted.
    async fn readiness(&mut self, index: usize, world: &World) -> Result<(), Violation> {
        let (readyz, status) = world.readiness().await;
        self.status = status.clone();
        let fail = |detail: String| Violation {
            step: index,
            kind: Kind::Readiness,
            detail,
        };
        let ready = readyz == 200;
        if status["ready"] != ready {
            return Err(fail(format!("/readyz {readyz} but /status: {status}")));
        }
        let last = self.order.last().map(|t| &self.tokens[t]);
        let expected = match last {
            None => Some(false),
            Some(t) if t.learnt_rejected => Some(false),
            // Passing Zoho's answers through: whether that token counts as usable is the
            // proxy's call.
            Some(t) if t.fresh_rejected => None,
            Some(t) => {
                let lifetime = t.expires_at - t.minted_at;
                let margin = Duration::from_secs(world.params.margin_s).min(lifetime / 4);
                Some(t.expires_at.saturating_duration_since(Instant::now()) > margin)
            }
        };
        match expected {
            Some(expected) if expected != ready => Err(fail(format!(
                "/readyz {readyz}, but the proxy {} (token #{}); /status: {status}",
                if expected {
                    "holds a usable token"
                } else {
                    "holds no usable token"
                },
                last.map_or(0, |t| t.n),
            ))),
            _ => Ok(()),
        }
    }
}

/// Whether `answer` is Zoho's token rejection (passed through).
fn is_rejection(answer: &Answer) -> bool {
    matches!(answer.status, 400 | 401) && answer.body.contains("INVALID_OAUTHTOKEN")
}
