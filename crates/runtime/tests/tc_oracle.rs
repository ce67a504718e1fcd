//! The kernel as the oracle of TC helper results: `tests/objects/tc_helpers.c` calls
//! `skb_load_bytes_relative` (from the MAC and the network header, past the end, with an
//! unknown start), `csum_update`, `set_hash` and `get_hash_recalc` and writes every result into
//! its output frame; the frame and the verdict from `bpftool prog run` (the kernel's
//! `BPF_PROG_TEST_RUN`) must equal bpfx's on every engine. `tests/objects/helper_types_*.o`
//! call helpers their program type may or may not use: bpfx must accept exactly those the
//! kernel's verifier accepts, and refuse the others naming the helper. `tc_probe.c` runs the
//! probe-read helpers on addresses no one lent (user, non-canonical, kernel, vsyscall): the
//! errnos and zeroed destinations must be the kernel's. `tc_task.c` writes
//! `get_current_comm`'s buffers and `get_current_uid_gid`: run by `bpftool` as root, the
//! kernel's task is `bpftool` with ids 0, which bpfx is given as its `Task`. Needs root, `bpftool` and a kernel
//! that loads BPF programs; without them the test says why on stderr and checks nothing.

// Only clang-built objects run here: `common::code` goes unused.
#[allow(dead_code)]
mod common;

#[path = "common/oracle.rs"]
mod oracle;

use bpfx::{Mode, Object, SkbMeta, Task, Vm};
use common::{engines, prepare};
use oracle::{kernel_run, load, objects, unavailable};
use std::path::PathBuf;

const OBJECT: &str = "tc_helpers.o";

fn object() -> PathBuf {
    objects().join(OBJECT)
}

/// The same run on every bpfx engine (Strict: the kernel accepted the program), which all
/// agree.
fn bpfx_run(obj: &Object, frame: &[u8]) -> (u32, Vec<u8>) {
    let mut seen = None;
    let name = obj.programs().next().unwrap().name.to_string();
    for (engine, opts) in engines() {
        let v = obj.program(&name).unwrap().verify(Mode::Strict).unwrap();
        let mut prog = prepare(v, opts);
        let mut p = frame.to_vec();
        let action = prog.run_tc(&mut p, &mut SkbMeta::default()).unwrap();
        let got = (action.code() as u32, p);
        match &seen {
            None => seen = Some(got),
            Some(s) => assert_eq!(*s, got, "{engine}"),
        }
    }
    seen.unwrap()
}

/// Ethernet + IPv4 (198.51.100.7 -> 10.1.0.2, UDP) + `payload` zero bytes.
fn frame(payload: usize) -> Vec<u8> {
    let mut p = vec![0x02, 0xaa, 0, 0, 0, 1, 0x02, 0xbb, 0, 0, 0, 2, 0x08, 0x00];
    let total = (20 + payload) as u16;
    p.extend_from_slice(&[0x45, 0]);
    p.extend_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&[0, 1, 0x40, 0, 64, 17, 0, 0, 198, 51, 100, 7, 10, 1, 0, 2]);
    p.resize(p.len() + payload, 0);
    p
}

