//! Micro-benchmarks of the decision path, piece by piece: cookie verification,
//! session lookup, groups lookup, policy, header rendering, and the forwarded
//! URL; then the whole allowed check as it was before issue 15 (three
//! lookups) beside `Access::check` as built (one lookup, no MAC when warm),
//! and the raw HMAC-SHA256 cost per cookie. Run with `cargo bench --bench decision`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test and benchmark code: a failure should stop loudly"
)]

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use forward_auth::clock::now;
use forward_auth::forwarded::{original_request, TrustedProxies};
use forward_auth::groups::{GroupsCache, OktaGroupsClient};
use forward_auth::identity_headers::{self, UserGroups};
use forward_auth::policy::{decide, AllowLists, Decision, Subject};
use forward_auth::secret::{CookieKey, Secret};
use forward_auth::session::{CookieCodec, MemoryStore, SessionId, SessionStore};

mod shared;
use shared::{groups, session};

fn benches(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    let codec = CookieCodec::new(vec![CookieKey::new([7; 32])]);
    let rotated = CookieCodec::new(vec![CookieKey::new([8; 32]), CookieKey::new([7; 32])]);
    let id = SessionId::random();
    let cookie = codec.encode_session(&id);
    c.bench_function("cookie: verify (one key)", |b| {
        b.iter(|| codec.decode_session(black_box(&cookie)))
    });
    c.bench_function("cookie: verify (second of two keys)", |b| {
        b.iter(|| rotated.decode_session(black_box(&cookie)))
    });

    let store = MemoryStore::new();
    runtime.block_on(async {
        for _ in 0..10_000 {
            store.save(&SessionId::random(), &session()).await.unwrap();
        }
        store.save(&id, &session()).await.unwrap();
    });
    c.bench_function("session: memory store lookup (10k sessions)", |b| {
        b.iter(|| runtime.block_on(store.load(black_box(&id))))
    });

    let client = OktaGroupsClient::new(
        reqwest::Client::new(),
        "http://127.0.0.1:9",
        Secret::new("unused".into()),
    )
    .unwrap();
    let cache = GroupsCache::new(client, Duration::from_secs(300));
    runtime.block_on(cache.remember("00ualice0000000000000", groups(20)));
    c.bench_function("groups: warm cache lookup (20 groups)", |b| {
        b.iter(|| runtime.block_on(cache.groups_of(black_box("00ualice0000000000000"))))
    });
    // As built (issue 15): a warm check asks the cache only whether the
    // session's link still stands, and shares the rendered header values.
    let (_, link) = runtime
        .block_on(cache.groups_and_link("00ualice0000000000000"))
        .unwrap();
    let link = link.expect("a fresh answer links");
    c.bench_function("groups: the session's link (as built)", |b| {
        b.iter(|| cache.linked(black_box(&link)))
    });
    let warm = session();
    c.bench_function("headers: the session's shared values (as built)", |b| {
        b.iter(|| forward_auth::access::SessionHot::identity_headers(black_box(&warm)))
    });

    let user_groups = groups(20);
    let global = AllowLists::from_env_lists(Some("group-19"), None, Some("example.com"));
    let subject = Subject {
        login: "alice@example.com",
        email: "alice@example.com",
        groups: &user_groups,
    };
    c.bench_function("policy: route query parse", |b| {
        b.iter(|| AllowLists::from_query(black_box("allowed_groups=group-3,group-7")))
    });
    let route = AllowLists::from_query("allowed_groups=group-3,group-7").unwrap();
    c.bench_function("policy: decide (20 groups, 3 lists)", |b| {
        b.iter(|| decide(black_box(&global), black_box(&route), black_box(&subject)))
    });

    let rendered = UserGroups::new(user_groups.clone());
    c.bench_function(
        "headers: render (20 groups, names joined once per fetch)",
        |b| {
            b.iter(|| {
                identity_headers::render(
                    black_box("alice@example.com"),
                    "alice@example.com",
                    &rendered,
                )
            })
        },
    );

    let trusted = TrustedProxies::parse("127.0.0.1/32,::1/128").unwrap();
    let peer = Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
    c.bench_function("forwarded: X-Original-URL", |b| {
        b.iter(|| {
            original_request(
                peer,
                |name| match name {
                    "x-original-url" => Some("https://app.example.com/some/path?query=1"),
                    "x-original-method" => Some("GET"),
                    _ => None,
                },
                &trusted,
                "https",
            )
        })
    });

    api_client_benches(c, &runtime);
    one_lookup_benches(c, &runtime, &codec, &store, &cache, &global);
}

