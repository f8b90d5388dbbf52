//! A ready-made three-port pipeline on `VecBuf` (the LAB.md ports), shared
//! by unit tests, the criterion bench and the fuzz targets.

use crate::config;
use crate::pipeline::{routing_table, BufPool, Pipeline, PipelineLimits, PortCtx};
use crate::stats::WorkerStats;
use nf_core::wire::EthernetAddress;
use nf_core::VecBuf;
use std::sync::Arc;

/// A pool of `VecBuf`s that runs dry after `left` allocations. Buffers
/// given back through `free` are reused, as an mbuf pool recycles mbufs.
pub struct Pool {
    pub left: usize,
    pub free: Vec<VecBuf>,
}

impl Pool {
    pub fn new(left: usize) -> Pool {
        Pool {
            left,
            free: Vec::new(),
        }
    }
}

impl BufPool<VecBuf> for Pool {
    fn alloc(&mut self) -> Option<VecBuf> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        Some(match self.free.pop() {
            Some(mut b) => {
                b.reset();
                b
            }
            None => VecBuf::new(),
        })
    }
}

/// fix1, cel1 (with IPv6), srv1 (MTU 1400) and one static route.
pub const LAB3: &str = r#"
[[port]]
name = "fix1"
device = "net_null0"
role = "access-fixed"
addresses = ["192.0.2.1/24"]
[[port]]
name = "cel1"
device = "net_null1"
role = "access-cellular"
addresses = ["100.64.0.1/24", "2001:db8:c::1/64"]
[[port]]
name = "srv1"
device = "net_null2"
role = "internet"
addresses = ["198.51.100.1/24", "2001:db8:5::1/64"]
mtu = 1400
[[route]]
prefix = "203.0.113.0/24"
via = "198.51.100.2"
"#;

/// The MAC of port `i` (1-based) in [`lab_pipeline`].
pub fn mac(i: u8) -> EthernetAddress {
    EthernetAddress([0x02, 0, 0, 0, 0, i])
}
pub const CLI_MAC: EthernetAddress = EthernetAddress([0x02, 0xc1, 0, 0, 0, 2]);
pub const SRV_MAC: EthernetAddress = EthernetAddress([0x02, 0x5e, 0, 0, 0, 2]);

/// A pipeline over [`LAB3`] with a pool of `VecBuf`s.
pub fn lab_pipeline() -> Pipeline<VecBuf, Pool> {
    pipeline_from(LAB3, Pool::new(100_000)).0
}

/// A pipeline over a config text (ports get [`mac`] addresses in order),
/// with its parsed config.
pub fn pipeline_from(text: &str, pool: Pool) -> (Pipeline<VecBuf, Pool>, config::Config) {
    worker_pipeline_from(text, pool, 0)
}

/// As [`pipeline_from`], for worker `worker` (its statistics say so).
pub fn worker_pipeline_from(
    text: &str,
    pool: Pool,
    worker: usize,
) -> (Pipeline<VecBuf, Pool>, config::Config) {
    let cfg = match config::parse("testkit", text) {
        Ok(c) => c,
        Err(e) => panic!("testkit config: {e}"),
    };
    let ports = cfg
        .ports
        .iter()
        .enumerate()
        .map(|(i, p)| PortCtx::new(p, mac(i as u8 + 1)))
        .collect();
    let stats = Arc::new(WorkerStats::new(worker, 1 + worker as u32, cfg.ports.len()));
    let p = Pipeline::new(
        ports,
        routing_table(&cfg),
        PipelineLimits::from_config(&cfg),
        pool,
        stats,
    );
    (p, cfg)
}
