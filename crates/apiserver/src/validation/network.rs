//! Validation of EndpointSlices, Endpoints and pod IPs.

use std::net::IpAddr;

use serde_json::Value;

use super::field::{FieldError, FieldErrorType, fmt_value, quote};
use super::names;

const IP_MSG: &str = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)";
const PROTOCOLS: [&str; 3] = ["SCTP", "TCP", "UDP"];
const ADDRESS_TYPES: [&str; 3] = ["FQDN", "IPv4", "IPv6"];
const MAX_ADDRESSES: usize = 100;
const MAX_PORTS: usize = 20000;
const MAX_ENDPOINTS: usize = 1000;
const MAX_ZONE_HINTS: usize = 8;
const MAX_NODE_HINTS: usize = 8;
const MAX_TOPOLOGY_LABELS: usize = 16;

/// Parses an IP as Go's `ParseIPSloppy` (IPv4-mapped IPv6 counts as IPv4).
fn parse_ip(s: &str) -> Option<IpAddr> {
    let ip: IpAddr = s.parse().ok()?;
    Some(match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 @ IpAddr::V4(_) => v4,
    })
}

/// `ValidateEndpointIP` / `ValidateNonSpecialIP`.
///
/// `field` builds the path only when there is an error to report.
fn non_special_ip(field: impl Fn() -> String, s: &str, errs: &mut Vec<FieldError>) {
    let Some(ip) = parse_ip(s) else {
        errs.push(FieldError::invalid_str(field(), s, "must be a valid IP address"));
        return;
    };
    if ip.is_unspecified() {
        errs.push(FieldError::invalid_str(
            field(),
            s,
            format!("may not be unspecified ({s})"),
        ));
    }
    if ip.is_loopback() {
        errs.push(FieldError::invalid_str(
            field(),
            s,
            "may not be in the loopback range (127.0.0.0/8, ::1/128)",
        ));
    }
    let link_local_unicast = match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => v6.segments()[0] & 0xffc0 == 0xfe80,
    };
    if link_local_unicast {
        errs.push(FieldError::invalid_str(
            field(),
            s,
            "may not be in the link-local range (169.254.0.0/16, fe80::/10)",
        ));
    }
    let link_local_multicast = match ip {
        IpAddr::V4(v4) => v4.octets()[..3] == [224, 0, 0],
        IpAddr::V6(v6) => v6.segments()[0] & 0xff0f == 0xff02,
    };
    if link_local_multicast {
        errs.push(FieldError::invalid_str(
            field(),
            s,
            "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)",
        ));
    }
}

fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn arr<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key).and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

fn dns_label(field: impl Fn() -> String, s: &str, errs: &mut Vec<FieldError>) {
    for msg in names::is_dns1123_label(s) {
        errs.push(FieldError::invalid_str(field(), s, msg));
    }
}

fn node_name(field: impl Fn() -> String, s: &str, errs: &mut Vec<FieldError>) {
    for msg in names::is_dns1123_subdomain(s) {
        errs.push(FieldError::invalid_str(field(), s, msg));
    }
}

fn protocol(field: impl Fn() -> String, port: &Value, errs: &mut Vec<FieldError>) {
    match port.get("protocol") {
        None | Some(Value::Null) => errs.push(FieldError::required(field(), "")),
        Some(Value::String(p)) if PROTOCOLS.contains(&p.as_str()) => {}
        Some(other) => errs.push(FieldError::not_supported(field(), other, &PROTOCOLS)),
    }
}

fn app_protocol(field: impl Fn() -> String, port: &Value, errs: &mut Vec<FieldError>) {
    if let Some(app) = str_at(port, "appProtocol") {
        for msg in names::is_qualified_name(app) {
            errs.push(FieldError::invalid_str(field(), app, msg));
        }
    }
}

