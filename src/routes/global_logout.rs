//! `POST /oauth2/global-token-revocation`: Okta Universal Logout. The bearer
//! token is verified first (401 otherwise, nothing else said); then the JSON
//! body names the user (400 when it cannot be read); then, in one step, the
//! token's `jti` is recorded and every session of that user ends on every
//! replica. Their refresh tokens are revoked at Okta in the background, and
//! the answer is 204. A user of another issuer is 404 (unknown to us).

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use crate::error::AppError;
use crate::oidc::logout_token::LogoutTokenError;
use crate::oidc::revocation_token::{self, Subject, PATH};
use crate::routes::AppState;
use crate::secret::SecretRef;
use crate::session::{Ending, Session};

/// Largest body accepted; Okta's is a few hundred bytes.
pub const MAX_BODY: usize = 16 * 1024;

pub fn payload_config() -> web::PayloadConfig {
    web::PayloadConfig::new(MAX_BODY)
}

pub async fn global_token_revocation(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let Some(token) = bearer(&req) else {
        return Ok(unauthorized("no bearer token"));
    };
    let audience = format!("{}{PATH}", state.config.service_url);
    let verified = match revocation_token::verify(
        &state.oidc,
        &state.config.org_url,
        &audience,
        token,
    )
    .await
    {
        Ok(verified) => verified,
        Err(LogoutTokenError::NotReady) => return Err(LogoutTokenError::NotReady.into()),
        Err(e) => return Ok(unauthorized(&e.to_string())),
    };
    let subject = revocation_token::parse_subject(&body).map_err(AppError::InvalidRequest)?;
    let ending = match &subject {
        Subject::IssSub { iss, sub } => {
            if iss != state.oidc.issuer() && iss != &state.config.org_url {
                tracing::info!("Universal Logout for a user of another issuer: unknown here");
                return Ok(HttpResponse::NotFound()
                    .insert_header((header::CACHE_CONTROL, "no-store"))
                    .json(json!({ "error": "user_not_found" })));
            }
            Ending::User { sub }
        }
        Subject::Email { email } => Ending::Email { email },
    };
    let Some(ended) = state.store.end_once_taking(&verified.jti, ending).await? else {
        return Ok(unauthorized("the token was used before (jti)"));
    };
    tracing::info!(
        sessions = ended.len(),
        "Universal Logout: every session of a user ended"
    );
    let user = ended.first().map(|s| s.identity().login()).unwrap_or("");
    crate::audit::ended_by_okta(
        "universal_logout",
        user,
        ended.len(),
        "Okta's Universal Logout",
    );
    revoke_in_background(&state, ended);
    Ok(HttpResponse::NoContent()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish())
}

/// `Authorization: Bearer <token>` (scheme in any case).
fn bearer(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// 401; the reason goes to the log only, never the token.
fn unauthorized(reason: &str) -> HttpResponse {
    tracing::info!(reason, "Universal Logout request refused");
    HttpResponse::Unauthorized()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::WWW_AUTHENTICATE, r#"Bearer error="invalid_token""#))
        .json(json!({ "error": "invalid_token" }))
}

/// Revokes the ended sessions' refresh tokens at Okta, as sign-out does;
/// Okta's answer does not change ours.
fn revoke_in_background(state: &AppState, ended: Vec<Session>) {
    let tokens: Vec<_> = ended
        .iter()
        .filter_map(|s| s.refresh_token().map(SecretRef::to_secret))
        .collect();
    if tokens.is_empty() {
        return;
    }
    let oidc = state.oidc.clone();
    tokio::spawn(async move {
        for token in tokens {
            if let Err(e) = oidc.revoke_refresh_token(token.borrowed()).await {
                tracing::warn!(error = %e, "Universal Logout: could not revoke a refresh token at Okta");
            }
        }
    });
}
