//! [`run_workers`]: the worker loop every controller runs, written once, and
//! [`run_workers_until`], the same loop stopped by a shutdown signal.
//!
//! It is the loop of kube-controller-manager's endpoint controllers (`processNextWorkItem`
//! and `handleErr`), with client-go's `maxRetries` of 15 as the default, plus panic
//! isolation.

use std::any::Any;
use std::fmt::{self, Debug, Display};
use std::future::Future;
use std::hash::Hash;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures::FutureExt;
use tokio::task::JoinSet;

use crate::rate_limiting::RateLimitingQueue;

/// What [`run_workers`] does with a key whose handler failed.
///
/// ```
/// use ecm_workqueue::RetryPolicy;
///
/// assert_eq!(RetryPolicy::default().max_retries, 15);
/// let patient = RetryPolicy::default().max_retries(100);
/// assert_eq!(patient.max_retries, 100);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// How many times a failing key is re-added (rate-limited) before it is dropped; the
    /// handler therefore runs at most `max_retries + 1` times per burst of failures. The
    /// default, 15, is the endpoint controllers' `maxRetries`.
    pub max_retries: usize,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { max_retries: 15 }
    }
}

impl RetryPolicy {
    /// Sets [`max_retries`](field@RetryPolicy::max_retries).
    #[must_use]
    pub fn max_retries(mut self, max_retries: usize) -> Self {
        self.max_retries = max_retries;
        self
    }
}

/// Runs `workers` concurrent workers that feed keys from `queue` to `handler`, retrying
/// failures as [`RetryPolicy`] says. Each worker takes a key, calls the handler, and then:
///
/// * on `Ok`, [`forget`](RateLimitingQueue::forget)s the key's failures;
/// * on `Err` (or a panic), re-adds the key with
///   [`add_rate_limited`](RateLimitingQueue::add_rate_limited) (logged at debug level with the
///   key and the error) while [`num_requeues`](RateLimitingQueue::num_requeues) is below
///   [`RetryPolicy::max_retries`], and otherwise gives up: it forgets the key, logs
///   "dropping key out of the queue" at warn level and counts `workqueue_drops_total`;
/// * always calls [`done`](RateLimitingQueue::done), even if the handler panicked or the
///   runner was dropped mid-handler.
///
/// Returns once the queue is shut down and every worker has finished (with
/// [`shut_down_with_drain`](RateLimitingQueue::shut_down_with_drain), after the queued keys are
/// processed too). With `workers == 0` no key is processed and it returns at shutdown.
///
/// * Each worker is a Tokio task, so workers run in parallel on a multi-threaded runtime.
/// * A handler that panics does not take its worker down: the panic is caught, logged at
///   error level, counted in `workqueue_handler_panics_total`, and treated as an error
///   (so the key is retried). This needs `panic = "unwind"`, Rust's default.
/// * Dropping the returned future aborts the workers; keys they held are marked done.
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// use ecm_workqueue::{QueueConfig, RateLimitingQueue, RetryPolicy, run_workers};
///
/// let queue = RateLimitingQueue::new(
///     QueueConfig::default(),
///     ecm_workqueue::default_controller_rate_limiter(),
/// );
/// let runner = tokio::spawn(run_workers(
///     queue.clone(),
///     2,
///     |key: String| async move {
///         if key.is_empty() { Err("empty key") } else { Ok(()) }
///     },
///     RetryPolicy::default(),
/// ));
/// queue.add("default/web".to_owned());
/// queue.shut_down_with_drain().await;
/// runner.await.unwrap();
/// # }
/// ```
pub async fn run_workers<K, H, Fut, E>(queue: RateLimitingQueue<K>, workers: usize, handler: H, policy: RetryPolicy)
where
    K: Clone + Eq + Hash + Debug + Send + Sync + 'static,
    H: Fn(K) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
    E: Display + 'static,
{
    if workers == 0 {
        queue.wait_until(|stats| stats.shutting_down).await;
        return;
    }
    let handler = Arc::new(handler);
    let mut pool = JoinSet::new();
    for _ in 0..workers {
        pool.spawn(worker(queue.clone(), Arc::clone(&handler), policy));
    }
    while let Some(finished) = pool.join_next().await {
        if let Err(err) = finished {
            // Handler panics are caught inside the worker; this is a bug of ours or an abort.
            tracing::error!(queue = queue.name(), error = %err, "work queue worker failed");
        }
    }
}

