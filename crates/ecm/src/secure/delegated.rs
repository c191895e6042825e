//! Delegated authentication and authorization, as kube-controller-manager
//! and controller-runtime's `WithAuthenticationAndAuthorization` do for
//! `/metrics`: the request's bearer token is checked with a `TokenReview`
//! (`authentication.k8s.io/v1`), and the user it names is checked with a
//! `SubjectAccessReview` (`authorization.k8s.io/v1`) for the request's path
//! (a non-resource URL) and verb (the lowercased method). No or an invalid
//! token: 401; not allowed: 403; the API server failing: 500. Answers are
//! cached for a few seconds (upstream's webhook cache TTLs).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec, UserInfo};
use k8s_openapi::api::authorization::v1::{NonResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec};
use kube::api::{Api, PostParams};

use super::cache::ExpiringCache;

/// How long review answers are kept, with kube-controller-manager's flag
/// names in the comments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheTtls {
    /// `--authentication-token-webhook-cache-ttl`: TokenReview answers.
    pub authentication: Duration,
    /// `--authorization-webhook-cache-authorized-ttl`: allowed SubjectAccessReviews.
    pub authorized: Duration,
    /// `--authorization-webhook-cache-unauthorized-ttl`: denied SubjectAccessReviews.
    pub unauthorized: Duration,
}

impl Default for CacheTtls {
    /// kube-controller-manager's defaults: 10 seconds each.
    fn default() -> Self {
        let ten = Duration::from_secs(10);
        Self {
            authentication: ten,
            authorized: ten,
            unauthorized: ten,
        }
    }
}

/// Who a token authenticated as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    /// User name.
    pub name: String,
    /// uid, when the API server gave one.
    pub uid: Option<String>,
    /// Groups.
    pub groups: Vec<String>,
}

/// What the access check asks about: user, verb and path.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct AccessKey {
    user: String,
    uid: Option<String>,
    groups: Vec<String>,
    verb: String,
    path: String,
}

/// Checks requests with TokenReviews and SubjectAccessReviews sent through
/// a client of the API server, caching the answers. Cheap to clone.
#[derive(Clone)]
pub struct DelegatedAuth {
    inner: Arc<Inner>,
}

struct Inner {
    client: kube::Client,
    ttls: CacheTtls,
    /// SHA-256 of the token → the user, or `None` when not authenticated.
    tokens: ExpiringCache<[u8; 32], Option<User>>,
    decisions: ExpiringCache<AccessKey, bool>,
}

impl std::fmt::Debug for DelegatedAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DelegatedAuth")
            .field("ttls", &self.inner.ttls)
            .finish_non_exhaustive()
    }
}

/// Why a request was not let through.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// No bearer token, or the API server did not authenticate it (401).
    #[error("Unauthorized")]
    Unauthenticated,
    /// The user may not do this (403).
    #[error("Authorization denied for user {0}")]
    Forbidden(String),
    /// A review could not be made (500).
    #[error("{what}: {source}")]
    Failed {
        /// Which check failed.
        what: String,
        /// The client's error.
        source: kube::Error,
    },
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let status = match &self {
            Refusal::Unauthenticated => StatusCode::UNAUTHORIZED,
            Refusal::Forbidden(_) => StatusCode::FORBIDDEN,
            Refusal::Failed { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let body = match &self {
            Refusal::Failed { what, .. } => what.clone(),
            other => other.to_string(),
        };
        (status, body).into_response()
    }
}

/// The token of an `Authorization: Bearer TOKEN` header, as upstream's
/// bearer-token authenticator reads it (scheme case-insensitive, the token
/// not empty).
pub fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

impl DelegatedAuth {
    /// Reviews through `client`, caching answers for `ttls`.
    pub fn new(client: kube::Client, ttls: CacheTtls) -> Self {
        Self {
            inner: Arc::new(Inner {
                client,
                ttls,
                tokens: ExpiringCache::default(),
                decisions: ExpiringCache::default(),
            }),
        }
    }

