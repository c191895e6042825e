//! [`SelectorRegistry`]: the reverse of a label index — owners register a
//! selector, and the registry answers "which owners select an object with
//! these labels in this namespace?" in time proportional to the candidates,
//! not to the number of owners.
//!
//! Any operator whose objects select others by label can use it: Services
//! selecting pods, PodDisruptionBudgets, NetworkPolicies, a custom resource
//! of your own. Owners are named by their [`ObjectKey`]; the key's namespace
//! is the namespace the selector applies to. Register an owner's selector
//! when it appears, register again when it changes, unregister it when it
//! goes away — or let [`SelectorRegistry::handler`] do so from the owners'
//! [`Informer`](crate::Informer).
//!
//! How a query stays cheap: each registered selector is filed under one of
//! its equality requirements (`key=value`; the one with the fewest owners
//! filed under it at registration). A query looks up the object's own
//! `key=value` pairs, and checks each owner found there against its whole
//! selector. Empty selectors (which select every object of the namespace)
//! are kept apart and returned without a check; selectors with no equality
//! requirement (`tier in (a,b)`, `!canary`) are checked on every query of
//! their namespace. [`Selector::nothing`] (what a missing selector means)
//! selects nothing and is not kept.
//!
//! ```
//! use std::collections::BTreeMap;
//! use ecm_informer::{ObjectKey, Selector, SelectorRegistry};
//!
//! let registry = SelectorRegistry::new();
//! registry.register(ObjectKey::new("shop", "web"), "app=web".parse().unwrap());
//! registry.register(ObjectKey::new("shop", "all"), Selector::everything());
//! registry.register(ObjectKey::new("shop", "none"), Selector::nothing());
//! registry.register(ObjectKey::new("other", "web"), "app=web".parse().unwrap());
//!
//! let pod = BTreeMap::from([("app".to_owned(), "web".to_owned()), ("pod-template-hash".to_owned(), "x".to_owned())]);
//! let owners: Vec<String> = registry.matching("shop", &pod).iter().map(ToString::to_string).collect();
//! assert_eq!(owners, ["shop/all", "shop/web"]);
//!
//! registry.unregister(&ObjectKey::new("shop", "web"));
//! assert_eq!(registry.matching("shop", &pod).len(), 1);
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::Arc;

use ecm_labels::Selector;
use kube::Resource;
use parking_lot::RwLock;

use crate::handler::{Deleted, EventHandler};
use crate::key::ObjectKey;
use crate::label_index::equality_value;

/// Owners' selectors, indexed for "who selects these labels?".
///
/// Cheap to clone: clones share one registry. Safe to use from several
/// threads (a read-write lock; queries share it).
#[derive(Clone, Default)]
pub struct SelectorRegistry {
    inner: Arc<RwLock<RegistryInner>>,
}

impl fmt::Debug for SelectorRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SelectorRegistry")
            .field("owners", &self.inner.read().owners.len())
            .finish()
    }
}

/// Where an owner is filed in its namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Anchor {
    /// The empty selector: in `everything`.
    Everything,
    /// Under one of its equality requirements, in `by_label[key][value]`.
    Label { key: String, value: String },
    /// No equality requirement: in `scanned`.
    Scanned,
}

/// A registered owner.
#[derive(Debug)]
struct Registered {
    selector: Selector,
    anchor: Anchor,
}

/// The owners of one namespace, by anchor.
#[derive(Debug, Default, PartialEq, Eq)]
struct NamespaceOwners {
    everything: BTreeSet<ObjectKey>,
    by_label: HashMap<String, HashMap<String, BTreeSet<ObjectKey>>>,
    scanned: BTreeSet<ObjectKey>,
}

impl NamespaceOwners {
    fn is_empty(&self) -> bool {
        self.everything.is_empty() && self.by_label.is_empty() && self.scanned.is_empty()
    }

    fn filed_under(&self, key: &str, value: &str) -> usize {
        self.by_label
            .get(key)
            .and_then(|values| values.get(value))
            .map_or(0, BTreeSet::len)
    }

    fn file(&mut self, owner: ObjectKey, anchor: &Anchor) {
        match anchor {
            Anchor::Everything => {
                self.everything.insert(owner);
            }
            Anchor::Label { key, value } => {
                self.by_label
                    .entry(key.clone())
                    .or_default()
                    .entry(value.clone())
                    .or_default()
                    .insert(owner);
            }
            Anchor::Scanned => {
                self.scanned.insert(owner);
            }
        }
    }

