//! The fuzz properties: one function per cargo-fuzz target of `fuzz/`, each panicking exactly
//! when its property fails (a panic is what libFuzzer detects).
//!
//! The targets in `fuzz/fuzz_targets/` are shims that call these functions, and
//! `tests/fuzz_replay.rs` calls them on the committed seeds, on every regression file and on
//! generated inputs, so every property also runs in `cargo test` on stable.
//!
//! | target | input | property |
//! |---|---|---|
//! | [`decode`] | bytes | decoding never panics; what decodes encodes back to the same slots and survives a disassembly round trip |
//! | [`asm`] | text | assembling never panics; what assembles disassembles and reassembles to the same slots |
//! | [`diff_raw`] | [raw case](raw_case) | every engine agrees with the interpreter on result, trap, memory and budget |
//! | [`diff_structured`] | [`structured`] bytes | the same, on mostly-valid generated programs |
//! | [`diff_loops`] | [`loop_gen`](crate::loop_gen) choices | the same, and through the verified JIT, on counted loops over the input that run without a budget (the loops the JIT versions) |
//! | [`verify`] | [raw case](raw_case) | the verifier never panics; Strict acceptance implies Checked acceptance; an accepted program meets only the traps its mode leaves to run time |
//! | [`elf`] | ELF object | loading never panics; a loaded object's programs round-trip through text, its map references name its maps, inside their values |

use crate::check::{Case, check};
use crate::structured;
use bpfx_bytecode::{
    Cfg, INSN_SIZE, Imm64, Insn, Op, Program, assemble, decode_one, disassemble,
    disassemble_with_pcs, encode,
};
use bpfx_exec::{Env, Helpers, TrapKind};
use bpfx_verifier::{Config, Mode, VerifyErrorKind};

/// A fuzz property.
pub type Target = fn(&[u8]);

/// Every target by name: the name of its file in `fuzz/fuzz_targets/` and of its seed and
/// regression directories.
pub const TARGETS: [(&str, Target); 7] = [
    ("decode", decode),
    ("asm", asm),
    ("diff_raw", diff_raw),
    ("diff_structured", diff_structured),
    ("diff_loops", diff_loops),
    ("verify", verify),
    ("elf", elf),
];

/// The target called `name`.
pub fn target(name: &str) -> Option<Target> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

/// Budget unit of a raw case: its budget is `(byte 1 & 0x7f) * RAW_BUDGET_STEP` instructions.
pub const RAW_BUDGET_STEP: u64 = 32;

/// Flag of byte 1 of a raw case: run without a budget when the program cannot loop.
pub const RAW_NO_BUDGET: u8 = 0x80;

/// Instructions a verified program may run in the `verify` target before the budget stops it.
pub const VERIFY_RUN_BUDGET: u64 = 100_000;

/// Decodes fuzzer bytes as a runnable case, for [`diff_raw`] and [`verify`]:
///
/// ```text
/// byte 0        n, the input length (fewer if the data ends first)
/// byte 1        budget: (byte & 0x7f) * RAW_BUDGET_STEP instructions; with RAW_NO_BUDGET set
///               and a program that cannot loop (no backward jump, no local call), none
/// bytes 2..2+n  the input memory
/// the rest      the program, cut to a whole number of 8-byte slots
/// ```
///
/// `None` when the program does not decode: those bytes are [`decode`]'s business.
pub fn raw_case(data: &[u8]) -> Option<Case> {
    let (&len, rest) = data.split_first()?;
    let (&flags, rest) = rest.split_first()?;
    let (input, code) = rest.split_at(usize::from(len).min(rest.len()));
    let code = &code[..code.len() - code.len() % INSN_SIZE];
    let prog = Program::from_bytes(code).ok()?;
    let budget = if flags & RAW_NO_BUDGET != 0 && cannot_loop(&prog) {
        None
    } else {
        Some(u64::from(flags & !RAW_NO_BUDGET) * RAW_BUDGET_STEP)
    };
    Some(Case {
        prog,
        input: input.to_vec(),
        budget,
        helpers: Helpers::conformance(),
    })
}

/// The bytes [`raw_case`] reads back as this input, budget byte and program.
pub fn raw_case_bytes(input: &[u8], flags: u8, prog: &[u8]) -> Vec<u8> {
    let len = u8::try_from(input.len()).expect("a raw case's input is at most 255 bytes");
    let mut out = vec![len, flags];
    out.extend_from_slice(input);
    out.extend_from_slice(prog);
    out
}

