//! Accounts: which Zoho account's token a request carries, and where its routes go.
//!
//! Every account has its own token source, its own routes (`meeting`, `webinar` and
//! `zohoapis` are its data centre's hosts) and its own metrics series; the upstream clients
//! are shared by origin ([`Upstreams`]). A request names its account with `X-Zoho-Account`
//! (removed before forwarding), or uses the account its client key is bound to, or
//! `default`. The whole table is replaced at once on reload ([`super::Proxy::set_accounts`]).

use std::sync::Arc;

use http::HeaderValue;
use http::header::HeaderName;

use super::route::{Routes, Upstreams};
use crate::config::DEFAULT_ACCOUNT;
use crate::metrics::AccountMetrics;
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

    /// Its routes.
    pub fn routes(&self) -> &Routes {
        &self.routes
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
    /// account named `default` goes first.
    pub fn new(mut accounts: Vec<Arc<Account>>, upstreams: Upstreams) -> Self {
        accounts.sort_by_key(|a| a.name != DEFAULT_ACCOUNT);
        Self {
            list: accounts,
            upstreams,
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

    /// The account of a request: the one `header` (`X-Zoho-Account`) names, else the one
    /// its client key is bound to (`bound`), else `default`. A header naming another account
    /// than the key's is [`Choice::Forbidden`].
    pub fn choose(&self, header: Option<&HeaderValue>, bound: Option<&str>) -> Choice {
        let named = match header {
            None => match bound {
                None => return Choice::Account(0),
                Some(bound) => bound.as_bytes(),
            },
            Some(value) => {
                let value = value.as_bytes();
                if bound.is_some_and(|b| b.as_bytes() != value) {
                    return Choice::Forbidden;
                }
                value
            }
        };
        match self.list.iter().position(|a| a.name.as_bytes() == named) {
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
