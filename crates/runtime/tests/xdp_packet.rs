//! XDP on packet buffers: `xdp_adjust_head`, `xdp_adjust_tail`, `xdp_adjust_meta` and
//! `redirect` with the kernel's limits and errnos, the outcome of a run (and of a TC run:
//! `TcOutcome`), the slice API's rule
//! for programs that move the frame, and three clang-built fixtures (`tests/objects/xdp_decap.c`,
//! `xdp_trunc.c`, `xdp_lb.c`) checked byte for byte against packets built here — on the
//! interpreter and the JIT with every option set, in Checked and Strict mode.

mod common;

use bpfx::{
    Mode, Object, Packet, ProgramDef, RedirectTarget, SkbMeta, TcAction, TcOutcome, TrapKind, Vm,
    XdpAction, XdpOutcome,
};
use common::{code, engines, prepare};
use std::path::PathBuf;

const MODES: [Mode; 2] = [Mode::Checked, Mode::Strict];
const EINVAL: u64 = -22i64 as u64;
const EACCES: u64 = -13i64 as u64;

fn object(name: &str) -> Object {
    let path = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/objects")).join(name);
    Object::open(path).unwrap()
}

/// A 60-byte frame whose bytes count up from 1.
fn frame60() -> Vec<u8> {
    (1..=60).collect()
}

/// Runs assembled XDP program `text` on a copy of `packet` on every engine in both modes; the
/// outcome and the packet after, checked to be the same everywhere.
fn run_asm(text: &str, packet: &Packet) -> (XdpOutcome, Packet) {
    let mut seen: Option<(XdpOutcome, Packet)> = None;
    for mode in MODES {
        for (name, opts) in engines() {
            let obj = Vm::new()
                .object(vec![ProgramDef::new("p", "xdp", code(text))], vec![])
                .unwrap();
            let v = obj
                .program("p")
                .unwrap()
                .verify(mode)
                .unwrap_or_else(|e| panic!("{mode:?}: {e}\n{text}"));
            let mut prog = prepare(v, opts);
            let mut p = packet.clone();
            let out = prog
                .run_xdp_packet(&mut p)
                .unwrap_or_else(|e| panic!("{mode:?} {name}: {e}\n{text}"));
            match &seen {
                None => seen = Some((out, p)),
                Some(s) => assert_eq!(*s, (out, p), "{mode:?} {name}\n{text}"),
            }
        }
    }
    seen.unwrap()
}

/// `call id` with r1 = the context and r2 = `delta`; r0 is the verdict.
fn call(id: u32, delta: i32) -> String {
    format!("mov r2, {delta}\ncall {id}\nexit")
}

#[test]
fn adjust_head_grows_into_the_headroom_and_shrinks_to_an_ethernet_header() {
    let frame = frame60();
    // 256 bytes of headroom of which the kernel keeps 40.
    let (out, p) = run_asm(&call(44, -216), &Packet::new(&frame));
    assert_eq!((out.action.code(), out.start, out.len), (0, 40, 276));
    assert_eq!(p.frame()[216..], frame[..]);
    let (out, p) = run_asm(&call(44, -217), &Packet::new(&frame));
    assert_eq!((out.action.code(), out.start, out.len), (EINVAL, 256, 60));
    assert_eq!(p.frame(), &frame[..]);
    // Shrinking leaves at least ETH_HLEN (14) bytes.
    let (out, p) = run_asm(&call(44, 46), &Packet::new(&frame));
    assert_eq!((out.action.code(), out.start, out.len), (0, 302, 14));
    assert_eq!(p.frame(), &frame[46..]);
    let (out, _) = run_asm(&call(44, 47), &Packet::new(&frame));
    assert_eq!((out.action.code(), out.len), (EINVAL, 60));
    // A small headroom: only what lies past the reserved 40 bytes.
    let (out, _) = run_asm(&call(44, -9), &Packet::with_room(&frame, 48, 0));
    assert_eq!((out.action.code(), out.start), (EINVAL, 48));
    let (out, _) = run_asm(&call(44, -8), &Packet::with_room(&frame, 48, 0));
    assert_eq!((out.action.code(), out.start), (0, 40));
}

