//! `GET /oauth2/jwks.json`: the public keys of `IDENTITY_JWT_KEY`, with which
//! apps verify `X-Auth-Request-Jwt`, rendered once at start (public parts
//! only). 404 when no key is configured.

use actix_web::http::header;
use actix_web::{web, HttpResponse};

use crate::routes::AppState;

pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    match &state.identity_tokens {
        Some(tokens) => HttpResponse::Ok()
            // Apps may keep the keys a while; a rotation publishes the next key
            // before it signs (second in the list), so a stale copy still works.
            .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
            .content_type("application/json")
            .body(tokens.keys().jwks_json().to_string()),
        None => HttpResponse::NotFound()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .finish(),
    }
}
