//! The memory limit and per-program outcomes, through the API: objects load without creating
//! any map, a map is created (and charged) only when a program naming it is prepared to run or
//! the host asks for it, whatever does not fit is refused before it is allocated, and a map
//! bpfx cannot create fails only the programs that name it. The objects are built from the C
//! sources beside them (`tests/objects/build.sh`).

use bpfx::bytecode::{Program as Bytecode, assemble};
use bpfx::{
    DEFAULT_MEM_LIMIT, Engine, Error, MAX_MAP_BYTES, MapKind, MapSpec, MapSpecExt, Mode, Object,
    ProgramDef, Vm,
};
use bpfx_jit::JitOptions;

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/objects/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn none_created(obj: &Object) -> bool {
    obj.maps().all(|m| m.created().is_none())
}

/// The engine matrix ([`bpfx_testkit::matrix`]: the interpreter, then the JIT under every option
/// set), and the default JIT with the budget charge, which changes the code too.
fn engines() -> Vec<(&'static str, Option<JitOptions>)> {
    let mut engines = bpfx_testkit::matrix();
    let budget = JitOptions {
        budget: true,
        ..JitOptions::default()
    };
    engines.push(("jit-budget", Some(budget)));
    engines
}

#[test]
fn a_huge_lru_map_is_refused_from_its_declaration() {
    let vm = Vm::new();
    let obj = vm.load(&fixture("lru_huge.o")).unwrap();
    assert_eq!(vm.mem_used(), 0);
    let seen = obj.maps().next().unwrap();
    assert_eq!(seen.kind(), Some(MapKind::LruHash));
    // 16M entries: the values are 128 MiB, the bookkeeping beside them far more.
    assert!(seen.spec().is_none(), "the map cannot be created");
    let declared = MapSpec::new("seen", MapKind::LruHash, 4, 4, 1 << 24);
    assert!(declared.memory_bytes().unwrap() > 1 << 30);
    let why = seen.status().unwrap_err();
    assert!(
        why.contains(&format!(
            "more than the {MAX_MAP_BYTES}-byte limit of one map"
        )),
        "{why}"
    );
    for e in [
        obj.program("count")
            .unwrap()
            .verify(Mode::Checked)
            .unwrap_err(),
        obj.program("count")
            .unwrap()
            .check(Mode::Checked)
            .unwrap_err(),
        obj.program_status("count").unwrap_err(),
    ] {
        assert!(
            matches!(&e, Error::MapUnsupported { program, map, .. }
                if program == "count" && map == "seen"),
            "{e}"
        );
    }
    assert!(matches!(obj.map("seen"), Err(Error::MapSpec { .. })));
    assert_eq!(vm.mem_used(), 0);
    assert!(none_created(&obj));
}

#[test]
fn a_huge_map_sized_down_before_loading_is_created_with_its_new_size() {
    // The loader's way (libbpf's `bpf_map__set_max_entries`): the same object, its map given
    // 1024 entries by the `Vm` before the object is opened, loads and runs.
    let vm = Vm::new().max_entries("seen", 1024).max_entries("absent", 3);
    let obj = vm.load(&fixture("lru_huge.o")).unwrap();
    let seen = obj.maps().next().unwrap();
    assert_eq!(seen.max_entries(), 1024);
    let need = seen.status().unwrap();
    assert_eq!(
        need,
        MapSpec::new("seen", MapKind::LruHash, 4, 4, 1024)
            .memory_bytes()
            .unwrap()
    );
    for (name, opts) in engines() {
        let v = obj.program("count").unwrap().verify(Mode::Checked).unwrap();
        let mut p = match &opts {
            None => v.interpret(),
            Some(o) => v.compile_with(o).unwrap(),
        };
        p.set_budget(opts.as_ref().and_then(|o| o.budget.then_some(1000)));
        let verdict = p.run_socket(&[0; 14], &bpfx::SkbMeta::default()).unwrap();
        assert_eq!(verdict.code, 0, "{name}");
    }
    let map = obj.map("seen").unwrap();
    assert_eq!(map.spec().max_entries, 1024);
    assert_eq!(
        map.lookup(&1u32.to_le_bytes()).unwrap(),
        Some(1u32.to_le_bytes().to_vec())
    );
    // A size the kernel refuses is refused as a declared one is.
    let obj = Vm::new()
        .max_entries("seen", 0)
        .load(&fixture("lru_huge.o"))
        .unwrap();
    let why = obj.maps().next().unwrap().status().unwrap_err().to_string();
    assert!(why.contains("max_entries is 0"), "{why}");
}

