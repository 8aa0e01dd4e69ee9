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
mod tests;
