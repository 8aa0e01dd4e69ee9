use super::*;

const ES256: &str = include_str!("../../tests/keys/identity-es256.pem");
const ES256_NEXT: &str = include_str!("../../tests/keys/identity-es256-next.pem");
const ED25519: &str = include_str!("../../tests/keys/identity-ed25519.pem");
const P384: &str = include_str!("../../tests/keys/identity-p384.pem");

fn identity<'a>(groups: &'a [&'a str]) -> Identity<'a> {
    Identity {
        issuer: "https://auth.example.com",
        audience: "https://app.example.com",
        subject: "00u1",
        email: "alice@example.com",
        preferred_username: "alice@example.com",
        groups,
    }
}

#[test]
fn ec_and_ed25519_keys_are_read_and_published_first_one_signing() {
    let keys = IdentityKeys::parse(&format!("{ED25519},{ES256}"), "IDENTITY_JWT_KEY").unwrap();
    let jwks: Value = serde_json::from_str(&keys.jwks_json()).unwrap();
    let published = jwks["keys"].as_array().unwrap();
    assert_eq!(published.len(), 2);
    assert_eq!(published[0]["alg"], "EdDSA");
    assert_eq!(published[1]["alg"], "ES256");
    assert!(
        published.iter().all(|k| k.get("d").is_none()),
        "no private part"
    );
    assert_eq!(keys.signer().alg, Algorithm::EdDSA);
}

#[test]
fn escaped_newlines_and_concatenated_blocks_are_accepted() {
    let one_line = ES256.trim().replace('\n', "\\n");
    assert!(IdentityKeys::parse(&one_line, "IDENTITY_JWT_KEY").is_ok());
    let keys = IdentityKeys::parse(&format!("{ES256}\n{ES256_NEXT}"), "X").unwrap();
    assert_eq!(keys.keys.len(), 2);
}

#[test]
fn other_keys_are_refused_without_echoing_them() {
    for (text, needle) in [
        ("", "holds no PEM key"),
        (P384, "not an EC P-256 or Ed25519"),
        (
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----",
            "not an EC P-256",
        ),
    ] {
        let problems = IdentityKeys::parse(text, "IDENTITY_JWT_KEY").unwrap_err();
        assert!(problems[0].contains(needle), "{problems:?}");
        assert!(!problems[0].contains("AAAA"));
    }
    let problems = IdentityKeys::parse(&format!("{ES256},{P384}"), "IDENTITY_JWT_KEY").unwrap_err();
    assert!(
        problems[0].starts_with("IDENTITY_JWT_KEY key 2 "),
        "{problems:?}"
    );
}

#[test]
fn debug_never_shows_the_private_key() {
    let keys = IdentityKeys::parse(ES256, "IDENTITY_JWT_KEY").unwrap();
    let shown = format!("{keys:?}");
    assert!(shown.contains("[redacted]") && !shown.contains("PRIVATE"));
}

#[tokio::test]
async fn a_token_is_reused_for_the_same_identity_only() {
    let tokens = IdentityTokens::new(IdentityKeys::parse(ES256, "K").unwrap());
    let a = tokens.token(&identity(&["admins"])).await.unwrap();
    assert_eq!(a, tokens.token(&identity(&["admins"])).await.unwrap());
    assert_ne!(a, tokens.token(&identity(&["staff"])).await.unwrap());
}

#[test]
fn many_groups_are_cut_and_flagged() {
    let tokens = IdentityTokens::new(IdentityKeys::parse(ES256, "K").unwrap());
    let names: Vec<String> = (0..500).map(|i| format!("group-number-{i}")).collect();
    let groups: Vec<&str> = names.iter().map(String::as_str).collect();
    let token = tokens.sign(&identity(&groups), 1).unwrap();
    assert!(token.len() < 4000, "{} bytes", token.len());
    let payload = token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    assert_eq!(claims["groups_truncated"], true);
}
