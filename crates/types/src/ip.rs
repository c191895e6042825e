//! IP addresses and address families, with the parsing rules the endpoint
//! controllers apply to pod IPs.
//!
//! Upstream parses pod IPs "sloppily" (IPv4 octets with leading zeros are read
//! as decimal, as Go's `netutils.ParseIPSloppy` does) and classifies anything
//! that is not IPv6 as IPv4. We keep the sloppy reading but refuse two kinds of
//! input outright, so that no controller ever writes an address the API server
//! would reject: strings that are not IP addresses at all, and IPv4-mapped IPv6
//! addresses (`::ffff:10.0.0.1`), which Kubernetes' strict IP validation
//! (beta and on by default since 1.33) rejects and which are ambiguous between
//! the two families.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An IP address family, as used by `spec.ipFamilies` and by EndpointSlice
/// `addressType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IpFamily {
    /// IPv4 (`"IPv4"`).
    V4,
    /// IPv6 (`"IPv6"`).
    V6,
}

impl IpFamily {
    /// The family named by a Service `spec.ipFamilies` entry or an
    /// EndpointSlice `addressType`; `None` for anything else (such as the
    /// deprecated `FQDN` address type).
    pub fn from_api(name: &str) -> Option<Self> {
        match name {
            "IPv4" => Some(Self::V4),
            "IPv6" => Some(Self::V6),
            _ => None,
        }
    }

    /// The API spelling: `"IPv4"` or `"IPv6"`.
    pub fn as_api(self) -> &'static str {
        match self {
            Self::V4 => "IPv4",
            Self::V6 => "IPv6",
        }
    }

    /// The family of an IP address string, or `None` when the string is not a
    /// usable IP address (see [`parse_ip`]).
    pub fn of(ip: &str) -> Option<Self> {
        parse_ip(ip).map(|addr| match addr {
            IpAddr::V4(_) => Self::V4,
            IpAddr::V6(_) => Self::V6,
        })
    }

    /// Upstream's `IsIPv6String` test turned into a family: IPv6 when the
    /// string parses as IPv6, IPv4 otherwise (including unparsable strings).
    /// Used where upstream derives a family from a Service's cluster IP or a
    /// pod's primary IP.
    pub fn of_or_ipv4(ip: &str) -> Self {
        Self::of(ip).unwrap_or(Self::V4)
    }
}

impl fmt::Display for IpFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_api())
    }
}

/// Parses an IP address the way the endpoint controllers read pod IPs.
///
/// Accepts canonical and non-canonical IPv6, and dotted-quad IPv4 whose octets
/// may carry leading zeros (read as decimal, like Go's `ParseIPSloppy`).
/// Rejects everything else, and rejects IPv4-mapped IPv6 addresses.
///
/// ```
/// use ecm_types::ip::parse_ip;
/// assert_eq!(parse_ip("010.001.002.003").unwrap().to_string(), "10.1.2.3");
/// assert_eq!(parse_ip("FD00::0001").unwrap().to_string(), "fd00::1");
/// assert!(parse_ip("::ffff:10.0.0.1").is_none());
/// assert!(parse_ip("not-an-ip").is_none());
/// ```
pub fn parse_ip(text: &str) -> Option<IpAddr> {
    if let Some(v4) = parse_ipv4_sloppy(text) {
        return Some(IpAddr::V4(v4));
    }
    let v6: Ipv6Addr = text.parse().ok()?;
    if v6.to_ipv4_mapped().is_some() {
        return None;
    }
    Some(IpAddr::V6(v6))
}

/// The canonical text of an IP address (IPv4 dotted quad without leading
/// zeros, IPv6 compressed lower case per RFC 5952), or `None` when
/// [`parse_ip`] rejects it. EndpointSlice addresses are written in this form.
pub fn canonical_ip(text: &str) -> Option<String> {
    parse_ip(text).map(|ip| ip.to_string())
}

/// Dotted-quad IPv4 with decimal octets of one to three digits, leading zeros
/// allowed.
fn parse_ipv4_sloppy(text: &str) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut parts = text.split('.');
    for octet in &mut octets {
        let part = parts.next()?;
        if part.is_empty() || part.len() > 3 || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        *octet = part.parse().ok()?;
    }
    if parts.next().is_some() {
        return None;
    }
    Some(Ipv4Addr::from(octets))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_of_addresses() {
        let cases = [
            ("10.0.0.1", Some(IpFamily::V4)),
            ("255.255.255.255", Some(IpFamily::V4)),
            ("010.000.000.001", Some(IpFamily::V4)),
            ("fd00:10:244:1::5", Some(IpFamily::V6)),
            ("1234::5678:0000:0000:9abc:def0", Some(IpFamily::V6)),
            ("::1", Some(IpFamily::V6)),
            ("::ffff:10.0.0.1", None),
            ("::ffff:a00:1", None),
            ("256.0.0.1", None),
            ("10.0.0", None),
            ("10.0.0.1.2", None),
            ("10.0.0.1 ", None),
            ("0x0a.0.0.1", None),
            ("1000.0.0.1", None),
            ("fe80::1%eth0", None),
            ("", None),
            ("pod-ip", None),
        ];
        for (ip, want) in cases {
            assert_eq!(IpFamily::of(ip), want, "{ip}");
        }
    }

    #[test]
    fn canonical_form_drops_leading_zeros_and_compresses_ipv6() {
        assert_eq!(canonical_ip("010.000.001.002").as_deref(), Some("10.0.1.2"));
        assert_eq!(
            canonical_ip("1234::5678:0000:0000:9abc:def0").as_deref(),
            Some("1234::5678:0:0:9abc:def0")
        );
        assert_eq!(canonical_ip("FD00:0:0:0:0:0:0:1").as_deref(), Some("fd00::1"));
        assert_eq!(canonical_ip("::ffff:1.2.3.4"), None);
    }

    #[test]
    fn upstream_is_ipv6_string_fallback() {
        assert_eq!(IpFamily::of_or_ipv4("fd00::10"), IpFamily::V6);
        assert_eq!(IpFamily::of_or_ipv4("10.96.0.10"), IpFamily::V4);
        assert_eq!(IpFamily::of_or_ipv4("None"), IpFamily::V4);
        assert_eq!(IpFamily::of_or_ipv4(""), IpFamily::V4);
    }

    #[test]
    fn api_names_round_trip() {
        for family in [IpFamily::V4, IpFamily::V6] {
            assert_eq!(IpFamily::from_api(family.as_api()), Some(family));
        }
        assert_eq!(IpFamily::from_api("FQDN"), None);
        assert_eq!(IpFamily::from_api("ipv4"), None);
    }
}
