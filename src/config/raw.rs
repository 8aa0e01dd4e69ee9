//! The environment as read: the flat [`RawConfig`] that envy fills, the one
//! list of variable names ([`KNOWN_VARIABLES`]) derived from its fields, and the
//! hints for unknown variables that look like ours (typos, lower case).
//! It owns no parsing and no validation: every field stays an optional string
//! so that the area files (`idp`, `cookie`, …), not serde, word the errors.
//! Keep the struct flat: envy's `#[serde(flatten)]` breaks numbers and bools.

use serde::Deserialize;

/// Declares [`RawConfig`] and [`KNOWN_VARIABLES`] from one list of field
/// names, so that a variable cannot be read without being known or known
/// without being read.
macro_rules! raw_config {
    ($($field:ident),* $(,)?) => {
        /// Every variable as envy reads it (lowercased names), all optional strings.
        /// `Debug` (in `raw_debug`) shows no secret; `Serialize` is what it reads.
        #[derive(Default, Deserialize, serde::Serialize)]
        pub struct RawConfig {
            $(pub $field: Option<String>,)*
        }

        /// The variables we read, as they are spelled in the environment: the
        /// fields of [`RawConfig`] in upper case, in the same order.
        pub const KNOWN_VARIABLES: &[&str] = &[$({
            const LOWER: &str = stringify!($field);
            const UPPER: [u8; LOWER.len()] = ascii_upper_case(LOWER);
            utf8(&UPPER)
        }),*];
    };
}

raw_config! {
    idp_provider,
    idp_provider_url,
    idp_client_id,
    idp_client_secret,
    idp_client_secret_file,
    idp_service_account,
    idp_service_account_file,
    okta_api_client_id,
    okta_api_private_key,
    okta_api_private_key_file,
    idp_scopes,
    authenticate_service_url,
    address,
    cookie_secret,
    cookie_secret_file,
    cookie_name,
    cookie_domain,
    cookie_secure,
    cookie_expire,
    allowed_groups,
    allowed_users,
    allowed_domains,
    allowed_redirect_domains,
    trusted_proxies,
    groups_cache_ttl,
    groups_stale_if_error,
    session_store,
    metrics_address,
    log_level,
    log_format,
    okta_event_hook_secret,
    okta_event_hook_secret_file,
    bearer_audience,
    bearer_client_ids,
    bearer_scopes,
    skip_auth_routes,
    skip_auth_preflight,
    identity_jwt_key,
    identity_jwt_key_file,
}

/// `name` in ASCII upper case, at compile time (`N` is its length).
const fn ascii_upper_case<const N: usize>(name: &str) -> [u8; N] {
    let bytes = name.as_bytes();
    let mut upper = [0; N];
    let mut i = 0;
    while i < N {
        upper[i] = bytes[i].to_ascii_uppercase();
        i += 1;
    }
    upper
}

/// The bytes as text. Upper-casing ASCII keeps UTF-8 valid, so the empty
/// fallback never happens (a unit test compares every name with its field).
const fn utf8(bytes: &'static [u8]) -> &'static str {
    match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(_) => "",
    }
}

/// Whether an upper-case name starts with the first word of one of ours
/// (`IDP_`, `COOKIE_`, …): then an unknown one is likely a typo. Derived from
/// [`KNOWN_VARIABLES`]; a name without `_` (`ADDRESS`) gives no prefix.
fn has_our_prefix(upper: &str) -> bool {
    KNOWN_VARIABLES
        .iter()
        .filter_map(|known| known.split_inclusive('_').next())
        .filter(|prefix| prefix.ends_with('_'))
        .any(|prefix| upper.starts_with(prefix))
}

/// A warning for a variable that looks like ours but is not one we read.
pub(super) fn unknown_variable_warning(name: &str) -> Option<String> {
    let upper = name.to_ascii_uppercase();
    if !has_our_prefix(&upper) {
        return None;
    }
    if KNOWN_VARIABLES.contains(&upper.as_str()) {
        return Some(format!(
            "unknown variable {name} ignored; variable names are upper case: did you mean {upper}?"
        ));
    }
    let nearest = KNOWN_VARIABLES
        .iter()
        .map(|known| (edit_distance(&upper, known), *known))
        .min();
    match nearest {
        Some((distance, known)) if distance <= 3 && distance * 3 <= known.len() => Some(format!(
            "unknown variable {name} ignored; did you mean {known}?"
        )),
        _ => Some(format!("unknown variable {name} ignored")),
    }
}

