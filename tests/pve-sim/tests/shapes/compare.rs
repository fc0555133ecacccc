//! Lenient shape comparison of a real Proxmox body (the sample) with the simulator's body.
//!
//! Same field names, compatible types: a number matches a numeric string, a boolean matches
//! 0/1, int and float are both numbers, and a `null` in the sample matches anything (absent
//! included, which is noted). Arrays of objects are compared as the union of their rows' keys,
//! optionally per row type. A field of the sample that the simulator lacks is a problem unless
//! the case documents it; a field the simulator adds is fine when the API schema
//! (`pve-apidoc.json`, the `returns` of the endpoint) declares it, else it must be documented.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// How the rows of an array are paired between sample and simulator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// All rows together.
    All,
    /// Per value of this field (`type` in `/cluster/resources`).
    Field(&'static str),
    /// Snapshot lists: the `current` pseudo row apart from the snapshots.
    Current,
}

pub struct Opts<'a> {
    pub group: Group,
    /// (path, reason): sample fields the simulator may lack.
    pub missing_ok: &'a [(&'a str, &'a str)],
    /// (path, reason): simulator fields that neither the sample nor the schema has.
    pub extra_ok: &'a [(&'a str, &'a str)],
    /// Paths of objects whose keys are data (disk names, node names): their values are compared.
    pub maps: &'a [&'a str],
    /// Fold numbered config keys (`scsi0`, `virtio1`, `net0`) into one class each.
    pub config_keys: bool,
    /// The endpoint's `returns` schema.
    pub schema: Option<&'a Value>,
}

#[derive(Debug, Default)]
pub struct Report {
    pub problems: Vec<String>,
    pub notes: Vec<String>,
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_string() } else { format!("{path}.{key}") }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn numeric(s: &str) -> bool {
    s.trim().parse::<f64>().is_ok()
}

fn zero_one(v: &Value) -> bool {
    match v {
        Value::Number(n) => n.as_f64().is_some_and(|f| f == 0.0 || f == 1.0),
        Value::String(s) => s == "0" || s == "1",
        _ => false,
    }
}

/// Scalar compatibility, sample first.
pub fn compatible(sample: &Value, sim: &Value) -> bool {
    match (sample, sim) {
        (Value::Null, _) => true,
        (Value::String(_), Value::String(_))
        | (Value::Number(_), Value::Number(_))
        | (Value::Bool(_), Value::Bool(_))
        | (Value::Array(_), Value::Array(_))
        | (Value::Object(_), Value::Object(_)) => true,
        (Value::Number(_), Value::String(s)) | (Value::String(s), Value::Number(_)) => numeric(s),
        (Value::Bool(_), other) | (other, Value::Bool(_)) => zero_one(other),
        _ => false,
    }
}

/// `scsi0` → `<disk>`, `net1` → `<net>`; other keys unchanged.
fn config_class(key: &str) -> String {
    let stem = key.trim_end_matches(|c: char| c.is_ascii_digit());
    if stem.len() == key.len() {
        return key.to_string();
    }
    match stem {
        "ide" | "sata" | "scsi" | "virtio" | "efidisk" | "tpmstate" | "unused" | "mp" => "<disk>".into(),
        "net" => "<net>".into(),
        _ => key.to_string(),
    }
}

/// Does the schema declare `key` (or accept any key) in this object?
fn declared(schema: Option<&Value>, key: &str) -> bool {
    let Some(s) = schema else { return false };
    if s.get("additionalProperties").is_some_and(|a| a.as_bool() == Some(true) || a.as_i64() == Some(1)) {
        return true;
    }
    let Some(props) = s.get("properties").and_then(Value::as_object) else {
        return s.get("type").and_then(Value::as_str) == Some("object");
    };
    let numbered = key.trim_end_matches(|c: char| c.is_ascii_digit());
    props.contains_key(key) || (numbered.len() < key.len() && props.contains_key(&format!("{numbered}[n]")))
}

fn child<'s>(schema: Option<&'s Value>, key: &str) -> Option<&'s Value> {
    schema?.get("properties")?.get(key)
}

/// Union of the rows' keys; the first non-null value of each key stands for it.
fn merge(rows: &[&Value]) -> Value {
    let mut out = Map::new();
    for r in rows {
        let Value::Object(m) = r else { continue };
        for (k, v) in m {
            match out.get_mut(k) {
                None => {
                    out.insert(k.clone(), v.clone());
                }
                Some(cur) if cur.is_null() => *cur = v.clone(),
                Some(Value::Object(cur)) if v.is_object() => {
                    let merged = merge(&[&Value::Object(cur.clone()), v]);
                    if let Value::Object(m2) = merged {
                        *cur = m2;
                    }
                }
                Some(_) => {}
            }
        }
    }
    Value::Object(out)
}

struct Cmp<'a, 'o> {
    opts: &'a Opts<'o>,
    report: Report,
}

impl Cmp<'_, '_> {
    fn allowed(list: &[(&str, &str)], path: &str) -> Option<String> {
        list.iter().find(|(p, _)| *p == path).map(|(_, why)| why.to_string())
    }

