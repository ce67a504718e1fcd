//! The committed clang objects of `tests/objects/` (built by its `build.sh`), loaded and
//! checked against what `llvm-objdump-19 -d -r` and `llvm-readelf-19` show for them.
//!
//! Linked programs are checked by identity, not by guessed pcs: the code found at a call
//! target must be the named function's own bytes in the object, so the tests hold for every
//! `-mcpu` variant; where one variant's exact pcs are asserted, the objdump lines are quoted.

use bpfx_bytecode::{CallTarget, Imm64, Insn, Op, Pc, Program};
use bpfx_elf::{
    BPF_F_MMAPABLE, BPF_F_RDONLY_PROG, ElfError, MapKind, MapSpec, MapType, Object, ProgramSpec,
    SectionErrorKind, parse,
};
use object::{Object as _, ObjectSection as _, ObjectSymbol as _, SymbolKind};

fn read(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/objects/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn load(name: &str) -> (Vec<u8>, Object) {
    let bytes = read(name);
    let obj = parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
    (bytes, obj)
}

/// The slots of function symbol `name` as the object holds them, read independently of the
/// loader (through the `object` crate's high-level API).
fn function_slots(bytes: &[u8], name: &str) -> Vec<Insn> {
    let file = object::File::parse(bytes).expect("object parses");
    let sym = file
        .symbols()
        .find(|s| s.kind() == SymbolKind::Text && s.name() == Ok(name))
        .unwrap_or_else(|| panic!("no function {name}"));
    let section = file
        .section_by_index(sym.section_index().expect("defined"))
        .expect("section");
    let data = section.data().expect("data");
    let start = sym.address() as usize;
    data[start..start + sym.size() as usize]
        .chunks_exact(8)
        .map(|c| Insn::from_bytes(c.try_into().unwrap()))
        .collect()
}

/// Every function symbol of the object.
fn function_names(bytes: &[u8]) -> Vec<String> {
    let file = object::File::parse(bytes).expect("object parses");
    file.symbols()
        .filter(|s| s.kind() == SymbolKind::Text)
        .map(|s| s.name().unwrap().to_string())
        .collect()
}

/// Whether the program holds function `name` starting at `pc`. Immediates of calls and of
/// `lddw` are what linking rewrites, so those are compared on opcode and registers only.
fn holds_function_at(bytes: &[u8], program: &Program, pc: usize, name: &str) -> bool {
    let want = function_slots(bytes, name);
    let Some(got) = program.insns().get(pc..pc + want.len()) else {
        return false;
    };
    let mut lddw_hi = false;
    want.iter().zip(got).all(|(w, g)| {
        let relocatable = w.code == 0x85 || w.code == 0x18 || lddw_hi;
        lddw_hi = w.code == 0x18;
        w.code == g.code
            && w.dst == g.dst
            && w.off == g.off
            && (relocatable || (w.src == g.src && w.imm == g.imm))
    })
}

/// The function of the object starting at `pc` of the program.
fn function_at(bytes: &[u8], program: &Program, pc: usize) -> String {
    let names: Vec<String> = function_names(bytes)
        .into_iter()
        .filter(|n| holds_function_at(bytes, program, pc, n))
        .collect();
    assert_eq!(names.len(), 1, "functions matching at pc {pc}: {names:?}");
    names[0].clone()
}

/// The program's layout: (pc, function) for each function, checking they tile the program.
fn layout(bytes: &[u8], spec: &ProgramSpec) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut pc = 0;
    while pc < spec.program.len() {
        let name = function_at(bytes, &spec.program, pc);
        if pc == 0 {
            assert_eq!(name, spec.name, "the entry function comes first");
            assert_eq!(spec.insn_count, function_slots(bytes, &name).len());
        }
        let len = function_slots(bytes, &name).len();
        out.push((pc, name));
        pc += len;
    }
    assert_eq!(pc, spec.program.len());
    out
}

/// The functions targeted by local calls and function addresses, in pc order, with the
/// instruction kind.
fn code_refs(bytes: &[u8], spec: &ProgramSpec) -> Vec<(Pc, &'static str, String)> {
    spec.program
        .iter()
        .filter_map(|(pc, op)| {
            let kind = match op {
                Op::Call(CallTarget::Local { .. }) => "call",
                Op::LoadImm64 {
                    value: Imm64::Func { .. },
                    ..
                } => "func",
                _ => return None,
            };
            let target = op.jump_target(pc).expect("code reference has a target");
            Some((pc, kind, function_at(bytes, &spec.program, target.index())))
        })
        .collect()
}

