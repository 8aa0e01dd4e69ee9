//! The proxies checklist, run through each proxy by `proxies.rs` and
//! `traefik.rs`: sign-in, the identity the app receives, forged headers and
//! cookies stripped, scripts' 401, sign-out. Also the browser-like requests it
//! is made of ([`sign_in_through`], [`get_html`], [`get_with`]). It OWNS these
//! shared steps; it must NOT start anything (a [`Stack`] comes in ready).

use std::sync::Arc;

use reqwest::cookie::Jar;
use reqwest::{Response, StatusCode};
use url::Url;

use crate::support::app::{browser, location, COOKIE_NAME};
use crate::support::proxies::{Flavor, Stack};
use crate::support::upstream::echoed;

pub(crate) async fn run_checklist(stack: &Stack) {
    let flavor = stack.flavor;
    // Traefik has no built-in way to remove one cookie from the Cookie header
    // (integrations/traefik/README.md): without the bundled plugin, our cookie
    // arrives.
    let strips_our_cookie = stack.strips_our_cookie;
    let page = stack.url("/private/page?x=1");
    let jar = Arc::new(Jar::default());
    let client = browser(jar.clone());
    // A cookie of the app's own, which must still reach it.
    jar.add_cookie_str("theme=dark; Path=/", &Url::parse(&stack.proxy).unwrap());

    // 1. Without a session, a browser navigation is sent to sign in, and a
    //    client-sent identity header does not get the request through. A
    //    client-sent X-Original-URL (nginx's spelling) does not change the URL
    //    the check judges: the proxy sets or removes it.
    let elsewhere = stack.url("/elsewhere");
    let first = get_html(
        &client,
        &page,
        &[
            ("X-Auth-Request-User", "mallory"),
            ("X-Original-URL", &elsewhere),
            ("X-Original-Method", "POST"),
        ],
    )
    .await;
    let start = location(&first);
    assert_eq!(
        first.status(),
        StatusCode::FOUND,
        "{flavor:?}: sign-in redirect"
    );
    let expected_start = format!(
        "{}?rd={}",
        stack.url("/oauth2/start"),
        url::form_urlencoded::byte_serialize(page.as_bytes()).collect::<String>()
    );
    assert_eq!(
        start, expected_start,
        "{flavor:?}: the start URL carries rd"
    );
    assert_eq!(
        stack.echo.count(),
        0,
        "{flavor:?}: nothing reached the upstream"
    );

    // 2. The whole sign-in through the proxy lands on the original URL.
    let alice = stack.app.okta.user("alice");
    stack.app.okta.sign_in_as(&alice.id);
    let to_okta = get_html(&client, &start, &[]).await;
    assert_eq!(
        to_okta.status(),
        StatusCode::FOUND,
        "{flavor:?}: start -> Okta"
    );
    let to_callback = get_html(&client, &location(&to_okta), &[]).await;
    assert_eq!(
        to_callback.status(),
        StatusCode::FOUND,
        "{flavor:?}: Okta -> callback"
    );
    assert!(
        location(&to_callback).starts_with(&stack.url("/oauth2/callback")),
        "{flavor:?}: Okta returns to the callback through the proxy"
    );
    let to_page = get_html(&client, &location(&to_callback), &[]).await;
    assert_eq!(
        to_page.status(),
        StatusCode::FOUND,
        "{flavor:?}: callback -> rd"
    );
    assert_eq!(
        location(&to_page),
        page,
        "{flavor:?}: back on the original URL"
    );

    // 3. The upstream sees who it is, and neither a forged identity header nor
    //    our cookies; the app's own cookie still arrives. The service has no
    //    IDENTITY_JWT_KEY here: the app gets no signed identity at all (no
    //    client's, no placeholder text), however the client spells it.
    let landed = get_html(
        &client,
        &page,
        &[
            ("X-Auth-Request-User", "mallory"),
            ("X-Auth-Request-Jwt", FORGED_JWT),
            ("X_Auth_Request_Jwt", FORGED_JWT),
        ],
    )
    .await;
    assert_eq!(
        landed.status(),
        StatusCode::OK,
        "{flavor:?}: the page is served"
    );
    let seen = echoed(landed).await;
    assert_eq!(seen.path, "/private/page?x=1");
    assert_eq!(
        seen.header("x-auth-request-user"),
        "alice@example.com",
        "{flavor:?}"
    );
    assert_eq!(
        seen.header("x-auth-request-email"),
        "alice@example.com",
        "{flavor:?}"
    );
    assert_eq!(
        seen.header("x-auth-request-groups"),
        "Everyone,admins",
        "{flavor:?}"
    );
    assert_eq!(
        seen.header("x-auth-request-preferred-username"),
        "alice@example.com",
        "{flavor:?}"
    );
    assert_eq!(
        seen.header("x-auth-request-jwt"),
        "",
        "{flavor:?}: no signed identity without a key: {:?}",
        seen.headers
    );
    let cookie = seen.header("cookie");
    if strips_our_cookie {
        assert!(
            !cookie.contains(COOKIE_NAME),
            "{flavor:?}: our cookie leaked upstream: {cookie}"
        );
        assert_eq!(
            cookie, "theme=dark",
            "{flavor:?}: the app's own cookie arrives"
        );
    } else {
        assert!(
            cookie.contains(&format!("{COOKIE_NAME}=")) && cookie.contains("theme=dark"),
            "{flavor:?}: the whole Cookie header arrives: {cookie}"
        );
    }

    // Wherever our cookies sit in the header, only the app's cookies pass.
    let session = session_cookie(&jar, &stack.proxy).expect("a session cookie");
    let mixed = format!("{COOKIE_NAME}={session}; a=1; {COOKIE_NAME}_csrf=x; b=2; {COOKIE_NAME}=y");
    let api = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let seen = echoed(get_html(&api, &page, &[("Cookie", &mixed)]).await).await;
    assert_eq!(
        seen.header("x-auth-request-user"),
        "alice@example.com",
        "{flavor:?}"
    );
    let expected_cookie = if strips_our_cookie {
        "a=1; b=2"
    } else {
        mixed.as_str()
    };
    assert_eq!(
        seen.header("cookie"),
        expected_cookie,
        "{flavor:?}: only the app's cookies, or (Traefik) all of them"
    );

    // Our cookies in every spelling the service uses (`__Host-`, `__Secure-`,
    // a suffix) go too; when nothing else is left there is no Cookie header
    // at all, and a second Cookie line (HTTP/1.1 clients may send several)
    // leaves no emptied line behind.
    if strips_our_cookie {
        let prefixed = format!(
            "__Host-{COOKIE_NAME}=z; a=1; {COOKIE_NAME}={session}; __Secure-{COOKIE_NAME}_csrf_2=q"
        );
        let seen = echoed(get_html(&api, &page, &[("Cookie", &prefixed)]).await).await;
        assert_eq!(seen.header("x-auth-request-user"), "alice@example.com");
        assert_eq!(seen.header("cookie"), "a=1", "{flavor:?}: prefixed names");
        let only_ours = format!("{COOKIE_NAME}={session}");
        let seen = echoed(get_html(&api, &page, &[("Cookie", &only_ours)]).await).await;
        assert_eq!(seen.header("x-auth-request-user"), "alice@example.com");
        assert_eq!(
            seen.headers.get("cookie"),
            None,
            "{flavor:?}: no (empty) Cookie header when only ours was sent"
        );
        let two_lines = [("Cookie", only_ours.as_str()), ("Cookie", "theme=dark")];
        let seen = echoed(get_html(&api, &page, &two_lines).await).await;
        assert_eq!(seen.header("x-auth-request-user"), "alice@example.com");
        assert_eq!(
            seen.header("cookie"),
            "theme=dark",
            "{flavor:?}: two Cookie lines, ours in one"
        );
    }

    // Underscore (and mixed) twins of the identity headers, which WSGI,
    // PHP-FPM, CGI and some Rack servers read as X-Auth-Request-User, never
    // reach the app.
    let twins = [
        ("X_Auth_Request_User", "mallory"),
        ("X-Auth_Request-Groups", "admins"),
        ("X_Auth_Request_Email", "mallory@example.com"),
        ("X_Auth_Request_Preferred_Username", "mallory"),
        ("X_Auth_Request_Jwt", FORGED_JWT),
    ];
    let seen = echoed(get_html(&client, &page, &twins).await).await;
    assert_eq!(seen.header("x-auth-request-user"), "alice@example.com");
    for name in seen.headers.keys() {
        let normalized = name.replace(['_', '.'], "-");
        assert!(
            !(normalized.starts_with("x-auth-request-") && normalized != *name),
            "{flavor:?}: {name} reached the app"
        );
    }

    // The same without a session: a forged signed identity gets no one in.
    let before = stack.echo.count();
    let forged = get_html(&api, &page, &[("X-Auth-Request-Jwt", FORGED_JWT)]).await;
    assert_eq!(forged.status(), StatusCode::FOUND, "{flavor:?}");
    assert_eq!(stack.echo.count(), before, "{flavor:?}");

    // 4. APIs get a bare 401 (no redirect to follow), and the request stops there.
    let before = stack.echo.count();
    let api_answer = match flavor {
        Flavor::Nginx => api.get(stack.url("/api/items")).send().await.unwrap(),
        Flavor::Caddy | Flavor::Traefik => api
            .get(stack.url("/api/items"))
            .header("Accept", "application/json")
            .send()
            .await
            .unwrap(),
    };
    assert_eq!(
        api_answer.status(),
        StatusCode::UNAUTHORIZED,
        "{flavor:?}: API 401"
    );
    assert_eq!(
        stack.echo.count(),
        before,
        "{flavor:?}: a 401 stops at the proxy"
    );

    // 5. WebSocket handshakes: with a session they reach the upstream with the
    //    upgrade headers and the identity; without one they get 401.
    let ws_path = match flavor {
        Flavor::Nginx => "/ws/socket",
        Flavor::Caddy | Flavor::Traefik => "/socket",
    };
    let upgrade = [
        ("Connection", "Upgrade"),
        ("Upgrade", "websocket"),
        ("Sec-WebSocket-Version", "13"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];
    let ws = get_with(&client, &stack.url(ws_path), &upgrade).await;
    assert_eq!(
        ws.status(),
        StatusCode::OK,
        "{flavor:?}: the handshake reaches the upstream"
    );
    let seen = echoed(ws).await;
    assert_eq!(seen.header("upgrade"), "websocket", "{flavor:?}");
    assert_eq!(
        seen.header("x-auth-request-user"),
        "alice@example.com",
        "{flavor:?}"
    );
    let before = stack.echo.count();
    let anonymous_ws = get_with(&api, &stack.url(ws_path), &upgrade).await;
    assert_eq!(
        anonymous_ws.status(),
        StatusCode::UNAUTHORIZED,
        "{flavor:?}: WebSocket 401"
    );
    assert_eq!(stack.echo.count(), before, "{flavor:?}");

    // 6. A signed-in non-member on the admin location gets 403, not a sign-in
    //    loop, with a page that says so (the service's, or nginx's own).
    let carol_client = browser(Arc::new(Jar::default()));
    sign_in_through(stack, &carol_client, "carol").await;
    let admin = get_html(&carol_client, &stack.url("/admin/settings"), &[]).await;
    assert_eq!(
        admin.status(),
        StatusCode::FORBIDDEN,
        "{flavor:?}: non-member 403"
    );
    assert!(admin.headers().get("location").is_none(), "{flavor:?}");
    let page_text = admin.text().await.unwrap_or_default();
    assert!(
        page_text.contains("Access denied") && page_text.contains("/oauth2/sign_out"),
        "{flavor:?}: a readable 403 page: {page_text}"
    );
    let admin_for_alice = get_html(&client, &stack.url("/admin/settings"), &[]).await;
    assert_eq!(
        admin_for_alice.status(),
        StatusCode::OK,
        "{flavor:?}: member passes"
    );
    let other_for_carol = get_html(&carol_client, &page, &[]).await;
    assert_eq!(
        other_for_carol.status(),
        StatusCode::OK,
        "{flavor:?}: the rule is per location"
    );
    // The client's query string never reaches the check: a link cannot add
    // or replace a rule.
    let narrowed = format!("{page}&allowed_users=alice%40example.com");
    let answer = get_html(&carol_client, &narrowed, &[]).await;
    assert_eq!(
        answer.status(),
        StatusCode::OK,
        "{flavor:?}: the page's query is not a rule"
    );
    let widened = stack.url("/admin/settings?allowed_groups=Everyone");
    let answer = get_html(&carol_client, &widened, &[]).await;
    assert_eq!(
        answer.status(),
        StatusCode::FORBIDDEN,
        "{flavor:?}: the page's query does not replace the location's rule"
    );

    // 7. Sign-out through the proxy ends the session: the browser is sent to sign
    //    in again, and a copy of the old cookie is worthless.
    let old_cookie = session_cookie(&jar, &stack.proxy).expect("a session cookie");
    let signed_out = get_html(&client, &stack.url("/oauth2/sign_out"), &[]).await;
    assert!(
        matches!(
            signed_out.status(),
            StatusCode::FOUND | StatusCode::SEE_OTHER
        ),
        "{flavor:?}: sign-out redirects, got {}",
        signed_out.status()
    );
    assert!(
        session_cookie(&jar, &stack.proxy).is_none(),
        "{flavor:?}: cookie cleared"
    );
    let again = get_html(&client, &page, &[]).await;
    assert_eq!(again.status(), StatusCode::FOUND, "{flavor:?}: signed out");
    assert_eq!(
        location(&again),
        expected_start,
        "{flavor:?}: sign in again"
    );
    let replayed = get_html(
        &api,
        &page,
        &[("Cookie", &format!("{COOKIE_NAME}={old_cookie}"))],
    )
    .await;
    assert_eq!(
        replayed.status(),
        StatusCode::FOUND,
        "{flavor:?}: the old cookie is revoked"
    );

    // Nothing forged ever reached the upstream.
    for request in stack.echo.seen() {
        assert_ne!(
            request.header("x-auth-request-jwt"),
            FORGED_JWT,
            "{flavor:?}"
        );
        assert_ne!(
            request.header("x-auth-request-user"),
            "mallory",
            "{flavor:?}"
        );
        assert!(
            !strips_our_cookie || !request.header("cookie").contains(COOKIE_NAME),
            "{flavor:?}"
        );
    }
}

/// A client-made "signed identity" (`alg: none`, `sub: mallory`) that must
/// never reach an app.
pub(crate) const FORGED_JWT: &str = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJtYWxsb3J5In0.";

/// Signs `login` in through the proxy, starting from a protected page.
pub(crate) async fn sign_in_through(stack: &Stack, client: &reqwest::Client, login: &str) {
    let user = stack.app.okta.user(login);
    stack.app.okta.sign_in_as(&user.id);
    let mut url = stack.url("/");
    let mut response = get_html(client, &url, &[]).await;
    for _ in 0..4 {
        if response.status() != StatusCode::FOUND {
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            panic!("sign-in step for {login}: {status} from {url}: {body}");
        }
        url = location(&response);
        response = get_html(client, &url, &[]).await;
    }
    assert_ne!(response.status(), StatusCode::FOUND, "{login} is signed in");
}

/// A browser navigation (`Accept: text/html`).
pub(crate) async fn get_html(
    client: &reqwest::Client,
    url: &str,
    extra: &[(&str, &str)],
) -> Response {
    let mut all = vec![("Accept", "text/html,application/xhtml+xml")];
    all.extend_from_slice(extra);
    get_with(client, url, &all).await
}

pub(crate) async fn get_with(
    client: &reqwest::Client,
    url: &str,
    headers: &[(&str, &str)],
) -> Response {
    let mut request = client.get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

pub(crate) fn session_cookie(jar: &Jar, origin: &str) -> Option<String> {
    crate::support::app::session_cookie_in(jar, origin)
}
