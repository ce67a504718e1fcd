//! Socket pointers (`RetKind::SockOrNull`, `ArgKind::Sock`, `ArgKind::ReleaseSock`,
//! `FieldKind::SockCommonOrNull`, `FieldKind::Sock`), in both modes: the kernel's field rules
//! for `bpf_sock`, `bpf_sock_common` and `bpf_tcp_sock`; null checks of a lookup's result and
//! of its copies; and its reference, which every path must release exactly once (an unreleased
//! reference at exit, a release of a pointer that is no reference, a use after release:
//! refused, naming the `call` that acquired it). Strict mode proves the field loads; Checked mode keeps their
//! guards.

use bpfx_bytecode::{Program, assemble};
use bpfx_verifier::{
    ArgKind, Config, ContextField, ContextKind, ContextLayout, FieldKind, HelperSig, HelperTable,
    MapDef, MapRef, MapTable, Mode, RegionKind, RetKind, SockKind, SockRet, verify,
};

const MODES: [Mode; 2] = [Mode::Strict, Mode::Checked];

fn prog(text: &str) -> Program {
    Program::decode(assemble(text).expect("assembles")).expect("decodes")
}

/// The socket helpers with the kernel's ids and signatures, a context of 8 bytes whose
/// field at 0 is the packet's socket (`FieldKind::SockCommonOrNull`), and a scalar at 8.
fn config(mode: Mode) -> Config {
    let mut helpers = HelperTable::new();
    let lookup = |name: &str, kind| {
        HelperSig::new(
            name,
            vec![
                ArgKind::Ctx,
                ArgKind::PtrToReadOnlyMem { size_arg: Some(2) },
                ArgKind::Scalar,
                ArgKind::Scalar,
                ArgKind::Scalar,
            ],
            RetKind::SockOrNull {
                kind,
                how: SockRet::Acquire,
            },
        )
    };
    helpers.insert(84, lookup("sk_lookup_tcp", SockKind::Full));
    helpers.insert(99, lookup("skc_lookup_tcp", SockKind::Common));
    helpers.insert(
        86,
        HelperSig::new("sk_release", vec![ArgKind::ReleaseSock], RetKind::Scalar),
    );
    let cast = |name: &str, kind, how| {
        HelperSig::new(name, vec![ArgKind::Sock], RetKind::SockOrNull { kind, how })
    };
    helpers.insert(95, cast("sk_fullsock", SockKind::Full, SockRet::Cast));
    helpers.insert(96, cast("tcp_sock", SockKind::Tcp, SockRet::Cast));
    helpers.insert(
        98,
        cast("get_listener_sock", SockKind::Full, SockRet::Plain),
    );
    let layout = ContextLayout::new(vec![
        ContextField::new(0, 8, FieldKind::SockCommonOrNull, 0),
        ContextField::new(8, 4, FieldKind::Scalar, 8),
    ]);
    helpers.insert(
        12,
        HelperSig::new(
            "tail_call",
            vec![ArgKind::Ctx, ArgKind::ProgArray, ArgKind::Scalar],
            RetKind::Scalar,
        ),
    );
    let mut maps = MapTable::new();
    maps.insert(MapRef::Idx(0), MapDef::new(4, 4).with_prog_array(true));
    Config {
        mode,
        mem_size: Some(16),
        helpers,
        maps,
        context: ContextKind::Fields(layout),
        ..Config::default()
    }
}

/// A tuple of 12 bytes on the stack, zeroed, then `sk_lookup_tcp` (or `helper`): the call is
/// at pc 8, r0 its result, the context kept in r6.
fn lookup_with(helper: u32, rest: &str) -> Program {
    prog(&format!(
        "mov r6, r1
         stdw [r10-16], 0
         stw [r10-8], 0
         mov r2, r10
         add r2, -16
         mov r3, 12
         mov r4, -1
         mov r5, 0
         call {helper}
         {rest}"
    ))
}

fn lookup(rest: &str) -> Program {
    lookup_with(84, rest)
}

fn refused(p: &Program, mode: Mode) -> String {
    verify(p.clone(), &config(mode))
        .map(|_| ())
        .expect_err("refused")
        .to_string()
}

/// Lookup, null check, a load of `state`, release: the well-behaved program.
const GOOD: &str = "jeq r0, 0, +4
     ldxw r7, [r0+72]
     mov r1, r0
     call 86
     mov r0, r7
     exit";