fn names(l: &[(usize, String)]) -> Vec<&str> {
    l.iter().map(|(_, n)| n.as_str()).collect()
}

const MULTI: [&str; 5] = [
    "multi-v1.o",
    "multi-v2.o",
    "multi-v3.o",
    "multi-v4.o",
    "multi-v3-g.o",
];

#[test]
fn an_object_of_plain_functions_has_its_global_ones_as_programs() {
    let (_, obj) = load("textonly.o");
    let found: Vec<(&str, &str, usize, usize)> = obj
        .programs
        .iter()
        .map(|p| {
            (
                p.section.as_str(),
                p.name.as_str(),
                p.insn_count,
                p.program.len(),
            )
        })
        .collect();
    // llvm-objdump -t: add_half (5 slots) and sum_halves (7) global, half (3) static; each
    // program is linked with what it calls.
    assert_eq!(
        found,
        [
            (".text", "add_half", 5, 5 + 3),
            (".text", "sum_halves", 7, 7 + 5 + 3)
        ]
    );
}

#[test]
fn multi_finds_every_program_by_symbol_in_section_order() {
    for file in MULTI {
        let (_, obj) = load(file);
        let found: Vec<(&str, &str)> = obj
            .programs
            .iter()
            .map(|p| (p.section.as_str(), p.name.as_str()))
            .collect();
        // readelf -S: .text, xdp, socket, classifier/foo; readelf -s: the GLOBAL FUNCs, but
        // for `twice`, of `.text`: a subprogram only, as libbpf loads it.
        assert_eq!(
            found,
            [
                ("xdp", "xdp_pass"),
                ("xdp", "xdp_drop"),
                ("socket", "sock_helper"),
                ("socket", "sock_main"),
                ("classifier/foo", "cls"),
            ],
            "{file}"
        );
        assert_eq!(obj.license.as_deref(), Some("Dual MIT/GPL"), "{file}");
        assert_eq!(obj.version, Some(0x050a00), "{file}");
        assert!(obj.maps.is_empty(), "{file}: {:?}", obj.maps);
        assert_eq!(obj.program("xdp").unwrap().name, "xdp_pass");
        assert_eq!(obj.program("xdp_drop").unwrap().section, "xdp");
        assert_eq!(obj.program("classifier/foo").unwrap().name, "cls");
        assert!(obj.program("nope").is_none());
        assert!(
            obj.program("twice").is_none(),
            "{file}: `.text` is not a program"
        );
    }
}

#[test]
fn multi_links_text_subprograms_transitively_in_first_reference_order() {
    for file in MULTI {
        let (bytes, obj) = load(file);
        let p = obj.program("xdp_pass").unwrap();
        // xdp_pass calls sum_squares (through `.text` + imm) then twice (its own symbol);
        // sum_squares calls square twice, unrelocated (clang resolves calls inside .text).
        let l = layout(&bytes, p);
        assert_eq!(
            names(&l),
            ["xdp_pass", "sum_squares", "twice", "square"],
            "{file}"
        );
        let refs: Vec<_> = code_refs(&bytes, p)
            .into_iter()
            .map(|(_, k, n)| (k, n))
            .collect();
        let r = |k, n: &str| (k, n.to_string());
        assert_eq!(
            refs,
            [
                r("call", "sum_squares"),
                r("call", "twice"),
                r("call", "square"),
                r("call", "square"),
            ],
            "{file}"
        );
        // Never-referenced .text functions are not appended.
        assert!(!names(&l).contains(&"loop_body"));
    }
}

