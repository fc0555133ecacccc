//! A turn: the agent loop (stream the answer, run its tool calls through the gate of [`crate::agent`], feed
//! the results back) with the intelligence layer around it — the route chosen per message (announced before any
//! token), fail-over when the provider breaks before it said anything, memory and the context summary in the
//! system prompt, the history cut to the token budget, and afterwards the cost, the budget notices, the memories
//! of the exchange and a background summary.

use std::time::Instant;

use futures::StreamExt;
use mcp_common::tier::Tier;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::agent::{Agent, Event, to_llm};
use crate::intel::Plan;
use crate::llm::{ChatRequest, Message, StreamEvent, ToolDef, Usage};
use crate::router::Target;
use crate::store::NewMessage;

fn ms(t: Instant, since: Instant) -> u64 {
    t.saturating_duration_since(since).as_millis() as u64
}

/// Add `u` to `sum`; known only while every part is known (`first`: `sum` holds nothing yet).
fn add_usage(sum: &mut Usage, u: &Usage, first: bool) {
    sum.input_tokens += u.input_tokens;
    sum.output_tokens += u.output_tokens;
    sum.cache_read_tokens += u.cache_read_tokens;
    sum.cache_write_tokens += u.cache_write_tokens;
    sum.known = if first { u.known } else { sum.known && u.known };
}

fn route_event(session: &str, plan: &Plan) -> Event {
    Event::Route {
        session_id: session.to_string(),
        provider: plan.target().map(|t| t.as_str().to_string()),
        model: plan.model.as_ref().map(|m| m.model.clone()),
        reason: plan.decision.reason.clone(),
        rule: plan.decision.rule.clone(),
    }
}

const NO_TOOLS: &str = "\n\nYou have no tools in this conversation. If the operator asks you to change something on \
the cluster or to look up its live state, say that this needs the tool-capable model and do not pretend you did it.";