    fn value(&mut self, sample: &Value, sim: &Value, path: &str, schema: Option<&Value>) {
        if !compatible(sample, sim) {
            self.report.problems.push(format!(
                "{}: type mismatch, sample has {} {}, simulator has {} {}",
                if path.is_empty() { "<root>" } else { path },
                kind(sample),
                sample,
                kind(sim),
                sim
            ));
            return;
        }
        match (sample, sim) {
            (Value::Object(a), Value::Object(b)) if self.opts.maps.contains(&path) => {
                let av: Vec<&Value> = a.values().collect();
                let bv: Vec<&Value> = b.values().collect();
                if av.is_empty() {
                    return;
                }
                if bv.is_empty() {
                    self.report.problems.push(format!("{path}: the simulator's map is empty, the sample's is not"));
                    return;
                }
                let vs = schema.and_then(|s| s.get("additionalProperties")).filter(|v| v.is_object());
                self.value(&merge(&av), &merge(&bv), &join(path, "*"), vs);
            }
            (Value::Object(a), Value::Object(b)) => self.object(a, b, path, schema),
            (Value::Array(a), Value::Array(b)) => self.array(a, b, path, schema.and_then(|s| s.get("items"))),
            _ => {}
        }
    }

    fn object(&mut self, a: &Map<String, Value>, b: &Map<String, Value>, path: &str, schema: Option<&Value>) {
        let classify = |m: &Map<String, Value>| -> BTreeMap<String, (String, Value)> {
            let mut out = BTreeMap::new();
            for (k, v) in m {
                let c = if self.opts.config_keys { config_class(k) } else { k.clone() };
                out.entry(c).or_insert_with(|| (k.clone(), v.clone()));
            }
            out
        };
        let (a, b) = (classify(a), classify(b));
        for (k, (_, av)) in &a {
            let p = join(path, k);
            match b.get(k) {
                Some((orig, bv)) => self.value(av, bv, &p, child(schema, orig)),
                None if av.is_null() => {
                    self.report.notes.push(format!("{p}: null in the sample, absent in the simulator"))
                }
                None => match Self::allowed(self.opts.missing_ok, &p) {
                    Some(why) => self.report.notes.push(format!("{p}: not simulated ({why})")),
                    None => self.report.problems.push(format!("{p}: missing in the simulator (sample: {av})")),
                },
            }
        }
        for (k, (orig, bv)) in &b {
            if a.contains_key(k) || declared(schema, orig) {
                continue;
            }
            let p = join(path, k);
            match Self::allowed(self.opts.extra_ok, &p) {
                Some(why) => self.report.notes.push(format!("{p}: extra in the simulator ({why})")),
                None => self.report.problems.push(format!(
                    "{p}: the simulator sends it ({bv}) but neither the sample nor the API schema has it"
                )),
            }
        }
    }

    fn array(&mut self, a: &[Value], b: &[Value], path: &str, items: Option<&Value>) {
        let Some(first) = a.first() else { return };
        if !first.is_object() {
            for bv in b {
                if !a.iter().any(|av| compatible(av, bv)) {
                    self.report.problems.push(format!("{path}[]: simulator element {bv} does not match the sample's"));
                }
            }
            return;
        }
        let key = |r: &Value| -> String {
            match self.opts.group {
                Group::All => String::new(),
                Group::Field(f) => {
                    r.get(f).map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string)).unwrap_or_default()
                }
                Group::Current => {
                    if r.get("name").and_then(Value::as_str) == Some("current") {
                        "current".into()
                    } else {
                        "snapshot".into()
                    }
                }
            }
        };
        let mut groups: BTreeMap<String, (Vec<&Value>, Vec<&Value>)> = BTreeMap::new();
        for r in a {
            groups.entry(key(r)).or_default().0.push(r);
        }
        for r in b {
            if let Some(g) = groups.get_mut(&key(r)) {
                g.1.push(r);
            }
        }
        for (g, (sa, sb)) in groups {
            let p = match self.opts.group {
                Group::All => format!("{path}[]"),
                Group::Field(f) => format!("{path}[{f}={g}]"),
                Group::Current => format!("{path}[{g}]"),
            };
            if sb.is_empty() {
                self.report.problems.push(format!("{p}: the simulator returned no such rows"));
                continue;
            }
            self.value(&merge(&sa), &merge(&sb), &p, items);
        }
    }
}

/// Compare a sample value with the simulator's.
pub fn compare(sample: &Value, sim: &Value, opts: &Opts<'_>) -> Report {
    let mut c = Cmp { opts, report: Report::default() };
    c.value(sample, sim, "", opts.schema);
    c.report
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn opts() -> Opts<'static> {
        Opts { group: Group::All, missing_ok: &[], extra_ok: &[], maps: &[], config_keys: false, schema: None }
    }

    #[test]
    fn lenient_scalars() {
        assert!(compatible(&json!(1), &json!("1")));
        assert!(compatible(&json!(true), &json!(0)));
        assert!(compatible(&json!(1.5), &json!(2)));
        assert!(compatible(&json!(null), &json!("x")));
        assert!(!compatible(&json!("abc"), &json!(1)));
        assert!(!compatible(&json!(true), &json!(2)));
    }

    #[test]
    fn a_vanished_field_is_a_problem() {
        let sample = json!({"a": 1, "b": {"c": "x"}, "rows": [{"k": 1}, {"j": "2"}]});
        assert!(compare(&sample, &sample, &opts()).problems.is_empty());
        let sim = json!({"a": 1, "b": {}, "rows": [{"k": 1}]});
        let r = compare(&sample, &sim, &opts());
        assert_eq!(r.problems.len(), 2, "{:?}", r.problems);
        assert!(r.problems[0].starts_with("b.c:"));
        assert!(r.problems[1].starts_with("rows[].j:"));
    }

    #[test]
    fn extras_need_the_schema_or_a_reason() {
        let schema = json!({"type": "object", "properties": {"a": {}, "b": {}}});
        let o = Opts { schema: Some(&schema), ..opts() };
        assert!(compare(&json!({"a": 1}), &json!({"a": 1, "b": 2}), &o).problems.is_empty());
        assert_eq!(compare(&json!({"a": 1}), &json!({"a": 1, "z": 2}), &o).problems.len(), 1);
    }
}
