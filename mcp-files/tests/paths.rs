//! Path rules on this machine, through the tools themselves: the traversal corpus (oracle: no
//! byte from outside the root, nothing outside changed, no canary copied in, no temporary file
//! left), symlinks out of the root, prefix confusion, the denylist with a root as wide as `/`,
//! special files, writes that fail or are refused, and refusals reaching the audit log.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;

use common::{CANARY, HIDDEN_NAME, Lab, World, corpus, leaks_and_leftovers, outcome, render};
use mcp_common::policy::Policy;
use mcp_common::tier::Tier;
use mcp_common::tool::{CallCtx, ToolError};
use mcp_files::config::RootConfig;
use mcp_files::state::Files;
use mcp_files::transfer;
use serde_json::{Value, json};

fn vars(lab: &Lab) -> Vec<(&'static str, String)> {
    vec![
        ("{ROOT}", lab.root.display().to_string()),
        ("{OUTSIDE}", lab.outside.display().to_string()),
        ("{BASE}", lab.base.display().to_string()),
    ]
}

fn world(lab: &Lab) -> World {
    World::new(Files::new(lab.config()).expect("state"))
}

#[tokio::test]
async fn no_path_in_the_traversal_corpus_yields_a_byte_from_outside_the_root() {
    let lab = Lab::new();
    let w = world(&lab);
    let outside_before = (lab.snapshot(&lab.outside), lab.snapshot(&lab.evil_sibling));
    let mut payloads = corpus("path_traversal.txt", &vars(&lab));
    assert!(payloads.len() > 120, "the corpus is complete");
    // Real NUL bytes and control characters, which must be refused rather than truncated.
    for p in payloads.clone().iter().take(30) {
        payloads.push(format!("{p}\0"));
        payloads.push(format!("{p}\0.txt"));
        payloads.push(format!("\0{p}"));
        payloads.push(format!("{p}\n"));
    }
    let mut results = BTreeMap::new();
    for (i, p) in payloads.iter().enumerate() {
        let root = lab.root.display();
        let calls = [
            ("file_info", json!({"path": p})),
            ("list_directory", json!({"path": p, "depth": 3})),
            ("copy_file", json!({"src": p, "dest": format!("{root}/copies/c{i}")})),
            ("copy_file", json!({"src": format!("{root}/sub/file.txt"), "dest": p})),
        ];
        for (n, (tool, args)) in calls.into_iter().enumerate() {
            let r = w.call(tool, args.clone()).await;
            let shown = render(&r);
            for secret in [CANARY, HIDDEN_NAME, "root:x:0:0"] {
                assert!(!shown.contains(secret), "{tool} {args} leaked {secret:?}:\n{shown}");
            }
            results.insert((p.clone(), n), outcome(&r));
        }
    }
    assert_eq!(
        (lab.snapshot(&lab.outside), lab.snapshot(&lab.evil_sibling)),
        outside_before,
        "nothing outside changed"
    );
    let (leaks, temps) = leaks_and_leftovers(&lab.root);
    assert!(leaks.is_empty(), "canary bytes were copied into the root: {leaks:?}");
    assert!(temps.is_empty(), "temporary files were left behind: {temps:?}");

    let mut tally: BTreeMap<String, usize> = BTreeMap::new();
    for r in results.values() {
        *tally.entry(r.split(':').next().unwrap_or_default().to_string()).or_default() += 1;
    }
    println!("{} calls: {tally:?}", results.len());
    assert!(tally.get("ok").is_some_and(|n| *n > 20), "legitimate paths inside the root still work: {tally:?}");

    // And the refusals name the rule that refused.
    let root = lab.root.display().to_string();
    let expect = |p: &str, call: usize, rule: &str| {
        let got = results.get(&(p.replace("{ROOT}", &root), call)).unwrap_or_else(|| panic!("{p} was run"));
        assert_eq!(got, rule, "{p} (call {call})");
    };
    expect("../outside/canary.txt", 0, "path_traversal");
    expect("{ROOT}/sub/../../outside/canary.txt", 2, "path_traversal");
    expect("{ROOT}-evil/canary.txt", 0, "path_outside_roots");
    expect("{ROOT}-evil", 1, "path_outside_roots");
    expect("/etc/passwd", 2, "path_outside_roots");
    expect("link/passwd", 0, "path_escape");
    expect("link", 1, "path_escape");
    expect("evil.txt", 2, "path_escape");
    expect("out/canary.txt", 2, "path_escape");
    expect("up/outside/canary.txt", 0, "path_escape");
    expect("secrets/token", 2, "path_denied");
    expect("{ROOT}/SECRETS/token", 0, "path_denied");
    expect("pipe", 2, "special_file");
    expect("~/.ssh/id_rsa", 0, "path_expansion");
    expect("$HOME/.ssh/id_rsa", 1, "path_expansion");
    expect("%USERPROFILE%\\.ssh", 0, "path_expansion");
    expect("evil.txt", 3, "would_overwrite");
    expect("link", 3, "would_overwrite");
    let nul = results.iter().filter(|((p, _), _)| p.contains('\0')).map(|(_, r)| r.as_str()).collect::<Vec<_>>();
    assert!(nul.iter().all(|r| *r == "path_nul"), "NUL bytes are refused, never truncated: {nul:?}");
}

