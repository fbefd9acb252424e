//! The picture is true (issue 18, item 6): the crate table in
//! docs/ARCHITECTURE.md names exactly the normal dependencies Cargo gives each
//! workspace crate, so a crate that gains (or loses) a dependency fails here
//! until the document says so.
#![allow(clippy::unwrap_used)] // tests: unwrap is the assertion
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Each crate's row: its short name (without `softbus-`) and what the last
/// column says it depends on.
fn documented(doc: &str) -> BTreeMap<String, BTreeSet<String>> {
    let start = doc
        .find("| crate | what | depends on")
        .expect("the crate table");
    doc[start..]
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split('|').map(str::trim).collect();
            let name = cells[0].trim_matches('`').to_owned();
            let deps = cells[cells.len() - 1]
                .split(',')
                .map(str::trim)
                .filter(|d| !d.is_empty())
                .map(str::to_owned)
                .collect();
            (name, deps)
        })
        .collect()
}

/// Each workspace crate's normal dependencies, as Cargo resolves the manifests.
fn actual(root: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(root)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let m: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let short = |n: &str| n.strip_prefix("softbus-").unwrap_or(n).to_owned();
    m["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let deps = p["dependencies"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| d["kind"].is_null())
                .map(|d| short(d["name"].as_str().unwrap()))
                .collect();
            (short(p["name"].as_str().unwrap()), deps)
        })
        .collect()
}

#[test]
fn the_crate_table_names_every_dependency_and_no_other() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let doc = std::fs::read_to_string(root.join("docs/ARCHITECTURE.md")).unwrap();
    let (doc, cargo) = (documented(&doc), actual(&root));
    assert_eq!(
        doc.keys().collect::<Vec<_>>(),
        cargo.keys().collect::<Vec<_>>(),
        "the table has a row for each crate"
    );
    for (name, deps) in &cargo {
        let said = &doc[name];
        let missing: Vec<_> = deps.difference(said).collect();
        let stale: Vec<_> = said.difference(deps).collect();
        assert!(
            missing.is_empty() && stale.is_empty(),
            "{name}: the table does not show {missing:?} and shows {stale:?} that Cargo does not"
        );
    }
}
