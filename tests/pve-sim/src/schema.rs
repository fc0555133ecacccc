//! The official Proxmox VE API schema (`pve-apidoc.json`): endpoint lookup and parameter
//! verification with `PVE::JSONSchema`'s error texts.
//!
//! The schema is compiled into the binary, so every endpoint the real API knows is looked up
//! and validated the same way, including the ones the simulator does not implement.

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use regex::Regex;
use serde_json::Value;

use crate::wire::ApiError;

static APIDOC: &str = include_str!("../data/pve-apidoc.json");

/// Request parameters after merging path, query and body (values stay JSON so a JSON body's
/// numbers and booleans are checked the way pveproxy checks them).
pub type Params = BTreeMap<String, Value>;

/// One method of one path in the schema.
#[derive(Debug)]
pub struct Endpoint {
    pub method: String,
    pub template: String,
    segments: Vec<String>,
    pub parameters: Value,
    pub permissions: Value,
    pub allowtoken: bool,
    pub protected: bool,
    pub proxyto: Option<String>,
}

#[derive(Debug, Default)]
pub struct Schema {
    endpoints: Vec<Endpoint>,
    by_shape: HashMap<(String, usize), Vec<usize>>,
}

/// A path matched against an endpoint template.
#[derive(Debug)]
pub struct Matched<'a> {
    pub endpoint: &'a Endpoint,
    pub path_params: BTreeMap<String, String>,
}

impl Schema {
    /// The compiled-in schema, parsed once.
    pub fn get() -> &'static Schema {
        static S: OnceLock<Schema> = OnceLock::new();
        S.get_or_init(|| Schema::parse(APIDOC).unwrap_or_default())
    }

    pub fn parse(text: &str) -> Result<Schema, serde_json::Error> {
        let tree: Value = serde_json::from_str(text)?;
        let mut s = Schema::default();
        if let Some(nodes) = tree.as_array() {
            for n in nodes {
                s.walk(n);
            }
        }
        Ok(s)
    }

    fn walk(&mut self, node: &Value) {
        let path = node.get("path").and_then(Value::as_str).unwrap_or("");
        if let Some(info) = node.get("info").and_then(Value::as_object) {
            for (method, m) in info {
                let segments: Vec<String> = path.split('/').filter(|s| !s.is_empty()).map(str::to_string).collect();
                let idx = self.endpoints.len();
                self.by_shape.entry((method.clone(), segments.len())).or_default().push(idx);
                self.endpoints.push(Endpoint {
                    method: method.clone(),
                    template: path.to_string(),
                    segments,
                    parameters: m.get("parameters").cloned().unwrap_or(Value::Null),
                    permissions: m.get("permissions").cloned().unwrap_or(Value::Null),
                    allowtoken: m.get("allowtoken").and_then(Value::as_i64).unwrap_or(1) != 0,
                    protected: m.get("protected").and_then(Value::as_i64).unwrap_or(0) != 0,
                    proxyto: m.get("proxyto").and_then(Value::as_str).map(str::to_string),
                });
            }
        }
        if let Some(children) = node.get("children").and_then(Value::as_array) {
            for c in children {
                self.walk(c);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.endpoints.len()
    }

    pub fn is_empty(&self) -> bool {
        self.endpoints.is_empty()
    }

    /// Find the endpoint for `method` and a path relative to `/api2/json`; literal segments win
    /// over `{var}` segments, as in Proxmox's handler lookup.
    pub fn find(&self, method: &str, path: &str) -> Option<Matched<'_>> {
        let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let cands = self.by_shape.get(&(method.to_string(), segs.len()))?;
        let mut best: Option<(usize, &Endpoint)> = None;
        for &i in cands {
            let ep = &self.endpoints[i];
            let mut literal = 0;
            let ok = ep.segments.iter().zip(&segs).all(|(t, s)| {
                if t.starts_with('{') {
                    !s.is_empty()
                } else if t == s {
                    literal += 1;
                    true
                } else {
                    false
                }
            });
            if ok && best.is_none_or(|(b, _)| literal > b) {
                best = Some((literal, ep));
            }
        }
        let (_, endpoint) = best?;
        let path_params = endpoint
            .segments
            .iter()
            .zip(&segs)
            .filter(|(t, _)| t.starts_with('{'))
            .map(|(t, s)| (t.trim_matches(|c| c == '{' || c == '}').to_string(), (*s).to_string()))
            .collect();
        Some(Matched { endpoint, path_params })
    }
}

