//! Jobs, their logs and deployments in SQLite (WAL, versioned migrations). A job row holds
//! everything needed to find its process again after a restart: node, pid, the process start
//! time (so a recycled pid is never mistaken for the trainer), run directory and log offset.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};
use rusqlite_migration::{M, Migrations};
use serde::Serialize;

use crate::progress::Progress;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("database migration failed: {0}")]
    Migration(#[from] rusqlite_migration::Error),
}

const MIGRATIONS: &[&str] = &["CREATE TABLE jobs (
        id TEXT PRIMARY KEY, state TEXT NOT NULL, node TEXT, dataset TEXT NOT NULL, base_model TEXT NOT NULL,
        epochs INTEGER NOT NULL, language TEXT NOT NULL, run_dir TEXT NOT NULL, argv TEXT NOT NULL,
        pid INTEGER, proc_start INTEGER, log_offset INTEGER NOT NULL DEFAULT 0, progress TEXT NOT NULL DEFAULT '{}',
        exit_code INTEGER, error TEXT, model TEXT,
        created_at INTEGER NOT NULL, started_at INTEGER, finished_at INTEGER, updated_at INTEGER NOT NULL);
     CREATE TABLE job_log (id INTEGER PRIMARY KEY AUTOINCREMENT, job_id TEXT NOT NULL, line TEXT NOT NULL);
     CREATE INDEX job_log_job ON job_log(job_id, id);
     CREATE TABLE deploys (
        id INTEGER PRIMARY KEY AUTOINCREMENT, model TEXT NOT NULL, dir_name TEXT NOT NULL, previous TEXT,
        outcome TEXT NOT NULL, detail TEXT NOT NULL, at INTEGER NOT NULL);"];

pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// Where a job is in its life.
pub mod state {
    pub const RUNNING: &str = "running";
    pub const CANCELLING: &str = "cancelling";
    pub const SUCCEEDED: &str = "succeeded";
    pub const FAILED: &str = "failed";
    pub const CANCELLED: &str = "cancelled";

    pub fn is_final(s: &str) -> bool {
        matches!(s, SUCCEEDED | FAILED | CANCELLED)
    }
}

/// One training job as stored.
#[derive(Debug, Clone, Serialize)]
pub struct JobRow {
    pub id: String,
    pub state: String,
    pub node: Option<String>,
    pub dataset: String,
    pub base_model: String,
    pub epochs: u32,
    pub language: String,
    pub run_dir: String,
    #[serde(skip)]
    pub argv: Vec<String>,
    pub pid: Option<i64>,
    #[serde(skip)]
    pub proc_start: Option<i64>,
    #[serde(skip)]
    pub log_offset: u64,
    pub progress: Progress,
    pub exit_code: Option<i64>,
    pub error: Option<String>,
    pub model: Option<String>,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub updated_at: i64,
}

/// A new job's fixed fields.
pub struct NewJob<'a> {
    pub id: &'a str,
    pub node: Option<&'a str>,
    pub dataset: &'a str,
    pub base_model: &'a str,
    pub epochs: u32,
    pub language: &'a str,
    pub run_dir: &'a str,
    pub argv: &'a [String],
}

/// One deployment attempt.
#[derive(Debug, Clone, Serialize)]
pub struct DeployRow {
    pub model: String,
    pub dir_name: String,
    pub previous: Option<String>,
    pub outcome: String,
    pub detail: String,
    pub at: i64,
}

pub struct Store {
    conn: Mutex<Connection>,
}

const JOB_COLUMNS: &str = "id, state, node, dataset, base_model, epochs, language, run_dir, argv, pid, proc_start, \
    log_offset, progress, exit_code, error, model, created_at, started_at, finished_at, updated_at";

fn job_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<JobRow> {
    let argv: String = r.get(8)?;
    let progress: String = r.get(12)?;
    Ok(JobRow {
        id: r.get(0)?,
        state: r.get(1)?,
        node: r.get(2)?,
        dataset: r.get(3)?,
        base_model: r.get(4)?,
        epochs: r.get(5)?,
        language: r.get(6)?,
        run_dir: r.get(7)?,
        argv: serde_json::from_str(&argv).unwrap_or_default(),
        pid: r.get(9)?,
        proc_start: r.get(10)?,
        log_offset: u64::try_from(r.get::<_, i64>(11)?).unwrap_or(0),
        progress: progress_from(&progress),
        exit_code: r.get(13)?,
        error: r.get(14)?,
        model: r.get(15)?,
        created_at: r.get(16)?,
        started_at: r.get(17)?,
        finished_at: r.get(18)?,
        updated_at: r.get(19)?,
    })
}

fn progress_from(json: &str) -> Progress {
    serde_json::from_str(json).unwrap_or_default()
}

