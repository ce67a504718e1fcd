//! Verified compilation against the interpreter: generated programs the verifier accepts in
//! Checked mode (with `mem_size` = the input's length) are compiled with `bpfx_jit::compile`,
//! which drops the guard of every access the verifier proved, and must behave exactly like the
//! interpreter: r0 or the trap, every byte of the input, the budget left. The generated corpus
//! runs case `seed` on the sampled subset of the matrix (`sampled_verified_engines`: the
//! default JIT and one other option set in turn); the hand-written cases on every option set.

use bpfx_bytecode::{Pc, Program};
use bpfx_testkit::{check_with, generate, run_corpus, sampled_verified_engines, verified_engines};
use bpfx_verifier::{Config, Mode, verify};

const CASES: u64 = 4_000;

#[test]
fn verified_compilation_agrees_with_the_interpreter() {
    let (mut accepted, mut proven) = (0u64, 0u64);
    run_corpus(0..CASES, |seed| {
        let case = generate(seed);
        let cfg = Config::conformance(Mode::Checked, case.input.len() as u64);
        let Ok(v) = verify(case.prog.clone(), &cfg) else {
            return Ok(());
        };
        accepted += 1;
        proven += (0..case.prog.len())
            .filter(|&i| v.access(Pc(i as u32)).is_some_and(|f| f.proven))
            .count() as u64;
        match check_with(&case, &sampled_verified_engines(v, seed)) {
            Ok(_) => Ok(()),
            Err(m) => Err(format!("seed {seed}: {m}")),
        }
    });
    println!("{accepted} accepted, {proven} proven accesses");
    // The comparison means something only if guards were actually dropped.
    assert!(accepted >= CASES / 20, "only {accepted} programs accepted");
    assert!(
        proven >= accepted,
        "only {proven} proven accesses in {accepted} programs"
    );
}

/// Verifies `text` (no input) in both modes, checks that the store at `store` is proven (so
/// the JIT drops its guard), and runs it on the interpreter and the verified JIT: both must
/// return `want`.
fn proven_store_returns(text: &str, store: Pc, want: u64) {
    let prog = Program::decode(bpfx_bytecode::assemble(text).expect("assembles")).expect("decodes");
    for mode in [Mode::Strict, Mode::Checked] {
        let v = verify(prog.clone(), &Config::conformance(mode, 0)).expect("verifies");
        assert!(
            v.access(store).is_some_and(|f| f.proven),
            "the store is proven, so the JIT drops its guard"
        );
        let case = bpfx_testkit::Case {
            prog: prog.clone(),
            input: Vec::new(),
            helpers: bpfx_exec::Helpers::new(),
            budget: None,
        };
        let outcome =
            check_with(&case, &verified_engines(v)).unwrap_or_else(|m| panic!("{mode:?}: {m}"));
        assert_eq!(outcome.result, Ok(want), "{mode:?} on {text}");
    }
}

/// `add r0, r10; sub r0, 13` folds to the address `[r0 + r10 - 13]`, which reads r0's value
/// from before the chain; when r0 is read as a value later, the chain becomes one `lea` into
/// r0, and an access after it must go through r0 itself, not through that expression again
/// (found by the `diff_raw` fuzz target: the JIT computed `2 * r10 - 26`; with a proof the
/// guard was gone and the store went wild). Both modes, every proof used.
#[test]
fn an_address_chain_that_reads_its_own_register_is_not_refolded_after_its_lea() {
    let text = "mov r0, 0\nadd r0, r10\nsub r0, 13\nstb [r0+0], 7\nldxb r3, [r0+0]\n\
                mov r2, r0\nldxb r0, [r2+0]\nadd r0, r3\nexit";
    proven_store_returns(text, Pc(3), 14);
}

/// An address chain folded into a store across a division that borrows a register of the
/// chain (r0 or r3, dead after the division, so not parked): the store must use the value
/// from before the division (found by `diff_structured`; with the store proven there is no
/// guard to catch a wrong address: before the fix it went to r10 + 54). Both modes.
#[test]
fn a_folded_address_is_not_read_across_a_division_that_borrows_its_register() {
    for component in ["r0", "r3"] {
        let text = format!(
            "mov {component}, -16\nmov r5, 1000\nmov r2, 0x1234\nmov r6, r10\n\
             add r6, {component}\nmod r5, 50\nstxh [r6+4], r2\nldxh r0, [r10-12]\n\
             mov r3, 0\nexit"
        );
        proven_store_returns(&text, Pc(6), 0x1234);
    }
}
