//! The plain work queue: de-duplication, one worker per key, FIFO order, shutdown and drain.
//!
//! This is the bottom layer (client-go's `queue.go`). [`DelayingQueue`](crate::DelayingQueue)
//! adds timed adds on top of it and [`RateLimitingQueue`](crate::RateLimitingQueue) adds
//! per-key backoff on top of that. Most users want the top layer; the plain queue is public for
//! those who never delay.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::hash::Hash;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::metrics::{FacadeMetricsProvider, MetricsProvider, QueueMetrics};

/// How often a named queue refreshes `workqueue_unfinished_work_seconds` and
/// `workqueue_longest_running_processor_seconds` (client-go's `defaultUnfinishedWorkUpdatePeriod`).
pub(crate) const UNFINISHED_WORK_UPDATE_PERIOD: Duration = Duration::from_millis(500);

/// The hash map of the queue's hot paths.
///
/// foldhash with a random seed per map rather than std's SipHash: the queue hashes the key
/// once in each of add, get and done, and foldhash makes the whole add+get+done cycle about a
/// third cheaper. foldhash is "minimally
/// DoS-resistant" (per-map random secrets; no input set collides for every seed), which fits
/// keys such as object names that an attacker cannot observe the hashes of.
pub(crate) type KeyMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Options shared by every queue layer.
///
/// ```
/// use ecm_workqueue::QueueConfig;
///
/// let config = QueueConfig::default().name("endpoint");
/// assert_eq!(config.name.as_deref(), Some("endpoint"));
/// ```
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct QueueConfig {
    /// Name of the queue, used as the `name` label of its metrics and in logs.
    ///
    /// Only named queues record metrics (and run the 500 ms unfinished-work task); an unnamed
    /// queue, or one named `""`, records nothing.
    pub name: Option<String>,
    /// Where a named queue's metrics go. `None` means [`FacadeMetricsProvider`], the global
    /// recorder of the `metrics` crate.
    pub metrics_provider: Option<Arc<dyn MetricsProvider>>,
}

impl QueueConfig {
    /// Names the queue; see [`QueueConfig::name`](field@QueueConfig::name).
    #[must_use]
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Sends a named queue's metrics to `provider` instead of the global `metrics` recorder.
    #[must_use]
    pub fn metrics_provider(mut self, provider: impl MetricsProvider + 'static) -> Self {
        self.metrics_provider = Some(Arc::new(provider));
        self
    }
}

impl fmt::Debug for QueueConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueueConfig")
            .field("name", &self.name)
            .field("metrics_provider", &self.metrics_provider.as_ref().map(|_| "custom"))
            .finish()
    }
}

/// A consistent snapshot of a queue's bookkeeping, for tests, simulators and dashboards.
///
/// Taken under the queue's locks, so the numbers belong to one instant: a key moving from the
/// waiting set to the ready queue is never counted in neither or in both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct QueueStats {
    /// Keys ready to be handed out by `get` (what `len()` returns).
    pub queued: usize,
    /// Keys a worker holds: handed out by `get` and not yet `done`.
    pub processing: usize,
    /// Keys held by a worker that were added again meanwhile; each goes back to the ready
    /// queue at its `done`. Always `<= processing`.
    pub requeue_on_done: usize,
    /// Keys waiting in the delay set for their `add_after` deadline (always 0 for a plain
    /// [`Queue`]).
    pub waiting: usize,
    /// Whether `shut_down` or `shut_down_with_drain` has been called.
    pub shutting_down: bool,
}

impl QueueStats {
    /// Nothing queued, nothing being processed and nothing waiting for a deadline: the queue
    /// will stay like this until someone adds a key.
    pub fn is_idle(&self) -> bool {
        self.queued == 0 && self.processing == 0 && self.waiting == 0
    }
}

/// The wake-ups of a queue's watchers, shared by all layers of one queue.
#[derive(Default)]
pub(crate) struct Signals {
    /// Notified after every change of state; serves `wait_until`.
    pub(crate) changed: Signal,
    /// Notified only when the queue may have become idle (nothing ready and nothing being
    /// processed, or the waiting set cleared) and at shutdown; serves `wait_idle` and
    /// `shut_down_with_drain`, which therefore do not wake on every add, get and done.
    pub(crate) idle: Signal,
}

/// A wake-up for tasks waiting for a condition on a queue's state.
///
/// Mutators call [`Signal::notify`] after a state change. To keep the hot path cheap it costs
/// one atomic load unless someone is watching.
#[derive(Default)]
pub(crate) struct Signal {
    /// Number of `wait_until` calls in progress.
    watchers: AtomicUsize,
    notify: Notify,
}

