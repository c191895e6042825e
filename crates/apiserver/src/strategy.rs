//! Registry strategies: how objects are prepared on create and update.
//!
//! Mirrors what upstream's `PrepareForCreate` / `PrepareForUpdate` and API
//! defaulting do for the served resources: `generation`, status reset on
//! create, status preserved on updates of the main resource, and the
//! defaults the endpoint controllers depend on (port protocols, Service
//! `targetPort` and ClusterIP, EndpointSlice port names).

use std::net::Ipv4Addr;

use parking_lot::Mutex;
use serde_json::{Map, Value, json};

use crate::object::{metadata, metadata_mut};
use crate::resources::{ResourceInfo, Strategy};

/// Hands out Service ClusterIPs from 10.96.0.0/12, sequentially.
#[derive(Debug)]
pub(crate) struct ClusterIpAllocator {
    next: Mutex<u32>,
}

impl Default for ClusterIpAllocator {
    fn default() -> Self {
        Self {
            next: Mutex::new(u32::from(Ipv4Addr::new(10, 96, 0, 10))),
        }
    }
}

impl ClusterIpAllocator {
    fn allocate(&self) -> String {
        let mut next = self.next.lock();
        let ip = Ipv4Addr::from(*next);
        *next += 1;
        ip.to_string()
    }
}

fn obj_mut<'a>(v: &'a mut Value, key: &str) -> &'a mut Map<String, Value> {
    if !v.is_object() {
        *v = Value::Object(Map::new());
    }
    let Value::Object(map) = v else {
        unreachable!("made an object above")
    };
    let child = map.entry(key).or_insert_with(|| Value::Object(Map::new()));
    if !child.is_object() {
        *child = Value::Object(Map::new());
    }
    match child {
        Value::Object(m) => m,
        _ => unreachable!("made an object above"),
    }
}

fn default_protocol(ports: &mut Value) {
    if let Value::Array(ports) = ports {
        for port in ports {
            if let Value::Object(p) = port
                && p.get("protocol").is_none_or(Value::is_null)
            {
                p.insert("protocol".into(), json!("TCP"));
            }
        }
    }
}

/// Defaults applied to every write of a kind (upstream `SetDefaults_*`).
fn apply_defaults(info: &ResourceInfo, obj: &mut Value) {
    match info.strategy {
        Strategy::Endpoints => {
            if let Some(Value::Array(subsets)) = obj.get_mut("subsets") {
                for subset in subsets {
                    if let Some(ports) = subset.get_mut("ports") {
                        default_protocol(ports);
                    }
                }
            }
        }
        Strategy::EndpointSlice => {
            if let Some(Value::Array(ports)) = obj.get_mut("ports") {
                for port in ports {
                    if let Value::Object(p) = port {
                        if p.get("name").is_none_or(Value::is_null) {
                            p.insert("name".into(), json!(""));
                        }
                        if p.get("protocol").is_none_or(Value::is_null) {
                            p.insert("protocol".into(), json!("TCP"));
                        }
                    }
                }
            }
        }
        Strategy::Service => {
            let spec = obj_mut(obj, "spec");
            spec.entry("type").or_insert_with(|| json!("ClusterIP"));
            spec.entry("sessionAffinity").or_insert_with(|| json!("None"));
            if spec.get("type").and_then(Value::as_str) != Some("ExternalName") {
                spec.entry("internalTrafficPolicy").or_insert_with(|| json!("Cluster"));
            }
            if let Some(Value::Array(ports)) = spec.get_mut("ports") {
                for port in ports {
                    if let Value::Object(p) = port {
                        p.entry("protocol").or_insert_with(|| json!("TCP"));
                        if p.get("targetPort").is_none_or(Value::is_null)
                            && let Some(n) = p.get("port").cloned()
                        {
                            p.insert("targetPort".into(), n);
                        }
                    }
                }
            }
        }
        Strategy::Pod => {
            let spec = obj_mut(obj, "spec");
            spec.entry("restartPolicy").or_insert_with(|| json!("Always"));
            spec.entry("dnsPolicy").or_insert_with(|| json!("ClusterFirst"));
            spec.entry("schedulerName")
                .or_insert_with(|| json!("default-scheduler"));
            spec.entry("terminationGracePeriodSeconds").or_insert_with(|| json!(30));
            spec.entry("securityContext").or_insert_with(|| json!({}));
            spec.entry("enableServiceLinks").or_insert_with(|| json!(true));
            for key in ["containers", "initContainers"] {
                if let Some(Value::Array(containers)) = spec.get_mut(key) {
                    for c in containers {
                        let image = c.get("image").and_then(Value::as_str).unwrap_or("").to_owned();
                        if let Value::Object(c) = c {
                            c.entry("terminationMessagePath")
                                .or_insert_with(|| json!("/dev/termination-log"));
                            c.entry("terminationMessagePolicy").or_insert_with(|| json!("File"));
                            c.entry("resources").or_insert_with(|| json!({}));
                            let last = image.rsplit('/').next().unwrap_or("");
                            let policy = if !last.contains(':') || image.ends_with(":latest") {
                                "Always"
                            } else {
                                "IfNotPresent"
                            };
                            c.entry("imagePullPolicy").or_insert_with(|| json!(policy));
                            if let Some(ports) = c.get_mut("ports") {
                                default_protocol(ports);
                            }
                        }
                    }
                }
            }
        }
        Strategy::SpecGeneration if info.group == "apps" && info.kind == "Deployment" => {
            crate::apps_defaults::deployment(obj);
        }
        Strategy::SpecGeneration if info.group == "apps" && info.kind == "ReplicaSet" => {
            crate::apps_defaults::replica_set(obj);
        }
        _ => {}
    }
}

