//! Assembler errors: each kind names its line and token; no input makes the assembler panic.

use bpfx_bytecode::{AsmError, AsmErrorKind as K, assemble};
use bpfx_rng::Rng;

fn err(text: &str) -> AsmError {
    match assemble(text) {
        Ok(slots) => panic!("{text:?} assembled to {slots:?}"),
        Err(e) => e,
    }
}

#[test]
fn each_error_names_its_line_token_and_kind() {
    let cases: Vec<(&str, usize, &str, K)> = vec![
        ("mov r0, 1\nfrob r1\nexit", 2, "frob", K::UnknownMnemonic),
        ("ldxsdw r0, [r1]", 1, "ldxsdw", K::UnknownMnemonic),
        ("ldabsdw 4", 1, "ldabsdw", K::UnknownMnemonic),
        ("movsx3232 r0, r1", 1, "movsx3232", K::UnknownMnemonic),
        ("le8 r0", 1, "le8", K::UnknownMnemonic),
        (
            "\n\nlddw r0",
            3,
            "lddw",
            K::OperandCount {
                expected: 2,
                found: 1,
            },
        ),
        (
            "exit r0",
            1,
            "exit",
            K::OperandCount {
                expected: 0,
                found: 1,
            },
        ),
        (
            "jeq r0, 1",
            1,
            "jeq",
            K::OperandCount {
                expected: 3,
                found: 2,
            },
        ),
        (
            "call",
            1,
            "call",
            K::OperandCount {
                expected: 1,
                found: 0,
            },
        ),
        (
            "lock fetch add [r1], r2, r3",
            1,
            "lock",
            K::OperandCount {
                expected: 4,
                found: 5,
            },
        ),
        (
            "lddw r0, map_value(1)",
            1,
            "map_value",
            K::OperandCount {
                expected: 2,
                found: 1,
            },
        ),
        ("mov r11, 1", 1, "r11", K::BadRegister),
        ("mov %r1x, 1", 1, "%r1x", K::BadRegister),
        ("neg 5", 1, "5", K::ExpectedRegister),
        ("ldxw r0, [5+2]", 1, "5", K::ExpectedRegister),
        ("mov r0, five", 1, "five", K::BadNumber),
        ("mov r0, 0x", 1, "0x", K::BadNumber),
        (
            "mov r0, -2147483649",
            1,
            "-2147483649",
            K::OutOfRange {
                min: i32::MIN.into(),
                max: i32::MAX.into(),
            },
        ),
        (
            "stw [r1], 0x1ffffffff",
            1,
            "0x1ffffffff",
            K::OutOfRange {
                min: i32::MIN.into(),
                max: u32::MAX.into(),
            },
        ),
        (
            "call 4294967296",
            1,
            "4294967296",
            K::OutOfRange {
                min: i32::MIN.into(),
                max: u32::MAX.into(),
            },
        ),
        (
            "ldxw r0, [r1-32769]",
            1,
            "-32769",
            K::OutOfRange {
                min: i16::MIN.into(),
                max: i16::MAX.into(),
            },
        ),
        (
            "lddw r0, 0x10000000000000000",
            1,
            "0x10000000000000000",
            K::OutOfRange {
                min: i64::MIN.into(),
                max: u64::MAX.into(),
            },
        ),
        ("ldxw r0, r1", 1, "r1", K::BadMemory),
        ("stw r1+8, 1", 1, "r1+8", K::BadMemory),
        // A target without a sign is a label, even when it is all digits.
        ("ja 3", 1, "3", K::UnknownLabel),
        ("ja @x", 1, "@x", K::BadTarget),
        (
            "ja +32768",
            1,
            "+32768",
            K::TargetTooFar {
                off: 32768,
                bits: 16,
            },
        ),
        (
            "jeq r0, 0, -32770",
            1,
            "-32770",
            K::TargetTooFar {
                off: -32770,
                bits: 16,
            },
        ),
        (
            "ja32 +2147483648",
            1,
            "+2147483648",
            K::TargetTooFar {
                off: 2147483648,
                bits: 32,
            },
        ),
        ("exit\nja nowhere", 2, "nowhere", K::UnknownLabel),
        ("call local f", 1, "f", K::UnknownLabel),
        ("lddw r1, func(g)", 1, "g", K::UnknownLabel),
        (
            "a:\nexit\n a: ",
            3,
            "a",
            K::DuplicateLabel { first_line: 1 },
        ),
        ("x-y:", 1, "x-y:", K::BadLabel),
        ("a: exit", 1, "exit", K::TextAfterLabel),
        ("ldxw r0, [r1", 1, "ldxw r0, [r1", K::Unbalanced),
        (
            "lddw r0, map_fd(1))",
            1,
            "lddw r0, map_fd(1))",
            K::Unbalanced,
        ),
        ("lddw r0, map(1)", 1, "map(1)", K::BadPseudo),
        ("call far 3", 1, "far", K::BadCallKind),
        ("lock nand [r1], r2", 1, "nand", K::BadAtomic),
    ];
    for (text, line, token, kind) in cases {
        let e = err(text);
        assert_eq!(
            (e.line, e.token.as_str(), &e.kind),
            (line, token, &kind),
            "{text:?}"
        );
        let shown = e.to_string();
        assert!(
            shown.starts_with(&format!("line {line}: ")) && shown.contains(&format!("`{token}`")),
            "{text:?}: {shown}"
        );
    }
}

