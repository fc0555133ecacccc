//! Secrets that never leave: files refused by their path, and secret-looking text replaced by a
//! marker in every content a tool returns.
//!
//! Why two layers: a path rule stops `.env`, `id_ed25519` or `terraform.tfstate` before a byte is
//! read, but a token pasted into `config.py` has an ordinary path; redaction catches that. Both
//! are deliberately *high-confidence*: a rule that fired on `tokenizer.py` or on every `token`
//! variable would teach operators to turn the guard off.
//!
//! Path rules ([`blocked`]) look at the normalised path component by component, ASCII
//! case-insensitively (`.ENV`, `ID_RSA` are blocked; `env.ts`, `keyboard.rs`, `credentials.rs`,
//! `kubeconfig.go` are not):
//! - env files: `.env`, `.env.*`, `.env-*`, `.env_*`, `*.env`, `.envrc` — except **templates**
//!   (`.env.example`, `.env.sample`, `.env.template`, `.env.dist`, `.env.defaults`, `example.env`):
//!   policy: templates are readable, because they document which settings exist, and their content is
//!   redacted like everything else (a real value committed into a template is still replaced);
//! - private keys (`id_rsa`, `id_ed25519`, … but not `*.pub`; `*.pem`, `*.key`, `*.p12`, `*.pfx`,
//!   `*.jks`, `*.ppk`, `*.keystore`, `ssh_host_*_key`);
//! - credential stores (`.npmrc`, `.pypirc`, `.netrc`, `.pgpass`, `.git-credentials`, kubeconfigs,
//!   `*.tfstate`, `*.tfvars`, `credentials.json`, `secrets.y*ml`, …);
//! - secret folders (`.ssh`, `.gnupg`, `.aws`, `.azure`, `.gcloud`, `.kube`, `.docker`, `.git`, …);
//! - Proxmox secrets (`/etc/pve/priv/…`, node SSL keys, the corosync `authkey`).
//!
//! Redaction ([`redact`]) replaces private key blocks, tokens with well-known prefixes (AWS, GitHub,
//! GitLab, Slack, OpenAI, Anthropic, Google, Stripe, Hugging Face, npm, PyPI, JWTs), the secret half
//! of `PVEAPIToken=user@realm!id=secret`, passwords in URLs and `Authorization` headers, and quoted
//! password/secret/token assignments. Multi-line matches keep their line count, so line numbers
//! of everything else stay right. Callers must [`sanitize`](crate::untrusted::sanitize) first:
//! a zero-width space inside a token would otherwise hide it from the patterns and then vanish.

use std::path::{Component, Path};
use std::sync::LazyLock;

use regex::{Captures, Regex};

use crate::policy::Refusal;

/// The refusal rule for a blocked secret path.
pub const RULE: &str = "secret_blocked";

/// Why a path is blocked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKind {
    EnvFile,
    PrivateKey,
    CredentialStore,
    SecretFolder,
    GitInternals,
    ProxmoxSecret,
}

impl SecretKind {
    /// Words for messages: "blocked: private key file".
    pub fn describe(self) -> &'static str {
        match self {
            SecretKind::EnvFile => "environment file with secrets",
            SecretKind::PrivateKey => "private key file",
            SecretKind::CredentialStore => "credential store",
            SecretKind::SecretFolder => "secret folder",
            SecretKind::GitInternals => "git internals",
            SecretKind::ProxmoxSecret => "Proxmox secret",
        }
    }
}

/// A blocked path: which kind of secret, and the component that matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocked {
    pub kind: SecretKind,
    pub component: String,
}

impl Blocked {
    /// The refusal a tool returns (and the gate audits).
    pub fn refusal(&self, shown_path: &str) -> Refusal {
        Refusal::new(
            RULE,
            format!(
                "blocked: {} ('{}' in '{shown_path}'); secrets are never read, searched or returned",
                self.kind.describe(),
                self.component
            ),
        )
    }
}

const SECRET_DIRS: &[&str] =
    &[".ssh", ".gnupg", ".aws", ".azure", ".gcloud", ".kube", ".docker", ".password-store", ".vault", ".minikube"];
const ENV_TEMPLATES: &[&str] = &["example", "sample", "template", "dist", "defaults", "tmpl", "tpl"];
const PRIVATE_KEY_NAMES: &[&str] =
    &["id_rsa", "id_dsa", "id_ecdsa", "id_ed25519", "id_ecdsa_sk", "id_ed25519_sk", "identity", "authkey"];
