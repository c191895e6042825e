//! Fault injection: seeded, reproducible, per resource and verb.
//!
//! A [`FaultConfig`] is a seed and a list of [`FaultRule`]s. Each request to
//! a resource is matched against every rule in order; a matching rule fires
//! with its `probability` (drawn from the seeded generator, so a run with the
//! same seed and the same request sequence fires the same faults) while its
//! optional `count` lasts. The actions of all firing rules apply: added
//! latency, an error answer instead of the real one, a watch stream cut after
//! N events or T milliseconds, or a compaction of the resource's event
//! history (so the next watch resumed from an older resourceVersion gets
//! 410 Gone).
//!
//! Configure from Rust with [`ApiServer::set_faults`](crate::ApiServer::set_faults)
//! or [`Config::faults`](crate::Config::faults), or over HTTP:
//! `GET`/`PUT`/`DELETE /ecm-admin/faults` with the JSON form of [`FaultConfig`]:
//!
//! ```json
//! {"seed": 7, "rules": [
//!   {"resource": "endpointslices", "verbs": ["create"], "probability": 0.5,
//!    "action": {"type": "error", "code": 429, "retryAfterSeconds": 1}},
//!   {"resource": "pods", "verbs": ["watch"], "action": {"type": "cutWatchAfterEvents", "events": 3}},
//!   {"userAgent": "replica-a", "action": {"type": "error", "code": 503}}
//! ]}
//! ```

use std::time::Duration;

use parking_lot::Mutex;
use rand::{Rng, SeedableRng, rngs::StdRng};
use serde::{Deserialize, Serialize};

/// What a firing fault does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum FaultAction {
    /// Delay the request by this many milliseconds before serving it.
    #[serde(rename_all = "camelCase")]
    Latency {
        /// Milliseconds.
        millis: u64,
    },
    /// Answer with an error Status instead of serving the request.
    /// Codes 409, 429, 500 and 503 get upstream's reasons and messages;
    /// 429 (and 503 when given) carries `Retry-After`.
    #[serde(rename_all = "camelCase")]
    Error {
        /// HTTP status code.
        code: u16,
        /// `Retry-After` seconds (default 1 for 429).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after_seconds: Option<u32>,
        /// Message override.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    /// End a watch stream after it has sent this many events.
    #[serde(rename_all = "camelCase")]
    CutWatchAfterEvents {
        /// Events (bookmarks excluded).
        events: u64,
    },
    /// End a watch stream after this many milliseconds.
    #[serde(rename_all = "camelCase")]
    CutWatchAfter {
        /// Milliseconds.
        millis: u64,
    },
    /// Compact the resource's event history before serving the request.
    Compact,
}

/// One fault rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultRule {
    /// Resource plural (`pods`, `endpointslices`); `None` or `*` for all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// Verbs: get, list, watch, create, update, patch, delete,
    /// deletecollection; empty for all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub verbs: Vec<String>,
    /// Only requests whose `User-Agent` contains this string (one client,
    /// e.g. one replica of a controller, cut off from the server); `None`
    /// for every client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// Chance in `[0, 1]` that a matching request fires the rule (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probability: Option<f64>,
    /// Fire at most this many times (unlimited when `None`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// What happens.
    pub action: FaultAction,
}

impl FaultRule {
    /// A rule firing `action` on every request for `resource` with one of `verbs`.
    pub fn new(resource: &str, verbs: &[&str], action: FaultAction) -> Self {
        Self {
            resource: Some(resource.to_owned()),
            verbs: verbs.iter().map(|v| (*v).to_owned()).collect(),
            user_agent: None,
            probability: None,
            count: None,
            action,
        }
    }

    /// Sets the firing probability.
    #[must_use]
    pub fn probability(mut self, p: f64) -> Self {
        self.probability = Some(p);
        self
    }

    /// Restricts the rule to clients whose `User-Agent` contains `agent`.
    #[must_use]
    pub fn user_agent(mut self, agent: &str) -> Self {
        self.user_agent = Some(agent.to_owned());
        self
    }

