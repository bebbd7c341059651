//! `mmonboard completions SHELL` and `mmonboard man`: shell completion scripts (clap_complete) and man pages
//! (clap_mangen), both generated from the same definitions as the parser, so they never fall behind a flag.

use std::path::Path;

use clap::CommandFactory;

use crate::{Cli, exit};

/// The completion script for `shell`, on standard output.
pub fn completions(shell: clap_complete::Shell) -> u8 {
    let mut command = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "mmonboard", &mut script);
    write_stdout(&script)
}

/// The man page of `mmonboard` on standard output, or with `dir` one page per command and subcommand there
/// (`mmonboard.1`, `mmonboard-serve.1`, `mmonboard-tokens-create.1`, …).
pub fn man(dir: Option<&Path>) -> u8 {
    let command = Cli::command();
    match dir {
        None => {
            let mut page = Vec::new();
            if let Err(error) = clap_mangen::Man::new(command).render(&mut page) {
                eprintln!("error: cannot render the man page: {error}");
                return exit::FAILURE;
            }
            write_stdout(&page)
        }
        Some(dir) => {
            if !dir.is_dir() {
                eprintln!(
                    "invalid input: --dir {} is not an existing directory",
                    dir.display()
                );
                return exit::INVALID_INPUT;
            }
            match clap_mangen::generate_to(command, dir) {
                Ok(()) => {
                    out!("man pages written to {}", dir.display());
                    exit::OK
                }
                Err(error) => {
                    eprintln!(
                        "error: cannot write the man pages to {}: {error}",
                        dir.display()
                    );
                    exit::FAILURE
                }
            }
        }
    }
}

/// Through the shared writer: a reader that goes away ends the output quietly, another failure is one.
fn write_stdout(bytes: &[u8]) -> u8 {
    out_part!("{}", String::from_utf8_lossy(bytes));
    exit::OK
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use crate::Cli;

    /// Every argument and subcommand of the tree, by its path, that has no help text.
    fn without_help(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
        for arg in command.get_arguments() {
            if arg.get_help().is_none() && arg.get_long_help().is_none() {
                missing.push(format!("{path} {}", arg.get_id()));
            }
        }
        for sub in command.get_subcommands() {
            let path = format!("{path} {}", sub.get_name());
            if sub.get_about().is_none() {
                missing.push(path.clone());
            }
            without_help(sub, &path, missing);
        }
    }

    #[test]
    fn every_flag_and_subcommand_has_help_text() {
        let mut missing = Vec::new();
        without_help(&Cli::command(), "mmonboard", &mut missing);
        assert!(missing.is_empty(), "no help text: {missing:?}");
    }

    #[test]
    fn every_subcommand_shows_an_example() {
        let command = Cli::command();
        let without: Vec<&str> = command
            .get_subcommands()
            .filter(|sub| {
                !sub.get_after_help()
                    .is_some_and(|text| text.to_string().contains("Example"))
            })
            .map(clap::Command::get_name)
            .collect();
        assert!(without.is_empty(), "no example in the help of {without:?}");
    }
}
