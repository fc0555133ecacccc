//! Sentences for speech from the model's token stream, as early as possible: a sentence is
//! emitted as soon as its terminator (`.`, `!`, `?`, `…`, optionally followed by a closing
//! quote or bracket) is followed by whitespace, so "Yes." is spoken before the model writes on.
//!
//! What is not read verbatim: code blocks (skipped), inline code (backticks dropped), links
//! (their text), bare URLs ("a link"), emphasis and heading marks, list markers, table pipes.
//! Not a sentence end: abbreviations (`e.g.`, `Dr.`), initials (`J. Smith`), decimals and
//! versions (`3.5`, `v1.2.3`: no whitespace after the dot). List items, headings, table rows
//! and paragraphs end a sentence at their line end; an over-long sentence is cut at a comma.
//!
//! First audio sooner: with [`SentenceSplitter::first_clause`], the first piece of an answer
//! ends at its first comma/semicolon/colon once it is at least 12 characters long
//! ("Certainly, sir," is spoken while the model writes the rest of the sentence).

use std::sync::LazyLock;

use regex::Regex;

/// Sentences longer than this (characters) are cut at a comma or space.
const MAX_SENTENCE: usize = 280;
/// Shortest first clause spoken on its own.
const MIN_FIRST_CLAUSE: usize = 12;
/// Abbreviations (lower case, without the final dot) that do not end a sentence.
const ABBREVIATIONS: &[&str] = &[
    "e.g", "i.e", "vs", "mr", "mrs", "ms", "dr", "approx", "fig", "inc", "ltd", "jr", "sr", "cf", "resp", "ca", "vol",
    "dept", "u.s",
];

static LINK: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"!?\[([^\]]*)\]\([^)]*\)").expect("static regex"));
static URL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\b(?:https?://|www\.)[^\s<>()\[\]]+").expect("static regex"));
static EMPHASIS: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\*\*|__|~~|\*|`").expect("static regex"));
static LIST: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^\s*(?:[-*+•]|\d{1,3}[.)])\s+").expect("static regex"));
static SPACES: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\s+").expect("static regex"));

/// Markdown and URLs out, whitespace collapsed; None when nothing speakable is left.
pub fn speakable(raw: &str) -> Option<String> {
    let s = LINK.replace_all(raw, "$1");
    let s = URL.replace_all(&s, "a link");
    let s = EMPHASIS.replace_all(&s, "");
    let s = s.trim_start_matches(['#', '>', ' ']);
    let s = SPACES.replace_all(s, " ");
    let s = s.trim();
    s.chars().any(char::is_alphanumeric).then(|| s.to_string())
}

/// Normalised text for cache keys: whitespace collapsed and trimmed.
pub fn normalise(text: &str) -> String {
    SPACES.replace_all(text, " ").trim().to_string()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LineKind {
    Prose,
    List,
    Heading,
    Table,
    Fence,
    Code,
}

/// Splits a token stream into speakable sentences.
#[derive(Debug, Default)]
pub struct SentenceSplitter {
    /// The current (incomplete) line.
    line: String,
    /// Bytes of `line` already moved into `sentence`.
    consumed: usize,
    kind: Option<LineKind>,
    in_code: bool,
    /// Raw text of the sentence being built (may span lines).
    sentence: String,
    /// Cut the first piece at a clause boundary (see the module documentation).
    first_clause: bool,
    emitted: usize,
}

impl SentenceSplitter {
    pub fn new() -> Self {
        Self::default()
    }

    /// A splitter whose first piece may end at a clause boundary.
    pub fn first_clause() -> Self {
        Self { first_clause: true, ..Self::default() }
    }

    /// Feed a chunk of the stream; returns the sentences it completed.
    pub fn push(&mut self, chunk: &str) -> Vec<String> {
        let mut out = Vec::new();
        for part in chunk.split_inclusive('\n') {
            match part.strip_suffix('\n') {
                Some(rest) => {
                    self.line.push_str(rest);
                    self.scan(&mut out);
                    self.end_line(&mut out);
                }
                None => self.line.push_str(part),
            }
        }
        self.scan(&mut out);
        out
    }

    /// End of the stream: whatever is left.
    pub fn finish(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        self.scan(&mut out);
        self.end_line(&mut out);
        self.flush(&mut out);
        out
    }

    fn flush(&mut self, out: &mut Vec<String>) {
        if let Some(s) = speakable(&self.sentence) {
            out.push(s);
            self.emitted += 1;
        }
        self.sentence.clear();
    }

    fn classify(&mut self, out: &mut Vec<String>) -> Option<LineKind> {
        if let Some(k) = self.kind {
            return Some(k);
        }
        let t = self.line.trim_start();
        let fence = t.starts_with("```") || t.starts_with("~~~");
        if self.in_code && !fence {
            // Wait for enough characters to tell a closing fence from code.
            if t.len() < 3 && !t.contains(char::is_whitespace) {
                return None;
            }
            self.kind = Some(LineKind::Code);
            return self.kind;
        }
        if !fence && t.len() < 4 && !t.contains(char::is_whitespace) {
            return None;
        }
        let kind = if fence {
            LineKind::Fence
        } else if t.starts_with('#') {
            LineKind::Heading
        } else if t.starts_with('|') {
            LineKind::Table
        } else if LIST.is_match(&self.line) {
            LineKind::List
        } else {
            LineKind::Prose
        };
        if kind != LineKind::Prose {
            // A list, heading, table or code block starts: what came before is a sentence.
            self.flush(out);
        }
        if kind == LineKind::List {
            self.consumed = LIST.find(&self.line).map(|m| m.end()).unwrap_or(0);
        }
        self.kind = Some(kind);
        self.kind
    }

    /// Move complete sentences of the current line out.
    fn scan(&mut self, out: &mut Vec<String>) {
        if !matches!(self.classify(out), Some(LineKind::Prose | LineKind::List)) {
            return;
        }
        loop {
            let rest = &self.line[self.consumed..];
            let mut end = sentence_end(rest);
            if self.first_clause && self.emitted == 0 {
                let already = self.sentence.chars().count();
                if let Some(c) = clause_end(rest, MIN_FIRST_CLAUSE.saturating_sub(already)) {
                    end = Some(end.map_or(c, |e| e.min(c)));
                }
            }
            match end {
                Some(end) => {
                    self.sentence.push_str(&rest[..end]);
                    self.consumed += end;
                    self.flush(out);
                }
                None => {
                    let total = self.sentence.chars().count() + rest.chars().count();
                    if total <= MAX_SENTENCE {
                        return;
                    }
                    let Some(cut) = long_cut(rest) else { return };
                    self.sentence.push_str(&rest[..cut]);
                    self.consumed += cut;
                    self.flush(out);
                }
            }
        }
    }

    fn end_line(&mut self, out: &mut Vec<String>) {
        let kind = self.classify(out).unwrap_or(if self.in_code { LineKind::Code } else { LineKind::Prose });
        let rest = self.line[self.consumed..].to_string();
        match kind {
            LineKind::Fence => self.in_code = !self.in_code,
            LineKind::Code => {}
            LineKind::Heading => {
                self.sentence.push_str(&rest);
                self.flush(out);
            }
            LineKind::Table => {
                let cells: Vec<&str> =
                    rest.trim().trim_matches('|').split('|').map(str::trim).filter(|c| !c.is_empty()).collect();
                let separator = cells.iter().all(|c| c.chars().all(|ch| matches!(ch, '-' | ':' | ' ')));
                if !separator {
                    self.sentence.push_str(&cells.join(", "));
                    self.flush(out);
                }
            }
            LineKind::List => {
                self.sentence.push_str(&rest);
                self.flush(out);
            }
            LineKind::Prose => {
                if rest.trim().is_empty() && self.line.trim().is_empty() {
                    self.flush(out); // blank line: paragraph end
                } else {
                    self.sentence.push_str(&rest);
                    self.sentence.push(' ');
                    if rest.trim_end().ends_with(':') {
                        self.flush(out);
                    }
                }
            }
        }
        self.line.clear();
        self.consumed = 0;
        self.kind = None;
    }
}

