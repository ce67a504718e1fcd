//! Typed map views: every view on every engine (the interpreter, the JIT under each option
//! set of `bpfx_testkit::matrix`), a program writing what the view reads and the
//! view writing what a program reads, and the view's errors (kind, sizes, the kernel's errnos).

use bpfx::bytecode::{Program as Bytecode, assemble};
use bpfx::{
    Array, BPF_F_CURRENT_CPU, BPF_F_NO_PREALLOC, BloomFilter, Error, HashMap, JitOptions, LpmKey,
    LpmTrie, MapError, MapKind, MapOfMaps, MapSpec, Mode, Object, PerCpuArray, PerCpuHashMap,
    PerfEvent, PerfEventArray, Pod, Program, ProgramArray, ProgramDef, Queue, RingBuf, Stack,
    UpdateFlag, Vm,
};
use bpfx_testkit::matrix;
use std::cell::Cell;

thread_local!(static CPU: Cell<u32> = const { Cell::new(0) });

/// A `Vm` with 2 CPUs whose CPU id is the one the test thread sets.
fn vm() -> Vm {
    Vm::new().cpus(2).cpu_id(|| CPU.with(Cell::get))
}

fn code(text: &str) -> Bytecode {
    Bytecode::decode(assemble(text).unwrap()).unwrap()
}

fn object(progs: &[(&str, String)], maps: Vec<MapSpec>) -> Object {
    let defs = progs
        .iter()
        .map(|(name, text)| ProgramDef::new(*name, "test", code(text)))
        .collect();
    vm().object(defs, maps).unwrap()
}

/// Program `name`, verified for `input` bytes of memory, on the interpreter (`None`) or the JIT
/// with `opts`.
fn prepare(obj: &Object, name: &str, input: u64, opts: &Option<JitOptions>) -> Program {
    let v = obj
        .program(name)
        .unwrap()
        .input_size(input)
        .verify(Mode::Checked)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    match opts {
        None => v.interpret(),
        Some(o) => v.compile_with(o).unwrap(),
    }
}

/// `map_update_elem(map 0, &input[0..ks], &input[ks..], BPF_ANY)`: 0 or the negative errno.
fn update_prog(ks: usize) -> String {
    format!(
        "mov r6, r1\nlddw r1, map_idx(0)\nmov r2, r6\nmov r3, r6\nadd r3, {ks}\nmov r4, 0\n\
         call 2\nexit"
    )
}

/// `v = map_lookup_elem(map 0, &input[0..ks])`; copies `vs` bytes of `*v` to `input[ks..]`
/// and returns 1, or returns 0 when the key is absent.
fn lookup_prog(ks: usize, vs: usize) -> String {
    let copy: String = (0..vs)
        .map(|i| format!("ldxb r1, [r0+{i}]\nstxb [r6+{}], r1\n", ks + i))
        .collect();
    format!(
        "mov r6, r1\nlddw r1, map_idx(0)\nmov r2, r6\ncall 1\njeq r0, 0, none\n{copy}\
         mov r0, 1\nexit\nnone:\nmov r0, 0\nexit"
    )
}

/// An object with the update and lookup programs over `spec`.
fn rw_object(spec: MapSpec) -> Object {
    let (ks, vs) = (spec.key_size as usize, spec.value_size as usize);
    object(
        &[("w", update_prog(ks)), ("r", lookup_prog(ks, vs))],
        vec![spec],
    )
}

fn input<K: Pod, V: Pod>(k: &K, v: &V) -> Vec<u8> {
    [k.to_bytes(), v.to_bytes()].concat()
}

/// Runs the update program on `cpu`.
fn prog_write<K: Pod, V: Pod>(p: &mut Program, cpu: u32, k: &K, v: &V) -> u64 {
    CPU.with(|c| c.set(cpu));
    p.run(&mut input(k, v)).unwrap()
}

