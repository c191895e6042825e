//! Object keys: the `namespace/name` strings client-go uses to name objects in
//! work queues and caches, as a small type.

use std::fmt;
use std::str::FromStr;

/// Identifies a namespaced object (or a cluster-scoped one, with an empty
/// namespace).
///
/// Its string form is client-go's `MetaNamespaceKeyFunc`: `namespace/name`, or
/// just `name` for cluster-scoped objects. A Service and the Endpoints object
/// written for it share one key.
///
/// ```
/// use ecm_types::ObjectKey;
/// let key: ObjectKey = "default/web".parse().unwrap();
/// assert_eq!(key.namespace(), "default");
/// assert_eq!(key.name(), "web");
/// assert_eq!(key.to_string(), "default/web");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    namespace: String,
    name: String,
}

/// Why a string is not an object key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The key has more than one `/`.
    #[error("unexpected key format: {0:?}")]
    TooManySlashes(String),
    /// The name part is empty.
    #[error("key {0:?} has an empty name")]
    EmptyName(String),
}

impl ObjectKey {
    /// A key for `name` in `namespace` (empty for cluster-scoped objects).
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// The key of a Kubernetes object, from its metadata. Missing fields
    /// become empty strings.
    pub fn of<K: kube::Resource>(obj: &K) -> Self {
        let meta = obj.meta();
        Self::new(
            meta.namespace.clone().unwrap_or_default(),
            meta.name.clone().unwrap_or_default(),
        )
    }

    /// The namespace; empty for cluster-scoped objects.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The object name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.namespace.is_empty() {
            f.write_str(&self.name)
        } else {
            write!(f, "{}/{}", self.namespace, self.name)
        }
    }
}

impl FromStr for ObjectKey {
    type Err = KeyError;

    /// Parses `namespace/name` or `name` (client-go's `SplitMetaNamespaceKey`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut parts = s.split('/');
        let (namespace, name) = match (parts.next(), parts.next(), parts.next()) {
            (Some(name), None, None) => ("", name),
            (Some(ns), Some(name), None) => (ns, name),
            _ => return Err(KeyError::TooManySlashes(s.to_owned())),
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
    use k8s_openapi::api::core::v1::Service;
    use kube::api::ObjectMeta;

    #[test]
    fn key_round_trips_through_its_string_form() {
        for (text, ns, name) in [("default/web", "default", "web"), ("node-a", "", "node-a")] {
            let key: ObjectKey = text.parse().unwrap();
            assert_eq!((key.namespace(), key.name()), (ns, name));
            assert_eq!(key.to_string(), text);
        }
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
    }
}
