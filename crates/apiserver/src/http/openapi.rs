//! Serving the OpenAPI documents (`crate::openapi`) as kube-apiserver does:
//! JSON only, 406 Not Acceptable when the `Accept` header admits no JSON
//! (client-go asks `/openapi/v2` for protobuf only, and takes the error as
//! "no v2 document"), `ETag` / `If-None-Match`, and for v3 documents fetched
//! with the index's `hash`, an immutable cache lifetime, or a redirect to the
//! current hash when it is stale.

use http::{HeaderMap, HeaderValue, Response, header};

use super::response::{ResponseBody, error_response, respond};
use crate::error::ApiError;
use crate::openapi::Document;
use crate::state::Shared;

/// Whether `accept` admits a JSON answer (no header admits anything).
fn accepts_json(accept: &str) -> bool {
    if accept.trim().is_empty() {
        return true;
    }
    accept.split(',').any(|clause| {
        let mut parts = clause.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let refused = parts.any(|p| {
            p.trim()
                .strip_prefix("q=")
                .is_some_and(|q| q.trim().parse::<f32>().is_ok_and(|q| q <= 0.0))
        });
        !refused && matches!(media.as_str(), "application/json" | "application/*" | "*/*")
    })
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> &str {
    headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

fn not_acceptable() -> Response<ResponseBody> {
    respond(406, "text/plain; charset=utf-8", "")
}

/// `doc` as a response; `cache_control` as given.
fn serve(doc: &Document, headers: &HeaderMap, cache_control: &'static str) -> Response<ResponseBody> {
    let etag = format!("\"{}\"", doc.hash);
    let mut resp = if header_str(headers, header::IF_NONE_MATCH) == etag {
        respond(304, "application/json", "")
    } else {
        respond(200, "application/json", doc.body.clone())
    };
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache_control));
    h.insert(header::VARY, HeaderValue::from_static("Accept"));
    resp
}

/// `GET /openapi/v2`.
pub(crate) fn v2(shared: &Shared, headers: &HeaderMap) -> Response<ResponseBody> {
    if !accepts_json(header_str(headers, header::ACCEPT)) {
        return not_acceptable();
    }
    let doc = shared.openapi.v2(&shared.store.table, &shared.config.git_version);
    serve(doc, headers, "no-cache, private")
}

/// `GET /openapi/v3` (`path` `None`) or `/openapi/v3/{path}`.
pub(crate) fn v3(
    shared: &Shared,
    path: Option<&str>,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Response<ResponseBody> {
    if !accepts_json(header_str(headers, header::ACCEPT)) {
        return not_acceptable();
    }
    let docs = shared.openapi.v3(&shared.store.table, &shared.config.git_version);
    let Some(path) = path else {
        return serve(&docs.index, headers, "no-cache, private");
    };
    let Some(doc) = docs.by_path.get(path) else {
        return error_response(&ApiError::path_not_found());
    };
    let hash = query.unwrap_or("").split('&').find_map(|kv| kv.strip_prefix("hash="));
    match hash {
        None => serve(doc, headers, "no-cache, private"),
        Some(h) if h == doc.hash => serve(doc, headers, "public, immutable, max-age=31536000"),
        Some(_) => {
            let mut resp = respond(301, "text/plain; charset=utf-8", "");
            if let Ok(v) = HeaderValue::from_str(&format!("/openapi/v3/{path}?hash={}", doc.hash)) {
                resp.headers_mut().insert(header::LOCATION, v);
            }
            resp
        }
    }
}

#[cfg(test)]
mod tests {
    use super::accepts_json;

    #[test]
    fn accept_negotiation() {
        assert!(accepts_json(""));
        assert!(accepts_json("application/json"));
        assert!(accepts_json("application/json, */*"));
        assert!(accepts_json(
            "application/com.github.proto-openapi.spec.v2@v1.0+protobuf, application/json;q=0.5"
        ));
        assert!(accepts_json("*/*"));
        assert!(!accepts_json(
            "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
        ));
        assert!(!accepts_json(
            "application/com.github.proto-openapi.spec.v3@v1.0+protobuf"
        ));
        assert!(!accepts_json("application/json;q=0"));
    }
}
