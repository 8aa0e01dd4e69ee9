//! Property tests over the parsers that read what strangers send: the redirect
//! validator, the forwarded-header reader, the cookie codecs (signed session
//! ids, sealed pending sign-ins), the policy query parser and the identity
//! headers. Random and mutated inputs never panic, never allow a host outside
//! the allow-list, never yield a header value with CR, LF or NUL, and never
//! exceed the size bounds. Case counts stay modest so CI stays fast.

use proptest::prelude::*;
use url::Url;

use crate::forwarded::{original_request_preferring, Prefer, Source, TrustedProxies};
use crate::identity_headers::UserGroups;
use crate::pending::{self, PendingCodec, PendingSignIn, MAX_VALUE};
use crate::policy::{AllowLists, Group};
use crate::redirect::{shortened, AllowedRedirects, MAX_URL};
use crate::secret::{CookieKey, Secret};
use crate::session::{CookieCodec, SessionId};

fn config() -> ProptestConfig {
    ProptestConfig::with_cases(256)
}

fn allowed() -> AllowedRedirects {
    let service = Url::parse("https://auth.example.com/").unwrap();
    AllowedRedirects::new(
        &service,
        Some(".corp.example.org"),
        &["app.example.net".to_string()],
    )
    .unwrap()
}

/// Hosts the allow-list above accepts.
fn host_is_allowed(host: &str) -> bool {
    host == "auth.example.com"
        || host == "app.example.net"
        || host == "corp.example.org"
        || host.ends_with(".corp.example.org")
}

/// Text that looks like the start of a URL, then URL-ish noise: the inputs an
/// attacker would try against a redirect check.
fn urlish() -> impl Strategy<Value = String> {
    let starts = prop::sample::select(vec![
        "",
        "/",
        "//",
        "/\\",
        "\\\\",
        "http://",
        "https://",
        "HTTPS://",
        "https:",
        "https:/",
        "https://app.example.net",
        "https://auth.example.com@",
        "https://evil.example",
        "javascript:",
        "%2F%2F",
        "/%5C",
        "%09",
        "//corp.example.org",
    ]);
    let noise = "[a-zA-Z0-9./\\\\%@:?#&=_~ \t\r\n\u{0}\u{3000}-]{0,40}";
    (starts, noise, prop::bool::ANY, 0usize..3000).prop_map(|(start, noise, long, pad)| {
        let mut s = format!("{start}{noise}");
        if long {
            s.push_str(&"x".repeat(pad));
        }
        s
    })
}

