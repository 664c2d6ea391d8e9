//! The dynamic half of the URL policy: which IP addresses an issuer fetch may connect to, checked inside
//! the HTTP client's DNS resolver so the address connected to is the address checked (no DNS-rebinding
//! window between a check and the connection).
//!
//! Parts: [`is_public`] (the classifier: only global unicast is public), [`GuardedResolver`] (a
//! `reqwest` resolver that refuses a name when any of its addresses is not public), [`ResolveError`].
//!
//! Must not: log or report the refused address itself (it would map an internal network for whoever
//! configures issuers); the message says only that the name resolves to a non-public address.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Why the guarded resolver gave no address for a name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// The name did not resolve (or resolved to nothing).
    #[error("{host} does not resolve")]
    Lookup {
        /// The host name.
        host: String,
    },
    /// The name resolves to at least one address that is not public.
    #[error("{host} resolves to a non-public address")]
    Refused {
        /// The host name.
        host: String,
    },
}

/// Whether `ip` is a public unicast address an issuer fetch may connect to.
///
/// IPv4: everything but "this network" 0/8, private 10/8, 172.16/12, 192.168/16, CGNAT 100.64/10,
/// loopback 127/8, link-local 169.254/16, IETF assignments 192.0.0/24, documentation 192.0.2/24,
/// 198.51.100/24, 203.0.113/24, 6to4 relay 192.88.99/24, benchmarking 198.18/15, multicast 224/4,
/// reserved 240/4 and broadcast. IPv6: only global unicast 2000::/3, minus IETF assignments 2001::/23
/// (Teredo, ORCHID, …), documentation 2001:db8::/32 and 3fff::/20; NAT64 64:ff9b::/96 and IPv4-mapped
/// `::ffff:a.b.c.d` addresses are judged by their IPv4 address; 6to4 2002::/16 by the embedded one.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    let refused = a == 0
        || a == 10
        || a == 127
        || (a == 100 && (64..128).contains(&b))
        || (a == 169 && b == 254)
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 168)
        || (a == 192 && b == 0 && c == 0)
        || (a == 192 && b == 0 && c == 2)
        || (a == 192 && b == 88 && c == 99)
        || (a == 198 && (b == 18 || b == 19))
        || (a == 198 && b == 51 && c == 100)
        || (a == 203 && b == 0 && c == 113)
        || a >= 224;
    !refused
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let segments = ip.segments();
    let [s0, s1, s2, s3, s4, s5, s6, s7] = segments;
    // NAT64 well-known prefix: the gateway connects to the embedded IPv4 address.
    if s0 == 0x64 && s1 == 0xff9b && s2 == 0 && s3 == 0 && s4 == 0 && s5 == 0 {
        return is_public_v4(embedded_v4(s6, s7));
    }
    // Outside global unicast 2000::/3: loopback, unspecified, IPv4-compatible, discard, unique-local
    // fc00::/7, link-local fe80::/10, site-local, multicast ff00::/8, NAT64 local-use 64:ff9b:1::/48, ….
    if s0 & 0xe000 != 0x2000 {
        return false;
    }
    // 6to4: the relay connects to the embedded IPv4 address.
    if s0 == 0x2002 {
        return is_public_v4(embedded_v4(s1, s2));
    }
    let ietf_assignments = s0 == 0x2001 && s1 < 0x0200;
    let documentation = (s0 == 0x2001 && s1 == 0x0db8) || (s0 == 0x3fff && s1 < 0x1000);
    !(ietf_assignments || documentation)
}

fn embedded_v4(high: u16, low: u16) -> Ipv4Addr {
    let [a, b] = high.to_be_bytes();
    let [c, d] = low.to_be_bytes();
    Ipv4Addr::new(a, b, c, d)
}

/// A `reqwest` DNS resolver that answers only with public addresses: a name is refused as a whole
/// when any of its addresses is not public (a mixed answer is how rebinding attacks hide).
#[derive(Debug, Clone, Copy, Default)]
pub struct GuardedResolver;

impl GuardedResolver {
    /// Resolves `host` (port 0: the client puts the URL's port in) and checks every address.
    pub async fn lookup(host: &str) -> Result<Vec<SocketAddr>, ResolveError> {
        let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host, 0))
            .await
            .map_err(|_| ResolveError::Lookup { host: host.to_owned() })?
            .collect();
        check_addresses(host, addresses)
    }
}

/// Refuses an empty answer or one with any non-public address.
fn check_addresses(host: &str, addresses: Vec<SocketAddr>) -> Result<Vec<SocketAddr>, ResolveError> {
    if addresses.is_empty() {
        return Err(ResolveError::Lookup { host: host.to_owned() });
    }
    if addresses.iter().any(|address| !is_public(address.ip())) {
        return Err(ResolveError::Refused { host: host.to_owned() });
    }
    Ok(addresses)
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            match GuardedResolver::lookup(&host).await {
                Ok(addresses) => Ok(Box::new(addresses.into_iter()) as reqwest::dns::Addrs),
                Err(err) => Err(Box::new(err) as Box<dyn std::error::Error + Send + Sync>),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    fn check(ip: &str, public: bool) {
        let parsed: IpAddr = ip.parse().unwrap();
        assert_eq!(is_public(parsed), public, "{ip}");
    }

    #[test]
    fn only_global_unicast_is_public() {
        for ip in [
            "0.0.0.0",
            "0.1.2.3",
            "10.0.0.1",
            "10.255.255.255",
            "100.64.0.1",
            "100.127.255.254",
            "127.0.0.1",
            "127.9.9.9",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.88.99.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::127.0.0.1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::7f00:1",
            "64:ff9b::a00:1",
            "64:ff9b:1::1",
            "100::1",
            "2001::1",
            "2001:db8::1",
            "2002:7f00:1::1",
            "2002:c0a8:101::1",
            "3fff::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "ff0e::1",
        ] {
            check(ip, false);
        }
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "100.63.255.255",
            "100.128.0.1",
            "172.15.255.255",
            "172.32.0.1",
            "192.167.1.1",
            "193.0.2.1",
            "223.255.255.254",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
            "2606:4700:4700::1111",
            "2a00:1450:4001::1",
            "2620:fe::fe",
        ] {
            check(ip, true);
        }
    }

    #[test]
    fn a_mixed_answer_is_refused_as_a_whole() {
        let public: SocketAddr = "8.8.8.8:0".parse().unwrap();
        let private: SocketAddr = "10.0.0.1:0".parse().unwrap();
        assert_eq!(
            check_addresses("mixed.example", vec![public, private]),
            Err(ResolveError::Refused {
                host: "mixed.example".to_owned()
            })
        );
        assert_eq!(check_addresses("ok.example", vec![public]), Ok(vec![public]));
        assert!(matches!(
            check_addresses("none.example", vec![]),
            Err(ResolveError::Lookup { .. })
        ));
    }

    #[tokio::test]
    async fn a_name_resolving_to_loopback_is_refused() {
        assert_eq!(
            GuardedResolver::lookup("localhost").await,
            Err(ResolveError::Refused {
                host: "localhost".to_owned()
            })
        );
    }
}
