//! The identity headers a 2xx carries for the proxy to copy upstream
//! (`X-Auth-Request-User`, `-Email`, `-Groups`, `-Preferred-Username`). Values are
//! made header-safe here (control characters dropped) so that rendering cannot
//! fail on an allow path. In `X-Auth-Request-Groups`, a `,` or `%` inside a group
//! name is percent-encoded (`%2C`, `%25`), so a name with a comma stays one group,
//! and the value is cut after the last whole group that fits [`MAX_GROUPS_HEADER`]
//! bytes (the policy always decides on the full list).
//! Values rendered once ([`HeaderText`]) are shared by every answer that
//! carries them, checked as header values once. Pure functions: no I/O, and
//! of actix only its `Bytes` buffer and `HeaderValue`.

use actix_web::http::header::HeaderValue;
use actix_web::web::Bytes;

use crate::policy::Group;

pub const USER: &str = "x-auth-request-user";
pub const EMAIL: &str = "x-auth-request-email";
pub const GROUPS: &str = "x-auth-request-groups";
pub const PREFERRED_USERNAME: &str = "x-auth-request-preferred-username";

/// The most `X-Auth-Request-Groups` carries: with the other identity headers
/// and `X-Auth-Request-Jwt` it keeps the check's answer inside nginx's default
/// 4 KB `proxy_buffer_size`, and the header itself far under 4 KB.
pub const MAX_GROUPS_HEADER: usize = 2048;

/// A user's groups together with their `X-Auth-Request-Groups` value, rendered
/// once when the groups are learnt rather than on every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserGroups {
    pub list: Vec<Group>,
    /// Comma-separated names, header-safe, commas and `%` in names encoded,
    /// at most [`MAX_GROUPS_HEADER`] bytes; ready to be shared by every answer.
    pub rendered: HeaderText,
    /// How many groups (the last ones) did not fit in `rendered`.
    pub omitted: usize,
}

impl UserGroups {
    /// The groups' names, in Okta's order (for the signed identity and
    /// `/oauth2/userinfo`).
    pub fn names(&self) -> Vec<&str> {
        self.list.iter().map(|g| g.name.as_str()).collect()
    }

    pub fn new(list: Vec<Group>) -> UserGroups {
        let mut header = String::with_capacity(
            list.iter()
                .map(|g| g.name.len() + 1)
                .sum::<usize>()
                .min(MAX_GROUPS_HEADER),
        );
        let mut omitted = 0;
        for (i, g) in list.iter().enumerate() {
            let kept = header.len();
            if i > 0 {
                header.push(',');
            }
            if g.name.contains([',', '%']) {
                let escaped = g.name.replace('%', "%25").replace(',', "%2C");
                push_safe(&mut header, &escaped);
            } else {
                push_safe(&mut header, &g.name);
            }
            if header.len() > MAX_GROUPS_HEADER {
                header.truncate(kept);
                omitted = list.len() - i;
                break;
            }
        }
        UserGroups {
            rendered: HeaderText::from_safe(header),
            list,
            omitted,
        }
    }
}

/// A header value made header-safe and checked once, shared by every answer
/// that carries it: cloning it is a reference count, never a copy, and an
/// answer inserts it as is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderText(HeaderValue);

impl HeaderText {
    /// `value` without control characters.
    pub fn new(value: &str) -> HeaderText {
        HeaderText::from_safe(safe(value))
    }

    fn from_safe(value: String) -> HeaderText {
        // Without control characters a value is a valid header value, so the
        // empty fallback is never taken.
        let value = HeaderValue::from_maybe_shared(Bytes::from(value))
            .unwrap_or_else(|_| HeaderValue::from_static(""));
        // The first clone of a buffer made from a `String` allocates its shared
        // count: done here, once, rather than by the first answer.
        drop(value.clone());
        HeaderText(value)
    }

    /// The value, shared.
    pub fn value(&self) -> HeaderValue {
        self.0.clone()
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// The value as text (it was made from text, so it always is).
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(self.0.as_bytes()).unwrap_or("")
    }
}

