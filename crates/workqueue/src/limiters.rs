//! Rate limiters: how long a key waits before it is retried (client-go's
//! `default_rate_limiters.go`).
//!
//! | limiter | delay of a `when` call | `num_requeues` |
//! |---|---|---|
//! | [`ItemExponentialFailure`] | `base × 2^failures`, capped at `max` | failures of the key |
//! | [`ItemFastSlow`] | `fast` for the first `max_fast_attempts` failures, then `slow` | failures of the key |
//! | [`Bucket`] | one token bucket for all keys: 0 while tokens last, then growing with the debt | always 0 |
//! | [`MaxOf`] | the largest delay of all its limiters (each one is called) | the largest |
//! | [`WithMaxWait`] | the wrapped limiter's delay, capped | the wrapped one's |
//!
//! Presets: [`default_controller_rate_limiter`] (what most kube-controller-manager controllers
//! use, the Endpoints controller among them) and [`default_item_based_rate_limiter`]. Presets of
//! one controller live beside that controller.
//!
//! Every limiter that counts failures keeps an entry per key until [`RateLimiter::forget`]:
//! **remember to call `forget`** when a key succeeds or is given up on, or the map grows and the
//! key's backoff stays high.

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

/// Decides how long a key waits before it is added again (client-go's `TypedRateLimiter`).
///
/// Implementations are shared by every worker, so they take `&self` and lock inside.
pub trait RateLimiter<K>: Send + Sync {
    /// Records one more failure of `key` and returns how long it should wait.
    fn when(&self, key: &K) -> Duration;
    /// Stops tracking `key`: its failures are cleared, whether it finally succeeded or was
    /// given up on.
    fn forget(&self, key: &K);
    /// How many failures of `key` are being tracked.
    fn num_requeues(&self, key: &K) -> usize;
}

#[cfg(any(test, feature = "mock"))]
mockall::mock! {
    /// A [`RateLimiter`] with `mockall` expectations, for tests (feature `mock`).
    pub RateLimiter<K: Send + Sync + 'static> {}

    impl<K: Send + Sync + 'static> RateLimiter<K> for RateLimiter<K> {
        fn when(&self, key: &K) -> Duration;
        fn forget(&self, key: &K);
        fn num_requeues(&self, key: &K) -> usize;
    }
}

impl<K, L: RateLimiter<K> + ?Sized> RateLimiter<K> for Box<L> {
    fn when(&self, key: &K) -> Duration {
        (**self).when(key)
    }
    fn forget(&self, key: &K) {
        (**self).forget(key);
    }
    fn num_requeues(&self, key: &K) -> usize {
        (**self).num_requeues(key)
    }
}

impl<K, L: RateLimiter<K> + ?Sized> RateLimiter<K> for std::sync::Arc<L> {
    fn when(&self, key: &K) -> Duration {
        (**self).when(key)
    }
    fn forget(&self, key: &K) {
        (**self).forget(key);
    }
    fn num_requeues(&self, key: &K) -> usize {
        (**self).num_requeues(key)
    }
}

/// The rate limiter of most kube-controller-manager controllers, the Endpoints controller
/// among them (client-go's `DefaultTypedControllerRateLimiter`): the larger of a per-key
/// exponential backoff from 5 ms to 1000 s and a 10 qps / 100 burst bucket shared by all keys.
///
/// Over 15 retries a key waits 5 ms, 10 ms, … up to about 82 s.
pub fn default_controller_rate_limiter<K>() -> MaxOf<K>
where
    K: Clone + Eq + Hash + Send + Sync + 'static,
{
    MaxOf::new(vec![
        Box::new(ItemExponentialFailure::new(
            Duration::from_millis(5),
            Duration::from_secs(1000),
        )),
        Box::new(Bucket::new(10.0, 100)),
    ])
}

/// A per-key exponential backoff from 1 ms to 1000 s (client-go's
/// `DefaultTypedItemBasedRateLimiter`).
pub fn default_item_based_rate_limiter<K>() -> ItemExponentialFailure<K>
where
    K: Clone + Eq + Hash + Send + Sync,
{
    ItemExponentialFailure::new(Duration::from_millis(1), Duration::from_secs(1000))
}

