//! The redis token store: one access token and one mint window shared by a fleet.
//!
//! Replicas that share `token.redis_url` and `token.redis_key_prefix` keep, under that
//! prefix (`<prefix>:<name>`):
//!
//! | Key | Type | Holds |
//! | --- | --- | --- |
//! | `<prefix>:access_token` | string, expires with the token | JSON: the access token, its absolute expiry (unix ms), its lifetime, the accounts server and the `minted_by` fingerprint of the client and refresh token that minted it |
//! | `<prefix>:mints` | sorted set, expires 10 minutes after the last write | unix ms of every mint in the last 10 minutes (member and score) |
//! | `<prefix>:lease` | string with a TTL | the fencing value of the replica allowed to mint ([`TokenStore::try_lease`]) |
//! | `<prefix>:events` | pub/sub channel | the new expiry, published after each saved token |
//!
//! The refresh token and the client secret are never written: `StoredState::refresh_token`
//! is ignored by [`RedisStore::update`] and always `None` after [`RedisStore::load`]. Each
//! replica reads its refresh token from its own configuration or secret file.
//!
//! Writes go through one Lua script, so that they are atomic: a saved token never replaces
//! a stored one from the same credentials that expires later (two replicas that both minted
//! during an outage converge on the newer token), mint times are added and removed as a
//! set (concurrent writers never lose each other's mints), and the notification is
//! published in the same step. The lease is `SET NX PX` with a random fencing value and is
//! released by a compare-and-delete script, so a replica never releases a lease that expired
//! and went to another.
//!
//! Waiting for another replica's token ([`TokenStore::changed`]) listens on the events
//! channel with a dedicated pub/sub connection, resubscribing after an outage; callers poll
//! as well, so a lost notification only costs a poll interval.
//!
//! Every command has a short timeout: a replica that cannot reach redis finds out quickly
//! and falls back to what it holds in memory (see the token manager). The URL may carry a
//! user and password (redis ACLs): it is never logged, and error messages are scrubbed of
//! its credentials.

use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::{Deserialize, Serialize};
use tokio::sync::{OnceCell, watch};
use tokio::task::JoinHandle;

use super::{
    BoxFuture, Lease, SharedStore, StoreError, StoredAccessToken, StoredState, TokenStore,
};
use crate::secret::Secret;
use crate::token::governor::WINDOW;

/// Longest wait for one redis command (or connection) before the store counts as down.
pub(super) const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);

/// Writes the token (newer wins), adds and removes mint times, prunes the window, and
/// publishes a notice when the token changed. See [`RedisStore::update`] for the arguments.
const SAVE_SCRIPT: &str = r"
local changed = 0
if ARGV[4] == 'set' then
  local keep = false
  local cur = redis.call('GET', KEYS[1])
  if cur then
    local ok, t = pcall(cjson.decode, cur)
    if ok and type(t) == 'table' and t.minted_by == ARGV[7]
      and tonumber(t.expires_at) and tonumber(t.expires_at) > tonumber(ARGV[6]) then
      keep = true
    end
  end
  if not keep then
    redis.call('SET', KEYS[1], ARGV[5], 'PX', ARGV[8])
    changed = 1
  end
elseif ARGV[4] == 'del' then
  changed = redis.call('DEL', KEYS[1])
end
local adds = tonumber(ARGV[9])
for i = 10, 9 + adds do
  redis.call('ZADD', KEYS[2], ARGV[i], ARGV[i])
end
for i = 10 + adds, #ARGV do
  redis.call('ZREM', KEYS[2], ARGV[i])
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[3])
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
end
if changed == 1 then
  redis.call('PUBLISH', ARGV[1], ARGV[6])
end
return changed
";

