//! The request generator: a seeded splitmix64 and a [`Fuzzer`] that builds hostile requests from
//! the API schema's templates.

use serde_json::{Value, json};

use crate::raw::Headers;

pub const MCP_TOKEN: &str = "jarvis@pve!mcp=5f0c7a1e-2d4b-4c8e-9a61-0b9d3c2e7f10";

/// splitmix64: small, seeded, reproducible.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Strings that break naive parsers.
const HOSTILE: &[&str] = &[
    "",
    ".",
    "..",
    "../..",
    "%2e%2e",
    "%2F",
    "%00",
    "%ff%fe",
    "%",
    "%zz",
    "%%",
    "a b",
    "\"",
    "'",
    "<x>",
    "{vmid}",
    "-1",
    "0",
    "+1",
    "1e309",
    "NaN",
    "-0",
    "99999999999999999999999999",
    "18446744073709551616",
    "4294967296",
    "2147483648",
    "0x10",
    "1.5",
    "true",
    "null",
    "[]",
    "{}",
    "🦀",
    "ünïcödé",
    "\u{202e}gnp.exe",
    "ﬁ",
    "é",
    "UPID:",
    "UPID:pve1:zz:1:1:x:1:root@pam:",
    "UPID:pve1:0000:0000:0000:qmstart:100:root@pam:",
    "UPID:../../etc:1:1:1:x:1:root@pam:",
    "UPID:pve1:FFFFFFFFFFFFFFFFFFFFFF:1:1:x:1:root@pam:",
    "UPID:pve9:00001000:00000001:00000001:qmstart:100:root@pam:",
    "root@pam",
    "a=b",
    "a,b",
    ";",
    "\\",
    "*",
];

pub const NODES: &[&str] = &["pve1", "pve2", "pve3", "pve4", "localhost"];
const VMIDS: &[&str] = &["100", "101", "102", "103", "104", "108", "111", "112", "115", "200", "202", "203", "212"];
const STORAGES: &[&str] = &["local", "local-lvm", "nas"];
const SNAPS: &[&str] = &["pre-upgrade", "clean-install", "base", "experiment", "pg16-upgrade", "fz1"];

/// Endpoints the simulator implements: most requests go there so that handlers run.
const IMPLEMENTED: &[(&str, &str)] = &[
    ("GET", "/version"),
    ("POST", "/access/ticket"),
    ("GET", "/access/permissions"),
    ("GET", "/cluster/status"),
    ("GET", "/cluster/resources"),
    ("GET", "/cluster/tasks"),
    ("GET", "/cluster/nextid"),
    ("GET", "/cluster/ha/status/current"),
    ("GET", "/cluster/ha/status/manager_status"),
    ("GET", "/cluster/ha/resources"),
    ("GET", "/cluster/backup"),
    ("POST", "/cluster/backup"),
    ("GET", "/nodes"),
    ("GET", "/nodes/{node}/status"),
    ("POST", "/nodes/{node}/wakeonlan"),
    ("GET", "/nodes/{node}/rrddata"),
    ("GET", "/nodes/{node}/network"),
    ("POST", "/nodes/{node}/network"),
    ("GET", "/nodes/{node}/qemu"),
    ("POST", "/nodes/{node}/qemu"),
    ("GET", "/nodes/{node}/lxc"),
    ("GET", "/nodes/{node}/qemu/{vmid}/status/current"),
    ("GET", "/nodes/{node}/lxc/{vmid}/status/current"),
    ("GET", "/nodes/{node}/qemu/{vmid}/config"),
    ("GET", "/nodes/{node}/qemu/{vmid}/rrddata"),
    ("GET", "/nodes/{node}/qemu/{vmid}/agent/network-get-interfaces"),
    ("POST", "/nodes/{node}/qemu/{vmid}/status/start"),
    ("POST", "/nodes/{node}/qemu/{vmid}/status/stop"),
    ("POST", "/nodes/{node}/qemu/{vmid}/status/shutdown"),
    ("POST", "/nodes/{node}/qemu/{vmid}/status/suspend"),
    ("POST", "/nodes/{node}/qemu/{vmid}/status/resume"),
    ("POST", "/nodes/{node}/lxc/{vmid}/status/start"),
    ("POST", "/nodes/{node}/lxc/{vmid}/status/reboot"),
    ("GET", "/nodes/{node}/qemu/{vmid}/migrate"),
    ("POST", "/nodes/{node}/qemu/{vmid}/migrate"),
    ("POST", "/nodes/{node}/lxc/{vmid}/migrate"),
    ("GET", "/nodes/{node}/qemu/{vmid}/snapshot"),
    ("POST", "/nodes/{node}/qemu/{vmid}/snapshot"),
    ("POST", "/nodes/{node}/lxc/{vmid}/snapshot"),
    ("DELETE", "/nodes/{node}/qemu/{vmid}/snapshot/{snapname}"),
    ("POST", "/nodes/{node}/qemu/{vmid}/snapshot/{snapname}/rollback"),
    ("GET", "/nodes/{node}/storage"),
    ("GET", "/nodes/{node}/storage/{storage}/status"),
    ("GET", "/nodes/{node}/storage/{storage}/content"),
    ("POST", "/nodes/{node}/vzdump"),
    ("GET", "/nodes/{node}/tasks"),
    ("GET", "/nodes/{node}/tasks/{upid}"),
    ("GET", "/nodes/{node}/tasks/{upid}/status"),
    ("GET", "/nodes/{node}/tasks/{upid}/log"),
    ("DELETE", "/nodes/{node}/tasks/{upid}"),
];