    /// Limits how many times the rule fires.
    #[must_use]
    pub fn count(mut self, n: u64) -> Self {
        self.count = Some(n);
        self
    }

    fn matches(&self, request: &FaultRequest<'_>) -> bool {
        self.resource
            .as_deref()
            .is_none_or(|r| r == "*" || r == request.resource)
            && (self.verbs.is_empty() || self.verbs.iter().any(|v| v == request.verb))
            && self
                .user_agent
                .as_deref()
                .is_none_or(|wanted| request.user_agent.is_some_and(|agent| agent.contains(wanted)))
    }
}

/// What a fault rule is matched against: one request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FaultRequest<'a> {
    /// Resource plural.
    pub(crate) resource: &'a str,
    /// Kubernetes verb.
    pub(crate) verb: &'a str,
    /// The request's `User-Agent`, if any.
    pub(crate) user_agent: Option<&'a str>,
}

#[cfg(test)]
impl<'a> FaultRequest<'a> {
    /// A request for `resource` with `verb`, from no particular client.
    fn new(resource: &'a str, verb: &'a str) -> Self {
        Self {
            resource,
            verb,
            user_agent: None,
        }
    }
}

/// A complete fault configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FaultConfig {
    /// Seed of the generator deciding probabilistic rules.
    #[serde(default)]
    pub seed: u64,
    /// Rules, evaluated in order.
    #[serde(default)]
    pub rules: Vec<FaultRule>,
}

/// A fault configuration that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FaultConfigError {
    /// The document is not valid JSON or YAML of a [`FaultConfig`].
    #[error("invalid fault configuration: {0}")]
    Parse(String),
}

impl FaultConfig {
    /// Parses JSON or YAML.
    pub fn parse(text: &str) -> Result<Self, FaultConfigError> {
        serde_json::from_str(text)
            .or_else(|_| serde_saphyr::from_str(text))
            .map_err(|e| FaultConfigError::Parse(e.to_string()))
    }
}

/// The faults decided for one request.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Decision {
    pub(crate) latency: Duration,
    pub(crate) error: Option<(u16, Option<u32>, Option<String>)>,
    pub(crate) cut_after_events: Option<u64>,
    pub(crate) cut_after: Option<Duration>,
    pub(crate) compact: bool,
}

struct State {
    config: FaultConfig,
    remaining: Vec<Option<u64>>,
    rng: StdRng,
    /// Faults fired since the server started (all configurations).
    fired: u64,
}

/// Decides faults for requests.
pub(crate) struct FaultInjector {
    state: Mutex<State>,
}

impl FaultInjector {
    pub(crate) fn new(config: FaultConfig) -> Self {
        let injector = Self {
            state: Mutex::new(State {
                config: FaultConfig::default(),
                remaining: Vec::new(),
                rng: StdRng::seed_from_u64(0),
                fired: 0,
            }),
        };
        injector.set(config);
        injector
    }

    pub(crate) fn set(&self, config: FaultConfig) {
        let mut state = self.state.lock();
        state.remaining = config.rules.iter().map(|r| r.count).collect();
        state.rng = StdRng::seed_from_u64(config.seed);
        state.config = config;
    }

    pub(crate) fn get(&self) -> FaultConfig {
        self.state.lock().config.clone()
    }

    /// How many times a rule fired since the injector was made, over every
    /// configuration it had.
    pub(crate) fn fired(&self) -> u64 {
        self.state.lock().fired
    }