#[test]
fn multi_v3_call_offsets_match_objdump() {
    let (bytes, obj) = load("multi-v3.o");
    let p = obj.program("xdp_pass").unwrap();
    // objdump -d -r multi-v3.o, section xdp:
    //        2:  85 10 00 00 02 00 00 00  call 0x2     R_BPF_64_32 .text   (sum_squares, .text+0x18)
    //        5:  85 10 00 00 ff ff ff ff  call -0x1    R_BPF_64_32 twice
    // xdp_pass is 8 slots, sum_squares 7, twice 3: sum_squares at 8, twice at 15, square at 18.
    assert_eq!(
        layout(&bytes, p),
        [
            (0, "xdp_pass".to_string()),
            (8, "sum_squares".to_string()),
            (15, "twice".to_string()),
            (18, "square".to_string()),
        ]
    );
    assert_eq!(
        p.program.get(Pc(2)),
        Some(&Op::Call(CallTarget::Local { off: 5 }))
    );
    assert_eq!(
        p.program.get(Pc(5)),
        Some(&Op::Call(CallTarget::Local { off: 9 }))
    );
    // .text: `4: call 0xb` and `7: call 0x8` in sum_squares (at .text slot 3) reach square at
    // .text slot 16; copied to pcs 9 and 12, they must now reach pc 18.
    assert_eq!(
        p.program.get(Pc(9)).unwrap().jump_target(Pc(9)),
        Some(Pc(18))
    );
    assert_eq!(
        p.program.get(Pc(12)).unwrap().jump_target(Pc(12)),
        Some(Pc(18))
    );
    assert_eq!(p.insn_count, 8);
    assert_eq!(p.program.len(), 21);
}

#[test]
fn multi_links_calls_inside_one_program_section() {
    for file in MULTI {
        let (bytes, obj) = load(file);
        // socket: `3: call -0x1  R_BPF_64_32 sock_helper` — a global function of the same
        // section, which is itself a program too.
        let p = obj.program("sock_main").unwrap();
        assert_eq!(
            names(&layout(&bytes, p)),
            ["sock_main", "sock_helper"],
            "{file}"
        );
        assert_eq!(code_refs(&bytes, p).len(), 1);
        let helper = obj.program("sock_helper").unwrap();
        assert_eq!(names(&layout(&bytes, helper)), ["sock_helper"]);

        let drop = obj.program("xdp_drop").unwrap();
        assert_eq!(
            names(&layout(&bytes, drop)),
            ["xdp_drop", "twice"],
            "{file}"
        );
        // `twice`, of `.text`, is only the subprogram of the programs calling it.
        assert!(obj.program("twice").is_none(), "{file}");
    }
}

#[test]
fn multi_function_address_becomes_pseudo_func() {
    for file in MULTI {
        let (bytes, obj) = load(file);
        // classifier/foo: `r2 = 0x50 ll  R_BPF_64_64 .text` (loop_body, the bpf_loop callback)
        // then `call 0xf  R_BPF_64_32 .text` (square).
        let p = obj.program("cls").unwrap();
        assert_eq!(
            names(&layout(&bytes, p)),
            ["cls", "loop_body", "square"],
            "{file}"
        );
        let refs: Vec<_> = code_refs(&bytes, p)
            .into_iter()
            .map(|(_, k, n)| (k, n))
            .collect();
        assert_eq!(
            refs,
            [
                ("func", "loop_body".to_string()),
                ("call", "square".to_string())
            ],
            "{file}"
        );
    }
}

#[test]
fn multi_v3_function_address_matches_objdump() {
    let (_, obj) = load("multi-v3.o");
    let p = obj.program("cls").unwrap();
    // `5: 18 02 00 00 50 00 00 00 ... r2 = 0x50 ll` (src 0 as clang emits it): cls is 12 slots,
    // so loop_body lands at pc 12, 6 slots past the lddw's second slot.
    assert_eq!(
        p.program.get(Pc(5)),
        Some(&Op::LoadImm64 {
            dst: bpfx_bytecode::Reg::R2,
            value: Imm64::Func { off: 6 }
        })
    );
    assert_eq!(p.program.insns()[5].src, 4);
}

fn spec(
    name: &str,
    kind: MapKind,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    flags: u32,
) -> MapSpec {
    MapSpec {
        flags,
        ..MapSpec::new(name, kind.into(), key_size, value_size, max_entries)
    }
}

/// The map names of every `MapIdx` lddw, in pc order.
fn map_refs(obj: &Object, spec: &ProgramSpec) -> Vec<(Pc, String)> {
    spec.program
        .iter()
        .filter_map(|(pc, op)| match op {
            Op::LoadImm64 {
                value: Imm64::MapIdx(i),
                ..
            } => Some((pc, obj.maps[*i as usize].name.clone())),
            _ => None,
        })
        .collect()
}

