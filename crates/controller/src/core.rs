//! [`ControllerCore`]: the shell every controller shares — its work queue,
//! the handler registrations whose initial lists it waits for, whether it has
//! started, further queues that count towards being idle, and the run loop.
//!
//! A controller owns one core and adds only what is its own: the handlers it
//! registers and the sync function the workers call. Start-up follows
//! client-go's controllers: no worker runs before every informer the
//! controller reads has delivered its initial list (`WaitForCacheSync`),
//! then `workers` workers take keys until shutdown, each key synced by one
//! worker at a time and retried with the queue's back-off on error.

use std::fmt::{Debug, Display};
use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use ecm_informer::HandlerRegistration;
use ecm_workqueue::{QueueStats, RateLimitingQueue, run_workers_until};
use futures::future::BoxFuture;
use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

use crate::config::BaseConfig;

/// A work queue seen without its key type: what [`ControllerCore`] needs to
/// tell whether a queue is idle and to wait for it to change.
pub trait QueueProbe: Send + Sync {
    /// The queue's counters now.
    fn stats(&self) -> QueueStats;
    /// Whether nothing is queued, delayed or in progress.
    fn is_idle(&self) -> bool;
    /// Resolves once the queue's counters differ from `since`.
    fn changed(&self, since: QueueStats) -> BoxFuture<'_, ()>;
}

impl<K> QueueProbe for RateLimitingQueue<K>
where
    K: Clone + Eq + Hash + Send + Sync + 'static,
{
    fn stats(&self) -> QueueStats {
        RateLimitingQueue::stats(self)
    }

    fn is_idle(&self) -> bool {
        RateLimitingQueue::is_idle(self)
    }

    fn changed(&self, since: QueueStats) -> BoxFuture<'_, ()> {
        Box::pin(self.wait_until(move |stats| *stats != since))
    }
}

/// Whether a controller has started and the queues it works from: the part
/// of a [`ControllerCore`] that does not depend on its key type, which the
/// [`Runnable`](crate::Runnable) trait reads.
#[derive(Default)]
pub struct CoreState {
    /// Set once the caches are synced and start-up work is queued; never
    /// cleared.
    started: AtomicBool,
    /// The main queue first, then any further ones; fixed after
    /// construction.
    queues: Vec<Arc<dyn QueueProbe>>,
}

impl CoreState {
    /// Whether the run loop is past its start-up: caches synced and start-up
    /// work queued. From then on an idle controller has nothing to do.
    pub fn is_started(&self) -> bool {
        self.started.load(Ordering::SeqCst)
    }

    /// Whether the controller has started and every queue is idle.
    pub fn is_idle(&self) -> bool {
        self.is_started() && self.queues.iter().all(|q| q.is_idle())
    }

    /// The counters of every queue, main queue first.
    pub fn queue_stats(&self) -> Vec<QueueStats> {
        self.queues.iter().map(|q| q.stats()).collect()
    }

    /// Resolves once some queue's counters differ from `since` (as returned
    /// by [`queue_stats`](Self::queue_stats)); at once when `since` does not
    /// fit the queues.
    pub async fn queues_changed(&self, since: Vec<QueueStats>) {
        if since.len() != self.queues.len() {
            return;
        }
        let waits = self.queues.iter().zip(since).map(|(queue, stats)| queue.changed(stats));
        futures::future::select_all(waits).await;
    }
}

impl Debug for CoreState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoreState")
            .field("started", &self.is_started())
            .field("queues", &self.queue_stats())
            .finish()
    }
}

/// The shell of a controller working from a queue of keys `K`. Cheap to
/// clone; clones share everything.
///
/// ```
/// use ecm_controller::ControllerCore;
/// use ecm_workqueue::{QueueConfig, RateLimitingQueue, default_controller_rate_limiter};
///
/// let queue = RateLimitingQueue::<String>::new(QueueConfig::default().name("demo"), default_controller_rate_limiter());
/// let core = ControllerCore::new(queue);
/// core.queue().add("ns/a".to_owned());
/// assert!(!core.state().is_started() && !core.state().is_idle());
/// ```
pub struct ControllerCore<K> {
    queue: RateLimitingQueue<K>,
    registrations: Arc<Mutex<Vec<HandlerRegistration>>>,
    state: Arc<CoreState>,
}

impl<K> Clone for ControllerCore<K> {
    fn clone(&self) -> Self {
        Self {
            queue: self.queue.clone(),
            registrations: Arc::clone(&self.registrations),
            state: Arc::clone(&self.state),
        }
    }
}

