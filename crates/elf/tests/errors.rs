//! Load errors: targeted corruptions of the committed objects, each checked for the error
//! value and for a message that names the section, symbol or relocation at fault.

use bpfx_bytecode::{Imm64, Op, Pc};
use bpfx_elf::{
    BtfError, CodeErrorKind, ElfError, Extern, ExternKind, ExternUse, MapErrorKind, RelocErrorKind,
    SectionErrorKind, parse,
};
use object::{Object as _, ObjectSection as _};

fn read(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/objects/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// File offset of section `name`'s contents.
fn section_offset(bytes: &[u8], name: &str) -> usize {
    let file = object::File::parse(bytes).unwrap();
    let s = file
        .section_by_name(name)
        .unwrap_or_else(|| panic!("no {name}"));
    s.file_range().expect("section has file bytes").0 as usize
}

/// File offset of section `name`'s `Elf64_Shdr`.
fn section_header(bytes: &[u8], name: &str) -> usize {
    let file = object::File::parse(bytes).unwrap();
    let index = file.section_by_name(name).unwrap().index().0;
    let shoff = u64::from_le_bytes(bytes[0x28..0x30].try_into().unwrap()) as usize;
    shoff + 64 * index
}

fn put_u16(bytes: &mut [u8], at: usize, v: u16) {
    bytes[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

fn put_u32(bytes: &mut [u8], at: usize, v: u32) {
    bytes[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn put_u64(bytes: &mut [u8], at: usize, v: u64) {
    bytes[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

fn err(bytes: &[u8]) -> ElfError {
    match parse(bytes) {
        Ok(obj) => panic!("loaded: {obj:?}"),
        Err(e) => e,
    }
}

// legacy.o, objdump -d -r: `4: r1 = 0x0 ll` with `0x20: R_BPF_64_64 counters` as the first
// entry of `.relsocket` (Elf64_Rel: r_offset u64, then r_info = sym << 32 | type).

#[test]
fn extern_symbol_without_btf_is_unresolved_and_recorded_on_its_program() {
    // extern.o (no -g), objdump: `0: r2 = 0x0 ll` with `R_BPF_64_64 ext_var`.
    let obj = parse(&read("extern.o")).expect("an extern fails only its programs");
    assert_eq!(
        obj.externs,
        [Extern {
            name: "ext_var".into(),
            weak: false,
            kind: ExternKind::Unresolved
        }]
    );
    let p = obj.program("uses_extern").unwrap();
    assert_eq!(
        p.externs,
        [ExternUse {
            pc: Pc(0),
            index: 0,
            call: false
        }]
    );
    // The lddw loads 0 (and the runtime refuses the program before it runs).
    assert_eq!(p.program.insns()[0].src, 0);
    assert_eq!(p.program.insns()[0].imm, 0);
}

#[test]
fn em_none_loads_like_em_bpf() {
    let good = read("legacy.o");
    let mut b = good.clone();
    put_u16(&mut b, 18, 0); // e_machine = EM_NONE, as older LLVM wrote it
    assert_eq!(parse(&b).unwrap(), parse(&good).unwrap());
}

#[test]
fn relocation_of_unsupported_type() {
    let mut b = read("legacy.o");
    let rel = section_offset(&b, ".relsocket");
    put_u32(&mut b, rel + 8, 3); // R_BPF_64_ABS32
    let e = err(&b);
    assert_eq!(
        e.to_string(),
        "section \"socket\": relocation at offset 0x20 against \"counters\" has type 3, \
         expected R_BPF_64_64 (1) or R_BPF_64_32 (10)"
    );
}

#[test]
fn relocation_against_missing_symbol() {
    let mut b = read("legacy.o");
    let rel = section_offset(&b, ".relsocket");
    put_u32(&mut b, rel + 12, 999);
    let e = err(&b);
    assert!(
        matches!(e, ElfError::Relocation { ref section, offset: 0x20, kind: RelocErrorKind::UnknownSymbol(999) } if section == "socket"),
        "{e}"
    );
    assert!(e.to_string().contains("symbol #999"), "{e}");
}

#[test]
fn relocation_off_an_instruction_start() {
    let mut b = read("legacy.o");
    let rel = section_offset(&b, ".relsocket");
    put_u64(&mut b, rel, 0x24);
    let e = err(&b);
    assert_eq!(
        e.to_string(),
        "section \"socket\": relocation at offset 0x24 against \"counters\" is not at the start \
         of an instruction"
    );
}

#[test]
fn relocation_on_a_store() {
    let mut b = read("legacy.o");
    let rel = section_offset(&b, ".relsocket");
    // Slot 1 is `*(u32 *)(r10 - 0x4) = r1`, opcode 0x63.
    put_u64(&mut b, rel, 0x8);
    let e = err(&b);
    assert!(
        matches!(
            e,
            ElfError::Relocation {
                kind: RelocErrorKind::NotLddwOrCall { code: 0x63, .. },
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("opcode 0x63"), "{e}");
}

#[test]
fn map_relocation_between_definitions() {
    let mut b = read("legacy.o");
    let code = section_offset(&b, "socket");
    put_u32(&mut b, code + 0x20 + 4, 4); // addend 4: inside `counters`, no map starts there
    let e = err(&b);
    assert_eq!(
        e.to_string(),
        "section \"socket\": relocation at offset 0x20 against \"counters\": no map starts at \
         offset 4 of section \"maps\""
    );
}

/// A relocated `lddw` must carry 0 in its second slot's `imm` (what the raw decoder demands of
/// an `lddw` of a map): for a map, global data and a function address alike.
#[test]
fn relocated_lddw_with_a_non_zero_second_imm() {
    let cases = [
        // legacy.o: the map `counters` at 0x20 of "socket".
        ("legacy.o", "socket", 0x20, "counters"),
        // globals.o: `.data` at 0x18 of "xdp".
        ("globals.o", "xdp", 0x18, ".data"),
    ];
    for (file, section, at, symbol) in cases {
        let mut b = read(file);
        let code = section_offset(&b, section);
        put_u32(&mut b, code + at + 8 + 4, 0x4141_4141);
        let e = err(&b);
        match &e {
            ElfError::Relocation {
                section: s,
                offset,
                kind: RelocErrorKind::LddwHighImm { symbol: y, imm },
            } => assert_eq!(
                (s.as_str(), *offset, y.as_str(), *imm),
                (section, at as u64, symbol, 0x4141_4141),
                "{file}"
            ),
            e => panic!("{file}: {e}"),
        }
        assert_eq!(
            e.to_string(),
            format!(
                "section {section:?}: relocation at offset {at:#x} against {symbol:?} is on an \
                 lddw whose second slot has imm 0x41414141, not 0"
            )
        );
    }
}

#[test]
fn data_relocation_offsets_stay_inside_the_value() {
    // globals.o: `3: r6 = 0x8 ll` with `0x18: R_BPF_64_64 .data`; .data is 0x18 bytes.
    let mut b = read("globals.o");
    let code = section_offset(&b, "xdp");
    put_u32(&mut b, code + 0x18 + 4, 0x17);
    let obj = parse(&b).unwrap();
    let p = obj.program("xdp").unwrap();
    assert!(matches!(
        p.program.get(Pc(3)),
        Some(Op::LoadImm64 {
            value: Imm64::MapIdxValue { idx: 0, off: 0x17 },
            ..
        })
    ));
    put_u32(&mut b, code + 0x18 + 4, 0x18);
    let e = err(&b);
    assert_eq!(
        e.to_string(),
        "section \"xdp\": relocation at offset 0x18 against \".data\": offset 24 is outside the \
         24 bytes of section \".data\""
    );
}

#[test]
fn call_outside_every_function() {
    // multi-v3.o: `2: call 0x2` with `0x10: R_BPF_64_32 .text`; .text is 19 slots.
    let mut b = read("multi-v3.o");
    let code = section_offset(&b, "xdp");
    put_u32(&mut b, code + 0x10 + 4, 100);
    let e = err(&b);
    assert!(
        matches!(
            e,
            ElfError::Code { ref section, offset: 0x10, kind: CodeErrorKind::NoFunction { offset: 808, .. } }
                if section == "xdp"
        ),
        "{e}"
    );
    assert_eq!(
        e.to_string(),
        "section \"xdp\": instruction at offset 0x10: target offset 808 of section \".text\" is \
         not inside any function"
    );
}

#[test]
fn unrelocated_call_outside_its_section() {
    // multi-v3.o, .text: `4: call 0xb` inside sum_squares (no relocation); pointing it past
    // the end of .text must be reported, not followed.
    let mut b = read("multi-v3.o");
    let code = section_offset(&b, ".text");
    put_u32(&mut b, code + 4 * 8 + 4, 1000);
    let e = err(&b);
    assert!(
        matches!(e, ElfError::Code { ref section, offset: 0x20, .. } if section == ".text"),
        "{e}"
    );
}

#[test]
fn version_of_the_wrong_size() {
    let mut b = read("multi-v3.o");
    let sh = section_header(&b, "version");
    put_u64(&mut b, sh + 32, 3);
    let e = err(&b);
    assert_eq!(
        e.to_string(),
        "section \"version\": version section of 3 bytes, expected 4"
    );
}

#[test]
fn corrupt_btf() {
    let mut b = read("maps.o");
    let btf = section_offset(&b, ".BTF");
    b[btf] ^= 0xff;
    let e = err(&b);
    assert!(matches!(e, ElfError::Btf(BtfError::Magic(_))), "{e}");
    assert!(
        e.to_string().starts_with("section \".BTF\": bad magic"),
        "{e}"
    );
}

#[test]
fn header_checks() {
    let good = read("legacy.o");
    assert!(matches!(err(b"hello"), ElfError::NotElf(_)));
    assert!(matches!(err(&good[..10]), ElfError::NotElf(_)));
    let mut b = good.clone();
    b[4] = 1; // ELFCLASS32
    assert!(matches!(err(&b), ElfError::NotElf(m) if m.contains("64-bit")));
    let mut b = good.clone();
    b[5] = 2; // ELFDATA2MSB
    assert!(matches!(err(&b), ElfError::NotElf(m) if m.contains("little-endian")));
    let mut b = good.clone();
    b[18] = 62; // EM_X86_64
    assert!(matches!(err(&b), ElfError::NotBpf(62)));
    let mut b = good.clone();
    b[16] = 2; // ET_EXEC
    assert!(matches!(err(&b), ElfError::NotRelocatable(2)));
    assert!(
        matches!(err(&good[..200]), ElfError::Malformed { .. }),
        "{}",
        err(&good[..200])
    );
}

#[test]
fn code_of_partial_slots() {
    let mut b = read("legacy.o");
    let sh = section_header(&b, "socket");
    let size = u64::from_le_bytes(b[sh + 32..sh + 40].try_into().unwrap());
    put_u64(&mut b, sh + 32, size - 3);
    let e = err(&b);
    assert!(
        matches!(e, ElfError::Section { ref section, kind: SectionErrorKind::CodeSize(_) } if section == "socket"),
        "{e}"
    );
}

// elf_map_in_map.o, readelf -s: `rule_sets` at 0x6c of `maps`, 36 bytes; inner_id is its
// eighth u32 (offset 28).
#[test]
fn iproute2_inner_id_naming_no_map() {
    let mut b = read("elf_map_in_map.o");
    let at = section_offset(&b, "maps") + 0x6c + 28;
    put_u32(&mut b, at, 99);
    let e = err(&b);
    assert_eq!(
        e.to_string(),
        "section \"maps\": map \"rule_sets\": inner_id 99 is the id of no map of the section"
    );
    assert!(matches!(
        e,
        ElfError::Map { kind: MapErrorKind::NoInnerMap(99), ref map, .. } if map == "rule_sets"
    ));
}

// The same map: its id (the sixth u32, offset 20) and inner_id both 50, so the map of maps is
// its own inner template. Before the check, each map of maps whose template was a map of maps
// took a copy of that template's own template: a chain of n such maps held n²/2 copies.
#[test]
fn iproute2_inner_id_naming_a_map_of_maps() {
    let mut b = read("elf_map_in_map.o");
    let at = section_offset(&b, "maps") + 0x6c;
    put_u32(&mut b, at + 20, 50);
    put_u32(&mut b, at + 28, 50);
    let e = err(&b);
    assert_eq!(
        e.to_string(),
        "section \"maps\": map \"rule_sets\": inner_id 50 is the id of a map of maps, which \
         cannot be an inner map"
    );
    assert!(matches!(
        e,
        ElfError::Map { kind: MapErrorKind::NestedInnerMap(50), ref map, .. } if map == "rule_sets"
    ));
}

// tailcall.o, readelf -r: `.rel.maps` holds `0x28 R_BPF_64_ABS64 handle_arp` (symbol 13) as
// its second entry; symbol 12 is the map `seen`, not a program.
#[test]
fn values_initialiser_naming_a_map_in_a_program_array() {
    let mut b = read("tailcall.o");
    let rel = section_offset(&b, ".rel.maps");
    put_u64(&mut b, rel + 16 + 8, (12 << 32) | 2);
    let e = err(&b);
    assert_eq!(
        e.to_string(),
        "section \".maps\": map \"handlers\": values[2] = \"seen\": not a program's entry function"
    );
    // `values` starts at byte 0x18 of `handlers` (after three pointer members): moving the
    // first relocation to 0x20 moves handle_ipv4 to slot 1.
    let mut b = read("tailcall.o");
    put_u64(&mut b, rel, 0x20);
    let obj = parse(&b).unwrap();
    let slots: Vec<u32> = obj
        .map("handlers")
        .unwrap()
        .init
        .iter()
        .map(|(k, _)| *k)
        .collect();
    assert_eq!(slots, [1, 2]);
    // Outside every definition: an error naming the relocation (libbpf's "cannot find map").
    let mut far = b.clone();
    put_u64(&mut far, rel, 0x1000);
    assert!(matches!(
        err(&far),
        ElfError::Relocation { kind: RelocErrorKind::NoMap { .. }, offset: 0x1000, ref section }
            if section == ".maps"
    ));
    // Off an element boundary: an error naming the map.
    put_u64(&mut b, rel, 0x1c);
    assert!(matches!(
        err(&b),
        ElfError::Map { kind: MapErrorKind::Init { .. }, ref map, .. } if map == "handlers"
    ));
}

// elf_tailcall.o, readelf -s: `jmp_table` at 0 of `maps`; max_elem is its fourth u32.
#[test]
fn iproute2_tail_call_key_past_max_entries() {
    let mut b = read("elf_tailcall.o");
    let at = section_offset(&b, "maps") + 12;
    put_u32(&mut b, at, 4);
    let e = err(&b);
    assert_eq!(
        e.to_string(),
        "section \"maps\": map \"jmp_table\": values[5] = \"cls_five\": section <id>/<key>: \
         the key is not below max_entries"
    );
}
