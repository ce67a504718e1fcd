//! `bpf_xdp_get_buff_len`, `bpf_xdp_load_bytes` and `bpf_xdp_store_bytes` as a multi-buffer
//! XDP program (section `xdp.frags`) uses them: `objects/xdp_bytes.c` copies the Ethernet and
//! IPv4 headers out, decrements the TTL through a store with its checksum fixed, and reports
//! the helpers' errno for copies past the frame or past offset 0xffff. Every engine in both
//! modes runs it, and where the kernel can be asked (root, `bpftool`) its verdicts and output
//! frames are the same.

// The oracle runs clang-built objects only: `common::code` (assembled programs) goes unused.
#[allow(dead_code)]
mod common;

#[path = "common/oracle.rs"]
mod oracle;

use bpfx::Object;
use common::run_xdp_everywhere;
use oracle::{compare_xdp, objects};

const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;
const XDP_TX: u32 = 3;

/// An Ethernet + IPv4 UDP frame with `ttl`, its header checksum right.
fn ipv4(ttl: u8) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00];
    let mut ip = vec![0x45, 0, 0, 28, 0x12, 0x34, 0x40, 0, ttl, 17, 0, 0];
    ip.extend_from_slice(&[192, 0, 2, 1, 198, 51, 100, 7]);
    let csum = checksum(&ip);
    ip[10..12].copy_from_slice(&csum.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&[0x13, 0x88, 0, 53, 0, 8, 0, 0]);
    f
}

/// The RFC 1071 checksum of `hdr` (its checksum field taken as it is).
fn checksum(hdr: &[u8]) -> u16 {
    let mut sum: u32 = hdr
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[test]
fn headers_copied_out_and_a_ttl_stored_back_through_the_helpers() {
    let file = "xdp_bytes.o";
    let obj = Object::open(objects().join(file)).unwrap();
    let mut arp = vec![0xff; 6];
    arp.extend_from_slice(&[0x02, 0, 0, 0, 0, 2, 0x08, 0x06]);
    arp.extend_from_slice(&[0; 28]);
    let mut probe = ipv4(64);
    probe[0] = 0xfe;
    let frames = vec![
        ipv4(64),
        ipv4(1),
        arp.clone(),
        ipv4(64)[..30].to_vec(),
        probe.clone(),
    ];
    let ours: Vec<(u32, Vec<u8>)> = frames
        .iter()
        .map(|f| run_xdp_everywhere(&obj, "xdp_bytes", f))
        .collect();
    let mut routed = ipv4(63);
    routed[..14].copy_from_slice(&ipv4(64)[..14]);
    assert_eq!(checksum(&routed[14..34]), 0, "the stored checksum is right");
    assert_eq!(ours[0], (XDP_TX, routed));
    assert_eq!(ours[1], (XDP_DROP, ipv4(1)));
    assert_eq!(ours[2], (XDP_PASS, arp));
    assert_eq!(ours[3], (XDP_DROP, ipv4(64)[..30].to_vec()));
    // -EINVAL past the frame's end, -EFAULT past offset 0xffff: bits 1 and 2.
    assert_eq!(ours[4], (3, probe));
    compare_xdp(
        "headers_copied_out_and_a_ttl_stored_back_through_the_helpers",
        file,
        &frames,
        &ours,
    );
}
