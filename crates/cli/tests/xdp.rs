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
