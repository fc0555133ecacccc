//! The Wyoming protocol (Rhasspy / Home Assistant voice services): each event is one JSON line
//! `{"type", "data"?, "data_length"?, "payload_length"?, "version"?}`, followed by
//! `data_length` bytes of extra JSON data (merged into `data`) and `payload_length` bytes of
//! binary payload (PCM for `audio-chunk`).
//!
//! The `wyoming` crate (0.2.1) was evaluated: it only models event types (with a `bigdecimal`
//! dependency) and has no async reader/writer or payload framing, so this small codec is used.

use serde_json::{Map, Value, json};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Protocol version written into headers.
pub const VERSION: &str = "1.5.3";
/// Limits that keep a hostile or broken peer from making us allocate without bound.
pub const MAX_HEADER: usize = 64 * 1024;
pub const MAX_DATA: usize = 1024 * 1024;
pub const MAX_PAYLOAD: usize = 16 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum WyomingError {
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    #[error("bad event: {0}")]
    Bad(String),
    #[error("connection closed")]
    Closed,
}

/// One Wyoming event.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Event {
    pub kind: String,
    pub data: Map<String, Value>,
    pub payload: Option<Vec<u8>>,
}

impl Event {
    pub fn new(kind: &str, data: Value) -> Self {
        let data = match data {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        Self { kind: kind.to_string(), data, payload: None }
    }

    pub fn with_payload(mut self, payload: Vec<u8>) -> Self {
        self.payload = Some(payload);
        self
    }

    /// Serialise to bytes (header line, data, payload).
    pub fn to_bytes(&self) -> Vec<u8> {
        let data = serde_json::to_vec(&Value::Object(self.data.clone())).unwrap_or_else(|_| b"{}".to_vec());
        let mut header = json!({"type": self.kind, "version": VERSION});
        if !self.data.is_empty() {
            header["data_length"] = json!(data.len());
        }
        if let Some(p) = &self.payload {
            header["payload_length"] = json!(p.len());
        }
        let mut out = header.to_string().into_bytes();
        out.push(b'\n');
        if !self.data.is_empty() {
            out.extend_from_slice(&data);
        }
        if let Some(p) = &self.payload {
            out.extend_from_slice(p);
        }
        out
    }

    pub fn u64(&self, key: &str) -> Option<u64> {
        self.data.get(key).and_then(Value::as_u64)
    }

    pub fn str(&self, key: &str) -> Option<&str> {
        self.data.get(key).and_then(Value::as_str)
    }
}

pub async fn write_event<W: AsyncWrite + Unpin>(w: &mut W, ev: &Event) -> Result<(), WyomingError> {
    w.write_all(&ev.to_bytes()).await?;
    w.flush().await?;
    Ok(())
}

fn length(header: &Map<String, Value>, key: &str, max: usize) -> Result<usize, WyomingError> {
    match header.get(key) {
        None | Some(Value::Null) => Ok(0),
        Some(v) => {
            let n = v.as_u64().ok_or_else(|| WyomingError::Bad(format!("{key} is not a length")))? as usize;
            if n > max {
                return Err(WyomingError::Bad(format!("{key} {n} exceeds {max}")));
            }
            Ok(n)
        }
    }
}

/// Read the next event; `Closed` at a clean end of stream.
pub async fn read_event<R: AsyncBufRead + Unpin>(r: &mut R) -> Result<Event, WyomingError> {
    let mut line = Vec::new();
    loop {
        let n = (&mut *r).take((MAX_HEADER + 1) as u64).read_until(b'\n', &mut line).await?;
        if n == 0 {
            return Err(WyomingError::Closed);
        }
        if line.len() > MAX_HEADER {
            return Err(WyomingError::Bad("header line too long".into()));
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            line.clear();
            continue;
        }
        break;
    }
    let header: Value = serde_json::from_slice(&line).map_err(|e| WyomingError::Bad(format!("header: {e}")))?;
    let Value::Object(header) = header else { return Err(WyomingError::Bad("header is not an object".into())) };
    let kind = header
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| WyomingError::Bad("header without type".into()))?
        .to_string();
    let mut data = match header.get("data") {
        Some(Value::Object(m)) => m.clone(),
        _ => Map::new(),
    };
    let data_len = length(&header, "data_length", MAX_DATA)?;
    if data_len > 0 {
        let mut buf = vec![0u8; data_len];
        r.read_exact(&mut buf).await?;
        match serde_json::from_slice(&buf).map_err(|e| WyomingError::Bad(format!("data: {e}")))? {
            Value::Object(m) => data.extend(m),
            _ => return Err(WyomingError::Bad("data is not an object".into())),
        }
    }
    let payload_len = length(&header, "payload_length", MAX_PAYLOAD)?;
    let payload = if header.contains_key("payload_length") && !header["payload_length"].is_null() {
        let mut buf = vec![0u8; payload_len];
        r.read_exact(&mut buf).await?;
        Some(buf)
    } else {
        None
    };
    Ok(Event { kind, data, payload })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn events_round_trip_with_data_and_payload() {
        let evs = vec![
            Event::new("synthesize", json!({"text": "Hello there.\nNew line", "voice": {"name": "joe"}})),
            Event::new("audio-chunk", json!({"rate": 22050, "width": 2, "channels": 1})).with_payload(vec![1, 2, 3, 0]),
            Event::new("audio-stop", json!({})),
            Event::new("empty-payload", json!({})).with_payload(vec![]),
        ];
        let bytes: Vec<u8> = evs.iter().flat_map(Event::to_bytes).collect();
        let mut r = tokio::io::BufReader::new(&bytes[..]);
        for e in &evs {
            assert_eq!(&read_event(&mut r).await.expect("event"), e);
        }
        assert!(matches!(read_event(&mut r).await, Err(WyomingError::Closed)));
    }

    #[tokio::test]
    async fn inline_data_and_separate_data_merge() {
        let raw = b"{\"type\":\"transcript\",\"data\":{\"a\":1},\"data_length\":13}\n{\"text\":\"hi\"}";
        let ev = read_event(&mut tokio::io::BufReader::new(&raw[..])).await.expect("event");
        assert_eq!(ev.str("text"), Some("hi"));
        assert_eq!(ev.u64("a"), Some(1));
    }

    #[tokio::test]
    async fn hostile_lengths_and_garbage_are_errors() {
        for raw in [
            &b"{\"type\":\"x\",\"payload_length\":999999999999}\n"[..],
            b"{\"type\":\"x\",\"data_length\":-1}\n",
            b"not json\n",
            b"[1,2]\n",
            b"{\"data\":{}}\n",
            b"{\"type\":\"x\",\"payload_length\":10}\nabc",
        ] {
            assert!(read_event(&mut tokio::io::BufReader::new(raw)).await.is_err(), "{}", String::from_utf8_lossy(raw));
        }
        let long = vec![b'a'; MAX_HEADER + 10];
        assert!(matches!(read_event(&mut tokio::io::BufReader::new(&long[..])).await, Err(WyomingError::Bad(_))));
    }
}
