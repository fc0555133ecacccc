//! The request pipeline in pveproxy's order, and the dispatch to endpoint handlers.
//!
//! Order (pve-manager `HTTPServer.pm`, pve-sim-notes §3): handler lookup (501) → authentication
//! (401) → CSRF on ticket writes (401) → `allowtoken` (403) → permission check (403) → proxy to
//! the owning node (500 unknown / 595 offline) → parameter verification (400) → quorum for
//! writes (500) → handler (sync error 500, or a task UPID).

mod access;
mod cluster;
mod guests;
mod ha;
mod lifecycle;
mod network;
mod nodes;
mod snapshots;
mod storage;
mod tasks;

use serde_json::Value;

use crate::auth::Identity;
use crate::model::{Guest, Kind};
use crate::schema::{self, Params, Schema};
use crate::sim::Sim;
use crate::wire::{ApiError, ApiResult, Reply};

pub use nodes::{node_down, node_up};

/// One API request, already split from its transport.
#[derive(Debug, Default, Clone)]
pub struct Request {
    pub method: String,
    /// Path below `/api2/json`, e.g. `/nodes/pve1/qemu`.
    pub path: String,
    pub params: Params,
    /// `Authorization` header.
    pub authorization: Option<String>,
    /// `PVEAuthCookie` cookie value.
    pub cookie_ticket: Option<String>,
    pub csrf: Option<String>,
}

/// Everything a handler needs.
pub struct Ctx<'a> {
    pub sim: &'a mut Sim,
    pub who: Identity,
    pub params: Params,
    pub method: String,
    pub template: String,
    /// Request path below `/api2/json`.
    pub path: String,
}

impl Ctx<'_> {
    pub fn opt_str(&self, k: &str) -> Option<String> {
        self.params.get(k).map(schema::value_text)
    }

    pub fn str(&self, k: &str) -> String {
        self.opt_str(k).unwrap_or_default()
    }

    /// Boolean parameter (already validated), false when absent.
    pub fn flag(&self, k: &str) -> bool {
        self.opt_str(k).and_then(|s| schema::parse_bool(&s)).unwrap_or(false)
    }

    pub fn opt_i64(&self, k: &str) -> Option<i64> {
        self.opt_str(k).and_then(|s| s.trim_start_matches('+').parse().ok())
    }

    pub fn vmid(&self) -> u32 {
        self.opt_i64("vmid").and_then(|v| u32::try_from(v).ok()).unwrap_or(0)
    }

    pub fn node(&self) -> String {
        self.str("node")
    }

    pub fn task_user(&self) -> String {
        self.who.task_user()
    }

    /// The guest `vmid` of `kind` on the request's node, or Proxmox's "does not exist" error.
    pub fn guest(&self, kind: Kind) -> ApiResult<&Guest> {
        let node = self.node();
        let vmid = self.vmid();
        self.sim
            .cluster
            .guests
            .get(&vmid)
            .filter(|g| g.kind == kind && g.node == node)
            .ok_or_else(|| ApiError::config_missing(&node, kind.conf_dir(), vmid))
    }

    pub fn guest_mut(&mut self, kind: Kind) -> ApiResult<&mut Guest> {
        let node = self.node();
        let vmid = self.vmid();
        self.sim
            .cluster
            .guests
            .get_mut(&vmid)
            .filter(|g| g.kind == kind && g.node == node)
            .ok_or_else(|| ApiError::config_missing(&node, kind.conf_dir(), vmid))
    }

    /// Root-only parameters (`skiplock`, `migratedfrom`, …): forbidden for everyone else, tokens included.
    pub fn root_only(&self, names: &[&str]) -> ApiResult<()> {
        for n in names {
            if self.params.contains_key(*n) && !self.who.is_root() {
                return Err(ApiError::param(n, "Only root may use this option."));
            }
        }
        Ok(())
    }

    pub fn has(&self, path: &str, privilege: &str) -> bool {
        self.sim.access.has(&self.who, path, privilege, &self.sim.cluster)
    }
}

/// Authenticate a request (`None` identity for `user: world` endpoints is not needed: those
/// handlers ignore it).
fn authenticate(sim: &Sim, req: &Request) -> ApiResult<Identity> {
    let now = sim.now_i();
    let failed = |legacy: &str| {
        ApiError::unauthorized(if sim.profile == crate::Profile::Pve9 { "Authentication failed!" } else { legacy })
    };
    if let Some(auth) = req.authorization.as_deref() {
        if let Some(tok) = auth.strip_prefix("PVEAPIToken=") {
            return sim.access.verify_token(tok.trim(), now, sim.profile);
        }
        if let Some(t) = auth.strip_prefix("PVEAuthCookie=") {
            let user = sim.access.verify_ticket(t.trim(), now).ok_or_else(|| failed("invalid PVE ticket"))?;
            return Ok(Identity { userid: user, tokenid: None, ticket: true });
        }
    }
    match req.cookie_ticket.as_deref() {
        Some(t) => {
            let user = sim.access.verify_ticket(t, now).ok_or_else(|| failed("invalid PVE ticket"))?;
            Ok(Identity { userid: user, tokenid: None, ticket: true })
        }
        None => Err(ApiError::unauthorized("No ticket")),
    }
}