/// Per-key exponential backoff: the n-th failure of a key (counting from 0) waits
/// `base × 2^n`, at most `max` (client-go's `TypedItemExponentialFailureRateLimiter`).
///
/// The first failure waits `base`. The arithmetic is client-go's: done in `f64`
/// nanoseconds, and anything that would not fit a signed 64-bit nanosecond count returns `max`.
pub struct ItemExponentialFailure<K> {
    failures: Mutex<HashMap<K, usize>>,
    base: Duration,
    max: Duration,
}

impl<K> ItemExponentialFailure<K> {
    /// A backoff from `base` doubling up to `max`.
    pub fn new(base: Duration, max: Duration) -> Self {
        Self {
            failures: Mutex::new(HashMap::new()),
            base,
            max,
        }
    }
}

impl<K> fmt::Debug for ItemExponentialFailure<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ItemExponentialFailure")
            .field("base", &self.base)
            .field("max", &self.max)
            .field("tracked", &self.failures.lock().len())
            .finish()
    }
}

/// `base × 2^exp` with client-go's overflow rules.
fn exponential_backoff(base: Duration, max: Duration, exp: usize) -> Duration {
    // Like client-go: float nanoseconds; an exponent past 1023 gives infinity, which the
    // overflow check turns into `max`.
    let exp = i32::try_from(exp).unwrap_or(i32::MAX);
    let backoff = base.as_nanos() as f64 * 2f64.powi(exp);
    // client-go compares against MaxInt64, which as a float is 2^63.
    if backoff > i64::MAX as f64 {
        return max;
    }
    // NaN (a zero base times infinity) becomes 0, a base of zero's natural answer. Exactly
    // 2^63 ns fits a u64 here, where Go's conversion would overflow; it is above any `max` a
    // Duration of client-go can hold, so it is capped below.
    let calculated = Duration::from_nanos(backoff as u64);
    calculated.min(max)
}

impl<K> RateLimiter<K> for ItemExponentialFailure<K>
where
    K: Clone + Eq + Hash + Send + Sync,
{
    fn when(&self, key: &K) -> Duration {
        let exp = {
            let mut failures = self.failures.lock();
            let count = failures.entry(key.clone()).or_insert(0);
            let exp = *count;
            *count += 1;
            exp
        };
        exponential_backoff(self.base, self.max, exp)
    }

    fn forget(&self, key: &K) {
        self.failures.lock().remove(key);
    }

    fn num_requeues(&self, key: &K) -> usize {
        self.failures.lock().get(key).copied().unwrap_or(0)
    }
}

/// A few quick retries, then slow ones: the first `max_fast_attempts` failures of a key wait
/// `fast`, later ones `slow` (client-go's `TypedItemFastSlowRateLimiter`).
pub struct ItemFastSlow<K> {
    failures: Mutex<HashMap<K, usize>>,
    fast: Duration,
    slow: Duration,
    max_fast_attempts: usize,
}

impl<K> ItemFastSlow<K> {
    /// `fast` for the first `max_fast_attempts` failures of a key, `slow` afterwards.
    pub fn new(fast: Duration, slow: Duration, max_fast_attempts: usize) -> Self {
        Self {
            failures: Mutex::new(HashMap::new()),
            fast,
            slow,
            max_fast_attempts,
        }
    }
}

impl<K> fmt::Debug for ItemFastSlow<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ItemFastSlow")
            .field("fast", &self.fast)
            .field("slow", &self.slow)
            .field("max_fast_attempts", &self.max_fast_attempts)
            .field("tracked", &self.failures.lock().len())
            .finish()
    }
}

impl<K> RateLimiter<K> for ItemFastSlow<K>
where
    K: Clone + Eq + Hash + Send + Sync,
{
    fn when(&self, key: &K) -> Duration {
        let mut failures = self.failures.lock();
        let count = failures.entry(key.clone()).or_insert(0);
        *count += 1;
        if *count <= self.max_fast_attempts {
            self.fast
        } else {
            self.slow
        }
    }

    fn forget(&self, key: &K) {
        self.failures.lock().remove(key);
    }

    fn num_requeues(&self, key: &K) -> usize {
        self.failures.lock().get(key).copied().unwrap_or(0)
    }
}

