//! One error type for every handler, mapped to status codes in one place.
//! Clients get short fixed bodies (no internal text, no token, no stack); logs get
//! the cause. Every variant maps to a 4xx or 5xx: a deny path cannot produce a
//! 2xx because nothing here can.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

use crate::html;

/// Everything that ends a request without letting it through.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The client sent something we cannot read (bad cookie format is *not* this:
    /// a bad cookie is simply no session). The text is shown to the user.
    #[error("bad request: {0}")]
    BadRequest(String),
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
    /// Okta answered the code exchange with something we cannot use.
    #[error("bad answer from the IdP: {0}")]
    Upstream(String),
    /// Okta or the session store cannot answer right now.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A bug or an unexpected failure; the text goes to the log only.
    #[error("internal error: {0}")]
    Internal(String),
}

impl AppError {
    fn public_message(&self) -> &str {
        match self {
            AppError::BadRequest(m)
            | AppError::InvalidRequest(m)
            | AppError::SignIn(m)
            | AppError::SignInDenied(m) => m,
            AppError::Upstream(_) => "Okta did not complete the sign-in. Please retry in a moment.",
            AppError::Unavailable(_) => {
                "The sign-in service is temporarily unavailable. Please retry in a moment."
            }
            AppError::Internal(_) => "Something went wrong on our side.",
        }
    }
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            AppError::BadRequest(_) | AppError::InvalidRequest(_) | AppError::SignIn(_) => {
                StatusCode::BAD_REQUEST
            }
            AppError::SignInDenied(_) => StatusCode::FORBIDDEN,
            AppError::Upstream(_) => StatusCode::BAD_GATEWAY,
            AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        match self {
            AppError::Internal(cause)
            | AppError::Unavailable(cause)
            | AppError::Upstream(cause) => {
                tracing::warn!(status = status.as_u16(), cause = %cause, "request failed");
            }
            _ => tracing::info!(status = status.as_u16(), reason = %self, "request refused"),
        }
        if let AppError::InvalidRequest(description) = self {
            return HttpResponse::build(status)
                .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
                .json(serde_json::json!({
                    "error": "invalid_request",
                    "error_description": description,
                }));
        }
        let retry = matches!(
            self,
            AppError::SignIn(_) | AppError::SignInDenied(_) | AppError::Upstream(_)
        )
        .then_some("/oauth2/start");
        let mut response = HttpResponse::build(status)
            .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
            .content_type("text/html; charset=utf-8")
            .body(html::message_page(
                status.canonical_reason().unwrap_or("Error"),
                self.public_message(),
                retry.map(|href| (href, "Sign in again")),
            ));
        if matches!(self, AppError::Unavailable(_)) {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        response
    }
}
