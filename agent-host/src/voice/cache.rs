//! Synthesised speech cache: an in-memory LRU (moka) in front of a disk cache that survives
//! restarts. Keys are engine + voice + speed + normalised text; the disk holds WAV files named
//! by the SHA-256 of the key (no user text in file names), written atomically, and trimmed to
//! the newest `disk_entries` files.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use moka::future::Cache;

use super::sentences::normalise;

/// One cached clip (always WAV; Opus is derived per client).
#[derive(Debug, Clone, PartialEq)]
pub struct Clip {
    pub wav: Arc<Vec<u8>>,
    pub sample_rate: u32,
}

pub struct SpeechCache {
    memory: Cache<String, Clip>,
    /// Opus encodings of clips, keyed like `memory`.
    opus: Cache<String, Arc<Vec<u8>>>,
    dir: Option<PathBuf>,
    disk_entries: usize,
    writes: AtomicU64,
    pub hits: AtomicU64,
    pub misses: AtomicU64,
}

/// The cache key of a sentence.
pub fn key(engine: &str, voice: Option<&str>, speed: f32, text: &str) -> String {
    format!("{engine}\u{1f}{}\u{1f}{speed:.2}\u{1f}{}", voice.unwrap_or(""), normalise(text))
}

/// `<engine>-<sha256 of the key>.wav`: the engine prefix lets [`SpeechCache::clear_engine`] drop one
/// engine's clips from disk (engine ids come from the configuration; anything but `[A-Za-z0-9_]` is
/// replaced, so a name never leaves the directory).
fn file_name(key: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, key.as_bytes());
    let hex: String = d.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{hex}.wav", engine_prefix(key.split('\u{1f}').next().unwrap_or("")))
}

fn engine_prefix(engine: &str) -> String {
    engine.chars().take(40).map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect()
}

