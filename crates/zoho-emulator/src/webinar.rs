//! An in-memory emulator of the Zoho Webinar API (`webinar.zoho.com`).
//!
//! Zoho Webinar is a product of its own, on its own host in each data centre
//! (`webinar.zoho.<tld>`, see [`zoho_data_centers::DataCenter::webinar_url`] and
//! <https://www.zoho.com/webinar/api-integration/multi-dc-page.html>), with its own scopes
//! (`ZohoWebinar.*`) but the same OAuth tokens, the same token rejection
//! (`400 {"error":{"code":2000,"message":"INVALID_OAUTHTOKEN"}}`) and the same error bodies
//! as Zoho Meeting, whose webinar pages it shares. So [`WebinarEmulator`] is the
//! [Meeting emulator](crate::meeting) started as Zoho Webinar's host, on a listener of its
//! own as in production: same token checks against an [accounts
//! emulator](crate::accounts), same [`MeetingOptions`], same [`MeetingControl`] (request and
//! token-check logs, forced rejection, latency and failures), same JSON and gzip
//! conventions; only the routes, scopes, prefixes and links differ.
//!
//! # Endpoints
//!
//! Under `/api/v2` and `/webinar/api/v2` (the registration page's request example uses the
//! second), with or without `.json`:
//!
//! | Method and path | Scope | Answer |
//! | --- | --- | --- |
//! | `GET /api/v2/user.json` | `ZohoWebinar.manageOrg.READ` | `200 {"userDetails":{..}}`, as on Meeting (the multi-DC page's example path) |
//! | `POST /api/v2/{zsoid}/webinar.json` | `ZohoWebinar.webinar.CREATE` | `201 {"session":{"webinarKey":..,..}}` |
//! | `GET /api/v2/{zsoid}/webinar.json` | `ZohoWebinar.webinar.READ` | `200 {"webinar":[..],"count":n}`; query `listtype`, `index`, `count` |
//! | `GET /api/v2/{zsoid}/webinar/{webinarKey}.json` | `ZohoWebinar.webinar.READ` | `200 {"session":{..}}` |
//! | `PUT`, `DELETE /api/v2/{zsoid}/webinar/{webinarKey}.json` | `ZohoWebinar.webinar.UPDATE`, `.DELETE` | `200 {"session":{..}}`, `204` |
//! | `POST /api/v2/{zsoid}/register/{webinarKey}.json` | `ZohoWebinar.webinar.CREATE` | `200 {"registrant":[{"joinLink","email"}],"failedCount","successCount","totalCount","registeredCount"}`; query `sendMail`, `instanceId` |
//! | `GET /api/v2/{zsoid}/register/{webinarKey}.json` | `ZohoWebinar.registration.READ` | `200 {"registrant":[..],"count":n}`; query `status`, `index` (a page number from 1), `count`, `instanceId` |
//!
//! Sources: create, get and edit take the fields Deluge's `zoho.webinar.createWebinar` and
//! `updateWebinar` send to the Webinar API (`topic`, `agenda`, `presenter`, `startTime`,
//! `duration` in milliseconds, `timezone`), with the scopes those pages name
//! (<https://www.zoho.com/deluge/help/webinar/create-webinar.html>,
//! <https://www.zoho.com/deluge/help/webinar/get-webinar-with-key.html>,
//! <https://www.zoho.com/deluge/help/webinar/update-webinar.html>); the answers are the
//! Meeting emulator's webinar answers (its module docs give their fields and validation).
//! Registration follows the "Bulk Registration API" page
//! (<https://www.zoho.com/webinar/api/webinar-api/bulk-registration.html>) and the
//! registration list Deluge's `getRegistrationDetails`
//! (<https://www.zoho.com/deluge/help/webinar/get-registration-details.html>); see
//! `meeting/registration.rs` for what the pages leave open and what the emulator answers.
//!
//! Checks come in the Meeting emulator's order: token (`400` code `2000`), path and method
//! (`404`, `405`: Meeting's sessions, participants, users, recordings and SDK paths are
//! `404` here, and the registrations are `404` on the Meeting host), scope
//! (`401 OAUTH_SCOPE_MISMATCH`; a `ZohoMeeting.*` scope does not open Webinar's endpoints),
//! organisation (`401 UNAUTHORIZED_USER`, as the registration page documents), fault
//! injection, then the endpoint (an unknown key: `400` `INVALID_MEETING_KEY`, as the
//! registration page documents; invalid input: `400` `errorCode` `4001`).

use std::fmt;
use std::net::SocketAddr;

use crate::accounts::AccountsControl;
pub use crate::meeting::{API_PREFIX, MeetingControl, MeetingOptions, WEBINAR_API_PREFIX};
use crate::meeting::{MeetingEmulator, Product};

/// A running Zoho Webinar emulator.
///
/// The server task stops on [`WebinarEmulator::shutdown`] or when the emulator is dropped.
pub struct WebinarEmulator {
    inner: MeetingEmulator,
}

// === impl WebinarEmulator ===

impl WebinarEmulator {
    /// Binds `addr` and serves Zoho Webinar's API until [`shutdown`](Self::shutdown) or
    /// drop. Access tokens are validated by `accounts`, as the Meeting emulator's are.
    ///
    /// # Errors
    ///
    /// Returns the error from binding the socket or reading its local address.
    pub async fn start(
        addr: SocketAddr,
        opts: MeetingOptions,
        accounts: AccountsControl,
    ) -> std::io::Result<Self> {
        let inner = MeetingEmulator::start_as(Product::Webinar, addr, opts, accounts).await?;
        Ok(Self { inner })
    }

    /// Returns the bound socket address.
    pub fn addr(&self) -> SocketAddr {
        self.inner.addr()
    }

    /// Returns the base URL, without a trailing slash: `http://127.0.0.1:PORT`, or
    /// `https://localhost:PORT` with TLS.
    pub fn url(&self) -> String {
        self.inner.url()
    }

    /// Returns a handle on the emulator's state (the Meeting emulator's control).
    pub fn control(&self) -> MeetingControl {
        self.inner.control()
    }

    /// Stops accepting connections, closes the open ones and waits for the server task to end.
    pub async fn shutdown(self) {
        self.inner.shutdown().await;
    }
}

impl fmt::Debug for WebinarEmulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebinarEmulator")
            .field("addr", &self.addr())
            .field("url", &self.url())
            .finish()
    }
}
