//! `config::Config::from_figment` on arbitrary TOML, then `redacted()`.
//!
//! Must never panic. `*_file` keys and `ca_file` may name files; they will not exist, which
//! is just another validation error.
#![no_main]

use figment::Figment;
use figment::providers::{Format, Toml};
use libfuzzer_sys::fuzz_target;
use zoho_meeting_proxy::config::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let figment = Figment::from(Toml::string(s));
    match Config::from_figment(&figment, None) {
        Ok(config) => {
            let _ = config.redacted();
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
