//! Every answer that is not a success, and the bodies Zoho gives them.

use hyper::{Response, StatusCode};
use serde_json::json;

use crate::http::{Body, json, with_allow};

/// A body or query the emulator refuses with
/// `400 {"error":{"errorCode":4001,"key":key,"message":message}}`.
///
/// Zoho documents no validation errors for these endpoints; the body takes the shape of the
/// one it does document for the same status (`INVALID_MEETING_KEY`: a numeric `errorCode`, a
/// `key` and a `message`), so that clients parse both alike. [`INVALID_INPUT_CODE`] is the
/// emulator's own number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Invalid {
    key: &'static str,
    message: &'static str,
}

/// The `errorCode` of every [`Invalid`] answer (the emulator's own; Zoho's is undocumented).
pub(super) const INVALID_INPUT_CODE: u16 = 4001;

/// Every answer that is not a success, mapped to its response in one place.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Reject {
    /// The token is missing, unknown, expired or revoked, or rejection was forced.
    InvalidToken,
    /// The token lacks the endpoint's scope.
    ScopeMismatch,
    /// No such endpoint.
    NotFound,
    /// The endpoint exists but not with this method; carries the `Allow` value.
    MethodNotAllowed(&'static str),
    /// The path names another organisation, on an endpoint whose page documents
    /// `403 {"error":{"code":1025,..},"resourceType":..}` (the user pages); carries the
    /// `resourceType`.
    OrgMismatch { resource_type: String },
    /// The path names another organisation, on an endpoint whose page documents
    /// `401 {"error":{"errorCode":3001,..,"key":"UNAUTHORIZED_USER"}}` (the meeting pages).
    /// Not a token problem: a proxy must pass it through.
    UnauthorizedUser,
    /// No meeting or webinar has this key.
    UnknownKey,
    /// The body or query is invalid.
    Invalid(Invalid),
    /// The body is over [`MAX_BODY_BYTES`](super::MAX_BODY_BYTES).
    TooLarge,
    /// The body could not be read.
    BadBody,
    /// Fault injection.
    ServerError,
}

pub(super) const MALFORMED_JSON: Invalid = Invalid {
    key: "INVALID_JSON",
    message: "The request body is not valid JSON.",
};
pub(super) const MISSING_JSONSTRING: Invalid = Invalid {
    key: "INVALID_JSON",
    message: "The JSONString parameter is missing.",
};
pub(super) const MISSING_SESSION: Invalid = Invalid {
    key: "INVALID_INPUT",
    message: "The request body must be a JSON object holding a \"session\" (or \"webinar\") object.",
};
pub(super) const TOPIC_REQUIRED: Invalid = Invalid {
    key: "INVALID_TOPIC",
    message: "topic is required.",
};
pub(super) const INVALID_TOPIC: Invalid = Invalid {
    key: "INVALID_TOPIC",
    message: "topic must be a non-empty string of at most 200 characters.",
};
pub(super) const INVALID_AGENDA: Invalid = Invalid {
    key: "INVALID_AGENDA",
    message: "agenda must be a string of at most 5000 characters.",
};
pub(super) const INVALID_PRESENTER: Invalid = Invalid {
    key: "INVALID_PRESENTER",
    message: "presenter must be the Zoho user ID of the organization's user.",
};
pub(super) const START_TIME_REQUIRED: Invalid = Invalid {
    key: "INVALID_START_TIME",
    message: "startTime is required.",
};
pub(super) const INVALID_START_TIME: Invalid = Invalid {
    key: "INVALID_START_TIME",
    message: "startTime must look like \"Jun 19, 2030 07:00 PM\" or \"2030-06-19T19:00:00Z\".",
};
pub(super) const INVALID_DURATION: Invalid = Invalid {
    key: "INVALID_DURATION",
    message: "duration must be a whole number of milliseconds between 60000 and 86400000.",
};
pub(super) const INVALID_TIMEZONE: Invalid = Invalid {
    key: "INVALID_TIMEZONE",
    message: "timezone must be a time-zone name of the IANA database, such as \"Asia/Calcutta\".",
};
pub(super) const INVALID_PARTICIPANTS: Invalid = Invalid {
    key: "INVALID_PARTICIPANTS",
    message: "participants must be an array of at most 500 objects, each with a valid email.",
};
pub(super) const INVALID_LISTTYPE: Invalid = Invalid {
    key: "INVALID_LISTTYPE",
    message: "listtype must be one of all, past, today and upcoming.",
};
pub(super) const INVALID_INDEX: Invalid = Invalid {
    key: "INVALID_INDEX",
    message: "index must be a whole number (0 or more).",
};
pub(super) const INVALID_COUNT: Invalid = Invalid {
    key: "INVALID_COUNT",
    message: "count must be a positive integer.",
};
/// A user id that is neither the user's `userId` nor their `zuid`. The user pages document
/// no answer for it.
pub(super) const UNKNOWN_USER: Invalid = Invalid {
    key: "INVALID_USER",
    message: "No user of this organization has this user id.",
};
pub(super) const INVALID_CONFERENCE_TYPE: Invalid = Invalid {
    key: "INVALID_CONFERENCE_TYPE",
    message: "conferenceType must be audio or video.",
};
pub(super) const MISSING_REGISTRANT: Invalid = Invalid {
    key: "INVALID_INPUT",
    message: "The request body must be a JSON object holding a \"registrant\" array of 1 to 100 objects.",
};
pub(super) const INVALID_REGISTRANT: Invalid = Invalid {
    key: "INVALID_REGISTRANT",
    message: "Each registrant needs a valid email and a firstName (a non-empty string of at most 100 characters); lastName, when given, is a string of at most 100 characters.",
};
pub(super) const INVALID_SEND_MAIL: Invalid = Invalid {
    key: "INVALID_SEND_MAIL",
    message: "sendMail must be true or false.",
};
pub(super) const INVALID_INSTANCE_ID: Invalid = Invalid {
    key: "INVALID_INSTANCE_ID",
    message: "instanceId must be a whole number.",
};
pub(super) const INVALID_STATUS: Invalid = Invalid {
    key: "INVALID_STATUS",
    message: "status must be 0, 1, 2 or 3.",
};
pub(super) const REGISTRANT_LIMIT: Invalid = Invalid {
    key: "LIMIT_EXCEEDED",
    message: "The sandbox holds at most 1000 registrants per webinar.",
};
pub(super) const LIMIT_EXCEEDED: Invalid = Invalid {
    key: "LIMIT_EXCEEDED",
    message: "The sandbox holds at most 10000 meetings and webinars; delete some first.",
};

