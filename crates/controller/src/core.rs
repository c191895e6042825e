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
use ecm_workqueue::{QueueConfig, QueueStats, RateLimiter, RateLimitingQueue, run_workers_until};
use futures::future::BoxFuture;
use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

use crate::config::BaseConfig;
use crate::sync_handler::SyncHandler;

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
pub struct CoreState {
    /// The controller's name: its main queue's.
    name: String,
    /// Set once the caches are synced and start-up work is queued; never
    /// cleared.
    started: AtomicBool,
    /// The main queue first, then any further ones; fixed after
    /// construction.
    queues: Vec<Arc<dyn QueueProbe>>,
}

impl CoreState {
    /// The controller's name, which is its main queue's (`controller` for
    /// an unnamed queue).
    pub fn name(&self) -> &str {
        &self.name
    }

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
            .field("name", &self.name)
            .field("started", &self.is_started())
            .field("queues", &self.queue_stats())
            .finish()
    }
}

/// The shell of a controller working from a queue of keys `K`. Cheap to
/// clone; clones share everything.
///
/// ```
/// use ecm_controller::{BaseConfig, ControllerCore};
/// use ecm_workqueue::{QueueConfig, RateLimitingQueue, default_controller_rate_limiter};
///
/// let queue = RateLimitingQueue::<String>::new(QueueConfig::default().name("demo"), default_controller_rate_limiter());
/// let core = ControllerCore::new(queue, BaseConfig::default());
/// core.queue().add("ns/a".to_owned());
/// assert!(!core.state().is_started() && !core.state().is_idle());
/// ```
pub struct ControllerCore<K> {
    queue: RateLimitingQueue<K>,
    config: Arc<BaseConfig>,
    registrations: Arc<Mutex<Vec<HandlerRegistration>>>,
    state: Arc<CoreState>,
}

impl<K> Clone for ControllerCore<K> {
    fn clone(&self) -> Self {
        Self {
            queue: self.queue.clone(),
            config: Arc::clone(&self.config),
            registrations: Arc::clone(&self.registrations),
            state: Arc::clone(&self.state),
        }
    }
}

impl<K> ControllerCore<K>
where
    K: Clone + Eq + Hash + Debug + Send + Sync + 'static,
{
    /// A core around `queue`, run with `config`, with no further queue.
    pub fn new(queue: RateLimitingQueue<K>, config: BaseConfig) -> Self {
        Self::with_queues(queue, config, Vec::new())
    }

    /// A core around a new queue named `name` (the controller's name, and
    /// the `name` label of its `workqueue_*` metrics) whose retries wait as
    /// `limiter` says.
    pub fn named(name: &'static str, limiter: impl RateLimiter<K> + 'static, config: BaseConfig) -> Self {
        Self::new(
            RateLimitingQueue::new(QueueConfig::default().name(name), limiter),
            config,
        )
    }

    /// A core around `queue` whose controller also works from `others`
    /// (for instance a topology queue): the controller is idle only when
    /// they are too.
    pub fn with_queues(queue: RateLimitingQueue<K>, config: BaseConfig, others: Vec<Arc<dyn QueueProbe>>) -> Self {
        let mut queues: Vec<Arc<dyn QueueProbe>> = vec![Arc::new(queue.clone())];
        queues.extend(others);
        let name = queue.name().unwrap_or("controller").to_owned();
        Self {
            queue,
            config: Arc::new(config),
            registrations: Arc::default(),
            state: Arc::new(CoreState {
                name,
                started: AtomicBool::new(false),
                queues,
            }),
        }
    }

    /// How the controller runs: workers, batch period, retries.
    pub fn config(&self) -> &BaseConfig {
        &self.config
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
    /// 4. Runs [`config().workers`](BaseConfig::workers) workers calling
    ///    [`handler.sync_recorded`](SyncHandler::sync_recorded) for each
    ///    key, retried per [`BaseConfig::retry_policy`], together with
    ///    `alongside` (further worker loops, which must end on `shutdown`
    ///    too). On shutdown the queue takes no more keys; returns once
    ///    in-flight syncs are done.
    pub async fn run<H>(
        &self,
        shutdown: &CancellationToken,
        on_synced: impl FnOnce(),
        handler: Arc<H>,
        alongside: impl Future<Output = ()>,
    ) where
        K: Display,
        H: SyncHandler<K>,
    {
        let sync = move |key: K| {
            let handler = Arc::clone(&handler);
            async move { handler.sync_recorded(&key).await }
        };
        tokio::select! {
            () = self.wait_for_sync() => {}
            () = shutdown.cancelled() => return,
        }
        on_synced();
        self.state.started.store(true, Ordering::SeqCst);
        let (name, config) = (self.state.name(), &self.config);
        tracing::info!(controller = name, workers = config.workers, ?config.batch_period, "starting controller");
        let workers = run_workers_until(
            self.queue.clone(),
            config.workers,
            sync,
            config.retry_policy(),
            shutdown.cancelled(),
        );
        tokio::join!(workers, alongside);
        tracing::info!(controller = name, "controller stopped");
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
    use ecm_workqueue::default_controller_rate_limiter;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    /// Counts syncs and recorded syncs.
    #[derive(Default)]
    struct Counter {
        synced: AtomicUsize,
        recorded: AtomicUsize,
    }

    #[async_trait::async_trait]
    impl SyncHandler<String> for Counter {
        type Error = std::convert::Infallible;

        async fn sync(&self, _key: &String) -> Result<(), Self::Error> {
            self.synced.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }

        fn record(&self, _key: &String, _result: &Result<(), Self::Error>, _took: Duration) {
            self.recorded.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn queue<K: Clone + Eq + Hash + Send + Sync + 'static>() -> RateLimitingQueue<K> {
        RateLimitingQueue::new(QueueConfig::default(), default_controller_rate_limiter())
    }

    #[tokio::test(start_paused = true)]
    async fn a_core_is_idle_only_once_started_and_every_queue_is_idle() {
        let other: RateLimitingQueue<()> = queue();
        let core = ControllerCore::<String>::with_queues(queue(), BaseConfig::default(), vec![Arc::new(other.clone())]);
        assert!(!core.state().is_idle(), "not started");
        let counter = Arc::new(Counter::default());
        let shutdown = CancellationToken::new();
        let run = tokio::spawn({
            let (core, shutdown, counter) = (core.clone(), shutdown.clone(), Arc::clone(&counter));
            async move {
                core.run(&shutdown, || {}, counter, std::future::ready(())).await;
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
        assert_eq!(counter.synced.load(Ordering::SeqCst), 1);
        assert_eq!(counter.recorded.load(Ordering::SeqCst), 1);
        other.add(());
        assert!(!core.state().is_idle(), "the other queue has work");
        assert_eq!(core.state().queue_stats().len(), 2);
        shutdown.cancel();
        run.await.unwrap();
    }
}
