//! The rate-limiting layer: [`RateLimitingQueue`], the queue controllers use (client-go's
//! `rate_limiting_queue.go`).

use std::fmt;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::delaying::DelayingQueue;
use crate::limiters::RateLimiter;
use crate::queue::{Queue, QueueConfig, QueueStats};

/// A [`DelayingQueue`] whose retries are paced by a [`RateLimiter`] (client-go's
/// `TypedRateLimitingInterface`). This is the handle controllers hold.
///
/// Cheap to clone (two `Arc`s); clones share one queue. Every method takes `&self`.
///
/// **Remember to call [`forget`](RateLimitingQueue::forget)** when a key succeeds or is given
/// up on; otherwise the limiter keeps counting its failures forever. [`run_workers`] does this
/// for you.
///
/// Keys are cloned when they enter the queue (and by [`run_workers`] for the handler), so for
/// busy queues prefer keys that are cheap to clone, such as `Arc<str>` or small ids.
///
/// For tests and simulators, [`stats`](RateLimitingQueue::stats),
/// [`is_idle`](RateLimitingQueue::is_idle), [`wait_idle`](RateLimitingQueue::wait_idle),
/// [`wait_until`](RateLimitingQueue::wait_until) and
/// [`next_ready_at`](RateLimitingQueue::next_ready_at) tell when the queue is quiet, without
/// sleeping: `wait_idle` returns once nothing is queued, processing or waiting for a retry, and
/// a simulator on Tokio's paused clock can `advance` to `next_ready_at` when only retries are
/// left.
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// use ecm_workqueue::{QueueConfig, RateLimitingQueue, default_controller_rate_limiter};
///
/// let queue = RateLimitingQueue::new(
///     QueueConfig::default().name("endpoint"),
///     default_controller_rate_limiter(),
/// );
/// queue.add("default/web".to_owned());
/// let key = queue.get().await.unwrap();
/// // The sync failed: retry later, 5 ms for a first failure.
/// queue.add_rate_limited(key.clone());
/// queue.done(&key);
/// assert_eq!(queue.num_requeues(&key), 1);
/// assert_eq!(queue.get().await.as_deref(), Some("default/web"));
/// // This time it worked.
/// queue.forget(&key);
/// queue.done(&key);
/// assert!(queue.is_idle());
/// # }
/// ```
///
/// [`run_workers`]: crate::run_workers
pub struct RateLimitingQueue<K> {
    delaying: DelayingQueue<K>,
    limiter: Arc<dyn RateLimiter<K>>,
}

impl<K> Clone for RateLimitingQueue<K> {
    fn clone(&self) -> Self {
        Self {
            delaying: self.delaying.clone(),
            limiter: Arc::clone(&self.limiter),
        }
    }
}

impl<K> fmt::Debug for RateLimitingQueue<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitingQueue")
            .field("queue", &self.delaying)
            .finish_non_exhaustive()
    }
}