/// Deletes the lease, or keeps it `ARGV[2]` ms longer, only if it still holds our fence.
const RELEASE_SCRIPT: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  if tonumber(ARGV[2]) > 0 then
    return redis.call('PEXPIRE', KEYS[1], ARGV[2])
  end
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// A [`TokenStore`] shared by the replicas of a fleet, as the top of
/// `src/token/store/redis.rs` describes.
pub struct RedisStore {
    client: redis::Client,
    conn: OnceCell<ConnectionManager>,
    keys: Keys,
    location: String,
    /// Credentials from the URL, removed from error messages.
    scrub: Vec<String>,
    changes: watch::Sender<u64>,
    listener: Mutex<Option<JoinHandle<()>>>,
    save: redis::Script,
    release: redis::Script,
}

struct Keys {
    token: String,
    mints: String,
    lease: String,
    events: String,
}

/// The access token as kept in redis. Unknown fields are ignored, so a newer version may add
/// some; a value that does not parse is treated as absent (and replaced by the next save).
#[derive(Serialize, Deserialize)]
struct RedisToken {
    token: String,
    expires_at: u64,
    #[serde(default)]
    lifetime_ms: Option<u64>,
    #[serde(default)]
    accounts_server: String,
    minted_by: String,
}

// === impl RedisStore ===

impl RedisStore {
    /// A store on the server at `url` (`redis://`, `rediss://` or `redis+unix://`), with every
    /// key under `prefix`. Nothing is connected until the first command.
    ///
    /// # Errors
    ///
    /// [`StoreError::Redis`] when the URL cannot be used (the message does not quote it).
    pub fn new(url: &Secret<String>, prefix: &str) -> Result<Self, StoreError> {
        let scrub = credentials_in(url.expose());
        let client = redis::Client::open(url.expose().as_str()).map_err(|e| StoreError::Redis {
            what: "use the URL",
            detail: scrubbed(&e.to_string(), &scrub),
            unreachable: false,
        })?;
        let location = describe(client.get_connection_info().addr(), prefix);
        let key = |name: &str| format!("{prefix}:{name}");
        Ok(Self {
            client,
            conn: OnceCell::new(),
            keys: Keys {
                token: key("access_token"),
                mints: key("mints"),
                lease: key("lease"),
                events: key("events"),
            },
            location,
            scrub,
            changes: watch::Sender::new(0),
            listener: Mutex::new(None),
            save: redis::Script::new(SAVE_SCRIPT),
            release: redis::Script::new(RELEASE_SCRIPT),
        })
    }