/// Runs the lookup program on `cpu`: the value it found, if any.
fn prog_read<K: Pod, V: Pod>(p: &mut Program, cpu: u32, k: &K) -> Option<V> {
    CPU.with(|c| c.set(cpu));
    let mut buf = [k.to_bytes(), vec![0; V::SIZE]].concat();
    match p.run(&mut buf).unwrap() {
        0 => None,
        _ => Some(V::from_bytes(&buf[K::SIZE..])),
    }
}

fn map_err<T: std::fmt::Debug>(r: Result<T, Error>) -> MapError {
    match r {
        Err(Error::Map { source, .. }) => source,
        other => panic!("expected a map error, got {other:?}"),
    }
}

/// `struct stats { __u32 packets; /* padding */ __u64 bytes; }`: a user struct with padding.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Stats {
    packets: u32,
    bytes: u64,
}

impl Pod for Stats {
    const SIZE: usize = 16;
    fn from_bytes(b: &[u8]) -> Self {
        Stats {
            packets: u32::from_bytes(&b[..4]),
            bytes: u64::from_bytes(&b[8..]),
        }
    }
    fn write_bytes(&self, out: &mut [u8]) {
        self.packets.write_bytes(&mut out[..4]);
        self.bytes.write_bytes(&mut out[8..]);
    }
}

#[test]
fn pod_round_trips_numbers_arrays_and_lpm_keys_little_endian() {
    assert_eq!(0x0102_0304u32.to_bytes(), [4, 3, 2, 1]);
    assert_eq!(i16::from_bytes(&[0xfe, 0xff]), -2);
    assert_eq!(f64::from_bytes(&1.5f64.to_bytes()), 1.5);
    let a: [u16; 3] = [1, 0x203, 0xffff];
    assert_eq!(a.to_bytes(), [1, 0, 3, 2, 0xff, 0xff]);
    assert_eq!(<[u16; 3]>::from_bytes(&a.to_bytes()), a);
    assert_eq!(<[[u8; 2]; 2]>::SIZE, 4);
    let k = LpmKey::new(24, [192u8, 168, 1, 0]);
    assert_eq!(k.to_bytes(), [24, 0, 0, 0, 192, 168, 1, 0]);
    assert_eq!(LpmKey::<[u8; 4]>::from_bytes(&k.to_bytes()), k);
    let s = Stats {
        packets: 3,
        bytes: 1 << 40,
    };
    assert_eq!(&s.to_bytes()[4..8], [0; 4], "padding written as zeros");
    assert_eq!(Stats::from_bytes(&s.to_bytes()), s);
}

#[test]
fn array_view_reads_what_programs_write_and_programs_read_what_it_writes() {
    for (engine, opts) in matrix() {
        let obj = rw_object(MapSpec::new("a", MapKind::Array, 4, 16, 4));
        let (mut w, mut r) = (prepare(&obj, "w", 20, &opts), prepare(&obj, "r", 20, &opts));
        let a: Array<Stats> = obj.map_as("a").unwrap();
        let s = Stats {
            packets: 7,
            bytes: 900,
        };
        assert_eq!(prog_write(&mut w, 0, &2u32, &s), 0, "{engine:?}");
        assert_eq!(a.get(2).unwrap(), s, "{engine:?}");
        assert_eq!(a.len(), 4);
        let t = Stats {
            packets: 1,
            bytes: u64::MAX,
        };
        a.set(3, &t, UpdateFlag::Any).unwrap();
        assert_eq!(
            prog_read::<u32, Stats>(&mut r, 0, &3),
            Some(t),
            "{engine:?}"
        );
        let zero = Stats {
            packets: 0,
            bytes: 0,
        };
        assert_eq!(a.iter().collect::<Vec<_>>(), [zero, zero, s, t]);
        // The kernel's errnos: past the end ENOENT on lookup, E2BIG on update; NOEXIST EEXIST.
        assert_eq!(map_err(a.get(4)), MapError::NotFound);
        assert_eq!(map_err(a.set(4, &t, UpdateFlag::Any)), MapError::Full);
        assert_eq!(map_err(a.set(0, &t, UpdateFlag::NoExist)), MapError::Exists);
    }
}