fn qos_class(obj: &Value) -> &'static str {
    let containers = obj.pointer("/spec/containers").and_then(Value::as_array);
    let any_resources = containers.is_some_and(|cs| {
        cs.iter().any(|c| {
            c.get("resources").and_then(Value::as_object).is_some_and(|r| {
                ["requests", "limits"]
                    .iter()
                    .any(|k| r.get(*k).and_then(Value::as_object).is_some_and(|m| !m.is_empty()))
            })
        })
    });
    if any_resources { "Burstable" } else { "BestEffort" }
}

/// Prepares a new object for storage (`PrepareForCreate` plus defaulting).
pub(crate) fn prepare_for_create(info: &ResourceInfo, obj: &mut Value, ips: &ClusterIpAllocator) {
    apply_defaults(info, obj);
    let name = crate::object::meta_str(obj, "name").to_owned();
    match info.strategy {
        Strategy::SpecGeneration | Strategy::EndpointSlice => {
            metadata_mut(obj).insert("generation".into(), json!(1));
        }
        _ => {}
    }
    match info.strategy {
        Strategy::Pod => {
            let qos = qos_class(obj);
            obj["status"] = json!({"phase": "Pending", "qosClass": qos});
        }
        Strategy::Namespace => {
            obj["status"] = json!({"phase": "Active"});
            obj_mut(obj, "spec").insert("finalizers".into(), json!(["kubernetes"]));
            let labels = metadata_mut(obj).entry("labels").or_insert_with(|| json!({}));
            if let Value::Object(l) = labels {
                l.insert("kubernetes.io/metadata.name".into(), json!(name));
            }
        }
        Strategy::Service => {
            obj["status"] = json!({"loadBalancer": {}});
            let spec = obj_mut(obj, "spec");
            let is_external_name = spec.get("type").and_then(Value::as_str) == Some("ExternalName");
            if !is_external_name {
                let ip = match spec.get("clusterIP").and_then(Value::as_str) {
                    Some(ip) if !ip.is_empty() => ip.to_owned(),
                    _ => ips.allocate(),
                };
                spec.insert("clusterIP".into(), json!(ip));
                spec.entry("clusterIPs").or_insert_with(|| json!([ip]));
                if ip == "None" {
                    spec.entry("ipFamilies").or_insert_with(|| json!(["IPv4"]));
                    spec.entry("ipFamilyPolicy").or_insert_with(|| json!("SingleStack"));
                } else {
                    let family = if ip.contains(':') { "IPv6" } else { "IPv4" };
                    spec.entry("ipFamilies").or_insert_with(|| json!([family]));
                    spec.entry("ipFamilyPolicy").or_insert_with(|| json!("SingleStack"));
                }
            }
        }
        Strategy::Node | Strategy::Plain | Strategy::Endpoints | Strategy::EndpointSlice | Strategy::Review => {}
        Strategy::SpecGeneration => {
            if info.has_status()
                && let Value::Object(m) = obj
            {
                m.remove("status");
            }
        }
    }
}

/// Whether two objects differ outside `metadata` (and `status` when `skip_status`).
fn differs_outside_meta(a: &Value, b: &Value, skip_status: bool) -> bool {
    let (Value::Object(a), Value::Object(b)) = (a, b) else {
        return a != b;
    };
    let skip = |k: &String| k == "metadata" || (skip_status && k == "status");
    let a_keys = a.keys().filter(|k| !skip(k));
    let b_keys = b.keys().filter(|k| !skip(k));
    a_keys.clone().count() != b_keys.count() || a_keys.into_iter().any(|k| a.get(k) != b.get(k))
}

/// Prepares an update of the main resource (`PrepareForUpdate`): keeps the
/// status when the resource has a status subresource, keeps fields the
/// server allocated, and bumps `generation`.
pub(crate) fn prepare_for_update(info: &ResourceInfo, new: &mut Value, old: &Value) {
    apply_defaults(info, new);
    if info.has_status()
        && let Value::Object(m) = new
    {
        match old.get("status") {
            Some(status) => {
                m.insert("status".into(), status.clone());
            }
            None => {
                m.remove("status");
            }
        }
    }
    if info.strategy == Strategy::Service {
        let old_spec = old.get("spec");
        let spec = obj_mut(new, "spec");
        for key in ["clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"] {
            if spec.get(key).is_none_or(Value::is_null)
                && let Some(v) = old_spec.and_then(|s| s.get(key))
            {
                spec.insert(key.into(), v.clone());
            }
        }
    }
    if info.strategy == Strategy::Namespace
        && let Some(fin) = old.pointer("/spec/finalizers")
    {
        obj_mut(new, "spec").insert("finalizers".into(), fin.clone());
    }
    bump_generation(info, new, old);
}