/// [`run_workers`] until `shutdown` completes, then shuts the queue down and
/// returns once the workers have finished the keys they hold.
///
/// This is the body of a controller's `Run(ctx)`: workers take keys until the
/// context is cancelled (`defer queue.ShutDown()`). As with client-go's
/// `ShutDown`, new adds are then ignored while keys already queued are still
/// handed out; it returns once the queue is empty and no handler is running.
/// If the queue is shut down by someone else, it returns without waiting for
/// `shutdown`.
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// use ecm_workqueue::{QueueConfig, RateLimitingQueue, RetryPolicy, run_workers_until};
/// use tokio_util::sync::CancellationToken;
///
/// let queue = RateLimitingQueue::new(
///     QueueConfig::default(),
///     ecm_workqueue::default_controller_rate_limiter(),
/// );
/// let stop = CancellationToken::new();
/// let runner = tokio::spawn(run_workers_until(
///     queue.clone(),
///     2,
///     |_key: String| async { Ok::<(), std::convert::Infallible>(()) },
///     RetryPolicy::default(),
///     stop.clone().cancelled_owned(),
/// ));
/// queue.add("default/web".to_owned());
/// stop.cancel();
/// runner.await.unwrap();
/// assert!(queue.is_shutting_down());
/// # }
/// ```
pub async fn run_workers_until<K, H, Fut, E, S>(
    queue: RateLimitingQueue<K>,
    workers: usize,
    handler: H,
    policy: RetryPolicy,
    shutdown: S,
) where
    K: Clone + Eq + Hash + Debug + Send + Sync + 'static,
    H: Fn(K) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
    E: Display + 'static,
    S: Future<Output = ()>,
{
    let pool = run_workers(queue.clone(), workers, handler, policy);
    tokio::pin!(pool);
    tokio::select! {
        () = &mut pool => return,
        () = shutdown => {}
    }
    queue.shut_down();
    pool.await;
}

/// Calls `done` for the key it guards when dropped: after the handler returns, after it
/// panics, or when the worker task is aborted.
struct DoneOnDrop<'a, K: Clone + Eq + Hash + Send + Sync + 'static> {
    queue: &'a RateLimitingQueue<K>,
    key: &'a K,
}

impl<K: Clone + Eq + Hash + Send + Sync + 'static> Drop for DoneOnDrop<'_, K> {
    fn drop(&mut self) {
        self.queue.done(self.key);
    }
}

async fn worker<K, H, Fut, E>(queue: RateLimitingQueue<K>, handler: Arc<H>, policy: RetryPolicy)
where
    K: Clone + Eq + Hash + Debug + Send + Sync + 'static,
    H: Fn(K) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
    E: Display + 'static,
{
    while let Some(key) = queue.get().await {
        let _done = DoneOnDrop {
            queue: &queue,
            key: &key,
        };
        // The handler is called inside the guarded future so that a panic while building its
        // future is caught too.
        let outcome = AssertUnwindSafe(async { handler(key.clone()).await })
            .catch_unwind()
            .await;
        match outcome {
            Ok(Ok(())) => queue.forget(&key),
            Ok(Err(err)) => requeue_or_drop(&queue, &key, &err, policy),
            Err(payload) => {
                let panic = PanicMessage(payload);
                tracing::error!(
                    queue = queue.name(),
                    key = ?key,
                    panic = %panic,
                    "work queue handler panicked"
                );
                if let Some(metrics) = queue.queue().metrics() {
                    metrics.panicked();
                }
                requeue_or_drop(&queue, &key, &panic, policy);
            }
        }
    }
}

