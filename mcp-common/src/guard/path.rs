//! Paths a caller names, checked against the configured roots and a denylist, as text first.
//!
//! This is the lexical half of the path rules; [`super::local`] adds the half that touches the
//! file system (symlinks resolved by the kernel beneath the root, the real path re-checked).
//!
//! - The input is taken literally: no `~`, `$VAR` or `%VAR%` expansion (such inputs are refused
//!   so nobody believes they were expanded), no URL-decoding (`%2e%2e%2f` is a file name), no
//!   Unicode normalisation (`..／` with a fullwidth solidus is one ordinary name).
//! - NUL bytes and control characters are refused, never truncated or stripped.
//! - Components are normalised one by one: empty and `.` components vanish, `..` is refused
//!   outright (resolving it textually is wrong once symlinks exist, and no legitimate request
//!   needs it).
//! - Roots are matched component-wise (`Path::starts_with`), so `/app-evil` is not inside `/app`.
//! - The denylist wins over the roots and is matched on the lexical path and again on the real
//!   one; a pattern denies the path it names and everything beneath it.

use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use crate::policy::Refusal;

/// Paths that are never read, listed or written, whatever the roots say (ASCII case-insensitive,
/// `*` matches within one component). The list, plus what holds the same secrets under
/// another name: node TLS keys under `/etc/pve/nodes` (`/etc/pve/local` is a symlink to one of
/// them), the CSRF key `/etc/pve/pve-www.key`, the cluster database behind `/etc/pve`, shadow
/// backups, SSH host keys and users' SSH directories.
pub const DEFAULT_DENY: &[&str] = &[
    "/etc/pve/priv",
    "/etc/pve/local/*.key",
    "/etc/pve/nodes/*/*.key",
    "/etc/pve/*.key",
    "/var/lib/pve-cluster",
    "/etc/shadow",
    "/etc/shadow-",
    "/etc/gshadow",
    "/etc/gshadow-",
    "/root/.ssh",
    "/home/*/.ssh",
    "/etc/ssh/ssh_host_*key",
    "/etc/ssl/private",
    "/etc/corosync/authkey",
    "/proc",
    "/sys",
    "/dev",
    "/boot",
];

/// Longest path accepted (Linux `PATH_MAX`).
pub const MAX_PATH_BYTES: usize = 4096;
/// Longest component accepted (Linux `NAME_MAX`).
pub const MAX_NAME_BYTES: usize = 255;

/// One denylist entry: absolute, one glob per component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DenyPattern {
    pub text: String,
    parts: Vec<Vec<u8>>,
}

impl DenyPattern {
    pub fn parse(text: &str) -> Result<Self, String> {
        if !text.starts_with('/') {
            return Err(format!("deny pattern '{text}' must be an absolute path"));
        }
        let mut parts = Vec::new();
        for c in text.split('/').filter(|c| !c.is_empty() && *c != ".") {
            if c == ".." {
                return Err(format!("deny pattern '{text}' must not contain '..'"));
            }
            parts.push(c.as_bytes().to_ascii_lowercase());
        }
        if parts.is_empty() {
            return Err(format!("deny pattern '{text}' would deny everything"));
        }
        Ok(Self { text: text.to_string(), parts })
    }

    /// Whether `path` (absolute, normalised) is this pattern or lies beneath it.
    pub fn matches(&self, path: &Path) -> bool {
        let comps: Vec<&[u8]> = path
            .components()
            .filter_map(|c| match c {
                Component::Normal(n) => Some(n.as_bytes()),
                _ => None,
            })
            .collect();
        comps.len() >= self.parts.len() && self.parts.iter().zip(&comps).all(|(p, c)| glob(p, &c.to_ascii_lowercase()))
    }
}

/// `*`-only glob within one component.
fn glob(pattern: &[u8], name: &[u8]) -> bool {
    match pattern.iter().position(|b| *b == b'*') {
        None => pattern == name,
        Some(star) => {
            let (head, rest) = (&pattern[..star], &pattern[star + 1..]);
            name.starts_with(head) && (0..=name.len() - head.len()).any(|i| glob(rest, &name[head.len() + i..]))
        }
    }
}

/// A directory tree the server may work in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root {
    /// Absolute and normalised, as configured.
    pub path: PathBuf,
    /// Whether files may be created in it.
    pub writable: bool,
}

/// A caller's path, placed in a root (no file system access yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// Index into [`PathGuard::roots`].
    pub root: usize,
    /// The path beneath the root (empty for the root itself); only normal components.
    pub rel: PathBuf,
    /// `root.path` joined with `rel`.
    pub full: PathBuf,
}