const BACKUP_EXTS: &[&str] = &["bak", "old", "orig", "backup", "save", "copy", "tmp", "swp", "txt"];
const PRIVATE_KEY_EXTS: &[&str] = &["pem", "key", "p12", "pfx", "jks", "ppk", "keystore", "p8", "keytab"];
const CREDENTIAL_NAMES: &[&str] = &[
    ".npmrc",
    ".pypirc",
    ".netrc",
    "_netrc",
    ".pgpass",
    ".git-credentials",
    ".my.cnf",
    ".boto",
    ".s3cfg",
    ".htpasswd",
    ".dockercfg",
    ".vault-token",
    ".terraformrc",
    "terraform.rc",
    "credentials.json",
    "credentials.toml",
    "client_secret.json",
    "service-account.json",
    "kubeconfig",
    "secrets.yml",
    "secrets.yaml",
    "secret.yml",
    "secret.yaml",
    "secrets.json",
    "secrets.toml",
    "master.key",
];
const CREDENTIAL_EXTS: &[&str] = &["tfstate", "tfvars", "kubeconfig", "kdbx", "keychain"];

fn env_kind(name: &str) -> Option<SecretKind> {
    // `.env.local`, `.env-prod`, `.env_bak`, `.env~`; `prod.env`; `.envrc`.
    let rest = name.strip_prefix(".env").or_else(|| name.strip_suffix(".env"))?;
    if name == ".envrc" || rest.is_empty() {
        return Some(SecretKind::EnvFile);
    }
    if name.starts_with(".env") {
        let suffix = rest.strip_prefix(['.', '-', '_', '~']).or((rest == "~").then_some(""))?;
        let is_template = !suffix.is_empty() && suffix.split('.').all(|p| ENV_TEMPLATES.contains(&p));
        return (!is_template).then_some(SecretKind::EnvFile);
    }
    // `something.env`: a template when its stem is one of the template words.
    let is_template = ENV_TEMPLATES.contains(&rest) || rest.ends_with(".example") || rest.ends_with(".sample");
    (!is_template).then_some(SecretKind::EnvFile)
}

/// Whether `name` (a file name, any case) is an env-file template: readable, content redacted.
pub fn is_env_template(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    (n.starts_with(".env") || n.ends_with(".env")) && n != ".envrc" && env_kind(&n).is_none()
}

fn file_kind(name: &str) -> Option<SecretKind> {
    if let Some(k) = env_kind(name) {
        return Some(k);
    }
    let ext = name.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    let stem = name.split('.').next().unwrap_or(name);
    // `id_rsa`, and its backups (`id_rsa.bak`), but neither `id_rsa.pub` nor `authkey.rs`.
    let plain_or_backup = stem == name || BACKUP_EXTS.contains(&ext);
    if PRIVATE_KEY_NAMES.contains(&stem) && plain_or_backup {
        return Some(SecretKind::PrivateKey);
    }
    if name.starts_with("ssh_host_") && name.ends_with("_key") {
        return Some(SecretKind::PrivateKey);
    }
    if name.contains('.') && PRIVATE_KEY_EXTS.contains(&ext) {
        return Some(SecretKind::PrivateKey);
    }
    if CREDENTIAL_NAMES.contains(&name)
        || (name.contains('.') && CREDENTIAL_EXTS.contains(&ext))
        || name.starts_with("terraform.tfstate")
        || name.ends_with(".tfvars.json")
        || (name.starts_with("kubeconfig.") && matches!(ext, "yml" | "yaml" | "json" | "conf"))
        || (name.starts_with("client_secret") && ext == "json")
        || (name.starts_with("service-account") && ext == "json")
    {
        return Some(SecretKind::CredentialStore);
    }
    None
}

/// Whether `path` (absolute or relative, already normalised: no `..`) names a secret. Every
/// component is looked at, so anything beneath a secret folder is blocked too.
pub fn blocked(path: &Path) -> Option<Blocked> {
    scan(path, true)
}

/// Like [`blocked`] for a path known to be a directory: only the folder rules apply to its last
/// component (a directory `kubeconfig/` is a Go package; `.ssh/` is still a secret folder).
pub fn blocked_dir(path: &Path) -> Option<Blocked> {
    scan(path, false)
}

