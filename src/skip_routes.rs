//! Public routes: `SKIP_AUTH_ROUTES` (`[METHOD=]^regex$`, compiled once into a
//! `RegexSet`) and `SKIP_AUTH_PREFLIGHT` (CORS preflights). A rule is matched
//! against the original request's raw path only (never the query), and a path
//! that an app could read differently than we do (dot segments, `//`, encoded
//! `.`, `/`, `\` or `%`, `;` parameters) is never skipped. Whether the peer is a
//! trusted proxy is the caller's check. Pure functions: no I/O, no actix.

use regex::RegexSet;

/// The compiled public routes.
#[derive(Debug, Clone)]
pub struct SkipRoutes {
    set: RegexSet,
    /// The method of each rule in `set`, uppercase; `None` = any method.
    methods: Vec<Option<String>>,
    preflight: bool,
}

impl SkipRoutes {
    /// `Ok(None)` when there is nothing to skip. Every bad rule is a problem
    /// that names it.
    pub fn parse(routes: Option<&str>, preflight: bool) -> Result<Option<SkipRoutes>, Vec<String>> {
        let mut patterns = Vec::new();
        let mut methods = Vec::new();
        let mut problems = Vec::new();
        for rule in routes
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|r| !r.is_empty())
        {
            let (method, pattern) = match rule.split_once('=') {
                Some((m, p)) if !m.is_empty() && m.chars().all(|c| c.is_ascii_alphabetic()) => {
                    (Some(m.to_ascii_uppercase()), p)
                }
                _ => (None, rule),
            };
            if !pattern.starts_with('^') {
                problems.push(format!(
                    "SKIP_AUTH_ROUTES rule `{rule}` must start with ^ (and should end with $), \
                     so that it cannot match in the middle of a path: e.g. GET=^/healthz$"
                ));
                continue;
            }
            match regex::Regex::new(pattern) {
                Ok(_) => {
                    patterns.push(pattern.to_string());
                    methods.push(method);
                }
                Err(e) => problems.push(format!(
                    "SKIP_AUTH_ROUTES rule `{rule}` is not a valid regular expression ({}): \
                     write `[METHOD=]^regex$`, e.g. GET=^/healthz$",
                    first_line(&e.to_string())
                )),
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        if patterns.is_empty() && !preflight {
            return Ok(None);
        }
        let set = RegexSet::new(&patterns).map_err(|e| {
            vec![format!(
                "SKIP_AUTH_ROUTES cannot be compiled ({}): use fewer or simpler rules",
                first_line(&e.to_string())
            )]
        })?;
        Ok(Some(SkipRoutes {
            set,
            methods,
            preflight,
        }))
    }

    /// Whether the original request (uppercase `method`, `raw_path` as the proxy
    /// sent it, without the query) is public. `header` reads the check
    /// request's headers, which the proxy copies from the original request.
    pub fn skips<'h>(
        &self,
        method: &str,
        raw_path: &str,
        header: impl Fn(&str) -> Option<&'h str>,
    ) -> bool {
        if self.preflight
            && method == "OPTIONS"
            && header("origin").is_some()
            && header("access-control-request-method").is_some()
        {
            return true;
        }
        if self.methods.is_empty() || is_ambiguous(raw_path) {
            return false;
        }
        self.set
            .matches(raw_path)
            .iter()
            .any(|i| self.methods[i].as_deref().is_none_or(|m| m == method))
    }
}

/// The path part of a raw request target or absolute URL: no scheme, host,
/// query or fragment. `None` when it does not start with `/`.
pub fn raw_path(target: &str) -> Option<&str> {
    let after_authority = match target.find("://") {
        Some(i) => {
            let rest = &target[i + 3..];
            &rest[rest.find(['/', '?', '#'])?..]
        }
        None => target,
    };
    let path = after_authority.split(['?', '#']).next().unwrap_or_default();
    path.starts_with('/').then_some(path)
}

/// A path that an app or another proxy could resolve to a different one:
/// never public.
fn is_ambiguous(path: &str) -> bool {
    if path.contains("//")
        || path.contains('\\')
        || path.contains(';')
        || path.chars().any(|c| c.is_control() || c.is_whitespace())
    {
        return true;
    }
    if path
        .split('/')
        .any(|segment| segment == "." || segment == "..")
    {
        return true;
    }
    // Encoded dot, slash, backslash, semicolon or percent (double encoding).
    let lower = path.to_ascii_lowercase();
    ["%2e", "%2f", "%5c", "%3b", "%25", "%00"]
        .iter()
        .any(|encoded| lower.contains(encoded))
}

fn first_line(text: &str) -> &str {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routes(list: &str) -> SkipRoutes {
        SkipRoutes::parse(Some(list), false).unwrap().unwrap()
    }

    fn no_headers(_: &str) -> Option<&'static str> {
        None
    }

    #[test]
    fn a_rule_matches_the_path_with_its_method() {
        let r = routes("GET=^/healthz$, ^/public/.*$");
        assert!(r.skips("GET", "/healthz", no_headers));
        assert!(!r.skips("POST", "/healthz", no_headers));
        assert!(r.skips("POST", "/public/a.css", no_headers));
        assert!(!r.skips("GET", "/healthz/x", no_headers));
        assert!(!r.skips("GET", "/admin", no_headers));
    }

    #[test]
    fn ambiguous_paths_are_never_public() {
        let r = routes("^/healthz.*$,^/public/.*$");
        for path in [
            "/healthz/../admin",
            "/healthz/%2e%2e/admin",
            "/healthz/%2E%2e/admin",
            "/public//admin",
            "/public/.%2fadmin",
            "/healthz;/../admin",
            "/public/%252e%252e/admin",
            "/public/..\\admin",
            "/public/./x",
        ] {
            assert!(!r.skips("GET", path, no_headers), "{path} was skipped");
        }
    }

    #[test]
    fn the_query_and_host_are_not_part_of_the_path() {
        assert_eq!(
            raw_path("https://app.example.com/healthz?x=/admin"),
            Some("/healthz")
        );
        assert_eq!(raw_path("/admin?next=/healthz"), Some("/admin"));
        assert_eq!(raw_path("https://app.example.com?x"), None);
        assert_eq!(raw_path("https://app.example.com/a#/healthz"), Some("/a"));
        let r = routes("^/healthz$");
        assert!(!r.skips("GET", raw_path("/admin?/healthz").unwrap(), no_headers));
    }

    #[test]
    fn preflights_need_origin_and_requested_method() {
        let r = SkipRoutes::parse(None, true).unwrap().unwrap();
        let cors = |name: &str| match name {
            "origin" => Some("https://app.example.com"),
            "access-control-request-method" => Some("POST"),
            _ => None,
        };
        assert!(r.skips("OPTIONS", "/api/x", cors));
        assert!(!r.skips("GET", "/api/x", cors));
        assert!(!r.skips("OPTIONS", "/api/x", no_headers));
        assert!(!r.skips("OPTIONS", "/api/x", |n: &str| (n == "origin")
            .then_some("https://a")));
    }

    #[test]
    fn bad_rules_are_named() {
        let problems =
            SkipRoutes::parse(Some("^/ok$,GET=^/(unclosed$,/no-anchor$"), false).unwrap_err();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems[0].contains("`GET=^/(unclosed$`")
                && problems[0].contains("regular expression")
        );
        assert!(problems[1].contains("`/no-anchor$`") && problems[1].contains("start with ^"));
        assert!(SkipRoutes::parse(Some(" , "), false).unwrap().is_none());
    }
}
