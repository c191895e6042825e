//! Which pods a ReplicaSet deletes first when it has too many: upstream's
//! `ActivePodsWithRanks` ordering (`pkg/controller/controller_utils.go`)
//! with the `LogarithmicScaleDown` and `PodDeletionCost` gates on, as they
//! are by default.
//!
//! Earlier in the order means deleted first:
//! 1. unassigned (no `spec.nodeName`) before assigned;
//! 2. `Pending` before `Unknown` before `Running`;
//! 3. not ready before ready;
//! 4. lower `controller.kubernetes.io/pod-deletion-cost` first;
//! 5. more pods of the same owner on the pod's node first (doubled up);
//! 6. ready for a shorter time first (times compared on a log2 scale from now);
//! 7. more container restarts first;
//! 8. created more recently first (log2 scale), then by uid (see [`sort_key`]
//!    for how ties within a log2 bucket differ from upstream).

use jiff::Timestamp;
use serde_json::Value;

use crate::object::meta_str;

const DELETION_COST: &str = "controller.kubernetes.io/pod-deletion-cost";

/// What the ordering looks at in a pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PodRank {
    node: String,
    phase_ordinal: u8,
    ready: bool,
    deletion_cost: i32,
    /// Active related pods on the same node (set by [`rank_by_colocation`]).
    colocated: usize,
    ready_since: Option<Timestamp>,
    restarts: i64,
    created: Option<Timestamp>,
    uid: String,
}

fn timestamp(v: Option<&Value>) -> Option<Timestamp> {
    v.and_then(Value::as_str).and_then(|s| s.parse().ok())
}

/// Whether the pod's `Ready` condition is `True`.
pub(crate) fn is_ready(pod: &Value) -> bool {
    ready_condition(pod).is_some_and(|c| c.get("status").and_then(Value::as_str) == Some("True"))
}

fn ready_condition(pod: &Value) -> Option<&Value> {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some("Ready"))
}

/// When the pod became ready (`lastTransitionTime` of `Ready=True`).
pub(crate) fn ready_since(pod: &Value) -> Option<Timestamp> {
    if !is_ready(pod) {
        return None;
    }
    timestamp(ready_condition(pod).and_then(|c| c.get("lastTransitionTime")))
}

impl PodRank {
    /// Reads the ranking facts of a pod.
    pub(crate) fn of(pod: &Value) -> Self {
        let phase = pod.pointer("/status/phase").and_then(Value::as_str).unwrap_or("");
        let restarts = pod
            .pointer("/status/containerStatuses")
            .and_then(Value::as_array)
            .map_or(0, |s| {
                s.iter()
                    .filter_map(|c| c.get("restartCount").and_then(Value::as_i64))
                    .max()
                    .unwrap_or(0)
            });
        Self {
            node: pod
                .pointer("/spec/nodeName")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
            phase_ordinal: match phase {
                "Unknown" => 1,
                "Running" => 2,
                // Pending, and phases upstream's table lacks.
                _ => 0,
            },
            ready: is_ready(pod),
            deletion_cost: pod
                .pointer("/metadata/annotations")
                .and_then(|a| a.get(DELETION_COST))
                .and_then(Value::as_str)
                .and_then(|c| c.parse().ok())
                .unwrap_or(0),
            colocated: 0,
            ready_since: ready_since(pod),
            restarts,
            created: timestamp(pod.pointer("/metadata/creationTimestamp")),
            uid: meta_str(pod, "uid").to_owned(),
        }
    }
}

/// `logarithmicRankDiff`: compares how long ago two instants were on a
/// log2 scale of nanoseconds.
fn log_rank(t: Timestamp, now: Timestamp) -> i64 {
    let nanos = now.as_nanosecond() - t.as_nanosecond();
    if nanos > 0 { i64::from(nanos.ilog2()) } else { -1 }
}

/// A pod's place in the deletion order at `now`, as a sort key (smaller
/// goes first).
///
/// Upstream compares pairs and, when two ready times (or creation times)
/// differ but share a log2 bucket, decides by uid at once; such a pairwise
/// rule is not a total order (Go's sort tolerates that, Rust's does not),
/// so here the buckets are key parts and the uid comes last: pods in the
/// same ready-time bucket are ordered by restarts and creation bucket
/// before their uids.
type SortKey = (
    bool,
    u8,
    bool,
    i32,
    std::cmp::Reverse<usize>,
    Option<i64>,
    std::cmp::Reverse<i64>,
    Option<i64>,
    String,
);

fn sort_key(r: &PodRank, now: Timestamp) -> SortKey {
    // Not ready pods skip the ready-time rule: they share one value.
    let ready_bucket = if r.ready {
        r.ready_since.map(|t| log_rank(t, now))
    } else {
        Some(i64::MIN)
    };
    (
        !r.node.is_empty(),
        r.phase_ordinal,
        r.ready,
        r.deletion_cost,
        std::cmp::Reverse(r.colocated),
        ready_bucket,
        std::cmp::Reverse(r.restarts),
        r.created.map(|t| log_rank(t, now)),
        r.uid.clone(),
    )
}

