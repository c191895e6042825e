//! The resource table: which resources the server serves and how.
//!
//! Objects are stored generically as JSON; what differs between resources is
//! described by one [`ResourceInfo`] entry (group, version, plural, kind,
//! scope, subresources, short names, the field selectors it accepts and the
//! registry [`Strategy`] applied on create and update). Adding a resource is
//! adding one entry, with [`Config::resource`](crate::Config::resource).

use std::collections::HashMap;

/// How the server prepares objects of a resource on create and update,
/// following the upstream registry strategies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Strategy {
    /// Stored as given; no `generation`.
    Plain,
    /// `generation` is 1 on create and bumped when anything outside
    /// `metadata` and `status` changes (Deployments, custom resources).
    SpecGeneration,
    /// core/v1 Pod: status reset to `Pending` on create, defaults applied,
    /// status IPs validated, graceful deletion when a kubelet runs.
    Pod,
    /// core/v1 Service: ClusterIP allocated, port defaults.
    Service,
    /// core/v1 Namespace: phase `Active`, `kubernetes` finalizer, content
    /// deleted on deletion.
    Namespace,
    /// core/v1 Node: status may be set on create.
    Node,
    /// core/v1 Endpoints: validated like `ValidateEndpoints`; create on PUT allowed.
    Endpoints,
    /// discovery.k8s.io/v1 EndpointSlice: `generation` 1 on create, bumped on
    /// any change outside metadata and on label changes; validated.
    EndpointSlice,
    /// A review (`TokenReview`, `SubjectAccessReview`): `create` answers
    /// with a computed status and stores nothing (see
    /// [`AuthConfig`](crate::AuthConfig)).
    Review,
}

/// One served resource.
#[derive(Debug, Clone)]
pub struct ResourceInfo {
    /// API group; empty for core.
    pub group: String,
    /// API version, e.g. `v1`.
    pub version: String,
    /// Plural resource name used in paths, e.g. `endpointslices`.
    pub plural: String,
    /// Singular name, e.g. `endpointslice`.
    pub singular: String,
    /// Kind, e.g. `EndpointSlice`.
    pub kind: String,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
    /// Subresources served: `status`, and `scale` (autoscaling/v1 Scale
    /// over `spec.replicas`).
    pub subresources: Vec<String>,
    /// Short names advertised in discovery (`kubectl get po`).
    pub short_names: Vec<String>,
    /// Categories advertised in discovery (`kubectl get all`).
    pub categories: Vec<String>,
    /// Verbs advertised in discovery.
    pub verbs: Vec<String>,
    /// Field selector labels accepted besides `metadata.name` and
    /// `metadata.namespace`, each with the JSON path it reads (dotted) and
    /// the value used when the field is absent.
    pub field_selectors: Vec<FieldSelectorField>,
    /// Registry behaviour.
    pub strategy: Strategy,
}

/// A field selector label a resource accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldSelectorField {
    /// The label in selectors, e.g. `spec.nodeName`.
    pub label: String,
    /// Dotted path read from the object.
    pub path: String,
    /// The value an absent field has, e.g. `false` for booleans.
    pub default: String,
}

