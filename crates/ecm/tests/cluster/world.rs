//! A chaos world: ecm-apiserver served over HTTP on 127.0.0.1 with nodes,
//! Services and pods, and the seeded churn that changes them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use ecm_apiserver::{ApiServer, ServeHandle};
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use super::objects::{self, NAMESPACE, PodSpec};
use super::oracle::{self, Problem};

/// How big a world is.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Shape {
    /// Services.
    pub(crate) services: usize,
    /// Pods at the start.
    pub(crate) pods: usize,
    /// Nodes.
    pub(crate) nodes: usize,
}

/// The server, its address and what the churn needs to remember.
pub(crate) struct World {
    /// The in-memory API server.
    pub(crate) server: ApiServer,
    listener: Option<ServeHandle>,
    /// Where its kubeconfig is.
    pub(crate) kubeconfig: PathBuf,
    /// A folder for this world's files.
    pub(crate) dir: PathBuf,
    churn: kube::Client,
    rng: StdRng,
    shape: Shape,
    next_pod: usize,
    /// Service index → port variant.
    variants: Vec<u8>,
    /// Zones each node has had.
    pub(crate) zones: BTreeMap<String, BTreeSet<String>>,
}

const ZONES: [&str; 3] = ["zone-a", "zone-b", "zone-c"];

fn pod_ip(n: usize) -> String {
    format!("10.{}.{}.{}", 1 + n / 65536, (n / 256) % 256, n % 256)
}