/// One token bucket for all keys, with reservation semantics (client-go's
/// `TypedBucketRateLimiter` over `golang.org/x/time/rate`'s `Reserve().Delay()`).
///
/// The bucket holds up to `burst` tokens and refills at `qps` tokens per second. **Every**
/// `when` takes a token, even when none is left: the balance then goes into debt and the
/// returned delay is the time until the debt is repaid, so successive calls at one instant wait
/// 0 (while tokens last), then `1/qps`, `2/qps`, … without bound. With 10 qps / 100 burst,
/// 10 000 immediate requeues put the last key about 16 minutes out. (`governor` cannot model
/// this debt, hence this type.)
///
/// `forget` does nothing and `num_requeues` is always 0. `qps` of `+∞` never delays; a `qps`
/// that is zero, negative or NaN, or a `burst` of 0, delays every call "forever" (client-go's
/// `InfDuration`, about 292 years; queues cap delays at about 30 years).
/// Time is Tokio's, so the paused test clock drives the bucket.
#[derive(Debug)]
pub struct Bucket {
    qps: f64,
    burst: usize,
    state: Mutex<BucketState>,
}

#[derive(Debug)]
struct BucketState {
    /// Tokens at `last`; negative when in debt.
    tokens: f64,
    /// When `tokens` was last brought up to date; `None` before the first call, when the
    /// bucket is full.
    last: Option<Instant>,
}

/// Go's `rate.InfDuration`: the largest `time.Duration`.
const INF_DURATION: Duration = Duration::from_nanos(i64::MAX as u64);

impl Bucket {
    /// A bucket of `burst` tokens refilled at `qps` tokens per second, starting full.
    pub fn new(qps: f64, burst: usize) -> Self {
        Self {
            qps,
            burst,
            state: Mutex::new(BucketState {
                tokens: 0.0,
                last: None,
            }),
        }
    }

    /// Takes a token at `now` and returns how long the caller must wait for it.
    fn reserve(&self, now: Instant) -> Duration {
        if self.qps == f64::INFINITY {
            return Duration::ZERO;
        }
        if self.burst == 0 {
            // x/time/rate refuses the reservation; its delay is InfDuration.
            return INF_DURATION;
        }
        let limited = self.qps > 0.0; // false for 0, negative and NaN
        let mut state = self.state.lock();
        let burst = self.burst as f64;
        let mut tokens = match state.last {
            // A never-used limiter is full (Go's zero `last` is infinitely long ago).
            None if limited => burst,
            None => state.tokens,
            Some(last) => {
                let elapsed = now.saturating_duration_since(last);
                let refill = if limited { elapsed.as_secs_f64() * self.qps } else { 0.0 };
                (state.tokens + refill).min(burst)
            }
        };
        tokens -= 1.0;
        state.tokens = tokens;
        state.last = Some(now);
        if tokens >= 0.0 {
            return Duration::ZERO;
        }
        if !limited {
            return INF_DURATION;
        }
        let nanos = (-tokens / self.qps) * 1e9;
        if nanos > i64::MAX as f64 {
            return INF_DURATION;
        }
        Duration::from_nanos(nanos as u64)
    }
}

impl<K> RateLimiter<K> for Bucket {
    fn when(&self, _key: &K) -> Duration {
        self.reserve(Instant::now())
    }

    fn forget(&self, _key: &K) {}

    fn num_requeues(&self, _key: &K) -> usize {
        0
    }
}

/// The worst case of several limiters (client-go's `TypedMaxOfRateLimiter`).
///
/// `when` calls **every** limiter and returns the largest delay, so a [`Bucket`] inside spends
/// a token even when a per-key backoff dominates (the burst can therefore seem exceeded when
/// some keys were delayed longer). `num_requeues` is the largest of all; `forget` reaches all.
pub struct MaxOf<K> {
    limiters: Vec<Box<dyn RateLimiter<K>>>,
}

impl<K> MaxOf<K> {
    /// The worst case of `limiters`.
    pub fn new(limiters: Vec<Box<dyn RateLimiter<K>>>) -> Self {
        Self { limiters }
    }

    /// Adds one more limiter.
    #[must_use]
    pub fn with(mut self, limiter: impl RateLimiter<K> + 'static) -> Self {
        self.limiters.push(Box::new(limiter));
        self
    }
}

