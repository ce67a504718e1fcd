//! `bpfx run` of TC programs and socket filters (the runtime's `__sk_buff` fixtures in
//! `crates/runtime/tests/objects/`), and of programs whose section names a type bpfx does not
//! model, through the built binary on every engine and in both modes.

// Each test file uses part of what the CLI tests share.
#[allow(dead_code)]
mod common;

use common::{bpfx, stderr, stdout};
use serde_json::Value;
use std::path::{Path, PathBuf};

const ENGINES: [&str; 2] = ["interp", "jit"];
const MODES: [&[&str]; 2] = [&[], &["--strict"]];

fn object(name: &str) -> String {
    format!("crates/runtime/tests/objects/{name}")
}

fn tmp(name: &str, contents: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("bpfx-cli-skb-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, contents).unwrap();
    p
}

/// An Ethernet/IPv4/TCP frame to `dport`, with 5 bytes of payload.
fn tcp_frame(dport: u16) -> Vec<u8> {
    let mut p = vec![0u8; 12];
    p.extend_from_slice(&[0x08, 0x00, 0x45, 0, 0, 45, 0, 0, 0, 0, 64, 6]);
    p.extend_from_slice(&[0; 8]);
    p.extend_from_slice(&[0; 2]);
    p.extend_from_slice(&1234u16.to_be_bytes());
    p.extend_from_slice(&dport.to_be_bytes());
    p.extend_from_slice(&[0; 8]);
    p.extend_from_slice(&[0x50, 0x02, 0, 0, 0, 0, 0, 0]);
    p.extend_from_slice(b"hello");
    p
}

#[test]
fn tc_verdicts_by_name_and_the_skb_fields_written() {
    let frame = tcp_frame(8080);
    let len = frame.len() as u32;
    let packet = tmp("tc.bin", &frame);
    let out = packet.with_extension("out");
    let telnet = tmp("telnet.bin", &tcp_frame(23));
    let obj = object("tc_classify.o");
    for engine in ENGINES {
        for mode in MODES {
            let mut args = vec![
                "run",
                &obj,
                "--packet",
                packet.to_str().unwrap(),
                "--engine",
                engine,
                "--ifindex",
                "2",
                "--mark",
                "0x10000",
                "--out",
                out.to_str().unwrap(),
            ];
            args.extend_from_slice(mode);
            let o = bpfx(&args);
            assert!(o.status.success(), "{engine}: {}", stderr(&o));
            let priority = 2 * 16 + (len & 15);
            assert_eq!(
                stdout(&o),
                format!(
                    "TC_ACT_OK (0)\nmark 0x10000 -> {:#x}\npriority 0x0 -> {priority:#x}\n\
                     cb[1] 0x0 -> {len:#x}\n",
                    0x10000 ^ 8080
                ),
                "{engine} {mode:?}"
            );
            assert_eq!(std::fs::read(&out).unwrap(), frame);
            args.push("--json");
            let v: Value = serde_json::from_str(&stdout(&bpfx(&args))).unwrap();
            assert_eq!(v["action"], "TC_ACT_OK");
            assert_eq!(v["packet_len"], len);
            assert_eq!(v["skb"]["mark"], 0x10000 ^ 8080);
            assert_eq!(v["skb"]["cb"][1], len);
            let o = bpfx(&[
                "run",
                &obj,
                "--packet",
                telnet.to_str().unwrap(),
                "--engine",
                engine,
            ]);
            assert!(
                stdout(&o).starts_with("TC_ACT_SHOT (2)\n"),
                "{}",
                stdout(&o)
            );
        }
    }
}

#[test]
fn a_tc_program_rewrites_the_packet_written_with_out() {
    // Writes 0x77 over the packet's first byte when there is one; returns TC_ACT_REDIRECT.
    let prog = tmp(
        "rewrite.asm",
        b"mov r0, 7\nldxw r2, [r1+76]\nldxw r3, [r1+80]\nmov r4, r2\nadd r4, 1\n\
          jgt r4, r3, +1\nstb [r2+0], 0x77\nexit\n",
    );
    let packet = tmp("rewrite.bin", &[1, 2, 3]);
    let out = packet.with_extension("out");
    for engine in ENGINES {
        for mode in MODES {
            let mut args = vec![
                "run",
                prog.to_str().unwrap(),
                "--ctx",
                "tc",
                "--packet",
                packet.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
                "--engine",
                engine,
            ];
            args.extend_from_slice(mode);
            let o = bpfx(&args);
            assert!(o.status.success(), "{engine}: {}", stderr(&o));
            assert_eq!(stdout(&o), "TC_ACT_REDIRECT (7)\n");
            assert_eq!(std::fs::read(&out).unwrap(), [0x77, 2, 3]);
        }
    }
}

#[test]
fn a_tc_program_that_encapsulates_writes_the_grown_packet_with_out() {
    // tc_ipip.o: 20 bytes of outer IPv4 header after the Ethernet header.
    let frame = tcp_frame(80);
    let packet = tmp("ipip.bin", &frame);
    let out = packet.with_extension("ipip.out");
    let obj = object("tc_ipip.o");
    for engine in ENGINES {
        for mode in MODES {
            let mut args = vec![
                "run",
                &obj,
                "--packet",
                packet.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
                "--engine",
                engine,
                "--json",
            ];
            args.extend_from_slice(mode);
            let o = bpfx(&args);
            assert!(o.status.success(), "{engine}: {}", stderr(&o));
            let j: Value = serde_json::from_str(&stdout(&o)).unwrap();
            assert_eq!(j["action"], "TC_ACT_OK", "{j}");
            assert_eq!(j["packet_len"], frame.len() + 20, "{j}");
            assert_eq!(j["packet_start"], -20, "{j}");
            let got = std::fs::read(&out).unwrap();
            assert_eq!(got.len(), frame.len() + 20);
            assert_eq!(got[..14], frame[..14]);
            // The outer header: IPv4, protocol 4 (IPIP), total length inner + 20.
            assert_eq!(got[14], 0x45);
            assert_eq!(got[23], 4);
            assert_eq!(u16::from_be_bytes([got[16], got[17]]), 45 + 20);
            assert_eq!(got[34..], frame[14..]);
            // The text form says how the frame moved.
            let mut args = vec!["run", &obj, "--packet", packet.to_str().unwrap()];
            args.extend_from_slice(&["--engine", engine]);
            let o = bpfx(&args);
            assert!(
                stdout(&o).contains(&format!(
                    "frame: {} bytes (was {}), start -20",
                    frame.len() + 20,
                    frame.len()
                )),
                "{}",
                stdout(&o)
            );
        }
    }
}

#[test]
fn socket_filters_print_the_bytes_kept() {
    let web = tcp_frame(80);
    let web_path = tmp("web.bin", &web);
    let ssh_path = tmp("ssh.bin", &tcp_frame(22));
    let out = web_path.with_extension("out");
    for engine in ENGINES {
        for mode in MODES {
            let run = |packet: &Path, json: bool| {
                let mut args = vec![
                    "run".to_string(),
                    object("sock_port80.o"),
                    "--packet".into(),
                    packet.to_str().unwrap().into(),
                    "--out".into(),
                    out.to_str().unwrap().into(),
                    "--engine".into(),
                    engine.into(),
                ];
                args.extend(mode.iter().map(|s| s.to_string()));
                if json {
                    args.push("--json".into());
                }
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                bpfx(&args)
            };
            let o = run(&web_path, false);
            assert!(o.status.success(), "{engine}: {}", stderr(&o));
            assert_eq!(
                stdout(&o),
                format!("KEEP {} bytes ({})\n", web.len(), u32::MAX)
            );
            assert_eq!(std::fs::read(&out).unwrap(), web);
            let v: Value = serde_json::from_str(&stdout(&run(&web_path, true))).unwrap();
            assert_eq!(v["kept"], web.len());
            assert_eq!(v["result"], u32::MAX);
            let o = run(&ssh_path, false);
            assert_eq!(stdout(&o), "DROP (0)\n");
            assert_eq!(std::fs::read(&out).unwrap(), b"");
        }
    }
}

#[test]
fn unmodelled_program_types_are_refused_unless_a_type_is_given() {
    let obj = object("sections.o");
    for engine in ENGINES {
        let o = bpfx(&[
            "run",
            &obj,
            "--section",
            "flow_dissector",
            "--engine",
            engine,
        ]);
        assert_eq!(o.status.code(), Some(1));
        assert!(
            stderr(&o).contains("is a flow_dissector program, a type bpfx does not run"),
            "{}",
            stderr(&o)
        );
        let o = bpfx(&["verify", &obj, "--section", "flow_dissector"]);
        assert_eq!(o.status.code(), Some(1));
        assert!(stderr(&o).contains("flow_dissector"), "{}", stderr(&o));
        // --type (an alias of --ctx) says how to run it: len 120 > 100.
        let packet = tmp("long.bin", &[0u8; 120]);
        let o = bpfx(&[
            "run",
            &obj,
            "--section",
            "flow_dissector",
            "--type",
            "tc",
            "--packet",
            packet.to_str().unwrap(),
            "--engine",
            engine,
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(stdout(&o), "TC_ACT_RECLASSIFY (1)\n");
        // A cgroup_skb program runs as one, on an IP packet: len 120 > 100 allows it.
        let o = bpfx(&[
            "run",
            &obj,
            "--section",
            "cgroup_skb/ingress",
            "--packet",
            packet.to_str().unwrap(),
            "--engine",
            engine,
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(stdout(&o), "ALLOW (1)\n");
        // The samples' `xdp_prog` section is XDP.
        let o = bpfx(&[
            "run",
            &obj,
            "--section",
            "xdp_prog",
            "--packet",
            packet.to_str().unwrap(),
            "--engine",
            engine,
            "--ingress-ifindex",
            "7",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(stdout(&o), "XDP_TX (3)\n");
    }
}

#[test]
fn verify_applies_each_types_access_rules_to_plain_programs() {
    // Reads __sk_buff.data: direct packet access, TC's and not a socket filter's.
    let prog = tmp("data.asm", b"ldxw r2, [r1+76]\nmov r0, 0\nexit\n");
    let o = bpfx(&["verify", prog.to_str().unwrap(), "--ctx", "tc", "--strict"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = bpfx(&["verify", prog.to_str().unwrap(), "--type", "socket"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o)
            .contains("insn #0: ldxw r2, [r1+76]: invalid access to context at offset 76 size 4"),
        "{}",
        stderr(&o)
    );
    // Legacy packet loads: a socket filter's, never XDP's.
    let prog = tmp("ldabs.asm", b"ldabsh 12\nexit\n");
    let o = bpfx(&[
        "verify",
        prog.to_str().unwrap(),
        "--ctx",
        "socket",
        "--strict",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = bpfx(&["verify", prog.to_str().unwrap(), "--ctx", "xdp"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("legacy packet loads"), "{}", stderr(&o));
}

#[test]
fn a_bare_program_with_dump_maps_still_runs_on_plain_memory() {
    // Bare programs get an object section of their own; it must not imply a program type.
    let prog = tmp("five.asm", b"mov r0, 5\nexit\n");
    for engine in ENGINES {
        let o = bpfx(&[
            "run",
            prog.to_str().unwrap(),
            "--dump-maps",
            "--engine",
            engine,
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(stdout(&o), "5 (0x5)\n");
    }
}

#[test]
fn a_cgroup_skb_program_runs_on_an_ip_packet_with_its_socket() {
    let obj = object("cgskb.o");
    // UDP 10.0.0.1:1234 -> 10.0.0.2:5201, 8 bytes of payload: 36 bytes from the IP header.
    let mut packet = vec![
        0x45, 0, 0, 36, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
    ];
    packet.extend_from_slice(&[0x04, 0xd2, 0x14, 0x51, 0, 16, 0, 0]);
    packet.extend_from_slice(b"abcdefgh");
    let path = tmp("cgskb_udp.bin", &packet);
    for engine in ENGINES {
        let o = bpfx(&[
            "run",
            &obj,
            "--section",
            "cgroup_skb/egress",
            "--packet",
            path.to_str().unwrap(),
            "--engine",
            engine,
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        // Allowed with congestion notified (3); mark = UDP; cb = len, protocol (network
        // order), AF_INET, the socket's local and remote addresses (from the packet).
        assert_eq!(
            stdout(&o),
            "ALLOW (congestion notified) (3)\nmark 0x0 -> 0x11\ncb[0] 0x0 -> 0x24\n\
             cb[1] 0x0 -> 0x8\ncb[2] 0x0 -> 0x2\ncb[3] 0x0 -> 0x100000a\ncb[4] 0x0 -> 0x200000a\n"
        );
        // A plain program verified as cgroup skb: its packet is read-only, its return
        // value 0 or 1 at ingress (Strict), 0 to 3 at egress.
        let store = tmp(
            "cgskb_store.asm",
            b"ldxw r2, [r1+76]\nldxw r3, [r1+80]\nmov r4, r2\nadd r4, 1\njgt r4, r3, +1\n\
              stb [r2+0], 1\nmov r0, 1\nexit\n",
        );
        let o = bpfx(&["verify", store.to_str().unwrap(), "--ctx", "cgroup_skb"]);
        assert_eq!(o.status.code(), Some(1));
        assert!(
            stderr(&o).contains("insn #5: stb [r2+0], 1: cannot write into packet through r2"),
            "{}",
            stderr(&o)
        );
        let two = tmp("cgskb_two.asm", b"mov r0, 2\nexit\n");
        let o = bpfx(&[
            "verify",
            two.to_str().unwrap(),
            "--ctx",
            "cgroup_skb",
            "--strict",
        ]);
        assert_eq!(o.status.code(), Some(1));
        let o = bpfx(&[
            "verify",
            two.to_str().unwrap(),
            "--ctx",
            "cgroup_skb_egress",
            "--strict",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        // The unsafe twin writing the packet is refused.
        let o = bpfx(&[
            "run",
            &object("cgskb_bad_1.o"),
            "--packet",
            path.to_str().unwrap(),
            "--engine",
            engine,
        ]);
        assert_eq!(o.status.code(), Some(1));
        assert!(
            stderr(&o).contains("cannot write into packet through r1"),
            "{}",
            stderr(&o)
        );
    }
}
