//! Resource updates for protocol 2026-07-28 clients: `subscriptions/listen` (that protocol has no
//! `resources/subscribe`). An rmcp client at its default (latest) protocol opens one stream for two
//! URIs; the acknowledgment keeps only the resource the server can watch, every change of it arrives
//! as `notifications/resources/updated` on the stream, and a client at 2025-11-25 still subscribes the
//! old way.

use std::sync::Arc;
use std::time::Duration;

use mcp_common::resources::ResourceSource;
use mcp_common::server::JarvisServer;
use mcp_common::tier::Tier;
use mcp_common::tool::{BoxFuture, Registry};
use rmcp::ServiceExt;
use rmcp::model::{
    ClientCapabilities, ClientConfig, Implementation, ProtocolVersion, Resource, ServerNotification,
    SubscribeRequestParams, SubscriptionFilter,
};
use rmcp::service::{ClientLifecycleMode, ClientServiceExt};
use tokio::sync::watch;

const WATCHED: &str = "test://watched";

struct Source(watch::Sender<u64>);

impl ResourceSource for Source {
    fn list(&self) -> Vec<Resource> {
        vec![Resource::new(WATCHED, "watched")]
    }
    fn read(&self, _uri: String) -> BoxFuture<Result<(String, String), String>> {
        Box::pin(async { Ok(("text/plain".into(), "x".into())) })
    }
    fn watch(&self, uri: &str) -> Option<watch::Receiver<u64>> {
        (uri == WATCHED).then(|| self.0.subscribe())
    }
}

fn server(changes: watch::Sender<u64>) -> JarvisServer<()> {
    JarvisServer {
        name: "test",
        version: "0",
        instructions: String::new(),
        state: Arc::new(()),
        registry: Arc::new(Registry::default()),
        policy: Arc::default(),
        max_tier: Tier::Green,
        audit: None,
        resources: Some(Arc::new(Source(changes))),
        subscriptions: Default::default(),
        tasks: Default::default(),
        metrics: None,
    }
}

async fn connect(
    srv: JarvisServer<()>,
    version: ProtocolVersion,
) -> rmcp::service::RunningService<rmcp::RoleClient, ClientConfig> {
    let (a, b) = tokio::io::duplex(1 << 16);
    tokio::spawn(async move {
        if let Ok(running) = srv.serve(a).await {
            let _ = running.waiting().await;
        }
    });
    let cfg = ClientConfig::new(ClientCapabilities::default(), Implementation::new("listen-test", "1"))
        .with_protocol_version(version.clone());
    if version.has_initialize() {
        cfg.serve(b).await.expect("client connects (initialize)")
    } else {
        // 2026-07-28: no initialize; `server/discover`, then self-contained requests.
        let lifecycle = ClientLifecycleMode::Discover { preferred_versions: vec![version] };
        cfg.serve_with_lifecycle(b, lifecycle).await.expect("client connects (discover)")
    }
}

async fn bump(tx: &watch::Sender<u64>) {
    // Give the server's watcher a moment to be in place, then change the resource.
    tokio::time::sleep(Duration::from_millis(50)).await;
    tx.send_modify(|v| *v += 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_latest_protocol_client_gets_resource_updates_on_its_listen_stream() {
    let (tx, _) = watch::channel(0u64);
    let client = connect(server(tx.clone()), ProtocolVersion::LATEST).await;
    let filter =
        SubscriptionFilter::builder().resource_subscription(WATCHED).resource_subscription("test://other").build();
    let mut sub = client.peer().listen(filter).await.expect("subscriptions/listen");
    assert_eq!(sub.acknowledged().resource_subscriptions.as_deref(), Some(&[WATCHED.to_string()][..]));
    for _ in 0..2 {
        bump(&tx).await;
        let n = tokio::time::timeout(Duration::from_secs(5), sub.next()).await.expect("an update in time");
        match n.expect("stream open") {
            Some(ServerNotification::ResourceUpdatedNotification(u)) => assert_eq!(u.params.uri, WATCHED),
            other => panic!("expected resources/updated, got {other:?}"),
        }
    }
    let _ = client.cancel().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(deprecated)] // resources/subscribe is the 2025 way, still served
async fn a_2025_client_still_subscribes_with_resources_subscribe() {
    let (tx, _) = watch::channel(0u64);
    let client = connect(server(tx), ProtocolVersion::V_2025_11_25).await;
    client.peer().subscribe(SubscribeRequestParams::new(WATCHED)).await.expect("resources/subscribe");
    let unknown = client.peer().subscribe(SubscribeRequestParams::new("test://other")).await;
    assert!(unknown.is_err(), "an unknown resource cannot be subscribed to");
    let _ = client.cancel().await;
}
