//! Program types from section names and the socket-buffer context: TC programs and socket
//! filters built by clang for the kernel's `struct __sk_buff` (`tests/objects/tc_classify.c`,
//! `sock_port80.c`, `sections.c`) and hand-written ones, run on the interpreter and on the JIT
//! with every option set, in Checked and Strict mode, against results computed here.

mod common;

use bpfx::{
    Context, Error, Mode, Object, ProgramDef, SkbMeta, SocketVerdict, TcAction, Vm, XdpAction,
    XdpMeta,
};
use common::{code, engines, prepare};
use std::path::PathBuf;

fn object(name: &str) -> Object {
    let path = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/objects")).join(name);
    Object::open(path).unwrap()
}

const MODES: [Mode; 2] = [Mode::Checked, Mode::Strict];

/// An Ethernet frame: `ethertype`, then (for IPv4) a header of `ihl` words with protocol
/// `proto` and fragment field `frag`, then a TCP header to `dport`, then `extra` bytes; cut to
/// `cut` bytes when given.
fn frame(ethertype: u16, proto: u8, ihl: u8, frag: u16, dport: u16, cut: Option<usize>) -> Vec<u8> {
    let mut p = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2];
    p.extend_from_slice(&ethertype.to_be_bytes());
    let mut ip = vec![0u8; usize::from(ihl) * 4];
    ip[0] = 0x40 | ihl;
    ip[6..8].copy_from_slice(&frag.to_be_bytes());
    ip[8] = 64;
    ip[9] = proto;
    p.extend_from_slice(&ip);
    let mut tcp = vec![0u8; 20];
    tcp[0..2].copy_from_slice(&40000u16.to_be_bytes());
    tcp[2..4].copy_from_slice(&dport.to_be_bytes());
    tcp[12] = 0x50;
    p.extend_from_slice(&tcp);
    p.extend_from_slice(b"payload");
    if let Some(n) = cut {
        p.truncate(n);
    }
    p
}

/// What `tc_classify.c` does, written again from its description: the verdict and the
/// metadata after the run.
fn tc_model(p: &[u8], meta: &SkbMeta) -> (TcAction, SkbMeta) {
    let mut m = *meta;
    let len = p.len() as u32;
    m.priority = m.ifindex.wrapping_mul(16).wrapping_add(len & 15);
    if m.protocol != 0x0800 {
        return (TcAction::Ok, m);
    }
    if p.len() < 14 + 20 || p[14 + 9] != 6 {
        return (TcAction::Shot, m);
    }
    let tcp = 14 + usize::from(p[14] & 0xf) * 4;
    if p.len() < tcp + 20 {
        return (TcAction::Shot, m);
    }
    let dport = u16::from_be_bytes([p[tcp + 2], p[tcp + 3]]);
    if dport == 23 {
        return (TcAction::Shot, m);
    }
    m.mark ^= u32::from(dport);
    m.cb[1] = len;
    (TcAction::Ok, m)
}

#[test]
fn tc_classifier_reads_and_writes_the_skb_and_classifies_with_direct_packet_access() {
    let cases = [
        (frame(0x0800, 6, 5, 0, 80, None), 0x0800),
        (frame(0x0800, 6, 5, 0, 23, None), 0x0800),
        (frame(0x0800, 6, 7, 0, 443, None), 0x0800),
        (frame(0x0800, 17, 5, 0, 80, None), 0x0800),
        (frame(0x0800, 6, 5, 0, 80, Some(40)), 0x0800),
        (frame(0x0800, 6, 5, 0, 80, Some(20)), 0x0800),
        (frame(0x0806, 6, 5, 0, 80, None), 0x0806),
        (frame(0x86dd, 6, 5, 0, 80, Some(10)), 0x86dd),
    ];
    for mode in MODES {
        for (name, opts) in engines() {
            let obj = object("tc_classify.o");
            let info = obj.programs().next().unwrap();
            assert_eq!(info.context(), Context::Tc);
            let v = obj.program("tc_classify").unwrap().verify(mode).unwrap();
            let mut prog = prepare(v, opts);
            for (i, (packet, protocol)) in cases.iter().enumerate() {
                let meta = SkbMeta {
                    protocol: *protocol,
                    ifindex: 3 + i as u32,
                    mark: 0xa500 + i as u32,
                    cb: [9, 8, 7, 6, 5],
                    ..SkbMeta::default()
                };
                let (want, want_meta) = tc_model(packet, &meta);
                let mut got_meta = meta;
                let mut p = packet.clone();
                let got = prog.run_tc(&mut p, &mut got_meta).unwrap();
                assert_eq!(got, want, "{mode:?} {name} case {i}");
                assert_eq!(got_meta, want_meta, "{mode:?} {name} case {i}");
                assert_eq!(&p, packet, "{mode:?} {name} case {i}");
            }
            // Another context's run method is refused.
            let e = prog.run_xdp(&mut [0u8; 64]).unwrap_err();
            assert!(matches!(e, bpfx::RunError::WrongContext { .. }), "{e}");
        }
    }
}

