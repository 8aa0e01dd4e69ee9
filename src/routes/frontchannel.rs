//! `GET /oauth2/frontchannel_logout?iss=&sid=`: OpenID Connect Front-Channel
//! Logout, which Okta's Single Logout loads in a hidden iframe. `iss` must be
//! the issuer; the sessions signed in within that IdP session (`sid`) end on
//! every replica. The answer is a tiny page nobody caches, framable only by
//! the issuer's origin.

use std::sync::atomic::{AtomicU64, Ordering};

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

/// Front-channel logouts served per second, per process. The request carries
/// no credential (`iss` is public) and ending an IdP session can cost a scan
/// of the sessions, so strangers must not be able to ask without bound; Okta
/// loads one such page per app when a user signs out, far below this.
pub const MAX_PER_SECOND: u64 = 20;

/// This second's front-channel logouts: (second, count) in one word, the upper
/// 44 bits the second, the lower 20 the count.
#[derive(Debug, Default)]
pub struct Budget(AtomicU64);

/// Whether one more front-channel logout fits in this second's budget.
fn within_budget(budget: &Budget, now: u64) -> bool {
    let window = &budget.0;
    let mut current = window.load(Ordering::Relaxed);
    loop {
        let (second, count) = (current >> 20, current & 0xF_FFFF);
        let next = if second == now {
            if count >= MAX_PER_SECOND {
                return false;
            }
            current + 1
        } else {
            (now << 20) | 1
        };
        match window.compare_exchange_weak(current, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return true,
            Err(seen) => current = seen,
        }
    }
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
    if !within_budget(&state.frontchannel_budget, crate::clock::now()) {
        tracing::warn!("front-channel logout refused: more than {MAX_PER_SECOND} this second");
        return Ok(HttpResponse::TooManyRequests()
            .insert_header((header::RETRY_AFTER, "1"))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .finish());
    }
    let ended = state.store.remove_sid(None, sid).await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_is_per_second() {
        let budget = Budget::default();
        let second = 1_000_000_007;
        let allowed = (0..100).filter(|_| within_budget(&budget, second)).count() as u64;
        assert_eq!(allowed, MAX_PER_SECOND);
        assert!(
            within_budget(&budget, second + 1),
            "a new second, a new budget"
        );
    }
}
