//! The secret-path corpora (`corpora/secret_paths.txt`, `corpora/benign_paths.txt`) against real
//! files in a project: every secret path is refused by `read_project_file` (rule `secret_blocked`,
//! message "blocked: …"), never found by `search_project`, and shown without content by
//! `project_structure`; every look-alike is read and searched normally; templates are readable
//! with their values redacted.

mod common;

use common::{CANARY, Lab, World, corpus, outcome, render, write};
use mcp_common::guard::secrets;
use serde_json::json;

#[test]
fn the_guard_blocks_every_secret_path_and_passes_every_look_alike() {
    for p in corpus("secret_paths.txt") {
        assert!(secrets::blocked(std::path::Path::new(&p)).is_some(), "{p} should be blocked");
        let abs = format!("/srv/projects/app/{p}");
        assert!(secrets::blocked(std::path::Path::new(&abs)).is_some(), "{abs} should be blocked");
    }
    for p in corpus("benign_paths.txt") {
        assert_eq!(secrets::blocked(std::path::Path::new(&p)), None, "{p} must not be blocked");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_files_are_refused_unsearchable_and_shown_without_content() {
    let lab = Lab::new();
    let proj = lab.root.join("vault");
    write(&proj.join(".git/HEAD"), "ref: refs/heads/main\n");
    let paths = corpus("secret_paths.txt");
    for p in &paths {
        write(&proj.join(p), &format!("{CANARY} {p}\n"));
    }
    let w = World::new(lab.config());
    for p in &paths {
        let r = w.call("read_project_file", json!({"project": "vault", "path": p})).await;
        assert_eq!(outcome(&r), "secret_blocked", "{p}: {}", render(&r));
        let msg = render(&r);
        let structured = r.as_ref().err().map(|e| e.structured()).unwrap_or_default();
        assert!(structured["message"].as_str().unwrap_or("").starts_with("blocked: "), "{p}: {msg}");
        assert!(!msg.contains(CANARY), "{p} leaked: {msg}");
    }
    let r = w.call("search_project", json!({"project": "vault", "pattern": CANARY})).await;
    let out = r.expect("search runs");
    assert_eq!(out.structured.as_ref().map(|s| s["matches"].as_array().map(Vec::len)), Some(Some(0)), "{}", out.text);
    // Across all projects: the sibling project `beta` holds a canary legitimately; `vault` must not show up.
    let all = w.call("search_project", json!({"pattern": "CANARY"})).await.expect("search all");
    let matches = all.structured.clone().unwrap_or_default()["matches"].as_array().cloned().unwrap_or_default();
    assert!(matches.iter().all(|m| m["project"] != "vault"), "{}", all.text);
    let s = w.call("project_structure", json!({"project": "vault", "depth": 8})).await.expect("structure");
    let text = render(&Ok(s.clone()));
    assert!(!text.contains(CANARY));
    let entries = s.structured.expect("structured")["entries"].as_array().cloned().unwrap_or_default();
    let note = |name: &str| entries.iter().find(|e| e["path"] == name).map(|e| e["note"].clone());
    assert_eq!(note("id_rsa").and_then(|n| n.as_str().map(String::from)), Some("secret: private key file".into()));
    assert_eq!(note(".ssh").and_then(|n| n.as_str().map(String::from)), Some("secret: secret folder".into()));
    assert!(
        entries.iter().all(|e| !e["path"].as_str().unwrap_or("").starts_with(".ssh/")),
        "secret folders are not entered"
    );
    let a = w.call("analyze_project", json!({"project": "vault"})).await;
    assert!(!render(&a).contains(CANARY), "{}", render(&a));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn look_alikes_are_read_and_searched_and_templates_come_back_redacted() {
    let lab = Lab::new();
    let proj = lab.root.join("plain");
    write(&proj.join(".git/HEAD"), "ref: refs/heads/main\n");
    let paths = corpus("benign_paths.txt");
    for p in &paths {
        write(&proj.join(p), &format!("benign-marker {p}\n"));
    }
    let w = World::new(lab.config());
    for p in &paths {
        let r = w.call("read_project_file", json!({"project": "plain", "path": p})).await;
        assert_eq!(outcome(&r), "ok", "{p}: {}", render(&r));
        assert!(render(&r).contains(&format!("benign-marker {p}")), "{p}");
    }
    let r = w.call("search_project", json!({"project": "plain", "pattern": "benign-marker"})).await.expect("search");
    let hits = r.structured.expect("structured")["matches"].as_array().map(Vec::len).unwrap_or(0);
    let text = r.text.clone();
    let missing: Vec<&String> = paths.iter().filter(|p| !text.contains(&format!("plain:{p}:1:"))).collect();
    assert!(missing.is_empty(), "not found by search: {missing:?}");
    assert_eq!(hits, paths.len(), "{text}");

    let t = w.call("read_project_file", json!({"project": "alpha", "path": ".env.example"})).await.expect("template");
    assert!(t.text.contains("DB_HOST=localhost"), "{}", t.text);
    assert!(t.text.contains("DB_PASSWORD=[REDACTED:password_assignment]"), "{}", t.text);
    assert!(!t.text.contains("changeme-real-looking-value"));
    assert!(t.text.contains("API_TOKEN=\n") || t.text.contains("API_TOKEN=\n<<END"), "{}", t.text);
}
