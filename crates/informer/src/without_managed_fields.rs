//! Decoding an object without ever building its `metadata.managedFields`.
//!
//! kube-apiserver sends `managedFields` with every object it lists or
//! watches: one entry per field manager, each with a `fieldsV1` tree that
//! mirrors the fields the manager owns. Informers drop them before caching
//! ([`strip_managed_fields`](crate::strip_managed_fields), as
//! kube-controller-manager's informers do), but decoding them first is not
//! free: `fieldsV1` is free-form JSON, decoded into a tree of
//! `serde_json::Value` maps with an allocation for every key, only to be
//! thrown away. [`WithoutManagedFields<K>`] decodes any `K` the same way
//! while skipping the value of `metadata.managedFields` unread (serde's
//! [`IgnoredAny`]): the object is the one a full decode followed by
//! `strip_managed_fields` gives, without the tree. Every informer of this
//! crate decodes through it.
//!
//! It implements [`Resource`] as `K` does, so an `Api<WithoutManagedFields<K>>`
//! or a watcher over one reads the same collection as `Api<K>`:
//!
//! ```
//! use ecm_informer::WithoutManagedFields;
//! use k8s_openapi::api::discovery::v1::EndpointSlice;
//!
//! let json = r#"{
//!     "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
//!     "metadata": {"name": "web-abcde", "namespace": "shop", "resourceVersion": "7",
//!         "managedFields": [{"manager": "kube-controller-manager", "operation": "Update",
//!             "fieldsType": "FieldsV1", "fieldsV1": {"f:addressType": {}, "f:endpoints": {}}}],
//!         "annotations": {"managedFields": "an annotation of that name is kept"}},
//!     "endpoints": []
//! }"#;
//! let WithoutManagedFields(slice) = serde_json::from_str::<WithoutManagedFields<EndpointSlice>>(json)?;
//! assert_eq!(slice.metadata.name.as_deref(), Some("web-abcde"));
//! assert_eq!(slice.metadata.managed_fields, None);
//! assert_eq!(slice.metadata.annotations.unwrap()["managedFields"], "an annotation of that name is kept");
//! # Ok::<(), serde_json::Error>(())
//! ```
//!
//! Only the object's own `metadata` is filtered, and only its
//! `managedFields` key: a label, an annotation or a nested object's field of
//! that name is decoded as usual. Map keys must be strings (JSON, YAML).

use std::borrow::Cow;
use std::fmt;

use kube::Resource;
use kube::api::ObjectMeta;
use serde::de::value::{BorrowedStrDeserializer, StrDeserializer, StringDeserializer};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

/// `K`, decoded without its `metadata.managedFields` (see the
/// [module](self)). Serializes as `K`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(transparent)]
pub struct WithoutManagedFields<K>(pub K);

impl<K> WithoutManagedFields<K> {
    /// The decoded object.
    pub fn into_inner(self) -> K {
        self.0
    }
}

impl<K: Resource> Resource for WithoutManagedFields<K> {
    type DynamicType = K::DynamicType;
    type Scope = K::Scope;

    fn kind(dt: &Self::DynamicType) -> Cow<'_, str> {
        K::kind(dt)
    }
    fn group(dt: &Self::DynamicType) -> Cow<'_, str> {
        K::group(dt)
    }
    fn version(dt: &Self::DynamicType) -> Cow<'_, str> {
        K::version(dt)
    }
    fn api_version(dt: &Self::DynamicType) -> Cow<'_, str> {
        K::api_version(dt)
    }
    fn plural(dt: &Self::DynamicType) -> Cow<'_, str> {
        K::plural(dt)
    }
    fn metadata_api() -> bool {
        K::metadata_api()
    }
    fn url_path(dt: &Self::DynamicType, namespace: Option<&str>) -> String {
        K::url_path(dt, namespace)
    }
    fn meta(&self) -> &ObjectMeta {
        self.0.meta()
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        self.0.meta_mut()
    }
}

