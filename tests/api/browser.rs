//! A real browser through the shipped nginx config: headless Chromium, driven
//! over WebDriver (Debian's `chromedriver`) with fantoccini, opens a protected
//! page, meets the fake Okta's sign-in form, signs in as alice by typing her
//! name, sees the page the echo upstream served with her identity, signs out and
//! is sent to the sign-in form again. Screenshots of the filled-in form and of
//! the signed-in page are kept in `target/browser-sign-in-form.png` and
//! `target/browser-signed-in.png`.
//!
//! Then the default, secure setup over HTTPS, once per proxy (nginx, Caddy
//! 2.11, Traefik 3.7): the proxy serves a certificate from a throw-away CA
//! made by the test (Chromium trusts the server key by its SPKI hash), the
//! service keeps `COOKIE_SECURE=true`, a non-member signs in on the form, sees
//! the page with her identity, gets a human-readable 403 under `/admin/`, and
//! signs out. A failed step leaves `target/browser-https-<proxy>-failure.png`.
//!
//! Chromium runs headless with a fresh profile, its background networking off
//! and every host name but the loopback address unresolvable, and is only ever
//! sent to 127.0.0.1 URLs. Missing `chromium`, `chromedriver` (or the proxy)
//! skips loudly; with `CI=true` it fails.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};
use url::Url;

use crate::support::app::spawn_app_with;
use crate::support::process::{free_port, TempDir};
use crate::support::proxies::{find_binary, installed, launch, Build, Flavor, Stack};
use crate::support::tls::TestCa;
use crate::support::upstream::{Echo, Seen};

/// How long a page may take to arrive in the browser.
const PAGE_WAIT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn a_browser_signs_in_through_nginx_on_the_okta_form_and_signs_out() {
    let Some((chromium, chromedriver)) = browser_binaries() else {
        return;
    };
    let Some(stack) = Stack::start(Flavor::Nginx).await else {
        return;
    };
    let okta = stack.app.okta.clone();
    // The fake approves at once only a user named by `sign_in_as`; with none, its
    // /authorize always shows the form. A form sign-in does not change that, so
    // after sign-out the form is what a new sign-in meets again.
    okta.sign_out_browser();
    let driver = Driver::start(&chromedriver);
    let browser = driver.open(&chromium, None).await;

    // 1. A protected page without a session: nginx sends the browser through
    //    /oauth2/start to the fake Okta's sign-in form.
    let page = stack.url("/private/page?from=browser");
    browser.goto(&page).await.expect("open the protected page");
    let username = wait_for_sign_in_form(&browser, &okta.base_url(), "browser").await;
    assert_eq!(stack.echo.count(), 0, "nothing reached the upstream yet");

    // 2. Type the name and submit: back on the original URL, served by the app.
    username
        .send_keys("alice")
        .await
        .expect("type the username");
    save_screenshot(&browser, "browser-sign-in-form.png").await;
    browser
        .find(Locator::Id("okta-signin-submit"))
        .await
        .expect("the sign-in button")
        .click()
        .await
        .expect("submit the sign-in form");
    let landed = Url::parse(&page).unwrap();
    browser
        .wait()
        .at_most(PAGE_WAIT)
        .for_url(&landed)
        .await
        .unwrap_or_else(|e| panic!("the browser did not come back to {page}: {e}"));

    // 3. The page shows who the app was told is signed in (the echo answers the
    //    request it saw as JSON, which Chromium shows as text).
    let text = page_text(&browser).await;
    assert!(
        text.contains("alice@example.com"),
        "the page shows the user:\n{text}"
    );
    let seen: Seen = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("the page is the echoed request ({e}):\n{text}"));
    assert_eq!(seen.path, "/private/page?from=browser");
    assert_eq!(seen.header("x-auth-request-user"), "alice@example.com");
    assert_eq!(seen.header("x-auth-request-groups"), "Everyone,admins");
    assert!(
        !seen.header("cookie").contains("_forward_auth"),
        "our cookie stays away from the app: {}",
        seen.header("cookie")
    );
    save_screenshot(&browser, "browser-signed-in.png").await;
    let served = stack.echo.count();

    // 4. Sign out through nginx: the session ends (and Okta's, through its
    //    end-session endpoint), and the browser is sent to sign in again.
    browser
        .goto(&stack.url("/oauth2/sign_out"))
        .await
        .expect("open the sign-out URL");
    wait_for_sign_in_form(&browser, &okta.base_url(), "browser").await;
    assert_eq!(okta.logout_calls().len(), 1, "Okta's session was ended too");
    let cookies = browser
        .get_all_cookies()
        .await
        .expect("the browser's cookies");
    assert!(
        cookies.iter().all(|c| c.name() != "_forward_auth"),
        "the session cookie is gone: {cookies:?}"
    );

    // 5. The protected page again: the sign-in form, and the app sees nothing.
    browser.goto(&page).await.expect("open the protected page");
    wait_for_sign_in_form(&browser, &okta.base_url(), "browser").await;
    assert_eq!(
        stack.echo.count(),
        served,
        "signed out: nothing reached the app"
    );

    browser.close().await.expect("end the WebDriver session");
}

