//! Helpers that move or resize the packet (the kernel's `changes_pkt_data`): every packet
//! pointer the program holds is forgotten at the call, in registers and in spills of every
//! frame, with every proven range; Strict mode rejects any later use, Checked mode keeps the
//! accesses guarded.

use bpfx_bytecode::{Pc, Program, assemble};
use bpfx_verifier::{
    ArgKind, Config, ContextKind, ContextLayout, HelperSig, HelperTable, Mode, RegionKind, RetKind,
    VerifyErrorKind, verify,
};

/// Helper 44 moves the packet, helper 45 (same signature) does not.
fn cfg(mode: Mode) -> Config {
    let mut helpers = HelperTable::new();
    let sig = HelperSig::new(
        "adjust",
        vec![ArgKind::Anything, ArgKind::Scalar],
        RetKind::Scalar,
    );
    helpers.insert(44, sig.clone().changing_packet());
    helpers.insert(45, sig);
    Config {
        mode,
        mem_size: Some(16),
        context: ContextKind::Fields(ContextLayout::packet_struct(16, 0, 8)),
        helpers,
        ..Config::default()
    }
}

fn prog(text: &str) -> Program {
    Program::decode(assemble(text).expect("assembles")).expect("decodes")
}

/// Loads data into r2 (proven 14 bytes long against data_end), keeps the context in r6 and
/// spills r2 at r10-8; then `call ID` and `rest`.
fn after_call(id: u32, rest: &str) -> String {
    format!(
        "mov r6, r1\n\
         ldxdw r2, [r1+0]\n\
         ldxdw r3, [r1+8]\n\
         mov r4, r2\n\
         add r4, 14\n\
         jgt r4, r3, +{skip}\n\
         stxdw [r10-8], r2\n\
         mov r7, r2\n\
         mov r1, r6\n\
         mov r2, 0\n\
         call {id}\n\
         {rest}\n\
         mov r0, 2\n\
         exit",
        skip = 5 + rest.lines().count(),
    )
}

#[test]
fn pointers_kept_across_a_packet_changing_helper_are_rejected_in_strict_mode() {
    for (rest, pc) in [
        // A register copy of data.
        ("ldxb r0, [r7+0]", 11),
        // data spilled before the call: the spill is uninitialised stack after it.
        ("ldxdw r8, [r10-8]\nldxb r0, [r8+0]", 11),
        // The proven range is gone too: data loaded again is not yet checked.
        ("ldxdw r8, [r6+0]\nldxb r0, [r8+0]", 12),
    ] {
        let text = after_call(44, rest);
        let e = verify(prog(&text), &cfg(Mode::Strict)).unwrap_err();
        assert_eq!(e.pc, Pc(pc), "{rest}: {e}");
        assert!(
            matches!(
                e.kind,
                VerifyErrorKind::UninitRegister(_)
                    | VerifyErrorKind::UninitStack { .. }
                    | VerifyErrorKind::PacketUnproven(_)
            ),
            "{rest}: {e}"
        );
        // The same program around a helper that leaves the packet alone is proven.
        let v = verify(prog(&after_call(45, rest)), &cfg(Mode::Strict));
        if !rest.starts_with("ldxdw r8, [r6") {
            let v = v.unwrap_or_else(|e| panic!("{rest}: {e}"));
            let last = Pc(10 + rest.lines().count() as u32);
            let fact = v.access(last).unwrap();
            assert_eq!(
                (fact.region, fact.proven),
                (RegionKind::Packet, true),
                "{rest}"
            );
        }
        // Checked mode accepts it and guards the access.
        let v = verify(prog(&text), &cfg(Mode::Checked)).unwrap_or_else(|e| panic!("{e}"));
        let last = Pc(10 + rest.lines().count() as u32);
        assert!(!v.access(last).unwrap().proven, "{rest}");
    }
}

#[test]
fn pointers_loaded_again_and_checked_after_the_call_are_proven() {
    let text = after_call(
        44,
        "ldxdw r2, [r6+0]\n\
         ldxdw r3, [r6+8]\n\
         mov r4, r2\n\
         add r4, 1\n\
         jgt r4, r3, +1\n\
         ldxb r0, [r2+0]",
    );
    let v = verify(prog(&text), &cfg(Mode::Strict)).unwrap_or_else(|e| panic!("{e}"));
    let fact = v.access(Pc(16)).unwrap();
    assert_eq!((fact.region, fact.proven), (RegionKind::Packet, true));
}

