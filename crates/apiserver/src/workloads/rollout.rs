//! Rolling-update arithmetic, as upstream's
//! `pkg/controller/deployment/util/deployment_util.go` computes it:
//! `maxSurge` rounds percentages up, `maxUnavailable` rounds them down, and
//! when both come out zero one pod may be unavailable (`ResolveFenceposts`);
//! how far the new ReplicaSet may grow (`NewRSNewReplicas`) and how many old
//! pods may go (`reconcileOldReplicaSets` in `rolling.go`).

use serde_json::Value;

/// An `IntOrString` of a rolling update: a count or a percentage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IntOrPercent {
    /// An absolute number of pods.
    Int(i64),
    /// A percentage of the desired replicas.
    Percent(i64),
}

impl IntOrPercent {
    /// Reads `5` or `"25%"` (a plain numeric string counts as an int);
    /// `None` when absent or malformed.
    pub(crate) fn parse(v: Option<&Value>) -> Option<Self> {
        match v? {
            Value::Number(n) => n.as_i64().map(Self::Int),
            Value::String(s) => match s.strip_suffix('%') {
                Some(p) => p.trim().parse().ok().map(Self::Percent),
                None => s.trim().parse().ok().map(Self::Int),
            },
            _ => None,
        }
    }

    /// `GetScaledValueFromIntOrPercent`: percentages of `total`, rounded up
    /// or down.
    pub(crate) fn scaled(self, total: i64, round_up: bool) -> i64 {
        match self {
            Self::Int(n) => n,
            Self::Percent(p) => {
                let product = p * total;
                if round_up {
                    (product + 99).div_euclid(100)
                } else {
                    product.div_euclid(100)
                }
            }
        }
    }
}

/// A Deployment's strategy, defaults applied (RollingUpdate, 25% / 25%).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Strategy {
    /// Kill all old pods before creating new ones.
    Recreate,
    /// Replace pods gradually within the surge and unavailability bounds.
    RollingUpdate {
        /// `maxSurge`.
        max_surge: IntOrPercent,
        /// `maxUnavailable`.
        max_unavailable: IntOrPercent,
    },
}

impl Strategy {
    /// Reads `spec.strategy` of a Deployment.
    pub(crate) fn of(deployment: &Value) -> Self {
        let strategy = deployment.pointer("/spec/strategy");
        if strategy.and_then(|s| s.get("type")).and_then(Value::as_str) == Some("Recreate") {
            return Self::Recreate;
        }
        let rolling = strategy.and_then(|s| s.get("rollingUpdate"));
        let field = |name| IntOrPercent::parse(rolling.and_then(|r| r.get(name)));
        Self::RollingUpdate {
            max_surge: field("maxSurge").unwrap_or(IntOrPercent::Percent(25)),
            max_unavailable: field("maxUnavailable").unwrap_or(IntOrPercent::Percent(25)),
        }
    }
}

/// `ResolveFenceposts`: (surge, unavailable) for `desired` replicas.
pub(crate) fn resolve_fenceposts(max_surge: IntOrPercent, max_unavailable: IntOrPercent, desired: i64) -> (i64, i64) {
    let surge = max_surge.scaled(desired, true);
    let unavailable = max_unavailable.scaled(desired, false);
    if surge == 0 && unavailable == 0 {
        return (0, 1);
    }
    (surge, unavailable)
}

/// `MaxUnavailable`: pods that may be unavailable during a rollout
/// (0 for Recreate or no replicas; at most `desired`).
pub(crate) fn max_unavailable(strategy: Strategy, desired: i64) -> i64 {
    match strategy {
        Strategy::RollingUpdate {
            max_surge,
            max_unavailable,
        } if desired > 0 => resolve_fenceposts(max_surge, max_unavailable, desired).1.min(desired),
        _ => 0,
    }
}

/// `MaxSurge`: pods above `desired` a rollout may run (0 for Recreate).
pub(crate) fn max_surge(strategy: Strategy, desired: i64) -> i64 {
    match strategy {
        Strategy::RollingUpdate {
            max_surge,
            max_unavailable,
        } => resolve_fenceposts(max_surge, max_unavailable, desired).0,
        Strategy::Recreate => 0,
    }
}

/// `NewRSNewReplicas`: the size the new ReplicaSet may have now, given its
/// current size and the sum of the sizes of all ReplicaSets (new included).
pub(crate) fn new_rs_replicas(strategy: Strategy, desired: i64, new_rs: i64, all_rs: i64) -> i64 {
    match strategy {
        Strategy::Recreate => desired,
        Strategy::RollingUpdate { .. } => {
            let max_total = desired + max_surge(strategy, desired);
            if all_rs >= max_total {
                return new_rs;
            }
            let scale_up = (max_total - all_rs).min(desired - new_rs);
            new_rs + scale_up.max(0)
        }
    }
}

