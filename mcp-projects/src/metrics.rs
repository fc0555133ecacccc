//! Code metrics for `analyze_project`: lines per language (code, comments, blank), and counts of
//! error-handling and test patterns.
//!
//! Counted here rather than with the `tokei` crate: tokei walks the file system itself (outside
//! the capability handles and the secret rules) and pulls in about forty crates including a
//! template engine at build time; counting lines of bytes we already read through the guards is a
//! page of code. Comment detection is by line prefix (`//`, `#`, `--`, `/* … */` blocks), which is
//! what an overview needs.

use std::collections::BTreeMap;

use serde::Serialize;

pub use mcp_common::time::iso_time;

/// A language and its line-comment prefixes; block comments are `/* */` for the C family.
struct Lang {
    name: &'static str,
    exts: &'static [&'static str],
    line: &'static [&'static str],
    block: bool,
}

const LANGS: &[Lang] = &[
    Lang { name: "Rust", exts: &["rs"], line: &["//"], block: true },
    Lang { name: "Python", exts: &["py", "pyi"], line: &["#"], block: false },
    Lang { name: "TypeScript", exts: &["ts", "tsx", "mts", "cts"], line: &["//"], block: true },
    Lang { name: "JavaScript", exts: &["js", "jsx", "mjs", "cjs"], line: &["//"], block: true },
    Lang { name: "Go", exts: &["go"], line: &["//"], block: true },
    Lang { name: "C", exts: &["c", "h"], line: &["//"], block: true },
    Lang { name: "C++", exts: &["cc", "cpp", "cxx", "hpp", "hh"], line: &["//"], block: true },
    Lang { name: "Java", exts: &["java"], line: &["//"], block: true },
    Lang { name: "Kotlin", exts: &["kt", "kts"], line: &["//"], block: true },
    Lang { name: "C#", exts: &["cs"], line: &["//"], block: true },
    Lang { name: "Swift", exts: &["swift"], line: &["//"], block: true },
    Lang { name: "PHP", exts: &["php"], line: &["//", "#"], block: true },
    Lang { name: "Ruby", exts: &["rb"], line: &["#"], block: false },
    Lang { name: "Shell", exts: &["sh", "bash", "zsh"], line: &["#"], block: false },
    Lang { name: "Lua", exts: &["lua"], line: &["--"], block: false },
    Lang { name: "SQL", exts: &["sql"], line: &["--"], block: true },
    Lang { name: "Elixir", exts: &["ex", "exs"], line: &["#"], block: false },
    Lang { name: "Dart", exts: &["dart"], line: &["//"], block: true },
    Lang { name: "Terraform", exts: &["tf", "hcl"], line: &["#", "//"], block: true },
    Lang { name: "YAML", exts: &["yml", "yaml"], line: &["#"], block: false },
    Lang { name: "TOML", exts: &["toml"], line: &["#"], block: false },
    Lang { name: "JSON", exts: &["json"], line: &[], block: false },
    Lang { name: "Markdown", exts: &["md", "markdown"], line: &[], block: false },
    Lang { name: "HTML", exts: &["html", "htm"], line: &[], block: false },
    Lang { name: "CSS", exts: &["css", "scss", "sass", "less"], line: &[], block: true },
    Lang { name: "Vue", exts: &["vue"], line: &["//"], block: true },
    Lang { name: "Svelte", exts: &["svelte"], line: &["//"], block: true },
];

fn lang_of(path: &str) -> Option<&'static Lang> {
    let name = path.rsplit('/').next().unwrap_or(path);
    if name == "Dockerfile" || name == "Makefile" {
        return None;
    }
    let ext = name.rsplit_once('.')?.1.to_ascii_lowercase();
    LANGS.iter().find(|l| l.exts.contains(&ext.as_str()))
}

/// The language name of a file, by extension.
pub fn language(path: &str) -> Option<&'static str> {
    lang_of(path).map(|l| l.name)
}

/// Lines of one language.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct LangStats {
    pub files: u32,
    pub code: u64,
    pub comments: u64,
    pub blank: u64,
}

/// Error-handling and test patterns, counted over code files.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Patterns {
    /// Pattern → occurrences (e.g. `unwrap()`, `?` operator lines, `except`, `catch`).
    pub error_handling: BTreeMap<String, u64>,
    /// Pattern → occurrences (e.g. `#[test]`, `def test_`, `it(`/`test(`).
    pub tests: BTreeMap<String, u64>,
    /// Files that are tests by name or place (`tests/`, `*_test.go`, `test_*.py`, `*.spec.ts`).
    pub test_files: u32,
    /// `TODO`/`FIXME`/`XXX`/`HACK` markers.
    pub todo_markers: u64,
}

