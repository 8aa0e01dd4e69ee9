use super::*;

fn allowed(cookie_domain: Option<&str>, extra: &[&str]) -> AllowedRedirects {
    let service = Url::parse("https://auth.example.com/").unwrap();
    let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    AllowedRedirects::new(&service, cookie_domain, &extra).unwrap()
}

fn standard() -> AllowedRedirects {
    allowed(
        Some(".corp.example.org"),
        &[
            "app.example.net",
            ".example.com",
            "pinned.example.net:8443",
            "[::1]:8080",
            "10.1.2.3",
            "Upper.Example.Io",
        ],
    )
}

#[test]
fn redirect_targets() {
    let r = standard();
    let ok: &[(&str, &str)] = &[
        ("/", "/"),
        ("/dashboard", "/dashboard"),
        ("/a/b?c=d&e=%2F%2F#frag", "/a/b?c=d&e=%2F%2F#frag"),
        ("/path/%2F%2Fnot-a-host", "/path/%2F%2Fnot-a-host"),
        (
            "https://auth.example.com/after",
            "https://auth.example.com/after",
        ),
        (
            "https://auth.example.com:443/x",
            "https://auth.example.com/x",
        ),
        ("https://app.example.net", "https://app.example.net/"),
        (
            "http://app.example.net:9000/x",
            "http://app.example.net:9000/x",
        ),
        ("https://example.com/", "https://example.com/"),
        (
            "https://a.b.example.com/x?y=1",
            "https://a.b.example.com/x?y=1",
        ),
        (
            "https://wiki.corp.example.org/",
            "https://wiki.corp.example.org/",
        ),
        ("https://corp.example.org/", "https://corp.example.org/"),
        (
            "https://pinned.example.net:8443/",
            "https://pinned.example.net:8443/",
        ),
        ("http://[::1]:8080/x", "http://[::1]:8080/x"),
        ("http://10.1.2.3:1234/", "http://10.1.2.3:1234/"),
        (
            "HTTPS://APP.EXAMPLE.NET/Path",
            "https://app.example.net/Path",
        ),
        ("https://upper.example.io/", "https://upper.example.io/"),
    ];
    for (rd, want) in ok {
        assert_eq!(
            r.validate(rd).as_deref(),
            Ok(*want),
            "{rd} should be allowed"
        );
    }
    let refused: &[(&str, &str)] = &[
        ("", "empty"),
        ("//evil.com", "another site"),
        ("//evil.com/path", "another site"),
        ("/\\evil.com", "backslash"),
        ("\\\\evil.com", "backslash"),
        ("/%2F%2Fevil.com", "another site"),
        ("/%2f/evil.com", "another site"),
        ("/%5Cevil.com", "backslash"),
        ("/%5cevil.com", "backslash"),
        ("https://evil.com", "not allowed"),
        ("https://evil.com@auth.example.com/", "user name"),
        ("https://auth.example.com@evil.com/", "user name"),
        ("https://user:pass@auth.example.com/", "user name"),
        ("https://auth.example.com.evil.com/", "not allowed"),
        ("https://evilexample.com/", "not allowed"),
        ("https://evil-example.com/", "not allowed"),
        ("https://example.com.evil.com/", "not allowed"),
        ("https://app.example.net.evil.com/", "not allowed"),
        ("https://sub.app.example.net/", "not allowed"),
        ("https://pinned.example.net/", "not allowed"),
        ("https://pinned.example.net:8444/", "not allowed"),
        ("http://[::1]:8081/", "not allowed"),
        ("http://[::2]:8080/", "not allowed"),
        ("http://x.10.1.2.3/", "not a valid URL"),
        ("javascript:alert(1)", "Only http and https"),
        (
            "JavaScript:alert(1)//https://auth.example.com",
            "Only http and https",
        ),
        (
            "data:text/html,<script>alert(1)</script>",
            "Only http and https",
        ),
        ("ftp://auth.example.com/", "Only http and https"),
        ("http:evil.com", "Only http and https"),
        ("http:/evil.com", "Only http and https"),
        ("https:auth.example.com", "Only http and https"),
        ("evil.com", "must be a path"),
        ("foo/bar", "must be a path"),
        ("?x=1", "must be a path"),
        ("/\tevil", "control"),
        ("\t//evil.com", "control"),
        ("/\n/evil.com", "control"),
        ("/ /evil.com", "control"),
        ("https://evil.com\r\n", "control"),
        ("%09//evil.com", "encoded space"),
        ("%0a/evil.com", "encoded space"),
        ("%0d%0a//evil.com", "encoded space"),
        ("%20//evil.com", "encoded space"),
        ("/\u{3000}/evil.com", "control"),
        ("https://exa mple.com/", "control"),
        ("https:///evil.com", "not allowed"),
    ];
    for (rd, why) in refused {
        let err = r.validate(rd).expect_err(rd);
        assert!(err.0.contains(why), "{rd:?}: {err}");
    }
}

#[test]
fn a_backslash_after_the_first_path_segment_is_fine() {
    let r = standard();
    for rd in [
        "/search?q=a\\b",
        "/search?q=a%5Cb",
        "/a/b%5Cc",
        "/a/b\\c",
        "https://app.example.net/x?path=C:%5Cdir",
        "https://app.example.net/x#a\\b",
    ] {
        assert!(r.validate(rd).is_ok(), "{rd}: {:?}", r.validate(rd));
    }
    for rd in [
        "https://app.example.net\\@evil.com/",
        "https://app.example.net%5C@evil.com/",
        "https://evil.com\\.app.example.net/",
        "/%5C%5Cevil.com",
        "%5C%5Cevil.com",
    ] {
        assert!(r.validate(rd).is_err(), "{rd} was allowed");
    }
}