#[test]
fn maps_that_do_not_fit_together_are_refused_before_any_is_allocated() {
    let vm = Vm::new();
    let obj = vm.load(&fixture("arrays16.o")).unwrap();
    assert_eq!(obj.maps().count(), 16);
    let each = obj.maps().next().unwrap().status().unwrap();
    assert_eq!(each, 128 << 20 | 256, "the values and the map's fixed part");
    // The first seven fit the default 1 GiB limit; the eighth does not.
    let e = obj
        .program("touch_all")
        .unwrap()
        .verify(Mode::Checked)
        .unwrap_err();
    match &e {
        Error::MemoryLimit {
            what,
            need,
            used,
            limit,
        } => {
            assert_eq!(what, "map `a7`");
            assert_eq!((*need, *used, *limit), (each, 7 * each, DEFAULT_MEM_LIMIT));
        }
        e => panic!("{e}"),
    }
    assert_eq!(
        e.to_string(),
        format!(
            "map `a7`: needs {each} bytes, but only {} of the {DEFAULT_MEM_LIMIT}-byte memory \
             limit are left",
            DEFAULT_MEM_LIMIT - 7 * each
        )
    );
    for e in [
        obj.program("touch_all")
            .unwrap()
            .check(Mode::Checked)
            .unwrap_err(),
        obj.program_status("touch_all").unwrap_err(),
    ] {
        assert!(matches!(e, Error::MemoryLimit { .. }), "{e}");
    }
    assert_eq!(vm.mem_used(), 0, "nothing was charged");
    assert!(none_created(&obj), "nothing was allocated");

    // One map alone past a lower limit: refused for a program and for the host alike.
    let vm = Vm::new().mem_limit(64 << 20);
    let obj = vm.load(&fixture("arrays16.o")).unwrap();
    let first = obj
        .program("touch_first")
        .unwrap()
        .verify(Mode::Checked)
        .unwrap_err();
    let host = obj.map("a0").unwrap_err();
    for e in [first, host] {
        assert!(
            matches!(&e, Error::MemoryLimit { what, need, limit, .. }
                if what == "map `a0`" && *need == each && *limit == 64 << 20),
            "{e}"
        );
    }
    assert_eq!(vm.mem_used(), 0);
    assert!(none_created(&obj));
}

#[test]
fn a_program_using_an_unsupported_map_fails_alone() {
    let vm = Vm::new();
    let obj = vm.load(&fixture("mixed.o")).unwrap();
    let maps: Vec<_> = obj
        .maps()
        .map(|m| (m.name(), m.type_name(), m.kernel_type(), m.status().is_ok()))
        .collect();
    assert_eq!(
        maps,
        [
            ("runs", "array", 2, true),
            ("socks", "reuseport_sockarray", 20, false)
        ]
    );
    assert!(obj.program_status("good").is_ok());
    let want =
        "program `bad`: map `socks`: map type 20 (reuseport_sockarray) is not supported by bpfx";
    for e in [
        obj.program_status("bad").unwrap_err(),
        obj.program("bad")
            .unwrap()
            .check(Mode::Checked)
            .unwrap_err(),
        obj.program("bad")
            .unwrap()
            .verify(Mode::Checked)
            .unwrap_err(),
    ] {
        assert_eq!(e.to_string(), want);
    }
    // Verification alone creates nothing; preparing `good` creates `runs`, and only it.
    obj.program("good").unwrap().check(Mode::Checked).unwrap();
    assert_eq!(vm.mem_used(), 0);
    assert!(none_created(&obj));
    let runs_need = obj.maps().next().unwrap().status().unwrap();
    let mut n = 0;
    for engine in Engine::ALL {
        let verified = obj.program("good").unwrap().verify(Mode::Checked).unwrap();
        let mut prog = verified.engine(engine, false).unwrap();
        for _ in 0..2 {
            n += 1;
            let v = prog.run_socket(&[], &bpfx::SkbMeta::default()).unwrap();
            assert_eq!(u64::from(v.code), 40 + n, "{engine:?}");
        }
    }
    let runs = obj.map("runs").unwrap();
    assert_eq!(
        runs.lookup(&0u32.to_le_bytes()).unwrap(),
        Some(4u64.to_le_bytes().to_vec())
    );
    let created: Vec<_> = obj.maps().map(|m| m.created().is_some()).collect();
    assert_eq!(created, [true, false]);
    assert_eq!(vm.mem_used(), runs_need, "the programs were dropped");
    assert!(matches!(
        obj.map("socks"),
        Err(Error::MapSpec { map, .. }) if map == "socks"
    ));
}

fn code(text: &str) -> Bytecode {
    Bytecode::decode(assemble(text).unwrap()).unwrap()
}

