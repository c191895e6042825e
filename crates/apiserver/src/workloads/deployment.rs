//! The Deployment controller (`pkg/controller/deployment`): one
//! ReplicaSet per pod template, rolled out with `RollingUpdate`
//! (`rolling.go`) or `Recreate` (`recreate.go`), old revisions cleaned up
//! (`sync.go`), and the status `kubectl rollout status` reads.

use serde_json::{Map, Value, json};

use super::cluster::{Workloads, deleting, int_at, owner_reference};
use super::rollout::{self, Strategy};
use super::template_hash;
use crate::object::{self, meta_str, store_key};
use crate::store::StoredObject;

const REVISION: &str = "deployment.kubernetes.io/revision";
const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";

/// A ReplicaSet as the Deployment controller reads it.
struct ReplicaSet {
    obj: StoredObject,
    /// `spec.replicas`, updated locally as this sync scales it.
    replicas: i64,
}

impl ReplicaSet {
    fn value(&self) -> &Value {
        &self.obj.value
    }
    fn name(&self) -> &str {
        meta_str(self.value(), "name")
    }
    fn status(&self, field: &str) -> i64 {
        int_at(self.value(), &format!("/status/{field}"), 0)
    }
    fn revision(&self) -> i64 {
        self.value()
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(REVISION))
            .and_then(Value::as_str)
            .and_then(|r| r.parse().ok())
            .unwrap_or(0)
    }
}

/// The Deployment being synced.
struct Sync<'a> {
    w: &'a Workloads,
    d: &'a Value,
    ns: &'a str,
    desired: i64,
    strategy: Strategy,
}