/// Text of a parameter value as Perl would see it.
pub fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Bool(b) => if *b { "1" } else { "0" }.to_string(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

pub fn parse_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

fn re(pattern: &str) -> Option<Regex> {
    Regex::new(&format!("^(?:{pattern})$")).ok()
}

fn format_regex(name: &str) -> Option<&'static Regex> {
    static F: OnceLock<HashMap<&'static str, Regex>> = OnceLock::new();
    let map = F.get_or_init(|| {
        let mut m = HashMap::new();
        let defs: [(&str, &str); 6] = [
            ("pve-node", r"[a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?"),
            ("pve-vmid", r"[1-9][0-9]{2,8}"),
            ("pve-configid", r"(?i)[a-z][a-z0-9_-]+"),
            ("pve-storage-id", r"(?i)[a-z][a-z0-9\-_.]*[a-z0-9]"),
            ("pve-poolid", r"[A-Za-z0-9_\-]+"),
            ("pve-userid", r"[^\s:/]+@[A-Za-z][A-Za-z0-9.\-_]+"),
        ];
        for (k, p) in defs {
            if let Some(r) = re(p) {
                m.insert(k, r);
            }
        }
        m
    });
    map.get(name)
}

fn format_error(format: &str, v: &str) -> String {
    let detail = match format {
        "pve-node" => "value does not look like a valid node name".to_string(),
        "pve-vmid" => "value does not look like a valid VM ID".to_string(),
        "pve-configid" => format!("invalid configuration ID '{v}'"),
        "pve-storage-id" => format!("storage ID '{v}' contains illegal characters"),
        "pve-poolid" => format!("pool name '{v}' contains illegal characters"),
        "pve-userid" => format!("value '{v}' does not look like a valid user name"),
        _ => "value does not match the format".to_string(),
    };
    format!("invalid format - {detail}\n")
}

/// Check one property value; `None` when it is valid.
fn check_prop(schema: &Value, v: &Value) -> Option<String> {
    let text = value_text(v);
    let ty = schema.get("type").and_then(Value::as_str).unwrap_or("string");
    match ty {
        "integer" => {
            let ok = match v {
                Value::Number(n) => n.is_i64() || n.is_u64(),
                _ => re(r"[+-]?\d+").is_some_and(|r| r.is_match(&text)),
            };
            if !ok {
                return Some(format!("type check ('integer') failed - got '{text}'"));
            }
        }
        "number" => {
            let ok = match v {
                Value::Number(_) => true,
                _ => text.parse::<f64>().is_ok_and(f64::is_finite),
            };
            if !ok {
                return Some(format!("type check ('number') failed - got '{text}'"));
            }
        }
        "boolean" => {
            let ok = matches!(v, Value::Bool(_)) || parse_bool(&text).is_some();
            if !ok {
                return Some(format!("type check ('boolean') failed - got '{text}'"));
            }
        }
        "array" | "object" => return None,
        _ => {
            if matches!(v, Value::Array(_) | Value::Object(_)) {
                return Some(format!("type check ('string') failed - got '{text}'"));
            }
        }
    }
    if let Some(f) = schema.get("format").and_then(Value::as_str)
        && let Some(r) = format_regex(f)
        && !r.is_match(&text)
    {
        return Some(format_error(f, &text));
    }
    if matches!(ty, "integer" | "number")
        && let Ok(n) = text.trim_start_matches('+').parse::<f64>()
    {
        if let Some(min) = schema.get("minimum").and_then(Value::as_f64)
            && n < min
        {
            return Some(format!("value must have a minimum value of {min}"));
        }
        if let Some(max) = schema.get("maximum").and_then(Value::as_f64)
            && n > max
        {
            return Some(format!("value must have a maximum value of {max}"));
        }
    }
    if let Some(vals) = schema.get("enum").and_then(Value::as_array) {
        let names: Vec<String> = vals.iter().map(value_text).collect();
        if !names.contains(&text) {
            return Some(format!("value '{text}' does not have a value in the enumeration '{}'", names.join(", ")));
        }
    }
    if ty == "string" {
        if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
            && text.chars().count() as u64 > max
        {
            return Some(format!("value may only be {max} characters long"));
        }
        if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
            && (text.chars().count() as u64) < min
        {
            return Some(format!("value must be at least {min} characters long"));
        }
        if let Some(p) = schema.get("pattern").and_then(Value::as_str)
            && let Some(r) = re(p)
            && !r.is_match(&text)
        {
            return Some("value does not match the regex pattern".to_string());
        }
    }
    None
}

