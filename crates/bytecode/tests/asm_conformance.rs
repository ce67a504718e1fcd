//! The assembler against the conformance suite: assembling the `-- asm` section of every
//! `tests/*.data` file gives, byte for byte, the `program_hex` the upstream runner sent; and the
//! suite's `negative/invalid_*` programs, which make the upstream assembler throw, are errors.

use bpfx_bytecode::{AsmErrorKind, Insn, assemble};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn conformance_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/bpf_conformance");
    assert!(
        dir.join("assembled_tests.jsonl").is_file() && dir.join("tests").is_dir(),
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

/// test file name → reference program bytes, from `assembled_tests.jsonl`.
fn reference_programs() -> BTreeMap<String, Vec<u8>> {
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

/// The sections of a `.data` file, as the upstream runner reads them: a line containing `--`
/// starts a section named by the rest of the line; `#` starts a comment. Lines keep their
/// original numbering inside each section's text (earlier lines are blank), so assembler errors
/// point at the file's line numbers.
fn sections(text: &str) -> BTreeMap<String, String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut current: Option<String> = None;
    for (i, line) in lines.iter().enumerate() {
        let line = line.replace('\r', "");
        let code = line.split('#').next().unwrap_or("").to_string();
        if let Some(at) = code.find("--") {
            let name = code[at + 2..].trim().to_string();
            out.entry(name.clone())
                .or_insert_with(|| vec![String::new(); lines.len()]);
            current = Some(name);
        } else if let Some(name) = &current {
            out.get_mut(name).unwrap()[i] = code;
        }
    }
    out.into_iter().map(|(k, v)| (k, v.join("\n"))).collect()
}

fn to_bytes(slots: &[Insn]) -> Vec<u8> {
    slots.iter().flat_map(|i| i.to_bytes()).collect()
}

/// `-- raw`: each token one u64 (hex with `0x`, otherwise decimal), one slot.
fn raw_words(section: &str) -> Vec<u8> {
    section
        .split_whitespace()
        .map(|t| match t.strip_prefix("0x") {
            Some(h) => u64::from_str_radix(h, 16).unwrap(),
            None => t.parse::<u64>().unwrap(),
        })
        .flat_map(u64::to_le_bytes)
        .collect()
}

fn data_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "data"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_conformance_asm_section_assembles_to_the_reference_bytes() {
    let dir = conformance_dir();
    let reference = reference_programs();
    let files = data_files(&dir.join("tests"));
    assert_eq!(files.len(), 313);
    let mut checked = 0;
    for path in &files {
        let name = path.file_name().unwrap().to_str().unwrap();
        let text = std::fs::read_to_string(path).unwrap();
        let sections = sections(&text);
        let expected = reference
            .get(name)
            .unwrap_or_else(|| panic!("{name}: not in assembled_tests.jsonl"));
        match (sections.get("asm"), sections.get("raw")) {
            (Some(asm), raw) => {
                let slots = assemble(asm).unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!(
                    &to_bytes(&slots),
                    expected,
                    "{name}: assembled bytes differ from program_hex"
                );
                if let Some(raw) = raw {
                    assert_eq!(&raw_words(raw), expected, "{name}: -- raw differs");
                }
            }
            (None, Some(raw)) => assert_eq!(&raw_words(raw), expected, "{name}: -- raw differs"),
            (None, None) => panic!("{name}: neither -- asm nor -- raw"),
        }
        checked += 1;
    }
    assert_eq!(
        checked,
        reference.len(),
        "every reference program was compared"
    );
}

#[test]
fn the_suites_invalid_programs_are_assembler_errors() {
    let dir = conformance_dir().join("negative");
    let cases = [
        ("invalid_imm32_dec_range.data", "2147483648"),
        ("invalid_imm32_hex_range.data", "0x100000000"),
        ("invalid_label.data", "NOT_A_LABEL"),
        ("invalid_lock.data", "lock"),
        ("invalid_lock2.data", "lock"),
        ("invalid_mnemonic.data", "ldxq"),
        ("invalid_offset.data", "%r1"),
        ("invalid_offset_range.data", "+0x10000"),
        ("invalid_operand_count.data", "lddw"),
        ("invalid_register.data", "%r50"),
    ];
    for (file, token) in cases {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        let asm = &sections(&text)["asm"];
        let err = assemble(asm).expect_err(file);
        // The line of the file holding the offending token, outside comments.
        let line = text
            .lines()
            .position(|l| l.split('#').next().unwrap().contains(token))
            .unwrap()
            + 1;
        assert_eq!(err.line, line, "{file}: {err}");
        assert_eq!(err.token, token, "{file}: {err}");
        let shown = err.to_string();
        assert!(
            shown.contains(&format!("line {}", err.line)) && shown.contains(token),
            "{file}: message must name the line and the token: {shown}"
        );
    }
    let err = assemble("mov32 %r0, 2147483648").unwrap_err();
    assert!(matches!(err.kind, AsmErrorKind::OutOfRange { .. }));
}