/// (map name, offset) of every `MapIdxValue` lddw, in pc order.
fn value_refs(obj: &Object, spec: &ProgramSpec) -> Vec<(Pc, String, u32)> {
    spec.program
        .iter()
        .filter_map(|(pc, op)| match op {
            Op::LoadImm64 {
                value: Imm64::MapIdxValue { idx, off },
                ..
            } => Some((pc, obj.maps[*idx as usize].name.clone(), *off)),
            _ => None,
        })
        .collect()
}

#[test]
fn btf_maps_of_each_kind() {
    for file in ["maps.o", "maps-v4.o"] {
        let (_, obj) = load(file);
        // readelf -s: .maps holds stats@0, flows@0x20, recent@0x48, events@0x68,
        // scratch@0x78 (static), jumps@0x98; sizes from maps.c.
        assert_eq!(
            obj.maps,
            [
                spec("stats", MapKind::Array, 4, 24, 16, 0),
                spec("flows", MapKind::Hash, 8, 4, 1024, 1),
                spec("recent", MapKind::LruHash, 8, 8, 128, 0),
                spec("events", MapKind::RingBuf, 0, 0, 4096, 0),
                spec("scratch", MapKind::PerCpuArray, 4, 12, 2, 0),
                spec("jumps", MapKind::ProgArray, 4, 4, 8, 0),
            ],
            "{file}"
        );
        assert_eq!(obj.license.as_deref(), Some("GPL"));
        assert_eq!(obj.version, None);
        let count = obj.program("xdp").unwrap();
        let refs: Vec<String> = map_refs(&obj, count).into_iter().map(|r| r.1).collect();
        assert_eq!(
            refs,
            ["stats", "flows", "recent", "events", "scratch"],
            "{file}"
        );
        let dispatch = obj.program("tc").unwrap();
        assert_eq!(dispatch.name, "dispatch");
        let refs: Vec<String> = map_refs(&obj, dispatch).into_iter().map(|r| r.1).collect();
        assert_eq!(refs, ["jumps"]);
    }
}

#[test]
fn btf_map_lddw_pcs_match_objdump() {
    let (_, obj) = load("maps.o");
    // objdump -d -r maps.o: 5: R_BPF_64_64 stats, 25: flows, 34: recent, 40: events,
    // 48: `r1 = 0x78 ll  R_BPF_64_64 .maps` (the static map through the section symbol).
    let count = obj.program("count").unwrap();
    let p = |n| Pc(n);
    assert_eq!(
        map_refs(&obj, count),
        [
            (p(5), "stats".to_string()),
            (p(25), "flows".to_string()),
            (p(34), "recent".to_string()),
            (p(40), "events".to_string()),
            (p(48), "scratch".to_string()),
        ]
    );
    // The second slot carries no offset for a map handle.
    assert_eq!(count.program.insns()[49].imm, 0);
    assert_eq!(count.program.insns()[48].imm, 4);
    assert_eq!(count.program.insns()[48].src, 5);
}

#[test]
fn btf_maps_without_btf_are_an_error_naming_the_section() {
    let err = parse(&read("maps-nobtf.o")).unwrap_err();
    assert!(
        matches!(
            &err,
            ElfError::Section { section, kind: SectionErrorKind::MissingBtf } if section == ".maps"
        ),
        "{err}"
    );
}

#[test]
fn legacy_maps_section() {
    for file in ["legacy.o", "legacy-g.o"] {
        let (_, obj) = load(file);
        // readelf -s: counters@0 and sessions@0x14 in `maps`, 20 bytes each.
        assert_eq!(
            obj.maps,
            [
                spec("counters", MapKind::Array, 4, 8, 64, 0),
                spec("sessions", MapKind::Hash, 16, 32, 512, 1),
            ],
            "{file}"
        );
        let p = obj.program("socket").unwrap();
        // objdump: 4: R_BPF_64_64 counters, 16: R_BPF_64_64 sessions.
        assert_eq!(
            map_refs(&obj, p),
            [
                (Pc(4), "counters".to_string()),
                (Pc(16), "sessions".to_string())
            ],
            "{file}"
        );
    }
}

