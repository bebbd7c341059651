//! docs/ARCHITECTURE.md's invariants for this crate, checked: the domain depends on no async runtime,
//! database or web framework, reads no clock and does no I/O.

use std::path::{Path, PathBuf};

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("a readable source directory") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            found.push(path);
        }
    }
}

/// The crates the domain builds with, as cargo resolves them: its normal dependencies and theirs, all the
/// way down (not its dev-dependencies, which only its tests link). Read from `cargo metadata`, so a
/// dependency that arrives indirectly, renamed or through a feature is seen too.
fn normal_dependency_closure() -> std::collections::BTreeSet<String> {
    use std::collections::{BTreeMap, BTreeSet};
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = std::process::Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--offline",
            "--manifest-path",
        ])
        .arg(crate_dir().join("Cargo.toml"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("cargo metadata prints JSON");
    let names: BTreeMap<&str, &str> = metadata["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .filter_map(|package| Some((package["id"].as_str()?, package["name"].as_str()?)))
        .collect();
    let nodes: BTreeMap<&str, &serde_json::Value> = metadata["resolve"]["nodes"]
        .as_array()
        .expect("the resolved graph")
        .iter()
        .filter_map(|node| Some((node["id"].as_str()?, node)))
        .collect();
    let domain = names
        .iter()
        .find(|(_, name)| **name == "mmonboard-domain")
        .map(|(id, _)| *id)
        .expect("the domain is in the graph");
    let mut seen = BTreeSet::new();
    let mut pending = vec![domain];
    while let Some(id) = pending.pop() {
        let Some(node) = nodes.get(id) else { continue };
        for dep in node["deps"].as_array().into_iter().flatten() {
            // A null kind is a normal dependency; "dev" and "build" ones are not linked into the crate.
            let normal = dep["dep_kinds"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|kind| kind["kind"].is_null());
            if let (true, Some(dep_id)) = (normal, dep["pkg"].as_str())
                && seen.insert(dep_id)
            {
                pending.push(dep_id);
            }
        }
    }
    seen.iter()
        .filter_map(|id| names.get(id).map(|name| (*name).to_owned()))
        .collect()
}

#[test]
fn the_domain_depends_on_no_runtime_database_or_web_framework() {
    let closure = normal_dependency_closure();
    assert!(
        closure.contains("serde") && closure.contains("statig"),
        "the graph was read: {closure:?}"
    );
    for forbidden in [
        "tokio",
        "sqlx",
        "sqlx-core",
        "libsqlite3-sys",
        "axum",
        "hyper",
        "reqwest",
        "async-std",
        "mio",
        "mmonboard-eventlog",
        "mmonboard-app",
    ] {
        assert!(
            !closure.contains(forbidden),
            "the domain must not depend on {forbidden}, directly or not: {closure:?}"
        );
    }
}

#[test]
fn the_domain_reads_no_clock_and_does_no_io() {
    let mut files = Vec::new();
    rust_files(&crate_dir().join("src"), &mut files);
    assert!(!files.is_empty());
    let forbidden = [
        "Utc::now",
        "Local::now",
        "SystemTime",
        "Instant::now",
        "std::fs",
        "std::net",
        "std::env",
        "now_v7",
        "new_v4",
    ];
    for file in files {
        let source = std::fs::read_to_string(&file).expect("a readable source file");
        for pattern in forbidden {
            assert!(
                !source.contains(pattern),
                "{} uses {pattern}",
                file.display()
            );
        }
    }
}
