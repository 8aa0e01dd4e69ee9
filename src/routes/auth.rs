//! `/oauth2/auth` (nginx `auth_request`) and `/oauth2/forward` (Traefik
//! `forwardAuth`, Caddy `forward_auth`): "may this browser see this URL?".
//! The handlers read the request, ask `crate::access` once, and answer: only
//! [`Allowed`] renders a 2xx, and only a [`Verdict::Allowed`] makes one; every
//! other outcome is a [`Denied`], whose statuses are all ≥ 300.
//! Whether a signed-in user may pass never depends on the forwarded URL, so it
//! is read (and a malformed one refused) only to send a stranger to sign in.

use std::cell::RefCell;
use std::sync::Arc;

use actix_web::http::header::HeaderValue;
use actix_web::http::StatusCode;
use actix_web::web::{self, Bytes};
use actix_web::HttpRequest;
use url::form_urlencoded::byte_serialize;

use crate::access::Verdict;
use crate::clock::now;
use crate::error::AppError;
use crate::forwarded::{original_request_preferring, OriginalRequest, Prefer};
use crate::header_text;
use crate::memo::{self, Memo};
use crate::metrics::observed::{self, Endpoint, Outcome};
use crate::policy::{AllowLists, PolicyError};
use crate::redirect::shortened;
use crate::routes::AppState;

mod answer;
mod api_clients;

pub use answer::{Allowed, Answer, Body, Denied};

/// Which endpoint is asking: they differ only in how "who are you?" is said.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// nginx: 401 + `Location`, never a 3xx.
    Nginx,
    /// Traefik, Caddy: a redirect for browser navigations, 401 JSON for APIs.
    Forward,
}

pub async fn auth(req: HttpRequest, state: web::Data<AppState>) -> Answer {
    let started = std::time::Instant::now();
    let mut original = None;
    let answer = check(&req, &state, Mode::Nginx, &mut original).await;
    observe(Endpoint::Auth, &answer, started);
    audit_denied(&req, &state, Mode::Nginx, &answer, original);
    // nginx never shows these bodies, and a body costs it the keep-alive connection.
    Answer::new(answer, Body::Empty)
}

pub async fn forward(req: HttpRequest, state: web::Data<AppState>) -> Answer {
    let started = std::time::Instant::now();
    let mut original = None;
    let answer = check(&req, &state, Mode::Forward, &mut original).await;
    observe(Endpoint::Forward, &answer, started);
    audit_denied(&req, &state, Mode::Forward, &answer, original);
    Answer::new(answer, Body::Shown)
}

/// A 403 to a signed-in user or client: who, where and why, for the audit
/// log. `original`: the original request if the check read it.
fn audit_denied(
    req: &HttpRequest,
    state: &AppState,
    mode: Mode,
    answer: &Result<Allowed, Denied>,
    original: Option<OriginalRequest>,
) {
    let Err(Denied::Forbidden { who, reason, .. }) = answer else {
        return;
    };
    let original = original.or_else(|| read_original(req, state, mode).ok());
    let url = original.as_ref().and_then(|o| o.url.as_ref());
    crate::audit::Audit {
        event: "check",
        user: who.login(),
        host: url.and_then(|u| u.host_str()).unwrap_or(""),
        path: url.map(|u| u.path()).unwrap_or(""),
        decision: "forbidden",
        reason,
    }
    .record();
}

/// The check's latency and outcome, by endpoint, for `/metrics`.
fn observe(endpoint: Endpoint, answer: &Result<Allowed, Denied>, started: std::time::Instant) {
    let outcome = match answer {
        Ok(_) => Outcome::Allowed,
        Err(denied) => match denied.status().as_u16() {
            401 | 302 | 303 => Outcome::Unauthenticated,
            403 => Outcome::Forbidden,
            _ => Outcome::Error,
        },
    };
    observed::check(endpoint, outcome, started.elapsed());
}

