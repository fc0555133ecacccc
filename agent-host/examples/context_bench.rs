//! Context bench: `cargo run -p agent-host --example context_bench`.
//!
//! Runs long conversations through the summariser (the real pipeline: OpenAI-compatible request to a
//! scripted server, verification of the summary against the source, entity block) and prints entity
//! survival (share of VMIDs, node names, IPs, paths and UPIDs of the source still present in what the model
//! will see) and invented entities (present there, absent from the source):
//! 1. generated conversations (60 messages, summarised in chunks of 12) with a scripted summariser that
//!    keeps about 60 % of the entities and invents one VMID per chunk;
//! 2. the replayed fixture `tests/fixtures/context/replay.json` (a realistic summariser output).

use agent_host::context::{self, ContextConfig, Summary, entities};
use agent_host::llm::{Block, Message, OpenAiProvider, Role, config::OpenAiConfig};
use entities::{Entity, Kind};
use llm_sim::{LlmSim, Script, Turn};
use serde_json::json;

const REPLAY: &str = include_str!("../../tests/fixtures/context/replay.json");

struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % n.max(1)
    }
}

fn counted(e: &Entity) -> bool {
    matches!(e.kind, Kind::Vmid | Kind::Node | Kind::Ip | Kind::Path | Kind::Upid)
}

fn tool_pair(i: usize, text: String) -> [Message; 2] {
    let id = format!("t{i}");
    [
        Message {
            role: Role::Assistant,
            content: vec![Block::ToolUse { id: id.clone(), name: "run_node_command".into(), input: json!({}) }],
        },
        Message {
            role: Role::User,
            content: vec![Block::ToolResult { tool_use_id: id, content: text, is_error: false }],
        },
    ]
}

/// A generated conversation: messages in order.
fn conversation(seed: u64) -> Vec<Message> {
    let mut r = Lcg(seed);
    let mut out = Vec::new();
    for i in 0..20 {
        let vmid = 100 + r.next(60) * 3;
        let node = format!("pve{}", 1 + r.next(4));
        let ip = format!("10.0.{}.{}", r.next(4) * 10, 2 + r.next(200));
        let path =
            ["/var/lib/vz/dump", "/etc/pve/qemu-server", "/mnt/pve/pbs-nas", "/var/log/pve/tasks"][r.next(4) as usize];
        let upid = format!(
            "UPID:{node}:{:08X}:{:08X}:{:08X}:vzdump:{vmid}:root@pam:",
            r.next(1 << 30),
            r.next(1 << 30),
            r.next(1 << 30)
        );
        match r.next(3) {
            0 => {
                out.push(Message::user(format!("what's wrong with VM {vmid} on {node}? it stopped answering on {ip}")));
                out.extend(tool_pair(
                    i,
                    format!("{upid} vzdump {vmid} ended: TASK ERROR: unable to open file {path}/{vmid}.conf"),
                ));
                out.push(Message::assistant(format!(
                    "VM {vmid} on {node} failed its backup ({upid}); the file {path}/{vmid}.conf could not be opened."
                )));
            }
            1 => {
                out.push(Message::user(format!("ok, migrate {vmid} to {node} and keep {ip}")));
                out.extend(tool_pair(i, format!("{upid} migration of VM {vmid} finished")));
                out.push(Message::assistant(format!("VM {vmid} now runs on {node} with {ip}.")));
            }
            _ => {
                out.push(Message::user(format!("check {path} on {node} for VM {vmid}")));
                out.push(Message::assistant(format!(
                    "{path} on {node} holds 3 archives of VM {vmid}; the newest is from today."
                )));
            }
        }
    }
    out
}

/// What a lossy scripted summariser answers for `chunk`: about 60 % of its entities, plus one invented VMID.
fn scripted_summary(chunk: &[Message], r: &mut Lcg) -> String {
    let ents = entities::extract(&context::transcript(chunk));
    let mut s: Vec<String> = ents
        .iter()
        .filter(|e| counted(e) && r.next(10) < 6)
        .map(|e| match e.kind {
            Kind::Vmid => format!("The operator worked on VM {}.", e.value),
            Kind::Node => format!("Node {} was involved.", e.value),
            Kind::Ip => format!("The address {} was mentioned.", e.value),
            Kind::Path => format!("Files under {} were checked.", e.value),
            _ => format!("Task {} ran.", e.value),
        })
        .collect();
    s.push(format!("VM {} was restarted as well.", 900 + r.next(99)));
    s.join(" ")
}

