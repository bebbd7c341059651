//! Coalesced readings of the log's head position, for reads that must reflect everything committed before
//! they were asked (route questions, state reads) without one query each.
//!
//! A reading answers a caller only if it started after the caller arrived: so every answer built on it
//! includes every append committed before the question, by this process or any other writer of the log.
//! While one reading is in flight, callers that arrive queue for the next one, which starts when it ends;
//! all of them share its answer. Under load a round answers many callers with one query; a lone caller pays
//! one query, as before. Hand-written rather than a single-flight crate's: those share the reading in flight
//! with newcomers, whose question it began before, which would answer them from a head older than their
//! question.

use std::future::Future;
use std::sync::{Mutex, PoisonError};

use mmonboard_eventlog::StoreError;
use tokio::sync::watch;

/// Rounds of head readings, one at a time.
pub(crate) struct HeadReadings {
    rounds: Mutex<Rounds>,
    /// The latest finished round and what it read. Sent to under `rounds`' lock.
    finished: watch::Sender<Finished>,
}

struct Rounds {
    /// The number of the latest round started.
    started: u64,
    running: bool,
}

#[derive(Clone)]
struct Finished {
    round: u64,
    head: Result<u64, StoreError>,
}

impl Default for HeadReadings {
    fn default() -> Self {
        Self {
            rounds: Mutex::new(Rounds {
                started: 0,
                running: false,
            }),
            finished: watch::Sender::new(Finished {
                round: 0,
                head: Ok(0),
            }),
        }
    }
}

/// Ends a round whose leader stopped waiting (its request was dropped) before it read: the round is marked
/// not running, and its waiters wake to start another.
struct Leading<'a> {
    readings: &'a HeadReadings,
    round: u64,
    done: bool,
}

impl Leading<'_> {
    fn finish(mut self, head: Result<u64, StoreError>) {
        let mut rounds = self.readings.lock();
        rounds.running = false;
        self.readings.finished.send_replace(Finished {
            round: self.round,
            head,
        });
        self.done = true;
    }
}

impl Drop for Leading<'_> {
    fn drop(&mut self) {
        if !self.done {
            let mut rounds = self.readings.lock();
            rounds.running = false;
            self.readings.finished.send_modify(|_| {});
        }
    }
}

impl HeadReadings {
    fn lock(&self) -> std::sync::MutexGuard<'_, Rounds> {
        self.rounds.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The head position as read by a reading that started after this call: `read` performs a reading
    /// when this caller leads a round, else it shares the answer of the round it joined.
    pub(crate) async fn fresh<F, Fut>(&self, read: F) -> Result<u64, StoreError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<u64, StoreError>>,
    {
        let mut finished = self.finished.subscribe();
        // The first round that starts after now: the next one, whether or not one is running.
        let wanted = self.lock().started + 1;
        loop {
            let lead = {
                let mut rounds = self.lock();
                let last = finished.borrow_and_update();
                if last.round >= wanted {
                    return last.head.clone();
                }
                drop(last);
                if rounds.running {
                    None
                } else {
                    rounds.running = true;
                    rounds.started += 1;
                    Some(rounds.started)
                }
            };
            match lead {
                Some(round) => {
                    let leading = Leading {
                        readings: self,
                        round,
                        done: false,
                    };
                    let head = read().await;
                    leading.finish(head.clone());
                    return head;
                }
                // The sender lives in `self`, so it outlives this wait.
                None => {
                    let _ = finished.changed().await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    use tokio::sync::Notify;

    use super::*;

    #[tokio::test]
    async fn a_lone_caller_reads_once_and_gets_the_reading() {
        let readings = HeadReadings::default();
        let calls = AtomicU64::new(0);
        let head = readings
            .fresh(|| async {
                calls.fetch_add(1, Ordering::SeqCst);
                Ok(7)
            })
            .await;
        assert_eq!(head.ok(), Some(7));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn callers_during_a_reading_share_the_next_one_not_the_one_in_flight() {
        let readings = Arc::new(HeadReadings::default());
        let head = Arc::new(AtomicU64::new(1));
        let calls = Arc::new(AtomicU64::new(0));
        let release = Arc::new(Notify::new());
        let read = {
            let head = Arc::clone(&head);
            let calls = Arc::clone(&calls);
            let release = Arc::clone(&release);
            move || {
                let head = Arc::clone(&head);
                let calls = Arc::clone(&calls);
                let release = Arc::clone(&release);
                async move {
                    let call = calls.fetch_add(1, Ordering::SeqCst);
                    let seen = head.load(Ordering::SeqCst);
                    // The first reading is held until the test lets it go.
                    if call == 0 {
                        release.notified().await;
                    }
                    Ok(seen)
                }
            }
        };
        let first = tokio::spawn({
            let readings = Arc::clone(&readings);
            let read = read.clone();
            async move { readings.fresh(read).await }
        });
        // Wait until the first reading is in flight (it has read head 1).
        tokio::time::timeout(std::time::Duration::from_secs(10), async {
            while calls.load(Ordering::SeqCst) == 0 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the first reading starts");
        // Something is appended; then three callers arrive while the first reading is held.
        head.store(2, Ordering::SeqCst);
        let later: Vec<_> = (0..3)
            .map(|_| {
                let readings = Arc::clone(&readings);
                let read = read.clone();
                tokio::spawn(async move { readings.fresh(read).await })
            })
            .collect();
        // They are queued (each has registered for the next round) before the first reading ends.
        tokio::time::timeout(std::time::Duration::from_secs(10), async {
            while readings.finished.receiver_count() < 4 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the later callers wait");
        release.notify_one();
        assert_eq!(first.await.expect("first").ok(), Some(1));
        for caller in later {
            assert_eq!(
                caller.await.expect("later").ok(),
                Some(2),
                "never the older reading"
            );
        }
        assert_eq!(calls.load(Ordering::SeqCst), 2, "one reading for the three");
    }

    #[tokio::test]
    async fn a_leader_that_stops_waiting_hands_the_round_on() {
        let readings = Arc::new(HeadReadings::default());
        let never = Arc::new(Notify::new());
        let leader = tokio::spawn({
            let readings = Arc::clone(&readings);
            let never = Arc::clone(&never);
            async move {
                readings
                    .fresh(move || {
                        let never = Arc::clone(&never);
                        async move {
                            never.notified().await;
                            Ok(1)
                        }
                    })
                    .await
            }
        });
        tokio::time::timeout(std::time::Duration::from_secs(10), async {
            while !readings.lock().running {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the leader reads");
        let waiter = tokio::spawn({
            let readings = Arc::clone(&readings);
            async move { readings.fresh(|| async { Ok(5) }).await }
        });
        tokio::time::timeout(std::time::Duration::from_secs(10), async {
            while readings.finished.receiver_count() < 2 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the waiter waits");
        leader.abort();
        let _ = leader.await;
        let head = tokio::time::timeout(std::time::Duration::from_secs(10), waiter)
            .await
            .expect("the waiter is not stranded")
            .expect("waiter");
        assert_eq!(head.ok(), Some(5));
    }

    #[tokio::test]
    async fn a_failed_reading_is_the_answer_of_its_round_only() {
        let readings = HeadReadings::default();
        let failed = readings.fresh(|| async { Err(StoreError::Closed) }).await;
        assert!(matches!(failed, Err(StoreError::Closed)));
        assert_eq!(readings.fresh(|| async { Ok(3) }).await.ok(), Some(3));
    }
}
