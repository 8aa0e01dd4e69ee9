//! `/oauth2/start` and `/oauth2/callback`: the authorization code flow with state,
//! nonce and PKCE. The pending sign-in travels in the browser's encrypted
//! binding cookie (`crate::pending`), so a start costs the server nothing and a
//! callback finished in another browser is refused (no login CSRF); the
//! callback takes its entry out of the cookie and marks the state used.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use crate::clock::now;
use crate::error::AppError;
use crate::metrics;
use crate::oidc::OidcError;
use crate::pending::{self, PendingSignIn};
use crate::routes::cookies::binding_cookie_header;
use crate::routes::{session_cookie_header, AppState};

/// At most this many binding cookie values are opened per request.
const MAX_BINDING_VALUES: usize = 2;

#[derive(Deserialize)]
pub struct StartQuery {
    rd: Option<String>,
}

pub async fn start(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<StartQuery>,
) -> Result<HttpResponse, AppError> {
    let rd = state.return_address(query.rd.as_deref())?;
    // Several root domains: sign in through the service URL of this one.
    let site = state.site_of_request(&req, Some(&rd));
    let authorize = match state
        .oidc
        .authorize_for(site.map(|s| s.redirect_uri.as_str()))
    {
        Ok(authorize) => authorize,
        Err(e @ OidcError::NotReady) => return Err(e.into()),
        // Sites' redirect URIs are checked when the configuration is read.
        Err(_) => return Err(AppError::Internal("a site's redirect URI does not parse")),
    };
    let now = now();
    let new = PendingSignIn {
        state: authorize.state,
        nonce: authorize.nonce,
        pkce_verifier: authorize.pkce_verifier,
        rd,
        created_at: now,
    };
    // Several tabs may sign in at once: keep this browser's other sign-ins.
    let list = pending::push(new, pending_in(&req, &state, now), now);
    let sealed = state.pending.seal(&list).ok_or(AppError::Internal(
        "the pending sign-in does not fit its cookie",
    ))?;
    Ok(HttpResponse::Found()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((
            header::SET_COOKIE,
            binding_cookie_header(&state.config.cookie, Some(&sealed)),
        ))
        .insert_header((header::LOCATION, authorize.url.as_str()))
        .finish())
}

/// The sign-ins this browser has in progress.
fn pending_in(req: &HttpRequest, state: &AppState, now: u64) -> Vec<PendingSignIn> {
    state
        .cookie_names
        .binding_values(req, now)
        .take(MAX_BINDING_VALUES)
        .flat_map(|value| state.pending.open(value))
        .collect()
}

/// `Set-Cookie` for the binding cookie holding `rest` (cleared when empty).
fn binding_cookie_for(state: &AppState, rest: &[PendingSignIn]) -> String {
    let sealed = (!rest.is_empty())
        .then(|| state.pending.seal(rest))
        .flatten();
    binding_cookie_header(&state.config.cookie, sealed.as_deref())
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

pub async fn callback(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<CallbackQuery>,
) -> Result<HttpResponse, AppError> {
    let result = finish(&req, &state, &query).await;
    // A refusal may come as a rendered page (to clear what it consumed).
    if !result
        .as_ref()
        .is_ok_and(|r| r.status() == actix_web::http::StatusCode::FOUND)
    {
        metrics::SIGN_IN_FAILURES.inc();
        let status = match &result {
            Ok(response) => response.status(),
            Err(error) => actix_web::ResponseError::status_code(error),
        };
        let reason = status.canonical_reason().unwrap_or("refused");
        crate::audit::Audit {
            event: "sign_in",
            user: "",
            host: &crate::audit::host_of(state.service_url_of(state.site_of_request(&req, None))),
            path: req.path(),
            decision: "failed",
            reason,
        }
        .record();
    }
    result
}

async fn finish(
    req: &HttpRequest,
    state: &AppState,
    query: &CallbackQuery,
) -> Result<HttpResponse, AppError> {
    let now = now();
    let (pending, rest) = match query.state.as_deref() {
        Some(s) if !s.is_empty() && s.len() <= 512 => {
            pending::take(pending_in(req, state, now), s, now)
        }
        _ => (None, Vec::new()),
    };
    // What this callback consumed leaves the cookie, whatever happens next.
    let binding_cookie = pending.is_some().then(|| binding_cookie_for(state, &rest));
    let refuse = |error: AppError| -> Result<HttpResponse, AppError> {
        let Some(cookie) = &binding_cookie else {
            return Err(error);
        };
        let mut response = actix_web::ResponseError::error_response(&error);
        if let Ok(value) = header::HeaderValue::from_str(cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
        Ok(response)
    };
    if let Some(error) = &query.error {
        let error: String = error
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(64)
            .collect();
        tracing::info!(%error, description = ?query.error_description, "Okta refused the sign-in");
        return refuse(AppError::SignInDenied(format!(
            "Okta did not complete the sign-in ({error})."
        )));
    }
    let Some(pending) = pending else {
        return Err(AppError::SignIn(
            "This sign-in has expired, was already used, or was started in another browser \
             (or its cookie was blocked). Please start again here."
                .into(),
        ));
    };
    let Some(code) = query.code.as_deref().filter(|c| !c.is_empty()) else {
        return refuse(AppError::SignIn(
            "Okta's answer had no authorization code.".into(),
        ));
    };
    match sign_in(state, req, &pending, code, now).await {
        Ok(session_cookie) => {
            let mut response = HttpResponse::Found();
            response
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .append_header((header::SET_COOKIE, session_cookie));
            if let Some(cookie) = binding_cookie {
                response.append_header((header::SET_COOKIE, cookie));
            }
            Ok(response
                .insert_header((header::LOCATION, pending.rd.as_str()))
                .finish())
        }
        Err(error) => refuse(error),
    }
}

/// Exchanges the code and checks the ID token (`crate::oidc`), then has
/// `crate::access` mark the state used and open the session; returns the
/// session cookie's `Set-Cookie`.
async fn sign_in(
    state: &AppState,
    req: &HttpRequest,
    pending: &PendingSignIn,
    code: &str,
    now: u64,
) -> Result<String, AppError> {
    // Okta compares the token request's redirect URI with the authorize one:
    // a callback on another domain than its start fails there.
    let site = state.site_of_request(req, None);
    let signed_in = state
        .oidc
        .finish_for(
            code,
            &pending.pkce_verifier,
            &pending.nonce,
            site.map(|s| s.redirect_uri.as_str()),
        )
        .await?;
    let cookie_domain = site.map(|s| s.cookie_domain.clone());
    let Some(opened) = state
        .access
        .open_session(signed_in, &pending.state, cookie_domain, now)
        .await?
    else {
        return Err(AppError::SignIn(
            "This sign-in link was already used. Please start again.".into(),
        ));
    };
    crate::audit::Audit {
        event: "sign_in",
        user: opened.session.identity().login(),
        host: &crate::audit::host_of(state.service_url_of(site)),
        path: req.path(),
        decision: "signed_in",
        reason: "Okta sign-in completed",
    }
    .record();
    Ok(session_cookie_header(
        &state.cookie_of(site),
        Some(&opened.cookie),
    ))
}
