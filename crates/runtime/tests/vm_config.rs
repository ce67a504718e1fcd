//! Engine, verifier mode, budget and JIT options set once on the [`Vm`]: every refused
//! combination, `ProgramRef::load` on every engine and JIT option set, and the `Vm`'s budget
//! honoured on both engines (the JIT's budget charge follows it, whatever the options say).

use bpfx::{
    Budget, Bytecode, CodeMemory, ConfigError, Engine, Error, JitOptions, Mode, Object, ProgramDef,
    RunError, TrapKind, Vm,
};
use bpfx_testkit::jit_option_sets;

fn object(vm: &Vm, text: &str) -> Object {
    let code = Bytecode::decode(bpfx::bytecode::assemble(text).unwrap()).unwrap();
    vm.object(vec![ProgramDef::new("prog", "test", code)], vec![])
        .unwrap()
}

fn endless(vm: &Vm) -> Object {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/endless/loop.asm");
    object(vm, &std::fs::read_to_string(path).unwrap())
}

fn trap_of<T: std::fmt::Debug>(r: Result<T, RunError>) -> (TrapKind, u32) {
    match r {
        Err(RunError::Trap { trap, .. }) => (trap.kind, trap.pc.0),
        other => panic!("no trap: {other:?}"),
    }
}

/// The interpreter, then the JIT under every option set of the engine matrix, as `Vm`s.
fn vms() -> Vec<(String, Vm)> {
    let mut out = vec![(
        "interp".to_string(),
        Vm::new().engine(Engine::Interpreter).unwrap(),
    )];
    for (name, opts) in jit_option_sets() {
        out.push((name.to_string(), Vm::new().jit_options(opts).unwrap()));
    }
    out
}

#[test]
fn jit_options_with_the_interpreter_are_refused_in_either_order() {
    let hardened = JitOptions::hardened();
    let e = Vm::new()
        .engine(Engine::Interpreter)
        .unwrap()
        .jit_options(hardened.clone())
        .unwrap_err();
    assert_eq!(
        e,
        ConfigError::JitOptionsForInterpreter {
            options: "blinding, spectre".into()
        }
    );
    assert!(
        e.to_string().contains("interpreter compiles no code"),
        "{e}"
    );
    let dual = JitOptions {
        code_memory: CodeMemory::DualMapped,
        ..JitOptions::default()
    };
    let e = Vm::new()
        .jit_options(dual)
        .unwrap()
        .engine(Engine::Interpreter)
        .unwrap_err();
    assert_eq!(
        e,
        ConfigError::JitOptionsForInterpreter {
            options: "code_memory".into()
        }
    );
    // Even the default options: asking for JIT options and the interpreter is a mistake.
    let e = Vm::new()
        .engine(Engine::Interpreter)
        .unwrap()
        .jit_options(JitOptions::default())
        .unwrap_err();
    assert_eq!(
        e,
        ConfigError::JitOptionsForInterpreter {
            options: "default options".into()
        }
    );
    // Every option set of the engine matrix.
    for (name, opts) in jit_option_sets() {
        let r = Vm::new()
            .engine(Engine::Interpreter)
            .unwrap()
            .jit_options(opts);
        assert!(
            matches!(r, Err(ConfigError::JitOptionsForInterpreter { .. })),
            "{name}"
        );
    }
    // Without JIT options the interpreter takes any budget.
    for budget in [Budget::Default, Budget::Limit(3), Budget::Unlimited] {
        let vm = Vm::new()
            .engine(Engine::Interpreter)
            .unwrap()
            .budget(budget)
            .unwrap();
        assert_eq!(vm.config().budget(), budget);
    }
}

#[test]
fn unbounded_jit_options_need_the_unlimited_budget() {
    let unbounded = JitOptions {
        unbounded: true,
        ..JitOptions::default()
    };
    // The default budget, set or left.
    assert_eq!(
        Vm::new().jit_options(unbounded.clone()).unwrap_err(),
        ConfigError::UnboundedWithBudget {
            budget: Budget::Default
        }
    );
    // A limit, in either order.
    assert_eq!(
        Vm::new()
            .budget(Budget::Limit(10))
            .unwrap()
            .jit_options(unbounded.clone())
            .unwrap_err(),
        ConfigError::UnboundedWithBudget {
            budget: Budget::Limit(10)
        }
    );
    let vm = Vm::new()
        .budget(Budget::Unlimited)
        .unwrap()
        .jit_options(unbounded.clone())
        .unwrap();
    assert_eq!(
        vm.clone().budget(Some(10)).unwrap_err(),
        ConfigError::UnboundedWithBudget {
            budget: Budget::Limit(10)
        }
    );
    assert_eq!(
        vm.budget(Budget::Default).unwrap_err(),
        ConfigError::UnboundedWithBudget {
            budget: Budget::Default
        }
    );
}

#[test]
fn a_refusal_converts_into_the_facade_error() {
    fn build() -> Result<Vm, Error> {
        Ok(Vm::new()
            .engine(Engine::Interpreter)?
            .jit_options(JitOptions::hardened())?)
    }
    let e = build().unwrap_err();
    assert!(
        matches!(
            e,
            Error::Config(ConfigError::JitOptionsForInterpreter { .. })
        ),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "JIT options (blinding, spectre) with the interpreter engine: the interpreter compiles no \
         code to harden; choose Engine::Jit or leave the JIT options out"
    );
}

