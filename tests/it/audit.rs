//! `export`, `import` and `verify --file` through the binary, and docs/audit.md's worked example: the file
//! it shows verifies, and its hash is SHA-256 of 32 zero bytes and the canonical bytes it spells out.

use sha2::{Digest, Sha256};

use crate::support::{Workspace, up_to_terms};

/// The fenced blocks of `language` in docs/audit.md, in order.
fn blocks(language: &str) -> Vec<String> {
    let page = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/audit.md"))
        .expect("docs/audit.md");
    let fence = format!("```{language}\n");
    page.split(&fence)
        .skip(1)
        .map(|rest| rest.split("```").next().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn the_worked_example_verifies_and_its_bytes_give_its_hash() {
    let example = blocks("ndjson")
        .into_iter()
        .next()
        .expect("the example export");
    let texts = blocks("text");
    let canonical: String = texts[0].split_whitespace().collect();
    let stated_hash = texts[1].trim();
    let canonical = hex::decode(&canonical).expect("the canonical bytes are hex");
    let mut hasher = Sha256::new();
    hasher.update([0_u8; 32]);
    hasher.update(&canonical);
    assert_eq!(hex::encode(hasher.finalize()), stated_hash);
    assert!(example.contains(&format!(r#""hash":"{stated_hash}""#)));

    let workspace = Workspace::new();
    let file = workspace.path("example.ndjson");
    std::fs::write(&file, &example).expect("the example written");
    let run = workspace.run(&["verify", "--file", path(&file), "--json"], "");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = run.json();
    assert_eq!(report["intact"], true);
    assert_eq!(report["head"]["global_position"], 1);
    assert_eq!(report["head"]["hash"], stated_hash);
}

/// The signed checkpoint's worked example: the bytes docs/audit.md spells out are the documented fields in
/// the documented layout, the key id is the public key's, the signature verifies over exactly those bytes,
/// and the example export with the checkpoint line verifies against that public key (and fails against
/// another).
#[test]
fn the_signed_checkpoint_example_verifies_and_its_bytes_are_the_documented_fields() {
    use ed25519_dalek::{Signature, SigningKey, VerifyingKey};
    let lines = blocks("ndjson");
    let (export, checkpoint_line) = (&lines[0], lines[1].trim());
    let checkpoint: serde_json::Value = serde_json::from_str(checkpoint_line).expect("the line");
    let texts = blocks("text");
    let signed: String = texts[2].split_whitespace().collect();
    let signed = hex::decode(&signed).expect("the signed bytes are hex");

    let public_key: [u8; 32] = hex::decode(checkpoint["public_key"].as_str().expect("a key"))
        .expect("hex")
        .try_into()
        .expect("32 bytes");
    let key_id = checkpoint["key_id"].as_str().expect("a key id");
    assert_eq!(hex::encode(&Sha256::digest(public_key)[..8]), key_id);
    // The example's seed is 00 01 .. 1f, and that is the key that signed.
    let seed: [u8; 32] = std::array::from_fn(|n| n as u8);
    assert_eq!(
        SigningKey::from_bytes(&seed).verifying_key().to_bytes(),
        public_key
    );

    let field = |bytes: &[u8]| {
        let mut out = (bytes.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(bytes);
        out
    };
    let hash = hex::decode(checkpoint["hash"].as_str().expect("a hash")).expect("hex");
    let expected: Vec<u8> = [
        field(b"mmonboard-checkpoint/1"),
        field(
            &checkpoint["position"]
                .as_u64()
                .expect("a position")
                .to_be_bytes(),
        ),
        field(&hash),
        field(
            &checkpoint["recorded_at"]
                .as_i64()
                .expect("a time")
                .to_be_bytes(),
        ),
        field(key_id.as_bytes()),
    ]
    .concat();
    assert_eq!(signed, expected);
    let signature: [u8; 64] = hex::decode(checkpoint["signature"].as_str().expect("a signature"))
        .expect("hex")
        .try_into()
        .expect("64 bytes");
    VerifyingKey::from_bytes(&public_key)
        .expect("a public key")
        .verify_strict(&signed, &Signature::from_bytes(&signature))
        .expect("the signature verifies over the documented bytes");

    let workspace = Workspace::new();
    let file = workspace.path("signed.ndjson");
    std::fs::write(&file, format!("{}{checkpoint_line}\n", export.trim_start())).expect("written");
    let trusted = format!("ed25519:{}", hex::encode(public_key));
    let run = workspace.run(
        &[
            "verify",
            "--file",
            path(&file),
            "--trusted-key",
            &trusted,
            "--json",
        ],
        "",
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["checkpoints"]["newest"]["key_id"], key_id);
    let other = format!(
        "ed25519:{}",
        hex::encode(SigningKey::from_bytes(&[9; 32]).verifying_key().to_bytes())
    );
    let run = workspace.run(
        &["verify", "--file", path(&file), "--trusted-key", &other],
        "",
    );
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert!(run.stderr.contains("not a trusted key"), "{}", run.stderr);
}

fn path(path: &std::path::Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}

#[test]
fn an_export_verifies_offline_and_imports_with_the_same_head() {
    let source = Workspace::new();
    up_to_terms(&source);
    let head = source.run(&["verify", "--json"], "");
    assert_eq!(head.code, 0, "{}", head.stderr);
    let head = head.json()["head"].clone();
    let file = source.path("backup.ndjson");
    let run = source.run(&["export", "--out", path(&file)], "");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!source.path("backup.partial").exists());

    let run = source.run(&["verify", "--file", path(&file), "--json"], "");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["head"], head);

    let target = Workspace::new();
    let run = target.run(&["import", "--file", path(&file)], "");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = target.run(&["verify", "--json"], "");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["head"], head);
    let again = target.run(&["export"], "");
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(
        again.stdout,
        std::fs::read_to_string(&file).expect("the export")
    );

    // Importing again into the now non-empty log is refused and changes nothing.
    let run = target.run(&["import", "--file", path(&file)], "");
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("not empty"), "{}", run.stderr);
}

#[test]
fn a_corrupted_export_is_refused_naming_its_line() {
    let source = Workspace::new();
    up_to_terms(&source);
    let exported = source.run(&["export"], "");
    assert_eq!(exported.code, 0, "{}", exported.stderr);
    let mut lines: Vec<String> = exported.stdout.lines().map(str::to_owned).collect();
    assert!(lines.len() > 3, "{}", exported.stdout);
    // Line 3 is position 2: its recorded time moved by one microsecond.
    let original = lines[2].clone();
    let (before, after) = original.split_once(r#""recorded_at":"#).expect("a time");
    let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
    let moved = digits.parse::<i64>().expect("micros") + 1;
    lines[2] = format!("{before}\"recorded_at\":{moved}{}", &after[digits.len()..]);
    let file = source.path("corrupted.ndjson");
    std::fs::write(&file, lines.join("\n") + "\n").expect("written");

    let run = source.run(&["verify", "--file", path(&file)], "");
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert!(
        run.stderr.contains("line 3 (position 2)") && run.stderr.contains("hash mismatch"),
        "{}",
        run.stderr
    );
    let target = Workspace::new();
    let run = target.run(&["import", "--file", path(&file)], "");
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("nothing was imported"),
        "{}",
        run.stderr
    );
    let run = target.run(&["verify", "--json"], "");
    assert_eq!(run.json()["events_checked"], 0, "{}", run.stdout);

    let run = source.run(&["export", "--after", "5", "--to", "2"], "");
    assert_eq!(run.code, 2, "{}", run.stderr);
}

/// A head noted earlier catches what the chain alone cannot: a log cut back with its command records.
#[test]
fn an_expected_head_catches_a_log_cut_back_before_it() {
    let workspace = Workspace::new();
    up_to_terms(&workspace);
    let run = workspace.run(&["verify", "--json"], "");
    let head = run.json()["head"].clone();
    let noted = format!(
        "{}:{}",
        head["global_position"],
        head["hash"].as_str().expect("a hash")
    );
    let run = workspace.run(&["verify", "--expect-head", &noted], "");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let file = workspace.path("all.ndjson");
    let run = workspace.run(&["export", "--out", path(&file)], "");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = workspace.run(
        &["verify", "--file", path(&file), "--expect-head", &noted],
        "",
    );
    assert_eq!(run.code, 0, "{}", run.stderr);

    // An export cut back before the noted head is consistent on its own, but not with the head.
    let last = head["global_position"].as_u64().expect("a position");
    let cut = workspace.path("cut.ndjson");
    let to = (last - 1).to_string();
    let run = workspace.run(&["export", "--to", &to, "--out", path(&cut)], "");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = workspace.run(&["verify", "--file", path(&cut)], "");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = workspace.run(
        &["verify", "--file", path(&cut), "--expect-head", &noted],
        "",
    );
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert!(run.stderr.contains("cut off"), "{}", run.stderr);

    // The same position with another hash: rewritten.
    let other = format!("{last}:{}", "ab".repeat(32));
    let run = workspace.run(&["verify", "--expect-head", &other], "");
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert!(run.stderr.contains("rewritten"), "{}", run.stderr);
    let run = workspace.run(&["verify", "--expect-head", "x:y"], "");
    assert_eq!(run.code, 2, "{}", run.stderr);
}
