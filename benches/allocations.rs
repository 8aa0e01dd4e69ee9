//! Heap allocations per check, through the real app: `/oauth2/auth` allowed,
//! denied (403: a group the user lacks; 401: no cookie) and `/oauth2/forward`
//! allowed and denied (a browser's 302 and 403 pages, an API client's 401
//! JSON), each driven through `actix_web::test::init_service` with the real
//! routes, a signed-in session in a MemoryStore and warm groups. A counting
//! wrapper around the system allocator (stats_alloc) counts what each request
//! costs. Then the heap a stored session holds: bytes and allocations per
//! session in a MemoryStore at 100k and 1M sessions (what issue 15's ≤ 300 B
//! per idle session is about), and what one session's own fields take.
//! Prints, never asserts: `cargo bench --bench allocations [-- SESSIONS...]`.
//! `-- --only TEXT [--requests N]` runs only the checks whose name holds
//! TEXT (N measured requests, as many to warm up) and no session memory: a
//! fixed request loop for `valgrind --tool=callgrind` (run it with two N and
//! divide the difference in instructions by twice the difference in N).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test and benchmark code: a failure should stop loudly"
)]

use std::alloc::System;
use std::sync::Arc;
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::{test, web, App};
use forward_auth::clock::now;
use forward_auth::config::Config;
use forward_auth::groups::{GroupsCache, OktaGroupsClient};
use forward_auth::identity::Identity;
use forward_auth::identity_headers;
use forward_auth::metrics::observed;
use forward_auth::oidc::Oidc;
use forward_auth::policy::{decide, AllowLists, Decision, Subject};
use forward_auth::routes::{self, AppState};
use forward_auth::secret::Secret;
use forward_auth::session::{CookieCodec, MemoryStore, Session, SessionId, SessionStore};
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

mod shared;
use shared::{groups, session, USER};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Requests measured per case by default (after as many warm-up requests).
const REQUESTS: usize = 2_000;

/// What the command line asks for.
struct Args {
    /// Session counts for the memory figures.
    sessions: Vec<usize>,
    /// Only the checks whose name holds this text, and no memory figures.
    only: Option<String>,
    /// Requests measured per case.
    requests: usize,
}

fn args() -> Args {
    let mut args = Args {
        sessions: Vec::new(),
        only: None,
        requests: REQUESTS,
    };
    let mut given = std::env::args().skip(1);
    while let Some(arg) = given.next() {
        match arg.as_str() {
            "--only" => args.only = given.next(),
            "--requests" => args.requests = given.next().and_then(|n| n.parse().ok()).unwrap(),
            _ => args.sessions.extend(arg.parse::<usize>().ok()),
        }
    }
    if args.sessions.is_empty() {
        args.sessions = vec![100_000, 1_000_000];
    }
    args
}

impl Args {
    fn runs(&self, case: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|only| case.contains(only.as_str()))
    }
}

fn config() -> Config {
    let vars = [
        ("IDP_PROVIDER", "okta"),
        // Never called: the groups are warm and the session fresh.
        ("IDP_PROVIDER_URL", "http://127.0.0.1:9"),
        ("IDP_CLIENT_ID", "bench-client"),
        ("IDP_CLIENT_SECRET", "bench-secret"),
        ("IDP_SERVICE_ACCOUNT", "bench-ssws"),
        ("AUTHENTICATE_SERVICE_URL", "http://127.0.0.1:4180"),
        (
            "COOKIE_SECRET",
            "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
        ),
        ("COOKIE_SECURE", "false"),
        ("GROUPS_CACHE_TTL", "1h"),
        ("LOG_LEVEL", "error"),
    ];
    Config::from_vars(vars.map(|(k, v)| (k.to_string(), v.to_string())))
        .unwrap()
        .0
}

struct Case {
    name: &'static str,
    uri: &'static str,
    cookie: bool,
    status: u16,
    /// Headers beyond the nginx subrequest's.
    extra: &'static [(&'static str, &'static str)],
}

/// An original URL on the service's own host, which the redirect allow-list
/// accepts: the sign-in `Location` carries it as `rd`.
const RD_ALLOWED: (&str, &str) = ("x-original-url", "http://127.0.0.1:4180/some/page?q=1");

