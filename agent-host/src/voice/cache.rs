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

fn file_name(key: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, key.as_bytes());
    let hex: String = d.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("{hex}.wav")
}

impl SpeechCache {
    pub fn new(memory_entries: u64, dir: Option<PathBuf>, disk_entries: usize) -> Self {
        if let Some(d) = &dir
            && let Err(e) = std::fs::create_dir_all(d)
        {
            tracing::warn!(dir = %d.display(), error = %e, "speech cache directory unavailable; memory only");
        }
        Self {
            memory: Cache::new(memory_entries.max(1)),
            opus: Cache::new(memory_entries.max(1)),
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
                .all(|c| c.is_ascii_hexdigit() || c == '.' || c.is_ascii_alphabetic())
        );
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