/// The check. `original` is where the original request is kept once read
/// (at most once per request: the audit of a 403 reuses it).
async fn check(
    req: &HttpRequest,
    state: &AppState,
    mode: Mode,
    original: &mut Option<OriginalRequest>,
) -> Result<Allowed, Denied> {
    let kept;
    let route = match req.query_string() {
        // Most routes name no lists: nothing to read, nothing to keep.
        "" => &NO_LISTS,
        query => {
            kept = route_lists(query, mode).map_err(refused)?;
            &*kept
        }
    };
    // Public routes, API clients, several domains and the signed identity need
    // the original URL on every check; otherwise only strangers do.
    if api_clients::needs_original(state) {
        *original = Some(read_original(req, state, mode)?);
    }
    if api_clients::is_public(req, state, original.as_ref()) {
        return Ok(Allowed::public());
    }
    if let Some((tokens, token)) = api_clients::bearer_token(req, state) {
        let verdict = tokens.check(token, route).await.map_err(refused)?;
        // A token's 403 links to the configured service URL's sign-out.
        return answer(
            req,
            state,
            mode,
            verdict,
            original.as_ref(),
            SignOut::Service,
        )
        .await;
    }
    let host = original.as_ref().and_then(|o| o.url.as_ref()?.host_str());
    let now = now();
    // Lent, not moved: the iterator (~260 bytes) would otherwise be copied
    // into each nested future of the check, and actix boxes the handler's
    // future per request (past ~1 KB, glibc's slow path).
    let mut cookies = state.cookie_names.session_values(req, now);
    let verdict = state
        .access
        .check(&mut cookies, host, route, now)
        .await
        .map_err(refused)?;
    answer(
        req,
        state,
        mode,
        verdict,
        original.as_ref(),
        SignOut::OfSite,
    )
    .await
}

/// The lists of a route without a query: none.
static NO_LISTS: AllowLists = AllowLists {
    groups: Vec::new(),
    users: Vec::new(),
    domains: Vec::new(),
};

/// Queries whose lists this thread keeps, at most (each up to
/// [`MAX_KEPT_QUERY`] bytes; a proxy's configuration names only a few).
const KEPT_QUERIES: usize = 16;

/// Longer queries are read every time.
const MAX_KEPT_QUERY: usize = 256;

thread_local! {
    static ROUTE_LISTS: RefCell<Memo<Arc<AllowLists>>> =
        RefCell::new(Memo::new(KEPT_QUERIES, MAX_KEPT_QUERY));
    static FORWARD_ROUTE_LISTS: RefCell<Memo<Arc<AllowLists>>> =
        RefCell::new(Memo::new(KEPT_QUERIES, MAX_KEPT_QUERY));
}

/// The route's allow-lists from its query, the same lists when this thread
/// read the same query lately. A refused query is read (and refused) every time.
fn route_lists(query: &str, mode: Mode) -> Result<Arc<AllowLists>, PolicyError> {
    match mode {
        Mode::Nginx => memo::per_thread(&ROUTE_LISTS, &[query], |query| {
            AllowLists::from_query(query).map(Arc::new)
        }),
        Mode::Forward => memo::per_thread(&FORWARD_ROUTE_LISTS, &[query], |query| {
            AllowLists::from_forward_query(query).map(Arc::new)
        }),
    }
}

/// A failure to decide, as the error page it is.
fn refused(error: impl Into<AppError>) -> Denied {
    Denied::Error(error.into())
}

/// Whose sign-out a 403 links to.
#[derive(Clone, Copy)]
enum SignOut {
    /// The configured service URL's (a token's 403).
    Service,
    /// The checked host's domain's (several root domains).
    OfSite,
}

/// The HTTP answer to a verdict. `original`: the original request if the
/// check read it (a stranger's answer reads it otherwise).
async fn answer(
    req: &HttpRequest,
    state: &AppState,
    mode: Mode,
    verdict: Verdict,
    original: Option<&OriginalRequest>,
    sign_out: SignOut,
) -> Result<Allowed, Denied> {
    match verdict {
        Verdict::Allowed(identified) => {
            let allowed = Allowed::identified(&identified);
            if state.identity_tokens.is_none() {
                return Ok(allowed);
            }
            // Boxed: only IDENTITY_JWT_KEY takes this path.
            Box::pin(api_clients::with_signed_identity(
                allowed,
                state,
                original,
                &identified,
            ))
            .await
        }
        Verdict::NoSession => Err(stranger(req, state, mode, original)),
        Verdict::Forbidden { who, reason } => {
            let site_host = match sign_out {
                SignOut::Service => None,
                SignOut::OfSite => original.and_then(|o| o.url.as_ref()?.host_str()),
            };
            Err(Denied::Forbidden {
                sign_out: (state.denial_urls_of(state.site_of_host(site_host)).sign_out).clone(),
                who,
                reason,
            })
        }
        Verdict::BadToken(error) => Err(Denied::BadToken(api_clients::BadToken {
            error,
            json: mode == Mode::Forward,
        })),
    }
}

