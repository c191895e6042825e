//! Why ecm wants its version of a divergent field: the verdict `ecm
//! explain` gives for the pod or object concerned.

use crate::compare::Difference;
use crate::controllers::ControllerName;
use crate::explain::Report;

/// The pod a difference's subject names (`... (pod NAME)`).
pub(super) fn pod_of(difference: &Difference) -> Option<&str> {
    let start = difference.subject.find("(pod ")? + "(pod ".len();
    difference.subject[start..].strip_suffix(')')
}

/// ecm's reason for its version of `difference`, from the explain `report`
/// of the Service.
pub(super) fn reason(report: &Report, controller: ControllerName, difference: &Difference) -> String {
    if controller == ControllerName::Mirroring
        && let Some(mirroring) = &report.mirroring
    {
        return format!("mirroring: {}", mirroring.reason);
    }
    if let Some(name) = pod_of(difference)
        && let Some(pod) = report.pods.iter().find(|p| p.name == name)
    {
        let verdict = match controller {
            ControllerName::Endpoints => pod.endpoints.as_ref().map(|v| v.reason.clone()),
            _ => pod.endpoint_slice.as_ref().map(|v| v.reason.clone()),
        }
        .unwrap_or_default();
        let detail = match difference.field {
            "zone" | "nodeName" => format!("; node {}", pod.node),
            "hostname" => format!("; hostname {}", pod.hostname),
            "hints" => {
                let notes: Vec<String> = report.hints.iter().map(|h| h.message.clone()).collect();
                format!(
                    "; hints: {}{}",
                    report.hints_mode,
                    if notes.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", notes.join("; "))
                    }
                )
            }
            "ports" => format!(
                "; ports {}",
                pod.ports
                    .iter()
                    .map(|p| format!(
                        "{} -> {}",
                        p.service_port,
                        p.resolved.map_or_else(|| "-".to_owned(), |n| n.to_string())
                    ))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            _ => String::new(),
        };
        return format!("pod {name}: {verdict}{detail}");
    }
    match (difference.field, difference.desired.as_str()) {
        ("endpoints" | "addresses", "absent") => "no pod the Service selects has this address".to_owned(),
        ("object", "none" | "absent") if !report.found => "the Service does not exist".to_owned(),
        ("object", _) => "one object set per Service and address type (a placeholder slice when there are no endpoints)".to_owned(),
        ("labels", _) => "the controller writes the Service's labels plus its managed-by, service-name and headless labels, and nothing else".to_owned(),
        ("annotations", _) => "the controller copies no other annotations (trigger time aside)".to_owned(),
        _ => format!("{} as computed for the Service", difference.field),
    }
}
