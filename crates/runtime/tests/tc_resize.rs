//! TC programs that move and resize their packet (`tests/objects/tc_vlan.c`, `tc_ipip.c`,
//! `tc_resize_probe.c`, and assembled programs) on [`Packet`]s, on the interpreter and the JIT
//! under every option set, in Checked and Strict mode, against packets built here from the
//! helpers' documented semantics (not by bpfx). The kernel's own answers for the same
//! fixtures are in `tc_resize_oracle.rs`.

#[allow(dead_code)]
mod common;

use bpfx::{
    ClonedPacket, Mode, Object, Packet, ProgramDef, RedirectTarget, SkbMeta, TcAction, TcOutcome,
    Vm,
};
use common::{code, engines, prepare};
use std::path::PathBuf;

const MODES: [Mode; 2] = [Mode::Checked, Mode::Strict];

fn object(name: &str) -> Object {
    let path = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/objects")).join(name);
    Object::open(path).unwrap()
}

/// Destination and source MAC addresses, then the EtherType `et`.
fn eth(et: u16) -> Vec<u8> {
    let mut p = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
    p.extend_from_slice(&et.to_be_bytes());
    p
}

/// An IPv4 header (UDP, 192.0.2.1 -> 192.0.2.2, TOS `tos`, total length 20 + `payload`, TTL
/// 64, checksum left 0) and `payload` bytes 0, 1, 2, ….
fn ipv4(tos: u8, payload: usize) -> Vec<u8> {
    let mut h = vec![0x45, tos];
    h.extend_from_slice(&((20 + payload) as u16).to_be_bytes());
    h.extend_from_slice(&[0, 0, 0, 0, 64, 17, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2]);
    h.extend((0..payload).map(|i| i as u8));
    h
}

/// RFC 1071, written out here.
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

/// The metadata the kernel's test run gives a frame: its EtherType as `protocol`.
fn meta_of(frame: &[u8]) -> SkbMeta {
    SkbMeta {
        protocol: u16::from_be_bytes([frame[12], frame[13]]),
        ifindex: 1,
        ..SkbMeta::default()
    }
}

/// Runs program `name` of object `file` on `frame` (in a [`Packet::new`]) with `meta` in
/// both modes on every engine; asserts they all agree and returns the outcome and the final
/// frame.
fn run_everywhere(file: &str, name: &str, frame: &[u8], meta: &SkbMeta) -> (TcOutcome, Vec<u8>) {
    let mut seen: Option<(TcOutcome, Vec<u8>)> = None;
    for mode in MODES {
        for (engine, opts) in engines() {
            let obj = object(file);
            let v = obj.program(name).unwrap().verify(mode).unwrap();
            let mut prog = prepare(v, opts);
            let mut p = Packet::new(frame);
            let out = prog.run_tc_packet(&mut p, meta).unwrap();
            let got = (out, p.to_vec());
            match &seen {
                None => seen = Some(got),
                Some(s) => assert_eq!(s, &got, "{name} {mode:?} {engine}"),
            }
        }
    }
    seen.unwrap()
}

/// `tc_vlan.c`'s result on `frame`, from its description: the frame's 802.1Q tag (if any,
/// id V) gone, a customer tag `0x8100` with id V + 100 (100 untagged) after the MAC
/// addresses, a service tag 802.1ad id 300 in the metadata; `cb` as the program fills it.
fn vlan_model(frame: &[u8]) -> (Vec<u8>, SkbMeta) {
    let tagged = frame[12..14] == [0x81, 0x00];
    let vid = if tagged {
        u16::from_be_bytes([frame[14], frame[15]]) & 0xfff
    } else {
        0
    };
    let rest = if tagged { &frame[16..] } else { &frame[12..] };
    let mut p = frame[..12].to_vec();
    p.extend_from_slice(&[0x81, 0x00]);
    p.extend_from_slice(&(vid + 100).to_be_bytes());
    p.extend_from_slice(rest);
    let mut m = meta_of(frame);
    m.protocol = 0x8100;
    (m.vlan_present, m.vlan_proto, m.vlan_tci) = (1, 0x88a8, 300);
    let be16 = |v: u16| u32::from(u16::from_ne_bytes(v.to_be_bytes()));
    m.cb = [
        u32::from(vid),
        1,
        300,
        be16(0x88a8),
        (p.len() as u32) << 16 | be16(0x8100),
    ];
    (p, m)
}

