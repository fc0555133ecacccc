//! What becomes a semantic memory: preferences ("I prefer…", "always…", "never…") and facts ("my backup
//! storage is…", "remember that…") stated in the operator's own message. This is the only way text becomes
//! a preference or fact besides the operator's own REST call: tool results, files, VM notes and model
//! output never pass through here (the caller hands in nothing but the `send` text).

use std::sync::LazyLock;

use regex::Regex;

/// A memory found in a user message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extracted {
    /// `preference` or `fact`.
    pub kind: &'static str,
    /// The operator's sentence, trimmed.
    pub text: String,
    /// De-duplication key: a newer statement with the same key replaces the older one.
    pub key: String,
}

static PREFERENCE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)^(?:please\s+|and\s+|also\s+|jarvis,?\s+)*(?:i\s+(?:really\s+|would\s+|do\s+)?(?:prefer|like|want|'d like|would like|'d rather|would rather|hate|dislike|don't like|do not like)\b|always\b|never\b|don't ever\b|do not ever\b|from now on\b|in (?:the )?future\b|going forward\b)",
    )
    .expect("static regex")
});
static MY_FACT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^(?:fyi,?\s+|btw,?\s+)?(my|our)\s+([a-z0-9][a-z0-9 _'-]{1,40}?)\s+(?:is|are|=|lives on|runs on|sits on)\s+\S")
        .expect("static regex")
});
static REMEMBER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^(?:please\s+)?(?:remember|note|keep in mind|for the record)[:,]?\s+(?:that\s+)?(.{6,})")
        .expect("static regex")
});
static WE_USE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)^we\s+(?:use|run|keep|store|back up)\s+(.{4,})").expect("static regex"));

/// Lower-case words only: the key of a statement.
pub fn normalize(text: &str) -> String {
    text.to_lowercase()
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { ' ' })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Sentences: split at line breaks, `;`, and `.`/`!`/`?` followed by a space or the end (so IP addresses,
/// versions and file names stay whole).
fn sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    for line in text.split(['\n', ';']) {
        let bytes = line.as_bytes();
        let mut start = 0;
        for (i, b) in bytes.iter().enumerate() {
            if matches!(b, b'.' | b'!' | b'?') && bytes.get(i + 1).is_none_or(|n| n.is_ascii_whitespace()) {
                out.push(line[start..=i].trim());
                start = i + 1;
            }
        }
        out.push(line[start..].trim());
    }
    out.retain(|s| !s.is_empty());
    out
}

/// Preferences and facts stated in `text` (the operator's own message).
pub fn from_user_message(text: &str) -> Vec<Extracted> {
    let mut out: Vec<Extracted> = Vec::new();
    for s in sentences(text) {
        if s.ends_with('?') || s.chars().count() < 8 {
            continue;
        }
        let clean: String = s.chars().take(300).collect::<String>().trim_end_matches(['.', '!']).to_string();
        let found = if PREFERENCE.is_match(&clean) {
            Some(Extracted { kind: "preference", key: normalize(&clean), text: clean })
        } else if let Some(c) = MY_FACT.captures(&clean) {
            let subject = normalize(&format!("{} {}", &c[1], &c[2]));
            Some(Extracted { kind: "fact", key: subject.replacen("our ", "my ", 1), text: clean })
        } else if let Some(c) = REMEMBER.captures(&clean) {
            let body = c[1].to_string();
            Some(Extracted { kind: "fact", key: normalize(&body), text: body })
        } else if WE_USE.is_match(&clean) {
            Some(Extracted { kind: "fact", key: normalize(&clean), text: clean })
        } else {
            None
        };
        if let Some(e) = found
            && !out.iter().any(|o| o.key == e.key)
        {
            out.push(e);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<(&'static str, String)> {
        from_user_message(text).into_iter().map(|e| (e.kind, e.text)).collect()
    }

    #[test]
    fn preferences_and_facts_are_found_in_plain_statements() {
        assert_eq!(kinds("I prefer short answers."), [("preference", "I prefer short answers".to_string())]);
        assert_eq!(kinds("Always snapshot before an upgrade!")[0].0, "preference");
        assert_eq!(kinds("never migrate VM 204 during business hours")[0].0, "preference");
        assert_eq!(
            kinds("My backup storage is pbs-nas on 10.0.0.20."),
            [("fact", "My backup storage is pbs-nas on 10.0.0.20".to_string())]
        );
        assert_eq!(kinds("remember that pve3 has a flaky NIC")[0], ("fact", "pve3 has a flaky NIC".to_string()));
    }

    #[test]
    fn questions_and_ordinary_requests_are_not_memories() {
        assert!(kinds("Do I prefer short answers?").is_empty());
        assert!(kinds("Stop VM 101 please").is_empty());
        assert!(kinds("what's my backup storage?").is_empty());
    }

    #[test]
    fn a_restated_fact_has_the_same_key() {
        let a = from_user_message("My backup storage is pbs-nas.");
        let b = from_user_message("our backup storage is local-zfs");
        assert_eq!(a[0].key, b[0].key);
    }
}
