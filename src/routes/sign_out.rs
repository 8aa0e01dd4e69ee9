//! `/oauth2/sign_out`: ends the server-side session (or, with `everywhere=true`,
//! all of the user's sessions), clears the cookie, and when Okta offers an
//! `end_session_endpoint` sends the browser there to end the Okta session too.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use crate::config::Secret;
use crate::error::AppError;
use crate::routes::{session_cookie_header, AppState};
use crate::session::Session;

#[derive(Deserialize)]
pub struct SignOutQuery {
    rd: Option<String>,
    everywhere: Option<String>,
}

pub async fn sign_out(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<SignOutQuery>,
) -> Result<HttpResponse, AppError> {
    let rd = state.return_address(query.rd.as_deref())?;
    let everywhere = matches!(query.everywhere.as_deref(), Some("true" | "1" | "yes"));
    let session = state.current_session_without_refresh(&req).await?;
    let site = state.site_of_request(&req, Some(&rd));
    let mut location = rd.clone();
    if let Some((id, session)) = session {
        let unavailable = |e: crate::session::StoreError| AppError::Unavailable(e.to_string());
        if everywhere {
            let ended = state
                .store
                .remove_user(&session.sub)
                .await
                .map_err(unavailable)?;
            tracing::info!(user = %session.login, sessions = ended, "signed out everywhere");
        } else {
            state.store.remove(&id).await.map_err(unavailable)?;
            tracing::info!(user = %session.login, "signed out");
        }
        if let Some(id_token) = okta_sign_out_hint(&state, &session).await {
            let post_logout = absolute(state.service_url_of(site), &rd);
            if let Some(url) = state.oidc.end_session_url(id_token.expose(), &post_logout) {
                location = url.into();
            }
        }
    }
    Ok(HttpResponse::Found()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((
            header::SET_COOKIE,
            session_cookie_header(&state.cookie_of(site), None),
        ))
        .insert_header((header::LOCATION, location))
        .finish())
}

/// The `id_token_hint` Okta's sign-out wants. Sessions with a refresh token do
/// not keep the (large) ID token: one refresh gets a fresh one, and the refresh
/// token is then revoked, as Okta recommends. `None` (Okta unreachable, token
/// refused): the local session is still ended, Okta's is left alone.
async fn okta_sign_out_hint(state: &AppState, session: &Session) -> Option<Secret> {
    if let Some(id_token) = &session.id_token {
        return Some(id_token.clone());
    }
    let refresh_token = session.refresh_token.as_ref()?;
    let fresh = match state.oidc.refresh(refresh_token, &session.sub).await {
        Ok(fresh) => fresh,
        Err(e) => {
            tracing::info!(user = %session.login, error = %e, "no ID token for Okta's sign-out; ending the local session only");
            return None;
        }
    };
    let latest = fresh.refresh_token.as_ref().unwrap_or(refresh_token);
    if let Err(e) = state.oidc.revoke_refresh_token(latest).await {
        tracing::info!(user = %session.login, error = %e, "could not revoke the refresh token");
    }
    fresh.id_token
}

/// Okta needs an absolute `post_logout_redirect_uri`; a relative `rd` is taken
/// relative to the service's own URL.
fn absolute(service_url: &str, rd: &str) -> String {
    if rd.starts_with('/') {
        let origin = url::Url::parse(service_url)
            .map(|u| u.origin().ascii_serialization())
            .unwrap_or_default();
        format!("{origin}{rd}")
    } else {
        rd.to_owned()
    }
}
