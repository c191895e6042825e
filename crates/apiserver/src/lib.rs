//! An in-memory Kubernetes API server over real HTTP.
//!
//! `ecm-apiserver` serves the Kubernetes REST protocol from memory, so that
//! `kube::Client`, `kube::runtime::watcher` and `kubectl` talk to it as to a
//! kube-apiserver: discovery, get/list/watch/create/update/patch/delete,
//! resourceVersions, optimistic concurrency, selectors, pagination, watch
//! bookmarks and 410 Gone, garbage collection, validation of what the
//! endpoint controllers write, OpenAPI v2 and v3 documents, fault injection
//! and a hollow kubelet. Use it
//! in-process (as a `tower::Service`, no socket) or on a 127.0.0.1 port.
//!
//! # Example
//!
//! ```
//! use ecm_apiserver::{ApiServer, Config};
//! use futures::{StreamExt, TryStreamExt};
//! use k8s_openapi::api::core::v1::Pod;
//! use kube::api::{Api, PostParams};
//! use kube::runtime::{WatchStreamExt, watcher};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = ApiServer::new(Config::default())?;
//! let client = server.client(); // in-process; or server.serve(addr) for a socket
//! let pods: Api<Pod> = Api::namespaced(client, "default");
//!
//! let mut events = watcher(pods.clone(), watcher::Config::default()).applied_objects().boxed();
//! let pod = serde_json::from_value(serde_json::json!({
//!     "metadata": {"name": "web-0", "labels": {"app": "web"}},
//!     "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]},
//! }))?;
//! pods.create(&PostParams::default(), &pod).await?;
//!
//! let seen = events.try_next().await?.expect("a pod");
//! assert_eq!(seen.metadata.name.as_deref(), Some("web-0"));
//! assert_eq!(server.write_log().len(), 1);
//! # Ok(())
//! # }
//! ```
//!
//! # Supported API features
//!
//! | feature | state |
//! |---|---|
//! | discovery: `/version`, `/api`, `/apis`, `/apis/{g}`, `/api/v1`, `/apis/{g}/{v}`, aggregated discovery v2 | yes |
//! | resources: core v1 (namespaces, pods, services, endpoints, nodes, events, configmaps, secrets, serviceaccounts), discovery.k8s.io/v1, coordination.k8s.io/v1, events.k8s.io/v1, apps/v1, batch/v1 (jobs, cronjobs), policy/v1 (poddisruptionbudgets), rbac.authorization.k8s.io/v1; more with [`Config::resource`] | yes |
//! | get, list, watch, create, update, patch, delete, deletecollection; `status` subresource; `scale` subresource (autoscaling/v1) of Deployments and ReplicaSets | yes |
//! | JSON patch, JSON merge patch, strategic merge patch (known merge keys and `$patch`/`$retainKeys`/`$setElementOrder`/`$deleteFromPrimitiveList` directives) | yes |
//! | server-side apply | approximated: strategic merge of the applied object, no managedFields, no conflicts, no field removal |
//! | uid, creationTimestamp, generateName, global resourceVersion, `generation` as upstream strategies | yes |
//! | optimistic concurrency (409 Conflict), AlreadyExists, NotFound, Invalid (422 with causes), Expired (410) Status bodies | yes |
//! | namespaces must exist; terminating namespaces refuse new objects and are emptied | yes |
//! | deletionTimestamp + finalizers; propagation Background / Foreground / Orphan; garbage collection of dependents | yes |
//! | labelSelector (full syntax), fieldSelector (metadata.name/namespace + per-resource fields) | yes |
//! | limit/continue (consistent snapshot, remainingItemCount), resourceVersion + resourceVersionMatch (NotOlderThan, Exact) | yes |
//! | watch: resourceVersion, allowWatchBookmarks, timeoutSeconds, sendInitialEvents, selectors, 410 after the bounded history | yes |
//! | `dryRun=All` | yes |
//! | Table output (`kubectl get`) | yes, columns for common kinds |
//! | validation: metadata of every kind, EndpointSlice, Endpoints, pod status IPs | yes; other kinds' specs are not validated |
//! | defaulting: Service (type, ClusterIP, ports), Pod basics, EndpointSlice/Endpoints port protocol and names | partial |
//! | fault injection ([`faults`]) and hollow kubelet ([`KubeletConfig`]) | yes |
//! | Deployments and ReplicaSets simulated: ReplicaSets, pods, rolling updates, statuses ([`WorkloadsConfig`]) | yes, when enabled |
//! | content negotiation: `Accept` with q-values and several types (`*/*` and no header → JSON), 406 NotAcceptable / 415 UnsupportedMediaType Status bodies | yes, as upstream's negotiation |
//! | protobuf (`application/vnd.kubernetes.protobuf`): request bodies, objects, lists, Status errors, watch streams (`;stream=watch` frames) | yes, for the built-in kinds (not for kinds added with [`Config::resource`]); schemas of Kubernetes 1.35 (`k8s-pb` 0.9): a 1.36 field unknown to them is dropped, see below |
//! | Tables in protobuf | no, as upstream: Tables are JSON only (a protobuf-only `as=Table` is 406) |
//! | CBOR, YAML responses | no (406; YAML request bodies are read) |
//! | OpenAPI documents: `/openapi/v2` (Swagger 2.0) and `/openapi/v3` (index + one document per group-version) of every served kind, schemas from k8s-openapi's `schemars` output with `x-kubernetes-group-version-kind`, paths with `x-kubernetes-action`; built once, cached, content-hashed (`hash`, `ETag`) | yes, JSON only (406 for a protobuf-only `Accept`, so client-go uses v3); kinds added with [`Config::resource`] get a permissive schema; no `x-kubernetes-patch-strategy`/`-list-type` (k8s-openapi's schemas have none), so strategic merge patch is not offered in the documents and kubectl computes it from its compiled-in types |
//! | `fieldValidation` on create, update and patch: `Strict` (kubectl's default) rejects unknown fields with upstream's `strict decoding error` message, `Warn` (the default) sends a `Warning` header per field, `Ignore` says nothing | yes, for the kinds with a k8s-openapi schema, by a walk over it (a patch is judged by the unknown fields it adds); no duplicate-field check, and unknown fields are stored rather than dropped |
//! | `TokenReview` and `SubjectAccessReview` (create only, computed from static tokens and ABAC-style allow rules: [`AuthConfig`]) | yes |
//! | authentication and authorization of its own requests, admission webhooks, CRDs via apiextensions, managedFields, other subresources (binding, eviction, log, exec) | no |
//! | immutability rules of other kinds' specs (e.g. pod spec updates) | not enforced |
//!
//! # kubectl
//!
//! `ecm-apiserver --listen 127.0.0.1:8080 --kubeconfig-out kc` then
//! `kubectl --kubeconfig kc ...`: `get` (tables, `-o yaml/json`, `-w`),
//! `create`, `apply` (client-side, with the default strict validation),
//! `apply --server-side` (approximated), `diff`, `explain` (from the OpenAPI
//! v3 documents), `replace`, `delete`, `label`, `patch` (strategic, merge,
//! json) and `wait` work; with the workload simulator on, so do `scale`,
//! `expose` and `rollout status|restart|history`. Helm v4.2 installs, upgrades, rolls back and
//! uninstalls ecm's chart with OpenAPI validation on (its release Secrets
//! are stored like any other).
//! kubectl's typed commands (`create namespace`, `create configmap`,
//! `create deployment`, `scale`...) send protobuf, which the server reads.
//!
//! # Protobuf
//!
//! Objects are stored as JSON; protobuf is converted at the edge, by one
//! generic codec over descriptors of the messages of kube-rs's `k8s-pb`
//! crate (prost-generated from upstream's `generated.proto`), regenerated
//! with `cargo xtask pb-schema`. `k8s-pb` 0.9 is built from Kubernetes 1.35
//! protos; against k8s-openapi's 1.36 these fields are missing and are
//! dropped from protobuf requests and responses: `PodSpec.schedulingGroup`,
//! `PodStatus.nodeAllocatableResourceClaimStatuses`, `ResourceHealth.message`,
//! `VolumeMountStatus.volumeStatus`, `CSIDriverSpec.preventPodSchedulingIfMissing`,
//! `ListMeta.shardInfo` (JSON clients see them all). Protobuf has no empty
//! versus absent, and Go writes every non-pointer string: decoded objects
//! leave out empty strings, lists and maps, so an explicitly empty
//! `*string` (e.g. an EndpointPort `name: ""`) sent in protobuf is stored
//! as absent.

