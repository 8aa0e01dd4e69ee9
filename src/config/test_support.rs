//! Helpers for the unit tests of every area: a minimal valid environment,
//! changes to it, and loading it into a [`Config`] or its problems. Test-only;
//! it checks nothing itself.

use super::Config;

pub(super) const KEY_A: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="; // bytes 0..32
pub(super) const CLIENT_SECRET: &str = "client-secret-value-7f3a";
pub(super) const API_TOKEN: &str = "00ssws-token-value-9c1d";

pub(super) fn minimal() -> Vec<(String, String)> {
    [
        ("IDP_PROVIDER", "okta"),
        ("IDP_PROVIDER_URL", "https://dev-123.okta.com"),
        ("IDP_CLIENT_ID", "0oa1client"),
        ("IDP_CLIENT_SECRET", CLIENT_SECRET),
        ("IDP_SERVICE_ACCOUNT", API_TOKEN),
        ("AUTHENTICATE_SERVICE_URL", "https://auth.example.com"),
        ("COOKIE_SECRET", KEY_A),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// The minimal variables with some replaced, added or (value `None`) removed.
pub(super) fn with(changes: &[(&str, Option<&str>)]) -> Vec<(String, String)> {
    let mut vars = minimal();
    for (name, value) in changes {
        vars.retain(|(k, _)| k != name);
        if let Some(v) = value {
            vars.push((name.to_string(), v.to_string()));
        }
    }
    vars
}

pub(crate) fn load(changes: &[(&str, Option<&str>)]) -> Config {
    match Config::from_vars(with(changes)) {
        Ok((config, _)) => config,
        Err(e) => panic!("{e}"),
    }
}

pub(super) fn problems(changes: &[(&str, Option<&str>)]) -> Vec<String> {
    match Config::from_vars(with(changes)) {
        Ok(_) => panic!("expected problems for {changes:?}"),
        Err(e) => e.problems,
    }
}

pub(super) fn assert_one_problem(changes: &[(&str, Option<&str>)], needles: &[&str]) {
    let problems = problems(changes);
    assert_eq!(problems.len(), 1, "{changes:?}: {problems:#?}");
    for needle in needles {
        assert!(
            problems[0].contains(needle),
            "{changes:?}: {:?} lacks {needle:?}",
            problems[0]
        );
    }
}

/// A file in the temp directory, removed on drop.
pub(super) struct TempFile(std::path::PathBuf);

impl TempFile {
    pub(super) fn new(name: &str, content: &str) -> TempFile {
        let path = std::env::temp_dir().join(format!(
            "forward-auth-config-test-{}-{name}",
            std::process::id()
        ));
        std::fs::write(&path, content).unwrap();
        TempFile(path)
    }
    pub(super) fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

pub(super) const SERVICE_APP_KEY: &str = include_str!("../../tests/keys/test-key-2.pem");
