//! SQLite store (WAL, `synchronous=NORMAL`, 64 MB cache, busy timeout, versioned migrations): sessions,
//! messages with tokens/cost/timing, events, approvals, settings. Every call runs on the
//! blocking pool so the async runtime never waits on the disk.

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension, params};
use rusqlite_migration::{M, Migrations};
use serde::Serialize;
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("database migration failed: {0}")]
    Migration(#[from] rusqlite_migration::Error),
    #[error("database task failed: {0}")]
    Join(String),
}

const MIGRATIONS: &[&str] = &[
    "CREATE TABLE sessions (id TEXT PRIMARY KEY, title TEXT NOT NULL DEFAULT '', created_at INTEGER NOT NULL);
     CREATE TABLE messages (
        id INTEGER PRIMARY KEY AUTOINCREMENT, session_id TEXT NOT NULL REFERENCES sessions(id),
        role TEXT NOT NULL, content TEXT NOT NULL, provider TEXT, model TEXT,
        input_tokens INTEGER NOT NULL DEFAULT 0, output_tokens INTEGER NOT NULL DEFAULT 0,
        cost_usd REAL NOT NULL DEFAULT 0, timing TEXT, created_at INTEGER NOT NULL);
     CREATE INDEX messages_session ON messages(session_id, id);
     CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, ts INTEGER NOT NULL, kind TEXT NOT NULL, data TEXT NOT NULL);
     CREATE TABLE approvals (
        id TEXT PRIMARY KEY, session_id TEXT NOT NULL, tool TEXT NOT NULL, arguments TEXT NOT NULL,
        args_hash TEXT NOT NULL, tier TEXT NOT NULL, status TEXT NOT NULL, created_at INTEGER NOT NULL,
        resolved_at INTEGER);
     CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);",
    // voice (issue 8): what paid TTS engines cost.
    "CREATE TABLE tts_costs (id INTEGER PRIMARY KEY AUTOINCREMENT, ts INTEGER NOT NULL, engine TEXT NOT NULL,
        chars INTEGER NOT NULL, usd REAL NOT NULL);
     CREATE INDEX tts_costs_ts ON tts_costs(ts);",
    crate::monitor::events::MIGRATION,
    // Intelligence (issue 9): memories with FTS5, the cost ledger, context summaries.
    "CREATE TABLE memories (
        id INTEGER PRIMARY KEY AUTOINCREMENT, tier TEXT NOT NULL, kind TEXT NOT NULL, text TEXT NOT NULL,
        norm_key TEXT NOT NULL, source TEXT NOT NULL, session_id TEXT, created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL, expires_at INTEGER);
     CREATE UNIQUE INDEX memories_key ON memories(tier, kind, norm_key);
     CREATE INDEX memories_expiry ON memories(expires_at);
     CREATE VIRTUAL TABLE memories_fts USING fts5(text, content='memories', content_rowid='id', tokenize='porter unicode61');
     CREATE TRIGGER memories_ai AFTER INSERT ON memories BEGIN
        INSERT INTO memories_fts(rowid, text) VALUES (new.id, new.text); END;
     CREATE TRIGGER memories_ad AFTER DELETE ON memories BEGIN
        INSERT INTO memories_fts(memories_fts, rowid, text) VALUES ('delete', old.id, old.text); END;
     CREATE TRIGGER memories_au AFTER UPDATE OF text ON memories BEGIN
        INSERT INTO memories_fts(memories_fts, rowid, text) VALUES ('delete', old.id, old.text);
        INSERT INTO memories_fts(rowid, text) VALUES (new.id, new.text); END;
     CREATE TABLE costs (
        id INTEGER PRIMARY KEY AUTOINCREMENT, ts INTEGER NOT NULL, session_id TEXT, provider TEXT NOT NULL,
        model TEXT NOT NULL, input_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL,
        cache_read_tokens INTEGER NOT NULL, cache_write_tokens INTEGER NOT NULL, usage_known INTEGER NOT NULL,
        usd REAL, saved_usd REAL NOT NULL DEFAULT 0);
     CREATE INDEX costs_ts ON costs(ts);
     CREATE INDEX costs_session ON costs(session_id);
     CREATE TABLE context_summaries (
        session_id TEXT PRIMARY KEY, upto_message_id INTEGER NOT NULL, summary TEXT NOT NULL,
        entities TEXT NOT NULL, updated_at INTEGER NOT NULL);",
    crate::monitor::events::MIGRATION_EVENTS_TS,
];

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// A stored chat message.
#[derive(Debug, Clone, Serialize)]
pub struct StoredMessage {
    pub id: i64,
    pub role: String,
    /// JSON of the message blocks.
    pub content: Value,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cost_usd: f64,
    pub timing: Option<Value>,
    pub created_at: i64,
}