#[test]
fn maps_and_code_are_charged_when_created_and_given_back() {
    // A hash map and a lookup in it.
    let spec = MapSpec::new("h", MapKind::Hash, 4, 8, 64);
    let need = spec.memory_bytes().unwrap();
    let prog = "stw [r10-4], 1\nlddw r1, map_idx(0)\nmov r2, r10\nadd r2, -4\ncall 1\n\
                mov r0, 7\nexit";
    let load = |vm: &Vm| {
        vm.object(
            vec![ProgramDef::new("p", "test", code(prog))],
            vec![spec.clone()],
        )
        .unwrap()
    };
    for (_, opts) in engines() {
        let vm = Vm::new().mem_limit(1 << 20);
        let obj = load(&vm);
        assert_eq!(vm.mem_used(), 0);
        let v = obj.program("p").unwrap().verify(Mode::Checked).unwrap();
        assert_eq!(vm.mem_used(), need, "the map, charged once verified");
        let mut p = match &opts {
            None => v.interpret(),
            Some(o) => v.compile_with(o).unwrap(),
        };
        p.set_budget(opts.as_ref().and_then(|o| o.budget.then_some(1000)));
        assert_eq!(p.run(&mut []).unwrap(), 7);
        let code = match p.listing() {
            Some(_) => vm.mem_used() - need,
            None => 0,
        };
        assert_eq!(code % 4096, 0, "{opts:?}: code in whole pages");
        assert_eq!(code > 0, opts.is_some(), "{opts:?}");
        drop(p);
        assert_eq!(vm.mem_used(), need, "{opts:?}: the code's bytes came back");
        drop(obj);
        assert_eq!(vm.mem_used(), 0, "{opts:?}: the map's bytes came back");
    }
    // Host access creates the map and charges it once; the program then shares it.
    let vm = Vm::new().mem_limit(1 << 20);
    let obj = load(&vm);
    let h = obj.map("h").unwrap();
    assert_eq!(vm.mem_used(), need);
    let v = obj.program("p").unwrap().verify(Mode::Checked).unwrap();
    assert_eq!(vm.mem_used(), need, "not charged twice");
    assert!(std::sync::Arc::ptr_eq(
        &h,
        obj.maps().next().unwrap().created().unwrap()
    ));
    drop((v, obj));
    assert_eq!(vm.mem_used(), need, "the host still holds the map");
    drop(h);
    assert_eq!(vm.mem_used(), 0);
    // A limit that holds the map but not the code: compilation is refused, the
    // interpreter still runs.
    let vm = Vm::new().mem_limit(need + 4096);
    let obj = load(&vm);
    let v = obj.program("p").unwrap().verify(Mode::Checked).unwrap();
    let e = v.clone().compile().unwrap_err();
    assert!(
        matches!(&e, Error::MemoryLimit { what, .. } if what == "program `p`: JIT code"),
        "{e}"
    );
    assert_eq!(vm.mem_used(), need);
    assert_eq!(v.interpret().run(&mut []).unwrap(), 7);
    // A limit below the map: refused at verification, nothing taken.
    let vm = Vm::new().mem_limit(need - 1);
    let obj = load(&vm);
    let e = obj.program("p").unwrap().verify(Mode::Checked).unwrap_err();
    assert!(
        matches!(&e, Error::MemoryLimit { what, need: n, limit, .. }
            if what == "map `h`" && *n == need && *limit == need - 1),
        "{e}"
    );
    assert_eq!(vm.mem_used(), 0);
}

#[test]
fn memory_bytes_counts_the_bookkeeping_of_each_kind() {
    let n = 1000;
    let array = MapSpec::new("a", MapKind::Array, 4, 12, n);
    let hash = MapSpec::new("h", MapKind::Hash, 4, 12, n);
    let lru = MapSpec::new("l", MapKind::LruHash, 4, 12, n);
    let ring = MapSpec::new("r", MapKind::RingBuf, 0, 0, 4096);
    let progs = MapSpec::new("p", MapKind::ProgArray, 4, 4, n);
    let bytes = |s: &MapSpec| s.memory_bytes().unwrap();
    // Arrays: the values, 8-byte strided, and the map's fixed part.
    assert_eq!(bytes(&array), 16 * 1000 + 256);
    // Hash maps add a key table, a free list, two copies of each key and the index; LRU adds
    // stamps and the order: each well above the values alone.
    assert!(bytes(&hash) >= bytes(&array) + u64::from(n) * (24 + 4 + 2 * 32 + 33));
    assert!(bytes(&lru) >= bytes(&hash) + u64::from(n) * (8 + 48));
    // Ring buffers: the data and the record queue at its fullest (a record per 8 bytes).
    assert!(bytes(&ring) >= 4096 + 4096 / 8 * 24);
    assert_eq!(bytes(&progs), 8 * 1000 + 256);
    // check() agrees and bounds each map.
    for s in [&array, &hash, &lru, &ring, &progs] {
        assert_eq!(s.check(), Ok(bytes(s)));
    }
    // Overflowing sizes are refused, not wrapped.
    let huge = MapSpec::new("x", MapKind::Hash, u32::MAX, u32::MAX, u32::MAX);
    assert_eq!(huge.memory_bytes(), None);
    assert!(huge.check().unwrap_err().contains("overflows"));
    let big = MapSpec::new("y", MapKind::Array, 4, 1 << 20, 1 << 10);
    assert!(big.check().unwrap_err().contains("limit of one map"));
}
