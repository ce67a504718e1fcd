//! The kernel as the oracle of XDP runs: each fixture (`tests/objects/xdp_*.c`) runs on
//! packets through `bpftool prog run` (the kernel's `BPF_PROG_TEST_RUN`, with its 256 bytes of
//! headroom and a page per frame) and on bpfx's engines on a `Packet::new`, and the verdicts
//! and output frames must be equal. `xdp_adjust.o` probes `xdp_adjust_head` and
//! `xdp_adjust_tail` at the edges of their limits (`xdp_adjust_meta` is left out: the kernel
//! this was written on refuses it in a program `bpftool prog load` loads, so its limits are
//! checked in `xdp_packet.rs` only). Needs root, `bpftool` and a kernel that loads BPF
//! programs; without them the test says why on stderr and checks nothing.

// The oracle runs clang-built objects only: `common::code` (assembled programs) goes unused.
#[allow(dead_code)]
mod common;

#[path = "common/oracle.rs"]
mod oracle;

use bpfx::{Mode, Object, Packet};
use common::{engines, prepare};
use oracle::{kernel_run, load, objects, unavailable};

/// The same run on every bpfx engine (Strict mode: the kernel accepted the program), which all
/// agree; the verdict's low 32 bits and the final frame.
fn bpfx_run(obj: &Object, name: &str, frame: &[u8]) -> (u32, Vec<u8>) {
    let mut seen = None;
    for (engine, opts) in engines() {
        let v = obj.program(name).unwrap().verify(Mode::Strict).unwrap();
        let mut prog = prepare(v, opts);
        let mut p = Packet::new(frame);
        let out = prog.run_xdp_packet(&mut p).unwrap();
        let got = (out.action.code() as u32, p.to_vec());
        match &seen {
            None => seen = Some(got),
            Some(s) => assert_eq!(*s, got, "{name} {engine}"),
        }
    }
    seen.unwrap()
}

fn ethernet_ipv4(proto: u8, dst: [u8; 4], payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x02, 0xaa, 0, 0, 0, 1, 0x02, 0xbb, 0, 0, 0, 2, 0x08, 0x00];
    let total = (20 + payload.len()) as u16;
    p.extend_from_slice(&[0x45, 0]);
    p.extend_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&[0, 1, 0x40, 0, 64, proto, 0x12, 0x34, 198, 51, 100, 7]);
    p.extend_from_slice(&dst);
    p.extend_from_slice(payload);
    p
}

/// `xdp_adjust.o`'s probe frame: helper `op`, `delta`, padded to `len` bytes.
fn probe(op: u8, delta: i32, len: usize) -> Vec<u8> {
    let mut f = vec![op, 0, 0, 0];
    f.extend_from_slice(&delta.to_le_bytes());
    f.extend((8..len).map(|i| i as u8));
    f
}

