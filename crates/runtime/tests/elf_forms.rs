//! The map and extern forms of real projects, through the API on both engines: the loader's
//! fixtures of `crates/elf/tests/objects/` (C sources and build commands beside them) —
//! an iproute2-style counter (also with `e_machine` 0, and with per-CPU maps), a tail-call
//! dispatcher whose program array is filled by its `.values` initialiser, `__kconfig` values
//! given by the embedder, and `__ksym`/unresolved externs that fail only the programs using
//! them.

use bpfx::{Context, Engine, Error, Mode, Object, Program, SkbMeta, Vm, XdpAction};
use bpfx_verifier::VerifyErrorKind;
use std::path::PathBuf;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../elf/tests/objects")).join(name)
}

fn packet(name: &str) -> Vec<u8> {
    let path = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples")).join(name);
    std::fs::read(path).expect("example packet exists")
}

fn prepare(obj: &Object, name: &str, engine: Engine) -> Result<Program, Error> {
    obj.program(name)?
        .verify(Mode::Checked)?
        .engine(engine, false)
}

/// Runs a socket filter on an empty packet: its return value.
fn run_socket(p: &mut Program) -> u64 {
    u64::from(p.run_socket(&[], &SkbMeta::default()).unwrap().code)
}

fn u64_at(obj: &Object, map: &str, key: u32) -> u64 {
    let v = obj
        .map(map)
        .unwrap()
        .lookup(&key.to_le_bytes())
        .unwrap()
        .expect("array entry");
    u64::from_le_bytes(v.try_into().unwrap())
}

/// An IPv6 frame header: no program of the fixtures handles it.
fn ipv6_frame() -> Vec<u8> {
    let mut f = vec![0u8; 54];
    f[12] = 0x86;
    f[13] = 0xdd;
    f
}

#[test]
fn iproute2_counter_counts_per_frame_and_ethertype() {
    // The same object with e_machine (bytes 18-19) zeroed, as older LLVM wrote it.
    let original = std::fs::read(fixture("elf_map.o")).unwrap();
    let mut em0 = original.clone();
    em0[18..20].fill(0);
    for (file, bytes) in [("elf_map.o", &original), ("elf_map.o with EM_NONE", &em0)] {
        for engine in Engine::ALL {
            let obj = Vm::new().load(bytes).unwrap();
            let mut p = prepare(&obj, "xdp_count", engine).unwrap();
            let frames = [packet("tcp-syn.bin"), packet("arp.bin"), vec![0u8; 10]];
            for f in &frames {
                let want = if f.len() < 14 {
                    XdpAction::Drop
                } else {
                    XdpAction::Pass
                };
                assert_eq!(
                    p.run_xdp(&mut f.clone()).unwrap(),
                    want,
                    "{file} {engine:?}"
                );
            }
            let bytes: usize = frames.iter().map(Vec::len).sum();
            let stats: Vec<u64> = (0..3).map(|k| u64_at(&obj, "pkt_stats", k)).collect();
            assert_eq!(stats, [3, 1, bytes as u64], "{file} {engine:?}");
            let mut per_proto: Vec<(Vec<u8>, u64)> = obj
                .map("per_proto")
                .unwrap()
                .iter()
                .map(|(k, v)| (k, u64::from_le_bytes(v.try_into().unwrap())))
                .collect();
            per_proto.sort();
            let mut want: Vec<(Vec<u8>, u64)> = frames[..2]
                .iter()
                .map(|f| (f[12..14].to_vec(), 1))
                .collect();
            want.sort();
            assert_eq!(per_proto, want, "{file} {engine:?}");
        }
    }
}

