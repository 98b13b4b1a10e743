//! The outbound address policy (SSRF guard).
//!
//! Requests may only reach public addresses, with three exemptions an operator configures:
//! `allow_private` (everything), `allowed_hosts` (whole hosts, by name, IP or `*.suffix`),
//! and the connector's `base_url`, which exempts **only its origin (scheme, host, port) and
//! its path prefix** — not the rest of the host: a base on `http://127.0.0.1:8081/inps`
//! does not open `http://127.0.0.1:8080/` (Pratica's own API) nor `http://127.0.0.1:8081/admin`.
//!
//! [`AddressPolicy::route`] decides, for every request and every redirect hop, how a URL
//! may be sent: [`Route::Trusted`] (inside the base prefix: sent by a client that resolves
//! the configured host as it is) or [`Route::Guarded`] (sent by the client whose resolver,
//! [`GuardedResolver`], drops non-public answers, so the addresses that were checked are
//! exactly the ones connected to: a second, different DNS answer cannot slip in between
//! check and connect). IP literals never reach a resolver, so `route` checks them itself.
//! Every spelling of an IP literal (`2130706433`, `0177.0.0.1`, `127.1`, `0x7f.1`) is
//! normalised by URL parsing to its dotted form before the check; IPv6 forms that carry an
//! IPv4 address (`[::127.0.0.1]`, `[::ffff:7f00:1]`, NAT64, 6to4) are judged as that IPv4
//! address.
//!
//! A path is inside the base prefix when, fully percent-decoded, its segments start with
//! the base's segments and none is `.` or `..`, and it has no backslash: `%2e%2e`, `%2f`
//! and double encodings cannot step out of the prefix on a server that decodes them.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::super::ConnectorError;

pub(super) const FORBIDDEN: &str = "http.forbidden_address";

/// How a request may be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// Inside an operator-configured prefix (the `base_url`): any address its host resolves to.
    Trusted,
    /// Anywhere else: public addresses only (unless `allow_private` or `allowed_hosts`).
    Guarded,
}

/// An origin and path prefix exempt from the address policy.
#[derive(Debug, Clone)]
struct Prefix {
    origin: Origin,
    /// The decoded path segments the request's path must start with.
    segments: Vec<String>,
}

/// Scheme, lower-cased host and port (the scheme's default when the URL has none).
type Origin = (String, String, Option<u16>);

fn origin_of(url: &Url) -> Option<Origin> {
    Some((url.scheme().to_string(), url.host_str()?.to_ascii_lowercase(), url.port_or_known_default()))
}

#[derive(Debug, Clone, Default)]
pub(super) struct AddressPolicy {
    allow_private: bool,
    /// Lower-cased exact hosts, and suffixes (`.example.it`) from `*.example.it`.
    exact: Vec<String>,
    suffixes: Vec<String>,
    prefixes: Vec<Prefix>,
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

    /// Exempts the origin and path prefix of `base` (the connector's `base_url`).
    pub(super) fn trust_prefix(mut self, base: &Url) -> Self {
        if let (Some(origin), Some(mut segments)) = (origin_of(base), decoded_segments(base.path())) {
            while segments.last().is_some_and(String::is_empty) {
                segments.pop();
            }
            self.prefixes.push(Prefix { origin, segments });
        }
        self
    }

    /// Whether `host` is exempt as a whole (`allow_private` or `allowed_hosts`).
    pub(super) fn host_allowed(&self, host: &str) -> bool {
        let host = host.trim_start_matches('[').trim_end_matches(']').trim_end_matches('.').to_ascii_lowercase();
        self.allow_private || self.exact.contains(&host) || self.suffixes.iter().any(|s| host.ends_with(s.as_str()))
    }

    /// Whether `url` is inside one of the trusted prefixes.
    fn trusted(&self, url: &Url) -> bool {
        if self.prefixes.is_empty() {
            return false;
        }
        let (Some(origin), Some(path)) = (origin_of(url), decoded_segments(url.path())) else { return false };
        self.prefixes.iter().any(|p| p.origin == origin && path.starts_with(&p.segments))
    }

