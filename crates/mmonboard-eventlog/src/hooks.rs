//! Test-only hooks into the writers of both backends. The one there is holds a batch's transaction open
//! between its insert and its COMMIT, so a test can make commits finish in an order of its choosing and
//! prove that readers still never skip an event. Hidden from the documentation: no production caller
//! sets it.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Called by the writer after a batch's rows are inserted and before its COMMIT; the writer waits as long
/// as it returns, with the transaction (and the write lock) held.
#[doc(hidden)]
#[derive(Clone)]
pub struct CommitHold(Arc<dyn Fn() -> Duration + Send + Sync>);

impl CommitHold {
    pub fn new(hold: impl Fn() -> Duration + Send + Sync + 'static) -> Self {
        Self(Arc::new(hold))
    }

    pub(crate) async fn wait(&self) {
        let hold = (self.0)();
        if !hold.is_zero() {
            tokio::time::sleep(hold).await;
        }
    }
}

impl fmt::Debug for CommitHold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CommitHold(..)")
    }
}