// === impl Reject ===

impl Reject {
    /// Renders the answer, as Zoho would.
    pub(super) fn into_response(self) -> Response<Body> {
        match self {
            Reject::InvalidToken => json(
                StatusCode::BAD_REQUEST,
                &json!({ "error": { "code": 2000, "message": "INVALID_OAUTHTOKEN" } }),
            ),
            Reject::ScopeMismatch => json(
                StatusCode::UNAUTHORIZED,
                &json!({
                    "code": "OAUTH_SCOPE_MISMATCH",
                    "message": "invalid oauth scope to access this URL",
                    "status": "error",
                }),
            ),
            Reject::NotFound => error_code(StatusCode::NOT_FOUND, 404, "Not found"),
            Reject::MethodNotAllowed(allow) => with_allow(
                error_code(StatusCode::METHOD_NOT_ALLOWED, 405, "Method not allowed"),
                allow,
            ),
            Reject::OrgMismatch { resource_type } => json(
                StatusCode::FORBIDDEN,
                &json!({
                    "error": { "code": 1025, "message": "Org doesn't matches with request uri" },
                    "resourceType": resource_type,
                }),
            ),
            Reject::UnauthorizedUser => json(
                StatusCode::UNAUTHORIZED,
                &json!({
                    "error": {
                        "errorCode": 3001,
                        "message": "You do not have permission to access this organization account.",
                        "key": "UNAUTHORIZED_USER",
                    }
                }),
            ),
            Reject::UnknownKey => json(
                StatusCode::BAD_REQUEST,
                &json!({
                    "error": {
                        "errorCode": 4000,
                        "key": "INVALID_MEETING_KEY",
                        "message": "The meeting key is invalid.",
                    }
                }),
            ),
            Reject::Invalid(invalid) => json(
                StatusCode::BAD_REQUEST,
                &json!({ "error": {
                    "errorCode": INVALID_INPUT_CODE,
                    "key": invalid.key,
                    "message": invalid.message,
                } }),
            ),
            Reject::TooLarge => error_code(
                StatusCode::PAYLOAD_TOO_LARGE,
                413,
                "Request entity too large",
            ),
            Reject::BadBody => error_code(StatusCode::BAD_REQUEST, 400, "Bad request"),
            Reject::ServerError => error_code(
                StatusCode::INTERNAL_SERVER_ERROR,
                500,
                "Internal server error",
            ),
        }
    }
}

impl From<Invalid> for Reject {
    fn from(invalid: Invalid) -> Self {
        Reject::Invalid(invalid)
    }
}

/// `{"error":{"code":code,"message":message}}`.
pub(super) fn error_code(status: StatusCode, code: u16, message: &'static str) -> Response<Body> {
    json(
        status,
        &json!({ "error": { "code": code, "message": message } }),
    )
}
