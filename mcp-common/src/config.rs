//! Configuration: one TOML file per binary, every key overridable by an environment variable
//! `JARVIS_<SERVER>_<SECTION>_<KEY>`, and the shared `[server]` section.
//!
//! The set of keys comes from the config type's JSON schema (schemars), so every key —
//! including optional ones — has its variable, and `env_keys` can list them for the docs.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::tier::Tier;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("config file {path} is not valid TOML: {source}")]
    Toml { path: String, source: toml::de::Error },
    #[error("environment variable {var}: {reason}")]
    Env { var: String, reason: String },
    #[error("configuration is not valid: {0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    #[default]
    Stdio,
    Http,
}

/// The `[server]` section every MCP server shares.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSection {
    /// `stdio` (default, for Claude Desktop and the agent host) or `http` (streamable HTTP).
    pub transport: Transport,
    /// Address for HTTP. Anything but loopback requires `token`.
    pub listen: IpAddr,
    /// Port for HTTP.
    pub port: u16,
    /// Highest tier this server runs: green (read-only, default), yellow, red. BLACK never runs.
    pub max_tier: Tier,
    /// Policy file (re-tiered tools, protected resources).
    pub policy: Option<PathBuf>,
    /// Audit log (hash-chained JSON lines) for every non-GREEN call and every refusal.
    pub audit_log: Option<PathBuf>,
    /// Bearer token required on HTTP (set it from the environment or `token_file`, never in the file).
    pub token: Option<String>,
    /// File holding the bearer token.
    pub token_file: Option<PathBuf>,
    /// Browser origins allowed on HTTP (`https://jarvis.example:443`); others are refused.
    pub allowed_origins: Vec<String>,
    /// `Host` header values accepted on HTTP besides loopback names (DNS-rebinding protection).
    pub allowed_hosts: Vec<String>,
}

impl Default for ServerSection {
    fn default() -> Self {
        Self {
            transport: Transport::Stdio,
            listen: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 8765,
            max_tier: Tier::Green,
            policy: None,
            audit_log: None,
            token: None,
            token_file: None,
            allowed_origins: Vec::new(),
            allowed_hosts: Vec::new(),
        }
    }
}

impl ServerSection {
    /// The bearer token from `token` or `token_file`.
    pub fn bearer_token(&self) -> Result<Option<String>, ConfigError> {
        if let Some(t) = self.token.as_ref().filter(|t| !t.is_empty()) {
            return Ok(Some(t.clone()));
        }
        match &self.token_file {
            Some(p) => {
                let t = std::fs::read_to_string(p)
                    .map_err(|source| ConfigError::Read { path: p.display().to_string(), source })?;
                Ok(Some(t.trim().to_string()).filter(|t| !t.is_empty()))
            }
            None => Ok(None),
        }
    }
}

/// One configuration key: its dotted path, environment variable, type and description.
#[derive(Debug, Clone, PartialEq)]
pub struct EnvKey {
    pub path: Vec<String>,
    pub var: String,
    pub kind: String,
    /// For arrays: the kind of their items (`integer`, `string`, …).
    pub item_kind: Option<String>,
    pub description: String,
}

fn resolve<'a>(root: &'a Value, s: &'a Value) -> &'a Value {
    let mut cur = s;
    for _ in 0..8 {
        let Some(r) = cur.get("$ref").and_then(Value::as_str) else { break };
        let name = r.rsplit('/').next().unwrap_or("");
        match root.get("$defs").and_then(|d| d.get(name)) {
            Some(next) => cur = next,
            None => break,
        }
    }
    // Option<T> is `anyOf: [T, null]` (or `type: [T, "null"]`): look at the non-null branch.
    if let Some(any) = cur.get("anyOf").or_else(|| cur.get("oneOf")).and_then(Value::as_array)
        && let Some(branch) = any.iter().find(|b| b.get("type").and_then(Value::as_str) != Some("null"))
    {
        return resolve(root, branch);
    }
    cur
}

fn kind_of(s: &Value) -> String {
    match s.get("type") {
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(ts)) => {
            ts.iter().filter_map(Value::as_str).find(|t| *t != "null").unwrap_or("string").to_string()
        }
        _ if s.get("enum").is_some() => "string".into(),
        _ => "string".into(),
    }
}

fn walk(root: &Value, s: &Value, path: &mut Vec<String>, prefix: &str, out: &mut Vec<EnvKey>) {
    // The field's own doc sits beside its `$ref`; the resolved type's doc is only a fallback.
    let field_doc = s.get("description").and_then(Value::as_str).map(str::to_string);
    let s = resolve(root, s);
    let props = s.get("properties").and_then(Value::as_object);
    match props {
        Some(p) if !path.is_empty() || s.get("type").and_then(Value::as_str) == Some("object") => {
            for (k, sub) in p {
                path.push(k.clone());
                walk(root, sub, path, prefix, out);
                path.pop();
            }
        }
        _ if !path.is_empty() => {
            let desc = field_doc
                .or_else(|| s.get("description").and_then(Value::as_str).map(str::to_string))
                .unwrap_or_default()
                .replace('\n', " ");
            let item_kind = s.get("items").map(|i| kind_of(resolve(root, i)));
            out.push(EnvKey {
                var: format!("{prefix}{}", path.join("_").to_ascii_uppercase()),
                path: path.clone(),
                kind: kind_of(s),
                item_kind,
                description: desc,
            });
        }
        _ => {}
    }
}

