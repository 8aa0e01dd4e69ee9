//! The denied answers of `/oauth2/auth` and `/oauth2/forward` byte for byte:
//! the sign-in `Location` for a corpus of original URLs (long, odd
//! characters, IDN hosts, several domains, the 2,048- and 4,000-byte edges),
//! exactly the headers of nginx's empty 401 and 403, and the unchanged pages
//! and JSON of `/oauth2/forward`. Issue 15 renders them without the error
//! machinery; these tests hold the wire format still.

use reqwest::StatusCode;

use crate::support::app::{header, location, spawn_app_with};

fn start_url_with_rd(app: &crate::support::app::TestApp, rd: &str) -> String {
    let encoded: String = url::form_urlencoded::byte_serialize(rd.as_bytes()).collect();
    format!("{}/oauth2/start?rd={encoded}", app.address)
}

/// The `Location` a stranger's 401 or 302 carries, derived from the contract
/// (docs/endpoints.md) independently of the service's code: the start URL,
/// and `rd` when the original URL's host is allowed: the whole URL, else its
/// origin + path, else its origin's `/`, the first that is at most 2,048
/// bytes and keeps the whole `Location` within 4,000 bytes; else no `rd`.
fn expected_location(service_url: &str, original: Option<&str>) -> String {
    let start = format!("{service_url}/oauth2/start");
    let Some(original) = original else {
        return start;
    };
    let encoded =
        |s: &str| -> String { url::form_urlencoded::byte_serialize(s.as_bytes()).collect() };
    let url = url::Url::parse(original).unwrap();
    let origin = url.origin().ascii_serialization();
    let room = 4000 - start.len() - "?rd=".len();
    [
        url.as_str().to_owned(),
        format!("{origin}{}", url.path()),
        format!("{origin}/"),
    ]
    .iter()
    .find(|rd| rd.len() <= 2048 && encoded(rd).len() <= room)
    .map_or(start.clone(), |rd| format!("{start}?rd={}", encoded(rd)))
}

/// An original URL of `https://app.example.com/x?` plus slashes and `a`s
/// whose form-encoding is `target` bytes long (a slash encodes to 3 bytes).
fn original_encoding_to(target: usize) -> String {
    let base = "https://app.example.com/x?";
    let encoded: usize = url::form_urlencoded::byte_serialize(base.as_bytes())
        .map(str::len)
        .sum();
    let rest = target - encoded;
    let url = format!("{base}{}{}", "/".repeat(rest / 3), "a".repeat(rest % 3));
    let got: usize = url::form_urlencoded::byte_serialize(url.as_bytes())
        .map(str::len)
        .sum();
    assert_eq!(got, target);
    assert!(url.len() <= 2048);
    url
}

