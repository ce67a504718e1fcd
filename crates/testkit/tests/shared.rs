//! Shared memory (`Env::shared`) on every engine: loads, stores and atomics at and past both
//! edges of a writable and a read-only block, with the same outcome and the same bytes left in
//! both blocks. The addresses come from `lddw`, as a program given a map value's address would
//! have them.

use bpfx_bytecode::{AluOp, AtomicOp, Imm64, Op, Operand, Program, Reg, Size, Width};
use bpfx_exec::{Helpers, SharedMem, TrapKind};
use bpfx_testkit::Case;
use bpfx_testkit::check::check_shared;
use std::sync::Arc;

/// What the probe does at the address.
#[derive(Clone, Copy, Debug)]
enum Access {
    Load,
    StoreReg,
    StoreImm,
    Atomic(AtomicOp, bool),
}

impl Access {
    fn writes(self) -> bool {
        !matches!(self, Access::Load)
    }
}

const ACCESSES: [Access; 8] = [
    Access::Load,
    Access::StoreReg,
    Access::StoreImm,
    Access::Atomic(AtomicOp::Add, false),
    Access::Atomic(AtomicOp::Xor, true),
    Access::Atomic(AtomicOp::Or, true),
    Access::Atomic(AtomicOp::Xchg, true),
    Access::Atomic(AtomicOp::Cmpxchg, true),
];

fn lddw(dst: Reg, v: u64) -> Op {
    Op::LoadImm64 {
        dst,
        value: Imm64::Value(v),
    }
}

/// `r2 = addr - off; <access> [r2 + off]; r0 = what it read (or r3); exit`: the instruction's
/// own offset and the `lddw` share the displacement, so both address forms are exercised.
fn probe(addr: u64, off: i16, size: Size, access: Access) -> Program {
    let base = addr.wrapping_sub(off as i64 as u64);
    let mut ops = vec![
        lddw(Reg::R2, base),
        lddw(Reg::R3, 0x8877_6655_4433_2211),
        lddw(Reg::R0, 0x1122_3344_5566_7788),
    ];
    let width = if size == Size::Dw {
        Width::W64
    } else {
        Width::W32
    };
    ops.push(match access {
        Access::Load => Op::Load {
            size,
            signed: false,
            dst: Reg::R0,
            base: Reg::R2,
            off,
        },
        Access::StoreReg => Op::Store {
            size,
            base: Reg::R2,
            off,
            src: Operand::Reg(Reg::R3),
        },
        Access::StoreImm => Op::Store {
            size,
            base: Reg::R2,
            off,
            src: Operand::Imm(-0x1234_5679),
        },
        Access::Atomic(op, fetch) => Op::Atomic {
            width,
            op,
            fetch,
            base: Reg::R2,
            off,
            src: Reg::R3,
        },
    });
    if access.writes() {
        ops.push(Op::Alu {
            width: Width::W64,
            op: AluOp::Add,
            dst: Reg::R0,
            src: Operand::Reg(Reg::R3),
        });
    }
    ops.push(Op::Exit);
    Program::from_ops(&ops).expect("probe decodes")
}

fn blocks() -> Vec<Arc<SharedMem>> {
    // Lengths that are not multiples of 8, so the last bytes share a word with inaccessible
    // padding, and a writable block that is not first, so stores search past a read-only one.
    let ro: Vec<u8> = (0..12).map(|i| 0xa0 + i).collect();
    let rw: Vec<u8> = (0..21).map(|i| 0x30 + i).collect();
    vec![
        SharedMem::from_bytes(&ro, false),
        SharedMem::from_bytes(&rw, true),
    ]
}

