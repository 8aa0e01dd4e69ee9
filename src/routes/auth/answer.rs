//! How a check's outcome is said in HTTP: [`Allowed`] (the only 2xx, with the
//! identity headers) and [`Denied`] (every other answer, all ≥ 300). Must NOT
//! decide anything: `crate::access` decides, `super` picks the answer.

use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError};

use super::api_clients::{self, BadToken};
use crate::access::{Identified, SessionHot, TokenHot, Who};
use crate::error::AppError;
use crate::html;
use crate::identity_headers::{self, HeaderText};

// The header names, made once at compile time rather than checked per answer.
const USER: HeaderName = HeaderName::from_static(identity_headers::USER);
const EMAIL: HeaderName = HeaderName::from_static(identity_headers::EMAIL);
const GROUPS: HeaderName = HeaderName::from_static(identity_headers::GROUPS);
const PREFERRED_USERNAME: HeaderName =
    HeaderName::from_static(identity_headers::PREFERRED_USERNAME);
const JWT: HeaderName = HeaderName::from_static(api_clients::JWT_HEADER);

/// A 200 with the identity headers. Constructed only from an
/// [`Identified`] the policy allowed ([`Allowed::identified`]), or without
/// identity headers for a public route ([`Allowed::public`]).
pub struct Allowed {
    /// `None` for a public route: no identity at all. Checked values.
    headers: Option<[(HeaderName, HeaderValue); 4]>,
    /// `X-Auth-Request-Jwt`, with `IDENTITY_JWT_KEY`.
    jwt: Option<HeaderText>,
}

impl Allowed {
    /// The 200 for someone the policy allowed: their identity headers.
    pub(super) fn identified(identified: &Identified) -> Allowed {
        // A session's or token's values were rendered at its first check:
        // shared, not built.
        let (login, email) = match &identified.who {
            Who::User(session) => SessionHot::identity_headers(session),
            Who::Token(token) => TokenHot::identity_headers(token),
        };
        let headers = [
            (USER, login.value()),
            (EMAIL, email.value()),
            (GROUPS, identified.groups.rendered.value()),
            (PREFERRED_USERNAME, login.value()),
        ];
        Allowed {
            headers: Some(headers),
            jwt: None,
        }
    }

    /// A public route's 200: no identity headers, no signed identity.
    pub(super) fn public() -> Allowed {
        Allowed {
            headers: None,
            jwt: None,
        }
    }

    /// Adds the signed identity `X-Auth-Request-Jwt`.
    pub(super) fn with_jwt(mut self, jwt: HeaderText) -> Allowed {
        self.jwt = Some(jwt);
        self
    }
}

impl actix_web::Responder for Allowed {
    type Body = actix_web::body::BoxBody;

    fn respond_to(self, _: &HttpRequest) -> HttpResponse {
        let mut response = HttpResponse::Ok().finish();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(jwt) = self.jwt {
            headers.insert(JWT, jwt.value());
        }
        // Values checked when they were rendered: shared, neither copied nor
        // checked again.
        for (name, value) in self.headers.into_iter().flatten() {
            headers.insert(name, value);
        }
        response
    }
}

/// Every way a check ends without access.
#[derive(Debug)]
pub enum Denied {
    /// Who are you? 401, or a 302/303 to sign in.
    Unauthenticated {
        start: String,
        status: StatusCode,
        json: bool,
    },
    /// Signed in, but not allowed: 403. `reason` goes to the audit log only.
    Forbidden {
        login: String,
        sign_out: String,
        reason: &'static str,
    },
    /// Bad request or unavailable.
    Error(AppError),
    /// Any of the above with its status and headers but an empty body
    /// (`/oauth2/auth`).
    Bodiless(Box<Denied>),
    /// An `Authorization: Bearer` token that is not accepted: 401
    /// `invalid_token`, or 403 `insufficient_scope`; never a redirect.
    BadToken(BadToken),
}

impl std::fmt::Display for Denied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Denied::Unauthenticated { .. } => f.write_str("not signed in"),
            Denied::Forbidden { .. } => f.write_str("not allowed"),
            Denied::Error(e) => write!(f, "{e}"),
            Denied::Bodiless(inner) => inner.fmt(f),
            Denied::BadToken(t) => write!(f, "{}", t.error),
        }
    }
}

impl ResponseError for Denied {
    fn status_code(&self) -> StatusCode {
        match self {
            Denied::Unauthenticated { status, .. } => *status,
            Denied::Forbidden { .. } => StatusCode::FORBIDDEN,
            Denied::Error(e) => e.status_code(),
            Denied::Bodiless(inner) => inner.status_code(),
            Denied::BadToken(t) => t.status(),
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Denied::Unauthenticated {
                start,
                status,
                json,
            } => {
                let mut response = HttpResponse::build(*status);
                response
                    .insert_header((header::CACHE_CONTROL, "no-store"))
                    .insert_header((header::LOCATION, start.as_str()));
                if *status == StatusCode::UNAUTHORIZED {
                    response
                        .insert_header((header::WWW_AUTHENTICATE, "Cookie realm=\"forward-auth\""));
                }
                if *json {
                    response.json(serde_json::json!({
                        "error": "unauthenticated",
                        "message": "Sign in first.",
                        "sign_in_url": start,
                    }))
                } else {
                    response
                        .content_type("text/html; charset=utf-8")
                        .body(html::message_page(
                            "Sign in required",
                            "Sign in to continue.",
                            Some((start, "Sign in")),
                        ))
                }
            }
            Denied::Forbidden {
                login, sign_out, ..
            } => HttpResponse::Forbidden()
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .content_type("text/html; charset=utf-8")
                .body(html::message_page(
                    "Access denied",
                    &format!(
                        "You are signed in as {login}, but this account may not open this page."
                    ),
                    Some((sign_out, "Sign out and use another account")),
                )),
            Denied::Error(e) => e.error_response(),
            Denied::Bodiless(inner) => {
                let full = inner.error_response();
                let mut response = HttpResponse::new(full.status());
                for (name, value) in full.headers() {
                    if name != header::CONTENT_TYPE {
                        response.headers_mut().append(name.clone(), value.clone());
                    }
                }
                response
            }
            Denied::BadToken(t) => t.response(),
        }
    }
}
