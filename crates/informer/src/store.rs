//! The indexed cache: client-go's `ThreadSafeStore` + `Indexer`.
//!
//! A [`Store`] maps [`ObjectKey`]s (`namespace/name`) to
//! `Arc<S>` and keeps any number of named indexes up to date with it. An
//! index is a function from an object to zero or more index values; the
//! index maps each value to the set of keys of the objects that produced it.
//! The [`NAMESPACE_INDEX`] is always present.
//!
//! A store belonging to an [`Informer`](crate::Informer) is written only by
//! that informer; readers ([`Lister`](crate::Lister), handlers, controllers)
//! get cheap `Arc` clones and never see a half-applied change: every write,
//! including a whole relist, happens under one write lock. A store can also
//! be created and filled by hand ([`Store::insert`], [`Store::remove`]),
//! which is how controller unit tests feed listers without an API server.
//!
//! A store may also keep a [label index](crate::label_index)
//! ([`Store::add_label_index`]): then [`Store::list_matching`] (and so
//! [`Lister::list`](crate::Lister::list)) answers an equality selector in
//! time proportional to its answer rather than to the namespace.
//!
//! ```
//! use std::sync::Arc;
//! use ecm_informer::Store;
//! use k8s_openapi::api::core::v1::{Pod, PodSpec};
//! use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
//!
//! let store: Store<Pod> = Store::new();
//! store.add_indexer("node", |pod: &Pod| {
//!     pod.spec.as_ref().and_then(|s| s.node_name.clone()).into_iter().collect()
//! })?;
//! store.insert(Arc::new(Pod {
//!     metadata: ObjectMeta { namespace: Some("default".into()), name: Some("web-0".into()), ..Default::default() },
//!     spec: Some(PodSpec { node_name: Some("node-1".into()), ..Default::default() }),
//!     ..Default::default()
//! }));
//! assert_eq!(store.index_keys("node", "node-1")?, ["default/web-0"]);
//! assert_eq!(store.by_index("namespace", "default")?.len(), 1);
//! # Ok::<(), ecm_informer::StoreError>(())
//! ```

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::hash::RandomState;
use std::sync::Arc;

use ecm_labels::Selector;
use kube::Resource;
use parking_lot::{RwLock, RwLockWriteGuard};

use crate::key::{KeyRef, ObjectKey};
use crate::label_index::{LabelIndex, is_equality_only};

/// The name of the index every store has: object namespace → keys
/// (client-go's `cache.NamespaceIndex`). Cluster-scoped objects are indexed
/// under the empty namespace.
pub const NAMESPACE_INDEX: &str = "namespace";

/// An index function: the index values of an object (zero or more).
///
/// It must be a pure function of the object: the store calls it again on
/// the old object when the object changes or goes away.
pub type IndexFn<S> = Arc<dyn Fn(&S) -> Vec<String> + Send + Sync>;

/// Why a store operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// No index with this name was registered.
    #[error("index {0:?} does not exist")]
    UnknownIndex(String),
    /// An index with this name is already registered.
    #[error("index {0:?} already exists")]
    IndexExists(String),
}

/// A thread-safe, indexed map from object key to `Arc<S>`.
///
/// Cloning a `Store` is cheap and gives another handle to the same cache.
/// Lists are snapshots: they hold `Arc`s, not locks.
pub struct Store<S> {
    inner: Arc<RwLock<StoreInner<S>>>,
}

impl<S> Clone for Store<S> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<S> fmt::Debug for Store<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.inner.read();
        f.debug_struct("Store")
            .field("len", &inner.items.len())
            .field("indexes", &inner.indexers.keys().collect::<Vec<_>>())
            .field("label_index", &inner.labels.is_some())
            .finish()
    }
}

/// The state behind a [`Store`].
///
/// Invariant: for every registered index `i`, `indices[i][v]` contains key
/// `k` exactly when `items[k]` exists and `indexers[i](items[k])` yields `v`;
/// value sets are never left empty. When `labels` is set, it indexes the
/// labels of exactly the objects of `items` (see [`LabelIndex`]).
pub(crate) struct StoreInner<S> {
    /// A `hashbrown` map (with std's hasher), so that [`Store::get_by_name`]
    /// can search it with a borrowed [`KeyRef`].
    items: hashbrown::HashMap<ObjectKey, Arc<S>, RandomState>,
    indexers: HashMap<String, IndexFn<S>>,
    /// index name → index value → keys. Keys are shared with `items`.
    indices: HashMap<String, HashMap<String, BTreeSet<ObjectKey>>>,
    /// The label index, once [`Store::add_label_index`] asked for it.
    labels: Option<LabelIndex>,
}