#[test]
fn adjust_meta_keeps_a_multiple_of_4_bytes_up_to_32_and_the_head_moves_it() {
    let frame = frame60();
    // 8 bytes of metadata, written through data_meta without checking it against data
    // (Checked mode guards the access; Strict mode rejects it), then the head grown by 16: the
    // metadata moves along.
    let text = "mov r6, r1\n\
                mov r2, -8\n\
                call 54\n\
                jne r0, 0, +12\n\
                ldxw r2, [r6+8]\n\
                stw [r2+0], 0x44332211\n\
                stw [r2+4], 0x88776655\n\
                mov r1, r6\n\
                mov r2, -16\n\
                call 44\n\
                jne r0, 0, +5\n\
                mov r1, r6\n\
                mov r2, -208\n\
                call 44\n\
                mov r0, r0\n\
                exit\n\
                exit";
    let obj = Vm::new()
        .object(vec![ProgramDef::new("p", "xdp", code(text))], vec![])
        .unwrap();
    let e = obj.program("p").unwrap().verify(Mode::Strict).unwrap_err();
    assert!(e.to_string().contains("insn #5"), "{e}");
    for (name, opts) in engines() {
        let v = obj.program("p").unwrap().verify(Mode::Checked).unwrap();
        let mut prog = prepare(v, opts);
        let mut p = Packet::new(&frame);
        let out = prog.run_xdp_packet(&mut p).unwrap();
        // Grown by 16 (to 240), with 8 bytes of metadata: 240 - 8 - 40 = 192 left, not 208.
        assert_eq!(out.action.code(), EINVAL, "{name}");
        assert_eq!((out.start, out.len, out.meta_len), (240, 76, 8), "{name}");
        assert_eq!(
            p.meta(),
            [0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88],
            "{name}"
        );
        assert_eq!(p.frame()[16..], frame[..], "{name}");
    }
    for (delta, want, meta) in [
        (-32, 0, 32),
        (-36, EACCES, 0),
        (-6, EACCES, 0),
        (4, EINVAL, 0),
        (-4, 0, 4),
    ] {
        let (out, p) = run_asm(&call(54, delta), &Packet::new(&frame));
        assert_eq!((out.action.code(), out.meta_len), (want, meta), "{delta}");
        assert_eq!(p.meta(), vec![0; meta], "{delta}");
    }
    // The metadata cannot reach into the reserved head either.
    let (out, _) = run_asm(&call(54, -12), &Packet::with_room(&frame, 48, 0));
    assert_eq!(out.action.code(), EINVAL);
}

#[test]
fn metadata_checked_against_data_is_proven_and_written() {
    // Grows 8 bytes of metadata, loads data_meta and data again, checks meta + 8 <= data and
    // writes both words: Strict mode proves the stores.
    let text = "mov r6, r1\n\
                mov r2, -8\n\
                call 54\n\
                ldxw r2, [r6+8]\n\
                ldxw r3, [r6+0]\n\
                mov r4, r2\n\
                add r4, 8\n\
                jgt r4, r3, +2\n\
                stw [r2+0], 0x44332211\n\
                stw [r2+4], 0x88776655\n\
                mov r0, 2\n\
                exit";
    let (out, p) = run_asm(text, &Packet::new(&frame60()));
    assert_eq!(
        (out.action, out.start, out.len, out.meta_len),
        (XdpAction::Pass, 256, 60, 8)
    );
    assert_eq!(p.meta(), [0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88]);
    assert_eq!(p.frame(), &frame60()[..]);
    // Without metadata the check fails at run time: nothing is written.
    let (out, p) = run_asm(
        &text.replace("mov r2, -8", "mov r2, 0"),
        &Packet::new(&frame60()),
    );
    assert_eq!((out.action, out.meta_len), (XdpAction::Pass, 0));
    assert_eq!(p, Packet::new(&frame60()));
}