fn data_map(obj: &Object, name: &str) -> MapSpec {
    obj.map(name)
        .unwrap_or_else(|| panic!("no map {name} in {:?}", obj.maps))
        .clone()
}

#[test]
fn global_data_sections_become_array_maps() {
    for file in ["globals.o", "globals-g.o", "globals-v1.o"] {
        let (_, obj) = load(file);
        let names: Vec<&str> = obj.maps.iter().map(|m| m.name.as_str()).collect();
        // readelf -S: .data, .rodata, .bss, .rodata.str1.1 in that order.
        assert_eq!(
            names,
            [".data", ".rodata", ".bss", ".rodata.str1.1"],
            "{file}"
        );
        for m in &obj.maps {
            assert_eq!(
                (m.kind, m.key_size, m.max_entries),
                (MapType::Kind(MapKind::Array), 4, 1)
            );
            let data = m.initial_data.as_ref().expect("global data has a value");
            assert_eq!(data.len() as u32, m.value_size);
            let ro = m.name.starts_with(".rodata");
            assert_eq!(m.read_only, ro, "{}", m.name);
            let flags = BPF_F_MMAPABLE | if ro { BPF_F_RDONLY_PROG } else { 0 };
            assert_eq!(m.flags, flags, "{}", m.name);
        }
        // readelf -x .data: hits = 1 (u64), then table = {10, 20, 30, 40}.
        let mut data = 1u64.to_le_bytes().to_vec();
        for v in [10u32, 20, 30, 40] {
            data.extend(v.to_le_bytes());
        }
        assert_eq!(data_map(&obj, ".data").initial_data, Some(data));
        // readelf -x .rodata: knob = 42, padding, cfg = {1, 2, 3}.
        let mut rodata = 42u32.to_le_bytes().to_vec();
        rodata.extend([0; 4]);
        rodata.extend(1u32.to_le_bytes());
        rodata.extend(2u32.to_le_bytes());
        rodata.extend(3u64.to_le_bytes());
        assert_eq!(data_map(&obj, ".rodata").initial_data, Some(rodata));
        // .bss: 12 bytes (total u64 + the one scratch element clang kept), all zero.
        assert_eq!(data_map(&obj, ".bss").initial_data, Some(vec![0; 12]));
        assert_eq!(
            data_map(&obj, ".rodata.str1.1").initial_data,
            Some(b"hits %llu\n\0total %llu\n\0".to_vec())
        );

        // Every relocated lddw, whatever the pcs of this variant: static variables through
        // the section symbol plus imm, globals through their own symbol.
        let p = obj.program("globals").unwrap();
        let mut refs: Vec<(String, u32)> = value_refs(&obj, p)
            .into_iter()
            .map(|(_, n, o)| (n, o))
            .collect();
        refs.sort();
        let r = |n: &str, o| (n.to_string(), o);
        assert_eq!(
            refs,
            [
                r(".bss", 0),
                r(".bss", 8),
                r(".data", 0),
                r(".data", 8),
                r(".data", 8),
                r(".rodata", 0),
                r(".rodata", 8),
                r(".rodata.str1.1", 0),
                r(".rodata.str1.1", 11),
            ],
            "{file}"
        );
        assert!(map_refs(&obj, p).is_empty());
    }
}

#[test]
fn global_data_lddw_pcs_match_objdump() {
    let (_, obj) = load("globals.o");
    let p = obj.program("xdp").unwrap();
    let r = |pc, n: &str, o| (Pc(pc), n.to_string(), o);
    // objdump -d -r globals.o: 3 and 5: `0x8 ll .data` (table); 11: knob; 15: hits;
    // 20: cfg (.rodata+8); 24: `0x8 ll .bss` (scratch); 28: total; 33 and 38: the two strings.
    assert_eq!(
        value_refs(&obj, p),
        [
            r(3, ".data", 8),
            r(5, ".data", 8),
            r(11, ".rodata", 0),
            r(15, ".data", 0),
            r(20, ".rodata", 8),
            r(24, ".bss", 8),
            r(28, ".bss", 0),
            r(33, ".rodata.str1.1", 0),
            r(38, ".rodata.str1.1", 11),
        ]
    );
    // Index 0 is .data: the first slot holds the index, the second the offset.
    assert_eq!((p.program.insns()[3].src, p.program.insns()[3].imm), (6, 0));
    assert_eq!(p.program.insns()[4].imm, 8);
}