/// (method, template, parameter properties) of every method in the schema.
pub fn schema_endpoints() -> Vec<(String, String, Value)> {
    fn walk(n: &Value, out: &mut Vec<(String, String, Value)>) {
        let path = n.get("path").and_then(Value::as_str).unwrap_or("");
        for (m, info) in n.get("info").and_then(Value::as_object).into_iter().flatten() {
            let props = info.pointer("/parameters/properties").cloned().unwrap_or(Value::Null);
            out.push((m.clone(), path.to_string(), props));
        }
        for c in n.get("children").and_then(Value::as_array).into_iter().flatten() {
            walk(c, out);
        }
    }
    let tree: Value = serde_json::from_str(include_str!("../../data/pve-apidoc.json")).expect("the apidoc is JSON");
    let mut out = Vec::new();
    for n in tree.as_array().expect("the apidoc is a list") {
        walk(n, &mut out);
    }
    out
}

/// Percent-encode a path segment (mostly), or leave it raw to probe the parser.
fn segment(rng: &mut Rng, s: &str) -> String {
    if rng.chance(10) && s.is_ascii() && !s.contains([' ', '"', '<', '>', '\\']) {
        return s.to_string();
    }
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

pub struct Fuzzer {
    pub rng: Rng,
    pub endpoints: Vec<(String, String, Value)>,
    /// UPIDs seen in answers, reused as `{upid}`.
    pub upids: Vec<String>,
    pub ticket: String,
    pub csrf: String,
}

impl Fuzzer {
    fn value_for(&mut self, name: &str, clean: bool) -> String {
        if !clean && self.rng.chance(20) {
            return if self.rng.chance(5) { "x".repeat(5000) } else { self.rng.pick(HOSTILE).to_string() };
        }
        match name {
            "node" | "target" => self.rng.pick(NODES).to_string(),
            "vmid" => self.rng.pick(VMIDS).to_string(),
            "storage" => self.rng.pick(STORAGES).to_string(),
            "snapname" => self.rng.pick(SNAPS).to_string(),
            "upid" if !self.upids.is_empty() => self.rng.pick(&self.upids).clone(),
            "username" => "root@pam".into(),
            "password" => "jarvis-demo".into(),
            "iface" => self.rng.pick(&["eno1", "vmbr0", "vmbr9"]).to_string(),
            _ if clean => format!("fz{}", self.rng.below(50)),
            _ => self.rng.pick(HOSTILE).to_string(),
        }
    }

    /// A plausible value of the right type.
    fn clean_value(&mut self, name: &str, prop: &Value) -> Value {
        if let Some(e) = prop.get("enum").and_then(Value::as_array).filter(|e| !e.is_empty()) {
            return self.rng.pick(e).clone();
        }
        match prop.get("type").and_then(Value::as_str) {
            Some("boolean") => json!(self.rng.below(2)),
            Some("integer" | "number") if name == "vmid" => json!(self.value_for(name, true)),
            Some("integer" | "number") => {
                let lo = prop.get("minimum").and_then(Value::as_i64).unwrap_or(0);
                json!(lo + self.rng.below(5) as i64)
            }
            _ => json!(self.value_for(name, true)),
        }
    }

    /// A value for a schema property: valid-looking, wrong type, or huge.
    fn param_value(&mut self, name: &str, prop: &Value) -> Value {
        if matches!(name, "node" | "vmid" | "target" | "storage" | "snapname") && self.rng.chance(70) {
            return json!(self.value_for(name, false));
        }
        let r = self.rng.below(10);
        match (prop.get("type").and_then(Value::as_str), r) {
            (_, 0) => json!("x".repeat(1 + self.rng.below(3000))),
            (_, 1) => json!(self.rng.pick(HOSTILE)),
            (Some("integer" | "number"), 2..=5) => {
                json!(*self.rng.pick(&[0i64, 1, 2, 30, 100, -1, i64::MAX, i64::MIN]))
            }
            (Some("integer" | "number"), _) => json!(self.rng.pick(&["1", "60", "-5", "1.5", "1e3", "abc", ""])),
            (Some("boolean"), _) => json!(self.rng.pick(&["1", "0", "true", "no", "maybe", ""])),
            (_, _) => match prop.get("enum").and_then(Value::as_array) {
                Some(e) if !e.is_empty() => self.rng.pick(e).clone(),
                _ => json!(self.value_for(name, false)),
            },
        }
    }

    /// Build one hostile request: (method, target, headers, body).
    pub fn request(&mut self) -> (String, String, Headers, Vec<u8>) {
        let (mut method, template, props) = if self.rng.chance(65) {
            let (m, t) = *self.rng.pick(IMPLEMENTED);
            let props =
                self.endpoints.iter().find(|e| e.0 == m && e.1 == t).map(|e| e.2.clone()).unwrap_or(Value::Null);
            (m.to_string(), t.to_string(), props)
        } else {
            self.rng.pick(&self.endpoints).clone()
        };
        // A third of the requests are well-formed, so that handlers run and create tasks.
        let clean = self.rng.chance(35);
        if !clean && self.rng.chance(8) {
            method = self.rng.pick(&["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "FOO"]).to_string();
        }
        let mut segs = Vec::new();
        for s in template.split('/').filter(|s| !s.is_empty()) {
            match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) => {
                    let v = self.value_for(name, clean);
                    segs.push(if clean { v } else { segment(&mut self.rng, &v) });
                }
                None => segs.push(s.to_string()),
            }
        }
        match if clean { 99 } else { self.rng.below(40) } {
            0 => segs.push(String::new()),
            1 => segs.push("..".into()),
            2 => segs.insert(0, "..".into()),
            3 => segs.push(segment(&mut self.rng, "ünïcödé")),
            4 => segs.push("y".repeat(4000)),
            5 => {
                segs.pop();
            }
            _ => {}
        }
        let prefix = match if clean { 99 } else { self.rng.below(50) } {
            0 => "",
            1 => "/api2/extjs",
            2 => "/api2/json/",
            3 => "/_sim",
            _ => "/api2/json",
        };
        let mut target = format!("{prefix}/{}", segs.join("/"));
        // Parameters: schema names with random values, plus unknown names.
        let mut params = serde_json::Map::new();
        let names: Vec<(String, Value)> =
            props.as_object().map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()).unwrap_or_default();
        if clean {
            let path_params: Vec<&str> = template.split(['{', '}']).skip(1).step_by(2).collect();
            for (k, p) in &names {
                let required = p.get("optional").and_then(Value::as_i64).unwrap_or(0) == 0;
                if !path_params.contains(&k.as_str()) && (required || self.rng.chance(15)) {
                    let v = self.clean_value(k, p);
                    params.insert(k.clone(), v);
                }
            }
        }
        for _ in 0..if clean { 0 } else { self.rng.below(5) } {
            if !names.is_empty() && self.rng.chance(80) {
                let (k, p) = self.rng.pick(&names).clone();
                let v = self.param_value(&k, &p);
                params.insert(k, v);
            } else {
                let k =
                    self.rng.pick(&["bogus", "x", "", "a[]", "%zz", "🦀", "vmstate", "skiplock", "force"]).to_string();
                params.insert(k, json!(self.rng.pick(HOSTILE)));
            }
        }
        let form = || {
            let pairs: Vec<(String, String)> = params
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_string)))
                .collect();
            serde_urlencoded::to_string(pairs).unwrap_or_default()
        };
        let mut headers = self.auth(&method, clean);
        let mut body = Vec::new();
        let r = if clean { 20 + self.rng.below(65) } else { self.rng.below(100) };
        if method == "GET" || method == "DELETE" || r < 15 {
            let q = form();
            if !q.is_empty() {
                target = format!("{target}?{q}");
            }
            if r == 0 {
                target.push_str("&%zz=%&=&a==b");
            }
        } else if r < 55 {
            body = form().into_bytes();
            headers.push(("Content-Type".into(), b"application/x-www-form-urlencoded".to_vec()));
        } else if r < 85 {
            body = serde_json::to_vec(&Value::Object(params)).unwrap_or_default();
            headers.push(("Content-Type".into(), b"application/json".to_vec()));
        } else {
            let (ct, b): (&str, Vec<u8>) = match self.rng.below(6) {
                0 => ("application/json", b"{\"snapname\": ".to_vec()),
                1 => ("application/json", b"[1,2,3]".to_vec()),
                2 => ("application/json", b"\"just a string\"".to_vec()),
                3 => ("application/x-www-form-urlencoded", vec![b'a', b'=', 0xff, 0xfe, b'&', b'%']),
                4 => ("application/json", b"{\"a\": {\"b\": [{\"c\": null}]}, \"vmid\": 1e400}".to_vec()),
                _ => ("text/plain", vec![0u8; 64]),
            };
            body = b;
            headers.push(("Content-Type".into(), ct.as_bytes().to_vec()));
        }
        (method, target, headers, body)
    }

    /// Mostly the operator's token or root's ticket, sometimes garbage.
    fn auth(&mut self, method: &str, clean: bool) -> Headers {
        let r = self.rng.below(if clean { 85 } else { 100 });
        let mut h: Headers = Vec::new();
        if r < 55 {
            h.push(("Authorization".into(), format!("PVEAPIToken={MCP_TOKEN}").into_bytes()));
        } else if r < 85 {
            h.push(("Cookie".into(), format!("PVEAuthCookie={}", self.ticket).into_bytes()));
            if method != "GET" {
                h.push(("CSRFPreventionToken".into(), self.csrf.clone().into_bytes()));
            }
        } else {
            let bad: &[&[u8]] = &[
                b"PVEAPIToken=",
                b"PVEAPIToken=root@pam!x=y",
                b"PVEAPIToken=jarvis@pve!mcp=wrong",
                b"PVEAPIToken=jarvis@pve=nobang",
                b"PVEAuthCookie=PVE:root@pam:00000000::AAAA",
                b"Bearer abc",
                b"PVEAPIToken=\xff\xfe@pve!x=y",
            ];
            match self.rng.below(4) {
                0 => h.push(("Authorization".into(), self.rng.pick(bad).to_vec())),
                1 => h.push(("Cookie".into(), b"a=b; PVEAuthCookie=%zz; PVEAuthCookie=".to_vec())),
                2 => {
                    h.push(("Cookie".into(), format!("PVEAuthCookie={}", self.ticket).into_bytes()));
                    let csrf: &[&[u8]] =
                        &[b"00000000:bad", b"-7FFFFFFFFFFFFFFF:x", b"+7FFFFFFFFFFFFFFF:x", b":", b"zz:", b"\xff:\xfe"];
                    h.push(("CSRFPreventionToken".into(), self.rng.pick(csrf).to_vec()));
                }
                _ => h.push(("Authorization".into(), format!("PVEAPIToken={}", "k".repeat(6000)).into_bytes())),
            }
        }
        h
    }
}
