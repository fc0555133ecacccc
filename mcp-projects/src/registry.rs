//! The project catalog: a registry file on this machine, the same kind of file read over SSH from
//! a registry host, and git repositories discovered under each node's roots.
//!
//! The remote file and each remote node's discovery are cached for `registry.cache_secs`; when a
//! host does not answer, its last good answer is served with a warning instead of its projects
//! silently vanishing (a flapping node must not make Jarvis forget the code on it). Every project
//! must lie inside its node's roots, or it is left out with a warning: a registry file is input,
//! and `path = "/etc"` in it must not widen what the server reads.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use mcp_common::tool::ToolError;
use mcp_common::untrusted::sanitize;
use serde::{Deserialize, Serialize};

use crate::state::State;
use crate::tree::{Entry, Kind, LocalTree, RemoteTree, Tree};

/// Largest registry file read.
const MAX_REGISTRY_BYTES: u64 = 1 << 20;

/// One project as a registry file describes it.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    pub name: String,
    /// Defaults to the node the registry file is on.
    #[serde(default)]
    pub node: Option<String>,
    pub path: PathBuf,
    #[serde(default)]
    pub description: Option<String>,
    /// Detected from manifests when not given.
    #[serde(default)]
    pub stack: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RegistryFile {
    Table { projects: Vec<FileEntry> },
    List(Vec<FileEntry>),
}

/// Parse a registry file: JSON (`{"projects": [...]}` or `[...]`) or TOML (`[[projects]]`).
pub fn parse(text: &str) -> Result<Vec<FileEntry>, String> {
    let t = text.trim_start();
    let parsed: RegistryFile = if t.starts_with('{') || t.starts_with('[') && !t.starts_with("[[") {
        serde_json::from_str(text).map_err(|e| format!("not a valid JSON registry: {e}"))?
    } else {
        toml::from_str(text).map_err(|e| format!("not a valid TOML registry: {e}"))?
    };
    Ok(match parsed {
        RegistryFile::Table { projects } | RegistryFile::List(projects) => projects,
    })
}

/// A project as the tools show it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Project {
    pub name: String,
    pub node: String,
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub stack: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
    /// `registry`, `remote_registry` or `discovered`.
    pub source: String,
}

/// What the catalog holds right now.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub projects: Vec<Project>,
    pub warnings: Vec<String>,
}

#[derive(Default)]
struct Inner {
    snapshot: Option<(Instant, Arc<Snapshot>)>,
    remote_file: Option<(Instant, Vec<FileEntry>)>,
    discovered: BTreeMap<String, (Instant, Vec<Project>)>,
}

/// The cached catalog.
#[derive(Default)]
pub struct Catalog {
    inner: Mutex<Inner>,
}

/// Manifests and what they say about a project's stack.
const MANIFESTS: &[(&str, &str)] = &[
    ("Cargo.toml", "Rust"),
    ("package.json", "JavaScript"),
    ("tsconfig.json", "TypeScript"),
    ("deno.json", "Deno"),
    ("pyproject.toml", "Python"),
    ("setup.py", "Python"),
    ("requirements.txt", "Python"),
    ("go.mod", "Go"),
    ("pom.xml", "Java"),
    ("build.gradle", "Java"),
    ("build.gradle.kts", "Kotlin"),
    ("Gemfile", "Ruby"),
    ("composer.json", "PHP"),
    ("mix.exs", "Elixir"),
    ("pubspec.yaml", "Dart"),
    ("Package.swift", "Swift"),
    ("CMakeLists.txt", "C/C++"),
    ("meson.build", "C/C++"),
    ("Makefile", "Make"),
    ("Dockerfile", "Docker"),
    ("compose.yaml", "Docker Compose"),
    ("docker-compose.yml", "Docker Compose"),
    ("ansible.cfg", "Ansible"),
    ("main.tf", "Terraform"),
];

/// The stack named by the manifests among a project's top-level entries.
pub fn detect_stack(entries: &[Entry]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (file, stack) in MANIFESTS {
        if entries.iter().any(|e| e.name == *file) && !out.iter().any(|s| s == stack) {
            out.push((*stack).to_string());
        }
    }
    if entries.iter().any(|e| e.name.ends_with(".csproj") || e.name.ends_with(".sln")) {
        out.push("C#".into());
    }
    out
}

fn iso(secs: Option<i64>) -> Option<String> {
    secs.map(crate::metrics::iso_time)
}

fn clean(s: &str) -> String {
    sanitize(s).0.replace('\n', " ")
}