#[derive(Default)]
struct Tally {
    source: usize,
    raw_kept: usize,
    raw_invented: usize,
    kept: usize,
    invented: usize,
}

impl Tally {
    fn add(&mut self, source: &[Entity], raw: &str, fin: &Summary) {
        let final_text = format!("{}\n{}", fin.text, entities::block(&fin.entities));
        let src: Vec<&Entity> = source.iter().filter(|e| counted(e)).collect();
        self.source += src.len();
        self.raw_kept += src.iter().filter(|e| entities::present(raw, e)).count();
        self.kept += src.iter().filter(|e| entities::present(&final_text, e)).count();
        let invented =
            |text: &str| entities::extract(text).into_iter().filter(|e| counted(e) && !source.contains(e)).count();
        self.raw_invented += invented(raw);
        self.invented += invented(&final_text);
        if std::env::var("BENCH_DEBUG").is_ok() {
            let inv: Vec<Entity> =
                entities::extract(&final_text).into_iter().filter(|e| counted(e) && !source.contains(e)).collect();
            eprintln!("invented in final: {inv:?}");
        }
    }

    fn print(&self, name: &str) {
        let pct = |n: usize| 100.0 * n as f64 / self.source.max(1) as f64;
        println!("{name}");
        println!("  source entities (VMIDs, nodes, IPs, paths, UPIDs): {}", self.source);
        println!("  model summary alone:   survival {:5.1} %, invented {}", pct(self.raw_kept), self.raw_invented);
        println!("  summary + entity block: survival {:5.1} %, invented {}", pct(self.kept), self.invented);
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let sim = LlmSim::start(Script::new()).await?;
    let provider = OpenAiProvider::new(OpenAiConfig {
        name: "local".into(),
        base_url: sim.base_url(),
        ..OpenAiConfig::default()
    })?;
    let cfg = ContextConfig::default();

    let mut scripted = Tally::default();
    let mut r = Lcg(7);
    for seed in 1..=20 {
        let conv = conversation(seed);
        let mut summary = Summary::default();
        let mut raw_all = String::new();
        for (n, chunk) in conv.chunks(12).enumerate() {
            let reply = scripted_summary(chunk, &mut r);
            raw_all = format!("{raw_all} {reply}");
            sim.push_turn(Turn::text(reply));
            let older: Vec<(i64, Message)> =
                chunk.iter().enumerate().map(|(i, m)| ((n * 12 + i) as i64, m.clone())).collect();
            let (s, _) = context::summarise(&provider, "qwen2.5-7b-instruct", &summary, &older, &cfg).await?;
            summary = s;
        }
        let source = entities::extract(&context::transcript(&conv));
        scripted.add(&source, &raw_all, &summary);
    }
    scripted.print("generated conversations (20 × 60 messages, scripted lossy summariser)");

    let fixture: serde_json::Value = serde_json::from_str(REPLAY)?;
    let mut msgs = Vec::new();
    for (i, m) in fixture["conversation"].as_array().into_iter().flatten().enumerate() {
        let text = m["text"].as_str().unwrap_or_default().to_string();
        match m["role"].as_str() {
            Some("user") => msgs.push(Message::user(text)),
            Some("assistant") => msgs.push(Message::assistant(text)),
            _ => msgs.extend(tool_pair(i, text)),
        }
    }
    let raw = fixture["summary"].as_str().unwrap_or_default().to_string();
    sim.push_turn(Turn::text(raw.clone()));
    let older: Vec<(i64, Message)> = msgs.iter().cloned().enumerate().map(|(i, m)| (i as i64, m)).collect();
    let (summary, dropped) =
        context::summarise(&provider, "qwen2.5-7b-instruct", &Summary::default(), &older, &cfg).await?;
    let mut replay = Tally::default();
    replay.add(&entities::extract(&context::transcript(&msgs)), &raw, &summary);
    replay.print("replayed summariser output (tests/fixtures/context/replay.json)");
    println!("  sentences dropped by verification named: {:?}", dropped.iter().map(|e| &e.value).collect::<Vec<_>>());
    Ok(())
}
