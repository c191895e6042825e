//! The workload: nodes in three zones, namespaces, and Services each
//! selecting their own ready pods (`app=<service>`, plus a `tier` label),
//! created over the API with many requests in flight. Pod status (IP,
//! phase Running, Ready) is written through the status subresource, as a
//! kubelet would.

use std::sync::atomic::{AtomicUsize, Ordering};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod, Service};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;

const ZONES: [&str; 3] = ["zone-a", "zone-b", "zone-c"];

/// Names of everything the bench creates.
#[derive(Debug, Clone)]
pub struct Workload {
    /// Prefix of namespace and node names (unique per run on a real cluster).
    pub prefix: String,
    /// Number of namespaces.
    pub namespaces: usize,
    /// Number of Services.
    pub services: usize,
    /// Pods per Service.
    pub pods_per_service: usize,
    /// Number of nodes.
    pub nodes: usize,
}

/// One pod of the workload, by index.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PodRef {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
}

impl Workload {
    /// Namespace `i`.
    pub fn namespace(&self, i: usize) -> String {
        format!("{}-{i}", self.prefix)
    }

    /// Namespace and name of Service `s` (spread round robin).
    pub fn service(&self, s: usize) -> (String, String) {
        (self.namespace(s % self.namespaces), format!("svc-{s}"))
    }

    /// Total pods.
    pub fn pods(&self) -> usize {
        self.services * self.pods_per_service
    }

    /// Pod `p` (Service `p / pods_per_service`).
    pub fn pod(&self, p: usize) -> PodRef {
        let s = p / self.pods_per_service;
        let (namespace, service) = self.service(s);
        PodRef {
            namespace,
            name: format!("{service}-{}", p % self.pods_per_service),
        }
    }

    fn node_name(&self, n: usize) -> String {
        format!("{}-node-{n}", self.prefix)
    }

    /// The IP of pod `p`: 10.0.0.0/8 from 10.0.0.1 up.
    fn pod_ip(p: usize) -> String {
        let k = p + 1;
        format!("10.{}.{}.{}", (k >> 16) & 255, (k >> 8) & 255, k & 255)
    }

    /// Creates the namespaces.
    pub async fn create_namespaces(&self, client: &kube::Client) {
        let namespaces: Api<Namespace> = Api::all(client.clone());
        for i in 0..self.namespaces {
            let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": self.namespace(i)}})).unwrap();
            create_or_keep(namespaces.create(&PostParams::default(), &ns).await);
        }
    }

    /// Creates nodes, Services and pods with their status, with
    /// `parallel` requests in flight. Returns the number of requests.
    pub async fn load(&self, client: &kube::Client, parallel: usize) -> usize {
        let requests = AtomicUsize::new(0);
        let post = PostParams::default();
        let nodes: Api<Node> = Api::all(client.clone());
        futures::stream::iter(0..self.nodes)
            .for_each_concurrent(parallel, |n| {
                let (nodes, post, requests) = (nodes.clone(), post.clone(), &requests);
                async move {
                    let node: Node = serde_json::from_value(json!({
                        "metadata": {"name": self.node_name(n), "labels": {
                            "topology.kubernetes.io/zone": ZONES[n % ZONES.len()],
                            "kubernetes.io/hostname": self.node_name(n)}},
                        "status": {"conditions": [{"type": "Ready", "status": "True"}],
                            "addresses": [{"type": "InternalIP", "address": node_ip(n)}],
                            "allocatable": {"cpu": "4", "memory": "16Gi"}},
                    }))
                    .unwrap();
                    create_or_keep(nodes.create(&post, &node).await);
                    requests.fetch_add(1, Ordering::Relaxed);
                }
            })
            .await;
        futures::stream::iter(0..self.services)
            .for_each_concurrent(parallel, |s| {
                let (post, requests) = (post.clone(), &requests);
                async move {
                    let (namespace, name) = self.service(s);
                    let service: Service = serde_json::from_value(json!({
                        "metadata": {"name": name},
                        "spec": {"selector": {"app": name, "tier": tier(s)},
                            "ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
                    }))
                    .unwrap();
                    let api: Api<Service> = Api::namespaced(client.clone(), &namespace);
                    create_or_keep(api.create(&post, &service).await);
                    requests.fetch_add(1, Ordering::Relaxed);
                }
            })
            .await;
        futures::stream::iter(0..self.pods())
            .for_each_concurrent(parallel, |p| {
                let (post, requests) = (post.clone(), &requests);
                async move {
                    self.create_pod(client, &post, p).await;
                    requests.fetch_add(2, Ordering::Relaxed);
                }
            })
            .await;
        requests.into_inner()
    }

    async fn create_pod(&self, client: &kube::Client, post: &PostParams, p: usize) {
        let s = p / self.pods_per_service;
        let (_, service) = self.service(s);
        let pod_ref = self.pod(p);
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": pod_ref.name, "labels": {
                "app": service, "tier": tier(s), "pod-template-hash": format!("h{s}")}},
            "spec": {"nodeName": self.node_name(p % self.nodes),
                "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10",
                    "ports": [{"name": "http", "containerPort": 8080}]}]},
        }))
        .unwrap();
        let api: Api<Pod> = Api::namespaced(client.clone(), &pod_ref.namespace);
        create_or_keep(api.create(post, &pod).await);
        let (ip, host) = (Self::pod_ip(p), node_ip(p % self.nodes));
        let status = json!({"status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
            "hostIP": host, "hostIPs": [{"ip": host}],
            "conditions": [{"type": "Ready", "status": "True"}, {"type": "ContainersReady", "status": "True"}]}});
        api.patch_status(&pod_ref.name, &PatchParams::default(), &Patch::Merge(&status))
            .await
            .unwrap();
    }

    /// Deletes the namespaces and nodes (best effort; for real clusters).
    pub async fn delete(&self, client: &kube::Client) {
        let namespaces: Api<Namespace> = Api::all(client.clone());
        for i in 0..self.namespaces {
            let _ = namespaces.delete(&self.namespace(i), &DeleteParams::default()).await;
        }
        let nodes: Api<Node> = Api::all(client.clone());
        for n in 0..self.nodes {
            let _ = nodes.delete(&self.node_name(n), &DeleteParams::default()).await;
        }
    }
}

/// The InternalIP of node `n`: 192.168.0.0/16.
fn node_ip(n: usize) -> String {
    format!("192.168.{}.{}", (n >> 8) & 255, (n & 255) + 1)
}

/// The `tier` label of Service `s`'s pods.
fn tier(s: usize) -> &'static str {
    ["web", "api", "worker"][s % 3]
}

/// Sets pod `pod`'s Ready condition.
pub async fn set_ready(client: &kube::Client, pod: &PodRef, ready: bool) {
    let value = if ready { "True" } else { "False" };
    let status = json!({"status": {"conditions": [
        {"type": "Ready", "status": value}, {"type": "ContainersReady", "status": value}]}});
    let api: Api<Pod> = Api::namespaced(client.clone(), &pod.namespace);
    api.patch_status(&pod.name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
}

/// Panics on any error but "already exists" (a re-run on a real cluster).
fn create_or_keep<T>(result: kube::Result<T>) {
    match result {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 409 => {}
        Err(err) => panic!("create failed: {err}"),
    }
}
