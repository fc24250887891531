//! The responses tables of the crate docs (`src/lib.rs`) and of the README, checked against
//! `ErrorKind`'s one table: every kind has exactly one row, with its status and its public
//! text, and no row names a kind that does not exist. A new kind without a row fails here.
//! Also the README's list of key refresh outcomes, against `FailureClass::ALL`.

use tower_dt_signature::ErrorKind;

const LIB_RS: &str = include_str!("../../src/lib.rs");
const STORE_LIB_RS: &str = include_str!("../../store/src/lib.rs");
const README: &str = include_str!("../../README.md");

/// The cells of each row of the markdown table whose header line starts with `header`
/// (the separator line skipped), in `text` with `prefix` stripped from every line.
fn table(text: &str, prefix: &str, header: &str) -> Vec<Vec<String>> {
    let mut lines = text
        .lines()
        .map(|line| line.strip_prefix(prefix).unwrap_or(line).trim())
        .skip_while(|line| !line.starts_with(header));
    assert!(
        lines.next().is_some(),
        "no table with the header {header:?}"
    );
    lines
        .skip(1)
        .take_while(|line| line.starts_with('|'))
        .map(|line| {
            line.trim_matches('|')
                .split(" | ")
                .map(|cell| cell.trim().to_owned())
                .collect()
        })
        .collect()
}

fn unquote(cell: &str) -> &str {
    cell.trim_matches('`')
}

/// Every kind once, with its status and public text; no unknown kind; `Ok` or the first
/// discrepancy.
fn check(rows: &[Vec<String>]) -> Result<(), String> {
    let mut seen = Vec::new();
    for row in rows {
        let [_, status, body, kind] = row.as_slice() else {
            return Err(format!("row without 4 cells: {row:?}"));
        };
        if kind == "-" {
            continue;
        }
        let Some(&kind) = ErrorKind::ALL
            .iter()
            .find(|k| format!("{k:?}") == unquote(kind))
        else {
            return Err(format!("row names no ErrorKind: {kind}"));
        };
        if seen.contains(&kind) {
            return Err(format!("{kind:?} has two rows"));
        }
        seen.push(kind);
        if status != kind.status().as_str() {
            return Err(format!("{kind:?}: status {status}, not {}", kind.status()));
        }
        if unquote(body) != kind.public_str() {
            return Err(format!(
                "{kind:?}: body {body}, not {:?}",
                kind.public_str()
            ));
        }
    }
    match ErrorKind::ALL.iter().find(|kind| !seen.contains(kind)) {
        Some(kind) => Err(format!("{kind:?} has no row")),
        None => Ok(()),
    }
}

