//! Input shapes and output checks shared by the fuzz targets of ecm.
//!
//! The targets build Kubernetes objects from [`arbitrary`] values biased
//! towards what the controllers meet (IPs in their usual and odd text
//! forms, a few names that collide often, the usual protocols) and check
//! what comes out with [`slice_problems`] and the API server's own
//! validation.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use arbitrary::Arbitrary;
use k8s_openapi::api::discovery::v1::EndpointSlice;

/// An IP address as text: the usual forms, the odd ones upstream's sloppy
/// parser accepts, and anything at all.
#[derive(Arbitrary, Debug, Clone)]
pub enum IpText {
    /// Dotted quad.
    V4([u8; 4]),
    /// IPv6, canonical text.
    V6([u16; 8]),
    /// IPv4-mapped IPv6, `::ffff:a.b.c.d`.
    Mapped([u8; 4]),
    /// Dotted quad with leading zeros, `010.001.000.007`.
    LeadingZeros([u8; 4]),
    /// IPv6 in its full, uncompressed form.
    V6Full([u16; 8]),
    /// Any text.
    Raw(String),
}

impl IpText {
    /// The text of the address.
    pub fn text(&self) -> String {
        match self {
            Self::V4(o) => Ipv4Addr::from(*o).to_string(),
            Self::V6(s) => Ipv6Addr::from(*s).to_string(),
            Self::Mapped(o) => format!("::ffff:{}", Ipv4Addr::from(*o)),
            Self::LeadingZeros(o) => format!("{:03}.{:03}.{:03}.{:03}", o[0], o[1], o[2], o[3]),
            Self::V6Full(s) => s.iter().map(|x| format!("{x:04x}")).collect::<Vec<_>>().join(":"),
            Self::Raw(text) => text.clone(),
        }
    }
}

/// A protocol field.
#[derive(Arbitrary, Debug, Clone)]
pub enum Protocol {
    /// Unset (the API server's default, TCP).
    Unset,
    /// `TCP`.
    Tcp,
    /// `UDP`.
    Udp,
    /// `SCTP`.
    Sctp,
    /// Anything.
    Other(String),
}

impl Protocol {
    /// The field's value.
    pub fn api(&self) -> Option<String> {
        match self {
            Self::Unset => None,
            Self::Tcp => Some("TCP".into()),
            Self::Udp => Some("UDP".into()),
            Self::Sctp => Some("SCTP".into()),
            Self::Other(s) => Some(s.clone()),
        }
    }
}

/// A name from a small set, so that names collide often, or any text.
#[derive(Arbitrary, Debug, Clone)]
pub enum Name {
    /// `""`.
    Empty,
    /// `a`.
    A,
    /// `b`.
    B,
    /// `http`.
    Http,
    /// Anything.
    Other(String),
}

impl Name {
    /// The name.
    pub fn text(&self) -> String {
        match self {
            Self::Empty => String::new(),
            Self::A => "a".into(),
            Self::B => "b".into(),
            Self::Http => "http".into(),
            Self::Other(s) => s.clone(),
        }
    }
}

/// A port number: mostly in range, sometimes not.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum PortNumber {
    /// 1..=65535 (0 maps to 80).
    Valid(u16),
    /// Any number.
    Any(i32),
}

impl PortNumber {
    /// The number.
    pub fn get(self) -> i32 {
        match self {
            Self::Valid(0) => 80,
            Self::Valid(n) => i32::from(n),
            Self::Any(n) => n,
        }
    }
}

/// What is wrong with a slice a controller computed: more than `max`
/// endpoints, an unknown address type, an endpoint without an address, or an address that is not the canonical text of an IP of the
/// slice's address type.
pub fn slice_problems(slice: &EndpointSlice, max: usize) -> Vec<String> {
    let mut problems = Vec::new();
    let endpoints = ecm_types::endpoint_slice::endpoints(slice);
    if endpoints.len() > max {
        problems.push(format!("{} endpoints, more than {max}", endpoints.len()));
    }
    let v6 = match slice.address_type.as_str() {
        "IPv4" => false,
        "IPv6" => true,
        other => {
            problems.push(format!("address type {other:?}"));
            return problems;
        }
    };
    for endpoint in endpoints {
        // One address per endpoint for a valid pod; upstream lists every
        // pod IP of the family, and an invalid pod may have several.
        if endpoint.addresses.is_empty() {
            problems.push("endpoint without addresses".to_owned());
        }
        for address in &endpoint.addresses {
            match address.parse::<IpAddr>() {
                Ok(ip) if ip.is_ipv6() == v6 && ip.to_string() == *address => {}
                _ => problems.push(format!("address {address:?} in an {} slice", slice.address_type)),
            }
        }
    }
    problems
}

/// The API server's validation errors for creating `slice` (named after
/// its `generateName` when it has no name yet).
pub fn slice_validation_errors(slice: &EndpointSlice) -> Vec<String> {
    let mut slice = slice.clone();
    if slice.metadata.name.is_none() {
        slice.metadata.name = Some(format!("{}x", slice.metadata.generate_name.clone().unwrap_or_default()));
    }
    match serde_json::to_value(&slice) {
        Ok(value) => ecm_apiserver::fuzzing::validate_create("endpointslices", &value),
        Err(err) => vec![format!("does not serialize: {err}")],
    }
}