    /// The connection (created on first use; it reconnects by itself after a failure), and
    /// the listener for notifications, started with it.
    async fn conn(&self) -> Result<ConnectionManager, StoreError> {
        let conn = self
            .conn
            .get_or_try_init(|| async {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(COMMAND_TIMEOUT))
                    .set_response_timeout(Some(COMMAND_TIMEOUT))
                    .set_number_of_retries(1)
                    .set_max_delay(Duration::from_millis(500));
                ConnectionManager::new_lazy_with_config(self.client.clone(), config)
                    .map_err(|e| self.error("connect", &e))
            })
            .await?
            .clone();
        self.start_listener();
        Ok(conn)
    }

    fn start_listener(&self) {
        let mut listener = self
            .listener
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if listener.is_none() {
            *listener = Some(tokio::spawn(listen(
                self.client.clone(),
                self.keys.events.clone(),
                self.changes.clone(),
            )));
        }
    }

    /// Runs one redis call with [`COMMAND_TIMEOUT`].
    async fn run<T>(
        &self,
        what: &'static str,
        call: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(COMMAND_TIMEOUT, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(self.error(what, &e)),
            Err(_) => Err(StoreError::Redis {
                what,
                detail: format!("no answer within {}s", COMMAND_TIMEOUT.as_secs()),
                unreachable: true,
            }),
        }
    }

    fn error(&self, what: &'static str, e: &redis::RedisError) -> StoreError {
        StoreError::Redis {
            what,
            detail: scrubbed(&e.to_string(), &self.scrub),
            unreachable: e.is_io_error()
                || e.is_timeout()
                || e.is_connection_dropped()
                || e.is_connection_refusal(),
        }
    }

    /// Reads the shared state. After an outage the first command fails at once on the dead
    /// connection while the client reconnects, so a read that fails that fast is tried once
    /// more (reads are safe to repeat; writes and the lease are not).
    async fn read(&self) -> Result<StoredState, StoreError> {
        let started = tokio::time::Instant::now();
        match self.read_once().await {
            Err(e) if e.is_unreachable() && started.elapsed() < Duration::from_millis(100) => {
                self.read_once().await
            }
            result => result,
        }
    }

    async fn read_once(&self) -> Result<StoredState, StoreError> {
        let mut conn = self.conn().await?;
        let horizon = crate::token::unix_ms().saturating_sub(window_ms());
        let (token, mints): (Option<String>, Vec<String>) = self
            .run(
                "read",
                redis::pipe()
                    .cmd("GET")
                    .arg(&self.keys.token)
                    .cmd("ZRANGEBYSCORE")
                    .arg(&self.keys.mints)
                    .arg(format!("({horizon}"))
                    .arg("+inf")
                    .query_async(&mut conn),
            )
            .await?;
        let access_token = token.and_then(|text| match serde_json::from_str::<RedisToken>(&text) {
            Ok(t) => Some(StoredAccessToken {
                token: Secret::from(t.token),
                expires_at: t.expires_at,
                accounts_server: t.accounts_server,
                minted_by: t.minted_by,
                lifetime: t.lifetime_ms.map(Duration::from_millis),
            }),
            Err(_) => {
                tracing::warn!(
                    key = %self.keys.token,
                    "the shared access token in redis does not parse; ignored (the next save replaces it)"
                );
                None
            }
        });
        let mut mints: Vec<u64> = mints.iter().filter_map(|m| m.parse().ok()).collect();
        mints.sort_unstable();
        mints.dedup();
        Ok(StoredState {
            refresh_token: None,
            access_token,
            mints,
        })
    }

    /// Writes what changed between `before` and `after` with [`SAVE_SCRIPT`]:
    /// `KEYS = [token, mints]`, `ARGV = [channel, window ms, prune horizon, token op
    /// (keep|set|del), token JSON, expires_at, minted_by, PX, number of mints to add, the
    /// mints to add..., the mints to remove...]`.
    async fn write(&self, before: &StoredState, after: &StoredState) -> Result<(), StoreError> {
        let now = crate::token::unix_ms();
        let mut invocation = self.save.key(&self.keys.token);
        invocation.key(&self.keys.mints);
        invocation
            .arg(&self.keys.events)
            .arg(window_ms())
            .arg(now.saturating_sub(window_ms()));
        match (&before.access_token, &after.access_token) {
            (b, Some(a)) if b.as_ref() != Some(a) => {
                let json = serde_json::to_string(&RedisToken {
                    token: a.token.expose().clone(),
                    expires_at: a.expires_at,
                    lifetime_ms: a
                        .lifetime
                        .map(|l| u64::try_from(l.as_millis()).unwrap_or(u64::MAX)),
                    accounts_server: a.accounts_server.clone(),
                    minted_by: a.minted_by.clone(),
                })
                .map_err(|e| StoreError::Redis {
                    what: "encode the access token",
                    detail: e.to_string(),
                    unreachable: false,
                })?;
                invocation
                    .arg("set")
                    .arg(json)
                    .arg(a.expires_at)
                    .arg(&a.minted_by)
                    .arg(a.expires_at.saturating_sub(now).max(1));
            }
            (Some(_), None) => {
                invocation.arg("del").arg("").arg(0).arg("").arg(1);
            }
            _ => {
                invocation.arg("keep").arg("").arg(0).arg("").arg(1);
            }
        }
        let added: Vec<u64> = after
            .mints
            .iter()
            .copied()
            .filter(|m| !before.mints.contains(m))
            .collect();
        let removed: Vec<u64> = before
            .mints
            .iter()
            .copied()
            .filter(|m| !after.mints.contains(m))
            .collect();
        invocation.arg(added.len());
        for m in added.iter().chain(&removed) {
            invocation.arg(*m);
        }
        let mut conn = self.conn().await?;
        let _: i64 = self
            .run("write", invocation.invoke_async(&mut conn))
            .await?;
        Ok(())
    }
}