impl Signal {
    /// Wakes every watcher so that it re-evaluates its condition.
    pub(crate) fn notify(&self) {
        // SeqCst pairs with the fetch_add in `wait_until`: a watcher that registered before our
        // state change is seen here; one that registers after it sees the new state itself.
        if self.watchers.load(Ordering::SeqCst) != 0 {
            self.notify.notify_waiters();
        }
    }

    /// Resolves once `done()` returns true; `done` is re-evaluated after each state change.
    pub(crate) async fn wait_until(&self, mut done: impl FnMut() -> bool) {
        struct Registered<'a>(&'a AtomicUsize);
        impl Drop for Registered<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        self.watchers.fetch_add(1, Ordering::SeqCst);
        let _registered = Registered(&self.watchers);
        loop {
            // A `Notified` receives `notify_waiters` from the moment it is created, so creating
            // it before checking the condition closes the check-then-sleep race.
            let notified = pin!(self.notify.notified());
            if done() {
                return;
            }
            notified.await;
        }
    }
}

/// Bookkeeping of one key that is dirty, being processed, or both.
#[derive(Debug, Default)]
struct Item {
    /// The key needs processing: it was added and no worker has taken it since.
    dirty: bool,
    /// A worker holds the key: `get` returned it and `done` has not been called.
    processing: bool,
    /// When the key last became dirty (named queues only), for `workqueue_queue_duration_seconds`.
    added_at: Option<Instant>,
    /// When the key was handed out (named queues only), for `workqueue_work_duration_seconds`
    /// and the unfinished-work gauges.
    started_at: Option<Instant>,
}

/// Everything behind the queue's lock.
struct State<K> {
    /// The order in which keys are handed out. Every key in `ready` has an entry in `items` that
    /// is dirty and not processing, and appears in `ready` exactly once; conversely every dirty,
    /// non-processing key is in `ready`.
    ready: VecDeque<K>,
    /// Every key that is dirty, processing, or both; a key that is neither has no entry. This
    /// one map plays client-go's `dirty` and `processing` sets (and its metrics' time maps).
    items: KeyMap<K, Item>,
    /// Number of entries of `items` with `processing` set.
    processing: usize,
    /// Number of entries of `items` with both `dirty` and `processing` set: re-added while
    /// held, parked until `done`.
    parked: usize,
    /// Set by `shut_down` and `shut_down_with_drain`; never cleared. Adds are then ignored.
    shutting_down: bool,
    /// A `shut_down_with_drain` is waiting. Cleared by `shut_down`, which releases it.
    drain: bool,
    /// The unfinished-work metrics task has been spawned (named queues only).
    ticker_started: bool,
}

impl<K> State<K> {
    fn stats(&self) -> QueueStats {
        QueueStats {
            queued: self.ready.len(),
            processing: self.processing,
            requeue_on_done: self.parked,
            waiting: 0,
            shutting_down: self.shutting_down,
        }
    }
}

struct Shared<K> {
    state: Mutex<State<K>>,
    /// Wakes workers blocked in `get`: one `notify_one` per key made ready, `notify_waiters`
    /// at shutdown.
    ready: Notify,
    /// Wakes watchers of the state; shared with the layers built on this queue.
    signals: Arc<Signals>,
    /// `None` for unnamed queues, which record nothing.
    metrics: Option<Arc<QueueMetrics>>,
    name: Option<Arc<str>>,
    /// Cancelled at shutdown or when the last handle goes away; stops background tasks.
    stop: CancellationToken,
}

impl<K> Drop for Shared<K> {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// The plain work queue (client-go's `TypedInterface` / `Typed`).
///
/// A cheap-to-clone handle: clones share one queue. Guarantees:
///
/// * **Fair**: keys are handed out in the order they were added.
/// * **Stingy**: a key added many times before a worker takes it is handed out once, and a key
///   is never handed out to two workers at once. A key added while a worker holds it is
///   handed out again after that worker calls [`done`](Queue::done).
/// * **Multi-producer, multi-consumer**: every method takes `&self` and may be called from any
///   task or thread.
/// * **Shutdown**: after [`shut_down`](Queue::shut_down) adds are ignored, [`get`](Queue::get)
///   keeps handing out what is already queued and then returns `None`.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use ecm_workqueue::{Queue, QueueConfig};
///
/// let queue = Queue::new(QueueConfig::default());
/// queue.add("default/web");
/// queue.add("default/web"); // collapses into the first add
/// assert_eq!(queue.len(), 1);
///
/// let key = queue.get().await.unwrap();
/// // ... reconcile `key` ...
/// queue.done(&key);
/// queue.shut_down();
/// assert_eq!(queue.get().await, None);
/// # }
/// ```
pub struct Queue<K> {
    shared: Arc<Shared<K>>,
}

impl<K> Clone for Queue<K> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<K> fmt::Debug for Queue<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue")
            .field("name", &self.shared.name)
            .field("stats", &self.shared.state.lock().stats())
            .finish()
    }
}

