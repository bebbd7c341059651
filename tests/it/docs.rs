//! The documentation is part of the contract: every command example in docs/commands.md must be a valid
//! command, every command type has one, and every relative link in README.md and docs/*.md leads to a file
//! of the repository (and to a heading of it, when it names one).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use mmonboard::domain::OnboardingCommand;
use pulldown_cmark::{Event, HeadingLevel, Parser, Tag, TagEnd};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Every command `type`, as the command's own deserializer knows them: asked for a type that does not
/// exist, serde names all the variants it expects, so a new command type is counted without anyone
/// updating a number here.
fn command_type_names() -> BTreeSet<String> {
    let error = serde_json::from_str::<OnboardingCommand>(r#"{"type": "no such command"}"#)
        .err()
        .map(|error| error.to_string())
        .unwrap_or_default();
    let expected = error
        .split_once("expected one of ")
        .map(|(_, list)| list)
        .unwrap_or_else(|| panic!("serde names the variants it expects: {error}"));
    let names: BTreeSet<String> = expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect();
    assert!(names.contains("start_onboarding"), "{names:?} from {error}");
    names
}

#[test]
fn every_command_example_in_the_docs_parses_and_every_command_type_has_one() {
    let docs = std::fs::read_to_string(Path::new(ROOT).join("docs/commands.md")).expect("docs");
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
    let mut documented = BTreeSet::new();
    for example in &examples {
        let command: OnboardingCommand = serde_json::from_str(example)
            .unwrap_or_else(|error| panic!("{error} in docs example:\n{example}"));
        documented.insert(command.type_name().to_owned());
    }
    let all = command_type_names();
    let missing: Vec<&String> = all.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "command types without an example in docs/commands.md: {missing:?}"
    );
    assert_eq!(documented, all);
}

/// The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

struct Page {
    links: Vec<String>,
    anchors: BTreeSet<String>,
}

fn read_page(path: &Path) -> Page {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|error| panic!("{} cannot be read: {error}", path.display()));
    let mut links = Vec::new();
    let mut anchors = BTreeSet::new();
    let mut heading: Option<String> = None;
    for event in Parser::new(&text) {
        match event {
            Event::Start(Tag::Link { dest_url, .. }) => links.push(dest_url.to_string()),
            Event::Start(Tag::Heading { level, .. }) if level <= HeadingLevel::H6 => {
                heading = Some(String::new());
            }
            Event::Text(text) | Event::Code(text) => {
                if let Some(heading) = &mut heading {
                    heading.push_str(&text);
                }
            }
            Event::End(TagEnd::Heading(_)) => {
                if let Some(heading) = heading.take() {
                    anchors.insert(slug(&heading));
                }
            }
            _ => {}
        }
    }
    Page { links, anchors }
}

fn pages() -> Vec<PathBuf> {
    let mut pages = vec![Path::new(ROOT).join("README.md")];
    let docs = std::fs::read_dir(Path::new(ROOT).join("docs")).expect("docs/ is there");
    for entry in docs {
        let path = entry.expect("a docs entry").path();
        if path.extension().is_some_and(|extension| extension == "md") {
            pages.push(path);
        }
    }
    pages.sort();
    pages
}

#[test]
fn every_relative_link_in_the_readme_and_the_docs_resolves() {
    let mut broken = Vec::new();
    let mut checked = 0;
    for page_path in pages() {
        let page = read_page(&page_path);
        for link in &page.links {
            if link.contains("://") || link.starts_with("mailto:") {
                continue;
            }
            checked += 1;
            let (file, anchor) = link.split_once('#').unwrap_or((link.as_str(), ""));
            let target = if file.is_empty() {
                page_path.clone()
            } else {
                page_path.parent().unwrap_or(Path::new(ROOT)).join(file)
            };
            if !target.exists() {
                broken.push(format!("{}: {link} (no such file)", page_path.display()));
                continue;
            }
            if !anchor.is_empty()
                && target
                    .extension()
                    .is_some_and(|extension| extension == "md")
                && !read_page(&target).anchors.contains(anchor)
            {
                broken.push(format!("{}: {link} (no such heading)", page_path.display()));
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
    assert!(
        checked >= 5,
        "the pages link to each other ({checked} links checked)"
    );
}

#[test]
fn the_docs_send_readers_to_no_page_the_repository_does_not_have() {
    for page_path in pages() {
        let text = std::fs::read_to_string(&page_path).expect("readable");
        for missing in ["DOMAIN.md", "PERF.md"] {
            assert!(
                !text.contains(missing),
                "{} refers to {missing}, which is not in the repository",
                page_path.display()
            );
        }
    }
}

#[test]
fn anchors_are_the_ones_github_makes() {
    assert_eq!(
        slug("Meta's API, as far as mmonboard speaks it"),
        "metas-api-as-far-as-mmonboard-speaks-it"
    );
    assert_eq!(slug("The `commands` table"), "the-commands-table");
}