#[test]
fn views_check_the_kind_and_sizes_once_naming_the_map_and_the_type() {
    let obj = object(
        &[],
        vec![
            MapSpec::new("a", MapKind::Array, 4, 8, 4),
            MapSpec::new("h", MapKind::Hash, 8, 4, 4),
            MapSpec::new("rb", MapKind::RingBuf, 0, 0, 4096),
        ],
    );
    let e = obj.map_as::<Array<u32>>("a").unwrap_err();
    assert!(
        matches!(
            &e,
            Error::MapSize { map, what: "value", ty: "u32", ty_size: 4, map_size: 8 } if map == "a"
        ),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "map `a`: the value type u32 is 4 bytes, the map's values are 8"
    );
    let e = obj.map_as::<HashMap<u32, u32>>("h").unwrap_err();
    assert!(
        matches!(
            &e,
            Error::MapSize {
                what: "key",
                ty_size: 4,
                map_size: 8,
                ..
            }
        ),
        "{e:?}"
    );
    let e = obj.map_as::<HashMap<u32, u64>>("a").unwrap_err();
    assert!(
        matches!(&e, Error::MapType { map, actual: MapKind::Array, .. } if map == "a"),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "map `a` is of type array; the view needs a hash"
    );
    assert!(matches!(
        obj.map_as::<RingBuf>("a"),
        Err(Error::MapType { .. })
    ));
    assert!(matches!(
        obj.map_as::<Array<u64>>("rb"),
        Err(Error::MapType { .. })
    ));
    assert!(matches!(
        obj.map_as::<Array<u64>>("nope"),
        Err(Error::NoMap { .. })
    ));
    assert!(obj.map_as::<HashMap<u64, u32>>("h").is_ok());
    assert!(obj.map_as::<Array<[u8; 8]>>("a").is_ok());
    assert!(Array::<u64>::new(obj.map("a").unwrap()).is_ok());
    assert!(Array::<u64>::try_from(obj.map("a").unwrap()).is_ok());
    assert!(matches!(
        RingBuf::try_from(obj.map("h").unwrap()),
        Err(Error::MapType { .. })
    ));
}

#[test]
fn hash_view_insert_get_remove_iter_with_kernel_errors() {
    for kind in [MapKind::Hash, MapKind::LruHash] {
        for (engine, opts) in matrix() {
            let what = format!("{kind} {engine:?}");
            let obj = rw_object(MapSpec::new("h", kind, 4, 16, 3));
            let (mut w, mut r) = (prepare(&obj, "w", 20, &opts), prepare(&obj, "r", 20, &opts));
            let h: HashMap<u32, Stats> = obj.map_as("h").unwrap();
            let s = |n: u32| Stats {
                packets: n,
                bytes: u64::from(n) * 100,
            };
            assert_eq!(prog_write(&mut w, 0, &9u32, &s(9)), 0, "{what}");
            assert_eq!(h.get(&9).unwrap(), Some(s(9)), "{what}");
            assert_eq!(h.get(&8).unwrap(), None, "{what}");
            h.insert(&5, &s(5), UpdateFlag::NoExist).unwrap();
            assert_eq!(prog_read::<u32, Stats>(&mut r, 0, &5), Some(s(5)), "{what}");
            assert_eq!(prog_read::<u32, Stats>(&mut r, 0, &6), None, "{what}");
            assert_eq!(
                map_err(h.insert(&5, &s(1), UpdateFlag::NoExist)),
                MapError::Exists
            );
            assert_eq!(
                map_err(h.insert(&6, &s(1), UpdateFlag::Exist)),
                MapError::NotFound
            );
            h.insert(&1, &s(1), UpdateFlag::Any).unwrap();
            assert_eq!(h.keys().collect::<Vec<_>>(), [1, 5, 9], "{what}");
            assert_eq!(
                h.iter().collect::<Vec<_>>(),
                [(1, s(1)), (5, s(5)), (9, s(9))]
            );
            if kind == MapKind::Hash {
                assert_eq!(
                    map_err(h.insert(&2, &s(2), UpdateFlag::Any)),
                    MapError::Full
                );
            } else {
                // Full: the least recently used key goes, 9 (last used by the first lookup).
                h.insert(&2, &s(2), UpdateFlag::Any).unwrap();
                assert_eq!(h.keys().collect::<Vec<_>>(), [1, 2, 5], "{what}");
            }
            h.remove(&5).unwrap();
            assert_eq!(map_err(h.remove(&5)), MapError::NotFound);
            assert_eq!(prog_read::<u32, Stats>(&mut r, 0, &5), None, "{what}");
        }
    }
}