    pub(crate) fn decide(&self, request: &FaultRequest<'_>) -> Decision {
        let mut decision = Decision::default();
        let mut state = self.state.lock();
        if state.config.rules.is_empty() {
            return decision;
        }
        let State {
            config,
            remaining,
            rng,
            fired,
        } = &mut *state;
        for (rule, left) in config.rules.iter().zip(remaining.iter_mut()) {
            if !rule.matches(request) || *left == Some(0) {
                continue;
            }
            let p = rule.probability.unwrap_or(1.0);
            if p < 1.0 && rng.random::<f64>() >= p {
                continue;
            }
            if let Some(n) = left {
                *n -= 1;
            }
            *fired += 1;
            match &rule.action {
                FaultAction::Latency { millis } => decision.latency += Duration::from_millis(*millis),
                FaultAction::Error {
                    code,
                    retry_after_seconds,
                    message,
                } => {
                    decision
                        .error
                        .get_or_insert((*code, *retry_after_seconds, message.clone()));
                }
                FaultAction::CutWatchAfterEvents { events } => decision.cut_after_events = Some(*events),
                FaultAction::CutWatchAfter { millis } => decision.cut_after = Some(Duration::from_millis(*millis)),
                FaultAction::Compact => decision.compact = true,
            }
        }
        decision
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_faults() {
        let config = FaultConfig {
            seed: 42,
            rules: vec![
                FaultRule::new(
                    "pods",
                    &["get"],
                    FaultAction::Error {
                        code: 500,
                        retry_after_seconds: None,
                        message: None,
                    },
                )
                .probability(0.5),
            ],
        };
        let run = || {
            let f = FaultInjector::new(config.clone());
            (0..64)
                .map(|_| f.decide(&FaultRequest::new("pods", "get")).error.is_some())
                .collect::<Vec<_>>()
        };
        let a = run();
        assert_eq!(a, run());
        assert!(a.iter().any(|x| *x) && a.iter().any(|x| !*x));
    }

    #[test]
    fn count_limits_and_matching() {
        let f = FaultInjector::new(FaultConfig {
            seed: 0,
            rules: vec![FaultRule::new("pods", &["create"], FaultAction::Latency { millis: 5 }).count(1)],
        });
        assert_eq!(f.decide(&FaultRequest::new("services", "create")), Decision::default());
        assert_eq!(f.decide(&FaultRequest::new("pods", "get")), Decision::default());
        assert_eq!(
            f.decide(&FaultRequest::new("pods", "create")).latency,
            Duration::from_millis(5)
        );
        assert_eq!(f.decide(&FaultRequest::new("pods", "create")), Decision::default());
    }

    #[test]
    fn a_rule_naming_a_client_fires_only_for_its_requests_and_firings_are_counted() {
        let f = FaultInjector::new(FaultConfig {
            seed: 0,
            rules: vec![
                FaultRule::new(
                    "*",
                    &[],
                    FaultAction::Error {
                        code: 503,
                        retry_after_seconds: None,
                        message: None,
                    },
                )
                .user_agent("replica-a"),
            ],
        });
        let from = |agent: Option<&'static str>| FaultRequest {
            resource: "leases",
            verb: "update",
            user_agent: agent,
        };
        assert!(
            f.decide(&from(Some("ecm/0.1.0 replica-a/endpoint-controller")))
                .error
                .is_some()
        );
        assert_eq!(f.decide(&from(Some("ecm/0.1.0 replica-b"))), Decision::default());
        assert_eq!(f.decide(&from(None)), Decision::default());
        assert_eq!(f.fired(), 1);
        f.set(FaultConfig::default());
        assert_eq!(f.fired(), 1, "the count survives a new configuration");
        let parsed =
            FaultConfig::parse(r#"{"rules":[{"userAgent":"replica-a","action":{"type":"compact"}}]}"#).unwrap();
        assert_eq!(parsed.rules[0].user_agent.as_deref(), Some("replica-a"));
    }

    #[test]
    fn parses_json_and_yaml() {
        let json = r#"{"seed":1,"rules":[{"resource":"pods","action":{"type":"compact"}}]}"#;
        let yaml = "seed: 1\nrules:\n- resource: pods\n  action: {type: compact}\n";
        assert_eq!(FaultConfig::parse(json).unwrap(), FaultConfig::parse(yaml).unwrap());
    }
}
