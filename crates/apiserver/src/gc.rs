//! Background garbage collection and namespace cleanup.
//!
//! Like kube-controller-manager's garbage collector, this task watches every
//! change and, asynchronously but promptly:
//! - deletes dependents (by `ownerReferences`) of deleted objects once none
//!   of their owners exists, and removes references to absent owners from
//!   dependents that still have one;
//! - deletes objects created with owners that do not exist (by uid, after
//!   [`Config::dangling_owner_delay`](crate::Config::dangling_owner_delay));
//! - serves `propagationPolicy=Foreground` (dependents first, then the owner)
//!   and `Orphan` (references removed, dependents kept);
//! - empties a deleted namespace and then removes it.
//!
//! Its writes are internal: they produce events and resourceVersions like any
//! write but are not recorded in the write log.

use std::sync::{Arc, Weak};

use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedReceiver;

use crate::object::{self, OwnerRef, meta_str, set_meta, store_key};
use crate::registry::DeleteOptions;
use crate::resources::{ResourceId, ResourceInfo, Strategy};
use crate::state::Shared;
use crate::store::{Change, WatchEvent, WatchEventType};

const FOREGROUND: &str = "foregroundDeletion";
const ORPHAN: &str = "orphan";

pub(crate) async fn run(shared: Weak<Shared>, mut rx: UnboundedReceiver<Arc<WatchEvent>>) {
    while let Some(ev) = rx.recv().await {
        let Some(shared) = shared.upgrade() else { return };
        process(&shared, &ev);
    }
}

/// The events [`process`] acts on; the store wakes the collector for no other.
pub(crate) fn wants(_info: &ResourceInfo, ev: &WatchEvent) -> bool {
    let obj = ev.object.value.as_ref();
    ev.kind == WatchEventType::Deleted
        || object::is_deleting(obj)
        || (ev.kind == WatchEventType::Added && !object::owner_refs(obj).is_empty())
}

fn process(shared: &Arc<Shared>, ev: &WatchEvent) {
    let obj = ev.object.value.as_ref();
    let info = shared.store.table.get(ev.resource);
    match ev.kind {
        WatchEventType::Deleted => {
            let uid = meta_str(obj, "uid");
            for (res, key) in shared.store.dependents(uid) {
                attempt_to_delete(shared, res, &key);
            }
            let ns = meta_str(obj, "namespace");
            for owner in object::owner_refs(obj) {
                if let Some((res, key)) = owner_location(shared, &owner, ns) {
                    finish_foreground(shared, res, &key);
                }
            }
            if !ns.is_empty() && shared.store.namespace_exists(ns) == Some(true) {
                cleanup_namespace(shared, ns);
            }
        }
        WatchEventType::Added | WatchEventType::Modified => {
            if object::is_deleting(obj) {
                let finalizers = object::finalizers(obj);
                let uid = meta_str(obj, "uid").to_owned();
                if finalizers.iter().any(|f| f == ORPHAN) {
                    for (res, key) in shared.store.dependents(&uid) {
                        remove_owner_refs(shared, res, &key, |r| r.uid == uid);
                    }
                    remove_finalizer(shared, ev.resource, &ev.key, ORPHAN);
                }
                if finalizers.iter().any(|f| f == FOREGROUND) {
                    for (res, key) in shared.store.dependents(&uid) {
                        delete_internal(shared, res, &key, Some("Foreground"));
                    }
                    finish_foreground(shared, ev.resource, &ev.key);
                }
                if info.strategy == Strategy::Namespace {
                    cleanup_namespace(shared, meta_str(obj, "name"));
                }
            }
            if ev.kind == WatchEventType::Added && !object::owner_refs(obj).is_empty() {
                let weak = Arc::downgrade(shared);
                let (res, key) = (ev.resource, ev.key.clone());
                let delay = shared.config.dangling_owner_delay;
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    if let Some(shared) = weak.upgrade() {
                        attempt_to_delete(&shared, res, &key);
                    }
                });
            }
        }
    }
}

/// Where an owner reference points, if its kind is served.
fn owner_location(shared: &Shared, owner: &OwnerRef, dependent_ns: &str) -> Option<(ResourceId, String)> {
    let res = shared
        .store
        .table
        .by_api_version_kind(&owner.api_version, &owner.kind)?;
    let info = shared.store.table.get(res);
    let ns = info.namespaced.then_some(dependent_ns);
    Some((res, store_key(ns, &owner.name)))
}

/// Whether the owner exists (same uid when the reference names one).
/// Owners of kinds this server does not serve count as existing.
fn owner_exists(shared: &Shared, owner: &OwnerRef, dependent_ns: &str) -> bool {
    let Some((res, key)) = owner_location(shared, owner, dependent_ns) else {
        return true;
    };
    shared
        .store
        .get(res, &key)
        .is_some_and(|o| owner.uid.is_empty() || meta_str(&o.value, "uid") == owner.uid)
}