impl Store {
    /// Open (or create) the database at `path`; an empty path is an in-memory database.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let mut conn = if path.as_os_str().is_empty() {
            Connection::open_in_memory()?
        } else {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                let _ = std::fs::create_dir_all(dir);
            }
            let c = Connection::open(path)?;
            c.pragma_update(None, "journal_mode", "WAL")?;
            c
        };
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        Migrations::new(MIGRATIONS.iter().map(|m| M::up(m)).collect()).to_latest(&mut conn)?;
        Ok(Self { conn: Mutex::new(conn) })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn insert_job(&self, j: &NewJob<'_>) -> Result<(), StoreError> {
        let t = now();
        self.conn().execute(
            "INSERT INTO jobs (id, state, node, dataset, base_model, epochs, language, run_dir, argv, created_at, updated_at)
             VALUES (?1, 'running', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)",
            params![j.id, j.node, j.dataset, j.base_model, j.epochs, j.language, j.run_dir, serde_json::to_string(j.argv).unwrap_or_default(), t],
        )?;
        Ok(())
    }

    pub fn set_started(&self, id: &str, pid: i64, proc_start: Option<i64>) -> Result<(), StoreError> {
        let t = now();
        self.conn().execute(
            "UPDATE jobs SET pid = ?2, proc_start = ?3, started_at = ?4, updated_at = ?4 WHERE id = ?1",
            params![id, pid, proc_start, t],
        )?;
        Ok(())
    }

    pub fn job(&self, id: &str) -> Result<Option<JobRow>, StoreError> {
        Ok(self
            .conn()
            .query_row(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1"), [id], job_from)
            .optional()?)
    }

    pub fn jobs(&self, limit: u32) -> Result<Vec<JobRow>, StoreError> {
        let c = self.conn();
        let mut st =
            c.prepare(&format!("SELECT {JOB_COLUMNS} FROM jobs ORDER BY created_at DESC, rowid DESC LIMIT ?1"))?;
        let rows = st.query_map([limit], job_from)?.collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Jobs not finished (to re-attach after a restart).
    pub fn unfinished(&self) -> Result<Vec<JobRow>, StoreError> {
        let c = self.conn();
        let mut st = c.prepare(&format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE state IN ('running', 'cancelling') ORDER BY created_at"
        ))?;
        let rows = st.query_map([], job_from)?.collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Append log lines and the new progress and offset, keeping at most `keep` lines.
    pub fn append_log(
        &self,
        id: &str,
        lines: &[String],
        p: &Progress,
        offset: u64,
        keep: u32,
    ) -> Result<(), StoreError> {
        let mut c = self.conn();
        let tx = c.transaction()?;
        {
            let mut ins = tx.prepare_cached("INSERT INTO job_log (job_id, line) VALUES (?1, ?2)")?;
            for l in lines {
                ins.execute(params![id, l])?;
            }
        }
        tx.execute(
            "DELETE FROM job_log WHERE job_id = ?1 AND id <= (SELECT id FROM job_log WHERE job_id = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
            params![id, keep],
        )?;
        tx.execute(
            "UPDATE jobs SET progress = ?2, log_offset = ?3, updated_at = ?4 WHERE id = ?1",
            params![id, serde_json::to_string(p).unwrap_or_default(), i64::try_from(offset).unwrap_or(i64::MAX), now()],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// The last `n` log lines of a job, oldest first.
    pub fn log_tail(&self, id: &str, n: u32) -> Result<Vec<String>, StoreError> {
        let c = self.conn();
        let mut st = c.prepare("SELECT line FROM job_log WHERE job_id = ?1 ORDER BY id DESC LIMIT ?2")?;
        let mut lines = st.query_map(params![id, n], |r| r.get::<_, String>(0))?.collect::<Result<Vec<_>, _>>()?;
        lines.reverse();
        Ok(lines)
    }

    pub fn set_state(&self, id: &str, state: &str) -> Result<(), StoreError> {
        self.conn().execute("UPDATE jobs SET state = ?2, updated_at = ?3 WHERE id = ?1 AND state NOT IN ('succeeded', 'failed', 'cancelled')", params![id, state, now()])?;
        Ok(())
    }

    pub fn finish(
        &self,
        id: &str,
        state: &str,
        exit_code: Option<i64>,
        error: Option<&str>,
        model: Option<&str>,
    ) -> Result<(), StoreError> {
        let t = now();
        self.conn().execute(
            "UPDATE jobs SET state = ?2, exit_code = ?3, error = ?4, model = ?5, finished_at = ?6, updated_at = ?6 WHERE id = ?1",
            params![id, state, exit_code, error, model, t],
        )?;
        Ok(())
    }

    pub fn record_deploy(&self, d: &DeployRow) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO deploys (model, dir_name, previous, outcome, detail, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![d.model, d.dir_name, d.previous, d.outcome, d.detail, d.at],
        )?;
        Ok(())
    }

    /// The model currently live (the last successful deployment).
    pub fn active(&self) -> Result<Option<DeployRow>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT model, dir_name, previous, outcome, detail, at FROM deploys WHERE outcome = 'active' ORDER BY id DESC LIMIT 1",
                [],
                |r| Ok(DeployRow { model: r.get(0)?, dir_name: r.get(1)?, previous: r.get(2)?, outcome: r.get(3)?, detail: r.get(4)?, at: r.get(5)? }),
            )
            .optional()?)
    }
}
