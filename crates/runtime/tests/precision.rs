//! Verifier precision the kernel has and Strict mode must match (issue 18): each rule with a
//! program the kernel accepts, run in Strict and Checked mode on every engine (the interpreter
//! and the JIT under every option set) with the result computed here, and an unsafe twin that
//! differs in the one point the rule rests on and is rejected.

mod common;

use bpfx::{Error, MapKind, MapSpec, Mode, Object, ProgramDef, UpdateFlag, Vm};
use common::{code, engines, prepare};
use std::sync::{Arc, Mutex};

/// An object with the one program `text` and `maps`.
fn object(vm: &Vm, text: &str, maps: Vec<MapSpec>) -> Object {
    vm.object(vec![ProgramDef::new("p", "test", code(text))], maps)
        .unwrap()
}

/// An array map of `n` values of `size` bytes.
fn array(name: &str, size: u32, n: u32) -> MapSpec {
    MapSpec::new(name, MapKind::Array, 4, size, n)
}

/// Runs `text` in both modes on every engine, each run on a fresh object whose maps `fill`
/// writes first; returns r0, asserting every run agrees.
fn run_everywhere(text: &str, maps: &[MapSpec], fill: &dyn Fn(&Object)) -> u64 {
    let mut seen = None;
    for mode in [Mode::Strict, Mode::Checked] {
        for (name, opts) in engines() {
            let obj = object(&Vm::new(), text, maps.to_vec());
            fill(&obj);
            let v = obj
                .program("p")
                .unwrap()
                .verify(mode)
                .unwrap_or_else(|e| panic!("{mode:?}: {e}\n{text}"));
            let r0 = prepare(v, opts).run(&mut []).unwrap();
            match seen {
                None => seen = Some(r0),
                Some(s) => assert_eq!(s, r0, "{mode:?} {name}"),
            }
        }
    }
    seen.unwrap()
}

/// The error verifying `text` in `mode`.
fn rejected(text: &str, maps: &[MapSpec], mode: Mode) -> String {
    let obj = object(&Vm::new(), text, maps.to_vec());
    match obj.program("p").unwrap().verify(mode) {
        Ok(_) => panic!("{mode:?} accepts\n{text}"),
        Err(e @ Error::Verify { .. }) => e.to_string(),
        Err(e) => panic!("{mode:?}: not a verifier error: {e}"),
    }
}

/// Writes `value` at key `k` of map `name`.
fn put(obj: &Object, name: &str, k: u32, value: &[u8]) {
    obj.map(name)
        .unwrap()
        .update(&k.to_le_bytes(), value, UpdateFlag::Any)
        .unwrap();
}

/// Looks up key 0 of map 0 (an array of 16-byte values): r0 is its value, non-null past the
/// jump (a null result returns 0).
const LOOKUP: &str = "stw [r10-4], 0\nlddw r1, map_idx(0)\nmov r2, r10\nadd r2, -4\ncall 1\n\
                      jeq r0, 0, out\n";

/// A 16-byte value: `head` in its first eight bytes, then `i * 3 + 1` at byte `8 + i`.
fn value16(head: u64) -> Vec<u8> {
    let mut v = head.to_le_bytes().to_vec();
    v.extend((0..8u8).map(|i| i * 3 + 1));
    v
}

/// What the index programs return for a head of `head`: the byte at `8 + head`, or 0 when
/// the bound check sends them out.
fn indexed(head: u64) -> u64 {
    if head <= 7 { head * 3 + 1 } else { 0 }
}

fn index_program(setup: &str) -> String {
    format!(
        "{LOOKUP}{setup}jgt r7, 7, out\nadd r0, 8\nadd r0, r6\nldxb r0, [r0+0]\nexit\n\
         out:\nmov r0, 0\nexit"
    )
}

#[test]
fn a_bound_on_a_fill_bounds_the_spilled_register() {
    let maps = [array("m", 16, 1)];
    // r6 is spilled and filled back into r7: one value, one id, so `r7 <= 7` bounds r6.
    let text = index_program("ldxdw r6, [r0+0]\nstxdw [r10-16], r6\nldxdw r7, [r10-16]\n");
    for head in [0, 5, 7, 8, u64::MAX] {
        let got = run_everywhere(&text, &maps, &|o| put(o, "m", 0, &value16(head)));
        assert_eq!(got, indexed(head), "head {head}");
    }
    // The twin loads the word again instead of filling the spill: two loads of one address
    // are not one value to the verifier, so r6 stays unbounded.
    let twin = index_program("ldxdw r6, [r0+0]\nstxdw [r10-16], r6\nldxdw r7, [r0+0]\n");
    let e = rejected(&twin, &maps, Mode::Strict);
    assert!(e.contains("add r0, r6") || e.contains("ldxb"), "{e}");
}

