//! Monitor events (`docs/protocol.md`: `GET /api/events`, WS `event`) and stored samples, in
//! the tables of the monitor's migration.

use rusqlite::params;
use serde::Serialize;
use serde_json::Value;

use crate::store::{Store, StoreError};

/// The monitor's tables (one self-contained migration).
pub const MIGRATION: &str = "CREATE TABLE monitor_events (
        id INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL NOT NULL, kind TEXT NOT NULL, severity TEXT NOT NULL,
        resource TEXT, condition TEXT, title TEXT NOT NULL, detail TEXT NOT NULL, auto INTEGER NOT NULL,
        data TEXT NOT NULL DEFAULT '{}');
     CREATE INDEX monitor_events_auto ON monitor_events(auto, id);
     CREATE INDEX monitor_events_kind ON monitor_events(kind, id);
     CREATE INDEX monitor_events_key ON monitor_events(condition, resource, id);
     CREATE TABLE monitor_samples (
        ts REAL NOT NULL, condition TEXT NOT NULL, resource TEXT NOT NULL, value REAL NOT NULL);
     CREATE INDEX monitor_samples_key ON monitor_samples(condition, resource, ts);
     CREATE INDEX monitor_samples_ts ON monitor_samples(ts);";

/// Events are pruned by age (`monitor.events_retention_days`).
pub const MIGRATION_EVENTS_TS: &str = "CREATE INDEX monitor_events_ts ON monitor_events(ts);";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Alert,
    Clear,
    Action,
    Verify,
    Escalation,
    Info,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Alert => "alert",
            Kind::Clear => "clear",
            Kind::Action => "action",
            Kind::Verify => "verify",
            Kind::Escalation => "escalation",
            Kind::Info => "info",
        }
    }
}

/// An event before it is stored.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub kind: Kind,
    pub severity: String,
    pub resource: Option<String>,
    pub condition: Option<String>,
    pub title: String,
    pub detail: String,
    /// Done by the monitor on its own.
    pub auto: bool,
    /// Extra facts (samples and thresholds at the time, tool results); stored, not sent.
    pub data: Value,
}

/// A stored event as the dashboard sees it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MonitorEvent {
    pub id: i64,
    pub ts: String,
    pub kind: String,
    pub severity: String,
    pub resource: Option<String>,
    pub condition: Option<String>,
    pub title: String,
    pub detail: String,
    pub auto: bool,
    /// Unix seconds (not serialized; for quiet hours and rate limits).
    #[serde(skip)]
    pub unix: f64,
}

/// `YYYY-MM-DDTHH:MM:SSZ` of Unix seconds (UTC, whole seconds).
pub fn rfc3339(unix: f64) -> String {
    mcp_common::time::iso_time(unix.floor() as i64)
}

pub fn now_unix() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<MonitorEvent> {
    let unix: f64 = r.get(1)?;
    Ok(MonitorEvent {
        id: r.get(0)?,
        ts: rfc3339(unix),
        kind: r.get(2)?,
        severity: r.get(3)?,
        resource: r.get(4)?,
        condition: r.get(5)?,
        title: r.get(6)?,
        detail: r.get(7)?,
        auto: r.get::<_, i64>(8)? != 0,
        unix,
    })
}

/// Which events `GET /api/events` lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    All,
    Auto,
    Alerts,
}

impl Filter {
    pub fn parse(s: Option<&str>) -> Option<Filter> {
        match s.unwrap_or("all") {
            "all" => Some(Filter::All),
            "auto" => Some(Filter::Auto),
            "alerts" => Some(Filter::Alerts),
            _ => None,
        }
    }
}

pub async fn insert(store: &Store, e: &NewEvent, unix: f64) -> Result<MonitorEvent, StoreError> {
    let e2 = e.clone();
    let id = store
        .with(move |c| {
            c.execute(
                "INSERT INTO monitor_events (ts, kind, severity, resource, condition, title, detail, auto, data)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    unix,
                    e2.kind.as_str(),
                    e2.severity,
                    e2.resource,
                    e2.condition,
                    e2.title,
                    e2.detail,
                    i64::from(e2.auto),
                    e2.data.to_string()
                ],
            )?;
            Ok(c.last_insert_rowid())
        })
        .await?;
    Ok(MonitorEvent {
        id,
        ts: rfc3339(unix),
        kind: e.kind.as_str().into(),
        severity: e.severity.clone(),
        resource: e.resource.clone(),
        condition: e.condition.clone(),
        title: e.title.clone(),
        detail: e.detail.clone(),
        auto: e.auto,
        unix,
    })
}