/// Each endpoint reads first the headers its proxies set: nginx configs send
/// `X-Original-URL`; Traefik and Caddy send `X-Forwarded-*` and may pass a
/// client's own `X-Original-URL` along.
fn read_original(
    req: &HttpRequest,
    state: &AppState,
    mode: Mode,
) -> Result<OriginalRequest, Denied> {
    let headers = req.headers();
    let scheme = if state.config.service_url.starts_with("https:") {
        "https"
    } else {
        "http"
    };
    let prefer = match mode {
        Mode::Nginx => Prefer::OriginalUrl,
        Mode::Forward => Prefer::ForwardedHeaders,
    };
    original_request_preferring(
        prefer,
        req.peer_addr().map(|a| a.ip()),
        |name| header_text::value(headers, name),
        &state.config.trusted_proxies,
        scheme,
    )
    .map_err(refused)
}

/// A stranger's answer: who are you? Only it needs the original URL (for
/// `rd`), read here unless the check read it already; nginx's comes from
/// the thread's memo when it can ([`nginx_stranger_key`]).
fn stranger(
    req: &HttpRequest,
    state: &AppState,
    mode: Mode,
    original: Option<&OriginalRequest>,
) -> Denied {
    if let Some(read) = original {
        return unauthenticated(req, state, mode, read);
    }
    let fresh = || match read_original(req, state, mode) {
        Ok(read) => unauthenticated(req, state, mode, &read),
        Err(refused) => refused,
    };
    if mode == Mode::Nginx {
        if let Some(key) = nginx_stranger_key(req, state) {
            let kept = memo::per_thread(&NGINX_STRANGERS, &key, |_| match fresh() {
                Denied::Unauthenticated { location, .. } => Ok(location),
                other => Err(other),
            });
            return kept.map_or_else(|denied| denied, nginx_sign_in);
        }
    }
    fresh()
}

/// nginx strangers' `Location`s this thread keeps, at most (each for an
/// original request of up to [`MAX_KEPT_STRANGER`] bytes).
const KEPT_STRANGERS: usize = 16;

/// Longer original requests are answered afresh every time.
const MAX_KEPT_STRANGER: usize = 1024;

thread_local! {
    static NGINX_STRANGERS: RefCell<Memo<HeaderValue>> =
        RefCell::new(Memo::new(KEPT_STRANGERS, MAX_KEPT_STRANGER));
}

/// The memo key of an nginx stranger's answer, when the answer is a pure
/// function of it: a trusted peer sent `X-Original-Method` and an
/// `X-Original-URL` that is not a path (so no other header completes it).
/// nginx's answer to a stranger is always a 401 whose `Location` depends
/// on the original URL and the configuration only: the key is this state's
/// number, the method (a bad one is refused, and refusals are not kept) and
/// the URL, apart by line feeds that no header value holds. The conditions
/// mirror `forwarded::original_request_preferring`'s branches: change both.
fn nginx_stranger_key<'r>(req: &'r HttpRequest, state: &'r AppState) -> Option<[&'r str; 5]> {
    let headers = req.headers();
    let url = header_text::value(headers, "x-original-url")?;
    if url.trim_start().starts_with('/') {
        return None;
    }
    let method = header_text::value(headers, "x-original-method")?;
    let peer = req.peer_addr()?.ip();
    if !state.config.trusted_proxies.contains(peer) {
        return None;
    }
    Some([&state.instance, "\n", method, "\n", url])
}

/// nginx's answer to a stranger: always a 401 to sign in at `location`.
fn nginx_sign_in(location: HeaderValue) -> Denied {
    Denied::Unauthenticated {
        location,
        status: StatusCode::UNAUTHORIZED,
        json: false,
    }
}

