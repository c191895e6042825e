//! `application/vnd.kubernetes.protobuf`: objects, lists, Status errors
//! and watch events in Kubernetes' protobuf encoding.
//!
//! The wire format is upstream's (`k8s.io/apimachinery/pkg/runtime/
//! serializer/protobuf`): the 4 bytes `k8s\0`, then a `runtime.Unknown`
//! whose `typeMeta` names the apiVersion and kind and whose `raw` holds the
//! object's message. A watch (`;stream=watch`) is a sequence of frames, each
//! a 4-byte big-endian length and a bare `metav1.WatchEvent` (the stream
//! serializer is upstream's *raw* one: no magic, no `Unknown`), whose
//! `object.raw` holds the enveloped object.
//!
//! The messages come from kube-rs's `k8s-pb` (prost-generated from
//! upstream's `generated.proto`): the envelope and the watch event use its
//! types directly, and every object goes through one generic codec
//! (`convert`) over descriptors of its messages. `k8s-pb` ships no
//! descriptors, so `cargo xtask pb-schema` derives them from its generated
//! code (field numbers, types) and k8s-openapi's (JSON names) into
//! `k8s.binpb`, loaded here with `prost-reflect`.

mod convert;

use std::collections::HashMap;
use std::sync::OnceLock;

use bytes::{BufMut, Bytes, BytesMut};
use k8s_pb::apimachinery::pkg::apis::meta::v1::WatchEvent as PbWatchEvent;
use k8s_pb::apimachinery::pkg::runtime::{RawExtension, TypeMeta, Unknown};
use prost::Message as _;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor};
use serde_json::{Map, Value};

pub(crate) use convert::ConvertError;

/// The protobuf media type.
pub(crate) const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// The media type of a protobuf watch response.
pub(crate) const WATCH_MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf;stream=watch";

/// The prefix of every enveloped object.
const MAGIC: &[u8; 4] = b"k8s\0";

/// The descriptors written by `cargo xtask pb-schema`.
static DESCRIPTORS: &[u8] = include_bytes!("k8s.binpb");

const META_PACKAGE: &str = "k8s.io.apimachinery.pkg.apis.meta.v1";

/// Why a body could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CodecError {
    /// The bytes do not start with `k8s\0`.
    #[error("provided object is not a protobuf-encoded Kubernetes object (no k8s\\0 prefix)")]
    NoMagic,
    /// Not a valid message.
    #[error("unable to decode protobuf: {0}")]
    Decode(#[from] prost::DecodeError),
    /// No message for this apiVersion and kind.
    #[error("no protobuf message for {api_version}, Kind={kind}")]
    UnknownKind {
        /// The object's apiVersion.
        api_version: String,
        /// The object's kind.
        kind: String,
    },
    /// The JSON does not fit the message.
    #[error("{0}")]
    Convert(#[from] ConvertError),
}

/// The loaded descriptors, indexed by package and lower-cased name.
struct Schema {
    by_name: HashMap<(String, String), MessageDescriptor>,
}

fn schema() -> Option<&'static Schema> {
    static SCHEMA: OnceLock<Option<Schema>> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let pool = match DescriptorPool::decode(DESCRIPTORS) {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!(error = %e, "protobuf descriptors do not load; protobuf is off");
                    return None;
                }
            };
            let by_name = pool
                .all_messages()
                .map(|m| ((m.package_name().to_owned(), m.name().to_lowercase()), m))
                .collect();
            Some(Schema { by_name })
        })
        .as_ref()
}

/// The protobuf package of an apiVersion: `v1` → `k8s.io.api.core.v1`,
/// `rbac.authorization.k8s.io/v1` → `k8s.io.api.rbac.v1`.
fn package(api_version: &str) -> String {
    match api_version.split_once('/') {
        None => format!("k8s.io.api.core.{api_version}"),
        Some(("meta.k8s.io", v)) => format!("k8s.io.apimachinery.pkg.apis.meta.{v}"),
        Some((group, v)) => format!("k8s.io.api.{}.{v}", group.split('.').next().unwrap_or(group)),
    }
}

