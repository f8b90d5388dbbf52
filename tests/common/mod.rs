//! Helpers of the lab tests: root check, commands in the LAB.md namespaces,
//! the lab itself, and a guard that stops helpers and tears the lab down.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Output};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

/// Runs `cmd` in namespace `n`.
pub fn ns(n: &str, cmd: &[&str]) -> Output {
    Command::new("ip")
        .args(["netns", "exec", n])
        .args(cmd)
        .output()
        .expect("ip netns exec")
}

/// Runs `cmd` in namespace `n`, which must succeed; returns its stdout.
pub fn ns_ok(n: &str, cmd: &[&str]) -> String {
    let o = ns(n, cmd);
    assert!(
        o.status.success(),
        "`{}` in ns {n} failed: {}\n{}",
        cmd.join(" "),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Three pings from the client's cellular address 100.64.0.2 to the
/// server, all answered.
pub fn cellular_ping() {
    let p = ns_ok(
        "cli",
        &[
            "ping",
            "-c",
            "3",
            "-W",
            "2",
            "-I",
            "100.64.0.2",
            "198.51.100.2",
        ],
    );
    assert!(p.contains(" 0% packet loss"), "cellular ping: {p}");
}

/// Runs `cmd` with bash, which must succeed.
pub fn sh(cmd: &str) {
    let o = Command::new("bash")
        .args(["-c", cmd])
        .output()
        .expect("bash");
    assert!(
        o.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// `scripts/lab.sh up|down`.
pub fn lab(action: &str) {
    sh(&format!(
        "bash {} {action}",
        root().join("scripts/lab.sh").display()
    ));
}

/// Kills the processes it holds and tears the lab down, whatever happens.
pub struct Guard(pub Vec<Child>);

impl Drop for Guard {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
        lab("down");
    }
}

/// `nstat -az` in namespace `n` (the kernel's absolute counters).
pub fn nstat(n: &str) -> String {
    String::from_utf8_lossy(&ns(n, &["nstat", "-az"]).stdout).into_owned()
}

/// The Linux client in ns cli asks for DSS checksums, or not (RFC 8684
/// §3.1, `net.mptcp.checksum_enabled`).
pub fn cli_checksums(on: bool) {
    let kv = format!("net.mptcp.checksum_enabled={}", u8::from(on));
    assert!(ns("cli", &["sysctl", "-qw", &kv]).status.success(), "{kv}");
}

/// The lines of a peer's log that start (after indentation) with `word`.
pub fn log_lines<'a>(log: &'a str, word: &str) -> Vec<&'a str> {
    log.lines()
        .filter(|l| l.trim_start().starts_with(word))
        .collect()
}

/// A counter from `nstat -az` output.
pub fn counter(nstat: &str, name: &str) -> u64 {
    nstat
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Starts `hagw <peer> --config configs/lab.toml --echo 7000` (tcp-peer or
/// mptcp-peer) in ns gw, held by `guard`, and waits until 192.0.2.1 answers
/// a ping from ns cli.
pub fn start_echo_peer(peer: &str, guard: &mut Guard) {
    let hagw = env!("CARGO_BIN_EXE_hagw");
    let child = Command::new("ip")
        .args(["netns", "exec", "gw", hagw, peer])
        .args(["--config", "configs/lab.toml", "--echo", "7000"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("hagw echo peer");
    guard.0.push(child);
    let t = std::time::Instant::now();
    while !ns("cli", &["ping", "-c", "1", "-W", "1", "192.0.2.1"])
        .status
        .success()
    {
        assert!(
            t.elapsed() < std::time::Duration::from_secs(30),
            "{peer} did not come up"
        );
    }
}

/// Starts `hagw run --config CONFIG` in ns gw, held by `guard`, logging to
/// `$TMPDIR/LOG`, and waits until its management API answers /healthz.
pub fn start_hagw(config: &str, log: &str, guard: &mut Guard) {
    let path = std::env::temp_dir().join(log);
    let f = std::fs::File::create(&path).expect("log");
    let hagw = env!("CARGO_BIN_EXE_hagw");
    let child = Command::new("ip")
        .args(["netns", "exec", "gw", hagw, "run", "--config", config])
        .stdout(f.try_clone().expect("log"))
        .stderr(f)
        .spawn()
        .expect("start hagw");
    guard.0.push(child);
    let t = std::time::Instant::now();
    while !ns("gw", &["curl", "-sf", "http://127.0.0.1:9180/healthz"])
        .status
        .success()
    {
        if let Some(Some(st)) = guard.0.last_mut().map(|c| c.try_wait().expect("wait")) {
            panic!("hagw exited early with {st}; see {}", path.display());
        }
        assert!(
            t.elapsed() < std::time::Duration::from_secs(30),
            "hagw did not come up"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