impl Sync<'_> {
    /// Scales a ReplicaSet, annotating the Deployment's size as upstream does.
    fn scale(&self, rs: &mut ReplicaSet, replicas: i64) -> bool {
        let patch = json!({
            "metadata": {"annotations": {
                DESIRED_REPLICAS: self.desired.to_string(),
                MAX_REPLICAS: (self.desired + rollout::max_surge(self.strategy, self.desired)).to_string(),
            }},
            "spec": {"replicas": replicas},
        });
        match self.w.merge_patch(self.w.replicasets, self.ns, rs.name(), &patch) {
            Ok(_) => {
                rs.replicas = replicas;
                true
            }
            Err(e) => {
                tracing::warn!(replicaset = rs.name(), error = %e, "cannot scale");
                false
            }
        }
    }

    /// Creates the ReplicaSet of the current template with `replicas` pods.
    fn create_new(&self, replicas: i64, revision: i64) -> Option<ReplicaSet> {
        let d = self.d;
        let template = d.pointer("/spec/template").cloned().unwrap_or_else(|| json!({}));
        let hash = template_hash::compute(&template, d.pointer("/status/collisionCount").and_then(Value::as_i64));
        let mut rs_template = template_hash::without_hash_label(&template);
        let mut labels = rs_template
            .pointer("/metadata/labels")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        labels.insert(template_hash::LABEL.into(), json!(hash));
        if let Value::Object(t) = &mut rs_template {
            let meta = t.entry("metadata").or_insert_with(|| json!({}));
            meta["labels"] = Value::Object(labels.clone());
        }
        let mut selector = d.pointer("/spec/selector").cloned().unwrap_or_else(|| json!({}));
        if let Value::Object(s) = &mut selector {
            let ml = s.entry("matchLabels").or_insert_with(|| json!({}));
            ml[template_hash::LABEL] = json!(hash);
        }
        let mut spec = json!({"replicas": replicas, "selector": selector, "template": rs_template});
        if let Some(m) = d.pointer("/spec/minReadySeconds") {
            spec["minReadySeconds"] = m.clone();
        }
        let rs = json!({
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": format!("{}-{hash}", meta_str(d, "name")),
                "namespace": self.ns,
                "labels": labels,
                "annotations": {
                    DESIRED_REPLICAS: self.desired.to_string(),
                    MAX_REPLICAS: (self.desired + rollout::max_surge(self.strategy, self.desired)).to_string(),
                    REVISION: revision.to_string(),
                },
                "ownerReferences": [owner_reference(d)],
            },
            "spec": spec,
        });
        match self.w.create(self.w.replicasets, self.ns, rs) {
            Ok(obj) => Some(ReplicaSet { obj, replicas }),
            Err(e) => {
                tracing::warn!(deployment = meta_str(d, "name"), error = %e, "cannot create a ReplicaSet");
                None
            }
        }
    }

    /// `rolloutRolling`: grow the new ReplicaSet within the surge, or
    /// shrink old ones within the unavailability budget. True when it acted.
    fn rolling(&self, new_rs: &mut ReplicaSet, old: &mut [ReplicaSet]) -> bool {
        let all: i64 = new_rs.replicas + old.iter().map(|r| r.replicas).sum::<i64>();
        if new_rs.replicas > self.desired {
            return self.scale(new_rs, self.desired);
        }
        if new_rs.replicas < self.desired {
            let target = rollout::new_rs_replicas(self.strategy, self.desired, new_rs.replicas, all);
            if target != new_rs.replicas {
                return self.scale(new_rs, target);
            }
        }
        if old.iter().all(|r| r.replicas == 0) {
            return false;
        }
        let max_down = rollout::max_scaled_down(
            self.strategy,
            self.desired,
            all,
            new_rs.replicas,
            new_rs.status("availableReplicas"),
        );
        if max_down <= 0 {
            return false;
        }
        let mut acted = false;
        // cleanupUnhealthyReplicas: unavailable old pods go first.
        let mut cleaned = 0;
        for rs in old.iter_mut() {
            if cleaned >= max_down {
                break;
            }
            let unhealthy = rs.replicas - rs.status("availableReplicas");
            if rs.replicas == 0 || unhealthy <= 0 {
                continue;
            }
            let n = unhealthy.min(max_down - cleaned);
            let target = rs.replicas - n;
            acted |= self.scale(rs, target);
            cleaned += n;
        }
        // scaleDownOldReplicaSetsForRollingUpdate: available pods above the minimum.
        let available =
            new_rs.status("availableReplicas") + old.iter().map(|r| r.status("availableReplicas")).sum::<i64>();
        let budget = rollout::old_scale_down_budget(self.strategy, self.desired, available);
        let mut scaled = 0;
        for rs in old.iter_mut() {
            if scaled >= budget {
                break;
            }
            if rs.replicas == 0 {
                continue;
            }
            let n = rs.replicas.min(budget - scaled);
            let target = rs.replicas - n;
            acted |= self.scale(rs, target);
            scaled += n;
        }
        acted
    }

    /// `rolloutRecreate`: old pods all gone before the new ReplicaSet grows.
    /// True when it acted or must wait.
    fn recreate(&self, old: &mut [ReplicaSet]) -> bool {
        let mut acted = false;
        for rs in old.iter_mut().filter(|r| r.replicas > 0) {
            acted |= self.scale(rs, 0);
        }
        let old_pods_running = old.iter().any(|rs| {
            self.w.owned(self.w.pods, meta_str(rs.value(), "uid")).iter().any(|p| {
                !matches!(
                    p.value.pointer("/status/phase").and_then(Value::as_str),
                    Some("Succeeded" | "Failed")
                )
            })
        });
        acted || old_pods_running
    }

    /// `cleanupDeployment`: deletes the oldest drained ReplicaSets beyond
    /// `revisionHistoryLimit`.
    fn cleanup(&self, old: &[ReplicaSet]) {
        let limit = int_at(self.d, "/spec/revisionHistoryLimit", 10).max(0);
        let mut cleanable: Vec<&ReplicaSet> = old.iter().collect();
        let excess = cleanable.len() as i64 - limit;
        if excess <= 0 {
            return;
        }
        cleanable.sort_by_key(|r| (r.revision(), r.name().to_owned()));
        for rs in cleanable.into_iter().take(excess as usize) {
            let v = rs.value();
            if rs.status("replicas") != 0
                || rs.replicas != 0
                || int_at(v, "/metadata/generation", 0) > rs.status("observedGeneration")
            {
                continue;
            }
            self.w
                .delete(self.w.replicasets, self.ns, rs.name(), meta_str(v, "uid"));
        }
    }
}

/// Sets a condition as `SetDeploymentCondition` does: unchanged when status
/// and reason are; the transition time kept when only the reason changes;
/// moved to the end otherwise.
fn set_condition(conditions: &mut Vec<Value>, mut cond: Value, refresh_update_time: bool) {
    let ty = cond["type"].clone();
    if let Some(current) = conditions.iter().find(|c| c["type"] == ty) {
        if current["status"] == cond["status"] && current["reason"] == cond["reason"] && !refresh_update_time {
            return;
        }
        if current["status"] == cond["status"] {
            cond["lastTransitionTime"] = current["lastTransitionTime"].clone();
        }
    }
    conditions.retain(|c| c["type"] != ty);
    conditions.push(cond);
}