#[test]
fn debug_info_does_not_change_the_programs() {
    for (plain, debug) in [
        ("multi-v3.o", "multi-v3-g.o"),
        ("globals.o", "globals-g.o"),
        ("legacy.o", "legacy-g.o"),
    ] {
        let (_, a) = load(plain);
        let (_, mut b) = load(debug);
        // Only the context type differs: BTF names it, the plain build cannot.
        for p in &mut b.programs {
            p.ctx_type_name = None;
        }
        assert_eq!(a.programs, b.programs, "{plain} vs {debug}");
        assert_eq!(a.maps, b.maps, "{plain} vs {debug}");
    }
}

#[test]
fn code_without_function_symbols_is_one_program_named_after_its_section() {
    let (_, obj) = load("raw.o");
    assert_eq!(obj.programs.len(), 1);
    let p = obj.program("raw/asm").unwrap();
    assert_eq!(
        (p.name.as_str(), p.section.as_str()),
        ("raw/asm", "raw/asm")
    );
    // objdump: r0 = 0x1; if r1 == 0x0 goto +0x1; r0 = 0x2; exit.
    let listing: Vec<String> = p.program.iter().map(|(_, op)| op.to_string()).collect();
    assert_eq!(listing, ["mov r0, 1", "jeq r1, 0, +1", "mov r0, 2", "exit"]);
    assert_eq!(p.insn_count, 4);
    assert_eq!(obj.license, None);
}

#[test]
fn each_programs_context_type_is_read_from_its_btf_first_parameter() {
    // bpftool btf dump file ctxtypes.o: cls_in's parameter is PTR -> STRUCT '__sk_buff';
    // xdp_typedef's is CONST -> PTR -> TYPEDEF 'cv_xdp_t' -> CONST -> VOLATILE -> TYPEDEF
    // 'xdp_ctx_t' -> FWD 'xdp_md'; regs_fwd's is PTR -> FWD 'pt_regs'; plain_void's is
    // PTR -> void; plain_int's is PTR -> INT.
    let (_, obj) = load("ctxtypes.o");
    let ctx = |name: &str| {
        obj.programs
            .iter()
            .find(|p| p.name == name)
            .unwrap_or_else(|| panic!("no program {name}"))
            .ctx_type_name
            .clone()
    };
    assert_eq!(ctx("cls_in").as_deref(), Some("__sk_buff"));
    assert_eq!(ctx("xdp_typedef").as_deref(), Some("xdp_md"));
    assert_eq!(ctx("regs_fwd").as_deref(), Some("pt_regs"));
    assert_eq!(ctx("plain_void"), None);
    assert_eq!(ctx("plain_int"), None);
    let sections: Vec<_> = obj.programs.iter().map(|p| p.section.as_str()).collect();
    assert_eq!(
        sections,
        ["ingress", "mapper", "probe_here", "out", "unwrap"]
    );
    // The same source without -g: the same programs, and no BTF to name a context.
    let (_, bare) = load("ctxtypes-nobtf.o");
    assert_eq!(bare.programs.len(), 5);
    assert!(bare.programs.iter().all(|p| p.ctx_type_name.is_none()));
}

#[test]
fn programs_of_typed_sections_carry_their_context_type_too() {
    // multi.c: `int xdp_pass(struct xdp_md *ctx)`, `int sock_main(struct xdp_md *skb)`,
    // `int cls(void *skb)`; only the -g build has BTF.
    let (_, obj) = load("multi-v3-g.o");
    let ctx = |name: &str| {
        obj.programs
            .iter()
            .find(|p| p.name == name)
            .and_then(|p| p.ctx_type_name.as_deref())
    };
    assert_eq!(ctx("xdp_pass"), Some("xdp_md"));
    assert_eq!(ctx("sock_main"), Some("xdp_md"));
    assert_eq!(ctx("cls"), None);
    let (_, bare) = load("multi-v3.o");
    assert!(bare.programs.iter().all(|p| p.ctx_type_name.is_none()));
}