/// Fill in stack and last modification from the project's top level.
fn describe(tree: Option<&dyn Tree>, e: &FileEntry, node: &str, source: &str) -> Project {
    let top = tree.and_then(|t| t.list(Path::new("")).ok()).unwrap_or_default();
    let stack = e.stack.clone().filter(|s| !s.is_empty()).unwrap_or_else(|| detect_stack(&top));
    Project {
        name: clean(&e.name),
        node: node.to_string(),
        path: clean(&e.path.to_string_lossy()),
        description: e.description.as_deref().map(clean),
        stack: stack.iter().map(|s| clean(s)).collect(),
        last_modified: iso(top.iter().filter_map(|x| x.mtime).max()),
        source: source.into(),
    }
}

/// Git repositories below `tree`'s root, down to `depth` levels; a repository is not searched further.
fn discover_in(tree: &dyn Tree, depth: u32) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![(PathBuf::new(), 0u32)];
    while let Some((dir, level)) = stack.pop() {
        let Ok(entries) = tree.list(&dir) else { continue };
        if entries.iter().any(|e| e.name == ".git") {
            found.push(dir);
            continue;
        }
        if level >= depth {
            continue;
        }
        for e in entries.iter().filter(|e| e.kind == Kind::Dir) {
            let skip = e.name.starts_with('.') || crate::tree::SKIPPED_DIRS.contains(&e.name.as_str());
            if !skip && mcp_common::guard::secrets::blocked_dir(Path::new(&e.name)).is_none() {
                stack.push((dir.join(&e.name), level + 1));
            }
        }
    }
    found.sort();
    found
}

fn entry_for(root: &Path, rel: &Path) -> FileEntry {
    let path = root.join(rel);
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "root".into());
    FileEntry { name, node: None, path, description: None, stack: None }
}

impl Catalog {
    /// The current snapshot, refreshed when older than `registry.cache_secs` (blocking).
    pub fn get(&self, s: &State) -> Arc<Snapshot> {
        let ttl = std::time::Duration::from_secs(s.config.registry.cache_secs);
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, snap)) = &inner.snapshot
            && at.elapsed() < ttl
        {
            return snap.clone();
        }
        let snap = Arc::new(refresh(s, &mut inner, ttl));
        inner.snapshot = Some((Instant::now(), snap.clone()));
        snap
    }

    /// Find a project by name (exact, then case-insensitive, `name@node` too), or say which
    /// names come close.
    pub fn find(&self, s: &State, name: &str) -> Result<Project, ToolError> {
        let snap = self.get(s);
        let found = snap
            .projects
            .iter()
            .find(|p| p.name == name)
            .or_else(|| snap.projects.iter().find(|p| p.name.eq_ignore_ascii_case(name)))
            .or_else(|| snap.projects.iter().find(|p| format!("{}@{}", p.name, p.node).eq_ignore_ascii_case(name)));
        found.cloned().ok_or_else(|| ToolError::Invalid(unknown_project(name, &snap.projects)))
    }
}

/// "unknown project 'jarvs'; did you mean 'jarvis'?" with the known names.
pub fn unknown_project(name: &str, projects: &[Project]) -> String {
    let shown = mcp_common::guard::path::shown(name);
    let lower = name.to_ascii_lowercase();
    let mut close: Vec<(f64, &str)> = projects
        .iter()
        .map(|p| {
            let n = p.name.to_ascii_lowercase();
            let mut score = strsim::jaro_winkler(&lower, &n);
            if !lower.is_empty() && (n.contains(&lower) || lower.contains(&n)) {
                score = score.max(0.9);
            }
            (score, p.name.as_str())
        })
        .filter(|(score, _)| *score >= 0.8)
        .collect();
    close.sort_by(|a, b| b.0.total_cmp(&a.0));
    let known: Vec<&str> = projects.iter().take(30).map(|p| p.name.as_str()).collect();
    let hint = match close.as_slice() {
        [] => String::new(),
        [(_, one)] => format!("; did you mean '{one}'?"),
        many => format!(
            "; did you mean one of {}?",
            many.iter().take(3).map(|(_, n)| format!("'{n}'")).collect::<Vec<_>>().join(", ")
        ),
    };
    format!(
        "unknown project '{shown}'{hint} (known projects: {})",
        if known.is_empty() { "none".into() } else { known.join(", ") }
    )
}

fn read_local_file(path: &Path) -> Result<Vec<FileEntry>, String> {
    use std::io::Read;
    let f = std::fs::File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut text = String::new();
    f.take(MAX_REGISTRY_BYTES).read_to_string(&mut text).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}

