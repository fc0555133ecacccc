//! The `pve://cluster/snapshot` resource through a real MCP client over streamable HTTP: it is
//! listed, readable, and subscribers are notified when the cluster changes — with
//! `resources/subscribe` (protocols up to 2025-11-25) and with `subscriptions/listen` (2026-07-28).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rmcp::ServiceExt;
use rmcp::handler::client::ClientHandler;
use rmcp::model::{
    ClientCapabilities, ClientConfig, Implementation, ProtocolVersion, ReadResourceRequestParams,
    ResourceUpdatedNotificationParam, ServerNotification, SubscribeRequestParams, SubscriptionFilter,
};
use rmcp::service::{ClientLifecycleMode, ClientServiceExt, NotificationContext, RoleClient};
use rmcp::transport::StreamableHttpClientTransport;
use serde_json::Value;

#[derive(Clone)]
struct Client {
    updates: Arc<AtomicU64>,
}

impl ClientHandler for Client {
    fn get_info(&self) -> ClientConfig {
        let mut c = ClientConfig::new(ClientCapabilities::default(), Implementation::new("test", "0"));
        c.protocol_version = ProtocolVersion::V_2025_11_25;
        c
    }

    async fn on_resource_updated(&self, p: ResourceUpdatedNotificationParam, _c: NotificationContext<RoleClient>) {
        assert_eq!(p.uri, "pve://cluster/snapshot");
        self.updates.fetch_add(1, Ordering::SeqCst);
    }
}

/// pve-sim and mcp-proxmox serving streamable HTTP: (sim, port, stop, server task, temp dir).
async fn serve() -> (
    pve_sim::SimHandle,
    u16,
    tokio_util::sync::CancellationToken,
    tokio::task::JoinHandle<anyhow::Result<()>>,
    tempfile::TempDir,
) {
    let scenario = pve_sim::Scenario::builtin("homelab").expect("built in").expect("parses");
    let mut opts = pve_sim::SimOptions::new(scenario);
    opts.tls = false;
    let sim = pve_sim::start(opts).await.expect("simulator starts");
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg_path = dir.path().join("c.toml");
    std::fs::write(
        &cfg_path,
        format!(
            "[cluster]\nname='homelab'\nurl='{}'\nallow_plain_http=true\ntoken_id='jarvis@pve!mcp'\n\
             token_secret='5f0c7a1e-2d4b-4c8e-9a61-0b9d3c2e7f10'\n[cache]\nresources_ttl_secs=1\n\
             [snapshot]\ninterval_secs=1\nslow_every=1\n",
            sim.origin()
        ),
    )
    .expect("write config");
    let config: mcp_proxmox::config::Config =
        mcp_common::config::load(Some(&cfg_path), "JARVIS_PVE_TEST_UNUSED_", |_| None).expect("config");
    let section = config.server.clone();
    let server = mcp_proxmox::build(config).expect("server builds");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let stop = tokio_util::sync::CancellationToken::new();
    let stop2 = stop.clone();
    let serving =
        tokio::spawn(async move { mcp_common::server::serve_http(server, &section, None, listener, stop2).await });
    (sim, port, stop, serving, dir)
}

async fn node_offline(sim: &pve_sim::SimHandle, node: &str) {
    reqwest::Client::new()
        .post(format!("{}/_sim/node/{node}/offline", sim.origin()))
        .header("X-Sim-Admin-Token", &sim.admin_token)
        .send()
        .await
        .expect("admin call");
}