/// Whether every run of `prog` ends within its length in instructions: every jump goes forward
/// and nothing calls a local function (a `callx` only reaches helpers).
fn cannot_loop(prog: &Program) -> bool {
    let cfg = Cfg::new(prog);
    cfg.back_edges().is_empty() && cfg.calls().is_empty()
}

/// Bytes as slots, ignoring a trailing partial slot.
fn slots(bytes: &[u8]) -> Vec<Insn> {
    bytes
        .chunks_exact(INSN_SIZE)
        .map(|c| Insn::from_bytes(c.try_into().expect("chunks_exact gives whole slots")))
        .collect()
}

/// `decode`: decoding arbitrary bytes never panics; every instruction that decodes, at any
/// slot, encodes back to exactly the slots it came from; a program that decodes disassembles to
/// text that reassembles to its bytes.
pub fn decode(data: &[u8]) {
    let raw = slots(data);
    for at in 0..raw.len() {
        match decode_one(&raw[at..]) {
            Ok(op) => {
                let back = encode(&op);
                assert_eq!(
                    back[..],
                    raw[at..at + back.len()],
                    "slot {at}: `{op}` does not encode back to its slots"
                );
            }
            Err(e) => drop(e.to_string()),
        }
    }
    match Program::from_bytes(data) {
        Ok(prog) => {
            assert_eq!(prog.to_bytes(), data, "a program changed its own bytes");
            text_round_trip(&prog);
        }
        Err(e) => drop(e.to_string()),
    }
}

/// `asm`: assembling arbitrary text never panics; every instruction it produces that decodes
/// prints as text that assembles back to the same slots; a program it produces disassembles to
/// text (with or without pcs) that reassembles to the same slots.
pub fn asm(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let raw = match assemble(&text) {
        Ok(raw) => raw,
        Err(e) => return drop(e.to_string()),
    };
    let mut at = 0;
    while at < raw.len() {
        match decode_one(&raw[at..]) {
            Ok(op) => {
                let line = op.to_string();
                let again = assemble(&line)
                    .unwrap_or_else(|e| panic!("`{line}` does not reassemble: {e}\n{text}"));
                assert_eq!(
                    again,
                    encode(&op),
                    "`{line}` reassembles to other slots\n{text}"
                );
                at += op.slots() as usize;
            }
            // Every instruction the assembler builds decodes (a write to r10 included: it is
            // the verifier's and the engines' to refuse where it may run).
            Err(kind) => panic!("slot {at} assembled from\n{text}\ndoes not decode: {kind}"),
        }
    }
    if let Ok(prog) = Program::decode(raw) {
        text_round_trip(&prog);
    }
}

/// Disassembly, plain and with pcs, reassembles to the program's slots.
fn text_round_trip(prog: &Program) {
    let text = disassemble(prog);
    let again = assemble(&text)
        .unwrap_or_else(|e| panic!("the disassembly does not reassemble: {e}\n{text}"));
    assert_eq!(
        again,
        prog.insns(),
        "the disassembly reassembles to other slots\n{text}"
    );
    let listing = disassemble_with_pcs(prog);
    let stripped: String = listing
        .lines()
        .map(|l| l.split_once(": ").map_or(l, |(_, rest)| rest))
        .flat_map(|l| [l, "\n"])
        .collect();
    let again = assemble(&stripped)
        .unwrap_or_else(|e| panic!("the listing without pcs does not reassemble: {e}\n{listing}"));
    assert_eq!(
        again,
        prog.insns(),
        "the listing reassembles to other slots\n{listing}"
    );
}

/// `diff_raw`: on a [raw case](raw_case) whose program decodes, every engine agrees with the
/// interpreter on the result or the trap (kind and pc), the memory and the budget left.
pub fn diff_raw(data: &[u8]) {
    if let Some(case) = raw_case(data) {
        agree(&case);
    }
}

/// `diff_structured`: the same comparison on the [`structured`] case the bytes describe.
pub fn diff_structured(data: &[u8]) {
    agree(&structured::case(data));
}

/// `diff_loops`: the same comparison on the [`loop_gen`](crate::loop_gen) loop the bytes
/// choose, and, when the verifier accepts it in checked mode, through the verified JIT. These
/// loops end without a budget (which [`diff_raw`] and [`diff_structured`] give every program
/// that can loop), so the code without the budget charge is compared too.
pub fn diff_loops(data: &[u8]) {
    let case = crate::loop_gen::generate_loop_with(crate::generator::Rng::from_bytes(data));
    agree(&case);
    if let Some(Err(m)) = crate::loop_gen::check_verified_loop(&case) {
        panic!("{m}");
    }
}

