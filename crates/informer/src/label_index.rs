//! The label index of a [`Store`](crate::Store): per namespace, label
//! `key=value` → the keys of the objects carrying it (an inverted index).
//!
//! It answers "the objects of namespace N matching selector S" in time
//! proportional to the smallest posting list among S's equality
//! requirements instead of to the namespace: a Service selecting 10 pods in
//! a namespace of 30 000 reads 10 keys (per requirement), not 30 000 label
//! maps. Selectors without an equality requirement (`!a`, `a notin (x)`,
//! `a in (x,y)`, `a>1`) fall back to filtering the namespace, so every
//! selector gets the same answer as a scan.
//!
//! The index is opt-in ([`Store::add_label_index`](crate::Store::add_label_index),
//! [`Informer::add_label_index`](crate::Informer::add_label_index)): it
//! costs one shared [`ObjectKey`] (a reference count, no copy of the text)
//! in one set per label of every object, and each distinct `key` and
//! `value` text once per namespace. It is kept under the store's write
//! lock with every other index, so a reader never sees it disagree with
//! the objects. Any cache queried by selector benefits, not only pods.
//!
//! ```
//! use std::collections::BTreeMap;
//! use std::sync::Arc;
//! use ecm_informer::{Selector, Store};
//! use k8s_openapi::api::core::v1::Pod;
//! use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
//!
//! let store: Store<Pod> = Store::new();
//! store.add_label_index();
//! for (name, app) in [("web-0", "web"), ("web-1", "web"), ("db-0", "db")] {
//!     store.insert(Arc::new(Pod {
//!         metadata: ObjectMeta {
//!             namespace: Some("shop".into()),
//!             name: Some(name.into()),
//!             labels: Some(BTreeMap::from([("app".to_owned(), app.to_owned())])),
//!             ..Default::default()
//!         },
//!         ..Default::default()
//!     }));
//! }
//! let web: Selector = "app=web".parse().unwrap();
//! let keys: Vec<String> = store.keys_matching("shop", &web).iter().map(ToString::to_string).collect();
//! assert_eq!(keys, ["shop/web-0", "shop/web-1"]);
//! assert_eq!(store.list_matching("shop", &Selector::everything()).len(), 3);
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap};

use ecm_labels::{Operator, Requirement, Selector};

use crate::key::ObjectKey;

/// Label value → keys of the objects with that value.
type Values = HashMap<String, Postings>;

/// The keys of the objects carrying one `key=value`, sorted.
///
/// Many label values are carried by one object only (a StatefulSet pod's
/// name, a hash shared by the pods of one ReplicaSet spread over a
/// namespace): one key is kept inline instead of in a B-tree node of its
/// own (about 300 bytes). Canonical: `Many` holds at least two keys.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Postings {
    /// A single key.
    One(ObjectKey),
    /// Two keys or more.
    Many(BTreeSet<ObjectKey>),
}

impl Postings {
    fn insert(&mut self, key: &ObjectKey) {
        match self {
            Self::One(one) if one == key => {}
            Self::One(one) => *self = Self::Many(BTreeSet::from([one.clone(), key.clone()])),
            Self::Many(keys) => {
                keys.insert(key.clone());
            }
        }
    }

    /// Removes `key`; returns whether no key is left.
    fn remove(&mut self, key: &ObjectKey) -> bool {
        match self {
            Self::One(one) => one == key,
            Self::Many(keys) => {
                keys.remove(key);
                if keys.len() == 1
                    && let Some(last) = keys.pop_first()
                {
                    *self = Self::One(last);
                    return false;
                }
                keys.is_empty()
            }
        }
    }

    /// The number of keys.
    pub(crate) fn len(&self) -> usize {
        match self {
            Self::One(_) => 1,
            Self::Many(keys) => keys.len(),
        }
    }

    /// Whether `key` is among the keys.
    pub(crate) fn contains(&self, key: &ObjectKey) -> bool {
        match self {
            Self::One(one) => one == key,
            Self::Many(keys) => keys.contains(key),
        }
    }

