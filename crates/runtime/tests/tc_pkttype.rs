//! `bpf_skb_change_type` (helper 32) from a TC program (`objects/tc_pkttype.c`): the packet
//! type moves between `PACKET_HOST`, `PACKET_BROADCAST`, `PACKET_MULTICAST` and
//! `PACKET_OTHERHOST` (0 to 3), `-EINVAL` for any other; the program sees the new type, and the
//! caller's `SkbMeta` gets it back. Every engine in both modes; where the kernel can be asked
//! (root, `bpftool`), its test runs give the same answers and packets (it derives the type
//! from the frame's destination address on the loopback device, whose address is all zeros;
//! the bpfx runs are given that type).

// The oracle runs clang-built objects only: `common::code` (assembled programs) goes unused.
#[allow(dead_code)]
mod common;

#[path = "common/oracle.rs"]
mod oracle;

use bpfx::{Mode, Object, SkbMeta};
use common::{engines, prepare};
use oracle::objects;

const EINVAL: i32 = -22;

/// A frame to `dst` asking for type `to`, and the type the kernel's `eth_type_trans` gives it
/// on the loopback device (address and broadcast address all zeros).
fn frame(dst: [u8; 6], to: u8) -> (Vec<u8>, u32) {
    let mut f = dst.to_vec();
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 2, 0x08, 0x00, to]);
    f.extend_from_slice(&[0xee; 27]);
    // The loopback device's broadcast address is all zeros too: ff:ff:ff:ff:ff:ff is only a
    // multicast address there.
    let kind = if dst[0] & 1 == 1 {
        2
    } else if dst == [0; 6] {
        0
    } else {
        3
    };
    (f, kind)
}

#[test]
fn skb_change_type_moves_between_the_four_types() {
    let file = "tc_pkttype.o";
    let obj = Object::open(objects().join(file)).unwrap();
    let mut cases = Vec::new();
    for dst in [
        [0; 6],
        [0xff; 6],
        [0x01, 0, 0x5e, 0, 0, 1],
        [0x02, 0, 0, 0, 0, 9],
    ] {
        for to in [0u8, 1, 2, 3, 4, 7, 255] {
            cases.push(frame(dst, to));
        }
    }
    let mut ours = Vec::new();
    for (f, kind) in &cases {
        let mut seen = None;
        for mode in [Mode::Checked, Mode::Strict] {
            for (engine, opts) in engines() {
                let v = obj.program("tc_pkttype").unwrap().verify(mode).unwrap();
                let mut prog = prepare(v, opts);
                let mut p = f.clone();
                let mut meta = SkbMeta {
                    protocol: 0x0800,
                    ifindex: 1,
                    pkt_type: *kind,
                    ..SkbMeta::default()
                };
                let code = prog.run_tc(&mut p, &mut meta).unwrap().code() as u32;
                let got = (code, p, meta.pkt_type);
                match &seen {
                    None => seen = Some(got),
                    Some(s) => assert_eq!(*s, got, "{mode:?} {engine}"),
                }
            }
        }
        let (code, p, after) = seen.unwrap();
        let to = u32::from(f[14]);
        let ret = i32::from_le_bytes(p[16..20].try_into().unwrap());
        let want = if to <= 3 { (0, to) } else { (EINVAL, *kind) };
        assert_eq!(
            (code, p[15], ret, u32::from(p[20]), after),
            (0, *kind as u8, want.0, want.1, want.1),
            "{f:02x?}"
        );
        ours.push((code, p));
    }
    // An egress packet (`PACKET_OUTGOING`, 4) keeps its type: the kernel moves only between
    // the four.
    for (engine, opts) in engines() {
        let v = obj
            .program("tc_pkttype")
            .unwrap()
            .verify(Mode::Strict)
            .unwrap();
        let mut prog = prepare(v, opts);
        let (mut p, _) = frame([0; 6], 0);
        let mut meta = SkbMeta {
            pkt_type: 4,
            ..SkbMeta::default()
        };
        prog.run_tc(&mut p, &mut meta).unwrap();
        let ret = i32::from_le_bytes(p[16..20].try_into().unwrap());
        assert_eq!(
            (p[15], ret, p[20], meta.pkt_type),
            (4, EINVAL, 4, 4),
            "{engine}"
        );
    }
    oracle::compare_runs(
        "skb_change_type_moves_between_the_four_types",
        file,
        "classifier",
        cases
            .iter()
            .zip(&ours)
            .map(|((f, _), ours)| (&f[..], ours.clone())),
    );
}