/// Every key of config type `T` with its environment variable (`prefix` like `JARVIS_PROXMOX_`).
pub fn env_keys<T: JsonSchema>(prefix: &str) -> Vec<EnvKey> {
    let schema = serde_json::to_value(schemars::schema_for!(T)).unwrap_or(Value::Null);
    let mut out = Vec::new();
    walk(&schema, &schema, &mut Vec::new(), prefix, &mut out);
    out
}

/// Keys of config type `C` that an example config file does not document: a key counts as
/// documented when a line (commented out or not) starts with `<key> =`, or when a table header
/// of its section (`[section.…]` or `[[section]]`) is shown. Every server's test asserts this
/// list is empty, so the example files stay complete.
pub fn undocumented<C: JsonSchema>(prefix: &str, example: &str) -> Vec<String> {
    let lines: Vec<&str> = example.lines().map(|l| l.trim_start().trim_start_matches('#').trim_start()).collect();
    env_keys::<C>(prefix)
        .into_iter()
        .filter(|k| {
            let leaf = k.path.last().map(String::as_str).unwrap_or_default();
            let section = k.path.first().map(String::as_str).unwrap_or_default();
            !lines.iter().any(|l| {
                l.strip_prefix(leaf).is_some_and(|rest| rest.trim_start().starts_with('='))
                    || l.starts_with(&format!("[{section}."))
                    || l.starts_with(&format!("[[{section}]]"))
            })
        })
        .map(|k| format!("{} ({})", k.path.join("."), k.var))
        .collect()
}

fn env_value(key: &EnvKey, raw: &str) -> Result<toml::Value, ConfigError> {
    let bad = |reason: String| ConfigError::Env { var: key.var.clone(), reason };
    let t = raw.trim();
    Ok(match key.kind.as_str() {
        "integer" => toml::Value::Integer(t.parse().map_err(|_| bad(format!("'{t}' is not an integer")))?),
        "number" => toml::Value::Float(t.parse().map_err(|_| bad(format!("'{t}' is not a number")))?),
        "boolean" => toml::Value::Boolean(match t.to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => true,
            "0" | "false" | "no" | "off" => false,
            _ => return Err(bad(format!("'{t}' is not a boolean"))),
        }),
        "array" | "object" if t.starts_with('[') || t.starts_with('{') => {
            let v: Value = serde_json::from_str(t).map_err(|e| bad(format!("not valid JSON: {e}")))?;
            toml::Value::try_from(v).map_err(|e| bad(e.to_string()))?
        }
        "array" => {
            let items = t.split(',').map(str::trim).filter(|s| !s.is_empty());
            let ints = matches!(key.item_kind.as_deref(), Some("integer"));
            toml::Value::Array(
                items
                    .map(|x| {
                        if ints {
                            x.parse().map(toml::Value::Integer).map_err(|_| bad(format!("'{x}' is not an integer")))
                        } else {
                            Ok(toml::Value::String(x.into()))
                        }
                    })
                    .collect::<Result<_, _>>()?,
            )
        }
        _ => toml::Value::String(raw.to_string()),
    })
}

/// Load `T` from an optional TOML file, then apply `prefix`-ed environment variables.
pub fn load<T: DeserializeOwned + JsonSchema>(
    file: Option<&Path>,
    prefix: &str,
    env: impl Fn(&str) -> Option<String>,
) -> Result<T, ConfigError> {
    let mut table = match file {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .map_err(|source| ConfigError::Read { path: p.display().to_string(), source })?;
            toml::from_str::<toml::Table>(&text)
                .map_err(|source| ConfigError::Toml { path: p.display().to_string(), source })?
        }
        None => toml::Table::new(),
    };
    for key in env_keys::<T>(prefix) {
        let Some(raw) = env(&key.var) else { continue };
        let value = env_value(&key, &raw)?;
        let mut cur = &mut table;
        for (i, part) in key.path.iter().enumerate() {
            if i + 1 == key.path.len() {
                cur.insert(part.clone(), value.clone());
            } else {
                let entry = cur.entry(part.clone()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
                if !entry.is_table() {
                    *entry = toml::Value::Table(toml::Table::new());
                }
                let Some(t) = entry.as_table_mut() else { break };
                cur = t;
            }
        }
    }
    toml::Value::Table(table).try_into().map_err(|e: toml::de::Error| ConfigError::Invalid(e.to_string()))
}

/// A directory tree a server's tools may work in (`[[local.roots]]`, `[[nodes.<n>.roots]]`).
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RootConfig {
    /// Absolute path of the root.
    pub path: PathBuf,
    /// Whether tools may create files in it (downloads, copies, clips, datasets, models; default false).
    #[serde(default)]
    pub writable: bool,
}

