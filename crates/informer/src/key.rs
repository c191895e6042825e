//! [`ObjectKey`]: the one key that names an object in informer stores,
//! listers, handlers, work queues and controllers.
//!
//! Its string form is client-go's `MetaNamespaceKeyFunc`: `namespace/name`,
//! or `name` alone for a cluster-scoped object; parsing it is
//! `SplitMetaNamespaceKey`. A Service and the Endpoints object written for it
//! share one key.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;
use std::sync::Arc;

use kube::Resource;

/// Why a string is not an object key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The key has more than one `/`.
    #[error("unexpected key format: {0:?}")]
    TooManySlashes(String),
    /// The name part of the key is empty.
    #[error("key {0:?} has an empty name")]
    EmptyName(String),
}

/// Identifies a namespaced object, or a cluster-scoped one (empty
/// namespace).
///
/// Cheap to clone: the `namespace/name` text is shared behind an `Arc`, so a
/// key held by a store, its indexes and a work queue is one allocation.
/// Keys compare and sort by namespace, then name.
///
/// ```
/// use ecm_informer::ObjectKey;
/// let key: ObjectKey = "default/web".parse().unwrap();
/// assert_eq!((key.namespace(), key.name()), ("default", "web"));
/// assert_eq!(key.to_string(), "default/web");
/// assert_eq!(ObjectKey::new("", "node-1").to_string(), "node-1");
/// ```
#[derive(Clone)]
pub struct ObjectKey {
    /// `namespace/name`, or `name` when `namespace_len` is 0.
    text: Arc<str>,
    /// Length of the namespace prefix of `text` (without the `/`).
    namespace_len: usize,
}

impl ObjectKey {
    /// The key of `name` in `namespace` (empty for cluster-scoped objects).
    /// One allocation: the text is assembled on the stack first when it
    /// fits (every valid namespace and name does).
    pub fn new(namespace: impl AsRef<str>, name: impl AsRef<str>) -> Self {
        /// Room for the longest namespace (63) and name (253) and the `/`.
        const ON_STACK: usize = 320;
        let (namespace, name) = (namespace.as_ref(), name.as_ref());
        let len = namespace.len() + 1 + name.len();
        let text: Arc<str> = if namespace.is_empty() {
            Arc::from(name)
        } else if len <= ON_STACK {
            let mut buf = [0u8; ON_STACK];
            buf[..namespace.len()].copy_from_slice(namespace.as_bytes());
            buf[namespace.len()] = b'/';
            buf[namespace.len() + 1..len].copy_from_slice(name.as_bytes());
            match std::str::from_utf8(&buf[..len]) {
                Ok(text) => Arc::from(text),
                // Two strings joined by `/` are UTF-8; never taken.
                Err(_) => Arc::from(format!("{namespace}/{name}")),
            }
        } else {
            Arc::from(format!("{namespace}/{name}"))
        };
        Self {
            text,
            namespace_len: namespace.len(),
        }
    }

    /// The key of a Kubernetes object, from its metadata. Missing fields
    /// become empty strings (the API server never sends an object without a
    /// name).
    ///
    /// ```
    /// use ecm_informer::ObjectKey;
    /// use k8s_openapi::api::core::v1::Pod;
    /// use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    ///
    /// let pod = Pod {
    ///     metadata: ObjectMeta { namespace: Some("default".into()), name: Some("web-0".into()), ..Default::default() },
    ///     ..Default::default()
    /// };
    /// assert_eq!(ObjectKey::of(&pod).to_string(), "default/web-0");
    /// ```
    pub fn of<K: Resource>(obj: &K) -> Self {
        let meta = obj.meta();
        Self::new(
            meta.namespace.as_deref().unwrap_or_default(),
            meta.name.as_deref().unwrap_or_default(),
        )
    }

    /// The namespace; empty for cluster-scoped objects.
    pub fn namespace(&self) -> &str {
        &self.text[..self.namespace_len]
    }

    /// The object name.
    pub fn name(&self) -> &str {
        if self.namespace_len == 0 {
            &self.text
        } else {
            &self.text[self.namespace_len + 1..]
        }
    }

    /// The string form, `namespace/name` or `name`, without allocating.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl PartialEq for ObjectKey {
    fn eq(&self, other: &Self) -> bool {
        self.namespace_len == other.namespace_len && self.text == other.text
    }
}

impl Eq for ObjectKey {}

/// Compares with a key's string form, `namespace/name` or `name`.
impl PartialEq<str> for ObjectKey {
    fn eq(&self, other: &str) -> bool {
        &*self.text == other
    }
}

/// Compares with a key's string form, `namespace/name` or `name`.
impl PartialEq<&str> for ObjectKey {
    fn eq(&self, other: &&str) -> bool {
        &*self.text == *other
    }
}

/// Hashes the namespace, then the name, as a borrowed `KeyRef` does, so that a hash
/// map keyed by `ObjectKey` can be searched with a borrowed pair.
impl Hash for ObjectKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.namespace().hash(state);
        self.name().hash(state);
    }
}