#[test]
fn percpu_views_give_each_cpus_value() {
    for (engine, opts) in matrix() {
        let obj = rw_object(MapSpec::new("pa", MapKind::PerCpuArray, 4, 4, 2));
        let (mut w, mut r) = (prepare(&obj, "w", 8, &opts), prepare(&obj, "r", 8, &opts));
        let a: PerCpuArray<u32> = obj.map_as("pa").unwrap();
        assert_eq!(a.cpus(), 2);
        assert_eq!(prog_write(&mut w, 1, &1u32, &55u32), 0, "{engine:?}");
        assert_eq!(a.get(1).unwrap(), [0, 55], "{engine:?}");
        a.set(0, &[3, 4], UpdateFlag::Any).unwrap();
        assert_eq!(prog_read::<u32, u32>(&mut r, 0, &0), Some(3), "{engine:?}");
        assert_eq!(prog_read::<u32, u32>(&mut r, 1, &0), Some(4), "{engine:?}");
        assert_eq!(a.iter().collect::<Vec<_>>(), [vec![3, 4], vec![0, 55]]);
        let e = a.set(0, &[1], UpdateFlag::Any).unwrap_err();
        assert!(
            matches!(
                &e,
                Error::PerCpuValues {
                    cpus: 2,
                    got: 1,
                    ..
                }
            ),
            "{e:?}"
        );
        assert_eq!(map_err(a.get(2)), MapError::NotFound);
        assert_eq!(map_err(a.set(2, &[0, 0], UpdateFlag::Any)), MapError::Full);

        for kind in [MapKind::PerCpuHash, MapKind::LruPerCpuHash] {
            let what = format!("{kind} {engine:?}");
            let obj = rw_object(MapSpec::new("ph", kind, 8, 8, 4));
            let (mut w, mut r) = (prepare(&obj, "w", 16, &opts), prepare(&obj, "r", 16, &opts));
            let h: PerCpuHashMap<u64, u64> = obj.map_as("ph").unwrap();
            assert_eq!(prog_write(&mut w, 1, &7u64, &70u64), 0, "{what}");
            assert_eq!(h.get(&7).unwrap(), Some(vec![0, 70]), "{what}");
            h.insert(&8, &[80, 81], UpdateFlag::NoExist).unwrap();
            assert_eq!(prog_read::<u64, u64>(&mut r, 0, &8), Some(80), "{what}");
            assert_eq!(prog_read::<u64, u64>(&mut r, 1, &8), Some(81), "{what}");
            assert_eq!(h.keys().collect::<Vec<_>>(), [7, 8], "{what}");
            assert_eq!(
                h.iter().collect::<Vec<_>>(),
                [(7, vec![0, 70]), (8, vec![80, 81])]
            );
            assert_eq!(
                map_err(h.insert(&8, &[0, 0], UpdateFlag::NoExist)),
                MapError::Exists
            );
            assert!(matches!(
                h.insert(&9, &[1, 2, 3], UpdateFlag::Any),
                Err(Error::PerCpuValues { got: 3, .. })
            ));
            h.remove(&7).unwrap();
            assert_eq!(map_err(h.remove(&7)), MapError::NotFound);
            assert_eq!(h.get(&7).unwrap(), None);
        }
    }
}

