//! Queue metrics with client-go's names, buckets and rules (client-go's `metrics.go` and
//! component-base's Prometheus adapter).
//!
//! Only **named** queues record (see [`QueueConfig::name`](crate::QueueConfig::name)); every
//! series carries the label `name` with the queue's name. By default a named queue records
//! through the global recorder of the [`metrics`] facade ([`FacadeMetricsProvider`]), so with
//! no recorder installed the only cost is the facade's no-op handles. A different backend, or a
//! test fake, plugs in through [`MetricsProvider`].
//!
//! | metric | kind | recorded |
//! |---|---|---|
//! | `workqueue_depth` | gauge | +1 when an add makes a key newly dirty, −1 when `get` hands it out; so it tracks dirty keys, including keys re-added while held |
//! | `workqueue_adds_total` | counter | +1 on the same non-duplicate adds |
//! | `workqueue_queue_duration_seconds` | histogram | at `get`: time since the key became dirty (a re-add while held restarts the clock) |
//! | `workqueue_work_duration_seconds` | histogram | at `done`: time since `get` |
//! | `workqueue_unfinished_work_seconds` | gauge | every 500 ms: sum of the ages of all keys being processed |
//! | `workqueue_longest_running_processor_seconds` | gauge | every 500 ms: age of the oldest key being processed |
//! | `workqueue_retries_total` | counter | +1 per `add_after` (hence per `add_rate_limited`) on a queue that is not shutting down, zero delay included |
//! | `workqueue_drops_total` | counter | ecm addition: +1 when [`run_workers`](crate::run_workers) gives up on a key after `max_retries` |
//! | `workqueue_handler_panics_total` | counter | ecm addition: +1 when a [`run_workers`](crate::run_workers) handler panics |
//!
//! Histograms should be exported with the buckets in [`DURATION_BUCKETS`] (1 µs … 1000 s) to
//! match upstream dashboards; the `metrics` facade carries no buckets, so configure the
//! exporter, e.g. `metrics-exporter-prometheus`'s
//! `set_buckets_for_metric(Matcher::Prefix("workqueue_".into()), &DURATION_BUCKETS)`.
//! Without that, that exporter renders histograms as summaries.
//!
//! The 500 ms gauges are refreshed by one task per named queue, started with the queue (or,
//! for a queue created outside a Tokio runtime, when it first hands out a key) and stopped when
//! it shuts down or is dropped.

use std::time::Duration;

use metrics::{Counter, Gauge, Histogram};

/// `workqueue_depth`: current number of dirty keys.
pub const DEPTH: &str = "workqueue_depth";
/// `workqueue_adds_total`: non-duplicate adds.
pub const ADDS_TOTAL: &str = "workqueue_adds_total";
/// `workqueue_queue_duration_seconds`: how long a key waited before `get` handed it out.
pub const QUEUE_DURATION_SECONDS: &str = "workqueue_queue_duration_seconds";
/// `workqueue_work_duration_seconds`: how long processing a key took (`get` to `done`).
pub const WORK_DURATION_SECONDS: &str = "workqueue_work_duration_seconds";
/// `workqueue_unfinished_work_seconds`: summed age of the keys being processed.
pub const UNFINISHED_WORK_SECONDS: &str = "workqueue_unfinished_work_seconds";
/// `workqueue_longest_running_processor_seconds`: age of the oldest key being processed.
pub const LONGEST_RUNNING_PROCESSOR_SECONDS: &str = "workqueue_longest_running_processor_seconds";
/// `workqueue_retries_total`: `add_after` calls.
pub const RETRIES_TOTAL: &str = "workqueue_retries_total";
/// `workqueue_drops_total` (not in client-go): keys given up on by [`run_workers`](crate::run_workers).
pub const DROPS_TOTAL: &str = "workqueue_drops_total";
/// `workqueue_handler_panics_total` (not in client-go): handler panics caught by
/// [`run_workers`](crate::run_workers).
pub const HANDLER_PANICS_TOTAL: &str = "workqueue_handler_panics_total";
/// The label carrying the queue's name.
pub const NAME_LABEL: &str = "name";

/// Bucket upper bounds of both duration histograms, in seconds: 1e-6 to 1e3, factor 10
/// (component-base's `ExponentialBuckets(10e-7, 10, 10)`).
pub const DURATION_BUCKETS: [f64; 10] = [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1000.0];