#[test]
fn values_initialiser_fills_the_program_array() {
    for engine in Engine::ALL {
        let obj = Object::open(fixture("tailcall.o")).unwrap();
        assert!(obj.map("handlers").unwrap().programs().is_empty());
        // Only the dispatcher is prepared: its array's slots come from `.values`.
        let mut p = prepare(&obj, "dispatch", engine).unwrap();
        assert_eq!(
            obj.map("handlers").unwrap().programs(),
            [
                (0, "handle_ipv4".to_string()),
                (2, "handle_arp".to_string())
            ]
        );
        let frames = [
            (packet("tcp-syn.bin"), XdpAction::Pass), // handle_ipv4
            (packet("arp.bin"), XdpAction::Drop),     // handle_arp
            (ipv6_frame(), XdpAction::Pass),          // empty slot 1: falls through
            (packet("tcp-syn.bin"), XdpAction::Pass),
        ];
        let mut want = [0u64; 3];
        for (f, verdict) in frames {
            assert_eq!(p.run_xdp(&mut f.clone()).unwrap(), verdict, "{engine:?}");
            let key = match (f[12], f[13]) {
                (0x08, 0x00) => 0,
                (0x08, 0x06) => 2,
                _ => 1,
            };
            want[key] += 1;
        }
        let seen: Vec<u64> = (0..3).map(|k| u64_at(&obj, "seen", k)).collect();
        assert_eq!(seen, want, "{engine:?}");
        // The targets run on the dispatcher's engine.
        assert!(p.run_xdp(&mut packet("arp.bin")).is_ok());
    }
}

#[test]
fn a_slot_set_by_the_embedder_is_kept() {
    for engine in Engine::ALL {
        let obj = Object::open(fixture("tailcall.o")).unwrap();
        let ipv4 = prepare(&obj, "handle_ipv4", engine).unwrap();
        obj.map("handlers").unwrap().set_program(2, &ipv4).unwrap();
        let mut p = prepare(&obj, "dispatch", engine).unwrap();
        assert_eq!(
            obj.map("handlers").unwrap().programs(),
            [
                (0, "handle_ipv4".to_string()),
                (2, "handle_ipv4".to_string())
            ]
        );
        // ARP now goes to slot 2's handle_ipv4: passed and counted as IPv4.
        assert_eq!(
            p.run_xdp(&mut packet("arp.bin")).unwrap(),
            XdpAction::Pass,
            "{engine:?}"
        );
        assert_eq!(u64_at(&obj, "seen", 0), 1, "{engine:?}");
        assert_eq!(u64_at(&obj, "seen", 2), 0, "{engine:?}");
    }
}

#[test]
fn kconfig_values_reach_the_program() {
    let version = bpfx_elf::DEFAULT_KERNEL_VERSION;
    for engine in Engine::ALL {
        let vm = Vm::new()
            .kconfig("CONFIG_HZ", "250")
            .kconfig("CONFIG_BPF_JIT", "m");
        let obj = vm.open(fixture("kconfig.o")).unwrap();
        let mut p = prepare(&obj, "report", engine).unwrap();
        let newer = u64::from(version >= bpfx_elf::kernel_version(5, 15, 0));
        assert_eq!(run_socket(&mut p), newer, "{engine:?}");
        let got: Vec<u64> = (0..5).map(|k| u64_at(&obj, "config", k)).collect();
        // Version (default), HZ, TRI_MODULE, the unknown weak bool (0), the weak host name
        // without a value (empty).
        assert_eq!(got, [u64::from(version), 250, 2, 0, 0], "{engine:?}");

        // The embedder's version and host name.
        let old = bpfx_elf::kernel_version(4, 14, 0);
        let vm = vm
            .kconfig("LINUX_KERNEL_VERSION", old.to_string())
            .kconfig("CONFIG_DEFAULT_HOSTNAME", "\"edge\"");
        let obj = vm.open(fixture("kconfig.o")).unwrap();
        let mut p = prepare(&obj, "report", engine).unwrap();
        assert_eq!(run_socket(&mut p), 0, "{engine:?}: older than 5.15");
        assert_eq!(u64_at(&obj, "config", 0), u64::from(old));
        assert_eq!(u64_at(&obj, "config", 4), u64::from(b'e'));

        // A strong extern without a value fails the programs reading it, naming it; with a
        // value they run.
        match prepare(&obj, "needs_strong", engine) {
            Err(Error::Link {
                program, reason, ..
            }) => {
                assert_eq!(program, "needs_strong");
                assert!(reason.contains("CONFIG_STRONG_AND_ABSENT"), "{reason}");
            }
            other => panic!("{engine:?}: {other:?}"),
        }
        let obj = vm
            .clone()
            .kconfig("CONFIG_STRONG_AND_ABSENT", "9")
            .open(fixture("kconfig.o"))
            .unwrap();
        let mut p = prepare(&obj, "needs_strong", engine).unwrap();
        assert_eq!(run_socket(&mut p), 1, "{engine:?}: 9 > 5");
    }
    // Without CONFIG_HZ (strong) `report` cannot load; a value of the wrong type fails the
    // object, naming the extern.
    let obj = Object::open(fixture("kconfig.o")).unwrap();
    assert!(matches!(
        prepare(&obj, "report", Engine::Interpreter),
        Err(Error::Link { reason, .. }) if reason.contains("CONFIG_HZ")
    ));
    let e = Vm::new()
        .kconfig("CONFIG_HZ", "\"fast\"")
        .open(fixture("kconfig.o"))
        .unwrap_err();
    assert!(e.to_string().contains("CONFIG_HZ"), "{e}");
}