impl<'de, K: Deserialize<'de>> Deserialize<'de> for WithoutManagedFields<K> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        K::deserialize(Filtered {
            inner: deserializer,
            level: Level::Object,
        })
        .map(Self)
    }
}

/// Where a filtered value sits.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Level {
    /// The object: its `metadata` value is filtered at [`Level::Metadata`].
    Object,
    /// The object's metadata: its `managedFields` entry is skipped.
    Metadata,
}

impl Level {
    /// What the value under `key` is, when `Some`: filtered at that level;
    /// `None` for a value decoded as it is.
    fn below(self, key: &str) -> Option<Level> {
        (self == Level::Object && key == "metadata").then_some(Level::Metadata)
    }

    /// Whether the entry under `key` is skipped.
    fn skips(self, key: &str) -> bool {
        self == Level::Metadata && key == "managedFields"
    }
}

/// A deserializer whose maps (at `level`) are filtered.
struct Filtered<D> {
    inner: D,
    level: Level,
}

/// Forwards deserializer methods to the inner deserializer, unfiltered:
/// only maps (and the options or newtypes around them) are filtered.
macro_rules! forward_unfiltered {
    ($($method:ident ( $($arg:ident : $ty:ty),* )),* $(,)?) => {
        $(
            fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* visitor: V) -> Result<V::Value, D::Error> {
                self.inner.$method($($arg,)* visitor)
            }
        )*
    };
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Filtered<D> {
    type Error = D::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        let level = self.level;
        self.inner.deserialize_any(FilteredVisitor { inner: visitor, level })
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        let level = self.level;
        self.inner.deserialize_map(FilteredVisitor { inner: visitor, level })
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let level = self.level;
        self.inner
            .deserialize_struct(name, fields, FilteredVisitor { inner: visitor, level })
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        let level = self.level;
        self.inner.deserialize_option(FilteredVisitor { inner: visitor, level })
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, name: &'static str, visitor: V) -> Result<V::Value, D::Error> {
        let level = self.level;
        self.inner
            .deserialize_newtype_struct(name, FilteredVisitor { inner: visitor, level })
    }

    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }

    forward_unfiltered! {
        deserialize_bool(), deserialize_i8(), deserialize_i16(), deserialize_i32(), deserialize_i64(),
        deserialize_i128(), deserialize_u8(), deserialize_u16(), deserialize_u32(), deserialize_u64(),
        deserialize_u128(), deserialize_f32(), deserialize_f64(), deserialize_char(), deserialize_str(),
        deserialize_string(), deserialize_bytes(), deserialize_byte_buf(), deserialize_unit(),
        deserialize_seq(), deserialize_identifier(), deserialize_ignored_any(),
        deserialize_unit_struct(name: &'static str),
        deserialize_tuple(len: usize),
        deserialize_tuple_struct(name: &'static str, len: usize),
        deserialize_enum(name: &'static str, variants: &'static [&'static str]),
    }
}

/// The target's visitor, handed a filtered map when it visits one.
struct FilteredVisitor<V> {
    inner: V,
    level: Level,
}

/// Forwards visitor methods taking a value to the inner visitor.
macro_rules! forward_visits {
    ($($method:ident ( $ty:ty )),* $(,)?) => {
        $(
            fn $method<E: de::Error>(self, value: $ty) -> Result<Self::Value, E> {
                self.inner.$method(value)
            }
        )*
    };
}

impl<'de, V: Visitor<'de>> Visitor<'de> for FilteredVisitor<V> {
    type Value = V::Value;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.expecting(formatter)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        self.inner.visit_map(FilteredMap {
            inner: map,
            level: self.level,
            value_level: None,
        })
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        self.inner.visit_some(Filtered {
            inner: deserializer,
            level: self.level,
        })
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        self.inner.visit_newtype_struct(Filtered {
            inner: deserializer,
            level: self.level,
        })
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        self.inner.visit_none()
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        self.inner.visit_unit()
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        self.inner.visit_seq(seq)
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<Self::Value, A::Error> {
        self.inner.visit_enum(data)
    }

    fn visit_borrowed_str<E: de::Error>(self, value: &'de str) -> Result<Self::Value, E> {
        self.inner.visit_borrowed_str(value)
    }

    fn visit_borrowed_bytes<E: de::Error>(self, value: &'de [u8]) -> Result<Self::Value, E> {
        self.inner.visit_borrowed_bytes(value)
    }

    forward_visits! {
        visit_bool(bool), visit_i64(i64), visit_i128(i128), visit_u64(u64), visit_u128(u128),
        visit_f64(f64), visit_char(char), visit_str(&str), visit_string(String),
        visit_bytes(&[u8]), visit_byte_buf(Vec<u8>),
    }
}

/// A map whose keys are read before the target sees them: skipped entries
/// never reach it, and the value under a key that leads one level down is
/// filtered at that level.
struct FilteredMap<A> {
    inner: A,
    level: Level,
    /// The level of the value after the key just read, if filtered.
    value_level: Option<Level>,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for FilteredMap<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, mut seed: K) -> Result<Option<K::Value>, A::Error> {
        loop {
            let key = self.inner.next_key_seed(KeySeed {
                target: seed,
                level: self.level,
            })?;
            match key {
                None => return Ok(None),
                Some(Key::Skipped(target)) => {
                    self.inner.next_value::<IgnoredAny>()?;
                    seed = target;
                }
                Some(Key::Kept { value, below }) => {
                    self.value_level = below;
                    return Ok(Some(value));
                }
            }
        }
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, A::Error> {
        match self.value_level.take() {
            Some(level) => self.inner.next_value_seed(FilteredSeed { inner: seed, level }),
            None => self.inner.next_value_seed(seed),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

/// A value seed whose value is filtered at `level`.
struct FilteredSeed<S> {
    inner: S,
    level: Level,
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for FilteredSeed<S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<S::Value, D::Error> {
        self.inner.deserialize(Filtered {
            inner: deserializer,
            level: self.level,
        })
    }
}

/// A map key read ahead of the target's key seed.
enum Key<'de, K: DeserializeSeed<'de>> {
    /// Skipped: the entry's value is to be ignored; the seed comes back
    /// unused for the next key.
    Skipped(K),
    /// Handed to the target: its value, and the level of the entry's value.
    Kept { value: K::Value, below: Option<Level> },
}

/// Reads a key as a string, then either keeps the target's seed for the
/// next key or hands the string to it.
struct KeySeed<K> {
    target: K,
    level: Level,
}

impl<'de, K: DeserializeSeed<'de>> DeserializeSeed<'de> for KeySeed<K> {
    type Value = Key<'de, K>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de, K: DeserializeSeed<'de>> KeySeed<K> {
    /// The key `key`, handed to the target through `deserializer` unless
    /// skipped.
    fn decide<E, D>(self, key: &str, deserializer: D) -> Result<Key<'de, K>, E>
    where
        D: Deserializer<'de, Error = E>,
    {
        if self.level.skips(key) {
            return Ok(Key::Skipped(self.target));
        }
        let below = self.level.below(key);
        let value = self.target.deserialize(deserializer)?;
        Ok(Key::Kept { value, below })
    }
}

impl<'de, K: DeserializeSeed<'de>> Visitor<'de> for KeySeed<K> {
    type Value = Key<'de, K>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a string map key")
    }

    fn visit_borrowed_str<E: de::Error>(self, key: &'de str) -> Result<Self::Value, E> {
        self.decide(key, BorrowedStrDeserializer::new(key))
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Self::Value, E> {
        self.decide(key, StrDeserializer::new(key))
    }

    fn visit_string<E: de::Error>(self, key: String) -> Result<Self::Value, E> {
        // Decided on a borrow, then handed over by value.
        if self.level.skips(&key) {
            return Ok(Key::Skipped(self.target));
        }
        let below = self.level.below(&key);
        let value = self.target.deserialize(StringDeserializer::new(key))?;
        Ok(Key::Kept { value, below })
    }
}

#[cfg(test)]
mod tests;
