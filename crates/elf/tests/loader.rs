//! What the loader reports for the map and extern forms of real projects, on the committed
//! clang objects of `tests/objects/` (sources and build commands beside them): iproute2's
//! `struct bpf_elf_map` with pinning and map-in-map links, BTF `values` initialisers of
//! program arrays and maps of maps, ring buffer sizes, `__kconfig` and `__ksym` externs, and
//! functions left unresolved by static linking. Expected pcs are quoted from
//! `llvm-objdump-19 -d -r`.

use bpfx_bytecode::{CallTarget, Imm64, Op, Pc};
use bpfx_elf::{
    BPF_F_MMAPABLE, BPF_F_RDONLY_PROG, DEFAULT_KERNEL_VERSION, Extern, ExternKind, ExternUse,
    KCONFIG_MAP, KconfigType, MapInit, MapKind, MapSpec, MapType, Object, POISON_CALL_BASE, parse,
};

fn read(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/objects/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn load(name: &str) -> Object {
    parse(&read(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn index(obj: &Object, name: &str) -> usize {
    obj.maps
        .iter()
        .position(|m| m.name == name)
        .unwrap_or_else(|| panic!("no map {name}"))
}

/// (name, kind, key size, value size, max entries, flags, pinning) of a map.
fn shape(m: &MapSpec) -> (&str, MapKind, u32, u32, u32, u32, u32) {
    (
        &m.name,
        m.kind.kind().expect("a kind bpfx implements"),
        m.key_size,
        m.value_size,
        m.max_entries,
        m.flags,
        m.pinning,
    )
}

#[test]
fn iproute2_elf_maps_with_pinning() {
    let obj = load("elf_map.o");
    let shapes: Vec<_> = obj.maps.iter().map(shape).collect();
    assert_eq!(
        shapes,
        [
            ("pkt_stats", MapKind::Array, 4, 8, 3, 0, 2), // PIN_GLOBAL_NS
            ("per_proto", MapKind::Hash, 2, 8, 64, 0, 1), // PIN_OBJECT_NS
        ]
    );
    assert_eq!(obj.maps[1].legacy_id, 7);
    assert!(
        obj.maps
            .iter()
            .all(|m| m.inner.is_none() && m.init.is_empty())
    );
    let names: Vec<_> = obj.programs.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["xdp_count"]);
}

#[test]
fn em_none_object_loads_as_its_em_bpf_original() {
    // elf_map.o with e_machine (bytes 18-19) zeroed, as older LLVM wrote it.
    let mut em0 = read("elf_map.o");
    em0[18..20].fill(0);
    assert_eq!(parse(&em0).unwrap(), load("elf_map.o"));
}

#[test]
fn iproute2_map_in_map_links() {
    let obj = load("elf_map_in_map.o");
    let outer = &obj.maps[index(&obj, "rule_sets")];
    assert_eq!(outer.kind, MapType::Kind(MapKind::ArrayOfMaps));
    // The inner template is the map whose id is the outer map's inner_id (the first such),
    // without its pinning.
    let inner = outer.inner.as_deref().expect("inner template");
    assert_eq!(
        shape(inner),
        ("rule_sets.inner", MapKind::Array, 4, 4, 16, 0, 0)
    );
    // Maps with that id and an inner_idx other than -1 sit at that key.
    assert_eq!(
        outer.init,
        [
            (0, MapInit::Map(index(&obj, "v4_rules"))),
            (2, MapInit::Map(index(&obj, "v6_rules"))),
        ]
    );
    assert_eq!(obj.maps[index(&obj, "v4_rules")].legacy_id, 21);
    assert!(obj.maps[index(&obj, "spare_rules")].init.is_empty());
}

#[test]
fn prog_array_values_name_programs() {
    let obj = load("tailcall.o");
    let handlers = obj.map("handlers").unwrap();
    assert_eq!(
        shape(handlers),
        ("handlers", MapKind::ProgArray, 4, 4, 4, 0, 0),
        "__array(values, int (void *)) gives 4-byte values"
    );
    assert_eq!(
        handlers.init,
        [
            (0, MapInit::Program("handle_ipv4".into())),
            (2, MapInit::Program("handle_arp".into())),
        ]
    );
    let names: Vec<_> = obj.programs.iter().map(|p| p.name.as_str()).collect();
    // By offset: clang emits the forward-declared handlers first.
    assert_eq!(names, ["handle_ipv4", "handle_arp", "dispatch"]);
}

#[test]
fn maps_of_maps_ringbuf_and_placement_members() {
    let obj = load("mapinmap.o");
    let policies = obj.map("policies").unwrap();
    assert_eq!(
        shape(policies),
        ("policies", MapKind::HashOfMaps, 4, 4, 16, 0, 0)
    );
    assert_eq!(
        shape(policies.inner.as_deref().expect("inner definition")),
        ("policies.inner", MapKind::Array, 4, 8, 8, 0, 0)
    );
    assert_eq!(
        policies.init,
        [
            (4, MapInit::Map(index(&obj, "allow_v4"))),
            (6, MapInit::Map(index(&obj, "allow_v6"))),
        ]
    );
    let by_slot = obj.map("by_slot").unwrap();
    assert_eq!(
        shape(by_slot),
        ("by_slot", MapKind::ArrayOfMaps, 4, 4, 2, 0, 0)
    );
    assert_eq!(
        shape(
            by_slot
                .inner
                .as_deref()
                .expect("anonymous inner definition")
        ),
        ("by_slot.inner", MapKind::Hash, 4, 4, 32, 0, 0)
    );
    assert!(by_slot.init.is_empty());
    assert_eq!(
        shape(obj.map("events").unwrap()),
        ("events", MapKind::RingBuf, 0, 0, 8192, 0, 0),
        "5000 bytes rounded up to a power-of-two number of 4096-byte pages"
    );
    let pinned = obj.map("pinned").unwrap();
    assert_eq!(
        shape(pinned),
        ("pinned", MapKind::Hash, 4, 8, 128, 1, 1) // BPF_F_NO_PREALLOC, LIBBPF_PIN_BY_NAME
    );
    assert_eq!(pinned.numa_node, 1);
    assert_eq!(pinned.map_extra, 0);
    let seen = obj.map("seen").unwrap();
    assert_eq!(shape(seen), ("seen", MapKind::BloomFilter, 0, 8, 256, 0, 0));
    assert_eq!(seen.map_extra, 3, "the bloom filter's hash count");
}

/// Every `lddw` that loads a map value address: (pc, map name, offset).
fn value_refs(obj: &Object, program: &str) -> Vec<(Pc, String, u32)> {
    obj.program(program)
        .unwrap()
        .program
        .iter()
        .filter_map(|(pc, op)| match *op {
            Op::LoadImm64 {
                value: Imm64::MapIdxValue { idx, off },
                ..
            } => Some((pc, obj.maps[idx as usize].name.clone(), off)),
            _ => None,
        })
        .collect()
}

#[test]
fn kconfig_externs_are_laid_out_in_the_kconfig_map() {
    let obj = load("kconfig.o");
    let kconfig = |name: &str| obj.extern_named(name).expect(name).clone();
    let k = |offset, size, ty| ExternKind::Kconfig { offset, size, ty };
    // libbpf's layout: by alignment (largest first), then size, then name.
    let uint = KconfigType::Int { signed: false };
    let int = KconfigType::Int { signed: true };
    let want = [
        ("CONFIG_STRONG_AND_ABSENT", false, k(0, 8, uint)),
        ("CONFIG_BPF_JIT", true, k(8, 4, KconfigType::Tristate)),
        ("CONFIG_HZ", false, k(12, 4, int)),
        ("LINUX_KERNEL_VERSION", false, k(16, 4, uint)),
        ("CONFIG_NO_SUCH_OPTION", true, k(20, 1, KconfigType::Bool)),
        (
            "CONFIG_DEFAULT_HOSTNAME",
            true,
            k(21, 8, KconfigType::CharArray),
        ),
    ];
    for (name, weak, kind) in want {
        assert_eq!(
            kconfig(name),
            Extern {
                name: name.into(),
                weak,
                kind
            }
        );
    }
    assert_eq!(obj.externs.len(), want.len());
    let map = obj.map(KCONFIG_MAP).expect("the .kconfig map");
    assert_eq!(
        (map.kind, map.key_size, map.value_size, map.max_entries),
        (MapType::Kind(MapKind::Array), 4, 29, 1)
    );
    assert!(map.read_only);
    assert_eq!(map.flags, BPF_F_MMAPABLE | BPF_F_RDONLY_PROG);
    assert_eq!(obj.kconfig_map(), Some(index(&obj, KCONFIG_MAP)));
    // Each lddw of an extern points at its bytes (offset plus the access's addend).
    let offsets: Vec<u32> = value_refs(&obj, "report")
        .into_iter()
        .filter(|(_, m, _)| m == KCONFIG_MAP)
        .map(|(_, _, off)| off)
        .collect();
    let mut sorted = offsets.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, [8, 12, 16, 20, 21]);
    // Every instruction referring to an extern is recorded on its program.
    let report = obj.program("report").unwrap();
    assert_eq!(report.externs.len(), offsets.len());
    assert!(report.externs.iter().all(|u| !u.call));
    let strong = obj.program("needs_strong").unwrap();
    let uses: Vec<_> = strong
        .externs
        .iter()
        .map(|u| obj.externs[u.index].name.as_str())
        .collect();
    assert_eq!(uses, ["CONFIG_STRONG_AND_ABSENT"]);
}

#[test]
fn kconfig_values_follow_libbpf_rules() {
    let obj = load("kconfig.o");
    let given = |name: &str| match name {
        "CONFIG_HZ" => Some("250".to_string()),
        "CONFIG_BPF_JIT" => Some("m".to_string()),
        "CONFIG_DEFAULT_HOSTNAME" => Some("\"bpfx-host\"".to_string()),
        _ => None,
    };
    let v = obj.kconfig_value(given).unwrap().expect("kconfig externs");
    let mut want = vec![0u8; 29];
    want[8..12].copy_from_slice(&2u32.to_le_bytes()); // TRI_MODULE
    want[12..16].copy_from_slice(&250i32.to_le_bytes());
    want[16..20].copy_from_slice(&DEFAULT_KERNEL_VERSION.to_le_bytes());
    want[21..29].copy_from_slice(b"bpfx-ho\0"); // truncated to leave the NUL
    assert_eq!(v.bytes, want);
    // The unknown weak option stays 0; the strong one without a value is reported.
    let strong = obj
        .externs
        .iter()
        .position(|e| e.name == "CONFIG_STRONG_AND_ABSENT")
        .unwrap();
    assert_eq!(v.unset, [strong]);
    // The embedder's kernel version replaces the default; a value of the wrong type is an
    // error naming the extern.
    let v = obj
        .kconfig_value(|n| (n == "LINUX_KERNEL_VERSION").then(|| "0x050f00".to_string()))
        .unwrap()
        .unwrap();
    assert_eq!(v.bytes[16..20], 0x050f00u32.to_le_bytes());
    let e = obj
        .kconfig_value(|n| (n == "CONFIG_HZ").then(|| "y".to_string()))
        .unwrap_err();
    assert_eq!(e.name, "CONFIG_HZ");
    assert!(e.to_string().contains("CONFIG_HZ"), "{e}");
    assert_eq!(load("tailcall.o").kconfig_value(|_| None).unwrap(), None);
}

#[test]
fn ksyms_and_unresolved_functions_are_recorded_per_program() {
    let obj = load("ksym.o");
    let kinds: Vec<_> = obj
        .externs
        .iter()
        .map(|e| (e.name.as_str(), e.weak, e.kind))
        .collect();
    assert_eq!(
        kinds,
        [
            ("bpf_obj_new_impl", false, ExternKind::KsymFunc),
            ("bpf_prog_active", false, ExternKind::KsymVar),
            ("bpf_optional_kfunc", true, ExternKind::KsymFunc),
            ("helper_from_other_object", false, ExternKind::Unresolved),
        ]
    );
    let uses = |p: &str| -> Vec<(u32, &str, bool)> {
        obj.program(p)
            .unwrap()
            .externs
            .iter()
            .map(|u| (u.pc.0, obj.externs[u.index].name.as_str(), u.call))
            .collect()
    };
    // objdump: counts has no extern; allocates `15: call -0x1` (insn 2 of the function);
    // reads_ksym `21: r1 = 0x0 ll` (insn 0); probes_weak `28: r1 = 0x0 ll` and `32: call`
    // (insns 0 and 4); links_elsewhere `48: call -0x1` (insn 1).
    assert!(uses("counts").is_empty());
    assert_eq!(uses("allocates"), [(2, "bpf_obj_new_impl", true)]);
    assert_eq!(uses("reads_ksym"), [(0, "bpf_prog_active", false)]);
    assert_eq!(
        uses("probes_weak"),
        [
            (0, "bpf_optional_kfunc", false),
            (4, "bpf_optional_kfunc", true)
        ]
    );
    assert_eq!(
        uses("links_elsewhere"),
        [(1, "helper_from_other_object", true)]
    );
    // A kernel symbol's address loads 0 (libbpf's value for an absent weak one), and a
    // call of an extern becomes a call of a helper no one defines, naming the extern.
    let probes = &obj.program("probes_weak").unwrap().program;
    assert_eq!(
        probes.get(Pc(0)),
        Some(&Op::LoadImm64 {
            dst: bpfx_bytecode::Reg::R1,
            value: Imm64::Value(0)
        })
    );
    assert_eq!(
        probes.get(Pc(4)),
        Some(&Op::Call(CallTarget::Helper(POISON_CALL_BASE as u32 + 2)))
    );
    let first = obj.program("allocates").unwrap().externs[0];
    assert_eq!(
        first,
        ExternUse {
            pc: Pc(2),
            index: 0,
            call: true
        }
    );
}

#[test]
fn iproute2_tail_call_sections_fill_the_program_array_of_their_id() {
    let obj = load("elf_tailcall.o");
    let jmp = obj.map("jmp_table").unwrap();
    assert_eq!(shape(jmp), ("jmp_table", MapKind::ProgArray, 4, 4, 8, 0, 2));
    // Sections "9/1" and "0x9/5" (the id read as C reads it).
    assert_eq!(
        jmp.init,
        [
            (1, MapInit::Program("cls_one".into())),
            (5, MapInit::Program("cls_five".into())),
        ]
    );
    assert!(obj.map("hits").unwrap().init.is_empty());
}

/// (name, section, offset, size) of every global variable.
fn globals(obj: &Object) -> Vec<(String, String, u32, u32)> {
    let mut g: Vec<_> = obj
        .globals
        .iter()
        .map(|g| {
            (
                g.name.clone(),
                obj.maps[g.map].name.clone(),
                g.offset,
                g.size,
            )
        })
        .collect();
    g.sort();
    g
}

#[test]
fn global_variables_come_from_btf_datasecs_or_else_the_symbols() {
    let with_btf = load("globals-g.o");
    let got = globals(&with_btf);
    let names: Vec<&str> = got.iter().map(|g| g.0.as_str()).collect();
    assert_eq!(
        names,
        ["cfg", "hits", "knob", "scratch.0", "table", "total"],
        "static variables included (clang split `scratch`, of which one element is used), \
         string literals (no VAR) not"
    );
    let find = |n: &str| got.iter().find(|g| g.0 == n).unwrap().clone();
    assert_eq!(find("cfg").3, 16);
    assert_eq!(find("knob").3, 4);
    assert_eq!(find("table").3, 16);
    assert_eq!(find("scratch.0").3, 4);
    assert_eq!(find("hits").1, ".data");
    assert_eq!(find("knob").1, ".rodata");
    assert_eq!(find("total").1, ".bss");
    // Variables of one section do not overlap, and each lies inside its section's value.
    for (name, section, offset, size) in &got {
        let value = with_btf.map(section).unwrap().value_size;
        assert!(offset + size <= value, "{name}");
        for (other, s2, o2, z2) in &got {
            if other != name && s2 == section {
                assert!(offset + size <= *o2 || o2 + z2 <= *offset, "{name} {other}");
            }
        }
    }
    assert_eq!(with_btf.global("knob").map(|g| g.size), Some(4));
    assert!(with_btf.global("nope").is_none());
    // Without BTF, the symbols: the same globals at the same places (static ones are local
    // symbols clang keeps with their sizes).
    let without = globals(&load("globals.o"));
    for g in &without {
        assert!(got.contains(g), "{g:?} not in {got:?}");
    }
    assert!(without.iter().any(|g| g.0 == "hits"));
}

/// A pinning value of another loader (cilium's CILIUM_PIN_REPLACE, 16) is kept and reported,
/// as libbpf's are: bpfx pins nothing, so no value stops the object from loading.
#[test]
fn pinning_values_of_other_loaders_are_reported() {
    let obj = load("pin_custom.o");
    assert_eq!(
        shape(obj.map("calls").unwrap()),
        ("calls", MapKind::ProgArray, 4, 4, 4, 0, 16)
    );
    assert_eq!(
        shape(obj.map("marks").unwrap()),
        ("marks", MapKind::Hash, 4, 8, 64, 0, 1)
    );
    let sections: Vec<_> = obj
        .programs
        .iter()
        .map(|p| (p.name.as_str(), p.section.as_str()))
        .collect();
    assert_eq!(sections, [("tail_count", "tc/tail"), ("entry", "tc/entry")]);
}
