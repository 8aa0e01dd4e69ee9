//! `/metrics` as an operator graphs it: check decisions and latency by
//! endpoint move with real checks, and every metric the shipped Grafana
//! dashboard (integrations/grafana) queries, and every one docs/operations.md lists,
//! is one the service exports.

use std::collections::BTreeSet;

use reqwest::StatusCode;

use crate::support::app::spawn_app_with;

/// The metric names a scrape offers: each family's samples and, for the
/// families a scrape shows before their first sample, the names they will have.
fn exported_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split_whitespace();
            let (Some(name), Some(kind)) = (parts.next(), parts.next()) else {
                continue;
            };
            names.insert(name.to_owned());
            let suffixes: &[&str] = match kind {
                "counter" => &["_total"],
                "histogram" => &["_bucket", "_sum", "_count"],
                _ => &[],
            };
            for suffix in suffixes {
                if !name.ends_with(suffix) {
                    names.insert(format!("{name}{suffix}"));
                }
            }
        } else if !line.starts_with('#') {
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            names.insert(line[..end].to_owned());
        }
    }
    names.remove("");
    names
}

/// The value of the sample whose line starts with `series` (name and labels).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

async fn scrape(port: u16) -> String {
    let response = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.text().await.unwrap()
}

#[tokio::test]
async fn checks_are_counted_and_timed_by_endpoint_and_outcome() {
    let app = spawn_app_with(&[("METRICS_ADDRESS", "127.0.0.1:0")]).await;
    let port = app.metrics_port.expect("a metrics listener");
    let allowed = "forward_auth_check_decisions_total{endpoint=\"auth\",outcome=\"allowed\"}";
    let unauthenticated =
        "forward_auth_check_decisions_total{endpoint=\"auth\",outcome=\"unauthenticated\"}";
    let before = scrape(port).await;
    // Counters are process-wide and other tests run in parallel: compare
    // "at least" against the values before.
    let allowed_before = sample(&before, allowed).unwrap_or(0.0);
    let strangers_before = sample(&before, unauthenticated).unwrap_or(0.0);
    assert_eq!(
        app.auth("https://app.example.com/").await.status(),
        StatusCode::UNAUTHORIZED
    );
    app.login_as("alice").await;
    assert_eq!(
        app.auth("https://app.example.com/").await.status(),
        StatusCode::OK
    );
    let after = scrape(port).await;
    assert!(
        sample(&after, allowed).unwrap() >= allowed_before + 1.0,
        "{after}"
    );
    assert!(
        sample(&after, unauthenticated).unwrap() >= strangers_before + 1.0,
        "{after}"
    );
    let timed = sample(
        &after,
        "forward_auth_check_duration_seconds_count{endpoint=\"auth\",path=\"/oauth2/auth\"}",
    )
    .expect("a latency histogram for /oauth2/auth");
    assert!(timed >= 2.0, "{after}");
    // The sign-in's groups lookup went to Okta: timed, with its status class.
    assert!(
        after.lines().any(|l| l.starts_with(
            "forward_auth_okta_request_duration_seconds_count{endpoint=\"groups\",status_class=\"2xx\"}"
        )),
        "{after}"
    );
    // The sign-in's code exchange and the start's discovery were timed too.
    for endpoint in ["token", "discovery"] {
        let series = format!(
            "forward_auth_okta_request_duration_seconds_count{{endpoint=\"{endpoint}\",status_class=\"2xx\"}}"
        );
        assert!(
            sample(&after, &series).unwrap_or(0.0) >= 1.0,
            "{series}: {after}"
        );
    }
    // Text format 0.0.4: a counter's TYPE names its samples.
    assert!(
        after.contains("# TYPE forward_auth_check_decisions_total counter\n"),
        "{after}"
    );
    assert!(!after.contains(".."), "one full stop ends a HELP: {after}");
    // The old outcome-only series stays for existing dashboards.
    assert!(
        sample(&after, "forward_auth_decisions_total{outcome=\"allowed\"}").unwrap() >= 1.0,
        "{after}"
    );
}

#[tokio::test]
async fn the_grafana_dashboard_queries_only_exported_metrics() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/integrations/grafana/forward-auth.json"
    );
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).expect("valid JSON");
    let mut expressions = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            expressions.push(target["expr"].as_str().expect("a PromQL expr").to_owned());
        }
    }
    assert!(expressions.len() >= 6, "{expressions:?}");

    let app = spawn_app_with(&[("METRICS_ADDRESS", "127.0.0.1:0")]).await;
    let exported = exported_names(&scrape(app.metrics_port.expect("a metrics listener")).await);
    let mut used = BTreeSet::new();
    for expr in &expressions {
        let mut rest = expr.as_str();
        while let Some(at) = rest.find("forward_auth_") {
            let tail = &rest[at..];
            let end = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(tail.len());
            used.insert(tail[..end].to_owned());
            rest = &tail[end..];
        }
    }
    assert!(used.len() >= 8, "{used:?}");
    let unknown: Vec<_> = used.difference(&exported).collect();
    assert!(
        unknown.is_empty(),
        "the dashboard queries metrics the service does not export: {unknown:?}; exported: {exported:?}"
    );

    // The metrics list of docs/operations.md names exported metrics only, and all of them.
    let listing =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/operations.md"))
            .unwrap();
    let listed: BTreeSet<String> = listing
        .lines()
        .filter_map(|l| l.strip_prefix("| `forward_auth_"))
        .filter_map(|l| l.split('`').next())
        .map(|name| format!("forward_auth_{name}"))
        .collect();
    assert!(listed.len() >= 15, "{listed:?}");
    let unlisted: Vec<_> = listed.difference(&exported).collect();
    assert!(
        unlisted.is_empty(),
        "docs/operations.md lists unknown metrics: {unlisted:?}"
    );
    let families: BTreeSet<&str> = exported
        .iter()
        .filter(|n| !n.ends_with("_bucket") && !n.ends_with("_sum") && !n.ends_with("_count"))
        .filter(|n| !exported.contains(&format!("{n}_total")))
        .map(String::as_str)
        .collect();
    let missing: Vec<_> = families.iter().filter(|n| !listed.contains(**n)).collect();
    assert!(
        missing.is_empty(),
        "docs/operations.md misses metrics: {missing:?}"
    );
}