impl<K> ControllerCore<K>
where
    K: Clone + Eq + Hash + Debug + Send + Sync + 'static,
{
    /// A core around `queue`, with no further queue.
    pub fn new(queue: RateLimitingQueue<K>) -> Self {
        Self::with_queues(queue, Vec::new())
    }

    /// A core around `queue` whose controller also works from `others`
    /// (for instance a topology queue): the controller is idle only when
    /// they are too.
    pub fn with_queues(queue: RateLimitingQueue<K>, others: Vec<Arc<dyn QueueProbe>>) -> Self {
        let mut queues: Vec<Arc<dyn QueueProbe>> = vec![Arc::new(queue.clone())];
        queues.extend(others);
        Self {
            queue,
            registrations: Arc::default(),
            state: Arc::new(CoreState {
                started: AtomicBool::new(false),
                queues,
            }),
        }
    }

    /// The main work queue.
    pub fn queue(&self) -> &RateLimitingQueue<K> {
        &self.queue
    }

    /// Whether it has started and the queues it works from.
    pub fn state(&self) -> &CoreState {
        &self.state
    }

    /// Remembers a handler registration, so that [`run`](Self::run) waits
    /// for its informer's initial list. Call before `run`.
    pub fn register(&self, registration: HandlerRegistration) {
        self.registrations.lock().push(registration);
    }

    /// Waits until every registered handler has received its informer's
    /// initial list.
    pub async fn wait_for_sync(&self) {
        let registrations: Vec<HandlerRegistration> = self.registrations.lock().clone();
        for registration in &registrations {
            registration.wait_for_sync().await;
        }
    }

    /// Runs the controller until `shutdown` is cancelled.
    ///
    /// 1. Waits for [`wait_for_sync`](Self::wait_for_sync); returns at once
    ///    if `shutdown` comes first.
    /// 2. Calls `on_synced`: start-up work that needs complete caches, such
    ///    as queueing leftovers.
    /// 3. Marks the controller started.
    /// 4. Runs `config.workers` workers calling `sync` for each key, retried
    ///    per [`BaseConfig::retry_policy`], together with `alongside`
    ///    (further worker loops, which must end on `shutdown` too). On
    ///    shutdown the queue takes no more keys; returns once in-flight
    ///    syncs are done.
    pub async fn run<H, Fut, E>(
        &self,
        shutdown: &CancellationToken,
        config: &BaseConfig,
        on_synced: impl FnOnce(),
        sync: H,
        alongside: impl Future<Output = ()>,
    ) where
        H: Fn(K) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: Display + 'static,
    {
        tokio::select! {
            () = self.wait_for_sync() => {}
            () = shutdown.cancelled() => return,
        }
        on_synced();
        self.state.started.store(true, Ordering::SeqCst);
        let workers = run_workers_until(
            self.queue.clone(),
            config.workers,
            sync,
            config.retry_policy(),
            shutdown.cancelled(),
        );
        tokio::join!(workers, alongside);
    }
}

impl<K> Debug for ControllerCore<K>
where
    K: Clone + Eq + Hash + Send + Sync + 'static,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControllerCore")
            .field("queue", &self.queue.name())
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ecm_workqueue::{QueueConfig, default_controller_rate_limiter};
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    fn queue<K: Clone + Eq + Hash + Send + Sync + 'static>() -> RateLimitingQueue<K> {
        RateLimitingQueue::new(QueueConfig::default(), default_controller_rate_limiter())
    }

    #[tokio::test(start_paused = true)]
    async fn a_core_is_idle_only_once_started_and_every_queue_is_idle() {
        let other: RateLimitingQueue<()> = queue();
        let core = ControllerCore::<String>::with_queues(queue(), vec![Arc::new(other.clone())]);
        assert!(!core.state().is_idle(), "not started");
        let synced = Arc::new(AtomicUsize::new(0));
        let shutdown = CancellationToken::new();
        let run = tokio::spawn({
            let (core, shutdown, synced) = (core.clone(), shutdown.clone(), Arc::clone(&synced));
            async move {
                core.run(
                    &shutdown,
                    &BaseConfig::default(),
                    || {},
                    move |_key: String| {
                        synced.fetch_add(1, Ordering::SeqCst);
                        std::future::ready(Ok::<(), std::convert::Infallible>(()))
                    },
                    std::future::ready(()),
                )
                .await;
            }
        });
        core.queue().add("a".to_owned());
        tokio::time::timeout(Duration::from_secs(5), async {
            while !core.state().is_idle() {
                core.state().queues_changed(core.state().queue_stats()).await;
            }
        })
        .await
        .unwrap();
        assert_eq!(synced.load(Ordering::SeqCst), 1);
        other.add(());
        assert!(!core.state().is_idle(), "the other queue has work");
        assert_eq!(core.state().queue_stats().len(), 2);
        shutdown.cancel();
        run.await.unwrap();
    }
}
