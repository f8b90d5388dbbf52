//! The conversion point end to end on the reference lab (LAB.md): a Linux
//! kernel MPTCP client in ns cli (fixed + cellular IPv4 + cellular IPv6),
//! hagw under DPDK (`net_af_packet`) in ns gw, plain TCP servers (and one
//! MPTCP listener) in ns srv. Needs root; without it the test says why and
//! passes.
//!
//! Checks (issue 5, point 8): (a) every connection gets its cellular
//! subflow and both accesses carry data; (b) 200 MB up and 200 MB down with
//! sha256 equality; (c) the server sees only 192.0.2.2 with lab.toml and
//! only pool addresses with lab-pool.toml, never 100.64.0.0/10 (nftables
//! counters in ns srv); (d) fix0 goes down mid-transfer and the transfer
//! completes over cellular; (e) an MPTCP listener on srv:5202 sees MPTCP
//! with `withdraw = "if-server-capable"` and plain TCP with `never`; (f) the
//! IPv6 cellular subflow joins via ADD_ADDR and carries the data once
//! fixed and cellular IPv4 are gone; (g) a closed server port gives the
//! client a prompt RST; (h) 1,000 short connections in parallel batches
//! complete and the session table drains to 0; (j) under a spoofed SYN
//! flood the real client gets a SYN cookie and its connection works;
//! (i) a client asking for DSS
//! checksums (net.mptcp.checksum_enabled=1) moves 20 MB each way with no
//! checksum error, MP_FAIL or fallback on either side; (k) with two workers
//! (two queues per port) joins and server replies reach the session's
//! worker and the transfers stay intact; (l) with a 1024-mbuf pool the cap
//! on payload held by reference kicks in (copies counted) and 30 MB each
//! way still completes; (m) with the internet port on `net_tap` (a PMD that
//! verifies and computes TCP checksums) hagw turns both offloads on and
//! 20 MB each way stay intact, none dropped as malformed; (n) each
//! downstream scheduler splits a download over the accesses as it says;
//! (o) an abort (RST, MP_FASTCLOSE) by either end reaches the other; (p) a
//! full session table or subscriber quota refuses a connection with a
//! prompt RST, counted by reason; (q) an MP_JOIN flood with random tokens
//! is refused and counted while a real client's join works, and an idle
//! connection is reset on both ends after the idle timeout; (r) toward a
//! server behind a narrower link, hagw takes the router's "fragmentation
//! needed" and the upload completes; (s) an ICMPv6 Packet Too Big about
//! the IPv6 subflow, and a fragmentation needed about the IPv4 cellular
//! one, lower that subflow's MSS; (t) ICMP errors about a withdrawn
//! connection's packets reach the end that sent them, NATed both ways;
//! (u) a server answering the SYN with ICMP host unreachable: the client's
//! connect fails at once with EHOSTUNREACH; (v) with 5% random loss each
//! way on both accesses, 50 MB each way stay intact and hagw's recovery
//! shows per access.

mod common;
use common::*;
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const LOG: &str = "hagw-conversion.log";

fn spawn_ns(n: &str, cmd: &[&str]) -> Child {
    Command::new("ip")
        .args(["netns", "exec", n])
        .args(cmd)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn")
}

fn xfer<'a>(args: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["python3", "scripts/xfer.py"];
    v.extend_from_slice(args);
    v
}