fn scan(path: &Path, last_is_file: bool) -> Option<Blocked> {
    let comps: Vec<String> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_string_lossy().to_ascii_lowercase()),
            _ => None,
        })
        .collect();
    let absolute = path.is_absolute();
    let hit = |kind, c: &str| Some(Blocked { kind, component: c.to_string() });
    if absolute {
        let s: Vec<&str> = comps.iter().map(String::as_str).collect();
        match s.as_slice() {
            ["etc", "pve", "priv", ..] => return hit(SecretKind::ProxmoxSecret, "/etc/pve/priv"),
            ["etc", "corosync", "authkey"] => return hit(SecretKind::ProxmoxSecret, "/etc/corosync/authkey"),
            ["etc", "pve", .., last] if last.ends_with(".key") => return hit(SecretKind::ProxmoxSecret, last),
            ["var", "lib", "pve-cluster", ..] => return hit(SecretKind::ProxmoxSecret, "/var/lib/pve-cluster"),
            _ => {}
        }
    }
    for (i, c) in comps.iter().enumerate() {
        if c == ".git" {
            return hit(SecretKind::GitInternals, c);
        }
        if SECRET_DIRS.contains(&c.as_str()) {
            return hit(SecretKind::SecretFolder, c);
        }
        // `.config/gcloud`, `.cargo/credentials(.toml)`, `.config/gh/hosts.yml`.
        let prev = i.checked_sub(1).and_then(|p| comps.get(p)).map(String::as_str);
        match (prev, c.as_str()) {
            (Some(".config"), "gcloud") => return hit(SecretKind::SecretFolder, c),
            (Some(".cargo"), "credentials" | "credentials.toml") => return hit(SecretKind::CredentialStore, c),
            (Some("gh"), "hosts.yml") => return hit(SecretKind::CredentialStore, c),
            (Some("priv"), _) if i >= 2 && comps[i - 2] == "pve" => return hit(SecretKind::ProxmoxSecret, c),
            _ => {}
        }
        // File-name rules on the last component only: a Go package directory `kubeconfig/` or a
        // Rust module folder `credentials/` is code, not a credential store.
        if last_is_file
            && i + 1 == comps.len()
            && let Some(kind) = file_kind(c)
        {
            return hit(kind, c);
        }
    }
    None
}

/// Refuse `path` if it names a secret; `shown_path` is how the caller named it.
pub fn check(path: &Path, shown_path: &str) -> Result<(), Refusal> {
    match blocked(path) {
        Some(b) => Err(b.refusal(shown_path)),
        None => Ok(()),
    }
}

/// The text that replaces a secret.
pub fn marker(kind: &str) -> String {
    format!("[REDACTED:{kind}]")
}

struct Rule {
    kind: &'static str,
    re: Regex,
    /// Capture group holding the secret (0 = the whole match).
    group: usize,
}

fn rule(kind: &'static str, group: usize, re: &str) -> Rule {
    // The patterns are constants checked by the tests; a typo is a programming error.
    Rule { kind, re: Regex::new(re).unwrap_or_else(|e| panic!("secret pattern {kind}: {e}")), group }
}

/// Key words of an assignment whose value is a secret.
const SECRET_KEY: &str = r"(?:password|passwd|passphrase|secret|token|api[_-]?key|apikey|access[_-]?key|auth[_-]?key|private[_-]?key|client[_-]?secret|credentials?)";
/// Key endings that name something *about* a secret, not the secret (`token_type`, `password_file`).
const NOT_SECRET_SUFFIX: &[&str] = &[
    "type",
    "name",
    "url",
    "uri",
    "path",
    "file",
    "env",
    "var",
    "header",
    "field",
    "len",
    "length",
    "kind",
    "prefix",
    "label",
    "hint",
    "placeholder",
    "id",
    "count",
    "limit",
    "ttl",
    "expiry",
    "expires",
    "endpoint",
    "policy",
    "regex",
    "pattern",
    "format",
    "style",
    "class",
    "mode",
    "min",
    "max",
    "size",
];

