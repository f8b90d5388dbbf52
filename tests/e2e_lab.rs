//! End-to-end test on the reference lab (LAB.md): hagw under DPDK with
//! `net_af_packet` ports in ns gw, the Linux kernel as the peers in ns cli
//! and ns srv. Needs root; without it the test prints why and passes.
//!
//! Checks: ping cli→srv from the fixed and the cellular address, IPv6 ping
//! to 2001:db8:c::1, UDP echoed both ways through the IPv4 fast path (TTL
//! 63 at each end, no header checksum errors at the kernels), 100 MB TCP
//! each way with sha256 equality, `promtool check metrics` accepts
//! /metrics, hagw's port counters match the kernel's veth counters, the
//! kernel's ping sees hagw's ICMP errors (time exceeded, net unreachable,
//! IPv6 no route) and a burst of TTL-1 packets is answered only up to the
//! rate limit, and hagw exits 0 on SIGTERM; with the server-side port at
//! MTU 1400, a DF packet too big gets Fragmentation Needed and a TCP
//! transfer finds the path MTU through it.

mod common;
use common::*;
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn spawn_ns(n: &str, cmd: &[&str]) -> Child {
    Command::new("ip")
        .args(["netns", "exec", n])
        .args(cmd)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn")
}

fn metrics() -> String {
    ns_ok("gw", &["curl", "-sf", "http://127.0.0.1:9180/metrics"])
}

/// The value of a metric line with exactly these labels.
fn metric(text: &str, name: &str, labels: &str) -> u64 {
    let prefix = format!("{name}{{{labels}}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as u64)
        .unwrap_or_else(|| panic!("metric {name}{{{labels}}} missing"))
}

fn sysfs_counter(n: &str, dev: &str, what: &str) -> u64 {
    ns_ok(
        n,
        &["cat", &format!("/sys/class/net/{dev}/statistics/{what}")],
    )
    .trim()
    .parse()
    .expect("counter")
}

/// The kernel's count of IPv4 datagrams dropped for header errors (a bad
/// checksum among them) in namespace `n`.
fn ip_in_hdr_errors(n: &str) -> u64 {
    let s = nstat(n);
    assert!(
        s.contains("IpInHdrErrors"),
        "no IpInHdrErrors in {n}'s nstat: {s}"
    );
    counter(&s, "IpInHdrErrors")
}

fn xfer<'a>(args: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["python3", "scripts/xfer.py"];
    v.extend_from_slice(args);
    v
}

