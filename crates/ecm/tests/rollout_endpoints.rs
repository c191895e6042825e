//! A rollout restart of 30 replicas behind a Service in the embedded mode:
//! the EndpointSlices end with exactly the new pods, once each, and the
//! controllers wrote no fewer slices than the changes require. The
//! 300-replica version with its figures is `cargo bench -p ecm --bench
//! rollout`.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

// The benchmark also reads the timing and the ratio.
#[allow(dead_code)]
mod rollout;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollout_restart_ends_with_exactly_the_new_pods_in_the_slices() {
    let report = rollout::rollout_restart(30, Duration::from_millis(100)).await;
    assert!(report.exact(), "{report:?}");
    assert_eq!(report.final_addresses.len(), 30);
    // 30 pods replaced: each new one appears and turns ready, each old one
    // terminates and goes, as the pod watch saw them.
    assert!(report.endpoint_changes >= 4 * 30, "{report:?}");
    assert!(report.slice_writes >= report.lower_bound(), "{report:?}");
    assert!(report.endpoints_writes >= 1, "{report:?}");
}
