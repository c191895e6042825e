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

mod deployment;
mod ranking;
mod replicaset;
mod rollout;
mod template_hash;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};

use crate::error::ApiError;
use crate::object::{self, meta_str, store_key};
use crate::patch::PatchType;
use crate::registry::{DeleteOptions, WriteOptions};
use crate::resources::{ResourceId, ResourceInfo};
use crate::state::Shared;
use crate::store::{Change, StoredObject, WatchEvent, WatchEventType};

pub(crate) use deployment::apply_defaults as default_deployment;
pub(crate) use replicaset::apply_defaults as default_replicaset;

/// Settings of the workload simulator.
#[derive(Debug, Clone)]
pub struct WorkloadsConfig {
    pub(crate) nodes: Vec<String>,
}

impl Default for WorkloadsConfig {
    /// Pods go to nodes `node-1`, `node-2` and `node-3`.
    fn default() -> Self {
        Self {
            nodes: ["node-1", "node-2", "node-3"].map(String::from).to_vec(),
        }
    }
}

impl WorkloadsConfig {
    /// Nodes pods are placed on, round-robin (`spec.nodeName`); at least one
    /// (an empty list keeps the default).
    #[must_use]
    pub fn nodes<I: IntoIterator<Item = S>, S: Into<String>>(mut self, nodes: I) -> Self {
        let nodes: Vec<String> = nodes.into_iter().map(Into::into).collect();
        if !nodes.is_empty() {
            self.nodes = nodes;
        }
        self
    }
}

/// A controller's unit of work.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Key {
    /// Sync a ReplicaSet (`namespace/name`); ReplicaSets go first in a batch
    /// so that Deployments see their fresh statuses.
    ReplicaSet(String),
    /// Sync a Deployment (`namespace/name`).
    Deployment(String),
}

/// The simulator's view of the server.
pub(crate) struct Workloads {
    shared: Arc<Shared>,
    config: WorkloadsConfig,
    pods: ResourceId,
    replicasets: ResourceId,
    deployments: ResourceId,
    next_node: Arc<AtomicUsize>,
    requeue: UnboundedSender<(Key, Duration)>,
}

fn is_kind(info: &ResourceInfo, group: &str, kind: &str) -> bool {
    info.group == group && info.kind == kind
}

/// The controller owner reference (`controller: true`) of an object.
pub(crate) fn controller_ref(obj: &Value) -> Option<&Value> {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)?
        .iter()
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
}

fn controller_of_kind<'a>(obj: &'a Value, kind: &str) -> Option<&'a str> {
    controller_ref(obj)
        .filter(|r| r.get("kind").and_then(Value::as_str) == Some(kind))
        .and_then(|r| r.get("name").and_then(Value::as_str))
}

/// An owner reference marking `owner` as the controller.
pub(crate) fn owner_reference(owner: &Value) -> Value {
    json!({
        "apiVersion": owner.get("apiVersion").cloned().unwrap_or(json!("apps/v1")),
        "kind": owner.get("kind"),
        "name": meta_str(owner, "name"),
        "uid": meta_str(owner, "uid"),
        "controller": true,
        "blockOwnerDeletion": true,
    })
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

impl Workloads {
    fn new(
        shared: Arc<Shared>,
        config: &WorkloadsConfig,
        next_node: Arc<AtomicUsize>,
        requeue: UnboundedSender<(Key, Duration)>,
    ) -> Option<Self> {
        let table = &shared.store.table;
        let pods = table.by_path("", "v1", "pods")?;
        let replicasets = table.by_path("apps", "v1", "replicasets")?;
        let deployments = table.by_path("apps", "v1", "deployments")?;
        Some(Self {
            shared,
            config: config.clone(),
            pods,
            replicasets,
            deployments,
            next_node,
            requeue,
        })
    }

    fn get(&self, res: ResourceId, key: &str) -> Option<StoredObject> {
        self.shared.store.get(res, key)
    }

    /// Objects of `res` controlled by the object with `uid`, in name order.
    fn owned(&self, res: ResourceId, uid: &str) -> Vec<StoredObject> {
        self.shared
            .store
            .dependents(uid)
            .into_iter()
            .filter(|(r, _)| *r == res)
            .filter_map(|(_, key)| self.get(res, &key))
            .filter(|o| {
                controller_ref(&o.value)
                    .and_then(|r| r.get("uid"))
                    .and_then(Value::as_str)
                    == Some(uid)
            })
            .collect()
    }

    fn create(&self, res: ResourceId, ns: &str, obj: Value) -> Result<StoredObject, ApiError> {
        self.shared
            .registry
            .create(res, Some(ns), obj, &WriteOptions::default())
    }

    /// A merge patch of the main resource (strategy applied: generation bumps).
    fn merge_patch(&self, res: ResourceId, ns: &str, name: &str, patch: &Value) -> Result<StoredObject, ApiError> {
        let body = serde_json::to_vec(patch).unwrap_or_default();
        self.shared
            .registry
            .patch(
                res,
                Some(ns),
                name,
                PatchType::Merge,
                &body,
                None,
                &WriteOptions::default(),
            )
            .map(|(o, _)| o)
    }

    /// Replaces `status` (internal write; nothing when unchanged).
    fn set_status(&self, res: ResourceId, key: &str, uid: &str, status: &Value) {
        let name = key.rsplit('/').next().unwrap_or(key).to_owned();
        let _ = self
            .shared
            .registry
            .guaranteed_update(res, key, &name, false, |current| {
                let obj = current.value.as_ref();
                if meta_str(obj, "uid") != uid || obj.get("status") == Some(status) {
                    return Ok(Change::Unchanged);
                }
                let mut new = obj.clone();
                new["status"] = status.clone();
                Ok(Change::Store(new))
            });
    }

    fn delete(&self, res: ResourceId, ns: &str, name: &str, uid: &str) {
        let opts = DeleteOptions {
            precondition_uid: Some(uid.to_owned()),
            ..DeleteOptions::default()
        };
        if let Err(e) = self.shared.registry.delete(res, Some(ns), name, &opts)
            && e.code != 404
        {
            tracing::warn!(name, error = %e, "workload simulator could not delete");
        }
    }

    /// The node the next pod goes to.
    fn next_node(&self) -> &str {
        let i = self.next_node.fetch_add(1, Ordering::Relaxed);
        &self.config.nodes[i % self.config.nodes.len()]
    }

    /// Syncs `key` again after `after` (pods turning available).
    fn requeue(&self, key: Key, after: Duration) {
        let _ = self.requeue.send((key, after));
    }
}

/// Whether an object is being deleted.
fn deleting(obj: &StoredObject) -> bool {
    object::is_deleting(&obj.value)
}

/// An integer field, `default` when absent.
fn int_at(obj: &Value, pointer: &str, default: i64) -> i64 {
    obj.pointer(pointer).and_then(Value::as_i64).unwrap_or(default)
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
