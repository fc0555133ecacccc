//! `compose.yaml` read the way `docker compose` reads it, for the deployment tests: a `.env` file, variable
//! interpolation (`${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?error}`, `${VAR?error}`, `$VAR`,
//! `$$`), YAML anchors and merge keys, and each service's environment, command and health check.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde_yaml_ng::Value;

/// The Jarvis binaries compose.yaml runs, as (service, binary). mcp-voice joins this list when its
/// crate is merged (the lead adds `("mcp-voice", "mcp-voice")` here and its `[[mcp]]` entry in compose.yaml).
pub const JARVIS_SERVICES: &[(&str, &str)] = &[
    ("jarvis", "jarvis"),
    ("mcp-proxmox", "mcp-proxmox"),
    ("mcp-files", "mcp-files"),
    ("mcp-projects", "mcp-projects"),
    ("mcp-voice", "mcp-voice"),
];

pub fn workspace_root() -> PathBuf {
    test_support::pyenv::workspace_root()
}

/// `KEY=VALUE` lines; `#` comments and blank lines are skipped, surrounding quotes removed.
pub fn parse_env_file(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (k, v) = line.split_once('=').ok_or_else(|| format!("line {}: no '=' in {line:?}", i + 1))?;
        let k = k.trim();
        if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("line {}: bad variable name {k:?}", i + 1));
        }
        let v = v.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|x| x.strip_suffix('"'))
            .or_else(|| v.strip_prefix('\'').and_then(|x| x.strip_suffix('\'')))
            .unwrap_or(v);
        out.insert(k.to_string(), v.to_string());
    }
    Ok(out)
}

/// Interpolate one string; `used` collects every variable name referenced.
pub fn interpolate(s: &str, vars: &BTreeMap<String, String>, used: &mut BTreeSet<String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(r) = after.strip_prefix('$') {
            out.push('$');
            rest = r;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body.find('}').ok_or_else(|| format!("unclosed ${{ in {s:?}"))?;
            let expr = &body[..end];
            let name_len = expr.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(expr.len());
            let (name, op) = expr.split_at(name_len);
            if name.is_empty() {
                return Err(format!("empty variable name in {s:?}"));
            }
            used.insert(name.to_string());
            let value = vars.get(name);
            let set_nonempty = value.is_some_and(|v| !v.is_empty());
            let resolved = if op.is_empty() {
                value.cloned().unwrap_or_default()
            } else if let Some(d) = op.strip_prefix(":-") {
                if set_nonempty { value.cloned().unwrap_or_default() } else { d.to_string() }
            } else if let Some(d) = op.strip_prefix('-') {
                value.cloned().unwrap_or_else(|| d.to_string())
            } else if let Some(e) = op.strip_prefix(":?") {
                if !set_nonempty {
                    return Err(format!("required variable {name} is missing: {e}"));
                }
                value.cloned().unwrap_or_default()
            } else if let Some(e) = op.strip_prefix('?') {
                value.cloned().ok_or_else(|| format!("required variable {name} is missing: {e}"))?
            } else {
                return Err(format!("unsupported interpolation ${{{expr}}}"));
            };
            out.push_str(&resolved);
            rest = &body[end + 1..];
        } else {
            let len = after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(after.len());
            if len == 0 {
                out.push('$');
                rest = after;
                continue;
            }
            let name = &after[..len];
            used.insert(name.to_string());
            out.push_str(vars.get(name).map(String::as_str).unwrap_or_default());
            rest = &after[len..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn interpolate_value(
    v: &mut Value,
    vars: &BTreeMap<String, String>,
    used: &mut BTreeSet<String>,
) -> Result<(), String> {
    match v {
        Value::String(s) => *s = interpolate(s, vars, used)?,
        Value::Sequence(items) => {
            for i in items {
                interpolate_value(i, vars, used)?;
            }
        }
        Value::Mapping(m) => {
            for (_, i) in m.iter_mut() {
                interpolate_value(i, vars, used)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Sequence(items)) => items.iter().filter_map(scalar).collect(),
        Some(Value::String(s)) => s.split_whitespace().map(str::to_string).collect(),
        _ => Vec::new(),
    }
}

/// One service, interpolated.
#[derive(Debug, Clone, Default)]
pub struct Service {
    pub name: String,
    pub environment: BTreeMap<String, String>,
    pub command: Vec<String>,
    pub healthcheck: Vec<String>,
    pub dockerfile: Option<String>,
    pub profiles: Vec<String>,
    pub restart: Option<String>,
    /// The whole interpolated service mapping.
    pub raw: Value,
}

/// compose.yaml, interpolated with `vars`.
#[derive(Debug, Clone)]
pub struct Compose {
    pub services: BTreeMap<String, Service>,
    pub raw: Value,
    /// Every variable the file references.
    pub variables: BTreeSet<String>,
}

pub fn load(text: &str, vars: &BTreeMap<String, String>) -> Result<Compose, String> {
    let mut raw: Value = serde_yaml_ng::from_str(text).map_err(|e| format!("compose.yaml is not YAML: {e}"))?;
    raw.apply_merge().map_err(|e| format!("merge keys: {e}"))?;
    let mut variables = BTreeSet::new();
    interpolate_value(&mut raw, vars, &mut variables)?;
    let mut services = BTreeMap::new();
    let Some(Value::Mapping(svcs)) = raw.get("services") else { return Err("no services".into()) };
    for (name, svc) in svcs {
        let name = scalar(name).ok_or("service name")?;
        let environment = match svc.get("environment") {
            Some(Value::Mapping(m)) => {
                m.iter().filter_map(|(k, v)| Some((scalar(k)?, scalar(v).unwrap_or_default()))).collect()
            }
            Some(Value::Sequence(items)) => items
                .iter()
                .filter_map(scalar)
                .filter_map(|kv| kv.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
                .collect(),
            _ => BTreeMap::new(),
        };
        let service = Service {
            name: name.clone(),
            environment,
            command: strings(svc.get("command")),
            healthcheck: strings(svc.get("healthcheck").and_then(|h| h.get("test"))),
            dockerfile: svc.get("build").and_then(|b| b.get("dockerfile")).and_then(scalar),
            profiles: strings(svc.get("profiles")),
            restart: svc.get("restart").and_then(scalar),
            raw: svc.clone(),
        };
        services.insert(name, service);
    }
    Ok(Compose { services, raw, variables })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolation_follows_compose_rules() {
        let vars: BTreeMap<String, String> =
            [("A".to_string(), "x".to_string()), ("E".to_string(), String::new())].into();
        let mut used = BTreeSet::new();
        let mut i = |s: &str| interpolate(s, &vars, &mut used);
        assert_eq!(i("${A}-$A-$$A").as_deref(), Ok("x-x-$A"));
        assert_eq!(i("${E:-d}|${E-d}|${U-d}|${U:-d}").as_deref(), Ok("d||d|d"));
        assert!(i("${E:?need it}").is_err());
        assert_eq!(i("${E?need it}").as_deref(), Ok(""));
        assert!(i("${U?need it}").is_err());
        assert!(i("${A").is_err());
        assert!(used.contains("U") && used.contains("E"));
    }

    #[test]
    fn env_files_parse() {
        let e = parse_env_file("# c\n\nA=1\nB=\"two words\"\nC=\n").expect("parses");
        assert_eq!(e.get("A").map(String::as_str), Some("1"));
        assert_eq!(e.get("B").map(String::as_str), Some("two words"));
        assert_eq!(e.get("C").map(String::as_str), Some(""));
        assert!(parse_env_file("no equals").is_err());
    }
}