#[tokio::test]
async fn snapshot_resource_is_readable_and_notifies_subscribers_of_changes() {
    let (sim, port, stop, serving, _dir) = serve().await;
    let updates = Arc::new(AtomicU64::new(0));
    let url = format!("http://127.0.0.1:{port}/mcp");
    let client = Client { updates: updates.clone() }
        .serve(StreamableHttpClientTransport::from_uri(url.as_str()))
        .await
        .expect("client connects");
    let list = client.list_resources(None).await.expect("list");
    assert!(list.resources.iter().any(|r| r.uri == "pve://cluster/snapshot"), "{list:?}");

    let read = client.read_resource(ReadResourceRequestParams::new("pve://cluster/snapshot")).await.expect("read");
    let text = match &read.contents[0] {
        rmcp::model::ResourceContents::TextResourceContents { text, .. } => text.clone(),
        other => panic!("unexpected content {other:?}"),
    };
    let doc: Value = serde_json::from_str(&text).expect("json");
    let cluster = &doc["clusters"][0];
    assert_eq!(cluster["name"], "homelab");
    assert_eq!(cluster["quorate"], true);
    assert_eq!(cluster["nodes"].as_array().map(Vec::len), Some(4));
    assert!(cluster["guests"].as_array().is_some_and(|g| g.len() >= 30));

    #[allow(deprecated)]
    client.subscribe(SubscribeRequestParams::new("pve://cluster/snapshot")).await.expect("subscribe");
    // Take a node down through the simulator's admin API: the snapshot must change.
    node_offline(&sim, "pve4").await;
    let admin = reqwest::Client::new();
    let mut waited = 0;
    while updates.load(Ordering::SeqCst) == 0 && waited < 100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += 1;
    }
    assert!(updates.load(Ordering::SeqCst) > 0, "no resources/updated notification within 10 s");
    let read = client.read_resource(ReadResourceRequestParams::new("pve://cluster/snapshot")).await.expect("read");
    let rmcp::model::ResourceContents::TextResourceContents { text, .. } = &read.contents[0] else {
        panic!("text expected")
    };
    let doc: Value = serde_json::from_str(text).expect("json");
    let pve4 = doc["clusters"][0]["nodes"].as_array().and_then(|n| n.iter().find(|x| x["node"] == "pve4")).cloned();
    assert_eq!(pve4.map(|n| n["status"].clone()), Some(Value::from("offline")));

    // Upstream Proxmox calls are counted and exported on /metrics.
    let metrics = admin
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    let count: u64 = metrics
        .lines()
        .find(|l| l.starts_with("mcp_proxmox_upstream_calls_total{cluster=\"homelab\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("upstream call counter");
    assert!(count > 0, "{metrics}");

    let _ = client.cancel().await;
    stop.cancel();
    let _ = serving.await;
}

/// A 2026-07-28 client (no initialize, no `resources/subscribe`) over streamable HTTP opens a
/// `subscriptions/listen` stream for the snapshot and gets `notifications/resources/updated` on it
/// when the cluster changes.
#[tokio::test]
async fn a_2026_client_listens_for_snapshot_changes_over_http() {
    let (sim, port, stop, serving, _dir) = serve().await;
    let url = format!("http://127.0.0.1:{port}/mcp");
    let cfg = ClientConfig::new(ClientCapabilities::default(), Implementation::new("test", "0"));
    let lifecycle = ClientLifecycleMode::Discover { preferred_versions: vec![ProtocolVersion::V_2026_07_28] };
    let client = cfg
        .serve_with_lifecycle(StreamableHttpClientTransport::from_uri(url.as_str()), lifecycle)
        .await
        .expect("client connects (discover)");
    let filter = SubscriptionFilter::builder().resource_subscription("pve://cluster/snapshot").build();
    let mut sub = client.peer().listen(filter).await.expect("subscriptions/listen");
    assert_eq!(sub.acknowledged().resource_subscriptions.as_deref(), Some(&["pve://cluster/snapshot".to_string()][..]));
    node_offline(&sim, "pve3").await;
    let got = tokio::time::timeout(Duration::from_secs(10), sub.next()).await.expect("an update within 10 s");
    match got.expect("stream open") {
        Some(ServerNotification::ResourceUpdatedNotification(u)) => assert_eq!(u.params.uri, "pve://cluster/snapshot"),
        other => panic!("expected resources/updated, got {other:?}"),
    }
    let _ = client.cancel().await;
    stop.cancel();
    let _ = serving.await;
}
