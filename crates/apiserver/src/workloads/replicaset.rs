//! The ReplicaSet controller (`pkg/controller/replicaset/replica_set.go`):
//! keeps `spec.replicas` active pods, deletes extra ones in upstream's
//! ranking order, and reports the pod counts in `status`.

use std::time::Duration;

use jiff::Timestamp;
use serde_json::{Map, Value, json};

use super::cluster::{Key, Workloads, controller_ref, deleting, int_at, owner_reference};
use super::ranking;
use crate::object::{meta_str, store_key};
use crate::store::StoredObject;

/// Pods created per sync at most (upstream's `burstReplicas`).
const BURST: i64 = 500;

/// `IsPodActive`: not terminated and not being deleted.
fn is_active(pod: &StoredObject) -> bool {
    !deleting(pod)
        && !matches!(
            pod.value.pointer("/status/phase").and_then(Value::as_str),
            Some("Succeeded" | "Failed")
        )
}

/// Active pods the ReplicaSet with `uid` controls.
pub(super) fn active_pods(w: &Workloads, uid: &str) -> Vec<StoredObject> {
    w.owned(w.pods, uid).into_iter().filter(is_active).collect()
}

/// `IsPodAvailable`: ready for at least `min_ready_seconds`; otherwise how
/// long until it will be, if it is ready at all.
pub(super) fn availability(pod: &Value, min_ready_seconds: i64, now: Timestamp) -> Result<(), Option<Duration>> {
    if !ranking::is_ready(pod) {
        return Err(None);
    }
    if min_ready_seconds <= 0 {
        return Ok(());
    }
    let Some(since) = ranking::ready_since(pod) else {
        return Err(None);
    };
    let elapsed = now.as_second() - since.as_second();
    if elapsed > min_ready_seconds {
        Ok(())
    } else {
        Err(Some(Duration::from_secs((min_ready_seconds - elapsed + 1) as u64)))
    }
}

fn pod_from_template(w: &Workloads, rs: &Value) -> Value {
    let template = rs.pointer("/spec/template").cloned().unwrap_or_else(|| json!({}));
    let mut meta = Map::new();
    meta.insert("generateName".into(), json!(format!("{}-", meta_str(rs, "name"))));
    for field in ["labels", "annotations"] {
        if let Some(v) = template.pointer(&format!("/metadata/{field}")) {
            meta.insert(field.into(), v.clone());
        }
    }
    meta.insert("ownerReferences".into(), json!([owner_reference(rs)]));
    let mut spec = template.get("spec").cloned().unwrap_or_else(|| json!({}));
    if spec.get("nodeName").and_then(Value::as_str).is_none_or(str::is_empty)
        && let Value::Object(s) = &mut spec
    {
        s.insert("nodeName".into(), json!(w.next_node()));
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec})
}

/// Nodes of the active pods related to this ReplicaSet (those of every
/// ReplicaSet with the same controller), for the colocation rank.
fn related_nodes(w: &Workloads, rs: &Value, own: &[StoredObject]) -> Vec<String> {
    let node = |p: &StoredObject| {
        p.value
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    let owner_uid = controller_ref(rs).and_then(|r| r.get("uid")).and_then(Value::as_str);
    match owner_uid {
        Some(owner) => w
            .owned(w.replicasets, owner)
            .iter()
            .flat_map(|sibling| active_pods(w, meta_str(&sibling.value, "uid")))
            .map(|p| node(&p))
            .collect(),
        None => own.iter().map(node).collect(),
    }
}

fn labels_match(pod: &Value, want: Option<&Value>) -> bool {
    let Some(Value::Object(want)) = want else {
        return true;
    };
    let have = pod.pointer("/metadata/labels");
    want.iter().all(|(k, v)| have.and_then(|h| h.get(k)) == Some(v))
}

/// Syncs one ReplicaSet (`namespace/name`).
pub(super) fn sync(w: &Workloads, key: &str) {
    let Some(rs) = w.get(w.replicasets, key) else {
        return;
    };
    if deleting(&rs) {
        return;
    }
    let rs = rs.value.as_ref();
    let (ns, name, uid) = (meta_str(rs, "namespace"), meta_str(rs, "name"), meta_str(rs, "uid"));
    let want = int_at(rs, "/spec/replicas", 1).max(0);
    let pods = active_pods(w, uid);
    let diff = pods.len() as i64 - want;
    let now = Timestamp::now();
    if diff < 0 {
        for _ in 0..(-diff).min(BURST) {
            if let Err(e) = w.create(w.pods, ns, pod_from_template(w, rs)) {
                tracing::warn!(replicaset = name, error = %e, "cannot create a pod");
                break;
            }
        }
    } else if diff > 0 {
        let related = related_nodes(w, rs, &pods);
        let values: Vec<&Value> = pods.iter().map(|p| p.value.as_ref()).collect();
        for i in ranking::deletion_order(&values, &related, now)
            .into_iter()
            .take(diff as usize)
        {
            let pod = values[i];
            w.delete(w.pods, ns, meta_str(pod, "name"), meta_str(pod, "uid"));
        }
    }
    let pods = if diff == 0 { pods } else { active_pods(w, uid) };
    let min_ready = int_at(rs, "/spec/minReadySeconds", 0);
    let template_labels = rs.pointer("/spec/template/metadata/labels");
    let (mut ready, mut available, mut labelled) = (0, 0, 0);
    let mut recheck: Option<Duration> = None;
    for pod in &pods {
        let pod = pod.value.as_ref();
        labelled += i64::from(labels_match(pod, template_labels));
        ready += i64::from(ranking::is_ready(pod));
        match availability(pod, min_ready, now) {
            Ok(()) => available += 1,
            Err(Some(after)) => recheck = Some(recheck.map_or(after, |r| r.min(after))),
            Err(None) => {}
        }
    }
    if let Some(after) = recheck {
        w.requeue(Key::ReplicaSet(store_key(Some(ns), name)), after);
    }
    let mut status = Map::new();
    status.insert("replicas".into(), json!(pods.len()));
    for (field, n) in [
        ("fullyLabeledReplicas", labelled),
        ("readyReplicas", ready),
        ("availableReplicas", available),
        ("observedGeneration", int_at(rs, "/metadata/generation", 0)),
    ] {
        if n != 0 {
            status.insert(field.into(), json!(n));
        }
    }
    w.set_status(w.replicasets, key, uid, &Value::Object(status));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready_pod(since: &str) -> Value {
        json!({"status": {"phase": "Running", "conditions": [
            {"type": "Ready", "status": "True", "lastTransitionTime": since}]}})
    }

    #[test]
    fn available_after_min_ready_seconds() {
        let now: Timestamp = "2026-01-01T12:00:10Z".parse().unwrap();
        let pod = ready_pod("2026-01-01T12:00:00Z");
        assert_eq!(availability(&pod, 0, now), Ok(()));
        assert_eq!(availability(&pod, 5, now), Ok(()));
        assert_eq!(availability(&pod, 10, now), Err(Some(Duration::from_secs(1))));
        assert_eq!(availability(&pod, 30, now), Err(Some(Duration::from_secs(21))));
        let not_ready = json!({"status": {"conditions": [{"type": "Ready", "status": "False"}]}});
        assert_eq!(availability(&not_ready, 0, now), Err(None));
    }
}