// ApiError mirrors a metav1.Status (~180 bytes) and lives on cold paths;
// boxing it would only add allocations to every error.
#![allow(clippy::result_large_err)]

mod apps_defaults;
mod config;
mod error;
pub mod faults;
mod field_validation;
#[doc(hidden)]
pub mod fuzzing;
mod gc;
mod http;
pub mod kubelet;
mod object;
mod openapi;
mod patch;
mod registry;
mod resources;
pub mod reviews;
mod scale;
mod selector;
mod server;
mod state;
mod store;
mod strategy;
pub mod validation;
mod workloads;
mod writelog;

pub use config::Config;
pub use config::WorkloadsConfig;
pub use error::{ApiError, StatusCause};
pub use faults::{FaultAction, FaultConfig, FaultRule};
pub use http::{ApiService, ResponseBody};
pub use kubelet::KubeletConfig;
pub use patch::{PatchError, PatchType};
pub use resources::{FieldSelectorField, ResourceInfo, Strategy, builtin_resources};
pub use reviews::{AuthConfig, Policy, StaticToken};
pub use selector::{FieldSelector, LabelSelector, SelectorError};
pub use server::{ApiServer, ServeHandle, ServerError, kubeconfig_yaml};
pub use store::WatchEventType;
pub use writelog::{WriteRecord, WriteVerb};