    /// The keys, sorted.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &ObjectKey> {
        let (one, many) = match self {
            Self::One(one) => (Some(one), None),
            Self::Many(keys) => (None, Some(keys)),
        };
        one.into_iter().chain(many.into_iter().flatten())
    }
}

/// The inverted label index.
///
/// Invariant: `namespaces[n][k][v]` contains key `o` exactly when the store
/// holds `o`, `o` is in namespace `n` and its labels map `k` to `v`; no map
/// or set is left empty.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct LabelIndex {
    /// namespace → label key → label value → object keys. The keys are
    /// clones of the store's own (shared text).
    namespaces: HashMap<String, HashMap<String, Values>>,
}

/// The value an equality-like requirement needs (`k=v`, `k==v`, `k in (v)`),
/// or `None` for any other requirement.
pub(crate) fn equality_value(requirement: &Requirement) -> Option<&str> {
    let values = requirement.values();
    match requirement.operator() {
        Operator::Equals | Operator::DoubleEquals => values.first().map(String::as_str),
        Operator::In if values.len() == 1 => values.first().map(String::as_str),
        _ => None,
    }
}

/// Whether every requirement of `selector` is equality-like, so that the
/// intersection of posting lists is the exact answer.
pub(crate) fn is_equality_only(selector: &Selector) -> bool {
    selector.requirements().iter().all(|r| equality_value(r).is_some())
}

impl LabelIndex {
    /// Moves `key` from the postings of `old` labels to those of `new`
    /// labels (`None`: the object is absent on that side). Only the pairs
    /// that differ are touched.
    pub(crate) fn update(
        &mut self,
        key: &ObjectKey,
        old: Option<&BTreeMap<String, String>>,
        new: Option<&BTreeMap<String, String>>,
    ) {
        let empty = BTreeMap::new();
        let (old, new) = (old.unwrap_or(&empty), new.unwrap_or(&empty));
        if old == new {
            return;
        }
        let namespace = key.namespace();
        for (label, value) in old {
            if new.get(label) != Some(value) {
                self.remove_posting(namespace, label, value, key);
            }
        }
        for (label, value) in new {
            if old.get(label) != Some(value) {
                let values = self
                    .namespaces
                    .entry_ref_or_insert(namespace)
                    .entry_ref_or_insert(label);
                match values.get_mut(value.as_str()) {
                    Some(keys) => keys.insert(key),
                    None => {
                        values.insert(value.clone(), Postings::One(key.clone()));
                    }
                }
            }
        }
    }

    fn remove_posting(&mut self, namespace: &str, label: &str, value: &str, key: &ObjectKey) {
        let Some(labels) = self.namespaces.get_mut(namespace) else {
            return;
        };
        let Some(values) = labels.get_mut(label) else { return };
        let Some(keys) = values.get_mut(value) else { return };
        if keys.remove(key) {
            values.remove(value);
            if values.is_empty() {
                labels.remove(label);
                if labels.is_empty() {
                    self.namespaces.remove(namespace);
                }
            }
        }
    }

    /// The keys of the objects in `namespace` with label `label=value`.
    pub(crate) fn posting(&self, namespace: &str, label: &str, value: &str) -> Option<&Postings> {
        self.namespaces.get(namespace)?.get(label)?.get(value)
    }

    /// The keys in `namespace` carrying every equality requirement of
    /// `selector`, sorted; `None` when the selector has no equality
    /// requirement (the caller scans). With other requirements besides, the
    /// result is a superset the caller filters.
    ///
    /// Cost: the length of the smallest posting list, times one set lookup
    /// per other equality requirement.
    pub(crate) fn candidates(&self, namespace: &str, selector: &Selector) -> Option<Vec<ObjectKey>> {
        let mut postings = Vec::new();
        for requirement in selector.requirements() {
            if let Some(value) = equality_value(requirement) {
                match self.posting(namespace, requirement.key(), value) {
                    Some(keys) => postings.push(keys),
                    // No object has this label: nothing can match.
                    None => return Some(Vec::new()),
                }
            }
        }
        postings.sort_by_key(|keys| keys.len());
        let (smallest, others) = postings.split_first()?;
        Some(
            smallest
                .iter()
                .filter(|key| others.iter().all(|keys| keys.contains(key)))
                .cloned()
                .collect(),
        )
    }
}