#[test]
fn pointers_held_by_the_caller_are_forgotten_by_a_call_in_a_subprogram() {
    // The caller proves 14 bytes and keeps data in r7; the subprogram calls helper 44.
    let text = "mov r6, r1\n\
                ldxdw r7, [r1+0]\n\
                ldxdw r3, [r1+8]\n\
                mov r4, r7\n\
                add r4, 14\n\
                jgt r4, r3, +3\n\
                mov r1, r6\n\
                call local +3\n\
                ldxb r0, [r7+0]\n\
                mov r0, 2\n\
                exit\n\
                mov r2, 0\n\
                call 44\n\
                mov r0, 0\n\
                exit";
    let e = verify(prog(text), &cfg(Mode::Strict)).unwrap_err();
    assert_eq!(e.pc, Pc(8), "{e}");
    let fine = text.replace("call 44", "call 45");
    verify(prog(&fine), &cfg(Mode::Strict)).unwrap_or_else(|e| panic!("{e}"));
}

/// A context with `data` at 0, `data_end` at 8 and `data_meta` at 16 (as bpfx's XDP struct).
fn meta_cfg(mode: Mode) -> Config {
    use bpfx_verifier::{ContextField, FieldKind};
    Config {
        mem_size: Some(24),
        context: ContextKind::Fields(ContextLayout::new(vec![
            ContextField::new(0, 8, FieldKind::PacketStart, 0),
            ContextField::new(8, 8, FieldKind::PacketEnd, 8),
            ContextField::new(16, 8, FieldKind::PacketMeta, 16),
        ])),
        ..cfg(mode)
    }
}

#[test]
fn metadata_accesses_are_proven_below_data_and_forgotten_at_a_packet_changing_call() {
    // meta + 8 <= data proves 8 bytes of metadata: a 4-byte store at meta+4 is in bounds.
    let checked = |off: i32, cmp: &str| {
        format!(
            "mov r6, r1
             ldxdw r2, [r1+16]
             ldxdw r3, [r1+0]
             mov r4, r2
             add r4, 8
             {cmp} r4, r3, +1
             stw [r2{off:+}], 7
             mov r0, 2
             exit"
        )
    };
    let v =
        verify(prog(&checked(4, "jgt")), &meta_cfg(Mode::Strict)).unwrap_or_else(|e| panic!("{e}"));
    let fact = v.access(Pc(6)).unwrap();
    assert_eq!((fact.region, fact.proven), (RegionKind::Packet, true));
    // One byte past what was proven, before the start, or the wrong edge: rejected.
    for text in [checked(5, "jgt"), checked(-1, "jgt"), checked(0, "jle")] {
        let e = verify(prog(&text), &meta_cfg(Mode::Strict)).unwrap_err();
        assert_eq!(e.pc, Pc(6), "{text}: {e}");
        assert!(matches!(e.kind, VerifyErrorKind::PacketUnproven(_)), "{e}");
        // Checked mode keeps the guard.
        let v = verify(prog(&text), &meta_cfg(Mode::Checked)).unwrap();
        assert!(!v.access(Pc(6)).unwrap().proven);
    }
    // Compared against data_end, or a moved data pointer: nothing proven.
    for text in [
        checked(4, "jgt").replace("ldxdw r3, [r1+0]", "ldxdw r3, [r1+8]"),
        checked(4, "jgt").replace(
            "ldxdw r3, [r1+0]",
            "ldxdw r3, [r1+0]
add r3, 1",
        ),
    ] {
        verify(prog(&text), &meta_cfg(Mode::Strict)).unwrap_err();
    }
    // A packet-changing helper between the check and the store forgets the proof.
    let text = "mov r6, r1\n\
                ldxdw r2, [r1+16]\n\
                ldxdw r3, [r1+0]\n\
                mov r4, r2\n\
                add r4, 8\n\
                jgt r4, r3, +5\n\
                mov r1, r6\n\
                mov r2, 0\n\
                call 44\n\
                ldxdw r2, [r6+16]\n\
                stw [r2+0], 7\n\
                mov r0, 2\n\
                exit";
    let e = verify(prog(text), &meta_cfg(Mode::Strict)).unwrap_err();
    assert_eq!(e.pc, Pc(10), "{e}");
    let fine = text.replace("call 44", "call 45");
    verify(prog(&fine), &meta_cfg(Mode::Strict)).unwrap_or_else(|e| panic!("{e}"));
}