fn unauthenticated(
    req: &HttpRequest,
    state: &AppState,
    mode: Mode,
    original: &OriginalRequest,
) -> Denied {
    let site = state.site_of_host(original.url.as_ref().and_then(|u| u.host_str()));
    let rd = original
        .url
        .as_ref()
        .filter(|u| state.config.redirects.allows(u))
        .map(|url| url.as_str());
    // Built at its exact size (`sign_in_url`): its buffer becomes the
    // header's. A service URL and form-encoding are ASCII, so this cannot
    // fail; were it to, the answer would be a 500.
    let start = sign_in_url(&state.denial_urls_of(site).start, rd);
    let Ok(location) = HeaderValue::from_maybe_shared(Bytes::from(start)) else {
        return Denied::Error(AppError::Internal("the sign-in URL is not a header value"));
    };
    match mode {
        Mode::Nginx => nginx_sign_in(location),
        Mode::Forward if is_api_request(req) => Denied::Unauthenticated {
            location,
            status: StatusCode::UNAUTHORIZED,
            json: true,
        },
        Mode::Forward => {
            let status = if matches!(&*original.method, "GET" | "HEAD") {
                StatusCode::FOUND
            } else {
                StatusCode::SEE_OTHER
            };
            Denied::Unauthenticated {
                location,
                status,
                json: false,
            }
        }
    }
}

/// Longest `Location` we send (every header we send stays under 4 KB).
pub(crate) const MAX_LOCATION: usize = 4000;

/// `start` (`{service_url}/oauth2/start`) with `rd`, the original URL cut
/// ([`shortened`]) so that the whole stays within [`MAX_LOCATION`]. Encoded
/// once into a buffer of the exact size (which then becomes the header's).
fn sign_in_url(start: &str, rd: Option<&str>) -> String {
    const RD: &str = "?rd=";
    let room = MAX_LOCATION.saturating_sub(start.len() + RD.len());
    let Some(rd) = rd.and_then(|rd| shortened(rd, |rd| encoded_len(rd) <= room)) else {
        return start.to_owned();
    };
    let mut url = String::with_capacity(start.len() + RD.len() + encoded_len(&rd));
    url.push_str(start);
    url.push_str(RD);
    url.extend(byte_serialize(rd.as_bytes()));
    url
}

/// The length of `text` form-encoded, counted without building it.
fn encoded_len(text: &str) -> usize {
    byte_serialize(text.as_bytes()).map(str::len).sum()
}

