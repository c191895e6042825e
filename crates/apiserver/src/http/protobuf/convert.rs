//! Stored JSON ↔ protobuf messages, for any message of the descriptors.
//!
//! One walk over the descriptor serves every kind: a JSON object becomes a
//! message field by field (field names are the JSON names), arrays become
//! repeated fields, objects of `map<string, V>` fields become map entries.
//! The messages whose JSON form is not an object are handled by name, as
//! their Go types marshal themselves:
//!
//! | message | JSON | protobuf |
//! |---|---|---|
//! | `meta.v1.Time` | RFC 3339 string, seconds (`null`: zero time) | `{seconds, nanos}` |
//! | `meta.v1.MicroTime` | RFC 3339 string with microseconds | `{seconds, nanos}` |
//! | `meta.v1.Duration` | Go duration string (`"1h2m3s"`) | `{duration}` in nanoseconds |
//! | `intstr.IntOrString` | number or string | `{type, intVal, strVal}` |
//! | `resource.Quantity` | string (a number is read as its text) | `{string}` |
//! | `runtime.RawExtension`, `meta.v1.FieldsV1` | any JSON value | `{raw}`: its JSON bytes |
//!
//! `bytes` fields are base64 strings in JSON. Fields that Go embeds in their
//! parent's JSON (`json:",inline"`, e.g. `Volume.volumeSource`) carry the
//! `json_name` `,inline` in the descriptors.
//!
//! `omitempty`: protobuf cannot tell an absent field from an empty list or
//! map, and Go writes every non-pointer string, so decoding leaves out empty
//! strings, empty lists and maps and the zero `Time`; zero numbers and
//! `false` are kept (they can be meaningful pointers, like `replicas: 0`).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use prost_reflect::{
    DynamicMessage, FieldDescriptor, Kind, MapKey, MessageDescriptor, ReflectMessage as _, Value as PbValue,
};
use serde_json::{Map, Number, Value};

/// The `json_name` of an embedded (inline) field.
pub(super) const INLINE: &str = ",inline";

/// `metav1.Time{}` (0001-01-01T00:00:00Z) in Unix seconds.
const ZERO_TIME_SECONDS: i64 = -62_135_596_800;

const TIME: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.Time";
const MICRO_TIME: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.MicroTime";
const DURATION: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.Duration";
const FIELDS_V1: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.FieldsV1";
const INT_OR_STRING: &str = "k8s.io.apimachinery.pkg.util.intstr.IntOrString";
const QUANTITY: &str = "k8s.io.apimachinery.pkg.api.resource.Quantity";
const RAW_EXTENSION: &str = "k8s.io.apimachinery.pkg.runtime.RawExtension";

/// A JSON value that does not fit the message.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub(crate) struct ConvertError {
    path: String,
    message: String,
}

/// An error at `path` of the object.
pub(super) fn error_at(path: &str, message: impl Into<String>) -> ConvertError {
    ConvertError {
        path: if path.is_empty() { ".".into() } else { path.to_owned() },
        message: message.into(),
    }
}

/// A JSON object as a message of `desc`. Keys the message does not have
/// (`apiVersion`, `kind`, fields newer than the descriptors) are dropped.
pub(crate) fn from_json(desc: &MessageDescriptor, v: &Value, path: &str) -> Result<DynamicMessage, ConvertError> {
    let mut msg = DynamicMessage::new(desc.clone());
    match desc.full_name() {
        TIME | MICRO_TIME => {
            let s = v
                .as_str()
                .ok_or_else(|| error_at(path, "expected a timestamp string"))?;
            let ts: jiff::Timestamp = s
                .parse()
                .map_err(|e| error_at(path, format!("bad timestamp {s:?}: {e}")))?;
            set(&mut msg, "seconds", PbValue::I64(ts.as_second()));
            set(&mut msg, "nanos", PbValue::I32(ts.subsec_nanosecond()));
        }
        DURATION => {
            let s = v.as_str().ok_or_else(|| error_at(path, "expected a duration string"))?;
            let d: jiff::SignedDuration = s
                .parse()
                .map_err(|e| error_at(path, format!("bad duration {s:?}: {e}")))?;
            let nanos = i64::try_from(d.as_nanos()).map_err(|_| error_at(path, "duration out of range"))?;
            set(&mut msg, "duration", PbValue::I64(nanos));
        }
        INT_OR_STRING => match v {
            Value::Number(n) => {
                let i = n.as_i64().ok_or_else(|| error_at(path, "expected an integer"))?;
                set(&mut msg, "type", PbValue::I64(0));
                set(&mut msg, "intVal", PbValue::I32(i as i32));
            }
            Value::String(s) => {
                set(&mut msg, "type", PbValue::I64(1));
                set(&mut msg, "strVal", PbValue::String(s.clone()));
            }
            _ => return Err(error_at(path, "expected an integer or a string")),
        },
        QUANTITY => {
            let s = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => return Err(error_at(path, "expected a quantity string")),
            };
            set(&mut msg, "string", PbValue::String(s));
        }
        RAW_EXTENSION | FIELDS_V1 => {
            let raw = serde_json::to_vec(v).map_err(|e| error_at(path, e.to_string()))?;
            set(&mut msg, "raw", PbValue::Bytes(raw.into()));
        }
        _ => {
            let obj = v.as_object().ok_or_else(|| error_at(path, "expected an object"))?;
            fill(&mut msg, obj, path)?;
        }
    }
    Ok(msg)
}

