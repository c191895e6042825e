//! The pod-status simulator: a hollow kubelet for embedded clusters.
//!
//! When enabled ([`Config::kubelet`](crate::Config::kubelet)), every pod
//! bound to a node (`spec.nodeName`) is started: it gets IPs from the
//! configured pod CIDRs (one per family, so two CIDRs make dual-stack pods),
//! `hostIP` of its node, phase `Running` with `Ready=False`, then after
//! [`KubeletConfig::ready_delay`] the `Ready` and `ContainersReady`
//! conditions turn `True` (with `lastTransitionTime`). Missing nodes are
//! created (Ready, with an InternalIP) when
//! [`KubeletConfig::create_nodes`] is on. A pod deleted gracefully keeps its
//! `deletionTimestamp` for [`KubeletConfig::termination_delay`] (at most its
//! grace period) and is then removed, as a kubelet does after stopping its
//! containers. All its writes are internal (not in the write log).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedReceiver;

use crate::object::{self, meta_str, store_key};
use crate::registry::{DeleteOptions, WriteOptions};
use crate::resources::{ResourceInfo, Strategy};
use crate::state::Shared;
use crate::store::{Change, WatchEvent, WatchEventType};

pub use crate::config::KubeletConfig;

/// A CIDR that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    /// Not `address/prefix`.
    #[error("invalid CIDR {0:?}")]
    Invalid(String),
}

#[derive(Debug)]
struct Pool {
    base: IpAddr,
    size: u128,
    next: u128,
}

impl Pool {
    fn parse(cidr: &str) -> Result<Self, CidrError> {
        let err = || CidrError::Invalid(cidr.to_owned());
        let (addr, prefix) = cidr.split_once('/').ok_or_else(err)?;
        let base: IpAddr = addr.parse().map_err(|_| err())?;
        let prefix: u32 = prefix.parse().map_err(|_| err())?;
        let bits = if base.is_ipv4() { 32 } else { 128 };
        if prefix > bits {
            return Err(err());
        }
        let size = if bits - prefix >= 127 {
            u128::MAX
        } else {
            1u128 << (bits - prefix)
        };
        Ok(Self { base, size, next: 1 })
    }

    fn allocate(&mut self) -> Option<IpAddr> {
        if self.next + 1 >= self.size {
            return None;
        }
        let offset = self.next;
        self.next += 1;
        Some(match self.base {
            IpAddr::V4(v4) => IpAddr::V4(Ipv4Addr::from(u32::from(v4).wrapping_add(offset as u32))),
            IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6).wrapping_add(offset))),
        })
    }
}

pub(crate) struct Kubelet {
    config: KubeletConfig,
    pools: Mutex<Vec<Pool>>,
    assigned: Mutex<HashMap<String, Vec<String>>>,
    nodes: Mutex<Pool>,
}

impl Kubelet {
    pub(crate) fn new(config: KubeletConfig) -> Result<Self, CidrError> {
        let pools = config
            .pod_cidrs
            .iter()
            .map(|c| Pool::parse(c))
            .collect::<Result<Vec<_>, _>>()?;
        let nodes = Pool::parse("172.18.0.0/16")?;
        Ok(Self {
            config,
            pools: Mutex::new(pools),
            assigned: Mutex::new(HashMap::new()),
            nodes: Mutex::new(nodes),
        })
    }

    fn ips_for(&self, uid: &str) -> Vec<String> {
        let mut assigned = self.assigned.lock();
        if let Some(ips) = assigned.get(uid) {
            return ips.clone();
        }
        let ips: Vec<String> = self
            .pools
            .lock()
            .iter_mut()
            .filter_map(Pool::allocate)
            .map(|ip| ip.to_string())
            .collect();
        assigned.insert(uid.to_owned(), ips.clone());
        ips
    }
}

/// The events [`run`] acts on: pods, not deleted.
pub(crate) fn wants(info: &ResourceInfo, ev: &WatchEvent) -> bool {
    info.strategy == Strategy::Pod && ev.kind != WatchEventType::Deleted
}

