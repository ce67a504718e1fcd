//! The map kinds beyond array and hash, through clang-built objects of `examples/` on both
//! engines: per-CPU arrays on several threads with distinct CPUs, an LPM-trie blocklist, and
//! a perf-event sampler; map contents checked against values computed here.

use bpfx::{
    Engine, MapError, MapKind, MapSpec, Mode, Object, PerfEvent, Program, UpdateFlag, Vm, XdpAction,
};
use std::cell::Cell;
use std::path::PathBuf;

fn example(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples")).join(name)
}

thread_local!(static CPU: Cell<u32> = const { Cell::new(0) });

/// A `Vm` with `cpus` CPUs whose CPU id is the one each test thread sets.
fn vm(cpus: u32) -> Vm {
    Vm::new().cpus(cpus).cpu_id(|| CPU.with(Cell::get))
}

fn program(obj: &Object, name: &str, engine: Engine) -> Program {
    obj.program(name)
        .unwrap()
        .verify(Mode::Checked)
        .unwrap()
        .engine(engine, false)
        .unwrap()
}

/// An Ethernet frame of `len` bytes (at least 14) with EtherType `proto`; IPv4 frames get a
/// 20-byte header with source address `saddr` when long enough.
fn frame(proto: u16, len: usize, saddr: [u8; 4]) -> Vec<u8> {
    let mut f = vec![0u8; len];
    if len >= 14 {
        f[..6].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, len as u8]);
        f[12..14].copy_from_slice(&proto.to_be_bytes());
    }
    if proto == 0x0800 && len >= 34 {
        f[14] = 0x45;
        f[26..30].copy_from_slice(&saddr);
    }
    f
}

