//! One error type for every handler, built with `#[from]` from the modules'
//! own errors and mapped to a status and a public message in one table
//! (`AppError::public`). Clients get short fixed bodies (no internal text, no
//! token, no stack); logs get the whole cause chain. Every variant maps to a
//! 4xx or 5xx: a deny path cannot produce a 2xx because nothing here can.
//! Must NOT decide anything: it only says how a failure looks from outside.

use std::borrow::Cow;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

use crate::access::AccessError;
use crate::error_chain::error_chain;
use crate::forwarded::ForwardedError;
use crate::groups::GroupsError;
use crate::html;
use crate::oidc::logout_token::LogoutTokenError;
use crate::oidc::OidcError;
use crate::policy::PolicyError;
use crate::redirect::RedirectError;
use crate::session::StoreError;

/// Everything that ends a request without letting it through.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The client sent something we cannot read (bad cookie format is *not* this:
    /// a bad cookie is simply no session). The text is shown to the user.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// A check's allow-lists (`allowed_groups`, `allowed_emails`) cannot be
    /// read. The text is shown.
    #[error("bad allow-lists: {0}")]
    AllowLists(#[from] PolicyError),
    /// A trusted proxy's forwarded headers cannot be read. The text is shown.
    #[error("bad forwarded headers: {0}")]
    Forwarded(#[from] ForwardedError),
    /// The return address (`rd`) is not on the allow-list. The text is shown.
    #[error("return address refused: {0}")]
    ReturnAddress(#[from] RedirectError),
    /// A server-to-server request we refuse (the IdP's back-channel logout),
    /// answered as an OAuth error: JSON `invalid_request` with this text as
    /// `error_description`. The text must never contain the token.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// A sign-in step failed in a way the user can retry (unknown state, Okta said
    /// no). The text is shown to the user.
    #[error("sign-in failed: {0}")]
    SignIn(String),
    /// Okta said no to the sign-in (`?error=access_denied`). Shown to the user.
    #[error("sign-in refused: {0}")]
    SignInDenied(String),
    /// A step of the OpenID Connect flow failed (discovery, code exchange,
    /// ID token).
    #[error(transparent)]
    Oidc(#[from] OidcError),
    /// The session store cannot answer.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Who is asking could not be found out (store, groups, token keys).
    #[error(transparent)]
    Access(#[from] AccessError),
    /// A back-channel logout token that is refused, or keys not loaded yet.
    #[error("logout_token: {0}")]
    LogoutToken(#[from] LogoutTokenError),
    /// A bug: nothing but a mistake in this code explains it. Logged only.
    #[error("internal error: {0}")]
    Internal(&'static str),
}

/// How a failure looks to the client.
struct Public<'a> {
    status: StatusCode,
    message: Cow<'a, str>,
    /// An HTML page (with a "Sign in again" link when `retry`), or the OAuth
    /// error JSON `invalid_request`.
    shape: Shape,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    Page,
    /// A page with a link to start a new sign-in.
    Retry,
    /// A page with `Retry-After`: the service will answer again soon.
    Later,
    OAuth,
}

const UNAVAILABLE: &str =
    "The sign-in service is temporarily unavailable. Please retry in a moment.";
const UPSTREAM: &str = "Okta did not complete the sign-in. Please retry in a moment.";
const UNVERIFIED: &str = "Okta's answer could not be verified. Please start again.";
const INTERNAL: &str = "Something went wrong on our side.";

impl AppError {
    /// The one table from an error to what the client sees.
    fn public(&self) -> Public<'_> {
        use Shape::{Later, OAuth, Page, Retry};
        use StatusCode as S;
        let (status, message, shape): (StatusCode, Cow<'_, str>, Shape) = match self {
            AppError::BadRequest(m) => (S::BAD_REQUEST, m.into(), Page),
            AppError::AllowLists(PolicyError(m)) | AppError::Forwarded(ForwardedError(m)) => {
                (S::BAD_REQUEST, m.into(), Page)
            }
            AppError::ReturnAddress(e) => (
                S::BAD_REQUEST,
                format!("The return address (rd) was refused: {e}").into(),
                Page,
            ),
            AppError::InvalidRequest(m) => (S::BAD_REQUEST, m.into(), OAuth),
            AppError::SignIn(m) => (S::BAD_REQUEST, m.into(), Retry),
            AppError::SignInDenied(m) => (S::FORBIDDEN, m.into(), Retry),
            AppError::Oidc(OidcError::NotReady) => {
                (S::SERVICE_UNAVAILABLE, UNAVAILABLE.into(), Later)
            }
            AppError::Oidc(OidcError::Exchange(_) | OidcError::Discovery(_)) => {
                (S::BAD_GATEWAY, UPSTREAM.into(), Retry)
            }
            AppError::Oidc(OidcError::IdToken(_) | OidcError::UnknownKey) => {
                (S::BAD_REQUEST, UNVERIFIED.into(), Retry)
            }
            AppError::Access(AccessError::Groups {
                error: GroupsError::UserNotFound,
                ..
            }) => (
                S::FORBIDDEN,
                "Okta no longer knows this account.".into(),
                Retry,
            ),
            AppError::Access(AccessError::Groups {
                error: GroupsError::UserInactive(_),
                ..
            }) => (
                S::FORBIDDEN,
                "This account is suspended or deactivated in Okta.".into(),
                Retry,
            ),
            AppError::Store(_)
            | AppError::Access(_)
            | AppError::LogoutToken(LogoutTokenError::NotReady) => {
                (S::SERVICE_UNAVAILABLE, UNAVAILABLE.into(), Later)
            }
            AppError::LogoutToken(e) => (
                S::BAD_REQUEST,
                format!("logout_token refused: {e}").into(),
                OAuth,
            ),
            AppError::Internal(_) => (S::INTERNAL_SERVER_ERROR, INTERNAL.into(), Page),
        };
        Public {
            status,
            message,
            shape,
        }
    }

    /// Failures the operator should look at: ours, Okta's, or a token Okta
    /// signed that we could not verify.
    fn is_warning(&self) -> bool {
        matches!(
            self,
            AppError::Oidc(_)
                | AppError::Store(_)
                | AppError::Access(_)
                | AppError::LogoutToken(LogoutTokenError::NotReady)
                | AppError::Internal(_)
        ) && !self.is_user_refused()
    }

    /// Okta no longer knows the user, or their status refuses access: a
    /// decision about a person (a 403), not a failure to look into.
    fn is_user_refused(&self) -> bool {
        matches!(
            self,
            AppError::Access(AccessError::Groups {
                error: GroupsError::UserNotFound | GroupsError::UserInactive(_),
                ..
            })
        )
    }
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        self.public().status
    }

    fn error_response(&self) -> HttpResponse {
        let public = self.public();
        let status = public.status;
        if self.is_warning() {
            tracing::warn!(status = status.as_u16(), cause = %error_chain(self), "request failed");
        } else {
            tracing::info!(status = status.as_u16(), reason = %self, "request refused");
        }
        let mut response = HttpResponse::build(status);
        response.insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")));
        if public.shape == Shape::OAuth {
            return response.json(serde_json::json!({
                "error": "invalid_request",
                "error_description": public.message,
            }));
        }
        if public.shape == Shape::Later {
            response.insert_header((header::RETRY_AFTER, HeaderValue::from_static("5")));
        }
        let retry = (public.shape == Shape::Retry).then_some(("/oauth2/start", "Sign in again"));
        response
            .content_type("text/html; charset=utf-8")
            .body(html::message_page(
                status.canonical_reason().unwrap_or("Error"),
                &public.message,
                retry,
            ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The status and body text a client gets.
    fn seen(error: AppError) -> (u16, String) {
        let public = error.public();
        (public.status.as_u16(), public.message.into_owned())
    }

    #[test]
    fn causes_stay_in_the_logs_and_clients_get_fixed_text() {
        let cases = [
            AppError::Store(StoreError("redis at 10.0.0.7 refused".into())),
            AppError::Oidc(OidcError::Exchange("token endpoint said secret-xyz".into())),
            AppError::Oidc(OidcError::IdToken("bad signature secret-xyz".into())),
            AppError::Access(AccessError::Groups {
                login: "alice".into(),
                error: GroupsError::Unavailable("secret-xyz".into()),
            }),
            AppError::Internal("secret-xyz"),
        ];
        for error in cases {
            let cause = error_chain(&error);
            let (status, message) = seen(error);
            assert!(status >= 400, "{status}");
            assert!(
                !message.contains("secret-xyz") && !message.contains("10.0.0.7"),
                "{cause} → {message}"
            );
        }
    }

    #[test]
    fn each_kind_of_failure_has_its_status() {
        let unavailable = 503;
        assert_eq!(seen(AppError::Oidc(OidcError::NotReady)).0, unavailable);
        assert_eq!(seen(AppError::Store(StoreError("x".into()))).0, unavailable);
        assert_eq!(
            seen(AppError::LogoutToken(LogoutTokenError::NotReady)).0,
            unavailable
        );
        assert_eq!(
            seen(AppError::Access(AccessError::TokenKeys(
                crate::oidc::bearer::BearerError::NotReady
            )))
            .0,
            unavailable
        );
        assert_eq!(
            seen(AppError::Oidc(OidcError::Discovery("x".into()))).0,
            502
        );
        assert_eq!(seen(AppError::Oidc(OidcError::UnknownKey)).0, 400);
        let gone = AppError::Access(AccessError::Groups {
            login: "alice".into(),
            error: GroupsError::UserNotFound,
        });
        assert_eq!(
            seen(gone),
            (403, "Okta no longer knows this account.".into())
        );
        let rate_limited = AppError::Access(AccessError::Groups {
            login: "alice".into(),
            error: GroupsError::RateLimited,
        });
        assert_eq!(seen(rate_limited).0, unavailable);
        assert_eq!(seen(AppError::Internal("bug")).0, 500);
    }

    #[test]
    fn refusals_the_user_can_act_on_show_their_text() {
        let rd = AppError::from(RedirectError("The host is not allowed.".into()));
        assert_eq!(
            seen(rd),
            (
                400,
                "The return address (rd) was refused: The host is not allowed.".into()
            )
        );
        let query = AppError::from(PolicyError("unknown parameter `x`".into()));
        assert_eq!(seen(query), (400, "unknown parameter `x`".into()));
    }

    #[test]
    fn every_error_page_is_uncached_and_only_unavailable_says_when_to_retry() {
        let unavailable = AppError::Store(StoreError("x".into())).error_response();
        assert_eq!(unavailable.headers().get(header::RETRY_AFTER).unwrap(), "5");
        let bad = AppError::BadRequest("no".into()).error_response();
        assert!(bad.headers().get(header::RETRY_AFTER).is_none());
        for response in [unavailable, bad] {
            assert_eq!(
                response.headers().get(header::CACHE_CONTROL).unwrap(),
                "no-store"
            );
        }
    }

    #[test]
    fn a_user_okta_refuses_is_a_decision_not_a_warning() {
        let refused = |error| {
            AppError::Access(AccessError::Groups {
                login: "alice".into(),
                error,
            })
        };
        assert!(!refused(GroupsError::UserNotFound).is_warning());
        assert!(!refused(GroupsError::UserInactive("SUSPENDED".into())).is_warning());
        assert!(refused(GroupsError::Unavailable("timeout".into())).is_warning());
        assert!(AppError::Store(StoreError("x".into())).is_warning());
    }
}
