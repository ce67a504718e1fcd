//! Maps chosen by a branch, as C programs write them: `objects/xdp_flowsel.c` picks its flow
//! table by protocol (two LRU hashes of one layout but different sizes) or none (a null map
//! pointer it tests before the helper calls). Every engine in both modes runs it on TCP, UDP,
//! ICMP, ARP and short frames, the records land in the right table, and where the kernel can
//! be asked (root, `bpftool`) its verdicts and output frames are the same.

// The oracle runs clang-built objects only: `common::code` (assembled programs) goes unused.
#[allow(dead_code)]
mod common;

#[path = "common/oracle.rs"]
mod oracle;

use bpfx::Object;
use common::run_xdp_everywhere;
use oracle::{compare_xdp, objects};

const XDP_PASS: u32 = 2;
const XDP_TX: u32 = 3;

/// An Ethernet + IPv4 frame from 192.0.2.1 to 198.51.100.7, TTL 64, with `payload`.
fn ipv4(proto: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00];
    let total = (20 + payload.len()) as u16;
    f.extend_from_slice(&[0x45, 0]);
    f.extend_from_slice(&total.to_be_bytes());
    f.extend_from_slice(&[0x12, 0x34, 0x40, 0, 64, proto, 0xab, 0xcd]);
    f.extend_from_slice(&[192, 0, 2, 1, 198, 51, 100, 7]);
    f.extend_from_slice(payload);
    f
}

/// The record the program writes back: tag (over the IP id), TTL + 1, checksum zeroed.
fn recorded(frame: &[u8], tag: u16) -> Vec<u8> {
    let mut f = frame.to_vec();
    f[18..20].copy_from_slice(&tag.to_le_bytes());
    f[22] += 1;
    f[24..26].copy_from_slice(&[0, 0]);
    f
}

#[test]
fn a_table_chosen_by_protocol_or_none_verifies_and_runs_everywhere() {
    let file = "xdp_flowsel.o";
    let obj = Object::open(objects().join(file)).unwrap();
    let tcp = ipv4(
        6,
        &[
            0x9c, 0x41, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff,
        ],
    );
    let udp = ipv4(17, &[0x13, 0x88, 0, 53, 0, 12, 0, 0, 1, 2, 3, 4]);
    let icmp = ipv4(1, &[8, 0, 0xf7, 0xff, 0, 0, 0, 0]);
    let mut arp = vec![0xff; 6];
    arp.extend_from_slice(&[0x02, 0, 0, 0, 0, 2, 0x08, 0x06]);
    arp.extend_from_slice(&[0; 28]);
    let short = tcp[..30].to_vec();
    let frames = vec![
        tcp.clone(),
        udp.clone(),
        icmp.clone(),
        arp.clone(),
        short.clone(),
    ];
    let ours: Vec<(u32, Vec<u8>)> = frames
        .iter()
        .map(|f| run_xdp_everywhere(&obj, "xdp_flowsel", f))
        .collect();
    assert_eq!(ours[0], (XDP_TX, recorded(&tcp, 0x7cbb)));
    assert_eq!(ours[1], (XDP_TX, recorded(&udp, 0x0dbb)));
    assert_eq!(ours[2], (XDP_PASS, icmp));
    assert_eq!(ours[3], (XDP_PASS, arp));
    assert_eq!(ours[4], (XDP_PASS, short));
    // One flow each, in its own table: key (saddr, daddr), value (tag, seq, proto, bytes).
    let key = [192, 0, 2, 1, 198, 51, 100, 7];
    for (map, tag, proto, len) in [
        ("tcp_flows", 0x7cbbu16, 6u8, tcp.len() as u32 - 14),
        ("udp_flows", 0x0dbb, 17, udp.len() as u32 - 14),
    ] {
        let m = obj.map(map).unwrap();
        assert_eq!(m.len(), 1, "{map}");
        let mut rec = tag.to_le_bytes().to_vec();
        rec.extend_from_slice(&[65, proto]);
        rec.extend_from_slice(&len.to_le_bytes());
        assert_eq!(m.lookup(&key).unwrap(), Some(rec), "{map}");
    }
    if let Some(checked) = compare_xdp(
        "a_table_chosen_by_protocol_or_none_verifies_and_runs_everywhere",
        file,
        &frames,
        &ours,
    ) {
        assert_eq!(checked, 5);
    }
}
