//! `bpf_skb_ecn_set_ce` (helper 97) from a TC program (`objects/tc_ecn.c`, whose verdict is
//! the helper's answer): ECT(0) and ECT(1) become CE (1), CE stays (1), Not-ECT stays (0), on
//! IPv4 with the header checksum changed as the kernel changes it (a one's-complement
//! addition, so 0x0001 becomes 0xffff, not 0x0000) and on IPv6; other protocols and headers
//! past the packet answer 0; under an in-packet VLAN tag the tagged protocol decides and the
//! network header stays after the Ethernet header, as in the kernel. Every engine in both
//! modes; where the kernel can be asked (root, `bpftool`), its test runs give the same answers
//! and packets.

// Not every helper of `common` is used here.
#[allow(dead_code)]
mod common;

#[path = "common/oracle.rs"]
mod oracle;

use bpfx::{Mode, Object, SkbMeta};
use common::{engines, prepare};
use oracle::objects;

const ETH: [u8; 12] = [2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];

fn ipv4(tos: u8, check: u16) -> Vec<u8> {
    let mut f = ETH.to_vec();
    f.extend_from_slice(&[0x08, 0x00, 0x45, tos, 0, 40, 0, 0, 0, 0, 64, 17]);
    f.extend_from_slice(&check.to_be_bytes());
    f.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]);
    f.extend_from_slice(&[0; 20]);
    f
}

fn ipv6(tclass: u8) -> Vec<u8> {
    let mut f = ETH.to_vec();
    let w: u32 = (6 << 28) | (u32::from(tclass) << 20) | 0x1_2345;
    f.extend_from_slice(&[0x86, 0xdd]);
    f.extend_from_slice(&w.to_be_bytes());
    f.extend_from_slice(&[0; 44]);
    f
}

/// The verdict and packet on every engine in both modes (which must agree); the protocol is
/// the frame's EtherType, as the kernel's test run takes it.
fn run(obj: &Object, f: &[u8]) -> (u32, Vec<u8>) {
    let mut seen = None;
    for mode in [Mode::Checked, Mode::Strict] {
        for (engine, opts) in engines() {
            let v = obj.program("tc_ecn").unwrap().verify(mode).unwrap();
            let mut prog = prepare(v, opts);
            let mut p = f.to_vec();
            let mut meta = SkbMeta {
                protocol: u16::from_be_bytes([f[12], f[13]]),
                ifindex: 1,
                ..SkbMeta::default()
            };
            let code = prog.run_tc(&mut p, &mut meta).unwrap().code() as u32;
            match &seen {
                None => seen = Some((code, p)),
                Some(s) => assert_eq!(*s, (code, p), "{mode:?} {engine} {f:02x?}"),
            }
        }
    }
    seen.unwrap()
}

#[test]
fn ecn_set_ce_marks_ect_packets() {
    let obj = Object::open(objects().join("tc_ecn.o")).unwrap();
    let mut cases = Vec::new();
    let mut check = |f: Vec<u8>, want: (u32, Vec<u8>), oracle: bool| {
        assert_eq!(run(&obj, &f), want, "{f:02x?}");
        if oracle {
            cases.push((f, want));
        }
    };
    // IPv4: Not-ECT, ECT(1), ECT(0), CE; the checksum takes -2 or -1.
    check(ipv4(0, 0x1234), (0, ipv4(0, 0x1234)), true);
    check(ipv4(1, 0x1234), (1, ipv4(3, 0x1232)), true);
    check(ipv4(2, 0x1234), (1, ipv4(3, 0x1233)), true);
    check(ipv4(3, 0x1234), (1, ipv4(3, 0x1234)), true);
    check(ipv4(0xb9, 0x1234), (1, ipv4(0xbb, 0x1232)), true);
    // The end-around carry, and the checksums with two representations.
    check(ipv4(2, 0x0001), (1, ipv4(3, 0xffff)), true);
    check(ipv4(1, 0xffff), (1, ipv4(3, 0xfffd)), true);
    check(ipv4(1, 0x0000), (1, ipv4(3, 0xfffd)), true);
    // The header just fits; one byte short (the kernel's test run refuses an IPv4 frame
    // without a whole header, so bpfx alone is asked).
    let whole = ipv4(2, 0x1234)[..34].to_vec();
    let mut marked = ipv4(3, 0x1233);
    marked.truncate(34);
    check(whole, (1, marked), true);
    let short = ipv4(2, 0x1234)[..33].to_vec();
    check(short.clone(), (0, short), false);
    // Another protocol with the same bytes: nothing.
    let mut arp = ipv4(2, 0x1234);
    arp[13] = 0x06;
    check(arp.clone(), (0, arp), true);
    // IPv6: the traffic class's low two bits.
    for (tc, after, ret) in [
        (0u8, 0u8, 0u32),
        (1, 3, 1),
        (2, 3, 1),
        (3, 3, 1),
        (0xfd, 0xff, 1),
    ] {
        check(ipv6(tc), (ret, ipv6(after)), true);
    }
    let short6 = ipv6(2)[..53].to_vec();
    check(short6.clone(), (0, short6), false);
    // An in-packet VLAN tag: the tagged protocol (IPv4) decides, and the network header is
    // still right after the Ethernet header, the tag: its second byte is taken as the TOS and
    // the checksum updated ten bytes on.
    let mut tagged = ETH.to_vec();
    tagged.extend_from_slice(&[0x81, 0x00, 0x00, 0x05, 0x08, 0x00]);
    tagged.extend_from_slice(&ipv4(2, 0x1234)[14..]);
    let mut want = tagged.clone();
    want[15] = 0x07;
    want[24..26].copy_from_slice(&0xfffdu16.to_be_bytes());
    check(tagged, (1, want), true);

    oracle::compare_runs(
        "ecn_set_ce_marks_ect_packets",
        "tc_ecn.o",
        "classifier",
        cases.iter().map(|(f, want)| (&f[..], want.clone())),
    );
}

/// The TC-only helpers of this work (`skb_get_tunnel_key`, `skb_set_tunnel_key`,
/// `skb_ecn_set_ce`) are refused to XDP programs and socket filters in both modes, in the
/// kernel's words, as the kernel refuses them.
#[test]
fn xdp_and_socket_filters_cannot_use_the_tc_helpers() {
    let call = |id: u32| {
        format!(
            "mov r6, r1\nmov r2, r10\nadd r2, -48\nmov r3, 44\nmov r4, 0\ncall {id}\nmov r0, 0\nexit"
        )
    };
    for (section, prog_type) in [("xdp", "xdp"), ("socket", "socket_filter")] {
        for (id, name) in [
            (20, "skb_get_tunnel_key"),
            (21, "skb_set_tunnel_key"),
            (97, "skb_ecn_set_ce"),
        ] {
            for mode in [Mode::Checked, Mode::Strict] {
                let obj = bpfx::Vm::new()
                    .object(
                        vec![bpfx::ProgramDef::new("p", section, common::code(&call(id)))],
                        vec![],
                    )
                    .unwrap();
                let e = obj
                    .program("p")
                    .unwrap()
                    .verify(mode)
                    .unwrap_err()
                    .to_string();
                assert!(
                    e.contains(&format!(
                        "program of type {prog_type} cannot use helper {name}#{id}"
                    )),
                    "{mode:?}: {e}"
                );
            }
        }
    }
}