/// A browser's navigation (`/oauth2/forward` redirects it) to an allowed URL.
const NAVIGATE: &[(&str, &str)] = &[
    ("accept", "text/html"),
    ("sec-fetch-mode", "navigate"),
    RD_ALLOWED,
];

#[actix_web::main]
async fn main() {
    let args = args();
    let config = Arc::new(config());
    let store = Arc::new(MemoryStore::new());
    for _ in 0..10_000 {
        store.save(&SessionId::random(), &session()).await.unwrap();
    }
    let id = SessionId::random();
    store.save(&id, &session()).await.unwrap();
    let client = OktaGroupsClient::new(
        reqwest::Client::new(),
        "http://127.0.0.1:9",
        Secret::new("unused".into()),
    )
    .unwrap();
    let cache = GroupsCache::new(client, Duration::from_secs(3600));
    cache.remember(USER, groups(20)).await;
    if args.only.is_none() {
        pieces(&state_pieces(&config, &id), &store, &cache).await;
    }
    let oidc = Arc::new(Oidc::new(&config, reqwest::Client::new()));
    let state = AppState::new(config.clone(), store, oidc, Some(cache));
    let value =
        forward_auth::session::CookieCodec::new(config.cookie.keys.clone()).encode_session(&id);
    let cookie = format!("{}={}", state.cookie_names.session, value);
    // Actix boxes each handler's future: its size is allocated (and moved)
    // per request. These are the check's awaited pieces.
    let values = [value.as_str()];
    let session = state
        .access
        .current_session(values, now())
        .await
        .unwrap()
        .unwrap()
        .1;
    println!("future sizes (bytes a handler's boxed future holds for each await):");
    println!(
        "  Access::current_session: {} B, Access::groups_of: {} B, \
         SessionStore::load (boxed by async_trait): {} B",
        std::mem::size_of_val(&state.access.current_session(values, now())),
        std::mem::size_of_val(&state.access.groups_of(&session)),
        std::mem::size_of_val(&state.store.load(&id)),
    );
    println!();
    let state = web::Data::new(state);
    let app = test::init_service(
        App::new()
            .app_data(state.clone())
            .configure(routes::configure(state)),
    )
    .await;

    let cases = [
        Case {
            name: "/oauth2/auth allowed (20 groups)",
            uri: "/oauth2/auth",
            cookie: true,
            status: 200,
            extra: &[],
        },
        Case {
            name: "/oauth2/auth allowed, allowed_groups=group-3,group-7",
            uri: "/oauth2/auth?allowed_groups=group-3,group-7",
            cookie: true,
            status: 200,
            extra: &[],
        },
        Case {
            name: "/oauth2/auth denied 403 (allowed_groups=admins)",
            uri: "/oauth2/auth?allowed_groups=admins",
            cookie: true,
            status: 403,
            extra: &[],
        },
        Case {
            name: "/oauth2/auth denied 401 (no cookie)",
            uri: "/oauth2/auth",
            cookie: false,
            status: 401,
            extra: &[],
        },
        Case {
            name: "/oauth2/auth denied 401 (no cookie, rd allowed)",
            uri: "/oauth2/auth",
            cookie: false,
            status: 401,
            extra: &[RD_ALLOWED],
        },
        Case {
            name: "/oauth2/forward allowed (20 groups)",
            uri: "/oauth2/forward",
            cookie: true,
            status: 200,
            extra: &[],
        },
        Case {
            name: "/oauth2/forward denied 302 page (browser, no cookie)",
            uri: "/oauth2/forward",
            cookie: false,
            status: 302,
            extra: NAVIGATE,
        },
        Case {
            name: "/oauth2/forward denied 401 JSON (API, no cookie)",
            uri: "/oauth2/forward",
            cookie: false,
            status: 401,
            extra: &[],
        },
        Case {
            name: "/oauth2/forward denied 403 page (allowed_groups=admins)",
            uri: "/oauth2/forward?allowed_groups=admins",
            cookie: true,
            status: 403,
            extra: NAVIGATE,
        },
    ];
    println!(
        "{:<55} {:>8} {:>10} {:>10}",
        "allocations per request (real app, test::call_service)", "allocs", "bytes", "reallocs"
    );
    // The harness's own share: the request built and the response dropped.
    let n = args.requests;
    let harness = measure(&app, || request("/healthz", None, &[]).to_request(), 200, n).await;
    print_row("harness baseline: GET /healthz", harness);
    for case in cases.iter().filter(|case| args.runs(case.name)) {
        let cookie = case.cookie.then_some(cookie.as_str());
        let make = || request(case.uri, cookie, case.extra).to_request();
        let per = measure(&app, make, case.status, n).await;
        print_row(case.name, per);
    }
    const FRESH: &str = "/oauth2/auth denied 401 (no cookie, a new URL each time)";
    if args.runs(FRESH) {
        // Every URL unseen: what the per-thread URL memo costs when it misses.
        let count = std::cell::Cell::new(0u64);
        let make = || {
            count.set(count.get() + 1);
            let url = format!("https://app.example.com/page/{}", count.get());
            request("/oauth2/auth", None, &[])
                .insert_header(("x-original-url", url))
                .to_request()
        };
        print_row(FRESH, measure(&app, make, 401, n).await);
    }
    api_instance(harness, &args).await;
    println!(
        "(each row includes the harness's own request building; subtract the /healthz \
         baseline for the handler's share)"
    );
    println!();
    if args.only.is_none() {
        session_memory(&args.sessions).await;
    }
}