/// A borrowed `(namespace, name)` that finds an [`ObjectKey`] in a
/// `hashbrown` map without building one: it hashes as the key does and is
/// [`Equivalent`](hashbrown::Equivalent) to the key with the same parts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct KeyRef<'a> {
    pub(crate) namespace: &'a str,
    pub(crate) name: &'a str,
}

impl Hash for KeyRef<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.namespace.hash(state);
        self.name.hash(state);
    }
}

impl hashbrown::Equivalent<ObjectKey> for KeyRef<'_> {
    fn equivalent(&self, key: &ObjectKey) -> bool {
        key.namespace() == self.namespace && key.name() == self.name
    }
}

impl Ord for ObjectKey {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.namespace(), self.name()).cmp(&(other.namespace(), other.name()))
    }
}

impl PartialOrd for ObjectKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectKey")
            .field("namespace", &self.namespace())
            .field("name", &self.name())
            .finish()
    }
}

impl FromStr for ObjectKey {
    type Err = KeyError;

    /// Parses `namespace/name` or `name` (client-go's `SplitMetaNamespaceKey`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (namespace, name) = match s.split_once('/') {
            None => ("", s),
            Some((_, rest)) if rest.contains('/') => return Err(KeyError::TooManySlashes(s.to_owned())),
            Some(parts) => parts,
        };
        if name.is_empty() {
            return Err(KeyError::EmptyName(s.to_owned()));
        }
        Ok(Self::new(namespace, name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Namespace, Service};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    #[test]
    fn key_round_trips_through_its_string_form() {
        for (text, ns, name) in [
            ("default/web", "default", "web"),
            ("node-a", "", "node-a"),
            ("kube-system/coredns-abc", "kube-system", "coredns-abc"),
        ] {
            let key: ObjectKey = text.parse().unwrap();
            assert_eq!((key.namespace(), key.name()), (ns, name));
            assert_eq!(key.to_string(), text);
            assert_eq!(key.as_str(), text);
            assert_eq!(key, ObjectKey::new(ns, name));
            assert_eq!(key, text);
        }
    }

    #[test]
    fn a_borrowed_pair_hashes_and_matches_as_its_key() {
        use hashbrown::Equivalent;
        use std::hash::BuildHasher;

        let hasher = std::hash::RandomState::new();
        let long = "x".repeat(300);
        let pairs = [
            ("default", "web"),
            ("", "node-a"),
            ("kube-system", "coredns-abc"),
            ("ns", long.as_str()),
            ("ünïcode", "name"),
        ];
        for (namespace, name) in pairs {
            let key = ObjectKey::new(namespace, name);
            let borrowed = KeyRef { namespace, name };
            assert_eq!(hasher.hash_one(&key), hasher.hash_one(borrowed), "{key}");
            assert!(borrowed.equivalent(&key), "{key}");
            for (other_namespace, other_name) in pairs {
                let other = KeyRef {
                    namespace: other_namespace,
                    name: other_name,
                };
                assert_eq!(
                    other.equivalent(&key),
                    (other_namespace, other_name) == (namespace, name),
                    "{key} against {other:?}"
                );
            }
        }
        // Same text, other split: neither equal nor equivalent.
        let key = ObjectKey::new("a", "b");
        assert!(
            !KeyRef {
                namespace: "",
                name: "a/b"
            }
            .equivalent(&key)
        );
        assert_ne!(key, ObjectKey::new("", "a/b"));
    }

    #[test]
    fn a_long_key_is_built_whole() {
        let (namespace, name) = ("n".repeat(200), "x".repeat(200));
        let key = ObjectKey::new(&namespace, &name);
        assert_eq!((key.namespace(), key.name()), (namespace.as_str(), name.as_str()));
        assert_eq!(key.as_str(), format!("{namespace}/{name}"));
    }

    #[test]
    fn malformed_keys_are_rejected() {
        assert_eq!(
            "a/b/c".parse::<ObjectKey>(),
            Err(KeyError::TooManySlashes("a/b/c".into()))
        );
        assert_eq!("ns/".parse::<ObjectKey>(), Err(KeyError::EmptyName("ns/".into())));
        assert_eq!("".parse::<ObjectKey>(), Err(KeyError::EmptyName(String::new())));
    }

    #[test]
    fn key_of_object_uses_its_metadata() {
        let svc = Service {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("prod".into()),
                ..ObjectMeta::default()
            },
            ..Service::default()
        };
        assert_eq!(ObjectKey::of(&svc), ObjectKey::new("prod", "web"));
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some("kube-system".into()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        assert_eq!(ObjectKey::of(&ns).to_string(), "kube-system");
    }

    #[test]
    fn keys_sort_by_namespace_then_name() {
        let mut keys = [
            ObjectKey::new("a-b", "x"),
            ObjectKey::new("a", "z"),
            ObjectKey::new("", "node"),
            ObjectKey::new("a", "b"),
        ];
        keys.sort();
        let sorted: Vec<String> = keys.iter().map(ToString::to_string).collect();
        assert_eq!(sorted, ["node", "a/b", "a/z", "a-b/x"]);
    }
}