#[test]
fn tc_helper_results_agree_with_the_kernel() {
    if let Some(why) = unavailable() {
        eprintln!("SKIPPED tc_helper_results_agree_with_the_kernel: {why}");
        return;
    }
    let pinned = match load(&object(), "classifier") {
        Ok(p) => p,
        Err(why) => {
            eprintln!(
                "SKIPPED tc_helper_results_agree_with_the_kernel: the kernel does not load \
                 {OBJECT}: {why}"
            );
            return;
        }
    };
    let scratch = std::env::temp_dir().join(format!("bpfx-tc-oracle-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    let obj = Object::open(object()).unwrap();
    let payloads = [40, 68, 69, 200];
    for payload in payloads {
        let f = frame(payload);
        let kernel = kernel_run(&pinned, &f, None, &scratch);
        let ours = bpfx_run(&obj, &f);
        assert_eq!(ours, kernel, "a frame of {} bytes", f.len());
        if f.len() >= 102 {
            // The results the frame carries, spelled out (so the test checks the helpers even
            // where the two would agree on something else).
            let rets: Vec<i64> = ours.1[50..98]
                .chunks(8)
                .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
                .collect();
            assert_eq!(rets, [0, 0, -14, -14, -524, 0xabcdef01]);
            assert_eq!(
                &ours.1[34..50],
                &[198, 51, 100, 7, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
            );
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    eprintln!(
        "tc_helper_results_agree_with_the_kernel: {} runs compared with the kernel's",
        payloads.len()
    );
}

#[test]
fn helper_availability_per_type_agrees_with_the_kernel() {
    if let Some(why) = unavailable() {
        eprintln!("SKIPPED helper_availability_per_type_agrees_with_the_kernel: {why}");
        return;
    }
    let dir = objects();
    // (case, bpftool's type, the helper bpfx must name when it refuses)
    let cases = [
        (0, "classifier", None),
        (1, "classifier", None),
        (2, "xdp", Some("skb_load_bytes#26")),
        (3, "socket", Some("set_hash#48")),
        (4, "socket", None),
        (5, "xdp", None),
        (6, "classifier", Some("xdp_adjust_head#44")),
        (7, "xdp", None),
        (8, "xdp", None),
        (9, "classifier", None),
        (10, "socket", Some("fib_lookup#69")),
    ];
    for (case, ty, named) in cases {
        let path = dir.join(format!("helper_types_{case}.o"));
        let kernel = load(&path, ty);
        if let Err(why) = &kernel
            && !why.contains("cannot use helper")
        {
            panic!("case {case}: the kernel refuses it for another reason: {why}");
        }
        let obj = Object::open(&path).unwrap();
        let ours = obj.program("types").unwrap().verify(Mode::Checked);
        assert_eq!(ours.is_ok(), kernel.is_ok(), "case {case} ({ty})");
        if let Err(e) = ours {
            let want = named.expect("bpfx refuses only where it names the helper");
            assert!(
                e.to_string().contains(&format!("cannot use helper {want}")),
                "{e}"
            );
        } else {
            assert!(
                named.is_none(),
                "case {case}: bpfx accepts what it should refuse"
            );
        }
    }
    eprintln!(
        "helper_availability_per_type_agrees_with_the_kernel: {} programs compared with the \
         kernel's verifier",
        cases.len()
    );
}

#[test]
fn probe_reads_of_unlent_memory_fail_as_in_the_kernel() {
    if let Some(why) = unavailable() {
        eprintln!("SKIPPED probe_reads_of_unlent_memory_fail_as_in_the_kernel: {why}");
        return;
    }
    let path = object().with_file_name("tc_probe.o");
    let pinned = match load(&path, "classifier") {
        Ok(p) => p,
        Err(why) => {
            eprintln!(
                "SKIPPED probe_reads_of_unlent_memory_fail_as_in_the_kernel: the kernel does \
                 not load tc_probe.o: {why}"
            );
            return;
        }
    };
    let scratch = std::env::temp_dir().join(format!("bpfx-tc-probe-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    let frame = vec![0u8; 512];
    let kernel = kernel_run(&pinned, &frame, None, &scratch);
    let ours = bpfx_run(&Object::open(&path).unwrap(), &frame);
    assert_eq!(ours, kernel);
    // Spelled out for the kernel address (the guard hole): -EFAULT, the destination zeroed, and
    // 0 for a read of nothing; for NULL through the kernel helper, -ERANGE both times.
    let word = |slot: usize, k: usize| {
        let at = 16 + slot * 24 + 8 * k;
        i64::from_le_bytes(ours.1[at..at + 8].try_into().unwrap())
    };
    assert_eq!((word(13, 0), word(13, 1), word(13, 2)), (-14, 0, 0));
    assert_eq!((word(1, 0), word(1, 1), word(1, 2)), (-34, 0, -34));
    let _ = std::fs::remove_dir_all(&scratch);
    eprintln!("probe_reads_of_unlent_memory_fail_as_in_the_kernel: compared with the kernel's run");
}

#[test]
fn the_task_helpers_fill_buffers_as_in_the_kernel() {
    if let Some(why) = unavailable() {
        eprintln!("SKIPPED the_task_helpers_fill_buffers_as_in_the_kernel: {why}");
        return;
    }
    let path = object().with_file_name("tc_task.o");
    let pinned = match load(&path, "classifier") {
        Ok(p) => p,
        Err(why) => {
            eprintln!(
                "SKIPPED the_task_helpers_fill_buffers_as_in_the_kernel: the kernel does not \
                 load tc_task.o: {why}"
            );
            return;
        }
    };
    let scratch = std::env::temp_dir().join(format!("bpfx-tc-task-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    let frame = vec![0u8; 64];
    let kernel = kernel_run(&pinned, &frame, None, &scratch);
    let obj = Vm::new()
        .current_task(|| Task::new(1, 1).with_ids(0, 0).with_comm("bpftool"))
        .open(&path)
        .unwrap();
    let ours = bpfx_run(&obj, &frame);
    assert_eq!(ours, kernel);
    assert_eq!(
        &ours.1[16..40],
        b"bpftool\0\0\0\0\0\0\0\0\0bpf\0\xee\xee\xee\xee"
    );
    let _ = std::fs::remove_dir_all(&scratch);
    eprintln!("the_task_helpers_fill_buffers_as_in_the_kernel: compared with the kernel's run");
}
