//! pveproxy's wire format: the `{"data": …}` envelope, error bodies, reason phrases and headers.
//!
//! Everything a handler returns goes through [`Reply`] or [`ApiError`], so the shape of every
//! response (and the differences between the `pve9` and `pve8` profiles) lives in one place.

use std::collections::BTreeMap;
use std::io::Write;

use serde_json::{Map, Value, json};

use crate::Profile;

/// A handler failure, rendered exactly as pveproxy renders it.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: u16,
    /// Full error text; its first line becomes the HTTP reason phrase.
    pub message: String,
    /// Per-parameter errors (`errors` in the body), only for 400s.
    pub errors: Option<BTreeMap<String, String>>,
    /// 401 and 595 answers carry no body at all.
    pub empty_body: bool,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// A plain `die` in a Perl handler: HTTP 500 with the message.
    pub fn server(msg: impl Into<String>) -> Self {
        Self { status: 500, message: msg.into(), errors: None, empty_body: false }
    }

    /// `raise_param_exc`: 400 "Parameter verification failed." with per-parameter messages.
    pub fn params(errors: BTreeMap<String, String>) -> Self {
        Self { status: 400, message: "Parameter verification failed.".into(), errors: Some(errors), empty_body: false }
    }

    pub fn param(name: &str, msg: impl Into<String>) -> Self {
        Self::params(BTreeMap::from([(name.to_string(), msg.into())]))
    }

    /// `raise_perm_exc` with the path and privileges that were missing.
    pub fn perm(path: &str, privs: &[&str]) -> Self {
        Self::perm_text(format!("Permission check failed ({path}, {})", privs.join("|")))
    }

    pub fn perm_text(msg: impl Into<String>) -> Self {
        Self { status: 403, message: msg.into(), errors: None, empty_body: false }
    }

    /// 401 from the auth handler: reason phrase only, empty body.
    pub fn unauthorized(msg: impl Into<String>) -> Self {
        Self { status: 401, message: msg.into(), errors: None, empty_body: true }
    }

    pub fn not_implemented(method: &str, path: &str) -> Self {
        Self {
            status: 501,
            message: format!("Method '{method} {path}' not implemented"),
            errors: None,
            empty_body: false,
        }
    }

    /// The proxy could not reach the node that owns the resource.
    pub fn node_unreachable(reason: &str) -> Self {
        Self { status: 595, message: reason.into(), errors: None, empty_body: true }
    }

    pub fn config_missing(node: &str, kind_dir: &str, vmid: u32) -> Self {
        Self::server(format!("Configuration file 'nodes/{node}/{kind_dir}/{vmid}.conf' does not exist"))
    }

    pub fn no_quorum() -> Self {
        Self::server("cluster not ready - no quorum?")
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, self.message)
    }
}

impl std::error::Error for ApiError {}

/// A successful answer: `data` plus the optional `total` that list endpoints add.
#[derive(Debug, Clone, Default)]
pub struct Reply {
    pub data: Value,
    pub total: Option<u64>,
}

impl Reply {
    pub fn data(data: Value) -> Self {
        Self { data, total: None }
    }

    pub fn null() -> Self {
        Self { data: Value::Null, total: None }
    }

    pub fn with_total(mut self, total: u64) -> Self {
        self.total = Some(total);
        self
    }
}

/// Status, reason phrase and body bytes of an answer, before transport framing.
#[derive(Debug)]
pub struct Rendered {
    pub status: u16,
    pub reason: String,
    pub body: Vec<u8>,
}

pub fn render_ok(reply: Reply) -> Rendered {
    let mut obj = Map::new();
    obj.insert("data".into(), reply.data);
    if let Some(t) = reply.total {
        obj.insert("total".into(), json!(t));
    }
    Rendered { status: 200, reason: "OK".into(), body: serde_json::to_vec(&Value::Object(obj)).unwrap_or_default() }
}

pub fn render_err(err: &ApiError, profile: Profile) -> Rendered {
    let reason = reason_phrase(err.status, &err.message);
    if err.empty_body {
        return Rendered { status: err.status, reason, body: Vec::new() };
    }
    let mut obj = Map::new();
    if let Some(errors) = &err.errors {
        obj.insert("errors".into(), json!(errors));
    }
    // `message` exists since libpve-http-server-perl 5.2.0 (2025); older servers only send data:null.
    if profile == Profile::Pve9 {
        let mut msg = err.message.clone();
        if !msg.ends_with('\n') {
            msg.push('\n');
        }
        obj.insert("message".into(), Value::String(msg));
    }
    obj.insert("data".into(), Value::Null);
    Rendered { status: err.status, reason, body: serde_json::to_vec(&Value::Object(obj)).unwrap_or_default() }
}

/// pveproxy uses the first line of the error as reason phrase; a phrase that is not a valid
/// header value falls back to the standard one.
pub fn reason_phrase(status: u16, message: &str) -> String {
    let first = message.lines().next().unwrap_or("").trim_end();
    if first.is_empty() || first.bytes().any(|b| b < 0x20 && b != b'\t' || b == 0x7f) {
        return http::StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("Error")
            .to_string();
    }
    first.to_string()
}

/// gzip the body when the client accepts it and it is larger than 1 KiB, as pveproxy does.
pub fn maybe_gzip(body: Vec<u8>, accept_encoding: Option<&str>) -> (Vec<u8>, bool) {
    let wants =
        accept_encoding.map(|v| v.split(',').any(|p| p.trim().split(';').next() == Some("gzip"))).unwrap_or(false);
    if !wants || body.len() <= 1024 {
        return (body, false);
    }
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    if enc.write_all(&body).is_err() {
        return (body, false);
    }
    match enc.finish() {
        Ok(z) => (z, true),
        Err(_) => (body, false),
    }
}

/// RFC 7231 date as pveproxy sends in `Date` and `Expires`.
pub fn http_date(epoch: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let days = epoch.div_euclid(86_400);
    let secs = epoch.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
        DAYS[days.rem_euclid(7) as usize],
        d,
        MONTHS[(m - 1) as usize],
        y,
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    )
}

/// Days since 1970-01-01 to (year, month, day); Howard Hinnant's algorithm.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_is_first_line() {
        assert_eq!(reason_phrase(400, "Parameter verification failed.\n"), "Parameter verification failed.");
        assert_eq!(reason_phrase(500, "a\nb"), "a");
        assert_eq!(reason_phrase(500, ""), "Internal Server Error");
    }

    #[test]
    fn legacy_profile_has_no_message() {
        let e = ApiError::server("boom");
        let r = render_err(&e, Profile::Pve8);
        assert_eq!(r.body, br#"{"data":null}"#);
        let r = render_err(&e, Profile::Pve9);
        assert_eq!(r.body, br#"{"message":"boom\n","data":null}"#);
    }

    #[test]
    fn http_date_known_value() {
        assert_eq!(http_date(1_606_311_559), "Wed, 25 Nov 2020 13:39:19 GMT");
    }
}