impl<S: Resource + Send + Sync + 'static> Default for Store<S> {
    fn default() -> Self {
        Self::new()
    }
}

impl<S: Resource + Send + Sync + 'static> Store<S> {
    /// An empty store with the [`NAMESPACE_INDEX`].
    pub fn new() -> Self {
        let namespace_index: IndexFn<S> = Arc::new(|obj: &S| vec![obj.meta().namespace.clone().unwrap_or_default()]);
        let inner = StoreInner {
            items: hashbrown::HashMap::default(),
            indexers: HashMap::from([(NAMESPACE_INDEX.to_owned(), namespace_index)]),
            indices: HashMap::from([(NAMESPACE_INDEX.to_owned(), HashMap::new())]),
            labels: None,
        };
        Self {
            inner: Arc::new(RwLock::new(inner)),
        }
    }

    /// Registers an index. The objects already in the store are indexed at
    /// once, so this may be called at any time (client-go's `AddIndexers`).
    pub fn add_indexer<F>(&self, name: impl Into<String>, index_fn: F) -> Result<(), StoreError>
    where
        F: Fn(&S) -> Vec<String> + Send + Sync + 'static,
    {
        let name = name.into();
        let mut inner = self.inner.write();
        if inner.indexers.contains_key(&name) {
            return Err(StoreError::IndexExists(name));
        }
        let index_fn: IndexFn<S> = Arc::new(index_fn);
        let mut index: HashMap<String, BTreeSet<ObjectKey>> = HashMap::new();
        for (key, obj) in &inner.items {
            for value in index_fn(obj) {
                index.entry(value).or_default().insert(key.clone());
            }
        }
        inner.indices.insert(name.clone(), index);
        inner.indexers.insert(name, index_fn);
        Ok(())
    }

    /// Keeps a [label index](crate::label_index) from now on, so that
    /// [`Store::list_matching`] answers equality selectors from posting
    /// lists. The objects already in the store are indexed at once.
    /// Idempotent: informers shared by several controllers may each ask.
    pub fn add_label_index(&self) {
        let mut inner = self.inner.write();
        if inner.labels.is_some() {
            return;
        }
        let mut index = LabelIndex::default();
        for (key, obj) in &inner.items {
            index.update(key, None, obj.meta().labels.as_ref());
        }
        inner.labels = Some(index);
    }

    /// Whether the store keeps a label index ([`Store::add_label_index`]).
    pub fn has_label_index(&self) -> bool {
        self.inner.read().labels.is_some()
    }

    /// The objects of `namespace` (the empty namespace for cluster-scoped
    /// objects) whose labels match `selector`, sorted by key.
    ///
    /// With a label index and a selector with at least one equality
    /// requirement (`k=v`, `k==v`, `k in (v)`: every Service selector), the
    /// cost is that of the smallest posting list; otherwise, or without a
    /// label index, the namespace is filtered. The answer is the same.
    /// The empty selector returns the namespace, [`Selector::nothing`]
    /// nothing.
    pub fn list_matching(&self, namespace: &str, selector: &Selector) -> Vec<Arc<S>> {
        let inner = self.inner.read();
        inner
            .matching_keys(namespace, selector)
            .into_iter()
            .filter_map(|key| inner.items.get(&key).cloned())
            .collect()
    }

    /// The keys of [`Store::list_matching`], sorted.
    pub fn keys_matching(&self, namespace: &str, selector: &Selector) -> Vec<ObjectKey> {
        self.inner.read().matching_keys(namespace, selector)
    }

    /// The object stored under `key`.
    pub fn get_by_key(&self, key: &ObjectKey) -> Option<Arc<S>> {
        self.inner.read().items.get(key).cloned()
    }

    /// The object `name` in `namespace` (empty for a cluster-scoped kind),
    /// found without building its key: no allocation.
    pub fn get_by_name(&self, namespace: &str, name: &str) -> Option<Arc<S>> {
        self.inner.read().items.get(&KeyRef { namespace, name }).cloned()
    }

    /// The object with the same key as `obj`.
    pub fn get(&self, obj: &S) -> Option<Arc<S>> {
        self.get_by_key(&ObjectKey::of(obj))
    }

    /// Every object, in no particular order.
    pub fn list(&self) -> Vec<Arc<S>> {
        self.inner.read().items.values().cloned().collect()
    }

    /// Every key, in no particular order.
    pub fn list_keys(&self) -> Vec<ObjectKey> {
        self.inner.read().items.keys().cloned().collect()
    }

    /// The number of objects.
    pub fn len(&self) -> usize {
        self.inner.read().items.len()
    }

    /// Whether the store holds no object.
    pub fn is_empty(&self) -> bool {
        self.inner.read().items.is_empty()
    }

    /// The objects whose index `index_name` yields `value`, sorted by key
    /// (client-go's `ByIndex`).
    pub fn by_index(&self, index_name: &str, value: &str) -> Result<Vec<Arc<S>>, StoreError> {
        let inner = self.inner.read();
        let keys = inner.index_values(index_name)?.get(value);
        Ok(keys
            .into_iter()
            .flatten()
            .filter_map(|k| inner.items.get(k).cloned())
            .collect())
    }

    /// The keys of the objects whose index `index_name` yields `value`,
    /// sorted (client-go's `IndexKeys`).
    pub fn index_keys(&self, index_name: &str, value: &str) -> Result<Vec<ObjectKey>, StoreError> {
        let inner = self.inner.read();
        let keys = inner.index_values(index_name)?.get(value);
        Ok(keys.into_iter().flatten().cloned().collect())
    }

    /// The values index `index_name` currently holds, in no particular order
    /// (client-go's `ListIndexFuncValues`).
    pub fn list_index_values(&self, index_name: &str) -> Result<Vec<String>, StoreError> {
        Ok(self.inner.read().index_values(index_name)?.keys().cloned().collect())
    }

    /// The objects sharing at least one value of index `index_name` with
    /// `obj`, sorted by key and without duplicates (client-go's `Index`).
    pub fn index(&self, index_name: &str, obj: &S) -> Result<Vec<Arc<S>>, StoreError> {
        let inner = self.inner.read();
        let index = inner.index_values(index_name)?;
        let index_fn = &inner.indexers[index_name];
        let keys: BTreeSet<&ObjectKey> = index_fn(obj).iter().filter_map(|v| index.get(v)).flatten().collect();
        Ok(keys.into_iter().filter_map(|k| inner.items.get(k).cloned()).collect())
    }

    /// The names of the registered indexes.
    pub fn index_names(&self) -> Vec<String> {
        self.inner.read().indexers.keys().cloned().collect()
    }

    /// Adds or replaces an object, keyed by its namespace and name, and
    /// returns the object it replaced.
    ///
    /// Meant for stores filled by hand (tests, caches fed by something other
    /// than an informer). Writing to an informer's store bypasses its event
    /// handlers and confuses its next relist.
    pub fn insert(&self, obj: Arc<S>) -> Option<Arc<S>> {
        let key = ObjectKey::of(obj.as_ref());
        self.inner.write().insert(key, obj)
    }

    /// Removes the object stored under `key` and returns it. The same caveat
    /// as [`Store::insert`] applies.
    pub fn remove(&self, key: &ObjectKey) -> Option<Arc<S>> {
        self.inner.write().remove(key)
    }

    /// Locks the store for a batch of writes applied atomically.
    pub(crate) fn write(&self) -> RwLockWriteGuard<'_, StoreInner<S>> {
        self.inner.write()
    }

    /// The label index, for this crate's tests.
    #[cfg(test)]
    pub(crate) fn inner_label_index_for_tests(&self) -> parking_lot::MappedRwLockReadGuard<'_, LabelIndex> {
        parking_lot::RwLockReadGuard::map(self.inner.read(), |inner| {
            inner
                .labels
                .as_ref()
                .unwrap_or_else(|| unreachable!("tests add a label index first"))
        })
    }

    /// Checks the index invariant; used by tests in this crate and by
    /// integration tests through [`Store::check_indexes`].
    #[doc(hidden)]
    pub fn check_indexes(&self) -> Result<(), String> {
        self.inner.read().check()
    }
}