#[test]
fn long_targets_are_cut_to_origin_and_path_then_to_the_origin() {
    let r = standard();
    let long_query = format!("https://app.example.net/deep/link?q={}", "x".repeat(5000));
    assert_eq!(
        r.validate(&long_query).as_deref(),
        Ok("https://app.example.net/deep/link")
    );
    let long_path = format!("https://app.example.net/{}?q=1", "p".repeat(5000));
    assert_eq!(
        r.validate(&long_path).as_deref(),
        Ok("https://app.example.net/")
    );
    let relative = format!("/deep?q={}", "x".repeat(5000));
    assert_eq!(r.validate(&relative).as_deref(), Ok("/deep"));
    assert_eq!(
        r.validate(&format!("/{}", "p".repeat(5000))).as_deref(),
        Ok("/")
    );
    let short = "https://app.example.net/a?b=c";
    assert_eq!(r.validate(short).as_deref(), Ok(short));
}

#[test]
fn shortened_honours_the_callers_bound() {
    let url = format!("https://app.example.net/path?q={}", "x".repeat(100));
    assert_eq!(
        shortened(&url, |c| c.len() <= 200).as_deref(),
        Some(url.as_str())
    );
    assert_eq!(
        shortened(&url, |c| c.len() <= 40).as_deref(),
        Some("https://app.example.net/path")
    );
    assert_eq!(
        shortened(&url, |c| c.len() <= 25).as_deref(),
        Some("https://app.example.net/")
    );
    assert_eq!(shortened(&url, |c| c.len() <= 5), None);
}

#[test]
fn refusals_never_echo_the_target() {
    let r = standard();
    let err = r.validate("https://evil.com/<script>").unwrap_err();
    assert!(!err.0.contains("evil") && !err.0.contains('<'), "{err}");
}

#[test]
fn the_service_host_alone_is_allowed_without_any_list() {
    let service = Url::parse("http://127.0.0.1:4180/prefix").unwrap();
    let r = AllowedRedirects::new(&service, None, &[]).unwrap();
    assert!(r.validate("http://127.0.0.1:4180/x").is_ok());
    assert!(r.validate("http://127.0.0.1:4181/x").is_err());
    assert!(r.validate("https://127.0.0.1:4180/x").is_ok());
    assert!(r.validate("http://localhost:4180/x").is_err());
    assert!(r.validate("/x").is_ok());
}

#[test]
fn a_cookie_domain_without_a_dot_still_allows_subdomains() {
    let r = allowed(Some("Example.ORG"), &[]);
    assert!(r.validate("https://example.org/").is_ok());
    assert!(r.validate("https://app.example.org:8080/").is_ok());
    assert!(r.validate("https://badexample.org/").is_err());
}

#[test]
fn an_ip_cookie_domain_allows_that_address_exactly() {
    let r = allowed(Some("127.0.0.1"), &[]);
    assert!(r.validate("http://127.0.0.1:9999/").is_ok());
    assert!(r.validate("http://127.0.0.2/").is_err());
}

#[test]
fn allows_checks_scheme_host_and_port() {
    let r = standard();
    let yes = ["https://app.example.net/", "http://x.example.com:1/"];
    let no = [
        "ftp://app.example.net/",
        "https://evil.com/",
        "https://pinned.example.net/",
    ];
    for u in yes {
        assert!(r.allows(&Url::parse(u).unwrap()), "{u}");
    }
    for u in no {
        assert!(!r.allows(&Url::parse(u).unwrap()), "{u}");
    }
}

#[test]
fn invalid_allow_list_entries_are_named() {
    let service = Url::parse("https://auth.example.com/").unwrap();
    for (entry, why) in [
        ("https://example.com", "has a scheme"),
        ("example.com/path", "is not a host name"),
        ("", "is empty"),
        ("exa mple.com", "is not a host name"),
        ("user@example.com", "is not a host name"),
        ("example.com:http", "has a bad port"),
        ("example.com:70000", "has a bad port"),
        ("[::1", "unclosed"),
        (".10.0.0.1", "cannot have subdomains"),
        ("*.example.com", "is not a host name"),
    ] {
        let err = AllowedRedirects::new(&service, None, &[entry.to_string()]).unwrap_err();
        assert!(
            err.contains(&format!("`{entry}`")) && err.contains(why),
            "{entry}: {err}"
        );
    }
}

#[test]
fn every_invalid_entry_is_reported() {
    let service = Url::parse("https://auth.example.com/").unwrap();
    let extra = vec![
        "https://a.com".to_string(),
        "ok.com".to_string(),
        "b.com/x".to_string(),
    ];
    let err = AllowedRedirects::new(&service, None, &extra).unwrap_err();
    assert!(
        err.contains("`https://a.com`") && err.contains("`b.com/x`"),
        "{err}"
    );
}

#[test]
fn bare_ipv6_entries_allow_any_port() {
    let r = allowed(None, &["::1", "[fd00::1]"]);
    assert!(r.validate("http://[::1]:1234/").is_ok());
    assert!(r.validate("http://[fd00::1]/").is_ok());
}