#[tokio::test]
async fn a_browser_signs_in_over_https_through_nginx_with_secure_cookies() {
    https_in_a_browser(Build::DebianNginx).await;
}

#[tokio::test]
async fn a_browser_signs_in_over_https_through_caddy_with_secure_cookies() {
    https_in_a_browser(Build::CurrentCaddy).await;
}

#[tokio::test]
async fn a_browser_signs_in_over_https_through_traefik_with_secure_cookies() {
    https_in_a_browser(Build::CurrentTraefik).await;
}

/// The default setup in a real browser: HTTPS, `COOKIE_SECURE=true`.
async fn https_in_a_browser(build: Build) {
    let Some((chromium, chromedriver)) = browser_binaries() else {
        return;
    };
    let Some(binary) = installed(build) else {
        return;
    };
    let flavor = build.flavor();
    let label = format!("browser-https-{flavor:?}").to_ascii_lowercase();
    let ca = TestCa::new();
    let port = free_port();
    let proxy = format!("https://127.0.0.1:{port}");
    let app = spawn_app_with(&[
        ("AUTHENTICATE_SERVICE_URL", proxy.as_str()),
        ("COOKIE_SECURE", "true"),
    ])
    .await;
    let echo = Echo::start();
    let running = launch(
        build,
        &binary,
        port,
        &[app.port],
        echo.port,
        Some(&ca.files),
    )
    .await;
    let stack = Stack {
        flavor,
        proxy,
        app,
        echo,
        strips_our_cookie: build.strips_our_cookie(),
        _process: Box::new(running),
    };
    let okta = stack.app.okta.clone();
    okta.sign_out_browser();
    let driver = Driver::start(&chromedriver);
    let browser = driver.open(&chromium, Some(&ca.spki_sha256)).await;

    // 1. A protected page over HTTPS: the fake Okta's sign-in form.
    let page = stack.url("/private/page?from=https");
    browser.goto(&page).await.expect("open the protected page");
    let username = wait_for_sign_in_form(&browser, &okta.base_url(), &label).await;

    // 2. carol (not in `admins`) signs in and is back on the page, which shows
    //    her identity; the session cookie is Secure.
    username
        .send_keys("carol")
        .await
        .expect("type the username");
    browser
        .find(Locator::Id("okta-signin-submit"))
        .await
        .expect("the sign-in button")
        .click()
        .await
        .expect("submit the sign-in form");
    let landed = Url::parse(&page).unwrap();
    if let Err(e) = browser.wait().at_most(PAGE_WAIT).for_url(&landed).await {
        fail(&browser, &label, format!("not back on {page}: {e}")).await;
    }
    let text = page_text(&browser).await;
    let Ok(seen) = serde_json::from_str::<Seen>(&text) else {
        fail(
            &browser,
            &label,
            format!(
                "not the app's page:
{text}"
            ),
        )
        .await
    };
    // Traefik cannot remove our cookie (integrations/traefik/README.md).
    let cookie_leaks = stack.strips_our_cookie && seen.header("cookie").contains("_forward_auth");
    if seen.header("x-auth-request-user") != "carol@example.com"
        || seen.header("x-forwarded-proto") != "https"
        || cookie_leaks
    {
        fail(
            &browser,
            &label,
            format!("{flavor:?}: the app saw {seen:?}"),
        )
        .await;
    }
    let cookies = browser.get_all_cookies().await.expect("the cookies");
    let session = cookies
        .iter()
        .find(|c| c.name().trim_start_matches("__Host-") == "_forward_auth");
    match session {
        Some(cookie) if cookie.secure() == Some(true) && cookie.http_only() == Some(true) => {}
        other => {
            fail(
                &browser,
                &label,
                format!("a Secure, HttpOnly session cookie: {other:?} in {cookies:?}"),
            )
            .await
        }
    }

    // 3. /admin/ is for `admins`: a 403 page a person can read, no sign-in
    //    loop, nothing reaches the app. Caddy and Traefik pass the service's
    //    page on; nginx shows the config's own page. (Chromium's own requests,
    //    such as /favicon.ico, may reach the app: count the pages.)
    let reached = |prefix: &str| {
        stack
            .echo
            .seen()
            .iter()
            .filter(|r| r.path.starts_with(prefix))
            .count()
    };
    browser
        .goto(&stack.url("/admin/settings"))
        .await
        .expect("open the admin page");
    let text = page_text(&browser).await;
    let url = browser.current_url().await.expect("the URL");
    let readable = match flavor {
        Flavor::Nginx => text.contains("Access denied") && text.contains("Sign out"),
        Flavor::Caddy | Flavor::Traefik => {
            text.contains("Access denied") && text.contains("carol@example.com")
        }
    };
    if !readable || !url.as_str().starts_with(&stack.url("/admin/")) || reached("/admin/") != 0 {
        fail(
            &browser,
            &label,
            format!(
                "{flavor:?}: at {url}:
{text}"
            ),
        )
        .await;
    }
    save_screenshot(&browser, &format!("{label}-403.png")).await;

    // 4. Sign out: the sign-in form again, the session cookie gone.
    let served = reached("/private/");
    browser
        .goto(&stack.url("/oauth2/sign_out"))
        .await
        .expect("open the sign-out URL");
    wait_for_sign_in_form(&browser, &okta.base_url(), &label).await;
    let cookies = browser.get_all_cookies().await.expect("the cookies");
    // (The sign-in form was reached through /oauth2/start, which set a new
    // binding cookie: only the session cookie must be gone.)
    if cookies
        .iter()
        .any(|c| c.name().trim_start_matches("__Host-") == "_forward_auth")
    {
        fail(
            &browser,
            &label,
            format!("session cookie left: {cookies:?}"),
        )
        .await;
    }
    browser.goto(&page).await.expect("open the protected page");
    wait_for_sign_in_form(&browser, &okta.base_url(), &label).await;
    assert_eq!(
        reached("/private/"),
        served,
        "signed out: the page did not reach the app"
    );
    browser.close().await.expect("end the WebDriver session");
}

