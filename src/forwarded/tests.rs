use super::*;

fn trusted() -> TrustedProxies {
    TrustedProxies::parse("127.0.0.1/32, ::1/128, 10.0.0.0/8").unwrap()
}

fn ip(s: &str) -> Option<IpAddr> {
    Some(s.parse().unwrap())
}

fn read(
    peer: Option<IpAddr>,
    headers: &[(&'static str, &'static str)],
) -> Result<OriginalRequest, ForwardedError> {
    let lookup = |name: &str| -> Option<&'static str> {
        headers.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
    };
    original_request(peer, lookup, &trusted(), "https")
}

fn ok(method: &str, url: Option<&str>, source: Source) -> Result<OriginalRequest, ForwardedError> {
    Ok(OriginalRequest {
        method: method.to_string().into(),
        url: url.map(|u| Arc::new(Url::parse(u).unwrap())),
        source,
    })
}

#[test]
fn trusted_proxies_parse_cidrs_and_bare_addresses() {
    let t = TrustedProxies::parse(" 10.0.0.0/8 ,172.17.0.1, ::1 ,fd00::/8,").unwrap();
    assert_eq!(t.0.len(), 4);
    assert!(t.contains("10.1.2.3".parse().unwrap()));
    assert!(t.contains("172.17.0.1".parse().unwrap()));
    assert!(!t.contains("172.17.0.2".parse().unwrap()));
    assert!(t.contains("::1".parse().unwrap()));
    assert!(t.contains("fd12::1".parse().unwrap()));
    assert!(!t.contains("11.0.0.1".parse().unwrap()));
}

#[test]
fn an_empty_trusted_proxies_list_trusts_nobody() {
    let t = TrustedProxies::parse("").unwrap();
    assert!(t.0.is_empty());
    assert!(!t.contains("127.0.0.1".parse().unwrap()));
}

#[test]
fn bad_trusted_proxies_entries_are_each_reported() {
    let errs = TrustedProxies::parse("10.0.0.0/33, localhost, 1.2.3.4, 300.1.1.1").unwrap_err();
    assert_eq!(errs.len(), 3, "{errs:?}");
    assert!(errs[0].contains("10.0.0.0/33"));
    assert!(errs[1].contains("localhost"));
    assert!(errs[2].contains("300.1.1.1"));
}

#[test]
fn ipv4_mapped_ipv6_peers_match_ipv4_networks() {
    let t = TrustedProxies::parse("127.0.0.1/32").unwrap();
    assert!(t.contains("::ffff:127.0.0.1".parse().unwrap()));
    assert!(!t.contains("::ffff:127.0.0.2".parse().unwrap()));
}

