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

use bpfx::{Mode, Object, Packet};
use common::{engines, prepare};
use oracle::{kernel_run, load, objects, unavailable};

/// The run on every bpfx engine in both modes, which all agree: the verdict and the frame.
fn bpfx_run(obj: &Object, frame: &[u8]) -> (u32, Vec<u8>) {
    let mut seen = None;
    for (mode, (engine, opts)) in [Mode::Checked, Mode::Strict]
        .into_iter()
        .flat_map(|m| engines().into_iter().map(move |e| (m, e)))
    {
        let v = obj
            .program("xdp_may_goto")
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
    seen.unwrap()
}

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
    let ours: Vec<(u32, Vec<u8>)> = frames.iter().map(|f| bpfx_run(&obj, f)).collect();
    for (f, o) in frames.iter().zip(&ours) {
        assert_eq!(*o, reference(f), "frame of {} bytes", f.len());
    }
    if let Some(why) = unavailable() {
        eprintln!("SKIPPED can_loop_agrees_with_the_kernel: {why}");
        return;
    }
    let pinned = match load(&objects().join(file), "xdp") {
        Ok(p) => p,
        Err(why) => {
            eprintln!(
                "SKIPPED can_loop_agrees_with_the_kernel: the kernel does not load {file}: {why}"
            );
            return;
        }
    };
    let scratch = std::env::temp_dir().join(format!("bpfx-may-goto-oracle-{}", std::process::id()));
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
    assert_eq!(checked, 10);
    eprintln!("can_loop_agrees_with_the_kernel: {checked} runs compared with the kernel's");
}
