//! Zoho's data centres: where the accounts server, the Meeting API and the Webinar API live for
//! each.
//!
//! Zoho keeps every account in one data centre, and a token minted by one DC's accounts server
//! is refused by another DC's Meeting host with the same `INVALID_OAUTHTOKEN` answer as an
//! expired token. The table below is the single place that maps a DC to its hosts (see
//! <https://www.zoho.com/meeting/api-integration/multi-dc.html> and
//! <https://www.zoho.com/accounts/protocol/oauth/multi-dc.html>), and each DC's Zoho Webinar
//! host, a product of its own on its own host
//! (<https://www.zoho.com/webinar/api-integration/multi-dc-page.html>). Meeting and Webinar do
//! not live on the token response's `api_domain`, so that field is never used to pick a host.
//!
//! A crate of its own so that zoho-meeting-proxy's configuration (which re-exports it as
//! `config::DataCenter` and `config::DATA_CENTERS`) and the Zoho emulator share one table
//! without the emulator depending on the proxy.

use std::fmt;
use std::str::FromStr;

/// One of Zoho's data centres.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DataCenter {
    /// United States (`zoho.com`).
    Us,
    /// Europe (`zoho.eu`).
    Eu,
    /// India (`zoho.in`).
    In,
    /// Australia (`zoho.com.au`).
    Au,
    /// Japan (`zoho.jp`).
    Jp,
    /// Canada (`zohocloud.ca`).
    Ca,
    /// Saudi Arabia (`zoho.sa`).
    Sa,
    /// United Kingdom (`zoho.uk`; the Meeting and Webinar hosts are not documented by Zoho).
    Uk,
    /// China (`zoho.com.cn`), a separate authorization entry point.
    Cn,
}

/// Every data centre, in the order the documentation lists them.
pub const ALL: [DataCenter; 9] = [
    DataCenter::Us,
    DataCenter::Eu,
    DataCenter::In,
    DataCenter::Au,
    DataCenter::Jp,
    DataCenter::Ca,
    DataCenter::Sa,
    DataCenter::Uk,
    DataCenter::Cn,
];

// === impl DataCenter ===

