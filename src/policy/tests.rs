use super::*;

fn group(id: &str, name: &str) -> Group {
    Group {
        id: id.to_string(),
        name: name.to_string(),
    }
}

fn lists(groups: &[&str], users: &[&str], domains: &[&str]) -> AllowLists {
    AllowLists {
        groups: groups.iter().map(|s| s.to_string()).collect(),
        users: users.iter().map(|s| s.to_string()).collect(),
        domains: domains.iter().map(|s| s.to_string()).collect(),
    }
}

#[test]
fn env_lists_are_split_trimmed_and_normalised() {
    let l = AllowLists::from_env_lists(
        Some(" Admins , ops,,00g1 "),
        Some("Alice@Example.com, bob"),
        Some("@Example.COM, corp.example.org ,"),
    );
    assert_eq!(l.groups, vec!["Admins", "ops", "00g1"]);
    assert_eq!(l.users, vec!["alice@example.com", "bob"]);
    assert_eq!(l.domains, vec!["example.com", "corp.example.org"]);
}

#[test]
fn unset_or_blank_env_lists_restrict_nothing() {
    assert!(AllowLists::from_env_lists(None, None, None).is_empty());
    assert!(AllowLists::from_env_lists(Some(""), Some(" , "), Some(",")).is_empty());
}

#[test]
fn query_lists_are_read() {
    let l = AllowLists::from_query(
        "allowed_groups=admins,ops&allowed_users=Alice%40Example.com&allowed_domains=%40example.com",
    )
    .unwrap();
    assert_eq!(
        l,
        lists(&["admins", "ops"], &["alice@example.com"], &["example.com"])
    );
}

#[test]
fn repeated_query_parameters_are_refused_not_unioned() {
    for q in [
        "allowed_groups=a,b&allowed_groups=b,c",
        "allowed_users=a@x.com&allowed_domains=x.com&allowed_users=b@x.com",
        "allowed_groups=a&allowed_groups=",
    ] {
        let err = AllowLists::from_query(q).unwrap_err();
        assert!(err.0.contains("more than once"), "{q}: {err}");
    }
}

#[test]
fn unknown_query_parameters_are_refused_by_name() {
    for (q, name) in [
        ("foo=bar", "`foo`"),
        (
            "allowed_groups=a&allowed_emails=x@y.com",
            "`allowed_emails`",
        ),
        ("rd=%2Fx", "`rd`"),
        ("Allowed_Groups=a", "`Allowed_Groups`"),
        ("%0D%0Aevil=1", "`??evil`"),
    ] {
        let err = AllowLists::from_query(q).unwrap_err();
        assert!(err.0.contains(name), "{q}: {err}");
    }
}

#[test]
fn the_forward_endpoint_ignores_only_what_cannot_be_a_rule() {
    let l = AllowLists::from_forward_query("x=1&allowed_groups=ops&page=2").unwrap();
    assert_eq!(l.groups, vec!["ops"]);
    for q in [
        "x=1&allowed_emails=a@b.c",
        "allowed_groups=a&allowed_groups=b",
        "allowed_users=",
    ] {
        assert!(AllowLists::from_forward_query(q).is_err(), "{q}");
    }
}

#[test]
fn an_empty_query_gives_no_lists() {
    assert!(AllowLists::from_query("").unwrap().is_empty());
}

#[test]
fn a_query_parameter_with_an_empty_value_is_an_error() {
    for q in [
        "allowed_groups=",
        "allowed_groups",
        "allowed_users=%20,%20",
        "allowed_domains=,",
    ] {
        let err = AllowLists::from_query(q).unwrap_err();
        assert!(err.0.contains("is empty"), "{q}: {err}");
    }
}

struct Case {
    name: &'static str,
    global: AllowLists,
    route: AllowLists,
    login: &'static str,
    email: &'static str,
    groups: Vec<Group>,
    want: Decision,
}

fn alice() -> (&'static str, &'static str, Vec<Group>) {
    (
        "alice@example.com",
        "Alice@Example.com",
        vec![
            group("00gEveryone", "Everyone"),
            group("00gAdmins", "admins"),
        ],
    )
}