#[test]
fn socket_filter_keeps_tcp_port_80_with_legacy_packet_loads() {
    let cases = [
        (frame(0x0800, 6, 5, 0, 80, None), true),
        (frame(0x0800, 6, 8, 0, 80, None), true),
        (frame(0x0800, 6, 5, 0, 8080, None), false),
        (frame(0x0800, 17, 5, 0, 80, None), false),
        (frame(0x0800, 6, 5, 0x0010, 80, None), false),
        (frame(0x0800, 6, 5, 0x4000, 80, None), true),
        (frame(0x0806, 6, 5, 0, 80, None), false),
        // Cut inside the port: the load past the end ends the program with 0.
        (frame(0x0800, 6, 5, 0, 80, Some(14 + 20 + 3)), false),
        (frame(0x0800, 6, 5, 0, 80, Some(14 + 20 + 4)), true),
        (frame(0x0800, 6, 5, 0, 80, Some(13)), false),
        (Vec::new(), false),
    ];
    for mode in MODES {
        for (name, opts) in engines() {
            let obj = object("sock_port80.o");
            assert_eq!(obj.programs().next().unwrap().context(), Context::Socket);
            let v = obj.program("tcp_port_80").unwrap().verify(mode).unwrap();
            let mut prog = prepare(v, opts);
            for (i, (packet, keep)) in cases.iter().enumerate() {
                let got = prog.run_socket(packet, &SkbMeta::default()).unwrap();
                let want = if *keep {
                    SocketVerdict {
                        code: u32::MAX,
                        kept: packet.len(),
                    }
                } else {
                    SocketVerdict { code: 0, kept: 0 }
                };
                assert_eq!(got, want, "{mode:?} {name} case {i}");
            }
        }
    }
}

#[test]
fn sections_of_older_tools_get_their_type_and_unmodelled_types_are_refused() {
    let obj = object("sections.o");
    let ctx: Vec<(String, Context)> = obj
        .programs()
        .map(|p| (p.name.to_string(), p.context()))
        .collect();
    assert_eq!(
        ctx,
        [
            ("xdp_legacy".to_string(), Context::Xdp),
            ("probe".to_string(), Context::Kprobe),
            (
                "cg_ingress".to_string(),
                Context::CgroupSkb(bpfx::CgroupSkbHook::Ingress)
            ),
            (
                "flow_len".to_string(),
                Context::Unsupported("flow_dissector")
            ),
        ]
    );
    for mode in MODES {
        for (name, opts) in engines() {
            let v = obj.program("xdp_legacy").unwrap().verify(mode).unwrap();
            let mut prog = prepare(v, opts.clone());
            let mut p = vec![0u8; 14];
            assert_eq!(prog.run_xdp(&mut p).unwrap(), XdpAction::Pass, "{name}");
            let meta = XdpMeta {
                ingress_ifindex: 7,
                ..XdpMeta::default()
            };
            assert_eq!(prog.run_xdp_with(&mut p, &meta).unwrap(), XdpAction::Tx);
            assert_eq!(prog.run_xdp(&mut [0u8; 13]).unwrap(), XdpAction::Drop);
            // Explicitly a TC program: the flow dissector's code reads __sk_buff.len.
            let v = obj
                .program("flow_len")
                .unwrap()
                .context(Context::Tc)
                .verify(mode)
                .unwrap();
            let mut prog = prepare(v, opts);
            let mut meta = SkbMeta::default();
            assert_eq!(
                prog.run_tc(&mut [0u8; 101], &mut meta).unwrap(),
                TcAction::Reclassify,
                "{name}"
            );
            assert_eq!(
                prog.run_tc(&mut [0u8; 100], &mut meta).unwrap(),
                TcAction::Ok
            );
        }
        // The kprobe reads the first register of its pt_regs (r15).
        let v = obj.program("probe").unwrap().verify(mode).unwrap();
        let regs = bpfx::PtRegs {
            r15: 41,
            ..bpfx::PtRegs::default()
        };
        assert_eq!(v.interpret().run_kprobe(&regs).unwrap(), 41);
        {
            let (prog, kind) = ("flow_len", "flow_dissector");
            let e = obj.program(prog).unwrap().verify(mode).unwrap_err();
            assert!(
                matches!(&e, Error::UnsupportedProgramType { prog_type, .. } if *prog_type == kind),
                "{e}"
            );
            assert!(
                e.to_string().contains(&format!("is a {kind} program")),
                "{e}"
            );
            let e = obj.program(prog).unwrap().check(mode).unwrap_err();
            assert!(matches!(e, Error::UnsupportedProgramType { .. }), "{e}");
        }
    }
}

