//! The checks against Okta's management API: the API credential (a user that
//! does not exist must be a 404, not a 401 or 403) and, with `--user`, that
//! user's groups and what the global policy decides for them. It must never
//! print the credential and never change anything at Okta.

use reqwest::StatusCode;
use url::Url;

use super::Report;
use crate::config::Config;
use crate::groups::{GroupsError, OktaGroupsClient};
use crate::okta_api::{ApiCredential, ApiError};
use crate::policy::{decide, AllowLists, Decision, Subject};
use crate::random::random_token;

/// The management API credential: a user that does not exist must be a 404
/// (the credential was accepted), not a 401 or 403.
pub(super) async fn check_api_credential(
    config: &Config,
    http: &reqwest::Client,
    user: Option<&str>,
    report: &mut Report,
) {
    let credential = match crate::startup::api_credential(config) {
        Ok(Some(credential)) => credential,
        Ok(None) => {
            report.fail(
                "API credential",
                "IDP_PROVIDER=okta needs an API credential",
                "set OKTA_API_CLIENT_ID + OKTA_API_PRIVATE_KEY (service app) or IDP_SERVICE_ACCOUNT (API token)",
            );
            return;
        }
        Err(e) => {
            report.fail("API credential", e, "see the message");
            return;
        }
    };
    let service_app = matches!(credential, ApiCredential::ServiceApp(_));
    let names = credential.names();
    let probe = format!("forward-auth-check-{}", random_token());
    let mut url = match Url::parse(&config.org_url) {
        Ok(url) => url,
        Err(e) => {
            report.fail(
                "API credential",
                format!("org URL: {e}"),
                "fix IDP_PROVIDER_URL",
            );
            return;
        }
    };
    if let Ok(mut segments) = url.path_segments_mut() {
        segments
            .pop_if_empty()
            .extend(["api", "v1", "users", &probe, "groups"]);
    }
    url.set_query(Some("limit=1"));
    let fix_refused = if service_app {
        "in the service app: grant the okta.users.read scope (Okta API Scopes) and assign it the Read-only Administrator role"
    } else {
        "give the token's admin the Read-only Administrator role"
    };
    let fix_token = if service_app {
        "check OKTA_API_CLIENT_ID and that the app's public keys hold the public half of OKTA_API_PRIVATE_KEY"
    } else {
        "create an API token (Security → API → Tokens) as an admin with at least the Read-only Administrator role, and set IDP_SERVICE_ACCOUNT to it"
    };
    match credential.get(http, &url).await.map(|r| r.status()) {
        Ok(StatusCode::NOT_FOUND) | Ok(StatusCode::OK) => report.ok(
            "API credential",
            format!("the groups API at {} accepts {names}", config.org_url),
        ),
        Ok(StatusCode::UNAUTHORIZED) => report.fail(
            "API credential",
            if service_app {
                "Okta refused the service app's access token (401)".to_string()
            } else {
                "Okta refused IDP_SERVICE_ACCOUNT (401): the token is wrong, revoked, or expired after 30 days unused".to_string()
            },
            fix_token,
        ),
        Ok(StatusCode::FORBIDDEN) => report.fail(
            "API credential",
            format!("{names} may not read users (403)"),
            fix_refused,
        ),
        Ok(StatusCode::TOO_MANY_REQUESTS) => report.fail(
            "API credential",
            "Okta's rate limit is reached (429)",
            "wait for the limit's reset and run the check again",
        ),
        Ok(status) => report.fail(
            "API credential",
            format!("the groups API answered {status}"),
            fix_token,
        ),
        Err(ApiError::Token(e)) if e.contains("invalid_scope") => report.fail(
            "API credential",
            format!("the service app may not ask for okta.users.read: {e}"),
            fix_refused,
        ),
        Err(ApiError::Token(e)) => report.fail("API credential", e, fix_token),
        Err(ApiError::Transport(e)) => report.fail(
            "API credential",
            format!("{} cannot be reached: {e}", config.org_url),
            "check the network path to Okta",
        ),
    }
    if let Some(login) = user {
        check_user(config, http, credential, login, report).await;
    }
}

/// `--user`: the user's groups as the service would read them, and what the
/// global policy decides.
async fn check_user(
    config: &Config,
    http: &reqwest::Client,
    credential: ApiCredential,
    login: &str,
    report: &mut Report,
) {
    let client = match OktaGroupsClient::with_credential(http.clone(), &config.org_url, credential)
    {
        Ok(client) => client,
        Err(e) => {
            report.fail("user", e, "fix IDP_PROVIDER_URL");
            return;
        }
    };
    match client.fetch(login).await {
        Ok(groups) => {
            let names: Vec<&str> = groups.iter().map(|g| g.name.as_str()).collect();
            report.ok(
                "user",
                format!(
                    "{login} is in {} group(s): {}",
                    names.len(),
                    names.join(", ")
                ),
            );
            let email = if login.contains('@') { login } else { "" };
            let subject = Subject {
                login,
                email,
                groups: &groups,
            };
            match decide(&config.policy, &AllowLists::default(), &subject) {
                Decision::Allow => report.ok(
                    "global policy",
                    format!("{login} is allowed (ALLOWED_GROUPS / ALLOWED_USERS / ALLOWED_DOMAINS)"),
                ),
                Decision::Deny(reason) => report.fail(
                    "global policy",
                    format!("{login} would get 403: {reason}"),
                    "add the user or one of their groups to ALLOWED_GROUPS / ALLOWED_USERS / ALLOWED_DOMAINS, if they should pass",
                ),
            }
        }
        Err(GroupsError::UserNotFound) => report.fail(
            "user",
            format!("Okta does not know {login}"),
            "give the user's Okta login (usually the email) or id (00u…)",
        ),
        Err(e) => report.fail(
            "user",
            format!("{login}: {e}"),
            "see the API credential line above",
        ),
    }
}