#[test]
fn adjust_tail_grows_into_the_tailroom_zeroed_and_shrinks_to_an_ethernet_header() {
    let frame = frame60();
    // Bytes the tail gave up and takes back come back zeroed, as the kernel clears them.
    let dirty = Packet::with_room(&frame, 256, 20);
    assert_eq!(dirty.tailroom(), 20);
    let text = "mov r6, r1\n\
                mov r2, -40\n\
                call 65\n\
                jne r0, 0, +3\n\
                mov r1, r6\n\
                mov r2, 60\n\
                call 65\n\
                exit";
    let (out, p) = run_asm(text, &dirty);
    assert_eq!((out.action.code(), out.len), (0, 80));
    assert_eq!(p.frame()[..20], frame[..20]);
    assert_eq!(p.frame()[20..], [0; 60]);
    assert_eq!(p.tailroom(), 0);
    let (out, _) = run_asm(&call(65, 21), &dirty);
    assert_eq!((out.action.code(), out.len), (EINVAL, 60));
    let (out, p) = run_asm(&call(65, -46), &dirty);
    assert_eq!((out.action.code(), p.frame()), (0, &frame[..14]));
    let (out, _) = run_asm(&call(65, -47), &dirty);
    assert_eq!((out.action.code(), out.len), (EINVAL, 60));
    // A page's tailroom by default (4096 - 320 - 256 - 60 bytes).
    let (out, _) = run_asm(&call(65, 3460), &Packet::new(&frame));
    assert_eq!((out.action.code(), out.len), (0, 3520));
    let (out, _) = run_asm(&call(65, 3461), &Packet::new(&frame));
    assert_eq!(out.action.code(), EINVAL);
}

#[test]
fn redirect_records_the_ifindex_with_the_kernels_flags() {
    let text = "mov r1, 7\nmov r2, 0\ncall 23\nexit";
    let (out, _) = run_asm(text, &Packet::new(&frame60()));
    assert_eq!(out.action, XdpAction::Redirect);
    assert_eq!(
        out.redirect,
        Some(RedirectTarget::Ifindex {
            ifindex: 7,
            ingress: false
        })
    );
    // XDP takes no flags: XDP_ABORTED, nothing recorded.
    let (out, _) = run_asm(
        "mov r1, 7\nmov r2, 1\ncall 23\nexit",
        &Packet::new(&frame60()),
    );
    assert_eq!((out.action, out.redirect), (XdpAction::Aborted, None));
    // TC: BPF_F_INGRESS only, TC_ACT_REDIRECT, else TC_ACT_SHOT.
    for (flags, want, target) in [
        (0, TcAction::Redirect, Some(false)),
        (1, TcAction::Redirect, Some(true)),
        (2, TcAction::Shot, None),
    ] {
        for (name, opts) in engines() {
            let text = format!("mov r1, 9\nmov r2, {flags}\ncall 23\nexit");
            let obj = Vm::new()
                .object(vec![ProgramDef::new("p", "tc", code(&text))], vec![])
                .unwrap();
            let v = obj.program("p").unwrap().verify(Mode::Strict).unwrap();
            let mut prog = prepare(v, opts);
            let mut pkt = frame60();
            let got = prog.run_tc(&mut pkt, &mut SkbMeta::default()).unwrap();
            assert_eq!(got, want, "{name} {flags}");
            let expect = target.map(|ingress| RedirectTarget::Ifindex {
                ifindex: 9,
                ingress,
            });
            assert_eq!(prog.last_redirect(), expect, "{name} {flags}");
        }
    }
}

#[test]
fn a_tc_outcome_carries_the_verdict_the_fields_written_and_the_redirect() {
    // mark = 0x2a, then redirect(5, BPF_F_INGRESS).
    let text = "stw [r1+8], 0x2a\nmov r1, 5\nmov r2, 1\ncall 23\nexit";
    for (name, opts) in engines() {
        let obj = Vm::new()
            .object(vec![ProgramDef::new("p", "tc", code(text))], vec![])
            .unwrap();
        let v = obj.program("p").unwrap().verify(Mode::Strict).unwrap();
        let mut prog = prepare(v, opts);
        let meta = SkbMeta {
            mark: 7,
            priority: 3,
            ..SkbMeta::default()
        };
        let out = prog.run_tc_outcome(&mut frame60(), &meta).unwrap();
        let want = TcOutcome {
            action: TcAction::Redirect,
            meta: SkbMeta { mark: 0x2a, ..meta },
            redirect: Some(RedirectTarget::Ifindex {
                ifindex: 5,
                ingress: true,
            }),
            clones: vec![],
            assigned: None,
        };
        assert_eq!(out, want, "{name}");
    }
}

