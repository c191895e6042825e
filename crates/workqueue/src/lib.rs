//! A rate-limited work queue for Tokio with the guarantees of client-go's `workqueue`, generic
//! over the key and free of Kubernetes types, plus the worker loop that controllers run on it.
//!
//! Controllers turn events into keys (`"namespace/name"`), add them to a queue, and run workers
//! that take keys and reconcile them. The queue guarantees:
//!
//! * **Fair**: keys are handed out in the order they were added.
//! * **Stingy**: a key added many times before a worker takes it is processed once; a key is
//!   never processed by two workers at once; a key added while it is being processed is
//!   processed again after [`done`](RateLimitingQueue::done).
//! * **Multi-producer, multi-consumer**: any task may add, any number of workers may take.
//! * **Delayed and rate-limited adds**: [`add_after`](RateLimitingQueue::add_after) (the
//!   earliest deadline wins, one timer for all waiting keys) and
//!   [`add_rate_limited`](RateLimitingQueue::add_rate_limited) with client-go's
//!   [limiters] and their exact arithmetic.
//! * **Shutdown**: [`shut_down`](RateLimitingQueue::shut_down) stops adds and lets workers
//!   finish what is queued; [`shut_down_with_drain`](RateLimitingQueue::shut_down_with_drain)
//!   also waits until every queued and in-flight key is done. Waiting keys are dropped.
//! * **Observable**: client-go's [metrics] (named queues only), and [`stats`], [`is_idle`] and
//!   [`wait_until`] / [`wait_idle`] so that tests and simulators wait for conditions instead of
//!   sleeping.
//!
//! Time is always `tokio::time::Instant`, so everything (delays, backoff, token buckets,
//! metrics) runs on Tokio's paused clock in tests (`#[tokio::test(start_paused = true)]`).
//!
//! # Example
//!
//! ```
//! use ecm_workqueue::{
//!     QueueConfig, RateLimitingQueue, RetryPolicy, default_controller_rate_limiter, run_workers,
//! };
//!
//! #[derive(Debug)]
//! struct SyncError(String);
//! impl std::fmt::Display for SyncError {
//!     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
//!         f.write_str(&self.0)
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! let queue = RateLimitingQueue::new(
//!     QueueConfig::default().name("endpoint"),
//!     default_controller_rate_limiter(),
//! );
//!
//! // Five workers, each key retried up to 15 times with backoff.
//! let workers = tokio::spawn(run_workers(
//!     queue.clone(),
//!     5,
//!     |key: String| async move {
//!         // Reconcile `key` here.
//!         if key.contains('/') { Ok(()) } else { Err(SyncError(format!("bad key {key}"))) }
//!     },
//!     RetryPolicy::default(),
//! ));
//!
//! for key in ["default/web", "default/db", "default/web"] {
//!     queue.add(key.to_owned()); // the second "default/web" collapses into the first
//! }
//! queue.wait_idle().await; // everything processed, nothing waiting for a retry
//!
//! queue.shut_down_with_drain().await;
//! workers.await.unwrap();
//! # }
//! ```
//!
//! # From client-go
//!
//! | client-go (`k8s.io/client-go/util/workqueue`) | ecm-workqueue |
//! |---|---|
//! | `NewTypedWithConfig[T](TypedQueueConfig{Name})` | [`Queue::new`]`(QueueConfig::default().name(..))` |
//! | `NewTypedDelayingQueueWithConfig` | [`DelayingQueue::new`] |
//! | `NewTypedRateLimitingQueueWithConfig(limiter, cfg)` | [`RateLimitingQueue::new`]`(cfg, limiter)` |
//! | `q.Add(item)` | [`q.add(key)`](RateLimitingQueue::add) |
//! | `item, shutdown := q.Get()` | [`q.get().await`](RateLimitingQueue::get) → `Option<K>` (`None` = shut down and empty) |
//! | `q.Done(item)` | [`q.done(&key)`](RateLimitingQueue::done) (a no-op for a key nobody holds) |
//! | `q.Len()` | [`q.len()`](RateLimitingQueue::len) |
//! | `q.ShutDown()` | [`q.shut_down()`](RateLimitingQueue::shut_down) |
//! | `q.ShutDownWithDrain()` | [`q.shut_down_with_drain().await`](RateLimitingQueue::shut_down_with_drain) (also waits for queued keys) |
//! | `q.ShuttingDown()` | [`q.is_shutting_down()`](RateLimitingQueue::is_shutting_down) |
//! | `q.AddAfter(item, d)` | [`q.add_after(key, d)`](RateLimitingQueue::add_after) |
//! | `q.AddRateLimited(item)` | [`q.add_rate_limited(key)`](RateLimitingQueue::add_rate_limited) |
//! | `q.Forget(item)` | [`q.forget(&key)`](RateLimitingQueue::forget) |
//! | `q.NumRequeues(item)` | [`q.num_requeues(&key)`](RateLimitingQueue::num_requeues) → `usize` |
//! | `TypedRateLimiter[T]` (`When`, `Forget`, `NumRequeues`) | [`RateLimiter<K>`] (`when`, `forget`, `num_requeues`) |
//! | `DefaultTypedControllerRateLimiter[T]()` | [`default_controller_rate_limiter()`] |
//! | `DefaultTypedItemBasedRateLimiter[T]()` | [`default_item_based_rate_limiter()`] |
//! | `NewTypedItemExponentialFailureRateLimiter(base, max)` | [`ItemExponentialFailure::new(base, max)`](ItemExponentialFailure::new) |
//! | `NewTypedItemFastSlowRateLimiter(fast, slow, n)` | [`ItemFastSlow::new(fast, slow, n)`](ItemFastSlow::new) |
//! | `&TypedBucketRateLimiter{rate.NewLimiter(qps, burst)}` | [`Bucket::new(qps, burst)`](Bucket::new) |
//! | `NewTypedMaxOfRateLimiter(a, b)` | [`MaxOf::new(vec![Box::new(a), Box::new(b)])`](MaxOf::new) |
//! | `NewTypedWithMaxWaitRateLimiter(l, max)` | [`WithMaxWait::new(l, max)`](WithMaxWait::new) |
//! | `MetricsProvider`, `SetProvider` | [`MetricsProvider`], [`QueueConfig::metrics_provider`](QueueConfig::metrics_provider()); default: the `metrics` facade |
//! | `processNextWorkItem` + `handleErr` with `maxRetries` | [`run_workers`] with [`RetryPolicy`] |
//! | a controller's `Run(ctx)`: workers until `ctx.Done()`, `defer queue.ShutDown()` | [`run_workers_until`] |
//! | (none) | [`stats`], [`is_idle`], [`wait_until`], [`wait_idle`], [`num_waiting`](RateLimitingQueue::num_waiting), [`next_ready_at`](RateLimitingQueue::next_ready_at) |
//!
//! Deliberate differences: `get` is async and returns `Option`; delays are `Duration`s, so
//! "negative" delays do not exist (zero adds now); the 10 s heartbeat of client-go's delaying
//! loop is not needed with Tokio timers; and the three drain defects upstream (drain ignoring
//! queued keys, missed wake-ups, `done` on an unheld key duplicating it) are fixed.
//!
//! [`stats`]: RateLimitingQueue::stats
//! [`is_idle`]: RateLimitingQueue::is_idle
//! [`wait_until`]: RateLimitingQueue::wait_until
//! [`wait_idle`]: RateLimitingQueue::wait_idle

mod delaying;
pub mod limiters;
pub mod metrics;
mod queue;
mod rate_limiting;
mod runner;

pub use delaying::DelayingQueue;
#[cfg(any(test, feature = "mock"))]
pub use limiters::MockRateLimiter;
pub use limiters::{
    Bucket, ItemExponentialFailure, ItemFastSlow, MaxOf, RateLimiter, WithMaxWait, default_controller_rate_limiter,
    default_item_based_rate_limiter,
};
pub use metrics::MetricsProvider;
pub use queue::{Queue, QueueConfig, QueueStats};
pub use rate_limiting::RateLimitingQueue;
pub use runner::{RetryPolicy, run_workers, run_workers_until};
