//! Strict mode's promise, tested: a program it accepts never fails a bounds check. 20,000
//! strict-friendly generated programs ([`generate_strict`]) are verified against their exact
//! input size; each accepted one runs in the reference interpreter (which checks every access)
//! on four inputs of that size, and must finish without a trap. Any trap is a soundness bug of
//! the verifier and becomes a regression file under `tests/verifier/`.

use bpfx_exec::Env;
use bpfx_testkit::strict_gen::generate_strict;
use bpfx_verifier::{Config, Mode, verify};

const CASES: u64 = 20_000;

#[test]
fn strict_accepted_programs_never_trap() {
    let mut accepted = 0u64;
    let mut proven = 0u64;
    for seed in 0..CASES {
        let sc = generate_strict(seed);
        let case = &sc.case;
        let cfg = Config::conformance(Mode::Strict, case.input.len() as u64);
        let Ok(verified) = verify(case.prog.clone(), &cfg) else {
            continue;
        };
        accepted += 1;
        proven += verified
            .program()
            .iter()
            .filter(|(pc, _)| verified.access(*pc).is_some_and(|f| f.proven))
            .count() as u64;
        let n = case.input.len();
        let inputs = [
            case.input.clone(),
            vec![0xff; n],
            vec![0; n],
            (0..n).map(|i| (i as u8).wrapping_mul(37) ^ 0x80).collect(),
        ];
        for mut input in inputs {
            let mut env = Env::with_helpers(case.helpers.clone());
            if let Err(trap) = bpfx_interp::run_unverified(&case.prog, &mut input, &mut env) {
                panic!(
                    "seed {seed}: Strict mode accepted a program that traps with {trap} on \
                     input {input:02x?}:\n{}",
                    sc.text
                );
            }
        }
    }
    // The test says something only if most programs get through (a few are generated with a
    // deliberate off-by-one access, which must be rejected).
    assert!(
        accepted * 2 >= CASES,
        "Strict mode accepted only {accepted} of {CASES} generated programs"
    );
    assert!(
        proven >= accepted,
        "accepted programs prove too few accesses"
    );
}
