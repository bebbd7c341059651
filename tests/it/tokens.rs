//! `mmonboard tokens` and what `serve` says without one: the token printed once, never listed, bad input
//! named with exit 2 and nothing stored, and a serve that will not run open by accident.

use crate::support::Workspace;

#[test]
fn a_token_is_printed_once_listed_without_its_secret_and_revoked_by_name() {
    let workspace = Workspace::new();
    let created = workspace.run(
        &[
            "tokens",
            "create",
            "--name",
            "alice",
            "--role",
            "operator",
            "--expires-in",
            "90d",
        ],
        "",
    );
    assert_eq!(created.code, 0, "{}", created.stderr);
    let token = created.stdout.trim();
    assert!(token.starts_with("mmo_") && token.len() == 68, "{token}");
    assert!(created.stderr.contains("alice") && created.stderr.contains("operator"));

    let listed = workspace.run(&["tokens", "list"], "");
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    assert!(listed.stdout.contains("NAME") && listed.stdout.contains("LAST USED"));
    assert!(listed.stdout.contains("alice") && listed.stdout.contains("active"));
    assert!(!listed.stdout.contains(&token[4..]), "{}", listed.stdout);

    // The same name twice, an unknown role, a bad lifetime: exit 2, each named, nothing stored.
    for (args, named) in [
        (
            ["--name", "alice", "--role", "auditor", "--expires-in", "1d"],
            "alice",
        ),
        (
            ["--name", "bob", "--role", "root", "--expires-in", "1d"],
            "root",
        ),
        (
            ["--name", "bob", "--role", "auditor", "--expires-in", "soon"],
            "soon",
        ),
        (
            ["--name", "Bob!", "--role", "auditor", "--expires-in", "1d"],
            "Bob!",
        ),
    ] {
        let mut full = vec!["tokens", "create"];
        full.extend(args);
        let run = workspace.run(&full, "");
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(named), "{args:?}: {}", run.stderr);
    }
    let json = workspace.run(&["tokens", "list", "--json"], "").json();
    assert_eq!(json.as_array().map(Vec::len), Some(1), "{json}");
    assert_eq!(json[0]["role"], "operator");
    assert!(json[0]["expires_at"].is_string());

    let revoked = workspace.run(&["tokens", "revoke", "alice"], "");
    assert_eq!(revoked.code, 0, "{}", revoked.stderr);
    let again = workspace.run(&["tokens", "revoke", "alice"], "");
    assert_eq!(again.code, 2, "{}", again.stderr);
    let unknown = workspace.run(&["tokens", "revoke", "nobody"], "");
    assert_eq!(unknown.code, 2);
    assert!(unknown.stderr.contains("nobody"), "{}", unknown.stderr);
    let listed = workspace.run(&["tokens", "list"], "");
    assert!(listed.stdout.contains("revoked"), "{}", listed.stdout);
}

#[test]
fn serve_without_a_usable_token_refuses_to_start_and_says_how_to_create_one() {
    let workspace = Workspace::new();
    let run = workspace.run_with_env(&["serve", "--listen", "127.0.0.1:0"], &[]);
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains("mmonboard tokens create") && run.stderr.contains("--insecure-no-auth"),
        "{}",
        run.stderr
    );
    // A revoked token does not count.
    workspace.run(
        &["tokens", "create", "--name", "gone", "--role", "admin"],
        "",
    );
    workspace.run(&["tokens", "revoke", "gone"], "");
    let run = workspace.run_with_env(&["serve", "--listen", "127.0.0.1:0"], &[]);
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains("no usable access token"),
        "{}",
        run.stderr
    );
}
