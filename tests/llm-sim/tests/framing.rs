//! Byte-level checks: the simulator's streams have the structure of the real captures in
//! `tests/fixtures/llm-streams/` (framing, event order, payload keys), so a client that passes against the
//! simulator parses the real servers too.

use std::collections::BTreeSet;

use llm_sim::{LlmSim, Script, Turn};
use serde_json::{Value, json};

fn fixture(name: &str) -> String {
    let path = format!("{}/../fixtures/llm-streams/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The AI SDK stores bare JSON payloads; the wire frames each as `event: <type>\ndata: <json>\n\n`.
fn frame_chunks(lines: &str) -> String {
    lines
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("fixture lines are JSON");
            format!("event: {}\ndata: {l}\n\n", v["type"].as_str().expect("typed"))
        })
        .collect()
}

async fn post(sim: &LlmSim, path: &str, body: Value) -> (u16, String, String) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder().no_proxy().build().expect("client");
    let resp = client
        .post(format!("{}{path}", sim.base_url()))
        .header("anthropic-version", "2023-06-01")
        .json(&body)
        .send()
        .await
        .expect("request");
    let status = resp.status().as_u16();
    let ct = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    (status, ct, resp.text().await.expect("body"))
}

/// Splits an SSE body into frames, checking the byte-level rules both APIs follow: LF only, every frame
/// closed by a blank line, `field: value` with one space.
fn frames(body: &str) -> Vec<&str> {
    assert!(!body.contains('\r'), "LF line endings only");
    assert!(body.ends_with("\n\n"), "the last frame is closed by a blank line");
    body.trim_end_matches('\n').split("\n\n").collect()
}

/// Anthropic frames: exactly `event: T` then `data: J` with `J.type == T`. Returns (T, J).
fn anthropic_events(body: &str) -> Vec<(String, Value)> {
    frames(body)
        .into_iter()
        .map(|f| {
            let lines: Vec<&str> = f.split('\n').collect();
            assert_eq!(lines.len(), 2, "two lines per frame: {f:?}");
            let ty = lines[0].strip_prefix("event: ").expect("event line first");
            let data = lines[1].strip_prefix("data: ").expect("data line second");
            let v: Value = serde_json::from_str(data).expect("JSON data");
            assert_eq!(v.to_string(), data, "compact JSON on one line");
            assert_eq!(v["type"], ty, "the JSON type repeats the event name");
            (ty.to_string(), v)
        })
        .collect()
}

/// Event names without pings, runs of deltas collapsed: the grammar of the stream.
fn shape(events: &[(String, Value)]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (t, _) in events.iter().filter(|(t, _)| t != "ping") {
        if t == "content_block_delta" && out.last().is_some_and(|l| l == t) {
            continue;
        }
        out.push(t.clone());
    }
    out
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default()
}

fn first<'a>(events: &'a [(String, Value)], ty: &str, pred: impl Fn(&Value) -> bool) -> &'a Value {
    &events.iter().find(|(t, v)| t == ty && pred(v)).unwrap_or_else(|| panic!("no {ty}")).1
}

fn anthropic_request() -> Value {
    json!({"model": "claude-sonnet-4-5-20250929", "max_tokens": 64, "stream": true,
           "messages": [{"role": "user", "content": "update the issue list"}]})
}

#[tokio::test]
async fn anthropic_text_stream_has_the_framing_and_event_order_of_the_llama_server_capture() {
    let sim =
        LlmSim::start(Script::new().turn(Turn::text("You're here. I'm Emily,").chunk_chars(4))).await.expect("sim");
    let (status, ct, body) = post(&sim, "/v1/messages", anthropic_request()).await;
    assert_eq!(status, 200);
    assert!(ct.starts_with("text/event-stream"), "{ct}");
    let sim_events = anthropic_events(&body);
    let real_events = anthropic_events(&fixture("llama-server-anthropic-messages-stream.txt"));
    assert_eq!(shape(&sim_events), shape(&real_events));
    assert!(sim_events.iter().any(|(t, _)| t == "ping"), "the real API pings");
}

#[tokio::test]
async fn anthropic_text_and_tool_stream_has_the_keys_and_order_of_the_recorded_api_stream() {
    let turn = Turn::tool_call("updateIssueList", json!({})).with_text("I'll update the issue list for you.");
    let sim = LlmSim::start(Script::new().turn(turn)).await.expect("sim");
    let (_, _, body) = post(&sim, "/v1/messages", anthropic_request()).await;
    let ours = anthropic_events(&body);
    let real = anthropic_events(&frame_chunks(&fixture("anthropic/anthropic-tool-no-args.chunks.txt")));
    assert_eq!(shape(&ours), shape(&real));

    for ty in [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
        "ping",
    ] {
        assert_eq!(keys(first(&ours, ty, |_| true)), keys(first(&real, ty, |_| true)), "top-level keys of {ty}");
    }
    let (m_ours, m_real) =
        (&first(&ours, "message_start", |_| true)["message"], &first(&real, "message_start", |_| true)["message"]);
    assert_eq!(keys(m_ours), keys(m_real), "message keys");
    assert!(keys(&m_ours["usage"]).is_subset(&keys(&m_real["usage"])), "message_start usage keys");
    assert_eq!(m_ours["content"], json!([]));
    for block in ["text", "tool_use"] {
        let is = |v: &Value| v["content_block"]["type"] == block;
        assert_eq!(
            keys(&first(&ours, "content_block_start", is)["content_block"]),
            keys(&first(&real, "content_block_start", is)["content_block"])
        );
    }
    for delta in ["text_delta", "input_json_delta"] {
        let is = |v: &Value| v["delta"]["type"] == delta;
        assert_eq!(
            keys(&first(&ours, "content_block_delta", is)["delta"]),
            keys(&first(&real, "content_block_delta", is)["delta"])
        );
    }
    let is_json = |v: &Value| v["delta"]["type"] == "input_json_delta";
    assert_eq!(
        first(&ours, "content_block_delta", is_json)["delta"]["partial_json"],
        "",
        "the first fragment is empty, as recorded"
    );
    let (d_ours, d_real) = (first(&ours, "message_delta", |_| true), first(&real, "message_delta", |_| true));
    assert_eq!(keys(&d_ours["delta"]), keys(&d_real["delta"]));
    assert_eq!(keys(&d_ours["usage"]), keys(&d_real["usage"]), "cumulative usage carries the same counters");
    assert_eq!(d_ours["delta"]["stop_reason"], "tool_use");
}

