//! Nodes over SSH/SFTP, against real OpenSSH servers on loopback ports (one per node; see
//! `common/sshd.rs`): listings and symlinks under the same rules as locally, the traversal
//! corpus, node-to-node transfers, copies on one node, overwrite rules, special files, host key
//! verification, and an interrupted transfer that leaves no partial file.

mod common;
use test_support::sshd;

use std::sync::atomic::AtomicBool;

use common::{CANARY, HIDDEN_NAME, Lab, World, corpus, leaks_and_leftovers, outcome, payload, render, sha256_hex};
use mcp_common::tool::ToolError;
use mcp_files::config::{NodeConfig, RootConfig};
use mcp_files::state::Files;
use mcp_files::transfer;
use serde_json::{Value, json};
use sshd::{Keys, Sshd};

/// Two nodes: `pve1` whose root is the lab's root (symlinks, FIFO, denied `secrets`), and
/// `pve2` with an empty writable root; the lab root is also this machine's root.
struct Cluster {
    lab: Lab,
    keys: Keys,
    pve1: Sshd,
    pve2: Sshd,
    pve2_root: std::path::PathBuf,
}

impl Cluster {
    fn new() -> Self {
        let lab = Lab::new();
        let keys = Keys::new();
        let (pve1, pve2) = (keys.sshd("pve1"), keys.sshd("pve2"));
        let pve2_root = lab.base.join("pve2");
        std::fs::create_dir_all(&pve2_root).expect("mkdir");
        Self { lab, keys, pve1, pve2, pve2_root }
    }

    fn files(&self, known_hosts: Option<Vec<String>>) -> Files {
        let mut c = self.lab.config();
        let lines = known_hosts.unwrap_or_else(|| vec![self.pve1.known_hosts_line(), self.pve2.known_hosts_line()]);
        c.ssh.known_hosts = Some(self.keys.known_hosts("known_hosts", &lines));
        c.ssh.key_file = Some(self.keys.client_key.clone());
        c.ssh.user = self.keys.user.clone();
        c.ssh.timeout_secs = 5;
        let root = |p: &std::path::Path| vec![RootConfig { path: p.to_path_buf(), writable: true }];
        c.nodes.insert("pve1".into(), NodeConfig { address: self.pve1.address(), roots: root(&self.lab.root) });
        c.nodes.insert("pve2".into(), NodeConfig { address: self.pve2.address(), roots: root(&self.pve2_root) });
        Files::new(c).expect("state")
    }

    fn root(&self) -> String {
        self.lab.root.display().to_string()
    }
}

