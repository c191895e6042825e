//! The HTTP front: the `tower::Service` and routing.
//!
//! [`ApiService`] is a `tower::Service` over `http::Request`s; hand it to
//! `kube::Client::new` for an in-process client, or let
//! [`ApiServer::serve`](crate::ApiServer::serve) put it on a socket. A
//! request is routed here to discovery (`discovery`), the admin API
//! (`admin`) or a resource verb (`verbs`, watches in `watch`); list and
//! watch options are parsed in `query`, responses built in `response`,
//! their encoding chosen in `negotiate` (JSON, Tables, or protobuf through
//! `protobuf`).

mod admin;
mod discovery;
mod negotiate;
mod protobuf;
pub(crate) mod query;
mod response;
mod table;
mod verbs;
mod watch;

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response, header};
use http_body_util::BodyExt;

pub use response::ResponseBody;
use response::{error_response, respond, value_response};
use verbs::{BoxError, RequestContext, Target};

use crate::error::ApiError;
use crate::state::Shared;
use query::Query;

/// The server as a `tower::Service`. Cheap to clone; all clones serve the
/// same objects.
#[derive(Clone)]
pub struct ApiService {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for ApiService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiService").finish_non_exhaustive()
    }
}

impl<B> tower::Service<Request<B>> for ApiService
where
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<ResponseBody>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let shared = self.shared.clone();
        Box::pin(async move { Ok(handle(shared, req).await) })
    }
}

/// Where a request goes.
enum Route {
    Version,
    Api,
    Apis,
    Group(String),
    Resources(String, String),
    OpenApi(Option<String>),
    Health,
    Admin(Vec<String>),
    Resource(Target),
}

fn route(shared: &Shared, path: &str) -> Result<Route, ApiError> {
    let segs: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(query::percent_decode)
        .collect();
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    let table = &shared.store.table;
    let (group, version, rest): (&str, &str, &[&str]) = match s.as_slice() {
        ["version"] => return Ok(Route::Version),
        ["healthz" | "livez" | "readyz", ..] => return Ok(Route::Health),
        ["openapi", "v3"] => return Ok(Route::OpenApi(None)),
        ["openapi", "v3", rest @ ..] => return Ok(Route::OpenApi(Some(rest.join("/")))),
        ["ecm-admin", rest @ ..] => return Ok(Route::Admin(rest.iter().map(|x| (*x).to_owned()).collect())),
        ["api"] => return Ok(Route::Api),
        ["apis"] => return Ok(Route::Apis),
        ["api", v] => return Ok(Route::Resources(String::new(), (*v).to_owned())),
        ["apis", g] => return Ok(Route::Group((*g).to_owned())),
        ["apis", g, v] => return Ok(Route::Resources((*g).to_owned(), (*v).to_owned())),
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return Err(ApiError::path_not_found()),
    };
    let (watch_path, rest) = match rest {
        ["watch", rest @ ..] => (true, rest),
        rest => (false, rest),
    };
    let namespaced_path = rest.len() >= 3
        && rest[0] == "namespaces"
        && !(rest.len() == 3 && group.is_empty() && matches!(rest[2], "status" | "finalize"));
    let (namespace, rest) = if namespaced_path {
        (Some(rest[1].to_owned()), &rest[2..])
    } else {
        (None, rest)
    };
    let (plural, name, sub) = match rest {
        [p] => (*p, None, None),
        [p, n] => (*p, Some((*n).to_owned()), None),
        [p, n, sub] => (*p, Some((*n).to_owned()), Some((*sub).to_owned())),
        _ => return Err(ApiError::path_not_found()),
    };
    let res = table
        .by_path(group, version, plural)
        .ok_or_else(ApiError::path_not_found)?;
    let info = table.get(res);
    if namespace.is_some() && !info.namespaced {
        return Err(ApiError::path_not_found());
    }
    if info.namespaced && namespace.is_none() && name.is_some() {
        return Err(ApiError::path_not_found());
    }
    if let Some(sub) = &sub
        && !info.subresources.contains(sub)
    {
        return Err(ApiError::path_not_found());
    }
    Ok(Route::Resource(Target {
        res,
        namespace,
        name,
        subresource: sub,
        watch_path,
    }))
}

async fn handle<B>(shared: Arc<Shared>, req: Request<B>) -> Response<ResponseBody>
where
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let (parts, body) = req.into_parts();
    let q = Query::parse(parts.uri.query());
    let accept = parts
        .headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let route = match route(&shared, parts.uri.path()) {
        Ok(r) => r,
        Err(e) => return error_response(&e),
    };
    let table = &shared.store.table;
    match route {
        Route::Version => value_response(200, &discovery::version(&shared.config.git_version)),
        Route::Health => respond(200, "text/plain; charset=utf-8", "ok"),
        Route::Api => {
            if discovery::wants_aggregated(&accept) {
                respond(
                    200,
                    discovery::AGGREGATED_CONTENT_TYPE,
                    discovery::aggregated(table, true).to_string(),
                )
            } else {
                value_response(200, &discovery::api_versions())
            }
        }
        Route::Apis => {
            if discovery::wants_aggregated(&accept) {
                respond(
                    200,
                    discovery::AGGREGATED_CONTENT_TYPE,
                    discovery::aggregated(table, false).to_string(),
                )
            } else {
                value_response(200, &discovery::api_group_list(table))
            }
        }
        Route::Group(g) => match discovery::api_group_doc(table, &g) {
            Some(doc) => value_response(200, &doc),
            None => error_response(&ApiError::path_not_found()),
        },
        Route::Resources(g, v) => match discovery::api_resource_list(table, &g, &v) {
            Some(doc) => value_response(200, &doc),
            None => error_response(&ApiError::path_not_found()),
        },
        Route::OpenApi(None) => value_response(200, &discovery::openapi_v3_index(table)),
        Route::OpenApi(Some(path)) => match discovery::openapi_v3_group_version(table, &path) {
            Some(doc) => value_response(200, &doc),
            None => error_response(&ApiError::path_not_found()),
        },
        Route::Admin(rest) => {
            let body = match body.collect().await {
                Ok(b) => b.to_bytes(),
                Err(_) => return error_response(&ApiError::bad_request("unreadable body")),
            };
            admin::admin(&shared, &parts.method, &rest, &body)
        }
        Route::Resource(target) => {
            let user_agent = parts
                .headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let content_type = parts
                .headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            let ctx = RequestContext {
                shared: &shared,
                target,
                q,
                accept,
                user_agent,
                content_type,
                output: negotiate::Output::Json,
            };
            ctx.serve(parts.method, body).await
        }
    }
}
