//! A rollout restart of a 300-replica Deployment (maxSurge 25%,
//! maxUnavailable 25%) behind a Service, in the embedded mode: ecm-apiserver
//! configured as `ecm run --embedded` configures it (pod simulator and
//! workload simulator, pods Ready one second after they start, removed one
//! second after a graceful delete) and ecm's three controllers over HTTP
//! with kube-controller-manager's client limits (20 QPS, burst 30).
//!
//! Reports the EndpointSlice and Endpoints writes of the rollout, the
//! endpoint changes the pods went through (each new pod: address appears,
//! turns ready; each old pod: terminates, goes), the lower bound of
//! changes / 100 slice writes and the ratio, and the time until the slices
//! held exactly the new pods. Fails if they do not end with exactly the new
//! pods.
//!
//! `cargo bench -p ecm --bench rollout [-- REPLICAS]`, or
//! `cargo xtask bench rollout`.

// A benchmark binary: printing is its job, and a failure should stop it.
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

#[path = "../tests/rollout/mod.rs"]
mod rollout;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let replicas = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(300);
    let r = rollout::rollout_restart(replicas, Duration::from_secs(1)).await;
    println!("rollout restart of {replicas} replicas (maxSurge 25%, maxUnavailable 25%), embedded mode");
    println!("| figure | value |");
    println!("|---|---|");
    println!("| endpoint changes (pod watch) | {} |", r.endpoint_changes);
    println!(
        "| lower bound: changes / {} | {} |",
        rollout::MAX_ENDPOINTS_PER_SLICE,
        r.lower_bound()
    );
    println!("| EndpointSlice writes | {} |", r.slice_writes);
    println!("| ratio to the lower bound | {:.1} |", r.slice_ratio());
    println!("| Endpoints writes | {} |", r.endpoints_writes);
    println!(
        "| restart to exactly the new pods in the slices | {:.1} s |",
        r.elapsed.as_secs_f64()
    );
    println!(
        "| slices at the end | {} addresses, {} duplicates, exactly the new pods: {} |",
        r.final_addresses.len(),
        r.duplicates,
        r.exact()
    );
    assert!(r.exact(), "the slices did not end with exactly the new pods: {r:?}");
}