/// `ValidateEndpointSlice` (+ `ValidateEndpointSliceUpdate` when `old` is given).
pub(super) fn validate_endpoint_slice(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let address_type = obj.get("addressType");
    match address_type {
        None | Some(Value::Null) => errs.push(FieldError::required("addressType", "")),
        Some(Value::String(t)) if t.is_empty() => errs.push(FieldError::required("addressType", "")),
        Some(Value::String(t)) if ADDRESS_TYPES.contains(&t.as_str()) => {}
        Some(other) => errs.push(FieldError::not_supported("addressType", other, &ADDRESS_TYPES)),
    }
    let address_type = address_type.and_then(Value::as_str).unwrap_or("");
    let endpoints = arr(obj, "endpoints");
    if endpoints.len() > MAX_ENDPOINTS {
        errs.push(FieldError::too_many("endpoints", endpoints.len(), MAX_ENDPOINTS));
    } else {
        for (i, ep) in endpoints.iter().enumerate() {
            // Paths are built only for errors: most writes have none.
            let base = || format!("endpoints[{i}]");
            let addresses = arr(ep, "addresses");
            let apath = || format!("endpoints[{i}].addresses");
            if addresses.is_empty() {
                errs.push(FieldError::required(apath(), "must contain at least 1 address"));
            } else if addresses.len() > MAX_ADDRESSES {
                errs.push(FieldError::too_many(apath(), addresses.len(), MAX_ADDRESSES));
            }
            for (j, addr) in addresses.iter().enumerate() {
                let field = || format!("endpoints[{i}].addresses[{j}]");
                let a = addr.as_str().unwrap_or("");
                match address_type {
                    "IPv4" => {
                        if !matches!(parse_ip(a), Some(IpAddr::V4(_))) {
                            errs.push(FieldError::invalid_str(field(), a, "must be a valid IPv4 address"));
                        }
                        non_special_ip(field, a, &mut errs);
                    }
                    "IPv6" => {
                        if !matches!(parse_ip(a), Some(IpAddr::V6(_))) {
                            errs.push(FieldError::invalid_str(field(), a, "must be a valid IPv6 address"));
                        }
                        non_special_ip(field, a, &mut errs);
                    }
                    "FQDN"
                        if a.len() > 253
                            || !a.contains('.')
                            || !names::is_dns1123_subdomain(&a.to_lowercase()).is_empty() =>
                    {
                        errs.push(FieldError::invalid_str(
                            field(),
                            a,
                            "should be a domain with at least two segments separated by dots",
                        ));
                    }
                    _ => {}
                }
            }
            if let Some(n) = str_at(ep, "nodeName") {
                node_name(|| format!("{}.nodeName", base()), n, &mut errs);
            }
            if let Some(topo) = ep.get("deprecatedTopology").and_then(Value::as_object) {
                let tpath = format!("{}.deprecatedTopology", base());
                if topo.len() > MAX_TOPOLOGY_LABELS {
                    errs.push(FieldError::too_many(tpath.clone(), topo.len(), MAX_TOPOLOGY_LABELS));
                }
                for (k, v) in topo {
                    for msg in names::is_qualified_name(k) {
                        errs.push(FieldError::invalid_str(tpath.clone(), k, msg));
                    }
                    for msg in names::is_valid_label_value(v.as_str().unwrap_or("")) {
                        errs.push(FieldError::invalid(tpath.clone(), fmt_value(v), msg));
                    }
                }
                if topo.contains_key("topology.kubernetes.io/zone") {
                    errs.push(FieldError {
                        kind: FieldErrorType::Internal,
                        field: format!("{tpath}[topology.kubernetes.io/zone]"),
                        value: None,
                        detail: "reserved key was not removed in conversion".into(),
                    });
                }
            }
            if let Some(h) = str_at(ep, "hostname") {
                dns_label(|| format!("{}.hostname", base()), h, &mut errs);
            }
            if let Some(hints) = ep.get("hints").filter(|h| !h.is_null()) {
                validate_hints(&format!("{}.hints", base()), hints, &mut errs);
            }
        }
    }
    let ports = arr(obj, "ports");
    if ports.len() > MAX_PORTS {
        errs.push(FieldError::too_many("ports", ports.len(), MAX_PORTS));
    } else {
        let mut seen = std::collections::HashSet::new();
        for (i, port) in ports.iter().enumerate() {
            let name = str_at(port, "name").unwrap_or("");
            if !name.is_empty() {
                dns_label(|| format!("ports[{i}].name"), name, &mut errs);
            }
            if !seen.insert(name) {
                errs.push(FieldError::duplicate(format!("ports[{i}].name"), quote(name)));
            }
            protocol(|| format!("ports[{i}].protocol"), port, &mut errs);
            app_protocol(|| format!("ports[{i}].appProtocol"), port, &mut errs);
        }
    }
    if let Some(old) = old {
        let new_type = obj.get("addressType");
        let old_type = old.get("addressType");
        if new_type != old_type {
            errs.push(FieldError::invalid(
                "addressType",
                new_type.map_or_else(|| "\"\"".into(), fmt_value),
                "field is immutable",
            ));
        }
    }
    errs
}

