//! Generates DPDK 22.11 bindings with bindgen from `pkg-config libdpdk`, wraps
//! DPDK's static inline functions (bindgen `wrap_static_fns`) together with a
//! tiny C shim, and links DPDK dynamically (PMDs load from Debian's plugin dir).
use std::env;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=src/dpdk/shim.h");
    println!("cargo:rerun-if-changed=src/dpdk/shim.c");
    println!("cargo:rerun-if-changed=build.rs");

    let lib = match pkg_config::Config::new()
        .atleast_version("22.11")
        .probe("libdpdk")
    {
        Ok(lib) => lib,
        Err(e) => {
            panic!("hagw needs DPDK 22.11 (libdpdk-dev): run scripts/setup.sh or `apt-get install libdpdk-dev` ({e})")
        }
    };
    // pkg-config keeps only -I paths; Debian's cflags also carry these two.
    let extra = [
        "-include",
        "rte_config.h",
        "-march=corei7",
        "-DALLOW_EXPERIMENTAL_API",
    ];
    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));
    let wrap_path = out.join("static_fns");

    let mut builder = bindgen::Builder::default()
        .header("src/dpdk/shim.h")
        .clang_args(extra)
        .clang_args(lib.include_paths.iter().map(|p| format!("-I{}", p.display())))
        .allowlist_function("rte_eal_.*|rte_eth_.*|rte_pktmbuf_.*|rte_mempool_.*|rte_lcore_.*|rte_socket_id|rte_strerror|rte_get_main_lcore|rte_get_next_lcore|rte_rdtsc|rte_get_tsc_hz|rte_mbuf_refcnt_.*|hagw_.*")
        .allowlist_type("rte_mbuf|rte_mempool|rte_eth_conf|rte_eth_stats|rte_eth_link|rte_ether_addr|rte_eth_dev_info|rte_eth_rxconf|rte_eth_txconf")
        .allowlist_var("RTE_ETH_.*|RTE_MAX_ETHPORTS|RTE_MBUF_DEFAULT_BUF_SIZE|RTE_PKTMBUF_HEADROOM|RTE_MAX_LCORE|LCORE_ID_ANY|SOCKET_ID_ANY")
        .opaque_type("rte_arp_hdr|rte_arp_ipv4|rte_gtp_psc_generic_hdr|rte_l2tpv2_combined_msg_hdr")
        .blocklist_function("rte_eth_dev_info_get_v.*")
        .derive_default(true)
        .layout_tests(false)
        .generate_comments(false)
        .wrap_static_fns(true)
        .wrap_static_fns_path(&wrap_path);
    builder = builder.parse_callbacks(Box::new(bindgen::CargoCallbacks::new()));
    let bindings = builder
        .generate()
        .expect("bindgen over DPDK headers failed (is libclang-dev installed? scripts/setup.sh)");
    bindings
        .write_to_file(out.join("dpdk_bindings.rs"))
        .expect("write bindings");

    let mut cc = cc::Build::new();
    cc.file(wrap_path.with_extension("c"))
        .file("src/dpdk/shim.c")
        .include(env::current_dir().expect("cwd"))
        .flag("-include")
        .flag("rte_config.h")
        .flag("-march=corei7")
        .flag("-DALLOW_EXPERIMENTAL_API")
        .flag("-Wno-deprecated-declarations")
        .opt_level(2);
    for p in &lib.include_paths {
        cc.include(p);
    }
    cc.compile("hagw_dpdk_shim");
}