/// Run one request through the whole pipeline and record it in the call log.
pub fn handle(sim: &mut Sim, req: Request) -> ApiResult<Reply> {
    let (method, path) = (req.method.clone(), req.path.clone());
    let mut user = String::new();
    let out = pipeline(sim, req, &mut user);
    let status = out.as_ref().map_or_else(|e| e.status, |_| 200);
    sim.record_call(&method, &path, status, user);
    out
}

fn pipeline(sim: &mut Sim, req: Request, caller: &mut String) -> ApiResult<Reply> {
    let schema = Schema::get();
    let Some(m) = schema.find(&req.method, &req.path) else {
        return Err(ApiError::not_implemented(&req.method, &req.path));
    };
    let ep = m.endpoint;
    let world = ep.permissions.get("user").and_then(Value::as_str) == Some("world");
    let who = if world {
        // pveproxy skips authentication for these, but still refuses an API token (`allowtoken: 0`).
        if !ep.allowtoken && req.authorization.as_deref().is_some_and(|a| a.starts_with("PVEAPIToken=")) {
            return Err(token_refused(&req.path));
        }
        Identity { userid: String::new(), tokenid: None, ticket: false }
    } else {
        let who = authenticate(sim, &req)?;
        *caller = who.task_user();
        if who.ticket && req.method != "GET" {
            let ok = req.csrf.as_deref().is_some_and(|c| sim.access.verify_csrf(c, &who.userid, sim.now_i()));
            if !ok {
                return Err(ApiError::unauthorized("Permission denied - invalid csrf token"));
            }
        }
        if who.tokenid.is_some() && !ep.allowtoken {
            return Err(token_refused(&req.path));
        }
        who
    };
    if let Some(check) = ep.permissions.get("check") {
        sim.access.check_expr(&who, check, &m.path_params, &sim.cluster)?;
    }
    if let Some(rule) = sim.faults.take_call_failure(&req.method, &req.path) {
        let msg = rule.message.unwrap_or_else(|| "injected failure".into());
        return Err(match rule.status {
            595 => ApiError::node_unreachable(&msg),
            401 => ApiError::unauthorized(&msg),
            s => ApiError { status: s, message: msg, errors: None, empty_body: false },
        });
    }
    if ep.proxyto.as_deref() == Some("node")
        && let Some(node) = m.path_params.get("node")
    {
        match sim.cluster.node(node) {
            None if node != "localhost" => {
                return Err(ApiError::server(format!(
                    "hostname lookup '{node}' failed - failed to get address info for: {node}: Name or service not known"
                )));
            }
            Some(n) if !n.online => return Err(ApiError::node_unreachable(&n.offline_reason.clone())),
            _ => {}
        }
    }
    let mut params = req.params;
    for (k, v) in &m.path_params {
        params.insert(k.clone(), Value::String(v.clone()));
    }
    schema::validate(ep, &params)?;
    if req.method != "GET" && ep.protected && !sim.cluster.quorate() && !world {
        return Err(ApiError::no_quorum());
    }
    let template = ep.template.clone();
    let mut ctx = Ctx { sim, who, params, method: req.method.clone(), template, path: req.path.clone() };
    dispatch(&mut ctx)
}

/// 403 for an API token on an endpoint with `allowtoken: 0`.
fn token_refused(path: &str) -> ApiError {
    ApiError::perm_text(format!(
        "Permission check failed (URI '{path}' not available with API token, need proper ticket.)"
    ))
}