/// Keeps a screenshot of the failure in target/, then fails.
async fn fail(browser: &Client, label: &str, message: String) -> ! {
    save_screenshot(browser, &format!("{label}-failure.png")).await;
    panic!("{message}");
}

/// Waits for the fake Okta's sign-in form; returns its username field. A
/// failure leaves `target/<label>-failure.png`.
async fn wait_for_sign_in_form(
    browser: &Client,
    okta: &str,
    label: &str,
) -> fantoccini::elements::Element {
    let field = browser
        .wait()
        .at_most(PAGE_WAIT)
        .for_element(Locator::Id("okta-signin-username"))
        .await;
    let url = browser.current_url().await.expect("the current URL");
    let field = match field {
        Ok(field) => field,
        Err(e) => {
            let source = browser.source().await.unwrap_or_default();
            fail(
                browser,
                label,
                format!("no sign-in form at {url}: {e}\n{source}"),
            )
            .await
        }
    };
    assert!(
        url.as_str()
            .starts_with(&format!("{okta}/oauth2/v1/authorize")),
        "the form is the fake Okta's authorize page, got {url}"
    );
    let title = browser.title().await.expect("the page title");
    assert!(title.contains("Fake Okta"), "title: {title}");
    field
}

/// The text the page shows.
async fn page_text(browser: &Client) -> String {
    browser
        .find(Locator::Css("body"))
        .await
        .expect("a page body")
        .text()
        .await
        .expect("the page text")
}

