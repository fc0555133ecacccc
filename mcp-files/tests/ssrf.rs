//! `download_file` against SSRF, with a canary HTTP server on 127.0.0.1 that records every
//! connection (the oracle: a refused address never sees one). The allowlisted file server is
//! reachable only because the operator allowlist names exactly `127.0.0.1:<its port>`; the
//! canary on another port (or another loopback address) must stay unreachable, directly, by
//! redirect, by a name that resolves to it, or by DNS rebinding.
//!
//! Only loopback is ever connected to: payloads aimed elsewhere are checked at the guard level
//! (parse + resolve through the test resolver, no socket), so a bug cannot send traffic out.

mod common;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use common::{
    CANARY, FixedResolver, HttpServer, Lab, Reply, World, corpus, leaks_and_leftovers, outcome, payload, render,
};
use mcp_common::guard::GuardError;
use mcp_common::guard::url::UrlGuard;
use mcp_files::state::Files;
use serde_json::json;

const ISO_LEN: usize = 3 << 20;

struct Net {
    canary: HttpServer,
    files: HttpServer,
}

impl Net {
    async fn start() -> Self {
        let canary = HttpServer::canary().await;
        let routes = Arc::new(Mutex::new(BTreeMap::new()));
        let files = HttpServer::start(routes.clone()).await;
        let c = canary.port;
        let mut r = routes.lock().expect("lock");
        r.insert("/file.iso".into(), Reply::Ok(payload(ISO_LEN)));
        r.insert("/small.txt".into(), Reply::Ok(b"hello\n".to_vec()));
        r.insert("/redirect-canary".into(), Reply::Redirect(302, format!("http://127.0.0.1:{c}/stolen")));
        r.insert("/redirect-canary-307".into(), Reply::Redirect(307, format!("//127.0.0.1:{c}/")));
        r.insert("/redirect-canary-name".into(), Reply::Redirect(301, format!("http://evil.test:{c}/")));
        r.insert("/redirect-canary-v6".into(), Reply::Redirect(308, format!("http://[::ffff:127.0.0.1]:{c}/")));
        r.insert("/redirect-metadata".into(), Reply::Redirect(302, "http://169.254.169.254/latest/meta-data/".into()));
        r.insert("/redirect-file".into(), Reply::Redirect(302, "file:///etc/passwd".into()));
        r.insert("/redirect-self".into(), Reply::Redirect(302, "/small.txt".into()));
        for i in 0..7 {
            r.insert(format!("/hop{i}"), Reply::Redirect(302, format!("/hop{}", i + 1)));
        }
        r.insert("/short".into(), Reply::Short { promised: 1000, sent: b"only ten b".to_vec() });
        r.insert("/big".into(), Reply::Ok(payload(2 << 20)));
        r.insert("/big-unsized".into(), Reply::Unsized(payload(2 << 20)));
        r.insert("/gone".into(), Reply::Status(404));
        drop(r);
        Self { canary, files }
    }

    fn state(&self, lab: &Lab, extra_ports: &[u16], resolver: Arc<FixedResolver>) -> Files {
        let mut c = lab.config();
        c.download.allow = vec![format!("127.0.0.1:{}", self.files.port)];
        c.download.allowed_ports.extend_from_slice(extra_ports);
        c.limits.max_file_bytes = ISO_LEN as u64 + 1;
        Files::new(c).expect("state").with_resolver(resolver)
    }
}

fn download(url: String, lab: &Lab, name: &str) -> serde_json::Value {
    json!({"url": url, "dest_dir": lab.root.display().to_string(), "filename": name})
}

#[tokio::test]
async fn the_allowlisted_server_serves_verified_downloads_that_land_atomically() {
    let lab = Lab::new();
    let net = Net::start().await;
    let w = World::new(net.state(&lab, &[], Arc::new(FixedResolver::default())));
    let want = common::sha256_hex(&payload(ISO_LEN));
    let mut args = download(net.files.url("/file.iso"), &lab, "debian.iso");
    args["sha256"] = json!(want.to_uppercase());
    let out = w.call("download_file", args.clone()).await.expect("download");
    let s = out.structured.expect("structured");
    assert_eq!(
        (s["bytes"].as_u64(), s["sha256"].as_str(), s["verified"].as_bool()),
        (Some(ISO_LEN as u64), Some(want.as_str()), Some(true))
    );
    assert_eq!(std::fs::read(lab.root.join("debian.iso")).expect("written"), payload(ISO_LEN));
    assert!(!out.untrusted, "no redirect, nothing from outside in the result");

    assert_eq!(outcome(&w.call("download_file", args.clone()).await), "would_overwrite");
    let before = net.files.connections();
    args["overwrite"] = json!(true);
    w.call("download_file", args).await.expect("overwrite asked");
    assert_eq!(net.files.connections(), before + 1);

    let mut bad = download(net.files.url("/small.txt"), &lab, "small.txt");
    bad["sha256"] = json!("0".repeat(64));
    let r = w.call("download_file", bad).await;
    assert!(outcome(&r).contains("checksum mismatch"), "{}", outcome(&r));
    assert!(!lab.root.join("small.txt").exists());
    let derived = w.call("download_file", json!({"url": net.files.url("/small.txt"), "dest_dir": "sub"})).await;
    assert_eq!(outcome(&derived), "ok", "the name comes from the URL's last segment");
    assert_eq!(std::fs::read_to_string(lab.root.join("sub/small.txt")).expect("written"), "hello\n");
    assert_eq!(net.canary.connections(), 0);
}

