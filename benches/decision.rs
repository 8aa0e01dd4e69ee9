//! Micro-benchmarks of the decision path, piece by piece: cookie verification,
//! session lookup, groups lookup, policy, header rendering, and the forwarded
//! URL; then the whole allowed check as it is today (three lookups) beside the
//! one-lookup shape issue 15 plans (prototyped here, not in src/), and the raw
//! HMAC-SHA256 cost per cookie. Run with `cargo bench --bench decision`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test and benchmark code: a failure should stop loudly"
)]

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use forward_auth::clock::now;
use forward_auth::forwarded::{original_request, TrustedProxies};
use forward_auth::groups::{Group, GroupsCache, OktaGroupsClient};
use forward_auth::identity_headers::{self, UserGroups};
use forward_auth::policy::{decide, AllowLists, Decision, Subject};
use forward_auth::secret::{CookieKey, Secret};
use forward_auth::session::{CookieCodec, MemoryStore, Session, SessionId, SessionStore};

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

/// Issue 15's plan beside today's path, both ending in the same response.
/// Today: cookie MAC → session store read → groups cache read (moka) → decide →
/// four header Strings. Planned: cookie MAC → ONE sharded-map read of an entry
/// that holds an `Arc` to the user's groups entry (names for the policy, the
/// rendered header values, a freshness stamp) → compare the stamps with one
/// coarse clock read → decide → headers from values rendered once.
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
    use forward_auth::clock::coarse_now;
    use hmac::{Hmac, Mac};
    use sha2::Sha256;

    let id = SessionId::random();
    let cookie = codec.encode_session(&id);
    runtime.block_on(store.save(&id, &session())).unwrap();
    let route = AllowLists::from_query("").unwrap();

    c.bench_function(
        "check today: verify + store + groups + decide + response",
        |b| {
            b.iter(|| {
                runtime.block_on(async {
                    let id = codec.decode_session(black_box(&cookie)).unwrap();
                    let session = store.load(&id).await.unwrap().unwrap();
                    let groups = cache.groups_of(session.identity.sub()).await.unwrap();
                    let now = now();
                    assert!(now < session.expires_at() && now < session.tokens_expire_at());
                    let subject = Subject {
                        login: session.identity.login(),
                        email: session.identity.email(),
                        groups: &groups.list,
                    };
                    assert!(matches!(decide(global, &route, &subject), Decision::Allow));
                    let mut response = HttpResponse::Ok();
                    response.insert_header((CACHE_CONTROL, HeaderValue::from_static("no-store")));
                    for (name, value) in identity_headers::render(
                        session.identity.login(),
                        session.identity.email(),
                        &groups,
                    ) {
                        response.insert_header((name, value));
                    }
                    response.finish()
                })
            })
        },
    );

    let planned = PlannedMap::new();
    let user_groups = Arc::new(PlannedGroups::new(groups(20), now() + 300));
    for _ in 0..10_000 {
        planned.insert(
            SessionId::random(),
            PlannedEntry::new(&session(), user_groups.clone()),
        );
    }
    planned.insert(id.clone(), PlannedEntry::new(&session(), user_groups));
    black_box(coarse_now());
    c.bench_function(
        "check planned: verify + ONE map read + stamps + decide + response",
        |b| {
            b.iter(|| {
                runtime.block_on(async {
                    let id = codec.decode_session(black_box(&cookie)).unwrap();
                    let entry = planned.get(&id).unwrap();
                    let now = coarse_now();
                    assert!(now < entry.live_until && now < entry.groups.fresh_until);
                    let subject = Subject {
                        login: &entry.login,
                        email: &entry.email,
                        groups: &entry.groups.list,
                    };
                    assert!(matches!(decide(global, &route, &subject), Decision::Allow));
                    let mut response = HttpResponse::Ok();
                    response.insert_header((CACHE_CONTROL, HeaderValue::from_static("no-store")));
                    response.insert_header(("x-auth-request-user", entry.login_header.clone()));
                    response.insert_header(("x-auth-request-email", entry.email_header.clone()));
                    response.insert_header(("x-auth-request-groups", entry.groups.header.clone()));
                    response.insert_header((
                        "x-auth-request-preferred-username",
                        entry.login_header.clone(),
                    ));
                    response.finish()
                })
            })
        },
    );
    c.bench_function(
        "planned: the one sharded-map read alone (10k sessions)",
        |b| b.iter(|| planned.get(black_box(&id))),
    );

    // The MAC alone: from the keyed state the codec keeps (the two key-pad
    // compressions done once), and with the key absorbed per check.
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

/// The planned per-user groups entry: shared by all of a user's sessions.
struct PlannedGroups {
    list: Vec<Group>,
    /// `X-Auth-Request-Groups`, rendered once per fetch.
    header: actix_web::http::header::HeaderValue,
    /// Epoch seconds until which no refresh is due.
    fresh_until: u64,
}

impl PlannedGroups {
    fn new(list: Vec<Group>, fresh_until: u64) -> PlannedGroups {
        let rendered = UserGroups::new(list);
        PlannedGroups {
            header: rendered.header.parse().unwrap(),
            list: rendered.list,
            fresh_until,
        }
    }
}

/// The planned session entry: what a check reads, and nothing else.
struct PlannedEntry {
    login: String,
    email: String,
    login_header: actix_web::http::header::HeaderValue,
    email_header: actix_web::http::header::HeaderValue,
    /// min(session expiry, tokens' expiry): past it the slow path runs.
    live_until: u64,
    groups: Arc<PlannedGroups>,
}

impl PlannedEntry {
    fn new(session: &Session, groups: Arc<PlannedGroups>) -> Arc<PlannedEntry> {
        Arc::new(PlannedEntry {
            login: session.identity.login().to_owned(),
            email: session.identity.email().to_owned(),
            login_header: session.identity.login().parse().unwrap(),
            email_header: session.identity.email().parse().unwrap(),
            live_until: session.expires_at().min(session.tokens_expire_at()),
            groups,
        })
    }
}

/// 64 read-locked shards keyed by session id with a folding hasher: the shape
/// of src/session/sharded.rs, holding the planned entries.
struct PlannedMap {
    shards: Vec<PlannedShard>,
}

type PlannedShard = RwLock<HashMap<SessionId, Arc<PlannedEntry>, BuildHasherDefault<FoldHasher>>>;

impl PlannedMap {
    fn new() -> PlannedMap {
        PlannedMap {
            shards: (0..64).map(|_| RwLock::default()).collect(),
        }
    }
    fn shard(&self, id: &SessionId) -> &PlannedShard {
        let mut hasher = FoldHasher::default();
        id.hash(&mut hasher);
        &self.shards[hasher.finish() as usize % self.shards.len()]
    }
    fn insert(&self, id: SessionId, entry: Arc<PlannedEntry>) {
        self.shard(&id).write().unwrap().insert(id, entry);
    }
    fn get(&self, id: &SessionId) -> Option<Arc<PlannedEntry>> {
        self.shard(id).read().unwrap().get(id).cloned()
    }
}

#[derive(Default)]
struct FoldHasher(u64);

impl Hasher for FoldHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word))
                .wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
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
    c.bench_function("bearer: cached token (SHA-256 + cache hit)", |b| {
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