#[tokio::test]
async fn symlinks_are_shown_with_their_targets_but_never_followed_out_of_the_root() {
    let lab = Lab::new();
    let w = world(&lab);
    let out = w.call("file_info", json!({"path": format!("{}/evil.txt", lab.root.display())})).await.expect("lstat");
    let s = out.structured.expect("structured");
    assert_eq!((s["type"].as_str(), s["target_status"].as_str()), (Some("symlink"), Some("outside_root")), "{s}");
    assert!(out.untrusted && out.text.contains("<<UNTRUSTED DATA"), "names from disk are outside text");
    let good = w.call("file_info", json!({"path": "good.txt"})).await.expect("lstat").structured.expect("s");
    assert_eq!(good["target_status"], "inside_root");
    assert_eq!(good["resolved"], lab.root.join("sub/file.txt").display().to_string());

    let listing =
        w.call("list_directory", json!({"path": lab.root.display().to_string(), "depth": 3})).await.expect("ls");
    let entries = listing.structured.expect("structured")["entries"].as_array().cloned().unwrap_or_default();
    let by_name = |n: &str| entries.iter().find(|e| e["name"] == n).cloned().unwrap_or(Value::Null);
    assert_eq!(by_name("link")["symlink_target"], "/etc");
    assert_eq!(by_name("link")["target_status"], "outside_root");
    assert_eq!(by_name("up")["target_status"], "outside_root");
    assert_eq!(by_name("pipe")["type"], "fifo");
    assert_eq!(by_name("secrets")["denied"], true);
    assert_eq!(by_name("secrets/token"), Value::Null, "denied directories are not entered");
    assert_eq!(by_name("sub/deeper/note.txt")["size"], 7);
    assert!(entries.iter().all(|e| !e["name"].as_str().unwrap_or("").starts_with("link/")), "symlinks are not entered");

    let truncated = w.call("list_directory", json!({"path": "sub", "depth": 2, "max_entries": 2})).await.expect("ls");
    assert_eq!(truncated.structured.expect("s")["truncated"], true);
}

#[tokio::test]
async fn a_root_as_wide_as_slash_still_never_reads_secrets_or_kernel_interfaces() {
    let lab = Lab::new();
    let mut c = lab.config();
    c.local.roots.insert(0, RootConfig { path: "/".into(), writable: false });
    // A relative symlink that climbs to /etc/shadow stays beneath "/": only the re-check of
    // the real path can refuse it.
    let depth = lab.base.components().count() - 1;
    std::os::unix::fs::symlink(format!("{}etc/shadow", "../".repeat(depth)), lab.base.join("shadow-link")).expect("ln");
    let w = World::new(Files::new(c).expect("state"));
    let rule = |r: &Result<_, ToolError>| outcome(r);
    for p in
        ["/etc/shadow", "/etc/pve/priv/authkey.key", "/root/.ssh/id_rsa", "/proc/self/environ", "/dev/null", "/sys"]
    {
        assert_eq!(rule(&w.call("file_info", json!({"path": p})).await), "path_denied", "{p}");
        assert_eq!(rule(&w.call("list_directory", json!({"path": p})).await), "path_denied", "{p}");
    }
    let link = lab.base.join("shadow-link").display().to_string();
    let dest = format!("{}/copies/x", lab.root.display());
    assert_eq!(rule(&w.call("copy_file", json!({"src": link, "dest": dest})).await), "path_denied");
    let etc = w.call("list_directory", json!({"path": "/etc"})).await.expect("ls /etc");
    let entries = etc.structured.expect("s")["entries"].as_array().cloned().unwrap_or_default();
    let shadow = entries.iter().find(|e| e["name"] == "shadow").expect("shadow is listed by name");
    assert_eq!((shadow["denied"].as_bool(), shadow.get("size")), (Some(true), None), "{shadow}");
    let write =
        w.call("copy_file", json!({"src": format!("{}/sub/file.txt", lab.root.display()), "dest": "/tmp/x"})).await;
    assert_eq!(rule(&write), "read_only_root");
}

