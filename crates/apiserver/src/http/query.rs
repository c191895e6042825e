//! Query strings, continue tokens and small encodings.

use std::collections::HashMap;

/// Decoded query parameters (the last occurrence of a key wins; all kept in `all`).
#[derive(Debug, Default, Clone)]
pub(crate) struct Query {
    map: HashMap<String, String>,
    all: Vec<(String, String)>,
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-decodes a query component (`+` is a space).
pub(crate) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' if i + 2 < bytes.len() => {
                if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    out.push(h * 16 + l);
                    i += 3;
                } else {
                    out.push(b'%');
                    i += 1;
                }
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Query {
    pub(crate) fn parse(raw: Option<&str>) -> Self {
        let mut q = Self::default();
        for pair in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let (k, v) = (percent_decode(k), percent_decode(v));
            q.all.push((k.clone(), v.clone()));
            q.map.insert(k, v);
        }
        q
    }

    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.map.get(key).map(String::as_str)
    }

    /// `true`/`1` → true, `false`/`0` → false.
    pub(crate) fn flag(&self, key: &str) -> Option<bool> {
        self.get(key).map(|v| v == "true" || v == "1")
    }

    pub(crate) fn all(&self, key: &str) -> impl Iterator<Item = &str> {
        self.all.iter().filter(move |(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Base64 (URL alphabet, no padding), as upstream encodes continue tokens.
pub(crate) fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// Decodes [`base64_encode`] output (also accepts the standard alphabet and padding).
pub(crate) fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for c in text.bytes().filter(|c| *c != b'=') {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// A continue token: the list's resourceVersion and the last key returned.
pub(crate) fn encode_continue(rv: u64, last_key: &str) -> String {
    let token = serde_json::json!({"v": "meta.k8s.io/v1", "rv": rv, "start": format!("{last_key}\u{0}")});
    base64_encode(token.to_string().as_bytes())
}

/// Decodes a continue token into (resourceVersion, last key).
pub(crate) fn decode_continue(token: &str) -> Option<(u64, String)> {
    let bytes = base64_decode(token)?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    if v.get("v")?.as_str()? != "meta.k8s.io/v1" {
        return None;
    }
    let rv = v.get("rv")?.as_u64()?;
    let start = v.get("start")?.as_str()?;
    Some((rv, start.strip_suffix('\u{0}').unwrap_or(start).to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_round_trip() {
        let t = encode_continue(42, "default/pod-7");
        assert_eq!(decode_continue(&t), Some((42, "default/pod-7".to_owned())));
        assert_eq!(decode_continue("garbage!"), None);
        for s in ["", "a", "ab", "abc", "abcd"] {
            assert_eq!(base64_decode(&base64_encode(s.as_bytes())).unwrap(), s.as_bytes());
        }
    }

    #[test]
    fn query_decoding() {
        let q = Query::parse(Some("labelSelector=app%3Dweb%2Ctier+in+(a)&watch=1"));
        assert_eq!(q.get("labelSelector"), Some("app=web,tier in (a)"));
        assert_eq!(q.flag("watch"), Some(true));
    }
}