impl<S> StoreInner<S> {
    fn index_values(&self, index_name: &str) -> Result<&HashMap<String, BTreeSet<ObjectKey>>, StoreError> {
        self.indices
            .get(index_name)
            .ok_or_else(|| StoreError::UnknownIndex(index_name.to_owned()))
    }

    /// See [`Store::keys_matching`].
    fn matching_keys(&self, namespace: &str, selector: &Selector) -> Vec<ObjectKey>
    where
        S: Resource,
    {
        if selector.is_nothing() {
            return Vec::new();
        }
        let in_namespace = self.indices.get(NAMESPACE_INDEX).and_then(|index| index.get(namespace));
        if selector.is_everything() {
            return in_namespace.into_iter().flatten().cloned().collect();
        }
        let matches = |key: &ObjectKey| {
            self.items
                .get(key)
                .is_some_and(|obj| selector.matches(&obj.meta().labels))
        };
        match self
            .labels
            .as_ref()
            .and_then(|index| index.candidates(namespace, selector))
        {
            Some(candidates) if is_equality_only(selector) => candidates,
            Some(candidates) => candidates.into_iter().filter(|key| matches(key)).collect(),
            None => in_namespace
                .into_iter()
                .flatten()
                .filter(|key| matches(key))
                .cloned()
                .collect(),
        }
    }