static RULES: LazyLock<Vec<Rule>> = LazyLock::new(|| {
    vec![
        rule(
            "private_key",
            0,
            r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----(?s:.*?)(?:-----END[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|\z)",
        ),
        rule("private_key", 0, r"PuTTY-User-Key-File-\d+:(?s:.*?)(?:Private-MAC: *[0-9a-fA-F]+|\z)"),
        rule("pve_api_token", 1, r"PVEAPIToken=[^\s=!]+![^\s=]+=([0-9A-Za-z-]{8,})"),
        rule("aws_access_key", 0, r"\b(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|AROA|APKA|ASCA)[0-9A-Z]{16}\b"),
        rule("aws_secret_key", 1, r#"(?i)aws_?secret_?(?:access_?)?key["']?\s*[:=]\s*["']?([A-Za-z0-9/+=]{40})\b"#),
        rule("github_token", 0, r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36,}\b"),
        rule("github_token", 0, r"\bgithub_pat_[A-Za-z0-9_]{22,}"),
        rule("gitlab_token", 0, r"\bglpat-[A-Za-z0-9_-]{20,}"),
        rule("slack_token", 0, r"\bxox[abposre]-[A-Za-z0-9-]{10,}"),
        rule("slack_webhook", 0, r"https://hooks\.slack\.com/services/[A-Za-z0-9/_-]{20,}"),
        rule("anthropic_key", 0, r"\bsk-ant-[A-Za-z0-9]+-[A-Za-z0-9_-]{20,}"),
        rule("openai_key", 0, r"\bsk-(?:proj-|svcacct-|admin-|None-)?[A-Za-z0-9_-]{20,}"),
        rule("google_api_key", 0, r"\bAIza[0-9A-Za-z_-]{35}\b"),
        rule("stripe_key", 0, r"\b(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{16,}\b"),
        rule("huggingface_token", 0, r"\bhf_[A-Za-z0-9]{34,}\b"),
        rule("npm_token", 0, r"\bnpm_[A-Za-z0-9]{36}\b"),
        rule("pypi_token", 0, r"\bpypi-AgE[A-Za-z0-9_-]{50,}"),
        rule("jwt", 0, r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
        rule("url_password", 1, r"\b[a-zA-Z][a-zA-Z0-9+.-]{1,20}://[^\s:/@]{1,64}:([^\s@/]{1,128})@"),
        rule(
            "authorization",
            1,
            r#"(?i)\bauthorization["']?\s*[:=]\s*["']?(?:bearer|basic|token)\s+([A-Za-z0-9._~+/=-]{16,})"#,
        ),
    ]
});

/// `key = "value"`, `"key": "value"`, `key: 'value'`, `KEY="value"` (quoted values only: an
/// unquoted value in code is an expression, not a secret).
static QUOTED_ASSIGNMENT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r#"(?i)\b([A-Za-z0-9_.-]*{SECRET_KEY}[A-Za-z0-9_]*)["']?(\s*(?::=|=>|[:=])\s*)(["'`])([^"'`\n]{{3,}})["'`]"#
    ))
    .unwrap_or_else(|e| panic!("assignment pattern: {e}"))
});

/// Unquoted `KEY=value` at the start of a line with an UPPER_SNAKE key (env files, shell, Docker).
static ENV_ASSIGNMENT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?m)^(\s*(?:export\s+)?[A-Z0-9_]*(?-i:PASSWORD|PASSWD|PASSPHRASE|SECRET|TOKEN|API_?KEY|APIKEY|ACCESS_?KEY|AUTH_?KEY|PRIVATE_?KEY|CREDENTIALS?)[A-Z0-9_]*\s*=\s*)([^\s"'`#][^\s#]*)"#,
    )
    .unwrap_or_else(|e| panic!("env assignment pattern: {e}"))
});

fn key_names_a_secret(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    let last = k.rsplit(['_', '-', '.']).next().unwrap_or(&k);
    !NOT_SECRET_SUFFIX.contains(&last)
}

fn value_is_placeholder(v: &str) -> bool {
    let t = v.trim();
    t.is_empty()
        || t.starts_with("${")
        || t.starts_with('$')
        || t.starts_with("{{")
        || t.starts_with('<')
        || t.contains("{}")
        || t.contains("%s")
        || t.chars().all(|c| c.is_ascii_digit())
        || matches!(t.to_ascii_lowercase().as_str(), "true" | "false" | "null" | "none" | "nil" | "undefined")
}

/// Replacement for a match: the marker, plus the newlines it swallowed (line numbers stay right).
fn replacement(kind: &str, matched: &str) -> String {
    let mut r = marker(kind);
    r.extend(std::iter::repeat_n('\n', matched.matches('\n').count()));
    r
}

/// Text with secrets replaced, and what was replaced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Redacted {
    pub text: String,
    /// One entry per replaced secret: its kind.
    pub found: Vec<&'static str>,
}

fn replace_group(text: &str, re: &Regex, group: usize, kind: &'static str, found: &mut Vec<&'static str>) -> String {
    re.replace_all(text, |c: &Captures| {
        let whole = c.get(0).map(|m| m.as_str()).unwrap_or("");
        let Some(g) = c.get(group) else { return whole.to_string() };
        found.push(kind);
        let start = g.start() - c.get(0).map(|m| m.start()).unwrap_or(0);
        let end = start + g.len();
        format!("{}{}{}", &whole[..start], replacement(kind, g.as_str()), &whole[end..])
    })
    .into_owned()
}