/// Sets each pod's count of active `related` pods on its node
/// (`getPodsRankedByRelatedPodsOnSameNode`).
pub(crate) fn rank_by_colocation(ranks: &mut [PodRank], related_nodes: &[String]) {
    for rank in ranks {
        rank.colocated = related_nodes.iter().filter(|n| **n == rank.node).count();
    }
}

/// Indexes of `pods` in deletion order.
pub(crate) fn deletion_order(pods: &[&Value], related_nodes: &[String], now: Timestamp) -> Vec<usize> {
    let mut ranks: Vec<PodRank> = pods.iter().map(|p| PodRank::of(p)).collect();
    rank_by_colocation(&mut ranks, related_nodes);
    let mut order: Vec<usize> = (0..pods.len()).collect();
    order.sort_by_cached_key(|&i| sort_key(&ranks[i], now));
    order
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: &str = "2026-01-01T12:00:00Z";

    fn pod(name: &str, node: &str, phase: &str, ready_at: Option<&str>, created: &str) -> Value {
        let ready = ready_at.map_or(
            json!({"type": "Ready", "status": "False"}),
            |t| json!({"type": "Ready", "status": "True", "lastTransitionTime": t}),
        );
        json!({
            "metadata": {"name": name, "uid": format!("uid-{name}"), "creationTimestamp": created},
            "spec": {"nodeName": node},
            "status": {"phase": phase, "conditions": [ready]},
        })
    }

    fn order(pods: &[Value], related: &[&str]) -> Vec<String> {
        let refs: Vec<&Value> = pods.iter().collect();
        let related: Vec<String> = related.iter().map(|s| (*s).to_owned()).collect();
        deletion_order(&refs, &related, NOW.parse().unwrap())
            .into_iter()
            .map(|i| meta_str(&pods[i], "name").to_owned())
            .collect()
    }

    #[test]
    fn unassigned_then_pending_then_unknown_then_running() {
        let t = "2026-01-01T10:00:00Z";
        let pods = [
            pod("running", "n1", "Running", Some(t), t),
            pod("unknown", "n1", "Unknown", None, t),
            pod("pending", "n1", "Pending", None, t),
            pod("unassigned", "", "Running", Some(t), t),
        ];
        assert_eq!(order(&pods, &[]), ["unassigned", "pending", "unknown", "running"]);
    }

    #[test]
    fn not_ready_before_ready_and_doubled_up_first() {
        let t = "2026-01-01T10:00:00Z";
        let pods = [
            pod("ready-alone", "n1", "Running", Some(t), t),
            pod("ready-doubled", "n2", "Running", Some(t), t),
            pod("not-ready", "n1", "Running", None, t),
        ];
        assert_eq!(
            order(&pods, &["n1", "n2", "n2"]),
            ["not-ready", "ready-doubled", "ready-alone"]
        );
    }

    #[test]
    fn recently_ready_and_newer_pods_go_first() {
        let pods = [
            pod(
                "old",
                "n1",
                "Running",
                Some("2026-01-01T08:00:00Z"),
                "2026-01-01T08:00:00Z",
            ),
            pod(
                "new",
                "n1",
                "Running",
                Some("2026-01-01T11:59:00Z"),
                "2026-01-01T11:58:00Z",
            ),
        ];
        assert_eq!(order(&pods, &[]), ["new", "old"]);
        // Not ready: creation time decides, newer first.
        let pods = [
            pod("older", "n1", "Pending", None, "2026-01-01T08:00:00Z"),
            pod("newer", "n1", "Pending", None, "2026-01-01T11:59:00Z"),
        ];
        assert_eq!(order(&pods, &[]), ["newer", "older"]);
    }

    #[test]
    fn same_log_bucket_falls_back_to_uid() {
        // 64 s and 65 s ago share a log2 bucket of nanoseconds: the newer pod
        // does not win, the smaller uid does.
        let pods = [
            pod("b", "n1", "Pending", None, "2026-01-01T11:58:56Z"),
            pod("a", "n1", "Pending", None, "2026-01-01T11:58:55Z"),
        ];
        assert_eq!(order(&pods, &[]), ["a", "b"]);
    }

    #[test]
    fn many_pods_in_shared_buckets_sort_without_an_inconsistent_order() {
        // Pairwise "same bucket -> uid" is not transitive; the key is.
        let pods: Vec<Value> = (0..400)
            .map(|i| {
                let t = format!("2026-01-01T11:{:02}:{:02}Z", 59 - (i * 7 % 60), i * 13 % 60);
                let c = format!("2026-01-01T{:02}:00:{:02}Z", 11 - i % 3, i % 60);
                pod(
                    &format!("p{i:03}"),
                    "n1",
                    "Running",
                    (i % 5 != 0).then_some(t.as_str()),
                    &c,
                )
            })
            .collect();
        let first = order(&pods, &[]);
        assert_eq!(first.len(), 400);
        assert_eq!(first, order(&pods, &[]));
    }

    #[test]
    fn deletion_cost_orders_before_colocation() {
        let t = "2026-01-01T10:00:00Z";
        let mut cheap = pod("cheap", "n1", "Running", Some(t), t);
        cheap["metadata"]["annotations"] = json!({DELETION_COST: "-5"});
        let pods = [pod("doubled", "n2", "Running", Some(t), t), cheap];
        assert_eq!(order(&pods, &["n2", "n2"]), ["cheap", "doubled"]);
    }
}