const ERROR_PATTERNS: &[(&str, &[&str])] = &[
    ("unwrap()", &["Rust"]),
    ("expect(", &["Rust"]),
    ("panic!(", &["Rust"]),
    ("Result<", &["Rust"]),
    ("? operator", &["Rust"]),
    ("except", &["Python"]),
    ("raise ", &["Python"]),
    ("catch", &["TypeScript", "JavaScript", "Java", "Kotlin", "C#", "PHP", "Dart", "Swift", "C++"]),
    ("throw ", &["TypeScript", "JavaScript", "Java", "Kotlin", "C#", "PHP", "Dart", "C++"]),
    ("if err != nil", &["Go"]),
    ("panic(", &["Go"]),
    ("set -e", &["Shell"]),
];

const TEST_PATTERNS: &[(&str, &[&str])] = &[
    ("#[test]", &["Rust"]),
    ("#[tokio::test", &["Rust"]),
    ("def test_", &["Python"]),
    ("func Test", &["Go"]),
    ("describe(", &["TypeScript", "JavaScript"]),
    ("it(", &["TypeScript", "JavaScript"]),
    ("test(", &["TypeScript", "JavaScript"]),
    ("@Test", &["Java", "Kotlin"]),
];

/// Whether a path is a test file by its name or folder.
pub fn is_test_file(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    path.split('/').any(|c| matches!(c, "tests" | "test" | "__tests__" | "spec"))
        || name.ends_with("_test.go")
        || name.starts_with("test_")
        || name.contains(".test.")
        || name.contains(".spec.")
        || name.ends_with("_test.py")
}

/// Metrics over a whole project.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Metrics {
    pub languages: BTreeMap<String, LangStats>,
    pub patterns: Patterns,
    pub files_counted: u32,
}

impl Metrics {
    /// Count one file's text.
    pub fn add(&mut self, path: &str, text: &str) {
        if is_test_file(path) {
            self.patterns.test_files += 1;
        }
        let Some(lang) = lang_of(path) else { return };
        self.files_counted += 1;
        let s = self.languages.entry(lang.name.to_string()).or_default();
        s.files += 1;
        let mut in_block = false;
        for line in text.lines() {
            let t = line.trim();
            if in_block {
                s.comments += 1;
                in_block = !t.contains("*/");
                continue;
            }
            if t.is_empty() {
                s.blank += 1;
            } else if lang.line.iter().any(|p| t.starts_with(p)) {
                s.comments += 1;
            } else if lang.block && t.starts_with("/*") {
                s.comments += 1;
                in_block = !t.contains("*/");
            } else {
                s.code += 1;
            }
            for m in ["TODO", "FIXME", "XXX", "HACK"] {
                if t.contains(m) {
                    self.patterns.todo_markers += 1;
                    break;
                }
            }
            for (pat, langs) in ERROR_PATTERNS {
                if !langs.contains(&lang.name) {
                    continue;
                }
                let n = if *pat == "? operator" {
                    u64::from(t.contains(")?") || t.ends_with('?') || t.contains("?;"))
                } else {
                    t.matches(pat).count() as u64
                };
                if n > 0 {
                    *self.patterns.error_handling.entry((*pat).to_string()).or_default() += n;
                }
            }
            for (pat, langs) in TEST_PATTERNS {
                if langs.contains(&lang.name) && t.contains(pat) {
                    *self.patterns.tests.entry((*pat).to_string()).or_default() += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_split_into_code_comments_and_blank() {
        let mut m = Metrics::default();
        m.add(
            "src/lib.rs",
            "// doc\nfn a() -> Result<(), E> {\n\n    b()?;\n    /* x\n    y */\n}\n#[test]\nfn t() {}\n",
        );
        let rust = &m.languages["Rust"];
        assert_eq!((rust.files, rust.code, rust.comments, rust.blank), (1, 5, 3, 1));
        assert_eq!(m.patterns.error_handling["? operator"], 1);
        assert_eq!(m.patterns.tests["#[test]"], 1);
        m.add("tests/api_test.py", "def test_x():\n    pass  # TODO\n");
        assert_eq!(m.patterns.test_files, 1);
        assert_eq!(m.patterns.todo_markers, 1);
    }

    #[test]
    fn times_are_rfc3339_utc() {
        assert_eq!(iso_time(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso_time(1_795_629_587), "2026-11-25T17:59:47Z");
    }
}
