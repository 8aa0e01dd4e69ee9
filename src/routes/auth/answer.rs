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
    /// Who are you? 401, or a 302/303 to sign in at `location`
    /// (`/oauth2/start`, with `rd`).
    Unauthenticated {
        location: HeaderValue,
        status: StatusCode,
        json: bool,
    },
    /// Signed in, but not allowed: 403. `reason` goes to the audit log only.
    Forbidden {
        who: Who,
        sign_out: std::sync::Arc<str>,
        reason: &'static str,
    },
    /// Bad request or unavailable.
    Error(AppError),
    /// An `Authorization: Bearer` token that is not accepted: 401
    /// `invalid_token`, or 403 `insufficient_scope`; never a redirect.
    BadToken(BadToken),
}

/// Whether a denial carries its page or JSON (`/oauth2/forward`), or only its
/// status and headers (`/oauth2/auth`: nginx never shows a body, and one
/// costs it the keep-alive connection).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Body {
    Empty,
    Shown,
}

/// A check's answer: [`Allowed`] renders the only 2xx; a [`Denied`] renders
/// itself here rather than as an actix error, which would box it and build
/// a page that an empty answer then drops.
pub struct Answer {
    result: Result<Allowed, Denied>,
    body: Body,
}

impl Answer {
    pub(super) fn new(result: Result<Allowed, Denied>, body: Body) -> Answer {
        Answer { result, body }
    }
}

impl actix_web::Responder for Answer {
    type Body = actix_web::body::BoxBody;

    fn respond_to(self, req: &HttpRequest) -> HttpResponse {
        match self.result {
            Ok(allowed) => allowed.respond_to(req),
            Err(denied) => denied.response(self.body),
        }
    }
}

const NO_STORE: HeaderValue = HeaderValue::from_static("no-store");
const COOKIE_CHALLENGE: HeaderValue = HeaderValue::from_static("Cookie realm=\"forward-auth\"");

/// The JSON an API client gets instead of a redirect.
#[derive(serde::Serialize)]
struct SignInFirst<'a> {
    error: &'static str,
    message: &'static str,
    sign_in_url: &'a str,
}

impl Denied {
    /// Every denial's status is at least 300.
    pub fn status(&self) -> StatusCode {
        match self {
            Denied::Unauthenticated { status, .. } => *status,
            Denied::Forbidden { .. } => StatusCode::FORBIDDEN,
            Denied::Error(e) => e.status_code(),
            Denied::BadToken(t) => t.status(),
        }
    }

    fn response(self, body: Body) -> HttpResponse {
        match self {
            Denied::Unauthenticated {
                location,
                status,
                json,
            } => sign_in_first(location, status, json, body),
            Denied::Forbidden { who, sign_out, .. } => {
                let mut response = match body {
                    Body::Empty => HttpResponse::new(StatusCode::FORBIDDEN),
                    Body::Shown => HttpResponse::Forbidden()
                        .content_type("text/html; charset=utf-8")
                        .body(html::message_page(
                            "Access denied",
                            format_args!(
                                "You are signed in as {}, but this account may not open this page.",
                                who.login()
                            ),
                            Some((&sign_out, "Sign out and use another account")),
                        )),
                };
                response
                    .headers_mut()
                    .insert(header::CACHE_CONTROL, NO_STORE);
                response
            }
            Denied::Error(e) => with_body(e.error_response(), body),
            Denied::BadToken(t) => with_body(t.response(), body),
        }
    }
}

/// A 401 or a 302/303 to `location`.
fn sign_in_first(
    location: HeaderValue,
    status: StatusCode,
    json: bool,
    body: Body,
) -> HttpResponse {
    // Built from text (`super::sign_in_url`, ASCII): it reads back.
    let start = location.to_str().unwrap_or_default();
    let mut response = match (body, json) {
        (Body::Empty, _) => HttpResponse::new(status),
        (Body::Shown, true) => HttpResponse::build(status).json(SignInFirst {
            error: "unauthenticated",
            message: "Sign in first.",
            sign_in_url: start,
        }),
        (Body::Shown, false) => HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .body(html::message_page(
                "Sign in required",
                "Sign in to continue.",
                Some((start, "Sign in")),
            )),
    };
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, NO_STORE);
    headers.insert(header::LOCATION, location);
    if status == StatusCode::UNAUTHORIZED {
        headers.insert(header::WWW_AUTHENTICATE, COOKIE_CHALLENGE);
    }
    response
}

/// A rare denial's answer (a failure, a refused token) as it is, or with its
/// status and headers only.
fn with_body(full: HttpResponse, body: Body) -> HttpResponse {
    if body == Body::Shown {
        return full;
    }
    let mut response = HttpResponse::new(full.status());
    for (name, value) in full.headers() {
        if name != header::CONTENT_TYPE {
            response.headers_mut().append(name.clone(), value.clone());
        }
    }
    response
}