    fn unfile(&mut self, owner: &ObjectKey, anchor: &Anchor) {
        match anchor {
            Anchor::Everything => {
                self.everything.remove(owner);
            }
            Anchor::Label { key, value } => {
                if let Some(values) = self.by_label.get_mut(key) {
                    if let Some(owners) = values.get_mut(value) {
                        owners.remove(owner);
                        if owners.is_empty() {
                            values.remove(value);
                        }
                    }
                    if values.is_empty() {
                        self.by_label.remove(key);
                    }
                }
            }
            Anchor::Scanned => {
                self.scanned.remove(owner);
            }
        }
    }
}

/// Invariant: every owner of `owners` is filed exactly once, in the
/// namespace of its key, under its `anchor`; nothing else is filed; no map
/// or set is left empty. No owner's selector is [`Selector::nothing`].
#[derive(Debug, Default)]
struct RegistryInner {
    owners: HashMap<ObjectKey, Registered>,
    namespaces: HashMap<String, NamespaceOwners>,
}

impl RegistryInner {
    fn unregister(&mut self, owner: &ObjectKey) -> Option<Registered> {
        let (owner, registered) = self.owners.remove_entry(owner)?;
        let namespace = owner.namespace();
        if let Some(owners) = self.namespaces.get_mut(namespace) {
            owners.unfile(&owner, &registered.anchor);
            if owners.is_empty() {
                self.namespaces.remove(namespace);
            }
        }
        Some(registered)
    }

    /// The anchor for `selector` in `namespace`: its equality requirement
    /// with the fewest owners filed under it (the first such, on ties).
    fn anchor(&self, namespace: &str, selector: &Selector) -> Anchor {
        if selector.is_everything() {
            return Anchor::Everything;
        }
        let filed = self.namespaces.get(namespace);
        selector
            .requirements()
            .iter()
            .filter_map(|r| equality_value(r).map(|v| (r.key(), v)))
            .min_by_key(|(key, value)| filed.map_or(0, |o| o.filed_under(key, value)))
            .map_or(Anchor::Scanned, |(key, value)| Anchor::Label {
                key: key.to_owned(),
                value: value.to_owned(),
            })
    }
}

impl SelectorRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `selector` for `owner` (whose key's namespace is where it
    /// selects), replacing the selector registered before.
    /// [`Selector::nothing`] selects nothing: it unregisters the owner.
    pub fn register(&self, owner: ObjectKey, selector: Selector) {
        let mut inner = self.inner.write();
        if inner.owners.get(&owner).is_some_and(|r| r.selector == selector) {
            return;
        }
        inner.unregister(&owner);
        if selector.is_nothing() {
            return;
        }
        let anchor = inner.anchor(owner.namespace(), &selector);
        inner
            .namespaces
            .entry(owner.namespace().to_owned())
            .or_default()
            .file(owner.clone(), &anchor);
        inner.owners.insert(owner, Registered { selector, anchor });
    }

    /// Forgets `owner`; returns whether it was registered.
    pub fn unregister(&self, owner: &ObjectKey) -> bool {
        self.inner.write().unregister(owner).is_some()
    }

    /// The selector registered for `owner`.
    pub fn selector(&self, owner: &ObjectKey) -> Option<Selector> {
        self.inner.read().owners.get(owner).map(|r| r.selector.clone())
    }

    /// The number of registered owners.
    pub fn len(&self) -> usize {
        self.inner.read().owners.len()
    }

    /// Whether no owner is registered.
    pub fn is_empty(&self) -> bool {
        self.inner.read().owners.is_empty()
    }

    /// The owners in `namespace` whose selector matches `labels`, sorted.
    ///
    /// Cost: the owners with an empty selector, plus, for each of the
    /// labels, the owners filed under that `key=value` (each checked
    /// against its whole selector), plus the owners whose selector has no
    /// equality requirement (each checked).
    pub fn matching(&self, namespace: &str, labels: &BTreeMap<String, String>) -> BTreeSet<ObjectKey> {
        let inner = self.inner.read();
        let Some(owners) = inner.namespaces.get(namespace) else {
            return BTreeSet::new();
        };
        let selects = |owner: &&ObjectKey| inner.owners.get(*owner).is_some_and(|r| r.selector.matches(labels));
        let mut matching = owners.everything.clone();
        for (key, value) in labels {
            if let Some(filed) = owners.by_label.get(key).and_then(|values| values.get(value)) {
                matching.extend(filed.iter().filter(selects).cloned());
            }
        }
        matching.extend(owners.scanned.iter().filter(selects).cloned());
        matching
    }

    /// An event handler that keeps this registry in step with an informer
    /// of owners: on add and update it registers `selector_of(owner)` under
    /// the owner's key (`None` unregisters: a missing selector selects
    /// nothing), on delete it unregisters the key. Register it on the
    /// owners' informer before any handler that queries the registry, so
    /// that those see the registry already updated.
    ///
    /// ```
    /// use std::collections::BTreeMap;
    /// use std::sync::Arc;
    /// use ecm_informer::{EventHandler, ObjectKey, Selector, SelectorRegistry};
    /// use k8s_openapi::api::core::v1::{Service, ServiceSpec};
    /// use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    ///
    /// let registry = SelectorRegistry::new();
    /// let handler = registry.handler(|svc: &Service| {
    ///     svc.spec.as_ref()?.selector.as_ref().map(Selector::from_labels)
    /// });
    /// let app = BTreeMap::from([("app".to_owned(), "web".to_owned())]);
    /// handler.on_add(
    ///     &Arc::new(Service {
    ///         metadata: ObjectMeta { namespace: Some("shop".into()), name: Some("web".into()), ..Default::default() },
    ///         spec: Some(ServiceSpec { selector: Some(app.clone()), ..Default::default() }),
    ///         ..Default::default()
    ///     }),
    ///     false,
    /// );
    /// assert_eq!(registry.matching("shop", &app).into_iter().collect::<Vec<_>>(), [ObjectKey::new("shop", "web")]);
    /// ```
    pub fn handler<S, F>(&self, selector_of: F) -> impl EventHandler<S> + use<S, F>
    where
        S: Resource + Send + Sync + 'static,
        F: Fn(&S) -> Option<Selector> + Send + Sync + 'static,
    {
        RegistryHandler {
            registry: self.clone(),
            selector_of,
        }
    }

    /// Checks the registry's invariant; for tests.
    #[doc(hidden)]
    pub fn check(&self) -> Result<(), String> {
        let inner = self.inner.read();
        let mut expected: HashMap<String, NamespaceOwners> = HashMap::new();
        for (owner, registered) in &inner.owners {
            if registered.selector.is_nothing() {
                return Err(format!("{owner} registered with the selector that matches nothing"));
            }
            expected
                .entry(owner.namespace().to_owned())
                .or_default()
                .file(owner.clone(), &registered.anchor);
        }
        if expected == inner.namespaces {
            Ok(())
        } else {
            Err(format!("expected {expected:?}, found {:?}", inner.namespaces))
        }
    }
}