/// Newest first, at most `limit`, older than `before` (an id) when given.
pub async fn list(
    store: &Store,
    filter: Filter,
    limit: u32,
    before: Option<i64>,
) -> Result<Vec<MonitorEvent>, StoreError> {
    let limit = i64::from(limit.clamp(1, 500));
    let before = before.unwrap_or(i64::MAX);
    store
        .with(move |c| {
            let cond = match filter {
                Filter::All => "1",
                Filter::Auto => "auto = 1",
                Filter::Alerts => "kind IN ('alert', 'escalation')",
            };
            let sql = format!(
                "SELECT id, ts, kind, severity, resource, condition, title, detail, auto FROM monitor_events
                 WHERE id < ?1 AND {cond} ORDER BY id DESC LIMIT ?2"
            );
            let mut st = c.prepare(&sql)?;
            let rows = st.query_map(params![before, limit], row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
}

/// The stored facts (`data`) of the latest event about this condition and resource.
pub async fn latest_data(
    store: &Store,
    condition: &str,
    resource: &str,
) -> Result<Option<(MonitorEvent, Value)>, StoreError> {
    let (condition, resource) = (condition.to_string(), resource.to_string());
    store
        .with(move |c| {
            let mut st = c.prepare(
                "SELECT id, ts, kind, severity, resource, condition, title, detail, auto, data FROM monitor_events
                 WHERE condition = ?1 AND resource = ?2 ORDER BY id DESC LIMIT 1",
            )?;
            let mut rows = st.query_map(params![condition, resource], |r| {
                Ok((row(r)?, serde_json::from_str(&r.get::<_, String>(9)?).unwrap_or(Value::Null)))
            })?;
            Ok(rows.next().transpose()?)
        })
        .await
}

/// Store samples (dropped by [`prune`]).
pub async fn store_samples(store: &Store, samples: Vec<(String, String, f64)>, ts: f64) -> Result<(), StoreError> {
    store
        .with(move |c| {
            let tx = c.transaction()?;
            {
                let mut st =
                    tx.prepare("INSERT INTO monitor_samples (ts, condition, resource, value) VALUES (?1, ?2, ?3, ?4)")?;
                for (cond, res, v) in &samples {
                    st.execute(params![ts, cond, res, v])?;
                }
            }
            tx.commit()?;
            Ok(())
        })
        .await
}

/// How long stored samples and events are kept.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Retention {
    pub sample_secs: f64,
    /// None = events are kept forever.
    pub event_secs: Option<f64>,
}

/// Drop samples and events older than their retention at `now`; returns how many of each.
pub async fn prune(store: &Store, now: f64, keep: Retention) -> Result<(usize, usize), StoreError> {
    store
        .with(move |c| {
            let tx = c.transaction()?;
            let samples = tx.execute("DELETE FROM monitor_samples WHERE ts < ?1", params![now - keep.sample_secs])?;
            let events = match keep.event_secs {
                Some(secs) => tx.execute("DELETE FROM monitor_events WHERE ts < ?1", params![now - secs])?,
                None => 0,
            };
            tx.commit()?;
            Ok((samples, events))
        })
        .await
}

/// Stored samples of one condition and resource, oldest first (at most `limit`, the newest).
pub async fn samples(
    store: &Store,
    condition: &str,
    resource: &str,
    limit: u32,
) -> Result<Vec<(f64, f64)>, StoreError> {
    let (condition, resource) = (condition.to_string(), resource.to_string());
    store
        .with(move |c| {
            let mut st = c.prepare(
                "SELECT ts, value FROM monitor_samples WHERE condition = ?1 AND resource = ?2 ORDER BY ts DESC LIMIT ?3",
            )?;
            let rows = st.query_map(params![condition, resource, i64::from(limit)], |r| Ok((r.get(0)?, r.get(1)?)))?;
            let mut v = rows.collect::<Result<Vec<(f64, f64)>, _>>()?;
            v.reverse();
            Ok(v)
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_matches_known_instants() {
        assert_eq!(rfc3339(0.0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400.0), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_643_045.9), "2026-11-25T21:44:05Z");
        assert_eq!(rfc3339(4_107_542_399.0), "2100-02-28T23:59:59Z");
    }

    #[tokio::test]
    async fn events_round_trip_with_filters_and_paging() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("j.db")).expect("open");
        let ev = |kind, auto| NewEvent {
            kind,
            severity: "warning".into(),
            resource: Some("qemu/101".into()),
            condition: Some("guest_crashed".into()),
            title: "t".into(),
            detail: "d".into(),
            auto,
            data: serde_json::json!({"x": 1}),
        };
        for (k, a) in [(Kind::Alert, false), (Kind::Action, true), (Kind::Verify, true), (Kind::Clear, false)] {
            insert(&store, &ev(k, a), 1_000.0).await.expect("insert");
        }
        let all = list(&store, Filter::All, 50, None).await.expect("list");
        assert_eq!(all.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(), ["clear", "verify", "action", "alert"]);
        assert_eq!(list(&store, Filter::Auto, 50, None).await.expect("auto").len(), 2);
        assert_eq!(list(&store, Filter::Alerts, 50, None).await.expect("alerts").len(), 1);
        let page = list(&store, Filter::All, 2, Some(all[1].id)).await.expect("page");
        assert_eq!(page.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(), ["action", "alert"]);
        let (e, data) = latest_data(&store, "guest_crashed", "qemu/101").await.expect("latest").expect("some");
        assert_eq!((e.kind.as_str(), data["x"].as_i64()), ("clear", Some(1)));
        store_samples(&store, vec![("cpu".into(), "node/pve1".into(), 95.0)], 10_000.0).await.expect("s");
        store_samples(&store, vec![("cpu".into(), "node/pve1".into(), 96.0)], 20_000.0).await.expect("s");
        let keep = Retention { sample_secs: 3600.0, event_secs: None };
        assert_eq!(prune(&store, 20_000.0, keep).await.expect("prune"), (1, 0));
        assert_eq!(samples(&store, "cpu", "node/pve1", 10).await.expect("samples"), vec![(20_000.0, 96.0)]);
    }

    #[tokio::test]
    async fn old_events_are_pruned_with_the_samples() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("j.db")).expect("open");
        let day = 86_400.0;
        let now = 1_000.0 * day;
        let ev = |title: &str| NewEvent {
            kind: Kind::Alert,
            severity: "warning".into(),
            resource: Some("node/pve1".into()),
            condition: Some("cpu".into()),
            title: title.into(),
            detail: "d".into(),
            auto: false,
            data: serde_json::json!({}),
        };
        for (title, age_days) in [("ancient", 400.0), ("old", 91.0), ("recent", 89.0), ("today", 0.0)] {
            insert(&store, &ev(title), now - age_days * day).await.expect("insert");
        }
        store_samples(&store, vec![("cpu".into(), "node/pve1".into(), 95.0)], now - 2.0 * day).await.expect("s");
        store_samples(&store, vec![("cpu".into(), "node/pve1".into(), 96.0)], now).await.expect("s");
        let titles = |v: Vec<MonitorEvent>| v.into_iter().map(|e| e.title).collect::<Vec<_>>();

        // 0 days = forever: only the samples go.
        let forever = Retention { sample_secs: day, event_secs: None };
        assert_eq!(prune(&store, now, forever).await.expect("prune"), (1, 0));
        assert_eq!(list(&store, Filter::All, 50, None).await.expect("list").len(), 4);

        let ninety_days = Retention { sample_secs: day, event_secs: Some(90.0 * day) };
        assert_eq!(prune(&store, now, ninety_days).await.expect("prune"), (0, 2));
        assert_eq!(titles(list(&store, Filter::All, 50, None).await.expect("list")), ["today", "recent"]);
        assert_eq!(samples(&store, "cpu", "node/pve1", 10).await.expect("samples"), vec![(now, 96.0)]);
        assert_eq!(prune(&store, now, ninety_days).await.expect("again"), (0, 0));

        let mut cfg = crate::monitor::config::MonitorConfig::default();
        assert_eq!(cfg.retention(), Retention { sample_secs: 24.0 * 3600.0, event_secs: Some(90.0 * day) });
        cfg.events_retention_days = 0;
        assert_eq!(cfg.retention().event_secs, None, "0 = forever");
    }
}
