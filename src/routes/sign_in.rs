//! `/oauth2/start` and `/oauth2/callback`: the authorization code flow with state,
//! nonce and PKCE, bound to the browser that started it by a short-lived signed
//! cookie (a callback finished in another browser is refused: no login CSRF).

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use crate::error::AppError;
use crate::routes::cookies::{binding_cookie_header, binding_cookie_name, cookie_values};
use crate::routes::{session_cookie_header, AppState};
use crate::session::{now, random_token, PendingSignIn, Session, SessionId};
use crate::{metrics, oidc};

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
    let authorize = state
        .oidc
        .authorize_for(site.map(|s| s.redirect_uri.as_str()))
        .map_err(|e| AppError::Unavailable(e.to_string()))?;
    // Several tabs may sign in at once: reuse this browser's binding if it has one.
    let binding = cookie_values(&req, &binding_cookie_name(&state.config.cookie))
        .find_map(|v| state.codec.verify(b"binding", v))
        .and_then(|b| String::from_utf8(b).ok())
        .unwrap_or_else(random_token);
    let pending = PendingSignIn {
        nonce: authorize.nonce,
        pkce_verifier: authorize.pkce_verifier,
        rd,
        binding: binding.clone(),
        created_at: now(),
    };
    state
        .store
        .save_pending(&authorize.state, &pending)
        .await
        .map_err(|e| AppError::Unavailable(e.to_string()))?;
    Ok(HttpResponse::Found()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((
            header::SET_COOKIE,
            binding_cookie_header(
                &state.config.cookie,
                Some(&state.codec.sign(b"binding", binding.as_bytes())),
            ),
        ))
        .insert_header((header::LOCATION, authorize.url.as_str()))
        .finish())
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
    if result.is_err() {
        metrics::SIGN_IN_FAILURES.inc();
    }
    result
}

async fn finish(
    req: &HttpRequest,
    state: &AppState,
    query: &CallbackQuery,
) -> Result<HttpResponse, AppError> {
    let pending = match query.state.as_deref() {
        Some(s) if !s.is_empty() && s.len() <= 512 => state
            .store
            .take_pending(s)
            .await
            .map_err(|e| AppError::Unavailable(e.to_string()))?,
        _ => None,
    };
    if let Some(error) = &query.error {
        let error: String = error
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(64)
            .collect();
        tracing::info!(%error, description = ?query.error_description, "Okta refused the sign-in");
        return Err(AppError::SignInDenied(format!(
            "Okta did not complete the sign-in ({error})."
        )));
    }
    let pending = pending.ok_or_else(|| {
        AppError::SignIn(
            "This sign-in link has expired or was already used. Please start again.".into(),
        )
    })?;
    let code = query
        .code
        .as_deref()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| AppError::SignIn("Okta's answer had no authorization code.".into()))?;
    let bound = cookie_values(req, &binding_cookie_name(&state.config.cookie))
        .filter_map(|v| state.codec.verify(b"binding", v))
        .any(|b| constant_time_eq(&b, pending.binding.as_bytes()));
    if !bound {
        return Err(AppError::SignIn(
            "This sign-in was started in another browser (or its cookie was blocked). Please start again here.".into(),
        ));
    }
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
        .await
        .map_err(|e| match e {
            oidc::OidcError::NotReady => AppError::Unavailable(e.to_string()),
            oidc::OidcError::Exchange(_) | oidc::OidcError::Discovery(_) => {
                AppError::Upstream(e.to_string())
            }
            oidc::OidcError::IdToken(_) => {
                tracing::warn!(error = %e, "ID token rejected");
                AppError::SignIn("Okta's answer could not be verified. Please start again.".into())
            }
        })?;
    let now = now();
    let keep_id_token = signed_in.refresh_token.is_none();
    let session = Session {
        sub: signed_in.sub,
        login: signed_in.login,
        email: signed_in.email,
        name: signed_in.name,
        groups_claim: signed_in.groups_claim,
        sid: signed_in.sid,
        created_at: now,
        expires_at: now + state.config.cookie.expire.as_secs(),
        tokens_expire_at: signed_in.tokens_expire_at,
        refresh_not_before: 0,
        refresh_token: signed_in.refresh_token,
        // An Okta ID token is ~1 kB, more than the rest of the session together:
        // with a refresh token, sign-out gets a fresh one instead of keeping it.
        id_token: keep_id_token.then_some(signed_in.id_token),
        cookie_domain: site.map(|s| s.cookie_domain.clone()),
    };
    // A fresh id for every sign-in: a cookie planted before cannot become a session.
    let id = SessionId::random();
    state
        .store
        .save(&id, &session)
        .await
        .map_err(|e| AppError::Unavailable(e.to_string()))?;
    if let Some(groups) = &state.groups {
        // Warm the cache so the first check does not wait on Okta.
        if let Err(e) = groups.prefetch(&session.sub).await {
            tracing::warn!(user = %session.login, error = %e, "could not load groups at sign-in");
        }
    }
    metrics::SIGN_INS.inc();
    tracing::info!(user = %session.login, "signed in");
    Ok(HttpResponse::Found()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .append_header((
            header::SET_COOKIE,
            session_cookie_header(
                &state.cookie_of(site),
                Some(&state.codec.encode_session(&id)),
            ),
        ))
        .insert_header((header::LOCATION, pending.rd.as_str()))
        .finish())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
