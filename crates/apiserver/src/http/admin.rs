//! The admin API under `/ecm-admin/`: read and set fault-injection rules
//! (`faults`), read and set the reviews' tokens and allow rules (`auth`),
//! compact a resource's history (`compact/{resource}`) and read the write
//! log (`writes`). Not part of the Kubernetes API.

use http::{Method, Response};
use serde_json::{Value, json};

use super::response::{ResponseBody, error_response, json_response, value_response};
use crate::error::ApiError;
use crate::faults::FaultConfig;
use crate::reviews::AuthConfig;
use crate::state::Shared;

/// Serves `/ecm-admin/...`: fault rules, review rules, compaction and the write log.
pub(super) fn admin(shared: &Shared, method: &Method, rest: &[String], body: &[u8]) -> Response<ResponseBody> {
    let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
    match (method, rest.as_slice()) {
        (&Method::GET, ["faults"]) => match serde_json::to_string(&shared.faults.get()) {
            Ok(s) => json_response(200, s),
            Err(e) => error_response(&ApiError::internal(&e.to_string())),
        },
        (&Method::PUT | &Method::POST, ["faults"]) => match FaultConfig::parse(&String::from_utf8_lossy(body)) {
            Ok(config) => {
                shared.faults.set(config.clone());
                json_response(200, serde_json::to_string(&config).unwrap_or_default())
            }
            Err(e) => error_response(&ApiError::bad_request(e.to_string())),
        },
        (&Method::DELETE, ["faults"]) => {
            shared.faults.set(FaultConfig::default());
            json_response(200, "{}")
        }
        (&Method::GET, ["auth"]) => match serde_json::to_string(&*shared.auth.read()) {
            Ok(s) => json_response(200, s),
            Err(e) => error_response(&ApiError::internal(&e.to_string())),
        },
        (&Method::PUT | &Method::POST, ["auth"]) => match serde_json::from_slice::<AuthConfig>(body) {
            Ok(auth) => {
                let answer = serde_json::to_string(&auth).unwrap_or_default();
                *shared.auth.write() = auth;
                json_response(200, answer)
            }
            Err(e) => error_response(&ApiError::bad_request(format!("not an auth configuration: {e}"))),
        },
        (&Method::DELETE, ["auth"]) => {
            *shared.auth.write() = AuthConfig::default();
            json_response(200, "{}")
        }
        (&Method::POST, ["compact", resource]) => match shared.store.table.by_plural(resource) {
            Some(res) => {
                shared.store.compact(res);
                json_response(
                    200,
                    json!({"compacted": resource, "resourceVersion": shared.store.current_rv().to_string()})
                        .to_string(),
                )
            }
            None => error_response(&ApiError::path_not_found()),
        },
        (&Method::GET, ["writes"]) => {
            let writes: Vec<Value> = shared
                .write_log
                .snapshot()
                .iter()
                .map(|w| {
                    json!({"verb": w.verb.as_str(), "group": w.group, "resource": w.resource, "subresource": w.subresource,
                        "namespace": w.namespace, "name": w.name, "userAgent": w.user_agent,
                        "resourceVersion": w.resource_version.to_string()})
                })
                .collect();
            value_response(200, &Value::Array(writes))
        }
        _ => error_response(&ApiError::path_not_found()),
    }
}
