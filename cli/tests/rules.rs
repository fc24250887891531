//! The alert rules shipped in `deploy/prometheus/` (issue 23), checked with Prometheus' own
//! `promtool`: the file is valid, each alert fires on the series that should fire it and
//! stays silent on a healthy one (its unit tests), and every metric it reads is one the
//! crates document. No Prometheus server is started or used.

mod support;

use std::path::PathBuf;

use support::promtool::{promtool, shown};

fn deploy() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/prometheus")
}

#[test]
fn the_rules_pass_promtool_check_rules() {
    let rules = deploy().join("dt-receiver.rules.yml");
    let (code, text) = shown(&promtool(&["check", "rules", rules.to_str().unwrap()], b""));
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("SUCCESS: 5 rules found"), "{text}");
}

#[test]
fn the_rules_pass_their_unit_tests() {
    let tests = deploy().join("dt-receiver.rules.test.yml");
    let (code, text) = shown(&promtool(&["test", "rules", tests.to_str().unwrap()], b""));
    assert_eq!(code, 0, "{text}");
}

/// Each alert has a firing and a silent case in the unit tests, and links the README's
/// "When DT's requests are refused"; every `dt_*` metric the rules read is in a crate's
/// metrics table.
#[test]
fn every_alert_is_tested_both_ways_and_reads_documented_metrics() {
    let rules = std::fs::read_to_string(deploy().join("dt-receiver.rules.yml")).unwrap();
    let tests = std::fs::read_to_string(deploy().join("dt-receiver.rules.test.yml")).unwrap();
    let readme = include_str!("../../README.md");
    assert!(readme.contains("## When DT's requests are refused"));
    let alerts: Vec<&str> = rules
        .lines()
        .filter_map(|line| line.trim().strip_prefix("- alert: "))
        .collect();
    assert_eq!(alerts.len(), 5, "{alerts:?}");
    assert_eq!(
        rules
            .matches("runbook: \"README.md#when-dts-requests-are-refused\"")
            .count(),
        alerts.len()
    );
    // The README shows the rules: the same expressions, whitespace aside.
    let squeeze = |text: &str| text.split_whitespace().collect::<Vec<_>>().join(" ");
    let (_, shown) = readme
        .split_once("```yaml\n- alert: DtReceiverSilent")
        .expect("the README shows the rules");
    let (shown, _) = shown.split_once("```").unwrap();
    let file = squeeze(&rules);
    assert_eq!(shown.matches("expr:").count(), alerts.len(), "{shown}");
    for expr in shown.split("expr:").skip(1) {
        let expr = expr.split("\n  for:").next().unwrap();
        let expr = expr.split("\n- alert:").next().unwrap();
        let expr = squeeze(expr.trim_start_matches(" |"));
        assert!(
            file.contains(&expr),
            "the README's {expr:?} is not in the rules file"
        );
    }
    for alert in &alerts {
        assert!(
            readme.contains(&format!("- alert: {alert}")),
            "{alert} not in the README"
        );
        // The test cases of this alert: the lines after each `alertname: <alert>`.
        let cases: Vec<&str> = tests
            .split("alertname: ")
            .skip(1)
            .filter(|case| case.starts_with(&format!("{alert}\n")))
            .collect();
        assert!(
            cases.iter().any(|case| case.contains("exp_alerts: []")),
            "{alert} has no silent case"
        );
        assert!(
            cases.iter().any(|case| case.contains("exp_labels:")),
            "{alert} has no firing case"
        );
    }
    let tables = [
        include_str!("../../src/lib.rs"),
        include_str!("../../store/src/lib.rs"),
    ]
    .concat();
    let words = rules.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'));
    for name in words.filter(|word| word.starts_with("dt_")) {
        let name = name.strip_suffix("_bucket").unwrap_or(name);
        assert!(
            tables.contains(&format!("| `{name}` |")),
            "{name} is read by the rules but in no metrics table"
        );
    }
}