    pub(crate) fn get(&self, key: &ObjectKey) -> Option<&Arc<S>> {
        self.items.get(key)
    }

    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    pub(crate) fn keys(&self) -> impl Iterator<Item = &ObjectKey> {
        self.items.keys()
    }

    /// Stores `obj` under `key`, updates every index and returns the
    /// replaced object.
    pub(crate) fn insert(&mut self, key: ObjectKey, obj: Arc<S>) -> Option<Arc<S>>
    where
        S: Resource,
    {
        // Reuse the key already stored, so the map and the indexes share one
        // allocation per key.
        let key = self.items.get_key_value(&key).map_or(key, |(k, _)| k.clone());
        let old = self.items.insert(key.clone(), obj);
        let Self {
            items,
            indexers,
            indices,
            labels,
        } = self;
        let new = items.get(&key).map(AsRef::as_ref);
        update_indices(indexers, indices, &key, old.as_deref(), new);
        if let Some(labels) = labels {
            labels.update(
                &key,
                old.as_deref().and_then(|o| o.meta().labels.as_ref()),
                new.and_then(|n| n.meta().labels.as_ref()),
            );
        }
        old
    }

    /// Removes `key`, updates every index and returns the removed object.
    pub(crate) fn remove(&mut self, key: &ObjectKey) -> Option<Arc<S>>
    where
        S: Resource,
    {
        let (key, old) = self.items.remove_entry(key)?;
        update_indices(&self.indexers, &mut self.indices, &key, Some(&old), None);
        if let Some(labels) = &mut self.labels {
            labels.update(&key, old.meta().labels.as_ref(), None);
        }
        Some(old)
    }

    fn check(&self) -> Result<(), String>
    where
        S: Resource,
    {
        if let Some(labels) = &self.labels {
            let mut expected = LabelIndex::default();
            for (key, obj) in &self.items {
                expected.update(key, None, obj.meta().labels.as_ref());
            }
            if &expected != labels {
                return Err(format!("label index: expected {expected:?}, found {labels:?}"));
            }
        }
        for (name, index_fn) in &self.indexers {
            let index = self.indices.get(name).ok_or_else(|| format!("index {name} missing"))?;
            let mut expected: HashMap<String, BTreeSet<ObjectKey>> = HashMap::new();
            for (key, obj) in &self.items {
                for value in index_fn(obj) {
                    expected.entry(value).or_default().insert(key.clone());
                }
            }
            if &expected != index {
                return Err(format!("index {name}: expected {expected:?}, found {index:?}"));
            }
        }
        Ok(())
    }
}

