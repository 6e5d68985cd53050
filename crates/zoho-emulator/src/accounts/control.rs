//! [`AccountsControl`]: the in-process handle that drives and inspects a running accounts
//! emulator (grant codes, refresh tokens, console revocations, outages, queued failures, the
//! request and revocation logs, and access-token validation for the other emulators).

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use sha2::{Digest, Sha256};

use super::{
    AccessTokenInfo, Failure, GrantCode, MintRecord, RefreshToken, Shared, TokenRequestRecord,
    new_token, owned_scopes,
};

/// A handle that drives and inspects a running [`AccountsEmulator`](super::AccountsEmulator).
///
/// Cloning is cheap: all clones share the emulator's state.
#[derive(Clone)]
pub struct AccountsControl {
    shared: Arc<Shared>,
}

// === impl AccountsControl ===

impl AccountsControl {
    /// A handle on `shared`.
    pub(super) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    /// The emulator's shared state.
    pub(super) fn shared(&self) -> &Shared {
        &self.shared
    }

    /// Issues a Self Client grant code for `scopes`.
    ///
    /// The code is single-use, valid for
    /// [`AccountsOptions::grant_code_lifetime`](super::AccountsOptions::grant_code_lifetime),
    /// needs no `redirect_uri`, and its exchange returns a refresh token.
    pub fn issue_grant_code(&self, scopes: &[&str]) -> String {
        let now = Instant::now();
        let code = new_token();
        let mut state = self.shared.lock();
        state.grant_codes.retain(|_, c| c.expires_at > now);
        state.grant_codes.insert(
            code.clone(),
            GrantCode {
                scopes: owned_scopes(scopes),
                redirect_uri: None,
                offline: true,
                expires_at: now + self.shared.grant_code_lifetime,
            },
        );
        code
    }

    /// Registers a new refresh token for `scopes`, as if a grant code had been exchanged.
    pub fn issue_refresh_token(&self, scopes: &[&str]) -> String {
        let token = new_token();
        self.shared.lock().refresh_tokens.insert(
            token.clone(),
            RefreshToken {
                scopes: owned_scopes(scopes),
                mints: VecDeque::new(),
            },
        );
        token
    }

    /// Registers `token` as a refresh token for `scopes` (one the caller chose, e.g. from a
    /// secret file shared with the proxy), as if a grant code had been exchanged.
    pub fn register_refresh_token(&self, token: &str, scopes: &[&str]) {
        self.shared.lock().refresh_tokens.insert(
            token.to_owned(),
            RefreshToken {
                scopes: owned_scopes(scopes),
                mints: VecDeque::new(),
            },
        );
    }

    /// Revokes a refresh token and every access token minted from it, as if revoked in
    /// Zoho's console. Returns whether the token was live.
    pub fn revoke_refresh_token(&self, token: &str) -> bool {
        self.shared.lock().revoke_refresh_token(token)
    }

    /// Returns how many access tokens were minted, by either grant.
    pub fn mint_count(&self) -> u64 {
        self.shared.lock().mint_count
    }

    /// Returns how many `POST`s the token endpoint received, successful or not.
    pub fn token_requests(&self) -> u64 {
        self.shared.lock().token_requests
    }

    /// Starts (`Some(status)`) or ends (`None`) an outage of the token endpoint.
    ///
    /// During an outage every token request is answered with `status` and an HTML body, as a
    /// load balancer would; pending [`fail_next`](Self::fail_next) failures are kept for
    /// later. A value that is not a valid HTTP status code is served as `503`.
    pub fn set_outage(&self, status: Option<u16>) {
        self.shared.lock().outage = status;
    }

    /// Starts (`Some(status)`) or ends (`None`) an outage of the revocation endpoint
    /// (`POST /oauth/v2/token/revoke`), independent of [`set_outage`](Self::set_outage).
    ///
    /// During it every revocation request is answered with `status` and an HTML body, and
    /// nothing is revoked. A value that is not a valid HTTP status code is served as `503`.
    pub fn set_revoke_outage(&self, status: Option<u16>) {
        self.shared.lock().revoke_outage = status;
    }

