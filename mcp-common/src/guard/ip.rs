//! Which IP addresses a server-side request may never reach (SSRF), and why.
//!
//! The tables follow the IANA special-purpose registries (IPv4: RFC 6890 and successors; IPv6:
//! RFC 6890, 8215, 9637). IPv6 forms that carry an IPv4 address (IPv4-mapped, SIIT-translated,
//! NAT64 well-known prefix, 6to4) are judged by the address they carry, so `::ffff:127.0.0.1`
//! or `64:ff9b::a9fe:a9fe` cannot smuggle loopback or metadata past the check. Everything in
//! IPv6 outside global unicast `2000::/3` is reserved, which catches exotic forms by default.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why an address is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    Unspecified,
    Loopback,
    Private,
    LinkLocal,
    SharedCgnat,
    Multicast,
    Broadcast,
    Reserved,
    Documentation,
    Benchmarking,
    CloudMetadata,
    UniqueLocal,
    SiteLocal,
    Teredo,
    Nat64LocalUse,
    Ipv4Compatible,
}

impl Category {
    pub fn describe(self) -> &'static str {
        match self {
            Category::Unspecified => "an unspecified ('this host') address",
            Category::Loopback => "a loopback address",
            Category::Private => "a private (RFC 1918) address",
            Category::LinkLocal => "a link-local address",
            Category::SharedCgnat => "a carrier-grade NAT (100.64.0.0/10) address",
            Category::Multicast => "a multicast address",
            Category::Broadcast => "the broadcast address",
            Category::Reserved => "a reserved address",
            Category::Documentation => "a documentation address",
            Category::Benchmarking => "a benchmarking (198.18.0.0/15) address",
            Category::CloudMetadata => "a cloud metadata service address",
            Category::UniqueLocal => "a unique-local IPv6 address",
            Category::SiteLocal => "a site-local IPv6 address",
            Category::Teredo => "a Teredo tunnel address",
            Category::Nat64LocalUse => "a local-use NAT64 address",
            Category::Ipv4Compatible => "a deprecated IPv4-compatible IPv6 address",
        }
    }

    /// Categories no operator allowlist can open: nothing legitimate is ever served from them
    /// (and the metadata services hand out cloud credentials).
    pub fn always_refused(self) -> bool {
        matches!(self, Category::Unspecified | Category::Multicast | Category::Broadcast | Category::CloudMetadata)
    }
}

/// A refused address: its category, and the IPv4 address it carried if it was an IPv6 form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forbidden {
    pub category: Category,
    pub embedded: Option<Ipv4Addr>,
}

impl std::fmt::Display for Forbidden {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.embedded {
            Some(v4) => write!(f, "an IPv6 form of {v4}, which is {}", self.category.describe()),
            None => f.write_str(self.category.describe()),
        }
    }
}

/// Cloud instance metadata endpoints (credentials live there): AWS/GCP/Azure/OpenStack
/// 169.254.169.254, AWS ECS 169.254.170.2, AWS DNS 169.254.169.253, Azure wireserver
/// 168.63.129.16 (a public address!), Alibaba 100.100.100.200, Oracle 192.0.0.192.
const METADATA_V4: [Ipv4Addr; 6] = [
    Ipv4Addr::new(169, 254, 169, 254),
    Ipv4Addr::new(169, 254, 170, 2),
    Ipv4Addr::new(169, 254, 169, 253),
    Ipv4Addr::new(168, 63, 129, 16),
    Ipv4Addr::new(100, 100, 100, 200),
    Ipv4Addr::new(192, 0, 0, 192),
];
/// AWS's IPv6 metadata endpoint (also unique-local, but named so the message says so).
const METADATA_V6: [Ipv6Addr; 1] = [Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254)];

const V4_TABLE: &[([u8; 4], u8, Category)] = &[
    ([0, 0, 0, 0], 8, Category::Unspecified),
    ([10, 0, 0, 0], 8, Category::Private),
    ([100, 64, 0, 0], 10, Category::SharedCgnat),
    ([127, 0, 0, 0], 8, Category::Loopback),
    ([169, 254, 0, 0], 16, Category::LinkLocal),
    ([172, 16, 0, 0], 12, Category::Private),
    ([192, 0, 0, 0], 24, Category::Reserved),
    ([192, 0, 2, 0], 24, Category::Documentation),
    ([192, 31, 196, 0], 24, Category::Reserved),
    ([192, 52, 193, 0], 24, Category::Reserved),
    ([192, 88, 99, 0], 24, Category::Reserved),
    ([192, 168, 0, 0], 16, Category::Private),
    ([192, 175, 48, 0], 24, Category::Reserved),
    ([198, 18, 0, 0], 15, Category::Benchmarking),
    ([198, 51, 100, 0], 24, Category::Documentation),
    ([203, 0, 113, 0], 24, Category::Documentation),
    ([224, 0, 0, 0], 4, Category::Multicast),
    ([240, 0, 0, 0], 4, Category::Reserved),
];

