//! Lenient decoding of Proxmox JSON: numbers sent as strings (`"vmid":"106"`, `"loadavg":["0.16"]`),
//! booleans sent as 0/1 or `""`, and missing keys.

use serde::{Deserialize, Deserializer};
use serde_json::Value;

fn num(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        _ => None,
    }
}

pub fn f64_<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<Value>::deserialize(d)?.as_ref().and_then(num).unwrap_or(0.0))
}

pub fn u64_<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    Ok(Option::<Value>::deserialize(d)?.as_ref().and_then(num).map(|f| f.max(0.0) as u64).unwrap_or(0))
}

pub fn opt_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Ok(Option::<Value>::deserialize(d)?.as_ref().and_then(num).map(|f| f.max(0.0) as u64))
}

pub fn opt_u32<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    Ok(Option::<Value>::deserialize(d)?.as_ref().and_then(num).and_then(|f| u32::try_from(f as i64).ok()))
}

pub fn opt_f64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    Ok(Option::<Value>::deserialize(d)?.as_ref().and_then(num))
}

pub fn bool_<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        Some(Value::Bool(b)) => b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        Some(Value::String(s)) => matches!(s.trim(), "1" | "true" | "yes" | "on"),
        _ => false,
    })
}

/// A string that may arrive as a number.
pub fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        Some(Value::String(s)) => Some(s),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct T {
        #[serde(default, deserialize_with = "opt_u32")]
        vmid: Option<u32>,
        #[serde(default, deserialize_with = "bool_")]
        template: bool,
        #[serde(default, deserialize_with = "f64_")]
        cpu: f64,
    }

    #[test]
    fn accepts_proxmox_quirks() {
        let t: T = serde_json::from_str(r#"{"vmid":"106","template":"","cpu":"0.5"}"#).expect("lenient");
        assert_eq!((t.vmid, t.template, t.cpu), (Some(106), false, 0.5));
        let t: T = serde_json::from_str(r#"{"vmid":106,"template":1}"#).expect("lenient");
        assert_eq!((t.vmid, t.template, t.cpu), (Some(106), true, 0.0));
    }
}
