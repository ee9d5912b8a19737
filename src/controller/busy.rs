//! How many BranchPipeline reconciles run at this moment. kube-runtime's queue has no
//! priorities, so a class edit that wakes a thousand users at once would otherwise take every
//! reconcile slot, and an edit made meanwhile would wait behind the whole roll-out. The
//! roll-out is fed in only while slots are left for edits.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// How often a waiting roll-out looks again: well under one reconcile's time.
const POLL: Duration = Duration::from_millis(20);

#[derive(Debug, Default)]
pub struct Busy {
    running: AtomicUsize,
}

/// One reconcile running; it counts until dropped.
pub struct Running<'a>(&'a Busy);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Busy {
    pub fn start(&self) -> Running<'_> {
        self.running.fetch_add(1, Ordering::SeqCst);
        Running(self)
    }

    pub fn now(&self) -> usize {
        self.running.load(Ordering::SeqCst)
    }

    /// Waits until fewer than `limit` reconciles run.
    pub async fn room(&self, limit: usize) {
        while self.now() >= limit.max(1) {
            tokio::time::sleep(POLL).await;
        }
    }
}

/// Slots a roll-out may fill: a quarter of `concurrency` (at least one) stays for edits.
pub fn rollout_limit(concurrency: u16) -> usize {
    let concurrency = usize::from(concurrency.max(1));
    (concurrency - concurrency.div_ceil(4)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quarter_of_the_slots_stays_for_edits() {
        assert_eq!(rollout_limit(16), 12);
        assert_eq!(rollout_limit(2), 1);
        assert_eq!(rollout_limit(1), 1);
        assert_eq!(rollout_limit(0), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_rollout_waits_while_its_slots_are_taken() {
        let busy = Busy::default();
        let first = busy.start();
        let second = busy.start();
        assert_eq!(busy.now(), 2);
        let waited = tokio::time::timeout(Duration::from_secs(1), busy.room(2)).await;
        assert!(waited.is_err(), "two running: no room under a limit of two");
        drop(first);
        tokio::time::timeout(Duration::from_secs(1), busy.room(2))
            .await
            .expect("room once one ended");
        drop(second);
        assert_eq!(busy.now(), 0);
    }
}