impl DataCenter {
    /// The short name used in configuration and in Zoho's `location` redirect parameter.
    pub fn name(self) -> &'static str {
        match self {
            DataCenter::Us => "us",
            DataCenter::Eu => "eu",
            DataCenter::In => "in",
            DataCenter::Au => "au",
            DataCenter::Jp => "jp",
            DataCenter::Ca => "ca",
            DataCenter::Sa => "sa",
            DataCenter::Uk => "uk",
            DataCenter::Cn => "cn",
        }
    }

    /// The accounts server (OAuth endpoints), e.g. `https://accounts.zoho.eu`.
    pub fn accounts_url(self) -> &'static str {
        match self {
            DataCenter::Us => "https://accounts.zoho.com",
            DataCenter::Eu => "https://accounts.zoho.eu",
            DataCenter::In => "https://accounts.zoho.in",
            DataCenter::Au => "https://accounts.zoho.com.au",
            DataCenter::Jp => "https://accounts.zoho.jp",
            DataCenter::Ca => "https://accounts.zohocloud.ca",
            DataCenter::Sa => "https://accounts.zoho.sa",
            DataCenter::Uk => "https://accounts.zoho.uk",
            DataCenter::Cn => "https://accounts.zoho.com.cn",
        }
    }

    /// The Zoho Meeting API host, e.g. `https://meeting.zoho.eu`.
    pub fn meeting_url(self) -> &'static str {
        match self {
            DataCenter::Us => "https://meeting.zoho.com",
            DataCenter::Eu => "https://meeting.zoho.eu",
            DataCenter::In => "https://meeting.zoho.in",
            DataCenter::Au => "https://meeting.zoho.com.au",
            DataCenter::Jp => "https://meeting.zoho.jp",
            DataCenter::Ca => "https://meeting.zohocloud.ca",
            DataCenter::Sa => "https://meeting.zoho.sa",
            DataCenter::Uk => "https://meeting.zoho.uk",
            DataCenter::Cn => "https://meeting.zoho.com.cn",
        }
    }

    /// The Zoho Webinar API host, e.g. `https://webinar.zoho.eu`: Zoho Webinar's multi-DC page
    /// (<https://www.zoho.com/webinar/api-integration/multi-dc-page.html>) lists US, AU, EU,
    /// IN, CN, JP, CA (`zohocloud.ca`, as Meeting) and SA; the UK host is not listed there and
    /// follows the UK Meeting host's pattern (unconfirmed).
    pub fn webinar_url(self) -> &'static str {
        match self {
            DataCenter::Us => "https://webinar.zoho.com",
            DataCenter::Eu => "https://webinar.zoho.eu",
            DataCenter::In => "https://webinar.zoho.in",
            DataCenter::Au => "https://webinar.zoho.com.au",
            DataCenter::Jp => "https://webinar.zoho.jp",
            DataCenter::Ca => "https://webinar.zohocloud.ca",
            DataCenter::Sa => "https://webinar.zoho.sa",
            DataCenter::Uk => "https://webinar.zoho.uk",
            DataCenter::Cn => "https://webinar.zoho.com.cn",
        }
    }

    /// The data centre's API domain for Zoho's other products (CRM, Books, …), e.g.
    /// `https://www.zohoapis.eu`; Canada's is `zohoapis.ca`, not `zohocloud` (zoho-facts §3).
    pub fn zohoapis_url(self) -> &'static str {
        match self {
            DataCenter::Us => "https://www.zohoapis.com",
            DataCenter::Eu => "https://www.zohoapis.eu",
            DataCenter::In => "https://www.zohoapis.in",
            DataCenter::Au => "https://www.zohoapis.com.au",
            DataCenter::Jp => "https://www.zohoapis.jp",
            DataCenter::Ca => "https://www.zohoapis.ca",
            DataCenter::Sa => "https://www.zohoapis.sa",
            DataCenter::Uk => "https://www.zohoapis.uk",
            DataCenter::Cn => "https://www.zohoapis.com.cn",
        }
    }

    /// The data centre whose accounts server is `url` (scheme and host compared, port and a
    /// trailing slash ignored), if it is one of Zoho's.
    pub fn from_accounts_url(url: &str) -> Option<DataCenter> {
        let url = url.trim_end_matches('/');
        ALL.into_iter()
            .find(|dc| dc.accounts_url().eq_ignore_ascii_case(url))
    }

    /// The data centre whose Meeting host is `url` (an origin, as for
    /// [`from_accounts_url`](Self::from_accounts_url)), if it is one of Zoho's.
    pub fn from_meeting_url(url: &str) -> Option<DataCenter> {
        let url = url.trim_end_matches('/');
        ALL.into_iter()
            .find(|dc| dc.meeting_url().eq_ignore_ascii_case(url))
    }

    /// The data centre whose Webinar host is `url` (an origin, as for
    /// [`from_accounts_url`](Self::from_accounts_url)), if it is one of Zoho's.
    pub fn from_webinar_url(url: &str) -> Option<DataCenter> {
        let url = url.trim_end_matches('/');
        ALL.into_iter()
            .find(|dc| dc.webinar_url().eq_ignore_ascii_case(url))
    }

    /// The data centre a token answer's `api_domain` names (`https://www.zohoapis.eu`, …),
    /// if it is one of Zoho's.
    pub fn from_api_domain(url: &str) -> Option<DataCenter> {
        let url = url.trim().trim_end_matches('/');
        ALL.into_iter()
            .find(|dc| dc.zohoapis_url().eq_ignore_ascii_case(url))
    }
}