/// `HashMap::entry` without allocating the key when it is present.
trait EntryRef<V> {
    fn entry_ref_or_insert(&mut self, key: &str) -> &mut V;
}

impl<V: Default> EntryRef<V> for HashMap<String, V> {
    fn entry_ref_or_insert(&mut self, key: &str) -> &mut V {
        if !self.contains_key(key) {
            self.insert(key.to_owned(), V::default());
        }
        // Present: inserted just above if it was not.
        self.get_mut(key).unwrap_or_else(|| unreachable!("key inserted above"))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use k8s_openapi::api::core::v1::Pod;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use proptest::prelude::*;

    use super::*;
    use crate::store::Store;

    fn pod(ns: &str, name: &str, labels: &[(&str, &str)]) -> Arc<Pod> {
        Arc::new(Pod {
            metadata: ObjectMeta {
                namespace: Some(ns.into()),
                name: Some(name.into()),
                labels: (!labels.is_empty())
                    .then(|| labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()),
                ..Default::default()
            },
            ..Default::default()
        })
    }

    fn indexed() -> Store<Pod> {
        let store = Store::new();
        store.add_label_index();
        store
    }

    fn keys(store: &Store<Pod>, ns: &str, selector: &str) -> Vec<String> {
        let selector: Selector = selector.parse().unwrap();
        store
            .keys_matching(ns, &selector)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    /// What a scan of the namespace answers: the reference.
    fn scanned(store: &Store<Pod>, ns: &str, selector: &Selector) -> Vec<ObjectKey> {
        let mut keys: Vec<ObjectKey> = store
            .list()
            .iter()
            .filter(|p| p.metadata.namespace.as_deref() == Some(ns) && selector.matches(&p.metadata.labels))
            .map(|p| ObjectKey::of(p.as_ref()))
            .collect();
        keys.sort();
        keys
    }

    #[test]
    fn the_index_answers_selectors_through_insert_relabel_and_delete() {
        let store = indexed();
        store.insert(pod("a", "web-0", &[("app", "web"), ("tier", "front")]));
        store.insert(pod("a", "web-1", &[("app", "web"), ("tier", "back")]));
        store.insert(pod("a", "db-0", &[("app", "db")]));
        store.insert(pod("a", "bare", &[]));
        store.insert(pod("b", "web-0", &[("app", "web")]));
        store.check_indexes().unwrap();

        type Case<'a> = (&'a str, &'a str, &'a str, &'a [&'a str]);
        let cases: [Case<'_>; 10] = [
            ("one requirement", "a", "app=web", &["a/web-0", "a/web-1"]),
            ("two requirements intersect", "a", "app=web,tier=back", &["a/web-1"]),
            (
                "== and in (x) count as equality",
                "a",
                "app==web,tier in (front)",
                &["a/web-0"],
            ),
            ("a missing label matches nothing", "a", "app=web,zone=z", &[]),
            ("a missing value matches nothing", "a", "app=cache", &[]),
            (
                "the empty selector is the namespace",
                "a",
                "",
                &["a/bare", "a/db-0", "a/web-0", "a/web-1"],
            ),
            ("another namespace", "b", "app=web", &["b/web-0"]),
            ("an unknown namespace", "c", "app=web", &[]),
            (
                "mixed: equality, then filtered",
                "a",
                "app=web,tier!=front",
                &["a/web-1"],
            ),
            (
                "set-based only: a scan",
                "a",
                "tier in (front,back),!zone",
                &["a/web-0", "a/web-1"],
            ),
        ];
        for (name, ns, selector, want) in cases {
            assert_eq!(keys(&store, ns, selector), want, "{name}");
        }
        assert!(store.keys_matching("a", &Selector::nothing()).is_empty(), "nothing");

        // Relabel: web-0 leaves app=web for app=db and loses tier.
        store.insert(pod("a", "web-0", &[("app", "db")]));
        assert_eq!(keys(&store, "a", "app=web"), ["a/web-1"]);
        assert_eq!(keys(&store, "a", "app=db"), ["a/db-0", "a/web-0"]);
        assert_eq!(keys(&store, "a", "tier=front"), Vec::<String>::new());
        store.check_indexes().unwrap();

        // "Move" namespace: the key is namespace/name, so a pod moving is a
        // delete in one namespace and an insert in the other.
        store.remove(&ObjectKey::new("a", "web-1"));
        store.insert(pod("b", "web-1", &[("app", "web"), ("tier", "back")]));
        assert_eq!(keys(&store, "a", "app=web"), Vec::<String>::new());
        assert_eq!(keys(&store, "b", "app=web"), ["b/web-0", "b/web-1"]);
        store.check_indexes().unwrap();

        // Delete everything: nothing is left behind in the index.
        for key in store.list_keys() {
            store.remove(&key);
        }
        store.check_indexes().unwrap();
        assert_eq!(*store.inner_label_index_for_tests(), LabelIndex::default());
    }