/// Byte offset just after the first sentence end in `s` (terminator, optional closers, and a
/// following whitespace that must already be there).
fn sentence_end(s: &str) -> Option<usize> {
    let chars: Vec<(usize, char)> = s.char_indices().collect();
    let mut i = 0;
    while i < chars.len() {
        let (pos, c) = chars[i];
        if matches!(c, '.' | '!' | '?' | '…') {
            let mut j = i + 1;
            while j < chars.len() && matches!(chars[j].1, '.' | '!' | '?' | '…') {
                j += 1;
            }
            while j < chars.len() && matches!(chars[j].1, '"' | '\'' | ')' | ']' | '”' | '’' | '*' | '_' | '`') {
                j += 1;
            }
            if j < chars.len() && chars[j].1.is_whitespace() && !(c == '.' && j == i + 1 && abbreviation(&s[..pos])) {
                return Some(chars[j].0);
            }
            i = j.max(i + 1);
        } else {
            i += 1;
        }
    }
    None
}

/// Byte offset after the first `,`/`;`/`:` followed by whitespace, with at least `min_chars`
/// characters before it.
fn clause_end(s: &str, min_chars: usize) -> Option<usize> {
    let chars: Vec<(usize, char)> = s.char_indices().collect();
    (0..chars.len().saturating_sub(1)).find_map(|i| {
        let (pos, c) = chars[i];
        (matches!(c, ',' | ';' | ':') && chars[i + 1].1.is_whitespace() && i + 1 >= min_chars)
            .then(|| chars[i + 1].0)
            .filter(|_| pos < s.len())
    })
}

/// Does the word before a dot make it an abbreviation or an initial?
fn abbreviation(before: &str) -> bool {
    let word = before.rsplit(|c: char| c.is_whitespace() || c == '(').next().unwrap_or("");
    let lower = word.to_lowercase();
    let single_initial = word.chars().count() == 1 && word.chars().all(|c| c.is_uppercase());
    single_initial || ABBREVIATIONS.contains(&lower.as_str())
}

