//! `mmonboard report` through the binary, rendered in headless Chromium: the page a person reads shows the
//! portfolio, its phase, every event of its timeline, each WABA's verdict, the state machine, and the
//! integrity proof naming the signed checkpoint and its key, from the database and from an export file alike.

use std::path::Path;
use std::process::Command;

use crate::support::{PORTFOLIO, Workspace, up_to_terms};

fn path(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}

/// The page as Chromium renders it (the DOM after parsing: what a browser shows).
fn rendered(page: &Path) -> String {
    let output = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--dump-dom",
            &format!("file://{}", page.display()),
        ])
        .output()
        .expect("headless Chromium runs (apt-get install chromium)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8")
}

fn check(dom: &str, key_id: &str, checkpoint_position: u64) {
    assert!(
        dom.contains(&format!("<span id=\"portfolio\">{PORTFOLIO}</span>")),
        "{dom}"
    );
    assert!(
        dom.contains("<strong id=\"phase\">terms_pending</strong>"),
        "{dom}"
    );
    // Every event of the timeline, with its transition.
    let timeline = dom
        .split("<table id=\"timeline\">")
        .nth(1)
        .expect("a timeline");
    assert_eq!(timeline.matches("<tr><td>").count(), 4, "{timeline}");
    assert!(
        timeline.contains("not_started → checking_eligibility"),
        "{timeline}"
    );
    assert!(
        timeline.contains("submit") || timeline.contains("business_info"),
        "{timeline}"
    );
    assert!(dom.contains("<table id=\"wabas\">"), "{dom}");
    assert!(dom.contains("eligible"), "{dom}");
    assert!(
        dom.contains("<figure id=\"state-machine\"><svg"),
        "the state machine is drawn"
    );
    assert!(
        dom.contains("Hash chain and command records verified"),
        "{dom}"
    );
    assert!(
        dom.contains(&format!(
            "signed checkpoint at position <strong>{checkpoint_position}</strong>"
        )),
        "{dom}"
    );
    assert!(
        dom.contains(&format!("by key <strong>{key_id}</strong>")),
        "{dom}"
    );
    assert!(dom.contains("a trusted key"), "{dom}");
    // Self-contained: nothing is fetched from anywhere.
    assert!(
        !dom.contains("src=\"http") && !dom.contains("href=\"http"),
        "{dom}"
    );
}

#[test]
fn the_report_renders_the_history_and_the_integrity_proof() {
    let workspace = Workspace::new();
    up_to_terms(&workspace);
    let key = workspace.path("signing.key");
    let run = workspace.run(&["keys", "generate", "--out", path(&key)], "");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let public = run.stdout.trim().to_owned();
    let run = workspace.run(&["checkpoint", "--signing-key", path(&key), "--json"], "");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let signed = run.json();
    let key_id = signed["checkpoint"]["key_id"]
        .as_str()
        .expect("a key id")
        .to_owned();
    let position = signed["checkpoint"]["position"]
        .as_u64()
        .expect("a position");

    let page = workspace.path("report.html");
    let run = workspace.run(
        &[
            "report",
            "--portfolio",
            PORTFOLIO,
            "--out",
            path(&page),
            "--trusted-key",
            &public,
        ],
        "",
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    check(&rendered(&page), &key_id, position);

    // From an export file, without the database.
    let export = workspace.path("backup.ndjson");
    let run = workspace.run(&["export", "--out", path(&export)], "");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let from_file = workspace.path("from-file.html");
    let run = workspace.run(
        &[
            "report",
            "--portfolio",
            PORTFOLIO,
            "--file",
            path(&export),
            "--out",
            path(&from_file),
            "--trusted-key",
            path(&workspace.path("signing.key.pub")),
        ],
        "",
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let dom = rendered(&from_file);
    check(&dom, &key_id, position);
    assert!(dom.contains("the export file"), "{dom}");

    // An unknown portfolio is invalid input, and no page is written.
    let missing = workspace.path("missing.html");
    let run = workspace.run(
        &[
            "report",
            "--portfolio",
            "9999999999",
            "--out",
            path(&missing),
        ],
        "",
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(!missing.exists());
}