/// Issue 15's `ours_bearer` and `ours_jwt`: an instance with API clients and
/// the signed identity (`BEARER_AUDIENCE`, `IDENTITY_JWT_KEY`) against a fake
/// Okta on loopback, asked only while warming up (discovery, keys, groups).
async fn api_instance(harness: PerRequest, args: &Args) {
    const BEARER: &str = "ours_bearer: /oauth2/auth, bearer + signed identity";
    const JWT: &str = "ours_jwt: /oauth2/auth, cookie + signed identity";
    const JWT_403: &str = "ours_jwt denied 403 (allowed_groups=staff)";
    if ![BEARER, JWT, JWT_403].iter().any(|case| args.runs(case)) {
        return;
    }
    let okta = fake_okta::FakeOkta::start().await;
    let alice = okta.user("alice");
    let key = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/keys/identity-es256.pem");
    let vars = [
        ("IDP_PROVIDER", "okta".to_string()),
        ("IDP_PROVIDER_URL", okta.custom_issuer()),
        ("IDP_CLIENT_ID", fake_okta::FakeOkta::CLIENT_ID.to_string()),
        ("IDP_CLIENT_SECRET", "bench-secret".to_string()),
        (
            "IDP_SERVICE_ACCOUNT",
            fake_okta::FakeOkta::API_TOKEN.to_string(),
        ),
        (
            "AUTHENTICATE_SERVICE_URL",
            "http://127.0.0.1:4180".to_string(),
        ),
        (
            "COOKIE_SECRET",
            "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=".to_string(),
        ),
        ("COOKIE_SECURE", "false".to_string()),
        ("GROUPS_CACHE_TTL", "1h".to_string()),
        ("LOG_LEVEL", "error".to_string()),
        (
            "BEARER_AUDIENCE",
            fake_okta::FakeOkta::API_AUDIENCE.to_string(),
        ),
        ("IDENTITY_JWT_KEY_FILE", key.to_string()),
    ];
    let config = Config::from_vars(vars.map(|(k, v)| (k.to_string(), v)))
        .unwrap()
        .0;
    let config = Arc::new(config);
    let store = Arc::new(MemoryStore::new());
    let mut user = session();
    user.set_identity(Identity::new(
        alice.id.clone(),
        alice.login.clone(),
        alice.email.clone(),
        alice.name.clone(),
    ));
    let id = SessionId::random();
    store.save(&id, &user).await.unwrap();
    let client = OktaGroupsClient::new(
        reqwest::Client::new(),
        &okta.base_url(),
        Secret::new(fake_okta::FakeOkta::API_TOKEN.into()),
    )
    .unwrap();
    let cache = GroupsCache::new(client, Duration::from_secs(3600));
    let oidc = Arc::new(Oidc::new(&config, reqwest::Client::new()));
    oidc.discover().await.unwrap();
    let codec = CookieCodec::new(config.cookie.keys.clone());
    let state = AppState::new(config, store, oidc, Some(cache));
    let cookie = format!(
        "{}={}",
        state.cookie_names.session,
        codec.encode_session(&id)
    );
    let state = web::Data::new(state);
    let app = test::init_service(
        App::new()
            .app_data(state.clone())
            .configure(routes::configure(state)),
    )
    .await;
    let token = okta.mint_access_token(Some(&alice), fake_okta::FakeOkta::CLIENT_ID, &["openid"]);
    let bearer = format!("Bearer {token}");
    let with = |uri: &'static str, header: (&'static str, String)| {
        move || {
            request(uri, None, &[])
                .insert_header(header.clone())
                .to_request()
        }
    };
    let cases = [
        (BEARER, "/oauth2/auth", ("authorization", bearer), 200),
        (JWT, "/oauth2/auth", ("cookie", cookie.clone()), 200),
        (
            JWT_403,
            "/oauth2/auth?allowed_groups=staff",
            ("cookie", cookie),
            403,
        ),
    ];
    for (name, uri, header, status) in cases.into_iter().filter(|case| args.runs(case.0)) {
        let per = measure(&app, with(uri, header), status, args.requests).await;
        print_row(name, per);
        print_row(
            "  minus the harness baseline",
            PerRequest {
                allocations: per.allocations - harness.allocations,
                bytes: per.bytes - harness.bytes,
                reallocations: per.reallocations - harness.reallocations,
            },
        );
    }
}

