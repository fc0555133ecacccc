//! Tool calls from the dashboard (the cluster column's guest actions, the terminal): the same gate,
//! approvals and audit as a model's call, recorded as events rather than chat messages.

use super::*;

impl Agent {
    /// A tool call from the dashboard (e.g. a guest action in the cluster column): the same gate
    /// and approvals as a model's call, recorded as an event rather than a chat message.
    pub async fn direct_tool(
        &self,
        session: &str,
        tool: &str,
        args: Value,
        tx: mpsc::UnboundedSender<Event>,
        cancel: CancellationToken,
    ) {
        let tools = self.mcp.tools().await;
        let call_id = format!("ui-{}", uuid::Uuid::new_v4());
        let mut tainted = false;
        let (text, is_error) =
            self.run_tool(session, &call_id, tool, args.clone(), &tools, &mut tainted, &tx, &cancel).await;
        let _ = self
            .store
            .event(
                "direct_tool",
                json!({"session": session, "tool": tool, "arguments": args, "ok": !is_error, "text": text}),
            )
            .await;
        let _ = tx.send(Event::Done {
            session_id: session.to_string(),
            usage: json!({}),
            cost_usd: None,
            timing: json!({}),
            iterations: 0,
            provider: None,
            model: None,
            route: None,
        });
    }

    /// Gate, approval and execution of one tool call; returns (text for the model, is_error).
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn run_tool(
        &self,
        session: &str,
        call_id: &str,
        name: &str,
        args: Value,
        tools: &[ToolInfo],
        tainted: &mut bool,
        tx: &mpsc::UnboundedSender<Event>,
        cancel: &CancellationToken,
    ) -> (String, bool) {
        let sid = session.to_string();
        let Some(tool) = tools.iter().find(|t| t.name == name) else {
            return (format!("There is no tool named '{name}'."), true);
        };
        match decide(name, tool.tier, *tainted) {
            Decision::Refuse { reason } => {
                let _ = self
                    .store
                    .event("refused", json!({"session": session, "tool": name, "arguments": args, "reason": reason}))
                    .await;
                let _ = tx.send(Event::ToolResult {
                    session_id: sid,
                    call_id: call_id.into(),
                    tool: name.into(),
                    ok: false,
                    untrusted: false,
                    text: reason.clone(),
                });
                return (format!("Refused: {reason}"), true);
            }
            Decision::NeedApproval { reason } => {
                let ttl = Duration::from_secs(self.cfg.approval_ttl_secs);
                let (approval_id, hash, rx) = self.approvals.request(session, name, &args, ttl);
                let _ = self.store.record_approval(&approval_id, session, name, &args, &hash, tool.tier.as_str()).await;
                let _ = tx.send(Event::ApprovalRequired {
                    session_id: sid.clone(),
                    approval_id: approval_id.clone(),
                    call_id: call_id.into(),
                    tool: name.into(),
                    tier: tool.tier,
                    arguments: args.clone(),
                    args_hash: hash,
                    summary: humanize(name, &args),
                    reason,
                    expires_in_secs: ttl.as_secs(),
                });
                let verdict = tokio::select! {
                    v = tokio::time::timeout(ttl, rx) => match v { Ok(Ok(v)) => v, _ => Verdict::Expired },
                    _ = cancel.cancelled() => Verdict::Denied,
                };
                let label = match verdict {
                    Verdict::Approved => "approved",
                    Verdict::Denied => "denied",
                    Verdict::Expired => "expired",
                };
                let _ = self.store.resolve_approval(&approval_id, label).await;
                let _ =
                    tx.send(Event::ApprovalResolved { session_id: sid.clone(), approval_id, verdict: label.into() });
                if verdict != Verdict::Approved {
                    return (
                        format!("The operator did not approve {name} ({label}). Do not retry it unless asked."),
                        true,
                    );
                }
            }
            Decision::Run => {}
        }
        let _ = tx.send(Event::ToolStart {
            session_id: sid.clone(),
            call_id: call_id.into(),
            tool: name.into(),
            tier: tool.tier,
            arguments: args.clone(),
        });
        let (ptx, mut prx) = mpsc::unbounded_channel::<crate::mcp::Progress>();
        let fwd_tx = tx.clone();
        let (fsid, fcall) = (sid.clone(), call_id.to_string());
        let forward = tokio::spawn(async move {
            while let Some(p) = prx.recv().await {
                let _ = fwd_tx.send(Event::ToolProgress {
                    session_id: fsid.clone(),
                    call_id: fcall.clone(),
                    progress: p.progress,
                    message: p.message,
                });
            }
        });
        let timeout = Duration::from_secs(self.cfg.tool_timeout_secs.max(1));
        let result = tokio::time::timeout(timeout, self.mcp.call(tool, args.clone(), call_id, Some(ptx))).await;
        forward.abort();
        let (text, ok, untrusted) = match result {
            Ok(Ok(r)) => {
                let text: String =
                    r.content.iter().filter_map(|c| c.as_text().map(|t| t.text.clone())).collect::<Vec<_>>().join("\n");
                let untrusted = r
                    .meta
                    .as_ref()
                    .and_then(|m| m.0.get(mcp_common::untrusted::META_UNTRUSTED))
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                (text, r.is_error != Some(true), untrusted)
            }
            Ok(Err(e)) => (e.to_string(), false, false),
            Err(_) => (format!("{name} did not answer within {}s", timeout.as_secs()), false, false),
        };
        if untrusted {
            *tainted = true;
        }
        if tool.tier > Tier::Green {
            let _ = self
                .store
                .event(
                    "tool",
                    json!({"session": session, "tool": name, "tier": tool.tier, "arguments": args, "ok": ok}),
                )
                .await;
            let what = format!("{} — {}", humanize(name, &args), if ok { "done" } else { "failed" });
            let _ = self.intel.memory.remember_event("action", &what, &format!("tool:{name}"), Some(session)).await;
        }
        let shown: String = text.chars().take(MAX_TOOL_TEXT).collect();
        let _ = tx.send(Event::ToolResult {
            session_id: sid,
            call_id: call_id.into(),
            tool: name.into(),
            ok,
            untrusted,
            text: shown.clone(),
        });
        (shown, !ok)
    }
}
