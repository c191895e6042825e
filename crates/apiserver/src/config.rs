//! Server configuration.

use std::time::Duration;

use crate::faults::FaultConfig;
use crate::resources::{ResourceInfo, builtin_resources};
use crate::reviews::AuthConfig;

/// How an [`ApiServer`](crate::ApiServer) behaves. `Default` gives the
/// built-in resources, namespaces `default`, `kube-system`, `kube-public`
/// and `kube-node-lease`, 10 000 events of history per resource, bookmarks
/// every minute, garbage collection on, no kubelet, no workload simulator,
/// no faults, and no token or allow rule for the reviews.
#[derive(Debug, Clone)]
pub struct Config {
    pub(crate) resources: Vec<ResourceInfo>,
    pub(crate) namespaces: Vec<String>,
    pub(crate) history_size: usize,
    pub(crate) bookmark_interval: Duration,
    pub(crate) watch_timeout: Duration,
    pub(crate) seed: u64,
    pub(crate) garbage_collection: bool,
    pub(crate) dangling_owner_delay: Duration,
    pub(crate) kubelet: Option<KubeletConfig>,
    pub(crate) workloads: Option<WorkloadsConfig>,
    pub(crate) faults: FaultConfig,
    pub(crate) git_version: String,
    pub(crate) auth: AuthConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            resources: builtin_resources(),
            namespaces: ["default", "kube-system", "kube-public", "kube-node-lease"]
                .map(String::from)
                .to_vec(),
            history_size: 10_000,
            bookmark_interval: Duration::from_secs(60),
            watch_timeout: Duration::from_secs(1800),
            seed: 0,
            garbage_collection: true,
            dangling_owner_delay: Duration::from_secs(1),
            kubelet: None,
            workloads: None,
            faults: FaultConfig::default(),
            git_version: "v1.36.0".into(),
            auth: AuthConfig::default(),
        }
    }
}

impl Config {
    /// Adds (or replaces, same group/version/plural) a served resource.
    #[must_use]
    pub fn resource(mut self, info: ResourceInfo) -> Self {
        self.resources.push(info);
        self
    }

    /// Namespaces that exist at start (replaces the default four).
    #[must_use]
    pub fn namespaces<I: IntoIterator<Item = S>, S: Into<String>>(mut self, names: I) -> Self {
        self.namespaces = names.into_iter().map(Into::into).collect();
        self
    }

    /// Events kept per resource for watch resumption; older resourceVersions
    /// get 410 Gone (upstream's watch cache holds 100 to 100 000).
    #[must_use]
    pub fn history_size(mut self, events: usize) -> Self {
        self.history_size = events;
        self
    }

    /// How often watches with `allowWatchBookmarks=true` get a BOOKMARK
    /// (upstream: about a minute).
    #[must_use]
    pub fn bookmark_interval(mut self, every: Duration) -> Self {
        self.bookmark_interval = every;
        self
    }

    /// How long a watch without `timeoutSeconds` lasts (upstream: 30 to 60 minutes).
    #[must_use]
    pub fn watch_timeout(mut self, timeout: Duration) -> Self {
        self.watch_timeout = timeout;
        self
    }

    /// Seed of generated names and uids, so runs are reproducible.
    #[must_use]
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Turns the background garbage collector on or off.
    #[must_use]
    pub fn garbage_collection(mut self, on: bool) -> Self {
        self.garbage_collection = on;
        self
    }

    /// How long the garbage collector waits before deleting an object whose
    /// owners do not exist (upstream verifies absent owners with a live
    /// lookup; the delay lets a loader insert owners after dependents).
    #[must_use]
    pub fn dangling_owner_delay(mut self, delay: Duration) -> Self {
        self.dangling_owner_delay = delay;
        self
    }

    /// Runs the pod-status simulator (a hollow kubelet).
    #[must_use]
    pub fn kubelet(mut self, kubelet: KubeletConfig) -> Self {
        self.kubelet = Some(kubelet);
        self
    }

    /// Runs the workload simulator: Deployments and ReplicaSets get
    /// ReplicaSets and pods, rollouts and statuses (see
    /// [`WorkloadsConfig`]). Pair it with [`Config::kubelet`] so that the
    /// pods start and turn Ready.
    #[must_use]
    pub fn workloads(mut self, workloads: WorkloadsConfig) -> Self {
        self.workloads = Some(workloads);
        self
    }

    /// Initial fault injection rules.
    #[must_use]
    pub fn faults(mut self, faults: FaultConfig) -> Self {
        self.faults = faults;
        self
    }

    /// The static tokens and allow rules that `TokenReview` and
    /// `SubjectAccessReview` answer from.
    #[must_use]
    pub fn auth(mut self, auth: AuthConfig) -> Self {
        self.auth = auth;
        self
    }

    /// The `gitVersion` reported by `/version` (default `v1.36.0`).
    #[must_use]
    pub fn git_version(mut self, version: impl Into<String>) -> Self {
        self.git_version = version.into();
        self
    }
}

/// Settings of the pod-status simulator.
#[derive(Debug, Clone)]
pub struct KubeletConfig {
    pub(crate) pod_cidrs: Vec<String>,
    pub(crate) ready_delay: Duration,
    pub(crate) termination_delay: Duration,
    pub(crate) create_nodes: bool,
}

impl Default for KubeletConfig {
    /// Pods from 10.244.0.0/16, Ready after one second, removed one second
    /// after a graceful delete, nodes created on demand.
    fn default() -> Self {
        Self {
            pod_cidrs: vec!["10.244.0.0/16".into()],
            ready_delay: Duration::from_secs(1),
            termination_delay: Duration::from_secs(1),
            create_nodes: true,
        }
    }
}

impl KubeletConfig {
    /// Pod CIDRs, at most one per IP family (e.g. `10.244.0.0/16`, `fd00:10:244::/64`).
    #[must_use]
    pub fn pod_cidrs<I: IntoIterator<Item = S>, S: Into<String>>(mut self, cidrs: I) -> Self {
        self.pod_cidrs = cidrs.into_iter().map(Into::into).collect();
        self
    }

    /// Time from a pod starting (Running, not ready) to it becoming Ready.
    #[must_use]
    pub fn ready_delay(mut self, delay: Duration) -> Self {
        self.ready_delay = delay;
        self
    }

    /// Time a gracefully deleted pod stays terminating (capped by its grace period).
    #[must_use]
    pub fn termination_delay(mut self, delay: Duration) -> Self {
        self.termination_delay = delay;
        self
    }

    /// Whether nodes named by pods are created when missing.
    #[must_use]
    pub fn create_nodes(mut self, on: bool) -> Self {
        self.create_nodes = on;
        self
    }
}

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