impl<K> RateLimitingQueue<K>
where
    K: Clone + Eq + Hash + Send + Sync + 'static,
{
    /// Creates a queue whose [`add_rate_limited`](RateLimitingQueue::add_rate_limited) waits
    /// as long as `limiter` says. See [`Queue::new`] for the config.
    pub fn new(config: QueueConfig, limiter: impl RateLimiter<K> + 'static) -> Self {
        Self::with_delaying_queue(DelayingQueue::new(config), limiter)
    }

    /// Builds the rate-limiting layer on an existing delaying queue.
    pub fn with_delaying_queue(delaying: DelayingQueue<K>, limiter: impl RateLimiter<K> + 'static) -> Self {
        Self {
            delaying,
            limiter: Arc::new(limiter),
        }
    }

    /// Adds `key` after the delay the rate limiter gives it, which also counts one more
    /// failure of `key` (exactly `add_after(key, limiter.when(&key))`).
    ///
    /// Calling it again before the previous delay has passed counts another failure, so
    /// spurious calls make the backoff grow faster than the real failures warrant.
    pub fn add_rate_limited(&self, key: K) {
        let delay = self.limiter.when(&key);
        self.delaying.add_after(key, delay);
    }

    /// Tells the rate limiter to stop tracking `key` (it succeeded, or it is given up on).
    ///
    /// Only the limiter's bookkeeping is cleared: the key is not removed from the queue or the
    /// waiting set, and the caller still has to call [`done`](RateLimitingQueue::done).
    pub fn forget(&self, key: &K) {
        self.limiter.forget(key);
    }

    /// How many times `key` has been rate-limited since it was last forgotten.
    pub fn num_requeues(&self, key: &K) -> usize {
        self.limiter.num_requeues(key)
    }

    /// See [`Queue::add`].
    pub fn add(&self, key: K) {
        self.delaying.add(key);
    }

    /// See [`DelayingQueue::add_after`].
    pub fn add_after(&self, key: K, delay: Duration) {
        self.delaying.add_after(key, delay);
    }

    /// See [`Queue::get`]: waits for a key; `None` once shut down and nothing is queued.
    pub async fn get(&self) -> Option<K> {
        self.delaying.get().await
    }

    /// See [`Queue::done`].
    pub fn done(&self, key: &K) {
        self.delaying.done(key);
    }

    /// See [`Queue::len`]: keys ready to be handed out (neither held nor waiting ones).
    pub fn len(&self) -> usize {
        self.delaying.len()
    }

    /// See [`Queue::is_empty`].
    pub fn is_empty(&self) -> bool {
        self.delaying.is_empty()
    }

    /// See [`Queue::num_processing`].
    pub fn num_processing(&self) -> usize {
        self.delaying.num_processing()
    }

    /// See [`DelayingQueue::num_waiting`].
    pub fn num_waiting(&self) -> usize {
        self.delaying.num_waiting()
    }

    /// See [`DelayingQueue::next_ready_at`].
    pub fn next_ready_at(&self) -> Option<Instant> {
        self.delaying.next_ready_at()
    }

    /// See [`DelayingQueue::stats`].
    pub fn stats(&self) -> QueueStats {
        self.delaying.stats()
    }

    /// Nothing queued, being processed or waiting (see [`QueueStats::is_idle`]).
    pub fn is_idle(&self) -> bool {
        self.delaying.is_idle()
    }

    /// See [`DelayingQueue::wait_until`].
    pub async fn wait_until(&self, condition: impl FnMut(&QueueStats) -> bool) {
        self.delaying.wait_until(condition).await;
    }

    /// See [`DelayingQueue::wait_idle`].
    pub async fn wait_idle(&self) {
        self.delaying.wait_idle().await;
    }

    /// See [`DelayingQueue::shut_down`].
    pub fn shut_down(&self) {
        self.delaying.shut_down();
    }

    /// See [`DelayingQueue::shut_down_with_drain`].
    pub async fn shut_down_with_drain(&self) {
        self.delaying.shut_down_with_drain().await;
    }

    /// See [`Queue::is_shutting_down`].
    pub fn is_shutting_down(&self) -> bool {
        self.delaying.is_shutting_down()
    }

    /// See [`Queue::name`].
    pub fn name(&self) -> Option<&str> {
        self.delaying.name()
    }

    /// The delaying queue underneath.
    pub fn delaying_queue(&self) -> &DelayingQueue<K> {
        &self.delaying
    }

    /// The plain queue underneath.
    pub fn queue(&self) -> &Queue<K> {
        self.delaying.queue()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limiters::{ItemExponentialFailure, MockRateLimiter};

    const MS: Duration = Duration::from_millis(1);

    fn delay_of<K: Clone + Eq + Hash + Send + Sync + 'static>(q: &RateLimitingQueue<K>) -> Option<Duration> {
        q.next_ready_at().map(|at| at - Instant::now())
    }

    #[tokio::test(start_paused = true)]
    async fn add_rate_limited_waits_as_long_as_the_limiter_says() {
        let q = RateLimitingQueue::new(
            QueueConfig::default(),
            ItemExponentialFailure::new(MS, Duration::from_secs(1)),
        );
        q.add_rate_limited("one");
        assert_eq!(delay_of(&q), Some(MS));
        q.add_rate_limited("one");
        // Still 1 ms: the earlier deadline of the waiting key wins over the new 2 ms one.
        assert_eq!(delay_of(&q), Some(MS));
        assert_eq!(q.num_requeues(&"one"), 2);

        q.add_rate_limited("two");
        q.add_rate_limited("two");
        assert_eq!(q.num_requeues(&"two"), 2);
        assert_eq!(q.num_waiting(), 2);

        q.forget(&"one");
        assert_eq!(q.num_requeues(&"one"), 0);
        assert_eq!(q.num_waiting(), 2, "forget leaves the queue alone");

        tokio::time::advance(MS).await;
        q.wait_until(|s| s.waiting == 0).await;
        assert_eq!(q.len(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn each_retry_of_a_processed_key_waits_twice_as_long() {
        let q = RateLimitingQueue::new(
            QueueConfig::default(),
            ItemExponentialFailure::new(MS, Duration::from_secs(1)),
        );
        q.add("svc");
        for expected in [1, 2, 4, 8] {
            let key = q.get().await.unwrap();
            let start = Instant::now();
            q.add_rate_limited(key);
            assert_eq!(delay_of(&q), Some(expected * MS));
            q.done(&key);
            assert_eq!(q.get().await, Some("svc"));
            assert_eq!(Instant::now() - start, expected * MS);
            q.done(&"svc");
            q.add("svc");
        }
        q.forget(&"svc");
        let key = q.get().await.unwrap();
        q.add_rate_limited(key);
        assert_eq!(delay_of(&q), Some(MS), "forget restarts the backoff");
    }

    #[tokio::test(start_paused = true)]
    async fn the_limiter_is_consulted_once_per_call() {
        let mut limiter = MockRateLimiter::<&'static str>::new();
        limiter
            .expect_when()
            .withf(|key| *key == "k")
            .times(2)
            .return_const(Duration::ZERO);
        limiter
            .expect_forget()
            .withf(|key| *key == "k")
            .times(1)
            .return_const(());
        limiter.expect_num_requeues().times(1).return_const(2usize);
        let q = RateLimitingQueue::new(QueueConfig::default(), limiter);
        q.add_rate_limited("k");
        q.add_rate_limited("k");
        assert_eq!(q.len(), 1, "zero delay adds now, and adds collapse");
        assert_eq!(q.num_requeues(&"k"), 2);
        q.forget(&"k");
    }

    #[tokio::test(start_paused = true)]
    async fn add_rate_limited_after_shut_down_is_ignored() {
        let q = RateLimitingQueue::new(
            QueueConfig::default(),
            ItemExponentialFailure::new(MS, Duration::from_secs(1)),
        );
        q.shut_down();
        q.add_rate_limited(1u8);
        assert_eq!(q.stats().waiting, 0);
        assert_eq!(q.get().await, None);
    }

    #[tokio::test(start_paused = true)]
    async fn clones_share_one_queue() {
        let q = RateLimitingQueue::new(
            QueueConfig::default().name("shared"),
            crate::default_controller_rate_limiter(),
        );
        let other = q.clone();
        other.add(5u16);
        assert_eq!(q.len(), 1);
        assert_eq!(q.name(), Some("shared"));
        assert_eq!(q.queue().len(), 1);
        assert_eq!(q.delaying_queue().num_waiting(), 0);
    }
}