/// XHR, fetch, API clients and WebSockets get a 401 instead of a redirect they
/// cannot follow.
fn is_api_request(req: &HttpRequest) -> bool {
    let h = req.headers();
    let value = |name: &str| header_text::value(h, name).unwrap_or("");
    let websocket = value("upgrade").eq_ignore_ascii_case("websocket");
    if value("sec-fetch-mode").eq_ignore_ascii_case("navigate") && !websocket {
        return false;
    }
    websocket
        || header_text::find(h, "x-requested-with").is_some()
        || value("sec-fetch-mode").eq_ignore_ascii_case("cors")
        || value("authorization")
            .get(..7)
            .is_some_and(|p| p.eq_ignore_ascii_case("bearer "))
        || !value("accept")
            .as_bytes()
            .windows(b"text/html".len())
            .any(|w| w.eq_ignore_ascii_case(b"text/html"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sign-in URL as it was built before issue 15's stop 10: encoded
    /// into a new string per probe, then once more to push.
    fn as_before(start: &str, rd: Option<&str>) -> String {
        let mut start = start.to_owned();
        let encoded = |rd: &str| byte_serialize(rd.as_bytes()).collect::<String>();
        let room = MAX_LOCATION.saturating_sub(start.len() + "?rd=".len());
        if let Some(rd) = rd.and_then(|u| shortened(u, |rd| encoded(rd).len() <= room)) {
            start.push_str("?rd=");
            start.push_str(&encoded(&rd));
        }
        start
    }

    #[test]
    fn the_sign_in_url_is_built_at_its_exact_size_and_as_before() {
        let start = "https://auth.example.com/prefix/oauth2/start";
        let room = MAX_LOCATION - start.len() - "?rd=".len();
        let slashes = |n: usize| format!("https://app.example.com/x?{}", "/".repeat(n));
        let mut corpus: Vec<Option<String>> = vec![None];
        corpus.extend(
            [
                "https://app.example.com/",
                "https://app.example.com/a b/%2F?q=ü&r=日本#frag",
                "http://[::1]:8080/p?x=\"'<>",
                "https://xn--bcher-kva.example/b%C3%BCcher?a=1&b=2",
            ]
            .map(|u| Some(u.to_owned())),
        );
        for n in (room / 3 - 12)..(room / 3 + 4) {
            corpus.push(Some(slashes(n)));
        }
        for n in [2000, 2020, 2021, 2022, 2023, 2040, 3000] {
            corpus.push(Some(format!("https://app.example.com/m?{}", "q".repeat(n))));
            corpus.push(Some(format!("https://app.example.com/{}", "p".repeat(n))));
        }
        corpus.push(Some(format!("https://{}.example.com/", "h".repeat(4000))));
        for rd in &corpus {
            let built = sign_in_url(start, rd.as_deref());
            assert_eq!(built, as_before(start, rd.as_deref()), "{rd:?}");
            assert_eq!(built.capacity(), built.len(), "{rd:?}");
            assert!(built.len() <= MAX_LOCATION);
        }
    }

    #[test]
    fn a_routes_lists_are_read_once_per_query_and_endpoint() {
        let query = "allowed_groups=admins,ops&allowed_domains=Example.com";
        let first = route_lists(query, Mode::Nginx).unwrap();
        assert_eq!(*first, AllowLists::from_query(query).unwrap());
        assert!(Arc::ptr_eq(
            &first,
            &route_lists(query, Mode::Nginx).unwrap()
        ));
        // The endpoints read queries differently: each keeps its own answers.
        let client = "page=2";
        assert_eq!(*route_lists(client, Mode::Forward).unwrap(), NO_LISTS);
        assert_eq!(
            route_lists(client, Mode::Nginx).unwrap_err(),
            AllowLists::from_query(client).unwrap_err()
        );
        // A refusal is not kept: asked again, the same refusal.
        let repeated = "allowed_users=a&allowed_users=b";
        for mode in [Mode::Nginx, Mode::Forward, Mode::Nginx] {
            assert_eq!(
                route_lists(repeated, mode).unwrap_err(),
                AllowLists::from_query(repeated).unwrap_err()
            );
        }
    }

    /// A service's state with its own configuration: `service_url`,
    /// redirects allowed to `.example.com`, trusting loopback only.
    fn state(service_url: &str) -> web::Data<AppState> {
        let config = Arc::new(crate::config::test_support::load(&[
            ("AUTHENTICATE_SERVICE_URL", Some(service_url)),
            ("ALLOWED_REDIRECT_DOMAINS", Some(".example.com")),
        ]));
        let oidc = Arc::new(crate::oidc::Oidc::new(&config, reqwest::Client::new()));
        let store = Arc::new(crate::session::MemoryStore::new());
        web::Data::new(AppState::new(config, store, oidc, None))
    }

    /// A stranger's `/oauth2/auth` from `peer` with `headers`.
    fn stranger(peer: &str, headers: &[(&str, &str)]) -> actix_web::test::TestRequest {
        let mut request = actix_web::test::TestRequest::get()
            .uri("/oauth2/auth")
            .peer_addr(peer.parse().unwrap());
        for &(name, value) in headers {
            request = request.insert_header((name, value));
        }
        request
    }

    /// The answer's status and `Location`.
    async fn ask<S, R>(service: &S, request: R) -> (u16, Option<String>)
    where
        S: actix_web::dev::Service<
            R,
            Response = actix_web::dev::ServiceResponse,
            Error = actix_web::Error,
        >,
    {
        let response = actix_web::test::call_service(service, request).await;
        let location = response
            .headers()
            .get("location")
            .map(|l| l.to_str().unwrap().to_owned());
        (response.status().as_u16(), location)
    }

    fn start_with_rd(service_url: &str, rd: &str) -> Option<String> {
        let rd: String = byte_serialize(rd.as_bytes()).collect();
        Some(format!("{service_url}/oauth2/start?rd={rd}"))
    }

    /// The thread keeps nginx strangers' answers (`NGINX_STRANGERS`): asked
    /// again, each service answers as the first time, and only for the very
    /// request it was asked: its own configuration, the same method and URL,
    /// from a trusted peer. Both services run on this one thread.
    #[actix_web::test]
    async fn a_kept_stranger_answer_is_only_for_its_own_service_method_and_url() {
        let a = "https://auth-a.example.com";
        let b = "https://auth-b.example.com";
        let service = |state: web::Data<AppState>| {
            actix_web::test::init_service(
                actix_web::App::new()
                    .app_data(state.clone())
                    .configure(crate::routes::configure(state)),
            )
        };
        let service_a = service(state(a)).await;
        let service_b = service(state(b)).await;
        let page = "https://app.example.com/page?x=1";
        let other = "https://app.example.com/other";
        let elsewhere = "https://evil.example.net/";
        let trusted = "127.0.0.1:40000";
        let nginx = |url: &'static str| [("x-original-url", url), ("x-original-method", "GET")];
        for _ in 0..3 {
            for (service, url) in [(&service_a, a), (&service_b, b)] {
                let answer = ask(service, stranger(trusted, &nginx(page)).to_request()).await;
                assert_eq!(answer, (401, start_with_rd(url, page)));
                let answer = ask(service, stranger(trusted, &nginx(other)).to_request()).await;
                assert_eq!(answer, (401, start_with_rd(url, other)));
                // Not an allowed return address: no `rd`, each time.
                let answer = ask(service, stranger(trusted, &nginx(elsewhere)).to_request()).await;
                assert_eq!(answer, (401, Some(format!("{url}/oauth2/start"))));
            }
            // The same URL with a method that cannot be read: refused, not
            // the answer kept for GET.
            let bad_method = [("x-original-url", page), ("x-original-method", "G ET")];
            assert_eq!(
                ask(&service_a, stranger(trusted, &bad_method).to_request())
                    .await
                    .0,
                400
            );
            // From a peer that is not trusted the headers count for nothing.
            let answer = ask(
                &service_a,
                stranger("192.0.2.7:40000", &nginx(page)).to_request(),
            )
            .await;
            assert_eq!(answer, (401, Some(format!("{a}/oauth2/start"))));
            // A path (also after spaces or a tab, which are trimmed): the host
            // comes from another header (the scheme is the service URL's), so
            // nothing is kept.
            for path in ["/p", " /p", "\t/p"] {
                for host in ["app.example.com", "evil.example.net"] {
                    let path = [
                        ("x-original-url", path),
                        ("x-original-method", "GET"),
                        ("host", host),
                    ];
                    let expected = match host {
                        "app.example.com" => start_with_rd(a, "https://app.example.com/p"),
                        _ => Some(format!("{a}/oauth2/start")),
                    };
                    assert_eq!(
                        ask(&service_a, stranger(trusted, &path).to_request()).await,
                        (401, expected)
                    );
                }
            }
            // Two `X-Original-URL`s: the first counts, kept or not.
            let two = stranger(trusted, &nginx(page))
                .append_header(("x-original-url", other))
                .to_request();
            assert_eq!(ask(&service_a, two).await, (401, start_with_rd(a, page)));
            let two = stranger(trusted, &nginx(other))
                .append_header(("x-original-url", page))
                .to_request();
            assert_eq!(ask(&service_a, two).await, (401, start_with_rd(a, other)));
            // A kept answer is the kept buffer itself, not built again.
            let location = |response: &actix_web::dev::ServiceResponse| {
                response
                    .headers()
                    .get("location")
                    .unwrap()
                    .as_bytes()
                    .as_ptr()
            };
            let first = actix_web::test::call_service(
                &service_b,
                stranger(trusted, &nginx(page)).to_request(),
            )
            .await;
            let again = actix_web::test::call_service(
                &service_b,
                stranger(trusted, &nginx(page)).to_request(),
            )
            .await;
            assert_eq!(location(&first), location(&again));
            // An original URL that cannot be read: refused every time.
            let bad_url = [("x-original-url", "ftp://x"), ("x-original-method", "GET")];
            assert_eq!(
                ask(&service_a, stranger(trusted, &bad_url).to_request())
                    .await
                    .0,
                400
            );
        }
    }

    #[test]
    fn no_query_is_no_lists() {
        assert_eq!(AllowLists::from_query("").unwrap(), NO_LISTS);
        assert_eq!(AllowLists::from_forward_query("").unwrap(), NO_LISTS);
    }
}