fn entries(v: &Value) -> Vec<Value> {
    v["entries"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_listings_show_symlinks_without_following_them_out_of_the_root() {
    let c = Cluster::new();
    let w = World::new(c.files(None));
    let out = w.call("list_directory", json!({"node": "pve1", "path": c.root(), "depth": 3})).await.expect("ls");
    assert!(out.untrusted);
    let list = entries(&out.structured.expect("structured"));
    let by_name = |n: &str| list.iter().find(|e| e["name"] == n).cloned().unwrap_or(Value::Null);
    assert_eq!(
        (by_name("link")["type"].as_str(), by_name("link")["target_status"].as_str()),
        (Some("symlink"), Some("outside_root"))
    );
    assert_eq!(by_name("evil.txt")["target_status"], "outside_root");
    assert_eq!(by_name("good.txt")["target_status"], "inside_root");
    assert_eq!(by_name("pipe")["type"], "fifo");
    assert_eq!(by_name("secrets")["denied"], true);
    assert_eq!(by_name("secrets/token"), Value::Null);
    assert_eq!(by_name("sub/deeper/note.txt")["size"], 7);
    assert!(list.iter().all(|e| !e["name"].as_str().unwrap_or("").starts_with("link/")));

    let info = w.call("file_info", json!({"node": "pve1", "path": "sub/file.txt"})).await.expect("info");
    let s = info.structured.expect("s");
    assert_eq!((s["type"].as_str(), s["size"].as_u64(), s["node"].as_str()), (Some("file"), Some(16), Some("pve1")));
    for (p, rule) in
        [("link/passwd", "path_escape"), ("out/canary.txt", "path_escape"), ("secrets/token", "path_denied")]
    {
        assert_eq!(outcome(&w.call("file_info", json!({"node": "pve1", "path": p})).await), rule, "{p}");
    }
    let unknown = w.call("file_info", json!({"node": "pve9", "path": "x"})).await;
    assert!(outcome(&unknown).starts_with("invalid: unknown node"), "{}", outcome(&unknown));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_traversal_corpus_over_sftp_never_yields_a_byte_from_outside_the_root() {
    let c = Cluster::new();
    let w = World::new(c.files(None));
    let vars = [
        ("{ROOT}", c.root()),
        ("{OUTSIDE}", c.lab.outside.display().to_string()),
        ("{BASE}", c.lab.base.display().to_string()),
    ];
    let mut ok = 0;
    for p in corpus("path_traversal.txt", &vars) {
        for (tool, args) in [
            ("file_info", json!({"node": "pve1", "path": p})),
            ("list_directory", json!({"node": "pve1", "path": p, "depth": 2})),
            (
                "transfer_file",
                json!({"src_node": "pve1", "src": p, "dest_node": "pve2", "dest": format!("{}/", c.pve2_root.display())}),
            ),
        ] {
            let r = w.call(tool, args.clone()).await;
            let shown = render(&r);
            for secret in [CANARY, HIDDEN_NAME, "root:x:0:0"] {
                assert!(!shown.contains(secret), "{tool} {args} leaked {secret:?}:\n{shown}");
            }
            ok += usize::from(r.is_ok());
        }
    }
    assert!(ok > 10, "legitimate paths still work over SFTP ({ok})");
    assert!(c.pve1.connections() < 10, "idle sessions are reused, not one handshake per call");
    let (leaks, temps) = leaks_and_leftovers(&c.pve2_root);
    assert!(leaks.is_empty() && temps.is_empty(), "{leaks:?} {temps:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfers_stream_between_nodes_and_never_overwrite_unless_asked() {
    let c = Cluster::new();
    let data = payload(5 << 20);
    std::fs::write(c.lab.root.join("backup.vma"), &data).expect("write");
    let w = World::new(c.files(None));
    let dest = format!("{}/backup.vma", c.pve2_root.display());
    let args = json!({"src_node": "pve1", "src": "backup.vma", "dest_node": "pve2", "dest": dest});
    let out = w.call("transfer_file", args.clone()).await.expect("transfer");
    let s = out.structured.expect("structured");
    assert_eq!(
        (s["bytes"].as_u64(), s["sha256"].as_str()),
        (Some(data.len() as u64), Some(sha256_hex(&data).as_str()))
    );
    assert_eq!(std::fs::read(c.pve2_root.join("backup.vma")).expect("written"), data);
    assert!(out.text.starts_with("Copied pve1:"), "{}", out.text);

    assert_eq!(outcome(&w.call("transfer_file", args.clone()).await), "would_overwrite");
    let mut again = args.clone();
    again["src"] = json!("sub/file.txt");
    again["overwrite"] = json!(true);
    w.call("transfer_file", again).await.expect("overwrite asked");
    assert_eq!(std::fs::read_to_string(c.pve2_root.join("backup.vma")).expect("replaced"), "inside the root\n");

    // Between this machine and a node, both ways, and a copy within one node.
    let up = json!({"src_node": "local", "src": "sub/deeper/note.txt", "dest_node": "pve2", "dest": format!("{}/", c.pve2_root.display())});
    w.call("transfer_file", up).await.expect("local to pve2");
    let down = json!({"src_node": "pve2", "src": format!("{}/note.txt", c.pve2_root.display()), "dest_node": "local", "dest": "copies/from-pve2.txt"});
    w.call("transfer_file", down).await.expect("pve2 to local");
    assert_eq!(std::fs::read_to_string(c.lab.root.join("copies/from-pve2.txt")).expect("copied"), "deeper\n");
    let same = json!({"node": "pve2", "src": format!("{}/note.txt", c.pve2_root.display()), "dest": format!("{}/note-copy.txt", c.pve2_root.display())});
    w.call("copy_file", same).await.expect("copy on pve2");
    assert_eq!(std::fs::read_to_string(c.pve2_root.join("note-copy.txt")).expect("copied"), "deeper\n");

    for (src, rule) in [("pipe", "special_file"), ("evil.txt", "path_escape"), ("secrets/token", "path_denied")] {
        let r = w.call("transfer_file", json!({"src_node": "pve1", "src": src, "dest_node": "pve2", "dest": format!("{}/x", c.pve2_root.display())})).await;
        assert_eq!(outcome(&r), rule, "{src}");
    }
    let (leaks, temps) = leaks_and_leftovers(&c.pve2_root);
    assert!(leaks.is_empty() && temps.is_empty(), "{leaks:?} {temps:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_sweeps_the_leftover_of_an_earlier_broken_one_on_the_destination_node() {
    let c = Cluster::new();
    std::fs::write(c.lab.root.join("disk.img"), b"fresh bytes").expect("write");
    // What a transfer leaves behind when its connection to the destination node breaks.
    let (prefix, suffix) = mcp_common::guard::write::temp_affixes("disk.img");
    let leftover = c.pve2_root.join(format!("{prefix}0123456789abcdef{suffix}"));
    std::fs::write(&leftover, b"half").expect("write");
    let old =
        std::time::SystemTime::now() - std::time::Duration::from_secs(mcp_common::guard::write::STALE_TEMP_SECS + 60);
    std::fs::File::options().write(true).open(&leftover).and_then(|f| f.set_modified(old)).expect("age it");
    let w = World::new(c.files(None));
    let dest = format!("{}/disk.img", c.pve2_root.display());
    w.call("transfer_file", json!({"src_node": "pve1", "src": "disk.img", "dest_node": "pve2", "dest": dest}))
        .await
        .expect("transfer");
    assert_eq!(std::fs::read(c.pve2_root.join("disk.img")).expect("written"), b"fresh bytes");
    assert!(!leftover.exists(), "the stale temporary file was removed");
}

#[test]
fn an_interrupted_transfer_leaves_no_partial_file_at_the_destination() {
    let c = Cluster::new();
    std::fs::write(c.lab.root.join("big.bin"), payload(32 << 20)).expect("write");
    let files = c.files(None);
    let src = files.remote["pve1"].guard.locate("big.bin", "pve1").expect("inside");
    let dest_dir = files.remote["pve2"].guard.locate(&c.pve2_root.display().to_string(), "pve2").expect("inside");
    let job = transfer::Job {
        src_node: Some("pve1".into()),
        src,
        dest_node: Some("pve2".into()),
        dest_dir,
        dest_name: "big.bin".into(),
        overwrite: false,
    };
    let cancel = AtomicBool::new(false);
    let mut killed = 0;
    let r = transfer::copy_blocking(&files, &job, &cancel, &mut |done, _| {
        if done > 0 && killed == 0 {
            // pve1's sshd session dies under the transfer.
            killed = c.pve1.kill_sessions();
        }
    });
    assert!(killed > 0, "a session process was killed");
    assert!(matches!(&r, Err(ToolError::Failed(_))), "{r:?}");
    assert!(!c.pve2_root.join("big.bin").exists(), "no partial file at the destination");
    let (_, temps) = leaks_and_leftovers(&c.pve2_root);
    assert!(temps.is_empty(), "the temporary file was removed: {temps:?}");
    // The node is still reachable afterwards.
    let cancel = AtomicBool::new(false);
    transfer::copy_blocking(&files, &job, &cancel, &mut |_, _| {}).expect("the retry succeeds");
    assert_eq!(std::fs::metadata(c.pve2_root.join("big.bin")).expect("written").len(), 32 << 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_and_changed_host_keys_are_refused_and_bad_paths_never_connect() {
    let c = Cluster::new();
    let before = (c.pve1.connections(), c.pve2.connections());
    // pve2's key recorded for pve1's address: a man in the middle, as far as Jarvis can tell.
    let impostor = c.pve2.known_hosts_line().replacen(&format!(":{} ", c.pve2.port), &format!(":{} ", c.pve1.port), 1);
    let w = World::new(c.files(Some(vec![impostor])));
    let r = w.call("file_info", json!({"node": "pve1", "path": "sub"})).await;
    assert_eq!(outcome(&r), "host_key_verification");
    assert!(render(&r).contains("HOST KEY MISMATCH"), "{}", render(&r));
    let r = w.call("file_info", json!({"node": "pve2", "path": "x"})).await;
    assert_eq!(outcome(&r), "host_key_verification", "no entry for pve2: refused, never trusted on first use");
    assert_eq!(c.pve2.connections(), before.1, "an unknown host costs no connection");

    let w = World::new(c.files(None));
    let before = (c.pve1.connections(), c.pve2.connections());
    for args in [
        json!({"src_node": "pve1", "src": "../../etc/passwd", "dest_node": "pve2", "dest": "x"}),
        json!({"src_node": "pve1", "src": "/etc/shadow", "dest_node": "pve2", "dest": "x"}),
        json!({"src_node": "pve1", "src": "sub/file.txt", "dest_node": "pve2", "dest": "/tmp/x"}),
        json!({"src_node": "pve1", "src": "sub/file.txt", "dest_node": "pve2", "dest": "a\0b"}),
    ] {
        assert!(matches!(w.call("transfer_file", args.clone()).await, Err(ToolError::Refused(_))), "{args}");
    }
    assert_eq!((c.pve1.connections(), c.pve2.connections()), before, "refused before connecting");
}