fn vlan_frames() -> Vec<Vec<u8>> {
    let mut tagged = eth(0x8100)[..12].to_vec();
    tagged.extend_from_slice(&[0x81, 0x00, 0x20, 0x0a, 0x08, 0x00]);
    tagged.extend(ipv4(0, 20));
    let mut untagged = eth(0x0800);
    untagged.extend(ipv4(0, 20));
    let mut arp = eth(0x0806);
    arp.extend([0; 28]);
    vec![tagged, untagged, arp]
}

#[test]
fn tc_vlan_pops_the_frames_tag_and_pushes_a_qinq_pair() {
    for frame in vlan_frames() {
        let (out, p) = run_everywhere("tc_vlan.o", "tc_vlan", &frame, &meta_of(&frame));
        let (want, want_meta) = vlan_model(&frame);
        assert_eq!(out.action, TcAction::Ok);
        assert_eq!(p, want, "{frame:02x?}");
        assert_eq!(out.meta, want_meta, "{frame:02x?}");
    }
}

#[test]
fn a_tag_in_the_metadata_is_popped_there_and_pushed_into_the_packet() {
    // The frame arrives untagged with its tag offloaded (id 7): pop takes it from the
    // metadata, and the packet only gets the customer tag of the second push.
    let mut frame = eth(0x0800);
    frame.extend(ipv4(0, 20));
    let meta = SkbMeta {
        vlan_present: 1,
        vlan_proto: 0x8100,
        vlan_tci: 7,
        ..meta_of(&frame)
    };
    let (out, p) = run_everywhere("tc_vlan.o", "tc_vlan", &frame, &meta);
    let (want, want_meta) = vlan_model(&frame);
    assert_eq!(p, want);
    assert_eq!(out.meta, want_meta);
}

