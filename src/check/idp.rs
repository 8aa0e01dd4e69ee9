//! The checks against the IdP's OpenID Connect endpoints: discovery, the key
//! set, the web app's client credentials (a made-up code must be refused as
//! `invalid_grant`, not `invalid_client`) and the registered redirect URI. It
//! must never print the client secret and never redeem a real code.

use reqwest::header::ACCEPT;
use serde::Deserialize;
use url::Url;

use super::Report;
use crate::config::Config;
use crate::error_chain::error_chain;
use crate::random::random_token;

/// The parts of the discovery document the checks need.
#[derive(Debug, Deserialize)]
pub(super) struct Metadata {
    issuer: String,
    authorization_endpoint: Url,
    token_endpoint: Url,
    jwks_uri: Url,
}

pub(super) async fn check_discovery(
    config: &Config,
    http: &reqwest::Client,
    report: &mut Report,
) -> Option<Metadata> {
    let url = format!("{}/.well-known/openid-configuration", config.issuer);
    let fix_url = "IDP_PROVIDER_URL must be the issuer, e.g. https://ORG.okta.com or https://ORG.okta.com/oauth2/default, reachable from here";
    let response = match http
        .get(&url)
        .header(ACCEPT, "application/json")
        .send()
        .await
    {
        Ok(r) => r,
        Err(e) => {
            report.fail(
                "issuer",
                format!("{url} cannot be reached: {}", error_chain(&e)),
                fix_url,
            );
            return None;
        }
    };
    if !response.status().is_success() {
        report.fail(
            "issuer",
            format!("{url} answered {}", response.status()),
            fix_url,
        );
        return None;
    }
    let metadata: Metadata = match response.json().await {
        Ok(m) => m,
        Err(e) => {
            report.fail(
                "issuer",
                format!("{url} is not an OpenID Connect discovery document: {e}"),
                fix_url,
            );
            return None;
        }
    };
    if metadata.issuer != config.issuer {
        report.fail(
            "issuer",
            format!(
                "discovery names the issuer {} but IDP_PROVIDER_URL is {}: every ID token would be refused",
                metadata.issuer, config.issuer
            ),
            format!("set IDP_PROVIDER_URL={}", metadata.issuer),
        );
        return None;
    }
    report.ok(
        "issuer",
        format!(
            "{} answers discovery (not the admin console)",
            config.issuer
        ),
    );
    Some(metadata)
}

#[derive(Deserialize)]
struct Jwks {
    keys: Vec<Jwk>,
}

#[derive(Deserialize)]
struct Jwk {
    kty: String,
    #[serde(default)]
    alg: Option<String>,
}

pub(super) async fn check_keys(http: &reqwest::Client, metadata: &Metadata, report: &mut Report) {
    let url = &metadata.jwks_uri;
    let keys = match http.get(url.clone()).send().await {
        Ok(r) if r.status().is_success() => r.json::<Jwks>().await.map_err(|e| e.to_string()),
        Ok(r) => Err(format!("answered {}", r.status())),
        Err(e) => Err(error_chain(&e)),
    };
    match keys {
        Ok(keys) => {
            let rs256 = keys
                .keys
                .iter()
                .filter(|k| k.kty == "RSA" && k.alg.as_deref().is_none_or(|a| a == "RS256"))
                .count();
            if rs256 > 0 {
                report.ok("signing keys", format!("{rs256} RS256 key(s) at {url}"));
            } else {
                report.fail(
                    "signing keys",
                    format!("{url} holds no RS256 key: ID tokens cannot be verified"),
                    "use an Okta authorization server (its keys are RS256)",
                );
            }
        }
        Err(e) => report.fail(
            "signing keys",
            format!("{url}: {e}"),
            "check that the issuer's jwks_uri is reachable from here",
        ),
    }
}

/// An OAuth error body.
#[derive(Deserialize)]
struct OAuthError {
    error: String,
}