/// Where to cut a sentence that has grown too long: after the last comma/semicolon/colon in
/// the first `MAX_SENTENCE` characters, else after the last space.
fn long_cut(s: &str) -> Option<usize> {
    let limit = s.char_indices().nth(MAX_SENTENCE).map(|(i, _)| i).unwrap_or(s.len());
    let head = &s[..limit];
    head.rfind([',', ';', ':']).map(|i| i + 1).or_else(|| head.rfind(' ').filter(|&i| i > 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feed `text` in chunks of `n` characters, collect everything.
    fn split(text: &str, n: usize) -> Vec<String> {
        let mut s = SentenceSplitter::new();
        let chars: Vec<char> = text.chars().collect();
        let mut out = Vec::new();
        for chunk in chars.chunks(n) {
            out.extend(s.push(&chunk.iter().collect::<String>()));
        }
        out.extend(s.finish());
        out
    }

    fn all_chunkings(text: &str, expected: &[&str]) {
        for n in [1, 2, 3, 5, 7, 64, 10_000] {
            assert_eq!(split(text, n), expected, "chunk size {n}");
        }
    }

    #[test]
    fn short_replies_are_spoken() {
        all_chunkings("Yes.", &["Yes."]);
        all_chunkings("Done. Anything else, sir?", &["Done.", "Anything else, sir?"]);
    }

    #[test]
    fn a_sentence_is_emitted_before_the_stream_ends() {
        let mut s = SentenceSplitter::new();
        assert!(s.push("Certainly, sir").is_empty());
        assert!(s.push(".").is_empty(), "a dot alone may still be a decimal or an abbreviation");
        assert_eq!(s.push(" The"), vec!["Certainly, sir."]);
        assert_eq!(s.finish(), vec!["The"]);
    }

    #[test]
    fn abbreviations_decimals_versions_and_initials_do_not_split() {
        all_chunkings(
            "Load is 3.5 on pve1, e.g. the backup job. Dr. Who runs v1.2.3 now! J. Smith agrees.",
            &["Load is 3.5 on pve1, e.g. the backup job.", "Dr. Who runs v1.2.3 now!", "J. Smith agrees."],
        );
    }

    #[test]
    fn urls_and_links_are_not_read_out() {
        all_chunkings(
            "See https://pve.example.com:8006/#v1:0 for details. Or read [the guide](http://x.y/z.html).",
            &["See a link for details.", "Or read the guide."],
        );
    }

    #[test]
    fn code_blocks_are_skipped_and_inline_code_is_plain() {
        all_chunkings(
            "Run this:\n```bash\nqm start 101. Then qm stop.\n```\nThat starts `vm-101`. Done.",
            &["Run this:", "That starts vm-101.", "Done."],
        );
    }

    #[test]
    fn lists_headings_and_tables() {
        all_chunkings(
            "## Status\nThree guests are down:\n- web01 on pve1\n- **db02** (stopped)\n1. Restart them\n\n| VM | State |\n|---|---|\n| 101 | running |\nAll good.",
            &[
                "Status",
                "Three guests are down:",
                "web01 on pve1",
                "db02 (stopped)",
                "Restart them",
                "VM, State",
                "101, running",
                "All good.",
            ],
        );
    }

    #[test]
    fn prose_across_lines_joins_and_paragraphs_end_sentences() {
        all_chunkings(
            "The node is\nhealthy and idle\n\nNext paragraph",
            &["The node is healthy and idle", "Next paragraph"],
        );
    }

    #[test]
    fn quotes_and_ellipses_stay_with_their_sentence() {
        all_chunkings(
            "He said \"stop.\" Then... silence. Really?! Yes.",
            &["He said \"stop.\"", "Then...", "silence.", "Really?!", "Yes."],
        );
    }

    #[test]
    fn long_sentences_are_cut_at_a_comma() {
        let long = format!("{}, and then it ends.", "word ".repeat(80));
        let out = split(&long, 4);
        assert!(out.len() >= 2, "{out:?}");
        assert!(out.iter().all(|s| s.chars().count() <= MAX_SENTENCE + 5), "{out:?}");
    }

    #[test]
    fn the_first_clause_can_be_spoken_alone() {
        for n in [1, 3, 64] {
            let mut s = SentenceSplitter::first_clause();
            let chars: Vec<char> = "Certainly, sir, all four nodes are up. Yes, sir, indeed.".chars().collect();
            let mut out = Vec::new();
            for c in chars.chunks(n) {
                out.extend(s.push(&c.iter().collect::<String>()));
            }
            out.extend(s.finish());
            assert_eq!(out, ["Certainly, sir,", "all four nodes are up.", "Yes, sir, indeed."], "chunk {n}");
        }
        let mut s = SentenceSplitter::first_clause();
        let mut out = s.push("Yes, I did. ");
        out.extend(s.finish());
        assert_eq!(out, ["Yes, I did."], "too short a clause waits for the sentence");
    }

    #[test]
    fn nothing_speakable_gives_nothing() {
        all_chunkings("```\nonly code\n```\n---\n", &[]);
        assert_eq!(speakable("**  **"), None);
        assert_eq!(normalise("  a \n b  "), "a b");
    }
}
