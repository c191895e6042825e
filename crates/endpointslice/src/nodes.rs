//! The node side of the controller: the compact form nodes are cached in,
//! and the topology worker (upstream's `checkNodeTopologyDistribution`).

use std::collections::BTreeMap;
use std::sync::Arc;

use ecm_informer::Lister;
use ecm_informer::ObjectKey;
use ecm_workqueue::RateLimitingQueue;
use k8s_openapi::api::core::v1::{Node, NodeStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::hints::TopologyCache;

/// The part of a Node this controller reads: name, labels (zone, roles),
/// the Ready condition and the allocatable CPU. Dropping the rest (images,
/// managed fields, annotations, capacity, addresses) makes a cached node
/// a few hundred bytes instead of tens of kilobytes.
///
/// Use it as the node informer's transform:
/// `factory.informer_with_transform::<Node, Node, _>(compact_node)`.
pub fn compact_node(node: Node) -> Node {
    let metadata = ObjectMeta {
        name: node.metadata.name,
        uid: node.metadata.uid,
        resource_version: node.metadata.resource_version,
        labels: node.metadata.labels,
        deletion_timestamp: node.metadata.deletion_timestamp,
        ..ObjectMeta::default()
    };
    let status = node.status.map(|status| NodeStatus {
        conditions: status
            .conditions
            .map(|conditions| conditions.into_iter().filter(|c| c.type_ == "Ready").collect()),
        allocatable: status.allocatable.map(|allocatable| {
            allocatable
                .into_iter()
                .filter(|(resource, _)| resource == "cpu")
                .collect::<BTreeMap<_, _>>()
        }),
        ..NodeStatus::default()
    });
    Node {
        metadata,
        spec: None,
        status,
    }
}

/// Recomputes the zones' CPU shares from every cached node, then queues the
/// Services whose hints no longer fit them.
pub(crate) fn refresh_topology(
    nodes: &Lister<Node>,
    topology: &TopologyCache,
    services: &RateLimitingQueue<ObjectKey>,
) {
    let all = nodes.list_all();
    topology.set_nodes(all.iter().map(AsRef::as_ref));
    for service in topology.overloaded_services() {
        tracing::debug!(service = %service, "hints overloaded after a node change, resyncing");
        services.add(service);
    }
}

/// A lookup of nodes by name in `nodes`, for the reconciler.
pub(crate) fn node_lookup(nodes: Lister<Node>) -> impl Fn(&str) -> Option<Arc<Node>> + Send + Sync {
    move |name: &str| nodes.get("", name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{NodeCondition, NodeSpec};
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

    #[test]
    fn compact_node_keeps_what_the_controller_reads_and_nothing_else() {
        let node = Node {
            metadata: ObjectMeta {
                name: Some("n1".into()),
                labels: Some([("topology.kubernetes.io/zone".to_owned(), "a".to_owned())].into()),
                annotations: Some([("big".to_owned(), "x".repeat(1000))].into()),
                ..ObjectMeta::default()
            },
            spec: Some(NodeSpec {
                pod_cidr: Some("10.0.0.0/24".into()),
                ..NodeSpec::default()
            }),
            status: Some(NodeStatus {
                conditions: Some(vec![
                    NodeCondition {
                        type_: "MemoryPressure".into(),
                        status: "False".into(),
                        ..NodeCondition::default()
                    },
                    NodeCondition {
                        type_: "Ready".into(),
                        status: "True".into(),
                        ..NodeCondition::default()
                    },
                ]),
                allocatable: Some(
                    [
                        ("cpu".to_owned(), Quantity("4".into())),
                        ("memory".to_owned(), Quantity("15Gi".into())),
                    ]
                    .into(),
                ),
                ..NodeStatus::default()
            }),
        };
        let compact = compact_node(node);
        assert_eq!(compact.metadata.name.as_deref(), Some("n1"));
        assert!(compact.metadata.annotations.is_none());
        assert!(compact.spec.is_none());
        let status = compact.status.unwrap();
        let conditions = status.conditions.unwrap();
        assert_eq!(conditions.len(), 1);
        assert_eq!(conditions[0].type_, "Ready");
        assert_eq!(status.allocatable.unwrap().keys().collect::<Vec<_>>(), ["cpu"]);
        assert_eq!(compact.metadata.labels.unwrap()["topology.kubernetes.io/zone"], "a");
    }
}
