//! The `pod-template-hash` label: what ties a ReplicaSet and its pods to
//! one version of a Deployment's pod template.
//!
//! Upstream (`controller.ComputeHash`) feeds a Go dump of the template
//! struct and the collision count to 32-bit FNV-1a and encodes the decimal
//! number with `rand.SafeEncodeString`. A Go struct dump cannot be
//! reproduced here, so the hash is FNV-1a 32 over the template's JSON with
//! object keys sorted (stable across runs and key orders), then the
//! collision count, encoded the same way: the values differ from a real
//! cluster's but have its shape (up to ten characters of
//! `bcdfghjklmnpqrstvwxz2456789`) and its stability.

use serde_json::Value;

/// The label (and selector key) a Deployment adds to its ReplicaSets and pods.
pub(crate) const LABEL: &str = "pod-template-hash";

const FNV_OFFSET: u32 = 0x811c_9dc5;
const FNV_PRIME: u32 = 0x0100_0193;
/// `rand.SafeEncodeString`'s alphabet: no vowels, no confusable digits.
const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// 32-bit FNV-1a (the `hash/fnv` `New32a` of upstream).
struct Fnv32a(u32);

impl Fnv32a {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u32::from(*b);
            self.0 = self.0.wrapping_mul(FNV_PRIME);
        }
    }

    /// Feeds a JSON value with object keys in sorted order.
    fn write_json(&mut self, v: &Value) {
        match v {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                self.write(b"{");
                for k in keys {
                    self.write_json(&Value::String(k.clone()));
                    self.write(b":");
                    self.write_json(&map[k]);
                    self.write(b",");
                }
                self.write(b"}");
            }
            Value::Array(items) => {
                self.write(b"[");
                for item in items {
                    self.write_json(item);
                    self.write(b",");
                }
                self.write(b"]");
            }
            other => self.write(other.to_string().as_bytes()),
        }
    }
}

/// `rand.SafeEncodeString`: each byte mapped into [`ALPHANUMS`].
fn safe_encode(s: &str) -> String {
    s.bytes()
        .map(|b| ALPHANUMS[usize::from(b) % ALPHANUMS.len()] as char)
        .collect()
}

/// The `pod-template-hash` of a pod template (as found in the Deployment,
/// without the label itself) and the Deployment's `collisionCount`.
pub(crate) fn compute(template: &Value, collision_count: Option<i64>) -> String {
    let mut h = Fnv32a(FNV_OFFSET);
    h.write_json(&without_hash_label(template));
    if let Some(c) = collision_count {
        h.write(&(c as u32).to_le_bytes());
    }
    safe_encode(&h.0.to_string())
}

/// The template with any `pod-template-hash` label removed (`EqualIgnoreHash`).
pub(crate) fn without_hash_label(template: &Value) -> Value {
    let mut t = template.clone();
    if let Some(Value::Object(labels)) = t.pointer_mut("/metadata/labels") {
        labels.remove(LABEL);
        if labels.is_empty()
            && let Some(Value::Object(meta)) = t.get_mut("metadata")
        {
            meta.remove("labels");
        }
    }
    t
}

/// Whether two templates are equal apart from the hash label (`EqualIgnoreHash`).
pub(crate) fn equal_ignoring_hash(a: &Value, b: &Value) -> bool {
    without_hash_label(a) == without_hash_label(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fnv1a_32_matches_the_reference_vectors() {
        let hash = |s: &str| {
            let mut h = Fnv32a(FNV_OFFSET);
            h.write(s.as_bytes());
            h.0
        };
        assert_eq!(hash(""), 0x811c_9dc5);
        assert_eq!(hash("a"), 0xe40c_292c);
        assert_eq!(hash("foobar"), 0xbf9c_f968);
    }

    #[test]
    fn hash_is_stable_safe_and_ignores_key_order_and_its_own_label() {
        let a = json!({"metadata": {"labels": {"app": "web", "tier": "fe"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}});
        let b = json!({"spec": {"containers": [{"image": "nginx", "name": "c"}]}, "metadata": {"labels": {"tier": "fe", "app": "web"}}});
        let mut labelled = a.clone();
        labelled["metadata"]["labels"][LABEL] = json!("xyz");
        let h = compute(&a, None);
        assert_eq!(h, compute(&b, None));
        assert_eq!(h, compute(&labelled, None));
        assert!(equal_ignoring_hash(&a, &labelled));
        assert!(!h.is_empty() && h.len() <= 10, "{h}");
        assert!(h.bytes().all(|c| ALPHANUMS.contains(&c)), "{h}");
        let mut changed = a.clone();
        changed["metadata"]["annotations"] = json!({"kubectl.kubernetes.io/restartedAt": "now"});
        assert_ne!(h, compute(&changed, None));
        assert_ne!(h, compute(&a, Some(1)));
    }

    #[test]
    fn safe_encoding_maps_digits_like_upstream() {
        // '0' is byte 48: 48 % 27 = 21 -> '4'; '1' -> '5'; '9' -> 57 % 27 = 3 -> 'f'.
        assert_eq!(safe_encode("019"), "45f");
    }
}