impl fmt::Display for DataCenter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for DataCenter {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        ALL.into_iter()
            .find(|dc| dc.name() == lower)
            .ok_or_else(|| {
                let names: Vec<_> = ALL.iter().map(|dc| dc.name()).collect();
                format!(
                    "unknown data centre {s:?}; expected one of {}",
                    names.join(", ")
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_dc_round_trips_and_uses_https() {
        for dc in ALL {
            assert_eq!(dc.name().parse::<DataCenter>().unwrap(), dc);
            assert!(dc.accounts_url().starts_with("https://accounts."));
            assert!(dc.meeting_url().starts_with("https://meeting."));
            assert!(dc.webinar_url().starts_with("https://webinar."));
            // Webinar sits beside Meeting in every DC: same domain, another product.
            assert_eq!(
                dc.webinar_url().strip_prefix("https://webinar."),
                dc.meeting_url().strip_prefix("https://meeting."),
            );
            assert!(dc.zohoapis_url().starts_with("https://www.zohoapis."));
            assert_eq!(DataCenter::from_accounts_url(dc.accounts_url()), Some(dc));
            assert_eq!(DataCenter::from_meeting_url(dc.meeting_url()), Some(dc));
            assert_eq!(DataCenter::from_webinar_url(dc.webinar_url()), Some(dc));
            assert_eq!(DataCenter::from_webinar_url(dc.meeting_url()), None);
            assert_eq!(DataCenter::from_meeting_url(dc.webinar_url()), None);
            assert_eq!(DataCenter::from_api_domain(dc.zohoapis_url()), Some(dc));
        }
    }

    #[test]
    fn canada_uses_zohocloud() {
        assert_eq!(
            DataCenter::Ca.accounts_url(),
            "https://accounts.zohocloud.ca"
        );
        assert_eq!(DataCenter::Ca.meeting_url(), "https://meeting.zohocloud.ca");
    }

    /// Every DC's Webinar host, as Zoho Webinar's multi-DC page lists them (UK: unlisted, by
    /// the Meeting pattern).
    #[test]
    fn webinar_hosts_per_data_centre() {
        let expected = [
            (DataCenter::Us, "https://webinar.zoho.com"),
            (DataCenter::Eu, "https://webinar.zoho.eu"),
            (DataCenter::In, "https://webinar.zoho.in"),
            (DataCenter::Au, "https://webinar.zoho.com.au"),
            (DataCenter::Jp, "https://webinar.zoho.jp"),
            (DataCenter::Ca, "https://webinar.zohocloud.ca"),
            (DataCenter::Sa, "https://webinar.zoho.sa"),
            (DataCenter::Uk, "https://webinar.zoho.uk"),
            (DataCenter::Cn, "https://webinar.zoho.com.cn"),
        ];
        assert_eq!(expected.len(), ALL.len());
        for (dc, host) in expected {
            assert_eq!(dc.webinar_url(), host, "{dc}");
            assert_eq!(DataCenter::from_webinar_url(host), Some(dc), "{dc}");
            assert_eq!(
                DataCenter::from_webinar_url(&format!("{}/", host.to_uppercase())),
                Some(dc),
                "{dc}"
            );
        }
        assert_eq!(
            DataCenter::from_webinar_url("https://webinar.zoho.ca"),
            None
        );
        assert_eq!(DataCenter::from_webinar_url("http://127.0.0.1:8080"), None);
    }

    #[test]
    fn unknown_names_and_hosts_are_refused() {
        assert!("mars".parse::<DataCenter>().unwrap_err().contains("us, eu"));
        assert_eq!("EU".parse::<DataCenter>().unwrap(), DataCenter::Eu);
        assert_eq!(
            DataCenter::from_accounts_url("https://accounts.zoho.evil"),
            None
        );
        assert_eq!(
            DataCenter::from_api_domain("https://www.zohoapis.evil"),
            None
        );
        assert_eq!(
            DataCenter::from_api_domain("https://www.zohoapis.eu/"),
            Some(DataCenter::Eu)
        );
        assert_eq!(DataCenter::from_meeting_url("http://127.0.0.1:8080"), None);
        assert_eq!(
            DataCenter::from_accounts_url("https://accounts.zoho.com/"),
            Some(DataCenter::Us)
        );
    }
}
