//! Helper memory arguments at a variable offset, per argument kind, as the kernel checks them:
//! a plain memory argument (`trace_printk`'s format, `ARG_PTR_TO_MEM | MEM_RDONLY`) into a map
//! value may have a bounded variable offset, checked at both ends (a format chosen by a branch
//! between two `.rodata` strings, or an offset masked into range); a constant string
//! (`strncmp`'s `s2`, `ARG_PTR_TO_CONST_STR`) must lie inside the read-only value on every
//! path. Each runs in Strict and Checked mode on every engine with the result computed here;
//! each unsafe twin reaches past the value and is refused by Strict mode. The clang-built
//! `objects/xdp_fmt.c` joins two `.rodata` formats before one `trace_printk`; with root and
//! `bpftool` the kernel loads it and runs it to the same verdicts.

mod common;

#[path = "common/oracle.rs"]
mod oracle;

use bpfx::{Error, MapKind, MapSpec, Mode, Object, ProgramDef, UpdateFlag, Vm};
use common::{code, engines, prepare};
use oracle::{compare_xdp, objects};
use std::sync::{Arc, Mutex};

/// `.rodata`: two 16-byte strings, map 0.
fn rodata() -> MapSpec {
    let mut m = MapSpec::new(".rodata", MapKind::Array, 4, 32, 1);
    let mut v = b"a=%d\n".to_vec();
    v.resize(16, 0);
    v.extend(b"b=%d\n");
    v.resize(32, 0);
    m.initial_data = Some(v);
    m.read_only = true;
    m
}

/// The selector, map 1: one 4-byte value the test writes before the run.
fn selector() -> MapSpec {
    MapSpec::new("sel", MapKind::Array, 4, 4, 1)
}

/// Reads the selector into r6 (0 when the lookup fails), then `body` with r1 at `.rodata`.
fn program(body: &str) -> String {
    format!(
        "stw [r10-4], 0
         lddw r1, map_idx(1)
         mov r2, r10
         add r2, -4
         call 1
         mov r6, 0
         jeq r0, 0, +1
         ldxw r6, [r0+0]
         lddw r1, map_idx_value(0, 0)
         {body}
         exit"
    )
}

/// The format at 0 or 16 by a branch on the selector, printed with the argument 42.
fn printk_branch(size: u32) -> String {
    program(&format!(
        "jeq r6, 0, +1\nadd r1, 16\nmov r3, 42\nmov r2, {size}\ncall 6"
    ))
}

/// The format at the selector masked by `mask` (0 or 16 for 16), printed with 42.
fn printk_masked(mask: u32, size: u32) -> String {
    program(&format!(
        "and r6, {mask}\nadd r1, r6\nmov r3, 42\nmov r2, {size}\ncall 6"
    ))
}

/// `strncmp("b=%d", 4, s2)` with `s2` at 0 or 16 by a branch (or masked by `mask`).
fn strncmp(mask: Option<u32>) -> String {
    let pick = match mask {
        None => "jeq r6, 0, +1\nadd r3, 16".to_string(),
        Some(m) => format!("and r6, {m}\nadd r3, r6"),
    };
    // "b=%d" as a little-endian word.
    program(&format!(
        "mov r3, r1\n{pick}\nstw [r10-8], 0x64253d62\nmov r1, r10\nadd r1, -8\nmov r2, 4\ncall 182"
    ))
}

fn object(vm: &Vm, text: &str) -> Object {
    vm.object(
        vec![ProgramDef::new("p", "test", code(text))],
        vec![rodata(), selector()],
    )
    .unwrap()
}

/// Runs `text` with selector `sel` in both modes on every engine; returns r0 and the lines it
/// printed, asserting every run agrees.
fn run_everywhere(text: &str, sel: u32) -> (u64, Vec<String>) {
    let mut seen = None;
    for mode in [Mode::Strict, Mode::Checked] {
        for (name, opts) in engines() {
            let lines = Arc::new(Mutex::new(Vec::new()));
            let sink = lines.clone();
            let vm = Vm::new().trace_sink(move |s| sink.lock().unwrap().push(s.to_string()));
            let obj = object(&vm, text);
            obj.map("sel")
                .unwrap()
                .update(&0u32.to_le_bytes(), &sel.to_le_bytes(), UpdateFlag::Any)
                .unwrap();
            let v = obj
                .program("p")
                .unwrap()
                .verify(mode)
                .unwrap_or_else(|e| panic!("{mode:?}: {e}\n{text}"));
            let r0 = prepare(v, opts).run(&mut []).unwrap();
            let got = (r0, lines.lock().unwrap().clone());
            match &seen {
                None => seen = Some(got),
                Some(s) => assert_eq!(*s, got, "{mode:?} {name} sel={sel}"),
            }
        }
    }
    seen.unwrap()
}

