//! `/access/ticket` (login and ticket renewal), `/access/domains`, `/access/permissions`.

use serde_json::{Map, Value, json};

use super::Ctx;
use crate::wire::{ApiError, ApiResult, Reply};

pub fn ticket(ctx: &mut Ctx<'_>) -> ApiResult<Reply> {
    let now = ctx.sim.now_i();
    let username = ctx.str("username");
    let password = ctx.str("password");
    let realm = ctx.opt_str("realm");
    let Some(userid) = ctx.sim.access.login(&username, realm.as_deref(), &password, now) else {
        // Real servers answer `401 authentication failure` with `{"data":null}` here.
        return Err(ApiError {
            status: 401,
            message: "authentication failure".into(),
            errors: None,
            empty_body: false,
        });
    };
    let ticket = ctx.sim.access.create_ticket(&userid, now);
    let csrf = ctx.sim.access.create_csrf(&userid, now);
    let mut d = json!({
        "username": userid, "ticket": ticket, "CSRFPreventionToken": csrf, "clustername": ctx.sim.cluster.name,
    });
    if ctx.sim.cluster.nodes.len() < 2 {
        d.as_object_mut().map(|m| m.remove("clustername"));
    }
    Ok(Reply::data(d))
}

pub fn domains(_ctx: &mut Ctx<'_>) -> ApiResult<Reply> {
    Ok(Reply::data(json!([
        {"realm": "pam", "type": "pam", "comment": "Linux PAM standard authentication"},
        {"realm": "pve", "type": "pve", "comment": "Proxmox VE authentication server", "default": 1},
    ])))
}

/// Effective privileges of the caller, per path (what `pveum user permissions` shows).
pub fn permissions(ctx: &mut Ctx<'_>) -> ApiResult<Reply> {
    let sim = &*ctx.sim;
    let c = &sim.cluster;
    let mut paths: Vec<String> = vec!["/".into(), "/vms".into(), "/nodes".into(), "/storage".into()];
    if let Some(p) = ctx.opt_str("path") {
        paths = vec![p];
    } else {
        paths.extend(c.nodes.iter().map(|n| format!("/nodes/{}", n.name)));
        paths.extend(c.storages.iter().map(|s| format!("/storage/{}", s.id)));
        paths.extend(c.guests.keys().map(|v| format!("/vms/{v}")));
        paths.extend(c.pools.keys().map(|p| format!("/pool/{p}")));
    }
    let mut out = Map::new();
    for p in paths {
        let privs = sim.access.privs(&ctx.who, &p, c);
        if privs.is_empty() {
            continue;
        }
        let m: Map<String, Value> = privs.into_iter().map(|x| (x.to_string(), json!(1))).collect();
        out.insert(p, Value::Object(m));
    }
    Ok(Reply::data(Value::Object(out)))
}