#[test]
fn a_checked_lookup_read_and_released_verifies_in_both_modes() {
    for mode in MODES {
        let v = verify(lookup(GOOD), &config(mode)).unwrap_or_else(|e| panic!("{mode:?}: {e}"));
        let f = v
            .access(bpfx_bytecode::Pc(10))
            .expect("the field load's fact");
        assert_eq!(f.region, RegionKind::MapValue);
        // Strict mode proves it; Checked keeps the guard.
        assert_eq!(f.proven, mode == Mode::Strict, "{mode:?}");
    }
}

#[test]
fn an_unreleased_reference_is_refused_naming_the_lookup() {
    // Released on the path that read `state` only when it is 1.
    let p = lookup(
        "jeq r0, 0, +5
         ldxw r7, [r0+72]
         jne r7, 1, +2
         mov r1, r0
         call 86
         mov r0, 0
         exit",
    );
    for mode in MODES {
        let e = refused(&p, mode);
        assert!(
            e.contains("socket reference acquired at insn #8 is not released"),
            "{mode:?}: {e}"
        );
    }
    // Never released at all.
    let p = lookup("mov r0, 0\nexit");
    for mode in MODES {
        assert!(
            refused(&p, mode).contains("acquired at insn #8"),
            "{mode:?}"
        );
    }
}

#[test]
fn a_dereference_or_release_before_the_null_check_is_refused() {
    for rest in [
        "ldxw r7, [r0+72]\nmov r1, r0\ncall 86\nmov r0, 0\nexit",
        "mov r1, r0\ncall 86\nmov r0, 0\nexit",
    ] {
        for mode in MODES {
            let e = refused(&lookup(rest), mode);
            assert!(e.contains("may be null"), "{mode:?} {rest}: {e}");
        }
    }
}

#[test]
fn a_null_check_of_a_copy_decides_the_original_and_its_spill() {
    let p = lookup(
        "stxdw [r10-24], r0
         mov r8, r0
         jeq r8, 0, +5
         ldxw r7, [r0+4]
         ldxdw r1, [r10-24]
         call 86
         mov r0, r7
         exit
         mov r0, 0
         exit",
    );
    for mode in MODES {
        verify(p.clone(), &config(mode)).unwrap_or_else(|e| panic!("{mode:?}: {e}"));
    }
}

#[test]
fn a_use_or_a_second_release_after_the_release_is_refused_naming_the_lookup() {
    for rest in [
        // A field read after the release.
        "jeq r0, 0, +5\nmov r7, r0\nmov r1, r0\ncall 86\nldxw r0, [r7+4]\nexit\nexit",
        // Released twice, through a copy.
        "jeq r0, 0, +6\nmov r7, r0\nmov r1, r0\ncall 86\nmov r1, r7\ncall 86\nexit\nexit",
    ] {
        for mode in MODES {
            let e = refused(&lookup(rest), mode);
            assert!(
                e.contains(
                    "r7 is a socket whose reference, acquired at insn #8, is already released"
                ),
                "{mode:?} {rest}: {e}"
            );
        }
    }
}

#[test]
fn only_a_reference_may_be_released() {
    // The packet's socket is no reference; neither is a listener.
    let from_ctx = prog(
        "ldxdw r1, [r1+0]
         jeq r1, 0, +1
         call 86
         mov r0, 0
         exit",
    );
    let listener = lookup(
        "jeq r0, 0, +10
         mov r6, r0
         mov r1, r0
         call 98
         jeq r0, 0, +3
         mov r1, r0
         call 86
         mov r0, 0
         mov r1, r6
         call 86
         exit
         exit",
    );
    for mode in MODES {
        for p in [&from_ctx, &listener] {
            let e = refused(p, mode);
            assert!(e.contains("must be a socket reference"), "{mode:?}: {e}");
        }
    }
}