/// The four headers with their values, in a fixed order.
pub fn render(login: &str, email: &str, groups: &UserGroups) -> [(&'static str, String); 4] {
    [
        (USER, safe(login)),
        (EMAIL, safe(email)),
        (GROUPS, groups.rendered.as_str().to_owned()),
        (PREFERRED_USERNAME, safe(login)),
    ]
}

fn safe(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    push_safe(&mut out, value);
    out
}

/// Appends `value` without control characters (CR, LF, NUL, DEL, C1…), which
/// would otherwise split or break the header.
fn push_safe(out: &mut String, value: &str) {
    // Fast path: printable ASCII (nearly every login and group name) is copied as is.
    if value.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        out.push_str(value);
    } else {
        out.extend(value.chars().filter(|c| !c.is_control()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(name: &str) -> Group {
        Group {
            id: format!("00g{name}"),
            name: name.to_string(),
        }
    }

    #[test]
    fn groups_are_joined_by_commas_in_order() {
        let h = render(
            "alice",
            "alice@example.com",
            &UserGroups::new(vec![group("Everyone"), group("admins")]),
        );
        assert_eq!(h[2], (GROUPS, "Everyone,admins".to_string()));
        assert_eq!(h[0], (USER, "alice".to_string()));
        assert_eq!(h[1], (EMAIL, "alice@example.com".to_string()));
        assert_eq!(h[3], (PREFERRED_USERNAME, "alice".to_string()));
    }

    #[test]
    fn control_characters_cannot_inject_headers() {
        let groups = UserGroups::new(vec![group("a\nb"), group("c\u{85}d")]);
        let h = render("eve\r\nX-Evil: 1", "e\0ve@example.com\u{7f}", &groups);
        for (_, value) in &h {
            assert!(!value.chars().any(char::is_control), "{value:?}");
        }
        assert_eq!(h[0].1, "eveX-Evil: 1");
        assert_eq!(h[2].1, "ab,cd");
    }

    #[test]
    fn non_ascii_names_pass_unchanged() {
        let groups = UserGroups::new(vec![group("Équipe"), group("開発")]);
        assert_eq!(render("zoë", "z@example.com", &groups)[2].1, "Équipe,開発");
        assert_eq!(render("zoë", "z@example.com", &groups)[0].1, "zoë");
    }

    #[test]
    fn a_comma_in_a_group_name_does_not_make_two_groups() {
        let groups = UserGroups::new(vec![group("Sales, EMEA"), group("100%"), group("ops")]);
        assert_eq!(groups.rendered.as_str(), "Sales%2C EMEA,100%25,ops");
        assert_eq!(groups.rendered.as_str().split(',').count(), 3);
    }

    #[test]
    fn the_groups_header_keeps_whole_groups_within_its_bound() {
        let many: Vec<Group> = (0..300)
            .map(|i| group(&format!("engineering-team-{i:03}")))
            .collect();
        let groups = UserGroups::new(many);
        assert!(
            groups.rendered.as_str().len() <= MAX_GROUPS_HEADER,
            "{}",
            groups.rendered.as_str().len()
        );
        assert!(groups.rendered.as_str().len() > MAX_GROUPS_HEADER - 30);
        let shown: Vec<&str> = groups.rendered.as_str().split(',').collect();
        assert!(
            shown
                .iter()
                .all(|g| g.len() == "engineering-team-000".len()),
            "whole names only"
        );
        assert_eq!(shown.len() + groups.omitted, 300);
        assert_eq!(groups.list.len(), 300, "the policy still sees every group");
        let few = UserGroups::new(vec![group("a"), group("b")]);
        assert_eq!(few.omitted, 0);
    }

    #[test]
    fn shared_values_are_the_rendered_ones() {
        let groups = UserGroups::new(vec![group("a\nb"), group("Sales, EMEA")]);
        assert_eq!(groups.rendered.as_str(), "ab,Sales%2C EMEA");
        assert_eq!(groups.rendered.value(), "ab,Sales%2C EMEA");
        let login = HeaderText::new("eve\r\nX-Evil: 1");
        assert_eq!(
            login.as_bytes(),
            render("eve\r\nX-Evil: 1", "", &groups)[0].1.as_bytes()
        );
    }

    #[test]
    fn no_groups_render_an_empty_value() {
        assert_eq!(render("a", "b", &UserGroups::new(Vec::new()))[2].1, "");
    }
}