/// Runs `packets(t)` on `threads` threads, thread `t` on CPU `t`, each with its own clone of
/// `prog`; returns the verdicts by thread.
fn run_on_cpus(
    prog: &Program,
    threads: u32,
    packets: impl Fn(u32) -> Vec<Vec<u8>> + Sync,
) -> Vec<Vec<XdpAction>> {
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let mut p = prog.clone();
                let pk = &packets;
                s.spawn(move || {
                    CPU.with(|c| c.set(t));
                    pk(t)
                        .into_iter()
                        .map(|mut f| p.run_xdp(&mut f).unwrap())
                        .collect()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

fn u64_at(v: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(v[off..off + 8].try_into().unwrap())
}

/// Class of a frame as `percpu_count.c` defines it.
fn class(f: &[u8]) -> usize {
    if f.len() < 14 {
        return 3;
    }
    match u16::from_be_bytes([f[12], f[13]]) {
        0x0800 => 0,
        0x0806 => 1,
        _ => 2,
    }
}

fn count_packets(t: u32) -> Vec<Vec<u8>> {
    (0..40 + 13 * t as usize)
        .map(|i| match (i * 7 + t as usize) % 4 {
            0 => frame(0x0800, 34 + i % 30, [10, 0, 0, 1]),
            1 => frame(0x0806, 42, [0; 4]),
            2 => frame(0x86dd, 60 + i % 3, [0; 4]),
            _ => frame(0, 5 + i % 9, [0; 4]),
        })
        .collect()
}

#[test]
fn percpu_array_counts_per_cpu_on_several_threads() {
    const CPUS: u32 = 4;
    for engine in Engine::ALL {
        let obj = vm(CPUS).open(example("percpu_count.o")).unwrap();
        let counts = obj.map("counts").unwrap();
        assert_eq!(counts.kind(), MapKind::PerCpuArray);
        assert_eq!(counts.host_value_size(), 16 * CPUS as usize);
        let prog = program(&obj, "xdp_percpu_count", engine);
        let verdicts = run_on_cpus(&prog, CPUS, count_packets);
        assert!(verdicts.iter().flatten().all(|&v| v == XdpAction::Pass));

        // Expected: packets and bytes per (class, CPU), from the frames each thread ran.
        let mut want = [[(0u64, 0u64); CPUS as usize]; 4];
        for t in 0..CPUS {
            for f in count_packets(t) {
                let e = &mut want[class(&f)][t as usize];
                e.0 += 1;
                e.1 += f.len() as u64;
            }
        }
        for (c, per_cpu) in want.iter().enumerate() {
            let v = counts.lookup(&(c as u32).to_le_bytes()).unwrap().unwrap();
            for (cpu, &(packets, bytes)) in per_cpu.iter().enumerate() {
                let at = cpu * 16;
                assert_eq!(
                    (u64_at(&v, at), u64_at(&v, at + 8)),
                    (packets, bytes),
                    "{engine:?}: class {c}, CPU {cpu}"
                );
            }
        }
        // get_smp_processor_id agrees with the slot: each CPU's total is what it counted.
        let bss = obj
            .map(".bss")
            .unwrap()
            .lookup(&0u32.to_le_bytes())
            .unwrap()
            .unwrap();
        for cpu in 0..CPUS as usize {
            let total: u64 = want.iter().map(|w| w[cpu].0).sum();
            assert_eq!(u64_at(&bss, cpu * 8), total, "{engine:?}: by_cpu[{cpu}]");
        }
        // map_lookup_percpu_elem reads CPU 0's IPv4 counter from a program on CPU 2.
        let mut p = prog.clone();
        CPU.with(|c| c.set(2));
        p.run_xdp(&mut frame(0x0806, 42, [0; 4])).unwrap();
        assert_eq!(
            u64_at(&bss_of(&obj), 512),
            want[0][0].0,
            "{engine:?}: cpu0_ipv4"
        );

        // The host writes all CPUs' values at once; the program then adds to its CPU's.
        let mut all = vec![0u8; counts.host_value_size()];
        for cpu in 0..CPUS as usize {
            all[cpu * 16..cpu * 16 + 8].copy_from_slice(&(100 * cpu as u64).to_le_bytes());
        }
        counts
            .update(&1u32.to_le_bytes(), &all, UpdateFlag::Exist)
            .unwrap();
        CPU.with(|c| c.set(3));
        p.run_xdp(&mut frame(0x0806, 42, [0; 4])).unwrap();
        let v = counts.lookup(&1u32.to_le_bytes()).unwrap().unwrap();
        let packets: Vec<u64> = (0..CPUS as usize).map(|c| u64_at(&v, c * 16)).collect();
        assert_eq!(packets, [0, 100, 200, 301], "{engine:?}");
        assert!(matches!(
            counts.update(&1u32.to_le_bytes(), &[0; 16], UpdateFlag::Any),
            Err(MapError::ValueSize { .. })
        ));
    }
}

fn bss_of(obj: &Object) -> Vec<u8> {
    obj.map(".bss")
        .unwrap()
        .lookup(&0u32.to_le_bytes())
        .unwrap()
        .unwrap()
}

/// The blocklist's prefixes: (address, prefix length).
const PREFIXES: [([u8; 4], u32); 7] = [
    ([10, 0, 0, 0], 8),
    ([10, 1, 0, 0], 16),
    ([10, 1, 2, 0], 24),
    ([10, 1, 2, 128], 25),
    ([192, 168, 0, 0], 16),
    ([172, 16, 5, 5], 32),
    ([128, 0, 0, 0], 1),
];

fn lpm_key(addr: [u8; 4], len: u32) -> Vec<u8> {
    let mut k = len.to_le_bytes().to_vec();
    k.extend_from_slice(&addr);
    k
}

/// The longest listed prefix covering `addr`, by brute force over the bits.
fn longest(addr: [u8; 4]) -> Option<usize> {
    let a = u32::from_be_bytes(addr);
    PREFIXES
        .iter()
        .enumerate()
        .filter(|(_, (p, len))| {
            let mask = if *len == 0 { 0 } else { u32::MAX << (32 - len) };
            a & mask == u32::from_be_bytes(*p) & mask
        })
        .max_by_key(|(_, (_, len))| *len)
        .map(|(i, _)| i)
}

fn sources(t: u32) -> Vec<[u8; 4]> {
    (0..120u32)
        .map(|i| {
            let x = i.wrapping_mul(2_654_435_761).wrapping_add(t * 97);
            match i % 6 {
                0 => [10, (x % 3) as u8, (x >> 8) as u8 % 4, (x >> 16) as u8],
                1 => [192, 168 + (x % 2) as u8, 7, 9],
                2 => [172, 16, 5, 4 + (x % 3) as u8],
                _ => (x | (t << 31)).to_be_bytes(),
            }
        })
        .collect()
}

#[test]
fn lpm_trie_blocklist_drops_listed_prefixes() {
    for engine in Engine::ALL {
        let obj = vm(2).open(example("lpm_block.o")).unwrap();
        let list = obj.map("blocklist").unwrap();
        assert_eq!(list.kind(), MapKind::LpmTrie);
        for (addr, len) in PREFIXES {
            list.update(
                &lpm_key(addr, len),
                &0u64.to_le_bytes(),
                UpdateFlag::NoExist,
            )
            .unwrap();
        }
        let prog = program(&obj, "xdp_blocklist", engine);
        let verdicts = run_on_cpus(&prog, 3, |t| {
            let mut v: Vec<_> = sources(t)
                .into_iter()
                .map(|a| frame(0x0800, 54, a))
                .collect();
            v.push(frame(0x0806, 42, [0; 4]));
            v.push(frame(0x0800, 30, [10, 0, 0, 1]));
            v
        });
        let mut hits = [0u64; PREFIXES.len()];
        for t in 0..3 {
            for (i, a) in sources(t).into_iter().enumerate() {
                let want = match longest(a) {
                    Some(p) => {
                        hits[p] += 1;
                        XdpAction::Drop
                    }
                    None => XdpAction::Pass,
                };
                assert_eq!(verdicts[t as usize][i], want, "{engine:?}: {a:?}");
            }
            // An ARP frame and a truncated IPv4 header pass.
            assert_eq!(verdicts[t as usize][120..], [XdpAction::Pass; 2]);
        }
        assert!(hits.iter().all(|&h| h > 0), "every prefix is exercised");
        for (i, (addr, len)) in PREFIXES.into_iter().enumerate() {
            let v = list
                .iter()
                .find(|(k, _)| *k == lpm_key(addr, len))
                .unwrap()
                .1;
            assert_eq!(u64_at(&v, 0), hits[i], "{engine:?}: {addr:?}/{len}");
        }
        // Host lookups are longest-prefix matches too; iteration is more specific first.
        let v = list.lookup(&lpm_key([10, 1, 2, 200], 32)).unwrap().unwrap();
        assert_eq!(u64_at(&v, 0), hits[3]);
        let mut keys = Vec::new();
        let mut cur = None;
        while let Some(k) = list.next_key(cur.as_deref()).unwrap() {
            keys.push(k.clone());
            cur = Some(k);
        }
        let order: Vec<u32> = keys
            .iter()
            .map(|k| u32::from_le_bytes(k[..4].try_into().unwrap()))
            .collect();
        assert_eq!(order, [25, 24, 16, 8, 32, 16, 1], "{engine:?}");
        assert_eq!(
            list.update(&lpm_key([1, 2, 3, 4], 33), &[0; 8], UpdateFlag::Any),
            Err(MapError::PrefixLen {
                prefixlen: 33,
                max: 32
            })
        );
        list.delete(&lpm_key([10, 1, 2, 128], 25)).unwrap();
        assert_eq!(
            list.delete(&lpm_key([10, 1, 2, 128], 25)),
            Err(MapError::NotFound)
        );
    }
}

#[test]
fn lpm_trie_requires_no_prealloc() {
    let mut spec = MapSpec::new("t", MapKind::LpmTrie, 8, 8, 4);
    // The object loads (maps are created on demand); creating the map is what fails.
    let obj = Vm::new().object(vec![], vec![spec.clone()]).unwrap();
    let err = obj.map("t").unwrap_err();
    assert!(err.to_string().contains("BPF_F_NO_PREALLOC"), "{err}");
    spec.flags = bpfx::BPF_F_NO_PREALLOC;
    let obj = Vm::new().object(vec![], vec![spec]).unwrap();
    obj.map("t").unwrap();
}

/// The 20-byte sample `perf_sample.c` sends for `f` on `cpu`.
fn sample(f: &[u8], cpu: u32) -> Vec<u8> {
    let mut s = f[..14].to_vec();
    s.extend_from_slice(&(f.len() as u16).to_le_bytes());
    s.extend_from_slice(&cpu.to_le_bytes());
    s
}

fn sample_frames(t: u32) -> Vec<Vec<u8>> {
    (0..25 + 5 * t as usize)
        .map(|i| {
            frame(
                0x0800 + (i % 5) as u16,
                14 + (i * 3 + t as usize) % 50,
                [0; 4],
            )
        })
        .collect()
}

#[test]
fn perf_event_array_samples_in_order_per_cpu_with_lost_counts() {
    const CPUS: u32 = 3;
    for engine in Engine::ALL {
        let obj = vm(CPUS).open(example("perf_sample.o")).unwrap();
        let events = obj.map("events").unwrap();
        assert_eq!(events.kind(), MapKind::PerfEventArray);
        assert_eq!(events.max_entries(), CPUS, "0 entries: one per CPU");
        let prog = program(&obj, "xdp_perf_sample", engine);
        run_on_cpus(&prog, CPUS, |t| {
            let mut v = sample_frames(t);
            v.push(frame(0, 10, [0; 4]));
            v
        });
        let mut want = Vec::new();
        for t in 0..CPUS {
            for f in sample_frames(t) {
                want.push(PerfEvent::Sample {
                    cpu: t,
                    data: sample(&f, t),
                });
            }
        }
        assert_eq!(events.perf_drain().unwrap(), want, "{engine:?}");
        assert_eq!(u64_at(&bss_of(&obj), 0), 0);

        // A 256-byte buffer holds 8 samples of 8 + 4 + 20 bytes: the rest are lost.
        let obj = vm(CPUS)
            .perf_buffer_size(256)
            .open(example("perf_sample.o"))
            .unwrap();
        let events = obj.map("events").unwrap();
        let mut p = program(&obj, "xdp_perf_sample", engine);
        CPU.with(|c| c.set(1));
        let frames = sample_frames(0);
        for f in &frames[..11] {
            p.run_xdp(&mut f.clone()).unwrap();
        }
        assert_eq!(u64_at(&bss_of(&obj), 0), 3, "{engine:?}: failed sends");
        let mut got = Vec::new();
        assert_eq!(events.perf_poll(|e| got.push(e)).unwrap(), 9);
        let mut want: Vec<_> = frames[..8]
            .iter()
            .map(|f| PerfEvent::Sample {
                cpu: 1,
                data: sample(f, 1),
            })
            .collect();
        want.push(PerfEvent::Lost { cpu: 1, count: 3 });
        assert_eq!(got, want, "{engine:?}");
        p.run_xdp(&mut frames[11].clone()).unwrap();
        assert_eq!(
            events.perf_drain().unwrap(),
            [PerfEvent::Sample {
                cpu: 1,
                data: sample(&frames[11], 1)
            }]
        );
    }
}

/// `p`: counts runs per (key, CPU) in a per-CPU hash, inserting with `BPF_NOEXIST` when the
/// key is missing (and looking up again when another CPU's run inserted it first: `-EEXIST`);
/// returns `get_smp_processor_id()`. `q`: CPU `cpu`'s count for `key` through
/// `map_lookup_percpu_elem`, or `u64::MAX` when it gives `NULL`. Input: `{u32 key; u32 cpu}`.
const COUNT: &str = "ldxw r6, [r1+0]\nstxw [r10-4], r6\n\
    again:\nlddw r1, map_idx(0)\nmov r2, r10\nadd r2, -4\ncall 1\n\
    jeq r0, 0, insert\nldxdw r3, [r0+0]\nadd r3, 1\nstxdw [r0+0], r3\nja done\n\
    insert:\nstdw [r10-16], 1\nlddw r1, map_idx(0)\nmov r2, r10\nadd r2, -4\n\
    mov r3, r10\nadd r3, -16\nmov r4, 1\ncall 2\njeq r0, -17, again\njne r0, 0, fail\n\
    done:\ncall 8\nexit\nfail:\nmov r0, 1000\nexit";
const PEEK: &str = "ldxw r6, [r1+0]\nldxw r3, [r1+4]\nstxw [r10-4], r6\n\
    lddw r1, map_idx(0)\nmov r2, r10\nadd r2, -4\ncall 195\n\
    jeq r0, 0, none\nldxdw r0, [r0+0]\nexit\nnone:\nmov r0, -1\nexit";

fn asm(text: &str) -> bpfx::Bytecode {
    use bpfx::bytecode::{Program as Bytecode, assemble};
    Bytecode::decode(assemble(text).unwrap()).unwrap()
}

#[test]
fn percpu_hashes_count_per_cpu_from_programs_on_several_threads() {
    const CPUS: u32 = 3;
    for kind in [MapKind::PerCpuHash, MapKind::LruPerCpuHash] {
        for engine in Engine::ALL {
            let defs = vec![
                bpfx::ProgramDef::new("p", "test", asm(COUNT)),
                bpfx::ProgramDef::new("q", "test", asm(PEEK)),
            ];
            let obj = vm(CPUS)
                .object(defs, vec![MapSpec::new("h", kind, 4, 8, 16)])
                .unwrap();
            let prep = |name| {
                obj.program(name)
                    .unwrap()
                    .input_size(8)
                    .verify(Mode::Checked)
                    .unwrap()
                    .engine(engine, false)
                    .unwrap()
            };
            let p = prep("p");
            // Thread t runs key k (t + k % 3) times (thread 0 never runs keys 0, 3, 6, 9, whose
            // CPU 0 values a program on another CPU created as zeros); every run reports CPU t.
            std::thread::scope(|s| {
                for t in 0..CPUS {
                    let mut p = p.clone();
                    s.spawn(move || {
                        CPU.with(|c| c.set(t));
                        for k in 0..10u32 {
                            for _ in 0..t + k % 3 {
                                let mut input = [k.to_le_bytes(), [0; 4]].concat();
                                assert_eq!(p.run(&mut input).unwrap(), u64::from(t));
                            }
                        }
                    });
                }
            });
            let h = obj.map("h").unwrap();
            let mut q = prep("q");
            for k in 0..10u32 {
                let want: Vec<u64> = (0..CPUS).map(|t| u64::from(t + k % 3)).collect();
                let v = h.lookup(&k.to_le_bytes()).unwrap().unwrap();
                let got: Vec<u64> = (0..CPUS as usize).map(|c| u64_at(&v, c * 8)).collect();
                assert_eq!(got, want, "{kind} {engine:?}: key {k}");
                for (cpu, &n) in want.iter().enumerate() {
                    let mut input = [k.to_le_bytes(), (cpu as u32).to_le_bytes()].concat();
                    assert_eq!(q.run(&mut input).unwrap(), n, "{kind} {engine:?}");
                }
                let mut input = [k.to_le_bytes(), CPUS.to_le_bytes()].concat();
                assert_eq!(q.run(&mut input).unwrap(), u64::MAX, "no CPU {CPUS}");
            }
            assert_eq!(h.len(), 10, "{kind} {engine:?}");
        }
    }
}

/// `map_lookup_percpu_elem`'s CPU is a `u32` (the kernel's prototype), so the upper half of
/// r3 is ignored; a CPU past the last gives `NULL`, and so does a map that is not per-CPU.
#[test]
fn lookup_percpu_elem_takes_a_32_bit_cpu() {
    // Looks up key 0 on CPU `r3` (the lddw's value), returning the value or u64::MAX for NULL.
    let text = |cpu: u64| {
        format!(
            "stw [r10-4], 0
lddw r1, map_idx(0)
mov r2, r10
add r2, -4
lddw r3, {cpu:#x}
             call 195
jeq r0, 0, +2
ldxdw r0, [r0+0]
exit
mov r0, -1
exit"
        )
    };
    for engine in Engine::ALL {
        for kind in [MapKind::PerCpuArray, MapKind::PerCpuHash, MapKind::Hash] {
            let defs = [1, 2, 1 << 32 | 1, 1 << 32 | 2, 2 << 32]
                .iter()
                .map(|&cpu| bpfx::ProgramDef::new(format!("cpu{cpu:x}"), "test", asm(&text(cpu))))
                .collect();
            let obj = vm(2)
                .object(defs, vec![MapSpec::new("m", kind, 4, 8, 4)])
                .unwrap();
            let m = obj.map("m").unwrap();
            if kind.per_cpu() {
                let all = [7u64.to_le_bytes(), 9u64.to_le_bytes()].concat();
                m.update(&0u32.to_le_bytes(), &all, UpdateFlag::Any)
                    .unwrap();
            } else {
                m.update(&0u32.to_le_bytes(), &7u64.to_le_bytes(), UpdateFlag::Any)
                    .unwrap();
            }
            let run = |cpu: u64| {
                program(&obj, &format!("cpu{cpu:x}"), engine)
                    .run(&mut [])
                    .unwrap()
            };
            let null = u64::MAX;
            let want = |v: u64| if kind.per_cpu() { v } else { null };
            assert_eq!(run(1), want(9), "{kind} {engine:?}");
            assert_eq!(run(2), null, "{kind} {engine:?}: no CPU 2");
            assert_eq!(run(1 << 32 | 1), want(9), "{kind} {engine:?}: CPU 1");
            assert_eq!(run(1 << 32 | 2), null, "{kind} {engine:?}: CPU 2");
            assert_eq!(run(2 << 32), want(7), "{kind} {engine:?}: CPU 0");
        }
    }
}

#[test]
fn the_cpu_hook_is_taken_modulo_the_cpus() {
    let prog = asm("call 8\nexit");
    for engine in Engine::ALL {
        let obj = Vm::new()
            .cpus(3)
            .cpu_id(|| 7)
            .object(
                vec![bpfx::ProgramDef::new("p", "test", prog.clone())],
                vec![],
            )
            .unwrap();
        let mut p = program(&obj, "p", engine);
        assert_eq!(p.run(&mut []).unwrap(), 1, "{engine:?}");
    }
}

/// `push`: `map_push_elem(map, &input.value, input.flags)`; `pop` / `peek`: the value taken
/// by `map_pop_elem` / `map_peek_elem` into the stack, or the negative errno. Input:
/// `{u64 value; u64 flags}`.
const PUSH: &str = "mov r6, r1\nlddw r1, map_idx(0)\nmov r2, r6\nldxdw r3, [r6+8]\ncall 87\nexit";
fn pop_prog(helper: u32) -> String {
    format!(
        "lddw r1, map_idx(0)\nmov r2, r10\nadd r2, -8\ncall {helper}\n\
         jne r0, 0, out\nldxdw r0, [r10-8]\nout:\nexit"
    )
}

fn push_pop_objects(vm: &Vm, spec: MapSpec) -> Object {
    let defs = vec![
        bpfx::ProgramDef::new("push", "test", asm(PUSH)),
        bpfx::ProgramDef::new("pop", "test", asm(&pop_prog(88))),
        bpfx::ProgramDef::new("peek", "test", asm(&pop_prog(89))),
    ];
    vm.object(defs, vec![spec]).unwrap()
}

fn prep(obj: &Object, name: &str, mode: Mode, engine: Engine) -> Program {
    obj.program(name)
        .unwrap()
        .input_size(16)
        .verify(mode)
        .unwrap()
        .engine(engine, false)
        .unwrap()
}

fn input(value: u64, flags: u64) -> Vec<u8> {
    [value.to_le_bytes(), flags.to_le_bytes()].concat()
}

fn errno(e: i64) -> u64 {
    (-e) as u64
}

#[test]
fn queues_and_stacks_push_pop_and_peek_from_programs() {
    for (kind, order) in [(MapKind::Queue, [2, 3, 4]), (MapKind::Stack, [4, 3, 2])] {
        for engine in Engine::ALL {
            let obj = push_pop_objects(&Vm::new(), MapSpec::new("q", kind, 0, 8, 3));
            // Strict: the popped value is written by the helper, so the stack read after
            // the call is of initialised bytes.
            let mut push = prep(&obj, "push", Mode::Strict, engine);
            let mut pop = prep(&obj, "pop", Mode::Strict, engine);
            let mut peek = prep(&obj, "peek", Mode::Strict, engine);
            let what = format!("{kind} {engine:?}");
            assert_eq!(
                pop.run(&mut input(0, 0)).unwrap(),
                errno(2),
                "{what}: empty"
            );
            for v in 1..=3 {
                assert_eq!(push.run(&mut input(v, 0)).unwrap(), 0, "{what}");
            }
            assert_eq!(
                push.run(&mut input(4, 0)).unwrap(),
                errno(7),
                "{what}: full"
            );
            assert_eq!(push.run(&mut input(4, 1)).unwrap(), errno(22), "{what}");
            assert_eq!(push.run(&mut input(4, 2)).unwrap(), 0, "{what}: replaces 1");
            assert_eq!(peek.run(&mut input(0, 0)).unwrap(), order[0], "{what}");
            let q = obj.map("q").unwrap();
            assert_eq!(q.len(), 3);
            assert_eq!(q.peek().unwrap(), Some(order[0].to_le_bytes().to_vec()));
            for want in order {
                assert_eq!(pop.run(&mut input(0, 0)).unwrap(), want, "{what}");
            }
            assert_eq!(peek.run(&mut input(0, 0)).unwrap(), errno(2), "{what}");
            // The host pushes and pops the same values.
            q.push(&9u64.to_le_bytes(), 0).unwrap();
            q.update(&[], &10u64.to_le_bytes(), UpdateFlag::Any)
                .unwrap();
            let first = if kind == MapKind::Queue { 9u64 } else { 10 };
            assert_eq!(pop.run(&mut input(0, 0)).unwrap(), first, "{what}");
            assert_eq!(q.pop().unwrap(), Some((19 - first).to_le_bytes().to_vec()));
            assert_eq!(q.pop().unwrap(), None);
            assert_eq!(q.delete(&[]).map_err(|e| e.errno()), Err(22));
        }
    }
}

/// `test`: `map_peek_elem(map, &input.value)` of a bloom filter: 0 or `-ENOENT`.
const BLOOM_TEST: &str = "ldxdw r2, [r1+0]\nstxdw [r10-8], r2\nlddw r1, map_idx(0)\n\
    mov r2, r10\nadd r2, -8\ncall 89\nexit";

#[test]
fn bloom_filters_answer_like_the_host_with_no_false_negatives() {
    for engine in Engine::ALL {
        let mut spec = MapSpec::new("b", MapKind::BloomFilter, 0, 8, 64);
        spec.flags = 1 << 6; // BPF_F_ZERO_SEED
        let defs = vec![
            bpfx::ProgramDef::new("push", "test", asm(PUSH)),
            bpfx::ProgramDef::new("test", "test", asm(BLOOM_TEST)),
        ];
        let obj = Vm::new().object(defs, vec![spec]).unwrap();
        let mut push = prep(&obj, "push", Mode::Strict, engine);
        let mut test = prep(&obj, "test", Mode::Strict, engine);
        let b = obj.map("b").unwrap();
        let pushed: Vec<u64> = (0..40u64).map(|i| i * 1_000_003).collect();
        for &v in &pushed {
            assert_eq!(push.run(&mut input(v, 0)).unwrap(), 0, "{engine:?}");
        }
        assert_eq!(push.run(&mut input(1, 2)).unwrap(), errno(22), "{engine:?}");
        let mut absent = 0;
        for v in (0..400u64).map(|i| i * 500_001) {
            let got = test.run(&mut input(v, 0)).unwrap();
            let host = b.bloom_contains(&v.to_le_bytes()).unwrap();
            assert_eq!(got, if host { 0 } else { errno(2) }, "{engine:?}: {v}");
            if pushed.contains(&v) {
                assert!(host, "{engine:?}: {v} was pushed");
            }
            absent += usize::from(!host);
        }
        // 64 entries give 512 bits for 40 values: about 2 % false positives.
        assert!(
            absent > 300,
            "{engine:?}: only {absent} of 400 reported absent"
        );
        assert_eq!(b.pop().map_err(|e| e.errno()), Err(95));
    }
}

#[test]
fn next_key_walks_arrays_by_index_and_hashes_by_slot() {
    let obj = Vm::new()
        .object(
            vec![],
            vec![
                MapSpec::new("a", MapKind::Array, 4, 8, 3),
                MapSpec::new("h", MapKind::Hash, 2, 8, 4),
                MapSpec::new("r", MapKind::RingBuf, 0, 0, 64),
            ],
        )
        .unwrap();
    let walk = |name: &str| {
        let m = obj.map(name).unwrap();
        let mut keys = Vec::new();
        let mut cur: Option<Vec<u8>> = None;
        while let Some(k) = m.next_key(cur.as_deref()).unwrap() {
            keys.push(k.clone());
            cur = Some(k);
        }
        keys
    };
    let le = |i: u32| i.to_le_bytes().to_vec();
    assert_eq!(walk("a"), [le(0), le(1), le(2)]);
    let a = obj.map("a").unwrap();
    assert_eq!(
        a.next_key(Some(&le(7))).unwrap(),
        Some(le(0)),
        "past the end"
    );
    let h = obj.map("h").unwrap();
    assert_eq!(h.next_key(None).unwrap(), None, "empty");
    for k in [b"zz", b"ab", b"mm"] {
        h.update(k, &[0; 8], UpdateFlag::Any).unwrap();
    }
    // Slot order: the order of insertion while no slot was freed.
    assert_eq!(walk("h"), [b"zz".to_vec(), b"ab".to_vec(), b"mm".to_vec()]);
    assert_eq!(
        h.next_key(Some(b"nn")).unwrap(),
        Some(b"zz".to_vec()),
        "unknown key"
    );
    assert!(matches!(
        h.next_key(Some(b"abc")),
        Err(MapError::KeySize { .. })
    ));
    assert_eq!(
        obj.map("r").unwrap().next_key(None).map_err(|e| e.errno()),
        Err(22)
    );
}

/// `next_key` over every hash kind keeps the kernel's answers as keys come and go: the key
/// after a held one in the table's order (slot order: insertion order until deleted slots are
/// reused), the first key for one the map does not hold, nothing after the last; a walk of
/// 20,000 keys (one call per key, each costing the free slots it skips rather than a scan of
/// the table) sees each held key exactly once, also after deletions and, for LRU kinds,
/// evictions.
#[test]
fn next_key_follows_inserts_deletes_and_evictions_on_every_hash_kind() {
    const N: u32 = 20_000;
    for kind in [
        MapKind::Hash,
        MapKind::LruHash,
        MapKind::PerCpuHash,
        MapKind::LruPerCpuHash,
    ] {
        let obj = Vm::new()
            .cpus(2)
            .object(vec![], vec![MapSpec::new("h", kind, 4, 8, N)])
            .unwrap();
        let h = obj.map("h").unwrap();
        let value = vec![0u8; h.host_value_size()];
        let be = |i: u32| i.to_be_bytes().to_vec();
        let num = |k: &Vec<u8>| u32::from_be_bytes(k[..].try_into().unwrap());
        // Inserted out of order.
        let order: Vec<u32> = (0..N).map(|i| (i.wrapping_mul(7919)) % N * 2).collect();
        for &k in &order {
            h.update(&be(k), &value, UpdateFlag::Any).unwrap();
        }
        let walk = || {
            let mut keys = Vec::new();
            let mut cur: Option<Vec<u8>> = None;
            while let Some(k) = h.next_key(cur.as_deref()).unwrap() {
                keys.push(num(&k));
                cur = Some(k);
            }
            keys
        };
        // Every held key once, and nothing else.
        let check = |walked: &[u32], what: &str| {
            let mut sorted = walked.to_vec();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(sorted.len(), walked.len(), "{kind}: {what}: a key twice");
            assert_eq!(
                walked.len(),
                h.len(),
                "{kind}: {what}: the walk and the count"
            );
            for k in walked {
                assert!(h.lookup(&be(*k)).unwrap().is_some(), "{kind}: {what}: {k}");
            }
        };
        let first = walk();
        assert_eq!(
            first, order,
            "{kind}: a fresh table walks in insertion order"
        );
        assert_eq!(
            h.next_key(Some(&be(3))).unwrap(),
            Some(be(first[0])),
            "{kind}: absent"
        );
        assert_eq!(
            h.next_key(Some(&be(first[4]))).unwrap(),
            Some(be(first[5])),
            "{kind}"
        );
        assert_eq!(
            h.next_key(Some(&be(first[first.len() - 1]))).unwrap(),
            None,
            "{kind}: last"
        );
        // Every third key deleted: the walk skips them, and a deleted key restarts it.
        for k in (0..N).step_by(3) {
            h.delete(&be(k * 2)).unwrap();
        }
        let left = walk();
        let want: Vec<u32> = order.iter().copied().filter(|k| k / 2 % 3 != 0).collect();
        assert_eq!(left, want, "{kind}: after deletes");
        check(&left, "after deletes");
        assert_eq!(
            h.next_key(Some(&be(6))).unwrap(),
            Some(be(left[0])),
            "{kind}: deleted"
        );
        // Refill past the free slots with odd keys: an LRU map evicts (its least recently
        // used keys: the oldest even ones), a plain one refuses once full.
        for k in 0..N {
            let _ = h.update(&be(k * 2 + 1), &value, UpdateFlag::Any);
        }
        let all = walk();
        check(&all, "refilled");
        assert_eq!(all.len(), N as usize, "{kind}: full");
    }
}

#[test]
fn lru_percpu_hash_under_eviction_while_the_host_reads() {
    const CPUS: u32 = 4;
    for engine in Engine::ALL {
        let defs = vec![bpfx::ProgramDef::new("p", "test", asm(COUNT))];
        let obj = vm(CPUS)
            .object(
                defs,
                vec![MapSpec::new("h", MapKind::LruPerCpuHash, 4, 8, 8)],
            )
            .unwrap();
        let p = obj
            .program("p")
            .unwrap()
            .input_size(8)
            .verify(Mode::Checked)
            .unwrap()
            .engine(engine, false)
            .unwrap();
        let h = obj.map("h").unwrap();
        let done = std::sync::atomic::AtomicBool::new(false);
        // Runners start once the reader is reading.
        let start = std::sync::Barrier::new(CPUS as usize + 1);
        std::thread::scope(|s| {
            let start = &start;
            let runners: Vec<_> = (0..CPUS)
                .map(|t| {
                    let mut p = p.clone();
                    s.spawn(move || {
                        CPU.with(|c| c.set(t));
                        start.wait();
                        for i in 0..3000u32 {
                            let k = (i * 5 + t) % 24;
                            let mut input = [k.to_le_bytes(), [0; 4]].concat();
                            let r = p.run(&mut input).unwrap();
                            // The CPU, or 1000 when another thread inserted the key first.
                            assert!(r == u64::from(t) || r == 1000, "{r}");
                        }
                    })
                })
                .collect();
            let (h, done) = (&h, &done);
            let reader = s.spawn(move || {
                start.wait();
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    for (k, v) in h.iter() {
                        assert_eq!((k.len(), v.len()), (4, 8 * CPUS as usize));
                    }
                    let _ = h.next_key(None).unwrap();
                    let _ = h.lookup(&3u32.to_le_bytes()).unwrap();
                }
            });
            for r in runners {
                r.join().unwrap();
            }
            done.store(true, std::sync::atomic::Ordering::Relaxed);
            reader.join().unwrap();
        });
        assert_eq!(h.len(), 8, "{engine:?}: full, evicting");
    }
}

/// `perf_event_output(ctx, events, flags, &u64 0x1234, 8)` with `flags` from the assembler.
fn ctxlen_prog(flags: u64) -> String {
    format!(
        "mov r6, r1\nstdw [r10-8], 0x1234\nmov r1, r6\nlddw r2, map_idx(0)\n\
         lddw r3, {flags:#x}\nmov r4, r10\nadd r4, -8\nmov r5, 8\ncall 25\nexit"
    )
}

#[test]
fn perf_event_output_appends_packet_bytes_for_xdp() {
    let cur = bpfx::BPF_F_CURRENT_CPU;
    for engine in Engine::ALL {
        let defs = vec![
            bpfx::ProgramDef::new("six", "xdp", asm(&ctxlen_prog(6 << 32 | cur))),
            bpfx::ProgramDef::new("long", "xdp", asm(&ctxlen_prog(61 << 32 | cur))),
            bpfx::ProgramDef::new("mem", "test", asm(&ctxlen_prog(6 << 32 | cur))),
            bpfx::ProgramDef::new("bad", "xdp", asm(&ctxlen_prog(1 << 52 | cur))),
        ];
        let obj = vm(2)
            .object(
                defs,
                vec![MapSpec::new("events", MapKind::PerfEventArray, 4, 4, 0)],
            )
            .unwrap();
        let run = |name: &str, packet: &mut [u8]| {
            let mut p = program(&obj, name, engine);
            CPU.with(|c| c.set(1));
            if name == "mem" {
                p.run(packet).unwrap()
            } else {
                p.run_xdp(packet).unwrap().code()
            }
        };
        let mut packet: Vec<u8> = (1..=60).collect();
        assert_eq!(run("six", &mut packet), 0, "{engine:?}");
        assert_eq!(
            run("long", &mut packet),
            errno(14),
            "{engine:?}: past the end"
        );
        assert_eq!(run("mem", &mut packet), errno(22), "{engine:?}: no packet");
        assert_eq!(
            run("bad", &mut packet),
            errno(22),
            "{engine:?}: unknown flag"
        );
        let mut want = 0x1234u64.to_le_bytes().to_vec();
        want.extend(1..=6u8);
        want.resize(20, 0);
        assert_eq!(
            obj.map("events").unwrap().perf_drain().unwrap(),
            [PerfEvent::Sample { cpu: 1, data: want }],
            "{engine:?}"
        );
    }
}

/// `tests/objects/bloom_extra.o`: bloom filters declared with `__uint(map_extra, 3)` (three
/// hash functions), without `map_extra` (the kernel's default, five) and with `map_extra` 16
/// (refused, `EINVAL`). Each value pushed from a program sets as many bits as the filter has
/// hash functions (the filters are large enough that two positions rarely meet: a few
/// collisions are allowed, never as many as the other count would give); programs and the
/// host agree on membership, on every engine and JIT option set.
#[test]
fn bloom_filters_take_their_hash_count_from_map_extra() {
    let path = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/objects/bloom_extra.o"
    ));
    let values: Vec<u64> = (1..=12u64)
        .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15))
        .collect();
    for (engine, opts) in bpfx_testkit::matrix() {
        let obj = Vm::new().open(&path).unwrap();
        let run = |name: &str, v: u64| {
            let verified = obj
                .program(name)
                .unwrap()
                .input_size(8)
                .verify(Mode::Strict)
                .unwrap_or_else(|e| panic!("{name} {engine}: {e}"));
            let mut prog = match opts.clone() {
                None => verified.interpret(),
                Some(o) => verified.compile_with(&o).unwrap(),
            };
            prog.run(&mut v.to_le_bytes()).unwrap() as u32 as i32
        };
        for &v in &values {
            assert_eq!(run("add3", v), 0, "{engine}");
            assert_eq!(run("add5", v), 0, "{engine}");
        }
        for (map, k) in [("seen3", 3), ("seen5", 5)] {
            let m = obj.map(map).unwrap();
            assert_eq!(m.spec().map_extra, if k == 3 { 3 } else { 0 }, "{map}");
            let set = m.len();
            let most = k * values.len();
            assert!(
                (most - 2..=most).contains(&set),
                "{engine} {map}: {set} bits set by {} values",
                values.len()
            );
        }
        let seen3 = obj.map("seen3").unwrap();
        for v in values.iter().copied().chain([5, 6, 7]) {
            let host = seen3.bloom_contains(&v.to_le_bytes()).unwrap();
            assert!(host || !values.contains(&v), "{engine}: {v} was pushed");
            assert_eq!(run("test3", v), if host { 0 } else { -2 }, "{engine}: {v}");
        }
        // map_extra above 15: the map cannot be created; only its program fails.
        let e = obj
            .program("add_too_many")
            .unwrap()
            .input_size(8)
            .verify(Mode::Strict)
            .expect_err("EINVAL");
        assert!(
            e.to_string().contains("too_many") && e.to_string().contains("EINVAL"),
            "{e}"
        );
    }
}