fn condition(ty: &str, status: bool, reason: &str, message: &str) -> Value {
    let now = object::now_rfc3339();
    json!({"type": ty, "status": if status { "True" } else { "False" }, "lastUpdateTime": now,
        "lastTransitionTime": now, "reason": reason, "message": message})
}

/// Syncs one Deployment (`namespace/name`).
pub(super) fn sync(w: &Workloads, key: &str) {
    let Some(d) = w.get(w.deployments, key) else {
        return;
    };
    if deleting(&d) {
        return;
    }
    let d = d.value.as_ref();
    let s = Sync {
        w,
        d,
        ns: meta_str(d, "namespace"),
        desired: int_at(d, "/spec/replicas", 1).max(0),
        strategy: Strategy::of(d),
    };
    let uid = meta_str(d, "uid");
    let owned = || {
        let mut rss: Vec<ReplicaSet> = w
            .owned(w.replicasets, uid)
            .into_iter()
            .filter(|r| !deleting(r))
            .map(|obj| {
                let replicas = int_at(&obj.value, "/spec/replicas", 1);
                ReplicaSet { obj, replicas }
            })
            .collect();
        rss.sort_by(|a, b| {
            (meta_str(a.value(), "creationTimestamp"), a.name())
                .cmp(&(meta_str(b.value(), "creationTimestamp"), b.name()))
        });
        rss
    };
    let template = d.pointer("/spec/template").cloned().unwrap_or_else(|| json!({}));
    let is_new = |rs: &ReplicaSet| {
        template_hash::equal_ignoring_hash(rs.value().pointer("/spec/template").unwrap_or(&Value::Null), &template)
    };
    let mut old = owned();
    let mut new_rs = old.iter().position(is_new).map(|i| old.remove(i));
    let max_old_revision = old.iter().map(ReplicaSet::revision).max().unwrap_or(0);
    let paused = d.pointer("/spec/paused").and_then(Value::as_bool) == Some(true);
    let mut created = false;
    if let Some(rs) = &new_rs
        && rs.revision() <= max_old_revision
    {
        let patch = json!({"metadata": {"annotations": {REVISION: (max_old_revision + 1).to_string()}}});
        let _ = w.merge_patch(w.replicasets, s.ns, rs.name(), &patch);
    }
    if paused {
        if let Some(rs) = new_rs.as_mut().filter(|_| old.iter().all(|o| o.replicas == 0))
            && rs.replicas != s.desired
        {
            s.scale(rs, s.desired);
        }
    } else {
        match s.strategy {
            Strategy::Recreate => {
                if !s.recreate(&mut old) {
                    match new_rs.as_mut() {
                        None => {
                            new_rs = s.create_new(s.desired, max_old_revision + 1);
                            created = new_rs.is_some();
                        }
                        Some(rs) if rs.replicas != s.desired => {
                            s.scale(rs, s.desired);
                        }
                        Some(_) => {}
                    }
                }
            }
            Strategy::RollingUpdate { .. } => match new_rs.as_mut() {
                None => {
                    let all: i64 = old.iter().map(|r| r.replicas).sum();
                    let replicas = rollout::new_rs_replicas(s.strategy, s.desired, 0, all);
                    new_rs = s.create_new(replicas, max_old_revision + 1);
                    created = new_rs.is_some();
                }
                Some(rs) => {
                    s.rolling(rs, &mut old);
                }
            },
        }
    }
    // Statuses as they are now (scaling writes above change specs only;
    // the ReplicaSets' own syncs update their statuses and wake this one).
    let mut old = owned();
    let new_rs = old.iter().position(is_new).map(|i| old.remove(i));
    if let Some(rs) = &new_rs {
        let revision = rs.revision().max(max_old_revision + 1).to_string();
        let current = d.pointer("/metadata/annotations").and_then(|a| a.get(REVISION));
        if current.and_then(Value::as_str) != Some(revision.as_str()) {
            let patch = json!({"metadata": {"annotations": {REVISION: revision}}});
            let _ = w.merge_patch(w.deployments, s.ns, meta_str(d, "name"), &patch);
        }
    }
    let status = status(&s, new_rs.as_ref(), &old, created);
    let complete = is_complete(d, &status, s.desired);
    if complete && !paused {
        s.cleanup(&old);
    }
    w.set_status(w.deployments, &store_key(Some(s.ns), meta_str(d, "name")), uid, &status);
}