/// Makes the metric handles of one named queue (client-go's `MetricsProvider`).
///
/// Each method is called once per named queue, at construction, with the queue's name. Return
/// `metrics::Counter::noop()` (etc.) for metrics you do not want; wrap your own backend with
/// `metrics::Counter::from_arc`.
pub trait MetricsProvider: Send + Sync {
    /// Gauge for [`DEPTH`].
    fn new_depth_metric(&self, name: &str) -> Gauge;
    /// Counter for [`ADDS_TOTAL`].
    fn new_adds_metric(&self, name: &str) -> Counter;
    /// Histogram for [`QUEUE_DURATION_SECONDS`].
    fn new_latency_metric(&self, name: &str) -> Histogram;
    /// Histogram for [`WORK_DURATION_SECONDS`].
    fn new_work_duration_metric(&self, name: &str) -> Histogram;
    /// Gauge for [`UNFINISHED_WORK_SECONDS`].
    fn new_unfinished_work_seconds_metric(&self, name: &str) -> Gauge;
    /// Gauge for [`LONGEST_RUNNING_PROCESSOR_SECONDS`].
    fn new_longest_running_processor_seconds_metric(&self, name: &str) -> Gauge;
    /// Counter for [`RETRIES_TOTAL`].
    fn new_retries_metric(&self, name: &str) -> Counter;
    /// Counter for [`DROPS_TOTAL`].
    fn new_drops_metric(&self, name: &str) -> Counter;
    /// Counter for [`HANDLER_PANICS_TOTAL`].
    fn new_handler_panics_metric(&self, name: &str) -> Counter;
}

/// Records through the `metrics` facade's current recorder (the default).
///
/// Handles are registered when the queue is created, so a recorder installed later (or a
/// `metrics::with_local_recorder` scope left earlier) does not see that queue.
#[derive(Debug, Clone, Copy, Default)]
pub struct FacadeMetricsProvider;

impl MetricsProvider for FacadeMetricsProvider {
    fn new_depth_metric(&self, name: &str) -> Gauge {
        metrics::gauge!(DEPTH, NAME_LABEL => name.to_owned())
    }
    fn new_adds_metric(&self, name: &str) -> Counter {
        metrics::counter!(ADDS_TOTAL, NAME_LABEL => name.to_owned())
    }
    fn new_latency_metric(&self, name: &str) -> Histogram {
        metrics::histogram!(QUEUE_DURATION_SECONDS, NAME_LABEL => name.to_owned())
    }
    fn new_work_duration_metric(&self, name: &str) -> Histogram {
        metrics::histogram!(WORK_DURATION_SECONDS, NAME_LABEL => name.to_owned())
    }
    fn new_unfinished_work_seconds_metric(&self, name: &str) -> Gauge {
        metrics::gauge!(UNFINISHED_WORK_SECONDS, NAME_LABEL => name.to_owned())
    }
    fn new_longest_running_processor_seconds_metric(&self, name: &str) -> Gauge {
        metrics::gauge!(LONGEST_RUNNING_PROCESSOR_SECONDS, NAME_LABEL => name.to_owned())
    }
    fn new_retries_metric(&self, name: &str) -> Counter {
        metrics::counter!(RETRIES_TOTAL, NAME_LABEL => name.to_owned())
    }
    fn new_drops_metric(&self, name: &str) -> Counter {
        metrics::counter!(DROPS_TOTAL, NAME_LABEL => name.to_owned())
    }
    fn new_handler_panics_metric(&self, name: &str) -> Counter {
        metrics::counter!(HANDLER_PANICS_TOTAL, NAME_LABEL => name.to_owned())
    }
}

/// Records nothing, even for named queues.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoopMetricsProvider;

impl MetricsProvider for NoopMetricsProvider {
    fn new_depth_metric(&self, _: &str) -> Gauge {
        Gauge::noop()
    }
    fn new_adds_metric(&self, _: &str) -> Counter {
        Counter::noop()
    }
    fn new_latency_metric(&self, _: &str) -> Histogram {
        Histogram::noop()
    }
    fn new_work_duration_metric(&self, _: &str) -> Histogram {
        Histogram::noop()
    }
    fn new_unfinished_work_seconds_metric(&self, _: &str) -> Gauge {
        Gauge::noop()
    }
    fn new_longest_running_processor_seconds_metric(&self, _: &str) -> Gauge {
        Gauge::noop()
    }
    fn new_retries_metric(&self, _: &str) -> Counter {
        Counter::noop()
    }
    fn new_drops_metric(&self, _: &str) -> Counter {
        Counter::noop()
    }
    fn new_handler_panics_metric(&self, _: &str) -> Counter {
        Counter::noop()
    }
}

