//! `TokenReview` (`authentication.k8s.io/v1`) and `SubjectAccessReview`
//! (`authorization.k8s.io/v1`): answers computed from static rules, never
//! stored, so that a component doing delegated authentication and
//! authorization (as kube-controller-manager does for `/metrics`) can be
//! tested end to end.
//!
//! The rules are an [`AuthConfig`]: static tokens, as kube-apiserver's
//! `--token-auth-file` (CSV `token,user,uid,"group1,group2"`), mapped to a
//! user and groups; and allow rules, as kube-apiserver's ABAC
//! `--authorization-policy-file` (one `Policy` per line). Only the reviews
//! use them: the server still answers every other request without
//! authentication.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::{ApiError, StatusCause};
use crate::resources::ResourceInfo;

/// A bearer token and who it authenticates as.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaticToken {
    /// The bearer token.
    pub token: String,
    /// The user name it authenticates as.
    pub user: String,
    /// The user's uid (may be empty).
    #[serde(default)]
    pub uid: String,
    /// The user's groups.
    #[serde(default)]
    pub groups: Vec<String>,
}

/// One allow rule, with the fields of an ABAC `Policy`'s `spec`
/// (`abac.authorization.kubernetes.io/v1beta1`): who (`user` or `group`,
/// `*` for anyone), and what: a non-resource path (`nonResourcePath`,
/// exact, `*`, or a prefix ending in `*`) or resources (`apiGroup`,
/// `resource`, `namespace`, each exact or `*`); `readonly` limits it to
/// get, list and watch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Policy {
    /// User name, or `*` for every user.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub user: String,
    /// Group, or `*` for every group.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub group: String,
    /// Only get, list and watch.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub readonly: bool,
    /// API group of resource requests, or `*`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub api_group: String,
    /// Resource of resource requests, or `*`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub resource: String,
    /// Namespace of resource requests, or `*`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    /// Path of non-resource requests: exact, `*`, or a prefix ending in `*`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub non_resource_path: String,
}

impl Policy {
    /// Lets `user` `get` the non-resource URL `path` (e.g. `/metrics`).
    pub fn user_may_get(user: &str, path: &str) -> Self {
        Self {
            user: user.to_owned(),
            readonly: true,
            non_resource_path: path.to_owned(),
            ..Self::default()
        }
    }

    /// Lets members of `group` `get` the non-resource URL `path`.
    pub fn group_may_get(group: &str, path: &str) -> Self {
        Self {
            group: group.to_owned(),
            readonly: true,
            non_resource_path: path.to_owned(),
            ..Self::default()
        }
    }

    /// ABAC's `subjectMatches`: the user or one of the groups, `*` for any.
    fn subject_matches(&self, user: &str, groups: &[String]) -> bool {
        let user_matches = self.user == "*" || (!self.user.is_empty() && self.user == user);
        let group_matches = self.group == "*" || (!self.group.is_empty() && groups.contains(&self.group));
        user_matches || group_matches
    }

    /// ABAC's `verbMatches`: a read-only policy allows only reads.
    fn verb_matches(&self, verb: &str) -> bool {
        !self.readonly || matches!(verb, "get" | "list" | "watch")
    }

    fn matches(&self, review: &Attributes<'_>) -> bool {
        if !self.subject_matches(review.user, &review.groups) || !self.verb_matches(review.verb) {
            return false;
        }
        match &review.target {
            Target::NonResource { path } => path_matches(&self.non_resource_path, path),
            Target::Resource {
                group,
                resource,
                namespace,
            } => {
                let field = |rule: &str, value: &str| rule == "*" || rule == value;
                field(&self.api_group, group) && field(&self.resource, resource) && field(&self.namespace, namespace)
            }
        }
    }
}

/// ABAC's `nonResourceMatches`: exact, `*`, or a prefix ending in `*`.
fn path_matches(rule: &str, path: &str) -> bool {
    if rule == "*" || rule == path {
        return true;
    }
    rule.strip_suffix('*').is_some_and(|prefix| path.starts_with(prefix))
}

/// What a SubjectAccessReview asks about.
enum Target<'a> {
    NonResource {
        path: &'a str,
    },
    Resource {
        group: &'a str,
        resource: &'a str,
        namespace: &'a str,
    },
}

/// The attributes of a SubjectAccessReview's `spec`.
struct Attributes<'a> {
    user: &'a str,
    groups: Vec<String>,
    verb: &'a str,
    target: Target<'a>,
}

/// Why a token or policy file cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct AuthFileError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

