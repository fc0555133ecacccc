//! Routing, fail-over, budgets and cost accounting end to end over the WebSocket, with one scripted LLM
//! server standing in for both Claude (Anthropic API) and the local model (OpenAI-compatible API).

mod common;

use agent_host::config::Config;
use common::{of_type, stack_with, text_of};
use llm_sim::{Api, Script, Turn, UsageSpec};
use serde_json::json;

fn with_local(cfg: &mut Config, url: &str) {
    cfg.llm.local_base_url = Some(url.to_string());
    cfg.costs.prices = agent_host::llm::PriceTable::from_toml("[\"qwen2.5-7b-instruct\"]\ninput = 0.0\noutput = 0.0\n")
        .expect("prices");
}

fn usage(input: u64, output: u64, cache_read: u64, cache_write: u64) -> UsageSpec {
    UsageSpec { input, output, cache_read, cache_write }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conversation_goes_local_without_tools_and_cluster_questions_to_claude_with_tools() {
    let s = stack_with(
        Script::new()
            .turn(Turn::text("Why did the VM cross the bridge, sir? To reach vmbr1.").usage(usage(800, 50, 200, 0)))
            .turn(Turn::tool_call("list_guests", json!({"status": "stopped"})).usage(usage(1000, 200, 5000, 300)))
            .turn(Turn::text("Four guests are stopped, sir.").when_tool_result().usage(usage(1000, 200, 5000, 300))),
        |t| t,
        with_local,
    )
    .await;
    let mut ws = s.ws().await;
    ws.send(json!({"type": "send", "text": "tell me a joke"})).await;
    let msgs = ws.until("cost").await;
    let route = &of_type(&msgs, "route")[0];
    assert_eq!((route["provider"].as_str(), route["rule"].as_str()), (Some("local"), Some("conversation")));
    let first_route = msgs.iter().position(|m| m["type"] == "route");
    let first_token = msgs.iter().position(|m| m["type"] == "token");
    assert!(first_route < first_token, "the route is announced before any token");
    let done = &of_type(&msgs, "done")[0];
    assert_eq!(done["route"]["provider"], "local");
    assert_eq!(done["cost_usd"], 0.0, "the local model is free");
    let reqs = s.llm.requests();
    assert_eq!(reqs[0].api, Api::OpenAi);
    assert!(reqs[0].tool_names().is_empty(), "no tools for the local model");
    assert!(reqs[0].system().contains("no tools"));
    // OpenAI usage shape: prompt 1000 with 200 cached, completion 50; saved = what Claude would have cost.
    let saved = of_type(&msgs, "cost")[0]["summary"]["saved_usd"].as_f64().unwrap_or(0.0);
    let expect = (800.0 * 3.0 + 50.0 * 15.0 + 200.0 * 0.3) / 1e6;
    assert!((saved - expect).abs() < 1e-9, "{saved} vs {expect}");

    let sid = done["session_id"].clone();
    ws.send(json!({"type": "send", "text": "which guests are stopped?", "session_id": sid})).await;
    let msgs = ws.until("cost").await;
    assert_eq!(of_type(&msgs, "route")[0]["provider"], "anthropic");
    assert_eq!(of_type(&msgs, "route")[0]["rule"], "cluster");
    assert_eq!(text_of(&msgs), "Four guests are stopped, sir.");
    let reqs = s.llm.requests();
    assert_eq!(reqs[1].api, Api::Anthropic);
    assert!(reqs[1].tool_names().contains(&"list_guests".to_string()));
    // Anthropic usage with cache tokens, two requests: 2 × (1000×3 + 200×15 + 5000×0.3 + 300×3.75) / 1e6.
    let cost = of_type(&msgs, "done")[0]["cost_usd"].as_f64().unwrap_or(0.0);
    assert!((cost - 2.0 * 0.008625).abs() < 1e-9, "{cost}");
    assert!((of_type(&msgs, "cost")[0]["session_usd"].as_f64().unwrap_or(0.0) - 0.01725).abs() < 1e-9);
    let stored = s.get(&format!("/api/sessions/{}/messages", sid.as_str().unwrap_or(""))).await;
    let last = stored["messages"].as_array().and_then(|m| m.last()).cloned().unwrap_or_default();
    assert_eq!(last["role"], "assistant");
    assert!((last["cost_usd"].as_f64().unwrap_or(0.0) - 0.01725).abs() < 1e-9, "cost per message: {last}");
    let summary = s.get("/api/costs").await;
    assert_eq!(summary["currency"], "USD");
    // One ledger row per model request: the local answer, then the tool call and the answer after it.
    assert_eq!(summary["today"]["requests"], 3, "{summary}");
    for row in &summary["recent"].as_array().expect("recent")[..2] {
        assert_eq!((row["provider"].as_str(), row["input_tokens"].as_i64()), (Some("anthropic"), Some(6300)), "{row}");
        assert_eq!(row["output_tokens"], 200);
        assert!((row["usd"].as_f64().unwrap_or(0.0) - 0.008625).abs() < 1e-9, "each request priced alone: {row}");
    }
    assert_eq!(summary["recent"][2]["provider"], "local");
    assert!((summary["month"]["usd"].as_f64().unwrap_or(0.0) - 0.01725).abs() < 1e-9, "{summary}");
    let providers: Vec<&str> =
        summary["by_provider"].as_array().into_iter().flatten().filter_map(|p| p["provider"].as_str()).collect();
    assert_eq!(providers, ["anthropic", "local"]);
    assert_eq!(summary["by_provider"][0]["requests"], 2);
    assert_eq!(summary["recent"][0]["provider"], "anthropic");
    assert_eq!(summary["budget"]["state"], "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_claude_hands_questions_to_the_local_model_and_refuses_actions() {
    let s = stack_with(
        Script::new().turn(Turn::rate_limited(120)).turn(Turn::text("From memory, sir: probably four.")),
        |t| t,
        with_local,
    )
    .await;
    let mut ws = s.ws().await;
    ws.send(json!({"type": "send", "text": "which guests are stopped?"})).await;
    let msgs = ws.until("cost").await;
    let routes = of_type(&msgs, "route");
    assert_eq!(routes[0]["provider"], "anthropic");
    assert_eq!(routes[1]["provider"], "local", "{msgs:?}");
    assert!(of_type(&msgs, "notice").iter().any(|n| n["text"].as_str().is_some_and(|t| t.contains("rate limit"))));
    assert_eq!(text_of(&msgs), "From memory, sir: probably four.");
    let before = s.llm.requests().len();
    ws.send(json!({"type": "send", "text": "stop vm 107"})).await;
    let msgs = ws.until("done").await;
    assert_eq!(of_type(&msgs, "route")[0]["provider"], serde_json::Value::Null);
    assert!(text_of(&msgs).contains("Actions need a model with tools"), "{msgs:?}");
    assert_eq!(s.llm.requests().len(), before, "no model was asked");
    assert_eq!(s.guest_status(107).await, "running");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_budget_warns_at_80_percent_and_stops_claude_at_the_cap() {
    // Each Claude answer costs (1000×3 + 100×15)/1e6 = $0.0045; the cap is $0.005.
    let s = stack_with(
        Script::new()
            .turn(Turn::text("Good evening, sir.").usage(usage(1000, 100, 0, 0)))
            .turn(Turn::text("Still here, sir.").usage(usage(1000, 100, 0, 0)))
            .turn(Turn::text("Locally answered, sir.").usage(usage(10, 10, 0, 0))),
        |t| t,
        |cfg, url| {
            with_local(cfg, url);
            cfg.costs.daily_budget_usd = Some(0.005);
            cfg.routing.rules = vec![agent_host::router::Rule {
                id: "all-claude".into(),
                when: Default::default(),
                route: agent_host::router::Target::Anthropic,
                reason: "testing".into(),
            }];
        },
    )
    .await;
    let mut ws = s.ws().await;
    ws.send(json!({"type": "send", "text": "hello"})).await;
    let msgs = ws.until("cost").await;
    assert!(
        of_type(&msgs, "notice").iter().any(|n| n["text"].as_str().is_some_and(|t| t.starts_with("Budget warning"))),
        "{msgs:?}"
    );
    assert_eq!(of_type(&msgs, "cost")[0]["summary"]["budget"]["state"], "warn");
    ws.send(json!({"type": "send", "text": "hello again"})).await;
    let msgs = ws.until("cost").await;
    assert!(
        of_type(&msgs, "notice")
            .iter()
            .any(|n| n["text"].as_str().is_some_and(|t| t.starts_with("Budget cap reached")))
    );
    assert_eq!(of_type(&msgs, "cost")[0]["summary"]["budget"]["state"], "over");
    ws.send(json!({"type": "send", "text": "and once more"})).await;
    let msgs = ws.until("cost").await;
    assert_eq!(of_type(&msgs, "route")[0]["provider"], "local");
    assert!(of_type(&msgs, "notice").iter().any(|n| n["text"].as_str().is_some_and(|t| t.contains("budget cap"))));
    assert_eq!(s.llm.requests()[2].api, Api::OpenAi);
    ws.send(json!({"type": "send", "text": "reboot vm 107"})).await;
    let msgs = ws.until("done").await;
    assert!(text_of(&msgs).contains("budget cap"), "{msgs:?}");
    assert_eq!(s.llm.requests().len(), 3, "Claude was not asked past the cap");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routing_rules_can_be_read_and_replaced_over_rest() {
    let s = stack_with(Script::new(), |t| t, with_local).await;
    let rules = s.get("/api/routing/rules").await;
    let ids: Vec<&str> = rules["rules"].as_array().into_iter().flatten().filter_map(|r| r["id"].as_str()).collect();
    assert_eq!(ids.first(), Some(&"explicit-local"));
    assert_eq!(ids.last(), Some(&"conversation"));
    let url = format!("http://{}/api/routing/rules", s.jarvis.addr);
    let bad = json!({"rules": [{"id": "x", "when": {"pattern": "("}, "route": "local", "reason": "r"}]});
    let r = s.http.put(&url).header("cookie", &s.cookie).json(&bad).send().await.expect("put");
    assert_eq!(r.status(), 400);
    let good = json!({"rules": [
        {"id": "ssh-claude", "when": {"tool": "run_node_command"}, "route": "anthropic", "reason": "always Claude for SSH commands"},
        {"id": "rest", "when": {}, "route": "local", "reason": "everything else locally"}]});
    let r = s.http.put(&url).header("cookie", &s.cookie).json(&good).send().await.expect("put");
    assert_eq!(r.status(), 200);
    assert_eq!(s.get("/api/routing/rules").await["rules"][0]["id"], "ssh-claude");
    let r = s.http.put(&url).json(&good).send().await.expect("put");
    assert_eq!(r.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tool_call_from_a_model_offered_no_tools_is_never_run() {
    let s = stack_with(
        Script::new()
            .turn(Turn::tool_call("stop_guest", json!({"vmid": 107})))
            .turn(Turn::text("My apologies, sir.").when_tool_result()),
        |t| t,
        with_local,
    )
    .await;
    let mut ws = s.ws().await;
    ws.send(json!({"type": "send", "text": "tell me a joke"})).await;
    let msgs = ws.until("cost").await;
    assert_eq!(of_type(&msgs, "route")[0]["provider"], "local");
    assert!(of_type(&msgs, "approval_required").is_empty() && of_type(&msgs, "tool_start").is_empty());
    assert!(of_type(&msgs, "notice").iter().any(|n| n["text"].as_str().is_some_and(|t| t.contains("was not run"))));
    assert_eq!(s.guest_status(107).await, "running");
    assert!(s.sim_writes().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_server_that_reports_no_usage_costs_unknown_not_free() {
    // llama-cpp-python ignores stream_options.include_usage: no usage chunk at all.
    let s =
        stack_with(Script::new().llama_cpp_python_quirks().turn(Turn::text("Hello, sir.")), |t| t, with_local).await;
    let mut ws = s.ws().await;
    ws.send(json!({"type": "send", "text": "hello"})).await;
    let msgs = ws.until("cost").await;
    let done = &of_type(&msgs, "done")[0];
    assert_eq!(done["route"]["provider"], "local");
    assert_eq!(done["usage"]["known"], false);
    assert_eq!(done["cost_usd"], serde_json::Value::Null);
    let summary = &of_type(&msgs, "cost")[0]["summary"];
    assert_eq!(summary["recent"][0]["usd"], serde_json::Value::Null);
    assert_eq!(summary["today"]["requests"], 1);
}
