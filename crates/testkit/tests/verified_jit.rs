//! Verified compilation against the interpreter: generated programs the verifier accepts in
//! Checked mode (with `mem_size` = the input's length) are compiled with `bpfx_jit::compile`,
//! which drops the guard of every access the verifier proved, and must behave exactly like the
//! interpreter: r0 or the trap, every byte of the input, the budget left.

use bpfx_bytecode::{Pc, Program};
use bpfx_exec::Env;
use bpfx_jit::{JitOptions, compile};
use bpfx_testkit::{Engine, InterpEngine, RunError, check_with, generate};
use bpfx_verifier::{Config, Mode, VerifiedProgram, verify};

const CASES: u64 = 4_000;

/// The JIT on one verified program, through its verified entry.
struct VerifiedJit(VerifiedProgram);

impl Engine for VerifiedJit {
    fn name(&self) -> &'static str {
        "verified-jit"
    }

    fn execute(&self, prog: &Program, input: &mut [u8], env: &mut Env) -> Result<u64, RunError> {
        assert_eq!(
            prog,
            self.0.program(),
            "the engine runs the program it verified"
        );
        let opts = JitOptions {
            budget: env.budget.is_some(),
            ..bpfx_jit::JitOptions::default()
        };
        let jit = compile(&self.0, &opts).map_err(|e| RunError::Compile(e.to_string()))?;
        jit.run(input, env).map_err(RunError::Trap)
    }
}

#[test]
fn verified_compilation_agrees_with_the_interpreter() {
    let (mut accepted, mut proven) = (0u64, 0u64);
    let mut failures = Vec::new();
    for seed in 0..CASES {
        let case = generate(seed);
        let cfg = Config::conformance(Mode::Checked, case.input.len() as u64);
        let Ok(v) = verify(case.prog.clone(), &cfg) else {
            continue;
        };
        accepted += 1;
        proven += (0..case.prog.len())
            .filter(|&i| v.access(Pc(i as u32)).is_some_and(|f| f.proven))
            .count() as u64;
        let engines: Vec<Box<dyn Engine>> = vec![Box::new(InterpEngine), Box::new(VerifiedJit(v))];
        if let Err(m) = check_with(&case, &engines) {
            failures.push(format!("seed {seed}: {m}"));
            if failures.len() >= 3 {
                break;
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatch(es):\n{}",
        failures.len(),
        failures.join("\n")
    );
    println!("{accepted} accepted, {proven} proven accesses");
    // The comparison means something only if guards were actually dropped.
    assert!(accepted >= CASES / 20, "only {accepted} programs accepted");
    assert!(
        proven >= accepted,
        "only {proven} proven accesses in {accepted} programs"
    );
}