/// Levenshtein distance (the names are short and ASCII).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = Vec::with_capacity(b.len() + 1);
        current.push(i + 1);
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous[j] + usize::from(ca != *cb);
            let delete = previous[j + 1] + 1;
            let insert = current[j] + 1;
            current.push(substitute.min(delete).min(insert));
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_support::{minimal, with, KEY_A};
    use crate::config::Config;

    #[test]
    fn the_name_list_is_the_struct_fields_in_upper_case() {
        // Serialize writes every field, also the `None` ones.
        let serde_json::Value::Object(fields) = serde_json::to_value(RawConfig::default()).unwrap()
        else {
            panic!("RawConfig serializes as an object");
        };
        let upper: Vec<String> = fields.keys().map(|f| f.to_ascii_uppercase()).collect();
        let mut known: Vec<String> = KNOWN_VARIABLES.iter().map(|k| k.to_string()).collect();
        known.sort();
        let mut sorted = upper.clone();
        sorted.sort();
        assert_eq!(known, sorted);
        assert!(KNOWN_VARIABLES.iter().all(|k| !k.is_empty()));
    }

    #[test]
    fn our_prefixes_are_the_first_words_of_our_names() {
        for ours in [
            "IDP_X",
            "COOKIE_X",
            "ALLOWED_X",
            "AUTHENTICATE_X",
            "GROUPS_X",
            "SESSION_X",
            "TRUSTED_X",
            "METRICS_X",
            "LOG_X",
            "OKTA_X",
            "BEARER_X",
            "SKIP_X",
            "IDENTITY_X",
        ] {
            assert!(has_our_prefix(ours), "{ours}");
        }
        for theirs in [
            "ADDRESSES",
            "IDPX",
            "PATH",
            "HOME",
            "REDIS_URL",
            "ADDRESS_X",
        ] {
            assert!(!has_our_prefix(theirs), "{theirs}");
        }
    }

    #[test]
    fn unknown_variables_that_look_like_ours_are_warned_about() {
        let mut vars = minimal();
        vars.extend(
            [
                ("COOKIE_SECERT", "x"),
                ("ALLOWED_GROUP", "x"),
                ("LOG_SOMETHING_ELSE_ENTIRELY", "x"),
                ("cookie_name", "x"),
                ("PATH", "/usr/bin"),
                ("HOME", "/root"),
                ("IDPPROVIDER", "x"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        let (c, warnings) = Config::from_vars(vars).unwrap();
        assert_eq!(
            c.cookie.name, "_forward_auth",
            "a lowercase name is not read"
        );
        assert_eq!(
            warnings,
            [
                "unknown variable ALLOWED_GROUP ignored; did you mean ALLOWED_GROUPS?",
                "unknown variable COOKIE_SECERT ignored; did you mean COOKIE_SECRET?",
                "unknown variable LOG_SOMETHING_ELSE_ENTIRELY ignored",
                "unknown variable cookie_name ignored; variable names are upper case: did you mean COOKIE_NAME?",
            ]
        );
    }

    #[test]
    fn a_typo_is_noted_next_to_the_problem_it_causes() {
        let mut vars = with(&[("COOKIE_SECRET", None)]);
        vars.push(("COOKIE_SECRT".to_string(), KEY_A.to_string()));
        let e = Config::from_vars(vars).unwrap_err();
        assert_eq!(e.problems.len(), 2, "{e}");
        assert!(e.problems[1].starts_with(
            "note: unknown variable COOKIE_SECRT ignored; did you mean COOKIE_SECRET?"
        ));
    }

    #[test]
    fn every_known_variable_is_a_raw_config_field() {
        for name in KNOWN_VARIABLES {
            let raw: RawConfig =
                envy::from_iter([(name.to_string(), "marker-value".to_string())]).unwrap();
            // Through serde, not Debug: Debug redacts the secrets.
            assert!(
                serde_json::to_string(&raw)
                    .unwrap()
                    .contains("marker-value"),
                "{name} is not read"
            );
        }
    }

    #[test]
    fn edit_distance_counts_single_character_edits() {
        assert_eq!(edit_distance("COOKIE_SECERT", "COOKIE_SECRET"), 2);
        assert_eq!(edit_distance("LOG_LEVL", "LOG_LEVEL"), 1);
        assert_eq!(edit_distance("", "ABC"), 3);
        assert_eq!(edit_distance("SAME", "SAME"), 0);
    }
}
