//! Defaults of apps/v1 Deployments and ReplicaSets (upstream's
//! `pkg/apis/apps/v1/defaults.go`), applied on create and update by the
//! registry strategy whether or not the workload simulator runs.

use serde_json::{Value, json};

/// `SetDefaults_Deployment`: one replica, `RollingUpdate` with 25% surge
/// and 25% unavailable, ten old ReplicaSets kept, a 600 s progress deadline.
pub(crate) fn deployment(obj: &mut Value) {
    let Some(Value::Object(spec)) = obj.get_mut("spec") else {
        return;
    };
    spec.entry("replicas").or_insert_with(|| json!(1));
    spec.entry("revisionHistoryLimit").or_insert_with(|| json!(10));
    spec.entry("progressDeadlineSeconds").or_insert_with(|| json!(600));
    let strategy = spec.entry("strategy").or_insert_with(|| json!({}));
    if let Value::Object(s) = strategy {
        let kind = s.entry("type").or_insert_with(|| json!("RollingUpdate"));
        if kind == "RollingUpdate" {
            let rolling = s.entry("rollingUpdate").or_insert_with(|| json!({}));
            if let Value::Object(r) = rolling {
                r.entry("maxSurge").or_insert_with(|| json!("25%"));
                r.entry("maxUnavailable").or_insert_with(|| json!("25%"));
            }
        }
    }
}

/// `SetDefaults_ReplicaSet`: one replica unless said otherwise.
pub(crate) fn replica_set(obj: &mut Value) {
    if let Some(Value::Object(spec)) = obj.get_mut("spec") {
        spec.entry("replicas").or_insert_with(|| json!(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_upstreams() {
        let mut d = json!({"spec": {"template": {}}});
        deployment(&mut d);
        assert_eq!(d["spec"]["replicas"], 1);
        assert_eq!(d["spec"]["revisionHistoryLimit"], 10);
        assert_eq!(d["spec"]["strategy"]["rollingUpdate"]["maxSurge"], "25%");
        let mut r = json!({"spec": {"strategy": {"type": "Recreate"}, "replicas": 0}});
        deployment(&mut r);
        assert_eq!(r["spec"]["strategy"], json!({"type": "Recreate"}));
        assert_eq!(r["spec"]["replicas"], 0);
    }

    #[test]
    fn a_replica_set_gets_one_replica_unless_told() {
        let mut r = json!({"spec": {}});
        replica_set(&mut r);
        assert_eq!(r["spec"]["replicas"], 1);
        let mut r = json!({"spec": {"replicas": 0}});
        replica_set(&mut r);
        assert_eq!(r["spec"]["replicas"], 0);
    }
}