impl<K> fmt::Debug for MaxOf<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MaxOf").field("limiters", &self.limiters.len()).finish()
    }
}

impl<K> RateLimiter<K> for MaxOf<K> {
    fn when(&self, key: &K) -> Duration {
        // Deliberately not `max()` over a short-circuiting iterator: every limiter must count.
        let mut worst = Duration::ZERO;
        for limiter in &self.limiters {
            worst = worst.max(limiter.when(key));
        }
        worst
    }

    fn forget(&self, key: &K) {
        for limiter in &self.limiters {
            limiter.forget(key);
        }
    }

    fn num_requeues(&self, key: &K) -> usize {
        self.limiters.iter().map(|l| l.num_requeues(key)).max().unwrap_or(0)
    }
}

/// Caps another limiter's delay at `max_wait` (client-go's `TypedWithMaxWaitRateLimiter`),
/// e.g. to keep a [`Bucket`]'s debt from pushing keys minutes out.
#[derive(Debug)]
pub struct WithMaxWait<L> {
    inner: L,
    max_wait: Duration,
}

impl<L> WithMaxWait<L> {
    /// `inner`'s delays, never longer than `max_wait`.
    pub fn new(inner: L, max_wait: Duration) -> Self {
        Self { inner, max_wait }
    }
}

impl<K, L: RateLimiter<K>> RateLimiter<K> for WithMaxWait<L> {
    fn when(&self, key: &K) -> Duration {
        self.inner.when(key).min(self.max_wait)
    }

    fn forget(&self, key: &K) {
        self.inner.forget(key);
    }