#[test]
fn a_bound_on_a_32_bit_copy_bounds_its_source_when_it_fits_in_32_bits() {
    let maps = [array("m", 16, 1)];
    // `ldxw` zero-extends: r6 fits in 32 bits, so `w7 = w6` copies it whole.
    let text = index_program("ldxw r6, [r0+0]\nmov32 r7, r6\n");
    for head in [0, 3, 7, 8, 0xffff_ffff, 0x1_0000_0003] {
        let got = run_everywhere(&text, &maps, &|o| put(o, "m", 0, &value16(head)));
        assert_eq!(got, indexed(head & 0xffff_ffff), "head {head:#x}");
    }
    // The twin's r6 has 64 bits: `w7 = w6` keeps only the low half (0x1_0000_0003 passes the
    // check with 3), so the bound says nothing about r6.
    let twin = index_program("ldxdw r6, [r0+0]\nmov32 r7, r6\n");
    rejected(&twin, &maps, Mode::Strict);
}

#[test]
fn a_subprogram_may_leave_r0_unset_when_its_caller_never_reads_it() {
    let maps = [array("m", 16, 1)];
    // The callee stores 3 * r1 through r2 and returns with r0 unset; the caller reads the
    // stack slot, not r0.
    let tail = "ldxdw r1, [r0+0]\nmov r2, r10\nadd r2, -16\nstdw [r10-16], 0\ncall local triple\n";
    let callee = "triple:\nmul r1, 3\nstxdw [r2+0], r1\nexit\n";
    let text = format!("{LOOKUP}{tail}ldxdw r0, [r10-16]\nexit\nout:\nmov r0, 0\nexit\n{callee}");
    for head in [0u64, 14, 1 << 40] {
        let got = run_everywhere(&text, &maps, &|o| put(o, "m", 0, &value16(head)));
        assert_eq!(got, head.wrapping_mul(3), "head {head}");
    }
    // The twin's caller reads r0 after the call: the callee left it unset.
    let twin = format!("{LOOKUP}{tail}add r0, 1\nexit\nout:\nmov r0, 0\nexit\n{callee}");
    let e = rejected(&twin, &maps, Mode::Strict);
    assert!(e.contains("add r0, 1") && e.contains("r0"), "{e}");
}

#[test]
fn trace_printk_needs_only_its_format_and_size() {
    let mut rodata = MapSpec::new(".rodata", MapKind::Array, 4, 16, 1);
    rodata.initial_data = Some(b"n=%d\n\0\0\0\0\0\0\0\0\0\0\0".to_vec());
    rodata.read_only = true;
    let maps = [rodata];
    // r3 is the one argument the format asks for; r4 and r5 are never set.
    let text = "mov r3, 41\nadd r3, 1\nlddw r1, map_idx_value(0, 0)\nmov r2, 16\ncall 6\nexit";
    for mode in [Mode::Strict, Mode::Checked] {
        for (name, opts) in engines() {
            let lines = Arc::new(Mutex::new(Vec::new()));
            let sink = lines.clone();
            let vm = Vm::new().trace_sink(move |s| sink.lock().unwrap().push(s.to_string()));
            let obj = object(&vm, text, maps.to_vec());
            let v = obj.program("p").unwrap().verify(mode).unwrap();
            let r0 = prepare(v, opts).run(&mut []).unwrap();
            let want = format!("n={}\n", 41 + 1);
            assert_eq!(r0, want.len() as u64, "{mode:?} {name}");
            assert_eq!(*lines.lock().unwrap(), [want], "{mode:?} {name}");
        }
    }
    // The twin's format size runs past the 16-byte value: the first two arguments are still
    // checked as memory and its size.
    let twin = text.replace("mov r2, 16", "mov r2, 17");
    let e = rejected(&twin, &maps, Mode::Strict);
    assert!(e.contains("call 6"), "{e}");
}

/// Looks up key 0 of the hash map 0 (16-byte values) and leaves the result, maybe null, in r0
/// and its copies: r6 and the spill at fp-16.
const LOOKUP_COPIES: &str = "stw [r10-4], 0\nlddw r1, map_idx(0)\nmov r2, r10\nadd r2, -4\n\
                             call 1\nmov r6, r0\nstxdw [r10-16], r0\n";

