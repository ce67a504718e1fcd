//! `bpf_timer_init` / `bpf_timer_set_callback` / `bpf_timer_start` / `bpf_timer_cancel`:
//! `objects/xdp_ct_timer.c`, a conntrack table whose LRU hash value embeds a `struct
//! bpf_timer`, writes each helper's result into the frame, on the interpreter and the JIT under
//! every option set in both modes, and the kernel runs the same frames to the same results.
//! Deleting or overwriting an element frees its timer. The verifier's rules: the timer pointer
//! at exactly the BTF offset of the value's `bpf_timer` (the unsafe twin
//! `objects/xdp_ct_timer_bad.c` is refused by bpfx in both modes and by the kernel), init's map
//! the timer's, a callback returning 0.

#[allow(dead_code)]
mod common;

#[path = "common/oracle.rs"]
mod oracle;

use bpfx::{MapKind, MapSpec, Mode, Object, ProgramDef, RunError, UpdateFlag, Vm};
use common::{code, engines, prepare, run_object_everywhere};
use oracle::objects;

const XDP_PASS: u32 = 2;
const EINVAL: i32 = -22;
const EBUSY: i32 = -16;

/// An Ethernet + IPv4 frame from `saddr` to 10.0.0.2 with `tos`, 48 bytes of payload (where
/// the program writes its results).
fn frame(saddr: u8, tos: u8) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00];
    f.extend_from_slice(&[0x45, tos, 0, 52, 0, 0, 0, 0, 64, 17, 0, 0]);
    f.extend_from_slice(&[10, 0, 0, saddr, 10, 0, 0, 2]);
    f.resize(14 + 20 + 48, 0);
    f
}

/// The twelve s32 results the program wrote into `frame`.
fn results(frame: &[u8]) -> [i32; 12] {
    std::array::from_fn(|i| i32::from_le_bytes(frame[34 + 4 * i..38 + 4 * i].try_into().unwrap()))
}

/// The conntrack key of a frame from 10.0.0.`saddr`.
fn key(saddr: u8) -> Vec<u8> {
    vec![10, 0, 0, saddr, 10, 0, 0, 2]
}

fn open() -> Object {
    Object::open(objects().join("xdp_ct_timer.o")).unwrap()
}

/// Runs `frames` in order through a fresh object on every engine in both modes, calling
/// `between(obj, i)` before frame `i`: the verdicts and frames (the same everywhere).
fn run_sequence(frames: &[Vec<u8>], between: impl Fn(&Object, usize)) -> Vec<(u32, Vec<u8>)> {
    run_object_everywhere(open, "xdp_ct_timer", |prog, obj| {
        frames
            .iter()
            .enumerate()
            .map(|(i, f)| {
                between(obj, i);
                let mut p = bpfx::Packet::new(f);
                let out = prog.run_xdp_packet(&mut p).unwrap();
                (out.action.code() as u32, p.to_vec())
            })
            .collect()
    })
}

const NEW_FLOW: [i32; 12] = [EINVAL, EINVAL, EINVAL, 0, 0, 0, 1, EINVAL, 0, 0, 0, 0];

#[test]
fn the_helpers_return_the_kernels_results_on_every_engine() {
    let frames = vec![
        frame(1, 0),
        frame(1, 0),
        frame(1, 1),
        frame(1, 2),
        frame(1, 0),
        frame(3, 0),
    ];
    let ours = run_sequence(&frames, |_, _| {});
    let want: [[i32; 12]; 6] = [
        // A new flow: nothing works before init; once armed, cancel says it was, and drops
        // the callback, so start fails until the callback is set again.
        NEW_FLOW,
        // Init again: busy; the timer was armed.
        [EBUSY, 1, 0, EINVAL, 0, 0, EBUSY, 1, 0, 0, 0, 0],
        // Clock 5 is refused before the timer is looked at.
        [EINVAL, 1, 0, EINVAL, 0, 0, EBUSY, 2, 0, 0, 0, 0],
        // Start's flags 4 are refused, so the timer stays cancelled...
        [EBUSY, 1, 0, EINVAL, 0, EINVAL, EBUSY, 3, 0, 0, 0, 0],
        // ...and the next cancel finds it not armed.
        [EBUSY, 0, 0, EINVAL, 0, 0, EBUSY, 4, 0, 0, 0, 0],
        // Another flow has its own timer.
        NEW_FLOW,
    ];
    for (i, (o, w)) in ours.iter().zip(want).enumerate() {
        assert_eq!(o.0, XDP_PASS, "frame {i}");
        assert_eq!(results(&o.1), w, "frame {i}");
    }
    oracle::compare_pinned_runs(
        "the_helpers_return_the_kernels_results_on_every_engine",
        "xdp_ct_timer.o",
        "xdp",
        &frames,
        &ours,
    );
}