#[test]
fn ksyms_and_unresolved_externs_fail_only_their_programs() {
    for engine in Engine::ALL {
        let obj = Object::open(fixture("ksym.o")).unwrap();
        let mut counts = prepare(&obj, "counts", engine).unwrap();
        assert_eq!(
            counts.run_xdp(&mut packet("arp.bin")).unwrap(),
            XdpAction::Pass
        );
        assert_eq!(u64_at(&obj, "runs", 0), 1, "{engine:?}");
        // The status says so before anything is prepared.
        assert!(obj.program_status("counts").is_ok());
        assert!(matches!(
            obj.program_status("allocates"),
            Err(Error::Link { pc, .. }) if pc.0 == 2
        ));
        // objdump of ksym.o: the pcs of each program's extern reference.
        for (program, pc, symbol) in [
            ("allocates", 2, "bpf_obj_new_impl"),
            ("reads_ksym", 0, "bpf_prog_active"),
            ("links_elsewhere", 1, "helper_from_other_object"),
        ] {
            match prepare(&obj, program, engine) {
                Err(e @ Error::Link { .. }) => {
                    let Error::Link {
                        program: p,
                        pc: at,
                        reason,
                        ..
                    } = &e
                    else {
                        unreachable!()
                    };
                    assert_eq!((p.as_str(), at.0), (program, pc), "{e}");
                    assert!(reason.contains(symbol), "{e}");
                }
                other => panic!("{engine:?} {program}: {other:?}"),
            }
        }
        // The absent weak kfunc: its address is 0, so the guarded call is dead code.
        let mut weak = prepare(&obj, "probes_weak", engine).unwrap();
        assert_eq!(
            weak.run_xdp(&mut packet("arp.bin")).unwrap(),
            XdpAction::Pass
        );
        assert_eq!(u64_at(&obj, "runs", 1), 1, "{engine:?}");
        // Called where reachable: the verifier refuses the poisoned call (`51: call -0x1`,
        // insn 1), as the kernel refuses libbpf's.
        let poisoned = bpfx_elf::POISON_CALL_BASE as u32 + 2;
        match prepare(&obj, "calls_weak_unguarded", engine) {
            Err(Error::Verify { source, .. }) => {
                assert_eq!(source.pc.0, 1);
                assert_eq!(source.kind, VerifyErrorKind::UnknownHelper(poisoned));
            }
            other => panic!("{engine:?}: {other:?}"),
        }
    }
}

