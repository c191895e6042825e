//! What the bench sees of ecm's output: watches on Endpoints and
//! EndpointSlices in the bench's namespaces, from which it counts ecm's
//! writes (every event after the initial list is one create, update or
//! delete, and only ecm writes these objects here), tracks how many
//! Services are converged (Endpoints with all pods ready, slices holding
//! all pods ready), and times pending readiness changes until both objects
//! show them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Endpoints;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::Api;
use kube::runtime::watcher::{self, Event, watcher};
use tokio::time::Instant;

use crate::workload::PodRef;

/// Creates, updates and deletes of one resource seen in watch events.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Writes {
    /// Objects created.
    pub creates: u64,
    /// Objects updated.
    pub updates: u64,
    /// Objects deleted.
    pub deletes: u64,
}

impl Writes {
    /// All of them.
    pub fn total(&self) -> u64 {
        self.creates + self.updates + self.deletes
    }
}

/// A readiness change the bench made and has not yet seen in an object.
#[derive(Debug, Clone, Copy)]
struct Pending {
    ready: bool,
    at: Instant,
}

/// Per-Service readiness as the objects show it.
#[derive(Debug, Default)]
struct ServiceState {
    endpoints_ready: usize,
    slices_ready: HashMap<String, usize>,
    converged: bool,
}

/// Everything the watches keep.
#[derive(Debug, Default)]
pub struct State {
    /// Writes to Endpoints.
    pub endpoints: Writes,
    /// Writes to EndpointSlices.
    pub slices: Writes,
    /// When the last write was seen.
    pub last_write: Option<Instant>,
    /// Services whose objects show all their pods ready.
    pub converged: usize,
    services: HashMap<(String, String), ServiceState>,
    known_endpoints: std::collections::HashSet<(String, String)>,
    known_slices: HashMap<(String, String), String>,
    pending_endpoints: HashMap<PodRef, Pending>,
    pending_slices: HashMap<PodRef, Pending>,
    /// Latencies of readiness changes seen in Endpoints.
    pub endpoints_latency: Vec<Duration>,
    /// Latencies of readiness changes seen in EndpointSlices.
    pub slices_latency: Vec<Duration>,
    pods_per_service: usize,
}

/// The watches and their shared state.
pub struct Observer {
    /// The state, shared with the watch tasks.
    pub state: Arc<Mutex<State>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl State {
    fn update_service(&mut self, key: (String, String), f: impl FnOnce(&mut ServiceState)) {
        let pods = self.pods_per_service;
        let service = self.services.entry(key).or_default();
        f(service);
        let converged = service.endpoints_ready == pods && service.slices_ready.values().sum::<usize>() == pods;
        if converged != service.converged {
            service.converged = converged;
            if converged {
                self.converged += 1;
            } else {
                self.converged -= 1;
            }
        }
    }

    fn count(writes: &mut Writes, created: bool, last_write: &mut Option<Instant>) {
        if created {
            writes.creates += 1;
        } else {
            writes.updates += 1;
        }
        *last_write = Some(Instant::now());
    }

    fn endpoints(&mut self, endpoints: &Endpoints, live: bool) {
        let namespace = endpoints.metadata.namespace.clone().unwrap_or_default();
        let name = endpoints.metadata.name.clone().unwrap_or_default();
        let key = (namespace.clone(), name);
        let created = self.known_endpoints.insert(key.clone());
        if live {
            Self::count(&mut self.endpoints, created, &mut self.last_write);
        }
        let mut ready = 0;
        for subset in endpoints.subsets.iter().flatten() {
            for (addresses, is_ready) in [(&subset.addresses, true), (&subset.not_ready_addresses, false)] {
                for address in addresses.iter().flatten() {
                    ready += usize::from(is_ready);
                    let Some(target) = &address.target_ref else { continue };
                    let pod = PodRef {
                        namespace: target.namespace.clone().unwrap_or_else(|| namespace.clone()),
                        name: target.name.clone().unwrap_or_default(),
                    };
                    seen(&mut self.pending_endpoints, &mut self.endpoints_latency, &pod, is_ready);
                }
            }
        }
        self.update_service(key, |s| s.endpoints_ready = ready);
    }

    fn slice(&mut self, slice: &EndpointSlice, live: bool) {
        let namespace = slice.metadata.namespace.clone().unwrap_or_default();
        let name = slice.metadata.name.clone().unwrap_or_default();
        let Some(service) = slice
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("kubernetes.io/service-name"))
            .cloned()
        else {
            return;
        };
        let created = self
            .known_slices
            .insert((namespace.clone(), name.clone()), service.clone())
            .is_none();
        if live {
            Self::count(&mut self.slices, created, &mut self.last_write);
        }
        let mut ready = 0;
        for endpoint in slice.endpoints.iter().flatten() {
            let is_ready = endpoint.conditions.as_ref().and_then(|c| c.ready) == Some(true);
            ready += usize::from(is_ready);
            let Some(target) = &endpoint.target_ref else { continue };
            let pod = PodRef {
                namespace: target.namespace.clone().unwrap_or_else(|| namespace.clone()),
                name: target.name.clone().unwrap_or_default(),
            };
            seen(&mut self.pending_slices, &mut self.slices_latency, &pod, is_ready);
        }
        self.update_service((namespace, service), |s| {
            s.slices_ready.insert(name, ready);
        });
    }

