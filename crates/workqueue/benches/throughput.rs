//! Throughput of the work queue against a bare `tokio::sync::mpsc` channel, the floor for any
//! async queue.
//!
//! * `distinct`: one producer adds 10 000 distinct `"namespace/name"` keys while 1, 2 or 8
//!   workers take and finish them; the channel baseline carries the same keys to the same
//!   number of workers (sharing the receiver behind a mutex, as there is no other way with
//!   `mpsc`).
//! * `hot_key`: 8 producers add one key 1 250 times each while one worker takes and finishes
//!   it; the baseline sends the 10 000 copies through a channel to one receiver.
//! * `add_after`: 10 000 keys added with random delays of up to 10 minutes (client-go's
//!   `BenchmarkDelayingQueue_AddAfter`, insertion side).
//!
//! Run with `cargo bench -p ecm-workqueue`.

// A benchmark that cannot set up or whose worker died must stop loudly.
#![allow(clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ecm_workqueue::{QueueConfig, RateLimitingQueue, default_controller_rate_limiter};
use tokio::sync::{Mutex, mpsc};
use tokio::task::JoinSet;

const KEYS: usize = 10_000;
const PRODUCERS: usize = 8;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("benchmark runtime")
}

fn keys() -> Arc<Vec<String>> {
    Arc::new((0..KEYS).map(|i| format!("namespace-{}/service-{i}", i % 50)).collect())
}

fn new_queue() -> RateLimitingQueue<String> {
    RateLimitingQueue::new(QueueConfig::default(), default_controller_rate_limiter())
}

async fn queue_distinct(keys: Arc<Vec<String>>, workers: usize) {
    let queue = new_queue();
    let mut pool = JoinSet::new();
    for _ in 0..workers {
        let queue = queue.clone();
        pool.spawn(async move {
            while let Some(key) = queue.get().await {
                queue.done(&key);
            }
        });
    }
    for key in keys.iter() {
        queue.add(key.clone());
    }
    queue.shut_down_with_drain().await;
    while pool.join_next().await.is_some() {}
}

async fn channel_distinct(keys: Arc<Vec<String>>, workers: usize) {
    let (tx, rx) = mpsc::unbounded_channel::<String>();
    let rx = Arc::new(Mutex::new(rx));
    let mut pool = JoinSet::new();
    for _ in 0..workers {
        let rx = Arc::clone(&rx);
        pool.spawn(async move {
            loop {
                let next = rx.lock().await.recv().await;
                if next.is_none() {
                    break;
                }
            }
        });
    }
    for key in keys.iter() {
        let _ = tx.send(key.clone());
    }
    drop(tx);
    while pool.join_next().await.is_some() {}
}

async fn queue_hot_key() {
    let queue = new_queue();
    let worker = tokio::spawn({
        let queue = queue.clone();
        async move {
            while let Some(key) = queue.get().await {
                queue.done(&key);
            }
        }
    });
    let hot = String::from("kube-system/kube-dns");
    let mut producers = JoinSet::new();
    for _ in 0..PRODUCERS {
        let (queue, hot) = (queue.clone(), hot.clone());
        producers.spawn(async move {
            for _ in 0..KEYS / PRODUCERS {
                queue.add(hot.clone());
            }
        });
    }
    while producers.join_next().await.is_some() {}
    queue.shut_down_with_drain().await;
    worker.await.expect("worker");
}

async fn channel_hot_key() {
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let worker = tokio::spawn(async move { while rx.recv().await.is_some() {} });
    let hot = String::from("kube-system/kube-dns");
    let mut producers = JoinSet::new();
    for _ in 0..PRODUCERS {
        let (tx, hot) = (tx.clone(), hot.clone());
        producers.spawn(async move {
            for _ in 0..KEYS / PRODUCERS {
                let _ = tx.send(hot.clone());
            }
        });
    }
    drop(tx);
    while producers.join_next().await.is_some() {}
    worker.await.expect("worker");
}

fn distinct(c: &mut Criterion) {
    let rt = runtime();
    let keys = keys();
    let mut group = c.benchmark_group("distinct");
    group.throughput(Throughput::Elements(KEYS as u64));
    for workers in [1, 2, 8] {
        group.bench_with_input(BenchmarkId::new("queue", workers), &workers, |b, &w| {
            b.to_async(&rt).iter(|| queue_distinct(Arc::clone(&keys), w));
        });
        group.bench_with_input(BenchmarkId::new("channel", workers), &workers, |b, &w| {
            b.to_async(&rt).iter(|| channel_distinct(Arc::clone(&keys), w));
        });
    }
    group.finish();
}

fn hot_key(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("hot_key");
    group.throughput(Throughput::Elements(KEYS as u64));
    group.bench_function("queue/8_producers", |b| {
        b.to_async(&rt).iter(queue_hot_key);
    });
    group.bench_function("channel/8_producers", |b| {
        b.to_async(&rt).iter(channel_hot_key);
    });
    group.finish();
}

fn add_after(c: &mut Criterion) {
    let rt = runtime();
    let keys = keys();
    // A fixed pseudo-random spread of delays (xorshift), up to 10 minutes.
    let mut x = 0x2545_f491_4f6c_dd1d_u64;
    let delays: Vec<Duration> = (0..KEYS)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            Duration::from_millis(1 + x % 600_000)
        })
        .collect();
    let mut group = c.benchmark_group("add_after");
    group.throughput(Throughput::Elements(KEYS as u64));
    group.bench_function("queue", |b| {
        b.to_async(&rt).iter(|| async {
            let queue = new_queue();
            for (key, delay) in keys.iter().zip(&delays) {
                queue.add_after(key.clone(), *delay);
            }
            // Keys with the shortest delays may already have fired.
            let stats = queue.stats();
            assert_eq!(stats.waiting + stats.queued, KEYS);
            queue.shut_down();
        });
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    targets = distinct, hot_key, add_after
}
criterion_main!(benches);