/// How many old pods a rolling update may remove now
/// (`maxScaledDown` of `reconcileOldReplicaSets`): all pods
/// (`all_rs`, sizes of every ReplicaSet) minus the minimum that must stay
/// available minus the new ReplicaSet's pods that are not available yet.
pub(crate) fn max_scaled_down(
    strategy: Strategy,
    desired: i64,
    all_rs: i64,
    new_rs: i64,
    new_rs_available: i64,
) -> i64 {
    let min_available = desired - max_unavailable(strategy, desired);
    let new_unavailable = new_rs - new_rs_available;
    all_rs - min_available - new_unavailable
}

/// `scaleDownOldReplicaSetsForRollingUpdate`'s budget: available pods
/// above the minimum that must stay available.
pub(crate) fn old_scale_down_budget(strategy: Strategy, desired: i64, available: i64) -> i64 {
    let min_available = desired - max_unavailable(strategy, desired);
    (available - min_available).max(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rolling(surge: &Value, unavailable: &Value) -> Strategy {
        Strategy::of(&json!({"spec": {"strategy": {"type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}}}}))
    }

    #[test]
    fn percentages_round_surge_up_and_unavailable_down() {
        // Upstream TestResolveFenceposts / GetScaledValueFromIntOrPercent.
        let p = IntOrPercent::Percent(25);
        assert_eq!(p.scaled(10, true), 3);
        assert_eq!(p.scaled(10, false), 2);
        assert_eq!(p.scaled(300, true), 75);
        assert_eq!(p.scaled(3, true), 1);
        assert_eq!(p.scaled(3, false), 0);
        assert_eq!(IntOrPercent::Int(4).scaled(10, true), 4);
        assert_eq!(
            resolve_fenceposts(IntOrPercent::Int(0), IntOrPercent::Int(0), 5),
            (0, 1)
        );
        assert_eq!(
            resolve_fenceposts(IntOrPercent::Percent(0), IntOrPercent::Percent(10), 5),
            (0, 1),
            "10% of 5 rounds down to 0, so one pod may be unavailable"
        );
        assert_eq!(
            resolve_fenceposts(IntOrPercent::Percent(1), IntOrPercent::Int(0), 1),
            (1, 0)
        );
    }

    #[test]
    fn parses_ints_strings_and_defaults() {
        assert_eq!(IntOrPercent::parse(Some(&json!(2))), Some(IntOrPercent::Int(2)));
        assert_eq!(
            IntOrPercent::parse(Some(&json!("30%"))),
            Some(IntOrPercent::Percent(30))
        );
        assert_eq!(IntOrPercent::parse(Some(&json!("3"))), Some(IntOrPercent::Int(3)));
        assert_eq!(IntOrPercent::parse(Some(&json!("x%"))), None);
        assert_eq!(
            Strategy::of(&json!({"spec": {}})),
            Strategy::RollingUpdate {
                max_surge: IntOrPercent::Percent(25),
                max_unavailable: IntOrPercent::Percent(25)
            }
        );
        assert_eq!(
            Strategy::of(&json!({"spec": {"strategy": {"type": "Recreate"}}})),
            Strategy::Recreate
        );
    }

    #[test]
    fn max_unavailable_is_capped_and_zero_without_replicas() {
        let s = rolling(&json!(0), &json!(5));
        assert_eq!(max_unavailable(s, 3), 3);
        assert_eq!(max_unavailable(s, 0), 0);
        assert_eq!(max_unavailable(Strategy::Recreate, 3), 0);
        assert_eq!(max_surge(Strategy::Recreate, 3), 0);
    }

    #[test]
    fn new_replica_set_grows_within_the_surge() {
        // Upstream TestNewRSNewReplicas: 10 replicas, maxSurge 1, new RS 0..
        let s = rolling(&json!(1), &json!(0));
        assert_eq!(new_rs_replicas(s, 10, 0, 10), 1);
        assert_eq!(new_rs_replicas(s, 10, 1, 11), 1, "at the surge limit nothing grows");
        let s = rolling(&json!("25%"), &json!("25%"));
        // 300 replicas: 75 pods of surge.
        assert_eq!(new_rs_replicas(s, 300, 0, 300), 75);
        assert_eq!(new_rs_replicas(s, 300, 290, 310), 300, "never above desired");
        assert_eq!(new_rs_replicas(Strategy::Recreate, 4, 0, 9), 4);
    }

    #[test]
    fn old_pods_go_only_while_enough_stay_available() {
        // 10 replicas, 25%/25%: at least 8 available.
        let s = rolling(&json!("25%"), &json!("25%"));
        // Old 10 available, new 3 not yet available: 13 - 8 - 3 = 2 may go.
        assert_eq!(max_scaled_down(s, 10, 13, 3, 0), 2);
        assert_eq!(old_scale_down_budget(s, 10, 10), 2);
        assert_eq!(old_scale_down_budget(s, 10, 7), 0);
        // maxUnavailable 0: nothing goes until new pods are available.
        let s = rolling(&json!(1), &json!(0));
        assert_eq!(max_scaled_down(s, 10, 11, 1, 0), 0);
        assert_eq!(max_scaled_down(s, 10, 11, 1, 1), 1);
    }
}