#[test]
fn iproute2_tail_call_sections_run_from_the_entry() {
    for engine in Engine::ALL {
        let obj = Object::open(fixture("elf_tailcall.o")).unwrap();
        // Written for plain memory (the input's first byte picks the slot) although its
        // section is iproute2's `classifier`: the context is set explicitly. The targets
        // (sections `9/1` and `0x9/5`, which name no type) default to the object's other
        // programs' context, TC, but run in their caller's, as tc loads every program of an
        // object as one type.
        let mut p = obj
            .program("cls_entry")
            .unwrap()
            .context(Context::Memory)
            .verify(Mode::Checked)
            .unwrap()
            .engine(engine, false)
            .unwrap();
        for target in ["cls_one", "cls_five"] {
            let info = obj.programs().find(|p| p.name == target).unwrap();
            assert_eq!(info.context(), Context::Tc, "{target}");
        }
        let mut want = [0u64; 8];
        for (first, result, key) in [(1u8, 10, 1), (5, 50, 5), (2, 0, 0), (200, 0, 0), (1, 10, 1)] {
            assert_eq!(
                p.run(&mut [first, 0, 0, 0]).unwrap(),
                result,
                "{engine:?} {first}"
            );
            want[key] += 1;
        }
        let hits: Vec<u64> = (0..8).map(|k| u64_at(&obj, "hits", k)).collect();
        assert_eq!(hits, want, "{engine:?}");
    }
}

#[test]
fn a_values_target_that_does_not_verify_fails_the_program_using_the_array() {
    // tailcall.o with handle_arp's first instruction (`w1 = 0x2`, the only such bytes in the
    // file) replaced by `call 9999`, a helper no one defines.
    let mut bytes = std::fs::read(fixture("tailcall.o")).unwrap();
    let first = [0xb4, 0x01, 0, 0, 0x02, 0, 0, 0];
    let at = bytes.windows(8).position(|w| w == first).unwrap();
    bytes[at..at + 8].copy_from_slice(&[0x85, 0, 0, 0, 0x0f, 0x27, 0, 0]);
    for engine in Engine::ALL {
        let obj = Vm::new().load(&bytes).unwrap();
        match prepare(&obj, "dispatch", engine) {
            Err(e @ Error::ProgArray { .. }) => {
                let Error::ProgArray { map, program, .. } = &e else {
                    unreachable!()
                };
                assert_eq!((map.as_str(), program.as_str()), ("handlers", "handle_arp"));
                assert!(e.to_string().contains("slot 2"), "{e}");
            }
            other => panic!("{engine:?}: {other:?}"),
        }
        // Programs that use no program array are unaffected.
        assert!(prepare(&obj, "handle_ipv4", engine).is_ok());
        assert!(obj.map("handlers").unwrap().programs().is_empty());
    }
}

/// The iproute2-style counter with per-CPU maps (`elf_percpu.c`: `struct bpf_elf_map`
/// definitions of a PERCPU_ARRAY and a PERCPU_HASH): frames run on three CPUs in turn, each
/// CPU's slots count its own frames, and the host reads every CPU's value as libbpf lays them
/// out; in both modes, on every engine and JIT option set.
#[test]
fn iproute2_percpu_counter_counts_per_cpu() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
    const CPUS: usize = 3;
    let frames = [
        packet("tcp-syn.bin"),
        packet("arp.bin"),
        vec![0u8; 10],
        packet("telnet-syn.bin"),
        packet("arp.bin"),
        ipv6_frame(),
        vec![0u8; 13],
    ];
    // Expected per CPU (frame i runs on CPU i % CPUS): stats and frames per EtherType.
    let mut stats = [[0u64; 3]; CPUS];
    let mut per_proto: std::collections::BTreeMap<[u8; 2], [u64; CPUS]> = Default::default();
    for (i, f) in frames.iter().enumerate() {
        let c = i % CPUS;
        stats[c][0] += 1;
        stats[c][2] += f.len() as u64;
        if f.len() < 14 {
            stats[c][1] += 1;
        } else {
            per_proto.entry([f[12], f[13]]).or_default()[c] += 1;
        }
    }
    let all_cpus = |v: [u64; CPUS]| -> Vec<u8> { v.iter().flat_map(|x| x.to_le_bytes()).collect() };
    for mode in [Mode::Checked, Mode::Strict] {
        for (engine, opts) in bpfx_testkit::matrix() {
            let cpu = Arc::new(AtomicU32::new(0));
            let obj = Vm::new()
                .cpus(CPUS as u32)
                .cpu_id({
                    let cpu = cpu.clone();
                    move || cpu.load(Relaxed)
                })
                .open(fixture("elf_percpu.o"))
                .unwrap();
            let v = obj
                .program("xdp_cpu_count")
                .unwrap()
                .verify(mode)
                .unwrap_or_else(|e| panic!("{mode:?}: {e}"));
            let mut p = match opts {
                None => v.interpret(),
                Some(o) => v.compile_with(&o).unwrap(),
            };
            for (i, f) in frames.iter().enumerate() {
                cpu.store((i % CPUS) as u32, Relaxed);
                let want = if f.len() < 14 {
                    XdpAction::Drop
                } else {
                    XdpAction::Pass
                };
                assert_eq!(
                    p.run_xdp(&mut f.clone()).unwrap(),
                    want,
                    "{mode:?} {engine}"
                );
            }
            let m = obj.map("cpu_stats").unwrap();
            for k in 0..3u32 {
                let want = all_cpus(std::array::from_fn(|c| stats[c][k as usize]));
                let got = m.lookup(&k.to_le_bytes()).unwrap().unwrap();
                assert_eq!(got, want, "{mode:?} {engine}: cpu_stats[{k}]");
            }
            let got: Vec<(Vec<u8>, Vec<u8>)> = obj.map("cpu_proto").unwrap().iter().collect();
            let want: Vec<(Vec<u8>, Vec<u8>)> = per_proto
                .iter()
                .map(|(k, v)| (k.to_vec(), all_cpus(*v)))
                .collect();
            assert_eq!(got, want, "{mode:?} {engine}: cpu_proto");
        }
    }
}

