//! The seeded fault mix of a chaos run.

use ecm_apiserver::{FaultAction, FaultConfig, FaultRule};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Writes of the controllers' outputs that may fail.
const OUTPUT_WRITES: [&str; 4] = ["create", "update", "patch", "delete"];

fn error(code: u16) -> FaultAction {
    FaultAction::Error {
        code,
        retry_after_seconds: (code == 429).then_some(1),
        message: None,
    }
}

/// The faults of `seed`: write errors 409/429/500/503 on Endpoints and
/// EndpointSlices, list errors, watch streams cut after N events or T ms,
/// history compactions (resumed watches get 410 Gone) and added latency;
/// rates and sizes drawn from the seed. Nothing touches the writes the
/// churn makes (pods, Services and nodes are only listed and watched).
pub(crate) fn fault_mix(seed: u64) -> FaultConfig {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x00fa_u64);
    let mut rules = Vec::new();
    for resource in ["endpoints", "endpointslices"] {
        for code in [409, 429, 500, 503] {
            rules.push(FaultRule::new(resource, &OUTPUT_WRITES, error(code)).probability(rng.random_range(0.03..0.08)));
        }
    }
    rules.push(
        FaultRule::new("*", &["list"], error(if rng.random_bool(0.5) { 500 } else { 503 }))
            .probability(rng.random_range(0.1..0.3)),
    );
    rules.push(
        FaultRule::new(
            "*",
            &["watch"],
            FaultAction::CutWatchAfterEvents {
                events: rng.random_range(2..12),
            },
        )
        .probability(rng.random_range(0.2..0.6)),
    );
    rules.push(
        FaultRule::new(
            "*",
            &["watch"],
            FaultAction::CutWatchAfter {
                millis: rng.random_range(150..1500),
            },
        )
        .probability(rng.random_range(0.2..0.6)),
    );
    for resource in ["pods", "services", "endpointslices", "endpoints", "nodes"] {
        rules.push(FaultRule::new(resource, &["watch"], FaultAction::Compact).probability(rng.random_range(0.05..0.3)));
    }
    rules.push(
        FaultRule::new(
            "*",
            &["list", "watch", "get", "create", "update", "patch", "delete"],
            FaultAction::Latency {
                millis: rng.random_range(5..60),
            },
        )
        .probability(rng.random_range(0.05..0.25)),
    );
    FaultConfig { seed, rules }
}