    fn num_requeues(&self, key: &K) -> usize {
        self.inner.num_requeues(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn exponential_doubles_per_failure_and_forget_resets() {
        let limiter = ItemExponentialFailure::new(MS, Duration::from_secs(1));
        for expected in [1, 2, 4, 8, 16] {
            assert_eq!(limiter.when(&"default/a"), expected * MS);
        }
        assert_eq!(limiter.num_requeues(&"default/a"), 5);

        assert_eq!(limiter.when(&"default/b"), MS);
        assert_eq!(limiter.when(&"default/b"), 2 * MS);
        assert_eq!(limiter.num_requeues(&"default/b"), 2);

        limiter.forget(&"default/a");
        assert_eq!(limiter.num_requeues(&"default/a"), 0);
        assert_eq!(limiter.when(&"default/a"), MS);
        assert_eq!(limiter.num_requeues(&"default/b"), 2, "other keys untouched");
    }

    #[test]
    fn exponential_caps_at_max() {
        let limiter = ItemExponentialFailure::new(MS, 10 * MS);
        let delays: Vec<_> = (0..6).map(|_| limiter.when(&1u8)).collect();
        assert_eq!(delays, [MS, 2 * MS, 4 * MS, 8 * MS, 10 * MS, 10 * MS]);
    }

    #[test]
    fn exponential_never_overflows() {
        let limiter = ItemExponentialFailure::new(MS, Duration::from_secs(1000));
        for _ in 0..5 {
            limiter.when(&"one");
        }
        assert_eq!(limiter.when(&"one"), 32 * MS);
        for _ in 0..1000 {
            limiter.when(&"overflow");
        }
        assert_eq!(limiter.when(&"overflow"), Duration::from_secs(1000));

        let minute = Duration::from_secs(60);
        let limiter = ItemExponentialFailure::new(minute, 1000 * 60 * minute);
        limiter.when(&"two");
        limiter.when(&"two");
        assert_eq!(limiter.when(&"two"), 4 * minute);
        for _ in 0..1000 {
            limiter.when(&"overflow");
        }
        assert_eq!(limiter.when(&"overflow"), 1000 * 60 * minute);
    }

    #[test]
    fn exponential_edges_follow_the_float_rules() {
        // 2^62 ns fits, 2^63 ns is past MaxInt64 once as a float: both capped by a large max.
        let big = Duration::from_secs(u64::MAX / 4);
        assert_eq!(
            exponential_backoff(Duration::from_nanos(1), big, 62),
            Duration::from_nanos(1 << 62)
        );
        assert_eq!(exponential_backoff(Duration::from_nanos(1), big, 64), big);
        assert_eq!(exponential_backoff(Duration::ZERO, big, 5000), Duration::ZERO);
        assert_eq!(exponential_backoff(MS, big, usize::MAX), big);
    }

    #[test]
    fn default_controller_limiter_spans_5ms_to_82s_over_15_retries() {
        let limiter = default_controller_rate_limiter::<&str>();
        let delays: Vec<_> = (0..15).map(|_| limiter.when(&"ns/svc")).collect();
        assert_eq!(delays[0], 5 * MS);
        assert_eq!(delays[1], 10 * MS);
        assert_eq!(delays[14], 5 * MS * (1 << 14)); // 81.92 s
        assert_eq!(limiter.num_requeues(&"ns/svc"), 15);
    }

    #[test]
    fn fast_then_slow() {
        let limiter = ItemFastSlow::new(5 * MS, Duration::from_secs(10), 3);
        let delays: Vec<_> = (0..5).map(|_| limiter.when(&"one")).collect();
        let slow = Duration::from_secs(10);
        assert_eq!(delays, [5 * MS, 5 * MS, 5 * MS, slow, slow]);
        assert_eq!(limiter.num_requeues(&"one"), 5);

        assert_eq!(limiter.when(&"two"), 5 * MS);
        assert_eq!(limiter.when(&"two"), 5 * MS);
        assert_eq!(limiter.num_requeues(&"two"), 2);

        limiter.forget(&"one");
        assert_eq!(limiter.num_requeues(&"one"), 0);
        assert_eq!(limiter.when(&"one"), 5 * MS);
    }

    #[test]
    fn max_of_returns_the_worst_case() {
        let limiter = MaxOf::new(vec![
            Box::new(ItemFastSlow::new(5 * MS, Duration::from_secs(3), 3)),
            Box::new(ItemExponentialFailure::new(MS, Duration::from_secs(1))),
        ]);
        let three = Duration::from_secs(3);
        let delays: Vec<_> = (0..5).map(|_| limiter.when(&"one")).collect();
        assert_eq!(delays, [5 * MS, 5 * MS, 5 * MS, three, three]);
        assert_eq!(limiter.num_requeues(&"one"), 5);

        assert_eq!(limiter.when(&"two"), 5 * MS);
        assert_eq!(limiter.when(&"two"), 5 * MS);
        assert_eq!(limiter.num_requeues(&"two"), 2);

        limiter.forget(&"one");
        assert_eq!(limiter.num_requeues(&"one"), 0);
        assert_eq!(limiter.when(&"one"), 5 * MS);
    }

    #[test]
    fn max_of_calls_every_limiter_and_forgets_in_all() {
        let mut small = MockRateLimiter::<u32>::new();
        small.expect_when().times(1).return_const(MS);
        small.expect_forget().times(1).return_const(());
        small.expect_num_requeues().return_const(4usize);
        let mut large = MockRateLimiter::<u32>::new();
        large.expect_when().times(1).return_const(Duration::from_secs(9));
        large.expect_forget().times(1).return_const(());
        large.expect_num_requeues().return_const(7usize);

        let limiter = MaxOf::new(vec![Box::new(large)]).with(small);
        assert_eq!(limiter.when(&1), Duration::from_secs(9));
        assert_eq!(limiter.num_requeues(&1), 7);
        limiter.forget(&1);
    }

    /// Returns `base` for the first `threshold` calls, then `max`.
    struct Step {
        calls: AtomicUsize,
        threshold: usize,
        base: Duration,
        max: Duration,
    }

    impl RateLimiter<usize> for Step {
        fn when(&self, _: &usize) -> Duration {
            if self.calls.fetch_add(1, Ordering::SeqCst) < self.threshold {
                self.base
            } else {
                self.max
            }
        }
        fn forget(&self, _: &usize) {}
        fn num_requeues(&self, _: &usize) -> usize {
            0
        }
    }

    #[test]
    fn with_max_wait_caps_the_delay() {
        let limiter = WithMaxWait::new(
            Step {
                calls: AtomicUsize::new(0),
                threshold: 100,
                base: 5 * MS,
                max: Duration::from_secs(1000),
            },
            Duration::from_secs(500),
        );
        for key in 0..100 {
            assert_eq!(limiter.when(&key), 5 * MS);
        }
        for key in 100..200 {
            assert_eq!(limiter.when(&key), Duration::from_secs(500));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn bucket_allows_the_burst_then_goes_into_growing_debt() {
        let bucket = Bucket::new(10.0, 100);
        for _ in 0..100 {
            assert_eq!(RateLimiter::<u8>::when(&bucket, &0), Duration::ZERO);
        }
        // Every further call takes a token it does not have: 100 ms, 200 ms, 300 ms, ...
        for n in 1..=5u32 {
            assert_eq!(RateLimiter::<u8>::when(&bucket, &0), n * 100 * MS);
        }
        assert_eq!(RateLimiter::<u8>::num_requeues(&bucket, &0), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn bucket_debt_of_ten_thousand_requeues_reaches_sixteen_minutes() {
        let bucket = Bucket::new(10.0, 100);
        let last = (0..10_000)
            .map(|_| RateLimiter::<u8>::when(&bucket, &0))
            .last()
            .unwrap();
        assert_eq!(last, Duration::from_secs(990)); // 9 900 tokens of debt at 10 qps
    }

    #[tokio::test(start_paused = true)]
    async fn bucket_refills_with_time_up_to_the_burst() {
        let bucket = Bucket::new(10.0, 2);
        assert_eq!(RateLimiter::<u8>::when(&bucket, &0), Duration::ZERO);
        assert_eq!(RateLimiter::<u8>::when(&bucket, &0), Duration::ZERO);
        assert_eq!(RateLimiter::<u8>::when(&bucket, &0), 100 * MS);
        // The debt is repaid after 100 ms; 100 ms later one token is back.
        tokio::time::advance(200 * MS).await;
        assert_eq!(RateLimiter::<u8>::when(&bucket, &0), Duration::ZERO);
        assert_eq!(RateLimiter::<u8>::when(&bucket, &0), 100 * MS);
        // A long pause refills only up to the burst.
        tokio::time::advance(Duration::from_secs(3600)).await;
        assert_eq!(RateLimiter::<u8>::when(&bucket, &0), Duration::ZERO);
        assert_eq!(RateLimiter::<u8>::when(&bucket, &0), Duration::ZERO);
        assert_eq!(RateLimiter::<u8>::when(&bucket, &0), 100 * MS);
    }

    #[tokio::test(start_paused = true)]
    async fn bucket_edge_rates() {
        let unlimited = Bucket::new(f64::INFINITY, 0);
        for _ in 0..1000 {
            assert_eq!(RateLimiter::<u8>::when(&unlimited, &0), Duration::ZERO);
        }
        let no_burst = Bucket::new(10.0, 0);
        assert_eq!(RateLimiter::<u8>::when(&no_burst, &0), INF_DURATION);
        let stopped = Bucket::new(0.0, 5);
        assert_eq!(RateLimiter::<u8>::when(&stopped, &0), INF_DURATION);
    }

    #[tokio::test(start_paused = true)]
    async fn max_of_spends_a_bucket_token_even_when_backoff_dominates() {
        let limiter = default_controller_rate_limiter::<u32>();
        // 100 distinct keys fail once: the bucket's burst is used up by them...
        for key in 0..100 {
            assert_eq!(limiter.when(&key), 5 * MS);
        }
        // ...so the 101st key's first failure waits for the bucket, not its 5 ms backoff.
        assert_eq!(limiter.when(&100), 100 * MS);
    }

    #[test]
    fn default_item_based_limiter_starts_at_one_millisecond() {
        let limiter = default_item_based_rate_limiter::<u8>();
        assert_eq!(limiter.when(&1), MS);
        assert_eq!(limiter.when(&1), 2 * MS);
    }

    #[test]
    fn boxed_and_shared_limiters_are_limiters() {
        let shared = std::sync::Arc::new(ItemFastSlow::new(MS, 2 * MS, 1));
        let boxed: Box<dyn RateLimiter<u8>> = Box::new(std::sync::Arc::clone(&shared));
        assert_eq!(boxed.when(&1), MS);
        assert_eq!(shared.num_requeues(&1), 1);
        boxed.forget(&1);
        assert_eq!(shared.num_requeues(&1), 0);
    }
}