    #[test]
    fn a_label_index_added_late_indexes_what_is_cached() {
        let store = Store::new();
        store.insert(pod("a", "web-0", &[("app", "web")]));
        assert!(!store.has_label_index());
        assert_eq!(keys(&store, "a", "app=web"), ["a/web-0"], "without an index: a scan");
        store.add_label_index();
        store.add_label_index();
        assert!(store.has_label_index());
        assert_eq!(keys(&store, "a", "app=web"), ["a/web-0"]);
        store.check_indexes().unwrap();
    }

    fn label_sets() -> impl Strategy<Value = Vec<(String, String)>> {
        proptest::collection::vec(
            (
                prop::sample::select(vec!["app", "tier", "zone"]),
                prop::sample::select(vec!["a", "b", "c"]),
            ),
            0..3,
        )
        .prop_map(|pairs| pairs.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect())
    }

    fn selectors() -> impl Strategy<Value = Selector> {
        prop_oneof![
            label_sets().prop_map(|pairs| Selector::from_labels(&pairs.into_iter().collect())),
            Just(Selector::nothing()),
            prop::sample::select(vec![
                "app in (a,b)",
                "!zone",
                "app=a,tier notin (b)",
                "tier",
                "app in (c)"
            ])
            .prop_map(|s| s.parse().unwrap()),
        ]
    }

    /// One step of a random history: put a pod (create or relabel) or delete one.
    #[derive(Debug, Clone)]
    enum Step {
        Put(&'static str, usize, Vec<(String, String)>),
        Delete(&'static str, usize),
    }

    fn steps() -> impl Strategy<Value = Vec<Step>> {
        let ns = prop::sample::select(vec!["a", "b"]);
        proptest::collection::vec(
            prop_oneof![
                3 => (ns.clone(), 0..6_usize, label_sets()).prop_map(|(n, i, l)| Step::Put(n, i, l)),
                1 => (ns, 0..6_usize).prop_map(|(n, i)| Step::Delete(n, i)),
            ],
            0..40,
        )
    }

    proptest! {
        #[test]
        fn the_label_index_answers_as_a_scan_after_any_history(history in steps(), queries in proptest::collection::vec(selectors(), 1..6)) {
            let store = indexed();
            for step in history {
                match step {
                    Step::Put(ns, i, labels) => {
                        let labels: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                        store.insert(pod(ns, &format!("p{i}"), &labels));
                    }
                    Step::Delete(ns, i) => {
                        store.remove(&ObjectKey::new(ns, format!("p{i}")));
                    }
                }
                prop_assert_eq!(store.check_indexes(), Ok(()));
                for selector in &queries {
                    for ns in ["a", "b"] {
                        prop_assert_eq!(store.keys_matching(ns, selector), scanned(&store, ns, selector), "{} in {}", selector, ns);
                    }
                }
            }
        }
    }
}
