//! `bpf_spin_lock` / `bpf_spin_unlock`: `objects/xdp_spin.c` keeps per-protocol packet and byte
//! counters consistent under the lock while four threads run it at once (each with its own
//! `Program` clone, the map shared), on the interpreter and the JIT under every option set in
//! both modes, and the counts come out exact; the kernel loads the object and passes the same
//! frames. Assembler programs check the run-time rules (one lock per run, the lock a run ends
//! holding released, an unlock of a lock not held refused) and the verifier's (a lock is 4
//! aligned bytes at a known offset of a non-null map value in Strict mode; in Checked mode the
//! helper wants them in a map's memory). Strict mode refuses what the kernel refuses while a
//! lock is held (a call, a second lock, an exit, an unlock of a lock not held): assembler
//! programs, and the C twins `objects/xdp_spin_bad_N.c`, which the kernel refuses too.

#[allow(dead_code)]
mod common;

#[path = "common/oracle.rs"]
mod oracle;

use bpfx::{Error, MapKind, MapSpec, Mode, Object, ProgramDef, RunError, Vm};
use common::{code, engines, prepare, run_xdp_everywhere};
use oracle::{compare_xdp, objects};

const XDP_PASS: u32 = 2;

/// An Ethernet + IPv4 frame of `len` bytes.
fn ipv4(len: usize) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00, 0x45];
    f.resize(len, 0);
    f
}

/// The (packets, bytes) of `key` in `proto_stats` (value: lock, last_len, packets, bytes).
fn counts(obj: &Object, key: u32) -> (u64, u64) {
    let v = obj
        .map("proto_stats")
        .unwrap()
        .lookup(&key.to_le_bytes())
        .unwrap()
        .unwrap();
    let word = |i: usize| u64::from_le_bytes(v[i..i + 8].try_into().unwrap());
    (word(8), word(16))
}

#[test]
fn counters_under_the_lock_stay_exact_on_four_threads() {
    const THREADS: usize = 4;
    const RUNS: usize = 1500;
    for mode in [Mode::Checked, Mode::Strict] {
        for (name, opts) in engines() {
            let obj = Object::open(objects().join("xdp_spin.o")).unwrap();
            let v = obj.program("xdp_spin").unwrap().verify(mode).unwrap();
            let prog = prepare(v, opts);
            std::thread::scope(|s| {
                for t in 0..THREADS {
                    let mut p = prog.clone();
                    s.spawn(move || {
                        for i in 0..RUNS {
                            let mut frame = ipv4(60 + (t + i) % 4);
                            assert_eq!(p.run_xdp(&mut frame).unwrap().code(), u64::from(XDP_PASS));
                        }
                    });
                }
            });
            let runs = (THREADS * RUNS) as u64;
            // Each thread's lengths cycle through 60..=63 from a different start; RUNS is a
            // multiple of 4, so each thread sends each length RUNS / 4 times.
            let bytes = THREADS as u64 * (RUNS as u64 / 4) * (60 + 61 + 62 + 63);
            assert_eq!(counts(&obj, 0), (runs, bytes), "{mode:?} {name}");
        }
    }
}

#[test]
fn the_kernel_passes_the_same_frames() {
    let file = "xdp_spin.o";
    let obj = Object::open(objects().join(file)).unwrap();
    let mut arp = vec![0xff; 6];
    arp.extend_from_slice(&[0x02, 0, 0, 0, 0, 2, 0x08, 0x06]);
    arp.resize(42, 0);
    let frames = vec![ipv4(64), arp, ipv4(10)];
    let ours: Vec<(u32, Vec<u8>)> = frames
        .iter()
        .map(|f| run_xdp_everywhere(&obj, "xdp_spin", f))
        .collect();
    for (f, o) in frames.iter().zip(&ours) {
        assert_eq!(o, &(XDP_PASS, f.clone()));
    }
    compare_xdp("the_kernel_passes_the_same_frames", file, &frames, &ours);
}

/// Looks up key 0 of map 0 (an array of 16-byte values) into r6, then runs `body`.
fn with_value(body: &str) -> String {
    format!(
        "stw [r10-4], 0\nlddw r1, map_idx(0)\nmov r2, r10\nadd r2, -4\ncall 1\n\
         jne r0, 0, +2\nmov r0, 0\nexit\nmov r6, r0\n{body}"
    )
}

fn object(text: &str) -> (Vm, Object) {
    let vm = Vm::new();
    let obj = vm
        .object(
            vec![ProgramDef::new("p", "test", code(text))],
            vec![MapSpec::new("v", MapKind::Array, 4, 16, 1)],
        )
        .unwrap();
    (vm, obj)
}

/// `msg` with each `0x…` number (a host address, different in each object) as `0x_`.
fn without_addresses(msg: &str) -> String {
    let mut out = String::new();
    let mut rest = msg;
    while let Some(i) = rest.find("0x") {
        out.push_str(&rest[..i + 2]);
        out.push('_');
        rest = rest[i + 2..].trim_start_matches(|c: char| c.is_ascii_hexdigit());
    }
    out + rest
}