#[test]
fn original_requests() {
    use Source::*;
    type Headers = Vec<(&'static str, &'static str)>;
    type Want = Result<OriginalRequest, ForwardedError>;
    let cases: Vec<(&str, Option<IpAddr>, Headers, Want)> = vec![
        (
            "nginx sends an absolute X-Original-URL and method",
            ip("127.0.0.1"),
            vec![
                ("x-original-url", "https://app.example.com/a?b=c"),
                ("x-original-method", "post"),
                ("host", "auth.example.com"),
            ],
            ok("POST", Some("https://app.example.com/a?b=c"), OriginalUrl),
        ),
        (
            "an IPv4-mapped peer is trusted like its IPv4 address",
            ip("::ffff:127.0.0.1"),
            vec![("x-original-url", "http://app.example.com:8080/")],
            ok("GET", Some("http://app.example.com:8080/"), OriginalUrl),
        ),
        (
            "a relative X-Original-URL takes the forwarded host and proto",
            ip("10.1.1.1"),
            vec![
                ("x-original-url", "/path?q=1"),
                ("x-forwarded-proto", "http"),
                ("x-forwarded-host", "app.example.com"),
                ("host", "auth.example.com"),
            ],
            ok("GET", Some("http://app.example.com/path?q=1"), OriginalUrl),
        ),
        (
            "a relative X-Original-URL falls back to the Host header and default scheme",
            ip("127.0.0.1"),
            vec![("x-original-url", "/path"), ("host", "app.example.com:8443")],
            ok("GET", Some("https://app.example.com:8443/path"), OriginalUrl),
        ),
        (
            "a relative X-Original-URL without any host is an error",
            ip("127.0.0.1"),
            vec![("x-original-url", "/path")],
            Err(ForwardedError("X-Original-URL is a path but neither X-Forwarded-Host nor Host names the host".into())),
        ),
        (
            "a scheme-relative X-Original-URL is an error",
            ip("127.0.0.1"),
            vec![("x-original-url", "//evil.com/"), ("host", "app.example.com")],
            Err(ForwardedError("X-Original-URL is not a valid URL: send an absolute http(s) URL or a path starting with /".into())),
        ),
        (
            "a non-http X-Original-URL is an error",
            ip("127.0.0.1"),
            vec![("x-original-url", "ftp://app.example.com/")],
            Err(ForwardedError("X-Original-URL is not a valid URL: send an absolute http(s) URL or a path starting with /".into())),
        ),
        (
            "an X-Original-URL that is neither absolute nor a path is an error",
            ip("127.0.0.1"),
            vec![("x-original-url", "app.example.com/x")],
            Err(ForwardedError("X-Original-URL is not a valid URL: send an absolute http(s) URL or a path starting with /".into())),
        ),
        (
            "an X-Original-URL with user info is an error",
            ip("127.0.0.1"),
            vec![("x-original-url", "https://app.example.com@evil.com/")],
            Err(ForwardedError("X-Original-URL is not a valid URL: send an absolute http(s) URL or a path starting with /".into())),
        ),
        (
            "a bad X-Original-Method is an error",
            ip("127.0.0.1"),
            vec![("x-original-url", "https://app.example.com/"), ("x-original-method", "GET /x")],
            Err(ForwardedError("X-Original-Method is not an HTTP method such as GET or POST".into())),
        ),
        (
            "Traefik and Caddy send the X-Forwarded set",
            ip("10.0.0.5"),
            vec![
                ("x-forwarded-proto", "https"),
                ("x-forwarded-host", "app.example.com"),
                ("x-forwarded-uri", "/dash?x=1"),
                ("x-forwarded-method", "delete"),
                ("host", "auth.example.com"),
            ],
            ok("DELETE", Some("https://app.example.com/dash?x=1"), ForwardedHeaders),
        ),
        (
            "the first of several forwarded values wins",
            ip("127.0.0.1"),
            vec![
                ("x-forwarded-proto", " HTTP , https"),
                ("x-forwarded-host", "app.example.com:8080, proxy.internal"),
            ],
            ok("GET", Some("http://app.example.com:8080/"), ForwardedHeaders),
        ),
        (
            "a missing X-Forwarded-Proto takes the default scheme and a missing uri is /",
            ip("::1"),
            vec![("x-forwarded-host", "App.Example.com")],
            ok("GET", Some("https://app.example.com/"), ForwardedHeaders),
        ),
        (
            "an IPv6 forwarded host works",
            ip("127.0.0.1"),
            vec![("x-forwarded-host", "[::1]:8080"), ("x-forwarded-proto", "http")],
            ok("GET", Some("http://[::1]:8080/"), ForwardedHeaders),
        ),
        (
            "a default port in the forwarded host is accepted",
            ip("127.0.0.1"),
            vec![("x-forwarded-host", "app.example.com:443")],
            ok("GET", Some("https://app.example.com/"), ForwardedHeaders),
        ),
        (
            "Traefik's ws and wss for a WebSocket handshake are http and https",
            ip("127.0.0.1"),
            vec![
                ("x-forwarded-proto", "wss"),
                ("x-forwarded-host", "app.example.com"),
                ("x-forwarded-uri", "/socket"),
            ],
            ok("GET", Some("https://app.example.com/socket"), ForwardedHeaders),
        ),
        (
            "a bad X-Forwarded-Proto is an error",
            ip("127.0.0.1"),
            vec![("x-forwarded-host", "app.example.com"), ("x-forwarded-proto", "javascript")],
            Err(ForwardedError("X-Forwarded-Proto must be http or https".into())),
        ),
        (
            "a forwarded host with an at sign is an error",
            ip("127.0.0.1"),
            vec![("x-forwarded-host", "app.example.com@evil.com")],
            Err(ForwardedError("X-Forwarded-Host is not a valid host[:port]".into())),
        ),
        (
            "a forwarded host with a slash is an error",
            ip("127.0.0.1"),
            vec![("x-forwarded-host", "evil.com/app.example.com")],
            Err(ForwardedError("X-Forwarded-Host is not a valid host[:port]".into())),
        ),
        (
            "a forwarded host with a bad port is an error",
            ip("127.0.0.1"),
            vec![("x-forwarded-host", "app.example.com:99999")],
            Err(ForwardedError("X-Forwarded-Host is not a valid host[:port]".into())),
        ),
        (
            "a forwarded host that the URL parser would rewrite is an error",
            ip("127.0.0.1"),
            vec![("x-forwarded-host", "0x7f.1")],
            Err(ForwardedError("X-Forwarded-Host is not a valid host[:port]".into())),
        ),
        (
            "an empty forwarded host is an error",
            ip("127.0.0.1"),
            vec![("x-forwarded-host", "")],
            Err(ForwardedError("X-Forwarded-Host is not a valid host[:port]".into())),
        ),
        (
            "a forwarded uri without a leading slash is an error",
            ip("127.0.0.1"),
            vec![("x-forwarded-host", "app.example.com"), ("x-forwarded-uri", "evil.com/x")],
            Err(ForwardedError("X-Forwarded-Uri must be a path starting with /".into())),
        ),
        (
            "a forwarded uri cannot change the host",
            ip("127.0.0.1"),
            vec![("x-forwarded-host", "app.example.com"), ("x-forwarded-uri", "/\\evil.com")],
            ok("GET", Some("https://app.example.com//evil.com"), ForwardedHeaders),
        ),
        (
            "a bad X-Forwarded-Method is an error",
            ip("127.0.0.1"),
            vec![("x-forwarded-host", "app.example.com"), ("x-forwarded-method", "SUPERCALIFRAGILISTIC")],
            Err(ForwardedError("X-Forwarded-Method is not an HTTP method such as GET or POST".into())),
        ),
        (
            "a trusted peer without forwarded headers falls back to Host",
            ip("127.0.0.1"),
            vec![("host", "app.example.com:8080")],
            ok("GET", Some("https://app.example.com:8080/"), HostHeader),
        ),
        (
            "a trusted peer's forwarded method counts with the Host fallback",
            ip("127.0.0.1"),
            vec![("host", "app.example.com"), ("x-forwarded-method", "put")],
            ok("PUT", Some("https://app.example.com/"), HostHeader),
        ),
        (
            "no headers at all give no URL",
            ip("127.0.0.1"),
            vec![],
            ok("GET", None, HostHeader),
        ),
        (
            "an unusable Host header gives no URL",
            ip("127.0.0.1"),
            vec![("host", "a b")],
            ok("GET", None, HostHeader),
        ),
        (
            "spoofed X-Original-URL from an untrusted peer is ignored",
            ip("203.0.113.9"),
            vec![("x-original-url", "https://app.example.com/"), ("host", "auth.example.com")],
            ok("GET", None, Unverifiable),
        ),
        (
            "spoofed X-Forwarded headers from an untrusted peer are ignored",
            ip("203.0.113.9"),
            vec![
                ("x-forwarded-host", "app.example.com"),
                ("x-forwarded-method", "POST"),
                ("host", "auth.example.com"),
            ],
            ok("GET", None, Unverifiable),
        ),
        (
            "even invalid forwarded headers from an untrusted peer are no error",
            ip("203.0.113.9"),
            vec![("x-forwarded-proto", "gopher"), ("x-original-method", "???")],
            ok("GET", None, Unverifiable),
        ),
        (
            "an unknown peer is not trusted",
            None,
            vec![("x-forwarded-uri", "/x"), ("host", "app.example.com")],
            ok("GET", None, Unverifiable),
        ),
        (
            "an untrusted peer without forwarded headers falls back to Host",
            ip("203.0.113.9"),
            vec![("host", "auth.example.com")],
            ok("GET", Some("https://auth.example.com/"), HostHeader),
        ),
        (
            "an IPv4-mapped peer outside the trusted networks is not trusted",
            ip("::ffff:203.0.113.9"),
            vec![("x-forwarded-host", "app.example.com")],
            ok("GET", None, Unverifiable),
        ),
    ];
    for (name, peer, headers, want) in cases {
        assert_eq!(read(peer, &headers), want, "{name}");
    }
}

