//! `/oauth2/auth` (nginx `auth_request`) and `/oauth2/forward` (Traefik
//! `forwardAuth`, Caddy `forward_auth`): "may this browser see this URL?".
//! Only [`Allowed`] renders a 2xx, and only [`permit`] makes one, from a policy
//! `Allow`; every other outcome is a [`Denied`], whose statuses are all ≥ 300.
//! Whether a signed-in user may pass never depends on the forwarded URL, so it
//! is read (and a malformed one refused) only to send a stranger to sign in.

use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};

use crate::error::AppError;
use crate::forwarded::{original_request_preferring, OriginalRequest, Prefer};
use crate::groups::{GroupsError, UserGroups};
use crate::metrics::observed::{self, Endpoint, Outcome};
use crate::policy::{decide, AllowLists, Decision, Subject};
use crate::redirect::shortened;
use crate::routes::AppState;
use crate::session::Session;
use crate::{html, identity_headers, metrics};

mod api_clients;

/// Which endpoint is asking: they differ only in how "who are you?" is said.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// nginx: 401 + `Location`, never a 3xx.
    Nginx,
    /// Traefik, Caddy: a redirect for browser navigations, 401 JSON for APIs.
    Forward,
}

pub async fn auth(req: HttpRequest, state: web::Data<AppState>) -> Result<Allowed, Denied> {
    let started = std::time::Instant::now();
    let answer = check(&req, &state, Mode::Nginx).await;
    observe(Endpoint::Auth, &answer, started);
    audit_denied(&req, &state, Mode::Nginx, &answer);
    // nginx never shows these bodies, and a body costs it the keep-alive connection.
    answer.map_err(|denied| Denied::Bodiless(Box::new(denied)))
}

pub async fn forward(req: HttpRequest, state: web::Data<AppState>) -> Result<Allowed, Denied> {
    let started = std::time::Instant::now();
    let answer = check(&req, &state, Mode::Forward).await;
    observe(Endpoint::Forward, &answer, started);
    audit_denied(&req, &state, Mode::Forward, &answer);
    answer
}

/// A 403 to a signed-in user or client: who, where and why, for the audit log.
fn audit_denied(req: &HttpRequest, state: &AppState, mode: Mode, answer: &Result<Allowed, Denied>) {
    let Err(Denied::Forbidden { login, reason, .. }) = answer else {
        return;
    };
    let original = read_original(req, state, mode).ok();
    let url = original.as_ref().and_then(|o| o.url.as_ref());
    crate::audit::Audit {
        event: "check",
        user: login,
        host: url.and_then(|u| u.host_str()).unwrap_or(""),
        path: url.map(|u| u.path()).unwrap_or(""),
        decision: "forbidden",
        reason,
    }
    .record();
}

/// The check's latency and outcome, by endpoint, for `/metrics`.
fn observe(endpoint: Endpoint, answer: &Result<Allowed, Denied>, started: std::time::Instant) {
    let outcome = match answer {
        Ok(_) => Outcome::Allowed,
        Err(denied) => match denied.status_code().as_u16() {
            401 | 302 | 303 => Outcome::Unauthenticated,
            403 => Outcome::Forbidden,
            _ => Outcome::Error,
        },
    };
    observed::check(endpoint, outcome, started.elapsed());
}