/// The path guard's roots of a configured list.
pub fn roots(rs: &[RootConfig]) -> Vec<crate::guard::path::Root> {
    rs.iter().map(|r| crate::guard::path::Root { path: r.path.clone(), writable: r.writable }).collect()
}

/// `[local]`: this machine, for servers that work on files here and on nodes.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct LocalConfig {
    /// Node name that means this machine in tool arguments (also used when `node` is omitted).
    pub name: String,
    /// Roots on this machine (JSON array of `{path, writable}` in the environment). None by default:
    /// without roots every path is refused.
    pub roots: Vec<RootConfig>,
}

impl Default for LocalConfig {
    fn default() -> Self {
        Self { name: "local".into(), roots: Vec::new() }
    }
}

/// `[paths]` of a server that works on files.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct PathsConfig {
    /// Extra denylist entries on every node, on top of the built-in ones (absolute, `*` within a component).
    pub deny: Vec<String>,
}

/// A node name as tools accept it: 1–63 letters, digits, `.`, `_` or `-`.
pub fn is_node_name(n: &str) -> bool {
    (1..=63).contains(&n.len()) && n.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize, JsonSchema, Default)]
    #[serde(default, deny_unknown_fields)]
    struct Cfg {
        server: ServerSection,
        cache: Cache,
    }

    #[derive(Debug, Deserialize, JsonSchema, Default)]
    #[serde(default, deny_unknown_fields)]
    struct Cache {
        /// Seconds to keep resources.
        resources_ttl: Option<u64>,
        enabled: bool,
    }

    #[test]
    fn every_key_has_an_env_var() {
        let keys = env_keys::<Cfg>("JARVIS_TEST_");
        let vars: Vec<&str> = keys.iter().map(|k| k.var.as_str()).collect();
        assert!(vars.contains(&"JARVIS_TEST_SERVER_MAX_TIER"), "{vars:?}");
        assert!(vars.contains(&"JARVIS_TEST_CACHE_RESOURCES_TTL"));
        assert!(vars.contains(&"JARVIS_TEST_SERVER_ALLOWED_ORIGINS"));
        let ttl = keys.iter().find(|k| k.var == "JARVIS_TEST_CACHE_RESOURCES_TTL").expect("ttl");
        assert_eq!(ttl.kind, "integer");
        assert_eq!(ttl.description, "Seconds to keep resources.");
    }

    #[test]
    fn undocumented_keys_are_listed() {
        let full = "[server]\ntransport = 'stdio'\n# listen = '127.0.0.1'\nport = 1\nmax_tier = 'green'\npolicy = ''\n\
                    audit_log = ''\ntoken = ''\ntoken_file = ''\nallowed_origins = []\nallowed_hosts = []\n\
                    [cache]\nresources_ttl = 1\nenabled = true\n";
        assert!(undocumented::<Cfg>("X_", full).is_empty(), "{:?}", undocumented::<Cfg>("X_", full));
        let missing = undocumented::<Cfg>("X_", &full.replace("resources_ttl = 1", "resources_ttl_x = 1"));
        assert_eq!(missing, vec!["cache.resources_ttl (X_CACHE_RESOURCES_TTL)".to_string()]);
    }

    #[test]
    fn env_overrides_file_and_bad_values_name_the_variable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("c.toml");
        std::fs::write(&f, "[server]\nmax_tier = 'yellow'\nport = 1\n[cache]\nenabled = false\n").expect("write");
        let env = |k: &str| match k {
            "JARVIS_TEST_SERVER_PORT" => Some("9000".to_string()),
            "JARVIS_TEST_CACHE_ENABLED" => Some("true".to_string()),
            "JARVIS_TEST_SERVER_ALLOWED_ORIGINS" => Some("http://a:1, http://b:2".to_string()),
            _ => None,
        };
        let c: Cfg = load(Some(&f), "JARVIS_TEST_", env).expect("loads");
        assert_eq!(c.server.port, 9000);
        assert_eq!(c.server.max_tier, Tier::Yellow);
        assert!(c.cache.enabled);
        assert_eq!(c.server.allowed_origins, vec!["http://a:1", "http://b:2"]);
        #[derive(Debug, Deserialize, JsonSchema, Default)]
        #[serde(default)]
        struct Ports {
            ports: Vec<u16>,
        }
        let p: Ports = load(None, "X_", |k| (k == "X_PORTS").then(|| "80, 443".into())).expect("integer list");
        assert_eq!(p.ports, vec![80, 443]);
        let e = load::<Cfg>(None, "JARVIS_TEST_", |k| (k == "JARVIS_TEST_SERVER_PORT").then(|| "x".into()))
            .expect_err("bad port");
        assert!(e.to_string().contains("JARVIS_TEST_SERVER_PORT"), "{e}");
        std::fs::write(&f, "[server]\nmax_teir = 'red'\n").expect("write");
        assert!(load::<Cfg>(Some(&f), "JARVIS_TEST_", |_| None).is_err(), "typos are errors");
    }
}