/// `tc_ipip.c`'s result on an IPv4 `frame` from its description: Ethernet padding cut, then
/// an outer IPv4 header after the Ethernet header.
fn ipip_model(frame: &[u8]) -> Vec<u8> {
    let tot = usize::from(u16::from_be_bytes([frame[16], frame[17]]));
    let inner = &frame[14..14 + tot];
    let mut outer = vec![0x45, inner[1]];
    outer.extend_from_slice(&((tot + 20) as u16).to_be_bytes());
    outer.extend_from_slice(&[0, 0, 0x40, 0, 64, 4, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
    let c = internet_checksum(&outer);
    outer[10..12].copy_from_slice(&c.to_be_bytes());
    let mut p = frame[..14].to_vec();
    p.extend(outer);
    p.extend_from_slice(inner);
    p
}

#[test]
fn tc_ipip_cuts_the_padding_and_adds_an_outer_ipv4_header() {
    for (tos, payload, pad) in [(0, 20, 0), (0xb8, 6, 20), (0x10, 200, 1)] {
        let mut frame = eth(0x0800);
        frame.extend(ipv4(tos, payload));
        frame.extend(vec![0xee; pad]);
        let (out, p) = run_everywhere("tc_ipip.o", "tc_ipip", &frame, &meta_of(&frame));
        let want = ipip_model(&frame);
        assert_eq!(out.action, TcAction::Ok);
        assert_eq!(p, want, "tos {tos:#x} payload {payload} pad {pad}");
        let tail = if pad > 0 { 0 } else { 1 };
        assert_eq!(out.meta.cb[..3], [0, tail, want.len() as u32]);
    }
    // Not IPv4: untouched.
    let mut arp = eth(0x0806);
    arp.extend([0; 28]);
    let (out, p) = run_everywhere("tc_ipip.o", "tc_ipip", &arp, &meta_of(&arp));
    assert_eq!((out.action, p), (TcAction::Ok, arp));
}

/// `frame` with the probe's arguments (the helper's id, then its arguments) appended.
fn probe_frame(frame: &[u8], args: &[u32]) -> Vec<u8> {
    let mut p = frame.to_vec();
    for i in 0..5 {
        p.extend_from_slice(&args.get(i).copied().unwrap_or(0).to_le_bytes());
    }
    p
}

fn errno(e: i32) -> u32 {
    (-e) as u32
}

/// `tc_resize_probe.c` on every engine: (return value, final frame, outcome).
fn probe(frame: &[u8], args: &[u32], meta: &SkbMeta) -> (u32, Vec<u8>, TcOutcome) {
    let (out, p) = run_everywhere(
        "tc_resize_probe.o",
        "tc_resize_probe",
        &probe_frame(frame, args),
        meta,
    );
    (out.action.code() as u32, p, out)
}

#[test]
fn each_resizing_helper_moves_the_packet_and_answers_as_the_kernel_documents() {
    let mut base = eth(0x0800);
    base.extend(ipv4(0, 40));
    let m = meta_of(&base);
    let args = |a: &[u32]| probe_frame(&base, a);
    // skb_change_tail: grows with zeroes, shrinks to the link-layer header, not below.
    let (r, p, o) = probe(&base, &[38, 120], &m);
    let mut want = args(&[38, 120]);
    want.resize(120, 0);
    assert_eq!((r, &p), (0, &want));
    assert_eq!(o.meta.cb[0], 120, "len follows the packet");
    let (r, p, _) = probe(&base, &[38, 14], &m);
    assert_eq!((r, p), (0, base[..14].to_vec()));
    for bad in [[38, 13, 0], [38, 80, 1], [38, 16065, 0]] {
        let (r, p, _) = probe(&base, &bad, &m);
        assert_eq!((r, p), (errno(22), args(&bad)), "{bad:?}");
    }
    // skb_change_head: zeroes in front.
    let (r, p, _) = probe(&base, &[43, 6], &m);
    let mut want = vec![0; 6];
    want.extend(args(&[43, 6]));
    assert_eq!((r, p), (0, want));
    let (r, _, _) = probe(&base, &[43, 6, 1], &m);
    assert_eq!(r, errno(22));
    // skb_pull_data: nothing moves; -ENOMEM past the end.
    for (len, want) in [(0, 0), (20, 0), (94, 0), (95, errno(12))] {
        let (r, p, _) = probe(&base, &[39, len], &m);
        assert_eq!((r, p), (want, args(&[39, len])), "pull {len}");
    }
    // skb_change_proto: 20 zero bytes after the Ethernet header, protocol IPv6, hash gone.
    let hashed = SkbMeta { hash: 0x1234, ..m };
    let (r, p, o) = probe(&base, &[31, 0xdd86], &hashed);
    let a = args(&[31, 0xdd86]);
    let mut want = a[..14].to_vec();
    want.extend([0; 20]);
    want.extend_from_slice(&a[14..]);
    assert_eq!((r, p), (0, want));
    assert_eq!((o.meta.protocol, o.meta.hash), (0x86dd, 0));
    for (bad, e) in [
        ([31, 0x0008, 0], 524),
        ([31, 0xdd86, 1], 22),
        ([31, 0x0608, 0], 524),
    ] {
        let (r, p, o) = probe(&base, &bad, &hashed);
        assert_eq!(
            (r, p, o.meta.hash),
            (errno(e), args(&bad), 0x1234),
            "{bad:?}"
        );
    }
    // clone_redirect: the packet goes on unchanged, its copy to the outcome.
    let (r, p, o) = probe(&base, &[13, 4, 1], &m);
    assert_eq!((r, &p), (0, &args(&[13, 4, 1])));
    assert_eq!(
        o.clones,
        [ClonedPacket {
            target: RedirectTarget::Ifindex {
                ifindex: 4,
                ingress: true
            },
            packet: p,
            vlan: None,
        }]
    );
    for bad in [[13, 0, 0], [13, 4, 2]] {
        let (r, _, o) = probe(&base, &bad, &m);
        assert_eq!((r, o.clones), (errno(22), vec![]), "{bad:?}");
    }
}

#[test]
fn skb_adjust_room_inserts_and_removes_at_the_mac_and_network_headers() {
    let mut base = eth(0x0800);
    base.extend(ipv4(0, 40));
    let m = meta_of(&base);
    let ar = |diff: i32, mode: u32, flags: u64| {
        let a = [50, diff as u32, mode, flags as u32, (flags >> 32) as u32];
        let (r, p, o) = probe(&base, &a, &m);
        (r, p, o.meta.protocol, probe_frame(&base, &a))
    };
    let spliced = |a: &[u8], at: usize, grow: i32| {
        let mut w = a[..at].to_vec();
        if grow >= 0 {
            w.extend(vec![0; grow as usize]);
            w.extend_from_slice(&a[at..]);
        } else {
            w.extend_from_slice(&a[at + grow.unsigned_abs() as usize..]);
        }
        w
    };
    for (diff, mode, flags, at, proto) in [
        (8, 1, 0, 14, 0x0800),
        (8, 0, 0, 34, 0x0800),
        (-8, 1, 0, 14, 0x0800),
        (-8, 0, 0, 34, 0x0800),
        (20, 1, 2, 14, 0x0800),
        (20, 1, 2 | 4 << 1, 14, 0x0800),
        (20, 1, 4, 14, 0x86dd),
        (34, 1, 2 | 64 | 14 << 56, 14, 0x0800),
        (-20, 1, 1 << 7, 14, 0x0800),
        (-20, 1, 1 << 8, 14, 0x86dd),
        (8, 1, 1 | 32, 14, 0x0800),
    ] {
        let (r, p, got_proto, a) = ar(diff, mode, flags);
        assert_eq!(r, 0, "{diff} {mode} {flags:#x}");
        assert_eq!(p, spliced(&a, at, diff), "{diff} {mode} {flags:#x}");
        assert_eq!(got_proto, proto, "{diff} {mode} {flags:#x}");
    }
    for (diff, mode, flags, e) in [
        (8, 2, 0, 524),
        (0x1000, 1, 0, 14),
        (20, 1, 6, 22),
        (20, 1, 2 | 8 | 16, 22),
        (20, 1, 1 << 7, 22),
        (-20, 1, 3 << 7, 22),
        (-8, 1, 2, 22),
        (8, 1, 1 << 9, 22),
        (34, 1, 2 | 64 | 10 << 56, 22),
        (20, 1, 2 | 30 << 56, 22),
        (-61, 1, 0, 524),
    ] {
        let (r, p, _, a) = ar(diff, mode, flags);
        assert_eq!((r, p), (errno(e), a), "{diff} {mode} {flags:#x}");
    }
    // Only IPv4 and IPv6 packets.
    let mut arp = eth(0x0806);
    arp.extend([0; 40]);
    let (r, _, _) = probe(&arp, &[50, 8, 1], &meta_of(&arp));
    assert_eq!(r, errno(524));
}

#[test]
fn vlan_helpers_follow_the_tag_between_metadata_and_packet() {
    let mut base = eth(0x0800);
    base.extend(ipv4(0, 20));
    let m = meta_of(&base);
    // Push onto an untagged packet: metadata only; an unknown protocol means 802.1Q.
    for proto in [0x0081, 0x3412] {
        let (r, p, o) = probe(&base, &[18, proto, 0x1_0005], &m);
        assert_eq!((r, p), (0, probe_frame(&base, &[18, proto, 0x1_0005])));
        let got = (o.meta.vlan_present, o.meta.vlan_proto, o.meta.vlan_tci);
        assert_eq!(got, (1, 0x8100, 5));
        let be16 = |v: u16| u32::from(u16::from_ne_bytes(v.to_be_bytes()));
        assert_eq!(o.meta.cb[2..], [1, 5, be16(0x8100)]);
    }
    // Pop a QinQ frame: the outer tag goes, the inner one moves into the metadata.
    let mut qinq = base[..12].to_vec();
    qinq.extend_from_slice(&[0x88, 0xa8, 0x01, 0x2c, 0x81, 0x00, 0x00, 0x64]);
    qinq.extend_from_slice(&base[12..]);
    let (r, p, o) = probe(&qinq, &[19], &meta_of(&qinq));
    assert_eq!((r, p), (0, probe_frame(&base, &[19])));
    let got = (o.meta.protocol, o.meta.vlan_present, o.meta.vlan_tci);
    assert_eq!(got, (0x0800, 1, 100));
    // Untagged: nothing to do.
    let (r, p, _) = probe(&base, &[19], &m);
    assert_eq!((r, p), (0, probe_frame(&base, &[19])));
    // A tag carrying no EtherType (a length): protocol ETH_P_802_2.
    let (r, o) = run_everywhere(
        "tc_resize_probe.o",
        "tc_resize_probe",
        &probe_frame(&eth(0x8100), &[19]),
        &meta_of(&eth(0x8100)),
    );
    let mut want = eth(0x8100)[..12].to_vec();
    want.extend_from_slice(&probe_frame(&[], &[19])[2..]);
    assert_eq!((r.action.code(), &o[..]), (0, &want[..]));
    assert_eq!(r.meta.protocol, 0x0004);
}

/// Assembled TC program `text` on every engine, Checked and Strict.
fn asm_everywhere(text: &str, packet: &mut Packet, meta: &SkbMeta) -> TcOutcome {
    let mut seen: Option<(TcOutcome, Packet)> = None;
    for mode in MODES {
        for (engine, opts) in engines() {
            let obj = Vm::new()
                .object(vec![ProgramDef::new("p", "tc", code(text))], vec![])
                .unwrap();
            let v = obj.program("p").unwrap().verify(mode).unwrap();
            let mut prog = prepare(v, opts);
            let mut p = packet.clone();
            let out = prog.run_tc_packet(&mut p, meta).unwrap();
            match &seen {
                None => seen = Some((out, p)),
                Some(s) => assert_eq!(s, &(out, p), "{mode:?} {engine}"),
            }
        }
    }
    let (out, p) = seen.unwrap();
    *packet = p;
    out
}

#[test]
fn growing_past_the_packets_room_is_enomem_and_data_follows_each_move() {
    // change_head(8) then change_tail(len + 4); r0 = len after both, or the first error.
    let text = "
        mov r6, r1
        mov r2, 8
        mov r3, 0
        call 43
        jne r0, 0, +7
        mov r1, r6
        ldxw r2, [r6+0]
        add r2, 4
        mov r3, 0
        call 38
        jne r0, 0, +1
        ldxw r0, [r6+0]
        exit";
    let frame: Vec<u8> = (1..=30).collect();
    let mut want = vec![0; 8];
    want.extend_from_slice(&frame);
    want.extend([0; 4]);
    let mut p = Packet::with_room(&frame, 8, 4);
    let out = asm_everywhere(text, &mut p, &SkbMeta::default());
    assert_eq!(out.action.code(), 42);
    assert_eq!((p.start(), p.to_vec()), (0, want));
    // One byte short of room at either end: -ENOMEM, the packet as it was.
    for (head, tail, e) in [(7, 4, 12), (8, 3, 12)] {
        let mut p = Packet::with_room(&frame, head, tail);
        let out = asm_everywhere(text, &mut p, &SkbMeta::default());
        assert_eq!(out.action.code(), -e, "room {head} {tail}");
        let start = if head == 8 { 0 } else { 7 };
        assert_eq!(p.start(), start);
    }
}

#[test]
fn a_slice_run_that_resizes_the_packet_fails_naming_the_helper() {
    let text = "mov r2, 20\nmov r3, 0\ncall 38\nmov r0, 0\nexit";
    for (engine, opts) in engines() {
        let obj = Vm::new()
            .object(vec![ProgramDef::new("p", "tc", code(text))], vec![])
            .unwrap();
        let v = obj.program("p").unwrap().verify(Mode::Strict).unwrap();
        let mut prog = prepare(v, opts.clone());
        let frame: Vec<u8> = (0..40).collect();
        let mut p = frame.clone();
        let e = prog.run_tc(&mut p, &mut SkbMeta::default()).unwrap_err();
        assert!(
            matches!(
                e,
                bpfx::RunError::FrameMoved {
                    helper: "skb_change_tail",
                    len: 40,
                    new_start: 0,
                    new_len: 20,
                    ..
                }
            ),
            "{engine}: {e}"
        );
        assert_eq!(p, frame, "{engine}: the slice is left alone");
        // Growing back to the same length is a same-size result: copied back.
        let text2 = "mov r6, r1\nmov r2, 20\nmov r3, 0\ncall 38\nmov r1, r6\nmov r2, 40\nmov r3, 0\ncall 38\nexit";
        let obj = Vm::new()
            .object(vec![ProgramDef::new("p", "tc", code(text2))], vec![])
            .unwrap();
        let v = obj.program("p").unwrap().verify(Mode::Strict).unwrap();
        let mut prog = prepare(v, opts);
        let mut p = frame.clone();
        prog.run_tc(&mut p, &mut SkbMeta::default()).unwrap();
        let mut want = frame[..20].to_vec();
        want.extend([0; 20]);
        assert_eq!(p, want, "{engine}");
    }
}

#[test]
fn socket_filters_and_xdp_cannot_call_the_resizing_helpers() {
    for id in [13, 18, 19, 31, 38, 39, 43, 50] {
        for ty in ["socket", "xdp"] {
            let text = format!("call {id}\nmov r0, 0\nexit");
            let obj = Vm::new()
                .object(vec![ProgramDef::new("p", ty, code(&text))], vec![])
                .unwrap();
            assert!(
                obj.program("p").unwrap().verify(Mode::Checked).is_err(),
                "{ty} {id}"
            );
        }
    }
}

#[test]
fn a_program_with_legacy_packet_loads_keeps_its_packet_in_place() {
    // ldabs reads the packet as it is; a helper that would move it fails the run (bpfx's
    // engines bound legacy loads by the packet the run started with), one that does not
    // (a VLAN tag pushed into the metadata) works.
    let frame: Vec<u8> = (10..50).collect();
    for (engine, opts) in engines() {
        for (call, ok) in [
            ("mov r2, 20\nmov r3, 0\ncall 38", false),
            ("mov r2, 0x81\nmov r3, 5\ncall 18", true),
        ] {
            let text = format!("mov r6, r1\n{call}\nmov r1, r6\nldabsb 3\nexit");
            let obj = Vm::new()
                .object(vec![ProgramDef::new("p", "tc", code(&text))], vec![])
                .unwrap();
            let v = obj.program("p").unwrap().verify(Mode::Checked).unwrap();
            let mut prog = prepare(v, opts.clone());
            let mut p = Packet::new(&frame);
            let got = prog.run_tc_packet(&mut p, &SkbMeta::default());
            match got {
                Ok(out) if ok => {
                    assert_eq!(out.action.code(), 13, "{engine}");
                    assert_eq!(out.meta.vlan_tci, 5, "{engine}");
                }
                Err(e) if !ok => assert!(
                    e.to_string()
                        .contains("skb_change_tail would move the packet"),
                    "{engine}: {e}"
                ),
                other => panic!("{engine} {call}: {other:?}"),
            }
            assert_eq!((p.start(), p.to_vec()), (256, frame.clone()), "{engine}");
        }
    }
}

/// (skb->mark: what `tc_netoff.c` does, frame, skb->priority: the length it cuts the tail
/// to) -> (cb[0]: the two bytes at the network header as a little-endian u16, cb[1]:
/// `skb_change_tail`'s result), from the helpers' documented bookkeeping: the network header
/// starts 14 bytes in, stays there when a VLAN tag goes into the packet or comes out of it,
/// and moves by what `skb_change_head` adds; the tail may not be cut into it.
#[test]
fn the_network_header_moves_as_the_kernel_moves_it() {
    let mut b = eth(0x0800);
    b.extend(ipv4(0, 20));
    let mut v = eth(0x8100)[..12].to_vec();
    v.extend_from_slice(&[0x81, 0x00, 0x00, 0x64, 0x08, 0x00]);
    v.extend(ipv4(0, 20));
    let ip = u32::from(u16::from_le_bytes([0x45, 0x00]));
    let einval = errno(22);
    for (mode, frame, prio, want) in [
        (0, &b, 13, [ip, einval]),
        (0, &b, 14, [ip, 0]),
        (1, &b, 17, [u32::from(u16::from_le_bytes([0, 5])), 0]),
        (2, &v, 13, [ip, einval]),
        (2, &v, 14, [ip, 0]),
        (0, &v, 17, [u32::from(u16::from_le_bytes([0, 0x64])), 0]),
        (3, &b, 19, [ip, einval]),
        (3, &b, 20, [ip, 0]),
    ] {
        let meta = SkbMeta {
            mark: mode,
            priority: prio,
            ..meta_of(frame)
        };
        let (out, _) = run_everywhere("tc_netoff.o", "tc_netoff", frame, &meta);
        assert_eq!(out.meta.cb[..2], want, "mode {mode} priority {prio}");
    }
}
