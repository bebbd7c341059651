//! docs/commands.md is part of the contract: every command example in it must be a valid command.

use mmonboard::domain::OnboardingCommand;

#[test]
fn every_command_example_in_the_docs_parses() {
    let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/commands.md"))
        .expect("docs");
    let mut examples = Vec::new();
    let mut current: Option<String> = None;
    for line in docs.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```json command") => current = Some(String::new()),
            (Some(block), "```") => {
                examples.push(std::mem::take(block));
                current = None;
            }
            (Some(block), text) => {
                block.push_str(text);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    let mut types = std::collections::BTreeSet::new();
    for example in &examples {
        let command: OnboardingCommand = serde_json::from_str(example)
            .unwrap_or_else(|error| panic!("{error} in docs example:\n{example}"));
        types.insert(command.type_name());
    }
    assert_eq!(
        types.len(),
        20,
        "every command type has an example; documented: {types:?}"
    );
}