    /// Who `token` authenticates as (`None`: not authenticated).
    pub async fn authenticate(&self, token: &str) -> Result<Option<User>, kube::Error> {
        let key: [u8; 32] = ring::digest::digest(&ring::digest::SHA256, token.as_bytes())
            .as_ref()
            .try_into()
            .unwrap_or([0; 32]);
        if let Some(user) = self.inner.tokens.get(&key) {
            return Ok(user);
        }
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: token.to_owned(),
                audiences: None,
            },
            ..TokenReview::default()
        };
        let answer = Api::<TokenReview>::all(self.inner.client.clone())
            .create(&PostParams::default(), &review)
            .await?;
        let user = answer
            .status
            .filter(|s| s.authenticated == Some(true))
            .and_then(|s| s.user)
            .and_then(
                |UserInfo {
                     username, uid, groups, ..
                 }| {
                    username.filter(|name| !name.is_empty()).map(|name| User {
                        name,
                        uid,
                        groups: groups.unwrap_or_default(),
                    })
                },
            );
        self.inner.tokens.put(key, user.clone(), self.inner.ttls.authentication);
        Ok(user)
    }

    /// Whether `user` may `verb` the non-resource URL `path`.
    pub async fn authorize(&self, user: &User, verb: &str, path: &str) -> Result<bool, kube::Error> {
        let key = AccessKey {
            user: user.name.clone(),
            uid: user.uid.clone(),
            groups: user.groups.clone(),
            verb: verb.to_owned(),
            path: path.to_owned(),
        };
        if let Some(allowed) = self.inner.decisions.get(&key) {
            return Ok(allowed);
        }
        let review = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: Some(user.name.clone()),
                uid: user.uid.clone(),
                groups: Some(user.groups.clone()),
                non_resource_attributes: Some(NonResourceAttributes {
                    path: Some(path.to_owned()),
                    verb: Some(verb.to_owned()),
                }),
                ..SubjectAccessReviewSpec::default()
            },
            ..SubjectAccessReview::default()
        };
        let answer = Api::<SubjectAccessReview>::all(self.inner.client.clone())
            .create(&PostParams::default(), &review)
            .await?;
        let allowed = answer.status.is_some_and(|s| s.allowed && s.denied != Some(true));
        let ttl = if allowed {
            self.inner.ttls.authorized
        } else {
            self.inner.ttls.unauthorized
        };
        self.inner.decisions.put(key, allowed, ttl);
        Ok(allowed)
    }

    /// Authenticates and authorizes a request with `authorization` header
    /// value for `verb` on `path`; returns the user let through.
    pub async fn check(&self, authorization: Option<&str>, verb: &str, path: &str) -> Result<User, Refusal> {
        let token = authorization.and_then(bearer_token).ok_or(Refusal::Unauthenticated)?;
        let user = self
            .authenticate(token)
            .await
            .map_err(|source| Refusal::Failed {
                what: "Authentication failed".into(),
                source,
            })?
            .ok_or(Refusal::Unauthenticated)?;
        match self.authorize(&user, verb, path).await {
            Ok(true) => Ok(user),
            Ok(false) => Err(Refusal::Forbidden(user.name)),
            Err(source) => Err(Refusal::Failed {
                what: format!("Authorization for user {} failed", user.name),
                source,
            }),
        }
    }
}

/// axum middleware letting through only requests [`DelegatedAuth::check`]
/// accepts.
pub async fn require(State(auth): State<DelegatedAuth>, request: Request, next: Next) -> Response {
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let verb = request.method().as_str().to_ascii_lowercase();
    let path = request.uri().path();
    match auth.check(authorization, &verb, path).await {
        Ok(user) => {
            tracing::debug!(user = %user.name, %path, "authorized");
            next.run(request).await
        }
        Err(refusal) => {
            match &refusal {
                Refusal::Failed { what, source } => tracing::error!(error = %source, "{what}"),
                other => tracing::debug!(%path, "{other}"),
            }
            refusal.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ecm_apiserver::{ApiServer, AuthConfig, Config, Policy};

    const SCRAPER: &str = "system:serviceaccount:monitoring:prometheus";

    fn rules() -> AuthConfig {
        AuthConfig::default()
            .token("scraper", SCRAPER, ["system:serviceaccounts"])
            .token("intruder", "mallory", Vec::<String>::new())
            .allow(Policy::user_may_get(SCRAPER, "/metrics"))
    }

    #[test]
    fn bearer_tokens_are_read_as_upstream_reads_them() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("abc"), None);
    }

    #[tokio::test]
    async fn tokens_and_access_map_to_401_403_or_the_user() {
        let server = ApiServer::new(Config::default().auth(rules())).unwrap();
        let auth = DelegatedAuth::new(server.client(), CacheTtls::default());
        let user = auth.check(Some("Bearer scraper"), "get", "/metrics").await.unwrap();
        assert_eq!(user.name, SCRAPER);
        assert!(user.groups.contains(&"system:authenticated".to_owned()));
        let refused = |r: Result<User, Refusal>| r.unwrap_err().into_response().status().as_u16();
        assert_eq!(
            refused(auth.check(Some("Bearer intruder"), "get", "/metrics").await),
            403
        );
        assert_eq!(
            refused(auth.check(Some("Bearer scraper"), "post", "/metrics").await),
            403
        );
        assert_eq!(refused(auth.check(Some("Bearer guess"), "get", "/metrics").await), 401);
        assert_eq!(refused(auth.check(None, "get", "/metrics").await), 401);
    }

    #[tokio::test(start_paused = true)]
    async fn answers_are_cached_for_their_ttl() {
        let server = ApiServer::new(Config::default().auth(rules())).unwrap();
        let ttls = CacheTtls {
            authentication: Duration::from_secs(60),
            authorized: Duration::from_secs(30),
            unauthorized: Duration::from_secs(5),
        };
        let auth = DelegatedAuth::new(server.client(), ttls);
        let status = |r: Result<User, Refusal>| r.map_or_else(|e| e.into_response().status().as_u16(), |_| 200);
        assert_eq!(status(auth.check(Some("Bearer scraper"), "get", "/metrics").await), 200);
        assert_eq!(
            status(auth.check(Some("Bearer intruder"), "get", "/metrics").await),
            403
        );

        // The rules change: cached answers hold until they expire.
        server.set_auth(
            AuthConfig::default()
                .token("intruder", "mallory", Vec::<String>::new())
                .allow(Policy::user_may_get("mallory", "/metrics")),
        );
        assert_eq!(status(auth.check(Some("Bearer scraper"), "get", "/metrics").await), 200);
        assert_eq!(
            status(auth.check(Some("Bearer intruder"), "get", "/metrics").await),
            403
        );
        tokio::time::advance(Duration::from_secs(6)).await;
        assert_eq!(
            status(auth.check(Some("Bearer intruder"), "get", "/metrics").await),
            200,
            "the denial expired"
        );
        assert_eq!(
            status(auth.check(Some("Bearer scraper"), "get", "/metrics").await),
            200,
            "the token and the permission are still cached"
        );
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(
            status(auth.check(Some("Bearer scraper"), "get", "/metrics").await),
            401,
            "the token expired from the cache and is no longer known"
        );
    }
}