#[tokio::test]
async fn copies_never_overwrite_unless_asked_and_failed_copies_leave_nothing() {
    let lab = Lab::new();
    let w = world(&lab);
    let src = format!("{}/sub/file.txt", lab.root.display());
    let out = w.call("copy_file", json!({"src": src, "dest": "copies/"})).await.expect("copy");
    let s = out.structured.expect("structured");
    assert_eq!(s["bytes"], 16);
    assert_eq!(s["sha256"], common::sha256_hex(b"inside the root\n"));
    assert_eq!(std::fs::read_to_string(lab.root.join("copies/file.txt")).expect("copied"), "inside the root\n");
    let again = w.call("copy_file", json!({"src": src, "dest": "copies/file.txt"})).await;
    assert_eq!(outcome(&again), "would_overwrite");
    let note = format!("{}/sub/deeper/note.txt", lab.root.display());
    w.call("copy_file", json!({"src": note, "dest": "copies/file.txt", "overwrite": true})).await.expect("asked");
    assert_eq!(std::fs::read_to_string(lab.root.join("copies/file.txt")).expect("replaced"), "deeper\n");
    let ro = w.call("copy_file", json!({"src": src, "dest": format!("{}/x", lab.ro.display())})).await;
    assert_eq!(outcome(&ro), "read_only_root");
    assert_eq!(outcome(&w.call("copy_file", json!({"src": src, "dest": "copies/.hidden"})).await), "path_invalid");

    let mut c = lab.config();
    c.limits.max_file_bytes = 8;
    let small = World::new(Files::new(c).expect("state"));
    assert_eq!(outcome(&small.call("copy_file", json!({"src": src, "dest": "copies/big"})).await), "max_file_size");
    let (_, temps) = leaks_and_leftovers(&lab.root);
    assert!(temps.is_empty() && !lab.root.join("copies/big").exists(), "{temps:?}");
}

#[test]
fn a_cancelled_copy_stops_at_the_next_chunk_and_removes_its_temporary_file() {
    let lab = Lab::new();
    std::fs::write(lab.root.join("big.bin"), common::payload(4 << 20)).expect("write");
    let files = Files::new(lab.config()).expect("state");
    let at = |p: &str| files.local.locate(&format!("{}/{p}", lab.root.display())).expect("inside");
    let job = transfer::Job {
        src_node: None,
        src: at("big.bin"),
        dest_node: None,
        dest_dir: at("copies"),
        dest_name: "big.bin".into(),
        overwrite: false,
    };
    let cancel = AtomicBool::new(false);
    let mut calls = 0;
    let r = transfer::copy_blocking(&files, &job, &cancel, &mut |done, _| {
        calls += 1;
        if done > 0 {
            // The client cancels once the copy is under way.
            cancel.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    });
    assert!(matches!(&r, Err(ToolError::Failed(m)) if m.contains("cancelled")), "{r:?}");
    assert_eq!(calls, 2, "it stopped right after the first chunk");
    let (_, temps) = leaks_and_leftovers(&lab.root);
    assert!(temps.is_empty() && !lab.root.join("copies/big.bin").exists(), "{temps:?}");
}

#[tokio::test]
async fn refusals_are_tool_errors_naming_the_rule_and_they_reach_the_audit_log() {
    let lab = Lab::new();
    let mut c = lab.config();
    let audit = lab.base.join("audit.jsonl");
    c.server.audit_log = Some(audit.clone());
    c.server.max_tier = Tier::Green;
    let server = mcp_files::build_with(Files::new(c).expect("state")).expect("server");
    let ctx = || CallCtx::detached(Tier::Green, server.policy.clone());
    let r = server.dispatch("file_info", json!({"path": "../../etc/passwd"}), ctx()).await;
    assert_eq!(r.is_error, Some(true));
    let sc = r.structured_content.clone().expect("structured error");
    assert_eq!((sc["error"].as_str(), sc["rule"].as_str()), (Some("refused"), Some("path_traversal")), "{sc}");
    let text = format!("{:?}", r.content);
    assert!(text.contains("Refused:") && text.contains("rule: path_traversal"), "{text}");
    let src = format!("{}/sub/file.txt", lab.root.display());
    let r = server.dispatch("copy_file", json!({"src": src, "dest": "copies/"}), ctx()).await;
    assert_eq!(r.structured_content.expect("s")["rule"], "max_tier", "a green server refuses yellow tools");
    assert!(!lab.root.join("copies/file.txt").exists());
    server.dispatch("list_directory", json!({"path": "sub"}), ctx()).await;

    let log = std::fs::read_to_string(&audit).expect("audit log");
    let rules: Vec<String> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|e| e["rule"].as_str().unwrap_or("-").to_string())
        .collect();
    assert_eq!(rules, vec!["path_traversal", "max_tier"], "refusals are audited, a green read is not");
    assert_eq!(mcp_common::audit::verify(&audit).expect("intact"), 2);
}

#[tokio::test]
async fn protected_nodes_refuse_every_write_but_still_allow_reads() {
    let lab = Lab::new();
    let mut w = world(&lab);
    let mut policy = Policy::default();
    policy.protect.nodes = vec!["local".into()];
    w.policy = std::sync::Arc::new(policy);
    let src = format!("{}/sub/file.txt", lab.root.display());
    assert_eq!(outcome(&w.call("copy_file", json!({"src": src, "dest": "copies/"})).await), "protected_node");
    w.tier = Tier::Green;
    assert_eq!(outcome(&w.call("file_info", json!({"path": src})).await), "ok");
}