async fn check(req: &HttpRequest, state: &AppState, mode: Mode) -> Result<Allowed, Denied> {
    let route = match mode {
        Mode::Nginx => AllowLists::from_query(req.query_string()),
        Mode::Forward => AllowLists::from_forward_query(req.query_string()),
    }
    .map_err(|e| Denied::Error(AppError::BadRequest(e.to_string())))?;
    // Public routes, API clients, several domains and the signed identity need
    // the original URL on every check; otherwise only strangers do.
    let original = if api_clients::needs_original(state) {
        Some(read_original(req, state, mode)?)
    } else {
        None
    };
    if api_clients::is_public(req, state, original.as_ref()) {
        return Ok(Allowed::public());
    }
    if let Some(token) = api_clients::bearer_token(req, state) {
        return api_clients::check_bearer(state, mode, &route, original.as_ref(), token).await;
    }
    let host = original.as_ref().and_then(|o| o.url.as_ref()?.host_str());
    let session = state.current_session(req).await.map_err(Denied::Error)?;
    // Several root domains: a cookie of one domain is never a session on another.
    let session = session.filter(|(_, s)| state.session_fits_host(s, host));
    let Some((_, session)) = session else {
        metrics::AUTH_UNAUTHENTICATED.inc();
        // Only a stranger's answer needs the original URL (for `rd`): read it here.
        let original = match original {
            Some(original) => original,
            None => read_original(req, state, mode)?,
        };
        return Err(unauthenticated(req, state, mode, &original));
    };
    let groups = state
        .groups_of(&session)
        .await
        .map_err(|e| api_clients::on_site(groups_denied(state, &session, e), state, host))?;
    let subject = Subject {
        login: &session.login,
        email: &session.email,
        groups: &groups.list,
    };
    let allowed = permit(
        decide(&state.config.policy, &route, &subject),
        state,
        &session,
        &groups,
    )
    .map_err(|denied| api_clients::on_site(denied, state, host))?;
    let who = api_clients::Who {
        subject: &session.sub,
        login: &session.login,
        email: &session.email,
    };
    api_clients::with_signed_identity(allowed, state, original.as_ref(), &who, &groups).await
}

/// Each endpoint reads first the headers its proxies set: nginx configs send
/// `X-Original-URL`; Traefik and Caddy send `X-Forwarded-*` and may pass a
/// client's own `X-Original-URL` along.
fn read_original(
    req: &HttpRequest,
    state: &AppState,
    mode: Mode,
) -> Result<OriginalRequest, Denied> {
    let headers = req.headers();
    let scheme = if state.config.service_url.starts_with("https:") {
        "https"
    } else {
        "http"
    };
    let prefer = match mode {
        Mode::Nginx => Prefer::OriginalUrl,
        Mode::Forward => Prefer::ForwardedHeaders,
    };
    original_request_preferring(
        prefer,
        req.peer_addr().map(|a| a.ip()),
        |name| headers.get(name).and_then(|v| v.to_str().ok()),
        &state.config.trusted_proxies,
        scheme,
    )
    .map_err(|e| Denied::Error(AppError::BadRequest(e.to_string())))
}

/// The only way to an [`Allowed`] with identity headers.
fn permit(
    decision: Decision,
    state: &AppState,
    session: &Session,
    groups: &UserGroups,
) -> Result<Allowed, Denied> {
    permit_as(decision, state, &session.login, &session.email, groups)
}

/// [`permit`] for a user or client that may not have a session (API clients).
fn permit_as(
    decision: Decision,
    state: &AppState,
    login: &str,
    email: &str,
    groups: &UserGroups,
) -> Result<Allowed, Denied> {
    match decision {
        Decision::Allow => {
            metrics::AUTH_ALLOWED.inc();
            crate::audit::allowed(login);
            Ok(Allowed {
                headers: Some(identity_headers::render(login, email, groups)),
                jwt: None,
            })
        }
        Decision::Deny(reason) => {
            metrics::AUTH_FORBIDDEN.inc();
            tracing::info!(user = %login, reason, "access denied");
            Err(forbidden_as(state, login, reason))
        }
    }
}

fn forbidden(state: &AppState, session: &Session, reason: &'static str) -> Denied {
    forbidden_as(state, &session.login, reason)
}

fn forbidden_as(state: &AppState, login: &str, reason: &'static str) -> Denied {
    Denied::Forbidden {
        reason,
        login: login.to_owned(),
        sign_out: format!("{}/oauth2/sign_out", state.config.service_url),
    }
}

