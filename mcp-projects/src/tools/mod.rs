//! Every mcp-projects tool, declared once with its tier (DESIGN §4); all are GREEN.
//!
//! `list_projects` (here), `project_structure` and `read_project_file` ([`files`]),
//! `search_project` ([`search`]), `analyze_project` ([`analyze`]). Project names are looked up in
//! the catalog, never used as paths; a `path` argument is taken literally (`..`, `~`, `$VAR`, NUL
//! refused) and resolved beneath the project only. Every result carrying text from disk is
//! sanitized, redacted and wrapped as untrusted data.

mod analyze;
mod files;
mod search;

use std::path::PathBuf;
use std::sync::Arc;

use mcp_common::guard::path::{components, shown};
use mcp_common::policy::Refusal;
use mcp_common::tier::Tier::Green;
use mcp_common::tool::{CallCtx, Registry, ToolError, ToolOutput, ToolSpec};
use mcp_common::untrusted;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::registry::Project;
use crate::state::State;

/// The registry of all tools.
pub fn registry() -> Registry<State> {
    let mut r = Registry::new();
    r.add(
        ToolSpec {
            name: "list_projects",
            title: "List projects",
            description: "The code projects on this machine and the cluster's nodes (from the registry and git \
                          repositories found under the configured roots): name, node, path, description, tech stack, \
                          last modification. Optionally filtered by a word.",
            tier: Green,
            idempotent: true,
            open_world: false,
        },
        list_projects,
    );
    files::register(&mut r);
    search::register(&mut r);
    analyze::register(&mut r);
    r
}

/// Run `f` on the blocking pool (file system, libssh2 and the catalog refresh block).
async fn blocking<T: Send + 'static>(
    s: &Arc<State>,
    f: impl FnOnce(&State) -> Result<T, ToolError> + Send + 'static,
) -> Result<T, ToolError> {
    let s = s.clone();
    tokio::task::spawn_blocking(move || f(&s))
        .await
        .map_err(|e| ToolError::Failed(format!("the worker stopped unexpectedly: {e}")))?
}

/// A caller's path inside a project, as a relative path of plain components. An absolute path
/// is accepted only when it lies inside the project's path.
pub fn rel_path(project: &Project, raw: &str) -> Result<PathBuf, ToolError> {
    let (absolute, parts) = components(raw)?;
    let mut rel: PathBuf = parts.iter().collect();
    if absolute {
        let full: PathBuf = std::iter::once("/").chain(parts.iter().copied()).collect();
        rel = full.strip_prefix(&project.path).map(PathBuf::from).map_err(|_| {
            ToolError::Refused(Refusal::new(
                "path_outside_project",
                format!(
                    "'{}' is not inside project {} ({}); give a path relative to the project",
                    shown(raw),
                    project.name,
                    project.path
                ),
            ))
        })?;
    }
    Ok(rel)
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListArgs {
    /// Only projects whose name, node, description or stack contains this word (case-insensitive).
    #[serde(default)]
    pub filter: Option<String>,
}

async fn list_projects(s: Arc<State>, a: ListArgs, _ctx: CallCtx) -> Result<ToolOutput, ToolError> {
    let snap = blocking(&s, |s| Ok(s.catalog.get(s))).await?;
    let filter = a.filter.unwrap_or_default().to_lowercase();
    let projects: Vec<&Project> = snap
        .projects
        .iter()
        .filter(|p| {
            filter.is_empty()
                || p.name.to_lowercase().contains(&filter)
                || p.node.to_lowercase().contains(&filter)
                || p.description.as_deref().unwrap_or("").to_lowercase().contains(&filter)
                || p.stack.iter().any(|x| x.to_lowercase().contains(&filter))
        })
        .collect();
    let mut body = format!("{} project(s):\n", projects.len());
    for p in &projects {
        body.push_str(&format!(
            "- {} [{}] {}:{}{}{}{}\n",
            p.name,
            if p.stack.is_empty() { "unknown stack".to_string() } else { p.stack.join(", ") },
            p.node,
            p.path,
            p.last_modified.as_deref().map(|t| format!(", modified {t}")).unwrap_or_default(),
            p.description.as_deref().map(|d| format!(": {d}")).unwrap_or_default(),
            if p.source == "discovered" { " (discovered)" } else { "" },
        ));
    }
    let mut text = String::new();
    for w in &snap.warnings {
        text.push_str(&format!("warning: {w}\n"));
    }
    // Names, paths and descriptions come from registry files and directory names: outside text.
    text.push_str(&untrusted::wrap("project registry", body.trim_end()));
    let structured = serde_json::json!({ "projects": projects, "warnings": snap.warnings });
    Ok(ToolOutput::new(text, structured).untrusted())
}