/// Runs the simulator over pod events until the server is dropped; it owns
/// the simulator's address pools.
pub(crate) async fn run(shared: Weak<Shared>, kubelet: Kubelet, mut rx: UnboundedReceiver<Arc<WatchEvent>>) {
    while let Some(ev) = rx.recv().await {
        let Some(shared) = shared.upgrade() else { return };
        let info = shared.store.table.get(ev.resource);
        if info.strategy != Strategy::Pod || ev.kind == WatchEventType::Deleted {
            continue;
        }
        handle_pod(&shared, &kubelet, &ev);
    }
}

fn handle_pod(shared: &Arc<Shared>, kubelet: &Kubelet, ev: &WatchEvent) {
    let pod = ev.object.value.as_ref();
    let node = pod.pointer("/spec/nodeName").and_then(Value::as_str).unwrap_or("");
    if node.is_empty() {
        return;
    }
    if object::is_deleting(pod) {
        let grace = pod
            .pointer("/metadata/deletionGracePeriodSeconds")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let was_deleting = ev.prev.as_ref().is_some_and(|p| object::is_deleting(&p.value));
        if grace > 0 && !was_deleting {
            let delay = kubelet.config.termination_delay.min(Duration::from_secs(grace as u64));
            let (weak, res, ns, name, uid) = (
                Arc::downgrade(shared),
                ev.resource,
                meta_str(pod, "namespace").to_owned(),
                meta_str(pod, "name").to_owned(),
                meta_str(pod, "uid").to_owned(),
            );
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                if let Some(shared) = weak.upgrade() {
                    let opts = DeleteOptions {
                        grace_period_seconds: Some(0),
                        precondition_uid: Some(uid),
                        ..DeleteOptions::default()
                    };
                    let _ = shared.registry.delete(res, Some(&ns), &name, &opts);
                }
            });
        }
        return;
    }
    let phase = pod.pointer("/status/phase").and_then(Value::as_str).unwrap_or("");
    if phase != "Pending" && !phase.is_empty() {
        return;
    }
    let host_ip = ensure_node(shared, kubelet, node);
    let uid = meta_str(pod, "uid").to_owned();
    let ips = kubelet.ips_for(&uid);
    let now = object::now_rfc3339();
    let ready_now = kubelet.config.ready_delay.is_zero();
    set_status(shared, ev.resource, &ev.key, &uid, |pod| {
        let containers = pod
            .pointer("/spec/containers")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let ready = if ready_now { "True" } else { "False" };
        let statuses: Vec<Value> = containers
            .iter()
            .map(|c| {
                json!({"name": c.get("name"), "image": c.get("image"), "imageID": "", "containerID": format!("containerd://{}", uid.replace('-', "")),
                    "ready": ready_now, "started": true, "restartCount": 0, "state": {"running": {"startedAt": now}}})
            })
            .collect();
        let mut conditions = vec![
            json!({"type": "PodReadyToStartContainers", "status": "True", "lastProbeTime": null, "lastTransitionTime": now}),
            json!({"type": "Initialized", "status": "True", "lastProbeTime": null, "lastTransitionTime": now}),
            json!({"type": "Ready", "status": ready, "lastProbeTime": null, "lastTransitionTime": now}),
            json!({"type": "ContainersReady", "status": ready, "lastProbeTime": null, "lastTransitionTime": now}),
            json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": now}),
        ];
        if !ready_now {
            for c in &mut conditions[2..4] {
                c["reason"] = json!("ContainersNotReady");
            }
        }
        let status = &mut pod["status"];
        status["phase"] = json!("Running");
        status["hostIP"] = json!(host_ip);
        status["hostIPs"] = json!([{"ip": host_ip}]);
        if let Some(first) = ips.first() {
            status["podIP"] = json!(first);
        }
        status["podIPs"] = Value::Array(ips.iter().map(|ip| json!({"ip": ip})).collect());
        status["startTime"] = json!(now);
        status["conditions"] = Value::Array(conditions);
        status["containerStatuses"] = Value::Array(statuses);
    });
    if !ready_now {
        let (weak, res, key, delay) = (
            Arc::downgrade(shared),
            ev.resource,
            ev.key.clone(),
            kubelet.config.ready_delay,
        );
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let Some(shared) = weak.upgrade() else { return };
            set_status(&shared, res, &key, &uid, |pod| {
                let now = object::now_rfc3339();
                if let Some(Value::Array(conds)) = pod.pointer_mut("/status/conditions") {
                    for c in conds.iter_mut() {
                        if matches!(c.get("type").and_then(Value::as_str), Some("Ready" | "ContainersReady")) {
                            *c = json!({"type": c["type"], "status": "True", "lastProbeTime": null, "lastTransitionTime": now});
                        }
                    }
                }
                if let Some(Value::Array(statuses)) = pod.pointer_mut("/status/containerStatuses") {
                    for s in statuses {
                        s["ready"] = json!(true);
                    }
                }
            });
        });
    }
}