    /// How `url` may be sent; refuses a URL whose host is a non-public IP literal outside the
    /// exemptions (names are checked by the guarded resolver).
    pub(super) fn route(&self, url: &Url) -> Result<Route, ConnectorError> {
        if self.trusted(url) {
            return Ok(Route::Trusted);
        }
        let Some(host) = url.host_str() else {
            return Err(ConnectorError::fatal("http.invalid_input", "the URL has no host"));
        };
        // URL parsing has already turned every IPv4 spelling into dotted decimal, and
        // bracketed IPv6 into its canonical form.
        let Ok(ip) = host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() else {
            return Ok(Route::Guarded);
        };
        if is_public(ip) || self.host_allowed(&ip.to_string()) {
            Ok(Route::Guarded)
        } else {
            Err(ConnectorError::fatal(FORBIDDEN, format!("{ip} is not a public address; allow it with allow_private or allowed_hosts")))
        }
    }
}

/// The path's segments after percent-decoding (repeatedly, so double encodings count), or
/// `None` when a segment is `.` or `..`, the path has a backslash or a NUL, or it is still
/// encoded after several rounds.
fn decoded_segments(path: &str) -> Option<Vec<String>> {
    let mut text = path.as_bytes().to_vec();
    let mut rounds = 0;
    while text.contains(&b'%') {
        let next = percent_decode(&text);
        if next == text {
            break;
        }
        rounds += 1;
        if rounds > 4 {
            return None;
        }
        text = next;
    }
    if text.iter().any(|b| *b == b'\\' || *b == 0) {
        return None;
    }
    let text = String::from_utf8_lossy(&text);
    let segments: Vec<String> = text.strip_prefix('/').unwrap_or(&text).split('/').map(String::from).collect();
    if segments.iter().any(|s| s == "." || s == "..") {
        return None;
    }
    Some(segments)
}

/// `%XX` sequences decoded (any other `%` is kept).
fn percent_decode(input: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] == b'%'
            && let (Some(h), Some(l)) = (input.get(i + 1).copied().and_then(hex), input.get(i + 2).copied().and_then(hex))
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(input[i]);
        i += 1;
    }
    out
}

/// Whether an address is on the public internet: not loopback, private (10/8, 172.16/12,
/// 192.168/16), shared (100.64/10, which has cloud metadata services too), link-local
/// (169.254/16 with the cloud metadata address, fe80::/10), unique-local (fc00::/7),
/// site-local (fec0::/10), unspecified, "this network" (0/8), IETF-reserved (192.0.0/24,
/// 240/4), documentation, benchmarking (198.18/15), broadcast or multicast. IPv6 addresses
/// that carry an IPv4 one — mapped (`::ffff:a.b.c.d`), compatible (`::a.b.c.d`), translated
/// (`::ffff:0:a.b.c.d`), NAT64 (`64:ff9b::/96`, `64:ff9b:1::/48`) and 6to4 (`2002::/16`) —
/// are judged as that IPv4 address; Teredo (`2001::/32`), whose inner address is hidden, is
/// refused.
pub(super) fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0
        || a >= 240
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 192 && b == 88 && c == 99)
        || (a == 198 && (b == 18 || b == 19)))
}

