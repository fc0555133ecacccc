//! A real OpenSSH server with SFTP for node tests (Debian's openssh-server): its own config, host key and authorized client key in a temporary directory, listening on
//! 127.0.0.1 and a free port, killed on drop. `internal-sftp` serves SFTP, so no extra binary
//! is needed; [`Sshd::kill_sessions`] cuts every open connection (an interrupted transfer).

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const SSHD: &str = "/usr/sbin/sshd";

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?} cannot start: {e}"));
    assert!(out.status.success(), "{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
}

pub fn keygen(path: &Path) {
    run(Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-C", "jarvis-test", "-f"]).arg(path));
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port()
}

/// The client key pair and the user to log in as, shared by all sshds of a test.
pub struct Keys {
    pub dir: tempfile::TempDir,
    pub client_key: PathBuf,
    pub user: String,
}

impl Default for Keys {
    fn default() -> Self {
        Self::new()
    }
}

impl Keys {
    pub fn new() -> Self {
        assert!(
            Path::new(SSHD).exists(),
            "{SSHD} is missing: apt-get install openssh-server (scripts/test installs it)"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let client_key = dir.path().join("client_ed25519");
        keygen(&client_key);
        std::fs::copy(client_key.with_extension("pub"), dir.path().join("authorized_keys")).expect("authorized_keys");
        // sshd refuses to start without its privilege separation directory.
        let _ = std::fs::create_dir_all("/run/sshd");
        let user = Command::new("id").arg("-un").output().expect("id -un");
        let user = String::from_utf8_lossy(&user.stdout).trim().to_string();
        Self { dir, client_key, user }
    }

    pub fn sshd(&self, name: &str) -> Sshd {
        self.sshd_with(name, |_| String::new())
    }

    /// An sshd whose home directory `setup` prepares first (e.g. fake commands); the lines it
    /// returns are appended to the sshd_config (e.g. `SetEnv PATH=…`).
    pub fn sshd_with(&self, name: &str, setup: impl FnOnce(&Path) -> String) -> Sshd {
        let home = self.dir.path().join(name);
        std::fs::create_dir_all(&home).expect("mkdir");
        keygen(&home.join("host_ed25519"));
        let extra_config = setup(&home);
        let authorized = self.dir.path().join("authorized_keys");
        let mut s = Sshd { port: free_port(), home, authorized, extra_config, child: None };
        s.start();
        s
    }

    /// A known_hosts file with these lines.
    pub fn known_hosts(&self, name: &str, lines: &[String]) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, lines.join("\n") + "\n").expect("known_hosts");
        p
    }
}

/// One running sshd.
pub struct Sshd {
    pub port: u16,
    pub home: PathBuf,
    authorized: PathBuf,
    /// Appended to the generated sshd_config.
    extra_config: String,
    child: Option<Child>,
}

impl Sshd {
    fn config(&self) -> PathBuf {
        let h = self.home.display();
        let text = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {h}/host_ed25519\nPidFile {h}/sshd.pid\n\
             AuthorizedKeysFile {auth}\nStrictModes no\nUsePAM no\nPermitRootLogin prohibit-password\n\
             PubkeyAuthentication yes\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
             AllowTcpForwarding no\nAllowAgentForwarding no\nX11Forwarding no\nPrintMotd no\nPrintLastLog no\n\
             Subsystem sftp internal-sftp\nLogLevel VERBOSE\n{extra}",
            port = self.port,
            auth = self.authorized.display(),
            extra = self.extra_config,
        );
        let path = self.home.join("sshd_config");
        std::fs::write(&path, text).expect("sshd_config");
        path
    }

    /// Start (or start again, on the same port and host key) and wait (bounded polling) until it greets.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "already running");
        let config = self.config();
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.log_path()).expect("sshd.log");
        let child = Command::new(SSHD)
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("sshd starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let mut banner = [0u8; 8];
                if s.read_exact(&mut banner).is_ok() && banner.starts_with(b"SSH-2.0") {
                    return;
                }
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!("sshd exited with {status}: {}", self.log());
            }
            assert!(Instant::now() < deadline, "sshd did not come up on port {}: {}", self.port, self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log_path(&self) -> PathBuf {
        self.home.join("sshd.log")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Stop it (open sessions included); [`Sshd::start`] brings it back.
    pub fn stop(&mut self) {
        self.kill_sessions();
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Logins that got past authentication.
    pub fn logins(&self) -> usize {
        self.log().matches("Accepted publickey").count()
    }

    /// TCP connections accepted so far (readiness probes included).
    pub fn connections(&self) -> usize {
        self.log().matches("Connection from").count()
    }

    /// Kill every session process this sshd forked (its descendants), by pid: open
    /// connections drop mid-stream, new ones are still accepted.
    pub fn kill_sessions(&self) -> usize {
        let Some(master) = self.child.as_ref().map(Child::id) else { return 0 };
        let mut parents = std::collections::BTreeMap::new();
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
            let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else { continue };
            // "pid (comm) state ppid …": the command name may contain spaces, so split after ')'.
            let ppid = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok());
            if let Some(ppid) = ppid {
                parents.insert(pid, ppid);
            }
        }
        let descends = |mut p: u32| {
            for _ in 0..16 {
                match parents.get(&p) {
                    Some(&pp) if pp == master => return true,
                    Some(&pp) if pp > 1 => p = pp,
                    _ => return false,
                }
            }
            false
        };
        let victims: Vec<u32> = parents.keys().copied().filter(|p| *p != master && descends(*p)).collect();
        for pid in &victims {
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
        }
        victims.len()
    }

    /// `[127.0.0.1]:port ssh-ed25519 AAAA…`, the known_hosts line for this server.
    pub fn known_hosts_line(&self) -> String {
        let public = std::fs::read_to_string(self.home.join("host_ed25519.pub")).expect("host key");
        let mut parts = public.split_whitespace();
        let (kind, key) = (parts.next().expect("type"), parts.next().expect("key"));
        format!("[127.0.0.1]:{} {kind} {key}", self.port)
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.stop();
    }
}