impl TokenStore for RedisStore {
    fn load(&self) -> BoxFuture<'_, Result<StoredState, StoreError>> {
        Box::pin(self.read())
    }

    fn update<'a>(
        &'a self,
        f: Box<dyn FnOnce(&mut StoredState) + Send + 'a>,
    ) -> BoxFuture<'a, Result<StoredState, StoreError>> {
        Box::pin(async move {
            let before = self.read().await?;
            let mut after = before.clone();
            f(&mut after);
            if after.refresh_token.take().is_some() {
                tracing::debug!("the redis store never keeps a refresh token; not written");
            }
            self.write(&before, &after).await?;
            Ok(after)
        })
    }

    fn describe(&self) -> String {
        self.location.clone()
    }

    fn is_persistent(&self) -> bool {
        true
    }

    fn into_shared(self: std::sync::Arc<Self>) -> Option<std::sync::Arc<dyn SharedStore>> {
        Some(self)
    }
}

impl SharedStore for RedisStore {
    fn try_lease(&self, ttl: Duration) -> BoxFuture<'_, Result<Option<Lease>, StoreError>> {
        Box::pin(async move {
            let fence = format!("{:032x}", rand::random::<u128>());
            let mut conn = self.conn().await?;
            let set: Option<String> = self
                .run(
                    "take the lease",
                    redis::cmd("SET")
                        .arg(&self.keys.lease)
                        .arg(&fence)
                        .arg("NX")
                        .arg("PX")
                        .arg(millis(ttl))
                        .query_async(&mut conn),
                )
                .await?;
            Ok(set.map(|_| Lease::new(fence)))
        })
    }

    fn release(&self, lease: Lease, linger: Duration) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            let _: i64 = self
                .run(
                    "release the lease",
                    self.release
                        .key(&self.keys.lease)
                        .arg(lease.fence())
                        .arg(millis(linger))
                        .invoke_async(&mut conn),
                )
                .await?;
            Ok(())
        })
    }

    fn change_count(&self) -> u64 {
        *self.changes.borrow()
    }

    fn changed(&self, seen: u64, timeout: Duration) -> BoxFuture<'_, ()> {
        let mut changes = self.changes.subscribe();
        Box::pin(async move {
            let _ = tokio::time::timeout(timeout, changes.wait_for(|&n| n > seen)).await;
        })
    }
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

impl Drop for RedisStore {
    fn drop(&mut self) {
        let listener = self
            .listener
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(task) = listener.take() {
            task.abort();
        }
    }
}

// === helpers ===

/// Counts notices on `channel` into `changes`, reconnecting with a backoff (at most 5 s)
/// whenever the connection fails. Each (re)subscription counts too: notices may have been
/// missed meanwhile.
async fn listen(client: redis::Client, channel: String, changes: watch::Sender<u64>) {
    let bump = || changes.send_modify(|n| *n += 1);
    let mut failures: u32 = 0;
    loop {
        let subscribed = tokio::time::timeout(COMMAND_TIMEOUT, async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(&channel).await?;
            Ok::<_, redis::RedisError>(pubsub)
        })
        .await;
        match subscribed {
            Ok(Ok(pubsub)) => {
                failures = 0;
                bump();
                let mut messages = pubsub.into_on_message();
                while messages.next().await.is_some() {
                    bump();
                }
                tracing::debug!("redis notifications ended; resubscribing");
            }
            Ok(Err(_)) | Err(_) => failures = failures.saturating_add(1),
        }
        let delay = Duration::from_millis(250)
            .saturating_mul(1 << failures.min(5))
            .min(Duration::from_secs(5));
        tokio::time::sleep(delay).await;
    }
}

