//! Response bodies and the small constructors every handler uses.

use std::convert::Infallible;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, combinators::UnsyncBoxBody};
use serde_json::Value;

use crate::error::ApiError;

/// The body of every response: a full JSON document or a watch stream.
pub type ResponseBody = UnsyncBoxBody<Bytes, Infallible>;

/// A complete body.
pub(crate) fn full(bytes: impl Into<Bytes>) -> ResponseBody {
    Full::new(bytes.into()).map_err(|never| match never {}).boxed_unsync()
}

/// A response with `status`, `Content-Type: content_type` and `body`.
pub(crate) fn respond(status: u16, content_type: &str, body: impl Into<Bytes>) -> Response<ResponseBody> {
    let mut resp = Response::new(full(body));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = HeaderValue::from_str(content_type) {
        resp.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    resp
}

/// A JSON response from serialized bytes.
pub(crate) fn json_response(status: u16, body: impl Into<Bytes>) -> Response<ResponseBody> {
    respond(status, "application/json", body)
}

/// A JSON response from a value.
pub(crate) fn value_response(status: u16, v: &Value) -> Response<ResponseBody> {
    json_response(status, v.to_string())
}

/// A Status error as kube-apiserver sends it.
pub(crate) fn error_response(err: &ApiError) -> Response<ResponseBody> {
    let mut resp = json_response(err.code, err.to_bytes());
    if let Some(secs) = err.retry_after_seconds
        && let Ok(v) = HeaderValue::from_str(&secs.to_string())
    {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}
