//! The progress bars of the long commands (`export`, `projections rebuild`): indicatif, drawn on standard
//! error only when it is a terminal (a pipe or a log file gets none), so scripts read clean output.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar counting `total` events, on standard error when it is a terminal, hidden otherwise.
pub fn events(total: u64) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    // The template is a constant: it parses, as the test below checks.
    if let Ok(style) = ProgressStyle::with_template(TEMPLATE) {
        bar.set_style(style.progress_chars("#>-"));
    }
    bar
}

const TEMPLATE: &str =
    "[{elapsed_precise}] [{bar:40}] {percent:>3}% {pos}/{len} events ({per_sec}, {eta} left)";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_parses_and_a_bar_off_a_terminal_is_hidden() {
        assert!(ProgressStyle::with_template(TEMPLATE).is_ok());
        let bar = ProgressBar::with_draw_target(Some(10), ProgressDrawTarget::hidden());
        bar.set_position(4);
        assert_eq!(bar.position(), 4);
        assert!(bar.is_hidden());
    }
}
