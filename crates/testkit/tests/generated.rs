//! Generated programs through `check_with()`: every engine, the same outcome.
//!
//! This shows the interpreter never panics on generated programs and is deterministic (`check`
//! runs it as the reference and again as an engine, on the same buffer), and compares the JIT
//! with it. Case `seed` runs on the sampled subset of the engine matrix (`sampled_engines`: the
//! interpreter, the default JIT and one other option set in turn).

use bpfx_bytecode::{AtomicOp, CallTarget, Imm64, Op, Operand};
use bpfx_exec::TrapKind;
use bpfx_testkit::{check_with, generate, sampled_engines};
use std::collections::BTreeSet;

const CASES: u64 = 2_000;

/// A name for the instruction form, at the granularity the generator promises to cover.
fn form(op: &Op) -> String {
    let operand = |o: &Operand| {
        if matches!(o, Operand::Reg(_)) {
            "reg"
        } else {
            "imm"
        }
    };
    match op {
        Op::Alu { width, op, src, .. } => format!("alu {op:?} {width:?} {}", operand(src)),
        Op::Neg { width, .. } => format!("neg {width:?}"),
        Op::Movsx { width, from, .. } => format!("movsx {from:?} {width:?}"),
        Op::Endian { order, bits, .. } => format!("endian {order:?} {bits}"),
        Op::Load { size, signed, .. } => format!("load {size:?} {signed}"),
        Op::Store { size, src, .. } => format!("store {size:?} {}", operand(src)),
        Op::Atomic {
            width, op, fetch, ..
        } => format!("atomic {op:?} {width:?} {fetch}"),
        Op::LoadImm64 { value, .. } => match value {
            Imm64::Value(_) => "lddw value".into(),
            _ => "lddw func".into(),
        },
        Op::LoadPacket { size, index, .. } => format!("packet {size:?} {}", index.is_some()),
        Op::Ja { .. } => "ja".into(),
        Op::MayGoto { .. } => "may_goto".into(),
        Op::Branch {
            width, cond, rhs, ..
        } => format!("branch {cond:?} {width:?} {}", operand(rhs)),
        Op::Call(CallTarget::Helper(_)) => "call helper".into(),
        Op::Call(CallTarget::Register(_)) => "callx".into(),
        Op::Call(CallTarget::Local { .. }) => "call local".into(),
        Op::Call(CallTarget::Kfunc(_)) => "kfunc".into(),
        Op::Exit => "exit".into(),
    }
}

fn promised_forms() -> BTreeSet<String> {
    use bpfx_bytecode::{AluOp, ByteOrder, Cond, Size, Width};
    let mut s = BTreeSet::new();
    for w in [Width::W32, Width::W64] {
        for kind in ["reg", "imm"] {
            for op in AluOp::ALL {
                s.insert(format!("alu {op:?} {w:?} {kind}"));
            }
            for c in Cond::ALL {
                s.insert(format!("branch {c:?} {w:?} {kind}"));
            }
        }
        s.insert(format!("neg {w:?}"));
        for op in [AtomicOp::Add, AtomicOp::Or, AtomicOp::And, AtomicOp::Xor] {
            s.insert(format!("atomic {op:?} {w:?} false"));
            s.insert(format!("atomic {op:?} {w:?} true"));
        }
        s.insert(format!("atomic Xchg {w:?} true"));
        s.insert(format!("atomic Cmpxchg {w:?} true"));
    }
    for from in [Size::B, Size::H] {
        s.insert(format!("movsx {from:?} W32"));
        s.insert(format!("movsx {from:?} W64"));
    }
    s.insert("movsx W W64".into());
    for order in [ByteOrder::Le, ByteOrder::Be, ByteOrder::Swap] {
        for bits in [16, 32, 64] {
            s.insert(format!("endian {order:?} {bits}"));
        }
    }
    for size in [Size::B, Size::H, Size::W, Size::Dw] {
        s.insert(format!("load {size:?} false"));
        s.insert(format!("store {size:?} reg"));
        s.insert(format!("store {size:?} imm"));
        if size != Size::Dw {
            s.insert(format!("load {size:?} true"));
            s.insert(format!("packet {size:?} false"));
            s.insert(format!("packet {size:?} true"));
        }
    }
    for f in [
        "lddw value",
        "lddw func",
        "ja",
        "call helper",
        "callx",
        "call local",
        "exit",
    ] {
        s.insert(f.into());
    }
    s
}

