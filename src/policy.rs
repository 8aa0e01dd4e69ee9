//! Who may pass: the global allow-lists (`ALLOWED_GROUPS`, `ALLOWED_USERS`,
//! `ALLOWED_DOMAINS`) and the per-route ones from the auth URL's query
//! (`allowed_groups`, `allowed_users`, `allowed_domains`). Every list that is
//! given must match. Pure functions: no I/O, no async, no actix.

/// One Okta group: `id` (`00g…`) never changes, `name` can be renamed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Group {
    pub id: String,
    pub name: String,
}

/// A set of allow-lists. An empty list restricts nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowLists {
    /// Group names or ids, matched exactly (case-sensitive, as Okta names are).
    pub groups: Vec<String>,
    /// Logins or email addresses, lowercased.
    pub users: Vec<String>,
    /// Email domains, lowercased, without a leading `@`.
    pub domains: Vec<String>,
}

/// Why a query string could not be read as allow-lists.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PolicyError(pub String);

/// The signed-in user as the policy sees them.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub login: &'a str,
    pub email: &'a str,
    pub groups: &'a [Group],
}

/// The outcome of [`decide`]. `Deny` carries a short reason for logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny(&'static str),
}

impl AllowLists {
    /// From the three comma-separated environment values (`None` = unset).
    pub fn from_env_lists(
        groups: Option<&str>,
        users: Option<&str>,
        domains: Option<&str>,
    ) -> AllowLists {
        let mut lists = AllowLists::default();
        add(&mut lists.groups, groups.unwrap_or_default(), Kind::Group);
        add(&mut lists.users, users.unwrap_or_default(), Kind::User);
        add(
            &mut lists.domains,
            domains.unwrap_or_default(),
            Kind::Domain,
        );
        lists
    }

    /// From the auth URL's raw query string, e.g.
    /// `allowed_groups=admins,ops&allowed_domains=example.com`. Shipped proxy
    /// configs send these three parameters and nothing else, each at most once:
    /// anything else is an error rather than ignored or merged, since a
    /// parameter that reached us from a client's link (or a misspelt rule, such
    /// as oauth2-proxy's `allowed_emails`) must not silently change the check. A
    /// parameter given with an empty value is an error too (it would otherwise
    /// silently allow everybody).
    pub fn from_query(query: &str) -> Result<AllowLists, PolicyError> {
        Self::parse_query(query, true)
    }

    /// [`from_query`](Self::from_query) for `/oauth2/forward`, where a Caddyfile
    /// written `uri /oauth2/forward` (without `?`) passes the client's own query
    /// along: a parameter whose name does not start with `allowed_` is ignored
    /// there (it cannot be a rule); a misspelt rule (`allowed_emails`), a
    /// repeated one or an empty one is still refused.
    pub fn from_forward_query(query: &str) -> Result<AllowLists, PolicyError> {
        Self::parse_query(query, false)
    }

    fn parse_query(query: &str, strict: bool) -> Result<AllowLists, PolicyError> {
        let mut lists = AllowLists::default();
        let mut seen = [false; 3];
        for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
            let (list, kind, index) = match key.as_ref() {
                "allowed_groups" => (&mut lists.groups, Kind::Group, 0),
                "allowed_users" => (&mut lists.users, Kind::User, 1),
                "allowed_domains" => (&mut lists.domains, Kind::Domain, 2),
                _ if !strict && !key.starts_with("allowed_") => continue,
                _ => {
                    return Err(PolicyError(format!(
                        "unknown parameter `{}`: the auth endpoints take only allowed_groups, \
                         allowed_users and allowed_domains (check the proxy's auth URL)",
                        printable(&key)
                    )))
                }
            };
            if std::mem::replace(&mut seen[index], true) {
                return Err(PolicyError(format!(
                    "{key} is given more than once: give one comma-separated list"
                )));
            }
            // A value of only commas and spaces is as empty as no value at all.
            if entries(&value).next().is_none() {
                return Err(PolicyError(format!(
                    "{key} is empty: give a comma-separated list or leave the parameter out"
                )));
            }
            add(list, &value, kind);
        }
        Ok(lists)
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty() && self.users.is_empty() && self.domains.is_empty()
    }
}

/// A parameter name fit for an error message: at most 40 characters, printable
/// ASCII only.
fn printable(name: &str) -> String {
    name.chars()
        .take(40)
        .map(|c| if c.is_ascii_graphic() { c } else { '?' })
        .collect()
}

/// The non-empty, trimmed entries of a comma-separated list.
fn entries(list: &str) -> impl Iterator<Item = &str> {
    list.split(',').map(str::trim).filter(|e| !e.is_empty())
}

/// How entries of a list are normalised.
#[derive(Clone, Copy)]
enum Kind {
    /// Okta group names are case-sensitive: kept as given.
    Group,
    User,
    /// Without a leading `@`.
    Domain,
}

/// Adds the entries of a comma-separated value, normalised, skipping duplicates.
fn add(list: &mut Vec<String>, value: &str, kind: Kind) {
    for e in entries(value) {
        let entry = match kind {
            Kind::Group => e.to_string(),
            Kind::User => e.to_lowercase(),
            Kind::Domain => e.trim_start_matches('@').trim().to_lowercase(),
        };
        if !entry.is_empty() && !list.contains(&entry) {
            list.push(entry);
        }
    }
}

/// Global and per-route lists together: every non-empty list must match.
pub fn decide(global: &AllowLists, route: &AllowLists, subject: &Subject<'_>) -> Decision {
    for lists in [global, route] {
        if !lists.groups.is_empty() && !in_groups(&lists.groups, subject.groups) {
            return Decision::Deny("not in an allowed group");
        }
        if !lists.users.is_empty() && !is_user(&lists.users, subject) {
            return Decision::Deny("not an allowed user");
        }
        if !lists.domains.is_empty() && !in_domains(&lists.domains, subject.email) {
            return Decision::Deny("email domain not allowed");
        }
    }
    Decision::Allow
}

/// Groups match by id or by name, exactly; empty strings never match.
fn in_groups(allowed: &[String], groups: &[Group]) -> bool {
    allowed.iter().filter(|a| !a.is_empty()).any(|a| {
        groups
            .iter()
            .any(|g| (!g.id.is_empty() && g.id == *a) || (!g.name.is_empty() && g.name == *a))
    })
}

/// Users match by login or email, case-insensitively; empty strings never match.
fn is_user(allowed: &[String], subject: &Subject<'_>) -> bool {
    let candidates = [subject.login, subject.email];
    allowed.iter().filter(|a| !a.is_empty()).any(|a| {
        let a = a.to_lowercase();
        candidates
            .iter()
            .any(|c| !c.is_empty() && c.to_lowercase() == a)
    })
}

/// Domains match the part of the email after its last `@`, exactly (no suffix
/// matching: `example.com` does not allow `evil-example.com` or `sub.example.com`).
fn in_domains(allowed: &[String], email: &str) -> bool {
    let Some((local, domain)) = email.rsplit_once('@') else {
        return false;
    };
    if local.is_empty() || domain.is_empty() {
        return false;
    }
    let domain = domain.to_lowercase();
    allowed
        .iter()
        .any(|a| !a.is_empty() && a.trim_start_matches('@').to_lowercase() == domain)
}

#[cfg(test)]
mod tests {
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
}