/// Verify `params` against the endpoint's parameter schema; 400 with every failing parameter.
pub fn validate(ep: &Endpoint, params: &Params) -> Result<(), ApiError> {
    let props = ep.parameters.get("properties").and_then(Value::as_object);
    let additional = ep
        .parameters
        .get("additionalProperties")
        .map(|v| !matches!(v, Value::Number(n) if n.as_i64() == Some(0)) && v != &Value::Bool(false))
        .unwrap_or(true);
    let mut errors = BTreeMap::new();
    for (k, v) in params {
        match props.and_then(|p| p.get(k)) {
            Some(s) => {
                if let Some(e) = check_prop(s, v) {
                    errors.insert(k.clone(), e);
                }
            }
            None if !additional => {
                errors.insert(
                    k.clone(),
                    "property is not defined in schema and the schema does not allow additional properties".into(),
                );
            }
            None => {}
        }
    }
    if let Some(p) = props {
        for (k, s) in p {
            let optional = s.get("optional").and_then(Value::as_i64).unwrap_or(0) != 0;
            if !optional && !params.contains_key(k) {
                errors.insert(k.clone(), "property is missing and it is not optional".into());
            }
        }
    }
    if errors.is_empty() { Ok(()) } else { Err(ApiError::params(errors)) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn schema_loads_and_prefers_literals() {
        let s = Schema::get();
        assert!(s.len() > 600, "apidoc has {} methods", s.len());
        let m = s.find("GET", "/nodes/pve1/qemu/100/status/current").expect("found");
        assert_eq!(m.endpoint.template, "/nodes/{node}/qemu/{vmid}/status/current");
        assert_eq!(m.path_params["vmid"], "100");
        assert!(s.find("GET", "/nodes/pve1/bogus/x/y/z/w").is_none());
    }

    #[test]
    fn validation_texts_match_pve() {
        let s = Schema::get();
        let ep = s.find("POST", "/nodes/pve/lxc/100/snapshot").expect("found").endpoint;
        let mut p = Params::new();
        p.insert("node".into(), json!("pve"));
        p.insert("vmid".into(), json!("100"));
        p.insert("snapname".into(), json!("a"));
        p.insert("vmstate".into(), json!("1"));
        let e = validate(ep, &p).expect_err("vmstate is qemu only");
        assert_eq!(
            e.errors.expect("errors")["vmstate"],
            "property is not defined in schema and the schema does not allow additional properties"
        );
        p.remove("vmstate");
        p.insert("vmid".into(), json!("99"));
        let e = validate(ep, &p).expect_err("bad vmid");
        assert_eq!(e.errors.expect("errors")["vmid"], "invalid format - value does not look like a valid VM ID\n");
        p.insert("vmid".into(), json!("abc"));
        let e = validate(ep, &p).expect_err("bad vmid");
        assert_eq!(e.errors.expect("errors")["vmid"], "type check ('integer') failed - got 'abc'");
    }
}
