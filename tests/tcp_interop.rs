//! nf-tcp against the Linux kernel's TCP, in the LAB.md namespaces: the
//! engine runs on hagw's DPDK path (`hagw tcp-peer`, net_af_packet ports in
//! ns gw). A Linux client sends 50 MB to the engine's echo service and
//! reads the 50 MB echo back; then the engine connects to a Linux echo
//! server and does the same. Both directions are checked byte for byte
//! (sha256 on the Linux side, a pattern check in the engine). Needs root.

mod common;
use common::*;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn wait_exit(c: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let t = Instant::now();
    while t.elapsed() < limit {
        if let Some(s) = c.try_wait().expect("wait") {
            return Some(s);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

#[test]
fn engine_and_linux_exchange_50_mb_each_way() {
    if !is_root() {
        println!("SKIPPED engine_and_linux_exchange_50_mb_each_way: needs root (network namespaces, DPDK)");
        return;
    }
    std::env::set_current_dir(root()).expect("cd");
    lab("up");
    let mut guard = Guard(vec![]);
    let hagw = env!("CARGO_BIN_EXE_hagw");

    // 1. Linux client → engine echo service on 192.0.2.1:7000
    start_echo_peer("tcp-peer", &mut guard);
    let o = ns(
        "cli",
        &[
            "python3",
            "scripts/xfer.py",
            "echo-client",
            "192.0.2.1",
            "7000",
            "50000000",
        ],
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "Linux client → engine echo failed: {out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(out.starts_with("50000000 "), "{out}");
    // stop the echo server cleanly
    let _ = Command::new("pkill")
        .args([
            "-TERM",
            "-f",
            "tcp-peer --config configs/lab.toml --echo 7000",
        ])
        .status();
    let mut server = guard.0.pop().expect("server");
    let st = wait_exit(&mut server, Duration::from_secs(10)).expect("tcp-peer stops on SIGTERM");
    let so = server.wait_with_output().expect("output");
    let log = String::from_utf8_lossy(&so.stdout);
    assert!(st.success(), "{log}{}", String::from_utf8_lossy(&so.stderr));
    assert!(log.contains("echoed 50000000 bytes"), "{log}");

    // 2. engine client → Linux echo server on 198.51.100.2:5003
    let echo = Command::new("ip")
        .args([
            "netns",
            "exec",
            "srv",
            "python3",
            "scripts/xfer.py",
            "echo-server",
            "5003",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("echo server");
    guard.0.push(echo);
    std::thread::sleep(Duration::from_millis(500));
    let o = ns(
        "gw",
        &[
            hagw,
            "tcp-peer",
            "--config",
            "configs/lab.toml",
            "--connect",
            "198.51.100.2:5003",
            "--bytes",
            "50000000",
            "--timeout",
            "120",
        ],
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "engine → Linux echo failed: {out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        out.contains("50000000 bytes sent and echoed back intact"),
        "{out}"
    );
    let mut echo = guard.0.pop().expect("echo");
    let st = wait_exit(&mut echo, Duration::from_secs(10)).expect("Linux echo server finished");
    assert!(st.success());
}
