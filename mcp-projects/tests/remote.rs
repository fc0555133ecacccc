//! Projects on nodes over SSH/SFTP, against a real OpenSSH server on a loopback port
//! (`common/sshd.rs`, copied from mcp-files): the registry file read from a registry host and
//! cached, served stale with a warning when the host is down; discovery on the node; reads,
//! searches and refusals under the same guards as locally; unknown host keys refused.

mod common;
use test_support::sshd;

use common::{CANARY, GITHUB_TOKEN, Lab, World, outcome, render, write};
use mcp_projects::config::{Config, NodeConfig};
use serde_json::json;
use sshd::{Keys, Sshd};

/// The lab's projects root served by `pve1` (over SFTP), with a registry file on it.
fn config(lab: &Lab, keys: &Keys, node: &Sshd, known: Vec<String>) -> Config {
    let mut c = Config::default();
    c.registry.cache_secs = 0;
    c.ssh.known_hosts = Some(keys.known_hosts("known_hosts", &known));
    c.ssh.key_file = Some(keys.client_key.clone());
    c.ssh.user = keys.user.clone();
    c.ssh.timeout_secs = 5;
    c.nodes.insert("pve1".into(), NodeConfig { address: node.address(), roots: vec![lab.root.clone()] });
    let reg = lab.base.join("registry/projects.json");
    write(
        &reg,
        &format!(
            r#"{{"projects": [{{"name": "alpha-remote", "path": "{}", "description": "alpha on pve1"}}]}}"#,
            lab.alpha.display()
        ),
    );
    c.registry.remote_node = Some("pve1".into());
    c.registry.remote_path = Some(reg);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_projects_are_read_and_searched_under_the_same_guards() {
    let lab = Lab::new();
    let keys = Keys::new();
    let pve1 = keys.sshd("pve1");
    let w = World::new(config(&lab, &keys, &pve1, vec![pve1.known_hosts_line()]));
    let r = w.call("list_projects", json!({})).await.expect("list");
    let s = r.structured.expect("structured");
    let names: Vec<&str> = s["projects"].as_array().into_iter().flatten().filter_map(|p| p["name"].as_str()).collect();
    assert_eq!(names, vec!["alpha-remote", "beta"], "{s}");
    assert_eq!(s["projects"][0]["node"], "pve1");
    assert_eq!(s["projects"][0]["source"], "remote_registry");
    assert_eq!(s["projects"][0]["stack"][0], "Rust");
    assert_eq!(s["projects"][1]["source"], "discovered");

    let read =
        w.call("read_project_file", json!({"project": "alpha-remote", "path": "src/lib.rs"})).await.expect("read");
    assert!(read.untrusted && read.text.contains("[REDACTED:github_token]") && !read.text.contains(GITHUB_TOKEN));
    for (path, rule) in [
        (".env", "secret_blocked"),
        ("notes.txt", "secret_blocked"),
        ("id_ed25519", "secret_blocked"),
        ("../beta/secret.txt", "path_traversal"),
        ("escape/passwd", "path_escape"),
        ("sibling/secret.txt", "path_escape"),
    ] {
        let r = w.call("read_project_file", json!({"project": "alpha-remote", "path": path})).await;
        assert_eq!(outcome(&r), rule, "{path}: {}", render(&r));
        assert!(!render(&r).contains(CANARY));
    }
    let st = w.call("project_structure", json!({"project": "alpha-remote"})).await.expect("structure");
    assert!(
        st.text.contains("node_modules/  [vendored or build folder]") && !st.text.contains("ignored.txt"),
        "{}",
        st.text
    );
    let s = w.call("search_project", json!({"project": "alpha-remote", "pattern": "TODO"})).await.expect("search");
    assert!(s.text.contains("alpha-remote:src/main.rs:3: // TODO: configurable port"), "{}", s.text);
    let a = w.call("analyze_project", json!({"project": "alpha-remote"})).await.expect("analyze");
    assert!(a.text.contains("## Cargo.toml") && !a.text.contains(CANARY));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_host_that_is_down_is_served_from_the_stale_cache_with_a_warning() {
    let lab = Lab::new();
    let keys = Keys::new();
    let mut pve1 = Some(keys.sshd("pve1"));
    let node = pve1.as_ref().expect("sshd");
    let w = World::new(config(&lab, &keys, node, vec![node.known_hosts_line()]));
    let first = w.call("list_projects", json!({})).await.expect("list");
    assert!(first.text.contains("alpha-remote") && !first.text.contains("warning:"), "{}", first.text);
    // The host goes down: dropping the harness kills sshd (and its sessions).
    pve1.take();
    let second = w.call("list_projects", json!({})).await.expect("list while the host is down");
    assert!(second.text.contains("alpha-remote"), "the stale registry is served: {}", second.text);
    assert!(second.text.contains("warning: registry host pve1 is unreachable"), "{}", second.text);
    assert!(second.text.contains("serving its registry as cached"), "{}", second.text);
    let s = second.structured.expect("structured");
    assert!(s["warnings"].as_array().is_some_and(|w| !w.is_empty()));
    let r = w.call("read_project_file", json!({"project": "alpha-remote", "path": "README.md"})).await;
    assert!(outcome(&r).starts_with("failed: cannot connect"), "reading needs the node: {}", outcome(&r));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_host_key_is_refused_and_the_registry_says_why() {
    let lab = Lab::new();
    let keys = Keys::new();
    let pve1 = keys.sshd("pve1");
    let other = keys.sshd("other");
    let wrong = other.known_hosts_line().replace(&other.port.to_string(), &pve1.port.to_string());
    let w = World::new(config(&lab, &keys, &pve1, vec![wrong]));
    let r = w.call("list_projects", json!({})).await.expect("list");
    assert!(r.text.contains("HOST KEY MISMATCH") || r.text.contains("host key"), "{}", r.text);
    assert!(!r.text.contains("alpha-remote"), "{}", r.text);
}