/// The error half of client-go controllers' `handleErr`.
fn requeue_or_drop<K>(queue: &RateLimitingQueue<K>, key: &K, err: &dyn Display, policy: RetryPolicy)
where
    K: Clone + Eq + Hash + Debug + Send + Sync + 'static,
{
    let requeues = queue.num_requeues(key);
    if requeues < policy.max_retries {
        tracing::debug!(
            queue = queue.name(),
            key = ?key,
            error = %err,
            requeues,
            "sync failed, retrying"
        );
        queue.add_rate_limited(key.clone());
        return;
    }
    tracing::warn!(
        queue = queue.name(),
        key = ?key,
        error = %err,
        max_retries = policy.max_retries,
        "dropping key out of the queue"
    );
    queue.forget(key);
    if let Some(metrics) = queue.queue().metrics() {
        metrics.dropped();
    }
}

/// A caught panic's payload, displayed as its message when it has one.
struct PanicMessage(Box<dyn Any + Send>);

impl Display for PanicMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(message) = self.0.downcast_ref::<&str>() {
            f.write_str(message)
        } else if let Some(message) = self.0.downcast_ref::<String>() {
            f.write_str(message)
        } else {
            f.write_str("handler panicked with a non-string payload")
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::time::Duration;

    use metrics_util::debugging::DebuggingRecorder;
    use parking_lot::Mutex;
    use tokio::sync::Notify;

    use super::*;
    use crate::QueueConfig;
    use crate::limiters::{ItemExponentialFailure, default_controller_rate_limiter};
    use crate::metrics::tests::Recorded;
    use crate::metrics::{DROPS_TOTAL, HANDLER_PANICS_TOTAL};

    fn queue<K: Clone + Eq + Hash + Send + Sync + 'static>() -> RateLimitingQueue<K> {
        RateLimitingQueue::new(QueueConfig::default(), default_controller_rate_limiter())
    }

    /// Counts handler calls per key.
    #[derive(Default)]
    struct Calls(Mutex<HashMap<&'static str, usize>>);

    impl Calls {
        fn record(&self, key: &'static str) -> usize {
            let mut calls = self.0.lock();
            let n = calls.entry(key).or_default();
            *n += 1;
            *n
        }
        fn get(&self, key: &'static str) -> usize {
            self.0.lock().get(key).copied().unwrap_or(0)
        }
    }

    #[tokio::test(start_paused = true)]
    async fn success_forgets_and_errors_retry_until_success() {
        let q = queue::<&'static str>();
        let calls = Arc::new(Calls::default());
        let runner = tokio::spawn(run_workers(
            q.clone(),
            2,
            {
                let calls = calls.clone();
                move |key| {
                    let n = calls.record(key);
                    async move {
                        if key == "flaky" && n <= 2 {
                            Err(format!("attempt {n} failed"))
                        } else {
                            Ok(())
                        }
                    }
                }
            },
            RetryPolicy::default(),
        ));
        q.add("flaky");
        q.add("fine");
        q.wait_idle().await;
        assert_eq!(calls.get("flaky"), 3);
        assert_eq!(calls.get("fine"), 1);
        assert_eq!(q.num_requeues(&"flaky"), 0, "forgotten after success");
        q.shut_down();
        runner.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_key_that_keeps_failing_is_dropped_after_max_retries() {
        let recorder = DebuggingRecorder::new();
        let mut recorded = Recorded::new(&recorder);
        let q = metrics::with_local_recorder(&recorder, || {
            RateLimitingQueue::new(
                QueueConfig::default().name("endpoint"),
                ItemExponentialFailure::new(Duration::from_millis(5), Duration::from_secs(1000)),
            )
        });
        let calls = Arc::new(Calls::default());
        let runner = tokio::spawn(run_workers(
            q.clone(),
            1,
            {
                let calls = calls.clone();
                move |key| {
                    calls.record(key);
                    async { Err::<(), _>("apiserver said no") }
                }
            },
            RetryPolicy::default().max_retries(3),
        ));
        let start = tokio::time::Instant::now();
        q.add("broken");
        q.wait_idle().await;
        assert_eq!(calls.get("broken"), 4, "one try and three retries");
        assert_eq!(
            tokio::time::Instant::now() - start,
            Duration::from_millis(5 + 10 + 20),
            "retries were rate-limited"
        );
        assert_eq!(q.num_requeues(&"broken"), 0, "forgotten when dropped");
        assert_eq!(recorded.counter(DROPS_TOTAL, "endpoint"), 1);
        assert_eq!(recorded.counter(HANDLER_PANICS_TOTAL, "endpoint"), 0);
        q.shut_down();
        runner.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_panicking_handler_is_caught_counted_and_retried() {
        let recorder = DebuggingRecorder::new();
        let mut recorded = Recorded::new(&recorder);
        let q = metrics::with_local_recorder(&recorder, || {
            RateLimitingQueue::new(
                QueueConfig::default().name("panicky"),
                default_controller_rate_limiter(),
            )
        });
        let calls = Arc::new(Calls::default());
        let runner = tokio::spawn(run_workers(
            q.clone(),
            1, // a single worker: if the panic killed it, nothing else would be processed
            {
                let calls = calls.clone();
                move |key| {
                    let n = calls.record(key);
                    assert!(!(key == "bomb" && n == 1), "boom while building the future");
                    async move {
                        assert!(!(key == "bomb" && n == 2), "boom inside the future");
                        Ok::<(), String>(())
                    }
                }
            },
            RetryPolicy::default(),
        ));
        q.add("bomb");
        q.add("after");
        q.wait_idle().await;
        assert_eq!(calls.get("bomb"), 3, "retried after both panics");
        assert_eq!(calls.get("after"), 1, "the worker survived");
        assert_eq!(recorded.counter(HANDLER_PANICS_TOTAL, "panicky"), 2);
        assert_eq!(q.num_requeues(&"bomb"), 0);
        q.shut_down();
        runner.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn returns_once_the_queue_is_shut_down() {
        let q = queue::<u32>();
        let runner = tokio::spawn(run_workers(
            q.clone(),
            4,
            |_| async { Ok::<(), String>(()) },
            RetryPolicy::default(),
        ));
        tokio::task::yield_now().await;
        assert!(!runner.is_finished());
        q.shut_down();
        runner.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn until_shuts_the_queue_down_and_finishes_what_it_holds() {
        let q = queue::<&'static str>();
        let (started, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
        let finished = Arc::new(AtomicUsize::new(0));
        let stop = tokio_util::sync::CancellationToken::new();
        let runner = tokio::spawn(run_workers_until(
            q.clone(),
            1,
            {
                let (started, release, finished) = (started.clone(), release.clone(), finished.clone());
                move |_| {
                    let (started, release, finished) = (started.clone(), release.clone(), finished.clone());
                    async move {
                        started.notify_one();
                        release.notified().await;
                        finished.fetch_add(1, Ordering::SeqCst);
                        Ok::<(), String>(())
                    }
                }
            },
            RetryPolicy::default(),
            stop.clone().cancelled_owned(),
        ));
        q.add("held");
        started.notified().await;
        q.add("queued");
        stop.cancel();
        tokio::task::yield_now().await;
        assert!(q.is_shutting_down());
        assert!(!runner.is_finished(), "returned while a key was in flight");
        release.notify_one();
        started.notified().await;
        release.notify_one();
        runner.await.unwrap();
        assert_eq!(
            finished.load(Ordering::SeqCst),
            2,
            "keys queued before shutdown are still handed out"
        );
        q.add("late");
        assert_eq!(q.len(), 0, "adds after shutdown are ignored");
    }

    #[tokio::test(start_paused = true)]
    async fn until_returns_when_the_queue_is_shut_down_elsewhere() {
        let q = queue::<u32>();
        let runner = tokio::spawn(run_workers_until(
            q.clone(),
            2,
            |_| async { Ok::<(), String>(()) },
            RetryPolicy::default(),
            std::future::pending(),
        ));
        tokio::task::yield_now().await;
        assert!(!runner.is_finished());
        q.shut_down();
        runner.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn zero_workers_process_nothing_and_return_at_shut_down() {
        let q = queue::<u32>();
        let runner = tokio::spawn(run_workers(
            q.clone(),
            0,
            |_| async { Ok::<(), String>(()) },
            RetryPolicy::default(),
        ));
        q.add(1);
        tokio::task::yield_now().await;
        assert!(!runner.is_finished());
        q.shut_down();
        runner.await.unwrap();
        assert_eq!(q.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn drain_waits_for_handlers_in_flight() {
        let q = queue::<&'static str>();
        let release = Arc::new(Notify::new());
        let started = Arc::new(AtomicUsize::new(0));
        let runner = tokio::spawn(run_workers(
            q.clone(),
            2,
            {
                let (release, started) = (release.clone(), started.clone());
                move |_key| {
                    let (release, started) = (release.clone(), started.clone());
                    async move {
                        started.fetch_add(1, Ordering::SeqCst);
                        release.notified().await;
                        Ok::<(), String>(())
                    }
                }
            },
            RetryPolicy::default(),
        ));
        q.add("a");
        q.add("b");
        q.add("c");
        q.wait_until(|s| s.processing == 2).await;
        let mut drain = tokio::spawn({
            let q = q.clone();
            async move { q.shut_down_with_drain().await }
        });
        tokio::task::yield_now().await;
        assert!(FutureExt::now_or_never(&mut drain).is_none());
        // Release handlers one at a time until all three keys are through.
        while started.load(Ordering::SeqCst) < 3 || !q.is_idle() {
            release.notify_one();
            tokio::task::yield_now().await;
        }
        drain.await.unwrap();
        runner.await.unwrap();
        assert_eq!(started.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn dropping_the_runner_marks_held_keys_done() {
        let q = queue::<u32>();
        let runner = tokio::spawn(run_workers(
            q.clone(),
            2,
            |_| std::future::pending::<Result<(), String>>(),
            RetryPolicy::default(),
        ));
        q.add(1);
        q.add(2);
        q.wait_until(|s| s.processing == 2).await;
        runner.abort();
        q.wait_idle().await;
        assert_eq!(q.num_processing(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn many_workers_never_handle_one_key_at_once() {
        const KEYS: u32 = 64;
        let q = queue::<u32>();
        let in_flight = Arc::new(Mutex::new(HashSet::new()));
        let violated = Arc::new(AtomicBool::new(false));
        let handled = Arc::new(AtomicUsize::new(0));
        let runner = tokio::spawn(run_workers(
            q.clone(),
            8,
            {
                let (q, in_flight, violated, handled) =
                    (q.clone(), in_flight.clone(), violated.clone(), handled.clone());
                move |key: u32| {
                    let (q, in_flight, violated, handled) =
                        (q.clone(), in_flight.clone(), violated.clone(), handled.clone());
                    async move {
                        if !in_flight.lock().insert(key) {
                            violated.store(true, Ordering::SeqCst);
                        }
                        // Re-add while processing: must wait for this call to finish.
                        if handled.fetch_add(1, Ordering::SeqCst) < 4 * KEYS as usize {
                            q.add(key);
                        }
                        tokio::task::yield_now().await;
                        in_flight.lock().remove(&key);
                        Ok::<(), String>(())
                    }
                }
            },
            RetryPolicy::default(),
        ));
        for key in 0..KEYS {
            q.add(key);
        }
        q.wait_until(|s| s.is_idle() && handled.load(Ordering::SeqCst) >= 4 * KEYS as usize)
            .await;
        q.shut_down();
        runner.await.unwrap();
        assert!(!violated.load(Ordering::SeqCst));
    }

    #[test]
    fn panic_messages_are_displayed() {
        assert_eq!(PanicMessage(Box::new("static")).to_string(), "static");
        assert_eq!(PanicMessage(Box::new(String::from("owned"))).to_string(), "owned");
        assert_eq!(
            PanicMessage(Box::new(42)).to_string(),
            "handler panicked with a non-string payload"
        );
    }
}