    /// Returns the tokens (refresh or access) that the revocation endpoint revoked, oldest
    /// first (at most [`REQUEST_LOG_CAPACITY`](super::REQUEST_LOG_CAPACITY) entries).
    ///
    /// Only revocations that succeeded are listed: not unknown tokens, not requests refused
    /// during a [`set_revoke_outage`](Self::set_revoke_outage), and not
    /// [`revoke_refresh_token`](Self::revoke_refresh_token), which stands for Zoho's console.
    /// The log is the emulator's own state and holds tokens in clear, for tests.
    pub fn revocations(&self) -> Vec<String> {
        self.shared.lock().revocations.iter().cloned().collect()
    }

    /// Makes the next `n` token requests fail as `failure` says.
    ///
    /// The failing requests still count in [`token_requests`](Self::token_requests) and the
    /// request log. Calls queue up: `fail_next(1, Throttle)` then `fail_next(2, ServerError)`
    /// fails the next three requests in that order. See also
    /// [`clear_failures`](Self::clear_failures).
    pub fn fail_next(&self, n: u32, failure: Failure) {
        if n > 0 {
            self.shared.lock().pending_failures.push_back((n, failure));
        }
    }

    /// Drops every failure queued by [`fail_next`](Self::fail_next).
    pub fn clear_failures(&self) {
        self.shared.lock().pending_failures.clear();
    }

    /// Makes token answers leave `delay` after the request was decided: the token is minted
    /// (and counted) at once, as Zoho does, and a client that gives up before the answer
    /// arrives has spent it. `Duration::ZERO` (the default) answers at once.
    pub fn set_answer_delay(&self, delay: Duration) {
        self.shared.lock().answer_delay = delay;
    }

    /// Sets the lifetime of access tokens minted from now on.
    pub fn set_token_lifetime(&self, d: Duration) {
        self.shared.lock().token_lifetime = d;
    }

    /// Returns what is known about `token` while it is issued, unexpired and not revoked.
    pub fn validate_access_token(&self, token: &str) -> Option<AccessTokenInfo> {
        let now = Instant::now();
        let state = self.shared.lock();
        let access = state.access_tokens.get(token)?;
        let expires_in = access.expires_at.checked_duration_since(now)?;
        if expires_in.is_zero() {
            return None;
        }
        Some(AccessTokenInfo {
            scopes: access.scopes.clone(),
            expires_in,
        })
    }

    /// Returns the log of token-endpoint requests, oldest first (at most
    /// [`REQUEST_LOG_CAPACITY`](super::REQUEST_LOG_CAPACITY) entries).
    pub fn requests(&self) -> Vec<TokenRequestRecord> {
        self.shared.lock().requests.iter().cloned().collect()
    }

    /// Returns the emulator's base URL, as
    /// [`AccountsEmulator::url`](super::AccountsEmulator::url) does.
    pub fn url(&self) -> String {
        self.shared.url.clone()
    }

    /// Changes the registered client's secret, as rotating it in Zoho's API console does:
    /// from now on token requests with any other secret are answered `invalid_client`.
    /// Tokens already minted stay valid.
    pub fn set_client_secret(&self, secret: &str) {
        self.shared.lock().client_secret_digest = Sha256::digest(secret.as_bytes()).into();
    }

    /// Revokes one access token, as Zoho does when it invalidates a token early (the 16th
    /// live token pushes out the oldest, say). Its refresh token stays valid. Returns whether
    /// the token was live. Not listed by [`revocations`](Self::revocations).
    pub fn revoke_access_token(&self, token: &str) -> bool {
        self.shared.lock().access_tokens.remove(token).is_some()
    }

    /// Revokes every access token, keeping the refresh tokens (a password change that
    /// "terminates all sessions", say). Returns how many were live, expired ones included.
    pub fn revoke_access_tokens(&self) -> usize {
        let mut state = self.shared.lock();
        let n = state.access_tokens.len();
        state.access_tokens.clear();
        n
    }

    /// Starts (`Some(status)`) or ends (`None`) throttling: while on, every token request is
    /// answered with Zoho's throttle body (`"error":"Access Denied"`, see the
    /// [module docs](super)) with HTTP `status`: Zoho documents 200, others have seen 400. A
    /// value that is not a valid HTTP status code is served as `200`.
    ///
    /// An [outage](Self::set_outage) answers first; pending [`fail_next`](Self::fail_next)
    /// failures are kept for later. Requests still count in
    /// [`token_requests`](Self::token_requests).
    pub fn set_throttling(&self, status: Option<u16>) {
        self.shared.lock().throttling = status;
    }

