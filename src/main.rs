//! hagw: a DPDK-based hybrid access gateway (MPTCP conversion point).
//!
//! `hagw run --config FILE` runs the data plane; `hagw check-config FILE`
//! validates a config without touching DPDK; `hagw bench forward` measures
//! the forwarding pipeline.

mod bench;
mod dpdk;
mod l2fwd;
mod preflight;
mod run;
mod tcppeer;
mod worker;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

// The conversion point allocates when a session opens and frees when it
// ends (engine state, queues); the forwarding path does not allocate.
// mimalloc's per-thread free lists make that cheaper than glibc's malloc
// (`hagw bench convert`: ~11 M fewer instructions in 2,000 conversions
// under callgrind, malloc and free ~3x cheaper per call).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "hagw",
    version,
    about = "DPDK hybrid access gateway (MPTCP conversion point)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the data plane.
    Run {
        /// The TOML config file.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Validate a config file without touching DPDK; prints file:line:column,
    /// key and reason for every error.
    CheckConfig {
        /// The TOML config file.
        file: PathBuf,
    },
    /// The nf-tcp engine as an endpoint on the gateway's address (interop
    /// harness): `--echo PORT` echoes, `--connect ADDR:PORT --bytes N`
    /// sends N bytes and verifies the echo (exit 0 when intact).
    TcpPeer {
        #[arg(long, short)]
        config: PathBuf,
        #[arg(long, conflicts_with = "connect")]
        echo: Option<u16>,
        #[arg(long)]
        connect: Option<std::net::SocketAddr>,
        #[arg(long, default_value_t = 50_000_000)]
        bytes: u64,
        /// Give up after this many seconds (client mode).
        #[arg(long, default_value_t = 120)]
        timeout: u64,
    },
    /// The nf-mptcp engine as an MPTCP echo endpoint on the gateway's
    /// addresses (interop harness): MP_CAPABLE and MP_JOIN from any access.
    MptcpPeer {
        #[arg(long, short)]
        config: PathBuf,
        /// Echo server on this port.
        #[arg(long, conflicts_with = "connect")]
        echo: Option<u16>,
        /// Client: connect here, send --bytes, verify the echo.
        #[arg(long)]
        connect: Option<std::net::SocketAddr>,
        #[arg(long, default_value_t = 50_000_000)]
        bytes: u64,
        /// Client: join a second subflow from this local address.
        #[arg(long)]
        join_from: Option<std::net::IpAddr>,
        #[arg(long, default_value_t = 120)]
        timeout: u64,
        /// Subflow congestion control: cubic, newreno or lia (RFC 6356
        /// coupled). Default: the config's [conversion] congestion_control.
        #[arg(long)]
        cc: Option<nf_tcp::cc::CcKind>,
        /// Ask for DSS checksums (RFC 8684 §3.1, the A flag); the peer
        /// asking turns them on as well.
        #[arg(long)]
        checksum: bool,
    },
    /// The lab's ceiling: forward frames between two ports untouched
    /// (rx_burst → tx_burst), until SIGTERM.
    L2fwd {
        #[arg(long, short)]
        config: PathBuf,
        /// The two port names, e.g. `fix1,srv1`.
        #[arg(long, value_delimiter = ',')]
        ports: Vec<String>,
    },
    /// Benchmarks.
    Bench {
        #[command(subcommand)]
        what: BenchCmd,
    },
}

