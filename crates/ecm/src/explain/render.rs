//! The table form of a [`Report`], kubectl-like: a summary of the Service,
//! one row per pod, each pod's details, then the objects and their
//! differences.

use std::fmt::Write as _;

use super::report::{Objects, Report};

fn columns(rows: &[Vec<String>]) -> String {
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
    out
}

fn yes(value: bool) -> String {
    if value { "yes" } else { "no" }.to_owned()
}

fn flag(value: Option<bool>) -> &'static str {
    match value {
        Some(true) => "true",
        Some(false) => "false",
        None => "-",
    }
}

fn objects(out: &mut String, title: &str, objects: &Objects, unit: &str) {
    let _ = write!(
        out,
        "\n{title}: want {} {unit}, found {}",
        objects.desired.len(),
        objects.current.len()
    );
    if objects.differences.is_empty() {
        let _ = writeln!(out, "; no differences");
    } else {
        let _ = writeln!(out, "; {} difference(s):", objects.differences.len());
        for difference in &objects.differences {
            let _ = writeln!(out, "  - {difference}");
        }
    }
}

/// Renders `report` as text.
pub fn table(report: &Report) -> String {
    let mut out = String::new();
    if !report.found {
        let _ = writeln!(out, "Service {} not found", report.service);
    }
    let selector = match &report.selector {
        Some(s) => s.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(","),
        None => "none".to_owned(),
    };
    let _ = writeln!(out, "Service:   {}", report.service);
    let _ = writeln!(
        out,
        "Type:      {}{}",
        report.service_type,
        if report.headless { " (headless)" } else { "" }
    );
    let _ = writeln!(out, "Selector:  {selector}");
    let _ = writeln!(out, "Ports:     {}", report.ports.join(" "));
    let _ = writeln!(out, "PublishNotReadyAddresses: {}", report.publish_not_ready_addresses);
    let _ = writeln!(out, "Hints:     {}", report.hints_mode);
    for note in &report.hints {
        let _ = writeln!(out, "  {} {}: {}", note.address_type, note.reason, note.message);
    }

    if !report.pods.is_empty() {
        let mut rows = vec![
            [
                "POD",
                "SELECTED",
                "PHASE",
                "READY",
                "DELETING",
                "NODE",
                "ENDPOINTSLICE",
                "ENDPOINTS",
            ]
            .map(str::to_owned)
            .to_vec(),
        ];
        for pod in &report.pods {
            let slice = pod.endpoint_slice.as_ref().map_or_else(
                || "-".to_owned(),
                |v| match v.endpoints.first() {
                    Some(e) => format!(
                        "ready={} serving={} terminating={}",
                        flag(e.ready),
                        flag(e.serving),
                        flag(e.terminating)
                    ),
                    None => "left out".to_owned(),
                },
            );
            let endpoints = pod.endpoints.as_ref().map_or_else(
                || "-".to_owned(),
                |v| match v.ready {
                    Some(true) => "addresses".to_owned(),
                    Some(false) => "notReadyAddresses".to_owned(),
                    None => "left out".to_owned(),
                },
            );
            rows.push(vec![
                pod.name.clone(),
                yes(pod.selected),
                pod.phase.clone(),
                pod.ready_condition.clone(),
                yes(pod.deleting),
                pod.node.clone(),
                slice,
                endpoints,
            ]);
        }
        let _ = write!(out, "\n{}", columns(&rows));
        for pod in &report.pods {
            let _ = writeln!(out, "\nPod {}:", pod.name);
            let ips = if pod.ips.is_empty() {
                "none".to_owned()
            } else {
                pod.ips.join(", ")
            };
            let _ = writeln!(out, "  IPs:       {ips}");
            let _ = writeln!(out, "  Hostname:  {}", pod.hostname);
            for port in &pod.ports {
                let resolved = port.resolved.map_or_else(|| "-".to_owned(), |n| n.to_string());
                let _ = writeln!(
                    out,
                    "  Port {} -> {}: {} ({})",
                    port.service_port, port.target, resolved, port.how
                );
            }
            if let Some(verdict) = &pod.endpoint_slice {
                let _ = writeln!(out, "  EndpointSlice: {}", verdict.reason);
                for e in &verdict.endpoints {
                    let hints = if e.hints.is_empty() {
                        String::new()
                    } else {
                        format!(" hints={}", e.hints.join(","))
                    };
                    let _ = writeln!(
                        out,
                        "    {} {} zone={}{hints}",
                        e.address_type,
                        e.addresses.join(","),
                        e.zone.as_deref().unwrap_or("-")
                    );
                }
            }
            if let Some(verdict) = &pod.endpoints {
                let ip = verdict.ip.as_deref().map(|ip| format!(" ({ip})")).unwrap_or_default();
                let _ = writeln!(out, "  Endpoints: {}{ip}", verdict.reason);
            }
        }
    } else if report.found {
        let _ = writeln!(out, "\nNo pods selected.");
    }

    if let Some(slices) = &report.endpoint_slices {
        objects(
            &mut out,
            "EndpointSlices (endpointslice-controller)",
            slices,
            "slice(s)",
        );
    }
    if let Some(endpoints) = &report.endpoints {
        objects(&mut out, "Endpoints (endpoint-controller)", endpoints, "object(s)");
        if report.endpoints_truncated {
            let _ = writeln!(
                out,
                "  over capacity: cut to 1000 addresses (endpoints.kubernetes.io/over-capacity: truncated)"
            );
        }
    }
    if let Some(mirroring) = &report.mirroring {
        let _ = writeln!(out, "\nMirroring: {} ({})", mirroring.decision, mirroring.reason);
        if mirroring.invalid_addresses + mirroring.addresses_skipped > 0 {
            let _ = writeln!(
                out,
                "  left out: {} address(es) that are not IPs, {} over --mirroring-max-endpoints-per-subset",
                mirroring.invalid_addresses, mirroring.addresses_skipped
            );
        }
        if mirroring.decision == "Mirror" || !mirroring.objects.current.is_empty() {
            objects(
                &mut out,
                "Mirrored EndpointSlices (endpointslicemirroring-controller)",
                &mirroring.objects,
                "slice(s)",
            );
        }
    }
    out
}
