//! Strict mode and loops bounded only by `may_goto` (`docs/verifier.md`, "Strict mode: loops
//! bounded by `may_goto`"): a loop each of whose iterations falls through a `may_goto` is
//! accepted whether its state repeats (pruned) or grows without a bound (widened), with the
//! accesses the widened state proves still proven; the same loop with a path round it that
//! avoids every `may_goto` fall-through is refused as before.

use bpfx_bytecode::{Pc, Program, assemble};
use bpfx_verifier::{Config, Mode, VerifyErrorKind, verify, verify_with_log};

fn prog(text: &str) -> Program {
    Program::decode(assemble(text).expect("assembles")).expect("decodes")
}

fn strict() -> Config {
    Config {
        mode: Mode::Strict,
        mem_size: Some(64),
        ..Config::default()
    }
}

#[test]
fn a_repeating_state_is_pruned_when_may_goto_bounds_the_loop() {
    // `while (can_loop) {}`: the state at the head never changes.
    let bounded = "top:\nmay_goto out\nja top\nout:\nmov r0, 0\nexit";
    let (v, log) = verify_with_log(prog(bounded), &strict());
    v.unwrap();
    assert!(
        log.to_string().contains("pruned (may_goto bounds it)"),
        "{log}"
    );
    // Without the may_goto the same loop never ends.
    let e = verify(prog("top:\nja top"), &strict()).unwrap_err();
    assert!(matches!(e.kind, VerifyErrorKind::Loop(Pc(0))), "{e}");
}

#[test]
fn a_growing_counter_is_widened_and_accesses_it_indexes_stay_proven() {
    // r6 counts iterations without a bound; each iteration reads the input at r6 & 63.
    let text = "mov r6, 0\nmov r0, 0\ntop:\nmay_goto out\nmov r2, r6\nand r2, 63\nmov r3, r1\n\
                add r3, r2\nldxb r4, [r3+0]\nadd r0, r4\nadd r6, 1\nja top\nout:\nexit";
    let (v, log) = verify_with_log(prog(text), &strict());
    let v = v.unwrap();
    assert!(log.to_string().contains("reached its fixpoint"), "{log}");
    let load = v
        .program()
        .iter()
        .find(|(_, op)| op.to_string().starts_with("ldxb"))
        .map(|(pc, _)| pc)
        .unwrap();
    assert!(v.access(load).unwrap().proven);
    // Reading at r6 & 127 is past the 64 bytes: refused once the counter is widened.
    let e = verify(prog(&text.replace("and r2, 63", "and r2, 127")), &strict()).unwrap_err();
    assert!(e.to_string().contains("ldxb"), "{e}");
}

#[test]
fn a_path_round_the_loop_avoiding_every_may_goto_is_not_bounded_by_it() {
    // When r7 is 0 the iteration skips the may_goto: nothing bounds that path.
    let text = "mov r6, 0\nldxb r7, [r1+0]\ntop:\njeq r7, 0, skip\nmay_goto out\nskip:\n\
                add r6, 1\nja top\nout:\nmov r0, r6\nexit";
    let cfg = Config {
        insn_budget: 20_000,
        ..strict()
    };
    let e = verify(prog(text), &cfg).unwrap_err();
    assert!(
        matches!(e.kind, VerifyErrorKind::LoopTooComplex { .. }),
        "{e}"
    );
    // A may_goto on both paths bounds it.
    let both = text.replace(
        "jeq r7, 0, skip\nmay_goto out\nskip:",
        "may_goto out\njeq r7, 0, skip\nskip:",
    );
    verify(prog(&both), &cfg).unwrap();
    // A may_goto whose jump (taken when the counter is 0) stays in the loop does not.
    let stays = "mov r6, 0\ntop:\nmay_goto top\nadd r6, 1\nja top";
    let e = verify(prog(stays), &cfg).unwrap_err();
    assert!(
        matches!(e.kind, VerifyErrorKind::LoopTooComplex { .. }),
        "{e}"
    );
}

#[test]
fn may_goto_loops_entered_one_after_another_share_the_budget() {
    // An outer loop counted to 64 enters, in each iteration, a may_goto loop whose counter
    // grows without a bound: each instance explores exactly only within its share of what
    // is left of the budget, halved for each instance after the first.
    let text = "mov r8, 0\nmov r0, 0\nouter:\nmov r6, 0\ninner:\nmay_goto next\nmov r2, r6\n\
                and r2, 63\nmov r3, r1\nadd r3, r2\nldxb r4, [r3+0]\nadd r0, r4\nadd r6, 1\n\
                ja inner\nnext:\nadd r8, 1\njlt r8, 64, outer\nexit";
    let v = verify(prog(text), &strict()).unwrap();
    // The first instance's share is a sixteenth of the budget, the others' halve.
    assert!(v.insns_processed() < 200_000, "{}", v.insns_processed());
}