fn tables() -> [(&'static str, Vec<Vec<String>>); 2] {
    [
        ("src/lib.rs", table(LIB_RS, "//!", "| When | Status |")),
        ("README.md", table(README, "", "| when | status |")),
    ]
}

#[test]
fn every_error_kind_has_one_row_with_its_status_and_text() {
    for (file, rows) in tables() {
        assert!(
            rows.len() > ErrorKind::ALL.len(),
            "{file}: {} rows",
            rows.len()
        );
        if let Err(problem) = check(&rows) {
            panic!("{file}'s responses table: {problem}");
        }
    }
}

#[test]
fn a_missing_or_wrong_row_fails_the_check() {
    for (file, rows) in tables() {
        for removed in 0..rows.len() {
            let mut fewer = rows.clone();
            let row = fewer.remove(removed);
            if row[3] != "-" {
                assert!(
                    check(&fewer).is_err(),
                    "{file}: removing {row:?} went unnoticed"
                );
            }
        }
        let mut wrong = rows.clone();
        let last = wrong.last_mut().unwrap();
        last[1] = "418".into();
        assert!(
            check(&wrong).is_err(),
            "{file}: a wrong status went unnoticed"
        );
        let mut wrong = rows.clone();
        wrong.last_mut().unwrap()[2] = "`something else`".into();
        assert!(
            check(&wrong).is_err(),
            "{file}: a wrong text went unnoticed"
        );
    }
}

/// The README's metrics table lists the key refresh outcomes: `ok` and every
/// `FailureClass` code, each once, and no other (#16: users' alerts match on them).
#[cfg(feature = "asymmetric")]
#[test]
fn the_readme_lists_every_key_refresh_outcome() {
    use tower_dt_signature::keys::FailureClass;

    let rows = table(README, "", "| metric | type | labels |");
    let row = rows
        .iter()
        .find(|row| row[0] == "`dt_signature_jwks_fetches_total`")
        .expect("a row for dt_signature_jwks_fetches_total");
    // The code spans after "(feature `jwks`):" that are a bare snake-case word.
    let (_, outcomes) = row[2]
        .split_once("`jwks`):")
        .expect("the outcomes after `jwks`");
    let listed: Vec<&str> = outcomes
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|span| span.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        .collect();
    let mut expected = vec!["ok"];
    expected.extend(FailureClass::ALL.iter().map(|class| class.code()));
    assert_eq!(listed, expected, "{}", row[2]);
}

/// The source files that emit metrics, for their names (the store's included).
const METRIC_SOURCES: [&str; 4] = [
    include_str!("../../src/layer/meter.rs"),
    include_str!("../../src/keys/refresh.rs"),
    include_str!("../../src/dedup/memory.rs"),
    include_str!("../../store/src/meter.rs"),
];

/// A metrics table as (name, type, label names). A label name is the code span that
/// starts the labels cell or follows `; ` in it (`` `outcome`: ...; `kind`: ... ``); a
/// cell that starts with `-` has none. A fourth cell (the store's "counts") is ignored.
fn metrics(rows: &[Vec<String>]) -> Vec<(String, String, Vec<String>)> {
    rows.iter()
        .map(|row| {
            let [name, kind, labels, ..] = row.as_slice() else {
                panic!("a metrics row without 3 cells: {row:?}");
            };
            let mut names = Vec::new();
            let starts = std::iter::once(labels.as_str())
                .chain(labels.split("; ").skip(1))
                .filter_map(|part| part.strip_prefix('`'));
            for part in starts {
                if let Some((label, _)) = part.split_once('`') {
                    names.push(label.to_owned());
                }
            }
            (unquote(name).to_owned(), kind.clone(), names)
        })
        .collect()
}

/// Every metric of `readme` is in `docs` with its type and every one of its labels;
/// `Ok`, or the first one missing.
fn metrics_check(
    readme: &[(String, String, Vec<String>)],
    docs: &[(String, String, Vec<String>)],
) -> Result<(), String> {
    for (name, kind, labels) in readme {
        let Some((_, docs_kind, docs_labels)) = docs.iter().find(|(n, ..)| n == name) else {
            return Err(format!("{name} is not in the crate docs' metrics table"));
        };
        if docs_kind != kind {
            return Err(format!(
                "{name}: a {docs_kind} in the crate docs, a {kind} in the README"
            ));
        }
        if let Some(label) = labels.iter().find(|label| !docs_labels.contains(label)) {
            return Err(format!(
                "{name}: the label {label} is not in the crate docs' table"
            ));
        }
    }
    Ok(())
}

/// The README's table, and the crate docs' tables: the library's, then the store's.
fn metrics_tables() -> [Vec<(String, String, Vec<String>)>; 2] {
    let mut docs = metrics(&table(LIB_RS, "//!", "| metric | type | labels |"));
    docs.extend(metrics(&table(
        STORE_LIB_RS,
        "//!",
        "| metric | type | labels | counts |",
    )));
    [
        metrics(&table(README, "", "| metric | type | labels |")),
        docs,
    ]
}

/// Issue 25: the crate docs' metrics tables hold every metric and label the README lists,
/// and every metric name the sources emit is in them (issue 23: the store's too).
#[test]
fn the_crate_docs_list_every_metric_and_label_of_the_readme() {
    let [readme, docs] = metrics_tables();
    assert!(readme.len() >= 14, "{readme:?}");
    if let Err(problem) = metrics_check(&readme, &docs) {
        panic!("{problem}");
    }
    let requests = docs
        .iter()
        .find(|(name, ..)| name == "dt_signature_requests_total")
        .unwrap();
    assert_eq!(requests.2, ["outcome", "kind", "scheme"]);
    // Issue 23: the series the alert rules read, with the labels they group by.
    for (name, kind, labels) in [
        ("dt_signature_signing_lag_seconds", "histogram", &[][..]),
        ("dt_store_requests_total", "counter", &["outcome"][..]),
        ("dt_store_event_age_seconds", "histogram", &[]),
        ("dt_store_event_from_future_total", "counter", &[]),
        (
            "dt_store_last_accepted_timestamp_seconds",
            "gauge",
            &["tenant"],
        ),
        ("dt_store_commit_seconds", "histogram", &["backend"]),
        ("dt_store_batch_size", "histogram", &["backend"]),
    ] {
        let row = docs.iter().find(|(n, ..)| n == name);
        let labels: Vec<String> = labels.iter().map(|label| (*label).to_owned()).collect();
        assert_eq!(
            row.map(|(_, kind, labels)| (kind.as_str(), labels)),
            Some((kind, &labels)),
            "{name}"
        );
    }
    // Every `"dt_..."` literal of the sources that emit metrics is a row.
    for source in METRIC_SOURCES {
        for literal in source.split('"').skip(1).step_by(2) {
            if literal.starts_with("dt_") && !literal.contains(' ') {
                assert!(
                    docs.iter().any(|(name, ..)| name == literal),
                    "{literal} is emitted but not in the crate docs' metrics table"
                );
            }
        }
    }
}

/// The check fails for a metric, a label or a type the crate docs lack.
#[test]
fn a_metric_or_label_missing_from_the_crate_docs_fails_the_check() {
    let [readme, docs] = metrics_tables();
    for removed in 0..docs.len() {
        let mut fewer = docs.clone();
        let (name, ..) = fewer.remove(removed);
        assert!(
            metrics_check(&readme, &fewer).is_err(),
            "removing {name} went unnoticed"
        );
    }
    for (at, (name, _, labels)) in docs.iter().enumerate() {
        for label in labels {
            let mut fewer = docs.clone();
            fewer[at].2.retain(|l| l != label);
            assert!(
                metrics_check(&readme, &fewer).is_err(),
                "removing the label {label} of {name} went unnoticed"
            );
        }
    }
    let mut wrong = docs.clone();
    wrong[0].1 = "gauge".into();
    assert!(metrics_check(&readme, &wrong).is_err());
}