/// A session shaped like a real Okta sign-in's (as crates/bench/src/bin/scale.rs makes
/// them): 20-character ids, ~22-character login and email, a 43-character
/// refresh token, an Okta `sid`, no ID token.
fn realistic_session(i: usize) -> Session {
    let now = now();
    let login = format!("user{i:06}@example.com");
    Session::new(
        Identity::new(
            format!("00u{i:017}"),
            login.clone(),
            login,
            format!("User {i:06}"),
        )
        .with_sid(Some(format!("102{i:017}"))),
        now,
        now + 14 * 3600,
        now + 3600,
        Some(Secret::new(format!("{i:043}"))),
    )
}

/// Heap held per stored session: live bytes (allocated minus freed, as asked
/// of the allocator: malloc adds ~8-16 B of its own per allocation) and
/// allocations, with the share of the session's own fields.
async fn session_memory(sizes: &[usize]) {
    let one = Region::new(GLOBAL);
    let sample = std::hint::black_box(Arc::new(realistic_session(1)));
    let own = one.change();
    println!(
        "one session's own heap: {} B in {} allocations (Arc<Session>: {} B of struct \
         + 16 B of counts; its Strings: the rest)",
        own.bytes_allocated - own.bytes_deallocated,
        own.allocations,
        std::mem::size_of::<Session>()
    );
    drop(sample);
    for &n in sizes {
        let store = MemoryStore::new();
        let sessions: Vec<(SessionId, Session)> = (0..n)
            .map(|i| (SessionId::random(), realistic_session(i)))
            .collect();
        let region = Region::new(GLOBAL);
        for (id, session) in &sessions {
            store.save(id, session).await.unwrap();
        }
        let held = region.change();
        // A realloc's growth is counted in bytes_allocated too.
        let live = held.bytes_allocated as i64 - held.bytes_deallocated as i64;
        println!(
            "MemoryStore with {n} sessions: {:.0} B live heap per session in {:.1} allocations \
             (map slots, spare capacity and growth included)",
            live as f64 / n as f64,
            (held.allocations as f64 - held.deallocations as f64) / n as f64,
        );
        drop(sessions);
        drop(store);
    }
}

/// A cookie for `id` signed with the config's key, as the codec the app builds.
fn state_pieces(config: &Config, id: &SessionId) -> (CookieCodec, String) {
    let codec = CookieCodec::new(config.cookie.keys.clone());
    let cookie = codec.encode_session(id);
    (codec, cookie)
}