#[test]
fn generated_programs_agree_on_every_engine() {
    let mut failures = Vec::new();
    let mut seen = BTreeSet::new();
    let mut returned = 0;
    let mut traps = std::collections::HashMap::new();
    for seed in 0..CASES {
        let case = generate(seed);
        seen.extend(case.prog.iter().map(|(_, op)| form(op)));
        match check_with(&case, &sampled_engines(seed)) {
            Ok(outcome) => match outcome.result {
                Ok(_) => returned += 1,
                Err(t) => *traps.entry(t.kind).or_insert(0) += 1,
            },
            Err(m) => failures.push(format!("seed {seed}: {m}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {CASES} cases disagree; first:\n{}",
        failures.len(),
        failures[0]
    );
    println!("{CASES} generated cases: {returned} returned, traps {traps:?}");
    let missing: Vec<_> = promised_forms().difference(&seen).cloned().collect();
    assert!(
        missing.is_empty(),
        "the generator never produced: {missing:?}"
    );
    // The programs must mostly do their work, not stop at the first instruction.
    assert!(
        returned >= CASES / 2,
        "only {returned} of {CASES} cases returned"
    );
    for kind in [
        TrapKind::OutOfBounds,
        TrapKind::BudgetExhausted,
        TrapKind::UnknownHelper,
    ] {
        assert!(
            traps.contains_key(&kind),
            "no generated case trapped with {kind:?}"
        );
    }
}

/// Generated programs with random bytes flipped: whatever still decodes (arbitrary jumps,
/// recursion, wild pointers, missing `exit`) must run to an outcome, identically on every
/// engine. The budget bounds the loops the mutations create.
#[test]
fn mutated_programs_never_panic_and_agree() {
    use bpfx_testkit::generator::Rng;
    let mut rng = Rng::new(0x6d75_7461_7465);
    let mut decoded = 0;
    let mut executed = 0;
    let mut failures = Vec::new();
    for seed in 0..CASES {
        let mut case = generate(seed);
        let original = case.prog.to_bytes();
        // Up to ten tries for a mutation that still decodes; offsets and immediates (bytes
        // 2..8 of a slot) are hit more often than opcodes and registers, since they decode
        // more often and make the wild jumps and pointers this test is after.
        let mutated = (0..10).find_map(|_| {
            let mut bytes = original.clone();
            for _ in 0..rng.range(1, 2) {
                let slot = rng.below((bytes.len() / 8) as u64) as usize * 8;
                let byte = if rng.chance(7, 10) {
                    rng.range(2, 7) as usize
                } else {
                    rng.below(8) as usize
                };
                bytes[slot + byte] = rng.next_u64() as u8;
            }
            bpfx_bytecode::Program::from_bytes(&bytes).ok()
        });
        let Some(prog) = mutated else {
            continue;
        };
        decoded += 1;
        case.prog = prog;
        case.budget = Some(rng.below(5_000));
        match check_with(&case, &sampled_engines(seed)) {
            Ok(o) => executed += case.budget.unwrap_or(0) - o.budget_left.unwrap_or(0),
            Err(m) => failures.push(format!("seed {seed}: {m}")),
        }
    }
    println!("{decoded} mutated programs decoded, {executed} instructions executed");
    assert!(
        failures.is_empty(),
        "{} disagree; first:\n{}",
        failures.len(),
        failures[0]
    );
    assert!(
        decoded >= CASES / 4,
        "only {decoded} mutated programs decoded"
    );
}