fn has_breaking_char(value: &str) -> bool {
    value.chars().any(|c| c == '\r' || c == '\n' || c == '\0')
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn the_redirect_validator_never_allows_a_foreign_host_or_a_long_target(
        rd in prop_oneof![urlish(), "\\PC{0,60}"]
    ) {
        if let Ok(target) = allowed().validate(&rd) {
            prop_assert!(target.len() <= MAX_URL, "{} bytes", target.len());
            prop_assert!(!target.chars().any(char::is_control), "{target:?}");
            if target.starts_with('/') {
                prop_assert!(!target.starts_with("//") && !target.starts_with("/\\"), "{target:?}");
                // A browser resolves it against our origin: it must stay there.
                let resolved = Url::parse("https://auth.example.com/").unwrap().join(&target).unwrap();
                prop_assert_eq!(resolved.host_str(), Some("auth.example.com"));
            } else {
                let url = Url::parse(&target).unwrap();
                prop_assert!(matches!(url.scheme(), "http" | "https"));
                prop_assert!(host_is_allowed(url.host_str().unwrap_or("")), "{target}");
            }
        }
    }

    #[test]
    fn shortened_urls_respect_both_bounds(
        path in "[a-z/]{0,3000}",
        query in "[a-z=&]{0,3000}",
        room in 0usize..5000,
    ) {
        let url = format!("https://app.example.net/{path}?{query}");
        if let Some(cut) = shortened(&url, |c| c.len() <= room) {
            prop_assert!(cut.len() <= MAX_URL && cut.len() <= room);
            prop_assert!(cut.starts_with("https://app.example.net/"));
        }
    }

    #[test]
    fn forwarded_headers_never_panic_or_yield_a_url_with_breaking_characters(
        original in prop::option::of(urlish()),
        host in prop::option::of("[a-zA-Z0-9.:\\[\\]@/\\\\%?# -]{0,30}"),
        uri in prop::option::of(urlish()),
        proto in prop::option::of(prop::sample::select(vec!["http", "https", "wss", "ftp", "", "HTTPS, http"])),
        method in prop::option::of("[A-Za-z \r\n]{0,20}"),
        trusted_peer in prop::bool::ANY,
        prefer_forwarded in prop::bool::ANY,
    ) {
        let headers: Vec<(&str, Option<&str>)> = vec![
            ("x-original-url", original.as_deref()),
            ("x-forwarded-host", host.as_deref()),
            ("x-forwarded-uri", uri.as_deref()),
            ("x-forwarded-proto", proto),
            ("x-forwarded-method", method.as_deref()),
            ("host", Some("auth.example.com")),
        ];
        let lookup = |name: &str| headers.iter().find(|(k, _)| *k == name).and_then(|(_, v)| *v);
        let peer = if trusted_peer { "127.0.0.1" } else { "203.0.113.9" };
        let prefer = if prefer_forwarded { Prefer::ForwardedHeaders } else { Prefer::OriginalUrl };
        let trusted = TrustedProxies::parse("127.0.0.1/32").unwrap();
        let read = original_request_preferring(prefer, peer.parse().ok(), lookup, &trusted, "https");
        if let Ok(request) = read {
            prop_assert!(request.method.chars().all(|c| c.is_ascii_uppercase()));
            if let Some(url) = &request.url {
                prop_assert!(matches!(url.scheme(), "http" | "https"));
                prop_assert!(!has_breaking_char(url.as_str()));
            }
            let sent_forwarded = original.is_some() || host.is_some() || uri.is_some()
                || proto.is_some() || method.is_some();
            if !trusted_peer && sent_forwarded {
                prop_assert_eq!(request.source, Source::Unverifiable);
                prop_assert!(request.url.is_none());
            }
        }
    }

    #[test]
    fn session_cookies_round_trip_and_mutations_never_verify(
        id in prop::array::uniform20(any::<u8>()),
        at in 0usize..64,
        replacement in "[A-Za-z0-9_.=-]",
        garbage in "\\PC{0,300}",
    ) {
        let codec = CookieCodec::new(vec![CookieKey::new([7; 32])]);
        let id = SessionId::from_key(base64_url(&id).as_bytes()).unwrap();
        let value = codec.encode_session(&id);
        prop_assert!(value.len() < 100 && !has_breaking_char(&value));
        prop_assert_eq!(codec.decode_session(&value), Some(id.clone()));
        let at = at % value.len();
        let mut mutated = value.clone();
        mutated.replace_range(at..at + 1, &replacement);
        if mutated != value {
            prop_assert_ne!(codec.decode_session(&mutated), Some(id));
        }
        prop_assert!(codec.decode_session(&garbage).is_none());
    }

    #[test]
    fn pending_cookies_stay_small_and_never_open_when_tampered(
        rds in prop::collection::vec("/[a-z0-9/?=&]{0,2047}", 1..8),
        at in any::<usize>(),
        garbage in "\\PC{0,200}",
    ) {
        let codec = PendingCodec::new(&[CookieKey::new([9; 32])]);
        let now = 1_000_000;
        let mut list = Vec::new();
        for (i, rd) in rds.iter().enumerate() {
            let entry = PendingSignIn {
                state: format!("state-{i}-{}", "s".repeat(24)),
                nonce: "n".repeat(32),
                pkce_verifier: Secret::new("v".repeat(43)),
                rd: rd.clone(),
                created_at: now,
            };
            list = pending::push(entry, list, now);
        }
        let value = codec.seal(&list).expect("push keeps the list sealable");
        prop_assert!(value.len() <= MAX_VALUE);
        prop_assert!(value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        prop_assert_eq!(codec.open(&value).len(), list.len());
        let at = at % value.len();
        let flipped: String = value
            .char_indices()
            .map(|(i, c)| if i == at { if c == 'A' { 'B' } else { 'A' } } else { c })
            .collect();
        prop_assert!(codec.open(&flipped).is_empty());
        prop_assert!(codec.open(&garbage).is_empty());
    }

    #[test]
    fn the_policy_parser_never_panics_and_never_unions(
        query in "[a-z_=&,%0-9@.]{0,80}",
        key in prop::sample::select(vec!["allowed_groups", "allowed_users", "allowed_domains"]),
        a in "[a-z]{1,8}",
        b in "[a-z]{1,8}",
    ) {
        if let Ok(lists) = AllowLists::from_query(&query) {
            for list in [&lists.groups, &lists.users, &lists.domains] {
                prop_assert!(list.iter().all(|e| !e.is_empty()));
            }
        }
        let repeated = format!("{key}={a}&{key}={b}");
        prop_assert!(AllowLists::from_query(&repeated).is_err());
    }

    #[test]
    fn identity_headers_never_break_and_keep_one_value_per_group(
        names in prop::collection::vec("\\PC{1,20}", 1..6),
    ) {
        let groups = UserGroups::new(
            names.iter().map(|n| Group { id: n.clone(), name: n.clone() }).collect(),
        );
        prop_assert!(!groups.rendered.as_str().chars().any(char::is_control), "{:?}", groups.rendered.as_str());
        prop_assert_eq!(groups.rendered.as_str().split(',').count(), names.len());
    }
}

fn base64_url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