async fn save_screenshot(browser: &Client, name: &str) {
    let png = browser.screenshot().await.expect("a screenshot");
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join(name);
    std::fs::create_dir_all(path.parent().unwrap()).expect("create target/");
    std::fs::write(&path, png).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    eprintln!("screenshot: {}", path.display());
}

/// Chromium and chromedriver, or `None` (skip) when missing outside CI.
fn browser_binaries() -> Option<(PathBuf, PathBuf)> {
    // Debian's /usr/bin/chromium is a shell wrapper; the browser itself is here.
    let chromium = Some(PathBuf::from("/usr/lib/chromium/chromium"))
        .filter(|p| p.is_file())
        .or_else(|| find_binary("chromium"));
    match (chromium, find_binary("chromedriver")) {
        (Some(chromium), Some(chromedriver)) => Some((chromium, chromedriver)),
        _ => {
            let message = "chromium or chromedriver not installed — \
                           apt-get install chromium chromium-driver";
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("{message} (CI=true: a missing browser is a failure)");
            }
            eprintln!(
                "\n!!!!! SKIPPED: {message}; the sign-in was NOT tested in a real browser !!!!!\n"
            );
            None
        }
    }
}

/// A chromedriver on a loopback port, in its own process group so that the
/// browsers it starts go with it: terminated and reaped on drop.
struct Driver {
    child: Child,
    port: u16,
    dir: TempDir,
}

impl Driver {
    fn start(binary: &Path) -> Driver {
        use std::os::unix::process::CommandExt;
        let port = free_port();
        let dir = TempDir::new("chromedriver");
        let child = Command::new(binary)
            .arg(format!("--port={port}"))
            .arg(format!(
                "--log-path={}",
                dir.path("chromedriver.log").display()
            ))
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let driver = Driver { child, port, dir };
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "chromedriver did not start:\n{}",
                driver.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        driver
    }

    /// A new headless Chromium session with a fresh profile; with `spki`, it
    /// trusts the server key of that SPKI hash (base64 of its SHA-256).
    async fn open(&self, chromium: &Path, spki: Option<&str>) -> Client {
        let profile = self.dir.path("profile");
        let trust = spki
            .map(|hash| format!("--ignore-certificate-errors-spki-list={hash}"))
            .unwrap_or_else(|| "--no-default-browser-check".to_string());
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--disable-extensions",
                    "--disable-default-apps",
                    // Nothing but the loopback address resolves.
                    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
                    "--window-size=1000,700",
                    format!("--user-data-dir={}", profile.display()),
                    trust,
                ],
            },
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!("a JSON object literal")
        };
        ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .unwrap_or_else(|e| panic!("a Chromium session: {e}\n{}", self.logs()))
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(self.dir.path("chromedriver.log")).unwrap_or_default()
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The whole group: chromedriver and any Chromium it left behind.
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // Usually nothing is left by now; then kill only reports that.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = self.logs();
            let lines: Vec<&str> = log.lines().collect();
            let tail = lines[lines.len().saturating_sub(60)..].join("\n");
            eprintln!("chromedriver log (end):\n{tail}");
        }
    }
}
