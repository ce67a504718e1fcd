//! `bpf_override_return` (helper 58) from hand-written kprobes, on the interpreter and the JIT
//! with every option set, in Checked and Strict mode: the value the probed function would
//! return, seen by the host and by the program in `regs->ax`; refused to other types, and a
//! verifier error when its first argument is not the context (a helper error at the call
//! where Checked mode cannot tell).

mod common;

use bpfx::{Context, Mode, ProgramDef, PtRegs, Vm};
use common::{code, engines, prepare};

const MODES: [Mode; 2] = [Mode::Checked, Mode::Strict];

fn verified(text: &str, ctx: Context, mode: Mode) -> Result<bpfx::Verified, bpfx::Error> {
    let obj = Vm::new()
        .object(vec![ProgramDef::new("p", "test", code(text))], vec![])
        .unwrap();
    obj.program("p").unwrap().context(ctx).verify(mode)
}

#[test]
fn the_override_reaches_the_host_and_regs_ax() {
    // Fail the probed function with -ENOMEM when its first argument is 7; r0 is regs->ax
    // after the call, plus the helper's answer.
    let text = "mov r6, r1\n\
                ldxdw r2, [r1+112]\n\
                jne r2, 7, +5\n\
                mov r2, -12\n\
                call 58\n\
                ldxdw r1, [r6+80]\n\
                add r0, r1\n\
                exit\n\
                mov r0, 0\n\
                exit";
    for mode in MODES {
        for (engine, opts) in engines() {
            let mut p = prepare(verified(text, Context::Kprobe, mode).unwrap(), opts);
            let regs = PtRegs {
                ax: 99,
                ..PtRegs::with_args(&[7])
            };
            let r0 = p.run_kprobe(&regs).unwrap();
            assert_eq!(
                (r0, p.override_return()),
                (-12i64 as u64, Some(-12i64 as u64)),
                "{mode:?} {engine}"
            );
            // The next run starts without an override, and the host's ax is its own again.
            let r0 = p.run_kprobe(&PtRegs::with_args(&[8])).unwrap();
            assert_eq!((r0, p.override_return()), (0, None), "{mode:?} {engine}");
        }
    }
}

#[test]
fn only_kprobes_may_override_and_only_their_context() {
    for mode in MODES {
        let e = verified("mov r2, 0\ncall 58\nexit", Context::TRACEPOINT, mode)
            .map(|_| ())
            .unwrap_err();
        assert!(e.to_string().contains("override_return"), "{e}");
    }
    // A pointer to the stack where the context is due (the kernel's ARG_PTR_TO_CTX): refused
    // by the verifier in both modes.
    for mode in MODES {
        let e = verified(
            "mov r1, r10\nadd r1, -8\nmov r2, 0\ncall 58\nexit",
            Context::Kprobe,
            mode,
        )
        .map(|_| ())
        .unwrap_err();
        assert!(e.to_string().contains("the context (r1 at entry)"), "{e}");
    }
    // A value the verifier cannot tell (a register read from the context): Strict refuses it,
    // Checked leaves it to the helper, which fails the run.
    let text = "ldxdw r1, [r1+8]\nmov r2, 0\ncall 58\nexit";
    let e = verified(text, Context::Kprobe, Mode::Strict)
        .map(|_| ())
        .unwrap_err();
    assert!(e.to_string().contains("the context (r1 at entry)"), "{e}");
    for (engine, opts) in engines() {
        let mut p = prepare(
            verified(text, Context::Kprobe, Mode::Checked).unwrap(),
            opts,
        );
        let e = p.run_kprobe(&PtRegs::default()).unwrap_err();
        assert!(e.to_string().contains("not the context"), "{engine}: {e}");
        assert_eq!(p.override_return(), None, "{engine}");
    }
}