/// Whether a payload may be handed to the real downloader here: only when it cannot connect
/// anywhere but loopback (its host is a loopback literal, a name, or it does not even parse).
fn loopback_only(raw: &str) -> bool {
    match url::Url::parse(raw) {
        Err(_) => true,
        Ok(u) => match u.host() {
            None | Some(url::Host::Domain(_)) => true,
            Some(url::Host::Ipv4(a)) => a.is_loopback() || a.is_unspecified(),
            Some(url::Host::Ipv6(a)) => {
                a.is_loopback() || a.is_unspecified() || a.to_ipv4_mapped().is_some_and(|v| v.is_loopback())
            }
        },
    }
}

#[tokio::test]
async fn every_ssrf_payload_is_refused_and_the_canary_never_sees_a_connection() {
    let lab = Lab::new();
    let net = Net::start().await;
    let payloads = corpus("ssrf.txt", &[("{CANARY}", net.canary.port.to_string())]);
    assert!(payloads.len() > 140, "the corpus is complete");
    // Once with the default ports, once with the canary's port allowed, so that the address
    // rules (not just the port rule) are what refuses the canary.
    for ports in [vec![], vec![net.canary.port]] {
        let resolver =
            Arc::new(FixedResolver { fallback: Some("127.0.0.1".parse().expect("ip")), ..Default::default() });
        let files = net.state(&lab, &ports, resolver.clone());
        let guard = files.urls.clone();
        let w = World::new(files);
        for (i, p) in payloads.iter().enumerate() {
            let verdict = match guard.parse(p) {
                Err(e) => Err(e),
                Ok(u) => guard.resolve(&u, resolver.as_ref()).await.map(|_| ()),
            };
            assert!(matches!(verdict, Err(GuardError::Refused(_))), "{p} was not refused by the guard: {verdict:?}");
            if loopback_only(p) {
                let r = w.call("download_file", download(p.clone(), &lab, &format!("f{i}"))).await;
                assert!(matches!(r, Err(mcp_common::tool::ToolError::Refused(_))), "{p}: {}", outcome(&r));
                assert!(!render(&r).contains(CANARY), "{p}");
            }
            if !ports.is_empty() && p.contains(&format!(":{}/", net.canary.port)) && p.starts_with("http") {
                let rule = match &verdict {
                    Err(GuardError::Refused(r)) => r.rule.clone(),
                    _ => String::new(),
                };
                assert_ne!(rule, "url_port", "{p}: with the port allowed, an address or URL rule must refuse it");
            }
        }
    }
    assert_eq!(net.canary.connections(), 0, "the canary saw {:?}", net.canary.requests());
    assert_eq!(net.files.connections(), 0, "no payload reached the allowlisted server either");
    let (leaks, temps) = leaks_and_leftovers(&lab.root);
    assert!(leaks.is_empty() && temps.is_empty(), "{leaks:?} {temps:?}");
}