fn validate_hints(base: &str, hints: &Value, errs: &mut Vec<FieldError>) {
    let zones = arr(hints, "forZones");
    let zpath = format!("{base}.forZones");
    if zones.len() > MAX_ZONE_HINTS {
        errs.push(FieldError::too_many(zpath, zones.len(), MAX_ZONE_HINTS));
    } else {
        let mut seen = std::collections::HashSet::new();
        for (i, zone) in zones.iter().enumerate() {
            let field = format!("{zpath}[{i}].name");
            let name = str_at(zone, "name").unwrap_or("");
            if !seen.insert(name) {
                errs.push(FieldError::duplicate(field.clone(), quote(name)));
            }
            for msg in names::is_valid_label_value(name) {
                errs.push(FieldError::invalid_str(field.clone(), name, msg));
            }
        }
    }
    let nodes = arr(hints, "forNodes");
    let npath = format!("{base}.forNodes");
    if nodes.len() > MAX_NODE_HINTS {
        errs.push(FieldError::too_many(npath, nodes.len(), MAX_NODE_HINTS));
    } else {
        let mut seen = std::collections::HashSet::new();
        for (i, node) in nodes.iter().enumerate() {
            let field = format!("{npath}[{i}].name");
            let name = str_at(node, "name").unwrap_or("");
            if !seen.insert(name) {
                errs.push(FieldError::duplicate(field.clone(), quote(name)));
            }
            node_name(|| field.clone(), name, errs);
        }
    }
}

/// `ValidateEndpoints` (create and update).
pub(super) fn validate_endpoints(obj: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, subset) in arr(obj, "subsets").iter().enumerate() {
        let base = format!("subsets[{i}]");
        let ready = arr(subset, "addresses");
        let not_ready = arr(subset, "notReadyAddresses");
        if ready.is_empty() && not_ready.is_empty() {
            errs.push(FieldError::required(
                base.clone(),
                "must specify `addresses` or `notReadyAddresses`",
            ));
        }
        for (key, list) in [("addresses", ready), ("notReadyAddresses", not_ready)] {
            for (j, addr) in list.iter().enumerate() {
                let apath = format!("{base}.{key}[{j}]");
                let ip = str_at(addr, "ip").unwrap_or("");
                if parse_ip(ip).is_none() {
                    errs.push(FieldError::invalid_str(format!("{apath}.ip"), ip, IP_MSG));
                }
                if let Some(h) = str_at(addr, "hostname").filter(|h| !h.is_empty()) {
                    dns_label(|| format!("{apath}.hostname"), h, &mut errs);
                }
                if let Some(n) = str_at(addr, "nodeName") {
                    node_name(|| format!("{apath}.nodeName"), n, &mut errs);
                }
                non_special_ip(|| format!("{apath}.ip"), ip, &mut errs);
            }
        }
        let ports = arr(subset, "ports");
        let mut seen = std::collections::HashSet::new();
        for (j, port) in ports.iter().enumerate() {
            let ppath = format!("{base}.ports[{j}]");
            let name = str_at(port, "name").unwrap_or("");
            if ports.len() > 1 && name.is_empty() {
                errs.push(FieldError::required(format!("{ppath}.name"), ""));
            } else if !name.is_empty() {
                dns_label(|| format!("{ppath}.name"), name, &mut errs);
            }
            if !name.is_empty() && !seen.insert(name) {
                errs.push(FieldError::duplicate(format!("{ppath}.name"), quote(name)));
            }
            let number = port.get("port").and_then(Value::as_i64).unwrap_or(0);
            if !(1..=65535).contains(&number) {
                errs.push(FieldError::invalid(
                    format!("{ppath}.port"),
                    number.to_string(),
                    "must be between 1 and 65535, inclusive",
                ));
            }
            protocol(|| format!("{ppath}.protocol"), port, &mut errs);
            app_protocol(|| format!("{ppath}.appProtocol"), port, &mut errs);
        }
    }
    errs
}

