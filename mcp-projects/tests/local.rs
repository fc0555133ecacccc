//! The tools on this machine, called directly and through the server's gate: the traversal
//! corpus through `path` and `project`, the planted-injection README marked untrusted with its
//! invisible Unicode removed, redaction of secrets pasted into source files, .gitignore and
//! vendored folders, search results as path:line:text, the analysis context, the registry file
//! and discovery, "did you mean", and a refused read in the audit log.

mod common;

use std::sync::Arc;

use common::{AWS_KEY, CANARY, GITHUB_TOKEN, Lab, PVE_SECRET, World, corpus, outcome, render, write};
use mcp_common::tier::Tier;
use mcp_common::tool::CallCtx;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traversal_through_path_and_project_never_returns_a_byte_from_outside() {
    let lab = Lab::new();
    let w = World::new(lab.config());
    for raw in corpus("traversal.txt") {
        let path = lab.fill(&raw);
        let r = w.call("read_project_file", json!({"project": "alpha", "path": path})).await;
        assert_ne!(outcome(&r), "ok", "{path} was read: {}", render(&r));
        assert!(!render(&r).contains(CANARY), "{path} leaked: {}", render(&r));
        assert!(!render(&r).contains("root:x:0:0"), "{path} leaked /etc/passwd");
        let p = w.call("read_project_file", json!({"project": path, "path": "README.md"})).await;
        assert!(outcome(&p).starts_with("invalid: unknown project"), "{path}: {}", outcome(&p));
        let s = w.call("project_structure", json!({"project": path})).await;
        assert!(!render(&s).contains(CANARY));
    }
    let rule = |r: &Result<_, _>| outcome(r);
    let r = w.call("read_project_file", json!({"project": "alpha", "path": "../beta/secret.txt"})).await;
    assert_eq!(rule(&r), "path_traversal");
    let r = w.call("read_project_file", json!({"project": "alpha", "path": "escape/passwd"})).await;
    assert_eq!(rule(&r), "path_escape");
    let r = w.call("read_project_file", json!({"project": "alpha", "path": "sibling/secret.txt"})).await;
    assert_eq!(rule(&r), "path_escape");
    let r = w.call("read_project_file", json!({"project": "alpha", "path": "notes.txt"})).await;
    assert_eq!(rule(&r), "secret_blocked", "a symlink onto .env is judged by where it leads");
    let outside = format!("{}/canary.txt", lab.outside.display());
    let r = w.call("read_project_file", json!({"project": "alpha", "path": outside})).await;
    assert_eq!(rule(&r), "path_outside_project");
    let r = w.call("read_project_file", json!({"project": "alpha", "path": "a\0b"})).await;
    assert_eq!(rule(&r), "path_nul");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_planted_injection_comes_back_as_untrusted_data_without_invisible_characters() {
    let lab = Lab::new();
    let w = World::new(lab.config());
    let r = w.call("read_project_file", json!({"project": "alpha", "path": "README.md"})).await.expect("read");
    assert!(r.untrusted, "file content sets _meta jarvis/untrusted");
    assert!(r.text.contains("<<UNTRUSTED DATA id="), "{}", r.text);
    assert!(r.text.contains("IGNORE ALL PREVIOUS INSTRUCTIONS"), "the text is shown, as data");
    let structured = r.structured.clone().unwrap_or_default().to_string();
    for hidden in ['\u{E0064}', '\u{202E}', '\u{200B}'] {
        assert!(!r.text.contains(hidden) && !structured.contains(hidden), "U+{:X} survived", hidden as u32);
    }
    assert!(r.text.contains("invisible or control characters removed"), "{}", r.text);
    assert_eq!(r.text.matches("<<END UNTRUSTED DATA id=").count(), 1, "the file cannot close the block: {}", r.text);
    for (tool, args) in [
        ("search_project", json!({"project": "alpha", "pattern": "IGNORE ALL"})),
        ("analyze_project", json!({"project": "alpha"})),
        ("project_structure", json!({"project": "alpha"})),
        ("list_projects", json!({})),
    ] {
        let r = w.call(tool, args).await.expect(tool);
        assert!(r.untrusted, "{tool} is marked untrusted");
        assert!(!r.text.contains('\u{E0064}'), "{tool} carried tag characters");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_pasted_into_source_files_are_redacted_everywhere_and_code_is_untouched() {
    let lab = Lab::new();
    let w = World::new(lab.config());
    let r = w.call("read_project_file", json!({"project": "alpha", "path": "src/lib.rs"})).await.expect("read");
    let all = render(&Ok(r.clone()));
    for secret in [GITHUB_TOKEN, AWS_KEY, PVE_SECRET, "Sup3rS3cretPw"] {
        assert!(!all.contains(secret), "{secret} leaked: {all}");
    }
    assert!(r.text.contains("PVEAPIToken=root@pam!ci=[REDACTED:pve_api_token]"), "{}", r.text);
    assert!(r.text.contains("[REDACTED:github_token]") && r.text.contains("[REDACTED:aws_access_key]"));
    assert!(r.text.contains("pub fn run() -> Result<(), String> {"), "code stays: {}", r.text);
    let main = w.call("read_project_file", json!({"project": "alpha", "path": "src/main.rs"})).await.expect("main");
    let original = std::fs::read_to_string(lab.alpha.join("src/main.rs")).expect("read");
    assert_eq!(
        main.structured.expect("structured")["content"],
        original.trim_end_matches('\n'),
        "ordinary code is untouched"
    );
    let key = w
        .call("read_project_file", json!({"project": "alpha", "path": "config/deploy.key.txt", "start_line": 2}))
        .await
        .expect("key block in a .txt file");
    assert!(!key.text.contains("CANARYLINEONE") && !key.text.contains("AAAAB3Nza"), "{}", key.text);
    assert!(key.text.contains("after the key"), "line numbers survive redaction: {}", key.text);
    let s = w.call("search_project", json!({"pattern": GITHUB_TOKEN})).await.expect("search");
    assert_eq!(s.structured.expect("structured")["matches"], json!([]), "a secret's value is not searchable");
    let s = w.call("search_project", json!({"project": "alpha", "pattern": "let gh"})).await.expect("search");
    assert!(s.text.contains("alpha:src/lib.rs:4:     let gh = \"[REDACTED:github_token]\";"), "{}", s.text);
    let a = w.call("analyze_project", json!({"project": "alpha"})).await.expect("analyze");
    assert!(!render(&Ok(a)).contains(GITHUB_TOKEN));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn structure_honours_gitignore_and_lists_vendored_folders_without_entering_them() {
    let lab = Lab::new();
    let w = World::new(lab.config());
    let r = w.call("project_structure", json!({"project": "alpha", "depth": 5})).await.expect("structure");
    let entries: Vec<Value> = r.structured.expect("structured")["entries"].as_array().cloned().unwrap_or_default();
    let paths: Vec<&str> = entries.iter().filter_map(|e| e["path"].as_str()).collect();
    for present in ["Cargo.toml", "src/main.rs", "node_modules", "target", ".env", "tests/it.rs", "escape"] {
        assert!(paths.contains(&present), "{present} missing from {paths:?}");
    }
    for absent in ["ignored.txt", "generated", "generated/out.rs", "node_modules/left-pad", ".git", ".git/HEAD"] {
        assert!(!paths.contains(&absent), "{absent} listed: {paths:?}");
    }
    let note = |p: &str| entries.iter().find(|e| e["path"] == p).and_then(|e| e["note"].as_str()).unwrap_or("");
    assert_eq!(note("node_modules"), "vendored or build folder");
    assert_eq!(note(".env"), "secret: environment file with secrets");
    let s = w.call("search_project", json!({"project": "alpha", "pattern": "marker"})).await.expect("search");
    assert_eq!(s.structured.expect("structured")["matches"], json!([]), "ignored and vendored files are not searched");
    let b = w.call("read_project_file", json!({"project": "alpha", "path": "assets/logo.bin"})).await;
    assert!(outcome(&b).contains("binary file"), "{}", outcome(&b));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_takes_regexes_and_globs_and_answers_path_line_text() {
    let lab = Lab::new();
    let w = World::new(lab.config());
    let r = w
        .call("search_project", json!({"project": "alpha", "pattern": r"fn \w+\(\)", "regex": true, "glob": "*.rs"}))
        .await
        .expect("search");
    assert!(r.text.contains("alpha:tests/it.rs:2: fn works() { assert_eq!(1, 1); }"), "{}", r.text);
    assert!(r.text.contains("alpha:src/main.rs:4: fn main() -> ExitCode {"), "{}", r.text);
    let r = w.call("search_project", json!({"pattern": "todo", "case_insensitive": true})).await.expect("all");
    assert!(r.text.contains("alpha:src/main.rs:3: // TODO: configurable port"), "{}", r.text);
    let bad = w.call("search_project", json!({"pattern": "(", "regex": true})).await;
    assert!(outcome(&bad).starts_with("invalid: bad pattern"), "{}", outcome(&bad));
    let one = w.call("search_project", json!({"pattern": "e", "max_results": 1})).await.expect("capped");
    assert_eq!(one.structured.expect("structured")["truncated"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analysis_gathers_metadata_metrics_patterns_and_key_files_under_a_request() {
    let lab = Lab::new();
    let w = World::new(lab.config());
    let r = w.call("analyze_project", json!({"project": "alpha"})).await.expect("analyze");
    let (request, context) = r.text.split_once("<<UNTRUSTED DATA").expect("the context is wrapped");
    assert!(request.contains("Architecture overview") && request.contains("Actionable suggestions"));
    for part in [
        "stack: Rust",
        "## Lines of code",
        "Rust: ",
        "## Cargo.toml",
        "## README.md",
        "## src/main.rs",
        "#[test]: ",
        "src/main.rs:3: // TODO: configurable port",
    ] {
        assert!(context.contains(part), "{part} missing:\n{context}");
    }
    let s = r.structured.expect("structured");
    assert!(s["metrics"]["languages"]["Rust"]["code"].as_u64().unwrap_or(0) > 10, "{s}");
    assert!(s["secrets_redacted"].as_u64().unwrap_or(0) >= 4, "{s}");
    assert!(r.text.len() <= 96 * 1024 + 4096);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registry_file_and_discovery_make_the_catalog_and_unknown_names_get_suggestions() {
    let lab = Lab::new();
    let reg = lab.base.join("projects.toml");
    write(
        &reg,
        &format!(
            "[[projects]]\nname = \"alpha-service\"\npath = \"{}\"\ndescription = \"The alpha service\"\n\n\
             [[projects]]\nname = \"etc\"\npath = \"/etc\"\n\n[[projects]]\nname = \"elsewhere\"\nnode = \"pve9\"\npath = \"/srv\"\n",
            lab.alpha.display()
        ),
    );
    let mut c = lab.config();
    c.registry.file = Some(reg);
    let w = World::new(c);
    let r = w.call("list_projects", json!({})).await.expect("list");
    let s = r.structured.expect("structured");
    let names: Vec<&str> = s["projects"].as_array().into_iter().flatten().filter_map(|p| p["name"].as_str()).collect();
    assert_eq!(names, vec!["alpha-service", "beta"], "alpha is in the registry, beta discovered, /etc refused");
    let alpha = &s["projects"][0];
    assert_eq!((alpha["stack"][0].as_str(), alpha["source"].as_str()), (Some("Rust"), Some("registry")));
    assert!(alpha["last_modified"].as_str().is_some_and(|t| t.ends_with('Z')));
    let warnings = s["warnings"].to_string();
    assert!(warnings.contains("'etc'") && warnings.contains("unknown node 'pve9'"), "{warnings}");
    let f = w.call("list_projects", json!({"filter": "RUST"})).await.expect("filter");
    assert!(f.text.contains("alpha-service") && !f.text.contains("- beta"), "{}", f.text);
    let miss = w.call("project_structure", json!({"project": "alpha-servce"})).await;
    assert!(outcome(&miss).contains("did you mean 'alpha-service'?"), "{}", outcome(&miss));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_read_is_audited_through_the_gate() {
    let lab = Lab::new();
    let mut c = lab.config();
    let audit = lab.base.join("audit.jsonl");
    c.server.audit_log = Some(audit.clone());
    let server = mcp_projects::build(c).expect("server");
    let ctx = CallCtx::detached(Tier::Green, Arc::default());
    let r = server.dispatch("read_project_file", json!({"project": "alpha", "path": "id_ed25519"}), ctx).await;
    assert_eq!(r.is_error, Some(true));
    let log = std::fs::read_to_string(&audit).expect("audit log");
    assert!(log.contains("secret_blocked") && log.contains("blocked: private key file"), "{log}");
    assert!(!log.contains(CANARY));
    assert!(server.registry.check().is_ok());
    assert!(server.registry.iter().all(|t| t.spec.tier == Tier::Green));
}