fn set(msg: &mut DynamicMessage, name: &str, value: PbValue) {
    if let Some(fd) = msg.descriptor().get_field_by_name(name) {
        msg.set_field(&fd, value);
    }
}

fn fill(msg: &mut DynamicMessage, obj: &Map<String, Value>, path: &str) -> Result<(), ConvertError> {
    for fd in msg.descriptor().fields() {
        if fd.json_name() == INLINE {
            if let Kind::Message(inner) = fd.kind() {
                let mut embedded = DynamicMessage::new(inner);
                fill(&mut embedded, obj, path)?;
                if embedded.fields().next().is_some() {
                    msg.set_field(&fd, PbValue::Message(embedded));
                }
            }
            continue;
        }
        let Some(v) = obj.get(fd.name()).filter(|v| !v.is_null()) else {
            continue;
        };
        let here = format!("{path}.{}", fd.name());
        let value = if fd.is_map() {
            let Kind::Message(entry) = fd.kind() else { continue };
            let value_fd = entry.map_entry_value_field();
            let m = v.as_object().ok_or_else(|| error_at(&here, "expected an object"))?;
            let mut out = std::collections::HashMap::with_capacity(m.len());
            for (k, item) in m {
                if item.is_null() {
                    continue;
                }
                out.insert(
                    MapKey::String(k.clone()),
                    single(&value_fd, item, &format!("{here}[{k}]"))?,
                );
            }
            PbValue::Map(out)
        } else if fd.is_list() {
            let items = v.as_array().ok_or_else(|| error_at(&here, "expected an array"))?;
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                out.push(single(&fd, item, &format!("{here}[{i}]"))?);
            }
            PbValue::List(out)
        } else {
            single(&fd, v, &here)?
        };
        msg.set_field(&fd, value);
    }
    Ok(())
}

/// One value of a field (an element, for lists and maps).
fn single(fd: &FieldDescriptor, v: &Value, path: &str) -> Result<PbValue, ConvertError> {
    let int = || {
        v.as_i64()
            .or_else(|| v.as_f64().map(|f| f as i64))
            .ok_or_else(|| error_at(path, "expected a number"))
    };
    Ok(match fd.kind() {
        Kind::Message(desc) => PbValue::Message(from_json(&desc, v, path)?),
        Kind::String => PbValue::String(
            v.as_str()
                .ok_or_else(|| error_at(path, "expected a string"))?
                .to_owned(),
        ),
        Kind::Bytes => {
            let s = v.as_str().ok_or_else(|| error_at(path, "expected a base64 string"))?;
            PbValue::Bytes(BASE64.decode(s).map_err(|e| error_at(path, e.to_string()))?.into())
        }
        Kind::Bool => PbValue::Bool(v.as_bool().ok_or_else(|| error_at(path, "expected a boolean"))?),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => PbValue::I32(int()? as i32),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => PbValue::I64(int()?),
        Kind::Uint32 | Kind::Fixed32 => PbValue::U32(int()? as u32),
        Kind::Uint64 | Kind::Fixed64 => PbValue::U64(int()? as u64),
        Kind::Double => PbValue::F64(v.as_f64().ok_or_else(|| error_at(path, "expected a number"))?),
        Kind::Float => PbValue::F32(v.as_f64().ok_or_else(|| error_at(path, "expected a number"))? as f32),
        Kind::Enum(_) => return Err(error_at(path, "enums are not used by Kubernetes messages")),
    })
}

/// A message as JSON; `None` where Go's JSON leaves the value out (the zero
/// `Time`).
pub(crate) fn to_json(msg: &DynamicMessage) -> Option<Value> {
    let get_i64 = |name: &str| match msg.get_field_by_name(name).as_deref() {
        Some(PbValue::I64(i)) => *i,
        Some(PbValue::I32(i)) => i64::from(*i),
        _ => 0,
    };
    let get_str = |name: &str| match msg.get_field_by_name(name).as_deref() {
        Some(PbValue::String(s)) => s.clone(),
        _ => String::new(),
    };
    let get_bytes = |name: &str| match msg.get_field_by_name(name).as_deref() {
        Some(PbValue::Bytes(b)) => b.clone(),
        _ => bytes::Bytes::new(),
    };
    match msg.descriptor().full_name() {
        name @ (TIME | MICRO_TIME) => {
            let seconds = get_i64("seconds");
            let nanos = get_i64("nanos") as i32;
            if seconds == ZERO_TIME_SECONDS && nanos == 0 {
                return None;
            }
            let ts = jiff::Timestamp::new(seconds, nanos).ok()?;
            let text = if name == TIME {
                ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
            } else {
                format!("{}.{:06}Z", ts.strftime("%Y-%m-%dT%H:%M:%S"), ts.subsec_microsecond())
            };
            Some(Value::String(text))
        }
        DURATION => Some(Value::String(go_duration(get_i64("duration")))),
        INT_OR_STRING => Some(if get_i64("type") == 1 {
            Value::String(get_str("strVal"))
        } else {
            Value::from(get_i64("intVal"))
        }),
        QUANTITY => Some(Value::String(get_str("string"))),
        RAW_EXTENSION | FIELDS_V1 => {
            let raw = get_bytes("raw");
            if raw.is_empty() {
                return None;
            }
            serde_json::from_slice(&raw).ok()
        }
        _ => {
            let mut obj = Map::new();
            object_fields(msg, &mut obj);
            Some(Value::Object(obj))
        }
    }
}

