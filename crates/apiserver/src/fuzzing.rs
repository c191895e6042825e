//! Entry points for the fuzz targets of `fuzz/` (`cargo xtask fuzz`): the
//! request-decoding steps of the server, callable one by one without a
//! runtime or a store. Not a stable API; hidden from the documentation.

use std::time::Duration;

use serde_json::Value;

use crate::http::query::{ListOptions, Query, WatchOptions, decode_continue, encode_continue};
use crate::patch::{PatchError, PatchType, apply, parse_patch};
use crate::resources::{ResourceInfo, builtin_resources};

/// The built-in resource whose plural is `plural`, else the first one.
fn resource(plural: &str) -> ResourceInfo {
    let mut all = builtin_resources();
    let index = all.iter().position(|r| r.plural == plural).unwrap_or(0);
    all.swap_remove(index)
}

/// What the server makes of a raw query string for a list and a watch of
/// `plural`: the outcome of list option parsing (`Ok` with the page limit,
/// or the error's HTTP code) and of watch option parsing, with `current_rv`
/// as the store's resourceVersion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryOutcome {
    /// List options: `Ok(limit)` or the HTTP status code of the error.
    pub list: Result<usize, u16>,
    /// Watch options: `Ok(timeout)` or the HTTP status code of the error.
    pub watch: Result<Duration, u16>,
    /// The decoded `continue` parameter, when it is a valid token.
    pub continue_token: Option<(u64, String)>,
}

/// Decodes `raw` (the part of a URL after `?`) as the list and watch
/// handlers of `plural` do.
pub fn decode_query(plural: &str, raw: &str, current_rv: u64) -> QueryOutcome {
    let info = resource(plural);
    let q = Query::parse(Some(raw));
    QueryOutcome {
        list: ListOptions::parse(&info, &q, || current_rv)
            .map(|o| o.limit)
            .map_err(|e| e.code),
        watch: WatchOptions::parse(&info, &q, Duration::from_secs(1800))
            .map(|o| o.timeout)
            .map_err(|e| e.code),
        continue_token: q.get("continue").and_then(decode_continue),
    }
}

/// A continue token for `(rv, last_key)`, decoded again.
pub fn continue_round_trip(rv: u64, last_key: &str) -> Option<(u64, String)> {
    decode_continue(&encode_continue(rv, last_key))
}

/// Applies the patch `body`, sent with `content_type`, to `target` as the
/// patch handler does (`None` when the content type is not a patch type).
pub fn patch(content_type: &str, target: &Value, body: &[u8]) -> Option<Result<Value, PatchError>> {
    let kind = PatchType::from_content_type(content_type)?;
    Some(parse_patch(kind, body).and_then(|patch| apply(kind, target, &patch)))
}

/// The validation errors of creating `obj` as a `plural` (`field: body`
/// each); empty when the server would accept it.
pub fn validate_create(plural: &str, obj: &Value) -> Vec<String> {
    crate::validation::validate_create(&resource(plural), obj)
        .iter()
        .map(|e| format!("{}: {}", e.field, e.body()))
        .collect()
}