#[test]
fn the_forward_endpoint_prefers_the_proxys_own_forwarded_headers() {
    let headers = [
        ("x-original-url", "https://evil-choice.example.com/admin"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "app.example.com"),
        ("x-forwarded-uri", "/page"),
    ];
    let lookup = |name: &str| -> Option<&'static str> {
        headers.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
    };
    let read =
        |prefer| original_request_preferring(prefer, ip("127.0.0.1"), lookup, &trusted(), "https");
    let forward = read(Prefer::ForwardedHeaders).unwrap();
    assert_eq!(
        forward.url.unwrap().as_str(),
        "https://app.example.com/page"
    );
    assert_eq!(forward.source, Source::ForwardedHeaders);
    let nginx = read(Prefer::OriginalUrl).unwrap();
    assert_eq!(
        nginx.url.unwrap().as_str(),
        "https://evil-choice.example.com/admin"
    );
    // Without X-Forwarded-Host, the forward endpoint still reads X-Original-URL.
    let only_original = |name: &str| -> Option<&'static str> {
        (name == "x-original-url").then_some("https://app.example.com/x")
    };
    let got = original_request_preferring(
        Prefer::ForwardedHeaders,
        ip("127.0.0.1"),
        only_original,
        &trusted(),
        "https",
    )
    .unwrap();
    assert_eq!(got.source, Source::OriginalUrl);
}

