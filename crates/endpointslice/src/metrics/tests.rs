//! The per-Service cache behind the slice gauges (upstream's
//! `metrics/cache_test.go`) and the metric names and labels.

use super::*;
use crate::test_support::capture;

fn key(name: &str) -> ObjectKey {
    ObjectKey::new("ns", name)
}

fn group(endpoints: usize, slices: usize) -> EfficiencyInfo {
    EfficiencyInfo { endpoints, slices }
}

#[test]
fn gauges_sum_services_and_replace_a_service_on_update() {
    let ((), got) = capture(|| {
        let cache = MetricsCache::new(100);
        cache.update_service(&key("a"), [group(250, 4), group(10, 1)]);
        cache.update_service(&key("b"), [group(0, 1)]);
        cache.update_service(&key("a"), [group(150, 2)]);
    });
    assert_eq!(got.gauge(ENDPOINTS_DESIRED), Some(150.0));
    assert_eq!(got.gauge(NUM_ENDPOINT_SLICES), Some(3.0));
    assert_eq!(
        got.gauge(DESIRED_ENDPOINT_SLICES),
        Some(3.0),
        "2 for a, and b's placeholder"
    );
}

#[test]
fn gauges_are_set_again_only_when_a_value_changes() {
    let cache = MetricsCache::new(100);
    let ((), first) = capture(|| cache.update_service(&key("a"), [group(10, 1)]));
    assert_eq!(first.gauge(ENDPOINTS_DESIRED), Some(10.0));
    let ((), same) = capture(|| {
        cache.update_service(&key("a"), [group(10, 1)]);
        cache.update_traffic_distribution(&key("a"), None);
    });
    assert_eq!(same.gauge(ENDPOINTS_DESIRED), None, "nothing changed, nothing set");
    let ((), changed) = capture(|| cache.update_service(&key("a"), [group(11, 1)]));
    assert_eq!(changed.gauge(ENDPOINTS_DESIRED), Some(11.0));
    assert_eq!(
        changed.gauge(NUM_ENDPOINT_SLICES),
        Some(1.0),
        "all of them, when one changes"
    );
    let ((), traffic) = capture(|| cache.update_traffic_distribution(&key("a"), Some("PreferClose")));
    let close = format!("{SERVICES_COUNT_BY_TRAFFIC_DISTRIBUTION}{{traffic_distribution=PreferClose}}");
    assert_eq!(traffic.gauge(&close), Some(1.0));
}

#[test]
fn desired_slices_per_group_round_up_and_a_service_wants_at_least_one() {
    let ((), got) = capture(|| {
        let cache = MetricsCache::new(100);
        cache.update_service(&key("a"), [group(101, 2), group(100, 1), group(1, 1)]);
        cache.update_service(&key("empty"), []);
    });
    assert_eq!(got.gauge(DESIRED_ENDPOINT_SLICES), Some(4.0 + 1.0));
    assert_eq!(got.gauge(NUM_ENDPOINT_SLICES), Some(4.0));
}

#[test]
fn deleting_a_service_removes_its_numbers() {
    let ((), got) = capture(|| {
        let cache = MetricsCache::new(10);
        cache.update_service(&key("a"), [group(25, 3)]);
        cache.update_service(&key("b"), [group(5, 1)]);
        cache.delete_service(&key("a"));
        cache.delete_service(&key("never-seen"));
    });
    assert_eq!(got.gauge(ENDPOINTS_DESIRED), Some(5.0));
    assert_eq!(got.gauge(NUM_ENDPOINT_SLICES), Some(1.0));
    assert_eq!(got.gauge(DESIRED_ENDPOINT_SLICES), Some(1.0));
}

#[test]
fn services_count_by_traffic_distribution_follows_each_service() {
    let close = format!("{SERVICES_COUNT_BY_TRAFFIC_DISTRIBUTION}{{traffic_distribution=PreferClose}}");
    let node = format!("{SERVICES_COUNT_BY_TRAFFIC_DISTRIBUTION}{{traffic_distribution=PreferSameNode}}");
    let ((), got) = capture(|| {
        let cache = MetricsCache::new(100);
        cache.update_traffic_distribution(&key("a"), Some("PreferClose"));
        cache.update_traffic_distribution(&key("b"), Some("PreferClose"));
        cache.update_traffic_distribution(&key("c"), Some("PreferSameNode"));
        cache.update_traffic_distribution(&key("b"), None);
        cache.update_traffic_distribution(&key("c"), Some("PreferClose"));
        cache.delete_service(&key("a"));
    });
    assert_eq!(got.gauge(&close), Some(1.0));
    assert_eq!(got.gauge(&node), Some(0.0), "a value once seen drops to zero");
}

#[test]
fn recording_helpers_use_upstream_names_and_labels() {
    let ((), got) = capture(|| {
        record_sync(SyncResult::Success);
        record_sync(SyncResult::Stale);
        record_sync(SyncResult::Error);
        record_change(WriteOperation::Create);
        record_change(WriteOperation::Update);
        record_change(WriteOperation::Update);
        record_change(WriteOperation::Delete);
        record_endpoint_changes(3, 1);
        record_slices_changed("Auto", "", 2);
        record_slices_changed("Disabled", "PreferClose", 1);
    });
    assert_eq!(got.counter("endpoint_slice_controller_syncs{result=success}"), 1);
    assert_eq!(got.counter("endpoint_slice_controller_syncs{result=stale}"), 1);
    assert_eq!(got.counter("endpoint_slice_controller_syncs{result=error}"), 1);
    assert_eq!(got.counter("endpoint_slice_controller_changes{operation=create}"), 1);
    assert_eq!(got.counter("endpoint_slice_controller_changes{operation=update}"), 2);
    assert_eq!(got.counter("endpoint_slice_controller_changes{operation=delete}"), 1);
    assert_eq!(
        got.histogram("endpoint_slice_controller_endpoints_added_per_sync"),
        [3.0]
    );
    assert_eq!(
        got.histogram("endpoint_slice_controller_endpoints_removed_per_sync"),
        [1.0]
    );
    assert_eq!(
        got.histogram("endpoint_slice_controller_endpointslices_changed_per_sync{topology=Auto,traffic_distribution=}"),
        [2.0]
    );
    assert_eq!(
        got.histogram(
            "endpoint_slice_controller_endpointslices_changed_per_sync{topology=Disabled,traffic_distribution=PreferClose}"
        ),
        [1.0]
    );
}

#[test]
#[allow(clippy::float_cmp)] // powers of two are exact
fn endpoints_per_sync_buckets_double_from_2_to_32768() {
    let mut expected = 2.0;
    for bucket in ENDPOINTS_PER_SYNC_BUCKETS {
        assert_eq!(bucket, expected);
        expected *= 2.0;
    }
    assert_eq!(ENDPOINTS_PER_SYNC_BUCKETS.last(), Some(&32768.0));
}