fn dispatch(ctx: &mut Ctx<'_>) -> ApiResult<Reply> {
    let t = ctx.template.clone();
    let method = ctx.method.clone();
    let kind = if t.contains("/lxc") { Kind::Lxc } else { Kind::Qemu };
    match (method.as_str(), t.as_str()) {
        ("GET", "/version") => cluster::version(ctx),
        ("GET", "/access/ticket") => Ok(Reply::null()),
        ("POST", "/access/ticket") => access::ticket(ctx),
        ("GET", "/access/domains") => access::domains(ctx),
        ("GET", "/access/permissions") => access::permissions(ctx),
        ("GET", "/cluster/status") => cluster::status(ctx),
        ("GET", "/cluster/resources") => cluster::resources(ctx),
        ("GET", "/cluster/tasks") => tasks::cluster_tasks(ctx),
        ("GET", "/cluster/nextid") => cluster::nextid(ctx),
        ("GET", "/cluster/ha/status/current") => ha::status_current(ctx),
        ("GET", "/cluster/ha/status/manager_status") => ha::manager_status(ctx),
        ("GET", "/cluster/ha/resources") => ha::resources(ctx),
        ("GET", "/cluster/backup") => cluster::backup_jobs(ctx),
        ("POST", "/cluster/backup") => cluster::create_backup_job(ctx),
        ("GET", "/nodes") => nodes::list(ctx),
        ("GET", "/nodes/{node}/status") => nodes::status(ctx),
        ("POST", "/nodes/{node}/status") => nodes::power(ctx),
        ("POST", "/nodes/{node}/wakeonlan") => nodes::wakeonlan(ctx),
        ("GET", "/nodes/{node}/rrddata") => nodes::rrddata(ctx),
        ("GET", "/nodes/{node}/version") => cluster::version(ctx),
        ("GET", "/nodes/{node}/qemu") | ("GET", "/nodes/{node}/lxc") => guests::list(ctx, kind),
        ("POST", "/nodes/{node}/qemu") | ("POST", "/nodes/{node}/lxc") => guests::create(ctx, kind),
        ("GET", "/nodes/{node}/network") => network::list(ctx),
        ("POST", "/nodes/{node}/network") => network::create(ctx),
        ("GET", "/nodes/{node}/qemu/{vmid}/status/current") | ("GET", "/nodes/{node}/lxc/{vmid}/status/current") => {
            guests::current(ctx, kind)
        }
        ("GET", "/nodes/{node}/qemu/{vmid}/config") | ("GET", "/nodes/{node}/lxc/{vmid}/config") => {
            guests::config(ctx, kind)
        }
        ("GET", "/nodes/{node}/qemu/{vmid}/rrddata") | ("GET", "/nodes/{node}/lxc/{vmid}/rrddata") => {
            guests::rrddata(ctx, kind)
        }
        ("GET", "/nodes/{node}/qemu/{vmid}/agent/network-get-interfaces") => guests::agent_interfaces(ctx),
        ("POST", p) if p.contains("/{vmid}/status/") => {
            let action = p.rsplit('/').next().unwrap_or("").to_string();
            guests::action(ctx, kind, &action)
        }
        ("GET", "/nodes/{node}/qemu/{vmid}/migrate") | ("GET", "/nodes/{node}/lxc/{vmid}/migrate") => {
            guests::migrate_check(ctx, kind)
        }
        ("POST", "/nodes/{node}/qemu/{vmid}/migrate") | ("POST", "/nodes/{node}/lxc/{vmid}/migrate") => {
            guests::migrate(ctx, kind)
        }
        ("GET", "/nodes/{node}/qemu/{vmid}/snapshot") | ("GET", "/nodes/{node}/lxc/{vmid}/snapshot") => {
            snapshots::list(ctx, kind)
        }
        ("POST", "/nodes/{node}/qemu/{vmid}/snapshot") | ("POST", "/nodes/{node}/lxc/{vmid}/snapshot") => {
            snapshots::create(ctx, kind)
        }
        ("DELETE", "/nodes/{node}/qemu/{vmid}/snapshot/{snapname}")
        | ("DELETE", "/nodes/{node}/lxc/{vmid}/snapshot/{snapname}") => snapshots::delete(ctx, kind),
        ("POST", "/nodes/{node}/qemu/{vmid}/snapshot/{snapname}/rollback")
        | ("POST", "/nodes/{node}/lxc/{vmid}/snapshot/{snapname}/rollback") => snapshots::rollback(ctx, kind),
        ("GET", "/nodes/{node}/storage") => storage::list(ctx),
        ("GET", "/nodes/{node}/storage/{storage}/status") => storage::status(ctx),
        ("GET", "/nodes/{node}/storage/{storage}/content") => storage::content(ctx),
        ("POST", "/nodes/{node}/vzdump") => storage::vzdump(ctx),
        ("GET", "/nodes/{node}/tasks") => tasks::node_tasks(ctx),
        ("GET", "/nodes/{node}/tasks/{upid}") => tasks::index(ctx),
        ("GET", "/nodes/{node}/tasks/{upid}/status") => tasks::status(ctx),
        ("GET", "/nodes/{node}/tasks/{upid}/log") => tasks::log(ctx),
        ("DELETE", "/nodes/{node}/tasks/{upid}") => tasks::stop(ctx),
        _ => Err(ApiError::not_implemented(&method, &ctx.path)),
    }
}