impl Located {
    /// The last component, if the path is not the root itself.
    pub fn name(&self) -> Option<&std::ffi::OsStr> {
        self.rel.file_name()
    }

    /// The parent beneath the root (empty when the path is directly in the root).
    pub fn rel_parent(&self) -> PathBuf {
        self.rel.parent().map(Path::to_path_buf).unwrap_or_default()
    }
}

/// Roots and denylist of one node.
#[derive(Debug, Clone)]
pub struct PathGuard {
    roots: Vec<Root>,
    deny: Vec<DenyPattern>,
}

fn refuse(rule: &str, message: String) -> Refusal {
    Refusal::new(rule, message)
}

/// The printable form of a caller's path for messages (control characters escaped).
pub fn shown(raw: &str) -> String {
    let mut s: String = raw.chars().take(200).flat_map(char::escape_debug).collect();
    if raw.chars().count() > 200 {
        s.push('…');
    }
    s
}

/// Whether `raw` asks for an expansion a shell or Windows would do: `$NAME`, `${…}`, `$(…)`,
/// `%NAME%`.
fn looks_expanded(raw: &str) -> bool {
    let b = raw.as_bytes();
    let dollar =
        b.windows(2).any(|w| w[0] == b'$' && (w[1].is_ascii_alphabetic() || matches!(w[1], b'_' | b'{' | b'(')));
    let mut percent = false;
    let mut rest = raw;
    while let Some(i) = rest.find('%') {
        let after = &rest[i + 1..];
        if let Some(j) = after.find('%') {
            let name = &after[..j];
            percent |= name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        }
        rest = after;
    }
    dollar || percent
}

/// Split a caller's path into normal components, refusing what the rules above refuse.
/// Returns whether it was absolute.
pub fn components(raw: &str) -> Result<(bool, Vec<&str>), Refusal> {
    if raw.trim().is_empty() {
        return Err(refuse("path_invalid", "the path is empty".into()));
    }
    if let Some(i) = raw.find('\0') {
        return Err(refuse(
            "path_nul",
            format!("the path contains a NUL byte at byte {i}; paths are refused, never truncated"),
        ));
    }
    if let Some(c) = raw.chars().find(|c| c.is_control()) {
        return Err(refuse("path_control_char", format!("the path contains the control character U+{:04X}", c as u32)));
    }
    if raw.len() > MAX_PATH_BYTES {
        return Err(refuse("path_invalid", format!("the path is longer than {MAX_PATH_BYTES} bytes")));
    }
    if raw.starts_with('~') || looks_expanded(raw) {
        return Err(refuse(
            "path_expansion",
            format!(
                "'{}' asks for ~, $VAR or %VAR% expansion; paths are taken literally and never expanded, so give the full path",
                shown(raw)
            ),
        ));
    }
    let mut parts = Vec::new();
    for c in raw.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                return Err(refuse(
                    "path_traversal",
                    format!("'{}' contains a '..' component; paths may not climb out of a directory", shown(raw)),
                ));
            }
            c if c.len() > MAX_NAME_BYTES => {
                return Err(refuse("path_invalid", format!("a component is longer than {MAX_NAME_BYTES} bytes")));
            }
            c => parts.push(c),
        }
    }
    Ok((raw.starts_with('/'), parts))
}

/// Normalise a configured absolute path (roots, real paths), refusing `..` and relative paths.
pub fn normalize_absolute(p: &Path) -> Result<PathBuf, String> {
    if !p.is_absolute() {
        return Err(format!("'{}' is not an absolute path", p.display()));
    }
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(n) => out.push(n),
            Component::ParentDir | Component::Prefix(_) => {
                return Err(format!("'{}' must not contain '..'", p.display()));
            }
        }
    }
    Ok(out)
}

impl PathGuard {
    /// Roots (absolute) and extra deny patterns on top of [`DEFAULT_DENY`]. A root that is denied
    /// itself is a configuration error.
    pub fn new(roots: Vec<Root>, extra_deny: &[String]) -> Result<Self, String> {
        let mut deny = DEFAULT_DENY.iter().map(|d| DenyPattern::parse(d)).collect::<Result<Vec<_>, _>>()?;
        for d in extra_deny {
            deny.push(DenyPattern::parse(d)?);
        }
        let mut checked = Vec::new();
        for r in roots {
            let path = normalize_absolute(&r.path)?;
            if let Some(d) = deny.iter().find(|d| d.matches(&path)) {
                return Err(format!("root '{}' lies in the denied path '{}'", path.display(), d.text));
            }
            checked.push(Root { path, writable: r.writable });
        }
        Ok(Self { roots: checked, deny })
    }

