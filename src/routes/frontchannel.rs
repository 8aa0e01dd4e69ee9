//! `GET /oauth2/frontchannel_logout?iss=&sid=`: OpenID Connect Front-Channel
//! Logout, which Okta's Single Logout loads in a hidden iframe. `iss` must be
//! the issuer; the sessions signed in within that IdP session (`sid`) end on
//! every replica. The answer is a tiny page nobody caches, framable only by
//! the issuer's origin.

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use serde::Deserialize;

use crate::error::AppError;
use crate::routes::AppState;

#[derive(Deserialize)]
pub struct FrontChannelQuery {
    iss: Option<String>,
    sid: Option<String>,
}

pub async fn frontchannel_logout(
    state: web::Data<AppState>,
    query: web::Query<FrontChannelQuery>,
) -> Result<HttpResponse, AppError> {
    if query.iss.as_deref() != Some(state.oidc.issuer()) {
        return Err(AppError::BadRequest(
            "iss is missing or is not this service's issuer.".into(),
        ));
    }
    let sid = query
        .sid
        .as_deref()
        .filter(|sid| !sid.is_empty() && sid.len() <= 1024)
        .ok_or_else(|| AppError::BadRequest("sid is missing.".into()))?;
    let ended = state
        .store
        .remove_sid(None, sid)
        .await
        .map_err(|e| AppError::Unavailable(e.to_string()))?;
    tracing::info!(sessions = ended, "front-channel logout of an IdP session");
    crate::audit::ended_by_okta("front_channel", "", ended, "Okta ended the IdP session");
    let origin = url::Url::parse(state.oidc.issuer())
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_else(|_| "'none'".to_owned());
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            format!("frame-ancestors {origin}; default-src 'none'"),
        ))
        .content_type("text/html; charset=utf-8")
        .body("<!doctype html><title>Signed out</title><p>Signed out.</p>\n"))
}
