//! Router bench: `cargo run -p agent-host --example routing_bench [-- FILE.tsv]`.
//! Prints agreement with the labelled set, the local share of the conversational part and how many
//! action requests reached a provider without tools (over five availability scenarios).

use agent_host::router::bench;

fn main() {
    let text = match std::env::args().nth(1) {
        Some(p) => std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("cannot read {p}: {e}")),
        None => bench::MESSAGES.to_string(),
    };
    let cases = bench::cases(&text);
    let s = bench::run(&cases);
    println!("messages:                    {}", s.total);
    println!("agreement with labels:       {:.1} % ({}/{})", s.accuracy() * 100.0, s.agree, s.total);
    println!(
        "local share (conversational): {:.1} % ({}/{})",
        s.local_share() * 100.0,
        s.conversational_local,
        s.conversational
    );
    println!("actions to a tool-less model: {}", s.actions_to_toolless);
    for (c, d) in &s.misses {
        println!("  miss [{}] {:?} -> {:?} (rule {}): {}", c.kind, c.expected, d.target, d.rule, c.text);
    }
}