/// Every spelling of `a.b.c.d` that WHATWG URL parsing accepts for an IPv4 host, and the IPv6
/// forms that carry it.
fn encodings(ip: [u8; 4]) -> Vec<String> {
    let [a, b, c, d] = ip;
    let n = u32::from_be_bytes(ip);
    let (hi, lo) = (n >> 16, n & 0xffff);
    let mut v = vec![
        format!("{a}.{b}.{c}.{d}"),
        format!("{n}"),
        format!("0x{n:x}"),
        format!("0X{n:08X}"),
        format!("0{n:o}"),
        format!("0x{a:x}.0x{b:x}.0x{c:x}.0x{d:x}"),
        format!("0{a:o}.0{b:o}.0{c:o}.0{d:o}"),
        format!("00{a:o}.000{b:o}.0{c:o}.0000{d:o}"),
        format!("{a}.{b}.{}", u32::from(c) * 256 + u32::from(d)),
        format!("{a}.{}", u32::from(b) * 65536 + u32::from(c) * 256 + u32::from(d)),
        format!("0x{a:x}.{b}.0{c:o}.{d}"),
        format!("{a}.0x{b:x}.{}", u32::from(c) * 256 + u32::from(d)),
        format!("{a}.{b}.{c}.{d}."),
        format!("[::ffff:{a}.{b}.{c}.{d}]"),
        format!("[::ffff:{hi:x}:{lo:x}]"),
        format!("[0:0:0:0:0:ffff:{a}.{b}.{c}.{d}]"),
        format!("[::ffff:0:{a}.{b}.{c}.{d}]"),
        format!("[64:ff9b::{a}.{b}.{c}.{d}]"),
        format!("[64:ff9b::{hi:x}:{lo:x}]"),
        format!("[2002:{hi:x}:{lo:x}::1]"),
    ];
    if n > 1 {
        v.push(format!("[::{a}.{b}.{c}.{d}]"));
    }
    v
}

#[tokio::test]
async fn every_composed_encoding_of_a_refused_address_is_refused_and_of_a_public_one_is_not() {
    let guard = UrlGuard::default();
    let none = FixedResolver::default();
    let mut checked = 0;
    for ip in [
        [127, 0, 0, 1],
        [169, 254, 169, 254],
        [10, 0, 0, 1],
        [192, 168, 1, 1],
        [100, 64, 0, 1],
        [172, 16, 5, 4],
        [0, 0, 0, 0],
    ] {
        for host in encodings(ip) {
            let url = format!("http://{host}/x");
            let verdict = match guard.parse(&url) {
                Err(e) => Err(e),
                Ok(u) => guard.resolve(&u, &none).await.map(|t| t.addrs),
            };
            assert!(matches!(verdict, Err(GuardError::Refused(_))), "{url} was let through: {verdict:?}");
            checked += 1;
        }
    }
    // The same spellings of a public address reach that address (so the encodings are real).
    // 6to4 and IPv4-compatible forms are IPv6 addresses of their own, so only the rest compare.
    for host in encodings([93, 184, 215, 14]) {
        if host.starts_with("[::") && !host.starts_with("[::ffff") {
            continue; // IPv4-compatible addresses are deprecated and refused whatever they carry
        }
        let u = guard.parse(&format!("http://{host}/x")).expect("parses");
        let t = guard.resolve(&u, &none).await.expect("public");
        let addr = t.addrs[0].ip();
        let v4 = match addr {
            IpAddr::V4(a) => Some(a),
            IpAddr::V6(a) => a.to_ipv4_mapped().or_else(|| {
                (a.segments()[..6] == [0x64, 0xff9b, 0, 0, 0, 0]).then(|| {
                    let o = a.octets();
                    std::net::Ipv4Addr::new(o[12], o[13], o[14], o[15])
                })
            }),
        };
        if !host.starts_with("[2002") && !host.starts_with("[::ffff:0:") {
            assert_eq!(v4, Some(std::net::Ipv4Addr::new(93, 184, 215, 14)), "{host} is {addr}");
        }
    }
    assert!(checked > 130, "{checked}");
}

#[tokio::test]
async fn redirects_are_followed_by_hand_and_every_hop_is_checked_again() {
    let lab = Lab::new();
    let net = Net::start().await;
    let resolver = Arc::new(FixedResolver::with(&[("evil.test", &["127.0.0.1"])]));
    // The canary's port is allowed, so only the address rules stand between a hop and it.
    let w = World::new(net.state(&lab, &[net.canary.port], resolver));
    for (path, rule) in [
        ("/redirect-canary", "ssrf_address"),
        ("/redirect-canary-307", "ssrf_address"),
        ("/redirect-canary-name", "ssrf_address"),
        ("/redirect-canary-v6", "ssrf_address"),
        ("/redirect-metadata", "ssrf_address"),
        ("/redirect-file", "url_scheme"),
        ("/hop0", "redirect_limit"),
    ] {
        let r = w.call("download_file", download(net.files.url(path), &lab, "x")).await;
        assert_eq!(outcome(&r), rule, "{path}");
    }
    let out = w.call("download_file", download(net.files.url("/redirect-self"), &lab, "via.txt")).await.expect("ok");
    assert!(out.untrusted && out.text.contains("After 1 redirect(s)"), "{}", out.text);
    assert_eq!(std::fs::read_to_string(lab.root.join("via.txt")).expect("written"), "hello\n");
    let hops = net.files.requests().iter().filter(|r| r.contains("/hop")).count();
    assert_eq!(hops, 6, "the sixth redirect is refused, not requested");
    assert_eq!(net.canary.connections(), 0, "the canary saw {:?}", net.canary.requests());
    assert!(!lab.root.join("x").exists());
}