#[test]
fn lpm_trie_view_matches_the_longest_prefix_for_programs_and_the_host() {
    for (engine, opts) in matrix() {
        let mut spec = MapSpec::new("t", MapKind::LpmTrie, 8, 4, 4);
        spec.flags = BPF_F_NO_PREALLOC;
        let obj = rw_object(spec);
        let (mut w, mut r) = (prepare(&obj, "w", 12, &opts), prepare(&obj, "r", 12, &opts));
        let t: LpmTrie<[u8; 4], u32> = obj.map_as("t").unwrap();
        t.insert(&LpmKey::new(8, [10, 0, 0, 0]), &1, UpdateFlag::Any)
            .unwrap();
        t.insert(&LpmKey::new(16, [10, 1, 0, 0]), &2, UpdateFlag::Any)
            .unwrap();
        let host = LpmKey::new(32, [10u8, 1, 2, 3]);
        assert_eq!(t.get(&host).unwrap(), Some(2), "host");
        assert_eq!(prog_read::<_, u32>(&mut r, 0, &host), Some(2), "{engine:?}");
        let other = LpmKey::new(32, [10u8, 9, 9, 9]);
        assert_eq!(
            prog_read::<_, u32>(&mut r, 0, &other),
            Some(1),
            "{engine:?}"
        );
        let net = LpmKey::new(24, [192u8, 168, 1, 0]);
        assert_eq!(prog_write(&mut w, 0, &net, &3u32), 0, "{engine:?}");
        assert_eq!(
            t.get(&LpmKey::new(32, [192, 168, 1, 7])).unwrap(),
            Some(3),
            "{engine:?}"
        );
        assert_eq!(t.get(&LpmKey::new(32, [11, 0, 0, 0])).unwrap(), None);
        assert_eq!(
            t.keys().map(|k| k.prefix_len).collect::<Vec<_>>(),
            [16, 8, 24],
            "post-order: the more specific prefix first"
        );
        assert_eq!(t.iter().count(), 3);
        assert_eq!(
            map_err(t.insert(&LpmKey::new(33, [0; 4]), &0, UpdateFlag::Any)),
            MapError::PrefixLen {
                prefixlen: 33,
                max: 32
            }
        );
        assert_eq!(
            map_err(t.remove(&LpmKey::new(12, [10, 0, 0, 0]))),
            MapError::NotFound
        );
        t.insert(&LpmKey::new(4, [0; 4]), &4, UpdateFlag::Any)
            .unwrap();
        assert_eq!(
            map_err(t.insert(&LpmKey::new(5, [0; 4]), &5, UpdateFlag::Any)),
            MapError::OutOfSpace
        );
        t.remove(&LpmKey::new(16, [10, 1, 0, 0])).unwrap();
        assert_eq!(prog_read::<_, u32>(&mut r, 0, &host), Some(1), "{engine:?}");
    }
}

/// `push`: `map_push_elem(map 0, &input[0..8], flags 0)`; `pop`: `map_pop_elem` into
/// `input[0..8]`, returning 1, or 0 when empty.
fn queue_object(spec: MapSpec) -> Object {
    let push = "mov r2, r1\nlddw r1, map_idx(0)\nmov r3, 0\ncall 87\nexit".to_string();
    let pop = "mov r6, r1\nlddw r1, map_idx(0)\nmov r2, r6\ncall 88\njne r0, 0, empty\n\
               mov r0, 1\nexit\nempty:\nmov r0, 0\nexit"
        .to_string();
    let peek = "mov r2, r1\nlddw r1, map_idx(0)\ncall 89\nexit".to_string();
    object(&[("push", push), ("pop", pop), ("peek", peek)], vec![spec])
}

