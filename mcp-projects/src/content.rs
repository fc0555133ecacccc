//! Every file content a tool returns goes through here: binary detection, invisible and control
//! characters removed (so they can neither hide instructions nor split a token past the
//! redaction patterns), then secrets redacted. The tools wrap the result as untrusted data.

use mcp_common::guard::secrets;
use mcp_common::untrusted::sanitize;

/// How much of the start of a file is looked at for NUL bytes.
const BINARY_PROBE: usize = 8192;

/// Whether bytes look like a binary file (a NUL byte early on, as git and ripgrep decide).
pub fn is_binary(bytes: &[u8]) -> bool {
    bytes[..bytes.len().min(BINARY_PROBE)].contains(&0)
}

/// Text ready to leave the server (still to be wrapped as untrusted).
#[derive(Debug, Clone, Default)]
pub struct Clean {
    pub text: String,
    /// Kinds of the secrets replaced.
    pub redacted: Vec<&'static str>,
    /// Invisible or control characters removed.
    pub removed: usize,
}

/// Decode (lossily), sanitize, redact.
pub fn clean(bytes: &[u8]) -> Clean {
    let decoded = String::from_utf8_lossy(bytes);
    let (text, removed) = sanitize(&decoded);
    let r = secrets::redact(&text);
    Clean { text: r.text, redacted: r.found, removed }
}

/// One short line of text for a listing (search results): cut to `max` characters.
pub fn cut(line: &str, max: usize) -> String {
    let t = line.trim_end();
    if t.chars().count() <= max {
        return t.to_string();
    }
    let mut s: String = t.chars().take(max).collect();
    s.push('…');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_split_by_a_zero_width_space_is_still_redacted() {
        let c = clean("key = ghp_\u{200B}0123456789abcdefghijABCDEFGHIJ012345\n".as_bytes());
        assert_eq!(c.text, "key = [REDACTED:github_token]\n");
        assert_eq!(c.removed, 1);
    }

    #[test]
    fn nul_bytes_mean_binary() {
        assert!(is_binary(b"\x7fELF\0\0"));
        assert!(!is_binary("plain text ü".as_bytes()));
    }
}
