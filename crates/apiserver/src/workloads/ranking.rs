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
//! 8. created more recently first (log2 scale), then by uid.

use std::cmp::Ordering;

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

/// `afterOrZero` then the logarithmic comparison: zero (absent) first,
/// then later first; `None` when the log ranks tie.
fn newer_first(a: Option<Timestamp>, b: Option<Timestamp>, now: Timestamp) -> Option<Ordering> {
    match (a, b) {
        (None, None) => Some(Ordering::Equal),
        (None, Some(_)) => Some(Ordering::Less),
        (Some(_), None) => Some(Ordering::Greater),
        (Some(a), Some(b)) if a == b => Some(Ordering::Equal),
        (Some(a), Some(b)) => match log_rank(a, now).cmp(&log_rank(b, now)) {
            Ordering::Equal => None,
            other => Some(other),
        },
    }
}

/// The deletion order of two pods at `now`: `Less` when `a` goes first.
pub(crate) fn compare(a: &PodRank, b: &PodRank, now: Timestamp) -> Ordering {
    if a.node != b.node && (a.node.is_empty() || b.node.is_empty()) {
        return if a.node.is_empty() {
            Ordering::Less
        } else {
            Ordering::Greater
        };
    }
    let by_uid = || a.uid.cmp(&b.uid);
    a.phase_ordinal
        .cmp(&b.phase_ordinal)
        .then(a.ready.cmp(&b.ready))
        .then(a.deletion_cost.cmp(&b.deletion_cost))
        .then(b.colocated.cmp(&a.colocated))
        .then_with(|| {
            if a.ready && b.ready {
                newer_first(a.ready_since, b.ready_since, now).unwrap_or_else(by_uid)
            } else {
                Ordering::Equal
            }
        })
        .then(b.restarts.cmp(&a.restarts))
        .then_with(|| newer_first(a.created, b.created, now).unwrap_or_else(by_uid))
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
    order.sort_by(|&i, &j| compare(&ranks[i], &ranks[j], now));
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
    fn deletion_cost_orders_before_colocation() {
        let t = "2026-01-01T10:00:00Z";
        let mut cheap = pod("cheap", "n1", "Running", Some(t), t);
        cheap["metadata"]["annotations"] = json!({DELETION_COST: "-5"});
        let pods = [pod("doubled", "n2", "Running", Some(t), t), cheap];
        assert_eq!(order(&pods, &["n2", "n2"]), ["cheap", "doubled"]);
    }
}