/// The static tokens and allow rules the reviews answer from. `Default`:
/// no token authenticates, nothing is allowed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthConfig {
    /// Tokens and who they authenticate as.
    pub tokens: Vec<StaticToken>,
    /// Allow rules; a SubjectAccessReview is allowed when one matches.
    pub policies: Vec<Policy>,
}

impl AuthConfig {
    /// Adds a token authenticating as `user` in `groups`.
    #[must_use]
    pub fn token<I: IntoIterator<Item = S>, S: Into<String>>(mut self, token: &str, user: &str, groups: I) -> Self {
        self.tokens.push(StaticToken {
            token: token.to_owned(),
            user: user.to_owned(),
            uid: String::new(),
            groups: groups.into_iter().map(Into::into).collect(),
        });
        self
    }

    /// Adds an allow rule.
    #[must_use]
    pub fn allow(mut self, policy: Policy) -> Self {
        self.policies.push(policy);
        self
    }

    /// Reads a kube-apiserver `--token-auth-file`: CSV lines
    /// `token,user,uid[,"group1,group2"]`; `#` starts a comment line.
    pub fn parse_token_file(text: &str) -> Result<Vec<StaticToken>, AuthFileError> {
        let mut tokens = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fail = |reason: &str| AuthFileError {
                line: index + 1,
                reason: reason.to_owned(),
            };
            let fields = split_csv(line).map_err(|reason| fail(&reason))?;
            let [token, user, uid, rest @ ..] = fields.as_slice() else {
                return Err(fail("expected token,user,uid[,\"group1,group2\"]"));
            };
            if token.is_empty() || user.is_empty() {
                return Err(fail("the token and the user must not be empty"));
            }
            let groups = rest
                .first()
                .map(|g| {
                    g.split(',')
                        .map(str::trim)
                        .filter(|g| !g.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            tokens.push(StaticToken {
                token: token.clone(),
                user: user.clone(),
                uid: uid.clone(),
                groups,
            });
        }
        Ok(tokens)
    }

    /// Reads a kube-apiserver ABAC `--authorization-policy-file`: one JSON
    /// `Policy` object per line (`{"apiVersion":
    /// "abac.authorization.kubernetes.io/v1beta1", "kind": "Policy", "spec":
    /// {...}}`); blank lines and `#` comment lines are skipped.
    pub fn parse_policy_file(text: &str) -> Result<Vec<Policy>, AuthFileError> {
        let mut policies = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fail = |reason: String| AuthFileError {
                line: index + 1,
                reason,
            };
            let doc: Value = serde_json::from_str(line).map_err(|e| fail(e.to_string()))?;
            if doc.get("kind").and_then(Value::as_str) != Some("Policy") {
                return Err(fail("expected an object of kind Policy".into()));
            }
            let spec = doc.get("spec").cloned().unwrap_or(Value::Null);
            policies.push(serde_json::from_value(spec).map_err(|e| fail(e.to_string()))?);
        }
        Ok(policies)
    }

    /// Answers a TokenReview: the token's user and groups, or
    /// `authenticated: false`; the requested audiences are echoed (static
    /// tokens are valid for any audience).
    pub(crate) fn token_review(&self, info: &ResourceInfo, mut review: Value) -> Result<Value, ApiError> {
        let spec = review.get("spec").cloned().unwrap_or_else(|| json!({}));
        let token = spec.get("token").and_then(Value::as_str).unwrap_or("");
        if token.is_empty() {
            return Err(ApiError::bad_request(
                "token is required for TokenReview in authentication",
            ));
        }
        let status = match self.tokens.iter().find(|t| t.token == token) {
            Some(found) => {
                let mut status = json!({
                    "authenticated": true,
                    "user": {"username": found.user, "groups": with_authenticated(&found.groups)},
                });
                if !found.uid.is_empty() {
                    status["user"]["uid"] = json!(found.uid);
                }
                if let Some(audiences) = spec
                    .get("audiences")
                    .filter(|a| a.as_array().is_some_and(|a| !a.is_empty()))
                {
                    status["audiences"] = audiences.clone();
                }
                status
            }
            None => json!({"authenticated": false, "user": {}}),
        };
        answer(info, &mut review, status);
        Ok(review)
    }

    /// Answers a SubjectAccessReview: allowed when a policy matches.
    pub(crate) fn subject_access_review(&self, info: &ResourceInfo, mut review: Value) -> Result<Value, ApiError> {
        let spec = review.get("spec").cloned().unwrap_or_else(|| json!({}));
        let attributes = attributes(info, &spec)?;
        let allowed = self.policies.iter().any(|p| p.matches(&attributes));
        let status = if allowed {
            json!({"allowed": true})
        } else {
            json!({"allowed": false, "reason": "No policy matched."})
        };
        answer(info, &mut review, status);
        Ok(review)
    }

    /// Answers a review of the resource `info` (its [`Strategy::Review`](crate::resources::Strategy::Review)).
    pub(crate) fn review(&self, info: &ResourceInfo, review: Value) -> Result<Value, ApiError> {
        match (info.group.as_str(), info.plural.as_str()) {
            ("authentication.k8s.io", "tokenreviews") => self.token_review(info, review),
            ("authorization.k8s.io", "subjectaccessreviews") => self.subject_access_review(info, review),
            _ => Err(ApiError::method_not_supported(info, "create")),
        }
    }
}

/// The groups of an authenticated user: its own plus
/// `system:authenticated`, as kube-apiserver adds it.
fn with_authenticated(groups: &[String]) -> Vec<String> {
    let mut all = groups.to_vec();
    if !all.iter().any(|g| g == "system:authenticated") {
        all.push("system:authenticated".into());
    }
    all
}

/// Fills in `apiVersion`, `kind`, empty `metadata` and `status`.
fn answer(info: &ResourceInfo, review: &mut Value, status: Value) {
    if !review.is_object() {
        *review = json!({});
    }
    review["apiVersion"] = json!(info.api_version());
    review["kind"] = json!(info.kind);
    if review.get("metadata").is_none_or(|m| !m.is_object()) {
        review["metadata"] = json!({});
    }
    review["metadata"]["creationTimestamp"] = Value::Null;
    review["status"] = status;
}

/// A SubjectAccessReview's attributes, validated as upstream's
/// `ValidateSubjectAccessReviewSpec`: a user or a group, and exactly one of
/// `resourceAttributes` and `nonResourceAttributes`.
fn attributes<'a>(info: &ResourceInfo, spec: &'a Value) -> Result<Attributes<'a>, ApiError> {
    let str_at = |v: &'a Value, key: &str| v.get(key).and_then(Value::as_str).unwrap_or("");
    let user = str_at(spec, "user");
    let groups: Vec<String> = spec
        .get("groups")
        .and_then(Value::as_array)
        .map(|g| g.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default();
    let invalid = |field: &str, message: &str| {
        ApiError::invalid(
            info,
            "",
            vec![StatusCause {
                reason: "FieldValueInvalid".into(),
                message: message.to_owned(),
                field: field.to_owned(),
            }],
        )
    };
    if user.is_empty() && groups.is_empty() {
        return Err(invalid("spec.user", "at least one of user or group must be specified"));
    }
    let resource = spec.get("resourceAttributes").filter(|v| v.is_object());
    let non_resource = spec.get("nonResourceAttributes").filter(|v| v.is_object());
    let (verb, target) = match (resource, non_resource) {
        (Some(r), None) => (
            str_at(r, "verb"),
            Target::Resource {
                group: str_at(r, "group"),
                resource: str_at(r, "resource"),
                namespace: str_at(r, "namespace"),
            },
        ),
        (None, Some(n)) => (
            str_at(n, "verb"),
            Target::NonResource {
                path: str_at(n, "path"),
            },
        ),
        (Some(_), Some(_)) => {
            return Err(invalid(
                "spec.nonResourceAttributes",
                "cannot be specified in combination with resourceAttributes",
            ));
        }
        (None, None) => {
            return Err(invalid(
                "spec.resourceAttributes",
                "exactly one of nonResourceAttributes or resourceAttributes must be specified",
            ));
        }
    };
    Ok(Attributes {
        user,
        groups,
        verb,
        target,
    })
}