/// cilium/ebpf's `tc/entry` and `tc/tail` sections are TC programs, and a program array
/// declared with cilium's own pinning value (16) loads: the entry drops (`TC_ACT_SHOT`) while
/// its slot is empty and returns the tail's `TC_ACT_OK` once the tail fills it, which counts
/// in its hash, on every engine.
#[test]
fn cilium_style_tc_sections_and_pinning_load_and_run() {
    for engine in Engine::ALL {
        let obj = Object::open(fixture("pin_custom.o")).unwrap();
        assert_eq!(obj.map("calls").unwrap().spec().pinning, 16);
        let mut entry = prepare(&obj, "entry", engine).unwrap();
        assert_eq!(entry.context(), Context::Tc);
        let frame = packet("tcp-syn.bin");
        let run = |p: &mut Program| {
            let mut meta = SkbMeta::default();
            p.run_tc(&mut frame.clone(), &mut meta).unwrap().code()
        };
        assert_eq!(run(&mut entry), 2, "{engine:?}: empty slot");
        let tail = prepare(&obj, "tail_count", engine).unwrap();
        assert_eq!(tail.context(), Context::Tc);
        obj.map("calls").unwrap().set_program(0, &tail).unwrap();
        assert_eq!(run(&mut entry), 0, "{engine:?}");
        assert_eq!(run(&mut entry), 0, "{engine:?}");
        let n = obj
            .map("marks")
            .unwrap()
            .lookup(&1u32.to_le_bytes())
            .unwrap();
        assert_eq!(n, Some(2u64.to_le_bytes().to_vec()), "{engine:?}");
    }
}

/// The same object as tc loads it: every program a TC program, the entry's tail calls
/// included. The entry reads `__sk_buff.len`'s low byte as its slot.
#[test]
fn iproute2_tail_call_sections_take_the_objects_tc_context() {
    for engine in Engine::ALL {
        let obj = Object::open(fixture("elf_tailcall.o")).unwrap();
        let mut p = prepare(&obj, "cls_entry", engine).unwrap();
        assert_eq!(p.context(), Context::Tc);
        for (len, result) in [(257usize, 10), (261, 50), (14, 0), (258, 0)] {
            let mut frame = vec![0u8; len];
            let mut meta = SkbMeta::default();
            let got = p.run_tc(&mut frame, &mut meta).unwrap().code();
            assert_eq!(got, result, "{engine:?} {len}");
        }
        let hits: Vec<u64> = (0..8).map(|k| u64_at(&obj, "hits", k)).collect();
        assert_eq!(hits, [2, 1, 0, 0, 0, 1, 0, 0], "{engine:?}");
    }
}
