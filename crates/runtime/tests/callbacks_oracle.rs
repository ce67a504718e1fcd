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

use bpfx::{Mode, Object, Packet};
use common::{engines, prepare};
use oracle::{kernel_run, load, objects, unavailable};

/// The run on every bpfx engine in both modes, which all agree: the verdict and the frame.
fn bpfx_run(obj: &Object, frame: &[u8]) -> (u32, Vec<u8>) {
    let mut seen = None;
    for mode in [Mode::Checked, Mode::Strict] {
        for (engine, opts) in engines() {
            let v = obj
                .program("xdp_loop")
                .unwrap()
                .verify(mode)
                .unwrap_or_else(|e| panic!("{mode:?}: {e}"));
            let mut prog = prepare(v, opts);
            let mut p = Packet::new(frame);
            let out = prog.run_xdp_packet(&mut p).unwrap();
            let got = (out.action.code() as u32, p.to_vec());
            match &seen {
                None => seen = Some(got),
                Some(s) => assert_eq!(*s, got, "{mode:?} {engine}"),
            }
        }
    }
    seen.unwrap()
}

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
    let ours: Vec<(u32, Vec<u8>)> = frames.iter().map(|f| bpfx_run(&obj, f)).collect();
    if let Some(why) = unavailable() {
        eprintln!("SKIPPED bpf_loop_agrees_with_the_kernel: {why}");
        return;
    }
    let pinned = match load(&objects().join(file), "xdp") {
        Ok(p) => p,
        Err(why) => {
            eprintln!(
                "SKIPPED bpf_loop_agrees_with_the_kernel: the kernel does not load {file}: {why}"
            );
            return;
        }
    };
    let scratch = std::env::temp_dir().join(format!("bpfx-loop-oracle-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    let mut checked = 0;
    for (frame, ours) in frames.iter().zip(&ours) {
        // The kernel's test run refuses frames shorter than an Ethernet header.
        if frame.len() < 14 {
            continue;
        }
        let kernel = kernel_run(&pinned, frame, None, &scratch);
        assert_eq!(&kernel, ours, "frame of {} bytes", frame.len());
        checked += 1;
    }
    let _ = std::fs::remove_dir_all(&scratch);
    assert_eq!(checked, 12);
    eprintln!("bpf_loop_agrees_with_the_kernel: {checked} runs compared with the kernel's");
}
