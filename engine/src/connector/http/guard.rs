//! The outbound address policy (SSRF guard).
//!
//! Requests may only reach public addresses unless `allow_private` is set or the host is in
//! `allowed_hosts`. Host names are checked inside the client's DNS resolver
//! ([`GuardedResolver`]), so the addresses that were checked are exactly the ones connected
//! to: a second, different DNS answer (rebinding) cannot slip in between check and connect.
//! IP literals in URLs never reach a resolver, so [`AddressPolicy::check_url`] checks them
//! before each request (and each redirect hop).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::super::ConnectorError;

pub(super) const FORBIDDEN: &str = "http.forbidden_address";

#[derive(Debug, Clone, Default)]
pub(super) struct AddressPolicy {
    allow_private: bool,
    /// Lower-cased exact hosts, and suffixes (`.example.it`) from `*.example.it`.
    exact: Vec<String>,
    suffixes: Vec<String>,
}

impl AddressPolicy {
    pub(super) fn new(allow_private: bool, hosts: impl IntoIterator<Item = String>) -> Self {
        let mut policy = Self { allow_private, ..Self::default() };
        for host in hosts {
            let host = host.trim().trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
            match host.strip_prefix('*') {
                Some(suffix) if suffix.starts_with('.') => policy.suffixes.push(suffix.to_string()),
                _ if !host.is_empty() => policy.exact.push(host),
                _ => {}
            }
        }
        policy
    }

    pub(super) fn host_allowed(&self, host: &str) -> bool {
        let host = host.trim_start_matches('[').trim_end_matches(']').trim_end_matches('.').to_ascii_lowercase();
        self.allow_private || self.exact.contains(&host) || self.suffixes.iter().any(|s| host.ends_with(s.as_str()))
    }

    /// Refuses a URL whose host is a non-public IP literal (names are checked on resolution).
    pub(super) fn check_url(&self, url: &Url) -> Result<(), ConnectorError> {
        let Some(host) = url.host_str() else {
            return Err(ConnectorError::fatal("http.invalid_input", "the URL has no host"));
        };
        let Ok(ip) = host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() else {
            return Ok(());
        };
        if is_public(ip) || self.host_allowed(&ip.to_string()) {
            Ok(())
        } else {
            Err(ConnectorError::fatal(FORBIDDEN, format!("{ip} is not a public address; allow it with allow_private or allowed_hosts")))
        }
    }
}

/// Whether an address is on the public internet: not loopback, private (10/8, 172.16/12,
/// 192.168/16), shared (100.64/10), link-local (169.254/16, fe80::/10), unique-local
/// (fc00::/7), unspecified, "this network" (0/8), broadcast or multicast. IPv4-mapped IPv6
/// addresses are judged as the IPv4 address they carry.
pub(super) fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_multicast()
        || ip.is_broadcast()
        || a == 0
        || (a == 100 && (64..128).contains(&b)))
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local fc00::/7
        || (first & 0xffc0) == 0xfe80) // link local fe80::/10
}

/// The refusal raised inside the resolver; found again in the request error's sources.
#[derive(Debug)]
pub(super) struct ForbiddenAddress {
    pub host: String,
}

impl fmt::Display for ForbiddenAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} resolves only to non-public addresses; allow it with allow_private or allowed_hosts", self.host)
    }
}

impl std::error::Error for ForbiddenAddress {}

/// DNS resolution with the policy applied: non-public answers are dropped, and a host left
/// with no address is refused.
#[derive(Debug, Clone)]
pub(super) struct GuardedResolver(pub Arc<AddressPolicy>);

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.0.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let exempt = policy.host_allowed(&host);
            let usable: Vec<SocketAddr> = found.into_iter().filter(|a| exempt || is_public(a.ip())).collect();
            if usable.is_empty() {
                return Err(Box::new(ForbiddenAddress { host }) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(usable.into_iter()) as Addrs)
        })
    }
}

/// The [`ForbiddenAddress`] behind a request error, if that is what it was.
pub(super) fn forbidden_in<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a ForbiddenAddress> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(found) = e.downcast_ref::<ForbiddenAddress>() {
            return Some(found);
        }
        current = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    #[test]
    fn classifies_addresses() {
        for blocked in [
            "127.0.0.1",
            "10.0.0.1",
            "172.16.5.4",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "0.1.2.3",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fc00::1",
            "fd12:3456::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.1.2.3",
        ] {
            assert!(!is_public(ip(blocked)), "{blocked} must be refused");
        }
        for public in ["8.8.8.8", "172.32.0.1", "100.128.0.1", "151.101.1.1", "2a00:1450:4002::1", "::ffff:8.8.8.8"] {
            assert!(is_public(ip(public)), "{public} is public");
        }
    }

    #[test]
    fn allowed_hosts_match_exactly_or_by_suffix() {
        let policy = AddressPolicy::new(false, ["Intranet.Example.IT".to_string(), "*.svc.local".into(), "[::1]".into()]);
        assert!(policy.host_allowed("intranet.example.it"));
        assert!(policy.host_allowed("intranet.example.it."));
        assert!(policy.host_allowed("a.svc.local"));
        assert!(!policy.host_allowed("svc.local"));
        assert!(!policy.host_allowed("example.it"));
        assert!(policy.host_allowed("::1"));
        let url = |s: &str| Url::parse(s).expect("test url");
        assert!(policy.check_url(&url("http://[::1]:8080/")).is_ok());
        assert!(policy.check_url(&url("http://127.0.0.1/")).is_err());
        assert!(policy.check_url(&url("http://0x7f.1/")).is_err(), "URL parsing normalises odd IPv4 spellings");
        assert!(policy.check_url(&url("http://internal.example/")).is_ok(), "names are checked by the resolver");
    }
}
