//! Every run ends, through the facade: a program whose termination is not proven runs under
//! the default budget ([`bpfx::DEFAULT_BUDGET`]) on both engines and every JIT option set;
//! [`Program::set_budget`] overrides it or opts out.

use bpfx::bytecode::{Program as Bytecode, assemble};
use bpfx::{Budget, Engine, Mode, Program, ProgramDef, TrapKind, Verified, Vm};
use bpfx_jit::JitOptions;
use bpfx_testkit::jit_option_sets;

fn verified(text: &str) -> Verified {
    let code = Bytecode::decode(assemble(text).unwrap()).unwrap();
    let obj = Vm::new()
        .object(vec![ProgramDef::new("prog", "test", code)], vec![])
        .unwrap();
    obj.program("prog").unwrap().verify(Mode::Checked).unwrap()
}

fn endless() -> Verified {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/endless/loop.asm");
    verified(&std::fs::read_to_string(path).unwrap())
}

/// The interpreter, then the JIT under every option set of the engine matrix (with the budget
/// charge when `charge`).
fn programs(v: &Verified, charge: bool) -> Vec<(String, Program)> {
    let mut out = vec![("interp".to_string(), v.clone().interpret())];
    for (name, opts) in jit_option_sets() {
        let opts = JitOptions {
            budget: charge,
            ..opts
        };
        out.push((name.to_string(), v.clone().compile_with(&opts).unwrap()));
    }
    out
}

fn trap_of(r: Result<u64, bpfx::RunError>) -> Option<(TrapKind, u32)> {
    match r {
        Err(bpfx::RunError::Trap { trap, .. }) => Some((trap.kind, trap.pc.0)),
        _ => None,
    }
}

#[test]
fn an_endless_loop_ends_with_the_default_budget() {
    let v = endless();
    assert!(!v.program().terminates());
    for (name, mut p) in programs(&v, false) {
        assert_eq!(
            trap_of(p.run(&mut [])),
            Some((TrapKind::BudgetExhausted, 2)),
            "{name}"
        );
        // The default is per run: the next run gets all of it again.
        assert_eq!(p.budget(), None, "{name}");
        assert_eq!(
            trap_of(p.run(&mut [])),
            Some((TrapKind::BudgetExhausted, 2)),
            "{name}"
        );
    }
}

#[test]
fn set_budget_limits_and_both_engines_leave_the_same_rest() {
    let v = endless();
    for (name, mut p) in programs(&v, true) {
        p.set_budget(Budget::Limit(101));
        assert_eq!(
            trap_of(p.run(&mut [])),
            Some((TrapKind::BudgetExhausted, 1)),
            "{name}"
        );
        assert_eq!(p.budget(), Some(0), "{name}");
        // `Some(n)` is a limit too.
        p.set_budget(Some(6));
        assert_eq!(
            trap_of(p.run(&mut [])),
            Some((TrapKind::BudgetExhausted, 2)),
            "{name}"
        );
    }
    let finite = verified("mov r0, 0\ntop:\nadd r0, 1\njlt r0, 10, top\nexit");
    for (name, mut p) in programs(&finite, true) {
        p.set_budget(Some(100));
        assert_eq!(p.run(&mut []).unwrap(), 10, "{name}");
        assert_eq!(p.budget(), Some(100 - 22), "{name}");
    }
}

#[test]
fn unlimited_lets_a_long_loop_finish_on_the_jit() {
    // 2 * 150_000_000 + 2 instructions: above the default budget (a `!=` test from r2, the
    // input's length, 0 here but not a constant to the proof: not proven to end, so the default
    // applies).
    let n = 150_000_000u64;
    let v = verified(&format!(
        "mov r0, r2\ntop:\nadd r0, 1\njne r0, {n}, top\nexit"
    ));
    assert!(!v.program().terminates());
    assert!(2 * n + 2 > bpfx::DEFAULT_BUDGET);
    let mut p = v.engine(Engine::Jit, false).unwrap();
    assert_eq!(
        trap_of(p.run(&mut [])),
        Some((TrapKind::BudgetExhausted, 2))
    );
    p.set_budget(Budget::Unlimited);
    assert_eq!(p.run(&mut []).unwrap(), n);
    // A clone keeps the choice.
    assert_eq!(p.clone().run(&mut []).unwrap(), n);
    p.set_budget(Budget::Default);
    assert_eq!(
        trap_of(p.run(&mut [])),
        Some((TrapKind::BudgetExhausted, 2))
    );
}