#[test]
fn a_label_far_away_overflows_the_16_bit_offset_but_not_ja32() {
    let far = format!("ja end\n{}end:\nexit", "mov r0, 0\n".repeat(40_000));
    assert_eq!(
        err(&far).kind,
        K::TargetTooFar {
            off: 40_000,
            bits: 16
        }
    );
    let long = far.replacen("ja end", "ja32 end", 1);
    let slots = assemble(&long).unwrap();
    assert_eq!(slots[0].imm, 40_000);
}

/// Assembles `text`; an error must point at a line of the text and show it.
fn assemble_checked(text: &str) {
    if let Err(e) = assemble(text) {
        let lines = text.lines().count().max(1);
        assert!(
            (1..=lines).contains(&e.line),
            "{text:?}: line {} of {lines}",
            e.line
        );
        assert!(e.to_string().starts_with(&format!("line {}: ", e.line)));
    }
}

#[test]
fn garbage_and_random_text_never_panics() {
    let pieces = [
        "mov",
        "add32",
        "lddw",
        "ldxw",
        "stxdw",
        "lock",
        "fetch",
        "xchg",
        "call",
        "local",
        "ja",
        "ja32",
        "jeq",
        "exit",
        "movsx",
        "le",
        "bswap",
        "ldabsw",
        "ldindh",
        "map_value",
        "func",
        "r",
        "%r",
        "r10",
        "r11",
        "%",
        "[",
        "]",
        "(",
        ")",
        "+",
        "-",
        ",",
        " ",
        "\t",
        ":",
        "#",
        "\n",
        "\r\n",
        "0x",
        "0",
        "1",
        "9",
        "ffffffff",
        "99999999999999999999999",
        "é",
        "中",
        "\u{0}",
        "\u{feff}",
        "exit:",
        "a:",
    ];
    let mut rng = Rng::new(0x9e37_79b9_7f4a_7c15);
    for _ in 0..20_000 {
        let n = rng.index(24);
        let text: String = (0..n).map(|_| pieces[rng.index(pieces.len())]).collect();
        assemble_checked(&text);
    }
    for _ in 0..5_000 {
        let n = rng.index(40);
        let text: String = (0..n)
            .map(|_| char::from_u32(rng.next_u64() as u32 % 0x3000).unwrap_or('?'))
            .collect();
        assemble_checked(&text);
    }
}

#[test]
fn mutated_valid_programs_never_panic() {
    let base = "start:\nlddw r1, 0x1122334455667788\nldxw r0, [r1+8]\nlock fetch add32 [r10-8], r2\n\
                jsgt32 r0, -1, start\ncall local start\nlddw r2, map_value(3, 8)\nldindb r1, 14\n\
                movsx1664 r3, r4\nbe32 r0\nja32 exit\ncall r5\nexit";
    let bytes = base.as_bytes();
    let mut rng = Rng::new(42);
    for _ in 0..20_000 {
        let mut text = bytes.to_vec();
        for _ in 0..=rng.index(4) {
            if text.is_empty() {
                break;
            }
            let at = rng.index(text.len());
            match rng.index(3) {
                0 => {
                    text.remove(at);
                }
                1 => text.insert(at, b"[]()+-,: #0xr%9\n"[rng.index(16)]),
                _ => {
                    let other = rng.index(text.len());
                    text.swap(at, other);
                }
            }
        }
        // Byte edits of ASCII text stay valid UTF-8.
        assemble_checked(&String::from_utf8(text).unwrap());
    }
}