#[test]
fn queue_and_stack_views_push_and_pop_with_programs() {
    for (engine, opts) in matrix() {
        for kind in [MapKind::Queue, MapKind::Stack] {
            let what = format!("{kind} {engine:?}");
            let obj = queue_object(MapSpec::new("q", kind, 0, 8, 3));
            let mut push = prepare(&obj, "push", 8, &opts);
            let mut pop = prepare(&obj, "pop", 8, &opts);
            let mut prog_pop = || {
                let mut buf = [0u8; 8];
                (pop.run(&mut buf).unwrap() == 1).then(|| u64::from_bytes(&buf))
            };
            for v in [1u64, 2] {
                assert_eq!(push.run(&mut v.to_le_bytes()).unwrap(), 0, "{what}");
            }
            if kind == MapKind::Queue {
                let q: Queue<u64> = obj.map_as("q").unwrap();
                assert_eq!(q.peek().unwrap(), Some(1), "{what}: the oldest");
                assert_eq!(q.pop().unwrap(), Some(1), "{what}");
                q.push(&3, UpdateFlag::Any).unwrap();
                q.push(&4, UpdateFlag::Any).unwrap();
                assert_eq!(map_err(q.push(&5, UpdateFlag::Any)), MapError::Full);
                assert_eq!(map_err(q.push(&5, UpdateFlag::NoExist)), MapError::Flags(1));
                q.push(&5, UpdateFlag::Exist).unwrap();
                assert_eq!(prog_pop(), Some(3), "{what}: 2 was dropped for 5");
                assert_eq!(prog_pop(), Some(4), "{what}");
                assert_eq!(prog_pop(), Some(5), "{what}");
                assert_eq!(prog_pop(), None, "{what}");
                assert_eq!(q.pop().unwrap(), None);
            } else {
                let s: Stack<u64> = obj.map_as("q").unwrap();
                assert_eq!(s.peek().unwrap(), Some(2), "{what}: the newest");
                assert_eq!(s.pop().unwrap(), Some(2), "{what}");
                assert_eq!(s.pop().unwrap(), Some(1), "{what}");
                s.push(&3, UpdateFlag::Any).unwrap();
                s.push(&4, UpdateFlag::Any).unwrap();
                assert_eq!(prog_pop(), Some(4), "{what}");
                assert_eq!(prog_pop(), Some(3), "{what}");
                assert_eq!(prog_pop(), None, "{what}");
            }
            assert!(matches!(
                obj.map_as::<Queue<u32>>("q"),
                Err(Error::MapSize { .. } | Error::MapType { .. })
            ));
        }
    }
}

#[test]
fn bloom_filter_view_sees_what_programs_push_and_programs_see_what_it_inserts() {
    for (engine, opts) in matrix() {
        let obj = queue_object(MapSpec::new("b", MapKind::BloomFilter, 0, 8, 64));
        let mut push = prepare(&obj, "push", 8, &opts);
        let mut peek = prepare(&obj, "peek", 8, &opts);
        let b: BloomFilter<u64> = obj.map_as("b").unwrap();
        assert_eq!(push.run(&mut 11u64.to_le_bytes()).unwrap(), 0);
        assert!(b.contains(&11).unwrap(), "{engine:?}");
        b.insert(&22).unwrap();
        assert_eq!(peek.run(&mut 22u64.to_le_bytes()).unwrap(), 0, "{engine:?}");
        // Not inserted: -ENOENT, or 0 for a false positive; the filter has 64 entries' bits
        // for 2 values, so the host's answer and the program's must agree either way.
        let absent = peek.run(&mut 33u64.to_le_bytes()).unwrap();
        assert_eq!(absent == 0, b.contains(&33).unwrap(), "{engine:?}");
    }
}