/// The whole allowed check: the pieces as they were before issue 15 (cookie
/// MAC, store read, groups cache read, four header Strings), beside
/// `Access::check` as built, warm: the cookie's id read and its tag compared
/// with the one its first check verified, the one store read, the session's
/// link to its groups answer, the policy; then the same response.
fn one_lookup_benches(
    c: &mut Criterion,
    runtime: &tokio::runtime::Runtime,
    codec: &CookieCodec,
    store: &MemoryStore,
    cache: &GroupsCache,
    global: &AllowLists,
) {
    use actix_web::http::header::{HeaderValue, CACHE_CONTROL};
    use actix_web::HttpResponse;
    use forward_auth::access::{Access, Verdict, Who};
    use forward_auth::config::Config;
    use forward_auth::oidc::Oidc;
    use hmac::{Hmac, Mac};
    use sha2::Sha256;

    let id = SessionId::random();
    let cookie = codec.encode_session(&id);
    runtime.block_on(store.save(&id, &session())).unwrap();
    let route = AllowLists::from_query("").unwrap();

    c.bench_function(
        "check before issue 15: verify + store + groups cache + decide + render",
        |b| {
            b.iter(|| {
                runtime.block_on(async {
                    let id = codec.decode_session(black_box(&cookie)).unwrap();
                    let session = store.load(&id).await.unwrap().unwrap();
                    let groups = cache.groups_of(session.identity().sub()).await.unwrap();
                    let now = now();
                    assert!(now < session.expires_at() && now < session.tokens_expire_at());
                    let subject = Subject {
                        login: session.identity().login(),
                        email: session.identity().email(),
                        groups: &groups.list,
                    };
                    assert!(matches!(decide(global, &route, &subject), Decision::Allow));
                    let mut response = HttpResponse::Ok();
                    response.insert_header((CACHE_CONTROL, HeaderValue::from_static("no-store")));
                    for (name, value) in identity_headers::render(
                        session.identity().login(),
                        session.identity().email(),
                        &groups,
                    ) {
                        response.insert_header((name, value));
                    }
                    response.finish()
                })
            })
        },
    );

    // The real core, with Okta groups from the same warm cache and the
    // sessions in a memory store of 10k.
    let vars = [
        ("IDP_PROVIDER", "okta"),
        ("IDP_PROVIDER_URL", "https://dev-123.okta.com"),
        ("IDP_CLIENT_ID", "0oa1client"),
        ("IDP_CLIENT_SECRET", "client-secret-value-7f3a"),
        ("IDP_SERVICE_ACCOUNT", "00ssws-token-value-9c1d"),
        ("AUTHENTICATE_SERVICE_URL", "https://auth.example.com"),
        (
            "COOKIE_SECRET",
            "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=",
        ),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()));
    let config = Arc::new(Config::from_vars(vars).unwrap().0);
    let sessions = Arc::new(MemoryStore::new());
    runtime.block_on(async {
        for _ in 0..10_000 {
            sessions
                .save(&SessionId::random(), &session())
                .await
                .unwrap();
        }
        sessions.save(&id, &session()).await.unwrap();
    });
    let oidc = Arc::new(Oidc::new(&config, reqwest::Client::new()));
    let access = Access::new(config, sessions, oidc, Some(cache.clone()));
    c.bench_function(
        "check as built: Access::check, warm (tag + one read + link + decide) + response",
        |b| {
            b.iter(|| {
                runtime.block_on(async {
                    let verdict = access
                        .check([black_box(cookie.as_str())], None, &route, now())
                        .await
                        .unwrap();
                    let Verdict::Allowed(identified) = verdict else {
                        panic!("alice is allowed")
                    };
                    let Who::User(session) = &identified.who else {
                        panic!("a session")
                    };
                    let (login, email) =
                        forward_auth::access::SessionHot::identity_headers(session);
                    let mut response = HttpResponse::Ok();
                    response.insert_header((CACHE_CONTROL, HeaderValue::from_static("no-store")));
                    for (name, value) in [
                        ("x-auth-request-user", login.value()),
                        ("x-auth-request-email", email.value()),
                        ("x-auth-request-groups", identified.groups.rendered.value()),
                        ("x-auth-request-preferred-username", login.value()),
                    ] {
                        response.insert_header((name, value));
                    }
                    response.finish()
                })
            })
        },
    );

    // The MAC alone: from the keyed state the codec keeps (the two key-pad
    // compressions done once), and with the key absorbed per check; a warm
    // check computes neither.
    type HmacSha256 = Hmac<Sha256>;
    let key = [7u8; 32];
    let keyed = HmacSha256::new_from_slice(&key).unwrap();
    let payload = [42u8; 20];
    let tag = {
        let mut mac = keyed.clone();
        mac.update(b"session\0");
        mac.update(&payload);
        mac.finalize().into_bytes()
    };
    c.bench_function(
        "hmac-sha256: verify a cookie's tag (keyed state cloned)",
        |b| {
            b.iter(|| {
                let mut mac = keyed.clone();
                mac.update(b"session\0");
                mac.update(black_box(&payload));
                mac.verify_slice(black_box(&tag)).is_ok()
            })
        },
    );
    c.bench_function(
        "hmac-sha256: verify a cookie's tag (key absorbed each time)",
        |b| {
            b.iter(|| {
                let mut mac = HmacSha256::new_from_slice(black_box(&key)).unwrap();
                mac.update(b"session\0");
                mac.update(black_box(&payload));
                mac.verify_slice(black_box(&tag)).is_ok()
            })
        },
    );
}

