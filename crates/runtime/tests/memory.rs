//! The memory limit and per-program outcomes, through the API: objects load without creating
//! any map, a map is created (and charged) only when a program naming it is prepared to run or
//! the host asks for it, whatever does not fit is refused before it is allocated, and a map
//! bpfx cannot create fails only the programs that name it. The objects are built from the C
//! sources beside them (`tests/objects/build.sh`).

use bpfx::bytecode::Program as Bytecode;
use bpfx::{
    DEFAULT_MEM_LIMIT, Engine, Error, MapError, MapKind, MapSpec, MapSpecExt, Mode, Object,
    ProgramDef, UpdateFlag, Vm,
};
use bpfx_jit::JitOptions;

mod common;
use common::code;

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
fn a_huge_lru_map_is_created_and_charged_by_use() {
    // 16M entries: the values and the LRU stamps reserve 128 MiB of address space each, and
    // full the map would take more than 1 GiB; as the kernel has no bound of one map, it is
    // created, charged for its fixed part and then for the slots it uses.
    let vm = Vm::new();
    let obj = vm.load(&fixture("lru_huge.o")).unwrap();
    assert_eq!(vm.mem_used(), 0);
    let seen = obj.maps().next().unwrap();
    assert_eq!(seen.kind(), Some(MapKind::LruHash));
    let declared = MapSpec::new("seen", MapKind::LruHash, 4, 4, 1 << 24);
    assert_eq!(seen.status().unwrap(), declared.memory_bytes().unwrap());
    assert!(declared.memory_bytes().unwrap() > 1 << 30);
    let created = seen.creation_bytes().unwrap();
    assert!(created < 64 << 10, "{created}");
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
    assert_eq!(
        map.lookup(&1u32.to_le_bytes()).unwrap(),
        Some(1u32.to_le_bytes().to_vec())
    );
    // The fixed part and one chunk of slots (8,192 of 8-byte values), far below the bound.
    let used = vm.mem_used();
    assert!(used > created && used < created + (8 << 20), "{used}");
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

#[test]
fn maps_and_code_are_charged_when_created_and_given_back() {
    // An array (charged in full at creation) and a lookup in it.
    let spec = MapSpec::new("h", MapKind::Array, 4, 8, 64);
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
    assert!(huge.check().unwrap_err().contains("E2BIG"));
    // No bound of one map but the kernel's: 1 GiB of values checks (the Vm's limit is
    // charged at creation), as does one value of 8 MiB (the kernel's arrays take it); a hash
    // element of 4 MiB with its header is the kernel's E2BIG.
    let big = MapSpec::new("y", MapKind::Array, 4, 1 << 20, 1 << 10);
    assert_eq!(big.check(), Ok((1 << 30) + 256));
    let wide = MapSpec::new("w", MapKind::Array, 4, 8 << 20, 1);
    assert_eq!(wide.check(), Ok((8 << 20) + 256));
    let wide = MapSpec::new("w", MapKind::Hash, 4, 4 << 20, 1);
    assert!(wide.check().unwrap_err().contains("E2BIG"));
}

/// Values of 256 bytes: a chunk of slots (64 KiB of values) is 256 slots.
const VALUE: u32 = 256;
const CHUNK: u32 = 256;

/// A program inserting the next key of a hash map (`h`, map 0) each run, counting in an array
/// (`n`, map 1): returns `map_update_elem`'s result, and advances only when it succeeds.
fn inserter() -> Bytecode {
    let value: String = (0..VALUE / 8)
        .map(|i| format!("stdw [r10-{}], 7\n", 8 + 8 * (i + 1)))
        .collect();
    code(&format!(
        "stw [r10-4], 0\nlddw r1, map_idx(1)\nmov r2, r10\nadd r2, -4\ncall 1\n\
         jne r0, 0, +2\nmov r0, 1\nexit\n\
         mov r7, r0\nldxw r6, [r7+0]\nstxw [r10-8], r6\n{value}\
         lddw r1, map_idx(0)\nmov r2, r10\nadd r2, -8\nmov r3, r10\nadd r3, -{}\nmov r4, 0\n\
         call 2\njne r0, 0, +2\nadd r6, 1\nstxw [r7+0], r6\nexit",
        8 + VALUE
    ))
}

/// A hash-family map of 2^17 declared entries of [`VALUE`] bytes (far past the limits below)
/// and the inserter's counter. The `Vm`s have one CPU, so a per-CPU hash's chunk is
/// [`CHUNK`] slots too.
fn sparse_object(vm: &Vm, kind: MapKind) -> Object {
    vm.object(
        vec![ProgramDef::new("insert", "test", inserter())],
        vec![
            MapSpec::new("h", kind, 4, VALUE, 1 << 17),
            MapSpec::new("n", MapKind::Array, 4, 4, 1),
        ],
    )
    .unwrap()
}

/// What creating the maps of [`sparse_object`] charges, and what one chunk of its slots does.
fn sparse_costs(kind: MapKind) -> (u64, u64) {
    let vm = Vm::new().cpus(1);
    let obj = sparse_object(&vm, kind);
    let (h, _n) = (obj.map("h").unwrap(), obj.map("n").unwrap());
    let created = vm.mem_used();
    let hm = obj.maps().next().unwrap();
    assert!(
        hm.status().unwrap() > 32 << 20,
        "declared far past the limits used"
    );
    assert!(
        hm.creation_bytes().unwrap() < 64 << 10,
        "only the fixed part at creation"
    );
    let host_value = vec![1; h.host_value_size()];
    h.update(&0u32.to_le_bytes(), &host_value, UpdateFlag::Any)
        .unwrap();
    let chunk = vm.mem_used() - created;
    for k in 1..CHUNK {
        h.update(&k.to_le_bytes(), &host_value, UpdateFlag::Any)
            .unwrap();
    }
    assert_eq!(
        vm.mem_used(),
        created + chunk,
        "{kind}: one chunk holds {CHUNK} slots"
    );
    h.update(&CHUNK.to_le_bytes(), &host_value, UpdateFlag::Any)
        .unwrap();
    assert_eq!(vm.mem_used(), created + 2 * chunk, "{kind}: the next chunk");
    (created, chunk)
}

#[test]
fn programs_inserting_past_the_limit_get_enomem_at_the_same_point_on_every_engine() {
    let (created, chunk) = sparse_costs(MapKind::Hash);
    // The maps, three chunks of slots and half a chunk more: the JIT's code fits in the half,
    // a fourth chunk does not.
    let limit = created + 3 * chunk + chunk / 2;
    let enomem = (-12i64) as u64;
    for (name, opts) in engines() {
        let vm = Vm::new().cpus(1).mem_limit(limit);
        let obj = sparse_object(&vm, MapKind::Hash);
        let v = obj
            .program("insert")
            .unwrap()
            .verify(Mode::Checked)
            .unwrap();
        let mut p = match &opts {
            None => v.interpret(),
            Some(o) => v.compile_with(o).unwrap(),
        };
        // A budget for all the runs (shared by them) when the code charges one.
        p.set_budget(opts.as_ref().and_then(|o| o.budget.then_some(1 << 20)));
        let mut inserted = 0;
        let refused = loop {
            let r = p.run(&mut []).unwrap();
            if r != 0 || inserted > 3 * CHUNK {
                break r;
            }
            inserted += 1;
        };
        assert_eq!((inserted, refused), (3 * CHUNK, enomem), "{name}");
        // Nothing lost or half-inserted: the map holds exactly the keys it took.
        let h = obj.map("h").unwrap();
        assert_eq!(h.len(), 3 * CHUNK as usize, "{name}");
        for k in [0u32, 1, CHUNK, 3 * CHUNK - 1] {
            assert_eq!(
                h.lookup(&k.to_le_bytes()).unwrap().map(|v| v[..8].to_vec()),
                Some(7u64.to_le_bytes().to_vec()),
                "{name}: key {k}"
            );
        }
        let next = (3 * CHUNK).to_le_bytes();
        assert_eq!(h.lookup(&next).unwrap(), None, "{name}");
        let counter = obj.map("n").unwrap().lookup(&0u32.to_le_bytes()).unwrap();
        assert_eq!(counter, Some((3 * CHUNK).to_le_bytes().to_vec()), "{name}");
        // The host is refused the same way; existing keys still take updates.
        let value = [9; VALUE as usize];
        assert_eq!(
            h.update(&next, &value, UpdateFlag::Any),
            Err(MapError::NoMemory),
            "{name}"
        );
        assert_eq!(MapError::NoMemory.errno(), 12);
        h.update(&5u32.to_le_bytes(), &value, UpdateFlag::Exist)
            .unwrap();
        // A delete makes room for one insert, which takes no new charge.
        let used = vm.mem_used();
        h.delete(&0u32.to_le_bytes()).unwrap();
        assert_eq!(vm.mem_used(), used, "{name}: the chunk stays charged");
        assert_eq!(p.run(&mut []).unwrap(), 0, "{name}: the freed slot");
        assert_eq!(vm.mem_used(), used, "{name}");
        assert_eq!(p.run(&mut []).unwrap(), enomem, "{name}: full again");
        assert_eq!(h.len(), 3 * CHUNK as usize, "{name}");
        // Everything comes back with the map.
        drop((p, h, obj));
        assert_eq!(vm.mem_used(), 0, "{name}");

        // An LRU map under the same limit never refuses the program: past three chunks it
        // evicts its least recently used key (the oldest, here), as when full.
        let vm = Vm::new().cpus(1).mem_limit(limit);
        let obj = sparse_object(&vm, MapKind::LruHash);
        let v = obj
            .program("insert")
            .unwrap()
            .verify(Mode::Checked)
            .unwrap();
        let mut p = match &opts {
            None => v.interpret(),
            Some(o) => v.compile_with(o).unwrap(),
        };
        p.set_budget(opts.as_ref().and_then(|o| o.budget.then_some(1 << 20)));
        for run in 0..3 * CHUNK + 10 {
            assert_eq!(p.run(&mut []).unwrap(), 0, "{name}: LRU run {run}");
        }
        let h = obj.map("h").unwrap();
        assert_eq!(h.len(), 3 * CHUNK as usize, "{name}: LRU");
        assert_eq!(
            h.lookup(&9u32.to_le_bytes()).unwrap(),
            None,
            "{name}: evicted"
        );
        let last = (3 * CHUNK + 9).to_le_bytes();
        assert!(h.lookup(&last).unwrap().is_some(), "{name}: LRU");
    }
}

#[test]
fn host_inserts_past_the_limit_get_enomem_and_lru_maps_evict() {
    for kind in [
        MapKind::Hash,
        MapKind::PerCpuHash,
        MapKind::LruHash,
        MapKind::LruPerCpuHash,
    ] {
        let (created, chunk) = sparse_costs(kind);
        let vm = Vm::new().cpus(1).mem_limit(created + 2 * chunk + chunk / 2);
        let obj = sparse_object(&vm, kind);
        let h = obj.map("h").unwrap();
        let n = obj.map("n").unwrap();
        let value = |k: u32| {
            let mut v = vec![0; h.host_value_size()];
            v[..4].copy_from_slice(&k.to_le_bytes());
            v
        };
        let lru = matches!(kind, MapKind::LruHash | MapKind::LruPerCpuHash);
        for k in 0..2 * CHUNK {
            h.update(&k.to_le_bytes(), &value(k), UpdateFlag::Any)
                .unwrap();
        }
        let used = vm.mem_used();
        let past = (2 * CHUNK).to_le_bytes();
        if lru {
            // Under a full pool an LRU map evicts, as when full: its least recently used key.
            assert!(
                h.lookup(&1u32.to_le_bytes()).unwrap().is_some(),
                "a use of key 1"
            );
            h.update(&past, &value(2 * CHUNK), UpdateFlag::Any).unwrap();
            assert_eq!(h.lookup(&0u32.to_le_bytes()).unwrap(), None, "{kind}");
            assert!(h.lookup(&1u32.to_le_bytes()).unwrap().is_some(), "{kind}");
            assert_eq!(h.lookup(&past).unwrap(), Some(value(2 * CHUNK)), "{kind}");
        } else {
            assert_eq!(
                h.update(&past, &value(0), UpdateFlag::Any),
                Err(MapError::NoMemory),
                "{kind}"
            );
            assert_eq!(h.lookup(&past).unwrap(), None, "{kind}");
        }
        assert_eq!(h.len(), 2 * CHUNK as usize, "{kind}");
        assert_eq!(vm.mem_used(), used, "{kind}: nothing more charged");
        // The entries walk as before.
        assert_eq!(h.iter().count(), 2 * CHUNK as usize, "{kind}");
        drop((h, n, obj));
        assert_eq!(vm.mem_used(), 0, "{kind}: given back with the map");
    }
}

#[test]
fn an_lru_map_declared_past_the_limit_loads_and_runs() {
    let vm = Vm::new();
    let obj = vm.load(&fixture("lru_2g.o")).unwrap();
    let ct = obj.maps().next().unwrap();
    assert_eq!(
        (ct.kind(), ct.max_entries()),
        (Some(MapKind::LruHash), 4_718_592)
    );
    let full = ct.status().unwrap();
    assert!(full > 2 << 30, "declared: {full}");
    let created = ct.creation_bytes().unwrap();
    assert!(created < 64 << 10, "{created}");
    let mut n = 0;
    for (name, opts) in engines() {
        let v = obj.program("track").unwrap().verify(Mode::Checked).unwrap();
        let mut p = match &opts {
            None => v.interpret(),
            Some(o) => v.compile_with(o).unwrap(),
        };
        p.set_budget(opts.as_ref().and_then(|o| o.budget.then_some(1000)));
        for _ in 0..2 {
            n += 1;
            let verdict = p.run_socket(&[0; 14], &bpfx::SkbMeta::default()).unwrap();
            assert_eq!(verdict.code, n, "{name}");
        }
    }
    // The map holds one entry and one chunk of slots (8,192 of 8-byte values).
    let map = obj.map("ct").unwrap();
    assert_eq!(map.len(), 1);
    let used = vm.mem_used();
    assert!(used > created && used < created + (8 << 20), "{used}");

    // Arrays are still charged in full: one past the limit is refused, naming it, beside a
    // sparse hash map that loads.
    let vm = Vm::new().mem_limit(64 << 20);
    let obj = vm
        .object(
            vec![],
            vec![
                MapSpec::new("ct", MapKind::LruHash, 16, 8, 4_718_592),
                MapSpec::new("big", MapKind::Array, 4, 8, 10 << 20),
            ],
        )
        .unwrap();
    obj.map("ct").unwrap();
    let e = obj.map("big").unwrap_err();
    assert!(
        matches!(&e, Error::MemoryLimit { what, need, .. }
            if what == "map `big`" && *need == (80 << 20) + 256),
        "{e}"
    );
}

#[test]
fn lpm_tries_are_charged_by_use_too() {
    let mut spec = MapSpec::new("t", MapKind::LpmTrie, 8, VALUE, 1 << 17);
    spec.flags = bpfx::BPF_F_NO_PREALLOC;
    let key = |i: u32| {
        let mut k = 32u32.to_le_bytes().to_vec();
        k.extend_from_slice(&i.to_be_bytes());
        k
    };
    let value = [3; VALUE as usize];
    let load = |vm: &Vm| vm.object(vec![], vec![spec.clone()]).unwrap();
    let vm = Vm::new();
    let obj = load(&vm);
    let t = obj.map("t").unwrap();
    let created = vm.mem_used();
    assert_eq!(
        created,
        obj.maps().next().unwrap().creation_bytes().unwrap()
    );
    t.update(&key(0), &value, UpdateFlag::Any).unwrap();
    let chunk = vm.mem_used() - created;
    assert!(chunk > 0 && chunk < 1 << 20, "{chunk}");
    drop((t, obj));
    let vm = Vm::new().mem_limit(created + 2 * chunk + chunk / 2);
    let obj = load(&vm);
    let t = obj.map("t").unwrap();
    for i in 0..2 * CHUNK {
        t.update(&key(i), &value, UpdateFlag::Any).unwrap();
    }
    assert_eq!(
        t.update(&key(2 * CHUNK), &value, UpdateFlag::Any),
        Err(MapError::NoMemory)
    );
    assert_eq!(t.len(), 2 * CHUNK as usize);
    assert_eq!(t.lookup(&key(2 * CHUNK)).unwrap(), None);
    t.delete(&key(7)).unwrap();
    t.update(&key(2 * CHUNK), &value, UpdateFlag::Any).unwrap();
    assert_eq!(t.lookup(&key(2 * CHUNK)).unwrap(), Some(value.to_vec()));
    drop((t, obj));
    assert_eq!(vm.mem_used(), 0);
}

/// katran's `ch_rings`: an array of 33,554,944 `u32`s, 268,439,552 bytes at the 8-byte stride,
/// past the 256 MiB bound of one map bpfx once had (the kernel has none).
const RINGS: u32 = 33_554_944;

/// A program adding 1 to the last element of its array (map 0) and returning the new value.
fn bump_last(entries: u32) -> Bytecode {
    code(&format!(
        "stw [r10-4], {}\nlddw r1, map_idx(0)\nmov r2, r10\nadd r2, -4\ncall 1\n\
         jne r0, 0, +2\nmov r0, 99\nexit\n\
         ldxw r1, [r0+0]\nadd r1, 1\nstxw [r0+0], r1\nmov r0, r1\nexit",
        entries - 1
    ))
}

#[test]
fn an_array_over_256_mib_is_created_under_the_default_limit_on_every_engine() {
    let spec = MapSpec::new("ch_rings", MapKind::Array, 4, 4, RINGS);
    let need = spec.memory_bytes().unwrap();
    assert_eq!(need, 268_439_552 + 256);
    assert_eq!(spec.check(), Ok(need));
    let vm = Vm::new();
    let obj = vm
        .object(
            vec![ProgramDef::new("p", "test", bump_last(RINGS))],
            vec![spec],
        )
        .unwrap();
    assert_eq!(obj.maps().next().unwrap().status(), Ok(need));
    let mut n = 0;
    for (name, opts) in engines() {
        let v = obj.program("p").unwrap().verify(Mode::Checked).unwrap();
        assert!(vm.mem_used() >= need, "{name}: charged whole at creation");
        let mut p = match &opts {
            None => v.interpret(),
            Some(o) => v.compile_with(o).unwrap(),
        };
        p.set_budget(opts.as_ref().and_then(|o| o.budget.then_some(1000)));
        n += 1;
        assert_eq!(p.run(&mut []).unwrap(), n, "{name}");
    }
    let map = obj.map("ch_rings").unwrap();
    assert_eq!(
        map.lookup(&(RINGS - 1).to_le_bytes()).unwrap(),
        Some((n as u32).to_le_bytes().to_vec())
    );
    drop((map, obj));
    assert_eq!(vm.mem_used(), 0);
}

/// Resident bytes of this process (`/proc/self/statm`, in 4 KiB pages), or `None` where
/// there is no such file.
fn resident() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    Some(statm.split_whitespace().nth(1)?.parse::<u64>().ok()? * 4096)
}

