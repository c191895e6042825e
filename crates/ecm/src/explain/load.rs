//! The caches `ecm explain` reads, filled from one listing of a namespace:
//! from the cluster of a kubeconfig, or from a conformance scenario loaded
//! into the in-memory API server exactly as `ecm simulate` loads it.

use std::sync::Arc;

use anyhow::{Context, Result};
use ecm_apiserver::ApiServer;
use ecm_informer::{Lister, Store};
use ecm_types::PodProjection;
use k8s_openapi::api::core::v1::{Endpoints, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, ListParams};

use crate::parity::Caches;
use crate::scenario::Scenario;

fn lister<S: kube::Resource<DynamicType = ()> + Send + Sync + 'static>(objects: Vec<S>) -> Lister<S> {
    let store = Store::new();
    for object in objects {
        store.insert(Arc::new(object));
    }
    Lister::new(store)
}

/// Lists the Services, pods, EndpointSlices and Endpoints of `namespace`
/// and every node through `client`, pods and nodes reduced to the form the
/// controllers cache.
pub async fn load(client: &kube::Client, namespace: &str) -> Result<Caches> {
    let params = ListParams::default();
    let services = Api::<Service>::namespaced(client.clone(), namespace)
        .list(&params)
        .await
        .context("cannot list services")?;
    let pods = Api::<Pod>::namespaced(client.clone(), namespace)
        .list(&params)
        .await
        .context("cannot list pods")?;
    let slices = Api::<EndpointSlice>::namespaced(client.clone(), namespace)
        .list(&params)
        .await
        .context("cannot list endpointslices")?;
    let endpoints = Api::<Endpoints>::namespaced(client.clone(), namespace)
        .list(&params)
        .await
        .context("cannot list endpoints")?;
    let nodes = Api::<Node>::all(client.clone())
        .list(&params)
        .await
        .context("cannot list nodes")?;
    Ok(Caches {
        services: lister(services.items),
        pods: lister(pods.items.into_iter().map(PodProjection::from).collect()),
        nodes: lister(nodes.items.into_iter().map(ecm_endpointslice::compact_node).collect()),
        slices: lister(slices.items),
        endpoints: lister(endpoints.items),
    })
}

/// Loads `scenario`'s objects into a fresh in-memory API server, as `ecm
/// simulate` does (defaulting included), and lists `namespace` from it.
pub async fn load_scenario(scenario: &Scenario, namespace: &str) -> Result<Caches> {
    let config = ecm_apiserver::Config::default().seed(0).garbage_collection(false);
    let server = ApiServer::new(config).context("cannot start the API server")?;
    crate::simulate::load(&server, scenario)?;
    load(&server.client(), namespace).await
}