/// Fields of a message to append.
#[derive(Debug, Clone, Default)]
pub struct NewMessage {
    pub role: String,
    pub content: Value,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost_usd: f64,
    pub timing: Option<Value>,
}

#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
    path: std::path::PathBuf,
}

impl Store {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            let _ = std::fs::create_dir_all(dir);
        }
        let mut conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // The original's tuning (BACK-01): a 64 MB page cache, temporary tables in memory, 256 MB mapped.
        conn.pragma_update(None, "cache_size", -64_000)?;
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        conn.pragma_update(None, "mmap_size", 268_435_456)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        Migrations::new(MIGRATIONS.iter().map(|m| M::up(m)).collect()).to_latest(&mut conn)?;
        Ok(Self { conn: Arc::new(Mutex::new(conn)), path: path.to_path_buf() })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut c = conn.lock().unwrap_or_else(|e| e.into_inner());
            f(&mut c)
        })
        .await
        .map_err(|e| StoreError::Join(e.to_string()))?
    }

    /// Create the session if it does not exist yet.
    pub async fn ensure_session(&self, id: &str, title: &str) -> Result<(), StoreError> {
        let (id, title) = (id.to_string(), title.chars().take(80).collect::<String>());
        self.with(move |c| {
            c.execute(
                "INSERT OR IGNORE INTO sessions (id, title, created_at) VALUES (?1, ?2, ?3)",
                params![id, title, now()],
            )?;
            Ok(())
        })
        .await
    }

    pub async fn sessions(&self) -> Result<Vec<Value>, StoreError> {
        self.with(|c| {
            let mut st = c.prepare("SELECT id, title, created_at FROM sessions ORDER BY created_at DESC LIMIT 200")?;
            let rows = st.query_map([], |r| {
                Ok(serde_json::json!({"id": r.get::<_, String>(0)?, "title": r.get::<_, String>(1)?, "created_at": r.get::<_, i64>(2)?}))
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    pub async fn add_message(&self, session: &str, m: NewMessage) -> Result<i64, StoreError> {
        let session = session.to_string();
        self.with(move |c| {
            c.execute(
                "INSERT INTO messages (session_id, role, content, provider, model, input_tokens, output_tokens, cost_usd, timing, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    session,
                    m.role,
                    m.content.to_string(),
                    m.provider,
                    m.model,
                    m.input_tokens as i64,
                    m.output_tokens as i64,
                    m.cost_usd,
                    m.timing.map(|t| t.to_string()),
                    now()
                ],
            )?;
            Ok(c.last_insert_rowid())
        })
        .await
    }

    pub async fn messages(&self, session: &str) -> Result<Vec<StoredMessage>, StoreError> {
        let session = session.to_string();
        self.with(move |c| {
            let mut st = c.prepare(
                "SELECT id, role, content, provider, model, input_tokens, output_tokens, cost_usd, timing, created_at
                 FROM messages WHERE session_id = ?1 ORDER BY id",
            )?;
            let rows = st.query_map([session], |r| {
                Ok(StoredMessage {
                    id: r.get(0)?,
                    role: r.get(1)?,
                    content: serde_json::from_str(&r.get::<_, String>(2)?).unwrap_or(Value::Null),
                    provider: r.get(3)?,
                    model: r.get(4)?,
                    input_tokens: r.get(5)?,
                    output_tokens: r.get(6)?,
                    cost_usd: r.get(7)?,
                    timing: r.get::<_, Option<String>>(8)?.and_then(|t| serde_json::from_str(&t).ok()),
                    created_at: r.get(9)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    pub async fn event(&self, kind: &str, data: Value) -> Result<(), StoreError> {
        let kind = kind.to_string();
        self.with(move |c| {
            c.execute(
                "INSERT INTO events (ts, kind, data) VALUES (?1, ?2, ?3)",
                params![now(), kind, data.to_string()],
            )?;
            Ok(())
        })
        .await
    }

    pub async fn record_approval(
        &self,
        id: &str,
        session: &str,
        tool: &str,
        args: &Value,
        hash: &str,
        tier: &str,
    ) -> Result<(), StoreError> {
        let v = (
            id.to_string(),
            session.to_string(),
            tool.to_string(),
            args.to_string(),
            hash.to_string(),
            tier.to_string(),
        );
        self.with(move |c| {
            c.execute(
                "INSERT INTO approvals (id, session_id, tool, arguments, args_hash, tier, status, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending', ?7)",
                params![v.0, v.1, v.2, v.3, v.4, v.5, now()],
            )?;
            Ok(())
        })
        .await
    }

    /// Stored details of approval requests: id → (tool, arguments, args_hash, tier).
    pub async fn approval_details(
        &self,
        ids: Vec<String>,
    ) -> Result<Vec<(String, String, Value, String, String)>, StoreError> {
        self.with(move |c| {
            let mut st = c.prepare("SELECT id, tool, arguments, args_hash, tier FROM approvals WHERE id = ?1")?;
            let mut out = Vec::new();
            for id in ids {
                let row = st
                    .query_row([&id], |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            serde_json::from_str(&r.get::<_, String>(2)?).unwrap_or(Value::Null),
                            r.get::<_, String>(3)?,
                            r.get::<_, String>(4)?,
                        ))
                    })
                    .optional()?;
                out.extend(row);
            }
            Ok(out)
        })
        .await
    }

    pub async fn resolve_approval(&self, id: &str, status: &str) -> Result<(), StoreError> {
        let (id, status) = (id.to_string(), status.to_string());
        self.with(move |c| {
            c.execute("UPDATE approvals SET status = ?2, resolved_at = ?3 WHERE id = ?1", params![id, status, now()])?;
            Ok(())
        })
        .await
    }

    pub async fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        let key = key.to_string();
        self.with(move |c| {
            Ok(c.query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| r.get(0)).optional()?)
        })
        .await
    }

    pub async fn set_setting(&self, key: &str, value: &str) -> Result<(), StoreError> {
        let (key, value) = (key.to_string(), value.to_string());
        self.with(move |c| {
            c.execute("INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value", params![key, value])?;
            Ok(())
        })
        .await
    }

    /// Record the cost of one paid TTS synthesis (voice).
    pub async fn record_tts_cost(&self, engine: &str, chars: u64, usd: f64) -> Result<(), StoreError> {
        let engine = engine.to_string();
        self.with(move |c| {
            c.execute(
                "INSERT INTO tts_costs (ts, engine, chars, usd) VALUES (?1, ?2, ?3, ?4)",
                params![now(), engine, chars as i64, usd],
            )?;
            Ok(())
        })
        .await
    }

    /// Total TTS cost since `since` (unix seconds): (characters, USD).
    pub async fn tts_cost_since(&self, since: i64) -> Result<(i64, f64), StoreError> {
        self.with(move |c| {
            Ok(c.query_row(
                "SELECT COALESCE(SUM(chars), 0), COALESCE(SUM(usd), 0.0) FROM tts_costs WHERE ts >= ?1",
                params![since],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?)
        })
        .await
    }

    /// Is the database answering?
    pub async fn ping(&self) -> bool {
        self.with(|c| Ok(c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))?)).await.is_ok()
    }

    /// Write the WAL back into the database (on shutdown).
    pub async fn checkpoint(&self) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")?;
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_connection_is_tuned() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = Store::open(&dir.path().join("j.db")).expect("open");
        let got = s
            .with(|c| {
                let q = |p: &str| {
                    c.query_row(&format!("PRAGMA {p}"), [], |r| r.get::<_, rusqlite::types::Value>(0)).map(
                        |v| match v {
                            rusqlite::types::Value::Integer(i) => i.to_string(),
                            rusqlite::types::Value::Text(t) => t,
                            other => format!("{other:?}"),
                        },
                    )
                };
                Ok([q("journal_mode")?, q("synchronous")?, q("cache_size")?, q("temp_store")?, q("foreign_keys")?])
            })
            .await
            .expect("pragmas");
        // WAL, NORMAL (1), 64 MB cache, temp_store MEMORY (2), foreign keys on.
        assert_eq!(got, ["wal", "1", "-64000", "2", "1"].map(String::from));
    }

    #[tokio::test]
    async fn messages_survive_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("j.db");
        let s = Store::open(&p).expect("open");
        s.ensure_session("s1", "hello").await.expect("session");
        s.add_message(
            "s1",
            NewMessage { role: "user".into(), content: serde_json::json!([{"text": "hi"}]), ..Default::default() },
        )
        .await
        .expect("add");
        drop(s);
        let s = Store::open(&p).expect("reopen");
        let m = s.messages("s1").await.expect("messages");
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].content[0]["text"], "hi");
        assert!(s.ping().await);
    }
}