/// The web app's client id and secret: a code that does not exist must fail
/// as `invalid_grant` (the client was authenticated), not `invalid_client`.
pub(super) async fn check_client(
    config: &Config,
    http: &reqwest::Client,
    metadata: &Metadata,
    report: &mut Report,
) {
    let code = format!("forward-auth-check-{}", random_token());
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", config.redirect_uri.as_str()),
    ];
    // RFC 6749 §2.3.1: both halves form-encoded before Basic, as sign-in does.
    let id: String = url::form_urlencoded::byte_serialize(config.client_id.as_bytes()).collect();
    let secret: String =
        url::form_urlencoded::byte_serialize(config.client_secret.expose().as_bytes()).collect();
    let response = http
        .post(metadata.token_endpoint.clone())
        .basic_auth(id, Some(secret))
        .form(&form)
        .send()
        .await;
    let fix_credentials = "copy the Client ID and Client secret of the Okta web app into IDP_CLIENT_ID and IDP_CLIENT_SECRET";
    let (status, error) = match response {
        Ok(r) => {
            let status = r.status();
            let error = r.json::<OAuthError>().await.map(|e| e.error).ok();
            (status, error)
        }
        Err(e) => {
            report.fail(
                "client credentials",
                format!(
                    "{} cannot be reached: {}",
                    metadata.token_endpoint,
                    error_chain(&e)
                ),
                "check the network path to Okta",
            );
            return;
        }
    };
    match error.as_deref() {
        Some("invalid_grant") => report.ok(
            "client credentials",
            format!(
                "the token endpoint accepted IDP_CLIENT_ID {}",
                config.client_id
            ),
        ),
        Some("invalid_client") => report.fail(
            "client credentials",
            format!("the token endpoint refused IDP_CLIENT_ID {} or its secret (invalid_client)", config.client_id),
            fix_credentials,
        ),
        Some("unauthorized_client") => report.fail(
            "client credentials",
            "the app may not use the Authorization Code grant (unauthorized_client)",
            "in the Okta app's General settings, allow the Authorization Code grant (and Refresh Token)",
        ),
        other => report.fail(
            "client credentials",
            format!(
                "unexpected answer {status} {} from the token endpoint",
                other.unwrap_or("without an OAuth error")
            ),
            fix_credentials,
        ),
    }
}

/// The redirect URI derived from `AUTHENTICATE_SERVICE_URL` must be registered
/// on the app: Okta answers its authorize endpoint with a 400 page otherwise.
pub(super) async fn check_redirect_uri(
    config: &Config,
    http: &reqwest::Client,
    metadata: &Metadata,
    report: &mut Report,
) {
    let mut url = metadata.authorization_endpoint.clone();
    let state = random_token();
    url.query_pairs_mut()
        .append_pair("client_id", &config.client_id)
        .append_pair("response_type", "code")
        .append_pair("scope", "openid")
        .append_pair("redirect_uri", &config.redirect_uri)
        .append_pair("state", &state)
        .append_pair("nonce", &state)
        .append_pair(
            "code_challenge",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        )
        .append_pair("code_challenge_method", "S256");
    match http.get(url).send().await {
        Ok(r) if r.status().is_success() || r.status().is_redirection() => report.ok(
            "redirect URI",
            format!("{} is accepted by the app", config.redirect_uri),
        ),
        Ok(r) => report.fail(
            "redirect URI",
            format!(
                "the authorize endpoint answered {} for redirect_uri {}",
                r.status(),
                config.redirect_uri
            ),
            format!(
                "add {} to the Okta app's Sign-in redirect URIs (exactly), or correct AUTHENTICATE_SERVICE_URL / IDP_CLIENT_ID",
                config.redirect_uri
            ),
        ),
        Err(e) => report.fail(
            "redirect URI",
            format!("the authorize endpoint cannot be reached: {}", error_chain(&e)),
            "check the network path to Okta",
        ),
    }
}
