//! An out-of-bounds load, store or atomic says where and what it tried to touch: the address,
//! the size, read or write, and every region it was checked against (`Env::fault`), the same
//! on every engine of the matrix, unverified and through the verified JIT's entry. `check`
//! compares the fault across engines (it is part of `Outcome`); these tests pin what it holds.

use bpfx_bytecode::{Program, assemble};
use bpfx_exec::{AccessFault, Helpers, RegionKind, SharedMem, TrapKind};
use bpfx_testkit::Case;
use bpfx_testkit::check::{check_shared, check_with};
use bpfx_testkit::engine::verified_engines;
use bpfx_verifier::{Config, Mode, verify};
use std::sync::Arc;

fn program(text: &str) -> Program {
    Program::decode(assemble(text).expect("assembles")).expect("decodes")
}

fn case(text: &str, input: Vec<u8>) -> Case {
    Case {
        prog: program(text),
        input,
        budget: None,
        helpers: Helpers::new(),
    }
}

/// Runs `case` on every engine with `shared` and returns the trap's pc and the fault, which
/// every engine must agree on.
fn fault_of(case: &Case, shared: &[Arc<SharedMem>]) -> (u32, AccessFault) {
    let out = check_shared(case, shared).unwrap_or_else(|m| panic!("{m}"));
    let trap = out.result.expect_err("the access traps");
    assert_eq!(trap.kind, TrapKind::OutOfBounds);
    let fault = out
        .fault
        .expect("an out-of-bounds access records its fault");
    (trap.pc.0, fault)
}

/// The region of `kind` in `fault`.
fn region(fault: &AccessFault, kind: RegionKind) -> (u64, u64) {
    let r = fault
        .regions
        .iter()
        .find(|r| r.kind == kind)
        .unwrap_or_else(|| panic!("no {kind:?} region in {fault}"));
    (r.start, r.len)
}

#[test]
fn a_load_past_the_input_names_the_address_size_and_regions() {
    let c = case("ldxw r0, [r1+62]\nexit", vec![0; 64]);
    let (pc, f) = fault_of(&c, &[]);
    assert_eq!(pc, 0);
    let (input, len) = region(&f, RegionKind::Input);
    assert_eq!(len, 64);
    assert_eq!((f.addr, f.size, f.write), (input + 62, 4, false));
    let (stack, stack_len) = region(&f, RegionKind::Stack);
    assert_eq!(stack_len, 512, "the outermost frame only");
    assert_eq!(f.regions.len(), 2);
    assert_eq!(
        f.to_string(),
        format!(
            "read of 4 bytes at {:#x}, outside input [{input:#x},+64), stack [{stack:#x},+512)",
            input + 62
        )
    );
}

#[test]
fn a_store_above_the_stack_is_a_write_and_an_empty_input_is_not_listed() {
    let c = case("stdw [r10+8], 1\nmov r0, 0\nexit", Vec::new());
    let (pc, f) = fault_of(&c, &[]);
    assert_eq!(pc, 0);
    let (stack, len) = region(&f, RegionKind::Stack);
    assert_eq!((f.addr, f.size, f.write), (stack + len + 8, 8, true));
    assert_eq!(f.regions.len(), 1, "{f}");
    assert!(f.to_string().starts_with("write of 8 bytes at "), "{f}");
}

#[test]
fn a_callee_sees_its_own_frame_and_its_callers() {
    // The callee reads 1100 bytes below its frame pointer: past both active frames.
    let c = case(
        "call local f\nmov r0, 0\nexit\nf:\nldxb r0, [r10-1100]\nexit",
        vec![1, 2],
    );
    let (pc, f) = fault_of(&c, &[]);
    assert_eq!(pc, 3);
    let (stack, len) = region(&f, RegionKind::Stack);
    assert_eq!(len, 1024, "two active frames: {f}");
    assert_eq!((f.addr, f.size), (stack + 1024 - 512 - 1100, 1));
}

#[test]
fn a_store_into_read_only_shared_memory_lists_every_block() {
    let rw = SharedMem::new(16, true);
    let ro = SharedMem::new(8, false);
    let shared = [rw.clone(), ro.clone()];
    let text = format!(
        "lddw r2, {:#x}\nstxw [r2+4], r1\nmov r0, 0\nexit",
        ro.addr()
    );
    let (pc, f) = fault_of(&case(&text, vec![0; 4]), &shared);
    assert_eq!(pc, 2, "the lddw takes two slots");
    assert_eq!((f.addr, f.size, f.write), (ro.addr() + 4, 4, true));
    assert_eq!(
        region(&f, RegionKind::Shared { writable: false }),
        (ro.addr(), 8)
    );
    assert_eq!(
        region(&f, RegionKind::Shared { writable: true }),
        (rw.addr(), 16)
    );
    let text = f.to_string();
    assert!(
        text.ends_with(&format!(
            "shared [{:#x},+16), shared [{:#x},+8) read-only",
            rw.addr(),
            ro.addr()
        )),
        "{text}"
    );
}

#[test]
fn an_atomic_past_the_input_is_a_write_of_its_width() {
    let c = case(
        "mov r2, 1\nlock add32 [r1+6], r2\nmov r0, 0\nexit",
        vec![0; 8],
    );
    let (pc, f) = fault_of(&c, &[]);
    assert_eq!(pc, 1);
    let (input, _) = region(&f, RegionKind::Input);
    assert_eq!((f.addr, f.size, f.write), (input + 6, 4, true));
}

#[test]
fn a_helper_argument_out_of_bounds_is_not_an_access_fault() {
    // A helper whose memory argument the dispatcher refuses: its message goes to
    // `helper_error`, and there is no access fault.
    let mut helpers = Helpers::new();
    let arg = bpfx_exec::MemArg {
        ptr: 0,
        len: bpfx_exec::ArgLen::Arg(1),
        write: false,
    };
    helpers.register_checked(7, vec![arg], |_, _| Ok(0));
    let c = Case {
        helpers,
        ..case("mov r1, 8\nmov r2, 16\ncall 7\nexit", Vec::new())
    };
    let out = check_shared(&c, &[]).unwrap_or_else(|m| panic!("{m}"));
    assert_eq!(out.result.map_err(|t| t.kind), Err(TrapKind::OutOfBounds));
    assert_eq!(out.fault, None);
}

/// Through the verified JIT's entry: an access the verifier could not prove keeps its guard,
/// whose failure records the same fault as the interpreter's.
#[test]
fn a_guarded_access_of_a_verified_program_records_the_same_fault() {
    // r3 = the first input byte (100): r1 + r3 is past the 16-byte input.
    let text = "ldxb r3, [r1+0]\nadd r1, r3\nldxh r0, [r1+0]\nexit";
    let mut input = vec![0; 16];
    input[0] = 100;
    let v = verify(program(text), &Config::conformance(Mode::Checked, 16)).expect("verifies");
    let c = case(text, input);
    let out = check_with(&c, &verified_engines(v)).unwrap_or_else(|m| panic!("{m}"));
    let trap = out.result.expect_err("traps");
    assert_eq!((trap.kind, trap.pc.0), (TrapKind::OutOfBounds, 2));
    let f = out.fault.expect("a fault");
    let (input, len) = region(&f, RegionKind::Input);
    assert_eq!(len, 16);
    assert_eq!((f.addr, f.size, f.write), (input + 100, 2, false));
}