    pub fn roots(&self) -> &[Root] {
        &self.roots
    }

    /// The deny pattern that covers `path`, if any.
    pub fn denied(&self, path: &Path) -> Option<&DenyPattern> {
        self.deny.iter().find(|d| d.matches(path))
    }

    fn deny_refusal(&self, shown_path: &Path, d: &DenyPattern) -> Refusal {
        refuse(
            "path_denied",
            format!(
                "'{}' is (or leads to) a path covered by the denylist entry '{}' (secrets and kernel interfaces are never read, listed or written, whatever the roots say)",
                shown_path.display(),
                d.text
            ),
        )
    }

    fn roots_list(&self) -> String {
        if self.roots.is_empty() {
            return "none configured".into();
        }
        self.roots.iter().map(|r| r.path.display().to_string()).collect::<Vec<_>>().join(", ")
    }

    /// Place a caller's path in a root: absolute paths in the deepest root containing them,
    /// relative paths in the first root. `node` only names the node in messages.
    pub fn locate(&self, raw: &str, node: &str) -> Result<Located, Refusal> {
        let (absolute, parts) = components(raw)?;
        let (root, full) = if absolute {
            let full: PathBuf = std::iter::once("/").chain(parts.iter().copied()).collect();
            let best = self
                .roots
                .iter()
                .enumerate()
                .filter(|(_, r)| full.starts_with(&r.path))
                .max_by_key(|(_, r)| r.path.components().count());
            match best {
                Some((i, _)) => (i, full),
                None => {
                    return Err(refuse(
                        "path_outside_roots",
                        format!(
                            "'{}' is not inside a root of node {node} (roots: {}); roots are compared component by component",
                            shown(raw),
                            self.roots_list()
                        ),
                    ));
                }
            }
        } else {
            let r = self.roots.first().ok_or_else(|| {
                refuse("path_outside_roots", format!("node {node} has no roots configured; no path is allowed"))
            })?;
            (0, parts.iter().fold(r.path.clone(), |p, c| p.join(c)))
        };
        if let Some(d) = self.denied(&full) {
            return Err(self.deny_refusal(&full, d));
        }
        let rel = full.strip_prefix(&self.roots[root].path).map(Path::to_path_buf).unwrap_or_default();
        Ok(Located { root, rel, full })
    }

    /// Re-check where a path really is after symlinks were resolved: `real` must lie in
    /// `real_root` (the root's own resolved path) and outside the denylist.
    pub fn check_real(&self, real: &Path, real_root: &Path, asked: &Path) -> Result<(), Refusal> {
        let real = normalize_absolute(real).map_err(|e| refuse("path_escape", e))?;
        // The messages name what the caller asked for, never where it really leads: the real
        // path of something outside the root is itself outside information.
        if !real.starts_with(real_root) {
            return Err(refuse(
                "path_escape",
                format!(
                    "'{}' leads outside its root '{}' (symlinks are followed only within a root)",
                    asked.display(),
                    real_root.display()
                ),
            ));
        }
        if let Some(d) = self.denied(&real) {
            return Err(self.deny_refusal(asked, d));
        }
        Ok(())
    }

    /// Refuse a write into a read-only root.
    pub fn require_writable(&self, at: &Located, node: &str) -> Result<(), Refusal> {
        let r = &self.roots[at.root];
        if r.writable {
            Ok(())
        } else {
            Err(refuse(
                "read_only_root",
                format!("root '{}' of node {node} is read-only; nothing is written there", r.path.display()),
            ))
        }
    }
}