#[test]
fn adjust_helpers_outside_xdp_fail_the_run() {
    // A TC program cannot name them at all, as in the kernel.
    let text = "mov r2, 4\ncall 44\nexit";
    let obj = Vm::new()
        .object(vec![ProgramDef::new("p", "tc", code(text))], vec![])
        .unwrap();
    let e = obj.program("p").unwrap().verify(Mode::Checked).unwrap_err();
    assert!(
        e.to_string()
            .contains("program of type sched_cls cannot use helper xdp_adjust_head#44"),
        "{e}"
    );
    // A plain-memory program may name every helper; this one fails its run.
    for (name, opts) in engines() {
        let obj = Vm::new()
            .object(vec![ProgramDef::new("p", "test", code(text))], vec![])
            .unwrap();
        let v = obj.program("p").unwrap().verify(Mode::Checked).unwrap();
        let mut prog = prepare(v, opts);
        match prog.run(&mut [0u8; 8]) {
            Err(bpfx::RunError::Trap { trap, reason, .. }) => {
                assert_eq!(trap.kind, TrapKind::HelperError, "{name}");
                assert!(reason.unwrap().contains("needs an XDP program"), "{name}");
            }
            other => panic!("{name}: {other:?}"),
        }
    }
    // r1 not the context: refused, not trusted.
    for (name, opts) in engines() {
        let text = "mov r1, r10\nmov r2, 4\ncall 44\nexit";
        let obj = Vm::new()
            .object(vec![ProgramDef::new("p", "xdp", code(text))], vec![])
            .unwrap();
        let v = obj.program("p").unwrap().verify(Mode::Checked).unwrap();
        let mut prog = prepare(v, opts);
        let e = prog
            .run_xdp_packet(&mut Packet::new(&frame60()))
            .unwrap_err();
        assert!(
            e.to_string().contains("is not the XDP context"),
            "{name}: {e}"
        );
    }
}

#[test]
fn the_slice_api_runs_programs_that_keep_the_frame_and_names_the_helper_otherwise() {
    for (name, opts) in engines() {
        // Moves the head in and back out: the frame is where it was.
        let text = "mov r6, r1\nmov r2, 14\ncall 44\nmov r1, r6\nmov r2, -14\ncall 44\n\
                    mov r0, 2\nexit";
        let obj = Vm::new()
            .object(vec![ProgramDef::new("p", "xdp", code(text))], vec![])
            .unwrap();
        let v = obj.program("p").unwrap().verify(Mode::Strict).unwrap();
        let mut prog = prepare(v, opts.clone());
        let mut pkt = frame60();
        assert_eq!(prog.run_xdp(&mut pkt).unwrap(), XdpAction::Pass, "{name}");
        assert_eq!(pkt, frame60());
        for (text, helper, start, len) in [
            (
                "mov r2, -4\ncall 44\nmov r0, 2\nexit",
                "xdp_adjust_head",
                -4,
                64,
            ),
            (
                "mov r2, -4\ncall 65\nmov r0, 2\nexit",
                "xdp_adjust_tail",
                0,
                56,
            ),
        ] {
            let obj = Vm::new()
                .object(vec![ProgramDef::new("p", "xdp", code(text))], vec![])
                .unwrap();
            let v = obj.program("p").unwrap().verify(Mode::Strict).unwrap();
            let mut prog = prepare(v, opts.clone());
            let mut pkt = frame60();
            match prog.run_xdp(&mut pkt) {
                Err(bpfx::RunError::FrameMoved {
                    helper: h,
                    len: 60,
                    new_start,
                    new_len,
                    ..
                }) => assert_eq!((h, new_start, new_len), (helper, start, len), "{name}"),
                other => panic!("{name}: {other:?}"),
            }
            assert_eq!(pkt, frame60(), "{name}: the slice is left as it was");
        }
    }
}