#[test]
fn decisions() {
    let (login, email, groups) = alice();
    let none = AllowLists::default();
    let cases = vec![
        Case {
            name: "no lists allow any signed-in user",
            global: none.clone(),
            route: none.clone(),
            login,
            email,
            groups: groups.clone(),
            want: Decision::Allow,
        },
        Case {
            name: "a group matches by name",
            global: lists(&["admins"], &[], &[]),
            route: none.clone(),
            login,
            email,
            groups: groups.clone(),
            want: Decision::Allow,
        },
        Case {
            name: "a group matches by id",
            global: lists(&["00gAdmins"], &[], &[]),
            route: none.clone(),
            login,
            email,
            groups: groups.clone(),
            want: Decision::Allow,
        },
        Case {
            name: "group names are case-sensitive",
            global: lists(&["Admins"], &[], &[]),
            route: none.clone(),
            login,
            email,
            groups: groups.clone(),
            want: Decision::Deny("not in an allowed group"),
        },
        Case {
            name: "a user outside every allowed group is denied",
            global: lists(&["ops"], &[], &[]),
            route: none.clone(),
            login,
            email,
            groups: groups.clone(),
            want: Decision::Deny("not in an allowed group"),
        },
        Case {
            name: "a user with no groups is denied by a group list",
            global: lists(&["admins"], &[], &[]),
            route: none.clone(),
            login,
            email,
            groups: vec![],
            want: Decision::Deny("not in an allowed group"),
        },
        Case {
            name: "a group with an empty name does not match an empty entry",
            global: lists(&[""], &[], &[]),
            route: none.clone(),
            login,
            email,
            groups: vec![group("", "")],
            want: Decision::Deny("not in an allowed group"),
        },
        Case {
            name: "a user matches by login case-insensitively",
            global: lists(&[], &["ALICE@example.com"], &[]),
            route: none.clone(),
            login,
            email: "other@example.com",
            groups: groups.clone(),
            want: Decision::Allow,
        },
        Case {
            name: "a user matches by email case-insensitively",
            global: lists(&[], &["alice@example.com"], &[]),
            route: none.clone(),
            login: "alice",
            email,
            groups: groups.clone(),
            want: Decision::Allow,
        },
        Case {
            name: "another user is denied",
            global: lists(&[], &["bob@example.com"], &[]),
            route: none.clone(),
            login,
            email,
            groups: groups.clone(),
            want: Decision::Deny("not an allowed user"),
        },
        Case {
            name: "an empty login and email never match a user list",
            global: lists(&[], &[""], &[]),
            route: none.clone(),
            login: "",
            email: "",
            groups: groups.clone(),
            want: Decision::Deny("not an allowed user"),
        },
        Case {
            name: "a domain matches the part after the last at sign",
            global: lists(&[], &[], &["example.com"]),
            route: none.clone(),
            login,
            email: "\"a@b\"@EXAMPLE.com",
            groups: groups.clone(),
            want: Decision::Allow,
        },
        Case {
            name: "a subdomain does not match a domain",
            global: lists(&[], &[], &["example.com"]),
            route: none.clone(),
            login,
            email: "alice@sub.example.com",
            groups: groups.clone(),
            want: Decision::Deny("email domain not allowed"),
        },
        Case {
            name: "a look-alike suffix does not match a domain",
            global: lists(&[], &[], &["example.com"]),
            route: none.clone(),
            login,
            email: "alice@evilexample.com",
            groups: groups.clone(),
            want: Decision::Deny("email domain not allowed"),
        },
        Case {
            name: "a user without an email never matches a domain list",
            global: lists(&[], &[], &["example.com"]),
            route: none.clone(),
            login: "alice@example.com",
            email: "",
            groups: groups.clone(),
            want: Decision::Deny("email domain not allowed"),
        },
        Case {
            name: "an email without an at sign never matches a domain list",
            global: lists(&[], &[], &["example.com"]),
            route: none.clone(),
            login,
            email: "example.com",
            groups: groups.clone(),
            want: Decision::Deny("email domain not allowed"),
        },
        Case {
            name: "every given list must match, not just one",
            global: lists(&["admins"], &["bob@example.com"], &[]),
            route: none.clone(),
            login,
            email,
            groups: groups.clone(),
            want: Decision::Deny("not an allowed user"),
        },
        Case {
            name: "a route list narrows the global one",
            global: lists(&["admins"], &[], &[]),
            route: lists(&["ops"], &[], &[]),
            login,
            email,
            groups: groups.clone(),
            want: Decision::Deny("not in an allowed group"),
        },
        Case {
            name: "a route list cannot widen the global one",
            global: lists(&[], &[], &["corp.example.org"]),
            route: lists(&["admins"], &[], &["example.com"]),
            login,
            email,
            groups: groups.clone(),
            want: Decision::Deny("email domain not allowed"),
        },
        Case {
            name: "global and route lists that both match allow",
            global: lists(&["Everyone"], &[], &["example.com"]),
            route: lists(&["00gAdmins"], &["alice@example.com"], &[]),
            login,
            email,
            groups: groups.clone(),
            want: Decision::Allow,
        },
    ];
    for c in cases {
        let subject = Subject {
            login: c.login,
            email: c.email,
            groups: &c.groups,
        };
        assert_eq!(decide(&c.global, &c.route, &subject), c.want, "{}", c.name);
    }
}