#[test]
fn section_names_map_to_program_types_as_libbpf_and_older_tools_do() {
    for (section, want) in [
        ("xdp", Context::Xdp),
        ("xdp/devmap", Context::Xdp),
        ("xdp.frags", Context::Xdp),
        ("xdp.frags/cpumap", Context::Xdp),
        ("xdp1", Context::Xdp),
        ("xdp_prog", Context::Xdp),
        ("prog", Context::Xdp),
        ("tc", Context::Tc),
        ("tc/ingress", Context::Tc),
        ("tcx/ingress", Context::Tc),
        ("tcx/egress", Context::Tc),
        ("classifier", Context::Tc),
        ("classifier/flow", Context::Tc),
        ("action", Context::Tc),
        // cilium/ebpf's (and libbpf's before 1.0) prefix rule, with a separator.
        ("tc/entry", Context::Tc),
        ("tc/tail", Context::Tc),
        ("tc_cls", Context::Tc),
        ("tc-ingress", Context::Tc),
        ("classifier_ingress", Context::Tc),
        ("classifier-egress", Context::Tc),
        ("socket", Context::Socket),
        ("socket1", Context::Socket),
        ("kprobe/sys_open", Context::Kprobe),
        ("kretprobe/x", Context::Kprobe),
        ("uprobe", Context::Kprobe),
        (
            "tracepoint/syscalls/sys_enter_open",
            Context::Tracepoint { size: 8192 },
        ),
        ("tp/sched/sched_switch", Context::Tracepoint { size: 8192 }),
        ("raw_tp/sys_enter", Context::RawTracepoint { args: 12 }),
        ("fentry/do_unlinkat", Context::Tracing { args: 13 }),
        ("iter/task", Context::Unsupported("tracing")),
        ("lsm/file_open", Context::Unsupported("lsm")),
        ("perf_event", Context::PerfEvent),
        (
            "cgroup_skb/egress",
            Context::CgroupSkb(bpfx::CgroupSkbHook::Egress),
        ),
        (
            "cgroup_skb/ingress",
            Context::CgroupSkb(bpfx::CgroupSkbHook::Ingress),
        ),
        // No attach type: the kernel's 0, ingress.
        (
            "cgroup/skb",
            Context::CgroupSkb(bpfx::CgroupSkbHook::Ingress),
        ),
        // libbpf knows no other cgroup_skb section.
        ("cgroup_skb/forward", Context::Unsupported("cgroup_skb")),
        (
            "cgroup/connect4",
            Context::SockAddr(bpfx::SockAddrHook::Connect4),
        ),
        ("cgroup/foo", Context::Unsupported("cgroup_sock_addr")),
        ("cgroup/dev", Context::CgroupDevice),
        ("sockops", Context::SockOps),
        ("sk_skb/stream_verdict", Context::SkSkb),
        ("sk_skb/stream_parser", Context::SkSkb),
        ("sk_skb", Context::SkSkb),
        // libbpf knows no other sk_skb section.
        ("sk_skb/other", Context::Unsupported("sk_skb")),
        ("sk_msg", Context::SkMsg),
        // libbpf knows no other sk_msg section.
        ("sk_msg/other", Context::Unsupported("sk_msg")),
        ("lwt_xmit", Context::Lwt(bpfx::LwtHook::Xmit)),
        ("lwt_in/legacy", Context::Lwt(bpfx::LwtHook::In)),
        ("flow_dissector", Context::Unsupported("flow_dissector")),
        ("sk_lookup", Context::SkLookup),
        // Not libbpf's: `tcfoo` is not `tc`, `kprobex` not `kprobe+`.
        ("tcfoo", Context::Memory),
        ("classifierx", Context::Memory),
        ("kprobex", Context::Memory),
        (".text", Context::Memory),
        ("filter", Context::Memory),
    ] {
        assert_eq!(Context::for_section(section), want, "{section}");
    }
    assert_eq!(Context::parse("sched_cls"), Some(Context::Tc));
    assert_eq!(Context::parse("socket"), Some(Context::Socket));
    assert_eq!(Context::parse("kprobe"), Some(Context::Kprobe));
    assert_eq!(Context::parse("raw_tp"), Some(Context::RAW_TRACEPOINT));
    assert_eq!(
        Context::parse("cgroup_skb"),
        Some(Context::CgroupSkb(bpfx::CgroupSkbHook::Ingress))
    );
    assert_eq!(
        Context::parse("cgroup_skb/egress"),
        Some(Context::CgroupSkb(bpfx::CgroupSkbHook::Egress))
    );
    assert_eq!(Context::parse("cgroup_skb/x"), None);
}

