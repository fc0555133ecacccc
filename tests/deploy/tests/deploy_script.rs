//! scripts/deploy against a real sshd on loopback (the "management VM"), with a fake `docker` there that
//! records every call and reports health from a file: a first release goes live, a second one that never
//! gets healthy is rolled back to the first, and hostile option values are refused before any SSH.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use deploy_tests::workspace_root;
use test_support::pyenv::{self, Finished};
use test_support::sshd::Keys;

/// The fake docker: logs `<cwd>|<JARVIS_TAG>|<args>` and answers what scripts/deploy asks. A release whose
/// directory name is in `<state>/unhealthy` reports its containers unhealthy.
fn fake_docker(state: &Path) -> PathBuf {
    let path = state.join("docker");
    let script = format!(
        r#"#!/bin/bash
state={state}
printf '%s|%s|%s\n' "$(pwd -P)" "${{JARVIS_TAG-}}" "$*" >>"$state/calls.log"
case "$1" in
  compose)
    shift
    [ "$1" = version ] && exit 0
    while [[ $1 == -* ]]; do shift 2; done
    case "$1" in
      ps) printf 'c1\nc2\n' ;;
      config) printf 'jarvis/jarvis:%s\njarvis/mcp-proxmox:%s\nrhasspy/wyoming-piper:latest\n' "$JARVIS_TAG" "$JARVIS_TAG" ;;
      *) ;;
    esac ;;
  save) shift; echo "IMAGES $*" ;;
  load) cat >"$state/loaded" ;;
  inspect)
    if grep -qx "$(basename "$(pwd -P)")" "$state/unhealthy" 2>/dev/null; then echo unhealthy; else echo healthy; fi ;;
  *) echo "fake docker: unexpected $*" >&2; exit 9 ;;
esac
"#,
        state = state.display()
    );
    std::fs::write(&path, script).expect("write fake docker");
    let st = Command::new("chmod").arg("+x").arg(&path).status().expect("chmod");
    assert!(st.success());
    path
}

fn git(repo: &Path, args: &[&str]) {
    let st = Command::new("git")
        .current_dir(repo)
        .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid", "-c", "commit.gpgsign=false"])
        .args(args)
        .status()
        .expect("git runs");
    assert!(st.success(), "git {args:?}");
}

struct Vm {
    keys: Keys,
    sshd: test_support::sshd::Sshd,
    known_hosts: PathBuf,
    tmp: tempfile::TempDir,
    docker: PathBuf,
}

impl Vm {
    fn new() -> Self {
        let keys = Keys::new();
        let sshd = keys.sshd("vm");
        let known_hosts = keys.known_hosts("known_hosts", &[sshd.known_hosts_line()]);
        let tmp = tempfile::tempdir().expect("tempdir");
        let docker = fake_docker(tmp.path());
        Self { keys, sshd, known_hosts, tmp, docker }
    }

    fn dir(&self) -> PathBuf {
        self.tmp.path().join("opt-jarvis")
    }

    fn deploy(&self, repo: &Path, extra: &[&str]) -> Finished {
        let mut cmd = Command::new("bash");
        cmd.env("JARVIS_DEPLOY_DOCKER", &self.docker)
            .arg(workspace_root().join("scripts/deploy"))
            .args(["--host", &format!("{}@127.0.0.1", self.keys.user), "--port", &self.sshd.port.to_string()])
            .arg("--identity")
            .arg(&self.keys.client_key)
            .arg("--known-hosts")
            .arg(&self.known_hosts)
            .arg("--dir")
            .arg(self.dir())
            .arg("--repo")
            .arg(repo)
            .arg("--remote-docker")
            .arg(&self.docker)
            .args(["--timeout", "10"])
            .args(extra);
        pyenv::run(&mut cmd, Duration::from_secs(120)).expect("scripts/deploy runs")
    }

    fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.tmp.path().join("calls.log"))
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect()
    }

    fn current(&self) -> PathBuf {
        std::fs::read_link(self.dir().join("current")).unwrap_or_default()
    }
}

fn repo() -> tempfile::TempDir {
    let repo = tempfile::tempdir().expect("tempdir");
    for f in ["compose.yaml", ".env.example"] {
        std::fs::copy(workspace_root().join(f), repo.path().join(f)).expect("copy");
    }
    git(repo.path(), &["init", "-q"]);
    git(repo.path(), &["add", "compose.yaml", ".env.example"]);
    git(repo.path(), &["commit", "-q", "-m", "release"]);
    repo
}

