//! What the hardening options do to the code: blinding keeps chosen constants out of it,
//! Spectre hardening masks guarded addresses, and neither changes a result.

use bpfx_bytecode::{Program, assemble};
use bpfx_exec::{Env, Helpers};
use bpfx_jit::{JitOptions, compile_unverified};

fn prog(text: &str) -> Program {
    let insns = assemble(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    Program::decode(insns).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// 32-bit constants an attacker might plant: nop sleds, int3, `syscall; ret` pieces, a
/// `jmp rel8` pair. (A lone `0xcc` is not here: as four little-endian bytes, `cc 00 00 00`,
/// it could be any jump displacement.)
const CHOSEN: [u32; 6] = [
    0x9090_9090,
    0xcccc_cccc,
    0x0f05_c390,
    0xc305_0f90,
    0x3ceb_3ceb,
    0x5841_5a41,
];

/// Every instruction form that carries an immediate, each with chosen constants; only forms
/// that do not trap, so the program runs to its end.
fn constants_program() -> String {
    let mut t = String::from("lddw r6, 0x0f05c3cc90909090\nlddw r7, 0x3ceb3ceb5841cccc\n");
    for (i, c) in CHOSEN.iter().enumerate() {
        let c = *c as i32;
        let r = 1 + i % 5;
        t.push_str(&format!(
            "mov r{r}, {c}\nmov32 r0, {c}\nadd r0, {c}\nsub32 r0, {c}\nand r0, {c}\nor32 r0, {c}
             xor r0, {c}\nmul r0, {c}\ndiv r0, {c}\nmod32 r0, {c}\nsdiv r0, {c}\nsmod r0, {c}
             jeq r0, {c}, +1\njgt32 r0, {c}, +1\njset r0, {c}, +1\njsle r{r}, {c}, +0
             stw [r10-8], {c}\nstdw [r10-16], {c}\nsth [r10-20], {c}\nstb [r10-24], {c}
             ldxdw r8, [r10-16]\nadd r0, r8\n"
        ));
    }
    t.push_str("add r0, r6\nadd r0, r7\nexit\n");
    t
}

fn contains(code: &[u8], needle: &[u8]) -> bool {
    code.windows(needle.len()).any(|w| w == needle)
}

/// The chosen constants found in `code`, as 4-byte (and the `lddw` values as 8-byte)
/// little-endian sequences.
fn exposed(code: &[u8]) -> Vec<String> {
    let mut found: Vec<String> = CHOSEN
        .iter()
        .filter(|c| contains(code, &c.to_le_bytes()))
        .map(|c| format!("{c:#x}"))
        .collect();
    for v in [0x0f05_c3cc_9090_9090u64, 0x3ceb_3ceb_5841_ccccu64] {
        for bytes in [
            &v.to_le_bytes()[..],
            &v.to_le_bytes()[..4],
            &v.to_le_bytes()[4..],
        ] {
            if contains(code, bytes) {
                found.push(format!("{v:#x} part {bytes:02x?}"));
            }
        }
    }
    found
}

fn run(
    jit: &bpfx_jit::JitProgram,
    budget: Option<u64>,
) -> (Result<u64, bpfx_exec::Trap>, Option<u64>) {
    let mut env = Env::with_helpers(Helpers::conformance());
    env.budget = budget;
    let r = jit.run(&mut [], &mut env);
    (r, env.budget)
}

#[test]
fn blinding_keeps_chosen_constants_out_of_the_code() {
    let p = prog(&constants_program());
    let plain = compile_unverified(&p, &JitOptions::default()).expect("compiles");
    // The premise: without blinding every chosen constant is in the code.
    assert_eq!(
        exposed(plain.code()).len(),
        CHOSEN.len() + 6,
        "{}",
        plain.listing()
    );
    let expected = run(&plain, None);
    assert!(expected.0.is_ok(), "{expected:?}");
    for opts in [
        JitOptions {
            blinding: true,
            ..JitOptions::default()
        },
        JitOptions {
            budget: true,
            ..JitOptions::hardened()
        },
    ] {
        // Fresh keys every compilation: a few compilations, none may expose anything.
        for _ in 0..4 {
            let jit = compile_unverified(&p, &opts).expect("compiles");
            let found = exposed(jit.code());
            assert!(
                found.is_empty(),
                "{opts:?} exposes {found:?}:\n{}",
                jit.listing()
            );
            let budget = opts.budget.then_some(10_000);
            assert_eq!(run(&jit, budget).0, expected.0, "{opts:?}");
        }
    }
}

#[test]
fn blinding_covers_helper_ids_packet_offsets_and_trap_pcs() {
    // Each of these ends the run (unknown helper, packet halt, out-of-bounds trap), so each
    // gets its own program; the trap pc is made a chosen constant by padding.
    let pad = 0x9090usize;
    let cases = [
        ("call 0x90909090\nexit".to_string(), 0x9090_9090u32),
        ("ldabsw 0x3ceb3ceb\nexit".to_string(), 0x3ceb_3ceb),
        (
            "mov r2, 0x5841\nldindb r2, 0x5a410000\nexit".to_string(),
            0x5a41_0000,
        ),
        (
            format!("{}ldxw r0, [r0+0]\nexit", "ja +0\n".repeat(pad)),
            pad as u32,
        ),
    ];
    for (text, constant) in &cases {
        let p = prog(text);
        let needle = constant.to_le_bytes();
        let plain = compile_unverified(&p, &JitOptions::default()).expect("compiles");
        assert!(
            contains(plain.code(), &needle),
            "premise: the plain code shows it"
        );
        let jit = compile_unverified(
            &p,
            &JitOptions {
                blinding: true,
                ..JitOptions::default()
            },
        )
        .expect("compiles");
        assert!(
            !contains(jit.code(), &needle),
            "{text:.40}: {constant:#x} exposed"
        );
        assert_eq!(run(&jit, None), run(&plain, None), "{text:.40}");
    }
}

#[test]
fn spectre_hardening_masks_every_guarded_address() {
    let p = prog("ldxw r0, [r1+4]\nstxb [r1+1], r0\nlock add [r1+8], r0\nldxdw r2, [r10-8]\nexit");
    let plain = compile_unverified(&p, &JitOptions::default())
        .expect("compiles")
        .listing();
    for needle in ["sbb r11,r11", "and r10,r11", "lfence"] {
        assert!(
            !plain.contains(needle),
            "{needle} without the option:\n{plain}"
        );
    }
    let jit = compile_unverified(
        &p,
        &JitOptions {
            spectre: true,
            ..JitOptions::default()
        },
    )
    .expect("compiles");
    let listing = jit.listing();
    // Three guarded accesses, three masks; the frame access at r10-8 needs none.
    assert_eq!(listing.matches("sbb r11,r11").count(), 3, "{listing}");
    assert_eq!(listing.matches("and r10,r11").count(), 3, "{listing}");
    assert_eq!(
        listing.matches("lfence").count(),
        3,
        "one per slow path:\n{listing}"
    );
    assert!(
        listing.contains("mov eax,[r10]"),
        "the load goes through the mask:\n{listing}"
    );
    assert!(
        listing.contains("mov [r10],al"),
        "so does the store:\n{listing}"
    );
    let mut input = [7u8; 16];
    let mut env = Env::new();
    assert_eq!(jit.run(&mut input, &mut env), Ok(0x0707_0707));
    assert_eq!(input[1], 7);
    assert_eq!(input[8], 14, "the atomic add went to the masked address");
}
