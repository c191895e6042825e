//! The delaying layer: [`DelayingQueue::add_after`] (client-go's `delaying_queue.go`).
//!
//! Waiting keys live in one deadline-ordered set driven by a single background task and one
//! timer, however many keys wait. The task is spawned on the current Tokio runtime by the first
//! `add_after` with a non-zero delay, and ends at shutdown or when the last handle is dropped.

use std::collections::BTreeMap;
use std::fmt;
use std::hash::Hash;
use std::pin::pin;
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::queue::{KeyMap, Queue, QueueConfig, QueueStats};

/// Delays longer than this are shortened to it, so that deadlines stay representable
/// (about 30 years: Tokio's own "far future").
const MAX_DELAY: Duration = Duration::from_secs(86_400 * 365 * 30);

/// The keys waiting for their deadline.
struct Waiting<K> {
    /// Waiting keys ordered by deadline; the `u64` is an insertion sequence number that keeps
    /// keys with equal deadlines in the order they were added. Holds exactly the entries of
    /// `by_key`, each key once.
    by_deadline: BTreeMap<(Instant, u64), K>,
    /// Each waiting key's position in `by_deadline`.
    by_key: KeyMap<K, (Instant, u64)>,
    next_seq: u64,
    /// Set at shutdown: the sets are cleared and stay empty.
    closed: bool,
    /// The timer task has been spawned.
    timer_started: bool,
}

impl<K: Clone + Eq + Hash> Waiting<K> {
    /// Inserts `key` with deadline `at`, or moves an existing entry earlier. Returns whether
    /// `at` is now the earliest deadline of all (so the timer must be re-armed).
    fn insert(&mut self, key: K, at: Instant) -> bool {
        let seq = self.next_seq;
        self.next_seq += 1;
        match self.by_key.get_mut(&key) {
            Some(pos) if pos.0 <= at => return false, // a later deadline never postpones
            Some(pos) => {
                let old = std::mem::replace(pos, (at, seq));
                self.by_deadline.remove(&old);
                self.by_deadline.insert((at, seq), key);
            }
            None => {
                self.by_key.insert(key.clone(), (at, seq));
                self.by_deadline.insert((at, seq), key);
            }
        }
        self.by_deadline
            .first_key_value()
            .is_some_and(|(first, _)| *first == (at, seq))
    }

    /// Removes and returns every key whose deadline is at or before `now`, earliest first.
    fn take_ready(&mut self, now: Instant) -> Vec<K> {
        let mut ready = Vec::new();
        while let Some(entry) = self.by_deadline.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let key = entry.remove();
            self.by_key.remove(&key);
            ready.push(key);
        }
        ready
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.by_deadline.first_key_value().map(|((at, _), _)| *at)
    }
}

struct Shared<K> {
    waiting: Mutex<Waiting<K>>,
    /// Wakes the timer task when a new earliest deadline arrives.
    timer_wake: Arc<Notify>,
    /// Stops the timer task (shutdown, or the last handle dropped).
    timer_stop: CancellationToken,
}

impl<K> Drop for Shared<K> {
    fn drop(&mut self) {
        self.timer_stop.cancel();
    }
}

/// A [`Queue`] that can also add a key after a delay (client-go's `TypedDelayingInterface`).
///
/// Cheap to clone; clones share one queue. Lock order, for maintainers: the waiting set's lock
/// is taken before the inner queue's, never after, so a [`stats`](DelayingQueue::stats) snapshot
/// is consistent across both.
pub struct DelayingQueue<K> {
    queue: Queue<K>,
    shared: Arc<Shared<K>>,
}

