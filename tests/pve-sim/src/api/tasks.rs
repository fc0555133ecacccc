//! Task lists, status, log and stop, with Proxmox's ownership rules.

use serde_json::{Value, json};

use super::Ctx;
use crate::tasks::{Task, parse_upid};
use crate::wire::{ApiError, ApiResult, Reply};

/// Caller owns the task: same user, or its own token; a token only sees its own tasks.
fn owns(ctx: &Ctx<'_>, t: &Task) -> bool {
    match &ctx.who.tokenid {
        Some(_) => t.user == ctx.who.task_user(),
        None => t.userid() == ctx.who.userid,
    }
}

pub fn cluster_tasks(ctx: &mut Ctx<'_>) -> ApiResult<Reply> {
    let audit = ctx.has("/", "Sys.Audit");
    let out: Vec<Value> =
        ctx.sim.tasks.all().into_iter().filter(|t| audit || owns(ctx, t)).take(500).map(Task::list_json).collect();
    Ok(Reply::data(Value::Array(out)))
}

pub fn node_tasks(ctx: &mut Ctx<'_>) -> ApiResult<Reply> {
    let node = ctx.node();
    let audit = ctx.has(&format!("/nodes/{node}"), "Sys.Audit");
    let source = ctx.opt_str("source").unwrap_or_else(|| "archive".into());
    let vmid = ctx.opt_str("vmid");
    let typefilter = ctx.opt_str("typefilter");
    let userfilter = ctx.opt_str("userfilter");
    let statusfilter: Option<Vec<String>> =
        ctx.opt_str("statusfilter").map(|s| s.split(',').map(|x| x.trim().to_string()).collect());
    let errors = ctx.flag("errors");
    let since = ctx.opt_i64("since");
    let until = ctx.opt_i64("until");
    let start = ctx.opt_i64("start").unwrap_or(0).max(0) as usize;
    let limit = ctx.opt_i64("limit").unwrap_or(50).max(0) as usize;
    let matching: Vec<&Task> = ctx
        .sim
        .tasks
        .node_tasks(&node)
        .filter(|t| audit || owns(ctx, t))
        .filter(|t| match source.as_str() {
            "active" => t.running(),
            "all" => true,
            _ => !t.running(),
        })
        .filter(|t| vmid.as_deref().is_none_or(|v| t.id == v))
        .filter(|t| typefilter.as_deref().is_none_or(|f| t.kind == f))
        .filter(|t| userfilter.as_deref().is_none_or(|f| t.user.contains(f)))
        .filter(|t| statusfilter.as_ref().is_none_or(|f| f.iter().any(|x| x == t.status_class())))
        .filter(|t| !errors || matches!(t.status_class(), "error" | "unknown"))
        .filter(|t| since.is_none_or(|s| t.starttime >= s))
        .filter(|t| until.is_none_or(|u| t.starttime <= u))
        .collect();
    let total = matching.len() as u64;
    let rows: Vec<Value> = matching.into_iter().skip(start).take(limit).map(Task::list_json).collect();
    Ok(Reply::data(Value::Array(rows)).with_total(total))
}

/// Look up `{upid}` on `{node}` with Proxmox's parameter errors.
fn task<'a>(ctx: &'a Ctx<'_>) -> ApiResult<&'a Task> {
    let upid = ctx.str("upid");
    let Some(parsed) = parse_upid(&upid) else {
        return Err(ApiError::param("upid", "unable to parse worker upid"));
    };
    if parsed.0 != ctx.node() {
        return Err(ApiError::param("upid", "no such task"));
    }
    ctx.sim.tasks.get(&upid).ok_or_else(|| ApiError::param("upid", "no such task"))
}

fn check_owner(ctx: &Ctx<'_>, t: &Task, privilege: &str) -> ApiResult<()> {
    let path = format!("/nodes/{}", t.node);
    if owns(ctx, t) || ctx.has(&path, privilege) { Ok(()) } else { Err(ApiError::perm(&path, &[privilege])) }
}

pub fn index(ctx: &mut Ctx<'_>) -> ApiResult<Reply> {
    task(ctx)?;
    Ok(Reply::data(json!([{"name": "log"}, {"name": "status"}])))
}

pub fn status(ctx: &mut Ctx<'_>) -> ApiResult<Reply> {
    let t = task(ctx)?;
    check_owner(ctx, t, "Sys.Audit")?;
    Ok(Reply::data(t.status_json()))
}

pub fn log(ctx: &mut Ctx<'_>) -> ApiResult<Reply> {
    let t = task(ctx)?;
    check_owner(ctx, t, "Sys.Audit")?;
    let start = ctx.opt_i64("start").unwrap_or(0).max(0) as usize;
    let limit = ctx.opt_i64("limit").unwrap_or(50).max(0) as usize;
    if t.log.is_empty() {
        return Ok(Reply::data(json!([{"n": 1, "t": "no content"}])).with_total(1));
    }
    let rows: Vec<Value> =
        t.log.iter().enumerate().skip(start).take(limit).map(|(i, l)| json!({"n": i + 1, "t": l})).collect();
    Ok(Reply::data(Value::Array(rows)).with_total(t.log.len() as u64))
}

pub fn stop(ctx: &mut Ctx<'_>) -> ApiResult<Reply> {
    let (upid, running) = {
        let t = task(ctx)?;
        check_owner(ctx, t, "Sys.Modify")?;
        (t.upid.clone(), t.running())
    };
    if running {
        ctx.sim.interrupt_task(&upid);
    }
    Ok(Reply::null())
}