#[test]
fn ring_buffer_view_consumes_program_records_in_order() {
    for (engine, opts) in matrix() {
        // ringbuf_output(map 0, input, input length, 0)
        let out = "mov r3, r2\nmov r2, r1\nlddw r1, map_idx(0)\nmov r4, 0\ncall 130\nexit";
        let obj = object(
            &[("out", out.to_string())],
            vec![MapSpec::new("rb", MapKind::RingBuf, 0, 0, 4096)],
        );
        let mut p = prepare(&obj, "out", 4, &opts);
        let rb: RingBuf = obj.map_as("rb").unwrap();
        assert_eq!(rb.next(), None);
        assert_eq!(p.run(&mut 7u64.to_le_bytes()).unwrap(), 0, "{engine:?}");
        assert_eq!(p.run(&mut 8u64.to_le_bytes()).unwrap(), 0, "{engine:?}");
        assert_eq!(p.run(&mut [1, 2, 3, 4]).unwrap(), 0, "{engine:?}");
        assert_eq!(rb.next_as::<u64>().unwrap(), Some(7), "{engine:?}");
        assert_eq!(rb.next(), Some(8u64.to_le_bytes().to_vec()), "{engine:?}");
        let e = rb.next_as::<u64>().unwrap_err();
        assert!(
            matches!(
                &e,
                Error::MapSize {
                    what: "record",
                    ty_size: 8,
                    map_size: 4,
                    ..
                }
            ),
            "{e:?}"
        );
        assert_eq!(rb.next_as::<u64>().unwrap(), None);
        assert_eq!(p.run(&mut 9u32.to_le_bytes()).unwrap(), 0, "{engine:?}");
        assert_eq!(rb.drain(), [9u32.to_le_bytes().to_vec()]);
    }
}

#[test]
fn perf_event_array_view_drains_each_cpus_samples() {
    for (engine, opts) in matrix() {
        // perf_event_output(ctx, map 0, BPF_F_CURRENT_CPU, &u64 at r10-8, 8)
        let out = format!(
            "ldxdw r3, [r1+0]\nstxdw [r10-8], r3\nlddw r2, map_idx(0)\n\
             lddw r3, {BPF_F_CURRENT_CPU:#x}\nmov r4, r10\nadd r4, -8\nmov r5, 8\ncall 25\nexit"
        );
        let obj = object(
            &[("out", out)],
            vec![MapSpec::new("ev", MapKind::PerfEventArray, 4, 4, 0)],
        );
        let mut p = prepare(&obj, "out", 8, &opts);
        let ev: PerfEventArray = obj.map_as("ev").unwrap();
        for (cpu, v) in [(1, 10u64), (0, 20), (1, 30)] {
            CPU.with(|c| c.set(cpu));
            assert_eq!(p.run(&mut v.to_le_bytes()).unwrap(), 0, "{engine:?}");
        }
        let sample = |cpu: u32, v: u64| {
            let mut data = v.to_le_bytes().to_vec();
            data.resize(12, 0);
            PerfEvent::Sample { cpu, data }
        };
        assert_eq!(ev.next(), Some(sample(0, 20)), "{engine:?}");
        assert_eq!(ev.drain(), [sample(1, 10), sample(1, 30)], "{engine:?}");
        assert_eq!(ev.poll(|_| ()), 0);
    }
}