    /// Returns the access tokens minted, by either grant, oldest first (at most
    /// [`REQUEST_LOG_CAPACITY`](super::REQUEST_LOG_CAPACITY) entries), with the refresh
    /// token each came from and when it was minted and expires. The log holds tokens in
    /// clear, for tests.
    pub fn mints(&self) -> Vec<MintRecord> {
        self.shared.lock().mint_log.iter().cloned().collect()
    }
}

impl fmt::Debug for AccountsControl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccountsControl")
            .field("url", &self.shared.url)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::token::throttle_body;
    use super::super::*;

    use reqwest::header::CONTENT_TYPE;

    #[tokio::test]
    async fn expired_access_token_does_not_validate() {
        let emu = start(AccountsOptions {
            token_lifetime: Duration::ZERO,
            ..AccountsOptions::default()
        })
        .await;
        let token = emu.control().issue_refresh_token(&[SCOPE]);
        let (_, body) = refresh(&emu, &token).await;
        assert_eq!(body["expires_in"], 0);
        let access = body["access_token"].as_str().unwrap();
        assert_eq!(emu.control().validate_access_token(access), None);
        assert_eq!(emu.control().validate_access_token("1000.nope.nope"), None);
    }

    #[tokio::test]
    async fn outage_answers_html_with_the_chosen_status() {
        let emu = start(AccountsOptions::default()).await;
        let control = emu.control();
        let token = control.issue_refresh_token(&[SCOPE]);
        control.set_outage(Some(503));
        let resp = client()
            .post(format!("{}{TOKEN_PATH}", emu.url()))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", token.as_str()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(resp.headers()[CONTENT_TYPE], HTML_CONTENT_TYPE);
        assert!(resp.text().await.unwrap().contains("<html>"));
        control.set_outage(Some(9999));
        let resp = client()
            .post(format!("{}{TOKEN_PATH}", emu.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        control.set_outage(None);
        let (_, body) = refresh(&emu, &token).await;
        assert!(body["access_token"].is_string());
        assert_eq!(control.token_requests(), 3);
        assert_eq!(control.requests().len(), 3);
        assert_eq!(control.mint_count(), 1);
    }

    #[tokio::test]
    async fn fail_next_fails_that_many_requests_in_order() {
        let emu = start(AccountsOptions::default()).await;
        let control = emu.control();
        let token = control.issue_refresh_token(&[SCOPE]);
        control.fail_next(1, Failure::Throttle);
        control.fail_next(2, Failure::ServerError);
        control.fail_next(1, Failure::InvalidClient);
        control.fail_next(1, Failure::InvalidCode);
        control.fail_next(0, Failure::InvalidCode);

        let (status, body) = refresh(&emu, &token).await;
        assert_eq!((status, body), (StatusCode::OK, throttle_body()));
        for _ in 0..2 {
            let resp = client()
                .post(format!("{}{TOKEN_PATH}", emu.url()))
                .form(&[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", token.as_str()),
                ])
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
            assert_eq!(resp.headers()[CONTENT_TYPE], HTML_CONTENT_TYPE);
        }
        let (_, body) = refresh(&emu, &token).await;
        assert_eq!(body, serde_json::json!({ "error": "invalid_client" }));
        let (_, body) = refresh(&emu, &token).await;
        assert_eq!(body, serde_json::json!({ "error": "invalid_code" }));
        let (_, body) = refresh(&emu, &token).await;
        assert!(body["access_token"].is_string());
        assert_eq!(control.token_requests(), 6);
        assert_eq!(control.mint_count(), 1);

        control.fail_next(5, Failure::Throttle);
        control.clear_failures();
        let (_, body) = refresh(&emu, &token).await;
        assert!(body["access_token"].is_string());
    }

    #[tokio::test]
    async fn a_rotated_client_secret_refuses_the_old_one() {
        let emu = start(AccountsOptions::default()).await;
        let control = emu.control();
        let token = control.issue_refresh_token(&[SCOPE]);
        let (_, before) = refresh(&emu, &token).await;
        let minted = before["access_token"].as_str().unwrap().to_owned();
        control.set_client_secret("rotated");
        let (status, body) = refresh(&emu, &token).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, serde_json::json!({ "error": "invalid_client" }));
        // Tokens minted before stay valid.
        assert!(control.validate_access_token(&minted).is_some());
        let (_, body) = post_token(
            &emu,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &token),
                ("client_secret", "rotated"),
            ],
        )
        .await;
        assert!(body["access_token"].is_string(), "{body}");
        // Back to the original: the default secret works again.
        control.set_client_secret(&AccountsOptions::default().client_secret);
        let (_, body) = refresh(&emu, &token).await;
        assert!(body["access_token"].is_string(), "{body}");
    }

    #[tokio::test]
    async fn access_tokens_can_be_revoked_one_or_all_keeping_the_refresh_token() {
        let emu = start(AccountsOptions::default()).await;
        let control = emu.control();
        let token = control.issue_refresh_token(&[SCOPE]);
        let mut minted = Vec::new();
        for _ in 0..3 {
            let (_, body) = refresh(&emu, &token).await;
            minted.push(body["access_token"].as_str().unwrap().to_owned());
        }
        assert!(control.revoke_access_token(&minted[0]));
        assert!(!control.revoke_access_token(&minted[0]), "already gone");
        assert!(control.validate_access_token(&minted[0]).is_none());
        assert!(control.validate_access_token(&minted[1]).is_some());
        assert_eq!(control.revoke_access_tokens(), 2);
        assert!(
            minted
                .iter()
                .all(|t| control.validate_access_token(t).is_none())
        );
        assert_eq!(control.revoke_access_tokens(), 0);
        // The refresh token still mints; console revocations are not in the revocation log.
        let (_, body) = refresh(&emu, &token).await;
        assert!(body["access_token"].is_string());
        assert!(control.revocations().is_empty());
    }

    #[tokio::test]
    async fn throttling_answers_access_denied_with_the_chosen_status_until_ended() {
        let emu = start(AccountsOptions::default()).await;
        let control = emu.control();
        let token = control.issue_refresh_token(&[SCOPE]);
        control.fail_next(1, Failure::ServerError);
        control.set_throttling(Some(400));
        assert_eq!(
            refresh(&emu, &token).await,
            (StatusCode::BAD_REQUEST, throttle_body())
        );
        control.set_throttling(Some(200));
        assert_eq!(
            refresh(&emu, &token).await,
            (StatusCode::OK, throttle_body())
        );
        control.set_throttling(Some(1));
        assert_eq!(
            refresh(&emu, &token).await,
            (StatusCode::OK, throttle_body())
        );
        // An outage answers first.
        control.set_outage(Some(503));
        let resp = client()
            .post(format!("{}{TOKEN_PATH}", emu.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        control.set_outage(None);
        control.set_throttling(None);
        // The queued failure was kept for later.
        let resp = client()
            .post(format!("{}{TOKEN_PATH}", emu.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let (_, body) = refresh(&emu, &token).await;
        assert!(body["access_token"].is_string());
        assert_eq!(control.mint_count(), 1);
        assert_eq!(control.token_requests(), 6);
    }

    #[tokio::test]
    async fn the_mint_log_lists_every_minted_token_with_its_refresh_token_and_expiry() {
        let emu = start(AccountsOptions {
            token_lifetime: Duration::from_secs(60),
            ..AccountsOptions::default()
        })
        .await;
        let control = emu.control();
        let code = control.issue_grant_code(&[SCOPE]);
        let (_, exchanged) = post_token(
            &emu,
            &[("grant_type", "authorization_code"), ("code", &code)],
        )
        .await;
        let refresh_token = exchanged["refresh_token"].as_str().unwrap().to_owned();
        control.set_token_lifetime(Duration::from_secs(30));
        let (_, refreshed) = refresh(&emu, &refresh_token).await;
        control.fail_next(1, Failure::Throttle);
        refresh(&emu, &refresh_token).await;

        let log = control.mints();
        assert_eq!(log.len(), 2, "failures mint nothing");
        assert_eq!(
            log[0].access_token,
            exchanged["access_token"].as_str().unwrap()
        );
        assert_eq!(
            log[1].access_token,
            refreshed["access_token"].as_str().unwrap()
        );
        for (record, lifetime) in log.iter().zip([60, 30]) {
            assert_eq!(
                record.refresh_token.as_deref(),
                Some(refresh_token.as_str())
            );
            assert_eq!(
                record.expires_at - record.minted_at,
                Duration::from_secs(lifetime)
            );
        }
        assert!(log[0].wall <= log[1].wall);
        let debug = format!("{log:?}");
        assert!(!debug.contains(&refresh_token), "{debug}");
        assert!(!debug.contains(&log[0].access_token), "{debug}");
    }
}
