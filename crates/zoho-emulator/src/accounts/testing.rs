//! Helpers shared by the accounts emulator's unit tests.
//!
//! Compiled only for tests (`#[cfg(test)]` here and where the parent declares it): its
//! `unwrap`s fail a test, never the proxy.
#![cfg(test)]

use std::collections::HashMap;

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, LOCATION};
use serde_json::Value;

use super::{AUTH_PATH, AccountsEmulator, AccountsOptions, TOKEN_PATH};
use crate::http::JSON_CONTENT_TYPE;
use crate::http::testing::localhost;

/// A scope the tests grant.
pub(super) const SCOPE: &str = "ZohoMeeting.meeting.READ";

pub(super) async fn start(opts: AccountsOptions) -> AccountsEmulator {
    AccountsEmulator::start(localhost(), opts).await.unwrap()
}

pub(super) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

pub(super) fn creds() -> Vec<(&'static str, String)> {
    let opts = AccountsOptions::default();
    vec![
        ("client_id", opts.client_id),
        ("client_secret", opts.client_secret),
    ]
}

/// POSTs a form to the token endpoint; returns the status and the JSON body.
pub(super) async fn post_token(
    emu: &AccountsEmulator,
    form: &[(&str, &str)],
) -> (StatusCode, Value) {
    let mut params: Vec<(&str, String)> = creds();
    params.extend(form.iter().map(|&(k, v)| (k, v.to_owned())));
    let resp = client()
        .post(format!("{}{TOKEN_PATH}", emu.url()))
        .form(&params)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    assert_eq!(resp.headers()[CONTENT_TYPE], JSON_CONTENT_TYPE);
    (status, resp.json().await.unwrap())
}

pub(super) async fn refresh(emu: &AccountsEmulator, token: &str) -> (StatusCode, Value) {
    post_token(
        emu,
        &[("grant_type", "refresh_token"), ("refresh_token", token)],
    )
    .await
}

pub(super) fn assert_token_shape(token: &str) {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "{token}");
    assert_eq!(parts[0], "1000");
    for part in &parts[1..] {
        assert_eq!(part.len(), 32);
        assert!(
            part.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
    }
}

/// Runs the consent step and returns the redirect's query pairs.
pub(super) async fn consent(
    emu: &AccountsEmulator,
    extra: &[(&str, &str)],
) -> HashMap<String, String> {
    let mut query = vec![
        ("client_id", AccountsOptions::default().client_id),
        ("response_type", "code".to_owned()),
        ("redirect_uri", "http://localhost:9/cb".to_owned()),
    ];
    query.extend(extra.iter().map(|&(k, v)| (k, v.to_owned())));
    let resp = client()
        .get(format!("{}{AUTH_PATH}", emu.url()))
        .query(&query)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FOUND);
    let location = url::Url::parse(resp.headers()[LOCATION].to_str().unwrap()).unwrap();
    location.query_pairs().into_owned().collect()
}
