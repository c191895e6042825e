//! Well-known label keys, annotation keys and values the endpoint controllers
//! read or write.
//!
//! Each constant carries the exact string upstream Kubernetes uses; the doc
//! comment says who writes it and who reads it.

/// Label on an EndpointSlice naming the Service it belongs to
/// (`discovery.LabelServiceName`). Written by the EndpointSlice and mirroring
/// controllers; consumers group slices by it.
pub const LABEL_SERVICE_NAME: &str = "kubernetes.io/service-name";

/// Label on an EndpointSlice naming the controller that manages it
/// (`discovery.LabelManagedBy`). A controller only ever touches slices that
/// carry its own value.
pub const LABEL_MANAGED_BY: &str = "endpointslice.kubernetes.io/managed-by";

/// Value of [`LABEL_MANAGED_BY`] on slices written by the EndpointSlice
/// controller.
pub const MANAGED_BY_ENDPOINTSLICE_CONTROLLER: &str = "endpointslice-controller.k8s.io";

/// Value of [`LABEL_MANAGED_BY`] on slices written by the EndpointSlice
/// mirroring controller.
pub const MANAGED_BY_MIRRORING_CONTROLLER: &str = "endpointslicemirroring-controller.k8s.io";

/// Label on an Endpoints object naming the controller that manages it
/// (`v1.EndpointsLabelManagedBy`, Kubernetes 1.33+, KEP-4974).
pub const LABEL_ENDPOINTS_MANAGED_BY: &str = "endpoints.kubernetes.io/managed-by";

/// Value of [`LABEL_ENDPOINTS_MANAGED_BY`] written by the Endpoints controller.
pub const MANAGED_BY_ENDPOINTS_CONTROLLER: &str = "endpoint-controller";

/// Label marking the endpoints of a headless Service (`v1.IsHeadlessService`);
/// always set with an empty value. kube-proxy ignores objects carrying it.
pub const LABEL_HEADLESS: &str = "service.kubernetes.io/headless";

/// Label on an Endpoints object that, with the exact value `"true"`, stops
/// the mirroring controller from mirroring it (`discovery.LabelSkipMirror`).
pub const LABEL_SKIP_MIRROR: &str = "endpointslice.kubernetes.io/skip-mirror";

/// Node label holding the node's zone (`v1.LabelTopologyZone`); copied into
/// `endpoint.zone` and used by topology aware hints.
pub const LABEL_TOPOLOGY_ZONE: &str = "topology.kubernetes.io/zone";

/// Node label marking a control-plane node; such nodes are left out of the
/// topology-hint CPU model.
pub const LABEL_NODE_ROLE_CONTROL_PLANE: &str = "node-role.kubernetes.io/control-plane";

/// Legacy node label marking a control-plane node; treated like
/// [`LABEL_NODE_ROLE_CONTROL_PLANE`].
pub const LABEL_NODE_ROLE_MASTER: &str = "node-role.kubernetes.io/master";

/// Annotation carrying the time of the change that triggered the last write of
/// an Endpoints object or EndpointSlice (`v1.EndpointsLastChangeTriggerTime`),
/// RFC 3339 with nanoseconds in UTC. kube-proxy turns it into its network
/// programming latency metric.
pub const ANNOTATION_LAST_CHANGE_TRIGGER_TIME: &str = "endpoints.kubernetes.io/last-change-trigger-time";

/// Annotation set on an Endpoints object whose addresses were truncated to
/// [`MAX_ENDPOINTS_ADDRESSES`] (`v1.EndpointsOverCapacity`).
pub const ANNOTATION_OVER_CAPACITY: &str = "endpoints.kubernetes.io/over-capacity";

/// The only value the Endpoints controller writes for
/// [`ANNOTATION_OVER_CAPACITY`].
pub const OVER_CAPACITY_TRUNCATED: &str = "truncated";

/// Service annotation enabling topology aware routing with the value `Auto`
/// (`v1.AnnotationTopologyMode`).
pub const ANNOTATION_TOPOLOGY_MODE: &str = "service.kubernetes.io/topology-mode";

/// Older spelling of [`ANNOTATION_TOPOLOGY_MODE`]
/// (`v1.DeprecatedAnnotationTopologyAwareHints`); it takes precedence when both
/// are present.
pub const ANNOTATION_TOPOLOGY_AWARE_HINTS: &str = "service.kubernetes.io/topology-aware-hints";

/// Annotation of old leader-election lock objects stored as Endpoints
/// (`resourcelock.LeaderElectionRecordAnnotationKey`). Endpoints carrying it are
/// neither garbage-collected by the Endpoints controller nor mirrored.
pub const ANNOTATION_LEADER: &str = "control-plane.alpha.kubernetes.io/leader";

/// Annotation kubectl writes on applied objects
/// (`v1.LastAppliedConfigAnnotation`); never copied onto mirrored slices.
pub const ANNOTATION_LAST_APPLIED_CONFIG: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Maximum number of addresses (ready plus not ready) the Endpoints controller
/// writes into one Endpoints object before truncating.
pub const MAX_ENDPOINTS_ADDRESSES: usize = 1000;

/// Default of `--max-endpoints-per-slice`.
pub const DEFAULT_MAX_ENDPOINTS_PER_SLICE: usize = 100;

/// Largest number of endpoints the API server accepts in one EndpointSlice,
/// and the largest value `--max-endpoints-per-slice` may take.
pub const MAX_ENDPOINTS_PER_SLICE_LIMIT: usize = 1000;

/// `spec.clusterIP` value of a headless Service (`v1.ClusterIPNone`).
pub const CLUSTER_IP_NONE: &str = "None";

/// `spec.type` value of an ExternalName Service; such Services get no endpoints.
pub const SERVICE_TYPE_EXTERNAL_NAME: &str = "ExternalName";

/// Protocol assumed when a port leaves it out (the API server's default).
pub const DEFAULT_PROTOCOL: &str = "TCP";
