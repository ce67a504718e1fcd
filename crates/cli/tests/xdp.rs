//! `bpfx run` of XDP programs that move the frame's head and tail (the runtime's fixtures in
//! `crates/runtime/tests/objects/`) and redirect it: `--out` writes the final frame and the JSON
//! carries the verdict, the output length, how far the start moved and the redirect target, on
//! every engine and in both modes.

// Each test file uses part of what the CLI tests share.
#[allow(dead_code)]
mod common;

use common::{bpfx, stderr, stdout};
use serde_json::Value;
use std::path::PathBuf;

const ENGINES: [&str; 2] = ["interp", "jit"];
const MODES: [&[&str]; 2] = [&[], &["--strict"]];

fn object(name: &str) -> String {
    format!("crates/runtime/tests/objects/{name}")
}

fn tmp(name: &str, contents: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("bpfx-cli-xdp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, contents).unwrap();
    p
}

/// Runs `args` on every engine and mode, text then `--json`; returns the texts and objects.
fn runs(args: &[&str]) -> Vec<(String, Value)> {
    let mut all = Vec::new();
    for engine in ENGINES {
        for mode in MODES {
            let mut a = args.to_vec();
            a.extend_from_slice(&["--engine", engine]);
            a.extend_from_slice(mode);
            let o = bpfx(&a);
            assert!(o.status.success(), "{engine} {mode:?}: {}", stderr(&o));
            let text = stdout(&o);
            a.push("--json");
            let o = bpfx(&a);
            assert!(o.status.success(), "{engine} {mode:?}: {}", stderr(&o));
            all.push((text, serde_json::from_str(&stdout(&o)).unwrap()));
        }
    }
    all
}

#[test]
fn a_truncated_frame_is_written_with_out_and_its_length_reported() {
    let frame: Vec<u8> = (0..200u32).map(|i| (i * 5 + 1) as u8).collect();
    let packet = tmp("trunc.bin", &frame);
    let out = tmp("trunc.out", b"");
    let obj = object("xdp_trunc.o");
    let args = [
        "run",
        &obj,
        "--packet",
        packet.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    for (text, v) in runs(&args) {
        assert_eq!(text, "XDP_PASS (2)\nframe: 64 bytes (was 200), start +0\n");
        assert_eq!(v["action"], "XDP_PASS");
        assert_eq!(v["packet_len"], 64);
        assert_eq!(v["packet_start"], 0);
        assert_eq!(v["meta_len"], 0);
        assert_eq!(v["redirect"], Value::Null);
        assert_eq!(std::fs::read(&out).unwrap(), frame[..64]);
    }
}

#[test]
fn a_decapsulated_frame_reports_the_start_it_moved_to() {
    // Ethernet + IPv4 (IPIP) + IPv4 header of an empty packet; checksums do not matter here.
    let mut frame = vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0x08, 0x00];
    let outer = [
        0x45, 0, 0, 40, 0, 0, 0, 0, 64, 4, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2,
    ];
    let inner = [
        0x45, 0, 0, 20, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
    ];
    frame.extend_from_slice(&outer);
    frame.extend_from_slice(&inner);
    let packet = tmp("ipip.bin", &frame);
    let out = tmp("ipip.out", b"");
    let obj = object("xdp_decap.o");
    let args = [
        "run",
        &obj,
        "--packet",
        packet.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    let mut want = frame[..14].to_vec();
    want.extend_from_slice(&inner);
    for (text, v) in runs(&args) {
        assert!(
            text.starts_with("XDP_PASS (2)\nframe: 34 bytes (was 54), start +20\n"),
            "{text}"
        );
        assert_eq!(
            (v["packet_len"].clone(), v["packet_start"].clone()),
            (34.into(), 20.into())
        );
        assert_eq!(std::fs::read(&out).unwrap(), want);
    }
}

#[test]
fn a_redirect_names_its_target() {
    let prog = tmp("redirect.asm", b"mov r1, 7\nmov r2, 0\ncall 23\nexit\n");
    let packet = tmp("redirect.bin", &[0u8; 60]);
    let args = [
        "run",
        prog.to_str().unwrap(),
        "--ctx",
        "xdp",
        "--packet",
        packet.to_str().unwrap(),
    ];
    for (text, v) in runs(&args) {
        assert_eq!(text, "XDP_REDIRECT (4)\nredirect: ifindex 7 (egress)\n");
        assert_eq!(v["action"], "XDP_REDIRECT");
        assert_eq!(
            v["redirect"],
            serde_json::json!({"kind": "ifindex", "ifindex": 7, "ingress": false})
        );
        assert_eq!(v["packet_len"], 60);
    }
    // TC, to the ingress.
    let prog = tmp("redirect_tc.asm", b"mov r1, 3\nmov r2, 1\ncall 23\nexit\n");
    let args = [
        "run",
        prog.to_str().unwrap(),
        "--ctx",
        "tc",
        "--packet",
        packet.to_str().unwrap(),
    ];
    for (text, v) in runs(&args) {
        assert!(text.starts_with("TC_ACT_REDIRECT (7)\n"), "{text}");
        assert!(text.contains("redirect: ifindex 3 (ingress)\n"), "{text}");
        assert_eq!(
            v["redirect"],
            serde_json::json!({"kind": "ifindex", "ifindex": 3, "ingress": true})
        );
    }
}

/// An Ethernet + IPv4 + UDP frame to `dst` with `ttl` (a correct header checksum, computed
/// here).
fn udp4(dst: [u8; 4], ttl: u8, dmac: [u8; 6], smac: [u8; 6]) -> Vec<u8> {
    let mut f = dmac.to_vec();
    f.extend_from_slice(&smac);
    f.extend_from_slice(&[0x08, 0x00]);
    let mut ip = vec![0x45, 0, 0, 32, 0, 1, 0, 0, ttl, 17, 0, 0, 192, 0, 2, 1];
    ip.extend_from_slice(&dst);
    let mut sum: u32 = ip
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    ip[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&[0x9c, 0x40, 0, 53, 0, 12, 0, 0, 1, 2, 3, 4]);
    f
}

#[test]
fn fib_routes_from_a_json_file_forward_the_router_fixture() {
    let routes = tmp(
        "routes.json",
        br#"[
            {"prefix": "10.1.0.0/16", "ifindex": 7, "smac": "02:00:00:00:07:01",
             "dmac": "02:00:00:00:07:02", "mtu": 1500},
            {"prefix": "10.9.0.0/16", "reject": "unreachable"}
        ]"#,
    );
    let obj = object("xdp_fib.o");
    let (host, peer) = ([2, 0, 0, 0, 3, 1], [2, 0, 0, 0, 3, 2]);
    let cases = [
        ("routed", [10, 1, 2, 3], "XDP_REDIRECT", true),
        ("unreachable", [10, 9, 0, 1], "XDP_DROP", false),
        ("unrouted", [192, 168, 0, 1], "XDP_PASS", false),
    ];
    for (name, dst, action, routed) in cases {
        let packet = tmp(&format!("fib_{name}.bin"), &udp4(dst, 64, host, peer));
        let out = tmp(&format!("fib_{name}.out"), b"");
        let args = [
            "run",
            &obj,
            "--packet",
            packet.to_str().unwrap(),
            "--fib",
            routes.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ];
        for (_, v) in runs(&args) {
            assert_eq!(v["action"], action, "{name}");
            let want = if routed {
                assert_eq!(
                    v["redirect"],
                    serde_json::json!({"kind": "ifindex", "ifindex": 7, "ingress": false})
                );
                udp4(dst, 63, [2, 0, 0, 0, 7, 2], [2, 0, 0, 0, 7, 1])
            } else {
                assert_eq!(v["redirect"], Value::Null, "{name}");
                udp4(dst, 64, host, peer)
            };
            assert_eq!(std::fs::read(&out).unwrap(), want, "{name}");
        }
    }
    // Without --fib nothing is forwarded.
    let packet = tmp("fib_none.bin", &udp4([10, 1, 2, 3], 64, host, peer));
    for (_, v) in runs(&["run", &obj, "--packet", packet.to_str().unwrap()]) {
        assert_eq!(v["action"], "XDP_PASS");
    }
    // A bad file is refused, naming the entry.
    let bad = tmp(
        "bad_routes.json",
        br#"[{"prefix": "10.0.0.0/40", "ifindex": 1}]"#,
    );
    let o = bpfx(&[
        "run",
        &obj,
        "--packet",
        packet.to_str().unwrap(),
        "--fib",
        bad.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("entry 0: prefix `10.0.0.0/40`: the length must be 0 to 32"),
        "{}",
        stderr(&o)
    );
}