#[test]
fn program_array_view_sets_and_clears_tail_call_targets() {
    for (engine, opts) in matrix() {
        // entry: tail_call(ctx, map 0, 0); 1 if it returns. leaf: 42.
        let entry = "lddw r2, map_idx(0)\nmov r3, 0\ncall 12\nmov r0, 1\nexit".to_string();
        let leaf = "mov r0, 42\nexit".to_string();
        let obj = object(
            &[("entry", entry), ("leaf", leaf.clone())],
            vec![MapSpec::new("jt", MapKind::ProgArray, 4, 4, 2)],
        );
        let mut p = prepare(&obj, "entry", 0, &opts);
        let leaf_p = prepare(&obj, "leaf", 0, &opts);
        let jt: ProgramArray = obj.map_as("jt").unwrap();
        assert_eq!(p.run(&mut []).unwrap(), 1, "{engine:?}: empty slot");
        jt.set(0, &leaf_p).unwrap();
        assert_eq!(p.run(&mut []).unwrap(), 42, "{engine:?}");
        assert_eq!(jt.programs(), [(0, "leaf".to_string())]);
        jt.clear(0).unwrap();
        assert_eq!(p.run(&mut []).unwrap(), 1, "{engine:?}");
        jt.set_by_name(0, "leaf", &[&p, &leaf_p]).unwrap();
        assert_eq!(p.run(&mut []).unwrap(), 42, "{engine:?}");
        assert!(matches!(
            jt.set_by_name(1, "nope", &[&leaf_p]),
            Err(Error::NoProgram { .. })
        ));
        assert_eq!(map_err(jt.set(2, &leaf_p)), MapError::Full);
        let other = object(&[("leaf", leaf)], vec![]);
        assert!(matches!(
            jt.set(1, &prepare(&other, "leaf", 0, &opts)),
            Err(Error::ProgArray { .. })
        ));
    }
}

#[test]
fn map_of_maps_view_installs_inner_maps_programs_look_up() {
    for (engine, opts) in matrix() {
        let inner = MapSpec::new("inner", MapKind::Array, 4, 8, 1);
        let mut outer = MapSpec::new("outer", MapKind::ArrayOfMaps, 4, 4, 2);
        outer.inner = Some(Box::new(inner.clone()));
        // m = lookup(outer, input[0]); v = lookup(m, 0); return *v, or 99 when either is NULL.
        let prog = "mov r6, r1\nlddw r1, map_idx(0)\nmov r2, r6\ncall 1\njeq r0, 0, none\n\
                    mov r1, r0\nstw [r10-4], 0\nmov r2, r10\nadd r2, -4\ncall 1\njeq r0, 0, none\n\
                    ldxdw r0, [r0+0]\nexit\nnone:\nmov r0, 99\nexit";
        let obj = object(&[("p", prog.to_string())], vec![outer]);
        let mut p = prepare(&obj, "p", 4, &opts);
        let m: MapOfMaps<u32> = obj.map_as("outer").unwrap();
        assert_eq!(p.run(&mut 1u32.to_le_bytes()).unwrap(), 99, "{engine:?}");
        let a = std::sync::Arc::new(bpfx::Map::new(inner).unwrap());
        Array::<u64>::new(a.clone())
            .unwrap()
            .set(0, &1234, UpdateFlag::Any)
            .unwrap();
        m.insert(&1, &a, UpdateFlag::Any).unwrap();
        assert_eq!(p.run(&mut 1u32.to_le_bytes()).unwrap(), 1234, "{engine:?}");
        assert!(std::sync::Arc::ptr_eq(&m.get(&1).unwrap(), &a));
        assert!(m.get(&0).is_none());
        assert_eq!(m.keys().collect::<Vec<_>>(), [1]);
        let wrong = std::sync::Arc::new(
            bpfx::Map::new(MapSpec::new("w", MapKind::Array, 4, 4, 1)).unwrap(),
        );
        assert_eq!(
            map_err(m.insert(&0, &wrong, UpdateFlag::Any)),
            MapError::InnerMismatch
        );
        m.remove(&1).unwrap();
        assert_eq!(map_err(m.remove(&1)), MapError::NotFound);
        assert_eq!(p.run(&mut 1u32.to_le_bytes()).unwrap(), 99, "{engine:?}");
        assert!(matches!(
            obj.map_as::<MapOfMaps<u64>>("outer"),
            Err(Error::MapSize { what: "key", .. })
        ));
    }
}
