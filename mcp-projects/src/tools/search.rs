//! `search_project`: ripgrep's matcher and searcher over one or all projects.
//!
//! Files are found by the same walker as `project_structure` (.gitignore honoured, vendored
//! folders skipped, secret files never opened), read through the guarded tree, sanitized and
//! **redacted before they are searched**: a match can only ever show redacted text, and a search
//! for a secret's value finds nothing.

use std::sync::Arc;

use grep_regex::{RegexMatcher, RegexMatcherBuilder};
use grep_searcher::sinks::UTF8;
use grep_searcher::{BinaryDetection, SearcherBuilder};
use ignore::overrides::{Override, OverrideBuilder};
use mcp_common::tier::Tier::Green;
use mcp_common::tool::{CallCtx, Registry, ToolError, ToolOutput, ToolSpec};
use mcp_common::untrusted;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::blocking;
use crate::content;
use crate::registry::Project;
use crate::state::State;
use crate::tree::{Tree, walk};

/// Longest pattern accepted.
const MAX_PATTERN: usize = 1000;
/// Longest line shown in a result.
const MAX_LINE_CHARS: usize = 300;
/// Deepest directory level searched.
const SEARCH_DEPTH: u32 = 32;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchArgs {
    /// Project name; omit it to search every project.
    #[serde(default)]
    pub project: Option<String>,
    /// Text to find (literal unless `regex` is true).
    pub pattern: String,
    /// Treat `pattern` as a regular expression (Rust regex syntax).
    #[serde(default)]
    pub regex: Option<bool>,
    /// Only files matching this glob (gitignore syntax, e.g. `*.rs` or `src/**/*.ts`).
    #[serde(default)]
    pub glob: Option<String>,
    /// Ignore case.
    #[serde(default)]
    pub case_insensitive: Option<bool>,
    /// Most matches to return (default and upper bound: the server's `limits.max_search_results`).
    #[serde(default)]
    pub max_results: Option<u32>,
}

/// One match.
#[derive(Debug, Clone, Serialize)]
pub struct Hit {
    pub project: String,
    pub path: String,
    pub line: u64,
    pub text: String,
}

pub fn register(r: &mut Registry<State>) {
    r.add(
        ToolSpec {
            name: "search_project",
            title: "Search projects",
            description: "Search one project or all of them for text or a regular expression (ripgrep's engine), \
                          optionally limited to a glob; results as project:path:line: text. .gitignore is honoured, \
                          vendored and build folders and secret files are skipped, and secrets are redacted.",
            tier: Green,
            idempotent: true,
            open_world: false,
        },
        search_project,
    );
}

fn matcher(a: &SearchArgs) -> Result<RegexMatcher, ToolError> {
    if a.pattern.is_empty() || a.pattern.len() > MAX_PATTERN {
        return Err(ToolError::Invalid(format!("the pattern must have 1 to {MAX_PATTERN} bytes")));
    }
    RegexMatcherBuilder::new()
        .fixed_strings(!a.regex.unwrap_or(false))
        .case_insensitive(a.case_insensitive.unwrap_or(false))
        .size_limit(1 << 20)
        .dfa_size_limit(4 << 20)
        .build(&a.pattern)
        .map_err(|e| ToolError::Invalid(format!("bad pattern: {e}")))
}

fn glob(g: Option<&str>) -> Result<Option<Override>, ToolError> {
    let Some(g) = g.filter(|g| !g.is_empty()) else { return Ok(None) };
    let mut b = OverrideBuilder::new("/project");
    b.add(g).map_err(|e| ToolError::Invalid(format!("bad glob: {e}")))?;
    Ok(Some(b.build().map_err(|e| ToolError::Invalid(format!("bad glob: {e}")))?))
}

struct Budget {
    max_results: usize,
    files_left: usize,
    hits: Vec<Hit>,
    truncated: bool,
}

fn search_tree(
    tree: &dyn Tree,
    p: &Project,
    m: &RegexMatcher,
    g: Option<&Override>,
    cap: u64,
    b: &mut Budget,
) -> Result<(), ToolError> {
    let walked = walk(tree, SEARCH_DEPTH, b.files_left.saturating_mul(4).max(1))?;
    let mut searcher = SearcherBuilder::new().binary_detection(BinaryDetection::quit(0)).line_number(true).build();
    for e in walked.entries.iter().filter(|e| e.readable()) {
        if b.hits.len() >= b.max_results || b.files_left == 0 {
            b.truncated = true;
            return Ok(());
        }
        if let Some(g) = g
            && !g.matched(std::path::Path::new("/project").join(&e.path), false).is_whitelist()
        {
            continue;
        }
        b.files_left -= 1;
        let Ok(read) = tree.read(std::path::Path::new(&e.path), cap) else { continue };
        if content::is_binary(&read.bytes) {
            continue;
        }
        let clean = content::clean(&read.bytes);
        let (max, path) = (b.max_results, content::clean(e.path.as_bytes()).text);
        let hits = &mut b.hits;
        let result = searcher.search_slice(
            m,
            clean.text.as_bytes(),
            UTF8(|line, text| {
                hits.push(Hit {
                    project: p.name.clone(),
                    path: path.clone(),
                    line,
                    text: content::cut(text, MAX_LINE_CHARS),
                });
                Ok(hits.len() < max)
            }),
        );
        if let Err(err) = result {
            tracing::debug!(file = %e.path, error = %err, "search failed on one file");
        }
    }
    if walked.truncated {
        b.truncated = true;
    }
    Ok(())
}

async fn search_project(s: Arc<State>, a: SearchArgs, _ctx: CallCtx) -> Result<ToolOutput, ToolError> {
    let m = matcher(&a)?;
    let g = glob(a.glob.as_deref())?;
    let limits = s.config.limits.clone();
    let max_results = a.max_results.unwrap_or(limits.max_search_results).clamp(1, limits.max_search_results.max(1));
    let pattern = a.pattern.clone();
    let (b, warnings) = blocking(&s, move |s| {
        let (projects, warnings) = match &a.project {
            Some(name) => (vec![s.catalog.find(s, name)?], Vec::new()),
            None => {
                let snap = s.catalog.get(s);
                (snap.projects.clone(), snap.warnings.clone())
            }
        };
        let mut b = Budget {
            max_results: max_results as usize,
            files_left: limits.max_search_files as usize,
            hits: Vec::new(),
            truncated: false,
        };
        let mut warnings = warnings;
        for p in &projects {
            if b.hits.len() >= b.max_results {
                b.truncated = true;
                break;
            }
            let r = s.with_tree(p, |t| search_tree(t, p, &m, g.as_ref(), limits.max_file_bytes, &mut b));
            if let Err(e) = r {
                if a.project.is_some() {
                    return Err(e);
                }
                warnings.push(format!("project {} not searched: {e}", p.name));
            }
        }
        Ok((b, warnings))
    })
    .await?;
    let mut body = String::new();
    for h in &b.hits {
        body.push_str(&format!("{}:{}:{}: {}\n", h.project, h.path, h.line, h.text));
    }
    let mut text = format!(
        "{} match(es) for {:?}{}\n",
        b.hits.len(),
        content::cut(&pattern, 100),
        if b.truncated { " (stopped at the result or file limit)" } else { "" }
    );
    for w in &warnings {
        text.push_str(&format!("warning: {w}\n"));
    }
    text.push_str(&untrusted::wrap("search results from project files", body.trim_end()));
    let structured = json!({ "matches": b.hits, "truncated": b.truncated, "warnings": warnings });
    Ok(ToolOutput::new(text, structured).untrusted())
}