/// Runs `text` once on every engine in both modes: r0, or the trap's reason (addresses
/// left out).
fn run_everywhere(text: &str) -> Result<u64, String> {
    run_in(&[Mode::Checked, Mode::Strict], text)
}

/// [`run_everywhere`] in Checked mode only.
fn run_checked(text: &str) -> Result<u64, String> {
    run_in(&[Mode::Checked], text)
}

fn run_in(modes: &[Mode], text: &str) -> Result<u64, String> {
    let mut seen = None;
    for &mode in modes {
        for (name, opts) in engines() {
            let (_vm, obj) = object(text);
            let v = obj.program("p").unwrap().verify(mode).unwrap();
            let mut p = prepare(v, opts);
            let got = match p.run(&mut []) {
                Ok(r0) => Ok(r0),
                Err(RunError::Trap { reason, .. }) => {
                    Err(without_addresses(&reason.unwrap_or_default()))
                }
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
fn one_lock_per_run_and_only_the_lock_held_is_released() {
    let lock = "mov r1, r6\ncall 93\n";
    let unlock = "mov r1, r6\ncall 94\n";
    assert_eq!(
        run_everywhere(&with_value(&format!("{lock}{unlock}mov r0, 7\nexit"))),
        Ok(7)
    );
    // Strict mode refuses each of these before it runs (see
    // `strict_mode_refuses_what_the_kernel_refuses_while_a_lock_is_held`).
    let twice = run_checked(&with_value(&format!("{lock}{lock}mov r0, 7\nexit")));
    assert!(
        twice
            .as_ref()
            .is_err_and(|e| e.contains("already holds the lock")),
        "{twice:?}"
    );
    let unheld = run_checked(&with_value(&format!("{unlock}mov r0, 7\nexit")));
    assert!(
        unheld.as_ref().is_err_and(|e| e.contains("holds no lock")),
        "{unheld:?}"
    );
    // The lock at offset 8 is not the one held at offset 0.
    let other = run_checked(&with_value(&format!(
        "{lock}mov r1, r6\nadd r1, 8\ncall 94\nmov r0, 7\nexit"
    )));
    assert!(
        other
            .as_ref()
            .is_err_and(|e| e.contains("holds the lock at 0x_, not 0x_")),
        "{other:?}"
    );
}

#[test]
fn a_lock_left_held_at_exit_or_trap_is_released_with_the_run() {
    // Locks, then exits or traps (an unlock of a lock not held) without unlocking; the next
    // runs, on this thread and on another, lock again.
    for (exit, traps) in [
        ("mov r0, 1\nexit", false),
        ("mov r1, r6\nadd r1, 8\ncall 94\nexit", true),
    ] {
        let text = with_value(&format!("mov r1, r6\ncall 93\n{exit}"));
        for (name, opts) in engines() {
            let (_vm, obj) = object(&text);
            let v = obj.program("p").unwrap().verify(Mode::Checked).unwrap();
            let mut p = prepare(v, opts);
            for _ in 0..3 {
                assert_eq!(p.run(&mut []).is_err(), traps, "{name}");
            }
            let mut q = p.clone();
            std::thread::spawn(move || {
                for _ in 0..3 {
                    assert_eq!(q.run(&mut []).is_err(), traps);
                }
            })
            .join()
            .unwrap();
        }
    }
}

#[test]
fn strict_mode_wants_an_aligned_lock_in_a_non_null_map_value_and_checked_mode_a_map() {
    for (body, mode) in [
        // Unaligned.
        (
            "mov r1, r6\nadd r1, 2\ncall 93\nmov r0, 0\nexit",
            Mode::Strict,
        ),
        // Past the value's end (16 bytes).
        (
            "mov r1, r6\nadd r1, 16\ncall 93\nmov r0, 0\nexit",
            Mode::Strict,
        ),
        // On the stack.
        (
            "mov r1, r10\nadd r1, -8\nstdw [r10-8], 0\ncall 93\nmov r0, 0\nexit",
            Mode::Strict,
        ),
        // A variable offset.
        (
            "ldxw r2, [r6+4]\nand r2, 4\nmov r1, r6\nadd r1, r2\ncall 93\nmov r0, 0\nexit",
            Mode::Strict,
        ),
    ] {
        let (_vm, obj) = object(&with_value(body));
        let e = match obj.program("p").unwrap().verify(mode) {
            Err(e) => e,
            Ok(_) => panic!("{mode:?} accepted {body}"),
        };
        assert!(
            matches!(&e, Error::Verify { .. }) && e.to_string().contains("call 93"),
            "{body}: {e}"
        );
    }
    // Before the null check.
    let text = "stw [r10-4], 0\nlddw r1, map_idx(0)\nmov r2, r10\nadd r2, -4\ncall 1\n\
                mov r1, r0\ncall 93\nmov r0, 0\nexit";
    let (_vm, obj) = object(text);
    assert!(obj.program("p").unwrap().verify(Mode::Strict).is_err());
    // Checked mode leaves the lock's place to the helper: anywhere but in a map's memory,
    // the run fails, on every engine.
    for body in [
        "mov r1, r6\nadd r1, 4096\ncall 93\nmov r0, 0\nexit",
        "mov r1, r10\nadd r1, -8\nstdw [r10-8], 0\ncall 93\nmov r0, 0\nexit",
        "mov r1, 64\ncall 93\nmov r0, 0\nexit",
    ] {
        let e = run_checked(&with_value(body));
        assert!(
            e.as_ref()
                .is_err_and(|e| e.contains("not 4 readable bytes of a map value")),
            "{body}: {e:?}"
        );
    }
}

/// The Strict-mode refusal of `text` (a `with_value` body), as text; Checked mode accepts it.
fn strict_refusal(body: &str) -> String {
    let text = with_value(body);
    let (_vm, obj) = object(&text);
    obj.program("p").unwrap().verify(Mode::Checked).unwrap();
    match obj.program("p").unwrap().verify(Mode::Strict) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("Strict mode accepted {body}"),
    }
}

#[test]
fn strict_mode_refuses_what_the_kernel_refuses_while_a_lock_is_held() {
    let lock = "mov r1, r6\ncall 93\n";
    let unlock = "mov r1, r6\ncall 94\n";
    // The with_value prologue takes 10 slots (pc 0..=9, lddw two); the body starts at pc 10,
    // its lock's call at pc 11.
    for (body, want) in [
        (
            format!("{lock}call 5\n{unlock}mov r0, 0\nexit"),
            "insn #12: call 5: a call of helper ktime_get_ns while the bpf_spin_lock taken at insn #11 is held",
        ),
        (
            format!("{lock}{lock}{unlock}mov r0, 0\nexit"),
            "insn #13: call 93: a second bpf_spin_lock while the bpf_spin_lock taken at insn #11 is held",
        ),
        (
            format!("{lock}mov r0, 0\nexit"),
            "insn #13: exit: exit while the bpf_spin_lock taken at insn #11 is held",
        ),
        (
            format!("{lock}call local f\n{unlock}exit\nf:\nmov r0, 0\nexit"),
            "insn #12: call local +3: a call of the function at insn #16 while the bpf_spin_lock taken at insn #11 is held",
        ),
        // Held on one path only when the paths join.
        (
            format!("ldxw r7, [r6+4]\njeq r7, 0, +2\n{lock}mov r0, 0\n{unlock}exit"),
            "bpf_spin_unlock of the lock taken at insn #13 on some paths to here only",
        ),
        (
            format!("ldxw r7, [r6+4]\njeq r7, 0, +2\n{lock}mov r0, 0\nexit"),
            "exit while the bpf_spin_lock taken at insn #13 is held on some paths to here",
        ),
        (
            format!("{unlock}mov r0, 0\nexit"),
            "insn #11: call 94: bpf_spin_unlock of a lock not held",
        ),
        (
            format!("{lock}mov r1, r6\nadd r1, 8\ncall 94\nmov r0, 0\nexit"),
            "insn #14: call 94: bpf_spin_unlock of another lock than the one taken at insn #11",
        ),
    ] {
        let msg = strict_refusal(&body);
        assert!(msg.contains(want), "{body}:\n{msg}\nwant {want}");
    }
    // Straight code between lock and unlock, and a branch inside the region, are fine.
    let text = with_value(&format!(
        "{lock}ldxw r7, [r6+4]\njeq r7, 0, +1\nstw [r6+4], 1\n{unlock}mov r0, 3\nexit"
    ));
    assert_eq!(run_everywhere(&text), Ok(3));
}

#[test]
fn the_kernel_refuses_the_unsafe_twins_as_strict_mode_does() {
    for (n, want) in [
        (1, "a call of helper ktime_get_ns while the bpf_spin_lock"),
        (2, "exit while the bpf_spin_lock"),
        (3, "a second bpf_spin_lock while the bpf_spin_lock"),
    ] {
        let file = format!("xdp_spin_bad_{n}.o");
        let obj = Object::open(objects().join(&file)).unwrap();
        let e = obj
            .program("xdp_spin_bad")
            .unwrap()
            .verify(Mode::Strict)
            .unwrap_err()
            .to_string();
        assert!(e.contains(want), "{file}: {e}");
        obj.program("xdp_spin_bad")
            .unwrap()
            .verify(Mode::Checked)
            .unwrap();
        match oracle::unavailable() {
            Some(why) => eprintln!("SKIPPED the kernel's verdict on {file}: {why}"),
            None => assert!(
                oracle::load(&objects().join(&file), "xdp").is_err(),
                "the kernel accepted {file}"
            ),
        }
    }
}