/// Applies `f` to the pod's status (internal write; skipped when the pod
/// was replaced or is being deleted).
fn set_status(shared: &Shared, res: crate::resources::ResourceId, key: &str, uid: &str, f: impl Fn(&mut Value)) {
    let name = key.rsplit('/').next().unwrap_or(key).to_owned();
    let _ = shared.registry.guaranteed_update(res, key, &name, false, |current| {
        let pod = current.value.as_ref();
        if meta_str(pod, "uid") != uid || object::is_deleting(pod) {
            return Ok(Change::Unchanged);
        }
        let mut new = pod.clone();
        f(&mut new);
        Ok(Change::Store(new))
    });
}

/// Returns the node's InternalIP, creating the node when allowed.
fn ensure_node(shared: &Shared, kubelet: &Kubelet, node: &str) -> String {
    let Some(nodes) = shared.store.table.by_path("", "v1", "nodes") else {
        return String::new();
    };
    let internal_ip = |n: &Value| {
        n.pointer("/status/addresses")
            .and_then(Value::as_array)
            .and_then(|a| {
                a.iter()
                    .find(|x| x.get("type").and_then(Value::as_str) == Some("InternalIP"))
            })
            .and_then(|x| x.get("address").and_then(Value::as_str))
            .unwrap_or("")
            .to_owned()
    };
    if let Some(existing) = shared.store.get(nodes, &store_key(None, node)) {
        return internal_ip(&existing.value);
    }
    if !kubelet.config.create_nodes {
        return String::new();
    }
    let ip = kubelet
        .nodes
        .lock()
        .allocate()
        .map(|ip| ip.to_string())
        .unwrap_or_default();
    let now = object::now_rfc3339();
    let obj = json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": node, "labels": {"kubernetes.io/hostname": node, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"}},
        "spec": {},
        "status": {
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status",
                "lastHeartbeatTime": now, "lastTransitionTime": now}],
            "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": node}],
            "nodeInfo": {"kubeletVersion": shared.config.git_version, "architecture": "amd64", "operatingSystem": "linux",
                "containerRuntimeVersion": "containerd://2.0.0", "kernelVersion": "6.0.0", "osImage": "ecm-apiserver hollow node",
                "kubeProxyVersion": "", "machineID": "", "systemUUID": "", "bootID": ""},
        },
    });
    match shared.registry.create(
        nodes,
        None,
        obj,
        &WriteOptions {
            dry_run: false,
            skip_validation: true,
            ..WriteOptions::default()
        },
    ) {
        Ok(created) => internal_ip(&created.value),
        Err(_) => shared
            .store
            .get(nodes, node)
            .map(|n| internal_ip(&n.value))
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_hand_out_sequential_addresses() {
        let mut p = Pool::parse("10.244.0.0/30").unwrap();
        assert_eq!(p.allocate(), Some("10.244.0.1".parse().unwrap()));
        assert_eq!(p.allocate(), Some("10.244.0.2".parse().unwrap()));
        assert_eq!(p.allocate(), None);
        let mut p6 = Pool::parse("fd00::/64").unwrap();
        assert_eq!(p6.allocate(), Some("fd00::1".parse().unwrap()));
        assert!(Pool::parse("nope").is_err());
    }
}