/// What the null-check programs return: the value's two words added, or 7 without the key.
fn two_words(value: Option<(u64, u64)>) -> u64 {
    value.map_or(7, |(a, b)| a.wrapping_add(b))
}

#[test]
fn a_null_check_decides_every_copy_of_the_pointer() {
    let maps = [MapSpec::new("h", MapKind::Hash, 4, 16, 4)];
    // The check is on r0; the accesses go through the copy in r6 and the filled spill.
    let on_r0 = format!(
        "{LOOKUP_COPIES}jeq r0, 0, none\nldxdw r1, [r6+0]\nldxdw r7, [r10-16]\nldxdw r2, [r7+8]\n\
         add r1, r2\nmov r0, r1\nexit\nnone:\nmov r0, 7\nexit"
    );
    // And the other way round: the check on the copy, the access through r0.
    let on_r6 = format!(
        "{LOOKUP_COPIES}jne r6, 0, some\nmov r0, 7\nexit\nsome:\nldxdw r1, [r0+0]\n\
         ldxdw r2, [r0+8]\nadd r1, r2\nmov r0, r1\nexit"
    );
    for text in [&on_r0, &on_r6] {
        for value in [None, Some((5u64, 9u64)), Some((u64::MAX, 2))] {
            let fill = |o: &Object| {
                if let Some((a, b)) = value {
                    let mut v = a.to_le_bytes().to_vec();
                    v.extend(b.to_le_bytes());
                    put(o, "h", 0, &v);
                }
            };
            assert_eq!(run_everywhere(text, &maps, &fill), two_words(value));
        }
    }
    // The twin checks the result of a second lookup (of another key): r6 may still be null.
    let twin = format!(
        "{LOOKUP_COPIES}stw [r10-4], 1\nlddw r1, map_idx(0)\nmov r2, r10\nadd r2, -4\ncall 1\n\
         jeq r0, 0, none\nldxdw r0, [r6+0]\nexit\nnone:\nmov r0, 7\nexit"
    );
    let e = rejected(&twin, &maps, Mode::Strict);
    assert!(e.contains("ldxdw r0, [r6+0]") && e.contains("null"), "{e}");
}

#[test]
fn an_atomic_on_a_spilled_scalar_reads_the_spill_and_leaves_an_unknown_scalar() {
    let maps = [array("m", 16, 1)];
    // r6 = head & 7 is spilled; the fetch-add returns it (bounded) in r1 and leaves the slot
    // holding r6 + 1, an unknown scalar to the verifier.
    let setup = "ldxdw r6, [r0+0]\nand r6, 7\nstxdw [r10-16], r6\nmov r1, 1\n\
                 lock fetch add [r10-16], r1\n";
    let text = format!(
        "{LOOKUP}{setup}ldxdw r2, [r10-16]\nadd r0, 8\nadd r0, r1\nldxb r0, [r0+0]\nlsh r2, 8\n\
         add r0, r2\nexit\nout:\nmov r0, 0\nexit"
    );
    for head in [0u64, 6, 7, 0xfff9] {
        let got = run_everywhere(&text, &maps, &|o| put(o, "m", 0, &value16(head)));
        let i = head & 7;
        assert_eq!(got, i * 3 + 1 + ((i + 1) << 8), "head {head:#x}");
    }
    // The twin indexes with the slot's new value (r6 + 1, up to 8 and one past the bytes):
    // after the atomic the verifier knows nothing of it.
    let twin = format!(
        "{LOOKUP}{setup}ldxdw r2, [r10-16]\nadd r0, 8\nadd r0, r2\nldxb r0, [r0+0]\nexit\n\
         out:\nmov r0, 0\nexit"
    );
    rejected(&twin, &maps, Mode::Strict);
}

/// Reads the selector (the first word of map 0's value), looks key 0 up in map 1 when it is
/// 0 and in map 2 otherwise (one call site, the handle chosen by the branch), and returns the
/// second word of the value found.
const PICK_MAP: &str = "stw [r10-4], 0\nlddw r1, map_idx(0)\nmov r2, r10\nadd r2, -4\ncall 1\n\
                        jeq r0, 0, out\nldxdw r6, [r0+0]\nlddw r1, map_idx(1)\njeq r6, 0, pick\n\
                        lddw r1, map_idx(2)\npick:\nmov r2, r10\nadd r2, -4\ncall 1\n\
                        jeq r0, 0, out\nldxdw r0, [r0+8]\nexit\nout:\nmov r0, 0\nexit";