#[test]
fn a_cast_stands_for_the_lookups_reference() {
    // skc_lookup_tcp, sk_fullsock on it: releasing the full socket releases the lookup's
    // reference; on the cast's null edge the lookup's reference is still to release.
    let p = lookup_with(
        99,
        "jeq r0, 0, +11
         mov r7, r0
         mov r1, r0
         call 95
         jeq r0, 0, +4
         ldxw r8, [r0+16]
         mov r1, r0
         call 86
         exit
         mov r1, r7
         call 86
         exit
         exit",
    );
    for mode in MODES {
        verify(p.clone(), &config(mode)).unwrap_or_else(|e| panic!("{mode:?}: {e}"));
    }
    // After releasing the full socket, the sock_common copy is released too.
    let p = lookup_with(
        99,
        "jeq r0, 0, +11
         mov r7, r0
         mov r1, r0
         call 95
         jeq r0, 0, +4
         mov r1, r0
         call 86
         ldxw r0, [r7+4]
         exit
         mov r1, r7
         call 86
         exit
         exit",
    );
    for mode in MODES {
        assert!(
            refused(&p, mode).contains("r7 is a socket whose reference"),
            "{mode:?}"
        );
    }
}

#[test]
fn field_rules_of_each_socket_type() {
    // Through the lookup's bpf_sock: (access, allowed).
    let full = [
        ("ldxw r7, [r0+0]", true),
        ("ldxh r7, [r0+4]", true),
        ("ldxb r7, [r0+49]", true),
        ("ldxh r7, [r0+48]", true),
        ("ldxw r7, [r0+48]", true),
        ("ldxh r7, [r0+50]", false),
        ("ldxdw r7, [r0+56]", false),
        ("ldxw r7, [r0+80]", false),
        ("ldxb r7, [r0+16]", false),
        ("stw [r0+16], 1", false),
        ("ldxw r7, [r0-4]", false),
    ];
    for (access, ok) in full {
        let p = lookup(&format!(
            "jeq r0, 0, +4\n{access}\nmov r1, r0\ncall 86\nmov r0, 0\nexit"
        ));
        for mode in MODES {
            let r = verify(p.clone(), &config(mode));
            assert_eq!(r.is_ok(), ok, "{access} {mode:?}: {r:?}");
            if let Err(e) = r {
                assert!(
                    e.to_string().contains("invalid sock access"),
                    "{access}: {e}"
                );
            }
        }
    }
    // Through the packet's sock_common: type .. priority are refused.
    for (access, ok) in [("ldxw r0, [r1+4]", true), ("ldxw r0, [r1+8]", false)] {
        let p = prog(&format!(
            "ldxdw r1, [r1+0]\njeq r1, 0, +2\n{access}\nexit\nmov r0, 0\nexit"
        ));
        for mode in MODES {
            let r = verify(p.clone(), &config(mode));
            assert_eq!(r.is_ok(), ok, "{access} {mode:?}: {r:?}");
        }
    }
    // The context field itself: 8 bytes whole, read-only.
    for access in ["ldxw r0, [r1+0]", "stdw [r1+0], 0"] {
        let p = prog(&format!("{access}\nmov r0, 0\nexit"));
        for mode in MODES {
            assert!(
                verify(p.clone(), &config(mode)).is_err(),
                "{access} {mode:?}"
            );
        }
    }
    // Through tcp_sock: the u64 counters whole, the rest as u32.
    for (access, ok) in [
        ("ldxdw r8, [r0+80]", true),
        ("ldxw r8, [r0+108]", true),
        ("ldxw r8, [r0+80]", false),
        ("ldxh r8, [r0+0]", false),
    ] {
        let p = lookup(&format!(
            "jeq r0, 0, +8
             mov r7, r0
             mov r1, r0
             call 96
             jeq r0, 0, +1
             {access}
             mov r1, r7
             call 86
             mov r0, 0
             exit"
        ));
        for mode in MODES {
            let r = verify(p.clone(), &config(mode));
            assert_eq!(r.is_ok(), ok, "{access} {mode:?}: {r:?}");
        }
    }
}

#[test]
fn arithmetic_on_a_socket_pointer_is_refused_in_strict_mode() {
    let p = lookup("jeq r0, 0, +5\nadd r0, 4\nmov r1, r0\ncall 86\nmov r0, 0\nexit\nexit");
    assert!(refused(&p, Mode::Strict).contains("socket pointer"));
    // Checked mode degrades the pointer to a number, which is no reference to release.
    assert!(refused(&p, Mode::Checked).contains("must be a socket reference"));
}

