//! Per-portfolio command serialisation inside one process. Commands on one portfolio from many tasks would
//! otherwise all decide on the same version and all but one would conflict, over and over (each group commit
//! lets exactly one through, and the winner is ready first again): a fair lock per portfolio turns that retry
//! storm into a queue. Conflicts then only come from other processes, and the expected-version check still
//! guards correctness either way.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

pub struct KeyedLocks<K> {
    locks: Mutex<HashMap<K, Arc<AsyncMutex<()>>>>,
}

impl<K> Default for KeyedLocks<K> {
    fn default() -> Self {
        Self {
            locks: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash + Clone> KeyedLocks<K> {
    /// Wait (in arrival order) until no other task holds `key`.
    pub async fn lock(&self, key: &K) -> KeyGuard<'_, K> {
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
            Arc::clone(locks.entry(key.clone()).or_default())
        };
        let guard = lock.lock_owned().await;
        KeyGuard {
            locks: self,
            key: key.clone(),
            guard: Some(guard),
        }
    }

    /// How many keys currently have a lock entry (held or awaited).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.locks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

pub struct KeyGuard<'a, K: Eq + Hash> {
    locks: &'a KeyedLocks<K>,
    key: K,
    guard: Option<OwnedMutexGuard<()>>,
}

impl<K: Eq + Hash> Drop for KeyGuard<'_, K> {
    fn drop(&mut self) {
        // Release first, then forget the entry if nobody else holds or awaits it, so the map stays bounded by
        // the number of portfolios in flight.
        drop(self.guard.take());
        let mut locks = self
            .locks
            .locks
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if locks
            .get(&self.key)
            .is_some_and(|lock| Arc::strong_count(lock) == 1)
        {
            locks.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn entries_are_forgotten_once_released() {
        let locks = KeyedLocks::default();
        {
            let _first = locks.lock(&1).await;
            let _other = locks.lock(&2).await;
            assert_eq!(locks.len(), 2);
        }
        assert!(locks.is_empty());
    }

    #[tokio::test]
    async fn a_key_is_held_by_one_task_at_a_time() {
        let locks = Arc::new(KeyedLocks::default());
        let guard = locks.lock(&1).await;
        let waiter = {
            let locks = Arc::clone(&locks);
            tokio::spawn(async move {
                let _guard = locks.lock(&1).await;
            })
        };
        tokio::task::yield_now().await;
        assert!(
            !waiter.is_finished(),
            "the second task waits while the key is held"
        );
        drop(guard);
        waiter
            .await
            .expect("the waiter gets the lock once released");
        assert!(locks.is_empty());
    }
}
