//! The OpenAI-compatible adapter against the scripted server (`llm-sim`), including the llama.cpp and
//! llama-cpp-python quirks seen on real servers.

use std::time::Duration;

use agent_host::llm::{
    ChatRequest, HttpConfig, LlmError, Message, OpenAiConfig, OpenAiProvider, Provider, RetryPolicy, Secret,
    StopReason, StreamEvent, TimeoutPhase, Timeouts, ToolDef, Usage, collect,
};
use llm_sim::{LlmSim, Script, Turn, UsageSpec};
use serde_json::json;
use streams::{run, text_of};

mod streams;

fn http(idle_ms: u64) -> HttpConfig {
    HttpConfig {
        timeouts: Timeouts { connect_ms: 2_000, response_ms: 5_000, idle_ms, total_ms: 20_000 },
        retry: RetryPolicy { max_attempts: 3, base_delay_ms: 5, max_delay_ms: 20, max_retry_after_ms: 5_000 },
    }
}

fn provider_at(base_url: String, key: Option<&str>, http: HttpConfig) -> OpenAiProvider {
    let cfg =
        OpenAiConfig { name: "local".into(), base_url, api_key: key.map(Secret::new), http, ..OpenAiConfig::default() };
    OpenAiProvider::new(cfg).expect("valid config")
}

fn provider(sim: &LlmSim, http: HttpConfig) -> OpenAiProvider {
    provider_at(sim.base_url(), None, http)
}

async fn sim(script: Script) -> LlmSim {
    LlmSim::start(script).await.expect("llm-sim starts")
}

fn request(text: &str) -> ChatRequest {
    ChatRequest {
        system: "You are Jarvis.".into(),
        messages: vec![Message::user(text)],
        tools: vec![ToolDef {
            name: "get_weather".into(),
            description: "Weather of a city".into(),
            input_schema: json!({"type": "object", "properties": {"city": {"type": "string"}}}),
        }],
        ..ChatRequest::new("qwen2.5-7b-instruct")
    }
}

#[tokio::test]
async fn streamed_text_then_the_usage_chunk_gives_deltas_usage_and_stop() {
    let usage = UsageSpec { input: 12, output: 7, cache_read: 24, cache_write: 0 };
    let sim = sim(Script::new().turn(Turn::text("The capital of France is Paris.").chunk_chars(4).usage(usage))).await;
    let (events, err) = run(&provider_at(sim.base_url(), Some("sk-local"), http(5_000)), request("capital?")).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(text_of(&events), "The capital of France is Paris.");
    assert_eq!(events.iter().filter(|e| matches!(e, StreamEvent::TextDelta(_))).count(), 8);
    let n = events.len();
    assert_eq!(
        events[n - 2],
        StreamEvent::Usage(Usage {
            input_tokens: 12,
            output_tokens: 7,
            cache_read_tokens: 24,
            cache_write_tokens: 0,
            known: true
        })
    );
    assert_eq!(events[n - 1], StreamEvent::Done { stop_reason: StopReason::EndTurn });

    let r = &sim.requests()[0];
    assert_eq!(r.path, "/v1/chat/completions");
    assert_eq!(r.header("authorization"), Some("Bearer sk-local"));
    assert_eq!(r.body["stream_options"], json!({"include_usage": true}));
    assert_eq!(r.system(), "You are Jarvis.");
    assert_eq!(r.tool_names(), ["get_weather"]);
    assert_eq!(r.body["tools"][0]["type"], "function");
}

#[tokio::test]
async fn tool_arguments_split_across_chunks_are_accumulated_by_index() {
    let sim = sim(Script::new().turn(
        Turn::tool_calls([("get_weather", json!({"city": "Paris"})), ("get_weather", json!({"city": "Lyon"}))])
            .chunk_chars(2),
    ))
    .await;
    let c = collect(provider(&sim, http(5_000)).stream(request("weather?"))).await.expect("completes");
    assert_eq!(c.stop_reason, StopReason::ToolUse);
    let calls: Vec<_> = c
        .content
        .iter()
        .filter_map(|b| {
            if let agent_host::llm::Block::ToolUse { name, input, .. } = b {
                Some((name.as_str(), input.clone()))
            } else {
                None
            }
        })
        .collect();
    assert_eq!(calls, [("get_weather", json!({"city": "Paris"})), ("get_weather", json!({"city": "Lyon"}))]);
}

#[tokio::test]
async fn repeated_id_and_name_in_every_chunk_give_one_call_and_missing_usage_is_marked_unknown() {
    let sim = sim(Script::new()
        .llama_cpp_python_quirks()
        .turn(Turn::tool_call("get_weather", json!({"city": "Paris"})).chunk_chars(1)))
    .await;
    let (events, err) = run(&provider(&sim, http(5_000)), request("weather?")).await;
    assert!(err.is_none(), "{err:?}");
    let calls: Vec<_> = events.iter().filter(|e| matches!(e, StreamEvent::ToolCall { .. })).collect();
    assert_eq!(calls.len(), 1);
    let StreamEvent::ToolCall { id, name, input } = calls[0] else { unreachable!() };
    assert_eq!(name, "get_weather", "the name is set once, never concatenated");
    assert!(id.starts_with("call_") && !id.contains("call_call_"), "{id}");
    assert_eq!(*input, json!({"city": "Paris"}));
    let usage = events.iter().find_map(|e| if let StreamEvent::Usage(u) = e { Some(*u) } else { None });
    assert_eq!(usage, Some(Usage::default()), "zeros, not an estimate");
    assert_eq!(usage.map(|u| u.known), Some(false));
}