#[test]
fn lookups_in_a_loop_released_each_time_verify_in_both_modes() {
    let p = prog(
        "mov r6, r1
         mov r9, 0
         stdw [r10-16], 0
         stw [r10-8], 0
         mov r1, r6
         mov r2, r10
         add r2, -16
         mov r3, 12
         mov r4, -1
         mov r5, 0
         call 84
         jeq r0, 0, +2
         mov r1, r0
         call 86
         add r9, 1
         jlt r9, 4, -12
         mov r0, 0
         exit",
    );
    for mode in MODES {
        verify(p.clone(), &config(mode)).unwrap_or_else(|e| panic!("{mode:?}: {e}"));
    }
    // The same loop without the release leaks one reference per iteration.
    let p = prog(
        "mov r6, r1
         mov r9, 0
         stdw [r10-16], 0
         stw [r10-8], 0
         mov r1, r6
         mov r2, r10
         add r2, -16
         mov r3, 12
         mov r4, -1
         mov r5, 0
         call 84
         add r9, 1
         jlt r9, 4, -9
         mov r0, 0
         exit",
    );
    for mode in MODES {
        assert!(
            refused(&p, mode).contains("acquired at insn #10"),
            "{mode:?}"
        );
    }
}

#[test]
fn a_tail_call_holding_a_reference_is_refused() {
    let p = lookup(
        "jeq r0, 0, +8
         mov r7, r0
         mov r1, r6
         lddw r2, map_idx(0)
         mov r3, 0
         call 12
         mov r1, r7
         call 86
         exit",
    );
    for mode in MODES {
        let e = refused(&p, mode);
        assert!(
            e.contains("insn #15") && e.contains("acquired at insn #8"),
            "{mode:?}: {e}"
        );
    }
}

#[test]
fn a_subprogram_may_release_the_reference_it_is_given() {
    // The lookup's result, null-checked, passed in r1 to a function that reads and releases it.
    let p = lookup(
        "jeq r0, 0, +2
         mov r1, r0
         call local f
         exit
         f:
         ldxw r6, [r1+4]
         call 86
         mov r0, r6
         exit",
    );
    for mode in MODES {
        verify(p.clone(), &config(mode)).unwrap_or_else(|e| panic!("{mode:?}: {e}"));
    }
    // A function that only reads it leaves the reference to its caller, which leaks it.
    let p = lookup(
        "jeq r0, 0, +2
         mov r1, r0
         call local f
         exit
         f:
         ldxw r0, [r1+4]
         exit",
    );
    for mode in MODES {
        assert!(
            refused(&p, mode).contains("acquired at insn #8"),
            "{mode:?}"
        );
    }
}

/// [`config`] with the context field at 0 a full socket that is never null
/// (`FieldKind::Sock`, the kernel's `PTR_TO_SOCKET` of `sk_msg_md.sk`).
fn full_sock_config(mode: Mode) -> Config {
    let mut cfg = config(mode);
    cfg.context = ContextKind::Fields(ContextLayout::new(vec![
        ContextField::new(0, 8, FieldKind::Sock, 0),
        ContextField::new(8, 4, FieldKind::Scalar, 8),
    ]));
    cfg
}

#[test]
fn a_never_null_socket_field_reads_without_a_null_check_and_is_no_reference() {
    for mode in MODES {
        // Every bpf_sock field of a full socket, without a null check: accepted; the same
        // reads of the packet's sock_common (which may be null) are refused.
        for access in ["ldxw r0, [r1+4]", "ldxw r0, [r1+72]", "ldxw r0, [r1+16]"] {
            let p = prog(&format!("ldxdw r1, [r1+0]\n{access}\nexit"));
            let r = verify(p.clone(), &full_sock_config(mode));
            assert!(r.is_ok(), "{access} {mode:?}: {r:?}");
            assert!(verify(p, &config(mode)).is_err(), "{access} {mode:?}");
        }
        // Its fields are read-only, the field itself is read whole and never written, and
        // the pointer is no reference: a release is refused.
        for text in [
            "ldxdw r1, [r1+0]\nstw [r1+16], 1\nmov r0, 0\nexit",
            "ldxdw r1, [r1+0]\nldxw r0, [r1+80]\nexit",
            "ldxw r0, [r1+0]\nmov r0, 0\nexit",
            "stdw [r1+0], 0\nmov r0, 0\nexit",
        ] {
            let r = verify(prog(text), &full_sock_config(mode));
            assert!(r.is_err(), "{text} {mode:?}");
        }
        let release = prog("ldxdw r1, [r1+0]\ncall 86\nmov r0, 0\nexit");
        let e = verify(release, &full_sock_config(mode))
            .map(|_| ())
            .expect_err("refused")
            .to_string();
        assert!(e.contains("must be a socket reference"), "{mode:?}: {e}");
    }
}