/// A hand-written program on `section`'s context, verified in `mode`; on success, run on
/// every engine.
fn build(
    section: &str,
    text: &str,
    mode: Mode,
) -> Result<Vec<(&'static str, bpfx::Program)>, Error> {
    let vm = Vm::new();
    let obj = vm
        .object(vec![ProgramDef::new("p", section, code(text))], vec![])
        .unwrap();
    let mut out = Vec::new();
    for (name, opts) in engines() {
        let v = obj.program("p")?.verify(mode)?;
        out.push((name, prepare(v, opts)));
    }
    Ok(out)
}

fn refusal(section: &str, text: &str) -> String {
    let mut msgs = Vec::new();
    for mode in MODES {
        match build(section, text, mode) {
            Err(e) => msgs.push(e.to_string()),
            Ok(_) => panic!("{mode:?}: {section} accepted {text}"),
        }
    }
    assert_eq!(msgs[0], msgs[1]);
    msgs.pop().unwrap()
}

#[test]
fn the_kernel_access_rules_of_each_program_type() {
    let load = |off: u32, size: &str| format!("ldx{size} r2, [r1+{off}]\nmov r0, 0\nexit");
    let store =
        |off: u32, size: &str| format!("mov r2, 1\nstx{size} [r1+{off}], r2\nmov r0, 0\nexit");
    // The packet's socket: `sk`, 8 bytes.
    for section in ["tc", "socket"] {
        for mode in MODES {
            build(section, &load(168, "dw"), mode).unwrap_or_else(|e| panic!("{section} sk: {e}"));
        }
    }
    // Both types: u32 fields whole or narrow, cb by any aligned size.
    for section in ["tc", "socket"] {
        for text in [
            load(0, "w"),
            load(8, "b"),
            load(10, "h"),
            load(16, "w"),
            load(48, "dw"),
            load(64, "w"),
            store(48, "dw"),
            store(50, "h"),
            store(67, "b"),
            load(176, "w"),
        ] {
            for mode in MODES {
                build(section, &text, mode).unwrap_or_else(|e| panic!("{section} {text}: {e}"));
            }
        }
        for (text, why) in [
            (load(2, "w"), "invalid access to context at offset 2 size 4"),
            (
                load(49, "h"),
                "invalid access to context at offset 49 size 2",
            ),
            (
                load(64, "dw"),
                "invalid access to context at offset 64 size 8",
            ),
            (store(0, "w"), "read-only context field at offset 0 size 4"),
            (store(4, "w"), "read-only context field at offset 4 size 4"),
            (
                load(88, "w"),
                "invalid access to context at offset 88 size 4",
            ),
            // `sk` is read whole: 8 bytes.
            (
                load(168, "w"),
                "invalid access to context at offset 168 size 4",
            ),
            (
                load(192, "w"),
                "invalid access to context at offset 192 size 4",
            ),
            (
                "mov r2, 1\nlock add32 [r1+48], r2\nmov r0, 0\nexit".to_string(),
                "invalid access to context at offset 48 size 4",
            ),
        ] {
            let e = refusal(section, &text);
            assert!(e.contains(why), "{section} {text}: {e}");
        }
    }
    // TC writes mark, priority, tc_index, tc_classid, queue_mapping and tstamp, reads the
    // packet pointers, wire_len and the time stamps.
    for text in [
        store(8, "w"),
        store(32, "w"),
        store(44, "w"),
        store(72, "w"),
        store(12, "w"),
        store(152, "dw"),
        load(76, "w"),
        load(140, "w"),
        load(160, "h"),
        load(184, "dw"),
        load(180, "b"),
    ] {
        for mode in MODES {
            build("tc", &text, mode).unwrap_or_else(|e| panic!("tc {text}: {e}"));
        }
    }
    for (text, why) in [
        (
            store(8, "h"),
            "invalid access to context at offset 8 size 2",
        ),
        (
            load(152, "w"),
            "invalid access to context at offset 152 size 4",
        ),
        (
            store(184, "dw"),
            "read-only context field at offset 184 size 8",
        ),
        (
            store(76, "w"),
            "read-only context field at offset 76 size 4",
        ),
    ] {
        let e = refusal("tc", &text);
        assert!(e.contains(why), "tc {text}: {e}");
    }
    // Socket filters write only cb, and see no packet pointers, tc_classid or time stamps.
    for (off, size) in [
        (76, "w"),
        (80, "w"),
        (140, "w"),
        (72, "w"),
        (160, "w"),
        (152, "dw"),
    ] {
        let e = refusal("socket", &load(off, size));
        assert!(
            e.contains(&format!("invalid access to context at offset {off}")),
            "{off}: {e}"
        );
    }
    for off in [8, 12, 32, 44] {
        let e = refusal("socket", &store(off, "w"));
        assert!(e.contains("read-only context field"), "{off}: {e}");
    }
    // Legacy packet loads: refused where the kernel refuses them (XDP).
    let e = refusal("xdp", "ldabsb 0\nexit");
    assert!(e.contains("legacy packet loads"), "{e}");
}

