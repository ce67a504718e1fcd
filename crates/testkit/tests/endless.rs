//! Every run ends: a program whose termination is not proven runs under
//! [`DEFAULT_BUDGET`] unless the embedder sets a budget or opts out, on the interpreter and on
//! the JIT under every option set, verified or not, and both engines agree on the trap pc and
//! the budget left; a program proven to terminate pays nothing (its code has no budget charge).

use bpfx_bytecode::{Pc, Program, assemble};
use bpfx_exec::{Budget, DEFAULT_BUDGET, Env, Helpers, Trap, TrapKind};
use bpfx_jit::JitOptions;
use bpfx_testkit::jit_option_sets;
use bpfx_verifier::{Config, Mode, VerifiedProgram, verify};

/// `tests/endless/loop.asm`: r0 is 0, so the branch never leaves and `ja -2` goes back to it.
fn endless() -> Program {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/endless/loop.asm");
    let text = std::fs::read_to_string(path).expect("the fixture exists");
    Program::decode(assemble(&text).expect("assembles")).expect("decodes")
}

/// Counts r0 up to `n > 0` and returns it: `2n + 2` instructions (`mov`, n times `add` and
/// `jne`, `exit`); the instruction with index `i >= 2` (from 0) is the `jne` at pc 2 when `i` is
/// even. r0 starts from r1, which is 0 (the runs pass no memory), but Checked mode's proof does
/// not know it: a `!=` test bounds a loop only from a known start.
fn counted(n: i32) -> Program {
    let text = format!("mov r0, r1\ntop:\nadd r0, 1\njne r0, {n}, top\nexit");
    Program::decode(assemble(&text).expect("assembles")).expect("decodes")
}

const LOOP_PC: Pc = Pc(2);

fn exhausted(pc: Pc) -> Result<u64, Trap> {
    Err(Trap {
        kind: TrapKind::BudgetExhausted,
        pc,
    })
}

fn checked(prog: Program) -> VerifiedProgram {
    verify(
        prog,
        &Config {
            mode: Mode::Checked,
            mem_size: Some(0),
            ..Config::default()
        },
    )
    .expect("checked mode accepts it")
}

/// One way to run a program.
enum Way<'a> {
    Interp(&'a VerifiedProgram),
    InterpUnverified(&'a Program),
    Jit(&'a VerifiedProgram, JitOptions),
    JitUnverified(&'a Program, JitOptions),
}

impl Way<'_> {
    fn name(&self) -> String {
        match self {
            Way::Interp(_) => "interp".into(),
            Way::InterpUnverified(_) => "interp (unverified)".into(),
            Way::Jit(_, o) => format!("jit {o:?}"),
            Way::JitUnverified(_, o) => format!("jit (unverified) {o:?}"),
        }
    }

    fn run(&self, env: &mut Env) -> Result<u64, Trap> {
        match self {
            Way::Interp(v) => bpfx_interp::run(v, &mut [], env),
            Way::InterpUnverified(p) => bpfx_interp::run_unverified(p, &mut [], env),
            Way::Jit(v, o) => bpfx_jit::compile(v, o).expect("compiles").run(&mut [], env),
            Way::JitUnverified(p, o) => bpfx_jit::compile_unverified(p, o)
                .expect("compiles")
                .run(&mut [], env),
        }
    }
}

/// The interpreter and the JIT under every option set (with `extra` applied), verified and not.
fn ways<'a>(v: &'a VerifiedProgram, extra: impl Fn(JitOptions) -> JitOptions) -> Vec<Way<'a>> {
    let mut ways = vec![Way::Interp(v), Way::InterpUnverified(v.program())];
    for (_, opts) in jit_option_sets() {
        ways.push(Way::Jit(v, extra(opts.clone())));
        ways.push(Way::JitUnverified(v.program(), extra(opts)));
    }
    ways
}

#[test]
fn an_endless_loop_ends_with_the_default_budget_on_every_engine() {
    let v = checked(endless());
    assert!(!v.terminates(), "checked mode cannot bound this loop");
    assert!(v.program().has_back_edges());
    for way in ways(&v, |o| o) {
        let mut env = Env::with_helpers(Helpers::new());
        assert_eq!(way.run(&mut env), exhausted(LOOP_PC), "{}", way.name());
        // The default belongs to the run: the environment still has no budget of its own.
        assert_eq!(env.budget, None, "{}", way.name());
    }
}

#[test]
fn the_default_budget_is_exactly_default_budget_instructions() {
    // n iterations fit the default exactly when 2n + 2 <= DEFAULT_BUDGET; one more, and the
    // instruction with index DEFAULT_BUDGET (the `jne`) finds it empty.
    let fits = i32::try_from((DEFAULT_BUDGET - 2) / 2).unwrap();
    for (n, expected) in [(fits, Ok(fits as u64)), (fits + 1, exhausted(Pc(2)))] {
        let v = checked(counted(n));
        for way in ways(&v, |o| o) {
            let mut env = Env::with_helpers(Helpers::new());
            // The interpreter is the slow one; once verified is enough for it here.
            if matches!(way, Way::InterpUnverified(_)) {
                continue;
            }
            assert_eq!(way.run(&mut env), expected, "n = {n}: {}", way.name());
        }
    }
}