/// Registers the help text and units of every workqueue metric with the current `metrics`
/// recorder. Call once after installing the recorder; optional.
pub fn describe_metrics() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_gauge!(DEPTH, "Current depth of workqueue");
    describe_counter!(ADDS_TOTAL, "Total number of adds handled by workqueue");
    describe_histogram!(
        QUEUE_DURATION_SECONDS,
        Unit::Seconds,
        "How long in seconds an item stays in workqueue before being requested."
    );
    describe_histogram!(
        WORK_DURATION_SECONDS,
        Unit::Seconds,
        "How long in seconds processing an item from workqueue takes."
    );
    describe_gauge!(
        UNFINISHED_WORK_SECONDS,
        Unit::Seconds,
        "How many seconds of work has done that is in progress and hasn't been observed by \
         work_duration. Large values indicate stuck threads. One can deduce the number of stuck \
         threads by observing the rate at which this increases."
    );
    describe_gauge!(
        LONGEST_RUNNING_PROCESSOR_SECONDS,
        Unit::Seconds,
        "How many seconds has the longest running processor for workqueue been running."
    );
    describe_counter!(RETRIES_TOTAL, "Total number of retries handled by workqueue");
    describe_counter!(
        DROPS_TOTAL,
        "Total number of keys dropped after exhausting their retries"
    );
    describe_counter!(
        HANDLER_PANICS_TOTAL,
        "Total number of panics caught in workqueue handlers"
    );
}

/// The handles of one named queue. Unnamed queues have none at all (`Option::None`), so they
/// skip even the clock reads.
pub(crate) struct QueueMetrics {
    depth: Gauge,
    adds: Counter,
    latency: Histogram,
    work_duration: Histogram,
    unfinished_work: Gauge,
    longest_running: Gauge,
    retries: Counter,
    drops: Counter,
    panics: Counter,
}

impl QueueMetrics {
    pub(crate) fn new(provider: &dyn MetricsProvider, name: &str) -> Self {
        Self {
            depth: provider.new_depth_metric(name),
            adds: provider.new_adds_metric(name),
            latency: provider.new_latency_metric(name),
            work_duration: provider.new_work_duration_metric(name),
            unfinished_work: provider.new_unfinished_work_seconds_metric(name),
            longest_running: provider.new_longest_running_processor_seconds_metric(name),
            retries: provider.new_retries_metric(name),
            drops: provider.new_drops_metric(name),
            panics: provider.new_handler_panics_metric(name),
        }
    }

    /// A key became dirty.
    pub(crate) fn add(&self) {
        self.adds.increment(1);
        self.depth.increment(1.0);
    }

    /// A key was handed out after waiting `queued_for`.
    pub(crate) fn get(&self, queued_for: Option<Duration>) {
        self.depth.decrement(1.0);
        if let Some(waited) = queued_for {
            self.latency.record(waited.as_secs_f64());
        }
    }

    /// A key was finished after `worked_for`.
    pub(crate) fn done(&self, worked_for: Option<Duration>) {
        if let Some(worked) = worked_for {
            self.work_duration.record(worked.as_secs_f64());
        }
    }

    /// Sets the unfinished-work gauges from the ages of the keys being processed.
    pub(crate) fn update_unfinished_work(&self, ages: impl Iterator<Item = Duration>) {
        let (mut total, mut oldest) = (0.0_f64, 0.0_f64);
        for age in ages {
            let age = age.as_secs_f64();
            total += age;
            oldest = oldest.max(age);
        }
        self.unfinished_work.set(total);
        self.longest_running.set(oldest);
    }

    pub(crate) fn retry(&self) {
        self.retries.increment(1);
    }

    pub(crate) fn dropped(&self) {
        self.drops.increment(1);
    }

    pub(crate) fn panicked(&self) {
        self.panics.increment(1);
    }
}

#[cfg(test)]
// Exact metric values are the point of these tests: the clock is paused and every value is
// computed the way client-go computes it.
#[allow(clippy::float_cmp)]
pub(crate) mod tests {
    use std::collections::HashMap;

    use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
    use metrics_util::{CompositeKey, MetricKind};

    use super::*;
    use crate::{DelayingQueue, Queue, QueueConfig, RateLimitingQueue, limiters};