#[test]
fn tc_writes_reach_the_packet_and_the_metadata_on_every_engine() {
    // Narrow loads of mark, a packet write through data, cb as two 8-byte stores, tstamp,
    // queue_mapping, tc_index and tc_classid written (the last three with values the kernel
    // stores narrower), and r0 = the low byte of mark + the packet's first byte.
    let text = "ldxw r2, [r1+76]\n\
                ldxw r3, [r1+80]\n\
                mov r4, r2\n\
                add r4, 2\n\
                jgt r4, r3, +16\n\
                ldxb r5, [r2+0]\n\
                ldxb r6, [r1+8]\n\
                ldxh r7, [r1+10]\n\
                stb [r2+1], 0x5a\n\
                lddw r8, 0x1111222233334444\n\
                stxdw [r1+48], r8\n\
                stxdw [r1+56], r8\n\
                stxdw [r1+152], r8\n\
                stw [r1+12], 0xffff\n\
                stw [r1+44], 0x12345\n\
                stw [r1+72], 0x10002\n\
                stxw [r1+32], r7\n\
                mov r0, r6\n\
                add r0, r5\n\
                exit\n\
                mov r0, -1\n\
                exit";
    for mode in MODES {
        for (name, mut prog) in build("classifier", text, mode).unwrap() {
            let mut meta = SkbMeta {
                mark: 0xbeef_0010,
                queue_mapping: 4,
                cb: [1, 2, 3, 4, 5],
                ..SkbMeta::default()
            };
            let mut p = [0x20, 0, 0];
            let got = prog.run_tc(&mut p, &mut meta).unwrap();
            assert_eq!(got, TcAction::Unknown(0x30), "{mode:?} {name}");
            assert_eq!(p, [0x20, 0x5a, 0]);
            let want = SkbMeta {
                mark: 0xbeef_0010,
                priority: 0xbeef,
                queue_mapping: 4,
                tc_index: 0x2345,
                tc_classid: 2,
                cb: [0x3333_4444, 0x1111_2222, 0x3333_4444, 0x1111_2222, 5],
                tstamp: 0x1111_2222_3333_4444,
                ..SkbMeta::default()
            };
            assert_eq!(meta, want, "{mode:?} {name}");
            // Too short for the check: -1.
            let mut short = [1u8];
            assert_eq!(
                prog.run_tc(&mut short, &mut meta).unwrap(),
                TcAction::Unspec
            );
        }
    }
}