/// Check a file name that becomes a single component (a download's or copy's target name).
pub fn check_file_name(name: &str) -> Result<(), Refusal> {
    let (_, parts) = components(name)?;
    if parts.len() != 1 || parts[0] != name {
        return Err(refuse(
            "path_invalid",
            format!("'{}' is not a plain file name (no '/', '.' or '..')", shown(name)),
        ));
    }
    if name.starts_with('.') {
        return Err(refuse("path_invalid", format!("'{}' starts with '.'; hidden files are not created", shown(name))));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard() -> PathGuard {
        PathGuard::new(
            vec![
                Root { path: "/srv/app".into(), writable: true },
                Root { path: "/srv/app/ro".into(), writable: false },
                Root { path: "/".into(), writable: false },
            ],
            &["/srv/app/secret*".into()],
        )
        .expect("valid")
    }

    fn rule(r: Result<Located, Refusal>) -> String {
        r.map(|l| format!("ok {}", l.full.display())).unwrap_or_else(|e| e.rule)
    }

    #[test]
    fn traversal_expansion_nul_and_control_characters_are_refused_not_rewritten() {
        let g = guard();
        assert_eq!(rule(g.locate("../../../../etc/passwd", "n")), "path_traversal");
        assert_eq!(rule(g.locate("/srv/app/a/../../etc", "n")), "path_traversal");
        assert_eq!(rule(g.locate("~/x", "n")), "path_expansion");
        assert_eq!(rule(g.locate("/srv/app/$HOME", "n")), "path_expansion");
        assert_eq!(rule(g.locate("/srv/app/${X}", "n")), "path_expansion");
        assert_eq!(rule(g.locate("/srv/app/%USERPROFILE%/x", "n")), "path_expansion");
        assert_eq!(rule(g.locate("/srv/app/a\0.txt", "n")), "path_nul");
        assert_eq!(rule(g.locate("/srv/app/a\n", "n")), "path_control_char");
        assert_eq!(rule(g.locate("", "n")), "path_invalid");
    }

    #[test]
    fn encodings_and_look_alikes_are_ordinary_names() {
        let g = guard();
        assert_eq!(rule(g.locate("/srv/app/%2e%2e%2fetc", "n")), "ok /srv/app/%2e%2e%2fetc");
        assert_eq!(rule(g.locate("/srv/app/..／..／etc", "n")), "ok /srv/app/..／..／etc");
        assert_eq!(rule(g.locate("/srv/app/\u{2024}\u{2024}\u{2215}x", "n")), "ok /srv/app/\u{2024}\u{2024}\u{2215}x");
        assert_eq!(rule(g.locate("/srv/app/..\\..\\etc", "n")), "ok /srv/app/..\\..\\etc");
        assert_eq!(rule(g.locate("/srv/app/50%25", "n")), "ok /srv/app/50%25");
        assert_eq!(rule(g.locate("/srv//app/./x/", "n")), "ok /srv/app/x");
    }

    #[test]
    fn roots_match_component_wise_and_the_deepest_root_wins() {
        let g = PathGuard::new(vec![Root { path: "/app".into(), writable: true }], &[]).expect("valid");
        assert_eq!(rule(g.locate("/app-evil/x", "n")), "path_outside_roots");
        assert_eq!(rule(g.locate("/ap", "n")), "path_outside_roots");
        assert_eq!(rule(g.locate("/app", "n")), "ok /app");
        assert_eq!(rule(g.locate("relative/x", "n")), "ok /app/relative/x");
        let g = guard();
        let l = g.locate("/srv/app/ro/f", "n").expect("inside");
        assert_eq!((l.root, l.rel.as_path()), (1, Path::new("f")));
        assert_eq!(g.require_writable(&l, "n").expect_err("ro").rule, "read_only_root");
    }

    #[test]
    fn the_denylist_wins_over_roots_on_lexical_and_real_paths() {
        let g = guard();
        for p in [
            "/etc/pve/priv/authkey.key",
            "/etc/pve/local/pve-ssl.key",
            "/etc/pve/nodes/pve1/pveproxy-ssl.key",
            "/ETC/SHADOW",
            "/root/.ssh/id_ed25519",
            "/home/bob/.ssh",
            "/etc/ssh/ssh_host_ed25519_key",
            "/etc/corosync/authkey",
            "/proc/self/environ",
            "/sys/kernel",
            "/dev/sda",
            "/boot/vmlinuz",
            "/srv/app/secrets/x",
        ] {
            assert_eq!(rule(g.locate(p, "n")), "path_denied", "{p}");
        }
        assert_eq!(rule(g.locate("/etc/pve/local/pve-ssl.pem", "n")), "ok /etc/pve/local/pve-ssl.pem");
        assert_eq!(rule(g.locate("/etc/ssh/ssh_host_ed25519_key.pub", "n")), "ok /etc/ssh/ssh_host_ed25519_key.pub");
        let e = g.check_real(Path::new("/etc/shadow"), Path::new("/"), Path::new("/srv/x")).expect_err("denied");
        assert_eq!(e.rule, "path_denied");
        let e = g.check_real(Path::new("/etc"), Path::new("/srv/app"), Path::new("/srv/app/link")).expect_err("escape");
        assert_eq!(e.rule, "path_escape");
        assert!(PathGuard::new(vec![Root { path: "/proc/1".into(), writable: false }], &[]).is_err());
    }

    #[test]
    fn file_names_are_single_plain_components() {
        assert!(check_file_name("debian-12.iso").is_ok());
        for bad in ["a/b", "..", ".", ".bashrc", "", "a\0b", "/x"] {
            assert!(check_file_name(bad).is_err(), "{bad:?}");
        }
    }
}
