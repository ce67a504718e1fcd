//! The kernel as the oracle of `bpf_loop`: `objects/xdp_loop.c` (a callback summing the frame's
//! bytes through a context on the caller's stack, stopping at the frame's end) runs on frames of
//! several lengths through `bpftool prog run` (the kernel's `BPF_PROG_TEST_RUN`) and on bpfx's
//! engines on a `Packet::new`; verdicts and output frames must be equal. Needs root, `bpftool`
//! and a kernel that loads BPF programs; without them the test says why on stderr and checks
//! nothing.

// The oracle runs clang-built objects only: `common::code` (assembled programs) goes unused.
#[allow(dead_code)]
mod common;

#[path = "common/oracle.rs"]
mod oracle;

use bpfx::Object;
use common::run_xdp_everywhere;
use oracle::{compare_xdp, objects};

#[test]
fn bpf_loop_agrees_with_the_kernel() {
    let file = "xdp_loop.o";
    let obj = Object::open(objects().join(file)).unwrap();
    let frames: Vec<Vec<u8>> = [0usize, 1, 2, 3, 14, 64, 255, 256, 257, 600]
        .iter()
        .flat_map(|&len| {
            [
                (0..len).map(|i| (i * 7 + 3) as u8).collect::<Vec<u8>>(),
                vec![5u8; len],
            ]
        })
        .collect();
    // bpfx's engines agree with each other whether or not the kernel is here.
    let ours: Vec<(u32, Vec<u8>)> = frames
        .iter()
        .map(|f| run_xdp_everywhere(&obj, "xdp_loop", f))
        .collect();
    if let Some(checked) = compare_xdp("bpf_loop_agrees_with_the_kernel", file, &frames, &ours) {
        assert_eq!(checked, 12);
    }
}
