//! Global variables by name (`objects/globals_named.c`): found through the object's BTF
//! `DATASEC`s, set and read by the host with their sizes checked, seen by programs on every
//! engine (the interpreter, the JIT under each option set), `.rodata` fixed once a program
//! using it is prepared.

use bpfx::{Array, Error, Global, JitOptions, Mode, Object, Pod, Program};
use bpfx_testkit::matrix;
use std::path::PathBuf;

fn open() -> Object {
    let path = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/objects"))
        .join("globals_named.o");
    Object::open(path).unwrap()
}

/// Program `name` on the interpreter (`None`) or the JIT with `opts`.
fn prepare(obj: &Object, name: &str, opts: &Option<JitOptions>) -> Program {
    let v = obj.program(name).unwrap().verify(Mode::Checked).unwrap();
    match opts {
        None => v.interpret(),
        Some(o) => v.compile_with(o).unwrap(),
    }
}

/// `struct totals { __u32 calls; /* padding */ __u64 sum; }`
#[derive(Debug, PartialEq)]
struct Totals {
    calls: u32,
    sum: u64,
}

impl Pod for Totals {
    const SIZE: usize = 16;
    fn from_bytes(b: &[u8]) -> Self {
        Totals {
            calls: u32::from_bytes(&b[..4]),
            sum: u64::from_bytes(&b[8..]),
        }
    }
    fn write_bytes(&self, out: &mut [u8]) {
        self.calls.write_bytes(&mut out[..4]);
        self.sum.write_bytes(&mut out[8..]);
    }
}

#[test]
fn globals_are_listed_by_section_with_their_btf_offsets_and_sizes() {
    let obj = open();
    // Their layouts are checked in the next test.
    let got: Vec<Global<'_>> = obj
        .globals()
        .map(|g| Global { layout: None, ..g })
        .collect();
    let g = |name, section, offset, size, read_only| Global {
        name,
        section,
        offset,
        size,
        read_only,
        layout: None,
    };
    // clang orders a section's variables as it lays them out; the listing is by offset.
    let mut want = vec![
        g("scale", ".rodata", 0, 8, true),
        g("threshold", ".rodata", 8, 8, true),
        g("offset", ".data", 0, 8, false),
        g("enabled", ".data", 8, 1, false),
        g("hits", ".data.stats", 0, 4, false),
        g("totals", ".bss", 0, 16, false),
        g("last", ".bss", 16, 8, false),
    ];
    let order = |x: &Global<'_>| (x.section.to_string(), x.offset);
    want.sort_by_key(order);
    let mut sorted = got.clone();
    sorted.sort_by_key(order);
    assert_eq!(sorted, want);
}

/// Each global's type as its BTF describes it: integers with their size and sign, an array,
/// a struct with its members' bit offsets (the padding skipped).
#[test]
fn globals_come_with_their_btf_layouts() {
    use bpfx::elf::{Field, Layout};
    let obj = open();
    let layout = |name: &str| {
        obj.globals()
            .find(|g| g.name == name)
            .and_then(|g| g.layout.cloned())
            .unwrap_or_else(|| panic!("{name} has a layout"))
    };
    let u = |size| Layout::Int {
        size,
        signed: false,
    };
    assert_eq!(layout("scale"), u(8));
    assert_eq!(layout("enabled"), u(1));
    assert_eq!(
        layout("threshold"),
        Layout::Array {
            elem: Box::new(u(2)),
            len: 4
        }
    );
    let field = |name: &str, bit_offset, layout| Field {
        name: name.to_string(),
        bit_offset,
        bits: 0,
        layout,
    };
    assert_eq!(
        layout("totals"),
        Layout::Struct {
            size: 16,
            fields: vec![field("calls", 0, u(4)), field("sum", 64, u(8))],
        }
    );
}

