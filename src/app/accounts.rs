//! The accounts of a running proxy: for each, its effective configuration, its token manager
//! and background refresher, and what the request path sees of it ([`Account`]).
//!
//! [`super::start`] starts every account of the configuration; a reload ([`super::reload`])
//! starts the accounts it adds and stops the ones it removes, then puts the new table in
//! place for the requests that start from then on ([`Proxy::set_accounts`]).

use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::Instrument as _;

use super::{Error, Tokens};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::proxy::account::{Account, Accounts};
use crate::proxy::route::{Routes, Upstreams};
use crate::proxy::{Guard, Proxy};
use crate::server;
use crate::token::{TokenManager, TokenStatusView};

/// One running account.
#[derive(Debug)]
pub struct RunningAccount {
    /// The configuration it runs with (its view of the effective configuration).
    pub config: Config,
    /// Its token manager.
    pub manager: Arc<TokenManager>,
    /// What the request path sees of it.
    account: Arc<Account>,
    stop: watch::Sender<bool>,
    refresher: JoinHandle<()>,
}

/// Every running account, `default` first, and what starting another needs.
#[derive(Debug)]
pub struct AccountSet {
    running: Vec<RunningAccount>,
    upstreams: Upstreams,
    metrics: Arc<Metrics>,
    /// The proxy's stop: every refresher stops with it.
    stopped: watch::Receiver<bool>,
}

// === impl RunningAccount ===

impl RunningAccount {
    /// Its name.
    pub fn name(&self) -> &str {
        self.account.name()
    }

    /// Stops its refresher without waiting.
    fn stop(self) {
        let _ = self.stop.send(true);
        drop(self.refresher);
    }
}

// === impl AccountSet ===

impl AccountSet {
    /// Starts the accounts of `tokens` (`default` first): routes, metrics series and
    /// background refreshers. Refreshers stop when `stopped` turns true.
    ///
    /// # Errors
    /// [`Error::Routes`] when an upstream client cannot be built.
    pub(super) fn start(
        tokens: Vec<Tokens>,
        metrics: Arc<Metrics>,
        stopped: watch::Receiver<bool>,
    ) -> Result<Self, Error> {
        let mut set = Self {
            running: Vec::with_capacity(tokens.len()),
            upstreams: Upstreams::default(),
            metrics,
            stopped,
        };
        for tokens in tokens {
            match set.launch(tokens) {
                Ok(running) => set.running.push(running),
                Err(error) => {
                    for running in set.running.drain(..) {
                        running.stop();
                    }
                    return Err(error);
                }
            }
        }
        set.publish_token_views();
        Ok(set)
    }

    /// The table the request path uses.
    pub(super) fn table(&self) -> Accounts {
        Accounts::new(
            self.running.iter().map(|r| r.account.clone()).collect(),
            self.upstreams.clone(),
            self.metrics.clone(),
        )
    }

    /// Every running account, `default` first.
    pub fn iter(&self) -> impl Iterator<Item = &RunningAccount> {
        self.running.iter()
    }

    /// Starts the accounts of `added` and stops those named in `removed`, then puts `guard`
    /// and the new table in place at once: requests that start from now on see them, and
    /// those in flight finish with the account they started with. A removed account's
    /// refresher stops; its token stays in its store for a later start.
    ///
    /// # Errors
    /// [`Error::Routes`] when an added account's upstream client cannot be built; nothing
    /// changed then.
    pub(super) fn change(
        &mut self,
        proxy: &Proxy,
        guard: Guard,
        added: Vec<Tokens>,
        removed: &[String],
    ) -> Result<(), Error> {
        let mut started = Vec::with_capacity(added.len());
        for tokens in added {
            match self.launch(tokens) {
                Ok(running) => started.push(running),
                Err(error) => {
                    for running in started {
                        running.stop();
                    }
                    return Err(error);
                }
            }
        }
        for running in started {
            tracing::info!(account = running.name(), "account added");
            self.running.push(running);
        }
        let mut kept = Vec::with_capacity(self.running.len());
        for running in self.running.drain(..) {
            if removed.iter().any(|name| name == running.name()) {
                tracing::info!(account = running.name(), "account removed");
                running.stop();
            } else {
                kept.push(running);
            }
        }
        self.running = kept;
        proxy.set_accounts(guard, self.table());
        self.publish_token_views();
        Ok(())
    }

    /// Stops every refresher and waits for them.
    pub(super) async fn finish(&mut self) {
        for running in self.running.drain(..) {
            let _ = running.stop.send(true);
            let _ = running.refresher.await;
        }
    }

    /// Starts one account: its routes, series and refresher.
    fn launch(&mut self, tokens: Tokens) -> Result<RunningAccount, Error> {
        let Tokens { config, manager } = tokens;
        let name = config.account().to_owned();
        let routes = Routes::with_upstreams(&config, &mut self.upstreams)?;
        let metrics = self.metrics.account(&name, &routes.labels());
        let account = Arc::new(Account::new(&name, manager.clone(), routes, metrics));
        let (stop, own) = watch::channel(false);
        let all = self.stopped.clone();
        let stopped = async move {
            tokio::select! {
                () = server::stopped(all) => {}
                () = server::stopped(own) => {}
            }
        };
        // Every line the refresher logs names its account.
        let span = tracing::info_span!("account", account = %name);
        let refresher = tokio::spawn(manager.clone().run(stopped).instrument(span));
        Ok(RunningAccount {
            config,
            manager,
            account,
            stop,
            refresher,
        })
    }

    fn publish_token_views(&self) {
        self.metrics.set_token_views(
            self.running
                .iter()
                .map(|r| {
                    let view: Arc<dyn TokenStatusView> = r.manager.clone();
                    (r.name().to_owned(), view)
                })
                .collect(),
        );
    }
}