impl SpeechCache {
    pub fn new(memory_entries: u64, dir: Option<PathBuf>, disk_entries: usize) -> Self {
        if let Some(d) = &dir
            && let Err(e) = std::fs::create_dir_all(d)
        {
            tracing::warn!(dir = %d.display(), error = %e, "speech cache directory unavailable; memory only");
        }
        Self {
            memory: Cache::builder().max_capacity(memory_entries.max(1)).support_invalidation_closures().build(),
            opus: Cache::builder().max_capacity(memory_entries.max(1)).support_invalidation_closures().build(),
            dir,
            disk_entries: disk_entries.max(1),
            writes: AtomicU64::new(0),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    pub async fn get(&self, key: &str) -> Option<Clip> {
        if let Some(c) = self.memory.get(key).await {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Some(c);
        }
        let found = match &self.dir {
            Some(dir) => read_disk(&dir.join(file_name(key))).await,
            None => None,
        };
        match found {
            Some(c) => {
                self.hits.fetch_add(1, Ordering::Relaxed);
                self.memory.insert(key.to_string(), c.clone()).await;
                Some(c)
            }
            None => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    pub async fn put(&self, key: &str, clip: Clip) {
        self.memory.insert(key.to_string(), clip.clone()).await;
        let Some(dir) = self.dir.clone() else { return };
        let name = file_name(key);
        let trim = self.writes.fetch_add(1, Ordering::Relaxed).is_multiple_of(50);
        let max = self.disk_entries;
        // Disk work off the request path.
        tokio::task::spawn_blocking(move || {
            let tmp = dir.join(format!(".{name}.tmp"));
            let done = std::fs::write(&tmp, clip.wav.as_slice()).and_then(|()| std::fs::rename(&tmp, dir.join(&name)));
            if let Err(e) = done {
                tracing::warn!(error = %e, "writing the speech cache");
                let _ = std::fs::remove_file(&tmp);
            }
            if trim {
                trim_dir(&dir, max);
            }
        });
    }

    pub async fn get_opus(&self, key: &str) -> Option<Arc<Vec<u8>>> {
        self.opus.get(key).await
    }

    pub async fn put_opus(&self, key: &str, ogg: Arc<Vec<u8>>) {
        self.opus.insert(key.to_string(), ogg).await;
    }

    /// Forget every clip of `engine` (memory and disk): its voice changed (mcp-voice deployed a new
    /// model and announced it on `voice://models/active`). Returns the files removed.
    pub async fn clear_engine(&self, engine: &str) -> usize {
        let prefix = format!("{engine}\u{1f}");
        let (p1, p2) = (prefix.clone(), prefix);
        if let Err(e) = self.memory.invalidate_entries_if(move |k, _| k.starts_with(&p1)) {
            tracing::warn!(error = %e, "clearing the speech cache");
            self.memory.invalidate_all();
        }
        if let Err(e) = self.opus.invalidate_entries_if(move |k, _| k.starts_with(&p2)) {
            tracing::warn!(error = %e, "clearing the speech cache");
            self.opus.invalidate_all();
        }
        let Some(dir) = self.dir.clone() else { return 0 };
        let start = format!("{}-", engine_prefix(engine));
        tokio::task::spawn_blocking(move || {
            let Ok(rd) = std::fs::read_dir(&dir) else { return 0 };
            rd.filter_map(Result::ok)
                .filter(|e| e.file_name().to_str().is_some_and(|n| n.starts_with(&start) && n.ends_with(".wav")))
                .filter(|e| std::fs::remove_file(e.path()).is_ok())
                .count()
        })
        .await
        .unwrap_or(0)
    }

    /// Drop the in-memory layer (tests: prove the disk layer works).
    pub fn clear_memory(&self) {
        self.memory.invalidate_all();
        self.opus.invalidate_all();
    }
}

async fn read_disk(path: &Path) -> Option<Clip> {
    let bytes = tokio::fs::read(path).await.ok()?;
    let pcm = voice::audio::decode_wav(&bytes).ok()?;
    Some(Clip { sample_rate: pcm.sample_rate, wav: Arc::new(bytes) })
}

/// Keep the newest `max` WAV files.
fn trim_dir(dir: &Path, max: usize) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    let mut files: Vec<(std::time::SystemTime, PathBuf)> = rd
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "wav"))
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    if files.len() <= max {
        return;
    }
    files.sort();
    for (_, p) in &files[..files.len() - max] {
        let _ = std::fs::remove_file(p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clip(n: usize) -> Clip {
        let pcm = voice::audio::Pcm { samples: vec![7; n], sample_rate: 16_000, channels: 1 };
        Clip { wav: Arc::new(voice::audio::encode_wav(&pcm).expect("wav")), sample_rate: 16_000 }
    }

    #[test]
    fn keys_normalise_whitespace_and_separate_engines_voices_and_speeds() {
        assert_eq!(key("e", None, 1.0, " Hello   sir. "), key("e", None, 1.0, "Hello sir."));
        assert_ne!(key("e", None, 1.0, "x"), key("f", None, 1.0, "x"));
        assert_ne!(key("e", Some("a"), 1.0, "x"), key("e", Some("b"), 1.0, "x"));
        assert_ne!(key("e", None, 1.0, "x"), key("e", None, 1.2, "x"));
        assert!(
            file_name(&key("e", None, 1.0, "../../etc/passwd"))
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_')
        );
        assert!(file_name(&key("../x", None, 1.0, "y")).starts_with("___x-"), "an engine id never leaves the dir");
    }

    #[tokio::test]
    async fn clearing_one_engine_keeps_the_others() {
        let dir = tempfile::tempdir().expect("tmp");
        let c = SpeechCache::new(10, Some(dir.path().to_path_buf()), 50);
        let (x1, x2, p1) =
            (key("xtts", None, 1.0, "one"), key("xtts", None, 1.0, "two"), key("piper", None, 1.0, "one"));
        for k in [&x1, &x2, &p1] {
            c.put(k, clip(10)).await;
            c.put_opus(k, Arc::new(vec![1, 2, 3])).await;
        }
        for _ in 0..100 {
            if std::fs::read_dir(dir.path()).map(|d| d.count()).unwrap_or(0) == 3 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(c.clear_engine("xtts").await, 2, "both xtts clips removed from disk");
        c.memory.run_pending_tasks().await;
        c.opus.run_pending_tasks().await;
        assert!(c.get(&x1).await.is_none() && c.get(&x2).await.is_none() && c.get_opus(&x1).await.is_none());
        assert!(c.get(&p1).await.is_some() && c.get_opus(&p1).await.is_some(), "piper untouched");
        c.clear_memory();
        assert!(c.get(&p1).await.is_some(), "piper's file still on disk");
    }

    #[tokio::test]
    async fn disk_layer_survives_a_new_cache_and_is_trimmed() {
        let dir = tempfile::tempdir().expect("tmp");
        let c = SpeechCache::new(10, Some(dir.path().to_path_buf()), 3);
        c.put("k1", clip(10)).await;
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let again = SpeechCache::new(10, Some(dir.path().to_path_buf()), 3);
        assert_eq!(again.get("k1").await, Some(clip(10)));
        assert_eq!(again.get("k2").await, None);
        for i in 0..60 {
            again.put(&format!("n{i}"), clip(5)).await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let count = std::fs::read_dir(dir.path()).expect("dir").count();
        assert!(count <= 3 + 50, "trimmed periodically: {count}");
    }
}