const ALL_VERBS: [&str; 8] = [
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

impl ResourceInfo {
    /// A resource with all verbs, no subresources and the [`Strategy::Plain`]
    /// strategy. The singular name is the lowercased kind.
    pub fn new(group: &str, version: &str, plural: &str, kind: &str, namespaced: bool) -> Self {
        Self {
            group: group.to_owned(),
            version: version.to_owned(),
            plural: plural.to_owned(),
            singular: kind.to_lowercase(),
            kind: kind.to_owned(),
            namespaced,
            subresources: Vec::new(),
            short_names: Vec::new(),
            categories: Vec::new(),
            verbs: ALL_VERBS.iter().map(|v| (*v).to_owned()).collect(),
            field_selectors: Vec::new(),
            strategy: Strategy::Plain,
        }
    }

    /// Adds the `status` subresource.
    #[must_use]
    pub fn with_status(mut self) -> Self {
        self.subresources.push("status".into());
        self
    }

    /// Adds the `scale` subresource (autoscaling/v1 `Scale` of `spec.replicas`).
    #[must_use]
    pub fn with_scale(mut self) -> Self {
        self.subresources.push("scale".into());
        self
    }

    /// Group, version and kind a subresource answers with: `autoscaling`,
    /// `v1`, `Scale` for `scale`; the resource's own for the others.
    pub fn subresource_kind(&self, subresource: &str) -> (String, String, String) {
        if subresource == "scale" {
            return ("autoscaling".into(), "v1".into(), "Scale".into());
        }
        (self.group.clone(), self.version.clone(), self.kind.clone())
    }

    /// Sets the short names.
    #[must_use]
    pub fn short_names(mut self, names: &[&str]) -> Self {
        self.short_names = names.iter().map(|n| (*n).to_owned()).collect();
        self
    }

    /// Sets the categories.
    #[must_use]
    pub fn categories(mut self, names: &[&str]) -> Self {
        self.categories = names.iter().map(|n| (*n).to_owned()).collect();
        self
    }

    /// Sets the strategy.
    #[must_use]
    pub fn strategy(mut self, strategy: Strategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// Adds a field selector label reading `label` itself as a dotted path.
    #[must_use]
    pub fn field(self, label: &str) -> Self {
        self.field_at(label, label, "")
    }

    /// Adds a field selector label read from `path`, `default` when absent.
    #[must_use]
    pub fn field_at(mut self, label: &str, path: &str, default: &str) -> Self {
        self.field_selectors.push(FieldSelectorField {
            label: label.to_owned(),
            path: path.to_owned(),
            default: default.to_owned(),
        });
        self
    }

    /// `apiVersion` of the objects: `v1` or `group/version`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// Whether the `status` subresource is served.
    pub fn has_status(&self) -> bool {
        self.subresources.iter().any(|s| s == "status")
    }

    /// The list kind, e.g. `PodList`.
    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }
}

/// The built-in resources: core v1, discovery.k8s.io/v1, coordination.k8s.io/v1,
/// events.k8s.io/v1, apps/v1, batch/v1 (Job, CronJob), policy/v1
/// (PodDisruptionBudget), rbac.authorization.k8s.io/v1, and the reviews
/// of authentication.k8s.io/v1 and authorization.k8s.io/v1.
pub fn builtin_resources() -> Vec<ResourceInfo> {
    let core = |plural: &str, kind: &str, ns: bool| ResourceInfo::new("", "v1", plural, kind, ns);
    let apps = |plural: &str, kind: &str| {
        ResourceInfo::new("apps", "v1", plural, kind, true)
            .with_status()
            .strategy(Strategy::SpecGeneration)
            .categories(&["all"])
    };
    let rbac =
        |plural: &str, kind: &str, ns: bool| ResourceInfo::new("rbac.authorization.k8s.io", "v1", plural, kind, ns);
    let event_fields = |info: ResourceInfo| {
        [
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "type",
        ]
        .iter()
        .fold(info, |info, f| info.field(f))
        .field_at("source", "source.component", "")
    };
    vec![
        core("namespaces", "Namespace", false)
            .with_status()
            .short_names(&["ns"])
            .strategy(Strategy::Namespace)
            .field("status.phase"),
        core("pods", "Pod", true)
            .with_status()
            .short_names(&["po"])
            .categories(&["all"])
            .strategy(Strategy::Pod)
            .field("spec.nodeName")
            .field("spec.restartPolicy")
            .field("spec.schedulerName")
            .field("spec.serviceAccountName")
            .field_at("spec.hostNetwork", "spec.hostNetwork", "false")
            .field("status.phase")
            .field("status.podIP")
            .field("status.nominatedNodeName"),
        core("services", "Service", true)
            .with_status()
            .short_names(&["svc"])
            .categories(&["all"])
            .strategy(Strategy::Service)
            .field("spec.clusterIP")
            .field("spec.type"),
        core("endpoints", "Endpoints", true)
            .short_names(&["ep"])
            .strategy(Strategy::Endpoints),
        core("nodes", "Node", false)
            .with_status()
            .short_names(&["no"])
            .strategy(Strategy::Node)
            .field_at("spec.unschedulable", "spec.unschedulable", "false"),
        event_fields(core("events", "Event", true).short_names(&["ev"])),
        core("configmaps", "ConfigMap", true).short_names(&["cm"]),
        core("secrets", "Secret", true).field("type"),
        core("serviceaccounts", "ServiceAccount", true).short_names(&["sa"]),
        ResourceInfo::new("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice", true)
            .strategy(Strategy::EndpointSlice),
        ResourceInfo::new("coordination.k8s.io", "v1", "leases", "Lease", true),
        ResourceInfo::new("events.k8s.io", "v1", "events", "Event", true)
            .short_names(&["ev"])
            .field("reason")
            .field("type")
            .field("reportingController")
            .field("regarding.kind")
            .field("regarding.namespace")
            .field("regarding.name")
            .field("regarding.uid"),
        apps("deployments", "Deployment").with_scale().short_names(&["deploy"]),
        apps("replicasets", "ReplicaSet")
            .with_scale()
            .short_names(&["rs"])
            .field("status.replicas"),
        apps("statefulsets", "StatefulSet").with_scale().short_names(&["sts"]),
        apps("daemonsets", "DaemonSet").short_names(&["ds"]),
        ResourceInfo::new("batch", "v1", "jobs", "Job", true)
            .with_status()
            .strategy(Strategy::SpecGeneration)
            .categories(&["all"])
            .field("status.successful"),
        ResourceInfo::new("batch", "v1", "cronjobs", "CronJob", true)
            .with_status()
            .short_names(&["cj"])
            .strategy(Strategy::SpecGeneration)
            .categories(&["all"]),
        ResourceInfo::new("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", true)
            .with_status()
            .short_names(&["pdb"])
            .strategy(Strategy::SpecGeneration),
        rbac("roles", "Role", true),
        rbac("rolebindings", "RoleBinding", true),
        rbac("clusterroles", "ClusterRole", false),
        rbac("clusterrolebindings", "ClusterRoleBinding", false),
    ]
    .into_iter()
    .chain(review_resources())
    .collect()
}

/// The review resources: `tokenreviews` and `subjectaccessreviews`,
/// cluster-scoped, `create` only, answered by [`AuthConfig`](crate::AuthConfig) (the `reviews` module).
pub(crate) fn review_resources() -> Vec<ResourceInfo> {
    let review = |group: &str, plural: &str, kind: &str| {
        let mut info = ResourceInfo::new(group, "v1", plural, kind, false).strategy(Strategy::Review);
        info.verbs = vec!["create".into()];
        info
    };
    vec![
        review("authentication.k8s.io", "tokenreviews", "TokenReview"),
        review("authorization.k8s.io", "subjectaccessreviews", "SubjectAccessReview"),
    ]
}

/// Index of a resource in the [`ResourceTable`].
pub(crate) type ResourceId = usize;

/// All served resources with lookups by path and by kind.
#[derive(Debug, Clone)]
pub(crate) struct ResourceTable {
    entries: Vec<ResourceInfo>,
    by_path: HashMap<(String, String, String), ResourceId>,
    by_kind: HashMap<(String, String), ResourceId>,
}

impl ResourceTable {
    /// Builds the table; a later entry with the same group/version/plural replaces an earlier one.
    pub(crate) fn new(resources: Vec<ResourceInfo>) -> Self {
        let mut table = Self {
            entries: Vec::new(),
            by_path: HashMap::new(),
            by_kind: HashMap::new(),
        };
        for info in resources {
            let key = (info.group.clone(), info.version.clone(), info.plural.clone());
            if let Some(&id) = table.by_path.get(&key) {
                table.entries[id] = info;
            } else {
                table.by_path.insert(key, table.entries.len());
                table.entries.push(info);
            }
        }
        for (id, info) in table.entries.iter().enumerate() {
            table
                .by_kind
                .entry((info.group.clone(), info.kind.clone()))
                .or_insert(id);
        }
        table
    }

    pub(crate) fn get(&self, id: ResourceId) -> &ResourceInfo {
        &self.entries[id]
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (ResourceId, &ResourceInfo)> {
        self.entries.iter().enumerate()
    }

    pub(crate) fn by_path(&self, group: &str, version: &str, plural: &str) -> Option<ResourceId> {
        self.by_path
            .get(&(group.to_owned(), version.to_owned(), plural.to_owned()))
            .copied()
    }

    /// Finds a resource by `apiVersion` and `kind`, as in ownerReferences.
    pub(crate) fn by_api_version_kind(&self, api_version: &str, kind: &str) -> Option<ResourceId> {
        let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
        self.by_kind.get(&(group.to_owned(), kind.to_owned())).copied()
    }

    /// Finds a resource by plural name alone (first match), for the Rust API.
    pub(crate) fn by_plural(&self, plural: &str) -> Option<ResourceId> {
        let (plural, group) = plural.split_once('.').unwrap_or((plural, ""));
        self.entries
            .iter()
            .position(|i| i.plural == plural && (group.is_empty() || i.group == group))
    }

    /// Groups in order of first appearance with their versions.
    pub(crate) fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut groups: Vec<(String, Vec<String>)> = Vec::new();
        for info in &self.entries {
            if let Some((_, versions)) = groups.iter_mut().find(|(g, _)| *g == info.group) {
                if !versions.contains(&info.version) {
                    versions.push(info.version.clone());
                }
            } else {
                groups.push((info.group.clone(), vec![info.version.clone()]));
            }
        }
        groups
    }
}
