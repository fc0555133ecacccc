//! Speech for Jarvis, shared by the agent host and `mcp-voice`.
//!
//! - [`audio`]: WAV read/write (lenient about streamed headers), mono mix-down, resampling, durations.
//! - [`opus`]: Ogg Opus (RFC 7845) encoding of speech and duration of an Ogg Opus file.
//! - [`tts`]: the [`tts::TtsEngine`] trait and engines: XTTS, OpenAI-compatible speech, Piper
//!   HTTP, Piper over Wyoming, espeak-ng.
//! - [`stt`]: the [`stt::SttEngine`] trait and engines: OpenAI-compatible transcriptions, Wyoming.
//! - [`wyoming`]: the Wyoming protocol codec (JSON-line header, data, payload).

pub mod audio;
pub mod opus;
pub mod stt;
pub mod tts;
pub mod wyoming;
