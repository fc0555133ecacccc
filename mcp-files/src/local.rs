//! `file_info` and `list_directory` on this machine, through the capability handles of
//! `mcp_common::guard::local`: entries are looked at with `lstat` relative to an already checked
//! directory handle, symlinks are reported and judged but never followed, subdirectories are
//! entered only when they are real directories, and denied paths are named but never looked into.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use cap_std::fs::{Dir, Metadata, MetadataExt};
use mcp_common::guard::GuardError;
use mcp_common::guard::local::LocalRoots;
use mcp_common::guard::path::Located;

use crate::entry::{EntryInfo, Listing, clean, link_status};

fn entry(real: &Path, name: String, meta: &Metadata) -> EntryInfo {
    EntryInfo::from_stat(real.display().to_string(), name, meta.mode(), meta.size(), Some(meta.mtime()))
}

/// Judge a symlink found at `real` (beneath root `root`): where it leads, if it stays inside.
fn judge_link(roots: &LocalRoots, root: usize, real: &Path, e: &mut EntryInfo, target: Option<PathBuf>) {
    let Some(target) = target else { return };
    e.symlink_target = Some(clean(&target.to_string_lossy()));
    let rel = real.strip_prefix(roots.real_root(root)).map(Path::to_path_buf).unwrap_or_default();
    let at = Located { root, rel, full: real.to_path_buf() };
    let (status, resolved) = link_status(&roots.resolve(&at).map(|p| p.display().to_string()));
    e.target_status = Some(status.into());
    e.resolved = resolved;
}

/// `file_info` for a path on this machine.
pub fn info(roots: &LocalRoots, at: &Located) -> Result<EntryInfo, GuardError> {
    let i = roots.inspect(at)?;
    let name = at.name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| i.real.display().to_string());
    let mut e = entry(&i.real, name, &i.meta);
    judge_link(roots, at.root, &i.real, &mut e, i.link_target);
    Ok(e)
}

/// `list_directory` for a path on this machine: breadth first, sorted by name in each
/// directory, at most `max` entries and `depth` levels (1 = the directory's own entries).
pub fn list(roots: &LocalRoots, at: &Located, depth: u32, max: usize) -> Result<Listing, GuardError> {
    let (dir, real) = roots.open_dir(at)?;
    let mut out = Listing {
        node: roots.node().to_string(),
        path: clean(&real.display().to_string()),
        depth,
        ..Default::default()
    };
    let mut queue: VecDeque<(Dir, PathBuf, PathBuf, u32)> = VecDeque::new();
    queue.push_back((dir, real, PathBuf::new(), 1));
    while let Some((dir, dir_real, prefix, level)) = queue.pop_front() {
        let mut names: Vec<_> = dir
            .entries()
            .map_err(|e| mcp_common::guard::local::io_error(&e, &dir_real))?
            .filter_map(|e| e.ok().map(|e| e.file_name()))
            .collect();
        names.sort();
        for name in names {
            if out.entries.len() >= max {
                out.truncated = true;
                return Ok(out);
            }
            let real = dir_real.join(&name);
            let shown = prefix.join(&name).to_string_lossy().into_owned();
            if roots.guard().denied(&real).is_some() {
                out.entries.push(EntryInfo::denied(real.display().to_string(), shown));
                continue;
            }
            let meta = match dir.symlink_metadata(&name) {
                Ok(m) => m,
                // Gone between readdir and lstat: not worth failing the listing for.
                Err(_) => continue,
            };
            let mut e = entry(&real, shown, &meta);
            if meta.file_type().is_symlink() {
                judge_link(roots, at.root, &real, &mut e, dir.read_link_contents(&name).ok());
            }
            out.entries.push(e);
            if meta.is_dir() && level < depth {
                match roots.open_child_dir(at.root, &dir, &name, &real) {
                    Ok((child, child_real)) => queue.push_back((child, child_real, prefix.join(&name), level + 1)),
                    Err(err) => tracing::debug!(dir = %real.display(), error = %err, "not descending"),
                }
            }
        }
    }
    Ok(out)
}
