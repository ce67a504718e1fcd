//! A `struct bpf_timer` nested in a struct member of the map's value
//! (`objects/xdp_frag_timer.c`: `struct frag_val { __u64 packets; struct frag_rule { __u32
//! flags; __u32 pad; struct bpf_timer timer; } rule; }`), as the kernel's verifier has found
//! it since Linux 6.10: the ELF loader reads its offset (16, the member's 8 plus the nested
//! struct's 8) from the value's BTF, both modes verify the program, every engine gives the
//! kernel's results for each timer helper, and the unsafe twin (`xdp_frag_timer_bad.c`, the
//! nested struct's own address passed as the timer) is refused by both modes and the kernel.

#[allow(dead_code)]
mod common;

#[path = "common/oracle.rs"]
mod oracle;

use bpfx::{Mode, Object};
use common::run_object_everywhere;
use oracle::objects;

const XDP_PASS: u32 = 2;
const EBUSY: i32 = -16;

/// An Ethernet + IPv4 frame from 10.0.0.`saddr` with IP id `id` and 20 bytes of payload, where
/// the program writes its five results.
fn frame(saddr: u8, id: u16) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00];
    f.extend_from_slice(&[0x45, 0, 0, 40]);
    f.extend_from_slice(&id.to_be_bytes());
    f.extend_from_slice(&[0x20, 0, 64, 17, 0, 0, 10, 0, 0, saddr, 10, 0, 0, 2]);
    f.resize(14 + 20 + 20, 0);
    f
}

/// The five s32 results the program wrote into `frame`.
fn results(frame: &[u8]) -> [i32; 5] {
    std::array::from_fn(|i| i32::from_le_bytes(frame[34 + 4 * i..38 + 4 * i].try_into().unwrap()))
}

fn open() -> Object {
    Object::open(objects().join("xdp_frag_timer.o")).unwrap()
}

#[test]
fn the_loader_finds_the_timer_in_the_nested_struct() {
    let obj = open();
    let map = obj.map("frags").unwrap();
    let spec = map.spec();
    assert_eq!(spec.timer_off, Some(16));
}

#[test]
fn the_helpers_on_a_nested_timer_return_the_kernels_results_on_every_engine() {
    let frames = [frame(1, 7), frame(1, 7), frame(1, 8), frame(3, 7)];
    let ours = run_object_everywhere(open, "xdp_frag_timer", |prog, _| {
        frames
            .iter()
            .map(|f| {
                let mut p = bpfx::Packet::new(f);
                let out = prog.run_xdp_packet(&mut p).unwrap();
                (out.action.code() as u32, p.to_vec())
            })
            .collect::<Vec<_>>()
    });
    // A new entry: init, set_callback, start 0, cancel 1 (it was armed); the same fragment
    // again: init -EBUSY, the rest as before, one packet counted before.
    let new = [0, 0, 0, 1, 0];
    let want = [new, [EBUSY, 0, 0, 1, 1], new, new];
    for (i, (o, w)) in ours.iter().zip(want).enumerate() {
        assert_eq!(o.0, XDP_PASS, "frame {i}");
        assert_eq!(results(&o.1), w, "frame {i}");
    }
    oracle::compare_pinned_runs(
        "the_helpers_on_a_nested_timer_return_the_kernels_results_on_every_engine",
        "xdp_frag_timer.o",
        "xdp",
        &frames,
        &ours,
    );
}

#[test]
fn the_kernel_and_both_modes_refuse_the_nested_structs_address_as_the_timer() {
    let file = "xdp_frag_timer_bad.o";
    let obj = Object::open(objects().join(file)).unwrap();
    for mode in [Mode::Checked, Mode::Strict] {
        let e = obj
            .program("xdp_frag_timer")
            .unwrap()
            .verify(mode)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("at exactly the offset of its struct bpf_timer field"),
            "{mode:?}: {e}"
        );
    }
    match oracle::unavailable() {
        Some(why) => eprintln!("SKIPPED the kernel's verdict on {file}: {why}"),
        None => assert!(
            oracle::load(&objects().join(file), "xdp").is_err(),
            "the kernel accepted {file}"
        ),
    }
}
