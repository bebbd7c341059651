//! Property-testing support for other crates: proptest strategies for commands and facts, and a reference model.