#[test]
fn deleting_or_overwriting_an_element_frees_its_timer() {
    let frames = vec![frame(1, 0), frame(1, 0), frame(1, 0), frame(1, 0)];
    let ours = run_sequence(&frames, |obj, i| {
        let ct = obj.map("ct").unwrap();
        match i {
            // Deleted: the next packet is a new flow, whose init succeeds.
            1 => ct.delete(&key(1)).unwrap(),
            // Overwritten (the counter kept, the timer's bytes zero, as a loader writes a
            // value): the timer is not initialised any more, and not armed.
            3 => {
                let mut v = vec![0u8; 32];
                v[..8].copy_from_slice(&7u64.to_le_bytes());
                ct.update(&key(1), &v, UpdateFlag::Exist).unwrap();
            }
            _ => {}
        }
    });
    let got: Vec<[i32; 12]> = ours.iter().map(|o| results(&o.1)).collect();
    assert_eq!(
        got,
        [
            NEW_FLOW,
            NEW_FLOW,
            [EBUSY, 1, 0, EINVAL, 0, 0, EBUSY, 1, 0, 0, 0, 0],
            // Init works again; cancel finds it not armed; start has no callback.
            [0, 0, 0, EINVAL, 0, 0, EBUSY, 7, 0, 0, 0, 0],
        ]
    );
}