fn in_v4(addr: Ipv4Addr, net: [u8; 4], prefix: u8) -> bool {
    let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(prefix)) };
    u32::from(addr) & mask == u32::from(Ipv4Addr::from(net)) & mask
}

fn in_v6(addr: Ipv6Addr, net: Ipv6Addr, prefix: u8) -> bool {
    let mask = if prefix == 0 { 0 } else { u128::MAX << (128 - u32::from(prefix)) };
    u128::from(addr) & mask == u128::from(net) & mask
}

/// Whether `addr` lies in `net/prefix` (both of the same family).
pub fn in_network(addr: IpAddr, net: IpAddr, prefix: u8) -> bool {
    match (addr, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => prefix <= 32 && in_v4(a, n.octets(), prefix),
        (IpAddr::V6(a), IpAddr::V6(n)) => prefix <= 128 && in_v6(a, n, prefix),
        _ => false,
    }
}

/// Why an IPv4 address is refused, or `None` if it is a public address.
pub fn classify_v4(addr: Ipv4Addr) -> Option<Category> {
    if METADATA_V4.contains(&addr) {
        return Some(Category::CloudMetadata);
    }
    if addr == Ipv4Addr::BROADCAST {
        return Some(Category::Broadcast);
    }
    V4_TABLE.iter().find(|(net, prefix, _)| in_v4(addr, *net, *prefix)).map(|(_, _, c)| *c)
}

fn v4_from(bits: u128) -> Ipv4Addr {
    Ipv4Addr::from((bits & 0xffff_ffff) as u32)
}

/// The IPv4 address an IPv6 address carries, for the forms that route to it.
fn embedded_v4(addr: Ipv6Addr) -> Option<Ipv4Addr> {
    let bits = u128::from(addr);
    let seg = addr.segments();
    // ::ffff:a.b.c.d (mapped) and ::ffff:0:a.b.c.d (SIIT translated).
    if bits >> 32 == 0xffff || bits >> 32 == 0xffff_0000 {
        return Some(v4_from(bits));
    }
    // 64:ff9b::a.b.c.d, the NAT64 well-known prefix.
    if in_v6(addr, Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), 96) {
        return Some(v4_from(bits));
    }
    // 2002:AABB:CCDD::/48, 6to4 carries a.b.c.d in bits 16..48.
    if seg[0] == 0x2002 {
        return Some(v4_from(bits >> 80));
    }
    None
}

fn classify_v6_only(addr: Ipv6Addr) -> Option<Category> {
    if METADATA_V6.contains(&addr) {
        return Some(Category::CloudMetadata);
    }
    if addr.is_unspecified() {
        return Some(Category::Unspecified);
    }
    if addr.is_loopback() {
        return Some(Category::Loopback);
    }
    let table: &[(Ipv6Addr, u8, Category)] = &[
        (Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 0), 96, Category::Ipv4Compatible),
        (Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0), 48, Category::Nat64LocalUse),
        (Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0), 64, Category::Reserved),
        (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 32, Category::Teredo),
        (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 23, Category::Reserved),
        (Ipv6Addr::new(0x2001, 0x0db8, 0, 0, 0, 0, 0, 0), 32, Category::Documentation),
        (Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0), 20, Category::Documentation),
        (Ipv6Addr::new(0x5f00, 0, 0, 0, 0, 0, 0, 0), 16, Category::Reserved),
        (Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7, Category::UniqueLocal),
        (Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10, Category::LinkLocal),
        (Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0), 10, Category::SiteLocal),
        (Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8, Category::Multicast),
    ];
    if let Some((_, _, c)) = table.iter().find(|(net, prefix, _)| in_v6(addr, *net, *prefix)) {
        return Some(*c);
    }
    // Only global unicast is routable on the internet; the rest of the space is reserved.
    if !in_v6(addr, Ipv6Addr::new(0x2000, 0, 0, 0, 0, 0, 0, 0), 3) {
        return Some(Category::Reserved);
    }
    None
}