mod memo {
    //! The URL memo answers exactly as `Url::parse`: the same `Ok` (every
    //! component, compared through `Debug` and the serialization) or an
    //! `Err`, for generated and hostile inputs, whether the memo misses, hits,
    //! or a slot was taken by another input; and a whole reading of forwarded
    //! headers is the same warm as on a thread that never parsed before.

    use super::*;
    use proptest::prelude::*;

    /// What a parse says, in full.
    fn said(parsed: &Result<impl std::ops::Deref<Target = Url>, url::ParseError>) -> String {
        match parsed {
            Ok(url) => format!("{} {:?}", url.as_str(), **url),
            Err(error) => format!("error: {error}"),
        }
    }

    fn reference(input: &str) -> String {
        said(&Url::parse(input).map(Box::new))
    }

    /// URLs built of the pieces that parsers disagree on, then noise.
    fn hostile_url() -> impl Strategy<Value = String> {
        let scheme = prop::sample::select(vec![
            "http", "https", "HTTPS", "hTTp", "ws", "ftp", "", "h\tttps", "https ",
        ]);
        let separator = prop::sample::select(vec![
            "://", ":/", ":", ":\\\\", ":///", "://\t", ":/\\", "://\n", ": //",
        ]);
        let userinfo = prop::sample::select(vec![
            "",
            "",
            "",
            "user@",
            "user:pass@",
            "@",
            "a%40b@",
            ":@",
            "u@v@",
        ]);
        let host = prop::sample::select(vec![
            "app.example.com",
            "APP.Example.COM",
            "xn--bcher-kva.example",
            "bücher.example",
            "日本.example",
            "ＡＰＰ.example",
            "[::1]",
            "[::FFFF:127.0.0.1]",
            "[fe80::1%25eth0]",
            "[::1",
            "127.0.0.1",
            "0x7f.1",
            "2130706433",
            "127.1",
            "example.com.",
            "%61pp.example",
            "exa mple.com",
            "ex\tample.com",
            "",
            "a..b",
            "-x.example",
            "xn--",
            "a\u{ad}b.example",
            "\u{200b}.example",
        ]);
        let port = prop::sample::select(vec![
            "", "", ":", ":443", ":80", ":8080", ":65535", ":65536", ":0", ":+1", ":00443", ":8a",
        ]);
        let path = prop::sample::select(vec![
            "",
            "/",
            "/some/page",
            "/a/./b/../c",
            "/%2e%2E/x",
            "/a b",
            "/\\x",
            "//x",
            "/ü?ä=ö#ß",
            "/%zz",
            "/a?b=c#d",
            "/?",
            "/#",
            "/a\nb",
            "/a\tb\r",
            "/%F0%9F%98%80",
            "/.%2e/",
            "/..",
            "?q",
            "#f",
            "\\x",
        ]);
        let noise = "[a-zA-Z0-9./\\\\%@:?#&=_~\\[\\] \t\r\n\u{0}\u{3000}é-]{0,24}";
        (
            scheme,
            separator,
            userinfo,
            host,
            port,
            path,
            noise,
            0usize..700,
        )
            .prop_map(
                |(scheme, separator, userinfo, host, port, path, noise, pad)| {
                    let mut url = format!("{scheme}{separator}{userinfo}{host}{port}{path}{noise}");
                    // Around and past the memo's length cap.
                    if pad > 350 {
                        url.push_str(&"x".repeat(pad));
                    }
                    url
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        #[test]
        fn the_memo_answers_as_url_parse_on_misses_hits_and_parts(
            input in prop_oneof![hostile_url(), "\\PC{0,80}"],
            cut in prop::collection::vec(any::<prop::sample::Index>(), 0..3),
        ) {
            let want = reference(&input);
            prop_assert_eq!(&said(&parse(&[&input])), &want, "first");
            prop_assert_eq!(&said(&parse(&[&input])), &want, "again");
            let mut cuts: Vec<usize> = cut
                .iter()
                .map(|i| i.index(input.len() + 1))
                .filter(|&at| input.is_char_boundary(at))
                .collect();
            cuts.sort_unstable();
            let mut parts = Vec::new();
            let mut from = 0;
            for at in cuts {
                parts.push(&input[from..at]);
                from = at;
            }
            parts.push(&input[from..]);
            prop_assert_eq!(&said(&parse(&parts)), &want, "in parts {:?}", parts);
        }

        #[test]
        fn a_warm_reading_is_the_same_as_a_cold_one(
            original in prop::option::of(hostile_url()),
            host in prop::option::of(prop::sample::select(vec![
                "app.example.com", "APP.example.com:443", "[::1]:8080", "bücher.example",
                "a.example, b.example", "a@b", "h:99999", "",
            ])),
            uri in prop::option::of(prop::sample::select(vec![
                "/", "/some/page", "/a/../b?c#d", "/ü", "//x", "/%2e%2e/", "x", "/a b",
            ])),
            proto in prop::option::of(prop::sample::select(vec!["http", "https", "WSS", "ftp"])),
            host_header in prop::option::of(prop::sample::select(vec![
                "app.example.com", "app.example.com:8443", "[::1]", "bad/host", "",
            ])),
            trusted_peer in prop::bool::ANY,
            prefer_forwarded in prop::bool::ANY,
        ) {
            let headers: Vec<(&str, Option<&str>)> = vec![
                ("x-original-url", original.as_deref()),
                ("x-forwarded-host", host),
                ("x-forwarded-uri", uri),
                ("x-forwarded-proto", proto),
                ("host", host_header),
            ];
            let read = move || {
                let lookup = |name: &str| {
                    headers.iter().find(|(k, _)| *k == name).and_then(|(_, v)| *v)
                };
                let peer = if trusted_peer { "127.0.0.1" } else { "203.0.113.9" };
                let prefer = if prefer_forwarded {
                    Prefer::ForwardedHeaders
                } else {
                    Prefer::OriginalUrl
                };
                format!(
                    "{:?}",
                    original_request_preferring(prefer, ip(peer), lookup, &trusted(), "https")
                )
            };
            let cold = std::thread::scope(|s| s.spawn(read.clone()).join().unwrap());
            prop_assert_eq!(&read(), &cold, "first here");
            prop_assert_eq!(&read(), &cold, "warm");
        }
    }

    #[test]
    fn a_url_seen_before_is_the_same_parsed_url() {
        let first = parse(&["https://app.example.com/some/page"]).unwrap();
        let again = parse(&["https://app.example.com", "/some/page"]).unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        let long = format!("https://app.example.com/{}", "x".repeat(MAX_KEPT_URL));
        assert!(!Arc::ptr_eq(
            &parse(&[&long]).unwrap(),
            &parse(&[&long]).unwrap()
        ));
    }
}
