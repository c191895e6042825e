//! The workload simulator: Deployments and ReplicaSets brought to life in
//! an embedded cluster, as kube-controller-manager's deployment and
//! replicaset controllers do (`pkg/controller/deployment`,
//! `pkg/controller/replicaset`).
//!
//! When enabled ([`Config::workloads`](crate::Config::workloads)), a
//! Deployment gets a ReplicaSet per pod template (named
//! `DEPLOYMENT-HASH`, labelled and selected by `pod-template-hash`, see
//! [`template_hash`]), and each ReplicaSet keeps `spec.replicas` active pods
//! (`RS-xxxxx`), both owned with `controller: true` and
//! `blockOwnerDeletion: true`, so deleting a Deployment cascades through
//! the garbage collector. Pods are placed round-robin on
//! [`WorkloadsConfig::nodes`] (there is no scheduler), which the hollow
//! kubelet ([`Config::kubelet`](crate::Config::kubelet)) then starts and
//! makes Ready.
//!
//! Rollouts follow upstream's rules: `RollingUpdate` within `maxSurge`
//! (percentages rounded up) and `maxUnavailable` (rounded down), counting
//! pods available after `minReadySeconds`; `Recreate` removes every old pod
//! first; `paused` stops rollouts; old ReplicaSets beyond
//! `revisionHistoryLimit` are deleted; revisions are numbered in the
//! `deployment.kubernetes.io/revision` annotation. Too many pods are removed
//! in upstream's deletion order ([`ranking`]). Statuses carry what `kubectl
//! rollout status` and `kubectl get` read: `observedGeneration`, replica
//! counts and the `Available` / `Progressing` conditions with upstream's
//! reasons.
//!
//! Not simulated: proportional scaling of several active ReplicaSets when
//! a Deployment is resized mid-rollout (the rollout itself converges to the
//! new size instead), `progressDeadlineSeconds`, adoption and release of
//! pods by label, `collisionCount`, ReplicaSets without a Deployment being
//! scaled by anything but their own `spec.replicas` (that works), and
//! events. All writes are internal (not in the write log).

mod cluster;
mod deployment;
mod ranking;
mod replicaset;
mod rollout;
mod template_hash;

use std::collections::BTreeSet;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Weak};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::mpsc::{self, UnboundedReceiver};

use self::cluster::{Key, Workloads, controller_ref};
use crate::config::WorkloadsConfig;
use crate::object::{meta_str, store_key};
use crate::resources::ResourceInfo;
use crate::state::Shared;
use crate::store::{WatchEvent, WatchEventType};

fn is_kind(info: &ResourceInfo, group: &str, kind: &str) -> bool {
    info.group == group && info.kind == kind
}

fn controller_of_kind<'a>(obj: &'a Value, kind: &str) -> Option<&'a str> {
    controller_ref(obj)
        .filter(|r| r.get("kind").and_then(Value::as_str) == Some(kind))
        .and_then(|r| r.get("name").and_then(Value::as_str))
}

/// The events the simulator acts on: Deployments, ReplicaSets and pods
/// controlled by a ReplicaSet.
pub(crate) fn wants(info: &ResourceInfo, ev: &WatchEvent) -> bool {
    if is_kind(info, "apps", "Deployment") || is_kind(info, "apps", "ReplicaSet") {
        return true;
    }
    is_kind(info, "", "Pod")
        && (controller_of_kind(&ev.object.value, "ReplicaSet").is_some()
            || ev
                .prev
                .as_ref()
                .is_some_and(|p| controller_of_kind(&p.value, "ReplicaSet").is_some()))
}

/// The keys an event makes dirty. A pod gone also wakes the Deployment
/// of its ReplicaSet (a `Recreate` rollout waits for that).
fn keys_of(shared: &Shared, ev: &WatchEvent, out: &mut BTreeSet<Key>) {
    let info = shared.store.table.get(ev.resource);
    let obj = ev.object.value.as_ref();
    let ns = meta_str(obj, "namespace");
    if is_kind(info, "apps", "Deployment") {
        out.insert(Key::Deployment(ev.key.clone()));
    } else if is_kind(info, "apps", "ReplicaSet") {
        out.insert(Key::ReplicaSet(ev.key.clone()));
        if let Some(d) = controller_of_kind(obj, "Deployment") {
            out.insert(Key::Deployment(store_key(Some(ns), d)));
        }
    } else {
        for o in std::iter::once(obj).chain(ev.prev.as_ref().map(|p| p.value.as_ref())) {
            if let Some(rs) = controller_of_kind(o, "ReplicaSet") {
                let rs_key = store_key(Some(ns), rs);
                if ev.kind == WatchEventType::Deleted
                    && let Some(rs_res) = shared.store.table.by_path("apps", "v1", "replicasets")
                    && let Some(rs) = shared.store.get(rs_res, &rs_key)
                    && let Some(d) = controller_of_kind(&rs.value, "Deployment")
                {
                    out.insert(Key::Deployment(store_key(Some(ns), d)));
                }
                out.insert(Key::ReplicaSet(rs_key));
            }
        }
    }
}