/// Outcome of one non-blocking attempt to take a key.
enum Take<K> {
    Key(K),
    Empty,
    ShutDown,
}

impl<K> Queue<K>
where
    K: Clone + Eq + Hash + Send + Sync + 'static,
{
    /// Creates a queue. A named queue records client-go's metrics through the configured
    /// provider (see [`crate::metrics`]); an unnamed one records nothing.
    ///
    /// Needs no runtime to be created. A named queue spawns its 500 ms metrics task on the
    /// current Tokio runtime, if there is one, else when it first hands out a key.
    pub fn new(config: QueueConfig) -> Self {
        let QueueConfig { name, metrics_provider } = config;
        let name = name.filter(|n| !n.is_empty());
        let metrics = name.as_deref().map(|name| {
            let provider: &dyn MetricsProvider = match &metrics_provider {
                Some(p) => p.as_ref(),
                None => &FacadeMetricsProvider,
            };
            Arc::new(QueueMetrics::new(provider, name))
        });
        let queue = Self {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    ready: VecDeque::new(),
                    items: HashMap::default(),
                    processing: 0,
                    parked: 0,
                    shutting_down: false,
                    drain: false,
                    ticker_started: false,
                }),
                ready: Notify::new(),
                signals: Arc::new(Signals::default()),
                metrics,
                name: name.map(Arc::from),
                stop: CancellationToken::new(),
            }),
        };
        // Like client-go, the metrics task starts with the queue, if there is a runtime to
        // run it; otherwise with the first `get`.
        if queue.shared.metrics.is_some() && tokio::runtime::Handle::try_current().is_ok() {
            queue.shared.state.lock().ticker_started = true;
            queue.start_unfinished_work_ticker();
        }
        queue
    }

    /// Marks `key` as needing processing.
    ///
    /// * If the key is already waiting to be handed out, nothing happens.
    /// * If a worker holds it, it is handed out again after that worker's [`done`](Queue::done).
    /// * Otherwise it joins the back of the queue and one blocked [`get`](Queue::get) wakes up.
    /// * After shutdown the add is ignored.
    pub fn add(&self, key: K) {
        let mut state = self.shared.state.lock();
        let pushed = self.add_locked(&mut state, key);
        drop(state);
        if pushed {
            self.shared.ready.notify_one();
        }
        self.shared.signals.changed.notify();
    }

    /// Adds several keys under one lock acquisition (used by the delaying layer).
    pub(crate) fn add_all(&self, keys: impl IntoIterator<Item = K>) {
        let mut state = self.shared.state.lock();
        let mut pushed = 0usize;
        for key in keys {
            pushed += usize::from(self.add_locked(&mut state, key));
        }
        drop(state);
        for _ in 0..pushed {
            self.shared.ready.notify_one();
        }
        self.shared.signals.changed.notify();
    }

    /// The body of `add`; returns whether the key was pushed onto the ready queue.
    fn add_locked(&self, state: &mut State<K>, key: K) -> bool {
        if state.shutting_down {
            return false;
        }
        let now = self.shared.metrics.as_ref().map(|_| Instant::now());
        let pushed = match state.items.entry(key) {
            Entry::Occupied(mut entry) => {
                let item = entry.get_mut();
                if item.dirty {
                    return false;
                }
                // Held by a worker: park it (dirty + processing) until `done`.
                item.dirty = true;
                item.added_at = now;
                state.parked += 1;
                false
            }
            Entry::Vacant(entry) => {
                let key = entry.key().clone();
                entry.insert(Item {
                    dirty: true,
                    processing: false,
                    added_at: now,
                    started_at: None,
                });
                state.ready.push_back(key);
                true
            }
        };
        if let Some(metrics) = &self.shared.metrics {
            metrics.add();
        }
        pushed
    }

    /// Waits for a key to process and hands it to the caller, who must call
    /// [`done`](Queue::done) with it when finished.
    ///
    /// Returns `None` only once the queue is shutting down **and** has nothing queued: after a
    /// shutdown, keys already queued are still handed out. (A key re-added while held is queued
    /// again only at its `done`; a `get` that runs before that returns `None`.)
    ///
    /// Cancel-safe: a `get` dropped before it completes takes nothing from the queue.
    pub async fn get(&self) -> Option<K> {
        let mut yielded = false;
        loop {
            match self.try_take() {
                Take::Key(key) => return Some(key),
                Take::ShutDown => return None,
                Take::Empty => {}
            }
            if !yielded && yield_before_sleeping() {
                // Before going to sleep, give producers one scheduler turn. A worker that is
                // faster than its producer would otherwise sleep after every key and need a
                // wake-up (a thread unpark) per add.
                yielded = true;
                tokio::task::yield_now().await;
                continue;
            }
            // Register before the second look so that an add in between is not missed.
            let mut notified = pin!(self.shared.ready.notified());
            notified.as_mut().enable();
            match self.try_take() {
                Take::Key(key) => return Some(key),
                Take::ShutDown => return None,
                Take::Empty => notified.await,
            }
        }
    }

    fn try_take(&self) -> Take<K> {
        let mut state = self.shared.state.lock();
        let Some(key) = state.ready.pop_front() else {
            return if state.shutting_down {
                Take::ShutDown
            } else {
                Take::Empty
            };
        };
        state.processing += 1;
        let now = self.shared.metrics.as_ref().map(|_| Instant::now());
        let item = state.items.get_mut(&key);
        // Invariant of `ready`: its keys have an entry that is dirty and not processing.
        debug_assert!(item.as_ref().is_some_and(|i| i.dirty && !i.processing));
        let mut queued_for = None;
        if let Some(item) = item {
            item.dirty = false;
            item.processing = true;
            item.started_at = now;
            if let (Some(now), Some(added)) = (now, item.added_at.take()) {
                queued_for = Some(now.saturating_duration_since(added));
            }
        }
        let start_ticker = self.shared.metrics.is_some() && !state.ticker_started;
        state.ticker_started = true;
        drop(state);

        if let Some(metrics) = &self.shared.metrics {
            metrics.get(queued_for);
            if start_ticker {
                self.start_unfinished_work_ticker();
            }
        }
        self.shared.signals.changed.notify();
        Take::Key(key)
    }

    /// Marks `key` as finished. If it was added again while it was being processed, it goes
    /// back on the queue now.
    ///
    /// Calling `done` for a key that no worker holds does nothing (client-go would queue a
    /// duplicate if the key was also waiting).
    pub fn done(&self, key: &K) {
        let mut state = self.shared.state.lock();
        // One hash lookup on the common path: take the entry out, put it back if needed.
        let Some((owned_key, mut item)) = state.items.remove_entry(key) else {
            return;
        };
        if !item.processing {
            state.items.insert(owned_key, item);
            return;
        }
        item.processing = false;
        let started_at = item.started_at.take();
        let requeue = item.dirty;
        state.processing -= 1;
        if requeue {
            state.parked -= 1;
            state.ready.push_back(key.clone());
            state.items.insert(owned_key, item);
        }
        let maybe_idle = state.ready.is_empty() && state.processing == 0;
        drop(state);

        if let Some(metrics) = &self.shared.metrics {
            metrics.done(started_at.map(|s| s.elapsed()));
        }
        if requeue {
            self.shared.ready.notify_one();
        }
        self.shared.signals.changed.notify();
        if maybe_idle {
            self.shared.signals.idle.notify();
        }
    }

    /// Number of keys ready to be handed out. Keys held by workers, and keys re-added while
    /// held, are not counted. Informational only: by the time you act on it, it may have
    /// changed.
    pub fn len(&self) -> usize {
        self.shared.state.lock().ready.len()
    }

    /// Whether no key is ready to be handed out (see [`len`](Queue::len)).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of keys handed out by [`get`](Queue::get) and not yet [`done`](Queue::done).
    pub fn num_processing(&self) -> usize {
        self.shared.state.lock().processing
    }

    /// A consistent snapshot of the queue's bookkeeping.
    pub fn stats(&self) -> QueueStats {
        self.shared.state.lock().stats()
    }

    /// Nothing queued and nothing being processed.
    pub fn is_idle(&self) -> bool {
        self.stats().is_idle()
    }

    /// Stops the queue: later adds are ignored, blocked [`get`](Queue::get)s wake up, and once
    /// what is queued has been handed out `get` returns `None`. Does not wait for workers.
    ///
    /// Also releases a pending [`shut_down_with_drain`](Queue::shut_down_with_drain), which is
    /// how a second Ctrl-C forces a draining shutdown. Safe to call more than once.
    pub fn shut_down(&self) {
        let mut state = self.shared.state.lock();
        state.shutting_down = true;
        state.drain = false;
        drop(state);
        self.after_shutdown();
    }

    /// Like [`shut_down`](Queue::shut_down), then waits until every key already queued has been
    /// handed out and every handed-out key has been marked [`done`](Queue::done).
    ///
    /// Stricter than client-go, which waits only for keys being processed: here queued keys
    /// count too, `done` for a key nobody holds cannot create a duplicate, and every waiter is
    /// woken. Keys must keep being taken and finished, or this waits forever; call
    /// [`shut_down`](Queue::shut_down) to give up waiting.
    pub async fn shut_down_with_drain(&self) {
        {
            let mut state = self.shared.state.lock();
            state.shutting_down = true;
            state.drain = true;
        }
        self.after_shutdown();
        self.shared
            .signals
            .idle
            .wait_until(|| {
                let state = self.shared.state.lock();
                !state.drain || (state.ready.is_empty() && state.processing == 0)
            })
            .await;
    }

    fn after_shutdown(&self) {
        self.shared.stop.cancel();
        self.shared.ready.notify_waiters();
        self.shared.signals.changed.notify();
        self.shared.signals.idle.notify();
    }

    /// Whether [`shut_down`](Queue::shut_down) or
    /// [`shut_down_with_drain`](Queue::shut_down_with_drain) has been called.
    pub fn is_shutting_down(&self) -> bool {
        self.shared.state.lock().shutting_down
    }

    /// Waits until `condition` holds for the queue's [`stats`](Queue::stats). The condition is
    /// checked at once and then after every change of the queue's state, so no change is
    /// missed and nothing polls.
    ///
    /// To wait for "any change", capture the current stats and wait for different ones:
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let queue = ecm_workqueue::Queue::new(ecm_workqueue::QueueConfig::default());
    /// # queue.add(1u32);
    /// let before = queue.stats();
    /// # let q = queue.clone();
    /// # tokio::spawn(async move { q.get().await });
    /// queue.wait_until(|now| *now != before).await;
    /// # }
    /// ```
    pub async fn wait_until(&self, mut condition: impl FnMut(&QueueStats) -> bool) {
        self.shared
            .signals
            .changed
            .wait_until(|| condition(&self.stats()))
            .await;
    }

    /// Waits until the queue [`is_idle`](Queue::is_idle). Cheaper for the queue than
    /// `wait_until(QueueStats::is_idle)`: it is woken only when the queue may have become idle.
    pub async fn wait_idle(&self) {
        self.shared.signals.idle.wait_until(|| self.is_idle()).await;
    }

    /// The queue's name, if it has one.
    pub fn name(&self) -> Option<&str> {
        self.shared.name.as_deref()
    }

    /// The state-change signals, shared with the layers above.
    pub(crate) fn signals(&self) -> &Signals {
        &self.shared.signals
    }

    /// The metrics of a named queue.
    pub(crate) fn metrics(&self) -> Option<&Arc<QueueMetrics>> {
        self.shared.metrics.as_ref()
    }

    fn start_unfinished_work_ticker(&self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::debug!(
                queue = self.name(),
                "no Tokio runtime: unfinished-work metrics are not refreshed"
            );
            return;
        };
        let weak = Arc::downgrade(&self.shared);
        let stop = self.shared.stop.clone();
        // The period is counted from now, not from whenever the task is first polled.
        let first_tick = Instant::now() + UNFINISHED_WORK_UPDATE_PERIOD;
        runtime.spawn(unfinished_work_loop(weak, stop, first_tick));
    }
}

