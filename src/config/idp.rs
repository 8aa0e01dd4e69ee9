//! The identity provider: `IDP_PROVIDER`, the issuer (`IDP_PROVIDER_URL`), the
//! web app's client ID and secret, the management API credential (an API token
//! or an Okta API service app), the event hook secret and the scopes. It
//! catches the issuers people copy by mistake (admin console, discovery
//! document, placeholders) and never echoes a secret or a URL's password.
//! It must not contact Okta: `forward-auth check` does that.

use url::Url;

use super::parse::{get, is_loopback, secret, shown, Problems};
use super::{Provider, RawConfig, ServiceAppConfig};
use crate::okta_api::key::AssertionKey;
use crate::secret::Secret;

/// The identity provider's settings; a `None` that is required recorded a problem.
pub(super) struct Idp {
    pub(super) provider: Option<Provider>,
    /// (issuer without trailing `/`, org origin).
    pub(super) issuer: Option<(String, String)>,
    pub(super) client_id: Option<String>,
    pub(super) client_secret: Option<Secret>,
    pub(super) service_account: Option<Secret>,
    pub(super) service_app: Option<ServiceAppConfig>,
    pub(super) event_hook_secret: Option<Secret>,
    pub(super) scopes: Vec<String>,
}

/// Reads and checks the identity provider's variables, in this order.
pub(super) fn check(raw: &RawConfig, p: &mut Problems) -> Idp {
    let provider = match get(&raw.idp_provider).map(|v| v.to_ascii_lowercase()) {
        Some(v) if v == "okta" => Some(Provider::Okta),
        Some(v) if v == "oidc" => Some(Provider::Oidc),
        Some(_) => p.add(
            "IDP_PROVIDER must be `okta` (groups from the Okta API) or `oidc` (groups from the ID token)",
        ),
        None => p.add(
            "IDP_PROVIDER is not set: set it to `okta` (groups from the Okta API) or `oidc` (groups from the ID token)",
        ),
    };

    let issuer = match get(&raw.idp_provider_url) {
        Some(v) => parse_issuer(&v, p),
        None => p.add(
            "IDP_PROVIDER_URL is not set: set it to your Okta issuer, e.g. https://ORG.okta.com or https://ORG.okta.com/oauth2/default",
        ),
    };

    let client_id = get(&raw.idp_client_id)
        .or_else(|| p.add("IDP_CLIENT_ID is not set: copy the Client ID of your Okta web app"));
    let client_secret = match secret(
        "IDP_CLIENT_SECRET",
        get(&raw.idp_client_secret),
        get(&raw.idp_client_secret_file),
        p,
    ) {
        Ok(Some(secret)) => Some(secret),
        Ok(None) => p.add(
            "IDP_CLIENT_SECRET is not set: copy the Client secret of your Okta web app \
             into IDP_CLIENT_SECRET (or a file named by IDP_CLIENT_SECRET_FILE)",
        ),
        Err(()) => None,
    };
    let service_app = service_app(raw, p);
    let service_account = match secret(
        "IDP_SERVICE_ACCOUNT",
        get(&raw.idp_service_account),
        get(&raw.idp_service_account_file),
        p,
    ) {
        Ok(Some(_)) if service_app.is_some() => p.add(
            "IDP_SERVICE_ACCOUNT and OKTA_API_CLIENT_ID are both set: keep one API \
             credential (the service app is what Okta recommends; remove IDP_SERVICE_ACCOUNT)",
        ),
        Ok(None)
            if provider == Some(Provider::Okta)
                && service_app.is_none()
                && [
                    &raw.okta_api_client_id,
                    &raw.okta_api_private_key,
                    &raw.okta_api_private_key_file,
                ]
                .into_iter()
                .all(|v| get(v).is_none()) =>
        {
            p.add(
                "IDP_SERVICE_ACCOUNT is not set but IDP_PROVIDER is okta: set it (or \
                 IDP_SERVICE_ACCOUNT_FILE) to an Okta API token (Security > API > Tokens), or \
                 set OKTA_API_CLIENT_ID + OKTA_API_PRIVATE_KEY for an Okta API service app \
                 with the okta.users.read scope (what Okta recommends), or use \
                 IDP_PROVIDER=oidc to read groups from the ID token",
            )
        }
        Ok(account) => account,
        Err(()) => None,
    };

    let event_hook_secret = secret(
        "OKTA_EVENT_HOOK_SECRET",
        get(&raw.okta_event_hook_secret),
        get(&raw.okta_event_hook_secret_file),
        p,
    )
    .unwrap_or(None);

    let scopes = get(&raw.idp_scopes).map_or_else(
        || {
            ["openid", "email", "profile", "offline_access"]
                .map(String::from)
                .to_vec()
        },
        |v| {
            let mut scopes: Vec<String> = Vec::new();
            for s in v.split(|c: char| c == ',' || c.is_whitespace()) {
                if !s.is_empty() && !scopes.iter().any(|x| x == s) {
                    scopes.push(s.to_string());
                }
            }
            scopes
        },
    );
    if !scopes.iter().any(|s| s == "openid") {
        p.push(
            "IDP_SCOPES must contain `openid`: e.g. `openid email profile offline_access`"
                .to_string(),
        );
    }

    Idp {
        provider,
        issuer,
        client_id,
        client_secret,
        service_account,
        service_app,
        event_hook_secret,
        scopes,
    }
}

