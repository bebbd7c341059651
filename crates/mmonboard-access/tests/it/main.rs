//! Tests of access control: the token store's conformance on both backends, tokens, roles and the matrix.

mod matrix;
mod store;
mod token;