/// Why `addr` is refused as a download target, or `None` if it is a public address.
pub fn classify(addr: IpAddr) -> Option<Forbidden> {
    match addr {
        IpAddr::V4(v4) => classify_v4(v4).map(|category| Forbidden { category, embedded: None }),
        IpAddr::V6(v6) => {
            if let Some(v4) = embedded_v4(v6) {
                // A public IPv4 behind NAT64 or 6to4 is as public as the IPv4 itself.
                return classify_v4(v4).map(|category| Forbidden { category, embedded: Some(v4) });
            }
            classify_v6_only(v6).map(|category| Forbidden { category, embedded: None })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cat(s: &str) -> Option<Category> {
        classify(s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))).map(|f| f.category)
    }

    #[test]
    fn special_purpose_ipv4_ranges_are_refused_and_public_ones_are_not() {
        for (a, c) in [
            ("0.0.0.0", Category::Unspecified),
            ("0.1.2.3", Category::Unspecified),
            ("127.0.0.1", Category::Loopback),
            ("127.255.255.254", Category::Loopback),
            ("10.1.2.3", Category::Private),
            ("172.31.255.255", Category::Private),
            ("192.168.1.1", Category::Private),
            ("169.254.1.1", Category::LinkLocal),
            ("169.254.169.254", Category::CloudMetadata),
            ("168.63.129.16", Category::CloudMetadata),
            ("100.100.100.200", Category::CloudMetadata),
            ("100.64.0.1", Category::SharedCgnat),
            ("100.127.255.255", Category::SharedCgnat),
            ("224.0.0.1", Category::Multicast),
            ("239.255.255.250", Category::Multicast),
            ("240.0.0.1", Category::Reserved),
            ("255.255.255.255", Category::Broadcast),
            ("192.0.0.8", Category::Reserved),
            ("192.0.2.1", Category::Documentation),
            ("198.51.100.7", Category::Documentation),
            ("203.0.113.9", Category::Documentation),
            ("198.18.0.1", Category::Benchmarking),
            ("198.19.255.255", Category::Benchmarking),
            ("192.88.99.1", Category::Reserved),
        ] {
            assert_eq!(cat(a), Some(c), "{a}");
        }
        for a in ["1.1.1.1", "8.8.8.8", "172.32.0.1", "100.128.0.1", "198.20.0.1", "151.101.1.1", "223.255.255.255"] {
            assert_eq!(cat(a), None, "{a}");
        }
    }

    #[test]
    fn ipv6_forms_carrying_refused_ipv4_addresses_are_refused() {
        for a in [
            "::ffff:127.0.0.1",
            "::ffff:7f00:1",
            "0:0:0:0:0:ffff:127.0.0.1",
            "::ffff:0:127.0.0.1",
            "64:ff9b::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
            "2002:a9fe:a9fe::1",
            "::ffff:10.0.0.1",
        ] {
            let f = classify(a.parse().expect("ipv6")).unwrap_or_else(|| panic!("{a} must be refused"));
            assert!(f.embedded.is_some(), "{a}: {f:?}");
        }
        assert_eq!(cat("::ffff:169.254.169.254"), Some(Category::CloudMetadata));
        assert_eq!(cat("::127.0.0.1"), Some(Category::Ipv4Compatible));
        assert_eq!(cat("::ffff:8.8.8.8"), None, "a mapped public address is public");
        assert_eq!(cat("64:ff9b::808:808"), None, "NAT64 of a public address is public");
    }

    #[test]
    fn special_purpose_ipv6_ranges_are_refused_and_global_unicast_is_not() {
        for (a, c) in [
            ("::", Category::Unspecified),
            ("::1", Category::Loopback),
            ("fe80::1", Category::LinkLocal),
            ("fc00::1", Category::UniqueLocal),
            ("fd12:3456::1", Category::UniqueLocal),
            ("fd00:ec2::254", Category::CloudMetadata),
            ("fec0::1", Category::SiteLocal),
            ("ff02::1", Category::Multicast),
            ("2001:db8::1", Category::Documentation),
            ("3fff::1", Category::Documentation),
            ("2001::1", Category::Teredo),
            ("2001:2::1", Category::Reserved),
            ("100::1", Category::Reserved),
            ("64:ff9b:1::1", Category::Nat64LocalUse),
            ("4000::1", Category::Reserved),
            ("::2", Category::Ipv4Compatible),
        ] {
            assert_eq!(cat(a), Some(c), "{a}");
        }
        for a in ["2606:4700:4700::1111", "2a00:1450:4001::200e", "2620:fe::fe"] {
            assert_eq!(cat(a), None, "{a}");
        }
    }

    #[test]
    fn networks_match_component_wise_on_bits() {
        let a: IpAddr = "192.168.1.77".parse().expect("ip");
        assert!(in_network(a, "192.168.1.0".parse().expect("ip"), 24));
        assert!(!in_network(a, "192.168.2.0".parse().expect("ip"), 24));
        assert!(in_network(a, "0.0.0.0".parse().expect("ip"), 0));
        assert!(!in_network(a, "::".parse().expect("ip"), 0), "families never mix");
    }
}