/// The header names of an answer, sorted, without `date`.
fn header_names(response: &reqwest::Response) -> Vec<String> {
    let mut names: Vec<String> = response
        .headers()
        .keys()
        .map(|n| n.as_str().to_owned())
        .filter(|n| n != "date")
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn a_strangers_location_is_the_start_url_with_the_original_url_cut_as_the_contract_says() {
    let app = spawn_app_with(&[("ALLOWED_REDIRECT_DOMAINS", ".example.com,.bücher.example")]).await;
    let room = 4000 - format!("{}/oauth2/start?rd=", app.address).len();
    let mut corpus: Vec<(String, bool)> = [
        "https://app.example.com/a/b?c=d",
        "https://app.example.com/",
        "https://app.example.com",
        "http://app.example.com:8443/p?x=1&y=2#frag",
        "https://APP.Example.COM/Case/Path",
        "https://app.example.com/p%20q/%E2%82%AC?x=%2F&y=a+b&z=%25",
        "https://app.example.com/caf%C3%A9/%E6%97%A5%E6%9C%AC?q=%C3%BC",
        "https://app.example.com/'\"<>`{}|^~!$&()*,;=:@[]",
        "https://app.example.com/dot/../segments/./here?",
        "https://xn--bcher-kva.example/b%C3%BCcher",
    ]
    .iter()
    .map(|u| (u.to_string(), true))
    .collect();
    corpus.extend([
        // Disallowed hosts: no rd at all.
        ("https://elsewhere.example.net/x".to_string(), false),
        ("https://example.com.evil.test/x".to_string(), false),
        ("https://[::1]/v6".to_string(), false),
        // Long: the query cut, then the path cut.
        (
            format!("https://app.example.com/deep?q={}", "x".repeat(3000)),
            true,
        ),
        (
            format!("https://app.example.com/{}", "p".repeat(3000)),
            true,
        ),
        // At MAX_URL (2,048 bytes) and one over.
        (
            format!("https://app.example.com/m?{}", "q".repeat(2048 - 26)),
            true,
        ),
        (
            format!("https://app.example.com/m?{}", "q".repeat(2049 - 26)),
            true,
        ),
        // At the 4,000-byte Location edge and one over.
        (original_encoding_to(room), true),
        (original_encoding_to(room + 1), true),
        (original_encoding_to(room - 1), true),
    ]);
    for (original, allowed) in &corpus {
        let parsed = url::Url::parse(original).unwrap();
        let rd = allowed.then_some(parsed.as_str());
        let want = expected_location(&app.address, rd);
        let nginx = app.auth(original).await;
        assert_eq!(nginx.status(), StatusCode::UNAUTHORIZED, "{original}");
        assert_eq!(location(&nginx), want, "/oauth2/auth {original}");
        assert!(location(&nginx).len() <= 4000);

        // The same URL through Traefik's headers (path and query only).
        let uri = match parsed.query() {
            Some(query) => format!("{}?{query}", parsed.path()),
            None => parsed.path().to_owned(),
        };
        if parsed.scheme() != "https" || parsed.port().is_some() || parsed.fragment().is_some() {
            continue;
        }
        let navigate = [("Accept", "text/html"), ("Sec-Fetch-Mode", "navigate")];
        let host = parsed.host_str().unwrap();
        let forward = app.forward("GET", host, &uri, &navigate).await;
        assert_eq!(forward.status(), StatusCode::FOUND, "{original}");
        let forwarded = url::Url::parse(&format!("https://{host}{uri}")).unwrap();
        let want = expected_location(&app.address, allowed.then_some(forwarded.as_str()));
        assert_eq!(location(&forward), want, "/oauth2/forward {original}");
    }
}

#[tokio::test]
async fn a_location_on_another_root_domain_starts_at_that_domains_service_url() {
    let (a, b) = ("http://auth.a.test:4180", "http://auth.b.test:4180");
    let app = spawn_app_with(&[
        ("COOKIE_DOMAIN", ".a.test,.b.test"),
        ("AUTHENTICATE_SERVICE_URL", &format!("{a},{b}")),
    ])
    .await;
    for (original, service_url, allowed) in [
        ("http://app.a.test/x?y=1", a, true),
        ("http://app.b.test/x?y=1", b, true),
        ("http://app.c.test/x?y=1", a, false),
    ] {
        let response = app.auth(original).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            location(&response),
            expected_location(service_url, allowed.then_some(original)),
            "{original}"
        );
    }
}

#[tokio::test]
async fn nginx_denials_carry_exactly_their_headers_and_no_body() {
    let app = spawn_app_with(&[("ALLOWED_GROUPS", "admins")]).await;
    let stranger = app.auth("https://app.example.com/").await;
    assert_eq!(stranger.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        header_names(&stranger),
        [
            "cache-control",
            "content-length",
            "location",
            "www-authenticate"
        ]
    );
    assert_eq!(header(&stranger, "cache-control"), "no-store");
    assert_eq!(header(&stranger, "content-length"), "0");
    assert_eq!(
        header(&stranger, "www-authenticate"),
        "Cookie realm=\"forward-auth\""
    );
    assert!(stranger.bytes().await.unwrap().is_empty());

    app.login_as("carol").await;
    let forbidden = app.auth("https://app.example.com/").await;
    assert_eq!(forbidden.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        header_names(&forbidden),
        ["cache-control", "content-length"]
    );
    assert_eq!(header(&forbidden, "cache-control"), "no-store");
    assert_eq!(header(&forbidden, "content-length"), "0");
    assert!(forbidden.bytes().await.unwrap().is_empty());
}

