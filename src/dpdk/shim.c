#include "src/dpdk/shim.h"

/* rte_errno is a per-lcore TLS macro: bindgen cannot see it. */
int hagw_rte_errno(void) { return rte_errno; }