/// See [`SelectorRegistry::handler`].
struct RegistryHandler<F> {
    registry: SelectorRegistry,
    selector_of: F,
}

impl<F> RegistryHandler<F> {
    fn apply<S: Resource>(&self, owner: &S)
    where
        F: Fn(&S) -> Option<Selector>,
    {
        let key = ObjectKey::of(owner);
        match (self.selector_of)(owner) {
            Some(selector) => self.registry.register(key, selector),
            None => {
                self.registry.unregister(&key);
            }
        }
    }
}

impl<S, F> EventHandler<S> for RegistryHandler<F>
where
    S: Resource + Send + Sync + 'static,
    F: Fn(&S) -> Option<Selector> + Send + Sync + 'static,
{
    fn on_add(&self, obj: &Arc<S>, _is_initial_list: bool) {
        self.apply(obj.as_ref());
    }

    fn on_update(&self, _old: &Arc<S>, new: &Arc<S>) {
        self.apply(new.as_ref());
    }

    fn on_delete(&self, deleted: Deleted<S>) {
        self.registry.unregister(&deleted.key());
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn owners(registry: &SelectorRegistry, ns: &str, pod: &[(&str, &str)]) -> Vec<String> {
        registry
            .matching(ns, &labels(pod))
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn owners_are_found_by_the_labels_they_select() {
        let registry = SelectorRegistry::new();
        let register =
            |name: &str, selector: &str| registry.register(ObjectKey::new("a", name), selector.parse().unwrap());
        register("web", "app=web");
        register("web-front", "app=web,tier=front");
        register("all", "");
        register("set", "tier in (front,back),!canary");
        registry.register(ObjectKey::new("a", "none"), Selector::nothing());
        registry.register(ObjectKey::new("b", "web"), "app=web".parse().unwrap());
        registry.check().unwrap();
        assert_eq!(registry.len(), 5, "the selector that matches nothing is not kept");

        type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], &'a [&'a str]);
        let cases: [Case<'_>; 7] = [
            ("one requirement", "a", &[("app", "web")], &["a/all", "a/web"]),
            (
                "every requirement",
                "a",
                &[("app", "web"), ("tier", "front")],
                &["a/all", "a/set", "a/web", "a/web-front"],
            ),
            ("set-based, checked", "a", &[("tier", "back")], &["a/all", "a/set"]),
            (
                "set-based, refused",
                "a",
                &[("tier", "back"), ("canary", "")],
                &["a/all"],
            ),
            ("no labels: only the empty selector", "a", &[], &["a/all"]),
            ("another namespace", "b", &[("app", "web")], &["b/web"]),
            ("an unknown namespace", "c", &[("app", "web")], &[]),
        ];
        for (name, ns, pod, want) in cases {
            assert_eq!(owners(&registry, ns, pod), want, "{name}");
        }

        // Re-registering moves the owner; unregistering forgets it.
        register("web", "app=db");
        assert_eq!(owners(&registry, "a", &[("app", "web")]), ["a/all"]);
        assert_eq!(owners(&registry, "a", &[("app", "db")]), ["a/all", "a/web"]);
        registry.register(ObjectKey::new("a", "web"), Selector::nothing());
        assert_eq!(owners(&registry, "a", &[("app", "db")]), ["a/all"]);
        assert!(registry.unregister(&ObjectKey::new("a", "all")));
        assert!(!registry.unregister(&ObjectKey::new("a", "all")));
        assert_eq!(
            registry.selector(&ObjectKey::new("b", "web")).unwrap().to_string(),
            "app=web"
        );
        registry.check().unwrap();
        for name in ["web-front", "set"] {
            registry.unregister(&ObjectKey::new("a", name));
        }
        registry.unregister(&ObjectKey::new("b", "web"));
        assert!(registry.is_empty());
        assert!(registry.inner.read().namespaces.is_empty(), "nothing left behind");
    }

    #[test]
    fn owners_are_filed_under_their_rarest_requirement() {
        let registry = SelectorRegistry::new();
        for i in 0..3 {
            registry.register(ObjectKey::new("a", format!("s{i}")), "tier=back".parse().unwrap());
        }
        registry.register(ObjectKey::new("a", "web"), "app=web,tier=back".parse().unwrap());
        let inner = registry.inner.read();
        assert_eq!(
            inner.owners[&ObjectKey::new("a", "web")].anchor,
            Anchor::Label {
                key: "app".into(),
                value: "web".into()
            }
        );
    }

    fn label_sets() -> impl Strategy<Value = BTreeMap<String, String>> {
        proptest::collection::btree_map(
            prop::sample::select(vec!["app", "tier", "zone"]).prop_map(str::to_owned),
            prop::sample::select(vec!["a", "b", "c"]).prop_map(str::to_owned),
            0..3,
        )
    }

    fn selectors() -> impl Strategy<Value = Selector> {
        prop_oneof![
            4 => label_sets().prop_map(|l| Selector::from_labels(&l)),
            1 => Just(Selector::nothing()),
            1 => prop::sample::select(vec!["app in (a,b)", "!zone", "app=a,tier notin (b)", "tier", "app in (c)"])
                .prop_map(|s| s.parse().unwrap()),
        ]
    }

    #[derive(Debug, Clone)]
    enum Step {
        Register(&'static str, usize, Selector),
        Unregister(&'static str, usize),
    }

    fn steps() -> impl Strategy<Value = Vec<Step>> {
        let ns = prop::sample::select(vec!["a", "b"]);
        proptest::collection::vec(
            prop_oneof![
                3 => (ns.clone(), 0..6_usize, selectors()).prop_map(|(n, i, s)| Step::Register(n, i, s)),
                1 => (ns, 0..6_usize).prop_map(|(n, i)| Step::Unregister(n, i)),
            ],
            0..40,
        )
    }

    proptest! {
        #[test]
        fn the_registry_answers_as_a_scan_of_every_owner_after_any_history(history in steps(), pods in proptest::collection::vec(label_sets(), 1..6)) {
            let registry = SelectorRegistry::new();
            // The reference: every owner's selector, checked one by one.
            let mut all: BTreeMap<ObjectKey, Selector> = BTreeMap::new();
            for step in history {
                match step {
                    Step::Register(ns, i, selector) => {
                        let owner = ObjectKey::new(ns, format!("s{i}"));
                        registry.register(owner.clone(), selector.clone());
                        all.insert(owner, selector);
                    }
                    Step::Unregister(ns, i) => {
                        let owner = ObjectKey::new(ns, format!("s{i}"));
                        registry.unregister(&owner);
                        all.remove(&owner);
                    }
                }
                prop_assert_eq!(registry.check(), Ok(()));
                for pod in &pods {
                    for ns in ["a", "b"] {
                        let want: BTreeSet<ObjectKey> = all
                            .iter()
                            .filter(|(owner, selector)| owner.namespace() == ns && selector.matches(pod))
                            .map(|(owner, _)| owner.clone())
                            .collect();
                        prop_assert_eq!(registry.matching(ns, pod), want, "{:?} in {}", pod, ns);
                    }
                }
            }
        }
    }
}
