//! [`Runnable`]: what a program that hosts controllers drives, whatever the
//! controller — so it holds a list of them instead of one arm per kind.

use async_trait::async_trait;
use ecm_workqueue::QueueStats;
use tokio_util::sync::CancellationToken;

use crate::core::CoreState;

/// A controller as its host sees it: a name, a run loop, and whether it has
/// work left. Implement [`run`](Self::run) and [`state`](Self::state)
/// (usually `self.core.state()`); the rest follows.
#[async_trait]
pub trait Runnable: Send + Sync {
    /// Runs until `shutdown` is cancelled; returns once in-flight syncs are
    /// done.
    async fn run(&self, shutdown: CancellationToken);

    /// Whether it has started and the queues it works from.
    fn state(&self) -> &CoreState;

    /// The controller's name (its main queue's), as in logs.
    fn name(&self) -> &str {
        self.state().name()
    }

    /// Whether it is past start-up (caches synced, start-up work queued).
    fn is_started(&self) -> bool {
        self.state().is_started()
    }

    /// Whether it has started and has nothing queued, delayed or in
    /// progress.
    fn is_idle(&self) -> bool {
        self.state().is_idle()
    }

    /// The counters of its queues, for [`queues_changed`](Self::queues_changed).
    fn queue_stats(&self) -> Vec<QueueStats> {
        self.state().queue_stats()
    }

    /// Resolves once some queue's counters differ from `since`.
    async fn queues_changed(&self, since: Vec<QueueStats>) {
        self.state().queues_changed(since).await;
    }
}