#[test]
fn programs_see_what_the_host_sets_and_the_host_reads_what_programs_write() {
    for (engine, opts) in matrix() {
        let obj = open();
        // Initial values, from the sections' bytes.
        assert_eq!(obj.get_global::<u64>("scale").unwrap(), 2);
        assert_eq!(
            obj.get_global::<[u16; 4]>("threshold").unwrap(),
            [1, 2, 3, 4]
        );
        assert_eq!(obj.get_global::<u64>("offset").unwrap(), 5);
        // .rodata is set before the programs are prepared.
        obj.set_global("scale", 10u64).unwrap();
        obj.set_global("threshold", [7u16, 8, 9, 1000]).unwrap();
        let mut apply = prepare(&obj, "apply", &opts);
        let mut limits = prepare(&obj, "limits", &opts);
        assert_eq!(
            apply.run(&mut 3u64.to_le_bytes()).unwrap(),
            35,
            "{engine:?}"
        );
        assert_eq!(
            limits.run(&mut 3u32.to_le_bytes()).unwrap(),
            1000,
            "{engine:?}"
        );
        // .data and .bss: set and read at any time, each variable alone.
        obj.set_global("offset", 100u64).unwrap();
        assert_eq!(
            apply.run(&mut 1u64.to_le_bytes()).unwrap(),
            110,
            "{engine:?}"
        );
        assert_eq!(obj.get_global::<u64>("last").unwrap(), 110, "{engine:?}");
        assert_eq!(obj.get_global::<u32>("hits").unwrap(), 2, "{engine:?}");
        assert_eq!(
            obj.get_global::<Totals>("totals").unwrap(),
            Totals { calls: 2, sum: 145 },
            "{engine:?}"
        );
        obj.set_global("enabled", 0u8).unwrap();
        assert_eq!(apply.run(&mut 1u64.to_le_bytes()).unwrap(), 0, "{engine:?}");
        obj.set_global("enabled", 1u8).unwrap();
        obj.set_global(
            "totals",
            Totals {
                calls: 0,
                sum: 1 << 40,
            },
        )
        .unwrap();
        apply.run(&mut 1u64.to_le_bytes()).unwrap();
        assert_eq!(
            obj.get_global::<Totals>("totals").unwrap(),
            Totals {
                calls: 1,
                sum: (1 << 40) + 110
            },
            "{engine:?}"
        );
        // Setting one variable leaves its neighbours in the section as they are.
        assert_eq!(obj.get_global::<u64>("offset").unwrap(), 100);
        let data: Array<[u8; 9]> = obj.map_as(".data").unwrap();
        let mut want = 100u64.to_le_bytes().to_vec();
        want.push(1);
        assert_eq!(data.get(0).unwrap().to_vec(), want);
    }
}

#[test]
fn rodata_is_fixed_once_a_program_using_it_is_prepared() {
    let obj = open();
    // Host access to the map does not fix it; preparing a program that reads it does.
    obj.map(".rodata").unwrap();
    obj.set_global("scale", 3u64).unwrap();
    let mut apply = prepare(&obj, "apply", &None);
    let e = obj.set_global("scale", 4u64).unwrap_err();
    assert!(
        matches!(&e, Error::GlobalFrozen { name, section }
            if name == "scale" && section == ".rodata"),
        "{e:?}"
    );
    assert!(e.to_string().contains("set it before verifying"), "{e}");
    assert_eq!(obj.get_global::<u64>("scale").unwrap(), 3, "still readable");
    assert_eq!(apply.run(&mut 2u64.to_le_bytes()).unwrap(), 11);
    // Writable sections stay settable.
    obj.set_global("offset", 0u64).unwrap();
    assert_eq!(apply.run(&mut 2u64.to_le_bytes()).unwrap(), 6);
}

#[test]
fn global_errors_name_the_variable_and_both_sizes() {
    let obj = open();
    let e = obj.set_global("scale", 1u32).unwrap_err();
    assert!(
        matches!(&e, Error::GlobalSize { name, size: 8, ty: "u32", ty_size: 4 } if name == "scale"),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "global `scale` is 8 bytes, the type u32 is 4"
    );
    assert!(matches!(
        obj.get_global::<u8>("totals"),
        Err(Error::GlobalSize { size: 16, .. })
    ));
    let e = obj.get_global::<u64>("nope").unwrap_err();
    match &e {
        Error::NoGlobal { name, available } => {
            assert_eq!(name, "nope");
            assert!(available.iter().any(|n| n == "last"), "{available:?}");
        }
        other => panic!("{other:?}"),
    }
    // An object built by hand has no globals.
    let bare = bpfx::Vm::new().object(vec![], vec![]).unwrap();
    assert_eq!(bare.globals().count(), 0);
    assert!(matches!(
        bare.set_global("x", 0u8),
        Err(Error::NoGlobal { .. })
    ));
}