    /// Accumulates `DebuggingRecorder` snapshots, which are destructive (counters and gauges are
    /// swapped to zero, histograms cleared), into running totals per series.
    ///
    /// Inc/dec gauges add up. The two `set` gauges keep their last non-zero value (a snapshot
    /// reads 0 when nothing was set since the previous one); `last_set` holds what the latest
    /// snapshot read for them, 0 meaning "not set since".
    pub(crate) struct Recorded {
        snapshotter: Snapshotter,
        counters: HashMap<(String, String), u64>,
        gauges: HashMap<(String, String), f64>,
        last_set: HashMap<(String, String), f64>,
        histograms: HashMap<(String, String), Vec<f64>>,
    }

    impl Recorded {
        pub(crate) fn new(recorder: &DebuggingRecorder) -> Self {
            Self {
                snapshotter: recorder.snapshotter(),
                counters: HashMap::new(),
                gauges: HashMap::new(),
                last_set: HashMap::new(),
                histograms: HashMap::new(),
            }
        }

        fn key(ck: &CompositeKey) -> (String, String) {
            let name = ck
                .key()
                .labels()
                .find(|l| l.key() == NAME_LABEL)
                .map(|l| l.value().to_owned())
                .unwrap_or_default();
            (ck.key().name().to_owned(), name)
        }

        /// Folds the changes since the last call into the totals.
        pub(crate) fn refresh(&mut self) {
            for (ck, _, _, value) in self.snapshotter.snapshot().into_vec() {
                let key = Self::key(&ck);
                match (ck.kind(), value) {
                    (MetricKind::Counter, DebugValue::Counter(n)) => {
                        *self.counters.entry(key).or_default() += n;
                    }
                    (MetricKind::Gauge, DebugValue::Gauge(v)) => {
                        let v = v.0;
                        let set_gauge = key.0 == UNFINISHED_WORK_SECONDS || key.0 == LONGEST_RUNNING_PROCESSOR_SECONDS;
                        if set_gauge {
                            self.last_set.insert(key.clone(), v);
                        }
                        let total = self.gauges.entry(key).or_default();
                        if !set_gauge {
                            *total += v;
                        } else if v != 0.0 {
                            *total = v;
                        }
                    }
                    (MetricKind::Histogram, DebugValue::Histogram(vs)) => {
                        self.histograms
                            .entry(key)
                            .or_default()
                            .extend(vs.into_iter().map(|v| v.0));
                    }
                    _ => unreachable!("kind and value always agree"),
                }
            }
        }

        pub(crate) fn counter(&mut self, metric: &str, queue: &str) -> u64 {
            self.refresh();
            self.counters
                .get(&(metric.to_owned(), queue.to_owned()))
                .copied()
                .unwrap_or_default()
        }

        pub(crate) fn gauge(&mut self, metric: &str, queue: &str) -> f64 {
            self.refresh();
            self.gauges
                .get(&(metric.to_owned(), queue.to_owned()))
                .copied()
                .unwrap_or_default()
        }

        /// What a `set` gauge was set to since the previous refresh (0 if it was not set).
        pub(crate) fn set_since_last_refresh(&mut self, metric: &str, queue: &str) -> f64 {
            self.refresh();
            self.last_set
                .get(&(metric.to_owned(), queue.to_owned()))
                .copied()
                .unwrap_or_default()
        }

        pub(crate) fn histogram(&mut self, metric: &str, queue: &str) -> Vec<f64> {
            self.refresh();
            self.histograms
                .get(&(metric.to_owned(), queue.to_owned()))
                .cloned()
                .unwrap_or_default()
        }

        pub(crate) fn series(&mut self) -> usize {
            self.refresh();
            self.counters.len() + self.gauges.len() + self.histograms.len()
        }
    }