#[test]
fn shared_blocks_at_and_past_both_edges_agree_on_every_engine() {
    let shared = blocks();
    let mut checked = 0;
    for (i, block) in shared.iter().enumerate() {
        let len = block.len() as i64;
        for size in [Size::B, Size::H, Size::W, Size::Dw] {
            let n = i64::from(size.bytes());
            for access in ACCESSES {
                if matches!(access, Access::Atomic(..)) && n < 4 {
                    continue;
                }
                for (rel, inside) in [
                    (-1, false),
                    (0, true),
                    (len - n, true),
                    (len - n + 1, false),
                    (len, false),
                    (-n, false),
                ] {
                    let addr = block.addr().wrapping_add(rel as u64);
                    for off in [0i16, 7, -300] {
                        let case = Case {
                            prog: probe(addr, off, size, access),
                            input: vec![0x55; 8],
                            budget: None,
                            helpers: Helpers::new(),
                        };
                        let outcome = check_shared(&case, &shared).unwrap_or_else(|m| {
                            panic!("block {i} at {rel}, {size:?} {access:?}, off {off}:\n{m}")
                        });
                        let allowed = inside && (block.writable() || !access.writes());
                        match outcome.result {
                            Ok(_) => assert!(
                                allowed,
                                "block {i} at {rel}, {size:?} {access:?}: should trap"
                            ),
                            Err(t) => {
                                assert!(
                                    !allowed,
                                    "block {i} at {rel}, {size:?} {access:?}: trapped {t}"
                                );
                                assert_eq!(t.kind, TrapKind::OutOfBounds);
                                assert_eq!(t.pc.0, 6, "the access after three lddw");
                            }
                        }
                        checked += 1;
                    }
                }
            }
        }
    }
    assert_eq!(checked, 2 * (2 * 3 + 2 * 8) * 6 * 3);
}

#[test]
fn stores_to_a_shared_block_change_its_bytes_identically() {
    let shared = blocks();
    let rw = shared[1].addr();
    // Every kind of write into the writable block, then a read-back of the whole of it.
    let text = format!(
        "lddw r2, {rw:#x}
         lddw r3, 0x0102030405060708
         stxb [r2+20], r3
         stxh [r2+0], r3
         stw [r2+3], -2
         stxdw [r2+9], r3
         mov r4, 5
         lock add [r2+4], r4
         mov r0, 0x05060708
         lock cmpxchg32 [r2+0], r4
         ldxdw r0, [r2+13]
         ldxdw r5, [r2+0]
         add r0, r5
         exit"
    );
    let insns = bpfx_bytecode::assemble(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let case = Case {
        prog: Program::decode(insns).expect("decodes"),
        input: Vec::new(),
        budget: Some(100),
        helpers: Helpers::new(),
    };
    let outcome = check_shared(&case, &shared).unwrap_or_else(|m| panic!("{m}"));
    assert!(outcome.result.is_ok(), "{outcome}");
    assert_eq!(
        outcome.shared[0],
        (0..12).map(|i| 0xa0 + i).collect::<Vec<u8>>()
    );
    assert_ne!(outcome.shared[1][20], 0x30 + 20, "the last byte was stored");
}

#[test]
fn many_shared_blocks_are_each_reachable_on_every_engine() {
    // Block counts at, below and past the JIT's on-stack span table (8): every block is
    // stored into (writable ones) or read (all), the last one of each kind included, and a
    // store into a read-only block traps.
    for n in [7usize, 8, 9, 12] {
        let shared: Vec<Arc<SharedMem>> = (0..n)
            .map(|i| SharedMem::from_bytes(&[i as u8 + 1; 16], i % 2 == 1))
            .collect();
        let mut text = String::from("mov r0, 0\n");
        for (i, m) in shared.iter().enumerate() {
            text += &format!("lddw r2, {:#x}\nldxb r3, [r2+15]\nadd r0, r3\n", m.addr());
            if m.writable() {
                text += &format!("stb [r2+15], {}\n", 0x40 + i);
            }
        }
        let last_ro = shared.iter().rev().find(|m| !m.writable()).unwrap().addr();
        let run = |extra: &str| {
            let text = format!("{text}{extra}exit");
            let insns = bpfx_bytecode::assemble(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
            let case = Case {
                prog: Program::decode(insns).expect("decodes"),
                input: Vec::new(),
                budget: Some(1000),
                helpers: Helpers::new(),
            };
            check_shared(&case, &shared).unwrap_or_else(|m| panic!("{n} blocks: {m}"))
        };
        let ok = run("");
        assert_eq!(
            ok.result.as_ref().ok().copied(),
            Some((1..=n as u64).sum::<u64>()),
            "{n} blocks: {ok}"
        );
        for (i, m) in shared.iter().enumerate() {
            let want = if m.writable() {
                0x40 + i as u8
            } else {
                i as u8 + 1
            };
            assert_eq!(ok.shared[i][15], want, "{n} blocks, block {i}");
        }
        let bad = run(&format!("lddw r2, {last_ro:#x}\nstb [r2+0], 1\n"));
        assert_eq!(
            bad.result.map_err(|t| t.kind),
            Err(TrapKind::OutOfBounds),
            "{n} blocks"
        );
    }
}
