//! The development demo (`examples/demo.rs`), started through its set-up
//! function (`crates/demo`) on free loopback ports: a person signs in by typing a
//! username on the fake Okta's form (nothing is approved automatically), the
//! session shows the demo user's groups, and the banner warns that it is for
//! development only. The example itself is built by `cargo test`; its `main` only
//! calls the same set-up.

use std::sync::Arc;

use reqwest::cookie::Jar;
use reqwest::StatusCode;
use serde_json::Value;
use url::Url;

use crate::support::app::{browser, location};

async fn start_demo() -> forward_auth_demo::Demo {
    let settings = forward_auth_demo::Settings {
        okta_port: 0,
        service_port: 0,
        service_url: None,
        log_level: "warn".to_string(),
    };
    forward_auth_demo::start(&settings)
        .await
        .expect("the demo starts")
}

#[tokio::test]
async fn the_demo_signs_in_whoever_types_a_listed_username_on_the_fake_okta_form() {
    let demo = start_demo().await;
    let service = demo.service_url.clone();
    let okta = demo.okta.base_url();
    tokio::spawn(demo.app.run_until_stopped());
    let client = browser(Arc::new(Jar::default()));

    // The sign-in link leads to the fake Okta's form, not to an automatic approval.
    let start = client
        .get(format!("{service}/oauth2/start?rd=/oauth2/userinfo"))
        .send()
        .await
        .unwrap();
    assert_eq!(start.status(), StatusCode::FOUND, "start -> Okta");
    let authorize = Url::parse(&location(&start)).unwrap();
    assert!(
        authorize
            .as_str()
            .starts_with(&format!("{okta}/oauth2/v1/authorize?")),
        "{authorize}"
    );
    let form = client.get(authorize.clone()).send().await.unwrap();
    assert_eq!(form.status(), StatusCode::OK, "the sign-in form");
    let html = form.text().await.unwrap();
    assert!(html.contains(r#"id="okta-signin-username""#), "{html}");
    assert!(html.contains("development only"), "{html}");

    // An unknown name is refused on the form.
    let mut fields: Vec<(String, String)> = authorize.query_pairs().into_owned().collect();
    let login_url = format!("{okta}/oauth2/v1/authorize/login");
    let mut typed = fields.clone();
    typed.push(("username".into(), "mallory".into()));
    let refused = client.post(&login_url).form(&typed).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::OK, "the form again");
    assert!(refused.text().await.unwrap().contains("Unable to sign in"));

    // bob types his name (the form posts the authorize parameters back as hidden
    // fields), and arrives signed in with his groups.
    fields.push(("username".into(), "bob".into()));
    let approved = client.post(&login_url).form(&fields).send().await.unwrap();
    assert_eq!(approved.status(), StatusCode::FOUND, "Okta -> callback");
    let callback = location(&approved);
    assert!(
        callback.starts_with(&format!("{service}/oauth2/callback?")),
        "{callback}"
    );
    let back = client.get(&callback).send().await.unwrap();
    assert_eq!(back.status(), StatusCode::FOUND, "callback -> rd");
    assert_eq!(location(&back), "/oauth2/userinfo");
    let me: Value = client
        .get(format!("{service}/oauth2/userinfo"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["user"], "bob@example.com", "{me}");
    assert_eq!(
        me["groups"],
        serde_json::json!(["Everyone", "staff"]),
        "{me}"
    );
}

#[tokio::test]
async fn the_demo_banner_says_development_only_and_lists_the_users_and_urls() {
    let demo = start_demo().await;
    let banner = forward_auth_demo::banner(&demo);
    assert!(banner.contains("FOR DEVELOPMENT ONLY"), "{banner}");
    assert!(banner.contains(&demo.okta.base_url()), "{banner}");
    assert!(banner.contains(&demo.service_url), "{banner}");
    for line in [
        "alice  alice@example.com    groups: Everyone, admins",
        "bob    bob@example.com      groups: Everyone, staff",
        "carol  carol@example.com    groups: Everyone",
    ] {
        assert!(banner.contains(line), "{line} in:\n{banner}");
    }
    assert!(banner.contains("integrations/nginx/forward-auth.conf"));
    assert!(banner.contains("integrations/caddy/Caddyfile"));
}

#[tokio::test]
async fn the_demo_refuses_a_public_url_that_is_not_on_loopback() {
    for url in [
        "https://app.example.com",
        "http://127.0.0.1.example.com:8000",
        "https://127.0.0.1:8000",
    ] {
        let settings = forward_auth_demo::Settings {
            okta_port: 0,
            service_port: 0,
            service_url: Some(url.to_string()),
            log_level: "warn".to_string(),
        };
        let Err(problem) = forward_auth_demo::start(&settings).await else {
            panic!("DEMO_SERVICE_URL={url} must be refused");
        };
        assert!(problem.contains("loopback"), "{problem}");
    }
}

#[tokio::test]
async fn the_demo_s_fake_okta_admin_page_ends_bob_s_access_at_his_next_check() {
    let demo = start_demo().await;
    let (service, okta, listen) = (
        demo.service_url.clone(),
        demo.okta.clone(),
        demo.listen.clone(),
    );
    let secret = demo.hook_secret.clone();
    tokio::spawn(demo.app.run_until_stopped());
    forward_auth_demo::connect_event_hook(&okta, &listen, &secret)
        .await
        .expect("the service answers Okta's verification");
    let client = browser(Arc::new(Jar::default()));
    let bob = okta.user("bob");

    // bob signs in on the fake Okta's form.
    let start = client
        .get(format!("{service}/oauth2/start?rd=/oauth2/userinfo"))
        .send()
        .await
        .unwrap();
    let authorize = Url::parse(&location(&start)).unwrap();
    let mut fields: Vec<(String, String)> = authorize.query_pairs().into_owned().collect();
    fields.push(("username".into(), "bob".into()));
    let approved = client
        .post(format!("{}/oauth2/v1/authorize/login", okta.base_url()))
        .form(&fields)
        .send()
        .await
        .unwrap();
    let back = client.get(location(&approved)).send().await.unwrap();
    assert_eq!(back.status(), StatusCode::FOUND, "signed in");
    let me = || client.get(format!("{service}/oauth2/userinfo")).send();
    assert_eq!(me().await.unwrap().status(), StatusCode::OK);

    // The admin page lists bob with a deactivate button; pressing it ends his
    // session through the event hook.
    let admin = format!("{}/demo/admin", okta.base_url());
    let page = client
        .get(&admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("bob@example.com") && page.contains("deactivate"),
        "{page}"
    );
    assert!(
        page.contains("/oauth2/okta/events"),
        "the hook is shown: {page}"
    );
    let pressed = client
        .post(format!("{admin}/deactivate"))
        .form(&[("user", bob.id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(pressed.status(), StatusCode::FOUND);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let status = me().await.unwrap().status();
        if status == StatusCode::UNAUTHORIZED {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "bob still has access");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert!(!okta.user("bob").active, "and he is deactivated in Okta");
}
