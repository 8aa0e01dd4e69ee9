//! The identity headers a 2xx carries for the proxy to copy upstream
//! (`X-Auth-Request-User`, `-Email`, `-Groups`, `-Preferred-Username`). Values are
//! made header-safe here (control characters dropped) so that rendering cannot
//! fail on an allow path. Pure functions: no I/O, no actix.

use crate::policy::Group;

pub const USER: &str = "x-auth-request-user";
pub const EMAIL: &str = "x-auth-request-email";
pub const GROUPS: &str = "x-auth-request-groups";
pub const PREFERRED_USERNAME: &str = "x-auth-request-preferred-username";

/// The four headers with their values, in a fixed order.
pub fn render(login: &str, email: &str, groups: &[Group]) -> [(&'static str, String); 4] {
    let mut joined = String::with_capacity(groups.iter().map(|g| g.name.len() + 1).sum());
    for (i, g) in groups.iter().enumerate() {
        if i > 0 {
            joined.push(',');
        }
        push_safe(&mut joined, &g.name);
    }
    [
        (USER, safe(login)),
        (EMAIL, safe(email)),
        (GROUPS, joined),
        (PREFERRED_USERNAME, safe(login)),
    ]
}

fn safe(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    push_safe(&mut out, value);
    out
}

/// Appends `value` without control characters (CR, LF, NUL, DEL…), which would
/// otherwise split or break the header.
fn push_safe(out: &mut String, value: &str) {
    out.extend(value.chars().filter(|c| !c.is_control()));
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
            &[group("Everyone"), group("admins")],
        );
        assert_eq!(h[2], (GROUPS, "Everyone,admins".to_string()));
        assert_eq!(h[0], (USER, "alice".to_string()));
        assert_eq!(h[1], (EMAIL, "alice@example.com".to_string()));
        assert_eq!(h[3], (PREFERRED_USERNAME, "alice".to_string()));
    }

    #[test]
    fn control_characters_cannot_inject_headers() {
        let h = render("eve\r\nX-Evil: 1", "e\0ve@example.com", &[group("a\nb")]);
        for (_, value) in &h {
            assert!(!value.chars().any(char::is_control), "{value:?}");
        }
        assert_eq!(h[0].1, "eveX-Evil: 1");
    }

    #[test]
    fn no_groups_render_an_empty_value() {
        assert_eq!(render("a", "b", &[])[2].1, "");
    }
}
