//! Accounts: which Zoho account's token a request carries, and where its routes go.
//!
//! Every account has its own token source, its own routes (`meeting`, `webinar` and
//! `zohoapis` are its data centre's hosts) and its own metrics series; the upstream clients
//! are shared by origin ([`Upstreams`]). A request names its account with `X-Zoho-Account`
//! (removed before forwarding), or uses the account its client key is bound to, or
//! `default`. The whole table is replaced at once on reload ([`super::Proxy::set_accounts`]).

use std::sync::{Arc, OnceLock};

use http::HeaderValue;
use http::header::{Entry, HeaderMap, HeaderName};

use super::route::{Routes, Upstreams};
use crate::config::DEFAULT_ACCOUNT;
use crate::metrics::{AccountMetrics, Metrics};
use crate::token::{TokenSource, TokenStatusView};

/// The header that names the account of a request.
pub static X_ZOHO_ACCOUNT: HeaderName = HeaderName::from_static("x-zoho-account");

/// One account, as the request path sees it.
pub struct Account {
    name: String,
    /// Where its access tokens come from.
    pub(crate) tokens: Arc<dyn TokenSource>,
    /// Its token status, for `/status`, `/readyz` and the metrics.
    pub(crate) status: Arc<dyn TokenStatusView>,
    /// Its routes.
    pub(crate) routes: Routes,
    /// Its metrics series.
    pub(crate) metrics: AccountMetrics,
}

/// Every account: `default` first. Built whole, replaced whole.
pub struct Accounts {
    list: Vec<Arc<Account>>,
    /// The upstream clients of every account's routes.
    upstreams: Upstreams,
    /// The series of requests refused before an account was chosen (an unknown name, a key
    /// of another account): `account="-"`, routes as `default`'s. Made at the first such
    /// refusal, so that a proxy that never refuses one shows no such series.
    refused: OnceLock<AccountMetrics>,
    metrics: Arc<Metrics>,
}

/// What a request's `X-Zoho-Account` headers said.
#[derive(Debug)]
pub enum Named {
    /// No header.
    None,
    /// One.
    One(HeaderValue),
    /// More than one: ambiguous.
    Several,
}

/// Removes every `X-Zoho-Account` from `headers` (the header never reaches Zoho) and says
/// what they named. Without one (most requests), a lookup and nothing else.
pub fn take_header(headers: &mut HeaderMap) -> Named {
    if headers.contains_key(&X_ZOHO_ACCOUNT) {
        take_present(headers)
    } else {
        Named::None
    }
}

/// [`take_header`] when there is one: `entry` may grow the map, so only then.
#[cold]
fn take_present(headers: &mut HeaderMap) -> Named {
    match headers.entry(&X_ZOHO_ACCOUNT) {
        Entry::Vacant(_) => Named::None,
        Entry::Occupied(entry) => {
            let (_, mut values) = entry.remove_entry_mult();
            match (values.next(), values.next()) {
                (Some(value), None) => Named::One(value),
                (None, _) => Named::None,
                (Some(_), Some(_)) => Named::Several,
            }
        }
    }
}

/// Why no account could be chosen for a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Choice {
    /// The account at this index.
    Account(usize),
    /// `X-Zoho-Account` names no account (400).
    Unknown,
    /// The client key is bound to another account than the header names (403).
    Forbidden,
}

// === impl Account ===

impl Account {
    /// An account named `name`.
    pub fn new<T>(name: &str, tokens: Arc<T>, routes: Routes, metrics: AccountMetrics) -> Self
    where
        T: TokenSource + TokenStatusView + 'static,
    {
        Self {
            name: name.to_owned(),
            tokens: tokens.clone(),
            status: tokens,
            routes,
            metrics,
        }
    }

    /// Its name: `default`, or an `[[accounts]]` name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its token status.
    pub fn status(&self) -> &Arc<dyn TokenStatusView> {
        &self.status
    }
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("name", &self.name)
            .field("routes", &self.routes)
            .finish_non_exhaustive()
    }
}

// === impl Accounts ===

impl Accounts {
    /// The table of `accounts`, whose routes take their clients from `upstreams`. The
    /// account named `default` goes first. `metrics` makes the series of the requests no
    /// account was chosen for.
    pub fn new(
        mut accounts: Vec<Arc<Account>>,
        upstreams: Upstreams,
        metrics: Arc<Metrics>,
    ) -> Self {
        accounts.sort_by_key(|a| a.name != DEFAULT_ACCOUNT);
        Self {
            list: accounts,
            upstreams,
            refused: OnceLock::new(),
            metrics,
        }
    }

    /// The series a request of `choice` counts in.
    pub fn metrics(&self, choice: Choice) -> &AccountMetrics {
        match choice {
            Choice::Account(index) => &self.get(index).metrics,
            Choice::Unknown | Choice::Forbidden => self.refused(),
        }
    }

    /// The series of refused requests, made the first time.
    #[cold]
    fn refused(&self) -> &AccountMetrics {
        self.refused
            .get_or_init(|| self.metrics.account("-", &self.get(0).routes.labels()))
    }

    /// The name a request of `choice` is logged with (`-` when none was chosen).
    pub fn name(&self, choice: Choice) -> &str {
        match choice {
            Choice::Account(index) => self.get(index).name(),
            Choice::Unknown | Choice::Forbidden => "-",
        }
    }

    /// Every account, `default` first.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Account>> {
        self.list.iter()
    }

    /// The account at `index` ([`Choice::Account`]); `default` for an index out of range.
    pub fn get(&self, index: usize) -> &Account {
        self.list.get(index).unwrap_or(&self.list[0])
    }

    /// The account named `name`.
    pub fn find(&self, name: &str) -> Option<&Arc<Account>> {
        self.list.iter().find(|a| a.name == name)
    }

    /// The upstream clients.
    pub fn upstreams(&self) -> &Upstreams {
        &self.upstreams
    }

    /// The account of a request: the one `header` (`X-Zoho-Account`, taken out of the
    /// request by [`take_header`]) names, else the one its client key is bound to
    /// (`bound`), else `default`. A header naming another account than the key's is
    /// [`Choice::Forbidden`]; one naming no account, or more than one header, is
    /// [`Choice::Unknown`].
    pub fn choose(&self, header: Named, bound: Option<&str>) -> Choice {
        let header = match header {
            Named::None => None,
            Named::One(value) => Some(value),
            Named::Several => return Choice::Unknown,
        };
        let named = match header.as_ref() {
            None => match bound {
                None => return Choice::Account(0),
                Some(bound) => bound.as_bytes(),
            },
            Some(value) => {
                let value = value.as_bytes();
                if bound.is_some_and(|b| !b.as_bytes().eq_ignore_ascii_case(value)) {
                    return Choice::Forbidden;
                }
                value
            }
        };
        // Names are lower-case: `Acme` means `acme`.
        match self
            .list
            .iter()
            .position(|a| a.name.as_bytes().eq_ignore_ascii_case(named))
        {
            Some(index) => Choice::Account(index),
            None => Choice::Unknown,
        }
    }
}

impl std::fmt::Debug for Accounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.list.iter().map(|a| &a.name))
            .finish()
    }
}