/// Waits for `c`; returns (stdout, stderr); panics on failure or timeout.
fn wait_output(mut c: Child, what: &str) -> (String, String) {
    let t = Instant::now();
    loop {
        if let Some(st) = c.try_wait().expect("wait") {
            let mut out = String::new();
            let mut err = String::new();
            c.stdout.take().map(|mut s| s.read_to_string(&mut out));
            c.stderr.take().map(|mut s| s.read_to_string(&mut err));
            assert!(st.success(), "{what} failed: {out}\n{err}");
            return (out, err);
        }
        if t.elapsed() > Duration::from_secs(120) {
            let _ = c.kill();
            panic!("{what} timed out");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn metrics() -> String {
    ns_ok("gw", &["curl", "-sf", "http://127.0.0.1:9180/metrics"])
}

/// A metric's value (labels as written, "" for none); 0 when absent.
fn metric(text: &str, name: &str, labels: &str) -> u64 {
    let prefix = if labels.is_empty() {
        format!("{name} ")
    } else {
        format!("{name}{{{labels}}} ")
    };
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

/// Starts hagw with CONFIG and waits until the server answers a ping
/// through it (neighbours resolved on both sides).
fn start_hagw(config: &str, guard: &mut Guard) {
    common::start_hagw(config, LOG, guard);
    ns_ok("cli", &["ping", "-c", "1", "-W", "2", "198.51.100.2"]);
}

/// Starts hagw with the config text `cfg` (a variant of lab.toml), written
/// to `hagw-lab-NAME.toml` in the temporary directory.
fn start_hagw_with(name: &str, cfg: &str, guard: &mut Guard) {
    let path = std::env::temp_dir().join(format!("hagw-lab-{name}.toml"));
    std::fs::write(&path, cfg).expect("config");
    start_hagw(path.to_str().expect("path"), guard);
}

fn stop_hagw(guard: &mut Guard) {
    let _ = ns("gw", &["pkill", "-TERM", "-f", "hagw run --config"]);
    if let Some(mut c) = guard.0.pop() {
        let t = Instant::now();
        while c.try_wait().expect("wait").is_none() {
            if t.elapsed() > Duration::from_secs(15) {
                let _ = c.kill();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Polls `done` every 100 ms until it holds; fails saying `what` after
/// `secs` seconds.
fn wait_until(secs: u64, what: &str, mut done: impl FnMut() -> bool) {
    let t = Instant::now();
    while !done() {
        assert!(t.elapsed() < Duration::from_secs(secs), "{what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One transfer: `server` in srv, `client` in cli; both print "BYTES SHA256".
/// Returns the addresses the server saw.
fn transfer(server: &[&str], client: &[&str], bytes: u64) -> Vec<String> {
    let srv = spawn_ns("srv", &xfer(server));
    std::thread::sleep(Duration::from_millis(400));
    let cli = ns_ok("cli", &xfer(client));
    let (out, err) = wait_output(srv, "server");
    let (c, s) = (cli.trim(), out.trim());
    assert!(c.starts_with(&format!("{bytes} ")), "client moved {c}");
    assert_eq!(c, s, "sha256 differs between the ends");
    peers(&err)
}

/// `bytes` up from the MPTCP client to a sink on server port `port`, then
/// `bytes` down from port `port + 1`, each checked by sha256 (`recv_flags`
/// go to the downloading client).
fn mptcp_up_and_down(port: u16, bytes: u64, recv_flags: &[&str]) {
    let (up, down, n) = (port.to_string(), (port + 1).to_string(), bytes.to_string());
    transfer(
        &["sink", &up],
        &["send", "198.51.100.2", &up, &n, "--mptcp"],
        bytes,
    );
    let recv = [&["recv", "198.51.100.2", &down, "--mptcp"][..], recv_flags].concat();
    transfer(&["serve", &down, &n], &recv, bytes);
}

fn peers(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter_map(|l| l.strip_prefix("peer "))
        .map(|s| s.trim().to_string())
        .collect()
}

/// nftables counters in ns srv: TCP packets from the cellular range, from
/// the subscriber's fixed address and from the NAT pool (the harness's own
/// pings are routed, not converted, and are not counted).
fn srv_counters_install() {
    let rules = "table inet hagwtest {\n chain input {\n  type filter hook input priority 0; policy accept;\n  ip saddr 100.64.0.0/10 meta l4proto tcp counter comment \"cellular\"\n  ip saddr 192.0.2.2 meta l4proto tcp counter comment \"fixed\"\n  ip saddr 203.0.113.0/28 meta l4proto tcp counter comment \"pool\"\n }\n}\n";
    let path = std::env::temp_dir().join("hagw-conv-nft.conf");
    std::fs::write(&path, rules).expect("nft rules");
    ns_ok("srv", &["nft", "-f", path.to_str().expect("path")]);
}

fn srv_counter(which: &str) -> u64 {
    let out = ns_ok(
        "srv",
        &["nft", "list", "chain", "inet", "hagwtest", "input"],
    );
    out.lines()
        .find(|l| l.contains(&format!("comment \"{which}\"")))
        .and_then(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            w.iter()
                .position(|x| *x == "packets")
                .and_then(|i| w.get(i + 1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or_else(|| panic!("nft counter {which} missing: {out}"))
}

/// Brings fix0 back with its default route (lab.sh's settings).
fn fix0_up() {
    ns_ok("cli", &["ip", "link", "set", "fix0", "up"]);
    let _ = ns(
        "cli",
        &[
            "ip",
            "route",
            "replace",
            "default",
            "via",
            "192.0.2.1",
            "dev",
            "fix0",
        ],
    );
    let t = Instant::now();
    while !ns(
        "cli",
        &[
            "ping",
            "-c",
            "1",
            "-W",
            "1",
            "-I",
            "192.0.2.2",
            "198.51.100.2",
        ],
    )
    .status
    .success()
    {
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "fix0 did not come back"
        );
    }
}

/// Waits until the session toward server port `port`, moving data
/// downstream, has `n` subflows.
fn wait_subflows(port: u16, n: usize) {
    let t = Instant::now();
    loop {
        let body = ns_ok("gw", &["curl", "-sf", "http://127.0.0.1:9180/sessions"]);
        let v: serde_json::Value = serde_json::from_str(&body).expect("/sessions JSON");
        let ready = v["sessions"].as_array().into_iter().flatten().any(|s| {
            s["server"]
                .as_str()
                .is_some_and(|a| a.ends_with(&format!(":{port}")))
                && s["bytes_down"].as_u64().unwrap_or(0) > 0
                && s["subflows"].as_array().map_or(0, Vec::len) >= n
        });
        if ready {
            return;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "no session with {n} subflows: {body}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A subflow of a live session in /sessions whose client address starts
/// with `prefix`: its bytes sent toward the client.
fn subflow_bytes_out(sessions: &str, prefix: &str) -> u64 {
    let v: serde_json::Value = serde_json::from_str(sessions).expect("/sessions JSON");
    v["sessions"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["subflows"].as_array().into_iter().flatten())
        .filter(|f| f["client"].as_str().is_some_and(|c| c.starts_with(prefix)))
        .filter_map(|f| f["bytes_out"].as_u64())
        .sum()
}

#[test]
fn conversion_point_on_the_lab() {
    if !is_root() {
        println!("SKIPPED conversion_point_on_the_lab: needs root (network namespaces, DPDK); run the README test command as root");
        return;
    }
    std::env::set_current_dir(root()).expect("cd");
    lab("up");
    let mut guard = Guard(vec![]);
    srv_counters_install();
    start_hagw("configs/lab.toml", &mut guard);

    // (b) + (a) + (c): 200 MB each way from a dual-stack MPTCP client.
    let n0 = nstat("cli");
    let m0 = metrics();
    let seen = transfer(
        &["sink", "5201"],
        &[
            "send",
            "198.51.100.2",
            "5201",
            "200000000",
            "--mptcp",
            "--v6",
        ],
        200_000_000,
    );
    assert_eq!(seen, vec!["192.0.2.2"], "upload: the server saw {seen:?}");
    let m1 = metrics();
    let seen = transfer(
        &["serve", "5202", "200000000"],
        &["recv", "198.51.100.2", "5202", "--mptcp", "--v6"],
        200_000_000,
    );
    assert_eq!(seen, vec!["192.0.2.2"], "download: the server saw {seen:?}");
    let m2 = metrics();
    let n1 = nstat("cli");
    let d = |name: &str| counter(&n1, name) - counter(&n0, name);
    assert!(
        d("MPTcpExtMPCapableSYNACKRX") >= 2,
        "MP_CAPABLE answered by hagw for both connections"
    );
    assert!(
        d("MPTcpExtMPJoinSynAckRx") >= 2,
        "each connection joined its cellular subflow ({} joins)",
        d("MPTcpExtMPJoinSynAckRx")
    );
    assert!(
        d("MPTcpExtAddAddr") >= 2,
        "ADD_ADDR of 2001:db8:c::1 received"
    );
    let cell = "role=\"access-cellular\"";
    let fixed = "role=\"access-fixed\"";
    let up_cell = metric(&m1, "hagw_conv_rx_bytes_total", cell)
        - metric(&m0, "hagw_conv_rx_bytes_total", cell);
    let up_fix = metric(&m1, "hagw_conv_rx_bytes_total", fixed)
        - metric(&m0, "hagw_conv_rx_bytes_total", fixed);
    assert!(
        up_cell > 1_000_000 && up_fix > 1_000_000,
        "upload over both accesses: fixed {up_fix} B, cellular {up_cell} B"
    );
    let down_cell = metric(&m2, "hagw_conv_tx_bytes_total", cell)
        - metric(&m1, "hagw_conv_tx_bytes_total", cell);
    let down_fix = metric(&m2, "hagw_conv_tx_bytes_total", fixed)
        - metric(&m1, "hagw_conv_tx_bytes_total", fixed);
    assert!(
        down_fix > 100_000_000 && down_cell > 10_000,
        "download over both accesses (fixed-first: cellular takes the overflow): fixed {down_fix} B, cellular {down_cell} B"
    );
    assert_eq!(
        metric(&m2, "hagw_conv_sessions_created_total", "")
            - metric(&m0, "hagw_conv_sessions_created_total", ""),
        2
    );
    assert!(
        metric(&m2, "hagw_conv_joins_accepted_total", "") >= 4,
        "v4 + v6 joins"
    );
    // zero-copy splice: 400 MB crossed hagw, none of it copied (net_af_packet
    // sends chained mbufs; payload went out as indirect mbufs)
    let copied = metric(&m2, "hagw_conv_payload_bytes_copied_total", "");
    println!(
        "200 MB up: fixed {up_fix} B, cellular {up_cell} B; 200 MB down: fixed {down_fix} B, cellular {down_cell} B; payload bytes copied {copied}"
    );
    assert_eq!(copied, 0, "payload spliced as mbuf references");

    // (d) fix0 goes down mid-transfer: the download completes over cellular.
    let srv = spawn_ns("srv", &xfer(&["serve", "5203", "300000000"]));
    std::thread::sleep(Duration::from_millis(400));
    let cli = spawn_ns(
        "cli",
        &xfer(&["recv", "198.51.100.2", "5203", "--mptcp", "--v6"]),
    );
    wait_subflows(5203, 3);
    // what hagw did about the fixed access's losses, before and after
    let fixed = r#"role="access-fixed""#;
    let recovery = |m: &str| {
        [
            "hagw_conv_tcp_retransmits_total",
            "hagw_conv_tcp_timeouts_total",
            "hagw_conv_tcp_loss_probes_total",
        ]
        .iter()
        .map(|n| metric(m, n, fixed))
        .sum::<u64>()
    };
    let before = recovery(&metrics());
    ns_ok("cli", &["ip", "link", "set", "fix0", "down"]);
    let (c, _) = wait_output(cli, "download across fix0 going down");
    let (s, _) = wait_output(srv, "server");
    assert_eq!(c.trim(), s.trim(), "sha256 after losing fix0");
    assert!(c.starts_with("300000000 "), "moved {c}");
    let after = recovery(&metrics());
    assert!(
        after > before,
        "the fixed subflow's losses show in hagw_conv_tcp_*{{{fixed}}}: {before} -> {after}"
    );
    fix0_up();

    // (f) only the IPv6 cellular subflow left: fix0 down and cellular IPv4
    // dropped in ns cli after the connection is up.
    let srv = spawn_ns("srv", &xfer(&["serve", "5204", "100000000"]));
    std::thread::sleep(Duration::from_millis(400));
    let cli = spawn_ns(
        "cli",
        &xfer(&["recv", "198.51.100.2", "5204", "--mptcp", "--v6"]),
    );
    wait_subflows(5204, 3);
    let drop_v4 = "table inet hagwcel {\n chain out {\n  type filter hook output priority 0; policy accept;\n  oifname \"cel0\" meta nfproto ipv4 tcp dport 5204 drop\n }\n}\n";
    let path = std::env::temp_dir().join("hagw-conv-cel.conf");
    std::fs::write(&path, drop_v4).expect("nft");
    ns_ok("cli", &["ip", "link", "set", "fix0", "down"]);
    ns_ok("cli", &["nft", "-f", path.to_str().expect("path")]);
    let (c, _) = wait_output(cli, "download over the IPv6 subflow");
    let sessions = ns_ok("gw", &["curl", "-sf", "http://127.0.0.1:9180/sessions"]);
    let (s, _) = wait_output(srv, "server");
    assert_eq!(c.trim(), s.trim(), "sha256 over IPv6 cellular");
    let v6_bytes = subflow_bytes_out(&sessions, "[2001:db8:c::2]");
    assert!(
        v6_bytes > 10_000_000,
        "the IPv6 subflow carried the data: {v6_bytes} B; /sessions: {sessions}"
    );
    ns_ok("cli", &["nft", "delete", "table", "inet", "hagwcel"]);
    fix0_up();

    // (g) a closed port: the server's RST reaches the client promptly.
    let ms: u64 = ns_ok(
        "cli",
        &xfer(&["refused", "198.51.100.2", "5999", "--mptcp"]),
    )
    .trim()
    .parse()
    .expect("milliseconds");
    assert!(ms < 1000, "RST after {ms} ms");
    assert!(
        metric(
            &metrics(),
            "hagw_conv_sessions_refused_total",
            "reason=\"server_reset\""
        ) >= 1
    );

    // (u) a server that answers the SYN with an ICMP error: the client
    // gets the same answer promptly
    unreachable_server();

    // (v) random loss on both accesses, both ways: transfers intact
    random_loss_on_the_accesses();

    // (w) routed traffic from the cellular address leaves with the
    // subscriber's fixed address
    routed_traffic_nat(|a| a == "192.0.2.2");

    // (o) an abort in the middle of a connection reaches the other end
    aborts_propagate();

    // (i) DSS checksums asked for by the client (RFC 8684 §3.1, §3.3.1)
    cli_checksums(true);
    let c0 = nstat("cli");
    let fb0 = metric(&metrics(), "hagw_conv_sessions_fallback_total", "");
    mptcp_up_and_down(5208, 20_000_000, &[]);
    cli_checksums(false);
    let c1 = nstat("cli");
    for bad in [
        "MPTcpExtDataCsumErr",
        "MPTcpExtMPFailTx",
        "MPTcpExtMPFailRx",
        "MPTcpExtInfiniteMapRx",
        "MPTcpExtMPCapableFallbackSYNACK",
    ] {
        assert_eq!(counter(&c1, bad) - counter(&c0, bad), 0, "{bad}\n{c1}");
    }
    assert_eq!(
        metric(&metrics(), "hagw_conv_sessions_fallback_total", ""),
        fb0,
        "no conversion fell back"
    );
    assert_eq!(srv_counter("cellular"), 0, "(i): a cellular source leaked");

    // (e) with `withdraw = "never"`: the MPTCP listener sees plain TCP.
    let s0 = nstat("srv");
    transfer(
        &["sink", "5205", "--mptcp"],
        &["send", "198.51.100.2", "5205", "10000000", "--mptcp"],
        10_000_000,
    );
    let s1 = nstat("srv");
    assert_eq!(
        counter(&s1, "MPTcpExtMPCapableSYNRX") - counter(&s0, "MPTcpExtMPCapableSYNRX"),
        0,
        "withdraw = never: hagw terminates, the server sees no MP_CAPABLE"
    );

    // (h) 1,000 short connections, 50 at a time, then the table drains.
    let many = spawn_ns("srv", &xfer(&["many-server", "5300"]));
    guard.0.insert(0, many);
    std::thread::sleep(Duration::from_millis(400));
    let o = ns(
        "cli",
        &xfer(&[
            "many-client",
            "198.51.100.2",
            "5300",
            "1000",
            "50",
            "2000",
            "--mptcp",
        ]),
    );
    let out = String::from_utf8_lossy(&o.stdout);
    if out.trim() != "ok 1000" {
        let m = metrics();
        let conv: Vec<&str> = m
            .lines()
            .filter(|l| l.starts_with("hagw_conv_") || l.starts_with("hagw_drops_total"))
            .filter(|l| !l.ends_with(" 0"))
            .collect();
        panic!("1,000 short connections: {out}\nhagw: {}", conv.join("\n"));
    }
    let t = Instant::now();
    loop {
        let m = metrics();
        if metric(&m, "hagw_conv_sessions_active", "") == 0 {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "sessions left after 30 s: {}",
            metric(&m, "hagw_conv_sessions_active", "")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        srv_counter("cellular"),
        0,
        "a cellular source reached the server"
    );
    assert!(srv_counter("fixed") > 0);
    stop_hagw(&mut guard);

    // (e) with `withdraw = "if-server-capable"`: the connection is MPTCP
    // end to end, hagw only NATs it.
    let text = std::fs::read_to_string("configs/lab.toml").expect("lab.toml");
    let wd = text.replace(
        "[conversion]\n",
        "[conversion]\nwithdraw = \"if-server-capable\"\n",
    );
    assert_ne!(wd, text);
    start_hagw_with("withdraw", &wd, &mut guard);
    let s0 = nstat("srv");
    let seen = transfer(
        &["sink", "5206", "--mptcp"],
        &["send", "198.51.100.2", "5206", "20000000", "--mptcp"],
        20_000_000,
    );
    assert_eq!(seen, vec!["192.0.2.2"]);
    let s1 = nstat("srv");
    assert!(
        counter(&s1, "MPTcpExtMPCapableSYNRX") > counter(&s0, "MPTcpExtMPCapableSYNRX"),
        "withdrawn: the server's kernel took the MPTCP connection"
    );
    let m = metrics();
    assert!(metric(&m, "hagw_conv_sessions_withdrawn_total", "") >= 1);
    // a plain TCP server behind the same policy is still converted
    transfer(
        &["sink", "5207"],
        &["send", "198.51.100.2", "5207", "10000000", "--mptcp"],
        10_000_000,
    );
    assert_eq!(
        srv_counter("cellular"),
        0,
        "a cellular source reached the server"
    );
    stop_hagw(&mut guard);

    // (c) with lab-pool.toml the server sees pool addresses only.
    let fixed_before = srv_counter("fixed");
    start_hagw("configs/lab-pool.toml", &mut guard);
    let seen = transfer(
        &["sink", "5208"],
        &[
            "send",
            "198.51.100.2",
            "5208",
            "20000000",
            "--mptcp",
            "--v6",
        ],
        20_000_000,
    );
    assert!(
        seen.iter().all(|a| a.starts_with("203.0.113.")),
        "pool NAT: the server saw {seen:?}"
    );
    assert!(srv_counter("pool") > 0);
    assert_eq!(
        srv_counter("fixed"),
        fixed_before,
        "the fixed address leaked past the pool NAT"
    );
    // (w) with the pool: routed traffic too
    routed_traffic_nat(|a| a.starts_with("203.0.113."));
    assert_eq!(srv_counter("cellular"), 0);
    let m = metrics();
    assert!(m.contains("hagw_conv_nat_ports_in_use{pool=\"203.0.113.0/28\"}"));
    stop_hagw(&mut guard);

    // (j) a spoofed MP_CAPABLE SYN flood spends the half-open budget (16
    // with max_sessions = 64); the real client then gets a SYN cookie, and
    // its connection (cellular subflow included) works.
    let cookie = text.replace("[conversion]\n", "[conversion]\nmax_sessions = 64\n");
    start_hagw_with("cookie", &cookie, &mut guard);
    let many = spawn_ns("srv", &xfer(&["many-server", "5210"]));
    guard.0.insert(0, many);
    std::thread::sleep(Duration::from_millis(400));
    ns_ok("cli", &xfer(&["synflood", "198.51.100.2", "5210", "40"]));
    wait_until(10, "no cookies sent", || {
        metric(&metrics(), "hagw_conv_syn_cookies_sent_total", "") >= 20
    });
    let c0 = nstat("cli");
    transfer(
        &["sink", "5211"],
        &["send", "198.51.100.2", "5211", "5000000", "--mptcp"],
        5_000_000,
    );
    let c1 = nstat("cli");
    let m = metrics();
    assert_eq!(
        metric(&m, "hagw_conv_syn_cookies_accepted_total", ""),
        1,
        "{m}"
    );
    assert_eq!(metric(&m, "hagw_conv_syn_cookies_invalid_total", ""), 0);
    assert!(
        counter(&c1, "MPTcpExtMPCapableSYNACKRX") > counter(&c0, "MPTcpExtMPCapableSYNACKRX"),
        "the cookie SYN/ACK carried MP_CAPABLE"
    );
    assert!(
        counter(&c1, "MPTcpExtMPJoinSynAckRx") > counter(&c0, "MPTcpExtMPJoinSynAckRx"),
        "the cellular subflow joined the cookie's connection"
    );
    assert_eq!(srv_counter("cellular"), 0);
    stop_hagw(&mut guard);

    // (k) two workers (DESIGN.md §4): every port has two queues (af_packet
    // fanout), so a connection's subflows and the server's replies land on
    // either worker; MP_JOINs (IPv4 and IPv6) find their session's worker
    // by its token, replies by the NAT port, and the data stays intact.
    let two = text
        .replace("lcores = [1]", "lcores = [1, 2]\ncpus = [0, 1]")
        .replace("framecnt=4096\"", "framecnt=4096,qpairs=2\"");
    assert!(two.contains("qpairs=2") && two.contains("cpus"), "{two}");
    start_hagw_with("two-workers", &two, &mut guard);
    for k in 0..4u16 {
        let port = (5220 + k).to_string();
        let seen = transfer(
            &["sink", &port],
            &["send", "198.51.100.2", &port, "10000000", "--mptcp", "--v6"],
            10_000_000,
        );
        assert_eq!(seen, vec!["192.0.2.2"]);
    }
    transfer(
        &["serve", "5224", "20000000"],
        &["recv", "198.51.100.2", "5224", "--mptcp"],
        20_000_000,
    );
    let m = metrics();
    let created = metric(&m, "hagw_conv_sessions_created_total", "");
    assert_eq!(created, 5, "{m}");
    assert!(
        metric(&m, "hagw_conv_joins_accepted_total", "") >= created,
        "every connection's cellular subflow joined its session's worker"
    );
    assert_eq!(
        metric(
            &m,
            "hagw_conv_joins_refused_total",
            "reason=\"unknown_token\""
        ),
        0
    );
    assert!(metric(&m, "hagw_conv_handoffs_total", "") > 0, "{m}");
    assert_eq!(metric(&m, "hagw_conv_payload_bytes_copied_total", ""), 0);
    // routed traffic's NAT: a reply reaches the worker whose binding it is
    routed_traffic_nat(|a| a == "192.0.2.2");
    assert_eq!(srv_counter("cellular"), 0);
    stop_hagw(&mut guard);

    // (l) a small mbuf pool (1024): payload held by reference is capped at
    // half of it, beyond that it is copied (counted), so held payload never
    // drains the pool the ports receive into and transfers complete.
    let small = format!("{text}\n[limits]\nmbufs = 1024\n");
    start_hagw_with("small-pool", &small, &mut guard);
    mptcp_up_and_down(5230, 30_000_000, &["--pause"]);
    let m = metrics();
    assert!(
        metric(&m, "hagw_conv_payload_bytes_copied_total", "") > 0,
        "a paused reader fills hagw's buffers past the cap on held mbufs: {m}"
    );
    stop_hagw(&mut guard);

    // (n) each downstream scheduler against the Linux client: 40 MB down
    // intact, split over the accesses as the scheduler says (bytes hagw
    // sent per access role, headers included)
    downstream_schedulers(&text, &mut guard);

    // (p) the session caps refuse with a prompt RST, counted by reason
    session_caps_refuse(&text, &mut guard);

    // (q) an MP_JOIN flood with random tokens is refused and counted, and
    // an idle connection is reset on both ends after the idle timeout
    join_flood_and_idle_timeout(&text, &mut guard);

    // (r) path MTU discovery on hagw's side toward a server behind a
    // narrower link
    path_mtu_toward_the_server(&text, &mut guard);

    // (s) ICMPv6 Packet Too Big / ICMP fragmentation needed about the
    // segments hagw sends on the client's subflows
    packet_too_big_on_the_subflows(&text, &mut guard);

    // (t) ICMP errors about a withdrawn connection's packets reach the
    // end that sent them, NATed
    icmp_errors_of_withdrawn_connections(&text, &mut guard);

    // (m) the internet port on net_tap, a PMD that verifies and computes
    // TCP checksums (RTE_ETH_RX/TX_OFFLOAD_TCP_CKSUM, in software in the
    // PMD): hagw turns both on, takes the server's segments on its word and
    // leaves the checksums of what it sends to the PMD, which the server's
    // kernel verifies
    tcp_checksum_offload_on_a_tap_port(&text, &mut guard);

    // (x) fragmented datagrams through the NAT of routed traffic
    fragments_through_the_nat(&mut guard);
    let _ = ns("srv", &["nft", "delete", "table", "inet", "hagwtest"]);
}

/// (v): random loss on both accesses, both ways (nftables `numgen random`
/// in ns cli, LAB.md: no netem here), 5% of the packets each way on fix0
/// and cel0, the loss hagw exists for. 50 MB up and 50 MB down through
/// hagw stay intact and finish within 60 s each, and hagw's recovery
/// toward the accesses shows in its metrics (retransmits, timeouts, loss
/// probes by role) for both.
fn random_loss_on_the_accesses() {
    let recovery = |role: &str| {
        let m = metrics();
        [
            "hagw_conv_tcp_retransmits_total",
            "hagw_conv_tcp_timeouts_total",
            "hagw_conv_tcp_loss_probes_total",
        ]
        .iter()
        .map(|n| metric(&m, n, &format!("role=\"{role}\"")))
        .sum::<u64>()
    };
    let before = (recovery("access-fixed"), recovery("access-cellular"));
    ns_ok(
        "cli",
        &[
            "nft",
            "add table inet hagwloss; \
             add chain inet hagwloss out { type filter hook output priority 0; }; \
             add rule inet hagwloss out oifname { \"fix0\", \"cel0\" } numgen random mod 1000 < 50 drop; \
             add chain inet hagwloss in { type filter hook input priority 0; }; \
             add rule inet hagwloss in iifname { \"fix0\", \"cel0\" } numgen random mod 1000 < 50 drop",
        ],
    );
    for (server, client) in [
        (
            vec!["sink", "5350"],
            vec!["send", "198.51.100.2", "5350", "50000000", "--mptcp"],
        ),
        (
            vec!["serve", "5351", "50000000"],
            vec!["recv", "198.51.100.2", "5351", "--mptcp"],
        ),
    ] {
        let srv = spawn_ns("srv", &xfer(&server));
        std::thread::sleep(Duration::from_millis(400));
        let cli = cli_within_60s(&client);
        let (out, _) = wait_output(srv, "server under loss");
        assert!(cli.starts_with("50000000 "), "{}: moved {cli}", client[0]);
        assert_eq!(cli.trim(), out.trim(), "{}: sha256 under loss", client[0]);
    }
    ns_ok("cli", &["nft", "delete table inet hagwloss"]);
    let after = (recovery("access-fixed"), recovery("access-cellular"));
    assert!(
        after.0 > before.0 && after.1 > before.1,
        "recovery toward fixed and cellular: {before:?} -> {after:?}"
    );
}

/// (u): issue 5 point 1, "ICMP unreachable → the same answer to the
/// client". ns srv answers SYNs to port 5341 with ICMP host unreachable
/// (nftables `reject`). hagw forwarded the client's SYN first; it takes the
/// error (sent to the NAT address), ends the session and sends the client
/// a host unreachable quoting the client's own SYN, so the Linux client's
/// connect fails at once with EHOSTUNREACH (a RST would have said
/// ECONNREFUSED; nothing, a retry for two minutes).
fn unreachable_server() {
    let refused = || {
        metric(
            &metrics(),
            "hagw_conv_sessions_refused_total",
            "reason=\"server_unreachable\"",
        )
    };
    let before = refused();
    ns_ok(
        "srv",
        &[
            "nft",
            "add table inet hagwrej; add chain inet hagwrej in { type filter hook input priority -10; }; add rule inet hagwrej in tcp dport 5341 reject with icmp type host-unreachable",
        ],
    );
    let out = ns_ok(
        "cli",
        &xfer(&["unreachable", "198.51.100.2", "5341", "--mptcp"]),
    );
    ns_ok("srv", &["nft", "delete table inet hagwrej"]);
    let mut it = out.split_whitespace();
    let (err, ms) = (it.next(), it.next().and_then(|m| m.parse::<u64>().ok()));
    assert_eq!(err, Some("EHOSTUNREACH"), "the client saw {out}");
    assert!(ms.is_some_and(|ms| ms < 1000), "after {out}");
    assert!(refused() > before, "refused{{reason=server_unreachable}}");
}

/// (w): routed traffic (DESIGN.md §1: everything not converted is routed,
/// with NAT when the policy says so). From the client's cellular address
/// 100.64.0.2: 200 UDP datagrams echoed by the server, a plain TCP
/// transfer (no MPTCP: not converted) and pings all reach the server from
/// an address `expect` allows (the subscriber's fixed address, or the
/// pool's) and their
/// answers come back; a datagram to a closed port brings the server's
/// ICMP port unreachable back to the client (RFC 5508 §4.2: the error's
/// quote translated too). hagw's NAT metrics count each protocol.
fn routed_traffic_nat(expect: fn(&str) -> bool) {
    let created = |m: &str, p: &str| {
        metric(
            m,
            "hagw_nat_bindings_created_total",
            &format!("proto=\"{p}\""),
        )
    };
    let m0 = metrics();
    let echo = spawn_ns("srv", &xfer(&["udp-echo", "5350"]));
    std::thread::sleep(Duration::from_millis(300));
    let from = ["--from", "100.64.0.2"];
    let out = ns_ok(
        "cli",
        &xfer(
            &[
                &["udp-client", "198.51.100.2", "5350", "200", "500"][..],
                &from,
            ]
            .concat(),
        ),
    );
    let (_, err) = wait_output(echo, "udp-echo");
    assert!(out.starts_with("sent 200 echoed 200 "), "udp-client: {out}");
    let seen = peers(&err);
    assert!(
        !seen.is_empty() && seen.iter().all(|a| expect(a)),
        "UDP from the cellular address: the server saw {seen:?}"
    );
    let seen = transfer(
        &["sink", "5351"],
        &[&["send", "198.51.100.2", "5351", "2000000"][..], &from].concat(),
        2_000_000,
    );
    assert!(
        seen.iter().all(|a| expect(a)),
        "plain TCP from the cellular address: the server saw {seen:?}"
    );
    cellular_ping();
    let out = ns_ok(
        "cli",
        &xfer(&[&["udp-refused", "198.51.100.2", "5352"][..], &from].concat()),
    );
    assert!(
        out.trim().parse::<u64>().is_ok_and(|ms| ms < 1000),
        "the port unreachable reached the client: {out}"
    );
    let m = metrics();
    assert!(created(&m, "udp") >= created(&m0, "udp") + 2, "{m}");
    assert!(created(&m, "tcp") > created(&m0, "tcp"));
    assert!(created(&m, "icmp") > created(&m0, "icmp"));
    for dir in ["out", "in"] {
        let l = format!("direction=\"{dir}\"");
        assert!(
            metric(&m, "hagw_nat_packets_total", &l)
                >= metric(&m0, "hagw_nat_packets_total", &l) + 200,
            "NATed {dir}: {m}"
        );
    }
}

/// (x): fragmented datagrams through the NAT of routed traffic (RFC 4787
/// REQ-14), on `net_af_xdp` ports: `net_af_packet` asks the kernel to
/// reassemble fragments before hagw sees them (PACKET_FANOUT_FLAG_DEFRAG)
/// into frames its 2 KB ring slots cut short. 50 datagrams of 3,000 bytes
/// from the cellular address, three fragments each, one at a time (this
/// lab's AF_XDP transmit loses a frame now and then: a lost datagram is
/// sent again), are echoed back in fragments: all 50 return, the server
/// saw only the fixed address, and hagw dropped no fragment.
fn fragments_through_the_nat(guard: &mut Guard) {
    std::fs::write(
        "/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages",
        "512",
    )
    .expect("2 MB hugepages for net_af_xdp (as root)");
    start_hagw("configs/lab-xdp.toml", guard);
    let echo = spawn_ns("srv", &xfer(&["udp-echo", "5354"]));
    std::thread::sleep(Duration::from_millis(300));
    let out = ns_ok(
        "cli",
        &xfer(&[
            "udp-roundtrips",
            "198.51.100.2",
            "5354",
            "50",
            "3000",
            "--from",
            "100.64.0.2",
        ]),
    );
    let (_, err) = wait_output(echo, "udp-echo");
    assert!(out.starts_with("sent 50 echoed 50 "), "fragmented: {out}");
    assert_eq!(peers(&err), vec!["192.0.2.2"]);
    let m = metrics();
    assert!(
        metric(&m, "hagw_nat_packets_total", "direction=\"out\"") >= 150
            && metric(&m, "hagw_nat_packets_total", "direction=\"in\"") >= 150,
        "every fragment translated: {m}"
    );
    assert_eq!(
        metric(&m, "hagw_nat_dropped_total", "reason=\"fragment\""),
        0
    );
    stop_hagw(guard);
}

/// (o): RST/MP_FASTCLOSE propagate both ways (issue 5, point 2). The
/// server aborts after 2 MB (SO_LINGER 0: a RST): the Linux client reads
/// the 2 MB, then its connection is reset, by an MP_FASTCLOSE (RFC 8684
/// §3.5, its kernel counts it). The client aborts after 2 MB (its kernel
/// sends MP_FASTCLOSE): the server reads the 2 MB, then is reset. The
/// session table is empty afterwards (both sessions were gone at once: no
/// idle timeout involved).
fn aborts_propagate() {
    const N: &str = "2000000";
    let active = || metric(&metrics(), "hagw_conv_sessions_active", "");
    // the steps before end their sessions in TIME-WAIT (2 s) or by timeouts
    wait_until(30, "sessions left by the steps before", || active() == 0);
    let c0 = nstat("cli");
    let srv = spawn_ns("srv", &xfer(&["abort-server", "5250", N]));
    std::thread::sleep(Duration::from_millis(400));
    let t = Instant::now();
    let got = ns_ok(
        "cli",
        &xfer(&["until-reset", "198.51.100.2", "5250", "--mptcp"]),
    );
    let took = t.elapsed();
    let (out, _) = wait_output(srv, "aborting server");
    assert_eq!(out.trim(), "aborted");
    assert_eq!(
        got.trim(),
        format!("reset {N}"),
        "client after the server's abort"
    );
    // the server aborts 0.5 s after its last byte
    assert!(took < Duration::from_secs(3), "reset after {took:?}");
    let c1 = nstat("cli");
    assert!(
        counter(&c1, "MPTcpExtMPFastcloseRx") > counter(&c0, "MPTcpExtMPFastcloseRx"),
        "the client's kernel got an MP_FASTCLOSE"
    );
    let srv = spawn_ns("srv", &xfer(&["sink-until-reset", "5251"]));
    std::thread::sleep(Duration::from_millis(400));
    let out = ns_ok(
        "cli",
        &xfer(&["abort-client", "198.51.100.2", "5251", N, "--mptcp"]),
    );
    assert_eq!(out.trim(), "aborted");
    let (got, _) = wait_output(srv, "server");
    assert_eq!(
        got.trim(),
        format!("reset {N}"),
        "server after the client's abort"
    );
    let c2 = nstat("cli");
    assert!(
        counter(&c2, "MPTcpExtMPFastcloseTx") > counter(&c1, "MPTcpExtMPFastcloseTx"),
        "the client's kernel aborted with an MP_FASTCLOSE"
    );
    wait_until(3, "sessions left after the aborts", || active() == 0);
}

/// (p): with `max_sessions = 2`, then `max_sessions_per_subscriber = 2`,
/// two connections held open fill the cap and a third from the Linux
/// client is refused at once (a RST: ECONNREFUSED within a second),
/// counted as refused{reason="table_full"} or {reason="subscriber_limit"};
/// once the holders close, a connection goes through again.
fn session_caps_refuse(lab_toml: &str, guard: &mut Guard) {
    for (k, (key, reason)) in [
        ("max_sessions", "table_full"),
        ("max_sessions_per_subscriber", "subscriber_limit"),
    ]
    .into_iter()
    .enumerate()
    {
        let cfg = lab_toml.replace("[conversion]\n", &format!("[conversion]\n{key} = 2\n"));
        assert_ne!(cfg, lab_toml);
        start_hagw_with(key, &cfg, guard);
        let base = 5270 + 10 * k as u16;
        let mut held = Vec::new();
        for i in 0..2u16 {
            let port = (base + i).to_string();
            held.push(spawn_ns("srv", &xfer(&["sink-until-reset", &port])));
            std::thread::sleep(Duration::from_millis(300));
            held.push(spawn_ns(
                "cli",
                &xfer(&["until-reset", "198.51.100.2", &port, "--mptcp"]),
            ));
        }
        wait_until(5, &format!("{key}: holders not connected"), || {
            metric(&metrics(), "hagw_conv_sessions_active", "") >= 2
        });
        let port = (base + 2).to_string();
        let out = ns_ok("cli", &xfer(&["refused", "198.51.100.2", &port, "--mptcp"]));
        let ms: u64 = out
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{key}: {out}"));
        assert!(ms < 1000, "{key}: RST after {ms} ms");
        let refused = |r: &str| {
            metric(
                &metrics(),
                "hagw_conv_sessions_refused_total",
                &format!("reason=\"{r}\""),
            )
        };
        assert!(refused(reason) >= 1, "{key}: refused{{reason={reason}}}");
        for mut c in held {
            let _ = c.kill();
            let _ = c.wait();
        }
        // the killed clients' sockets close: the sessions end, room again
        wait_until(10, &format!("{key}: holders' sessions left"), || {
            metric(&metrics(), "hagw_conv_sessions_active", "") == 0
        });
        let port = (base + 3).to_string();
        transfer(
            &["sink", &port],
            &["send", "198.51.100.2", &port, "1000000", "--mptcp"],
            1_000_000,
        );
        stop_hagw(guard);
    }
}

/// (q): lab.toml with `idle_timeout_s = 2`.
/// - 200 spoofed MP_JOIN SYNs naming random tokens: each is answered with
///   a RST and counted as joins_refused{reason="unknown_token"} (at least
///   half must reach hagw through the lab's veths); the real client's
///   connection then works, its cellular subflow joined.
/// - A connection left idle: both ends' reads end in a reset once the
///   timeout passed (the sweep runs every second), counted as timed out.
fn join_flood_and_idle_timeout(lab_toml: &str, guard: &mut Guard) {
    let cfg = lab_toml.replace("[conversion]\n", "[conversion]\nidle_timeout_s = 2\n");
    assert_ne!(cfg, lab_toml);
    start_hagw_with("idle", &cfg, guard);
    let unknown = || {
        metric(
            &metrics(),
            "hagw_conv_joins_refused_total",
            "reason=\"unknown_token\"",
        )
    };
    let j0 = unknown();
    ns_ok("cli", &xfer(&["joinflood", "198.51.100.2", "5290", "200"]));
    wait_until(10, "MP_JOIN flood: fewer than 100 refused", || {
        unknown() >= j0 + 100
    });
    let c0 = nstat("cli");
    transfer(
        &["sink", "5291"],
        &["send", "198.51.100.2", "5291", "5000000", "--mptcp"],
        5_000_000,
    );
    let c1 = nstat("cli");
    assert!(
        counter(&c1, "MPTcpExtMPJoinSynAckRx") > counter(&c0, "MPTcpExtMPJoinSynAckRx"),
        "the real client's subflow joined during the flood's aftermath"
    );
    let timed_out = || metric(&metrics(), "hagw_conv_sessions_timed_out_total", "");
    let before = timed_out();
    let srv = spawn_ns("srv", &xfer(&["sink-until-reset", "5292"]));
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    let cli = spawn_ns(
        "cli",
        &xfer(&["until-reset", "198.51.100.2", "5292", "--mptcp"]),
    );
    let (c, _) = wait_output(cli, "idle client");
    let (s, _) = wait_output(srv, "idle server");
    assert_eq!(c.trim(), "reset 0", "the idle client");
    assert_eq!(s.trim(), "reset 0", "the idle server");
    assert!(
        t.elapsed() < Duration::from_secs(8),
        "reset after {:?}",
        t.elapsed()
    );
    assert!(timed_out() > before);
    stop_hagw(guard);
}

/// (r): a server in ns far behind ns srv acting as a router, whose link to
/// far is at MTU 1400 while far's own end is at 1500 (so far offers an MSS
/// of 1460 and only the router knows better). hagw's 1500-byte segments
/// toward the server get "fragmentation needed" from the router (to the
/// NAT address, 192.0.2.2, routed back through hagw); hagw lowers that
/// connection's MSS (RFC 1191) and resends, and a 20 MB upload arrives
/// intact. Without it the upload stalls for ever (a PMTU black hole).
fn path_mtu_toward_the_server(lab_toml: &str, guard: &mut Guard) {
    let cfg = far_up(lab_toml);
    start_hagw_with("far", &cfg, guard);
    let lowered = || metric(&metrics(), "hagw_conv_path_mtu_lowered_total", "");
    let before = lowered();
    let srv = spawn_ns("far", &xfer(&["sink", "5310"]));
    std::thread::sleep(Duration::from_millis(400));
    let cli = ns_ok(
        "cli",
        &xfer(&["send", "198.18.0.2", "5310", "20000000", "--mptcp"]),
    );
    let (out, err) = wait_output(srv, "server behind the narrow link");
    assert!(cli.starts_with("20000000 "), "client moved {cli}");
    assert_eq!(cli.trim(), out.trim(), "sha256 differs between the ends");
    assert_eq!(peers(&err), vec!["192.0.2.2"]);
    assert!(lowered() > before, "no MSS lowered");
    stop_hagw(guard);
    far_down();
}

/// ns far behind ns srv, which routes: its link to far at MTU 1400, far's
/// own end at 1500. Returns `lab_toml` with a route to far.
fn far_up(lab_toml: &str) -> String {
    let _ = Command::new("ip").args(["netns", "del", "far"]).output();
    sh("ip netns add far \
        && ip link add srvfar netns srv type veth peer name far0 netns far \
        && ip -n srv addr add 198.18.0.1/24 dev srvfar \
        && ip -n srv link set srvfar mtu 1400 up \
        && ip -n far addr add 198.18.0.2/24 dev far0 \
        && ip -n far link set far0 up && ip -n far link set lo up \
        && ip -n far route add default via 198.18.0.1 \
        && ip netns exec srv sysctl -qw net.ipv4.ip_forward=1");
    format!("{lab_toml}\n[[route]]\nprefix = \"198.18.0.0/24\"\nvia = \"198.51.100.2\"\n")
}

fn far_down() {
    sh("ip netns del far && ip netns exec srv sysctl -qw net.ipv4.ip_forward=0");
}

/// An nftables table `table` ("FAMILY NAME") in ns cli dropping what
/// `what` matches before cli's stack sees it: a link beyond hagw narrower
/// than hagw's port. Gone with `nft delete table`.
fn cli_drops(table: &str, what: &str) {
    ns_ok("cli", &["nft", &format!("add table {table}")]);
    ns_ok(
        "cli",
        &[
            "nft",
            &format!("add chain {table} pre {{ type filter hook prerouting priority -300; }}"),
        ],
    );
    ns_ok(
        "cli",
        &["nft", &format!("add rule {table} pre {what} drop")],
    );
}

/// A client command in ns cli that must succeed within 60 s (a path MTU
/// black hole stalls a transfer for ever).
fn cli_within_60s(args: &[&str]) -> String {
    let mut cmd = vec!["timeout", "60"];
    cmd.extend(xfer(args));
    ns_ok("cli", &cmd)
}

/// (t): ICMP errors about the packets of a withdrawn connection, which
/// hagw only translates, are NATed toward the end that sent the quoted
/// packet (RFC 5508 §4.2), whose own stack then does path MTU discovery:
/// - up: an MPTCP upload to an MPTCP server in far, behind (r)'s 1400-byte
///   link. The router's "fragmentation needed" about the client's
///   1500-byte packets goes to the NAT address and port the server sees;
///   hagw turns it into one to the client's own address and port, the
///   client's kernel takes it and the 20 MB arrive intact;
/// - down: an MPTCP server in srv sends 100 MB; beyond hagw the cellular
///   IPv4 path narrows to 1200 bytes (nft in cli, as in (s)), and the
///   client answers the first segment over it with "fragmentation needed"
///   to the server, through the fixed access. hagw sends it on from the
///   NAT address, quoting the NAT address and port, the server's kernel
///   takes it and sends that subflow nothing over 1200 bytes from half a
///   second after it.
///
/// Before, both errors were routed untranslated: neither end found its
/// connection in the quote, and the upload stalled.
fn icmp_errors_of_withdrawn_connections(lab_toml: &str, guard: &mut Guard) {
    let cfg = far_up(lab_toml).replace(
        "[conversion]\n",
        "[conversion]\nwithdraw = \"if-server-capable\"\n",
    );
    start_hagw_with("withdrawn-icmp", &cfg, guard);
    let count = |name: &str| metric(&metrics(), name, "");
    let translated = || count("hagw_conv_icmp_translated_total");
    let withdrawn = || count("hagw_conv_sessions_withdrawn_total");
    let (t0, w0) = (translated(), withdrawn());
    ns_ok("cli", &["ip", "route", "flush", "cache"]);
    let srv = spawn_ns("far", &xfer(&["sink", "5330", "--mptcp"]));
    std::thread::sleep(Duration::from_millis(400));
    let cli = cli_within_60s(&["send", "198.18.0.2", "5330", "20000000", "--mptcp"]);
    let (out, err) = wait_output(srv, "MPTCP server behind the narrow link");
    assert!(cli.starts_with("20000000 "), "client moved {cli}");
    assert_eq!(
        cli.trim(),
        out.trim(),
        "up: sha256 differs between the ends"
    );
    assert_eq!(peers(&err), vec!["192.0.2.2"]);
    assert!(withdrawn() > w0, "up: the connection was not withdrawn");
    // the client's kernel took the errors about both subflows: a path MTU
    // toward the server on each access (the fixed one's quote would match
    // untranslated too: NAT kept its port; the cellular one's would not)
    for from in ["192.0.2.2", "100.64.0.2"] {
        let r = ns_ok("cli", &["ip", "route", "get", "198.18.0.2", "from", from]);
        assert!(r.contains("mtu 1400"), "up: no path MTU from {from}: {r}");
    }
    let t1 = translated();
    assert!(t1 > t0, "up: no ICMP error translated");
    far_down();

    let table = "ip hagwwd";
    cli_drops(
        table,
        "iifname cel0 ip saddr 198.51.100.2 meta length > 1200",
    );
    let w1 = withdrawn();
    ns_ok("srv", &["ip", "route", "flush", "cache"]);
    let srv = spawn_ns("srv", &xfer(&["serve", "5331", "100000000", "--mptcp"]));
    std::thread::sleep(Duration::from_millis(400));
    let cli = cli_within_60s(&[
        "ptb",
        "198.51.100.2",
        "5331",
        "198.51.100.2",
        "cel0",
        "1200",
        "--mptcp",
    ]);
    let (out, _) = wait_output(srv, "MPTCP server");
    let (sum, tail) = cli.trim().split_at(cli.trim().find(" ptb").unwrap_or(0));
    assert_eq!(sum, out.trim(), "down: sha256 differs between the ends");
    assert_eq!(tail.trim(), "ptb 1 over 0", "down: {cli}");
    // the server's kernel took it: a path MTU toward the NAT address
    let r = ns_ok("srv", &["ip", "route", "get", "192.0.2.2"]);
    assert!(
        r.contains("mtu 1200"),
        "down: no path MTU toward 192.0.2.2: {r}"
    );
    assert!(withdrawn() > w1, "down: the connection was not withdrawn");
    assert!(translated() > t1, "down: no ICMP error translated");
    ns_ok("cli", &["nft", &format!("delete table {table}")]);
    stop_hagw(guard);
}

/// (s): the cellular IPv6 path narrows to 1280 bytes beyond hagw's port:
/// ns cli drops IPv6 packets from 2001:db8:c::1 over 1280 bytes (nftables,
/// before its stack sees them) and answers the first with a Packet Too Big
/// (RFC 4443 §3.2), as a router on a 1280-byte link would. With the
/// `redundant` scheduler the IPv6 subflow carries copies of a 100 MB
/// download: hagw takes the error (RFC 8201), sends that subflow nothing
/// over 1280 bytes from half a second after it, and the download is
/// intact. (Before, hagw ignored it and resent the big segments for ever.)
/// Then the same on the IPv4 cellular subflow with "fragmentation needed"
/// naming 1200 (RFC 1191), the ICMP reaching hagw through the fixed access.
fn packet_too_big_on_the_subflows(lab_toml: &str, guard: &mut Guard) {
    let cfg = lab_toml.replace(
        "[conversion]\n",
        "[conversion]\nscheduler = \"redundant\"\n",
    );
    start_hagw_with("ptb", &cfg, guard);
    let lowered = || metric(&metrics(), "hagw_conv_path_mtu_lowered_total", "");
    // (nft family, what is dropped, server port, hagw's subflow address,
    // the path's MTU, client flags)
    let cases = [
        (
            "ip6",
            "ip6 saddr 2001:db8:c::1 meta length > 1280",
            "5320",
            "2001:db8:c::1",
            "1280",
            "--v6",
        ),
        (
            "ip",
            "iifname cel0 ip saddr 198.51.100.2 meta length > 1200",
            "5321",
            "198.51.100.2",
            "1200",
            "--mptcp",
        ),
    ];
    for (family, drop, port, gw, mtu, flag) in cases {
        let table = format!("{family} hagwptb");
        cli_drops(&table, drop);
        let before = lowered();
        let srv = spawn_ns("srv", &xfer(&["serve", port, "100000000"]));
        std::thread::sleep(Duration::from_millis(400));
        let cli = ns_ok(
            "cli",
            &xfer(&["ptb", "198.51.100.2", port, gw, "cel0", mtu, flag]),
        );
        let (out, _) = wait_output(srv, "server");
        let (sum, tail) = cli.trim().split_at(cli.trim().find(" ptb").unwrap_or(0));
        assert_eq!(sum, out.trim(), "{family}: sha256 differs between the ends");
        assert_eq!(tail.trim(), "ptb 1 over 0", "{family}: {cli}");
        assert!(lowered() > before, "{family}: the ICMP error was not taken");
        ns_ok("cli", &["nft", &format!("delete table {table}")]);
    }
    stop_hagw(guard);
}

/// (n): lab.toml with each downstream scheduler but the default
/// (fixed-first, steps a-b): a 40 MB download by the Linux MPTCP client,
/// sha256-checked, and the bytes hagw sent on each access.
/// - `redundant`: both accesses carry (nearly) all of it, and the client's
///   kernel counts the copies it dropped (MPTcpExtDuplicateData); the
///   cellular port runs at MTU 1280 there, and the client is dual-stack,
///   so the copies arriving over IPv4 and IPv6 prove hagw sizes each
///   subflow's segments to its access and address family;
/// - `active-standby`: the fixed access alone while it is up;
/// - `weighted` 3:1: about three quarters on fixed;
/// - `min-rtt` (equal paths here): intact, the accesses together carry it.
fn downstream_schedulers(lab_toml: &str, guard: &mut Guard) {
    const N: u64 = 40_000_000;
    let sent =
        |m: &str, role: &str| metric(m, "hagw_conv_tx_bytes_total", &format!("role=\"{role}\""));
    for (k, (sched, extra)) in [
        ("redundant", ""),
        ("active-standby", ""),
        ("weighted", "weights = [3, 1]\n"),
        ("min-rtt", ""),
    ]
    .into_iter()
    .enumerate()
    {
        let mut cfg = lab_toml.replace(
            "[conversion]\n",
            &format!("[conversion]\nscheduler = \"{sched}\"\n{extra}"),
        );
        if sched == "redundant" {
            // the cellular access at the IPv6 minimum MTU (the PMD sets the
            // veth's too): the copies hagw sends there must fit 1280 while
            // the client's SYN offered an MSS for 1500
            cfg = cfg.replace("name = \"cel1\"\n", "name = \"cel1\"\nmtu = 1280\n");
            assert!(cfg.contains("mtu = 1280"));
        }
        assert_ne!(cfg, lab_toml);
        start_hagw_with(sched, &cfg, guard);
        let (m0, n0) = (metrics(), nstat("cli"));
        let port = (5240 + k).to_string();
        // redundant: dual-stack, so the IPv6 cellular subflow joins too
        let v6 = if sched == "redundant" {
            "--v6"
        } else {
            "--mptcp"
        };
        let seen = transfer(
            &["serve", &port, &N.to_string()],
            &["recv", "198.51.100.2", &port, "--mptcp", v6],
            N,
        );
        assert_eq!(seen, vec!["192.0.2.2"]);
        let (m1, n1) = (metrics(), nstat("cli"));
        let fixed = sent(&m1, "access-fixed") - sent(&m0, "access-fixed");
        let cell = sent(&m1, "access-cellular") - sent(&m0, "access-cellular");
        let dups = counter(&n1, "MPTcpExtDuplicateData") - counter(&n0, "MPTcpExtDuplicateData");
        let what =
            format!("{sched}: {fixed} bytes on fixed, {cell} on cellular, {dups} duplicates");
        assert!(fixed + cell >= N, "{what}");
        match sched {
            "redundant" => {
                assert!(fixed >= N * 9 / 10 && cell >= N * 3 / 10, "{what}");
                assert!(dups > 0, "{what}");
                // the IPv6 subflow's copies fit 1280 too (60 bytes of
                // headers, not 40: its MSS is its own)
                let v6 = counter(&n1, "Ip6InOctets") - counter(&n0, "Ip6InOctets");
                assert!(v6 >= N / 10, "{what}; {v6} IPv6 bytes reached the client");
            }
            "active-standby" => assert!(fixed >= N && cell < N / 100, "{what}"),
            "weighted" => {
                let share = fixed as f64 / (fixed + cell) as f64;
                assert!((0.6..0.9).contains(&share), "{what}");
            }
            _ => {}
        }
        stop_hagw(guard);
    }
}

/// (m): srv1 replaced by `net_tap0,iface=tapsrv`, the tap moved into ns
/// srv in place of srv0; 20 MB each way intact, the log saying the port
/// verifies and computes TCP checksums, no segment dropped as malformed.
/// srv0 is restored afterwards.
fn tcp_checksum_offload_on_a_tap_port(lab_toml: &str, guard: &mut Guard) {
    let text = lab_toml.replace(
        "device = \"net_af_packet2,iface=srv1,framecnt=4096\"",
        "device = \"net_tap0,iface=tapsrv\"",
    );
    assert!(text.contains("net_tap0"), "lab.toml's srv1 device changed");
    let path = std::env::temp_dir().join("hagw-lab-tap.toml");
    std::fs::write(&path, text).expect("config");
    common::start_hagw(path.to_str().expect("path"), LOG, guard);
    let log = std::fs::read_to_string(std::env::temp_dir().join(LOG)).expect("log");
    assert!(
        log.lines().any(|l| l.contains("port=srv1")
            && l.contains("rx_tcp_checksum=true")
            && l.contains("tx_tcp_checksum=true")),
        "net_tap offers TCP checksum offload both ways and hagw turns it on:\n{log}"
    );
    ns_ok("gw", &["ip", "link", "set", "tapsrv", "netns", "srv"]);
    ns_ok("srv", &["ip", "link", "set", "srv0", "down"]);
    ns_ok(
        "srv",
        &["ip", "addr", "add", "198.51.100.2/24", "dev", "tapsrv"],
    );
    ns_ok("srv", &["ip", "link", "set", "tapsrv", "up"]);
    let via = ["route", "replace", "default", "via", "198.51.100.1", "dev"];
    ns_ok("srv", &[&["ip"][..], &via[..], &["tapsrv"][..]].concat());
    ns_ok("cli", &["ping", "-c", "1", "-W", "2", "198.51.100.2"]);
    mptcp_up_and_down(5240, 20_000_000, &[]);
    let m = metrics();
    assert_eq!(
        metric(&m, "hagw_conv_segments_malformed_total", ""),
        0,
        "{m}"
    );
    assert!(metric(&m, "hagw_conv_sessions_created_total", "") >= 2);
    stop_hagw(guard);
    ns_ok("srv", &["ip", "link", "set", "srv0", "up"]);
    ns_ok("srv", &[&["ip"][..], &via[..], &["srv0"][..]].concat());
}
