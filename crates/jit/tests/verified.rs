//! Compiling verified programs: the guard goes exactly where the verifier could not prove the
//! access, and the code refuses inputs shorter than the size the proofs assumed.

use bpfx_bytecode::{Pc, Program, assemble};
use bpfx_exec::{Env, Helpers, Trap, TrapKind};
use bpfx_jit::{JitOptions, compile};
use bpfx_verifier::{Config, Mode, VerifiedProgram, verify};

fn verified(text: &str, mem_size: u64) -> VerifiedProgram {
    let insns = assemble(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let prog = Program::decode(insns).unwrap_or_else(|e| panic!("{e}\n{text}"));
    verify(prog, &Config::conformance(Mode::Checked, mem_size)).expect("verifies")
}

/// The machine code listed under the eBPF instruction at `pc`, up to the next header.
fn section(listing: &str, pc: u32) -> String {
    let header = format!("{pc:>4}: ");
    let is_code = |l: &&str| {
        l.len() > 8 && l.starts_with("  ") && l[2..8].chars().all(|c| c.is_ascii_hexdigit())
    };
    let mut lines = listing.lines().skip_while(|l| !l.starts_with(&header));
    let first = lines
        .next()
        .unwrap_or_else(|| panic!("no pc {pc}:\n{listing}"));
    let body: Vec<&str> = lines.take_while(is_code).collect();
    format!("{first}\n{}", body.join("\n"))
}

const PROBE: &str = "
    ldxb r3, [r1+1]
    add r1, r3
    ldxb r0, [r1+0]
    exit";

#[test]
fn a_proven_access_has_no_guard_and_an_unproven_one_keeps_it() {
    let v = verified(PROBE, 16);
    // The premise: the verifier proves the first load and not the second (r1 + unknown byte).
    assert!(
        v.access(Pc(0)).is_some_and(|f| f.proven),
        "{:?}",
        v.access(Pc(0))
    );
    assert!(
        v.access(Pc(2)).is_some_and(|f| !f.proven),
        "{:?}",
        v.access(Pc(2))
    );
    let listing = compile(&v, &JitOptions::default())
        .expect("compiles")
        .listing();
    let proven = section(&listing, 0);
    assert!(
        !proven.contains("lea r10") && !proven.contains("jae"),
        "guard on a proven access:\n{proven}"
    );
    assert!(proven.contains("byte ptr [rdi+1]"), "{proven}");
    // r1 is dead after the second load, so `add r1, r3` folds into its address.
    let guarded = section(&listing, 2);
    assert!(
        guarded.contains("lea r10,[rdi+rdx]")
            && guarded.contains("cmp r10,[r12")
            && guarded.contains("jae"),
        "no guard on an unproven access:\n{guarded}"
    );
    // The same program compiled without facts guards both (the first at the constant offset
    // 1 from the input's address).
    let unverified = bpfx_jit::compile_unverified(v.program(), &JitOptions::default())
        .expect("compiles")
        .listing();
    assert!(
        section(&unverified, 0).contains("cmp qword ptr [r12+")
            && section(&unverified, 0).contains("jbe"),
        "{unverified}"
    );
}

#[test]
fn verified_code_refuses_an_input_shorter_than_mem_size() {
    let v = verified(PROBE, 16);
    let jit = compile(&v, &JitOptions::default()).expect("compiles");
    let too_small = Err(Trap {
        kind: TrapKind::InputTooSmall,
        pc: Pc(0),
    });
    for len in [0, 1, 15] {
        let mut input = vec![0u8; len];
        let mut env = Env::with_helpers(Helpers::conformance());
        assert_eq!(jit.run(&mut input, &mut env), too_small, "jit, {len} bytes");
        assert_eq!(
            bpfx_interp::run(&v, &mut input, &mut env),
            too_small,
            "interp, {len} bytes"
        );
    }
    for len in [16, 40] {
        let mut input: Vec<u8> = (0..len as u8).collect();
        let mut env = Env::with_helpers(Helpers::conformance());
        // r1 + input[1] = input + 1, so r0 = input[1] = 1.
        assert_eq!(jit.run(&mut input, &mut env), Ok(1), "{len} bytes");
        assert_eq!(bpfx_interp::run(&v, &mut input, &mut env), Ok(1));
    }
}

/// Code the verifier never reached is never compiled: each of its instructions is the
/// `Unsupported` trap at its pc (here a load and an add behind a branch on a constant), and
/// the live code runs as before on both engines' contract.
#[test]
fn dead_code_is_compiled_as_traps() {
    let text = "
        mov r0, 5
        jeq r0, 5, +2
        ldxdw r0, [r1+8]
        add r0, 7
        exit";
    let v = verified(text, 16);
    assert!(v.reached(Pc(1)) && !v.reached(Pc(2)) && !v.reached(Pc(3)) && v.reached(Pc(4)));
    let jit = compile(&v, &JitOptions::default()).unwrap();
    let listing = jit.listing();
    for pc in [2, 3] {
        // The trap: the pc stored for the stub, then the jump to it; nothing else.
        let s = section(&listing, pc);
        let code: Vec<&str> = s.lines().skip(1).collect();
        assert_eq!(code.len(), 2, "{s}");
        assert!(code[0].ends_with(&format!("],{pc}")), "{s}");
        assert!(code[1].contains("jmp"), "{s}");
    }
    let mut env = Env::with_helpers(Helpers::conformance());
    assert_eq!(jit.run(&mut [0; 16], &mut env), Ok(5));
}
