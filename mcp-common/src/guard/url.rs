//! URLs a caller asks a server to fetch, checked against server-side request forgery (SSRF).
//!
//! - URLs are parsed with the WHATWG-conformant `url` crate, the way browsers do, so every odd
//!   spelling of an address (`http://2130706433/`, `http://0x7f.1/`, `http://①②⑦.0.0.1/`,
//!   `http://%31%32%37.0.0.1/`) is reduced to the one address it really means before any check.
//! - Only `http` and `https`, no credentials in the URL, ports 80/443 unless configured.
//! - The host is resolved here, through an injectable [`Resolver`], and the request is refused
//!   if *any* address is loopback, private, link-local, metadata, … (see [`super::ip`]). The
//!   caller must then connect only to the returned, checked addresses (pin them), so a second
//!   DNS answer (rebinding) can never swap in another address.
//! - Redirects are the caller's to follow, each hop checked again with [`UrlGuard::check_hop`]
//!   (at most [`MAX_REDIRECTS`]).
//! - An operator allowlist ([`AllowEntry`]) opens networks or hosts for a LAN mirror. It is empty
//!   by default, and never opens unspecified, multicast, broadcast or cloud metadata addresses.

use std::net::{IpAddr, SocketAddr};

use url::{Host, Url};

use super::GuardError;
use super::ip::{self, Forbidden};
use crate::policy::Refusal;
use crate::tool::BoxFuture;

/// The most redirects one download may follow.
pub const MAX_REDIRECTS: usize = 5;
/// Longest URL accepted.
pub const MAX_URL_LEN: usize = 8192;
/// Ports allowed when the configuration names none.
pub const DEFAULT_PORTS: [u16; 2] = [80, 443];

/// Names refused before any lookup: loopback by definition (RFC 6761) and the metadata
/// services' well-known names.
const REFUSED_NAMES: &[&str] =
    &["localhost", "localhost.localdomain", "metadata.google.internal", "metadata.goog", "metadata", "instance-data"];

/// Looks up a host's addresses. Production uses [`SystemResolver`]; tests inject their own.
pub trait Resolver: Send + Sync {
    fn lookup(&self, host: String, port: u16) -> BoxFuture<std::io::Result<Vec<IpAddr>>>;
}

/// The system's resolver, through `tokio::net::lookup_host`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

impl Resolver for SystemResolver {
    fn lookup(&self, host: String, port: u16) -> BoxFuture<std::io::Result<Vec<IpAddr>>> {
        Box::pin(async move { Ok(tokio::net::lookup_host((host.as_str(), port)).await?.map(|a| a.ip()).collect()) })
    }
}

/// One operator allowlist entry: an address, a network (`10.1.0.0/16`) or a host name, each
/// optionally with a port (`192.168.1.20:8080`, `[fd00::5]:8080`, `mirror.lan:8080`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowEntry {
    pub target: AllowTarget,
    /// `None`: the configured ports only; `Some(p)`: exactly this port (even if not configured).
    pub port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowTarget {
    Network { addr: IpAddr, prefix: u8 },
    Host(String),
}