/// `OKTA_API_CLIENT_ID` + `OKTA_API_PRIVATE_KEY` (or its `_FILE`): both or neither.
fn service_app(raw: &RawConfig, p: &mut Problems) -> Option<ServiceAppConfig> {
    let client_id = get(&raw.okta_api_client_id);
    let key = secret(
        "OKTA_API_PRIVATE_KEY",
        get(&raw.okta_api_private_key),
        get(&raw.okta_api_private_key_file),
        p,
    );
    match (client_id, key) {
        (_, Err(())) => None,
        (None, Ok(None)) => None,
        (Some(_), Ok(None)) => p.add(
            "OKTA_API_CLIENT_ID is set but OKTA_API_PRIVATE_KEY is not: set it (or \
             OKTA_API_PRIVATE_KEY_FILE) to the service app's private key, as PEM or JWK",
        ),
        (None, Ok(Some(_))) => p.add(
            "OKTA_API_PRIVATE_KEY is set but OKTA_API_CLIENT_ID is not: set it to the Client ID \
             of the Okta API service app",
        ),
        (Some(client_id), Ok(Some(key))) => match AssertionKey::parse(key.expose()) {
            Ok(key) => Some(ServiceAppConfig { client_id, key }),
            Err(e) => p.add(&format!("OKTA_API_PRIVATE_KEY {e}")),
        },
    }
}

/// `IDP_PROVIDER_URL` -> (issuer without trailing `/`, org origin).
fn parse_issuer(value: &str, p: &mut Problems) -> Option<(String, String)> {
    let example = "e.g. https://ORG.okta.com or https://ORG.okta.com/oauth2/default";
    let var = shown("IDP_PROVIDER_URL", value);
    let Some(url) = Url::parse(value).ok().filter(|u| u.has_host()) else {
        return p.add(&format!("{var} is not an absolute URL: use {example}"));
    };
    let before = p.count();
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => p.push(format!(
            "{var} uses http: Okta issuers are https (plain http is accepted only on \
             loopback addresses, for testing)"
        )),
        _ => p.push(format!("{var} must be an https URL: use {example}")),
    }
    if !url.username().is_empty() || url.password().is_some() {
        p.push(format!(
            "{var} must not contain a user name or password: use the bare issuer URL"
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        p.push(format!(
            "{var} must not have a query or fragment: use the issuer URL only, {example}"
        ));
    }
    if let Some((org, domain)) = url.host_str().and_then(okta_admin_org) {
        p.push(format!(
            "{var} is the Okta admin console, never the issuer: use https://ORG.okta.com \
             (without -admin), here https://{org}.{domain}"
        ));
    }
    if let Some(issuer) = value
        .trim_end_matches('/')
        .strip_suffix("/.well-known/openid-configuration")
    {
        p.push(format!(
            "{var} is the discovery document, not the issuer: use the part before \
             /.well-known, here {issuer}"
        ));
    }
    if url.host_str().is_some_and(is_placeholder_org) {
        p.push(format!(
            "{var} still names the placeholder org from an example: use your Okta org's \
             own host (Okta admin console → your name at the top right), {example}"
        ));
    }
    if p.count() > before {
        return None;
    }
    // Okta's `iss` has no trailing slash, and `Url` would add one to a bare origin.
    let issuer = value.trim_end_matches('/').to_string();
    Some((issuer, url.origin().ascii_serialization()))
}

/// Whether `host` is a placeholder copied from an example (`ORG.okta.com`,
/// `YOUR-ORG.okta.com`, `{yourOktaDomain}`…) rather than a real org.
fn is_placeholder_org(host: &str) -> bool {
    let first = host.split('.').next().unwrap_or_default();
    let squashed: String = first
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase();
    matches!(
        squashed.as_str(),
        "org"
            | "yourorg"
            | "yourokta"
            | "youroktaorg"
            | "youroktadomain"
            | "yourdomain"
            | "oktadomain"
            | "orgname"
            | "yourorgname"
            | "subdomain"
            | "yoursubdomain"
    )
}

/// (`ORG`, domain) when `host` is `ORG-admin.okta.com` (or oktapreview.com, okta-emea.com).
fn okta_admin_org(host: &str) -> Option<(&str, &str)> {
    let (first, domain) = host.split_once('.')?;
    let org = first.strip_suffix("-admin")?;
    matches!(domain, "okta.com" | "oktapreview.com" | "okta-emea.com").then_some((org, domain))
}

#[cfg(test)]
mod tests;