#[test]
fn the_defaults_are_the_jit_checked_and_the_default_budget() {
    let vm = Vm::new();
    let c = vm.config();
    assert_eq!(c.engine(), Engine::Jit);
    assert_eq!(c.mode(), Mode::Checked);
    assert_eq!(c.budget(), Budget::Default);
    assert_eq!(c.jit_options(), JitOptions::default());
    let obj = object(&vm, "mov r0, 7\nexit");
    assert_eq!(obj.config(), c);
    let mut p = obj.program("prog").unwrap().load().unwrap();
    assert_eq!(p.engine(), Engine::Jit);
    assert_eq!(p.run(&mut []).unwrap(), 7);
}

#[test]
fn load_prepares_for_every_engine_and_option_set() {
    // A loop the verifier bounds, a helper call and a memory access guarded at run time.
    let text = "mov r6, 0\nmov r0, 0\ntop:\nadd r0, 3\nadd r6, 1\njlt r6, 5, top\n\
                ldxb r1, [r1+0]\nadd r0, r1\nexit";
    for (name, vm) in vms() {
        let obj = object(&vm, text);
        let mut p = obj.program("prog").unwrap().load().unwrap();
        let want = if name == "interp" {
            Engine::Interpreter
        } else {
            Engine::Jit
        };
        assert_eq!(p.engine(), want, "{name}");
        assert_eq!(p.run(&mut [4]).unwrap(), 19, "{name}");
        assert_eq!(
            trap_of(p.run(&mut [])),
            (TrapKind::OutOfBounds, 5),
            "{name}"
        );
    }
}

#[test]
fn the_mode_is_the_vms() {
    // An access to the input the verifier cannot prove (no input size given).
    let text = "ldxdw r0, [r1+8]\nexit";
    let strict = Vm::new().mode(Mode::Strict);
    let e = object(&strict, text)
        .program("prog")
        .unwrap()
        .load()
        .unwrap_err();
    assert!(matches!(e, Error::Verify { .. }), "{e:?}");
    let mut p = object(&Vm::new(), text)
        .program("prog")
        .unwrap()
        .load()
        .unwrap();
    assert_eq!(p.run(&mut [0; 16]).unwrap(), 0);
}

#[test]
fn the_vms_limit_is_honoured_on_every_engine_and_option_set() {
    for (name, vm) in vms() {
        let vm = vm.budget(Budget::Limit(101)).unwrap();
        if vm.config().engine() == Engine::Jit {
            // The charge follows the limit, whatever the options said.
            assert!(vm.config().jit_options().budget, "{name}");
        }
        let obj = endless(&vm);
        let mut p = obj.program("prog").unwrap().load().unwrap();
        assert_eq!(p.budget(), Some(101), "{name}");
        assert_eq!(
            trap_of(p.run(&mut [])),
            (TrapKind::BudgetExhausted, 1),
            "{name}"
        );
        assert_eq!(p.budget(), Some(0), "{name}");
        // The separate steps start from the Vm's budget too, with the charge compiled in,
        // even when the options given to `compile_with` or `engine` leave it out.
        let v = obj.program("prog").unwrap().verify(Mode::Checked).unwrap();
        let mut steps = vec![
            v.clone().interpret(),
            v.clone().engine(Engine::Jit, false).unwrap(),
        ];
        if vm.config().engine() == Engine::Jit {
            steps.push(v.clone().compile().unwrap());
            steps.push(v.clone().compile_with(&JitOptions::hardened()).unwrap());
        }
        for mut p in steps {
            assert_eq!(p.budget(), Some(101), "{name} {:?}", p.engine());
            assert_eq!(
                trap_of(p.run(&mut [])),
                (TrapKind::BudgetExhausted, 1),
                "{name} {:?}",
                p.engine()
            );
        }
    }
}

#[test]
fn a_finite_loop_under_the_vms_limit_leaves_the_same_rest_on_every_engine() {
    let text = "mov r0, 0\ntop:\nadd r0, 1\njlt r0, 10, top\nexit";
    for (name, vm) in vms() {
        let vm = vm.budget(Some(100)).unwrap();
        let obj = object(&vm, text);
        let mut p = obj.program("prog").unwrap().load().unwrap();
        assert_eq!(p.run(&mut []).unwrap(), 10, "{name}");
        assert_eq!(p.budget(), Some(100 - 22), "{name}");
        // A clone keeps what is left.
        assert_eq!(p.clone().budget(), Some(100 - 22), "{name}");
    }
}

#[test]
fn the_default_and_unlimited_budgets_on_every_engine() {
    for (name, vm) in vms() {
        // The default: an endless loop stops at the default budget.
        let obj = endless(&vm);
        let mut p = obj.program("prog").unwrap().load().unwrap();
        assert_eq!(p.budget(), None, "{name}");
        assert_eq!(
            trap_of(p.run(&mut [])),
            (TrapKind::BudgetExhausted, 2),
            "{name}"
        );
        // Unlimited: the JIT's code leaves the charge out, and a loop the proof cannot bound
        // runs to its end.
        let vm = vm.budget(Budget::Unlimited).unwrap();
        if vm.config().engine() == Engine::Jit {
            assert!(vm.config().jit_options().unbounded, "{name}");
        }
        let obj = object(&vm, "mov r0, r2\ntop:\nadd r0, 1\njne r0, 1000, top\nexit");
        let mut p = obj.program("prog").unwrap().load().unwrap();
        assert_eq!(p.run(&mut []).unwrap(), 1000, "{name}");
    }
}
