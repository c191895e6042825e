//! Reading the API server's answer to a create or update: the assigned
//! metadata of a success, the `Status` of a failure.
//!
//! A success answer is the whole stored object. The writer's callers read
//! only a few fields of its `metadata`, which kube-apiserver writes before
//! the object's content (`kind`, `apiVersion`, `metadata`, then the rest),
//! so [`assigned_metadata`] stops reading at the end of `metadata`: for an
//! Endpoints object of 1 000 addresses that skips over 100 kB of JSON
//! per write. Should `metadata` come later, the keys before it are skipped
//! value by value, which costs a scan but nothing else.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::core::Status;
use serde::de::{self, IgnoredAny, MapAccess};
use serde::{Deserialize, Deserializer};

/// The fields of `metadata` the server assigns or echoes that a writer's
/// callers read ([`ObjectWriter::create`](super::ObjectWriter::create)).
#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub(super) struct AssignedMetadata {
    name: Option<String>,
    generate_name: Option<String>,
    namespace: Option<String>,
    uid: Option<String>,
    resource_version: Option<String>,
    generation: Option<i64>,
    creation_timestamp: Option<Time>,
    deletion_timestamp: Option<Time>,
    labels: Option<BTreeMap<String, String>>,
}

impl From<AssignedMetadata> for ObjectMeta {
    fn from(meta: AssignedMetadata) -> Self {
        ObjectMeta {
            name: meta.name,
            generate_name: meta.generate_name,
            namespace: meta.namespace,
            uid: meta.uid,
            resource_version: meta.resource_version,
            generation: meta.generation,
            creation_timestamp: meta.creation_timestamp,
            deletion_timestamp: meta.deletion_timestamp,
            labels: meta.labels,
            ..ObjectMeta::default()
        }
    }
}

/// The [`AssignedMetadata`] of a success answer, read no further than the
/// end of its `metadata`; the default when the object has none.
pub(super) fn assigned_metadata(body: &[u8]) -> Result<AssignedMetadata, serde_json::Error> {
    let mut found = None;
    let mut json = serde_json::Deserializer::from_slice(body);
    let read = json.deserialize_map(UntilMetadata(&mut found));
    match (found, read) {
        // Stopped inside the object: serde_json objects to the unread rest,
        // which is the point.
        (Some(metadata), _) => Ok(metadata),
        (None, Ok(())) => Ok(AssignedMetadata::default()),
        (None, Err(error)) => Err(error),
    }
}

/// Visits the answer's keys until `metadata`, decodes it into the slot and
/// returns without reading the rest of the object.
struct UntilMetadata<'s>(&'s mut Option<AssignedMetadata>);

impl<'de> de::Visitor<'de> for UntilMetadata<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Metadata => {
                    *self.0 = Some(map.next_value()?);
                    return Ok(());
                }
                Key::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// A top-level key of the answer, told apart without allocating.
enum Key {
    Metadata,
    Other,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl de::Visitor<'_> for KeyVisitor {
            type Value = Key;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key")
            }

            fn visit_str<E: de::Error>(self, key: &str) -> Result<Key, E> {
                Ok(if key == "metadata" { Key::Metadata } else { Key::Other })
            }
        }
        deserializer.deserialize_identifier(KeyVisitor)
    }
}

/// The error of an unsuccessful answer: its `Status` when the body is one,
/// else a `Status` made of the body's text and the HTTP code (a proxy's or
/// load balancer's page), as `kube::Client` makes it.
pub(super) fn api_error(code: u16, body: &[u8]) -> kube::Error {
    let status = serde_json::from_slice::<Status>(body).unwrap_or_else(|_| {
        let text = String::from_utf8_lossy(body);
        Status::failure(text.trim(), "Failed to parse error data").with_code(code)
    });
    kube::Error::Api(status.boxed())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(body: &str) -> Result<AssignedMetadata, serde_json::Error> {
        assigned_metadata(body.as_bytes())
    }

    fn named(name: &str, rv: &str) -> AssignedMetadata {
        AssignedMetadata {
            name: Some(name.into()),
            resource_version: Some(rv.into()),
            ..AssignedMetadata::default()
        }
    }

    #[test]
    fn reads_the_assigned_metadata_and_nothing_after_it() {
        let cases = [
            (
                "metadata after kind and apiVersion, as kube-apiserver writes it",
                r#"{"kind":"Endpoints","apiVersion":"v1","metadata":{"name":"web","resourceVersion":"7"},"subsets":[]}"#,
            ),
            (
                "the rest is never read: a truncated body still answers",
                r#"{"kind":"Endpoints","metadata":{"name":"web","resourceVersion":"7"},"subsets":[{"addresses":[tr"#,
            ),
            (
                "metadata last: the keys before it are skipped",
                r#"{"subsets":[{"addresses":[{"ip":"10.0.0.1"}]}],"kind":"Endpoints","metadata":{"name":"web","resourceVersion":"7"}}"#,
            ),
            (
                "escaped keys and unknown metadata fields",
                r#"{"k\u0069nd":"Endpoints","metadata":{"managedFields":[{"manager":"m","fieldsV1":{"f:x":{}}}],"name":"web","resourceVersion":"7","annotations":{"a":"b"}}}"#,
            ),
        ];
        for (what, body) in cases {
            assert_eq!(read(body).unwrap(), named("web", "7"), "{what}");
        }
    }

    #[test]
    fn an_object_without_metadata_has_none() {
        assert_eq!(read(r#"{"kind":"Endpoints"}"#).unwrap(), AssignedMetadata::default());
        assert_eq!(read("{}").unwrap(), AssignedMetadata::default());
    }

    #[test]
    fn a_body_that_is_not_an_object_or_breaks_before_metadata_is_an_error() {
        for body in [
            r#""text""#,
            "[]",
            r#"{"kind":"Endpoints","#,
            r#"{"kind":tru"#,
            "",
            r#"{"metadata":{"name":1}}"#,
        ] {
            assert!(read(body).is_err(), "{body:?}");
        }
    }

    #[test]
    fn the_assigned_fields_become_object_metadata() {
        let body = r#"{"metadata":{"name":"web-x","generateName":"web-","namespace":"prod","uid":"u",
            "resourceVersion":"9","generation":3,"creationTimestamp":"2026-12-07T04:00:00Z",
            "labels":{"kubernetes.io/service-name":"web"},"ownerReferences":[{"kind":"Service"}]}}"#;
        let meta = ObjectMeta::from(read(body).unwrap());
        assert_eq!(meta.name.as_deref(), Some("web-x"));
        assert_eq!(meta.generate_name.as_deref(), Some("web-"));
        assert_eq!(meta.namespace.as_deref(), Some("prod"));
        assert_eq!(meta.uid.as_deref(), Some("u"));
        assert_eq!(meta.resource_version.as_deref(), Some("9"));
        assert_eq!(meta.generation, Some(3));
        assert!(meta.creation_timestamp.is_some());
        assert_eq!(meta.labels.unwrap()["kubernetes.io/service-name"], "web");
        assert_eq!(meta.owner_references, None, "not read back");
    }
}