fn read_remote_file(s: &State, node: &str, path: &Path) -> Result<Vec<FileEntry>, String> {
    use std::io::Read;
    let n = s.nodes.get(node).ok_or_else(|| format!("unknown node {node}"))?;
    let sess = s.connect(n).map_err(|e| e.to_string())?;
    let f = sess.sftp.open(path).map_err(|e| format!("{node}:{}: {}", path.display(), e.message()))?;
    let mut text = String::new();
    f.take(MAX_REGISTRY_BYTES).read_to_string(&mut text).map_err(|e| format!("{node}:{}: {e}", path.display()))?;
    parse(&text).map_err(|e| format!("{node}:{}: {e}", path.display()))
}

fn refresh(s: &State, inner: &mut Inner, ttl: std::time::Duration) -> Snapshot {
    let cfg = &s.config.registry;
    let mut warnings = Vec::new();
    // (entry, node, source)
    let mut wanted: Vec<(FileEntry, String, &'static str)> = Vec::new();
    if let Some(file) = &cfg.file {
        match read_local_file(file) {
            Ok(es) => wanted.extend(es.into_iter().map(|e| (e, s.local_name.clone(), "registry"))),
            Err(e) => warnings.push(format!("registry file: {e}")),
        }
    }
    if let (Some(node), Some(path)) = (&cfg.remote_node, &cfg.remote_path) {
        let fresh = inner.remote_file.as_ref().is_some_and(|(at, _)| at.elapsed() < ttl);
        if !fresh {
            match read_remote_file(s, node, path) {
                Ok(es) => inner.remote_file = Some((Instant::now(), es)),
                Err(e) => match &inner.remote_file {
                    Some((at, _)) => warnings.push(format!(
                        "registry host {node} is unreachable ({e}); serving its registry as cached {} s ago",
                        at.elapsed().as_secs()
                    )),
                    None => warnings.push(format!(
                        "registry host {node} is unreachable ({e}); its projects are missing until it answers"
                    )),
                },
            }
        }
        if let Some((_, es)) = &inner.remote_file {
            wanted.extend(es.iter().cloned().map(|e| (e, node.clone(), "remote_registry")));
        }
    }
    let mut projects = Vec::new();
    // Registry entries, grouped by node so each remote node costs one session.
    let mut by_node: BTreeMap<String, Vec<(FileEntry, &'static str)>> = BTreeMap::new();
    for (e, default_node, source) in wanted {
        let node = e.node.clone().unwrap_or(default_node);
        if !s.knows_node(&node) {
            warnings.push(format!("project '{}' names the unknown node '{}'; left out", clean(&e.name), clean(&node)));
            continue;
        }
        by_node.entry(node).or_default().push((e, source));
    }
    for (node, entries) in by_node {
        describe_node(s, &node, &entries, &mut projects, &mut warnings);
    }
    if cfg.discover {
        discover_all(s, inner, ttl, &mut projects, &mut warnings);
    }
    dedupe(&mut projects);
    Snapshot { projects, warnings }
}

fn describe_node(
    s: &State,
    node: &str,
    entries: &[(FileEntry, &'static str)],
    out: &mut Vec<Project>,
    warnings: &mut Vec<String>,
) {
    let outside = |e: &FileEntry, why: String| {
        format!("project '{}' ({}:{}) is left out: {why}", clean(&e.name), node, clean(&e.path.to_string_lossy()))
    };
    if node == s.local_name {
        for (e, source) in entries {
            match s.local_project_real(&e.path) {
                Ok(real) => {
                    let tree = LocalTree::open(&real, node, &s.config.paths.deny).ok();
                    out.push(describe(tree.as_ref().map(|t| t as &dyn Tree), e, node, source));
                }
                Err(why) => warnings.push(outside(e, why.to_string())),
            }
        }
        return;
    }
    let Some(n) = s.nodes.get(node) else { return };
    let sess = match s.connect(n) {
        Ok(sess) => Some(sess),
        Err(err) => {
            warnings
                .push(format!("node {node} is unreachable ({err}); its registry projects are shown without details"));
            None
        }
    };
    for (e, source) in entries {
        let Some(sess) = &sess else {
            if n.guard.locate(&e.path.to_string_lossy(), node).is_ok() {
                out.push(describe(None, e, node, source));
            }
            continue;
        };
        match s.remote_project_real(n, sess, &e.path) {
            Ok(real_root) => {
                let tree = RemoteTree { sftp: &sess.sftp, node, real_root, guard: &n.guard };
                out.push(describe(Some(&tree), e, node, source));
            }
            Err(why) => warnings.push(outside(e, why.to_string())),
        }
    }
}

fn discover_all(
    s: &State,
    inner: &mut Inner,
    ttl: std::time::Duration,
    out: &mut Vec<Project>,
    warnings: &mut Vec<String>,
) {
    let depth = s.config.registry.discover_depth;
    let known: Vec<(String, String)> = out.iter().map(|p| (p.node.clone(), p.path.clone())).collect();
    let mut found = Vec::new();
    for root in s.config.local.roots.iter() {
        let Ok(real) = s.local_project_real(root) else { continue };
        let Ok(tree) = LocalTree::open(&real, &s.local_name, &s.config.paths.deny) else { continue };
        for rel in discover_in(&tree, depth) {
            let e = entry_for(root, &rel);
            let sub = LocalTree::open(&real.join(&rel), &s.local_name, &s.config.paths.deny).ok();
            found.push(describe(sub.as_ref().map(|t| t as &dyn Tree), &e, &s.local_name, "discovered"));
        }
    }
    for (name, n) in &s.nodes {
        let fresh = inner.discovered.get(name).is_some_and(|(at, _)| at.elapsed() < ttl);
        if !fresh && !n.guard.roots().is_empty() {
            match s.connect(n) {
                Ok(sess) => {
                    let mut projects = Vec::new();
                    for (root, real) in n.guard.roots().iter().zip(sess.real_roots.iter()) {
                        let tree =
                            RemoteTree { sftp: &sess.sftp, node: name, real_root: real.clone(), guard: &n.guard };
                        for rel in discover_in(&tree, depth) {
                            let sub = RemoteTree { real_root: real.join(&rel), ..tree };
                            projects.push(describe(Some(&sub), &entry_for(&root.path, &rel), name, "discovered"));
                        }
                    }
                    inner.discovered.insert(name.clone(), (Instant::now(), projects));
                }
                Err(e) => match inner.discovered.get(name) {
                    Some((at, _)) => warnings.push(format!(
                        "node {name} is unreachable ({e}); serving its discovered projects as cached {} s ago",
                        at.elapsed().as_secs()
                    )),
                    None => warnings.push(format!("node {name} is unreachable ({e}); its projects are not discovered")),
                },
            }
        }
        if let Some((_, ps)) = inner.discovered.get(name) {
            found.extend(ps.iter().cloned());
        }
    }
    out.extend(found.into_iter().filter(|p| !known.contains(&(p.node.clone(), p.path.clone()))));
}

/// Give every project a unique name: a later duplicate becomes `name@node` (then `name@node-2`, …).
fn dedupe(projects: &mut [Project]) {
    let mut seen: Vec<String> = Vec::new();
    for p in projects.iter_mut() {
        if seen.iter().any(|n| n.eq_ignore_ascii_case(&p.name)) {
            let base = format!("{}@{}", p.name, p.node);
            let mut candidate = base.clone();
            let mut i = 2;
            while seen.iter().any(|n| n.eq_ignore_ascii_case(&candidate)) {
                candidate = format!("{base}-{i}");
                i += 1;
            }
            p.name = candidate;
        }
        seen.push(p.name.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_files_parse_as_toml_json_table_or_json_list() {
        let toml = "[[projects]]\nname = \"a\"\npath = \"/srv/a\"\nstack = [\"Rust\"]\n";
        let json = r#"{"projects": [{"name": "a", "path": "/srv/a", "stack": ["Rust"]}]}"#;
        let list = r#"[{"name": "a", "path": "/srv/a", "stack": ["Rust"]}]"#;
        let want = parse(toml).expect("toml");
        assert_eq!(parse(json).expect("json"), want);
        assert_eq!(parse(list).expect("list"), want);
        assert!(parse("[[projects]]\nname = \"a\"\npath = \"/x\"\ntypo = 1\n").is_err());
    }

    fn p(name: &str) -> Project {
        Project {
            name: name.into(),
            node: "local".into(),
            path: format!("/srv/{name}"),
            description: None,
            stack: vec![],
            last_modified: None,
            source: "registry".into(),
        }
    }

    #[test]
    fn unknown_names_get_a_did_you_mean_answer() {
        let ps = vec![p("jarvis"), p("homelab-ansible"), p("blog")];
        let m = unknown_project("jarvs", &ps);
        assert!(m.contains("did you mean 'jarvis'?"), "{m}");
        let m = unknown_project("../../etc", &ps);
        assert!(!m.contains("did you mean") && m.contains("known projects: jarvis"), "{m}");
    }

    #[test]
    fn duplicate_names_are_qualified_by_node() {
        let mut ps = vec![p("app"), Project { node: "pve2".into(), ..p("app") }];
        dedupe(&mut ps);
        assert_eq!(ps[1].name, "app@pve2");
    }
}
