//! Query strings, the options of list and watch requests, continue tokens
//! and small encodings.

use std::collections::HashMap;
use std::time::Duration;

use crate::error::{ApiError, StatusCause};
use crate::resources::ResourceInfo;
use crate::selector::{FieldSelector, LabelSelector};

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

/// The options of a list request, parsed and checked as upstream checks them.
pub(crate) struct ListOptions {
    /// `labelSelector`.
    pub(crate) labels: LabelSelector,
    /// `fieldSelector`.
    pub(crate) fields: FieldSelector,
    /// `limit`; 0 for no limit.
    pub(crate) limit: usize,
    /// The resourceVersion to list at: from a continue token, or for
    /// `resourceVersionMatch=Exact`; `None` for the latest.
    pub(crate) at: Option<u64>,
    /// The last key of the previous page, from a continue token.
    pub(crate) after: Option<String>,
}

impl ListOptions {
    /// Parses `labelSelector`, `fieldSelector`, `limit`, `resourceVersion`,
    /// `resourceVersionMatch` and `continue`. `current_rv` gives the store's
    /// resourceVersion; it is read once the checks that do not need it pass.
    pub(crate) fn parse(info: &ResourceInfo, q: &Query, current_rv: impl FnOnce() -> u64) -> Result<Self, ApiError> {
        let (labels, fields) = parse_selectors(info, q)?;
        let limit = match q.get("limit") {
            Some(l) if !l.is_empty() => l
                .parse::<i64>()
                .map_err(|_| ApiError::bad_request(format!("invalid limit: {l}")))?
                .max(0) as usize,
            _ => 0,
        };
        let rv = q.get("resourceVersion").filter(|r| !r.is_empty());
        let rvm = q.get("resourceVersionMatch").filter(|r| !r.is_empty());
        if rvm.is_some() && rv.is_none() {
            return Err(list_options_invalid(
                "resourceVersionMatch",
                "resourceVersionMatch is forbidden unless resourceVersion is provided",
            ));
        }
        let current = current_rv();
        let token = q.get("continue").filter(|c| !c.is_empty());
        let (at, after) = if let Some(token) = token {
            if rv.is_some_and(|r| r != "0") {
                return Err(list_options_invalid(
                    "resourceVersion",
                    "specifying resource version is not allowed when using continue",
                ));
            }
            let (rv, key) = decode_continue(token).ok_or_else(|| {
                ApiError::bad_request(
                    "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
                )
            })?;
            (Some(rv), Some(key))
        } else {
            match (rv, rvm) {
                (None, _) => (None, None),
                (Some(r), m) => {
                    let n: u64 = r
                        .parse()
                        .map_err(|_| ApiError::bad_request(format!("invalid resource version: {r}")))?;
                    match m {
                        Some("Exact") if n == 0 => {
                            return Err(list_options_invalid(
                                "resourceVersionMatch",
                                "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
                            ));
                        }
                        Some("Exact") => {
                            if n > current {
                                return Err(ApiError::too_large_resource_version(n, current));
                            }
                            (Some(n), None)
                        }
                        Some("NotOlderThan") | None => {
                            if n > current {
                                return Err(ApiError::too_large_resource_version(n, current));
                            }
                            (None, None)
                        }
                        Some(other) => {
                            return Err(list_options_invalid(
                                "resourceVersionMatch",
                                &format!(
                                    "Unsupported value: \"{other}\": supported values: \"Exact\", \"NotOlderThan\", \"\""
                                ),
                            ));
                        }
                    }
                }
            }
        };
        Ok(Self {
            labels,
            fields,
            limit,
            at,
            after,
        })
    }
}

/// The options of a watch request, parsed and checked as upstream checks them.
pub(crate) struct WatchOptions {
    /// `labelSelector`.
    pub(crate) labels: LabelSelector,
    /// `fieldSelector`.
    pub(crate) fields: FieldSelector,
    /// `resourceVersion`, as given.
    pub(crate) resource_version: Option<String>,
    /// `sendInitialEvents`.
    pub(crate) send_initial_events: Option<bool>,
    /// `allowWatchBookmarks`.
    pub(crate) allow_bookmarks: bool,
    /// `timeoutSeconds`, or the server's default.
    pub(crate) timeout: Duration,
}

impl WatchOptions {
    /// Parses `labelSelector`, `fieldSelector`, `resourceVersion`,
    /// `sendInitialEvents`, `resourceVersionMatch`, `allowWatchBookmarks` and
    /// `timeoutSeconds` (`default_timeout` when absent or zero).
    pub(crate) fn parse(info: &ResourceInfo, q: &Query, default_timeout: Duration) -> Result<Self, ApiError> {
        let (labels, fields) = parse_selectors(info, q)?;
        let send_initial_events = q.flag("sendInitialEvents");
        let allow_bookmarks = q.flag("allowWatchBookmarks") == Some(true);
        if send_initial_events.is_some() {
            let rvm = q.get("resourceVersionMatch").unwrap_or("");
            if rvm != "NotOlderThan" {
                return Err(list_options_invalid(
                    "resourceVersionMatch",
                    "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
                ));
            }
            if send_initial_events == Some(true) && !allow_bookmarks {
                return Err(list_options_invalid(
                    "allowWatchBookmarks",
                    "sendInitialEvents requires setting allowWatchBookmarks to true",
                ));
            }
        }
        let timeout = match q.get("timeoutSeconds").and_then(|t| t.parse::<u64>().ok()) {
            Some(secs) if secs > 0 => Duration::from_secs(secs),
            _ => default_timeout,
        };
        Ok(Self {
            labels,
            fields,
            resource_version: q.get("resourceVersion").map(str::to_owned),
            send_initial_events,
            allow_bookmarks,
            timeout,
        })
    }
}

/// The `labelSelector` and `fieldSelector` parameters, checked against the
/// fields `info` supports.
pub(crate) fn parse_selectors(info: &ResourceInfo, q: &Query) -> Result<(LabelSelector, FieldSelector), ApiError> {
    let labels =
        LabelSelector::parse(q.get("labelSelector").unwrap_or("")).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let fields =
        FieldSelector::parse(q.get("fieldSelector").unwrap_or("")).map_err(|e| ApiError::bad_request(e.to_string()))?;
    fields
        .check_supported(info)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok((labels, fields))
}

/// A 422 Invalid answer about a list option, as upstream words it.
pub(crate) fn list_options_invalid(field: &str, detail: &str) -> ApiError {
    let mut err = ApiError::new(
        422,
        "Invalid",
        format!("ListOptions.meta.k8s.io \"\" is invalid: {field}: Forbidden: {detail}"),
    );
    err.group = Some("meta.k8s.io".into());
    err.kind = Some("ListOptions".into());
    err.causes = vec![StatusCause {
        reason: "FieldValueForbidden".into(),
        message: format!("Forbidden: {detail}"),
        field: field.into(),
    }];
    err
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
