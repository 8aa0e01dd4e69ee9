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
use crate::forwarded::{original_request, OriginalRequest};
use crate::groups::{GroupsError, UserGroups};
use crate::policy::{decide, AllowLists, Decision, Subject};
use crate::routes::AppState;
use crate::session::Session;
use crate::{html, identity_headers, metrics};

/// Which endpoint is asking: they differ only in how "who are you?" is said.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// nginx: 401 + `Location`, never a 3xx.
    Nginx,
    /// Traefik, Caddy: a redirect for browser navigations, 401 JSON for APIs.
    Forward,
}

pub async fn auth(req: HttpRequest, state: web::Data<AppState>) -> Result<Allowed, Denied> {
    check(&req, &state, Mode::Nginx).await
}

pub async fn forward(req: HttpRequest, state: web::Data<AppState>) -> Result<Allowed, Denied> {
    check(&req, &state, Mode::Forward).await
}

async fn check(req: &HttpRequest, state: &AppState, mode: Mode) -> Result<Allowed, Denied> {
    let route = AllowLists::from_query(req.query_string())
        .map_err(|e| Denied::Error(AppError::BadRequest(e.to_string())))?;
    let Some((_, session)) = state.current_session(req).await.map_err(Denied::Error)? else {
        metrics::AUTH_UNAUTHENTICATED.inc();
        // Only a stranger's answer needs the original URL (for `rd`): read it here.
        let original = read_original(req, state)?;
        return Err(unauthenticated(req, state, mode, &original));
    };
    let groups = state
        .groups_of(&session)
        .await
        .map_err(|e| groups_denied(state, &session, e))?;
    let subject = Subject {
        login: &session.login,
        email: &session.email,
        groups: &groups.list,
    };
    permit(
        decide(&state.config.policy, &route, &subject),
        state,
        &session,
        &groups,
    )
}

fn read_original(req: &HttpRequest, state: &AppState) -> Result<OriginalRequest, Denied> {
    let headers = req.headers();
    let scheme = if state.config.service_url.starts_with("https:") {
        "https"
    } else {
        "http"
    };
    original_request(
        req.peer_addr().map(|a| a.ip()),
        |name| headers.get(name).and_then(|v| v.to_str().ok()),
        &state.config.trusted_proxies,
        scheme,
    )
    .map_err(|e| Denied::Error(AppError::BadRequest(e.to_string())))
}

/// The only way to an [`Allowed`].
fn permit(
    decision: Decision,
    state: &AppState,
    session: &Session,
    groups: &UserGroups,
) -> Result<Allowed, Denied> {
    match decision {
        Decision::Allow => {
            metrics::AUTH_ALLOWED.inc();
            Ok(Allowed {
                headers: identity_headers::render(&session.login, &session.email, groups),
            })
        }
        Decision::Deny(reason) => {
            metrics::AUTH_FORBIDDEN.inc();
            tracing::info!(user = %session.login, reason, "access denied");
            Err(forbidden(state, session))
        }
    }
}

fn forbidden(state: &AppState, session: &Session) -> Denied {
    Denied::Forbidden {
        login: session.login.clone(),
        sign_out: format!("{}/oauth2/sign_out", state.config.service_url),
    }
}

fn groups_denied(state: &AppState, session: &Session, error: GroupsError) -> Denied {
    match error {
        GroupsError::UserNotFound => {
            metrics::AUTH_FORBIDDEN.inc();
            tracing::info!(user = %session.login, "denied: Okta no longer knows this user");
            forbidden(state, session)
        }
        // Signed in, but Okta says the account is suspended or deactivated:
        // "not you" (403), never a sign-in loop; Okta refuses a new sign-in anyway.
        GroupsError::UserInactive(status) => {
            metrics::AUTH_FORBIDDEN.inc();
            tracing::info!(user = %session.login, %status, "denied: the user's Okta status no longer grants access");
            forbidden(state, session)
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
    let mut start = format!("{}/oauth2/start", state.config.service_url);
    if let Some(url) = original
        .url
        .as_ref()
        .filter(|u| state.config.redirects.allows(u))
    {
        start.push_str("?rd=");
        start.extend(url::form_urlencoded::byte_serialize(
            url.as_str().as_bytes(),
        ));
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

/// A 200 with the identity headers. Constructed only by [`permit`].
pub struct Allowed {
    headers: [(&'static str, String); 4],
}

impl actix_web::Responder for Allowed {
    type Body = actix_web::body::BoxBody;

    fn respond_to(self, _: &HttpRequest) -> HttpResponse {
        let mut response = HttpResponse::Ok().finish();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        for (name, value) in self.headers {
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
    /// Signed in, but not allowed: 403.
    Forbidden { login: String, sign_out: String },
    /// Bad request or unavailable.
    Error(AppError),
}

impl std::fmt::Display for Denied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Denied::Unauthenticated { .. } => f.write_str("not signed in"),
            Denied::Forbidden { .. } => f.write_str("not allowed"),
            Denied::Error(e) => write!(f, "{e}"),
        }
    }
}

impl ResponseError for Denied {
    fn status_code(&self) -> StatusCode {
        match self {
            Denied::Unauthenticated { status, .. } => *status,
            Denied::Forbidden { .. } => StatusCode::FORBIDDEN,
            Denied::Error(e) => e.status_code(),
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
            Denied::Forbidden { login, sign_out } => HttpResponse::Forbidden()
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
        }
    }
}
