//! `bpf_strncmp` (helper 182) from a TC program (`objects/strncmp.c`): a stack buffer of a
//! given size against constant strings of `.rodata`: 0 when equal up to a NUL or the size,
//! -1 or 1 by the first differing byte as an unsigned char. Every engine in both modes; where
//! the kernel can be asked (root, `bpftool`), its test runs give the same answers.

// Not every helper of `common` is used here.
#[allow(dead_code)]
mod common;

#[path = "common/oracle.rs"]
mod oracle;

use bpfx::{Mode, Object, SkbMeta};
use common::{engines, prepare};
use oracle::objects;

fn frame(n: u8, which: u8, s: &[u8]) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 8, 0, n, which];
    let mut text = s.to_vec();
    text.resize(16, 0);
    f.extend_from_slice(&text);
    f.extend_from_slice(&[0xee; 4]);
    f
}

#[test]
fn strncmp_compares_with_constant_strings() {
    let file = "strncmp.o";
    let obj = Object::open(objects().join(file)).unwrap();
    // (size, constant: 0 "GET ", 1 "POST", 2 "", 3 "example.com", 4 "\xffz"; buffer; answer)
    let cases: &[(u8, u8, &[u8], i32)] = &[
        (4, 0, b"GET /", 0),
        (16, 0, b"GET ", 0),
        (16, 0, b"GET /", 1),
        (3, 0, b"GEX", 1),
        (2, 0, b"GEX", 0),
        (4, 1, b"GET ", -1),
        (4, 0, b"POST", 1),
        (16, 2, b"", 0),
        (16, 2, b"a", 1),
        (1, 2, b"a", 1),
        (16, 3, b"example.com", 0),
        (16, 3, b"example.co", -1),
        (11, 3, b"example.com.x", 0),
        (12, 3, b"example.com.x", 1),
        (16, 4, b"\xffz", 0),
        (16, 4, b"\x80", -1),
        (16, 4, b"\xffzz", 1),
        // Size 0 and sizes past the buffer are clamped by the program to 1 and 16.
        (0, 0, b"GET ", 0),
        (200, 0, b"GET ", 0),
    ];
    let mut ours = Vec::new();
    for &(n, which, s, want) in cases {
        let f = frame(n, which, s);
        let mut seen = None;
        for mode in [Mode::Checked, Mode::Strict] {
            for (engine, opts) in engines() {
                let v = obj.program("strncmp_tc").unwrap().verify(mode).unwrap();
                let mut prog = prepare(v, opts);
                let mut p = f.clone();
                let mut meta = SkbMeta {
                    protocol: 0x0800,
                    ..SkbMeta::default()
                };
                let code = prog.run_tc(&mut p, &mut meta).unwrap().code() as u32;
                match &seen {
                    None => seen = Some((code, p)),
                    Some(s) => assert_eq!(*s, (code, p), "{mode:?} {engine}"),
                }
            }
        }
        let (code, p) = seen.unwrap();
        let ret = i32::from_le_bytes(p[32..36].try_into().unwrap());
        assert_eq!((code, ret), (0, want), "{n} {which} {s:02x?}");
        ours.push((f, (code, p)));
    }
    oracle::compare_runs(
        "strncmp_compares_with_constant_strings",
        file,
        "classifier",
        ours.iter().map(|(f, want)| (&f[..], want.clone())),
    );
}

/// `s2` must be a constant string: Strict mode refuses a string on the stack (the kernel's
/// verifier refuses it too) naming the argument; Checked mode leaves it to the helper, which
/// compares it (and fails the run when no NUL comes before readable memory ends).
#[test]
fn strncmp_wants_a_constant_string() {
    // "ab\0" on the stack at r10-8 as s2, "ab\0" at r10-16 as s1 (size 3); then, for the
    // second program, a stack string without a NUL in reach (8 bytes of 'a' up to the frame's
    // top) against 16 bytes of 'a'.
    let equal = "stdw [r10-8], 0x6261\nstdw [r10-16], 0x6261\nmov r1, r10\nadd r1, -16\n\
                 mov r2, 3\nmov r3, r10\nadd r3, -8\ncall 182\nexit";
    let unterminated = "lddw r0, 0x6161616161616161\nstxdw [r10-8], r0\nstxdw [r10-16], r0\n\
                        stxdw [r10-24], r0\nmov r1, r10\nadd r1, -24\nmov r2, 16\nmov r3, r10\n\
                        add r3, -8\ncall 182\nexit";
    let obj = |text: &str| {
        bpfx::Vm::new()
            .object(
                vec![bpfx::ProgramDef::new("p", "socket", common::code(text))],
                vec![],
            )
            .unwrap()
    };
    for text in [equal, unterminated] {
        let e = obj(text)
            .program("p")
            .unwrap()
            .verify(Mode::Strict)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(
                "argument r3 of helper strncmp must be a pointer into a read-only map value"
            ),
            "{e}"
        );
    }
    for (engine, opts) in engines() {
        let v = obj(equal)
            .program("p")
            .unwrap()
            .verify(Mode::Checked)
            .unwrap();
        let mut prog = prepare(v, opts.clone());
        let kept = prog.run_socket(&[0u8; 20], &SkbMeta::default()).unwrap();
        assert_eq!(kept.code, 0, "{engine}");
        let v = obj(unterminated)
            .program("p")
            .unwrap()
            .verify(Mode::Checked)
            .unwrap();
        let mut prog = prepare(v, opts);
        let e = prog
            .run_socket(&[0u8; 20], &SkbMeta::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("strncmp: cannot read the string"),
            "{engine}: {e}"
        );
    }
}