impl AllowEntry {
    pub fn parse(spec: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("download allowlist entry '{spec}': {why}");
        let s = spec.trim();
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let (h, after) = rest.split_once(']').ok_or_else(|| bad("unclosed '['"))?;
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':').and_then(|p| p.parse().ok()).ok_or_else(|| bad("bad port"))?),
            };
            (h, port)
        } else if s.matches(':').count() == 1 {
            let (h, p) = s.split_once(':').ok_or_else(|| bad("bad port"))?;
            (h, Some(p.parse().map_err(|_| bad("bad port"))?))
        } else {
            (s, None)
        };
        if port == Some(0) {
            return Err(bad("port 0"));
        }
        let (addr_part, prefix) = match host.split_once('/') {
            Some((a, p)) => (a, Some(p.parse::<u8>().map_err(|_| bad("bad prefix length"))?)),
            None => (host, None),
        };
        if let Ok(addr) = addr_part.parse::<IpAddr>() {
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let prefix = prefix.unwrap_or(max);
            if prefix > max {
                return Err(bad("prefix length too long"));
            }
            return Ok(Self { target: AllowTarget::Network { addr, prefix }, port });
        }
        let name = normalize_name(host);
        let name_ok = prefix.is_none()
            && !name.is_empty()
            && name.len() <= 253
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
        if !name_ok {
            return Err(bad("not an address, network or host name"));
        }
        Ok(Self { target: AllowTarget::Host(name), port })
    }

    fn port_matches(&self, port: u16, configured: &[u16]) -> bool {
        match self.port {
            Some(p) => p == port,
            None => configured.contains(&port),
        }
    }
}