/// `validatePodIPs` and `validateHostIPs` of pod status.
pub(super) fn validate_pod_status_ips(obj: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let Some(status) = obj.get("status") else { return errs };
    if let Some(ip) = str_at(status, "podIP").filter(|s| !s.is_empty())
        && parse_ip(ip).is_none()
    {
        errs.push(FieldError::invalid_str("status.podIP", ip, IP_MSG));
    }
    for key in ["podIPs", "hostIPs"] {
        let list = arr(status, key);
        let mut families = Vec::new();
        for (i, entry) in list.iter().enumerate() {
            let ip = str_at(entry, "ip").unwrap_or("");
            match parse_ip(ip) {
                Some(parsed) => families.push(parsed.is_ipv4()),
                None => errs.push(FieldError::invalid_str(format!("status.{key}[{i}]"), ip, IP_MSG)),
            }
        }
        if list.len() > 1 && (list.len() > 2 || families.len() != 2 || families[0] == families[1]) {
            errs.push(FieldError::invalid(
                format!("status.{key}"),
                Value::Array(list.to_vec()).to_string(),
                "may specify no more than one IP for each IP family",
            ));
        }
    }
    if let (Some(ip), Some(first)) = (
        str_at(status, "podIP"),
        arr(status, "podIPs").first().and_then(|e| str_at(e, "ip")),
    ) && !ip.is_empty()
        && ip != first
    {
        errs.push(FieldError::invalid_str(
            "status.podIPs[0].ip",
            first,
            "must match status.podIP",
        ));
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(errs: &[FieldError]) -> Vec<String> {
        errs.iter().map(|e| format!("{}: {}", e.field, e.body())).collect()
    }

    #[test]
    fn slice_address_must_match_address_type() {
        let s = json!({"addressType": "IPv4", "endpoints": [{"addresses": ["fd00::1"]}], "ports": []});
        let errs = validate_endpoint_slice(&s, None);
        assert_eq!(
            fields(&errs),
            vec!["endpoints[0].addresses[0]: Invalid value: \"fd00::1\": must be a valid IPv4 address"]
        );
    }

    #[test]
    fn slice_limits_and_duplicates() {
        let eps: Vec<Value> = (0..1001)
            .map(|i| json!({"addresses": [format!("10.0.{}.{}", i / 250, i % 250 + 1)]}))
            .collect();
        let s = json!({"addressType": "IPv4", "endpoints": eps});
        assert_eq!(
            fields(&validate_endpoint_slice(&s, None)),
            vec!["endpoints: Too many: 1001: must have at most 1000 items"]
        );
        let s = json!({"addressType": "IPv4", "ports": [{"name": "a", "protocol": "TCP"}, {"name": "a", "protocol": "TCP"}]});
        assert_eq!(
            fields(&validate_endpoint_slice(&s, None)),
            vec!["ports[1].name: Duplicate value: \"a\""]
        );
        let s = json!({"addressType": "IP"});
        assert_eq!(
            fields(&validate_endpoint_slice(&s, None)),
            vec!["addressType: Unsupported value: \"IP\": supported values: \"FQDN\", \"IPv4\", \"IPv6\""]
        );
    }

    #[test]
    fn endpoints_reject_special_ips() {
        let e = json!({"subsets": [{"addresses": [{"ip": "127.0.0.1"}], "ports": [{"port": 80, "protocol": "TCP"}]}]});
        assert_eq!(
            fields(&validate_endpoints(&e)),
            vec![
                "subsets[0].addresses[0].ip: Invalid value: \"127.0.0.1\": may not be in the loopback range (127.0.0.0/8, ::1/128)"
            ]
        );
        let e = json!({"subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80, "protocol": "TCP"}, {"port": 81, "protocol": "TCP"}]}]});
        assert_eq!(fields(&validate_endpoints(&e)).len(), 2);
    }

    #[test]
    fn pod_ips_must_be_valid_and_one_per_family() {
        let p = json!({"status": {"podIP": "10.0.0.1", "podIPs": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}]}});
        assert_eq!(validate_pod_status_ips(&p).len(), 1);
        let p = json!({"status": {"podIP": "nope"}});
        assert_eq!(validate_pod_status_ips(&p).len(), 1);
        let p = json!({"status": {"podIP": "10.0.0.1", "podIPs": [{"ip": "10.0.0.1"}, {"ip": "fd00::1"}]}});
        assert!(validate_pod_status_ips(&p).is_empty());
    }
}