#[test]
fn a_refilled_packet_is_a_new_one_after_a_run_that_moved_its_frame() {
    // Shrinks the head by 20 (the frame's first bytes become headroom), takes 8 of them back
    // as metadata and cuts 10 bytes off the tail: the run leaves nonzero bytes around its
    // frame, and a start, a length and metadata of its own.
    let text = "mov r6, r1\nmov r2, 20\ncall 44\nmov r1, r6\nmov r2, -8\ncall 54\n\
                mov r1, r6\nmov r2, -10\ncall 65\nmov r0, 2\nexit";
    let second: Vec<u8> = (100..142).collect();
    for mode in MODES {
        for (name, opts) in engines() {
            let obj = Vm::new()
                .object(vec![ProgramDef::new("p", "xdp", code(text))], vec![])
                .unwrap();
            let v = obj.program("p").unwrap().verify(mode).unwrap();
            let mut prog = prepare(v.clone(), opts.clone());
            let mut p = Packet::new(&frame60());
            let out = prog.run_xdp_packet(&mut p).unwrap();
            assert_eq!(
                (out.start, out.len, out.meta_len),
                (276, 30, 8),
                "{mode:?} {name}"
            );
            p.refill(&second);
            assert_eq!(p, Packet::new(&second), "{mode:?} {name}");
            assert_eq!(p.meta(), &[] as &[u8], "{mode:?} {name}");
            // The same program's next run on it gives what a fresh program's run on a new
            // packet gives.
            let mut fresh = Packet::new(&second);
            let want = prepare(v, opts).run_xdp_packet(&mut fresh).unwrap();
            assert_eq!(
                prog.run_xdp_packet(&mut p).unwrap(),
                want,
                "{mode:?} {name}"
            );
            assert_eq!(p, fresh, "{mode:?} {name}");
        }
    }
}

#[test]
fn strict_mode_rejects_a_packet_pointer_kept_across_an_adjust() {
    // Checks 14 bytes, moves the head, reads through the old pointer.
    let text = "mov r6, r1\n\
                ldxw r7, [r1+0]\n\
                ldxw r3, [r1+4]\n\
                mov r4, r7\n\
                add r4, 14\n\
                jgt r4, r3, +5\n\
                mov r1, r6\n\
                mov r2, 4\n\
                call 44\n\
                ldxb r0, [r7+0]\n\
                exit\n\
                mov r0, 2\n\
                exit";
    let obj = Vm::new()
        .object(vec![ProgramDef::new("p", "xdp", code(text))], vec![])
        .unwrap();
    let e = obj.program("p").unwrap().verify(Mode::Strict).unwrap_err();
    assert!(e.to_string().contains("insn #9"), "{e}");
    // Without the call the read is proven.
    let ok = text.replace("call 44", "mov r0, 0");
    let obj = Vm::new()
        .object(vec![ProgramDef::new("p", "xdp", code(&ok))], vec![])
        .unwrap();
    obj.program("p").unwrap().verify(Mode::Strict).unwrap();
}

// ---- fixtures ----

/// RFC 1071 over big-endian 16-bit words, written out here: the checksum of `bytes`.
fn internet_checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for c in bytes.chunks(2) {
        sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

const DST_MAC: [u8; 6] = [0x02, 0xaa, 0, 0, 0, 1];
const SRC_MAC: [u8; 6] = [0x02, 0xbb, 0, 0, 0, 2];

fn ethernet(ethertype: u16) -> Vec<u8> {
    let mut e = DST_MAC.to_vec();
    e.extend_from_slice(&SRC_MAC);
    e.extend_from_slice(&ethertype.to_be_bytes());
    e
}

/// An IPv4 header (no options) with a correct checksum, over `payload_len` bytes.
fn ipv4(proto: u8, src: [u8; 4], dst: [u8; 4], payload_len: usize) -> Vec<u8> {
    let total = (20 + payload_len) as u16;
    let mut h = vec![0x45, 0];
    h.extend_from_slice(&total.to_be_bytes());
    h.extend_from_slice(&[0x12, 0x34, 0x40, 0, 64, proto, 0, 0]);
    h.extend_from_slice(&src);
    h.extend_from_slice(&dst);
    let c = internet_checksum(&h);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h
}

/// A TCP (proto 6, 20-byte header) or UDP (17) segment from `sport` to 80 carrying `data`,
/// checksummed over the pseudo-header of `src` and `dst` (a UDP checksum of 0 when
/// `no_udp_csum`).
fn l4(
    proto: u8,
    src: [u8; 4],
    dst: [u8; 4],
    sport: u16,
    data: &[u8],
    no_udp_csum: bool,
) -> Vec<u8> {
    let mut s = sport.to_be_bytes().to_vec();
    s.extend_from_slice(&80u16.to_be_bytes());
    if proto == 6 {
        s.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0]);
    } else {
        s.extend_from_slice(&((8 + data.len()) as u16).to_be_bytes());
        s.extend_from_slice(&[0, 0]);
    }
    s.extend_from_slice(data);
    if proto == 17 && no_udp_csum {
        return s;
    }
    let mut pseudo = src.to_vec();
    pseudo.extend_from_slice(&dst);
    pseudo.extend_from_slice(&[0, proto]);
    pseudo.extend_from_slice(&(s.len() as u16).to_be_bytes());
    pseudo.extend_from_slice(&s);
    let c = match internet_checksum(&pseudo) {
        0 if proto == 17 => 0xffff,
        c => c,
    };
    let at = if proto == 6 { 16 } else { 6 };
    s[at..at + 2].copy_from_slice(&c.to_be_bytes());
    s
}