/// `map_extra` means nothing to the other map types: the kernel refuses it on them.
#[test]
fn map_extra_is_refused_on_maps_other_than_bloom_filters() {
    use bpfx::MapSpecExt;
    for kind in [
        MapKind::Array,
        MapKind::Hash,
        MapKind::PerCpuArray,
        MapKind::Queue,
    ] {
        let key = if kind == MapKind::Queue { 0 } else { 4 };
        let spec = MapSpec {
            map_extra: 1,
            ..MapSpec::new("m", kind, key, 8, 4)
        };
        let e = spec.check().expect_err("EINVAL");
        assert!(
            e.contains("map_extra") && e.contains("EINVAL"),
            "{kind}: {e}"
        );
        assert!(
            MapSpec {
                map_extra: 0,
                ..spec
            }
            .check()
            .is_ok(),
            "{kind}"
        );
    }
    let bloom = |extra| MapSpec {
        map_extra: extra,
        ..MapSpec::new("b", MapKind::BloomFilter, 0, 8, 100)
    };
    // 100 entries: ceil(100 * k / ln 2) bits, rounded up to a power of two, plus the header.
    let need = |extra| bloom(extra).check().unwrap() - bloom(1).check().unwrap();
    assert_eq!(need(0), (1024 - 256) / 8, "5 hashes: 722 -> 1024 bits");
    assert_eq!(need(3), (512 - 256) / 8, "3 hashes: 433 -> 512 bits");
    assert_eq!(need(15), (4096 - 256) / 8, "15 hashes: 2165 -> 4096 bits");
    for bad in [16, 0x1f, 1 << 32] {
        assert!(bloom(bad).check().is_err(), "{bad:#x}");
    }
}
