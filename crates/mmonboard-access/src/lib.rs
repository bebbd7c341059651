//! Access control of mmonboard's HTTP API: the roles, the endpoint × role matrix (one table, used by the
//! server's middleware, rendered into `docs/access.md` and driven by one test), which role may send which
//! command, API tokens (high entropy, only their SHA-256 stored, compared in constant time, with an optional
//! expiry) and the token store beside the log on either backend.

mod error;
mod matrix;
mod role;
mod store;
mod token;

pub use error::AccessError;
pub use matrix::{
    Endpoint, MATRIX, Rule, render_markdown, requires_credentials, roles_text, route_is_listed,
    rules_for,
};
pub use role::{CommandClass, Role};
pub use store::{Credential, IssuedToken, MIGRATIONS_TABLE, TokenRecord, TokenStore};
pub use token::{TOKEN_PREFIX, TokenHash, TokenName, TokenSecret, parse_lifetime};