    fn endpoints_deleted(&mut self, endpoints: &Endpoints) {
        let key = (
            endpoints.metadata.namespace.clone().unwrap_or_default(),
            endpoints.metadata.name.clone().unwrap_or_default(),
        );
        self.known_endpoints.remove(&key);
        self.endpoints.deletes += 1;
        self.last_write = Some(Instant::now());
        self.update_service(key, |s| s.endpoints_ready = 0);
    }

    fn slice_deleted(&mut self, slice: &EndpointSlice) {
        let namespace = slice.metadata.namespace.clone().unwrap_or_default();
        let name = slice.metadata.name.clone().unwrap_or_default();
        self.slices.deletes += 1;
        self.last_write = Some(Instant::now());
        if let Some(service) = self.known_slices.remove(&(namespace.clone(), name.clone())) {
            self.update_service((namespace, service), |s| {
                s.slices_ready.remove(&name);
            });
        }
    }

    /// Expects `pod` to show `ready` in both objects; latency counts from now.
    pub fn expect(&mut self, pod: &PodRef, ready: bool) {
        let pending = Pending {
            ready,
            at: Instant::now(),
        };
        self.pending_endpoints.insert(pod.clone(), pending);
        self.pending_slices.insert(pod.clone(), pending);
    }

    /// Restarts the clock of a pending change (when its write returned).
    pub fn written(&mut self, pod: &PodRef) {
        let now = Instant::now();
        for pending in [&mut self.pending_endpoints, &mut self.pending_slices] {
            if let Some(p) = pending.get_mut(pod) {
                p.at = now;
            }
        }
    }

    /// Whether a change to `pod` is still pending.
    pub fn is_pending(&self, pod: &PodRef) -> bool {
        self.pending_endpoints.contains_key(pod) || self.pending_slices.contains_key(pod)
    }

    /// Changes not yet seen in Endpoints and in EndpointSlices.
    pub fn pending(&self) -> (usize, usize) {
        (self.pending_endpoints.len(), self.pending_slices.len())
    }

    /// Writes of both resources.
    pub fn total_writes(&self) -> u64 {
        self.endpoints.total() + self.slices.total()
    }
}

/// Records the latency of a pending change `pod` when the object shows it.
fn seen(pending: &mut HashMap<PodRef, Pending>, latencies: &mut Vec<Duration>, pod: &PodRef, ready: bool) {
    if let Some(p) = pending.get(pod)
        && p.ready == ready
    {
        latencies.push(p.at.elapsed());
        pending.remove(pod);
    }
}

impl Observer {
    /// Starts watching Endpoints and EndpointSlices in `namespaces`, Services
    /// having `pods_per_service` pods; returns once both initial lists are in.
    pub async fn start(client: &kube::Client, namespaces: &[String], pods_per_service: usize) -> Self {
        let state = Arc::new(Mutex::new(State {
            pods_per_service,
            ..State::default()
        }));
        let mut tasks = Vec::new();
        let mut synced = Vec::new();
        for namespace in namespaces {
            let (tx, rx) = tokio::sync::oneshot::channel();
            tasks.push(watch(
                Api::<Endpoints>::namespaced(client.clone(), namespace),
                Arc::clone(&state),
                tx,
                State::endpoints,
                State::endpoints_deleted,
            ));
            synced.push(rx);
            let (tx, rx) = tokio::sync::oneshot::channel();
            tasks.push(watch(
                Api::<EndpointSlice>::namespaced(client.clone(), namespace),
                Arc::clone(&state),
                tx,
                State::slice,
                State::slice_deleted,
            ));
            synced.push(rx);
        }
        for rx in synced {
            let _ = rx.await;
        }
        Self { state, tasks }
    }

    /// Runs `f` on the state.
    pub fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }

    /// Stops the watches.
    pub fn stop(self) {
        for task in self.tasks {
            task.abort();
        }
    }
}

/// One watch task: applies events to the state; `synced` fires after the
/// first initial list. Events of a (re)list are applied without counting.
fn watch<K>(
    api: Api<K>,
    state: Arc<Mutex<State>>,
    synced: tokio::sync::oneshot::Sender<()>,
    apply: fn(&mut State, &K, bool),
    delete: fn(&mut State, &K),
) -> tokio::task::JoinHandle<()>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    tokio::spawn(async move {
        let mut synced = Some(synced);
        let config = watcher::Config::default().any_semantic();
        let mut events = watcher(api, config).boxed();
        while let Some(event) = events.next().await {
            let Ok(event) = event else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            let mut state = state.lock().unwrap();
            match event {
                Event::Apply(object) => apply(&mut state, &object, true),
                Event::InitApply(object) => apply(&mut state, &object, false),
                Event::Delete(object) => delete(&mut state, &object),
                Event::Init => {}
                Event::InitDone => {
                    if let Some(tx) = synced.take() {
                        let _ = tx.send(());
                    }
                }
            }
        }
    })
}