#[derive(Subcommand)]
enum BenchCmd {
    /// Packets per second per core: raw rx→tx and the full
    /// parse+route+forward pipeline, for 64- and 1500-byte IPv4 packets.
    Forward {
        /// Packets per measurement.
        #[arg(long, default_value_t = 20_000_000)]
        packets: u64,
        /// Repetitions (min and median are reported).
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// The lcore (CPU) the benchmark runs on.
        #[arg(long, default_value_t = 1)]
        lcore: u32,
        /// Mbufs in 2 MB hugepages, as on a production box (256 free
        /// hugepages needed); without it, plain 4 KB pages (`--no-huge`).
        #[arg(long)]
        huge: bool,
    },
    /// Conversions per second and bulk Gbit/s per core: in-process MPTCP
    /// clients (two subflows) and TCP servers through the conversion point
    /// (no DPDK; pin it with taskset).
    Convert {
        /// Connections per measurement.
        #[arg(long, default_value_t = 20_000)]
        conns: usize,
        /// Megabytes echoed by the bulk connection.
        #[arg(long, default_value_t = 200)]
        bulk_mb: u64,
        /// Repetitions (min and median are reported).
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Ports whose NICs verify and compute TCP checksums (the
        /// offloads every 10G+ NIC has; without it, hagw sums payload in
        /// software, as on the lab's ports).
        #[arg(long)]
        offload: bool,
    },
}

fn main() -> ExitCode {
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("HAGW_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::CheckConfig { file } => match nf_app::config::load(&file) {
            Ok(cfg) => {
                println!(
                    "{}: ok ({} ports, {} routes, {} workers)",
                    file.display(),
                    cfg.ports.len(),
                    cfg.routes.len(),
                    cfg.worker_lcores.len()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(2)
            }
        },
        Cmd::Run { config } => {
            let cfg = match nf_app::config::load(&config) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("{e}");
                    eprintln!("hagw: refusing to start: {} has errors", config.display());
                    return ExitCode::from(2);
                }
            };
            match run::run(cfg) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("hagw: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Cmd::TcpPeer {
            config,
            echo,
            connect,
            bytes,
            timeout,
        } => {
            let cfg = match nf_app::config::load(&config) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(2);
                }
            };
            let mode = match (echo, connect) {
                (Some(port), None) => nf_app::tcppeer::Mode::Echo { port },
                (None, Some(remote)) => nf_app::tcppeer::Mode::Client { remote, bytes },
                _ => {
                    eprintln!("hagw tcp-peer: give --echo PORT or --connect ADDR:PORT");
                    return ExitCode::from(2);
                }
            };
            match tcppeer::run(
                cfg,
                tcppeer::Engine::Tcp(mode),
                std::time::Duration::from_secs(timeout),
            ) {
                Ok(s) => {
                    println!("{s}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("hagw: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Cmd::MptcpPeer {
            config,
            echo,
            connect,
            bytes,
            join_from,
            timeout,
            cc,
            checksum,
        } => {
            let cfg = match nf_app::config::load(&config) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(2);
                }
            };
            let cc = cc.unwrap_or(cfg.raw.conversion.congestion_control.kind());
            let engine = match (echo, connect) {
                (Some(port), None) => tcppeer::Engine::Mptcp(port, cc, checksum),
                (None, Some(remote)) => tcppeer::Engine::MptcpClient {
                    remote,
                    bytes,
                    join_from,
                    cc,
                    checksum,
                },
                _ => {
                    eprintln!("hagw mptcp-peer: give --echo PORT or --connect ADDR:PORT");
                    return ExitCode::from(2);
                }
            };
            match tcppeer::run(cfg, engine, std::time::Duration::from_secs(timeout)) {
                Ok(s) => {
                    println!("{s}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("hagw: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Cmd::L2fwd { config, ports } => {
            let cfg = match nf_app::config::load(&config) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(2);
                }
            };
            let (a, b) = match ports.as_slice() {
                [a, b] => (a.as_str(), b.as_str()),
                _ => {
                    eprintln!("hagw l2fwd: --ports takes two port names, e.g. fix1,srv1");
                    return ExitCode::from(2);
                }
            };
            match l2fwd::run(cfg, a, b) {
                Ok(r) => {
                    eprint!("{r}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("hagw l2fwd: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Cmd::Bench {
            what:
                BenchCmd::Convert {
                    conns,
                    bulk_mb,
                    runs,
                    offload,
                },
        } => {
            print!(
                "{}",
                bench::convert(conns.max(1), bulk_mb.max(1), runs.max(1), offload)
            );
            ExitCode::SUCCESS
        }
        Cmd::Bench {
            what:
                BenchCmd::Forward {
                    packets,
                    runs,
                    lcore,
                    huge,
                },
        } => match bench::forward(packets, runs.max(1), lcore, huge) {
            Ok(r) => {
                print!("{r}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("hagw bench forward: {e}");
                ExitCode::from(1)
            }
        },
    }
}