fn agree(case: &Case) {
    if let Err(m) = check(case) {
        panic!("{m}");
    }
}

/// `verify`: on a [raw case](raw_case), the verifier never panics in either mode; what Strict
/// mode accepts, Checked mode accepts; Checked mode rejects only structural faults and unknown
/// maps; an accepted program, run on the interpreter, meets only the traps its mode leaves to
/// run time (Strict: none but the budget, in particular never an out-of-bounds access).
pub fn verify(data: &[u8]) {
    let Some(case) = raw_case(data) else { return };
    let mem = case.input.len() as u64;
    let strict = bpfx_verifier::verify(case.prog.clone(), &Config::conformance(Mode::Strict, mem));
    let checked =
        bpfx_verifier::verify(case.prog.clone(), &Config::conformance(Mode::Checked, mem));
    let listing = crate::check::listing(&case.prog);
    if let Err(e) = &checked {
        assert!(
            e.kind.is_structural() || matches!(e.kind, VerifyErrorKind::UnknownMap(_)),
            "Checked mode rejects for a non-structural reason: {e}\n{listing}"
        );
    }
    if let (Ok(_), Err(e)) = (&strict, &checked) {
        panic!("Strict mode accepts what Checked mode rejects: {e}\n{listing}");
    }
    for (mode, verified) in [(Mode::Strict, strict), (Mode::Checked, checked)] {
        let verified = match verified {
            Ok(v) => v,
            Err(e) => {
                drop(e.to_string());
                continue;
            }
        };
        let mut input = case.input.clone();
        let mut env = Env::with_helpers(case.helpers.clone());
        env.budget = Some(VERIFY_RUN_BUDGET);
        if let Err(trap) = bpfx_interp::run(&verified, &mut input, &mut env) {
            assert!(
                allowed_trap(mode, trap.kind),
                "accepted in {mode:?} mode, but trapped with {trap}\n{listing}"
            );
        }
    }
}

/// Traps a program accepted in `mode` may still meet at run time.
pub fn allowed_trap(mode: Mode, kind: TrapKind) -> bool {
    match mode {
        // Strict proves every access and every call depth; only the embedder's budget remains.
        Mode::Strict => kind == TrapKind::BudgetExhausted,
        // Checked guards what it cannot prove: bounds, call depth, and a `callx` id it cannot
        // pin down. It also accepts an `lddw` of a map or BTF variable the configuration does
        // not declare (docs/verifier.md, rule table), which the engines, given no binding,
        // refuse at run time as unsupported.
        Mode::Checked => matches!(
            kind,
            TrapKind::OutOfBounds
                | TrapKind::BudgetExhausted
                | TrapKind::CallDepthExceeded
                | TrapKind::UnknownHelper
                | TrapKind::Unsupported
        ),
    }
}

/// `elf`: loading arbitrary bytes as an ELF object never panics; in a loaded object, every
/// program's entry function is a prefix of it, every program round-trips through text like a
/// decoded one, and every map pseudo form names a map of the object, a value form a byte inside
/// that map's value (the loader's contract with the runtime).
pub fn elf(data: &[u8]) {
    let obj = match bpfx_elf::parse(data) {
        Ok(obj) => obj,
        Err(e) => return drop(e.to_string()),
    };
    for spec in &obj.programs {
        let name = &spec.name;
        assert!(
            spec.insn_count <= spec.program.len(),
            "program {name}: entry function of {} slots in a program of {}",
            spec.insn_count,
            spec.program.len()
        );
        text_round_trip(&spec.program);
        for (pc, op) in spec.program.iter() {
            let (idx, off) = match *op {
                Op::LoadImm64 {
                    value: Imm64::MapIdx(idx),
                    ..
                } => (idx, None),
                Op::LoadImm64 {
                    value: Imm64::MapIdxValue { idx, off },
                    ..
                } => (idx, Some(off)),
                _ => continue,
            };
            let map = usize::try_from(idx)
                .ok()
                .and_then(|i| obj.maps.get(i))
                .unwrap_or_else(|| {
                    panic!(
                        "program {name}, {pc}: `{op}` names no map of {}",
                        obj.maps.len()
                    )
                });
            if let Some(off) = off {
                assert!(
                    off < map.value_size,
                    "program {name}, {pc}: `{op}` is outside the {}-byte value of map {}",
                    map.value_size,
                    map.name
                );
            }
        }
    }
}