fn object_fields(msg: &DynamicMessage, obj: &mut Map<String, Value>) {
    for (fd, value) in msg.fields() {
        if fd.json_name() == INLINE {
            if let PbValue::Message(inner) = value {
                object_fields(inner, obj);
            }
            continue;
        }
        let json = match value {
            PbValue::List(items) => {
                let out: Vec<Value> = items.iter().filter_map(scalar_to_json).collect();
                (!out.is_empty()).then_some(Value::Array(out))
            }
            PbValue::Map(entries) => {
                let mut out = Map::new();
                let mut keys: Vec<&MapKey> = entries.keys().collect();
                keys.sort_by(|a, b| map_key(a).cmp(map_key(b)));
                for k in keys {
                    if let Some(v) = entries.get(k).and_then(scalar_to_json) {
                        out.insert(map_key(k).to_owned(), v);
                    }
                }
                (!out.is_empty()).then_some(Value::Object(out))
            }
            other => scalar_to_json(other),
        };
        if let Some(j) = json {
            obj.insert(fd.name().to_owned(), j);
        }
    }
}

fn map_key(k: &MapKey) -> &str {
    match k {
        MapKey::String(s) => s,
        _ => "",
    }
}

fn scalar_to_json(v: &PbValue) -> Option<Value> {
    Some(match v {
        PbValue::Bool(b) => Value::Bool(*b),
        PbValue::I32(i) => Value::from(*i),
        PbValue::I64(i) => Value::from(*i),
        PbValue::U32(i) => Value::from(*i),
        PbValue::U64(i) => Value::from(*i),
        PbValue::F32(f) => Number::from_f64(f64::from(*f)).map_or(Value::Null, Value::Number),
        PbValue::F64(f) => Number::from_f64(*f).map_or(Value::Null, Value::Number),
        PbValue::String(s) if s.is_empty() => return None,
        PbValue::String(s) => Value::String(s.clone()),
        PbValue::Bytes(b) => Value::String(BASE64.encode(b)),
        PbValue::Message(m) => return to_json(m),
        PbValue::EnumNumber(n) => Value::from(*n),
        PbValue::List(_) | PbValue::Map(_) => return None,
    })
}

/// Go's `time.Duration.String()`: `1h2m3.5s`, `1.5ms`, `0s`.
fn go_duration(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".into();
    }
    let sign = if nanos < 0 { "-" } else { "" };
    let n = nanos.unsigned_abs();
    let frac = |value: u64, unit: u64, suffix: &str| {
        let whole = value / unit;
        let rest = value % unit;
        if rest == 0 {
            format!("{whole}{suffix}")
        } else {
            let width = unit.ilog10() as usize;
            let digits = format!("{rest:0width$}");
            format!("{whole}.{}{suffix}", digits.trim_end_matches('0'))
        }
    };
    if n < 1_000 {
        return format!("{sign}{n}ns");
    }
    if n < 1_000_000 {
        return format!("{sign}{}", frac(n, 1_000, "µs"));
    }
    if n < 1_000_000_000 {
        return format!("{sign}{}", frac(n, 1_000_000, "ms"));
    }
    let secs_total = n / 1_000_000_000;
    let sub = n % 1_000_000_000;
    let hours = secs_total / 3600;
    let minutes = (secs_total % 3600) / 60;
    let secs = secs_total % 60;
    let hm = match (hours, minutes) {
        (0, 0) => String::new(),
        (0, m) => format!("{m}m"),
        (h, m) => format!("{h}h{m}m"),
    };
    format!("{sign}{hm}{}", frac(secs * 1_000_000_000 + sub, 1_000_000_000, "s"))
}

#[cfg(test)]
mod tests {
    use super::go_duration;

    #[test]
    fn durations_print_as_go_does() {
        assert_eq!(go_duration(0), "0s");
        assert_eq!(go_duration(1_500_000), "1.5ms");
        assert_eq!(go_duration(3_723_000_000_000), "1h2m3s");
        assert_eq!(go_duration(90_000_000_000), "1m30s");
        assert_eq!(go_duration(2_500_000_000), "2.5s");
    }
}
