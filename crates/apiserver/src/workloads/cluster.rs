//! The simulator's handle on the server's state: the controllers' unit of
//! work, reads and internal writes of pods, ReplicaSets and Deployments,
//! and the owner-reference helpers both controllers share.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedSender;

use crate::config::WorkloadsConfig;
use crate::error::ApiError;
use crate::object::{self, meta_str};
use crate::patch::PatchType;
use crate::registry::{DeleteOptions, WriteOptions};
use crate::resources::ResourceId;
use crate::state::Shared;
use crate::store::{Change, StoredObject};

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
    pub(super) shared: Arc<Shared>,
    pub(super) config: WorkloadsConfig,
    pub(super) pods: ResourceId,
    pub(super) replicasets: ResourceId,
    pub(super) deployments: ResourceId,
    pub(super) next_node: Arc<AtomicUsize>,
    pub(super) requeue: UnboundedSender<(Key, Duration)>,
}

/// The controller owner reference (`controller: true`) of an object.
pub(crate) fn controller_ref(obj: &Value) -> Option<&Value> {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)?
        .iter()
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
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

impl Workloads {
    pub(super) fn new(
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

    pub(super) fn get(&self, res: ResourceId, key: &str) -> Option<StoredObject> {
        self.shared.store.get(res, key)
    }

    /// Objects of `res` controlled by the object with `uid`, in name order.
    pub(super) fn owned(&self, res: ResourceId, uid: &str) -> Vec<StoredObject> {
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

    pub(super) fn create(&self, res: ResourceId, ns: &str, obj: Value) -> Result<StoredObject, ApiError> {
        self.shared
            .registry
            .create(res, Some(ns), obj, &WriteOptions::default())
    }

    /// A merge patch of the main resource (strategy applied: generation bumps).
    pub(super) fn merge_patch(
        &self,
        res: ResourceId,
        ns: &str,
        name: &str,
        patch: &Value,
    ) -> Result<StoredObject, ApiError> {
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
    pub(super) fn set_status(&self, res: ResourceId, key: &str, uid: &str, status: &Value) {
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

    pub(super) fn delete(&self, res: ResourceId, ns: &str, name: &str, uid: &str) {
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
    pub(super) fn next_node(&self) -> &str {
        let i = self.next_node.fetch_add(1, Ordering::Relaxed);
        &self.config.nodes[i % self.config.nodes.len()]
    }

    /// Syncs `key` again after `after` (pods turning available).
    pub(super) fn requeue(&self, key: Key, after: Duration) {
        let _ = self.requeue.send((key, after));
    }
}

/// Whether an object is being deleted.
pub(super) fn deleting(obj: &StoredObject) -> bool {
    object::is_deleting(&obj.value)
}

/// An integer field, `default` when absent.
pub(super) fn int_at(obj: &Value, pointer: &str, default: i64) -> i64 {
    obj.pointer(pointer).and_then(Value::as_i64).unwrap_or(default)
}