/// The pieces of an allowed check one by one, outside actix: which of them
/// allocate.
async fn pieces((codec, cookie): &(CookieCodec, String), store: &MemoryStore, cache: &GroupsCache) {
    async fn count<T, F: std::future::Future<Output = T>>(name: &str, mut f: impl FnMut() -> F) {
        for _ in 0..100 {
            drop(f().await);
        }
        let region = Region::new(GLOBAL);
        for _ in 0..REQUESTS {
            drop(f().await);
        }
        let stats = region.change();
        let n = REQUESTS as f64;
        print_row(
            name,
            PerRequest {
                allocations: stats.allocations as f64 / n,
                bytes: stats.bytes_allocated as f64 / n,
                reallocations: stats.reallocations as f64 / n,
            },
        );
    }
    let id = codec.decode_session(cookie).unwrap();
    let session = store.load(&id).await.unwrap().unwrap();
    let groups = cache.groups_of(USER).await.unwrap();
    println!("pieces of an allowed check, one at a time:");
    count(
        "  cookie: decode_session (HMAC verify; a cold check)",
        || async { codec.decode_session(cookie) },
    )
    .await;
    count("  session: MemoryStore::load (a cold check)", || {
        store.load(&id)
    })
    .await;
    let now = forward_auth::clock::now();
    count("  session: MemoryStore::load_held (as built)", || async {
        store.load_held(&id, now)
    })
    .await;
    count("  groups: GroupsCache::groups_of (warm, 20 groups)", || {
        cache.groups_of(USER)
    })
    .await;
    let (_, link) = cache.groups_and_link(USER).await.unwrap();
    let link = link.expect("a fresh answer links");
    count("  groups: the session's link (as built)", || async {
        cache.linked(&link)
    })
    .await;
    let global = AllowLists::from_env_lists(None, None, None);
    let route = AllowLists::from_query("").unwrap();
    count("  policy: decide", || async {
        let subject = Subject {
            login: session.identity().login(),
            email: session.identity().email(),
            groups: &groups.list,
        };
        matches!(decide(&global, &route, &subject), Decision::Allow)
    })
    .await;
    count(
        "  headers: identity_headers::render (API clients only now)",
        || async {
            identity_headers::render(
                session.identity().login(),
                session.identity().email(),
                &groups,
            )
        },
    )
    .await;
    count(
        "  headers: the session's shared values (as built)",
        || async {
            let (login, email) = forward_auth::access::SessionHot::identity_headers(&session);
            (login.value(), email.value(), groups.rendered.value())
        },
    )
    .await;
    count("  metrics: observed::check", || async {
        observed::check(
            observed::Endpoint::Auth,
            observed::Outcome::Allowed,
            Duration::from_micros(100),
        )
    })
    .await;
    println!();
}

#[derive(Clone, Copy)]
struct PerRequest {
    allocations: f64,
    bytes: f64,
    reallocations: f64,
}

fn print_row(name: &str, per: PerRequest) {
    println!(
        "{name:<55} {:>8.1} {:>10.0} {:>10.1}",
        per.allocations, per.bytes, per.reallocations
    );
}

/// The request a case sends: an nginx subrequest from a trusted loopback peer.
fn request(uri: &str, cookie: Option<&str>, extra: &[(&str, &str)]) -> test::TestRequest {
    let mut req = test::TestRequest::get()
        .uri(uri)
        .insert_header(("x-original-url", "https://app.example.com/some/page"))
        .insert_header(("x-original-method", "GET"))
        .peer_addr("127.0.0.1:40000".parse().unwrap());
    if let Some(cookie) = cookie {
        req = req.insert_header(("cookie", cookie));
    }
    for &header in extra {
        req = req.insert_header(header);
    }
    req
}

/// Per-request allocations of `n` requests made by `make`, after as many
/// unmeasured ones (each must answer `status`).
async fn measure<S, R, B>(app: &S, make: impl Fn() -> R, status: u16, n: usize) -> PerRequest
where
    S: Service<R, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    for _ in 0..n {
        let res = app.call(make()).await.unwrap();
        assert_eq!(res.status().as_u16(), status);
        drop(res.into_body().try_into_bytes());
    }
    let region = Region::new(GLOBAL);
    for _ in 0..n {
        let res = app.call(make()).await.unwrap();
        drop(res.into_body().try_into_bytes());
    }
    let stats = region.change();
    let n = n as f64;
    PerRequest {
        allocations: stats.allocations as f64 / n,
        bytes: stats.bytes_allocated as f64 / n,
        reallocations: stats.reallocations as f64 / n,
    }
}