/// Moves `key` from the index values of `old` to those of `new`.
fn update_indices<S>(
    indexers: &HashMap<String, IndexFn<S>>,
    indices: &mut HashMap<String, HashMap<String, BTreeSet<ObjectKey>>>,
    key: &ObjectKey,
    old: Option<&S>,
    new: Option<&S>,
) {
    for (name, index_fn) in indexers {
        let old_values = old.map(|o| index_fn(o)).unwrap_or_default();
        let new_values = new.map(|n| index_fn(n)).unwrap_or_default();
        if old_values == new_values && old.is_some() && new.is_some() {
            continue;
        }
        let Some(index) = indices.get_mut(name) else { continue };
        for value in old_values.iter().filter(|v| !new_values.contains(v)) {
            if let Some(keys) = index.get_mut(value) {
                keys.remove(key);
                if keys.is_empty() {
                    index.remove(value);
                }
            }
        }
        for value in new_values {
            index.entry(value).or_default().insert(key.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Namespace, Pod, PodSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn pod(ns: &str, name: &str, node: &str) -> Arc<Pod> {
        Arc::new(Pod {
            metadata: ObjectMeta {
                namespace: Some(ns.into()),
                name: Some(name.into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                node_name: Some(node.into()),
                ..Default::default()
            }),
            ..Default::default()
        })
    }

    fn by_node(pod: &Pod) -> Vec<String> {
        pod.spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .into_iter()
            .collect()
    }

    #[test]
    fn indexes_should_follow_insert_update_and_remove() {
        let store = Store::new();
        store.add_indexer("node", by_node).unwrap();
        store.insert(pod("a", "p1", "n1"));
        store.insert(pod("a", "p2", "n1"));
        store.insert(pod("b", "p3", "n2"));
        assert_eq!(store.index_keys("node", "n1").unwrap(), ["a/p1", "a/p2"]);
        assert_eq!(store.index_keys(NAMESPACE_INDEX, "b").unwrap(), ["b/p3"]);
        store.check_indexes().unwrap();

        // Moving p1 to n2 takes it out of n1's set.
        let old = store.insert(pod("a", "p1", "n2")).unwrap();
        assert_eq!(by_node(&old), ["n1"]);
        assert_eq!(store.index_keys("node", "n1").unwrap(), ["a/p2"]);
        assert_eq!(store.index_keys("node", "n2").unwrap(), ["a/p1", "b/p3"]);
        store.check_indexes().unwrap();

        // Removing the last object of a value drops the value.
        store.remove(&ObjectKey::new("a", "p2")).unwrap();
        let mut values = store.list_index_values("node").unwrap();
        values.sort();
        assert_eq!(values, ["n2"]);
        assert!(store.remove(&ObjectKey::new("a", "p2")).is_none());
        store.check_indexes().unwrap();
        assert_eq!(store.len(), 2);
    }

    #[test]
    fn add_indexer_should_index_existing_objects_and_refuse_duplicates() {
        let store = Store::new();
        store.insert(pod("a", "p1", "n1"));
        store.add_indexer("node", by_node).unwrap();
        assert_eq!(store.by_index("node", "n1").unwrap().len(), 1);
        assert_eq!(
            store.add_indexer("node", by_node),
            Err(StoreError::IndexExists("node".into()))
        );
        assert_eq!(
            store.by_index("nope", "x").unwrap_err(),
            StoreError::UnknownIndex("nope".into())
        );
        store.check_indexes().unwrap();
    }

    #[test]
    fn multi_valued_indexes_should_keep_every_value() {
        let store: Store<Pod> = Store::new();
        store
            .add_indexer("labels", |p: &Pod| {
                p.metadata
                    .labels
                    .iter()
                    .flatten()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect()
            })
            .unwrap();
        let mut p = (*pod("a", "p1", "n1")).clone();
        p.metadata.labels = Some(
            [
                ("app".to_owned(), "web".to_owned()),
                ("tier".to_owned(), "x".to_owned()),
            ]
            .into(),
        );
        store.insert(Arc::new(p.clone()));
        assert_eq!(store.index_keys("labels", "app=web").unwrap(), ["a/p1"]);
        assert_eq!(store.index("labels", &p).unwrap().len(), 1);
        p.metadata.labels = Some([("app".to_owned(), "web".to_owned())].into());
        store.insert(Arc::new(p));
        assert!(store.index_keys("labels", "tier=x").unwrap().is_empty());
        store.check_indexes().unwrap();
    }

    #[test]
    fn cluster_scoped_objects_should_use_the_bare_name_as_key() {
        let store: Store<Namespace> = Store::new();
        store.insert(Arc::new(Namespace {
            metadata: ObjectMeta {
                name: Some("kube-system".into()),
                ..Default::default()
            },
            ..Default::default()
        }));
        assert!(store.get_by_key(&ObjectKey::new("", "kube-system")).is_some());
        assert_eq!(store.index_keys(NAMESPACE_INDEX, "").unwrap(), ["kube-system"]);
        assert_eq!(store.list_keys(), ["kube-system"]);
    }
}