/// Prepares an update through the `status` subresource: only `status`
/// changes (`ResetObjectMetaForStatus`).
pub(crate) fn prepare_for_status_update(new: &mut Value, old: &Value) {
    let mut merged = old.clone();
    match new.get("status") {
        Some(status) => merged["status"] = status.clone(),
        None => {
            if let Value::Object(m) = &mut merged {
                m.remove("status");
            }
        }
    }
    let rv = metadata(new).and_then(|m| m.get("resourceVersion")).cloned();
    crate::object::set_meta(&mut merged, "resourceVersion", rv);
    *new = merged;
}

fn bump_generation(info: &ResourceInfo, new: &mut Value, old: &Value) {
    let old_gen = metadata(old).and_then(|m| m.get("generation")).and_then(Value::as_i64);
    let changed = match info.strategy {
        Strategy::EndpointSlice => {
            differs_outside_meta(new, old, false) || crate::object::labels(new) != crate::object::labels(old)
        }
        Strategy::SpecGeneration => differs_outside_meta(new, old, true),
        _ => {
            // Generation is left as the old object had it.
            match old_gen {
                Some(g) => {
                    metadata_mut(new).insert("generation".into(), json!(g));
                }
                None => {
                    metadata_mut(new).remove("generation");
                }
            }
            return;
        }
    };
    let old_gen = old_gen.unwrap_or(0);
    let generation = if changed { old_gen + 1 } else { old_gen };
    metadata_mut(new).insert("generation".into(), json!(generation));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::builtin_resources;

    fn info(plural: &str) -> ResourceInfo {
        builtin_resources()
            .into_iter()
            .find(|r| r.plural == plural && r.group != "events.k8s.io")
            .unwrap()
    }

    #[test]
    fn endpoint_slice_generation_follows_upstream() {
        let es = info("endpointslices");
        let mut obj = json!({"metadata": {"name": "a"}, "addressType": "IPv4", "endpoints": []});
        prepare_for_create(&es, &mut obj, &ClusterIpAllocator::default());
        assert_eq!(obj["metadata"]["generation"], 1);
        let old = obj.clone();
        let mut same = old.clone();
        same["metadata"]["annotations"] = json!({"x": "y"});
        prepare_for_update(&es, &mut same, &old);
        assert_eq!(same["metadata"]["generation"], 1, "annotation change keeps generation");
        let mut relabeled = old.clone();
        relabeled["metadata"]["labels"] = json!({"x": "y"});
        prepare_for_update(&es, &mut relabeled, &old);
        assert_eq!(relabeled["metadata"]["generation"], 2, "label change bumps generation");
        let mut changed = old.clone();
        changed["endpoints"] = json!([{"addresses": ["10.0.0.1"]}]);
        prepare_for_update(&es, &mut changed, &old);
        assert_eq!(changed["metadata"]["generation"], 2);
    }

    #[test]
    fn service_defaults_and_cluster_ip() {
        let svc = info("services");
        let mut obj = json!({"metadata": {"name": "a"}, "spec": {"ports": [{"port": 80}]}});
        prepare_for_create(&svc, &mut obj, &ClusterIpAllocator::default());
        assert_eq!(obj["spec"]["ports"][0]["targetPort"], 80);
        assert_eq!(obj["spec"]["ports"][0]["protocol"], "TCP");
        assert_eq!(obj["spec"]["clusterIP"], "10.96.0.10");
        let mut headless = json!({"metadata": {"name": "b"}, "spec": {"clusterIP": "None"}});
        prepare_for_create(&svc, &mut headless, &ClusterIpAllocator::default());
        assert_eq!(headless["spec"]["clusterIPs"], json!(["None"]));
    }

    #[test]
    fn pod_status_is_reset_on_create_and_kept_on_update() {
        let pod = info("pods");
        let mut obj = json!({"metadata": {"name": "a"}, "spec": {"containers": [{"name": "c", "image": "x:1"}]}, "status": {"podIP": "1.2.3.4"}});
        prepare_for_create(&pod, &mut obj, &ClusterIpAllocator::default());
        assert_eq!(obj["status"], json!({"phase": "Pending", "qosClass": "BestEffort"}));
        let mut old = obj.clone();
        old["status"]["podIP"] = json!("10.0.0.1");
        let mut new = obj.clone();
        prepare_for_update(&pod, &mut new, &old);
        assert_eq!(new["status"]["podIP"], "10.0.0.1");
    }
}