#[tokio::test]
async fn an_empty_200_is_an_error() {
    let sim = sim(Script::new().turn(Turn::empty_200())).await;
    let (events, err) = run(&provider(&sim, http(5_000)), request("hi")).await;
    assert!(events.is_empty());
    assert!(matches!(err, Some(LlmError::EmptyResponse { ref provider }) if provider == "local"), "{err:?}");
    assert_eq!(sim.requests().len(), 1);
}

#[tokio::test]
async fn overload_then_success_is_retried_after_retry_after_ms() {
    let sim = sim(Script::new().turn(Turn::http_error(503).retry_after_ms(200)).turn(Turn::text("ok"))).await;
    let (events, err) = run(&provider(&sim, http(5_000)), request("hi")).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(text_of(&events), "ok");
    let r = sim.requests();
    assert!(r[1].elapsed_ms - r[0].elapsed_ms >= 200);
}

#[tokio::test]
async fn rate_limit_429_reports_the_servers_message_when_retries_run_out() {
    let script = Script::new()
        .turn(Turn::rate_limited(0))
        .turn(Turn::rate_limited(0))
        .turn(Turn::rate_limited(0).message("quota"));
    let sim = sim(script).await;
    let (_, err) = run(&provider(&sim, http(5_000)), request("hi")).await;
    assert!(matches!(err, Some(LlmError::RateLimited { ref message, .. }) if message == "quota"), "{err:?}");
    assert_eq!(sim.requests().len(), 3);
}

#[tokio::test]
async fn an_error_chunk_after_text_ends_the_stream_with_the_servers_error() {
    let sim =
        sim(Script::new().turn(Turn::stream_error("server_error").with_text("Partial").message("KV cache full"))).await;
    let (events, err) = run(&provider(&sim, http(5_000)), request("hi")).await;
    assert_eq!(text_of(&events), "Partial");
    match err {
        Some(LlmError::StreamError { error_type, message, .. }) => {
            assert_eq!((error_type.as_str(), message.as_str()), ("server_error", "KV cache full"));
        }
        other => panic!("expected a stream error, got {other:?}"),
    }
    assert_eq!(sim.requests().len(), 1);
}

#[tokio::test]
async fn a_stalled_stream_hits_the_idle_timeout() {
    let sim = sim(Script::new().turn(Turn::stall(10_000).with_text("Thinking"))).await;
    let started = std::time::Instant::now();
    let (events, err) = run(&provider(&sim, http(300)), request("hi")).await;
    assert_eq!(text_of(&events), "Thinking");
    assert!(matches!(err, Some(LlmError::Timeout { phase: TimeoutPhase::Idle, .. })), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_base_url_ending_in_v1_works_like_the_bare_host() {
    let sim = sim(Script::new().turn(Turn::text("ok"))).await;
    let p = provider_at(format!("{}/v1/", sim.base_url()), None, http(5_000));
    let c = collect(p.stream(request("hi"))).await.expect("completes");
    assert_eq!(c.text(), "ok");
    assert_eq!(sim.requests()[0].path, "/v1/chat/completions");
}

#[tokio::test]
async fn turns_can_match_on_the_user_text_and_on_tool_results() {
    let script = Script::new()
        .turn(Turn::text("Results noted.").when_tool_result())
        .turn(Turn::tool_call("get_weather", json!({"city": "Paris"})).when_user_contains("WEATHER"))
        .turn(Turn::text("Hello."));
    let sim = sim(script).await;
    let p = provider(&sim, http(5_000));
    let c = collect(p.stream(request("hello"))).await.expect("completes");
    assert_eq!(c.text(), "Hello.");
    let c = collect(p.stream(request("what's the weather?"))).await.expect("completes");
    assert_eq!(c.stop_reason, StopReason::ToolUse);
    let mut req = request("what's the weather?");
    req.messages.push(Message { role: agent_host::llm::Role::Assistant, content: c.content.clone() });
    let id = c
        .content
        .iter()
        .find_map(|b| if let agent_host::llm::Block::ToolUse { id, .. } = b { Some(id.clone()) } else { None })
        .expect("a call");
    req.messages.push(Message {
        role: agent_host::llm::Role::User,
        content: vec![agent_host::llm::Block::ToolResult {
            tool_use_id: id.clone(),
            content: "18 °C".into(),
            is_error: false,
        }],
    });
    let c = collect(p.stream(req)).await.expect("completes");
    assert_eq!(c.text(), "Results noted.");
    let last = sim.requests().pop().expect("three requests");
    assert_eq!(last.body["messages"][3], json!({"role": "tool", "tool_call_id": id, "content": "18 °C"}));
    assert_eq!(last.answer, "turn 0 (text)");
}