impl<K> Clone for DelayingQueue<K> {
    fn clone(&self) -> Self {
        Self {
            queue: self.queue.clone(),
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<K> fmt::Debug for DelayingQueue<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DelayingQueue")
            .field("queue", &self.queue)
            .field("waiting", &self.shared.waiting.lock().by_key.len())
            .finish()
    }
}

impl<K> DelayingQueue<K>
where
    K: Clone + Eq + Hash + Send + Sync + 'static,
{
    /// Creates a delaying queue; see [`Queue::new`] for the config.
    pub fn new(config: QueueConfig) -> Self {
        Self::with_queue(Queue::new(config))
    }

    /// Builds the delaying layer on an existing plain queue (which keeps its name and metrics).
    pub fn with_queue(queue: Queue<K>) -> Self {
        Self {
            queue,
            shared: Arc::new(Shared {
                waiting: Mutex::new(Waiting {
                    by_deadline: BTreeMap::new(),
                    by_key: KeyMap::default(),
                    next_seq: 0,
                    closed: false,
                    timer_started: false,
                }),
                timer_wake: Arc::new(Notify::new()),
                timer_stop: CancellationToken::new(),
            }),
        }
    }

    /// Adds `key` once `delay` has passed.
    ///
    /// * A zero delay adds now.
    /// * If `key` is already waiting, the earlier of the two deadlines wins: a later
    ///   `add_after` never postpones a key.
    /// * A waiting key is independent of the queue: an [`add`](DelayingQueue::add) meanwhile
    ///   does not cancel it, so the key may be processed now and again at the deadline.
    /// * Ignored after shutdown, and waiting keys are dropped at shutdown.
    /// * Counts one `workqueue_retries_total` on a named queue, zero delay included.
    ///
    /// # Panics
    ///
    /// The first call with a non-zero delay spawns the timer task, and panics if it is not
    /// made from within a Tokio runtime.
    pub fn add_after(&self, key: K, delay: Duration) {
        if self.queue.is_shutting_down() {
            return;
        }
        if let Some(metrics) = self.queue.metrics() {
            metrics.retry();
        }
        if delay.is_zero() {
            self.queue.add(key);
            return;
        }
        let at = Instant::now() + delay.min(MAX_DELAY);
        let mut waiting = self.shared.waiting.lock();
        if waiting.closed {
            return;
        }
        let earliest = waiting.insert(key, at);
        if !waiting.timer_started {
            waiting.timer_started = true;
            self.spawn_timer();
        }
        drop(waiting);
        if earliest {
            self.shared.timer_wake.notify_one();
        }
        self.queue.signals().changed.notify();
    }

    /// Moves every key whose deadline has passed into the queue; returns the next deadline.
    fn fire_ready(&self) -> Option<Instant> {
        if self.queue.is_shutting_down() {
            // The plain queue was shut down directly, not through this layer: nothing waiting
            // can be added any more, so drop it (and stop the timer) as `shut_down` would.
            self.close_waiting();
            return None;
        }
        let mut waiting = self.shared.waiting.lock();
        let ready = waiting.take_ready(Instant::now());
        if !ready.is_empty() {
            // Still under the waiting lock, so no snapshot sees these keys in neither place.
            self.queue.add_all(ready);
        }
        waiting.next_deadline()
    }

    fn spawn_timer(&self) {
        let this = WeakDelaying {
            queue: self.queue.clone(),
            shared: Arc::downgrade(&self.shared),
        };
        let wake = Arc::clone(&self.shared.timer_wake);
        let stop = self.shared.timer_stop.clone();
        tokio::spawn(timer_loop(this, wake, stop));
    }

    /// Number of keys waiting for their deadline.
    pub fn num_waiting(&self) -> usize {
        self.shared.waiting.lock().by_key.len()
    }

    /// The earliest deadline among waiting keys, if any. A simulator on Tokio's paused clock can
    /// `tokio::time::advance` exactly to it.
    pub fn next_ready_at(&self) -> Option<Instant> {
        self.shared.waiting.lock().next_deadline()
    }

    /// A consistent snapshot of the queue and its waiting keys.
    pub fn stats(&self) -> QueueStats {
        let waiting = self.shared.waiting.lock();
        let mut stats = self.queue.stats();
        stats.waiting = waiting.by_key.len();
        stats
    }

    /// Nothing queued, nothing being processed and nothing waiting for a deadline.
    pub fn is_idle(&self) -> bool {
        self.stats().is_idle()
    }

    /// Waits until `condition` holds for [`stats`](DelayingQueue::stats); re-checked after
    /// every state change, waiting keys included. See [`Queue::wait_until`].
    pub async fn wait_until(&self, mut condition: impl FnMut(&QueueStats) -> bool) {
        self.queue
            .signals()
            .changed
            .wait_until(|| condition(&self.stats()))
            .await;
    }

    /// Waits until the queue [`is_idle`](DelayingQueue::is_idle), waiting keys included.
    /// Woken only when the queue may have become idle (see [`Queue::wait_idle`]).
    pub async fn wait_idle(&self) {
        self.queue.signals().idle.wait_until(|| self.is_idle()).await;
    }

    /// Drops every waiting key and stops the timer task.
    fn close_waiting(&self) {
        let mut waiting = self.shared.waiting.lock();
        waiting.closed = true;
        waiting.by_deadline.clear();
        waiting.by_key.clear();
        drop(waiting);
        self.shared.timer_stop.cancel();
        self.queue.signals().changed.notify();
        self.queue.signals().idle.notify();
    }

    /// Drops the waiting keys, then [`Queue::shut_down`].
    pub fn shut_down(&self) {
        self.close_waiting();
        self.queue.shut_down();
    }

    /// Drops the waiting keys, then [`Queue::shut_down_with_drain`]: waits until every queued
    /// and in-flight key is done.
    pub async fn shut_down_with_drain(&self) {
        self.close_waiting();
        self.queue.shut_down_with_drain().await;
    }

    /// See [`Queue::add`].
    pub fn add(&self, key: K) {
        self.queue.add(key);
    }

    /// See [`Queue::get`].
    pub async fn get(&self) -> Option<K> {
        self.queue.get().await
    }

    /// See [`Queue::done`].
    pub fn done(&self, key: &K) {
        self.queue.done(key);
    }

    /// See [`Queue::len`]; waiting keys are not counted.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// See [`Queue::is_empty`].
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// See [`Queue::num_processing`].
    pub fn num_processing(&self) -> usize {
        self.queue.num_processing()
    }

    /// See [`Queue::is_shutting_down`].
    pub fn is_shutting_down(&self) -> bool {
        self.queue.is_shutting_down()
    }

    /// See [`Queue::name`].
    pub fn name(&self) -> Option<&str> {
        self.queue.name()
    }

    /// The plain queue underneath.
    pub fn queue(&self) -> &Queue<K> {
        &self.queue
    }
}

/// What the timer task holds: the plain queue (strong, it is only a handle) and the waiting set
/// (weak, so that dropping every user handle ends the task).
struct WeakDelaying<K> {
    queue: Queue<K>,
    shared: Weak<Shared<K>>,
}

async fn timer_loop<K>(this: WeakDelaying<K>, wake: Arc<Notify>, stop: CancellationToken)
where
    K: Clone + Eq + Hash + Send + Sync + 'static,
{
    loop {
        let mut woken = pin!(wake.notified());
        woken.as_mut().enable();
        let next = {
            let Some(shared) = this.shared.upgrade() else {
                return;
            };
            DelayingQueue {
                queue: this.queue.clone(),
                shared,
            }
            .fire_ready()
        };
        match next {
            Some(at) => {
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = woken => {}
                    () = tokio::time::sleep_until(at) => {}
                }
            }
            None => {
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = woken => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue<K: Clone + Eq + Hash + Send + Sync + 'static>() -> DelayingQueue<K> {
        DelayingQueue::new(QueueConfig::default())
    }

    /// Moves the paused clock and waits (by condition) until the timer task has fired
    /// everything that is due.
    async fn advance<K: Clone + Eq + Hash + Send + Sync + 'static>(q: &DelayingQueue<K>, by: Duration) {
        tokio::time::advance(by).await;
        let now = Instant::now();
        q.wait_until(|_| q.next_ready_at().is_none_or(|at| at > now)).await;
    }

    #[tokio::test(start_paused = true)]
    async fn add_after_waits_until_the_deadline() {
        let q = queue();
        q.add_after("web", Duration::from_millis(50));
        assert_eq!(q.num_waiting(), 1);
        assert_eq!(q.len(), 0, "must not be added yet");

        advance(&q, Duration::from_millis(49)).await;
        assert_eq!((q.len(), q.num_waiting()), (0, 1));

        advance(&q, Duration::from_millis(1)).await;
        assert_eq!((q.len(), q.num_waiting()), (1, 0));
        let key = q.get().await.unwrap();
        q.done(&key);

        advance(&q, Duration::from_secs(10)).await;
        assert_eq!(q.len(), 0, "fires once");
        assert!(q.is_idle());
    }

    #[tokio::test(start_paused = true)]
    async fn earliest_deadline_wins_and_a_later_one_never_postpones() {
        let q = queue();
        q.add_after("svc", Duration::from_millis(50));
        q.add_after("svc", Duration::from_millis(70));
        assert_eq!(q.num_waiting(), 1);

        advance(&q, Duration::from_millis(60)).await;
        assert_eq!(q.len(), 1, "fires at the first deadline");
        let key = q.get().await.unwrap();
        q.done(&key);
        advance(&q, Duration::from_millis(20)).await;
        assert_eq!(q.len(), 0, "the later deadline was merged, not kept");
        assert!(q.is_idle());

        // The other way round: the earlier deadline overrides.
        q.add_after("svc", Duration::from_millis(50));
        q.add_after("svc", Duration::from_millis(30));
        assert_eq!(q.num_waiting(), 1);
        assert_eq!(q.next_ready_at(), Some(Instant::now() + Duration::from_millis(30)));
        advance(&q, Duration::from_millis(40)).await;
        assert_eq!(q.len(), 1);
        let key = q.get().await.unwrap();
        q.done(&key);
        advance(&q, Duration::from_millis(20)).await;
        assert_eq!(q.len(), 0);
        assert!(q.is_idle());
    }

    #[tokio::test(start_paused = true)]
    async fn an_earlier_key_fires_before_a_later_one_added_first() {
        let q = queue();
        q.add_after("slow", Duration::from_secs(1));
        q.add_after("fast", Duration::from_millis(50));
        assert_eq!(q.num_waiting(), 2);

        advance(&q, Duration::from_millis(60)).await;
        assert_eq!((q.len(), q.num_waiting()), (1, 1));
        assert_eq!(q.get().await, Some("fast"));

        q.add_after("later", Duration::from_secs(2));
        advance(&q, Duration::from_secs(1)).await;
        assert_eq!((q.len(), q.num_waiting()), (1, 1));
        assert_eq!(q.get().await, Some("slow"));

        advance(&q, Duration::from_secs(2)).await;
        assert_eq!((q.len(), q.num_waiting()), (1, 0));
        assert_eq!(q.get().await, Some("later"));
    }

    #[tokio::test(start_paused = true)]
    async fn keys_due_together_are_queued_in_deadline_order() {
        let q = queue();
        q.add_after("first-added", Duration::from_secs(1));
        q.add_after("second-added", Duration::from_millis(500));
        q.add_after("third-added", Duration::from_millis(250));
        assert_eq!(q.num_waiting(), 3);

        advance(&q, Duration::from_secs(2)).await;
        assert_eq!(q.len(), 3);
        assert_eq!(q.get().await, Some("third-added"));
        assert_eq!(q.get().await, Some("second-added"));
        assert_eq!(q.get().await, Some("first-added"));
    }

    #[tokio::test(start_paused = true)]
    async fn zero_delay_adds_now() {
        let q = queue();
        q.add_after(1u8, Duration::ZERO);
        assert_eq!((q.len(), q.num_waiting()), (1, 0));
        assert_eq!(q.get().await, Some(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_direct_add_does_not_cancel_a_waiting_key() {
        let q = queue();
        q.add_after("k", Duration::from_secs(1));
        q.add("k");
        assert_eq!((q.len(), q.num_waiting()), (1, 1));
        let key = q.get().await.unwrap();
        q.done(&key);
        advance(&q, Duration::from_secs(1)).await;
        assert_eq!(q.get().await, Some("k"), "processed again at the deadline");
    }

    #[tokio::test(start_paused = true)]
    async fn a_key_due_while_held_is_processed_after_done() {
        let q = queue();
        q.add("k");
        let key = q.get().await.unwrap();
        q.add_after("k", Duration::from_millis(10));
        advance(&q, Duration::from_millis(10)).await;
        assert_eq!(q.stats().requeue_on_done, 1);
        q.done(&key);
        assert_eq!(q.get().await, Some("k"));
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_keys_are_dropped_at_shut_down() {
        let q = queue();
        q.add_after("a", Duration::from_secs(1));
        q.add_after("b", Duration::from_secs(2));
        q.add("now");
        q.shut_down();
        assert_eq!(q.num_waiting(), 0);
        q.add_after("c", Duration::from_secs(1));
        assert_eq!(q.num_waiting(), 0, "ignored after shutdown");
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(q.get().await, Some("now"));
        assert_eq!(q.get().await, None);
    }

    #[tokio::test(start_paused = true)]
    async fn drain_drops_waiting_keys_and_waits_for_the_rest() {
        let q = queue();
        q.add_after("later", Duration::from_secs(1));
        q.add("now");
        let key = q.get().await.unwrap();
        let drain = tokio::spawn({
            let q = q.clone();
            async move { q.shut_down_with_drain().await }
        });
        q.wait_until(|s| s.shutting_down).await;
        assert_eq!(q.num_waiting(), 0);
        q.done(&key);
        drain.await.unwrap();
        assert!(q.is_idle());
    }

    #[tokio::test(start_paused = true)]
    async fn many_waiting_keys_share_one_timer_task() {
        let alive = tokio::runtime::Handle::current().metrics().num_alive_tasks();
        let q = queue::<u32>();
        for key in 0..1000 {
            q.add_after(key, Duration::from_millis(u64::from(key % 97) + 1));
        }
        assert_eq!(q.num_waiting(), 1000);
        assert_eq!(tokio::runtime::Handle::current().metrics().num_alive_tasks(), alive + 1);
        advance(&q, Duration::from_millis(97)).await;
        assert_eq!((q.len(), q.num_waiting()), (1000, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn the_timer_task_ends_with_the_last_handle() {
        let alive = tokio::runtime::Handle::current().metrics().num_alive_tasks();
        let q = queue::<u32>();
        q.add_after(1, Duration::from_secs(60));
        assert_eq!(tokio::runtime::Handle::current().metrics().num_alive_tasks(), alive + 1);
        drop(q);
        for _ in 0..4 {
            tokio::task::yield_now().await;
        }
        assert_eq!(tokio::runtime::Handle::current().metrics().num_alive_tasks(), alive);
    }

    #[tokio::test(start_paused = true)]
    async fn stats_count_waiting_keys_and_wait_idle_covers_them() {
        let q = queue();
        q.add_after("w", Duration::from_secs(3));
        let stats = q.stats();
        assert_eq!((stats.queued, stats.processing, stats.waiting), (0, 0, 1));
        assert!(!q.is_idle(), "a waiting key is pending work");

        let idle = tokio::spawn({
            let q = q.clone();
            async move { q.wait_idle().await }
        });
        // Run the clock until the key is due, take it and finish it.
        advance(&q, Duration::from_secs(3)).await;
        let key = q.get().await.unwrap();
        assert!(!idle.is_finished());
        q.done(&key);
        idle.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn shutting_down_the_inner_queue_drops_waiting_keys_at_the_next_deadline() {
        let q = queue();
        q.add_after("w", Duration::from_secs(1));
        q.queue().shut_down();
        q.add_after("x", Duration::from_secs(1));
        assert_eq!(q.num_waiting(), 1, "ignored: the queue is shutting down");
        tokio::time::advance(Duration::from_secs(1)).await;
        q.wait_idle().await;
        assert_eq!(q.get().await, None);
    }

    #[tokio::test(start_paused = true)]
    async fn huge_delays_do_not_overflow() {
        let q = queue();
        q.add_after("forever", Duration::MAX);
        assert_eq!(q.num_waiting(), 1);
        assert!(q.next_ready_at().unwrap() > Instant::now() + Duration::from_secs(86_400 * 365));
    }
}
