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