impl World {
    /// Builds the world of `seed` and serves it on 127.0.0.1.
    pub(crate) async fn start(name: &str, seed: u64, shape: Shape) -> Self {
        let server = ApiServer::new(ecm_apiserver::Config::default()).expect("server");
        let listener = server
            .serve("127.0.0.1:0".parse().expect("address"))
            .await
            .expect("serve");
        let dir = std::env::temp_dir().join(format!("ecm-{name}-{}-{seed}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let kubeconfig = dir.join("kubeconfig");
        listener.write_kubeconfig(&kubeconfig).expect("kubeconfig");
        let churn = server.client_with_user_agent("chaos-churn");
        let mut world = Self {
            server,
            listener: Some(listener),
            kubeconfig,
            dir,
            churn,
            rng: StdRng::seed_from_u64(seed),
            shape,
            next_pod: 0,
            variants: vec![0; shape.services],
            zones: BTreeMap::new(),
        };
        for n in 0..shape.nodes {
            let (node, zone) = (format!("node-{n}"), ZONES[n % ZONES.len()]);
            world.server.insert_object(objects::node(&node, zone)).expect("node");
            world.zones.entry(node).or_default().insert(zone.to_owned());
        }
        for s in 0..shape.services {
            world.server.insert_object(objects::service(s, 0)).expect("service");
        }
        for p in 0..shape.pods {
            let app = format!("app-{}", p % shape.services);
            world.new_pod(&app);
        }
        world
    }

    /// Stops serving.
    pub(crate) async fn stop(&mut self) {
        if let Some(listener) = self.listener.take() {
            listener.shutdown().await;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    fn new_pod(&mut self, app: &str) -> String {
        let n = self.next_pod;
        self.next_pod += 1;
        let spec = PodSpec {
            name: format!("pod-{n}"),
            app: app.to_owned(),
            ip: pod_ip(n),
            node: format!("node-{}", self.rng.random_range(0..self.shape.nodes)),
            ready: self.rng.random_bool(0.7),
            web: if self.rng.random_bool(0.5) { 8080 } else { 8081 },
            metrics: self.rng.random_bool(0.6),
            hold: self.rng.random_bool(0.5),
        };
        self.server.insert_object(objects::pod(&spec)).expect("pod");
        spec.name
    }

    fn pods(&self, deleting: bool) -> Vec<Value> {
        self.server
            .list_objects("pods")
            .into_iter()
            .filter(|p| p.pointer("/metadata/deletionTimestamp").is_some_and(|t| !t.is_null()) == deleting)
            .collect()
    }

    fn app(&mut self) -> String {
        format!("app-{}", self.rng.random_range(0..self.shape.services))
    }

    /// One seeded change; returns its name. The churn's writes are never
    /// failed by the fault mix (it touches pods, Services and nodes with
    /// verbs the mix leaves alone).
    pub(crate) async fn churn_once(&mut self) -> &'static str {
        let live = self.pods(false);
        let roll = self.rng.random_range(0..100);
        match roll {
            0..30 => {
                let Some(pod) = live.choose(&mut self.rng).cloned() else {
                    return "none";
                };
                let mut pod = objects::for_reinsert(pod);
                let ready = pod.pointer("/status/conditions/0/status") == Some(&json!("True"));
                objects::set_ready(&mut pod, !ready);
                self.server.insert_object(pod).expect("pod");
                "readiness flip"
            }
            30..45 => {
                let Some(pod) = live.choose(&mut self.rng).cloned() else {
                    return "none";
                };
                let app = pod
                    .pointer("/metadata/labels/app")
                    .and_then(Value::as_str)
                    .unwrap_or("app-0")
                    .to_owned();
                self.delete_pod(&pod).await;
                self.new_pod(&app);
                "pod replacement"
            }
            45..55 => {
                let Some(pod) = self.pods(true).choose(&mut self.rng).cloned() else {
                    return "none";
                };
                let name = pod.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("");
                let api: Api<Pod> = Api::namespaced(self.churn.clone(), NAMESPACE);
                let _ = api
                    .patch(
                        name,
                        &PatchParams::default(),
                        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
                    )
                    .await;
                "terminating pod gone"
            }
            55..70 => {
                let Some(pod) = live.choose(&mut self.rng).cloned() else {
                    return "none";
                };
                let mut pod = objects::for_reinsert(pod);
                pod["metadata"]["labels"]["app"] = json!(self.app());
                self.server.insert_object(pod).expect("pod");
                "relabel"
            }
            70..80 => {
                let s = self.rng.random_range(0..self.shape.services);
                let Some(service) = self.server.get_object("services", Some(NAMESPACE), &format!("svc-{s}")) else {
                    return "none";
                };
                self.variants[s] = (self.variants[s] + self.rng.random_range(1..4)) % 4;
                let mut service = objects::for_reinsert(service);
                service["spec"]["ports"] = objects::service(s, self.variants[s])["spec"]["ports"].clone();
                self.server.insert_object(service).expect("service");
                "service port change"
            }
            80..85 => {
                let s = self.rng.random_range(0..self.shape.services);
                let api: Api<Service> = Api::namespaced(self.churn.clone(), NAMESPACE);
                let _ = api.delete(&format!("svc-{s}"), &DeleteParams::default()).await;
                self.server
                    .insert_object(objects::service(s, self.variants[s]))
                    .expect("service");
                "service re-created"
            }
            85..93 => {
                let n = self.rng.random_range(0..self.shape.nodes);
                let (node, zone) = (format!("node-{n}"), *ZONES.choose(&mut self.rng).unwrap_or(&"zone-a"));
                self.server.insert_object(objects::node(&node, zone)).expect("node");
                self.zones.entry(node).or_default().insert(zone.to_owned());
                "node zone change"
            }
            _ => {
                if live.len() > self.shape.pods || self.rng.random_bool(0.5) {
                    let Some(pod) = live.choose(&mut self.rng).cloned() else {
                        return "none";
                    };
                    self.delete_pod(&pod).await;
                    "pod deleted"
                } else {
                    let app = self.app();
                    self.new_pod(&app);
                    "pod added"
                }
            }
        }
    }

    async fn delete_pod(&self, pod: &Value) {
        let name = pod.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("");
        let api: Api<Pod> = Api::namespaced(self.churn.clone(), NAMESPACE);
        let _ = api.delete(name, &DeleteParams::default()).await;
    }

    /// What differs from what the pods imply.
    pub(crate) fn problems(&self, max_per_slice: usize) -> Vec<Problem> {
        let services = self.server.list_objects("services");
        let services: Vec<Value> = services
            .into_iter()
            .filter(|s| s.pointer("/metadata/name") != Some(&json!("kubernetes")))
            .collect();
        oracle::check(&oracle::Cluster {
            services: &services,
            pods: &self.server.list_objects("pods"),
            endpoints: &self.server.list_objects("endpoints"),
            slices: &self.server.list_objects("endpointslices"),
            zones: &self.zones,
            max_per_slice,
        })
    }
}