    fn named<K: Clone + Eq + std::hash::Hash + Send + Sync + 'static>(
        recorder: &DebuggingRecorder,
        name: &str,
    ) -> Queue<K> {
        metrics::with_local_recorder(recorder, || Queue::new(QueueConfig::default().name(name)))
    }

    /// Lets the unfinished-work task run after the paused clock moved.
    async fn settle() {
        for _ in 0..8 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn metrics_follow_client_go_rules_exactly() {
        let recorder = DebuggingRecorder::new();
        let mut m = Recorded::new(&recorder);
        let q = named::<&str>(&recorder, "test");

        q.add("foo");
        assert_eq!(m.counter(ADDS_TOTAL, "test"), 1);
        assert_eq!(m.gauge(DEPTH, "test"), 1.0);

        tokio::time::advance(Duration::from_micros(50)).await;
        let key = q.get().await.unwrap();
        assert_eq!(m.histogram(QUEUE_DURATION_SECONDS, "test"), vec![5e-05]);
        assert_eq!(m.gauge(DEPTH, "test"), 0.0);

        // Re-adds while processing collapse into one add and one unit of depth.
        for _ in 0..5 {
            q.add(key);
        }
        assert_eq!(m.counter(ADDS_TOTAL, "test"), 2);
        assert_eq!(m.gauge(DEPTH, "test"), 1.0);
        assert_eq!(q.len(), 0, "depth tracks dirty keys, not len()");

        tokio::time::advance(Duration::from_micros(25)).await;
        q.done(&key);
        assert_eq!(m.histogram(WORK_DURATION_SECONDS, "test"), vec![2.5e-05]);
        assert_eq!(m.gauge(DEPTH, "test"), 1.0, "still one dirty key");

        // The queue duration of the re-add runs from the re-add, not from `done`.
        let key = q.get().await.unwrap();
        assert_eq!(m.histogram(QUEUE_DURATION_SECONDS, "test"), vec![5e-05, 2.5e-05]);

        // The 500 ms task refreshes the in-flight gauges.
        tokio::time::advance(Duration::from_millis(500)).await;
        settle().await;
        assert_eq!(m.gauge(UNFINISHED_WORK_SECONDS, "test"), 0.5);
        assert_eq!(m.gauge(LONGEST_RUNNING_PROCESSOR_SECONDS, "test"), 0.5);

        q.done(&key);
        assert_eq!(m.histogram(WORK_DURATION_SECONDS, "test"), vec![2.5e-05, 0.5]);
        assert_eq!(m.gauge(DEPTH, "test"), 0.0);
        assert_eq!(m.counter(ADDS_TOTAL, "test"), 2);
        q.shut_down();
    }

    #[tokio::test(start_paused = true)]
    async fn unfinished_work_sums_ages_and_reports_the_oldest() {
        let recorder = DebuggingRecorder::new();
        let mut m = Recorded::new(&recorder);
        let q = named::<u32>(&recorder, "ages");
        q.add(1);
        q.add(2);
        let first = q.get().await.unwrap();
        tokio::time::advance(Duration::from_millis(200)).await;
        let _second = q.get().await.unwrap();
        tokio::time::advance(Duration::from_millis(300)).await;
        settle().await;
        // Ages 0.5 s and 0.3 s at the first tick.
        assert_eq!(m.gauge(UNFINISHED_WORK_SECONDS, "ages"), 0.5 + 0.3);
        assert_eq!(m.gauge(LONGEST_RUNNING_PROCESSOR_SECONDS, "ages"), 0.5);
        q.done(&first);
        tokio::time::advance(Duration::from_millis(500)).await;
        settle().await;
        assert_eq!(m.gauge(UNFINISHED_WORK_SECONDS, "ages"), 0.8);
        assert_eq!(m.gauge(LONGEST_RUNNING_PROCESSOR_SECONDS, "ages"), 0.8);
        q.shut_down();
    }

    #[tokio::test(start_paused = true)]
    async fn unfinished_work_task_stops_at_shut_down() {
        let recorder = DebuggingRecorder::new();
        let mut m = Recorded::new(&recorder);
        let alive = tokio::runtime::Handle::current().metrics().num_alive_tasks();
        let q = named::<u32>(&recorder, "stops");
        q.add(1);
        let _held = q.get().await.unwrap();
        assert_eq!(
            tokio::runtime::Handle::current().metrics().num_alive_tasks(),
            alive + 1,
            "one task per named queue"
        );
        tokio::time::advance(Duration::from_millis(500)).await;
        settle().await;
        assert_eq!(m.gauge(UNFINISHED_WORK_SECONDS, "stops"), 0.5);
        tokio::time::advance(Duration::from_millis(500)).await;
        settle().await;
        assert_eq!(
            m.set_since_last_refresh(UNFINISHED_WORK_SECONDS, "stops"),
            1.0,
            "set again at every tick while running"
        );

        q.shut_down();
        settle().await;
        assert_eq!(tokio::runtime::Handle::current().metrics().num_alive_tasks(), alive);
        m.refresh();
        tokio::time::advance(Duration::from_secs(3600)).await;
        settle().await;
        assert_eq!(
            m.set_since_last_refresh(UNFINISHED_WORK_SECONDS, "stops"),
            0.0,
            "no update after shutdown"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn unnamed_queues_record_nothing_and_start_no_task() {
        let recorder = DebuggingRecorder::new();
        let mut m = Recorded::new(&recorder);
        let alive = tokio::runtime::Handle::current().metrics().num_alive_tasks();
        let q = metrics::with_local_recorder(&recorder, || {
            RateLimitingQueue::new(QueueConfig::default(), limiters::default_controller_rate_limiter())
        });
        let empty_name = named::<u32>(&recorder, "");
        q.add(1u32);
        q.add_after(2, Duration::ZERO);
        q.add_rate_limited(3);
        let key = q.get().await.unwrap();
        q.done(&key);
        empty_name.add(1);
        let key = empty_name.get().await.unwrap();
        empty_name.done(&key);
        assert_eq!(m.series(), 0);
        assert_eq!(
            tokio::runtime::Handle::current().metrics().num_alive_tasks(),
            alive + 1,
            "only the delay timer of the rate-limited add"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn every_add_after_counts_as_a_retry_even_without_delay() {
        let recorder = DebuggingRecorder::new();
        let mut m = Recorded::new(&recorder);
        let q = metrics::with_local_recorder(&recorder, || {
            DelayingQueue::new(QueueConfig::default().name("endpoint"))
        });
        q.add_after("a", Duration::ZERO);
        q.add_after("a", Duration::from_millis(10));
        q.add_after("b", Duration::from_secs(1));
        q.add("c"); // a plain add is not a retry
        assert_eq!(m.counter(RETRIES_TOTAL, "endpoint"), 3);
        q.shut_down();
        q.add_after("d", Duration::ZERO);
        assert_eq!(
            m.counter(RETRIES_TOTAL, "endpoint"),
            3,
            "dropped after shutdown, not counted"
        );
        assert_eq!(m.counter(ADDS_TOTAL, "endpoint"), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_custom_provider_receives_the_queue_name() {
        #[derive(Default)]
        struct Names(parking_lot::Mutex<Vec<String>>);
        struct Provider(std::sync::Arc<Names>);
        impl MetricsProvider for Provider {
            fn new_depth_metric(&self, name: &str) -> Gauge {
                self.0.0.lock().push(name.to_owned());
                Gauge::noop()
            }
            fn new_adds_metric(&self, _: &str) -> Counter {
                Counter::noop()
            }
            fn new_latency_metric(&self, _: &str) -> Histogram {
                Histogram::noop()
            }
            fn new_work_duration_metric(&self, _: &str) -> Histogram {
                Histogram::noop()
            }
            fn new_unfinished_work_seconds_metric(&self, _: &str) -> Gauge {
                Gauge::noop()
            }
            fn new_longest_running_processor_seconds_metric(&self, _: &str) -> Gauge {
                Gauge::noop()
            }
            fn new_retries_metric(&self, _: &str) -> Counter {
                Counter::noop()
            }
            fn new_drops_metric(&self, _: &str) -> Counter {
                Counter::noop()
            }
            fn new_handler_panics_metric(&self, _: &str) -> Counter {
                Counter::noop()
            }
        }
        let names = std::sync::Arc::new(Names::default());
        let _q = Queue::<u8>::new(
            QueueConfig::default()
                .name("endpoint_slice")
                .metrics_provider(Provider(names.clone())),
        );
        let _unnamed = Queue::<u8>::new(QueueConfig::default().metrics_provider(Provider(names.clone())));
        assert_eq!(*names.0.lock(), vec!["endpoint_slice".to_owned()]);
    }

    #[test]
    fn buckets_are_one_microsecond_to_a_thousand_seconds() {
        let mut expected = 1e-6;
        for bucket in DURATION_BUCKETS {
            assert!((bucket - expected).abs() <= expected * 1e-12);
            expected *= 10.0;
        }
    }

    #[test]
    fn describe_metrics_registers_help_text() {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        metrics::with_local_recorder(&recorder, || {
            describe_metrics();
            FacadeMetricsProvider.new_depth_metric("x").set(1.0);
        });
        let snapshot = snapshotter.snapshot().into_vec();
        let (_, _, help, _) = &snapshot[0];
        assert_eq!(help.as_deref(), Some("Current depth of workqueue"));
    }
}