/// The IPv4 address an IPv6 address carries, for the forms that carry one.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let low = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    match s {
        // ::ffff:a.b.c.d (mapped)
        [0, 0, 0, 0, 0, 0xffff, _, _] => Some(low),
        // ::a.b.c.d (compatible), but not :: and ::1, which are IPv6's own
        [0, 0, 0, 0, 0, 0, _, _] if u32::from(low) > 1 => Some(low),
        // ::ffff:0:a.b.c.d (translated)
        [0, 0, 0, 0, 0xffff, 0, _, _] => Some(low),
        // 64:ff9b::a.b.c.d (NAT64 well-known) and 64:ff9b:1::/48 (local-use NAT64)
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(low),
        [0x64, 0xff9b, 1, ..] => Some(low),
        // 2002:AABB:CCDD::/48 (6to4)
        [0x2002, hi, lo, ..] => Some(Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8)),
        _ => None,
    }
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let [first, second, ..] = ip.segments();
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local fc00::/7
        || (first & 0xffc0) == 0xfe80 // link local fe80::/10
        || (first & 0xffc0) == 0xfec0 // site local fec0::/10 (deprecated, still routed inside sites)
        || (first == 0x2001 && second == 0) // Teredo 2001::/32
        || (first == 0x2001 && second == 0x0db8) // documentation 2001:db8::/32
        || (first == 0x0100 && ip.segments()[1..4] == [0, 0, 0])) // discard-only 100::/64
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

    fn url(s: &str) -> Url {
        Url::parse(s).expect("test url")
    }

    #[test]
    fn classifies_addresses() {
        for blocked in [
            "127.0.0.1",
            "127.255.255.254",
            "10.0.0.1",
            "172.16.5.4",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "169.254.170.2",
            "0.0.0.0",
            "0.1.2.3",
            "100.64.0.1",
            "100.100.100.200",
            "192.0.0.192",
            "192.0.2.1",
            "198.18.0.1",
            "203.0.113.9",
            "240.0.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fec0::1",
            "fc00::1",
            "fd12:3456::1",
            "fd00:ec2::254",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:7f00:1",
            "::ffff:10.1.2.3",
            "::127.0.0.1",
            "::7f00:1",
            "::169.254.169.254",
            "::ffff:0:127.0.0.1",
            "64:ff9b::127.0.0.1",
            "64:ff9b:1::a00:1",
            "2002:7f00:1::1",
            "2002:a9fe:a9fe::",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "2001:db8::1",
            "100::1",
        ] {
            assert!(!is_public(ip(blocked)), "{blocked} must be refused");
        }
        for public in
            ["8.8.8.8", "172.32.0.1", "100.128.0.1", "151.101.1.1", "2a00:1450:4002::1", "::ffff:8.8.8.8", "::8.8.8.8", "2002:808:808::1"]
        {
            assert!(is_public(ip(public)), "{public} is public");
        }
    }

    #[test]
    fn every_spelling_of_a_loopback_or_private_literal_is_refused() {
        let policy = AddressPolicy::new(false, Vec::new());
        for spelling in [
            "http://127.0.0.1/",
            "http://2130706433/",
            "http://0177.0.0.1/",
            "http://0x7f.1/",
            "http://0x7f000001/",
            "http://127.1/",
            "http://127.0.1/",
            "http://0/",
            "http://0.0.0.0:8080/",
            "http://[::]/",
            "http://[::1]/",
            "http://[::127.0.0.1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:7f00:1]/",
            "http://[0:0:0:0:0:ffff:127.0.0.1]/",
            "http://169.254.169.254/latest/meta-data/",
            "http://[::ffff:169.254.169.254]/",
            "http://[fd00:ec2::254]/",
            "http://[fc00::1]/",
            "http://[fe80::1]/",
            "http://10.0.0.1/",
            "http://0xa.0.0.1/",
            "http://167772161/",
            "http://192.168.0.1./",
        ] {
            let e = policy.route(&url(spelling)).expect_err(spelling);
            assert!(matches!(&e, ConnectorError::Fatal { code, .. } if code == FORBIDDEN), "{spelling}: {e:?}");
        }
        assert_eq!(policy.route(&url("http://8.8.8.8/")).ok(), Some(Route::Guarded));
        assert_eq!(policy.route(&url("http://internal.example/")).ok(), Some(Route::Guarded), "names are checked by the resolver");
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
        assert_eq!(policy.route(&url("http://[::1]:8080/")).ok(), Some(Route::Guarded));
        assert!(policy.route(&url("http://127.0.0.1/")).is_err());
    }

    #[test]
    fn the_base_url_exempts_its_origin_and_path_prefix_only() {
        let policy = AddressPolicy::new(false, Vec::new()).trust_prefix(&url("http://127.0.0.1:8081/inps/"));
        for inside in [
            "http://127.0.0.1:8081/inps",
            "http://127.0.0.1:8081/inps/",
            "http://127.0.0.1:8081/inps/contributions?x=1",
            "http://127.0.0.1:8081/inps/a/b%20c",
            "HTTP://127.0.0.1:8081/inps/a",
            "http://127.0.0.1:8081/inps/a/../b",
            "http://127.0.0.1:8081/x/../inps/a",
        ] {
            assert_eq!(policy.route(&url(inside)).ok(), Some(Route::Trusted), "{inside}");
        }
        for outside in [
            "http://127.0.0.1:8080/inps/contributions",
            "http://127.0.0.1/inps/",
            "https://127.0.0.1:8081/inps/",
            "http://127.0.0.2:8081/inps/",
            "http://127.0.0.1:8081/",
            "http://127.0.0.1:8081/admin",
            "http://127.0.0.1:8081/inpsx",
            "http://127.0.0.1:8081/inps/../admin",
            "http://127.0.0.1:8081/inps/%2e%2e/admin",
            "http://127.0.0.1:8081/inps/.%2E/admin",
            "http://127.0.0.1:8081/inps%2F..%2Fadmin",
            "http://127.0.0.1:8081/inps/%2e%2e%2fadmin",
            "http://127.0.0.1:8081/inps/%252e%252e/admin",
            "http://127.0.0.1:8081/inps/%25252e%25252e%25252fadmin",
            "http://127.0.0.1:8081/inps/..%5cadmin",
            "http://127.0.0.1:8081/inps\\..\\admin",
            "http://127.0.0.1:8081/inps/%00/x",
            "http://2130706433:8080/",
            "http://[::ffff:127.0.0.1]:8081/inps/",
        ] {
            let e = policy.route(&url(outside)).expect_err(outside);
            assert!(matches!(&e, ConnectorError::Fatal { code, .. } if code == FORBIDDEN), "{outside}: {e:?}");
        }
        // A base by name: its prefix is trusted; the rest of the host goes through the
        // guarded resolver (which refuses it if it resolves to a private address).
        let named = AddressPolicy::new(false, Vec::new()).trust_prefix(&url("http://localhost:8081/api"));
        assert_eq!(named.route(&url("http://LOCALHOST:8081/api/x")).ok(), Some(Route::Trusted));
        assert_eq!(named.route(&url("http://localhost:8080/api/x")).ok(), Some(Route::Guarded));
        assert_eq!(named.route(&url("http://localhost:8081/apix")).ok(), Some(Route::Guarded));
        assert!(!named.host_allowed("localhost"), "the base's host is not exempt as a whole");
        // A base at the root trusts the whole origin, never another port.
        let root = AddressPolicy::new(false, Vec::new()).trust_prefix(&url("http://10.1.2.3/"));
        assert_eq!(root.route(&url("http://10.1.2.3/anything")).ok(), Some(Route::Trusted));
        assert_eq!(root.route(&url("http://10.1.2.3:80/x")).ok(), Some(Route::Trusted), "the default port is the same origin");
        assert!(root.route(&url("http://10.1.2.3:8080/")).is_err());
    }

    #[test]
    fn percent_decoding_keeps_stray_percents() {
        assert_eq!(percent_decode(b"a%2Fb%zz%4"), b"a/b%zz%4");
        assert_eq!(decoded_segments("/a/%2e%2e"), None);
        assert_eq!(decoded_segments("/a/b%2Fc"), Some(vec!["a".to_string(), "b".into(), "c".into()]));
    }
}