fn openai_chunks(body: &str) -> Vec<Value> {
    let frames = frames(body);
    assert_eq!(frames.last(), Some(&"data: [DONE]"), "ends with [DONE]");
    frames[..frames.len() - 1]
        .iter()
        .map(|f| {
            assert!(!f.contains('\n'), "one line per chunk: {f:?}");
            serde_json::from_str(f.strip_prefix("data: ").expect("data line")).expect("JSON chunk")
        })
        .collect()
}

fn openai_request(include_usage: bool) -> Value {
    json!({"model": "smollm2", "stream": true, "stream_options": {"include_usage": include_usage},
           "messages": [{"role": "user", "content": "Tell me a story"}]})
}

#[tokio::test]
async fn openai_text_stream_has_the_chunk_structure_of_the_llama_server_capture() {
    let sim = LlmSim::start(Script::new().turn(Turn::text("Alejandro, a wise and just soul").chunk_chars(5)))
        .await
        .expect("sim");
    let (status, ct, body) = post(&sim, "/v1/chat/completions", openai_request(true)).await;
    assert_eq!(status, 200);
    assert!(ct.starts_with("text/event-stream"), "{ct}");
    let ours = openai_chunks(&body);
    let real = openai_chunks(&fixture("llama-server-openai-chat-stream.txt"));

    let optional: BTreeSet<String> = ["system_fingerprint", "timings", "usage"].map(String::from).into();
    let real_keys = keys(&real[0]);
    let our_keys = keys(&ours[0]);
    assert!(real_keys.difference(&optional).all(|k| our_keys.contains(k)), "{our_keys:?} lacks some of {real_keys:?}");
    assert_eq!(keys(&ours[0]["choices"][0]), keys(&real[0]["choices"][0]), "choice keys");
    assert_eq!(ours[0]["choices"][0]["delta"], real[0]["choices"][0]["delta"], "the first delta announces the role");
    let fin = |c: &[Value]| {
        c.iter().find(|v| !v["choices"][0]["finish_reason"].is_null() && v["choices"][0].is_object()).cloned()
    };
    let (f_ours, f_real) = (fin(&ours).expect("finish chunk"), fin(&real).expect("finish chunk"));
    assert_eq!(f_ours["choices"][0]["delta"], f_real["choices"][0]["delta"], "the finish chunk has an empty delta");
    let (u_ours, u_real) = (ours.last().expect("usage chunk"), real.last().expect("usage chunk"));
    assert_eq!(u_ours["choices"], json!([]));
    assert_eq!(u_real["choices"], json!([]));
    assert_eq!(keys(&u_ours["usage"]), keys(&u_real["usage"]), "usage counters");
}

#[tokio::test]
async fn openai_usage_chunk_is_sent_only_when_asked_for() {
    let sim = LlmSim::start(Script::new().turn(Turn::text("hi").repeat())).await.expect("sim");
    let (_, _, body) = post(&sim, "/v1/chat/completions", openai_request(false)).await;
    let chunks = openai_chunks(&body);
    assert!(chunks.iter().all(|c| c.get("usage").is_none()), "no usage without include_usage");
    assert!(chunks.last().is_some_and(|c| !c["choices"][0]["finish_reason"].is_null()));
}

#[tokio::test]
async fn llama_cpp_python_quirk_mode_repeats_id_type_and_name_like_the_capture() {
    let script = Script::new()
        .llama_cpp_python_quirks()
        .turn(Turn::tool_call("get_weather", json!({"city": "Paris"})).chunk_chars(3));
    let sim = LlmSim::start(script).await.expect("sim");
    let (_, _, body) = post(&sim, "/v1/chat/completions", openai_request(true)).await;
    let ours = openai_chunks(&body);
    let real = openai_chunks(&fixture("llama-cpp-python-forced-tool-stream.txt"));
    let calls = |chunks: &[Value]| -> Vec<Value> {
        chunks
            .iter()
            .filter_map(|c| c["choices"][0]["delta"]["tool_calls"].as_array().and_then(|a| a.first()).cloned())
            .collect()
    };
    let (c_ours, c_real) = (calls(&ours), calls(&real));
    assert!(c_ours.len() > 3, "arguments split across chunks");
    for c in &c_ours {
        assert_eq!(keys(c), keys(&c_real[0]), "every chunk carries index, id, type and function");
        assert_eq!(keys(&c["function"]), keys(&c_real[0]["function"]));
        assert_eq!(c["id"], c_ours[0]["id"]);
        assert_eq!(c["function"]["name"], "get_weather");
    }
    let args: String = c_ours.iter().filter_map(|c| c["function"]["arguments"].as_str()).collect();
    assert_eq!(serde_json::from_str::<Value>(&args).expect("JSON"), json!({"city": "Paris"}));
    assert!(ours.iter().all(|c| c.get("usage").is_none()), "llama-cpp-python sends no usage, even when asked");
    assert_eq!(ours.last().map(|c| c["choices"][0]["finish_reason"].clone()), Some(json!("tool_calls")));
}