#[test]
fn a_map_handle_chosen_by_a_branch_verifies_per_map() {
    let maps = [array("sel", 16, 1), array("a", 16, 1), array("b", 16, 1)];
    for sel in [0u64, 1, 9] {
        let fill = |o: &Object| {
            put(o, "sel", 0, &value16(sel));
            put(o, "a", 0, &[[0; 8], 1111u64.to_le_bytes()].concat());
            put(o, "b", 0, &[[0; 8], 2222u64.to_le_bytes()].concat());
        };
        let want = if sel == 0 { 1111 } else { 2222 };
        assert_eq!(run_everywhere(PICK_MAP, &maps, &fill), want, "sel {sel}");
    }
    // The twin's second map has 8-byte values: the read at offset 8 would leave them. The
    // handles of maps of two shapes are kept on their own paths, each call checked with its
    // own map, as the kernel does: Strict mode refuses the read on the path through `c`
    // ("invalid access to map value"); Checked mode keeps its guard, which traps on that path
    // on every engine and lets the other run.
    let twin = [array("sel", 16, 1), array("a", 16, 1), array("c", 8, 1)];
    let e = rejected(PICK_MAP, &twin, Mode::Strict);
    assert!(
        e.contains("ldxdw r0, [r0+8]") && e.contains("outside the map value of 8 bytes"),
        "{e}"
    );
    for (name, opts) in engines() {
        for sel in [0u64, 1] {
            let obj = object(&Vm::new(), PICK_MAP, twin.to_vec());
            put(&obj, "sel", 0, &value16(sel));
            put(&obj, "a", 0, &[[0; 8], 1111u64.to_le_bytes()].concat());
            let v = obj.program("p").unwrap().verify(Mode::Checked).unwrap();
            let got = prepare(v, opts.clone()).run(&mut []);
            match sel {
                0 => assert_eq!(got.unwrap(), 1111, "{name}"),
                _ => assert!(got.is_err(), "{name}: {got:?}"),
            }
        }
    }
}

#[test]
fn globals_example_verifies_in_strict_mode_with_its_two_argument_printk() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples");
    // `bpf_printk` with two values sets r3 and r4 and leaves r5 unset. Strict mode proves the
    // buffer reads against a declared input size.
    for mode in [Mode::Strict, Mode::Checked] {
        for (name, opts) in engines() {
            let lines = Arc::new(Mutex::new(Vec::new()));
            let sink = lines.clone();
            let vm = Vm::new().trace_sink(move |s| sink.lock().unwrap().push(s.to_string()));
            let obj = vm.open(format!("{dir}/globals.o")).unwrap();
            let v = obj
                .program("sum_bytes")
                .unwrap()
                .input_size(40)
                .verify(mode)
                .unwrap_or_else(|e| panic!("{mode:?}: {e}"));
            let mut buf: Vec<u8> = (0..40u32).map(|i| (i * 7 % 256) as u8).collect();
            let sum: u64 = buf.iter().map(|&b| u64::from(b)).sum();
            let r0 = prepare(v, opts).run(&mut buf).unwrap();
            // scale(sum) = sum * multiplier (3) + base (1000), plus runs so far (0).
            assert_eq!(r0, sum * 3 + 1000, "{mode:?} {name}");
            let want = format!("sum={sum} len={}\n", buf.len());
            assert_eq!(*lines.lock().unwrap(), [want], "{mode:?} {name}");
        }
    }
}

#[test]
fn a_write_to_r10_in_dead_code_verifies_and_never_runs() {
    let maps = [array("m", 16, 1)];
    // r6 = head & 3 is at most 3, so the jump over the r10 writes is always taken: the
    // kernel explores only the taken edge, and so does the verifier.
    let text = format!(
        "{LOOKUP}ldxdw r6, [r0+0]\nand r6, 3\njle r6, 3, live\nmov r10, 0\nlddw r10, 0x1000\n\
         live:\nstxdw [r10-8], r6\nldxdw r0, [r10-8]\nadd r0, 100\nexit\nout:\nmov r0, 0\nexit"
    );
    for head in [0u64, 2, 7, 0xfffe] {
        let got = run_everywhere(&text, &maps, &|o| put(o, "m", 0, &value16(head)));
        assert_eq!(got, (head & 3) + 100, "head {head:#x}");
    }
    // The twin's bound is one short: `r6 == 4` is possible, so the write may run. Structural
    // in both modes.
    let twin = text.replace("and r6, 3", "and r6, 7");
    for mode in [Mode::Strict, Mode::Checked] {
        let e = rejected(&twin, &maps, mode);
        assert!(
            e.contains("mov r10, 0") && e.contains("r10 is read-only"),
            "{e}"
        );
    }
}