fn groups_denied(state: &AppState, session: &Session, error: GroupsError) -> Denied {
    match error {
        GroupsError::UserNotFound => {
            metrics::AUTH_FORBIDDEN.inc();
            tracing::info!(user = %session.login, "denied: Okta no longer knows this user");
            forbidden(state, session, "Okta no longer knows this user")
        }
        // Signed in, but Okta says the account is suspended or deactivated:
        // "not you" (403), never a sign-in loop; Okta refuses a new sign-in anyway.
        GroupsError::UserInactive(status) => {
            metrics::AUTH_FORBIDDEN.inc();
            tracing::info!(user = %session.login, %status, "denied: the user's Okta status no longer grants access");
            forbidden(
                state,
                session,
                "the user's Okta status no longer grants access",
            )
        }
        other => {
            metrics::AUTH_UNAVAILABLE.inc();
            Denied::Error(AppError::Unavailable(format!(
                "groups of {}: {other}",
                session.login
            )))
        }
    }
}

fn unauthenticated(
    req: &HttpRequest,
    state: &AppState,
    mode: Mode,
    original: &OriginalRequest,
) -> Denied {
    let site = state.site_of_host(original.url.as_ref().and_then(|u| u.host_str()));
    let mut start = format!("{}/oauth2/start", state.service_url_of(site));
    // The original URL, cut so that the whole Location stays under 4 KB.
    let encoded =
        |rd: &str| url::form_urlencoded::byte_serialize(rd.as_bytes()).collect::<String>();
    let room = MAX_LOCATION.saturating_sub(start.len() + "?rd=".len());
    if let Some(rd) = original
        .url
        .as_ref()
        .filter(|u| state.config.redirects.allows(u))
        .and_then(|u| shortened(u.as_str(), |rd| encoded(rd).len() <= room))
    {
        start.push_str("?rd=");
        start.push_str(&encoded(&rd));
    }
    match mode {
        Mode::Nginx => Denied::Unauthenticated {
            start,
            status: StatusCode::UNAUTHORIZED,
            json: false,
        },
        Mode::Forward if is_api_request(req) => Denied::Unauthenticated {
            start,
            status: StatusCode::UNAUTHORIZED,
            json: true,
        },
        Mode::Forward => {
            let status = if matches!(original.method.as_str(), "GET" | "HEAD") {
                StatusCode::FOUND
            } else {
                StatusCode::SEE_OTHER
            };
            Denied::Unauthenticated {
                start,
                status,
                json: false,
            }
        }
    }
}

/// Longest `Location` we send (every header we send stays under 4 KB).
pub(crate) const MAX_LOCATION: usize = 4000;

/// XHR, fetch, API clients and WebSockets get a 401 instead of a redirect they
/// cannot follow.
fn is_api_request(req: &HttpRequest) -> bool {
    let h = req.headers();
    let value = |name: &str| h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("");
    let websocket = value("upgrade").eq_ignore_ascii_case("websocket");
    if value("sec-fetch-mode").eq_ignore_ascii_case("navigate") && !websocket {
        return false;
    }
    websocket
        || h.contains_key("x-requested-with")
        || value("sec-fetch-mode").eq_ignore_ascii_case("cors")
        || value("authorization")
            .get(..7)
            .is_some_and(|p| p.eq_ignore_ascii_case("bearer "))
        || !value("accept").to_ascii_lowercase().contains("text/html")
}

/// A 200 with the identity headers. Constructed only by [`permit`], or
/// without identity headers for a public route ([`Allowed::public`]).
pub struct Allowed {
    /// `None` for a public route: no identity at all.
    headers: Option<[(&'static str, String); 4]>,
    /// `X-Auth-Request-Jwt`, with `IDENTITY_JWT_KEY`.
    jwt: Option<std::sync::Arc<str>>,
}

impl actix_web::Responder for Allowed {
    type Body = actix_web::body::BoxBody;

    fn respond_to(self, _: &HttpRequest) -> HttpResponse {
        let mut response = HttpResponse::Ok().finish();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(jwt) = self.jwt {
            if let Ok(value) = HeaderValue::from_str(&jwt) {
                headers.insert(HeaderName::from_static(api_clients::JWT_HEADER), value);
            }
        }
        for (name, value) in self.headers.into_iter().flatten() {
            // Values were stripped of control characters, so this cannot fail; the
            // String's buffer becomes the header's without a copy.
            if let Ok(value) = HeaderValue::from_maybe_shared(web::Bytes::from(value)) {
                headers.insert(HeaderName::from_static(name), value);
            }
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
    BadToken(api_clients::BadToken),
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