/// Set in the environment of the child [`an_array_costs_no_resident_memory_until_touched`]
/// measures itself in, alone (other tests of this binary allocate in parallel).
const RSS_CHILD: &str = "BPFX_MEMORY_RSS_CHILD";

#[test]
fn an_array_costs_no_resident_memory_until_touched() {
    if std::env::var_os(RSS_CHILD).is_none() {
        if resident().is_none() {
            eprintln!("SKIPPED: no /proc/self/statm");
            return;
        }
        let (ok, text) = common::rerun_alone(
            "an_array_costs_no_resident_memory_until_touched",
            RSS_CHILD,
            &[],
        );
        assert!(ok, "{text}");
        assert!(text.contains("1 passed"), "{text}");
        return;
    }
    let vm = Vm::new();
    let obj = vm
        .object(
            vec![],
            vec![MapSpec::new("ch_rings", MapKind::Array, 4, 4, RINGS)],
        )
        .unwrap();
    let before = resident().unwrap();
    let map = obj.map("ch_rings").unwrap();
    let created = resident().unwrap();
    assert!(
        created < before + (16 << 20),
        "268 MB of zeroed values made {} bytes resident",
        created - before
    );
    // Touching one value per page of the first 64 MiB makes them resident: the measure sees
    // what is touched.
    for i in (0..(64 << 20) / 8).step_by(512) {
        map.update(&(i as u32).to_le_bytes(), &[1; 4], UpdateFlag::Any)
            .unwrap();
    }
    let touched = resident().unwrap();
    assert!(
        touched >= created + (60 << 20),
        "{} bytes resident after touching 64 MiB",
        touched - created
    );
}

