//! Churn: readiness of random pods flipped at a fixed rate, each change
//! registered with the observer before its status write so the watches
//! can time it.

use std::sync::Arc;
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::task::JoinSet;

use crate::observe::Observer;
use crate::workload::{self, Workload};

/// Flips `rate` pods per second for `secs` seconds; returns the number of
/// changes made. `ready[p]` is pod `p`'s readiness, kept up to date.
pub async fn churn(
    client: &kube::Client,
    workload: &Workload,
    observer: &Observer,
    ready: &mut [bool],
    rate: f64,
    secs: f64,
    seed: u64,
) -> usize {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    let changes = (rate * secs).round() as usize;
    let mut writes = JoinSet::new();
    for _ in 0..changes {
        ticks.tick().await;
        // A pod whose previous change is still in flight is skipped, so
        // each latency belongs to one change.
        let (p, pod) = loop {
            let p = rng.random_range(0..ready.len());
            let pod = workload.pod(p);
            if !observer.with(|s| s.is_pending(&pod)) {
                break (p, pod);
            }
        };
        ready[p] = !ready[p];
        let want = ready[p];
        observer.with(|s| s.expect(&pod, want));
        let (client, state) = (client.clone(), Arc::clone(&observer.state));
        writes.spawn(async move {
            workload::set_ready(&client, &pod, want).await;
            state.lock().unwrap().written(&pod);
        });
    }
    while let Some(done) = writes.join_next().await {
        done.unwrap();
    }
    changes
}