#[test]
fn xdp_fixtures_agree_with_the_kernel() {
    if let Some(why) = unavailable() {
        eprintln!("SKIPPED xdp_fixtures_agree_with_the_kernel: {why}");
        return;
    }
    let scratch = std::env::temp_dir().join(format!("bpfx-xdp-oracle-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    let mut cases: Vec<(&str, &str, Vec<u8>)> = Vec::new();
    for len in [14usize, 64, 65, 200, 1514] {
        cases.push((
            "xdp_trunc.o",
            "xdp_trunc",
            (0..len).map(|i| i as u8).collect(),
        ));
    }
    let inner =
        ethernet_ipv4(17, [10, 1, 0, 2], &[0x13, 0x88, 0, 80, 0, 9, 0, 0, 7])[14..].to_vec();
    cases.push((
        "xdp_decap.o",
        "xdp_decap",
        ethernet_ipv4(4, [192, 0, 2, 2], &inner),
    ));
    cases.push((
        "xdp_decap.o",
        "xdp_decap",
        ethernet_ipv4(41, [192, 0, 2, 2], &[0x60; 48]),
    ));
    cases.push((
        "xdp_decap.o",
        "xdp_decap",
        ethernet_ipv4(17, [192, 0, 2, 2], &[1; 8]),
    ));
    let vip = [10, 0, 0, 100];
    let mut tcp = vec![
        0x9c, 0x41, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff,
    ];
    tcp.extend_from_slice(&[0xab, 0xcd, 0, 0]);
    cases.push(("xdp_lb.o", "xdp_lb", ethernet_ipv4(6, vip, &tcp)));
    cases.push((
        "xdp_lb.o",
        "xdp_lb",
        ethernet_ipv4(17, vip, &[0x13, 0x89, 0, 80, 0, 10, 0x55, 0x66, 1, 2]),
    ));
    cases.push((
        "xdp_lb.o",
        "xdp_lb",
        ethernet_ipv4(17, vip, &[0x13, 0x88, 0, 80, 0, 10, 0, 0, 1, 2]),
    ));
    cases.push(("xdp_lb.o", "xdp_lb", ethernet_ipv4(1, vip, &[8, 0, 0, 0])));
    for (op, delta) in [
        (1, -216),
        (1, -217),
        (1, 46),
        (1, 47),
        (2, -46),
        (2, -47),
        (2, 3460),
        (2, 3461),
        (2, 100),
        (3, 0),
    ] {
        cases.push(("xdp_adjust.o", "xdp_adjust", probe(op, delta, 60)));
    }
    // Every object loads, or the kernel is no oracle here.
    let mut loaded = Vec::new();
    for file in ["xdp_trunc.o", "xdp_decap.o", "xdp_lb.o", "xdp_adjust.o"] {
        match load(&objects().join(file), "xdp") {
            Ok(p) => loaded.push((file, p, Object::open(objects().join(file)).unwrap())),
            Err(why) => {
                eprintln!(
                    "SKIPPED xdp_fixtures_agree_with_the_kernel: the kernel does not load \
                     {file}: {why}"
                );
                return;
            }
        }
    }
    let mut checked = 0;
    for (file, name, frame) in &cases {
        let (_, pinned, obj) = loaded.iter().find(|l| l.0 == *file).unwrap();
        let kernel = kernel_run(pinned, frame, None, &scratch);
        let ours = bpfx_run(obj, name, frame);
        assert_eq!(ours, kernel, "{file} on {frame:02x?}");
        checked += 1;
    }
    assert_eq!(checked, cases.len());
    eprintln!("xdp_fixtures_agree_with_the_kernel: {checked} runs compared with the kernel's");
}

/// `xdp_fib_probe.o`'s frame: `flags`, plen one short with `short`, and the parameters
/// `family`, `ifindex`, IPv4 `dst` (the rest zero), padded to 80 bytes.
fn fib_probe(flags: u32, short: bool, family: u8, ifindex: u32, dst: [u8; 4]) -> Vec<u8> {
    let mut f = vec![0u8; 80];
    f[0..4].copy_from_slice(&flags.to_le_bytes());
    f[4] = u8::from(short);
    f[8] = family;
    f[16..20].copy_from_slice(&ifindex.to_le_bytes());
    f[40..44].copy_from_slice(&dst);
    f[72..80].copy_from_slice(&[0xa5; 8]);
    f
}

/// `bpf_fib_lookup`'s answers that do not depend on the host's routes: a short `plen` and
/// unknown flags (`-EINVAL`; `BPF_FIB_LOOKUP_MARK` is known), another family (`-EAFNOSUPPORT`), no such device (`-ENODEV`),
/// and a local address from the loopback device (`FWD_DISABLED` when forwarding is off there,
/// as `/proc` says, also with `BPF_FIB_LOOKUP_OUTPUT`, else `NOT_FWDED`), the
/// kernel's against bpfx's with a table that answers for the devices as the kernel's would:
/// the codes and the parameters written back.
#[test]
fn fib_lookup_checks_agree_with_the_kernel() {
    use bpfx::{FibAnswer, FibFailure, Vm};
    if let Some(why) = unavailable() {
        eprintln!("SKIPPED fib_lookup_checks_agree_with_the_kernel: {why}");
        return;
    }
    let path = objects().join("xdp_fib_probe.o");
    let pinned = match load(&path, "xdp") {
        Ok(p) => p,
        Err(why) => {
            eprintln!("SKIPPED fib_lookup_checks_agree_with_the_kernel: {why}");
            return;
        }
    };
    let forwarding = std::fs::read_to_string("/proc/sys/net/ipv4/conf/lo/forwarding")
        .is_ok_and(|s| s.trim() != "0");
    let obj = Vm::new()
        .fib(move |req| {
            FibAnswer::Fail(if req.ifindex != 1 {
                FibFailure::NoDevice
            } else if !forwarding {
                // Checked before the lookup, from either side (`BPF_FIB_LOOKUP_OUTPUT` too).
                FibFailure::ForwardingDisabled
            } else {
                // 127.0.0.1 is a local route: not forwarded.
                FibFailure::NotForwarded
            })
        })
        .open(&path)
        .unwrap();
    let scratch = std::env::temp_dir().join(format!("bpfx-fib-oracle-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    let lo = [127, 0, 0, 1];
    let cases = [
        fib_probe(0, true, 2, 1, lo),
        fib_probe(1 << 6, false, 2, 1, lo),
        fib_probe(1 << 31, true, 3, 1, lo),
        // BPF_FIB_LOOKUP_MARK (Linux 6.10) is a flag the kernel knows.
        fib_probe(1 << 5, false, 2, 1, lo),
        fib_probe(0, false, 3, 1, lo),
        fib_probe(0, false, 0, 1, lo),
        fib_probe(0, false, 2, 0x7fff_0001, lo),
        fib_probe(0, false, 2, 1, lo),
        fib_probe(2, false, 2, 1, lo),
        fib_probe(1 | 8, false, 2, 1, lo),
    ];
    for frame in &cases {
        let kernel = kernel_run(&pinned, frame, None, &scratch);
        let ours = bpfx_run(&obj, "xdp_fib_probe", frame);
        assert_eq!(ours, kernel, "{frame:02x?}");
    }
    let _ = std::fs::remove_dir_all(&scratch);
    eprintln!(
        "fib_lookup_checks_agree_with_the_kernel: {} runs compared with the kernel's",
        cases.len()
    );
}
