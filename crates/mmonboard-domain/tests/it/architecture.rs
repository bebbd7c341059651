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

#[test]
fn the_domain_depends_on_no_runtime_database_or_web_framework() {
    let manifest = std::fs::read_to_string(crate_dir().join("Cargo.toml")).expect("the manifest");
    let dependencies = manifest
        .split("[dependencies]")
        .nth(1)
        .expect("a [dependencies] table");
    let dependencies = dependencies.split("\n[").next().unwrap_or_default();
    for forbidden in [
        "tokio",
        "sqlx",
        "axum",
        "hyper",
        "reqwest",
        "async-std",
        "mmonboard-eventlog",
    ] {
        assert!(
            !dependencies
                .lines()
                .any(|line| line.trim_start().starts_with(forbidden)),
            "the domain must not depend on {forbidden}"
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
