//! Object keys: the `namespace/name` strings that name objects in the store,
//! in work queues and in listers.
//!
//! These are client-go's `MetaNamespaceKeyFunc` and `SplitMetaNamespaceKey`.
//! The string form is the same as `ecm_types::ObjectKey`'s `Display`, so a key
//! taken from a handler can be parsed into an `ObjectKey` and back.

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

/// The store key of an object: `namespace/name`, or `name` for a
/// cluster-scoped object (one whose `metadata.namespace` is unset or empty).
///
/// Missing names become empty strings; the API server never sends an object
/// without a name.
///
/// ```
/// use ecm_informer::meta_namespace_key;
/// use k8s_openapi::api::core::v1::{Namespace, Pod};
/// use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
///
/// let pod = Pod {
///     metadata: ObjectMeta { namespace: Some("default".into()), name: Some("web-0".into()), ..Default::default() },
///     ..Default::default()
/// };
/// assert_eq!(meta_namespace_key(&pod), "default/web-0");
///
/// let ns = Namespace {
///     metadata: ObjectMeta { name: Some("kube-system".into()), ..Default::default() },
///     ..Default::default()
/// };
/// assert_eq!(meta_namespace_key(&ns), "kube-system");
/// ```
pub fn meta_namespace_key<S: Resource>(obj: &S) -> String {
    let meta = obj.meta();
    key_for(
        meta.namespace.as_deref().unwrap_or_default(),
        meta.name.as_deref().unwrap_or_default(),
    )
}

/// The key for `name` in `namespace`; an empty namespace gives a
/// cluster-scoped key (`name` alone).
///
/// ```
/// use ecm_informer::key_for;
/// assert_eq!(key_for("default", "web"), "default/web");
/// assert_eq!(key_for("", "node-1"), "node-1");
/// ```
pub fn key_for(namespace: &str, name: &str) -> String {
    if namespace.is_empty() {
        name.to_owned()
    } else {
        let mut key = String::with_capacity(namespace.len() + 1 + name.len());
        key.push_str(namespace);
        key.push('/');
        key.push_str(name);
        key
    }
}

/// Splits a key into `(namespace, name)`; the namespace is empty for a
/// cluster-scoped key.
///
/// ```
/// use ecm_informer::split_meta_namespace_key;
/// assert_eq!(split_meta_namespace_key("default/web").unwrap(), ("default", "web"));
/// assert_eq!(split_meta_namespace_key("node-1").unwrap(), ("", "node-1"));
/// assert!(split_meta_namespace_key("a/b/c").is_err());
/// ```
pub fn split_meta_namespace_key(key: &str) -> Result<(&str, &str), KeyError> {
    let (namespace, name) = match key.split_once('/') {
        None => ("", key),
        Some((_, rest)) if rest.contains('/') => return Err(KeyError::TooManySlashes(key.to_owned())),
        Some(parts) => parts,
    };
    if name.is_empty() {
        return Err(KeyError::EmptyName(key.to_owned()));
    }
    Ok((namespace, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_rejects_empty_names_and_extra_slashes() {
        assert_eq!(split_meta_namespace_key("ns/"), Err(KeyError::EmptyName("ns/".into())));
        assert_eq!(split_meta_namespace_key(""), Err(KeyError::EmptyName(String::new())));
        assert_eq!(
            split_meta_namespace_key("a/b/c"),
            Err(KeyError::TooManySlashes("a/b/c".into()))
        );
    }

    #[test]
    fn split_inverts_key_for() {
        for (ns, name) in [("default", "web"), ("", "node-1"), ("kube-system", "coredns-abc")] {
            assert_eq!(split_meta_namespace_key(&key_for(ns, name)).unwrap(), (ns, name));
        }
    }
}