#[tokio::test]
async fn names_are_resolved_once_checked_and_pinned_so_rebinding_cannot_swap_the_address() {
    let lab = Lab::new();
    let net = Net::start().await;
    // A second canary on another loopback address but the file server's port: where a client
    // that resolved the name again would end up.
    let Ok(rebound) = tokio::net::TcpListener::bind(("127.0.0.2", net.files.port)).await else {
        eprintln!("SKIP rebinding check: 127.0.0.2:{} is taken", net.files.port);
        return;
    };
    let stolen = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = stolen.clone();
    let task = tokio::spawn(async move {
        while rebound.accept().await.is_ok() {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    });
    let resolver = Arc::new(FixedResolver::with(&[
        ("rebind.test", &["127.0.0.1"]),
        ("rebind.test", &["127.0.0.2"]),
        ("mixed.test", &["127.0.0.1", "10.0.0.1"]),
        ("evil.test", &["127.0.0.1"]),
    ]));
    let w = World::new(net.state(&lab, &[net.canary.port], resolver.clone()));
    let port = net.files.port;
    w.call("download_file", download(format!("http://rebind.test:{port}/small.txt"), &lab, "r.txt"))
        .await
        .expect("pinned");
    assert_eq!(std::fs::read_to_string(lab.root.join("r.txt")).expect("written"), "hello\n");
    assert_eq!(stolen.load(std::sync::atomic::Ordering::SeqCst), 0, "the second DNS answer was never used");
    assert_eq!(resolver.lookups.lock().expect("lock").len(), 1, "one lookup, by the guard");
    let r = w.call("download_file", download(format!("http://rebind.test:{port}/small.txt"), &lab, "r2.txt")).await;
    assert_eq!(outcome(&r), "ssrf_address", "the rebound answer is checked, and refused");
    let r = w.call("download_file", download(format!("http://mixed.test:{port}/small.txt"), &lab, "m.txt")).await;
    assert_eq!(outcome(&r), "ssrf_address", "one bad address among good ones refuses the name");
    let canary = net.canary.port;
    let r = w.call("download_file", download(format!("http://evil.test:{canary}/"), &lab, "e.txt")).await;
    assert_eq!(outcome(&r), "ssrf_address");
    let r = w.call("download_file", download(format!("http://nxdomain.test:{port}/x"), &lab, "n.txt")).await;
    assert!(outcome(&r).starts_with("failed: cannot resolve"), "{}", outcome(&r));
    assert_eq!(net.canary.connections(), 0);
    assert_eq!(stolen.load(std::sync::atomic::Ordering::SeqCst), 0);
    task.abort();
}

#[tokio::test]
async fn short_oversized_and_failed_downloads_leave_nothing_behind() {
    let lab = Lab::new();
    let net = Net::start().await;
    let mut c_state = net.state(&lab, &[], Arc::new(FixedResolver::default()));
    c_state.limits.max_bytes = 1 << 20;
    let w = World::new(c_state);
    for (path, want) in
        [("/short", "failed:"), ("/big", "max_file_size"), ("/big-unsized", "max_file_size"), ("/gone", "failed: http")]
    {
        let r = w.call("download_file", download(net.files.url(path), &lab, "out.bin")).await;
        assert!(outcome(&r).starts_with(want), "{path}: {}", outcome(&r));
        assert!(!lab.root.join("out.bin").exists(), "{path}");
    }
    let (_, temps) = leaks_and_leftovers(&lab.root);
    assert!(temps.is_empty(), "{temps:?}");
    // Destination rules cost no connection.
    let before = net.files.connections();
    for (dest, rule) in [
        ("../outside", "path_traversal"),
        (lab.ro.display().to_string().as_str(), "read_only_root"),
        ("link", "path_escape"),
    ] {
        let r = w
            .call("download_file", json!({"url": net.files.url("/small.txt"), "dest_dir": dest, "filename": "x"}))
            .await;
        assert_eq!(outcome(&r), rule, "{dest}");
    }
    std::fs::write(lab.root.join("exists.txt"), "mine").expect("write");
    let r = w.call("download_file", download(net.files.url("/small.txt"), &lab, "exists.txt")).await;
    assert_eq!(outcome(&r), "would_overwrite");
    let r = w.call("download_file", download(net.files.url("/small.txt"), &lab, "../x")).await;
    assert_eq!(outcome(&r), "path_traversal");
    assert_eq!(net.files.connections(), before, "refused destinations never connected");
    assert_eq!(std::fs::read_to_string(lab.root.join("exists.txt")).expect("kept"), "mine");
}