#[tokio::test]
async fn forward_denials_keep_their_pages_and_json_byte_for_byte() {
    let app = spawn_app_with(&[
        ("ALLOWED_GROUPS", "admins"),
        ("ALLOWED_REDIRECT_DOMAINS", ".example.com"),
    ])
    .await;
    let start = start_url_with_rd(&app, "https://app.example.com/a?b=c&d=%3Ce%3E");
    let navigate = [("Accept", "text/html"), ("Sec-Fetch-Mode", "navigate")];
    let page = app
        .forward("GET", "app.example.com", "/a?b=c&d=%3Ce%3E", &navigate)
        .await;
    assert_eq!(page.status(), StatusCode::FOUND);
    assert_eq!(
        header_names(&page),
        [
            "cache-control",
            "content-length",
            "content-type",
            "location"
        ]
    );
    assert_eq!(header(&page, "cache-control"), "no-store");
    assert_eq!(header(&page, "content-type"), "text/html; charset=utf-8");
    assert_eq!(location(&page), start);
    assert_eq!(
        page.text().await.unwrap(),
        format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>Sign in required</title>\
             </head><body><h1>Sign in required</h1><p>Sign in to continue.</p><p><a href=\"{}\">\
             Sign in</a></p></body></html>\n",
            start.replace('&', "&amp;")
        )
    );

    let api = app
        .forward(
            "GET",
            "app.example.com",
            "/a?b=c&d=%3Ce%3E",
            &[("Accept", "application/json")],
        )
        .await;
    assert_eq!(api.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        header_names(&api),
        [
            "cache-control",
            "content-length",
            "content-type",
            "location",
            "www-authenticate"
        ]
    );
    assert_eq!(header(&api, "content-type"), "application/json");
    assert_eq!(
        header(&api, "www-authenticate"),
        "Cookie realm=\"forward-auth\""
    );
    assert_eq!(location(&api), start);
    assert_eq!(
        api.text().await.unwrap(),
        format!(
            "{{\"error\":\"unauthenticated\",\"message\":\"Sign in first.\",\"sign_in_url\":\"{start}\"}}"
        )
    );

    app.login_as("carol").await;
    let forbidden = app.forward("GET", "app.example.com", "/a", &navigate).await;
    assert_eq!(forbidden.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        header_names(&forbidden),
        ["cache-control", "content-length", "content-type"]
    );
    assert_eq!(
        header(&forbidden, "content-type"),
        "text/html; charset=utf-8"
    );
    assert_eq!(
        forbidden.text().await.unwrap(),
        format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>Access denied</title>\
             </head><body><h1>Access denied</h1><p>You are signed in as carol@example.com, but \
             this account may not open this page.</p><p><a href=\"{}/oauth2/sign_out\">Sign out \
             and use another account</a></p></body></html>\n",
            app.address
        )
    );
}

#[tokio::test]
async fn the_checks_answer_get_and_head_and_no_other_method() {
    let app = spawn_app_with(&[]).await;
    app.login_as("alice").await;
    for path in ["/oauth2/auth", "/oauth2/forward"] {
        let url = format!("{}{path}", app.address);
        let original = [
            ("X-Original-URL", "https://app.example.com/"),
            ("X-Forwarded-Host", "app.example.com"),
        ];
        let send = |method: reqwest::Method| {
            let mut request = app.client.request(method, &url);
            for (name, value) in original {
                request = request.header(name, value);
            }
            request.send()
        };
        let get = send(reqwest::Method::GET).await.unwrap();
        assert_eq!(get.status(), StatusCode::OK, "GET {path}");
        let head = send(reqwest::Method::HEAD).await.unwrap();
        assert_eq!(head.status(), StatusCode::OK, "HEAD {path}");
        assert_eq!(
            header(&head, "x-auth-request-user"),
            header(&get, "x-auth-request-user")
        );
        for method in [
            reqwest::Method::POST,
            reqwest::Method::PUT,
            reqwest::Method::DELETE,
            reqwest::Method::OPTIONS,
            reqwest::Method::PATCH,
        ] {
            let other = send(method.clone()).await.unwrap();
            assert_eq!(other.status(), StatusCode::NOT_FOUND, "{method} {path}");
        }
    }
}