/// Where the store is, for logs and `check`: the server (without credentials) and prefix.
fn describe(addr: &redis::ConnectionAddr, prefix: &str) -> String {
    let server = match addr {
        redis::ConnectionAddr::Tcp(host, port) => format!("redis://{host}:{port}"),
        redis::ConnectionAddr::TcpTls { host, port, .. } => format!("rediss://{host}:{port}"),
        redis::ConnectionAddr::Unix(path) => format!("redis+unix://{}", path.display()),
        _ => "redis".to_owned(),
    };
    format!("{server} (key prefix {prefix:?})")
}

/// The user name and password a redis URL carries (in its userinfo or, for Unix sockets, in
/// `user`/`pass` query parameters), raw and decoded, so that error messages can drop them.
fn credentials_in(url: &str) -> Vec<String> {
    let mut found = Vec::new();
    if let Ok(parsed) = url::Url::parse(url) {
        let mut push = |value: &str| {
            if !value.is_empty() {
                found.push(value.to_owned());
                if let Ok(decoded) = percent_encoding::percent_decode_str(value).decode_utf8() {
                    found.push(decoded.into_owned());
                }
            }
        };
        if let Some(password) = parsed.password() {
            push(password);
        }
        for (key, value) in parsed.query_pairs() {
            if key == "pass" || key == "password" {
                push(&value);
            }
        }
    }
    if !url.is_empty() {
        found.push(url.to_owned());
    }
    // Longest first, so that a password inside the URL is not half-replaced.
    found.sort_by_key(|s| std::cmp::Reverse(s.len()));
    found.dedup();
    found
}

fn scrubbed(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_owned();
    for secret in secrets {
        if secret.len() >= 3 {
            out = out.replace(secret.as_str(), "[redacted]");
        }
    }
    out
}

fn window_ms() -> u64 {
    u64::try_from(WINDOW.as_millis()).unwrap_or(u64::MAX)
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_found_in_every_url_form() {
        let found = credentials_in("rediss://app:s%40cret-pw@redis.internal:6380/0");
        assert!(found.contains(&"s%40cret-pw".to_owned()), "{found:?}");
        assert!(found.contains(&"s@cret-pw".to_owned()), "{found:?}");
        let found = credentials_in("redis+unix:///run/redis.sock?user=app&pass=unix-pw-123");
        assert!(found.contains(&"unix-pw-123".to_owned()), "{found:?}");
    }

    #[test]
    fn errors_and_descriptions_never_show_the_password() {
        let url = Secret::from("rediss://app:pw-SENTINEL-1@redis.internal:6380/0".to_owned());
        let store = RedisStore::new(&url, "fleet").unwrap();
        let text = format!("{} {store:?}", store.describe());
        assert!(text.contains("rediss://redis.internal:6380"), "{text}");
        assert!(text.contains("\"fleet\""), "{text}");
        assert!(!text.contains("SENTINEL"), "{text}");

        let scrub = credentials_in(url.expose());
        let message = scrubbed(
            "WRONGPASS for pw-SENTINEL-1 at rediss://app:pw-SENTINEL-1@redis.internal:6380/0",
            &scrub,
        );
        assert!(!message.contains("SENTINEL"), "{message}");
    }

    #[test]
    fn bad_urls_are_reported_without_quoting_them() {
        let url = Secret::from("redis://:pw-SENTINEL-2@[::1".to_owned());
        let err = RedisStore::new(&url, "p").unwrap_err();
        let text = format!("{err} {err:?}");
        assert!(text.contains("token.redis_url"), "{text}");
        assert!(!text.contains("SENTINEL"), "{text}");
    }

    #[test]
    fn keys_carry_the_prefix() {
        let store =
            RedisStore::new(&Secret::from("redis://127.0.0.1:1".to_owned()), "zmp-a").unwrap();
        for key in [
            &store.keys.token,
            &store.keys.mints,
            &store.keys.lease,
            &store.keys.events,
        ] {
            assert!(key.starts_with("zmp-a:"), "{key}");
        }
    }
}