/// Lower-case, without a trailing dot (`Mirror.LAN.` and `mirror.lan` are one host).
fn normalize_name(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// The URL rules of one server.
#[derive(Debug, Clone)]
pub struct UrlGuard {
    pub ports: Vec<u16>,
    pub allow: Vec<AllowEntry>,
}

impl Default for UrlGuard {
    fn default() -> Self {
        Self { ports: DEFAULT_PORTS.to_vec(), allow: Vec::new() }
    }
}

/// A URL that passed every check, with the addresses to connect to (and only to).
#[derive(Debug, Clone)]
pub struct CheckedTarget {
    pub url: Url,
    pub host: String,
    pub port: u16,
    pub addrs: Vec<SocketAddr>,
}

fn refuse(rule: &str, message: String) -> GuardError {
    GuardError::Refused(Refusal::new(rule, message))
}

impl UrlGuard {
    pub fn new(ports: Vec<u16>, allow: &[String]) -> Result<Self, String> {
        let allow = allow.iter().map(|s| AllowEntry::parse(s)).collect::<Result<Vec<_>, _>>()?;
        let ports = if ports.is_empty() { DEFAULT_PORTS.to_vec() } else { ports };
        Ok(Self { ports, allow })
    }

    /// Parse and check a URL as given by a caller (no I/O).
    pub fn parse(&self, raw: &str) -> Result<Url, GuardError> {
        if raw.len() > MAX_URL_LEN {
            return Err(refuse("url_invalid", format!("the URL is longer than {MAX_URL_LEN} bytes")));
        }
        // The WHATWG parser silently drops tabs and newlines and trims control characters;
        // a URL that needs that is not one a person typed, so it is refused instead.
        if let Some(c) = raw.chars().find(|c| c.is_control() || c.is_whitespace()) {
            return Err(refuse(
                "url_invalid",
                format!("the URL contains the control or space character U+{:04X}; it is refused as given", c as u32),
            ));
        }
        let url = Url::parse(raw).map_err(|e| refuse("url_invalid", format!("'{raw}' is not a valid URL: {e}")))?;
        self.check_static(&url)?;
        Ok(url)
    }

    /// The checks that need no lookup: scheme, credentials, host names, port.
    fn check_static(&self, url: &Url) -> Result<(), GuardError> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(refuse(
                "url_scheme",
                format!("the scheme '{}:' is not allowed; only http and https URLs are downloaded", url.scheme()),
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(refuse(
                "url_credentials",
                "the URL carries a user name or password; credentials in URLs are refused (they are a classic way to \
                 disguise the real host, e.g. http://trusted.example@10.0.0.1/)"
                    .into(),
            ));
        }
        let host = url.host().ok_or_else(|| refuse("url_invalid", format!("'{url}' has no host")))?;
        if let Host::Domain(d) = &host {
            let name = normalize_name(d);
            if !self.host_allowed(&name) && (REFUSED_NAMES.contains(&name.as_str()) || name.ends_with(".localhost")) {
                return Err(refuse(
                    "ssrf_host",
                    format!("the host '{name}' names this machine or a cloud metadata service; it is never fetched"),
                ));
            }
        }
        let port = url.port_or_known_default().ok_or_else(|| refuse("url_invalid", format!("'{url}' has no port")))?;
        if !self.ports.contains(&port)
            && !self.allow.iter().any(|e| e.port == Some(port) && self.entry_host_match(e, url))
        {
            return Err(refuse(
                "url_port",
                format!(
                    "port {port} is not allowed for downloads (allowed: {}); an operator can add ports with download.allowed_ports",
                    self.ports.iter().map(u16::to_string).collect::<Vec<_>>().join(", ")
                ),
            ));
        }
        Ok(())
    }

    fn host_allowed(&self, name: &str) -> bool {
        self.allow.iter().any(|e| matches!(&e.target, AllowTarget::Host(h) if h == name))
    }

    /// Whether an entry could apply to the URL's host (a network entry applies to IP literals in
    /// it; whether a name's addresses fall into it is decided after resolution).
    fn entry_host_match(&self, e: &AllowEntry, url: &Url) -> bool {
        match (&e.target, url.host()) {
            (AllowTarget::Host(h), Some(Host::Domain(d))) => *h == normalize_name(d),
            (AllowTarget::Network { addr, prefix }, Some(Host::Ipv4(a))) => {
                ip::in_network(IpAddr::V4(a), *addr, *prefix)
            }
            (AllowTarget::Network { addr, prefix }, Some(Host::Ipv6(a))) => {
                ip::in_network(IpAddr::V6(a), *addr, *prefix)
            }
            (AllowTarget::Network { .. }, Some(Host::Domain(_))) => true,
            _ => false,
        }
    }

    /// Whether the operator allowlist opens `addr:port` reached through host `name`.
    fn allowlisted(&self, name: Option<&str>, addr: IpAddr, port: u16) -> bool {
        self.allow.iter().any(|e| {
            let target = match &e.target {
                AllowTarget::Network { addr: net, prefix } => ip::in_network(addr, *net, *prefix),
                AllowTarget::Host(h) => name == Some(h.as_str()),
            };
            target && e.port_matches(port, &self.ports)
        })
    }

    /// Judge one resolved address; `Err` names the rule and the reason.
    pub fn check_addr(&self, url: &Url, name: Option<&str>, addr: IpAddr, port: u16) -> Result<(), GuardError> {
        let Some(f) = ip::classify(addr) else { return Ok(()) };
        if !f.category.always_refused() && self.allowlisted(name, addr, port) {
            return Ok(());
        }
        Err(refuse("ssrf_address", forbidden_message(url, name, addr, port, f)))
    }

    /// Resolve and check the target of `url` (already parsed by [`UrlGuard::parse`] or taken
    /// from a redirect): every address must pass, and only those addresses may be used.
    pub async fn resolve(&self, url: &Url, resolver: &dyn Resolver) -> Result<CheckedTarget, GuardError> {
        self.check_static(url)?;
        let port = url.port_or_known_default().ok_or_else(|| refuse("url_invalid", format!("'{url}' has no port")))?;
        let (name, addrs) = match url.host() {
            Some(Host::Ipv4(a)) => (None, vec![IpAddr::V4(a)]),
            Some(Host::Ipv6(a)) => (None, vec![IpAddr::V6(a)]),
            Some(Host::Domain(d)) => {
                let name = normalize_name(d);
                let addrs = resolver
                    .lookup(name.clone(), port)
                    .await
                    .map_err(|e| GuardError::Failed(format!("cannot resolve '{name}': {e}")))?;
                if addrs.is_empty() {
                    return Err(GuardError::Failed(format!("'{name}' resolves to no address")));
                }
                (Some(name), addrs)
            }
            None => return Err(refuse("url_invalid", format!("'{url}' has no host"))),
        };
        // A port opened only by an allowlist entry is open only towards that entry's targets.
        let port_open = self.ports.contains(&port);
        for a in &addrs {
            self.check_addr(url, name.as_deref(), *a, port)?;
            if !port_open && !self.allowlisted(name.as_deref(), *a, port) {
                return Err(refuse(
                    "url_port",
                    format!("port {port} is allowed only for the allowlisted targets, and {a} is not one of them"),
                ));
            }
        }
        let host = url.host_str().unwrap_or_default().to_string();
        let mut unique: Vec<SocketAddr> = Vec::new();
        for a in addrs {
            let sa = SocketAddr::new(a, port);
            if !unique.contains(&sa) {
                unique.push(sa);
            }
        }
        Ok(CheckedTarget { url: url.clone(), host, port, addrs: unique })
    }

    /// Resolve a redirect's `Location` against the URL that answered it and check it like a new
    /// URL; `hop` counts redirects followed so far (1 for the first).
    pub fn check_hop(&self, from: &Url, location: &str, hop: usize) -> Result<Url, GuardError> {
        if hop > MAX_REDIRECTS {
            return Err(refuse(
                "redirect_limit",
                format!("more than {MAX_REDIRECTS} redirects; the download was stopped at {from}"),
            ));
        }
        if let Some(c) = location.chars().find(|c| c.is_control()) {
            return Err(refuse(
                "url_invalid",
                format!("the redirect from {from} contains the control character U+{:04X}", c as u32),
            ));
        }
        let next = from.join(location).map_err(|e| {
            refuse("url_invalid", format!("the redirect from {from} to '{location}' is not a URL: {e}"))
        })?;
        self.check_static(&next)?;
        Ok(next)
    }
}

fn forbidden_message(url: &Url, name: Option<&str>, addr: IpAddr, port: u16, f: Forbidden) -> String {
    let via = match name {
        Some(n) => format!("'{n}' resolves to {addr}"),
        None => format!("{addr}"),
    };
    let advice = if f.category.always_refused() {
        "it is never fetched, whatever the allowlist says"
    } else {
        "Jarvis downloads only from public addresses; an operator can allow a LAN mirror with download.allow"
    };
    let scheme = url.scheme();
    format!("{scheme} download from {via} (port {port}) refused: it is {f}; {advice}")
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(Vec<IpAddr>);

    impl Resolver for Fixed {
        fn lookup(&self, _host: String, _port: u16) -> BoxFuture<std::io::Result<Vec<IpAddr>>> {
            let v = self.0.clone();
            Box::pin(async move { Ok(v) })
        }
    }

    fn rule(r: Result<impl std::fmt::Debug, GuardError>) -> String {
        match r {
            Err(GuardError::Refused(r)) => r.rule,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn only_http_urls_without_credentials_on_allowed_ports_parse() {
        let g = UrlGuard::default();
        assert!(g.parse("https://deb.debian.org/debian/").is_ok());
        assert_eq!(rule(g.parse("file:///etc/passwd")), "url_scheme");
        assert_eq!(rule(g.parse("gopher://example.com:70/_x")), "url_scheme");
        assert_eq!(rule(g.parse("http://user:pw@example.com/")), "url_credentials");
        assert_eq!(rule(g.parse("http://example.com@127.0.0.1/")), "url_credentials");
        assert_eq!(rule(g.parse("http://example.com:8080/")), "url_port");
        assert_eq!(rule(g.parse("http://exa\nmple.com/")), "url_invalid");
        assert_eq!(rule(g.parse("http://localhost/")), "ssrf_host");
        assert_eq!(rule(g.parse("http://a.b.LOCALHOST./")), "ssrf_host");
        assert_eq!(rule(g.parse("http://metadata.google.internal/computeMetadata/v1/")), "ssrf_host");
        assert_eq!(rule(g.parse("not a url")), "url_invalid");
    }

    #[tokio::test]
    async fn every_resolved_address_must_pass_and_the_checked_ones_are_returned() {
        let g = UrlGuard::default();
        let url = g.parse("http://mirror.example/x.iso").expect("parses");
        let public = Fixed(vec!["93.184.215.14".parse().expect("ip")]);
        let t = g.resolve(&url, &public).await.expect("public");
        assert_eq!(t.addrs, vec!["93.184.215.14:80".parse::<SocketAddr>().expect("sa")]);
        let mixed = Fixed(vec!["93.184.215.14".parse().expect("ip"), "10.0.0.1".parse().expect("ip")]);
        assert_eq!(rule(g.resolve(&url, &mixed).await), "ssrf_address");
        let url = g.parse("http://2130706433/").expect("parses");
        assert_eq!(url.host_str(), Some("127.0.0.1"), "WHATWG reduces the number to the address");
        assert_eq!(rule(g.resolve(&url, &public).await), "ssrf_address");
    }

    #[tokio::test]
    async fn the_allowlist_opens_exactly_what_it_names_but_never_metadata() {
        let g = UrlGuard::new(vec![], &["127.0.0.1:8000".into(), "192.168.1.0/24".into(), "mirror.lan".into()])
            .expect("valid allowlist");
        let none = Fixed(vec![]);
        assert!(g.resolve(&g.parse("http://127.0.0.1:8000/a").expect("p"), &none).await.is_ok());
        assert_eq!(rule(g.parse("http://127.0.0.1:8001/a")), "url_port");
        assert_eq!(rule(g.resolve(&g.parse("http://127.0.0.1/a").expect("p"), &none).await), "ssrf_address");
        assert!(g.resolve(&g.parse("http://192.168.1.9/a").expect("p"), &none).await.is_ok());
        assert_eq!(rule(g.resolve(&g.parse("http://192.168.2.9/a").expect("p"), &none).await), "ssrf_address");
        let lan = Fixed(vec!["10.9.9.9".parse().expect("ip")]);
        assert!(g.resolve(&g.parse("http://MIRROR.lan./a").expect("p"), &lan).await.is_ok());
        let meta = Fixed(vec!["169.254.169.254".parse().expect("ip")]);
        let e = g.resolve(&g.parse("http://mirror.lan/a").expect("p"), &meta).await;
        assert_eq!(rule(e), "ssrf_address", "metadata stays refused for an allowlisted name");
    }

    #[test]
    fn redirects_are_joined_checked_and_counted() {
        let g = UrlGuard::default();
        let from = g.parse("https://example.com/a/b").expect("p");
        assert_eq!(g.check_hop(&from, "../c", 1).expect("relative").as_str(), "https://example.com/c");
        assert_eq!(rule(g.check_hop(&from, "file:///etc/passwd", 1)), "url_scheme");
        assert_eq!(rule(g.check_hop(&from, "http://example.com:1234/", 2)), "url_port");
        assert_eq!(rule(g.check_hop(&from, "/d", MAX_REDIRECTS + 1)), "redirect_limit");
    }

    #[test]
    fn allowlist_entries_parse_addresses_networks_and_names_with_ports() {
        let p = |s: &str| AllowEntry::parse(s).expect(s);
        assert_eq!(p("127.0.0.1:8080").port, Some(8080));
        assert_eq!(p("10.0.0.0/8").target, AllowTarget::Network { addr: "10.0.0.0".parse().expect("ip"), prefix: 8 });
        assert_eq!(p("[fd00::5]:8080").port, Some(8080));
        assert_eq!(p("fd00::/8").port, None);
        assert_eq!(p("Mirror.LAN:81").target, AllowTarget::Host("mirror.lan".into()));
        for bad in ["", "10.0.0.0/33", "a b", "host:0", "[::1", "x/8", "h:99999"] {
            assert!(AllowEntry::parse(bad).is_err(), "{bad:?}");
        }
    }
}