impl Agent {
    /// Runs one user message (already stored) with routing, memory, context windowing and cost accounting.
    pub(crate) async fn routed_turn(
        &self,
        session: &str,
        text: &str,
        tx: &mpsc::UnboundedSender<Event>,
        cancel: &CancellationToken,
        received: Instant,
    ) -> anyhow::Result<()> {
        let sid = session.to_string();
        let intel = &self.intel;
        let mut plan = intel.route(session, text).await;
        if let Err(e) = intel.learn_from_user(session, text).await {
            tracing::warn!(error = %e, "cannot store what the operator stated");
        }
        let _ = tx.send(route_event(session, &plan));
        if let Some(n) = &plan.decision.notice {
            let _ = tx.send(Event::Notice { session_id: sid.clone(), text: n.clone() });
        }
        let tools = self.mcp.tools().await;
        let all_defs: Vec<ToolDef> = tools
            .iter()
            .filter(|t| t.tier != Tier::Black)
            .map(|t| ToolDef {
                name: t.name.clone(),
                description: t.description.clone(),
                input_schema: t.input_schema.clone(),
            })
            .collect();
        let mut tainted = false;
        // The turn's usage (all its requests); each request is also recorded on its own.
        let mut total = Usage::default();
        let mut requests: Vec<Option<f64>> = Vec::new();
        let mut marks = serde_json::Map::new();
        marks.insert("received_ms".into(), json!(0));
        let mut iterations = 0;
        let mut answer = String::new();
        let mut failed_over = false;
        while let Some(model) = plan.model.clone() {
            if iterations >= self.cfg.max_iterations {
                let note = format!("I stopped after {iterations} steps, sir; ask me to continue if you wish.");
                let _ = tx.send(Event::Notice { session_id: sid.clone(), text: note });
                break;
            }
            iterations += 1;
            let local = plan.target() == Some(Target::Local);
            let mut system = self.system_prompt(local).await;
            if !plan.decision.tools {
                system.push_str(NO_TOOLS);
            }
            system.push_str(&intel.memory_block(text, local).await);
            let stored = self.store.messages(session).await?;
            let all: Vec<(i64, Message)> =
                stored.iter().filter_map(|m| to_llm(&m.role, &m.content).map(|x| (m.id, x))).collect();
            let (history, earlier) = intel.history(session, all, local).await;
            system.push_str(&earlier);
            let req = ChatRequest {
                model: model.model.clone(),
                system,
                messages: history,
                tools: if plan.decision.tools { all_defs.clone() } else { Vec::new() },
                max_tokens: self.max_tokens,
                temperature: None,
            };
            marks.entry("llm_start_ms").or_insert(json!(ms(Instant::now(), received)));
            let mut stream = model.provider.stream(req);
            let mut text_out = String::new();
            let mut calls: Vec<(String, String, Value)> = Vec::new();
            let mut switch = None;
            // This request's usage; `reported` once the provider said anything about it.
            let (mut used, mut reported) = (Usage::default(), false);
            loop {
                let next = tokio::select! {
                    n = stream.next() => n,
                    _ = cancel.cancelled() => {
                        let _ = tx.send(Event::Notice { session_id: sid.clone(), text: "Cancelled, sir.".into() });
                        None
                    }
                };
                let Some(ev) = next else { break };
                let ev = match ev {
                    Ok(ev) => ev,
                    Err(e) => {
                        if text_out.is_empty() && calls.is_empty() && !failed_over {
                            switch = intel.failover(&plan, &e).await;
                            if switch.is_some() {
                                let _ = tx.send(Event::Notice {
                                    session_id: sid.clone(),
                                    text: format!("{e}; switching model, sir."),
                                });
                                break;
                            }
                        }
                        return Err(e.into());
                    }
                };
                match ev {
                    StreamEvent::TextDelta(t) => {
                        marks.entry("first_token_ms").or_insert(json!(ms(Instant::now(), received)));
                        text_out.push_str(&t);
                        let _ = tx.send(Event::Token { session_id: sid.clone(), text: t });
                    }
                    StreamEvent::ToolCall { id, name, input } => calls.push((id, name, input)),
                    StreamEvent::Usage(u) => {
                        add_usage(&mut used, &u, !reported);
                        reported = true;
                    }
                    StreamEvent::Done { .. } => {}
                }
            }
            // A request that failed before the provider reported usage is not recorded (it did not run).
            if switch.is_none() || reported {
                requests.push(intel.record_request(session, &plan, &used).await);
                add_usage(&mut total, &used, requests.len() == 1);
            }
            if let Some(p) = switch {
                plan = p;
                failed_over = true;
                iterations -= 1;
                let _ = tx.send(route_event(session, &plan));
                continue;
            }
            if let Some(t) = plan.target() {
                intel.health.clear(t);
            }
            marks.insert("llm_done_ms".into(), json!(ms(Instant::now(), received)));
            answer.push_str(&text_out);
            let mut content = Vec::new();
            if !text_out.is_empty() {
                content.push(json!({"type": "text", "text": text_out}));
            }
            for (id, name, input) in &calls {
                content.push(json!({"type": "tool_use", "id": id, "name": name, "input": input}));
            }
            if !content.is_empty() {
                let m = NewMessage {
                    role: "assistant".into(),
                    content: Value::Array(content),
                    provider: plan.target().map(|t| t.as_str().to_string()),
                    model: Some(model.model.clone()),
                    ..Default::default()
                };
                self.store.add_message(session, m).await?;
            }
            if calls.is_empty() || cancel.is_cancelled() {
                break;
            }
            let mut results = Vec::new();
            if !plan.decision.tools {
                // Offered no tools, it called some anyway: nothing runs.
                let note = "The model that answers now has no tools; its tool call was not run.".to_string();
                let _ = tx.send(Event::Notice { session_id: sid.clone(), text: note.clone() });
                for (id, _, _) in &calls {
                    results.push(json!({"type": "tool_result", "tool_use_id": id, "content": note, "is_error": true}));
                }
                calls.clear();
            }
            for (id, name, input) in calls {
                let (content, is_error) =
                    self.run_tool(session, &id, &name, input, &tools, &mut tainted, tx, cancel).await;
                results
                    .push(json!({"type": "tool_result", "tool_use_id": id, "content": content, "is_error": is_error}));
            }
            let m = NewMessage { role: "user".into(), content: Value::Array(results), ..Default::default() };
            self.store.add_message(session, m).await?;
        }
        if plan.model.is_none() {
            let msg = plan.decision.notice.clone().unwrap_or_else(|| "No model can answer just now, sir.".into());
            let _ = tx.send(Event::Token { session_id: sid.clone(), text: msg.clone() });
            let m = NewMessage {
                role: "assistant".into(),
                content: json!([{"type": "text", "text": msg}]),
                ..Default::default()
            };
            self.store.add_message(session, m).await?;
            answer = msg;
        }
        let notices = if requests.is_empty() { Vec::new() } else { intel.budget_notices().await };
        // Unknown when any request's cost is unknown.
        let cost: Option<f64> = if requests.is_empty() { None } else { requests.iter().copied().sum() };
        if let Err(e) = intel.costs.attach_to_last_message(session, total, cost).await {
            tracing::warn!(error = %e, "cannot record the message cost");
        }
        let session_usd = intel.costs.session_usd(session).await.unwrap_or(0.0);
        for n in notices {
            let _ = tx.send(Event::Notice { session_id: sid.clone(), text: n });
        }
        marks.insert("total_ms".into(), json!(ms(Instant::now(), received)));
        let usage = json!({
            "input_tokens": total.input_tokens, "output_tokens": total.output_tokens,
            "cache_read_tokens": total.cache_read_tokens, "cache_write_tokens": total.cache_write_tokens, "known": total.known,
        });
        let timing = Value::Object(marks);
        let route = plan.route_json();
        self.store
            .event(
                "turn",
                json!({"session": session, "usage": usage, "cost_usd": cost, "timing": timing, "route": route}),
            )
            .await?;
        if let Err(e) = intel.remember_exchange(session, text, &answer).await {
            tracing::warn!(error = %e, "cannot store the exchange");
        }
        intel.summarise_later(session);
        // Everything slow happens before `done`, so a client may send its next message as soon as it sees it.
        let summary = intel.cost_summary().await;
        let _ = tx.send(Event::Done {
            session_id: sid.clone(),
            usage,
            cost_usd: cost,
            timing,
            iterations,
            provider: plan.target().map(|t| t.as_str().to_string()),
            model: plan.model.as_ref().map(|m| m.model.clone()),
            route: Some(route),
        });
        let _ = tx.send(Event::Cost { session_id: sid, summary, session_usd });
        Ok(())
    }
}