/// Runs program `name` of object `file` on a copy of `packet` on every engine in `modes`;
/// asserts the same outcome and packet everywhere and returns them.
fn run_fixture(file: &str, name: &str, modes: &[Mode], packet: &Packet) -> (XdpOutcome, Packet) {
    let obj = object(file);
    let mut seen: Option<(XdpOutcome, Packet)> = None;
    for &mode in modes {
        for (engine, opts) in engines() {
            let v = obj
                .program(name)
                .unwrap()
                .verify(mode)
                .unwrap_or_else(|e| panic!("{file} {mode:?}: {e}"));
            let mut prog = prepare(v, opts);
            let mut p = packet.clone();
            let out = prog
                .run_xdp_packet(&mut p)
                .unwrap_or_else(|e| panic!("{file} {mode:?} {engine}: {e}"));
            match &seen {
                None => seen = Some((out, p)),
                Some(s) => assert_eq!(*s, (out, p), "{file} {mode:?} {engine}"),
            }
        }
    }
    seen.unwrap()
}

#[test]
fn ipip_and_6in4_packets_lose_their_outer_header() {
    let outer_src = [192, 0, 2, 1];
    let outer_dst = [192, 0, 2, 2];
    // IPv4 in IPv4.
    let inner_l4 = l4(
        17,
        [10, 1, 0, 1],
        [10, 1, 0, 2],
        5353,
        b"hello, decap",
        false,
    );
    let inner = [
        ipv4(17, [10, 1, 0, 1], [10, 1, 0, 2], inner_l4.len()),
        inner_l4,
    ]
    .concat();
    let packet = [
        ethernet(0x0800),
        ipv4(4, outer_src, outer_dst, inner.len()),
        inner.clone(),
    ]
    .concat();
    let (out, p) = run_fixture("xdp_decap.o", "xdp_decap", &MODES, &Packet::new(&packet));
    assert_eq!(out.action, XdpAction::Pass);
    assert_eq!((out.start, out.len), (256 + 20, packet.len() - 20));
    assert_eq!(p.frame(), [ethernet(0x0800), inner].concat());
    // IPv6 in IPv4: the Ethernet type becomes IPv6.
    let mut v6 = vec![0x60, 0, 0, 0, 0, 8, 59, 64];
    v6.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
    v6.extend_from_slice(&[0; 12]);
    v6.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
    v6.extend_from_slice(&[0; 11]);
    v6.push(1);
    v6.extend_from_slice(b"payload!");
    let packet = [
        ethernet(0x0800),
        ipv4(41, outer_src, outer_dst, v6.len()),
        v6.clone(),
    ]
    .concat();
    let (out, p) = run_fixture("xdp_decap.o", "xdp_decap", &MODES, &Packet::new(&packet));
    assert_eq!((out.action, out.len), (XdpAction::Pass, packet.len() - 20));
    assert_eq!(p.frame(), [ethernet(0x86dd), v6].concat());
    // Not tunnelled (UDP), or too short: untouched.
    let plain_l4 = l4(17, outer_src, outer_dst, 9, b"x", false);
    let plain = [
        ethernet(0x0800),
        ipv4(17, outer_src, outer_dst, plain_l4.len()),
        plain_l4,
    ]
    .concat();
    for pkt in [plain, packet[..30].to_vec()] {
        let (out, p) = run_fixture("xdp_decap.o", "xdp_decap", &MODES, &Packet::new(&pkt));
        assert_eq!((out.action, out.start), (XdpAction::Pass, 256));
        assert_eq!(p.frame(), &pkt[..]);
    }
    // The shortest tunnel (an empty inner packet) leaves the Ethernet header alone.
    let tunnel = &[ethernet(0x0800), ipv4(4, outer_src, outer_dst, 0)].concat();
    let (out, p) = run_fixture("xdp_decap.o", "xdp_decap", &MODES, &Packet::new(tunnel));
    assert_eq!(
        (out.action, p.frame()),
        (XdpAction::Pass, &ethernet(0x0800)[..])
    );
    // A buffer without the kernel's reserved head: the head cannot move, the packet drops.
    let (out, p) = run_fixture(
        "xdp_decap.o",
        "xdp_decap",
        &MODES,
        &Packet::with_room(tunnel, 0, 0),
    );
    assert_eq!((out.action, p.frame()), (XdpAction::Drop, &tunnel[..]));
    let (out, _) = run_fixture(
        "xdp_decap.o",
        "xdp_decap",
        &MODES,
        &Packet::new(&tunnel[..33]),
    );
    assert_eq!(
        out.action,
        XdpAction::Pass,
        "shorter than the outer header: untouched"
    );
}