fn attempt_to_delete(shared: &Shared, res: ResourceId, key: &str) {
    let Some(current) = shared.store.get(res, key) else {
        return;
    };
    let obj = current.value.as_ref();
    let refs = object::owner_refs(obj);
    if refs.is_empty() {
        return;
    }
    let ns = meta_str(obj, "namespace");
    let absent: Vec<OwnerRef> = refs.iter().filter(|r| !owner_exists(shared, r, ns)).cloned().collect();
    if absent.is_empty() {
        return;
    }
    if absent.len() == refs.len() {
        tracing::debug!(key, "garbage collecting object whose owners are gone");
        delete_internal(shared, res, key, Some("Background"));
    } else {
        remove_owner_refs(shared, res, key, |r| absent.contains(r));
    }
}

fn delete_internal(shared: &Shared, res: ResourceId, key: &str, policy: Option<&str>) {
    let Some(current) = shared.store.get(res, key) else {
        return;
    };
    let ns = meta_str(&current.value, "namespace");
    let name = meta_str(&current.value, "name");
    let opts = DeleteOptions {
        propagation_policy: policy.map(str::to_owned),
        ..DeleteOptions::default()
    };
    if let Err(e) = shared
        .registry
        .delete(res, Some(ns).filter(|n| !n.is_empty()), name, &opts)
        && e.code != 404
    {
        tracing::warn!(key, error = %e, "garbage collector could not delete");
    }
}

fn remove_owner_refs(shared: &Shared, res: ResourceId, key: &str, drop: impl Fn(&OwnerRef) -> bool) {
    let name = key.rsplit('/').next().unwrap_or(key).to_owned();
    let _ = shared.registry.guaranteed_update(res, key, &name, false, |current| {
        let obj = current.value.as_ref();
        let raw = obj
            .pointer("/metadata/ownerReferences")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let refs = object::owner_refs(obj);
        let kept: Vec<Value> = raw
            .into_iter()
            .zip(refs)
            .filter(|(_, r)| !drop(r))
            .map(|(v, _)| v)
            .collect();
        let mut new = obj.clone();
        set_meta(&mut new, "ownerReferences", (!kept.is_empty()).then(|| json!(kept)));
        Ok(if new == *obj {
            Change::Unchanged
        } else {
            Change::Store(new)
        })
    });
}

fn remove_finalizer(shared: &Shared, res: ResourceId, key: &str, finalizer: &str) {
    let name = key.rsplit('/').next().unwrap_or(key).to_owned();
    let _ = shared.registry.guaranteed_update(res, key, &name, false, |current| {
        let obj = current.value.as_ref();
        let mut finalizers = object::finalizers(obj);
        if !finalizers.iter().any(|f| f == finalizer) {
            return Ok(Change::Unchanged);
        }
        finalizers.retain(|f| f != finalizer);
        let mut new = obj.clone();
        set_meta(
            &mut new,
            "finalizers",
            (!finalizers.is_empty()).then(|| json!(finalizers)),
        );
        Ok(if finalizers.is_empty() && object::is_deleting(obj) {
            Change::Remove(new)
        } else {
            Change::Store(new)
        })
    });
}

/// Removes the foreground finalizer once no dependent is left.
fn finish_foreground(shared: &Shared, res: ResourceId, key: &str) {
    let Some(owner) = shared.store.get(res, key) else {
        return;
    };
    if !object::is_deleting(&owner.value) || !object::finalizers(&owner.value).iter().any(|f| f == FOREGROUND) {
        return;
    }
    if shared.store.dependents(meta_str(&owner.value, "uid")).is_empty() {
        remove_finalizer(shared, res, key, FOREGROUND);
    }
}

/// Deletes everything in a terminating namespace; removes it once empty.
fn cleanup_namespace(shared: &Shared, ns: &str) {
    let Some(ns_res) = shared.store.table.by_path("", "v1", "namespaces") else {
        return;
    };
    let Some(namespace) = shared.store.get(ns_res, ns) else {
        return;
    };
    if !object::is_deleting(&namespace.value) {
        return;
    }
    let mut remaining = 0;
    for (res, info) in shared.store.table.iter() {
        if !info.namespaced {
            continue;
        }
        for key in shared.store.keys(res, Some(ns)) {
            remaining += 1;
            if shared
                .store
                .get(res, &key)
                .is_some_and(|o| !object::is_deleting(&o.value))
            {
                delete_internal(shared, res, &key, Some("Background"));
            }
        }
    }
    let still: usize = shared
        .store
        .table
        .iter()
        .filter(|(_, i)| i.namespaced)
        .map(|(r, _)| shared.store.keys(r, Some(ns)).len())
        .sum();
    if still == 0 {
        let _ = remaining;
        let _ = shared.registry.guaranteed_update(ns_res, ns, ns, false, |current| {
            let mut new = (*current.value).clone();
            new["spec"] = json!({});
            Ok(Change::Remove(new))
        });
    }
}