/// Refreshes the unfinished-work gauges every [`UNFINISHED_WORK_UPDATE_PERIOD`] until the
/// queue shuts down or is dropped.
async fn unfinished_work_loop<K>(queue: Weak<Shared<K>>, stop: CancellationToken, first_tick: Instant) {
    let mut ticker = tokio::time::interval_at(first_tick, UNFINISHED_WORK_UPDATE_PERIOD);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let Some(shared) = queue.upgrade() else {
            return;
        };
        let state = shared.state.lock();
        if state.shutting_down {
            return;
        }
        let now = Instant::now();
        let ages = state
            .items
            .values()
            .filter_map(|item| item.started_at)
            .map(|start| now.saturating_duration_since(start));
        if let Some(metrics) = &shared.metrics {
            metrics.update_unfinished_work(ages);
        }
    }
}

/// Whether [`Queue::get`] should yield once before sleeping on an empty
/// queue. On a multi-threaded runtime the yield lets a producer on another
/// worker add the next key before this one parks its thread. On a
/// current-thread runtime every task already shares the thread, so parking is
/// only a task switch, and a yield would cost an extra poll of the I/O driver
/// (an `epoll_wait`) per key.
fn yield_before_sleeping() -> bool {
    tokio::runtime::Handle::try_current()
        .is_ok_and(|rt| rt.runtime_flavor() != tokio::runtime::RuntimeFlavor::CurrentThread)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::sync::atomic::AtomicBool;
    use tokio::task::JoinSet;

    use std::future::Future;

    fn queue<K: Clone + Eq + Hash + Send + Sync + 'static>() -> Queue<K> {
        Queue::new(QueueConfig::default())
    }

    /// Polls `fut` once and says whether it completed.
    fn is_ready<F: Future>(fut: F) -> Option<F::Output> {
        futures::FutureExt::now_or_never(fut)
    }

    #[tokio::test]
    async fn keys_are_handed_out_in_the_order_they_were_added() {
        let q = queue();
        for key in ["c", "a", "b"] {
            q.add(key);
        }
        assert_eq!(q.get().await, Some("c"));
        assert_eq!(q.get().await, Some("a"));
        assert_eq!(q.get().await, Some("b"));
    }

    #[tokio::test]
    async fn len_counts_distinct_queued_keys() {
        let q = queue();
        q.add("kube-system/dns");
        assert_eq!(q.len(), 1);
        q.add("default/web");
        assert_eq!(q.len(), 2);
        q.add("kube-system/dns");
        assert_eq!(q.len(), 2, "a duplicate add must not grow the queue");
    }

    #[tokio::test]
    async fn repeated_adds_before_get_collapse_into_one() {
        let q = queue();
        for _ in 0..5 {
            q.add(7u32);
        }
        assert_eq!(q.get().await, Some(7));
        q.done(&7);
        assert!(is_ready(q.get()).is_none(), "the key must be handed out once");
        assert!(q.is_idle());
    }

    #[tokio::test]
    async fn re_add_while_processing_is_handed_out_again_after_done() {
        let q = queue();
        q.add("ns/svc");
        let key = q.get().await.unwrap();
        q.add(key);
        assert_eq!(q.len(), 0, "a held key is parked, not queued");
        assert_eq!(q.stats().requeue_on_done, 1);
        assert!(is_ready(q.get()).is_none(), "never two workers on one key");

        q.done(&key);
        assert_eq!(q.len(), 1);
        assert_eq!(q.get().await, Some("ns/svc"));
        q.done(&"ns/svc");
        assert_eq!(q.len(), 0);
        assert!(q.is_idle());
    }

    #[tokio::test]
    async fn collapse_while_processing_requeues_once() {
        let q = queue();
        q.add(1u8);
        let key = q.get().await.unwrap();
        for _ in 0..4 {
            q.add(key);
        }
        q.done(&key);
        assert_eq!(q.len(), 1);
        assert_eq!(q.get().await, Some(1));
        q.done(&1);
        assert!(is_ready(q.get()).is_none());
    }

    #[tokio::test]
    async fn done_on_a_key_nobody_holds_does_nothing() {
        let q = queue();
        q.done(&"never-added");
        q.add("queued");
        q.done(&"queued"); // queued (dirty) but not processing: client-go would duplicate it
        assert_eq!(q.len(), 1);
        assert_eq!(q.get().await, Some("queued"));
        q.done(&"queued");
        q.done(&"queued"); // a second done is a no-op too
        assert!(is_ready(q.get()).is_none());
        assert!(q.is_idle());
    }

    #[tokio::test]
    async fn get_blocks_until_a_key_is_added() {
        let q = queue::<u32>();
        let waiter = tokio::spawn({
            let q = q.clone();
            async move { q.get().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        q.add(3);
        assert_eq!(waiter.await.unwrap(), Some(3));
    }

    #[tokio::test]
    async fn a_dropped_get_takes_nothing() {
        let q = queue::<u32>();
        {
            let get = q.get();
            assert!(is_ready(get).is_none());
        }
        q.add(1);
        assert_eq!(q.get().await, Some(1));
    }

    #[tokio::test]
    async fn add_after_shut_down_is_ignored() {
        let q = queue();
        q.shut_down();
        q.add("late");
        assert_eq!(q.len(), 0);
        assert_eq!(q.get().await, None);
        assert!(q.is_shutting_down());
    }

    #[tokio::test]
    async fn get_after_shut_down_hands_out_queued_keys_then_none() {
        let q = queue();
        q.add("a");
        q.add("b");
        q.shut_down();
        assert_eq!(q.get().await, Some("a"));
        assert_eq!(q.get().await, Some("b"));
        assert_eq!(q.get().await, None);
    }

    #[tokio::test]
    async fn shut_down_wakes_every_blocked_get() {
        let q = queue::<u32>();
        let mut getters = JoinSet::new();
        for _ in 0..8 {
            let q = q.clone();
            getters.spawn(async move { q.get().await });
        }
        tokio::task::yield_now().await;
        q.shut_down();
        while let Some(got) = getters.join_next().await {
            assert_eq!(got.unwrap(), None);
        }
    }

    #[tokio::test]
    async fn shut_down_with_drain_waits_for_in_flight_keys() {
        let q = queue();
        q.add("foo");
        q.add("bar");
        let first = q.get().await.unwrap();
        let second = q.get().await.unwrap();

        let drain = tokio::spawn({
            let q = q.clone();
            async move { q.shut_down_with_drain().await }
        });
        q.wait_until(|s| s.shutting_down).await;
        assert_eq!(q.get().await, None);

        q.done(&first);
        tokio::task::yield_now().await;
        assert!(!drain.is_finished(), "one key is still in flight");
        q.done(&second);
        drain.await.unwrap();
    }

    #[tokio::test]
    async fn shut_down_with_drain_waits_for_queued_keys_too() {
        let q = queue();
        q.add("queued-1");
        q.add("queued-2");
        let mut drain = tokio::spawn({
            let q = q.clone();
            async move { q.shut_down_with_drain().await }
        });
        q.wait_until(|s| s.shutting_down).await;
        for _ in 0..3 {
            tokio::task::yield_now().await;
        }
        assert!(!drain.is_finished(), "queued keys are not drained yet");

        let key = q.get().await.unwrap();
        q.done(&key);
        assert!(is_ready(&mut drain).is_none());
        let key = q.get().await.unwrap();
        q.done(&key);
        drain.await.unwrap();
        assert_eq!(q.get().await, None);
    }

    #[tokio::test]
    async fn shut_down_without_drain_does_not_wait_for_in_flight_keys() {
        let q = queue();
        q.add("foo");
        q.add("bar");
        let _held = (q.get().await, q.get().await);
        q.shut_down(); // returns although two keys are held
        assert!(q.is_shutting_down());
        assert_eq!(q.num_processing(), 2);
    }

    #[tokio::test]
    async fn shut_down_releases_a_pending_drain() {
        let q = queue();
        q.add("foo");
        q.add("bar");
        let _held = (q.get().await, q.get().await);
        let drain = tokio::spawn({
            let q = q.clone();
            async move { q.shut_down_with_drain().await }
        });
        q.wait_until(|s| s.shutting_down).await;
        assert_eq!(q.get().await, None);
        q.shut_down(); // the second Ctrl-C
        drain.await.unwrap();
    }

    #[tokio::test]
    async fn drain_with_a_dirty_key_hands_it_out_once_more() {
        let q = queue();
        q.add("foo");
        let held = q.get().await.unwrap();
        q.add("foo");
        let mut drain = tokio::spawn({
            let q = q.clone();
            async move { q.shut_down_with_drain().await }
        });
        q.wait_until(|s| s.shutting_down).await;
        // Nothing is queued: the re-added key only comes back at `done`.
        assert_eq!(q.get().await, None);

        q.done(&held);
        let again = q.get().await;
        assert_eq!(again, Some("foo"), "the re-add must be processed");
        assert!(is_ready(&mut drain).is_none());
        q.done(&"foo");
        assert_eq!(q.get().await, None);
        drain.await.unwrap();
    }

    #[tokio::test]
    async fn drain_ignores_done_on_a_key_nobody_holds() {
        let q = queue();
        q.add("x");
        let held = q.get().await.unwrap();
        q.add("x"); // parked
        let drain = tokio::spawn({
            let q = q.clone();
            async move { q.shut_down_with_drain().await }
        });
        q.wait_until(|s| s.shutting_down).await;
        q.done(&held); // requeues "x" once
        q.done(&held); // nobody holds "x" now: must not queue a duplicate
        assert_eq!(q.len(), 1);
        assert_eq!(q.get().await, Some("x"));
        assert_eq!(q.get().await, None, "no duplicate of x");
        q.done(&"x");
        drain.await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn drain_wakes_every_waiter() {
        let q = queue::<u32>();
        for key in 0..4 {
            q.add(key);
        }
        let mut held = Vec::new();
        for _ in 0..4 {
            held.push(q.get().await.unwrap());
        }
        let mut waiters = JoinSet::new();
        for _ in 0..6 {
            let q = q.clone();
            waiters.spawn(async move { q.shut_down_with_drain().await });
        }
        for _ in 0..3 {
            let q = q.clone();
            waiters.spawn(async move { q.wait_idle().await });
        }
        for key in held {
            q.done(&key);
        }
        while let Some(res) = waiters.join_next().await {
            res.unwrap();
        }
        assert!(q.is_idle());
    }

    /// Tracks which keys are being processed and fails if one is handed out twice at once.
    #[derive(Default)]
    struct InFlight {
        keys: Mutex<HashSet<u32>>,
        violated: AtomicBool,
    }

    impl InFlight {
        fn start(&self, key: u32) {
            if !self.keys.lock().insert(key) {
                self.violated.store(true, Ordering::SeqCst);
            }
        }
        fn finish(&self, key: u32) {
            self.keys.lock().remove(&key);
        }
    }

    async fn producers_and_consumers(drain: bool) {
        const PRODUCERS: u32 = 50;
        const ROUNDS: u32 = 50;
        const CONSUMERS: usize = 10;
        let q = queue::<u32>();
        let in_flight = Arc::new(InFlight::default());
        let handed_out = Arc::new(AtomicUsize::new(0));

        let mut consumers = JoinSet::new();
        for _ in 0..CONSUMERS {
            let (q, in_flight, handed_out) = (q.clone(), in_flight.clone(), handed_out.clone());
            consumers.spawn(async move {
                while let Some(key) = q.get().await {
                    assert_ne!(key, u32::MAX, "got a key added after shutdown");
                    in_flight.start(key);
                    handed_out.fetch_add(1, Ordering::SeqCst);
                    tokio::task::yield_now().await;
                    in_flight.finish(key);
                    q.done(&key);
                }
            });
        }
        let mut producers = JoinSet::new();
        for producer in 0..PRODUCERS {
            let q = q.clone();
            producers.spawn(async move {
                for _ in 0..ROUNDS {
                    q.add(producer);
                    tokio::task::yield_now().await;
                }
            });
        }
        while let Some(res) = producers.join_next().await {
            res.unwrap();
        }
        if drain {
            q.shut_down_with_drain().await;
            assert!(q.is_idle());
        } else {
            q.shut_down();
        }
        q.add(u32::MAX);
        while let Some(res) = consumers.join_next().await {
            res.unwrap();
        }
        assert!(!in_flight.violated.load(Ordering::SeqCst));
        assert_eq!(q.len(), 0);
        let handed_out = handed_out.load(Ordering::SeqCst);
        assert!(handed_out >= PRODUCERS as usize, "every key is processed");
        assert!(handed_out <= (PRODUCERS * ROUNDS) as usize);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn many_producers_and_consumers_never_share_a_key_with_shut_down() {
        producers_and_consumers(false).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn many_producers_and_consumers_never_share_a_key_with_drain() {
        producers_and_consumers(true).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn add_while_processing_requeues_after_done() {
        // Every consumer re-adds each key it gets, up to twice per key and consumer.
        const KEYS: u32 = 50;
        let q = queue::<u32>();
        let in_flight = Arc::new(InFlight::default());
        let processed = Arc::new(Mutex::new(HashMap::<u32, usize>::new()));
        for key in 0..KEYS {
            q.add(key);
        }
        let mut consumers = JoinSet::new();
        for _ in 0..10 {
            let (q, in_flight, processed) = (q.clone(), in_flight.clone(), processed.clone());
            consumers.spawn(async move {
                let mut seen = HashMap::<u32, usize>::new();
                while let Some(key) = q.get().await {
                    in_flight.start(key);
                    *processed.lock().entry(key).or_default() += 1;
                    let count = seen.entry(key).or_default();
                    *count += 1;
                    if *count < 2 {
                        q.add(key);
                    }
                    in_flight.finish(key);
                    q.done(&key);
                }
            });
        }
        q.wait_idle().await;
        q.shut_down_with_drain().await;
        while let Some(res) = consumers.join_next().await {
            res.unwrap();
        }
        assert!(!in_flight.violated.load(Ordering::SeqCst));
        let processed = processed.lock();
        assert_eq!(processed.len(), KEYS as usize);
        assert!(processed.values().all(|&n| n >= 2), "every re-add was honoured");
        assert_eq!(q.len(), 0);
    }

    #[tokio::test]
    async fn wait_idle_returns_once_the_last_key_is_done() {
        let q = queue();
        q.wait_idle().await; // a new queue is idle
        q.add("a");
        let mut idle = tokio::spawn({
            let q = q.clone();
            async move { q.wait_idle().await }
        });
        tokio::task::yield_now().await;
        assert!(is_ready(&mut idle).is_none());
        let key = q.get().await.unwrap();
        tokio::task::yield_now().await;
        assert!(!idle.is_finished(), "a key in flight is not idle");
        q.done(&key);
        idle.await.unwrap();
        assert_eq!(
            q.stats(),
            QueueStats {
                queued: 0,
                processing: 0,
                requeue_on_done: 0,
                waiting: 0,
                shutting_down: false
            }
        );
    }

    #[tokio::test]
    async fn finished_keys_are_released() {
        // client-go's TestGarbageCollection: the queue keeps no reference after `done`.
        let key = Arc::new(String::from("big"));
        let q = queue::<Arc<String>>();
        q.add(Arc::clone(&key));
        let got = q.get().await.unwrap();
        q.done(&got);
        drop(got);
        assert_eq!(Arc::strong_count(&key), 1);
    }

    #[test]
    fn get_yields_before_sleeping_only_on_a_multi_threaded_runtime() {
        assert!(!yield_before_sleeping(), "outside a runtime");
        let current = tokio::runtime::Builder::new_current_thread().build().unwrap();
        assert!(!current.block_on(async { yield_before_sleeping() }));
        let multi = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        assert!(multi.block_on(async { yield_before_sleeping() }));
    }
}