/// Runs the simulator until the server is dropped.
pub(crate) async fn run(shared: Weak<Shared>, config: WorkloadsConfig, mut rx: UnboundedReceiver<Arc<WatchEvent>>) {
    let (requeue, mut requeued) = mpsc::unbounded_channel::<(Key, Duration)>();
    let (due_tx, mut due) = mpsc::unbounded_channel::<Key>();
    tokio::spawn(async move {
        while let Some((key, after)) = requeued.recv().await {
            let due_tx = due_tx.clone();
            tokio::spawn(async move {
                tokio::time::sleep(after).await;
                let _ = due_tx.send(key);
            });
        }
    });
    let next_node = Arc::new(AtomicUsize::new(0));
    loop {
        let mut dirty = BTreeSet::new();
        tokio::select! {
            ev = rx.recv() => {
                let Some(ev) = ev else { return };
                let Some(shared) = shared.upgrade() else { return };
                keys_of(&shared, &ev, &mut dirty);
            }
            Some(key) = due.recv() => {
                dirty.insert(key);
            }
        }
        let Some(shared) = shared.upgrade() else { return };
        while let Ok(ev) = rx.try_recv() {
            keys_of(&shared, &ev, &mut dirty);
        }
        while let Ok(key) = due.try_recv() {
            dirty.insert(key);
        }
        let Some(w) = Workloads::new(shared, &config, next_node.clone(), requeue.clone()) else {
            return;
        };
        for key in dirty {
            match key {
                Key::ReplicaSet(k) => replicaset::sync(&w, &k),
                Key::Deployment(k) => deployment::sync(&w, &k),
            }
        }
        // Let the HTTP front and the kubelet run between batches.
        tokio::task::yield_now().await;
    }
}

/// A label selector (`matchLabels`, `matchExpressions`) as the text form
/// upstream's `LabelSelectorAsSelector(...).String()` prints (sorted by key).
pub(crate) fn selector_string(selector: Option<&Value>) -> String {
    let Some(sel) = selector else {
        return String::new();
    };
    let mut parts: Vec<(String, String)> = Vec::new();
    if let Some(Value::Object(labels)) = sel.get("matchLabels") {
        for (k, v) in labels {
            parts.push((k.clone(), format!("{k}={}", v.as_str().unwrap_or(""))));
        }
    }
    if let Some(Value::Array(exprs)) = sel.get("matchExpressions") {
        for e in exprs {
            let key = e.get("key").and_then(Value::as_str).unwrap_or("");
            let mut values: Vec<&str> = e
                .get("values")
                .and_then(Value::as_array)
                .map(|v| v.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            values.sort_unstable();
            let text = match e.get("operator").and_then(Value::as_str).unwrap_or("") {
                "In" => format!("{key} in ({})", values.join(",")),
                "NotIn" => format!("{key} notin ({})", values.join(",")),
                "Exists" => key.to_owned(),
                "DoesNotExist" => format!("!{key}"),
                _ => continue,
            };
            parts.push((key.to_owned(), text));
        }
    }
    parts.sort();
    parts.into_iter().map(|(_, t)| t).collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn selectors_print_like_upstream() {
        assert_eq!(
            selector_string(Some(&json!({"matchLabels": {"b": "2", "a": "1"}}))),
            "a=1,b=2"
        );
        assert_eq!(
            selector_string(Some(&json!({"matchLabels": {"app": "web"},
                "matchExpressions": [{"key": "tier", "operator": "In", "values": ["fe", "be"]},
                                     {"key": "canary", "operator": "DoesNotExist"}]}))),
            "app=web,!canary,tier in (be,fe)"
        );
        assert_eq!(selector_string(None), "");
    }
}
