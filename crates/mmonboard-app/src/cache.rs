//! The bounded cache of folded portfolios kept by the command path ([`crate::OnboardingService`]) and by the
//! projector: a portfolio's `Aggregate` at some stream version, the fold of events that never change, so a
//! cached fold is only ever behind the log, never wrong. Bounded in entries, least recently used out first
//! (hashlink's `LruCache`); a miss costs one fold from the log.

use std::borrow::Borrow;

use hashlink::LruCache;
use mmonboard_domain::Aggregate;
use mmonboard_domain::ids::PortfolioId;

/// Up to `capacity` folded portfolios (0: none is kept). `F` is how the fold is held: an `Aggregate`, or an
/// `Arc<Aggregate>` shared with readers.
pub struct AggregateCache<F> {
    folds: Option<LruCache<PortfolioId, F>>,
}

impl<F: Borrow<Aggregate> + Clone> AggregateCache<F> {
    pub fn new(capacity: usize) -> Self {
        Self {
            folds: (capacity > 0).then(|| LruCache::new(capacity)),
        }
    }

    /// The portfolio's fold as it was last remembered (it may be behind the log).
    pub fn get(&mut self, portfolio_id: &PortfolioId) -> Option<F> {
        self.folds.as_mut()?.get(portfolio_id).cloned()
    }

    /// The portfolio's fold, taken out of the cache (no copy is made): for a caller that folds it further
    /// and remembers the result.
    pub fn take(&mut self, portfolio_id: &PortfolioId) -> Option<F> {
        self.folds.as_mut()?.remove(portfolio_id)
    }

    /// Remember a fold, unless a later one of the same portfolio is remembered already (two tasks that folded
    /// the same portfolio may come back in either order).
    pub fn remember(&mut self, fold: F) {
        let Some(folds) = self.folds.as_mut() else {
            return;
        };
        let aggregate: &Aggregate = fold.borrow();
        let newer_known = folds
            .peek(aggregate.portfolio_id())
            .is_some_and(|known| known.borrow().version() > aggregate.version());
        if !newer_known {
            folds.insert(aggregate.portfolio_id().clone(), fold);
        }
    }

    /// Forget every fold.
    pub fn clear(&mut self) {
        if let Some(folds) = self.folds.as_mut() {
            folds.clear();
        }
    }

    pub fn len(&self) -> usize {
        self.folds.as_ref().map_or(0, LruCache::len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