#[test]
fn frames_longer_than_64_bytes_are_cut_to_64() {
    for len in [14usize, 63, 64, 65, 200, 1514] {
        let frame: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
        let (out, p) = run_fixture("xdp_trunc.o", "xdp_trunc", &MODES, &Packet::new(&frame));
        let want = len.min(64);
        assert_eq!(out.action, XdpAction::Pass, "{len}");
        assert_eq!((out.start, out.len), (256, want), "{len}");
        assert_eq!(p.frame(), &frame[..want], "{len}");
        assert_eq!(p.tailroom(), 4096 - 320 - 256 - want, "{len}");
        // The slice API cannot follow a cut frame.
        if len > 64 {
            let obj = object("xdp_trunc.o");
            let v = obj
                .program("xdp_trunc")
                .unwrap()
                .verify(Mode::Strict)
                .unwrap();
            let mut prog = v.interpret();
            let mut slice = frame.clone();
            let e = prog.run_xdp(&mut slice).unwrap_err();
            assert!(e.to_string().contains("xdp_adjust_tail moved"), "{e}");
        }
    }
}

#[test]
fn the_load_balancer_rewrites_macs_and_destination_and_transmits() {
    let vip = [10, 0, 0, 100];
    let client = [198, 51, 100, 7];
    for (proto, sport, no_udp_csum) in [
        (6u8, 40000u16, false),
        (6, 40001, false),
        (17, 5000, false),
        (17, 5001, true),
    ] {
        let data = b"GET / HTTP/1.1\r\n\r\n";
        let seg = l4(proto, client, vip, sport, data, no_udp_csum);
        let packet = [ethernet(0x0800), ipv4(proto, client, vip, seg.len()), seg].concat();
        let backend = [10, 0, 1, 1 + (sport & 1) as u8];
        let mut want = [0x02, 0, 0, 0, 0x01, backend[3]].to_vec();
        want.extend_from_slice(&DST_MAC);
        want.extend_from_slice(&0x0800u16.to_be_bytes());
        let seg = l4(proto, client, backend, sport, data, no_udp_csum);
        want.extend_from_slice(&ipv4(proto, client, backend, seg.len()));
        want.extend_from_slice(&seg);
        let (out, p) = run_fixture("xdp_lb.o", "xdp_lb", &MODES, &Packet::new(&packet));
        assert_eq!(out.action, XdpAction::Tx, "{proto} {sport}");
        assert_eq!(
            (out.start, out.len, out.redirect),
            (256, packet.len(), None)
        );
        assert_eq!(p.frame(), &want[..], "{proto} {sport}");
        // In place, the slice API gives the same bytes.
        let obj = object("xdp_lb.o");
        let v = obj.program("xdp_lb").unwrap().verify(Mode::Strict).unwrap();
        let mut prog = v.compile().unwrap();
        let mut slice = packet.clone();
        assert_eq!(prog.run_xdp(&mut slice).unwrap(), XdpAction::Tx);
        assert_eq!(slice, want);
    }
    // Another destination, or ICMP to the VIP: passed untouched.
    let other = [ethernet(0x0800), ipv4(6, [1, 2, 3, 4], [10, 0, 0, 99], 0)].concat();
    let icmp = [
        ethernet(0x0800),
        ipv4(1, [1, 2, 3, 4], vip, 8),
        vec![8, 0, 0, 0, 0, 0, 0, 0],
    ]
    .concat();
    for pkt in [other, icmp] {
        let (out, p) = run_fixture("xdp_lb.o", "xdp_lb", &MODES, &Packet::new(&pkt));
        assert_eq!(out.action, XdpAction::Pass);
        assert_eq!(p.frame(), &pkt[..]);
    }
}