/// Strict mode's refusal of `text`; Checked mode accepts it (the helper bounds itself).
fn refused(text: &str) -> String {
    let obj = object(&Vm::new(), text);
    obj.program("p")
        .unwrap()
        .verify(Mode::Checked)
        .unwrap_or_else(|e| panic!("Checked: {e}\n{text}"));
    match obj.program("p").unwrap().verify(Mode::Strict) {
        Ok(_) => panic!("Strict accepts\n{text}"),
        Err(e @ Error::Verify { .. }) => e.to_string(),
        Err(e) => panic!("not a verifier error: {e}"),
    }
}

#[test]
fn a_format_at_a_bounded_variable_offset_into_rodata_passes_strict_mode() {
    for text in [printk_branch(16), printk_masked(16, 16)] {
        for (sel, want) in [(0, "a=42\n"), (1, "b=42\n"), (16, "b=42\n"), (17, "b=42\n")] {
            // The branch picks `b` for any nonzero selector, the mask for bit 4.
            let want = match (text == printk_branch(16), sel) {
                (false, 1) => "a=42\n",
                _ => want,
            };
            let (r0, lines) = run_everywhere(&text, sel);
            assert_eq!(lines, [want], "sel={sel}\n{text}");
            assert_eq!(r0, want.len() as u64, "sel={sel}");
        }
    }
}

#[test]
fn a_format_reaching_past_the_value_at_its_highest_offset_is_refused() {
    // At offset 16, 17 bytes run one past the 32-byte value; a mask of 17 reaches offset 17.
    for (text, off) in [
        (printk_branch(17), 16),
        (printk_masked(17, 16), 17),
        (printk_masked(16, 17), 16),
    ] {
        let e = refused(&text);
        assert!(
            e.contains("call 6") && e.contains(&format!("offset {off}")),
            "{e}\n{text}"
        );
    }
}

#[test]
fn a_constant_string_chosen_by_a_branch_passes_strict_mode() {
    let text = strncmp(None);
    let (differs, _) = run_everywhere(&text, 0);
    assert_ne!(differs, 0, "\"b=%d\" against \"a=%d\"");
    let (same, _) = run_everywhere(&text, 1);
    assert_eq!(same, 0, "\"b=%d\" against \"b=%d\"");
    // A masked offset inside the value too: the string starts inside it on every path.
    assert_eq!(run_everywhere(&strncmp(Some(16)), 16).0, 0);
}

#[test]
fn a_constant_string_that_may_start_past_the_value_is_refused() {
    // Masked by 32 the offset may be 32, one past the last byte of the value.
    let e = refused(&strncmp(Some(32)));
    assert!(
        e.contains("call 182") && e.contains("constant string"),
        "{e}"
    );
}

#[test]
fn a_clang_format_joined_from_two_rodata_strings_passes_strict_mode() {
    let frames: Vec<Vec<u8>> = [
        (60usize, [0x08u8, 0x00]),
        (60, [0x86, 0xdd]),
        (14, [0x08, 0x06]),
    ]
    .iter()
    .map(|&(len, ty)| {
        let mut f = vec![0u8; len];
        f[12..14].copy_from_slice(&ty);
        f
    })
    .chain([vec![0u8; 13]])
    .collect();
    let want = |f: &[u8]| -> (u32, Vec<String>) {
        match f {
            f if f.len() < 14 => (1, vec![]),
            f if f[12..14] == [0x08, 0x00] => (2, vec!["ipv4 8\n".to_string()]),
            f => (2, vec![format!("other type {}\n", f[12])]),
        }
    };
    for mode in [Mode::Strict, Mode::Checked] {
        for (name, opts) in engines() {
            let lines = Arc::new(Mutex::new(Vec::new()));
            let sink = lines.clone();
            let vm = Vm::new().trace_sink(move |s| sink.lock().unwrap().push(s.to_string()));
            let obj = vm.open(objects().join("xdp_fmt.o")).unwrap();
            let v = obj
                .program("xdp_fmt")
                .unwrap()
                .verify(mode)
                .unwrap_or_else(|e| panic!("{mode:?}: {e}"));
            let mut p = prepare(v, opts);
            for f in &frames {
                lines.lock().unwrap().clear();
                let mut frame = f.clone();
                let verdict = p.run_xdp(&mut frame).unwrap().code() as u32;
                let got = (verdict, lines.lock().unwrap().clone());
                assert_eq!(got, want(f), "{mode:?} {name} {} bytes", f.len());
            }
        }
    }
    let ours: Vec<(u32, Vec<u8>)> = frames.iter().map(|f| (want(f).0, f.clone())).collect();
    if let Some(n) = compare_xdp(
        "a_clang_format_joined_from_two_rodata_strings_passes_strict_mode",
        "xdp_fmt.o",
        &frames,
        &ours,
    ) {
        assert_eq!(n, 3);
    }
}