/// Splits one CSV line: fields separated by commas, a field may be quoted
/// with `"` (and then hold commas; `""` is a quote).
fn split_csv(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            ('"', true) => quoted = false,
            ('"', false) if field.is_empty() => quoted = true,
            (',', false) => fields.push(std::mem::take(&mut field)),
            (c, _) => field.push(c),
        }
    }
    if quoted {
        return Err("unterminated quoted field".into());
    }
    fields.push(field);
    Ok(fields.into_iter().map(|f| f.trim().to_owned()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::review_resources;

    fn info(plural: &str) -> ResourceInfo {
        review_resources().into_iter().find(|i| i.plural == plural).unwrap()
    }

    fn config() -> AuthConfig {
        AuthConfig::default()
            .token(
                "good",
                "system:serviceaccount:monitoring:prometheus",
                ["system:serviceaccounts"],
            )
            .token("other", "alice", Vec::<String>::new())
            .allow(Policy::user_may_get(
                "system:serviceaccount:monitoring:prometheus",
                "/metrics",
            ))
    }

    fn sar(user: &str, verb: &str, path: &str) -> Value {
        json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
               "spec": {"user": user, "nonResourceAttributes": {"verb": verb, "path": path}}})
    }

    fn allowed(config: &AuthConfig, review: Value) -> bool {
        config.review(&info("subjectaccessreviews"), review).unwrap()["status"]["allowed"] == json!(true)
    }

    #[test]
    fn a_known_token_authenticates_as_its_user_and_an_unknown_one_does_not() {
        let review = |token: &str| {
            config().review(
                &info("tokenreviews"),
                json!({"spec": {"token": token, "audiences": ["https://kubernetes.default.svc"]}}),
            )
        };
        let good = review("good").unwrap();
        assert_eq!(good["kind"], "TokenReview");
        assert_eq!(good["apiVersion"], "authentication.k8s.io/v1");
        assert_eq!(good["status"]["authenticated"], true);
        assert_eq!(
            good["status"]["user"]["username"],
            "system:serviceaccount:monitoring:prometheus"
        );
        assert_eq!(
            good["status"]["user"]["groups"],
            json!(["system:serviceaccounts", "system:authenticated"])
        );
        assert_eq!(good["status"]["audiences"], json!(["https://kubernetes.default.svc"]));
        let bad = review("nope").unwrap();
        assert_eq!(bad["status"]["authenticated"], false);
        assert_eq!(review("").unwrap_err().code, 400);
    }

    #[test]
    fn access_is_allowed_only_by_a_matching_policy() {
        let config = config();
        let prometheus = "system:serviceaccount:monitoring:prometheus";
        assert!(allowed(&config, sar(prometheus, "get", "/metrics")));
        assert!(!allowed(&config, sar(prometheus, "post", "/metrics")), "read-only");
        assert!(!allowed(&config, sar(prometheus, "get", "/metrics/extra")));
        assert!(!allowed(&config, sar("alice", "get", "/metrics")));
        let denied = config
            .review(&info("subjectaccessreviews"), sar("alice", "get", "/metrics"))
            .unwrap();
        assert_eq!(denied["status"]["reason"], "No policy matched.");
    }

    #[test]
    fn groups_wildcards_and_prefixes_match_as_in_abac() {
        let by_group = AuthConfig::default().allow(Policy::group_may_get("system:monitoring", "/metrics*"));
        let review = json!({"spec": {"user": "bob", "groups": ["system:monitoring"],
                                     "nonResourceAttributes": {"verb": "get", "path": "/metrics/slis"}}});
        assert!(allowed(&by_group, review));
        let anyone = AuthConfig::default().allow(Policy {
            user: "*".into(),
            api_group: "*".into(),
            resource: "pods".into(),
            namespace: "*".into(),
            ..Policy::default()
        });
        let pods = json!({"spec": {"user": "carol", "resourceAttributes":
                                   {"verb": "delete", "resource": "pods", "namespace": "default"}}});
        assert!(allowed(&anyone, pods));
        assert!(!allowed(&anyone, sar("carol", "get", "/metrics")));
    }

    #[test]
    fn a_review_without_subject_or_attributes_is_invalid() {
        let config = config();
        let sar_info = info("subjectaccessreviews");
        let no_subject = json!({"spec": {"nonResourceAttributes": {"verb": "get", "path": "/metrics"}}});
        assert_eq!(config.review(&sar_info, no_subject).unwrap_err().code, 422);
        let nothing = json!({"spec": {"user": "bob"}});
        assert_eq!(config.review(&sar_info, nothing).unwrap_err().code, 422);
    }

    #[test]
    fn token_and_policy_files_are_read_in_kube_apiserver_formats() {
        let tokens =
            AuthConfig::parse_token_file("# comment\nsecret,prometheus,uid-1,\"system:monitoring,ops\"\nplain,bob,\n")
                .unwrap();
        assert_eq!(tokens.len(), 2);
        assert_eq!(tokens[0].groups, ["system:monitoring", "ops"]);
        assert_eq!(tokens[0].uid, "uid-1");
        assert!(tokens[1].groups.is_empty());
        assert_eq!(AuthConfig::parse_token_file("only-a-token\n").unwrap_err().line, 1);

        let policies = AuthConfig::parse_policy_file(concat!(
            "{\"apiVersion\": \"abac.authorization.kubernetes.io/v1beta1\", \"kind\": \"Policy\", ",
            "\"spec\": {\"user\": \"prometheus\", \"nonResourcePath\": \"/metrics\", \"readonly\": true}}\n",
        ))
        .unwrap();
        assert_eq!(policies, [Policy::user_may_get("prometheus", "/metrics")]);
        assert_eq!(
            AuthConfig::parse_policy_file("\n{\"kind\": \"Role\"}")
                .unwrap_err()
                .line,
            2
        );
    }
}
