//! The key that groups EndpointSlices by their port list (upstream's
//! `PortMapKey`).
//!
//! A Service whose named target port resolves to different numbers on
//! different pods needs one group of slices per distinct port list. Upstream
//! hashes each port, sorts the list by those hashes and hashes the result;
//! here the key is simply the sorted list of the ports' fields, which groups
//! the same way without hashing.

use k8s_openapi::api::discovery::v1::EndpointPort;

/// Identifies a port list regardless of its order: two lists with the same
/// ports (name, number, protocol, appProtocol) in any order have the same
/// key, and an absent list has the key of an empty one (as upstream since
/// 1.36, which fixed the rewrite loop of port-less headless Services).
///
/// Fields are compared as the API spells them: an absent name differs from
/// an empty one, as Go's pointer fields do.
///
/// ```
/// use ecm_types::port_map::PortMapKey;
/// use k8s_openapi::api::discovery::v1::EndpointPort;
/// let http = EndpointPort { name: Some("http".into()), port: Some(80), ..Default::default() };
/// let dns = EndpointPort { name: Some("dns".into()), port: Some(53), ..Default::default() };
/// assert_eq!(PortMapKey::new(&[http.clone(), dns.clone()]), PortMapKey::new(&[dns, http]));
/// assert_eq!(PortMapKey::of(None), PortMapKey::new(&[]));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortMapKey(Vec<PortFields>);

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct PortFields {
    name: Option<String>,
    port: Option<i32>,
    protocol: Option<String>,
    app_protocol: Option<String>,
}

impl PortMapKey {
    /// The key of a port list.
    pub fn new(ports: &[EndpointPort]) -> Self {
        let mut fields: Vec<PortFields> = ports
            .iter()
            .map(|p| PortFields {
                name: p.name.clone(),
                port: p.port,
                protocol: p.protocol.clone(),
                app_protocol: p.app_protocol.clone(),
            })
            .collect();
        fields.sort();
        Self(fields)
    }

    /// The key of an optional port list, such as `EndpointSlice.ports`; an
    /// absent list is an empty one.
    pub fn of(ports: Option<&[EndpointPort]>) -> Self {
        Self::new(ports.unwrap_or_default())
    }

    /// Whether the key is that of an empty port list.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(name: Option<&str>, number: i32, protocol: &str, app_protocol: Option<&str>) -> EndpointPort {
        EndpointPort {
            name: name.map(str::to_owned),
            port: Some(number),
            protocol: Some(protocol.to_owned()),
            app_protocol: app_protocol.map(str::to_owned),
        }
    }

    #[test]
    fn order_does_not_matter() {
        let a = port(Some("http"), 80, "TCP", None);
        let b = port(Some("dns"), 53, "UDP", None);
        assert_eq!(PortMapKey::new(&[a.clone(), b.clone()]), PortMapKey::new(&[b, a]));
    }

    #[test]
    fn nil_and_empty_port_lists_are_the_same_group() {
        assert_eq!(PortMapKey::of(None), PortMapKey::of(Some(&[])));
        assert!(PortMapKey::of(None).is_empty());
    }

    #[test]
    fn every_field_counts() {
        let base = port(Some("http"), 80, "TCP", None);
        let others = [
            ("name", port(Some("web"), 80, "TCP", None)),
            ("absent name", port(None, 80, "TCP", None)),
            ("number", port(Some("http"), 8080, "TCP", None)),
            ("protocol", port(Some("http"), 80, "UDP", None)),
            ("appProtocol", port(Some("http"), 80, "TCP", Some("h2c"))),
        ];
        for (what, other) in others {
            assert_ne!(
                PortMapKey::new(std::slice::from_ref(&base)),
                PortMapKey::new(&[other]),
                "{what}"
            );
        }
    }

    #[test]
    fn a_port_listed_twice_is_not_the_same_as_once() {
        let p = port(Some("http"), 80, "TCP", None);
        assert_ne!(
            PortMapKey::new(std::slice::from_ref(&p)),
            PortMapKey::new(&[p.clone(), p])
        );
    }
}