#[test]
fn a_2_gb_array_fails_with_the_memory_limit_naming_it() {
    let spec = MapSpec::new("upf", MapKind::Array, 4, 8, 250_000_000);
    let need = 2_000_000_000 + 256;
    assert_eq!(spec.check(), Ok(need), "the kernel's rules accept it");
    let vm = Vm::new();
    let obj = vm
        .object(
            vec![ProgramDef::new("p", "test", bump_last(250_000_000))],
            vec![spec],
        )
        .unwrap();
    assert_eq!(obj.maps().next().unwrap().status(), Ok(need));
    let is_limit = |e: &Error| {
        matches!(e, Error::MemoryLimit { what, need: n, limit, .. }
            if what == "map `upf`" && *n == need && *limit == DEFAULT_MEM_LIMIT)
    };
    for e in [
        obj.program("p").unwrap().verify(Mode::Checked).unwrap_err(),
        obj.program("p").unwrap().check(Mode::Checked).unwrap_err(),
        obj.map("upf").unwrap_err(),
    ] {
        assert!(is_limit(&e), "{e}");
    }
    assert_eq!(vm.mem_used(), 0);
    assert!(none_created(&obj));
}

#[test]
fn a_per_cpu_hash_of_10m_entries_without_preallocation_is_created_on_every_engine() {
    // gtp-guard's `ppp_ingress`: its slab of 10M slots of 16 CPUs' 8-byte values reserves
    // 1.28 GB of address space, none of it resident until used, and is charged by use.
    let mut spec = MapSpec::new("ppp_ingress", MapKind::PerCpuHash, 8, 8, 10_000_000);
    spec.flags = 1; // BPF_F_NO_PREALLOC
    let prog = code(
        "stdw [r10-8], 5\nstdw [r10-16], 42\n\
         lddw r1, map_idx(0)\nmov r2, r10\nadd r2, -8\nmov r3, r10\nadd r3, -16\nmov r4, 0\n\
         call 2\njeq r0, 0, +2\nmov r0, 100\nexit\n\
         lddw r1, map_idx(0)\nmov r2, r10\nadd r2, -8\ncall 1\n\
         jne r0, 0, +2\nmov r0, 101\nexit\n\
         ldxdw r0, [r0+0]\nexit",
    );
    let vm = Vm::new().cpus(16);
    let obj = vm
        .object(vec![ProgramDef::new("p", "test", prog)], vec![spec])
        .unwrap();
    let m = obj.maps().next().unwrap();
    assert!(
        m.status().unwrap() > DEFAULT_MEM_LIMIT,
        "full, past the limit"
    );
    let created = m.creation_bytes().unwrap();
    assert!(created < 64 << 10, "{created}");
    for (name, opts) in engines() {
        let v = obj.program("p").unwrap().verify(Mode::Checked).unwrap();
        let mut p = match &opts {
            None => v.interpret(),
            Some(o) => v.compile_with(o).unwrap(),
        };
        p.set_budget(opts.as_ref().and_then(|o| o.budget.then_some(1000)));
        assert_eq!(p.run(&mut []).unwrap(), 42, "{name}");
    }
    let map = obj.map("ppp_ingress").unwrap();
    assert_eq!(map.len(), 1);
    // The fixed part and one chunk of slots (and the JIT code of the last program).
    let used = vm.mem_used();
    assert!(used < 16 << 20, "{used}");
}
