//! The command line: config validation and start-up refusals.

use std::process::Command;

fn hagw(args: &[&str]) -> (i32, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_hagw"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run hagw");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn shipped_configs_are_valid() {
    for f in [
        "configs/lab.toml",
        "configs/lab-pool.toml",
        "configs/lab-xdp.toml",
        "configs/example.toml",
    ] {
        let (rc, out, err) = hagw(&["check-config", f]);
        assert_eq!(rc, 0, "{f}: {out}{err}");
        assert!(out.contains(": ok ("), "{out}");
    }
}

#[test]
fn bad_config_is_refused_with_file_line_key_reason() {
    let dir = std::env::temp_dir().join(format!("hagw-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    let f = dir.join("bad.toml");
    std::fs::write(
        &f,
        "[[port]]\nname = \"a\"\ndevice = \"net_null0\"\nrole = \"internet\"\naddresses = [\"10.0.0.1/24\", \"10.0.0.300/24\"]\nmtu = 20\n\n[[route]]\nprefix = \"0.0.0.0/0\"\nvia = \"10.9.9.9\"\n",
    )
    .expect("write");
    let p = f.display().to_string();
    let (rc, _, err) = hagw(&["check-config", &p]);
    assert_eq!(rc, 2);
    assert!(
        err.contains(&format!(
            "{p}:5:29: key `port[0].addresses[1]`: `10.0.0.300` is not an IP address"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "{p}:6:1: key `port[0].mtu`: mtu 20 must be 68..=9600"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "{p}:10:1: key `route[0].via`: gateway 10.9.9.9 is not on any port's connected prefix"
        )),
        "{err}"
    );
    // `run` refuses the same file before touching DPDK
    let (rc, _, err) = hagw(&["run", "--config", &p]);
    assert_eq!(rc, 2);
    assert!(err.contains("refusing to start"), "{err}");

    // unknown keys and type errors come from the TOML layer, also located
    std::fs::write(&f, "[workers]\nlcores = [1]\nbogus = 3\n").expect("write");
    let (rc, _, err) = hagw(&["check-config", &p]);
    assert_eq!(rc, 2);
    assert!(
        err.contains(&format!(
            "{p}:3:1: key `workers.bogus`: unknown field `bogus`"
        )),
        "{err}"
    );
    // a bad value names its key, qualified by its table (not the value)
    std::fs::write(&f, "[[port]]\nname = \"a\"\ndevice = \"net_null0\"\nrole = \"lan\"\n[[port]]\nname = \"b\"\ndevice = \"net_null1\"\nrole = \"wan\"\n").expect("write");
    let (rc, _, err) = hagw(&["check-config", &p]);
    assert_eq!(rc, 2);
    assert!(
        err.contains(&format!(
            "{p}:8:8: key `port[1].role`: unknown variant `wan`"
        )),
        "{err}"
    );
    std::fs::write(&f, "[conversion]\ncongestion_control = \"vegas\"\n").expect("write");
    let (rc, _, err) = hagw(&["check-config", &p]);
    assert_eq!(rc, 2);
    assert!(
        err.contains(&format!(
            "{p}:2:22: key `conversion.congestion_control`: unknown variant `vegas`, expected one of `cubic`, `newreno`, `lia`"
        )),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn missing_interface_is_one_line_with_the_fix() {
    let is_root = std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false);
    let dir = std::env::temp_dir().join(format!("hagw-cli2-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    let f = dir.join("noiface.toml");
    std::fs::write(
        &f,
        "[eal]\nargs = [\"--no-pci\", \"--no-huge\", \"-m\", \"256\", \"--file-prefix\", \"hagw-cli-test\"]\n[[port]]\nname = \"p0\"\ndevice = \"net_af_packet0,iface=hagw-no-such-if\"\nrole = \"internet\"\naddresses = [\"10.0.0.1/24\"]\n[management]\nenabled = false\n",
    )
    .expect("write");
    let (rc, _, err) = hagw(&["run", "--config", &f.display().to_string()]);
    assert_ne!(rc, 0);
    let line = err.lines().last().unwrap_or("");
    if is_root {
        assert!(
            line.contains("interface `hagw-no-such-if` does not exist")
                && line.contains("scripts/lab.sh up"),
            "{err}"
        );
    } else {
        assert!(line.contains("needs root"), "{err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `hagw bench forward` checks itself: every packet of the pipeline loop
/// must be routed by the fast path's rules (the bench's "DMA" of the test
/// frame into each mbuf must land where the pipeline reads it) and the
/// prefetch hint must point at the frames. Speed is not asserted here.
/// (4 KB pages: EAL runs without root and without hugepages.)
#[test]
fn bench_forward_routes_every_packet() {
    let (rc, out, err) = hagw(&[
        "bench",
        "forward",
        "--packets",
        "100000",
        "--runs",
        "2",
        "--lcore",
        "0",
    ]);
    assert_eq!(rc, 0, "{out}{err}");
    assert!(out.contains("mbufs in 4 KB pages"), "{out}");
    for size in ["64", "1500"] {
        let line = out
            .lines()
            .find(|l| l.starts_with(size) && l.contains("ratio pipeline/raw"))
            .unwrap_or_else(|| panic!("no {size}-byte ratio in:\n{out}"));
        let ratio: f64 = line
            .rsplit(' ')
            .next()
            .and_then(|r| r.parse().ok())
            .unwrap_or_else(|| panic!("no ratio in `{line}`"));
        assert!(ratio > 0.0 && ratio.is_finite(), "{line}");
        assert!(
            out.lines()
                .any(|l| l.starts_with(size) && l.contains("ns the pipeline adds per packet")),
            "{out}"
        );
    }
}
