//! Every answer that is not a success, and the bodies Zoho gives them.

use hyper::{Response, StatusCode};
use serde_json::json;

use crate::sandbox::http::{Body, json, with_allow};

/// A request Zoho would refuse with `400 {"error":{"errorCode":code,"message":message}}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Invalid {
    code: &'static str,
    message: &'static str,
}

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
    /// The path names another organisation.
    OrgMismatch,
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
    code: "INVALID_JSON",
    message: "The request body is not valid JSON.",
};
pub(super) const MISSING_JSONSTRING: Invalid = Invalid {
    code: "INVALID_JSON",
    message: "The JSONString parameter is missing.",
};
pub(super) const MISSING_SESSION: Invalid = Invalid {
    code: "INVALID_INPUT",
    message: "The request body must be a JSON object holding a \"session\" (or \"webinar\") object.",
};
pub(super) const TOPIC_REQUIRED: Invalid = Invalid {
    code: "INVALID_TOPIC",
    message: "topic is required.",
};
pub(super) const INVALID_TOPIC: Invalid = Invalid {
    code: "INVALID_TOPIC",
    message: "topic must be a non-empty string of at most 200 characters.",
};
pub(super) const INVALID_AGENDA: Invalid = Invalid {
    code: "INVALID_AGENDA",
    message: "agenda must be a string of at most 5000 characters.",
};
pub(super) const INVALID_PRESENTER: Invalid = Invalid {
    code: "INVALID_PRESENTER",
    message: "presenter must be the Zoho user ID of the organization's user.",
};
pub(super) const START_TIME_REQUIRED: Invalid = Invalid {
    code: "INVALID_START_TIME",
    message: "startTime is required.",
};
pub(super) const INVALID_START_TIME: Invalid = Invalid {
    code: "INVALID_START_TIME",
    message: "startTime must look like \"Jun 19, 2030 07:00 PM\" or \"2030-06-19T19:00:00Z\".",
};
pub(super) const INVALID_DURATION: Invalid = Invalid {
    code: "INVALID_DURATION",
    message: "duration must be a whole number of milliseconds between 60000 and 86400000.",
};
pub(super) const INVALID_TIMEZONE: Invalid = Invalid {
    code: "INVALID_TIMEZONE",
    message: "timezone must be a time-zone name such as \"Asia/Kolkata\".",
};
pub(super) const INVALID_PARTICIPANTS: Invalid = Invalid {
    code: "INVALID_PARTICIPANTS",
    message: "participants must be an array of at most 500 objects, each with a valid email.",
};
pub(super) const INVALID_LISTTYPE: Invalid = Invalid {
    code: "INVALID_LISTTYPE",
    message: "listtype must be one of all, past, today and upcoming.",
};
pub(super) const INVALID_INDEX: Invalid = Invalid {
    code: "INVALID_INDEX",
    message: "index must be a positive integer.",
};
pub(super) const INVALID_COUNT: Invalid = Invalid {
    code: "INVALID_COUNT",
    message: "count must be a positive integer.",
};
pub(super) const LIMIT_EXCEEDED: Invalid = Invalid {
    code: "LIMIT_EXCEEDED",
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
            Reject::OrgMismatch => error_code(
                StatusCode::FORBIDDEN,
                1025,
                "Org doesn't matches with request uri",
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
                &json!({ "error": { "errorCode": invalid.code, "message": invalid.message } }),
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