/// `DeploymentComplete`.
fn is_complete(d: &Value, status: &Value, desired: i64) -> bool {
    let n = |f: &str| int_at(status, &format!("/{f}"), 0);
    n("updatedReplicas") == desired
        && n("replicas") == desired
        && n("availableReplicas") == desired
        && n("observedGeneration") >= int_at(d, "/metadata/generation", 0)
}

/// `calculateStatus` and `syncRolloutStatus`.
fn status(s: &Sync<'_>, new_rs: Option<&ReplicaSet>, old: &[ReplicaSet], created: bool) -> Value {
    let d = s.d;
    let all: Vec<&ReplicaSet> = new_rs.into_iter().chain(old).collect();
    let sum = |f: &str| all.iter().map(|r| r.status(f)).sum::<i64>();
    let (replicas, ready, available) = (sum("replicas"), sum("readyReplicas"), sum("availableReplicas"));
    let updated = new_rs.map_or(0, |r| r.status("replicas"));
    let spec_total: i64 = all.iter().map(|r| r.replicas).sum();
    let mut st = Map::new();
    for (field, n) in [
        ("observedGeneration", int_at(d, "/metadata/generation", 0)),
        ("replicas", replicas),
        ("updatedReplicas", updated),
        ("readyReplicas", ready),
        ("availableReplicas", available),
        ("unavailableReplicas", (spec_total - available).max(0)),
    ] {
        if n != 0 {
            st.insert(field.into(), json!(n));
        }
    }
    if let Some(c) = d.pointer("/status/collisionCount") {
        st.insert("collisionCount".into(), c.clone());
    }
    let mut conditions: Vec<Value> = d
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let min_available = s.desired - rollout::max_unavailable(s.strategy, s.desired);
    let cond = if available >= min_available {
        condition(
            "Available",
            true,
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.",
        )
    } else {
        condition(
            "Available",
            false,
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
        )
    };
    set_condition(&mut conditions, cond, false);
    let mut status = Value::Object(st);
    if let Some(rs) = new_rs {
        let name = rs.name();
        let old_status = d.get("status").cloned().unwrap_or_else(|| json!({}));
        let o = |f: &str| int_at(&old_status, &format!("/{f}"), 0);
        let progressing = updated > o("updatedReplicas")
            || ready > o("readyReplicas")
            || available > o("availableReplicas")
            || replicas - updated < o("replicas") - o("updatedReplicas");
        if is_complete(d, &status, s.desired) {
            let msg = format!("ReplicaSet \"{name}\" has successfully progressed.");
            set_condition(
                &mut conditions,
                condition("Progressing", true, "NewReplicaSetAvailable", &msg),
                false,
            );
        } else if progressing {
            let msg = format!("ReplicaSet \"{name}\" is progressing.");
            set_condition(
                &mut conditions,
                condition("Progressing", true, "ReplicaSetUpdated", &msg),
                true,
            );
        } else if created {
            let msg = format!("Created new replica set \"{name}\"");
            set_condition(
                &mut conditions,
                condition("Progressing", true, "NewReplicaSetCreated", &msg),
                false,
            );
        } else if !conditions.iter().any(|c| c["type"] == "Progressing") {
            let msg = format!("Found new replica set \"{name}\"");
            set_condition(
                &mut conditions,
                condition("Progressing", true, "FoundNewReplicaSet", &msg),
                false,
            );
        }
    }
    status["conditions"] = Value::Array(conditions);
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_keep_transition_time_when_only_the_reason_changes() {
        let mut conds = vec![
            json!({"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
            "lastTransitionTime": "then", "lastUpdateTime": "then"}),
        ];
        set_condition(
            &mut conds,
            condition("Progressing", true, "ReplicaSetUpdated", "m"),
            true,
        );
        assert_eq!(conds[0]["lastTransitionTime"], "then");
        assert_eq!(conds[0]["reason"], "ReplicaSetUpdated");
        let before = conds.clone();
        set_condition(
            &mut conds,
            condition("Progressing", true, "ReplicaSetUpdated", "other"),
            false,
        );
        assert_eq!(conds, before, "same status and reason: unchanged");
    }
}