#[test]
fn a_healthy_release_goes_live_and_an_unhealthy_one_is_rolled_back() {
    let vm = Vm::new();
    let repo = repo();
    // Without the operator's .env on the VM nothing is started.
    let f = vm.deploy(repo.path(), &["--release", "r0"]);
    assert!(!f.ok() && f.stderr.contains("shared/.env"), "{}", f.describe());
    assert!(vm.calls().is_empty(), "{:?}", vm.calls());
    std::fs::write(vm.dir().join("shared/.env"), "JARVIS_AUTH_PASSWORD=x\n").expect(".env");

    let f = vm.deploy(repo.path(), &["--release", "r1"]);
    assert!(f.ok(), "{}", f.describe());
    let r1 = vm.dir().join("releases/r1");
    assert_eq!(vm.current(), r1);
    assert!(r1.join("compose.yaml").exists(), "the committed tree was unpacked");
    assert_eq!(std::fs::read_link(r1.join(".env")).expect(".env link"), vm.dir().join("shared/.env"));
    let calls = vm.calls();
    let r1s = r1.display().to_string();
    assert!(calls.contains(&format!("{r1s}|r1|compose -p jarvis build")), "{calls:#?}");
    assert!(calls.contains(&format!("{r1s}|r1|compose -p jarvis up -d --remove-orphans")), "{calls:#?}");
    assert!(calls.iter().any(|c| c.starts_with(&format!("{r1s}|r1|inspect"))), "{calls:#?}");

    std::fs::write(vm.tmp.path().join("unhealthy"), "r2\n").expect("unhealthy");
    let before = vm.calls().len();
    let f = vm.deploy(repo.path(), &["--release", "r2"]);
    assert_eq!(f.status.code(), Some(1), "{}", f.describe());
    assert!(f.stderr.contains("rolled back to"), "{}", f.describe());
    assert_eq!(vm.current(), r1, "current points at the previous release again");
    let calls = vm.calls()[before..].to_vec();
    let r2s = vm.dir().join("releases/r2").display().to_string();
    let up_r2 = calls.iter().position(|c| *c == format!("{r2s}|r2|compose -p jarvis up -d --remove-orphans"));
    let up_r1 = calls.iter().rposition(|c| *c == format!("{r1s}|r1|compose -p jarvis up -d --remove-orphans"));
    assert!(matches!((up_r2, up_r1), (Some(a), Some(b)) if a < b), "r2 started, then r1 again: {calls:#?}");
    assert!(calls.iter().any(|c| c.starts_with(&format!("{r2s}|r2|compose -p jarvis logs"))), "{calls:#?}");
}

#[test]
fn hostile_values_are_refused_before_anything_runs() {
    let vm = Vm::new();
    let repo = repo();
    let marker = vm.tmp.path().join("pwned");
    let probes = vm.sshd.connections();
    for (flag, value) in [
        ("--release", format!("$(touch {})", marker.display())),
        ("--release", "../../etc".to_string()),
        ("--dir", format!("/tmp/x;touch {}", marker.display())),
        ("--dir", "/opt/../etc".to_string()),
        ("--remote-docker", format!("docker;touch {}", marker.display())),
        ("--timeout", "10; touch x".to_string()),
    ] {
        let f = vm.deploy(repo.path(), &[flag, &value]);
        assert_eq!(f.status.code(), Some(2), "{flag} {value}: {}", f.describe());
    }
    let mut cmd = Command::new("bash");
    cmd.arg(workspace_root().join("scripts/deploy")).args(["--host", "x@h;id", "--release", "r"]);
    let f = pyenv::run(&mut cmd, Duration::from_secs(30)).expect("runs");
    assert_eq!(f.status.code(), Some(2), "{}", f.describe());
    assert!(!marker.exists(), "nothing was evaluated");
    assert_eq!(vm.sshd.connections(), probes, "no SSH connection was made for invalid input");
}

#[test]
fn a_release_name_with_spaces_or_quotes_never_reaches_the_shell_unquoted() {
    // Directory names with characters the remote shell would split on are refused; a valid odd-but-legal
    // name is passed through quoted and lands exactly there.
    let vm = Vm::new();
    let repo = repo();
    std::fs::create_dir_all(vm.dir().join("shared")).expect("mkdir");
    std::fs::write(vm.dir().join("shared/.env"), "").expect(".env");
    let f = vm.deploy(repo.path(), &["--release", "v1.2.3_rc-1"]);
    assert!(f.ok(), "{}", f.describe());
    assert_eq!(vm.current(), vm.dir().join("releases/v1.2.3_rc-1"));
    let f = vm.deploy(repo.path(), &["--release", "it's"]);
    assert_eq!(f.status.code(), Some(2), "{}", f.describe());
}

#[test]
fn image_mode_builds_here_and_loads_the_images_on_the_vm() {
    let vm = Vm::new();
    let repo = repo();
    std::fs::create_dir_all(vm.dir().join("shared")).expect("mkdir");
    std::fs::write(vm.dir().join("shared/.env"), "").expect(".env");
    let f = vm.deploy(repo.path(), &["--mode", "images", "--release", "r5"]);
    assert!(f.ok(), "{}", f.describe());
    let loaded = std::fs::read_to_string(vm.tmp.path().join("loaded")).expect("docker load ran on the VM");
    assert_eq!(loaded, "IMAGES jarvis/jarvis:r5 jarvis/mcp-proxmox:r5\n", "only the Jarvis images, tagged r5");
    let r5 = vm.dir().join("releases/r5");
    assert!(r5.join(".images").exists());
    let calls = vm.calls();
    let here = repo.path().canonicalize().expect("repo path").display().to_string();
    let env_example = repo.path().join(".env.example").display().to_string();
    let local_build = format!("{here}|r5|compose --env-file {env_example} -p jarvis build");
    assert!(calls.contains(&local_build), "built here with the release tag: {calls:#?}");
    let r5s = r5.display().to_string();
    assert!(!calls.contains(&format!("{r5s}|r5|compose -p jarvis build")), "nothing is built on the VM: {calls:#?}");
    assert!(calls.contains(&format!("{r5s}|r5|compose -p jarvis up -d --remove-orphans")), "{calls:#?}");
    assert_eq!(vm.current(), r5);
}