/// The message of `kind` in `api_version`; meta kinds (`Status`,
/// `DeleteOptions`, `WatchEvent`) are found under any apiVersion, as
/// upstream registers them in every group.
fn message(api_version: &str, kind: &str) -> Option<MessageDescriptor> {
    let schema = schema()?;
    let kind = kind.to_lowercase();
    schema
        .by_name
        .get(&(package(api_version), kind.clone()))
        .or_else(|| schema.by_name.get(&(META_PACKAGE.to_owned(), kind)))
        .cloned()
}

/// Whether objects of this kind (and its list) have protobuf messages.
pub(crate) fn supports(api_version: &str, kind: &str) -> bool {
    message(api_version, kind).is_some()
}

/// An object (with `apiVersion` and `kind`) in the envelope.
pub(crate) fn encode(object: &Value) -> Result<Vec<u8>, CodecError> {
    let api_version = object.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
    let desc = message(api_version, kind).ok_or_else(|| CodecError::UnknownKind {
        api_version: api_version.to_owned(),
        kind: kind.to_owned(),
    })?;
    let msg = convert::from_json(&desc, object, "")?;
    let unknown = Unknown {
        type_meta: Some(TypeMeta {
            api_version: Some(api_version.to_owned()),
            kind: Some(kind.to_owned()),
        }),
        raw: Some(msg.encode_to_vec()),
        // Go writes both strings even when empty.
        content_encoding: Some(String::new()),
        content_type: Some(String::new()),
    };
    let mut out = Vec::with_capacity(MAGIC.len() + unknown.encoded_len());
    out.extend_from_slice(MAGIC);
    unknown
        .encode(&mut out)
        .map_err(|e| CodecError::Convert(convert_error(&e)))?;
    Ok(out)
}

fn convert_error(e: &impl std::fmt::Display) -> ConvertError {
    convert::error_at("", e.to_string())
}

/// An enveloped object as JSON, `apiVersion` and `kind` first.
pub(crate) fn decode(bytes: &[u8]) -> Result<Value, CodecError> {
    let body = bytes.strip_prefix(MAGIC.as_slice()).ok_or(CodecError::NoMagic)?;
    let unknown = Unknown::decode(body)?;
    let type_meta = unknown.type_meta.unwrap_or_default();
    let api_version = type_meta.api_version.unwrap_or_default();
    let kind = type_meta.kind.unwrap_or_default();
    let desc = message(&api_version, &kind).ok_or_else(|| CodecError::UnknownKind {
        api_version: api_version.clone(),
        kind: kind.clone(),
    })?;
    let msg = DynamicMessage::decode(desc, unknown.raw.unwrap_or_default().as_slice())?;
    let mut out = Map::new();
    out.insert("kind".into(), Value::String(kind));
    out.insert("apiVersion".into(), Value::String(api_version));
    if let Some(Value::Object(fields)) = convert::to_json(&msg) {
        out.extend(fields);
    }
    Ok(Value::Object(out))
}

/// One frame of a protobuf watch: length, then a `WatchEvent` whose object
/// is the enveloped `object`.
pub(crate) fn watch_frame(event_type: &str, object: &Value) -> Result<Bytes, CodecError> {
    let event = PbWatchEvent {
        r#type: Some(event_type.to_owned()),
        object: Some(RawExtension {
            raw: Some(encode(object)?),
        }),
    };
    let len = event.encoded_len();
    let mut buf = BytesMut::with_capacity(4 + len);
    buf.put_u32(u32::try_from(len).unwrap_or(u32::MAX));
    event
        .encode(&mut buf)
        .map_err(|e| CodecError::Convert(convert_error(&e)))?;
    Ok(buf.freeze())
}

/// Splits a protobuf watch body into its events: (type, object as JSON).
#[cfg(test)]
pub(crate) fn read_watch_frames(mut body: &[u8]) -> Result<Vec<(String, Value)>, CodecError> {
    let mut out = Vec::new();
    while body.len() >= 4 {
        let len = u32::from_be_bytes([body[0], body[1], body[2], body[3]]) as usize;
        let frame = body.get(4..4 + len).ok_or(CodecError::NoMagic)?;
        let event = PbWatchEvent::decode(frame)?;
        let raw = event.object.and_then(|o| o.raw).unwrap_or_default();
        out.push((event.r#type.unwrap_or_default(), decode(&raw)?));
        body = &body[4 + len..];
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