#[test]
fn the_kernel_and_both_modes_refuse_a_timer_at_the_wrong_offset() {
    let file = "xdp_ct_timer_bad.o";
    let obj = Object::open(objects().join(file)).unwrap();
    for mode in [Mode::Checked, Mode::Strict] {
        let e = obj
            .program("xdp_ct_timer_bad")
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

/// An object of assembler `text` with map 0 a hash of 4-byte keys and 24-byte values whose
/// timer is at `timer_off`, and map 1 the same shape.
fn object(text: &str, timer_off: Option<u32>) -> Object {
    let spec = || MapSpec {
        timer_off,
        ..MapSpec::new("ct", MapKind::Hash, 4, 24, 4)
    };
    Vm::new()
        .object(
            vec![ProgramDef::new("p", "test", code(text))],
            vec![
                spec(),
                MapSpec {
                    name: "other".into(),
                    ..spec()
                },
            ],
        )
        .unwrap()
}

/// Puts key 0 into map 0, looks it up into r6, then runs `body`; `cb` is the callback (when
/// `body` names it).
fn with_value(body: &str, cb: &str) -> String {
    format!(
        "stw [r10-4], 0\nstdw [r10-32], 0\nstdw [r10-24], 0\nstdw [r10-16], 0\n\
         lddw r1, map_idx(0)\nmov r2, r10\nadd r2, -4\nmov r3, r10\nadd r3, -32\nmov r4, 0\n\
         call 2\nlddw r1, map_idx(0)\nmov r2, r10\nadd r2, -4\ncall 1\n\
         jne r0, 0, +2\nmov r0, 99\nexit\nmov r6, r0\n{body}\nexit\n{}",
        // A function no `lddw` names is unreachable code.
        if body.contains("func(cb)") {
            format!("cb:\n{cb}\nexit")
        } else {
            String::new()
        }
    )
}

/// Verifies `text` in `mode` (timer at offset 8): the error, if any.
fn verify(text: &str, mode: Mode, timer_off: Option<u32>) -> Result<(), String> {
    let obj = object(text, timer_off);
    obj.program("p")
        .unwrap()
        .verify(mode)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

const INIT: &str = "mov r1, r6\nadd r1, 8\nlddw r2, map_idx(0)\nmov r3, 1\ncall 169\n";
const SET_CB: &str = "mov r1, r6\nadd r1, 8\nlddw r2, func(cb)\ncall 170\n";

#[test]
fn the_verifier_checks_the_timer_its_map_and_its_callback() {
    let ok = with_value(&format!("{INIT}{SET_CB}"), "mov r0, 0");
    for mode in [Mode::Checked, Mode::Strict] {
        verify(&ok, mode, Some(8)).unwrap();
        // A callback must return 0.
        let e = verify(&with_value(SET_CB, "mov r0, 1"), mode, Some(8)).unwrap_err();
        assert!(
            e.contains("a timer callback must return 0"),
            "{mode:?}: {e}"
        );
        // The map's values hold no timer (no BTF places one).
        let e = verify(&ok, mode, None).unwrap_err();
        assert!(e.contains("has no bpf_timer field"), "{mode:?}: {e}");
        // The timer is at 8, not 0.
        let e = verify(&ok, mode, Some(0)).unwrap_err();
        assert!(e.contains("exactly the offset"), "{mode:?}: {e}");
    }
    // A per-CPU hash holds no timer (the kernel refuses to create one whose value has one).
    let obj = Vm::new()
        .object(
            vec![ProgramDef::new("p", "test", code(&ok))],
            vec![
                MapSpec {
                    timer_off: Some(8),
                    ..MapSpec::new("ct", MapKind::PerCpuHash, 4, 24, 4)
                },
                MapSpec::new("other", MapKind::Hash, 4, 24, 4),
            ],
        )
        .unwrap();
    let e = obj.program("p").unwrap().verify(Mode::Strict).unwrap_err();
    assert!(e.to_string().contains("has no bpf_timer field"), "{e}");
    // Init's map must be the timer's (Strict mode; Checked mode leaves it).
    let other = with_value(
        "mov r1, r6\nadd r1, 8\nlddw r2, map_idx(1)\nmov r3, 1\ncall 169",
        "mov r0, 0",
    );
    verify(&other, Mode::Checked, Some(8)).unwrap();
    let e = verify(&other, Mode::Strict, Some(8)).unwrap_err();
    assert!(e.contains("the map whose value holds the timer"), "{e}");
    // The callback's arguments: the map (a handle delete_elem takes), the key, the value.
    let uses_args = with_value(
        SET_CB,
        "ldxdw r0, [r3+16]\nldxw r0, [r2+0]\ncall 3\nmov r0, 0",
    );
    for mode in [Mode::Checked, Mode::Strict] {
        verify(&uses_args, mode, Some(8)).unwrap();
    }
}

/// Runs `text` (timer at 8) once on every engine in both modes: r0, or the trap's reason.
fn run_everywhere(text: &str, modes: &[Mode]) -> Result<u64, String> {
    let mut seen = None;
    for &mode in modes {
        for (name, opts) in engines() {
            let obj = object(text, Some(8));
            let v = obj.program("p").unwrap().verify(mode).unwrap();
            let mut p = prepare(v, opts);
            let got = match p.run(&mut []) {
                Ok(r0) => Ok(r0),
                Err(RunError::Trap { reason, .. }) => Err(reason.unwrap_or_default()),
                Err(e) => panic!("{mode:?} {name}: {e}"),
            };
            match &seen {
                None => seen = Some(got),
                Some(s) => assert_eq!(s, &got, "{mode:?} {name}"),
            }
        }
    }
    seen.unwrap()
}

#[test]
fn timers_of_assembler_programs_run_as_the_kernels() {
    let both = [Mode::Checked, Mode::Strict];
    // Clock ids: MONOTONIC, REALTIME and BOOTTIME only; a second init is busy.
    for (clock, want) in [(1, 0), (0, 0), (7, 0), (2, EINVAL), (16 + 1, EINVAL)] {
        let text = with_value(
            &format!("mov r1, r6\nadd r1, 8\nlddw r2, map_idx(0)\nmov r3, {clock}\ncall 169"),
            "mov r0, 0",
        );
        assert_eq!(
            run_everywhere(&text, &both),
            Ok(want as i64 as u64),
            "clock {clock}"
        );
    }
    let twice = with_value(&format!("{INIT}{INIT}"), "mov r0, 0");
    assert_eq!(run_everywhere(&twice, &both), Ok(EBUSY as i64 as u64));
    // Start: BPF_F_TIMER_ABS and BPF_F_TIMER_CPU_PIN are the only flags; cancel then says 1.
    for (flags, want, cancel) in [(0, 0, 1), (1, 0, 1), (2, 0, 1), (3, 0, 1), (4, EINVAL, 0)] {
        let text = with_value(
            &format!(
                "{INIT}{SET_CB}mov r1, r6\nadd r1, 8\nmov r2, 1000\nmov r3, {flags}\ncall 171\n\
                 mov r7, r0\nlsh r7, 32\nrsh r7, 32\nmov r1, r6\nadd r1, 8\ncall 172\nlsh r0, 32\n\
                 or r0, r7"
            ),
            "mov r0, 0",
        );
        let want = (u64::from(cancel as u32) << 32) | u64::from(want as u32);
        assert_eq!(run_everywhere(&text, &both), Ok(want), "flags {flags}");
    }
    // Checked mode: a pointer the verifier cannot place is checked by the helper.
    let forged = with_value("lddw r1, 0x1000\ncall 172", "mov r0, 0");
    let e = run_everywhere(&forged, &[Mode::Checked]).unwrap_err();
    assert!(e.contains("is not a timer"), "{e}");
}
