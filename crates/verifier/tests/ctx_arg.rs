//! Helper arguments that must be the program's context (`ArgKind::Ctx`, the kernel's
//! `ARG_PTR_TO_CTX`; `ArgKind::CtxOrNull`, `ARG_PTR_TO_CTX_OR_NULL`): Strict mode takes r1 as
//! the program got it (or a copy, or a spill of it) at offset 0, and NULL where allowed;
//! Checked mode refuses what it knows is something else (the stack, a map value, the context
//! at another offset) and leaves a value it cannot tell to the helper.

use bpfx_bytecode::{Program, assemble};
use bpfx_verifier::{
    ArgKind, Config, ContextField, ContextKind, ContextLayout, FieldKind, HelperSig, HelperTable,
    MapDef, MapRef, Mode, RetKind, verify,
};

/// Helper 1 takes the context and a scalar; helper 2 the context or NULL.
fn cfg(mode: Mode) -> Config {
    let mut helpers = HelperTable::new();
    helpers.insert(
        1,
        HelperSig::new("set", vec![ArgKind::Ctx, ArgKind::Scalar], RetKind::Scalar),
    );
    helpers.insert(
        2,
        HelperSig::new("cookie", vec![ArgKind::CtxOrNull], RetKind::Scalar),
    );
    let mut c = Config {
        mode,
        mem_size: Some(16),
        context: ContextKind::Fields(ContextLayout::new(vec![
            ContextField::new(0, 8, FieldKind::Scalar, 0),
            ContextField::new(8, 8, FieldKind::Scalar, 8),
        ])),
        helpers,
        ..Config::default()
    };
    c.maps.insert(MapRef::Idx(0), MapDef::new(4, 8));
    c
}

fn check(text: &str, mode: Mode) -> Result<(), String> {
    let p = Program::decode(assemble(text).expect("assembles")).expect("decodes");
    verify(p, &cfg(mode)).map(|_| ()).map_err(|e| e.to_string())
}

const MODES: [Mode; 2] = [Mode::Checked, Mode::Strict];

#[test]
fn the_context_itself_is_taken_in_every_mode() {
    for mode in MODES {
        for text in [
            // r1 as given.
            "mov r2, 0\ncall 1\nexit",
            // A copy kept across a call, and a spill reloaded.
            "mov r6, r1\nmov r2, 0\ncall 1\nmov r1, r6\nmov r2, 0\ncall 1\nexit",
            "stxdw [r10-8], r1\nmov r1, 0\nldxdw r1, [r10-8]\nmov r2, 0\ncall 1\nexit",
            // NULL where the helper allows it.
            "mov r1, 0\ncall 2\nexit",
            "call 2\nexit",
        ] {
            check(text, mode).unwrap_or_else(|e| panic!("{mode:?} {text}: {e}"));
        }
    }
}

#[test]
fn what_is_known_to_be_something_else_is_refused_in_every_mode() {
    for mode in MODES {
        for text in [
            // The stack.
            "mov r1, r10\nadd r1, -8\nmov r2, 0\ncall 1\nexit",
            // The context moved off its start.
            "add r1, 8\nmov r2, 0\ncall 1\nexit",
            "add r1, 8\ncall 2\nexit",
            // A map handle.
            "lddw r1, map_idx(0)\nmov r2, 0\ncall 1\nexit",
            // NULL where the helper does not take it (a known scalar is refused in Strict mode
            // too, below).
            "mov r1, r10\ncall 2\nexit",
        ] {
            let e = check(text, mode).expect_err(text);
            assert!(
                e.contains("the context (r1 at entry)"),
                "{mode:?} {text}: {e}"
            );
        }
    }
}

#[test]
fn a_value_checked_mode_cannot_tell_is_left_to_the_helper() {
    // A scalar read from the context, and NULL for a helper that wants the context.
    for text in [
        "ldxdw r1, [r1+0]\nmov r2, 0\ncall 1\nexit",
        "mov r1, 0\nmov r2, 0\ncall 1\nexit",
    ] {
        check(text, Mode::Checked).unwrap_or_else(|e| panic!("{text}: {e}"));
        let e = check(text, Mode::Strict).expect_err(text);
        assert!(
            e.contains("the context (r1 at entry), at offset 0"),
            "{text}: {e}"
        );
    }
}