/// Issue 13's hot paths: a bearer check's verification (cached, and the first
/// one) and the signed identity (cached, and a signature).
fn api_client_benches(c: &mut Criterion, runtime: &tokio::runtime::Runtime) {
    use forward_auth::identity_jwt::{Identity, IdentityKeys, IdentityTokens};
    use forward_auth::oidc::bearer::{BearerSettings, BearerVerifier};
    use jsonwebtoken::{jwk::JwkSet, Algorithm, EncodingKey, Header};

    let issuer = "https://example.okta.com/oauth2/default";
    let settings = BearerSettings::parse(Some("api://default".into()), None, None)
        .unwrap()
        .unwrap();
    let keys: JwkSet = serde_json::from_str(&format!(
        "{{\"keys\":[{}]}}",
        include_str!("../tests/keys/test-key-1.jwk.json")
    ))
    .unwrap();
    let signing =
        EncodingKey::from_rsa_pem(include_str!("../tests/keys/test-key-1.pem").as_bytes()).unwrap();
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("test-key-1".into());
    let token = |i: u64| {
        let claims = serde_json::json!({
            "ver": 1, "jti": format!("AT.{i}"), "iss": issuer, "aud": "api://default",
            "iat": now(), "exp": now() + 3600, "cid": "0oaclient", "uid": "00ualice",
            "sub": "alice@example.com", "scp": ["openid", "items.read"],
        });
        jsonwebtoken::encode(&header, &claims, &signing).unwrap()
    };
    let verifier = BearerVerifier::new(settings.clone(), issuer);
    let cached = token(0);
    runtime
        .block_on(verifier.verify_with_cache(&cached, &keys))
        .unwrap();
    c.bench_function("bearer: known token (recent table, exact bytes)", |b| {
        b.iter(|| runtime.block_on(verifier.verify_with_cache(black_box(&cached), &keys)))
    });
    let fresh = BearerVerifier::new(settings, issuer);
    c.bench_function("bearer: first verification (RS256 + claims)", |b| {
        b.iter(|| fresh.verify_with_keys(black_box(&cached), &keys, now()))
    });

    let pem = include_str!("../tests/keys/identity-es256.pem");
    let tokens = IdentityTokens::new(IdentityKeys::parse(pem, "IDENTITY_JWT_KEY").unwrap());
    let names: Vec<String> = groups(20).into_iter().map(|g| g.name).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let identity = Identity {
        issuer: "https://auth.example.com",
        audience: "https://app.example.com",
        subject: "00ualice0000000000000",
        email: "alice@example.com",
        preferred_username: "alice@example.com",
        groups: &names,
    };
    runtime.block_on(tokens.token(&identity)).unwrap();
    c.bench_function("signed identity: cached token (20 groups)", |b| {
        b.iter(|| runtime.block_on(tokens.token(black_box(&identity))))
    });
    c.bench_function("signed identity: ES256 signature (a miss)", |b| {
        b.iter(|| tokens.sign(black_box(&identity), now()))
    });
}

/// What `/metrics` adds to every check: the old hand-written counter and the
/// prometheus-client decision counter plus latency histogram (BENCHMARKS.md).
fn metrics_benches(c: &mut Criterion) {
    use forward_auth::metrics::{self, observed};
    c.bench_function("metrics: hand-written counter inc", |b| {
        b.iter(|| metrics::AUTH_ALLOWED.inc())
    });
    c.bench_function(
        "metrics: prometheus-client decision inc + latency observe",
        |b| {
            b.iter(|| {
                observed::check(
                    observed::Endpoint::Auth,
                    observed::Outcome::Allowed,
                    black_box(Duration::from_micros(180)),
                )
            })
        },
    );
}

criterion_group!(decision, benches);
criterion_group!(metrics_group, metrics_benches);
criterion_main!(decision, metrics_group);