/// Replace high-confidence secrets in `text` (which should already be sanitized).
pub fn redact(text: &str) -> Redacted {
    let mut found = Vec::new();
    let mut out = text.to_string();
    for r in RULES.iter() {
        if r.re.is_match(&out) {
            out = replace_group(&out, &r.re, r.group, r.kind, &mut found);
        }
    }
    out = QUOTED_ASSIGNMENT
        .replace_all(&out, |c: &Captures| {
            let whole = &c[0];
            let (key, value) = (&c[1], &c[4]);
            let (Some(m0), Some(v)) = (c.get(0), c.get(4)) else { return whole.to_string() };
            if !key_names_a_secret(key) || value_is_placeholder(value) || value.starts_with("[REDACTED:") {
                return whole.to_string();
            }
            found.push("password_assignment");
            let (start, end) = (v.start() - m0.start(), v.end() - m0.start());
            format!("{}{}{}", &whole[..start], marker("password_assignment"), &whole[end..])
        })
        .into_owned();
    out = ENV_ASSIGNMENT
        .replace_all(&out, |c: &Captures| {
            let (prefix, value) = (&c[1], &c[2]);
            let key = prefix.trim().trim_start_matches("export").trim().trim_end_matches('=').trim();
            if !key_names_a_secret(key) || value_is_placeholder(value) || value.starts_with("[REDACTED:") {
                return c[0].to_string();
            }
            found.push("password_assignment");
            format!("{prefix}{}", marker("password_assignment"))
        })
        .into_owned();
    Redacted { text: out, found }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(p: &str) -> Option<SecretKind> {
        blocked(Path::new(p)).map(|b| b.kind)
    }

    #[test]
    fn secret_paths_are_blocked_component_by_component_in_any_case() {
        assert_eq!(kind("app/.env"), Some(SecretKind::EnvFile));
        assert_eq!(kind("app/.ENV.Production"), Some(SecretKind::EnvFile));
        assert_eq!(kind("deploy/prod.env"), Some(SecretKind::EnvFile));
        assert_eq!(kind(".envrc"), Some(SecretKind::EnvFile));
        assert_eq!(kind("home/.ssh/config"), Some(SecretKind::SecretFolder));
        assert_eq!(kind("keys/ID_ED25519"), Some(SecretKind::PrivateKey));
        assert_eq!(kind(".git/config"), Some(SecretKind::GitInternals));
        assert_eq!(kind("/etc/pve/priv/authkey.key"), Some(SecretKind::ProxmoxSecret));
        assert_eq!(kind("/etc/pve/nodes/pve1/pve-ssl.key"), Some(SecretKind::ProxmoxSecret));
        assert_eq!(kind("infra/terraform.tfstate.backup"), Some(SecretKind::CredentialStore));
    }

    #[test]
    fn look_alikes_and_templates_pass() {
        for p in [
            "src/env.ts",
            "src/keyboard.rs",
            "tokenizer.py",
            "src/credentials.rs",
            "kubeconfig.go",
            "terraform/main.tf",
            "passwd.c",
            "Cargo.lock",
            ".env.example",
            "config/.env.sample",
            "id_rsa.pub",
            ".gitignore",
            ".github/workflows/ci.yml",
            "environment.rs",
            "src/secrets/mod.rs",
        ] {
            assert_eq!(kind(p), None, "{p}");
        }
        assert!(is_env_template(".env.example") && !is_env_template(".env"));
    }

    #[test]
    fn refusals_say_blocked_and_name_the_kind() {
        let r = check(Path::new("deploy/id_rsa"), "deploy/id_rsa").expect_err("blocked");
        assert_eq!(r.rule, RULE);
        assert!(r.message.starts_with("blocked: private key file"), "{}", r.message);
    }

    #[test]
    fn secrets_are_replaced_and_code_is_untouched() {
        let key =
            "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\nAAAA\n-----END OPENSSH PRIVATE KEY-----";
        let r = redact(&format!("a\n{key}\nb"));
        assert_eq!(r.text, "a\n[REDACTED:private_key]\n\n\n\nb");
        let r = redact("Authorization: PVEAPIToken=root@pam!jarvis=0b6d1c3e-4f5a-4b7c-9d8e-1a2b3c4d5e6f");
        assert_eq!(r.text, "Authorization: PVEAPIToken=root@pam!jarvis=[REDACTED:pve_api_token]");
        let r = redact("db_password = \"hunter2hunter2\"\nDB_PASSWORD=hunter2\nlet token = tokenizer.next();");
        assert_eq!(
            r.text,
            "db_password = \"[REDACTED:password_assignment]\"\nDB_PASSWORD=[REDACTED:password_assignment]\nlet token = tokenizer.next();"
        );
        let code =
            "fn password_file(&self) -> &Path { &self.password_file }\nlet token_type = \"Bearer\";\nMAX_TOKENS=4096\n";
        assert_eq!(redact(code).text, code);
    }
}
