//! Listers: typed, read-only queries over a [`Store`], as controllers use them.
//!
//! A [`Lister`] answers the two questions a controller's sync asks of its
//! cache: "give me this object" ([`Lister::get`]) and "give me the objects in
//! this namespace matching this selector" ([`Lister::list`]), the latter
//! through the namespace index. It is client-go's generated listers
//! (`PodLister`, `Pods(ns).List(selector)`, `Get(name)`) in one generic type.
//!
//! `get` returns `Option`: where client-go returns an `IsNotFound` error
//! (and the endpoints controller deletes the Endpoints of a Service that is
//! not found), a caller here matches on `None`.
//!
//! ```
//! use std::collections::BTreeMap;
//! use std::sync::Arc;
//! use ecm_informer::{Lister, Selector, Store};
//! use k8s_openapi::api::core::v1::Pod;
//! use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
//!
//! let store = Store::new();
//! store.insert(Arc::new(Pod {
//!     metadata: ObjectMeta {
//!         namespace: Some("default".into()),
//!         name: Some("web-0".into()),
//!         labels: Some(BTreeMap::from([("app".into(), "web".into())])),
//!         ..Default::default()
//!     },
//!     ..Default::default()
//! }));
//! let pods = Lister::new(store);
//! assert!(pods.get("default", "web-0").is_some());
//! assert!(pods.get("default", "web-1").is_none());
//! let service_selector = BTreeMap::from([("app".to_owned(), "web".to_owned())]);
//! assert_eq!(pods.list("default", &Selector::from_labels(&service_selector)).len(), 1);
//! assert_eq!(pods.list("other", &Selector::everything()).len(), 0);
//! ```

use std::fmt;
use std::sync::Arc;

use kube::{Resource, ResourceExt};

use crate::key::ObjectKey;
use crate::selector::Selector;
use crate::store::Store;

/// Read-only, typed access to a [`Store`].
///
/// Cheap to clone. Results are snapshots (`Arc`s), never locks.
pub struct Lister<S> {
    store: Store<S>,
}

impl<S> Clone for Lister<S> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
        }
    }
}

impl<S> fmt::Debug for Lister<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lister").field("store", &self.store).finish()
    }
}

impl<S: Resource + Send + Sync + 'static> Lister<S> {
    /// A lister over `store`.
    pub fn new(store: Store<S>) -> Self {
        Self { store }
    }

    /// The object `name` in `namespace`, or `None` when the cache does not
    /// hold it (client-go's `NotFound`). For a cluster-scoped kind, pass an
    /// empty namespace.
    ///
    /// The look-up allocates nothing ([`Store::get_by_name`]).
    pub fn get(&self, namespace: &str, name: &str) -> Option<Arc<S>> {
        self.store.get_by_name(namespace, name)
    }

    /// The object stored under `key`, as taken from a work queue.
    pub fn get_by_key(&self, key: &ObjectKey) -> Option<Arc<S>> {
        self.store.get_by_key(key)
    }

    /// The objects in `namespace` whose labels match `selector`, sorted by
    /// key. An empty namespace means every namespace (then in no particular
    /// order), as in client-go's `ListAllByNamespace`. The empty selector
    /// takes a fast path that skips label matching; [`Selector::nothing`]
    /// returns nothing.
    ///
    /// In one namespace this is [`Store::list_matching`]: when the store
    /// keeps a [label index](crate::label_index), an equality selector (a
    /// Service's) costs in proportion to its answer, not to the namespace.
    pub fn list(&self, namespace: &str, selector: &Selector) -> Vec<Arc<S>> {
        if !namespace.is_empty() {
            return self.store.list_matching(namespace, selector);
        }
        if selector.is_nothing() {
            return Vec::new();
        }
        let objects = self.store.list();
        if selector.is_everything() {
            return objects;
        }
        objects
            .into_iter()
            .filter(|obj| selector.matches(obj.labels()))
            .collect()
    }

    /// Every object in the cache, in no particular order.
    pub fn list_all(&self) -> Vec<Arc<S>> {
        self.store.list()
    }

    /// The objects whose index `index_name` yields `value`, sorted by key;
    /// empty when there is no such index. See [`Store::by_index`] for the
    /// variant that reports an unknown index.
    pub fn by_index(&self, index_name: &str, value: &str) -> Vec<Arc<S>> {
        self.store.by_index(index_name, value).unwrap_or_default()
    }

    /// The store behind this lister.
    pub fn store(&self) -> &Store<S> {
        &self.store
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Pod;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use std::collections::BTreeMap;

    fn pod(ns: &str, name: &str, app: &str) -> Arc<Pod> {
        Arc::new(Pod {
            metadata: ObjectMeta {
                namespace: Some(ns.into()),
                name: Some(name.into()),
                labels: Some(BTreeMap::from([("app".to_owned(), app.to_owned())])),
                ..Default::default()
            },
            ..Default::default()
        })
    }

    fn names(pods: &[Arc<Pod>]) -> Vec<String> {
        let mut names: Vec<String> = pods
            .iter()
            .map(|p| format!("{}/{}", p.namespace().unwrap(), p.name_any()))
            .collect();
        names.sort();
        names
    }

    #[test]
    fn list_should_filter_by_namespace_and_selector() {
        let lister = Lister::new(Store::new());
        for (ns, name, app) in [("a", "web-1", "web"), ("a", "db-1", "db"), ("b", "web-2", "web")] {
            lister.store().insert(pod(ns, name, app));
        }
        let web: Selector = "app=web".parse().unwrap();
        assert_eq!(names(&lister.list("a", &web)), ["a/web-1"]);
        assert_eq!(names(&lister.list("", &web)), ["a/web-1", "b/web-2"]);
        assert_eq!(names(&lister.list("a", &Selector::everything())), ["a/db-1", "a/web-1"]);
        assert!(lister.list("a", &Selector::nothing()).is_empty());
        assert!(lister.list("c", &Selector::everything()).is_empty());
        assert_eq!(lister.list_all().len(), 3);
        assert_eq!(lister.get("b", "web-2").unwrap().name_any(), "web-2");
        assert!(lister.get("a", "web-2").is_none());
        assert!(lister.get_by_key(&ObjectKey::new("a", "db-1")).is_some());
    }
}