#[test]
fn an_explicit_budget_overrides_the_default_and_engines_agree_on_what_is_left() {
    let v = checked(endless());
    for budget in [0, 1, 2, 3, 1000, 1001] {
        for way in ways(&v, |o| JitOptions { budget: true, ..o }) {
            let mut env = Env::with_helpers(Helpers::new());
            env.set_budget(Budget::Limit(budget));
            // pcs 0 and 1 run once, then 1 and 2 alternate.
            let pc = match budget {
                0 => Pc(0),
                b if b % 2 == 0 => LOOP_PC,
                _ => Pc(1),
            };
            assert_eq!(
                way.run(&mut env),
                exhausted(pc),
                "budget {budget}: {}",
                way.name()
            );
            assert_eq!(env.budget, Some(0), "budget {budget}: {}", way.name());
        }
    }
    // A finite loop inside an explicit budget leaves the same rest everywhere.
    let v = checked(counted(100));
    for way in ways(&v, |o| JitOptions { budget: true, ..o }) {
        let mut env = Env::with_helpers(Helpers::new());
        env.set_budget(Budget::Limit(1000));
        assert_eq!(way.run(&mut env), Ok(100), "{}", way.name());
        assert_eq!(env.budget, Some(1000 - 202), "{}", way.name());
    }
}

#[test]
fn opting_out_lets_a_long_loop_finish() {
    // Longer than the default: the JIT finishes it in about a second without a budget.
    let n = i32::try_from(DEFAULT_BUDGET / 2 + 10).unwrap();
    let v = checked(counted(n));
    for (name, opts) in jit_option_sets() {
        let jit = bpfx_jit::compile(&v, &opts).expect("compiles");
        let mut env = Env::with_helpers(Helpers::new());
        assert_eq!(jit.run(&mut [], &mut env), exhausted(Pc(2)), "{name}");
        // Opted out at run time (the code has the charge, the run no limit)...
        env.set_budget(Budget::Unlimited);
        assert_eq!(jit.run(&mut [], &mut env), Ok(n as u64), "{name}");
        // ... or at compile time (no charge at all).
        let opts = JitOptions {
            unbounded: true,
            ..opts
        };
        let jit = bpfx_jit::compile(&v, &opts).expect("compiles");
        let mut env = Env::with_helpers(Helpers::new());
        assert_eq!(jit.run(&mut [], &mut env), Ok(n as u64), "{name}");
    }
}

#[test]
fn code_pays_for_the_budget_only_when_termination_is_not_proven() {
    let charged = |jit: &bpfx_jit::JitProgram| jit.listing().contains("budget slow paths");
    // Strict mode explores the loop to its exit: proven to terminate.
    let strict = verify(
        counted(10),
        &Config {
            mode: Mode::Strict,
            mem_size: Some(0),
            ..Config::default()
        },
    )
    .expect("strict mode proves the loop ends");
    assert!(strict.terminates());
    // Checked mode cannot bound it through `!=` from an unknown start, but proves the `<` twin
    // ends (see docs/verifier.md, "Termination"); without a back edge it needs no bound.
    let loose = checked(counted(10));
    assert!(!loose.terminates());
    let text = "mov r0, 0\ntop:\nadd r0, 1\njlt r0, 10, top\nexit";
    let bounded = checked(Program::decode(assemble(text).unwrap()).unwrap());
    assert!(bounded.terminates());
    let straight = checked(Program::decode(assemble("mov r0, 1\nexit").unwrap()).unwrap());
    assert!(straight.terminates());
    for (name, opts) in jit_option_sets() {
        let compile = |v: &VerifiedProgram, o: &JitOptions| bpfx_jit::compile(v, o).unwrap();
        assert!(!charged(&compile(&strict, &opts)), "{name}: strict");
        assert!(!charged(&compile(&straight, &opts)), "{name}: straight");
        assert!(!charged(&compile(&bounded, &opts)), "{name}: counted loop");
        assert!(charged(&compile(&loose, &opts)), "{name}: checked loop");
        let unverified = bpfx_jit::compile_unverified(loose.program(), &opts).unwrap();
        assert!(charged(&unverified), "{name}: unverified loop");
        let unbounded = JitOptions {
            unbounded: true,
            ..opts.clone()
        };
        assert!(!charged(&compile(&loose, &unbounded)), "{name}: opted out");
        // An explicit budget always gets the charge.
        let budget = JitOptions {
            budget: true,
            ..opts
        };
        assert!(charged(&compile(&strict, &budget)), "{name}: asked for");
    }
}

#[test]
fn a_budget_set_for_code_without_the_charge_is_refused_at_pc_0() {
    let v = checked(Program::decode(assemble("mov r0, 1\nexit").unwrap()).unwrap());
    for (name, opts) in jit_option_sets() {
        let jit = bpfx_jit::compile(&v, &opts).unwrap();
        let mut env = Env::with_helpers(Helpers::new());
        env.set_budget(Budget::Limit(10));
        assert_eq!(
            jit.run(&mut [], &mut env),
            Err(Trap {
                kind: TrapKind::Unsupported,
                pc: Pc(0)
            }),
            "{name}"
        );
    }
}
