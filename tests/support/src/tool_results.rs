//! Tool results as strings for assertions in the MCP servers' tests.

use mcp_common::tool::{ToolError, ToolOutput};
use serde_json::Value;

/// A tool result as one string (text, structured content or error), for leak checks.
pub fn render(r: &Result<ToolOutput, ToolError>) -> String {
    match r {
        Ok(o) => format!("{}\n{}", o.text, o.structured.clone().unwrap_or(Value::Null)),
        Err(e) => format!("{e}\n{}", e.structured()),
    }
}

/// The refusal rule of a result, `ok`, or `failed: …`/`invalid: …`.
pub fn outcome(r: &Result<ToolOutput, ToolError>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(ToolError::Refused(x)) => x.rule.clone(),
        Err(ToolError::Failed(m)) => format!("failed: {m}"),
        Err(ToolError::Invalid(m)) => format!("invalid: {m}"),
    }
}