#[test]
fn legacy_packet_loads_read_the_packet_not_the_struct() {
    // ldind with an index from cb[0]: the packet's bytes at cb[0] + 1 (a 16-bit load), or 0
    // when they lie outside; cb[0] = -3 wraps to a huge offset, never into the struct.
    let text = "ldxw r6, [r1+48]\n\
                lsh r6, 32\n\
                arsh r6, 32\n\
                ldabsb 0\n\
                mov r7, r0\n\
                ldindh r6, 1\n\
                lsh r7, 16\n\
                or r0, r7\n\
                exit";
    for section in ["tc", "socket"] {
        for mode in MODES {
            for (name, mut prog) in build(section, text, mode).unwrap() {
                let packet = [0xa1u8, 0xb2, 0xc3, 0xd4];
                for (cb0, want) in [
                    (0u32, 0xa1_b2c3u64),
                    (1, 0xa1_c3d4),
                    (2, 0),
                    (3, 0),
                    (u32::MAX, 0xa1_a1b2),
                    (-3i32 as u32, 0),
                    (-300i32 as u32, 0),
                ] {
                    let mut meta = SkbMeta {
                        cb: [cb0, 0, 0, 0, 0],
                        ..SkbMeta::default()
                    };
                    let got = if section == "tc" {
                        let mut p = packet;
                        u64::from(prog.run_tc(&mut p, &mut meta).unwrap().code() as u32)
                    } else {
                        // Socket filters start with cb zeroed: the offset is always 1.
                        let v = prog.run_socket(&packet, &meta).unwrap();
                        assert_eq!(v.kept, 4, "{name}");
                        assert_eq!(u64::from(v.code), 0xa1_b2c3, "{mode:?} {name} cb0={cb0}");
                        continue;
                    };
                    assert_eq!(got, want, "{section} {mode:?} {name} cb0={cb0}");
                }
            }
        }
    }
}

#[test]
fn legacy_packet_loads_charge_the_budget_alike_on_both_engines() {
    // Cut inside the TCP port: the last load ends the run early (the halt path).
    let cases = [
        frame(0x0800, 6, 5, 0, 80, None),
        frame(0x0800, 6, 5, 0, 80, Some(14 + 20 + 3)),
        frame(0x0806, 6, 5, 0, 80, None),
    ];
    for mode in MODES {
        let mut left = Vec::new();
        for engine in bpfx::Engine::ALL {
            let obj = object("sock_port80.o");
            let v = obj.program("tcp_port_80").unwrap().verify(mode).unwrap();
            let mut prog = v.engine(engine, true).unwrap();
            let mut per = Vec::new();
            for p in &cases {
                prog.set_budget(Some(1000));
                let v = prog.run_socket(p, &SkbMeta::default()).unwrap();
                per.push((v, prog.budget()));
            }
            left.push(per);
        }
        assert_eq!(left[0], left[1], "{mode:?}");
        assert!(
            left[0][1].1 > left[0][0].1,
            "the halt stops early: {left:?}"
        );
    }
}
