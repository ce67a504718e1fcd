//! The kernel as the oracle of `may_goto`: `objects/xdp_may_goto.c` (libbpf's `can_loop` in a
//! loop over the frame's bytes) runs on frames of several lengths through `bpftool prog run`
//! (the kernel's `BPF_PROG_TEST_RUN`) and on bpfx's engines in both modes on a `Packet::new`;
//! verdicts and output frames must be equal, and equal to the result computed here. Needs root, `bpftool` and a
//! kernel with `may_goto` (6.9); without them the test says why on stderr and checks nothing.

// The oracle runs clang-built objects only: `common::code` (assembled programs) goes unused.
#[allow(dead_code)]
mod common;

#[path = "common/oracle.rs"]
mod oracle;

use bpfx::Object;
use common::run_xdp_everywhere;
use oracle::{compare_xdp, objects};

/// The program's result, computed here: the sum `s = s * 31 + byte` over the frame's first
/// 2048 bytes, its low
/// byte written at the frame's start, XDP_TX for an odd sum, XDP_PASS for an even one.
fn reference(frame: &[u8]) -> (u32, Vec<u8>) {
    if frame.is_empty() {
        return (1, Vec::new());
    }
    let sum = frame
        .iter()
        .take(2048)
        .fold(0u32, |s, &b| s.wrapping_mul(31).wrapping_add(u32::from(b)));
    let mut out = frame.to_vec();
    out[0] = sum as u8;
    (if sum & 1 == 1 { 3 } else { 2 }, out)
}

#[test]
fn can_loop_agrees_with_the_kernel() {
    let file = "xdp_may_goto.o";
    let obj = Object::open(objects().join(file)).unwrap();
    let frames: Vec<Vec<u8>> = [0usize, 1, 2, 14, 64, 255, 1500, 3000]
        .iter()
        .flat_map(|&len| {
            [
                (0..len).map(|i| (i * 7 + 3) as u8).collect::<Vec<u8>>(),
                vec![4u8; len],
            ]
        })
        .collect();
    // bpfx's engines agree with each other and with the reference whether or not the kernel
    // is here.
    let ours: Vec<(u32, Vec<u8>)> = frames
        .iter()
        .map(|f| run_xdp_everywhere(&obj, "xdp_may_goto", f))
        .collect();
    for (f, o) in frames.iter().zip(&ours) {
        assert_eq!(*o, reference(f), "frame of {} bytes", f.len());
    }
    if let Some(checked) = compare_xdp("can_loop_agrees_with_the_kernel", file, &frames, &ours) {
        assert_eq!(checked, 10);
    }
}
