//! Decode/encode roundtrip over every program of the conformance suite, plus strict-validation
//! cases for each rule of the decoder.

use bpfx_bytecode::{DecodeErrorKind, Insn, Op, Program, encode};
use std::path::PathBuf;

fn conformance_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/bpf_conformance");
    assert!(
        dir.join("assembled_tests.jsonl").is_file(),
        "the conformance suite is missing: expected {} (the repository must sit beside shared/)",
        dir.display()
    );
    dir
}

fn hex_bytes(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// `(test name, program bytes)` for every line of `assembled_tests.jsonl`.
fn reference_programs() -> Vec<(String, Vec<u8>)> {
    let text = std::fs::read_to_string(conformance_dir().join("assembled_tests.jsonl")).unwrap();
    text.lines()
        .map(|line| {
            let field = |name: &str| {
                let key = format!("\"{name}\": \"");
                let start = line.find(&key).unwrap() + key.len();
                line[start..start + line[start..].find('"').unwrap()].to_string()
            };
            (field("test"), hex_bytes(&field("program_hex")))
        })
        .collect()
}

#[test]
fn every_conformance_program_decodes_and_reencodes_byte_for_byte() {
    let programs = reference_programs();
    assert_eq!(programs.len(), 313);
    for (name, bytes) in programs {
        let prog = Program::from_bytes(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut again = Vec::new();
        for (_, op) in prog.iter() {
            for insn in encode(op) {
                again.extend_from_slice(&insn.to_bytes());
            }
        }
        assert_eq!(again, bytes, "{name}: encode(decode(x)) != x");
    }
}

fn decode_err(slots: &[Insn]) -> (u32, DecodeErrorKind) {
    let e = Program::decode(slots.to_vec()).expect_err("must not decode");
    (e.pc, e.kind)
}

const EXIT: Insn = Insn::new(0x95, 0, 0, 0, 0);

#[test]
fn rejects_each_malformed_form_with_its_pc() {
    use DecodeErrorKind as K;
    let mov_imm = |dst, src, off, imm| Insn::new(0xb7, dst, src, off, imm);
    let cases: Vec<(Vec<Insn>, u32, K)> = vec![
        (vec![], 0, K::Empty),
        (
            vec![EXIT, Insn::new(0xff, 0, 0, 0, 0)],
            1,
            K::UnknownOpcode(0xff),
        ),
        (
            vec![mov_imm(11, 0, 0, 0), EXIT],
            0,
            K::BadRegister {
                field: "dst",
                reg: 11,
            },
        ),
        (
            vec![mov_imm(0, 1, 0, 0), EXIT],
            0,
            K::NonZeroField {
                field: "src",
                value: 1,
            },
        ),
        (
            vec![mov_imm(0, 0, 3, 0), EXIT],
            0,
            K::BadField {
                field: "off",
                value: 3,
            },
        ),
        (
            vec![Insn::new(0x07, 0, 0, 1, 0), EXIT],
            0,
            K::NonZeroField {
                field: "off",
                value: 1,
            },
        ),
        (
            vec![Insn::new(0xbf, 0, 1, 0, 7), EXIT],
            0,
            K::NonZeroField {
                field: "imm",
                value: 7,
            },
        ),
        (
            vec![Insn::new(0x95, 0, 0, 0, 1)],
            0,
            K::NonZeroField {
                field: "imm",
                value: 1,
            },
        ),
        (vec![EXIT, Insn::new(0x18, 0, 0, 0, 1)], 1, K::TruncatedLddw),
        (
            vec![
                Insn::new(0x18, 0, 0, 0, 1),
                Insn::new(0x18, 0, 0, 0, 0),
                EXIT,
            ],
            0,
            K::BadLddwSecondSlot,
        ),
        (
            vec![Insn::new(0x05, 0, 0, 5, 0), EXIT],
            0,
            K::TargetOutOfRange { target: 6, len: 2 },
        ),
        (
            vec![Insn::new(0x05, 0, 0, -2, 0), EXIT],
            0,
            K::TargetOutOfRange { target: -1, len: 2 },
        ),
        (
            vec![
                Insn::new(0x05, 0, 0, 1, 0),
                Insn::new(0x18, 0, 0, 0, 1),
                Insn::new(0, 0, 0, 0, 0),
                EXIT,
            ],
            0,
            K::TargetInsideLddw(2),
        ),
        (
            vec![Insn::new(0x85, 0, 1, 0, 9), EXIT],
            0,
            K::TargetOutOfRange { target: 10, len: 2 },
        ),
        (
            vec![Insn::new(0xd4, 1, 0, 0, 8), EXIT],
            0,
            K::BadField {
                field: "imm",
                value: 8,
            },
        ),
        (
            vec![Insn::new(0xdb, 1, 2, 0, 0x02), EXIT],
            0,
            K::BadField {
                field: "imm",
                value: 2,
            },
        ),
        (
            vec![Insn::new(0x98, 0, 0, 0, 0), EXIT],
            0,
            K::UnknownOpcode(0x98),
        ),
        (
            vec![Insn::new(0x8c, 1, 0, 0, 0), EXIT],
            0,
            K::UnknownOpcode(0x8c),
        ),
        (
            vec![Insn::new(0xbc, 1, 2, 32, 0), EXIT],
            0,
            K::BadField {
                field: "off",
                value: 32,
            },
        ),
        (
            vec![Insn::new(0x18, 1, 7, 0, 0), Insn::new(0, 0, 0, 0, 0), EXIT],
            0,
            K::BadField {
                field: "src",
                value: 7,
            },
        ),
    ];
    for (slots, pc, kind) in cases {
        assert_eq!(decode_err(&slots), (pc, kind), "{slots:?}");
    }
    let bytes = [0u8; 12];
    let e = Program::from_bytes(&bytes).unwrap_err();
    assert_eq!(e.kind, DecodeErrorKind::TrailingBytes(4));
}

#[test]
fn decode_error_message_names_the_instruction() {
    let e = Program::decode(vec![EXIT, Insn::new(0xb7, 0, 3, 0, 0)]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "insn #1 (code 0xb7 dst 0 src 3 off 0 imm 0): unused field src must be 0, found 3"
    );
}

#[test]
fn every_opcode_byte_either_decodes_and_roundtrips_or_errs() {
    // Exhaustive over code bytes and a spread of field values: what decodes re-encodes exactly.
    let fields: [(u8, u8, i16, i32); 8] = [
        (0, 0, 0, 0),
        (1, 2, 0, 0),
        (1, 0, 0, 16),
        (1, 2, 1, 0),
        (1, 2, 8, 0),
        (1, 2, 0, 0xe1),
        (0, 0, 0, 32),
        (1, 0, 0, -7),
    ];
    let mut decoded = 0;
    for code in 0..=255u8 {
        for &(dst, src, off, imm) in &fields {
            let slots = vec![
                Insn::new(code, dst, src, off, imm),
                Insn::new(0, 0, 0, 0, 0),
                EXIT,
            ];
            let Ok(op) = bpfx_bytecode::decode_one(&slots) else {
                continue;
            };
            decoded += 1;
            let enc = encode(&op);
            assert_eq!(&enc[..], &slots[..enc.len()], "{op:?}");
            let back: Op = bpfx_bytecode::decode_one(&enc).unwrap();
            assert_eq!(back, op);
        }
    }
    assert!(decoded > 150, "only {decoded} forms decoded");
}

#[test]
fn writes_to_r10_decode_and_are_left_to_the_verifier_and_the_engines() {
    // `mov r10, 0`, `lock fetch add [r1+0], r10` and `lddw r10, 1`: each decodes (the kernel
    // refuses them only where they may run, which is the verifier's to say).
    for slots in [
        vec![Insn::new(0xb7, 10, 0, 0, 0), EXIT],
        vec![Insn::new(0xdb, 1, 10, 0, 0x01), EXIT],
        vec![Insn::new(0x18, 10, 0, 0, 1), Insn::new(0, 0, 0, 0, 0), EXIT],
    ] {
        let prog = Program::decode(slots).unwrap();
        let op = prog.get(bpfx_bytecode::Pc(0)).unwrap();
        assert_eq!(op.written_reg(), Some(bpfx_bytecode::Reg::R10), "{op}");
    }
}