fn wait_output(mut c: Child, what: &str) -> String {
    let t = Instant::now();
    loop {
        if let Some(st) = c.try_wait().expect("wait") {
            let mut out = String::new();
            let mut err = String::new();
            c.stdout.take().map(|mut s| s.read_to_string(&mut out));
            c.stderr.take().map(|mut s| s.read_to_string(&mut err));
            assert!(st.success(), "{what} failed: {out}\n{err}");
            return out;
        }
        if t.elapsed() > Duration::from_secs(120) {
            let _ = c.kill();
            panic!("{what} timed out");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// 100 MB one way: a server in srv, a client in cli; both print "BYTES SHA256".
fn transfer(server: &[&str], client: &[&str]) {
    let srv = spawn_ns("srv", &xfer(server));
    std::thread::sleep(Duration::from_millis(500));
    let cli = ns_ok("cli", &xfer(client));
    let srv = wait_output(srv, "server");
    let (c, s) = (cli.trim(), srv.trim());
    assert!(c.starts_with("100000000 "), "client moved {c}");
    assert_eq!(c, s, "sha256 differs between the ends");
}

#[test]
fn lab_end_to_end() {
    if !is_root() {
        println!("SKIPPED lab_end_to_end: needs root (network namespaces, DPDK); run the README test command as root");
        return;
    }
    std::env::set_current_dir(root()).expect("cd");
    lab("up");
    let mut guard = Guard(vec![]);

    // Waits for the management API (ports are started before it listens).
    start_hagw("configs/lab.toml", "hagw-e2e.log", &mut guard);
    let health = ns_ok("gw", &["curl", "-sf", "http://127.0.0.1:9180/healthz"]);
    assert!(health.contains("\"status\":\"ok\""), "{health}");
    let config = ns_ok("gw", &["curl", "-sf", "http://127.0.0.1:9180/config"]);
    assert!(
        config.contains("net_af_packet0,iface=fix1"),
        "GET /config: {config}"
    );

    // Baselines for the counter comparison, taken once the ports run.
    let m0 = metrics();
    let fix_label = "port=\"fix1\",role=\"access-fixed\"";
    // Received + missed (dropped by the RX ring when the worker fell behind)
    // is what arrived at the port.
    let arrived = |m: &str| {
        metric(m, "hagw_port_rx_packets_total", fix_label)
            + metric(m, "hagw_port_rx_missed_total", fix_label)
    };
    let fix_rx0 = arrived(&m0);
    let fix_tx0 = metric(
        &m0,
        "hagw_port_tx_packets_total",
        "port=\"fix1\",role=\"access-fixed\"",
    );
    let k_tx0 = sysfs_counter("cli", "fix0", "tx_packets");
    let k_rx0 = sysfs_counter("cli", "fix0", "rx_packets");

    // Pings: the gateway holds the first packets while ARP/ND resolve.
    let p = ns_ok("cli", &["ping", "-c", "3", "-W", "2", "198.51.100.2"]);
    assert!(p.contains(" 0% packet loss"), "fixed ping: {p}");
    cellular_ping();
    let p = ns_ok(
        "cli",
        &["ping", "-6", "-c", "3", "-W", "2", "2001:db8:c::1"],
    );
    assert!(p.contains(" 0% packet loss"), "IPv6 ping: {p}");
    let p = ns_ok("cli", &["ping", "-c", "2", "-W", "2", "192.0.2.1"]);
    assert!(p.contains(" 0% packet loss"), "ping the gateway: {p}");

    // UDP both ways through the IPv4 fast path (lab.toml converts TCP
    // only): 2,000 datagrams echoed by srv's kernel. Linux drops a
    // datagram whose IPv4 header checksum is wrong (Ip InHdrErrors) and
    // reports the TTL it arrived with: the fast path's in-place rewrite
    // (MACs, TTL - 1, RFC 1624 checksum update) is checked by real peers.
    let hdr_errors0 = (ip_in_hdr_errors("cli"), ip_in_hdr_errors("srv"));
    let routed0 = metric(&metrics(), "hagw_events_total", "event=\"routed_ipv4\"");
    let echo = spawn_ns("srv", &xfer(&["udp-echo", "5003"]));
    std::thread::sleep(Duration::from_millis(500));
    let client = ns_ok(
        "cli",
        &xfer(&["udp-client", "198.51.100.2", "5003", "2000", "1000"]),
    );
    let server = wait_output(echo, "udp-echo");
    let echoed: u64 = client
        .split_whitespace()
        .nth(3)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(
        echoed >= 1960 && client.trim().ends_with("ttl 63"),
        "UDP through hagw: {client}"
    );
    assert!(server.trim().ends_with("ttl 63"), "udp-echo: {server}");
    assert_eq!(
        (ip_in_hdr_errors("cli"), ip_in_hdr_errors("srv")),
        hdr_errors0,
        "IPv4 header errors at the peers"
    );
    let routed = metric(&metrics(), "hagw_events_total", "event=\"routed_ipv4\"") - routed0;
    assert!(routed >= 2 * echoed, "routed {routed} for {echoed} echoed");

    // Datagrams of 1,800 bytes (fragmented by the ends, DF clear): the
    // kernel reassembles them for net_af_packet (PACKET_FANOUT_FLAG_DEFRAG)
    // before hagw reads them, so hagw sends each on in fragments again
    // (RFC 791 §3.2, RFC 1812 §5.2.6), both ways.
    let echo = spawn_ns("srv", &xfer(&["udp-echo", "5004"]));
    std::thread::sleep(Duration::from_millis(300));
    let client = ns_ok(
        "cli",
        &xfer(&["udp-roundtrips", "198.51.100.2", "5004", "20", "1800"]),
    );
    wait_output(echo, "udp-echo");
    assert!(
        client.starts_with("sent 20 echoed 20 "),
        "fragmented UDP through hagw: {client}"
    );
    let m = metrics();
    assert!(
        metric(&m, "hagw_events_total", "event=\"ipv4_fragments_tx\"") >= 80,
        "two fragments per datagram each way: {m}"
    );

    // 100 MB up and 100 MB down with sha256 equality.
    transfer(
        &["sink", "5001"],
        &["send", "198.51.100.2", "5001", "100000000"],
    );
    transfer(
        &["serve", "5002", "100000000"],
        &["recv", "198.51.100.2", "5002"],
    );

    // /metrics is valid Prometheus text.
    let m1 = metrics();
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (scripts/setup.sh installs it)");
    std::io::Write::write_all(&mut promtool.stdin.take().expect("stdin"), m1.as_bytes())
        .expect("write");
    let out = promtool.wait_with_output().expect("promtool");
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(metric(&m1, "hagw_events_total", "event=\"routed_ipv4\"") > 100_000);
    assert!(metric(&m1, "hagw_events_total", "event=\"icmpv6_echo_reply_tx\"") >= 3);

    // hagw's port counters match what the kernel sent and received on the
    // other end of the fixed veth (within a small tolerance for the packets
    // in flight between the two reads).
    let fix_rx = arrived(&m1) - fix_rx0;
    println!(
        "fix1: hagw rx+missed {fix_rx}, missed {}",
        metric(&m1, "hagw_port_rx_missed_total", fix_label)
    );
    let fix_tx = metric(
        &m1,
        "hagw_port_tx_packets_total",
        "port=\"fix1\",role=\"access-fixed\"",
    ) - fix_tx0;
    let k_tx = sysfs_counter("cli", "fix0", "tx_packets") - k_tx0;
    let k_rx = sysfs_counter("cli", "fix0", "rx_packets") - k_rx0;
    let close = |a: u64, b: u64| a.abs_diff(b) <= 20.max(a.max(b) / 100);
    assert!(k_tx > 50_000, "the transfers crossed fix0 ({k_tx} packets)");
    assert!(
        close(fix_rx, k_tx),
        "hagw fix1 rx {fix_rx} vs kernel fix0 tx {k_tx}"
    );
    assert!(
        close(fix_tx, k_rx),
        "hagw fix1 tx {fix_tx} vs kernel fix0 rx {k_rx}"
    );

    // ICMP errors from hagw as the Linux peers see them: TTL 1 gets Time
    // Exceeded from hagw's address on the way in (RFC 1812 §5.3.1,
    // §4.3.2.4), no route Destination Net Unreachable (§5.2.7.1), IPv6 no
    // route Destination Unreachable (RFC 4443 §3.1); a burst of TTL-1
    // packets past the limit (icmp_errors_burst 50, 100/s) gets fewer
    // answers than packets, the rest counted.
    let icmp = |args: &[&str], want: &str| {
        let o = ns("cli", args);
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(out.contains(want), "`{}`: {out}", args.join(" "));
        out
    };
    icmp(
        &["ping", "-c", "1", "-W", "2", "-t", "1", "198.51.100.2"],
        "From 192.0.2.1 icmp_seq=1 Time to live exceeded",
    );
    icmp(
        &["ping", "-c", "1", "-W", "2", "203.0.113.9"],
        "From 192.0.2.1 icmp_seq=1 Destination Net Unreachable",
    );
    icmp(
        &["ping", "-6", "-c", "1", "-W", "2", "2001:db8:ffff::1"],
        "From 2001:db8:c::1 icmp_seq=1 Destination unreachable: No route",
    );
    let event = |m: &str, e: &str| metric(m, "hagw_events_total", &format!("event=\"{e}\""));
    let m0 = metrics();
    let out = icmp(
        &[
            "ping",
            "-c",
            "200",
            "-i",
            "0.002",
            "-W",
            "1",
            "-t",
            "1",
            "198.51.100.2",
        ],
        "Time to live exceeded",
    );
    let answered = out.matches("Time to live exceeded").count();
    assert!(answered < 200, "{answered} of 200 answered: no rate limit");
    let m1 = metrics();
    let d = |e: &str| event(&m1, e) - event(&m0, e);
    assert!(
        d("icmp_error_rate_limited") > 0,
        "rate-limited ICMP errors not counted"
    );
    assert!(
        d("icmpv4_error_tx") + d("icmp_error_rate_limited") >= 200,
        "every TTL-1 packet answered or counted as limited"
    );
    println!("TTL 1 burst: {answered} of 200 answered");

    // SIGTERM → clean exit 0.
    let mut child = guard.0.pop().expect("hagw");
    let pid = ns_ok("gw", &["pgrep", "-f", "hagw run --config configs/lab.toml"]);
    for p in pid.split_whitespace() {
        let _ = Command::new("kill").args(["-TERM", p]).status();
    }
    let t = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "hagw did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0), "hagw exit status on SIGTERM");

    // Path MTU discovery through hagw: srv1 at MTU 1400. A 1428-byte ping
    // with DF gets Fragmentation Needed naming 1400 (RFC 1191, RFC 1812
    // §4.3.2.4); the kernel's TCP learns the path MTU from it and a
    // transfer through the smaller link arrives intact.
    let text = std::fs::read_to_string("configs/lab.toml").expect("lab.toml");
    let small = text.replace("name = \"srv1\"\n", "name = \"srv1\"\nmtu = 1400\n");
    assert_ne!(small, text);
    let small_path = std::env::temp_dir().join("hagw-lab-mtu1400.toml");
    std::fs::write(&small_path, small).expect("config");
    start_hagw(
        small_path.to_str().expect("path"),
        "hagw-e2e-mtu.log",
        &mut guard,
    );
    ns_ok("cli", &["ping", "-c", "1", "-W", "2", "198.51.100.2"]);
    icmp(
        &[
            "ping",
            "-c",
            "1",
            "-W",
            "2",
            "-M",
            "do",
            "-s",
            "1400",
            "198.51.100.2",
        ],
        "From 192.0.2.1 icmp_seq=1 Frag needed and DF set (mtu = 1400)",
    );
    transfer(
        &["sink", "5003"],
        &["send", "198.51.100.2", "5003", "100000000"],
    );
    let m = metrics();
    assert!(metric(&m, "hagw_events_total", "event=\"icmpv4_error_tx\"") >= 1);
}
