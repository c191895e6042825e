//! The kinds whose schemas k8s-openapi provides, by `apiVersion` and `kind`.
//!
//! A served resource whose kind is listed here gets k8s-openapi's schema
//! (`schemars` feature), named as upstream names its definition
//! (`io.k8s.api.core.v1.Pod`); any other kind (added with
//! [`Config::resource`](crate::Config::resource)) gets a permissive schema
//! (see [`super::schemas`]).

use std::borrow::Cow;

use k8s_openapi::api::{
    admissionregistration::v1 as admissionregistration, apps::v1 as apps, authentication::v1 as authentication,
    authorization::v1 as authorization, autoscaling::v2 as autoscaling, batch::v1 as batch,
    certificates::v1 as certificates, coordination::v1 as coordination, core::v1 as core, discovery::v1 as discovery,
    events::v1 as events, networking::v1 as networking, node::v1 as node, policy::v1 as policy, rbac::v1 as rbac,
    scheduling::v1 as scheduling, storage::v1 as storage,
};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiextensions;
use k8s_openapi::schemars::{JsonSchema, Schema, SchemaGenerator};

/// A kind with a schema from k8s-openapi.
#[derive(Clone, Copy)]
pub(crate) struct KnownKind {
    /// `apiVersion` of its objects.
    pub(crate) api_version: &'static str,
    /// Its kind.
    pub(crate) kind: &'static str,
    /// The upstream definition name, e.g. `io.k8s.api.core.v1.Pod`.
    pub(crate) name: fn() -> Cow<'static, str>,
    /// Adds the schema and everything it references to a generator.
    pub(crate) generate: fn(&mut SchemaGenerator) -> Schema,
}

fn known<T: k8s_openapi::Resource + JsonSchema>() -> KnownKind {
    KnownKind {
        api_version: T::API_VERSION,
        kind: T::KIND,
        name: T::schema_name,
        generate: SchemaGenerator::subschema_for::<T>,
    }
}

/// Every kind the server knows a schema for: the built-in resources and the
/// common kinds an embedder may add with `Config::resource`.
fn known_kinds() -> [KnownKind; 45] {
    [
        known::<core::ConfigMap>(),
        known::<core::Endpoints>(),
        known::<core::Event>(),
        known::<core::LimitRange>(),
        known::<core::Namespace>(),
        known::<core::Node>(),
        known::<core::PersistentVolume>(),
        known::<core::PersistentVolumeClaim>(),
        known::<core::Pod>(),
        known::<core::PodTemplate>(),
        known::<core::ReplicationController>(),
        known::<core::ResourceQuota>(),
        known::<core::Secret>(),
        known::<core::Service>(),
        known::<core::ServiceAccount>(),
        known::<apps::ControllerRevision>(),
        known::<apps::DaemonSet>(),
        known::<apps::Deployment>(),
        known::<apps::ReplicaSet>(),
        known::<apps::StatefulSet>(),
        known::<authentication::TokenReview>(),
        known::<authorization::SubjectAccessReview>(),
        known::<autoscaling::HorizontalPodAutoscaler>(),
        known::<batch::CronJob>(),
        known::<batch::Job>(),
        known::<certificates::CertificateSigningRequest>(),
        known::<coordination::Lease>(),
        known::<discovery::EndpointSlice>(),
        known::<events::Event>(),
        known::<networking::Ingress>(),
        known::<networking::IngressClass>(),
        known::<networking::NetworkPolicy>(),
        known::<node::RuntimeClass>(),
        known::<policy::PodDisruptionBudget>(),
        known::<rbac::ClusterRole>(),
        known::<rbac::ClusterRoleBinding>(),
        known::<rbac::Role>(),
        known::<rbac::RoleBinding>(),
        known::<scheduling::PriorityClass>(),
        known::<storage::CSIDriver>(),
        known::<storage::StorageClass>(),
        known::<storage::VolumeAttachment>(),
        known::<admissionregistration::MutatingWebhookConfiguration>(),
        known::<admissionregistration::ValidatingWebhookConfiguration>(),
        known::<apiextensions::CustomResourceDefinition>(),
    ]
}

/// Every kind with a k8s-openapi schema.
pub(crate) fn all() -> impl Iterator<Item = KnownKind> {
    known_kinds().into_iter()
}

/// The k8s-openapi kind of `api_version`/`kind`, if there is one.
pub(crate) fn lookup(api_version: &str, kind: &str) -> Option<KnownKind> {
    known_kinds()
        .into_iter()
        .find(|k| k.api_version == api_version && k.kind == kind)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::builtin_resources;

    #[test]
    fn every_builtin_resource_has_a_known_schema() {
        for info in builtin_resources() {
            let known = lookup(&info.api_version(), &info.kind);
            assert!(known.is_some(), "{} {} has no schema", info.api_version(), info.kind);
        }
    }

    #[test]
    fn names_are_upstream_definition_names() {
        let pod = lookup("v1", "Pod").map(|k| (k.name)());
        assert_eq!(pod.as_deref(), Some("io.k8s.api.core.v1.Pod"));
        let pdb = lookup("policy/v1", "PodDisruptionBudget").map(|k| (k.name)());
        assert_eq!(pdb.as_deref(), Some("io.k8s.api.policy.v1.PodDisruptionBudget"));
        assert!(lookup("example.com/v1", "Widget").is_none());
    }
}
