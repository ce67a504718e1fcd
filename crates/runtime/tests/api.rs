//! Every map type, helper and context through the API, on both engines, with programs
//! assembled here so each behaviour is pinned by a few instructions.

use bpfx::bytecode::{Program as Bytecode, assemble};
use bpfx::{
    ArgKind, Context, Engine, Error, HelperSig, MapKind, MapSpec, Mode, Object, Program,
    ProgramDef, RetKind, StructLayout, TrapKind, UpdateFlag, Vm, XdpAction,
};
use std::sync::{Arc, Mutex};

fn code(text: &str) -> Bytecode {
    Bytecode::decode(assemble(text).unwrap()).unwrap()
}

fn object(vm: &Vm, progs: &[(&str, &str)], maps: Vec<MapSpec>) -> Object {
    let defs = progs
        .iter()
        .map(|(name, text)| ProgramDef::new(*name, "test", code(text)))
        .collect();
    vm.object(defs, maps).unwrap()
}

fn prepare(obj: &Object, name: &str, engine: Engine) -> Program {
    obj.program(name)
        .unwrap()
        .verify(Mode::Checked)
        .unwrap()
        .engine(engine, false)
        .unwrap()
}

fn key(k: u32) -> [u8; 4] {
    k.to_le_bytes()
}

#[test]
fn map_helpers_lookup_update_delete_on_hash_and_array() {
    for engine in Engine::ALL {
        let hash = MapSpec::new("h", MapKind::Hash, 4, 8, 4);
        let array = MapSpec::new("a", MapKind::Array, 4, 8, 4);
        let args = "mov r2, r10\nadd r2, -4\nmov r3, r10\nadd r3, -16\nmov r4, 0\n";
        let k = "mov r2, r10\nadd r2, -4\n";
        // update(h, 3, 40); v = lookup(h, 3); *v += 2; update(a, 3, *v); then delete(h, 3)
        // twice: 0, then -ENOENT. r0 = (first << 8) | -second.
        let prog = format!(
            "stw [r10-4], 3\nstdw [r10-16], 40\n\
             lddw r1, map_idx(0)\n{args}call 2\n\
             lddw r1, map_idx(0)\n{k}call 1\n\
             jne r0, 0, +2\nmov r0, 99\nexit\n\
             ldxdw r3, [r0+0]\nadd r3, 2\nstxdw [r0+0], r3\nstxdw [r10-16], r3\n\
             lddw r1, map_idx(1)\n{args}call 2\n\
             lddw r1, map_idx(0)\n{k}call 3\nmov r6, r0\n\
             lddw r1, map_idx(0)\n{k}call 3\n\
             neg r0\nlsh r6, 8\nor r0, r6\nexit"
        );
        let obj = object(&Vm::new(), &[("p", &prog)], vec![hash, array]);
        let mut p = prepare(&obj, "p", engine);
        assert_eq!(p.run(&mut []).unwrap(), 2, "{engine:?}");
        let a = obj.map("a").unwrap();
        assert_eq!(
            a.lookup(&key(3)).unwrap(),
            Some(42u64.to_le_bytes().to_vec())
        );
        assert!(obj.map("h").unwrap().is_empty(), "{engine:?}");
    }
}

#[test]
fn helper_errors_are_kernel_errnos() {
    for engine in Engine::ALL {
        let hash = MapSpec::new("h", MapKind::Hash, 4, 8, 1);
        // Two NOEXIST updates of different keys into a 1-entry map: 0, then -E2BIG; the same
        // key again with NOEXIST: -EEXIST. r0 = (second << 8) ^ third, as negated errnos.
        let update = |k: u32, flags: u32| {
            format!(
                "stw [r10-4], {k}\nlddw r1, map_idx(0)\nmov r2, r10\nadd r2, -4\nmov r3, r10\nadd r3, -16\nmov r4, {flags}\ncall 2\n"
            )
        };
        let prog = format!(
            "stdw [r10-16], 0\n{}mov r6, r0\n{}mov r7, r0\n{}neg r7\nneg r0\nlsh r7, 8\nor r0, r7\nor r0, r6\nexit",
            update(1, 1),
            update(2, 1),
            update(1, 1)
        );
        let obj = object(&Vm::new(), &[("p", &prog)], vec![hash]);
        let mut p = prepare(&obj, "p", engine);
        assert_eq!(p.run(&mut []).unwrap(), (7 << 8) | 17, "{engine:?}");
    }
}

#[test]
fn time_random_cpu_and_printk_follow_the_hooks() {
    for engine in Engine::ALL {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let vm = Vm::new()
            .clock(|| 123_456)
            .seed(9)
            .cpus(4)
            .cpu_id(|| 3)
            .trace_sink(move |s| sink.lock().unwrap().push(s.to_string()));
        let mut rodata = MapSpec::new(".rodata", MapKind::Array, 4, 16, 1);
        rodata.initial_data = Some(b"t=%lu r=%x c=%d\n".to_vec());
        rodata.read_only = true;
        let prog = "call 5\nmov r6, r0\ncall 7\nmov r7, r0\ncall 8\nmov r8, r0\n\
             lddw r1, map_idx_value(0, 0)\nmov r2, 16\nmov r3, r6\nmov r4, r7\nmov r5, r8\ncall 6\n\
             mov r0, r6\nadd r0, r8\nexit";
        let obj = object(&vm, &[("p", prog)], vec![rodata]);
        let mut p = prepare(&obj, "p", engine);
        assert_eq!(p.run(&mut []).unwrap(), 123_459, "{engine:?}");
        let want = lines.lock().unwrap()[0].clone();
        assert!(
            want.starts_with("t=123456 r=") && want.ends_with(" c=3\n"),
            "{want}"
        );
        // A second object with the same seed draws the same number.
        let again = Arc::new(Mutex::new(Vec::new()));
        let sink = again.clone();
        let vm2 = Vm::new()
            .clock(|| 123_456)
            .seed(9)
            .cpus(4)
            .cpu_id(|| 3)
            .trace_sink(move |s| sink.lock().unwrap().push(s.to_string()));
        let mut rodata = MapSpec::new(".rodata", MapKind::Array, 4, 16, 1);
        rodata.initial_data = Some(b"t=%lu r=%x c=%d\n".to_vec());
        let obj2 = object(&vm2, &[("p", prog)], vec![rodata]);
        prepare(&obj2, "p", Engine::Interpreter)
            .run(&mut [])
            .unwrap();
        assert_eq!(again.lock().unwrap()[0], want, "{engine:?}");
    }
}

#[test]
fn each_cpu_draws_its_own_seeded_random_stream() {
    thread_local!(static CPU: std::cell::Cell<u32> = const { std::cell::Cell::new(0) });
    fn draws(p: &mut Program, cpu: u32, n: usize) -> Vec<u64> {
        CPU.with(|c| c.set(cpu));
        (0..n).map(|_| p.run(&mut []).unwrap()).collect()
    }
    let seeded = |cpus| {
        let vm = Vm::new()
            .seed(7)
            .cpus(cpus)
            .cpu_id(|| CPU.with(std::cell::Cell::get));
        object(&vm, &[("p", "call 7\nexit")], vec![])
    };
    for engine in Engine::ALL {
        // Two CPUs drawing at once, each on its own thread.
        let obj = seeded(2);
        let p = prepare(&obj, "p", engine);
        let streams: Vec<Vec<u64>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..2)
                .map(|cpu| {
                    let mut p = p.clone();
                    s.spawn(move || draws(&mut p, cpu, 64))
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        // The same seed on one thread, CPU 1 first: each CPU's stream is the same.
        let obj = seeded(2);
        let mut q = prepare(&obj, "p", engine);
        let one = draws(&mut q, 1, 64);
        let zero = draws(&mut q, 0, 64);
        assert_eq!(streams[0], zero, "{engine:?}");
        assert_eq!(streams[1], one, "{engine:?}");
        // The two CPUs' streams differ (and are not one stream shifted).
        assert_ne!(zero, one, "{engine:?}");
        assert!(
            !zero.windows(4).any(|w| one.windows(4).any(|v| v == w)),
            "{engine:?}"
        );
        // CPU 0's stream is what a single-CPU runtime with the seed draws.
        let obj = seeded(1);
        let mut r = prepare(&obj, "p", engine);
        assert_eq!(draws(&mut r, 0, 64), zero, "{engine:?}");
        // The numbers are 32-bit and vary.
        assert!(zero.iter().all(|&x| x <= u64::from(u32::MAX)), "{engine:?}");
        assert!(zero.windows(2).any(|w| w[0] != w[1]), "{engine:?}");
    }
}

#[test]
fn rodata_is_read_only_for_programs() {
    // The load is proven (and loses its guard in the JIT); the store never is, so both engines
    // refuse it with the same trap at the same pc and leave the value as it was.
    let text = "lddw r1, map_idx_value(0, 0)\nldxw r2, [r1+0]\nstw [r1+4], 1\nmov r0, 0\nexit";
    let mut traps = Vec::new();
    for engine in Engine::ALL {
        let mut rodata = MapSpec::new(".rodata", MapKind::Array, 4, 8, 1);
        rodata.read_only = true;
        rodata.initial_data = Some(vec![7; 8]);
        let obj = object(&Vm::new(), &[("p", text)], vec![rodata]);
        let verified = obj.program("p").unwrap().verify(Mode::Checked).unwrap();
        let facts = verified.program();
        assert_eq!(
            facts.access(bpfx::bytecode::Pc(2)).map(|f| f.proven),
            Some(true)
        );
        assert_eq!(
            facts.access(bpfx::bytecode::Pc(3)).map(|f| f.proven),
            Some(false)
        );
        let err = verified
            .engine(engine, false)
            .unwrap()
            .run(&mut [])
            .unwrap_err();
        match err {
            bpfx::RunError::Trap { trap, .. } => traps.push(trap),
            e => panic!("{engine:?}: {e}"),
        }
        let value = obj.map(".rodata").unwrap().lookup(&key(0)).unwrap();
        assert_eq!(value, Some(vec![7; 8]), "{engine:?}");
    }
    assert_eq!(traps[0].kind, TrapKind::OutOfBounds);
    assert_eq!(traps[0].pc, bpfx::bytecode::Pc(3));
    assert_eq!(traps[0], traps[1], "the engines disagree");
    // Strict mode rejects the store outright.
    let mut rodata = MapSpec::new(".rodata", MapKind::Array, 4, 8, 1);
    rodata.read_only = true;
    let obj = object(&Vm::new(), &[("p", text)], vec![rodata]);
    let err = obj.program("p").unwrap().verify(Mode::Strict).unwrap_err();
    assert!(
        err.to_string()
            .contains("insn #3: stw [r1+4], 1: r1 points into a value of read-only map Idx(0)"),
        "{err}"
    );
}

#[test]
fn lru_map_from_a_program_evicts_the_oldest_key() {
    for engine in Engine::ALL {
        let lru = MapSpec::new("l", MapKind::LruHash, 4, 8, 2);
        let put = |k: u32| {
            format!(
                "stw [r10-4], {k}\nlddw r1, map_idx(0)\nmov r2, r10\nadd r2, -4\nmov r3, r10\nadd r3, -16\nmov r4, 0\ncall 2\n"
            )
        };
        let prog = format!(
            "stdw [r10-16], 5\n{}{}{}mov r0, 0\nexit",
            put(1),
            put(2),
            put(3)
        );
        let obj = object(&Vm::new(), &[("p", &prog)], vec![lru]);
        prepare(&obj, "p", engine).run(&mut []).unwrap();
        let keys: Vec<Vec<u8>> = obj.map("l").unwrap().iter().map(|(k, _)| k).collect();
        assert_eq!(keys, [key(2).to_vec(), key(3).to_vec()], "{engine:?}");
    }
}

#[test]
fn ring_buffer_reserve_submit_discard_and_output() {
    for engine in Engine::ALL {
        let rb = MapSpec::new("rb", MapKind::RingBuf, 0, 0, 64);
        let prog = "lddw r1, map_idx(0)\nmov r2, 8\nmov r3, 0\ncall 131\njeq r0, 0, +23\n\
             stdw [r0+0], 11\nmov r1, r0\nmov r2, 0\ncall 133\n\
             lddw r1, map_idx(0)\nmov r2, 8\nmov r3, 0\ncall 131\njeq r0, 0, +13\n\
             stdw [r0+0], 22\nmov r1, r0\nmov r2, 0\ncall 132\n\
             stdw [r10-8], 33\nlddw r1, map_idx(0)\nmov r2, r10\nadd r2, -8\nmov r3, 8\nmov r4, 0\ncall 130\nexit\n\
             mov r0, 99\nexit";
        let obj = object(&Vm::new(), &[("p", prog)], vec![rb]);
        let mut p = prepare(&obj, "p", engine);
        assert_eq!(p.run(&mut []).unwrap(), 0, "{engine:?}");
        let recs = obj.map("rb").unwrap().drain_records().unwrap();
        assert_eq!(
            recs,
            [22u64.to_le_bytes().to_vec(), 33u64.to_le_bytes().to_vec()]
        );
        // ringbuf_output of 0 bytes returns 0 (the kernel's result) and writes an empty record.
        let obj = object(
            &Vm::new(),
            &[(
                "p",
                "lddw r1, map_idx(0)\nmov r2, r10\nmov r3, 0\nmov r4, 0\ncall 130\nexit",
            )],
            vec![MapSpec::new("rb", MapKind::RingBuf, 0, 0, 64)],
        );
        assert_eq!(
            prepare(&obj, "p", engine).run(&mut []).unwrap(),
            0,
            "{engine:?}"
        );
        let recs = obj.map("rb").unwrap().drain_records().unwrap();
        assert_eq!(recs, [Vec::<u8>::new()], "{engine:?}");
        // A reservation never submitted is discarded when the run ends, so the ring stays usable.
        let obj = object(
            &Vm::new(),
            &[(
                "p",
                "lddw r1, map_idx(0)\nmov r2, 64\nmov r3, 0\ncall 131\nexit",
            )],
            vec![MapSpec::new("rb", MapKind::RingBuf, 0, 0, 64)],
        );
        let mut p = prepare(&obj, "p", engine);
        assert_ne!(p.run(&mut []).unwrap(), 0);
        assert_eq!(
            p.run(&mut []).unwrap(),
            0,
            "{engine:?}: full until the reader catches up"
        );
        let rb = obj.map("rb").unwrap();
        assert_eq!(
            rb.drain_records().unwrap(),
            Vec::<Vec<u8>>::new(),
            "it was discarded"
        );
        assert_ne!(
            p.run(&mut []).unwrap(),
            0,
            "{engine:?}: and its space is free again"
        );
        // Submitting a pointer that is not a record is a helper error.
        let obj = object(
            &Vm::new(),
            &[("p", "mov r1, r10\nmov r2, 0\ncall 132\nmov r0, 0\nexit")],
            vec![],
        );
        let e = prepare(&obj, "p", engine).run(&mut []).unwrap_err();
        match &e {
            bpfx::RunError::Trap { trap, reason, .. } => {
                assert_eq!(trap.kind, TrapKind::HelperError);
                // The helper's own words reach the error and its message.
                let why = reason.as_deref().expect("the helper's message");
                assert!(e.to_string().ends_with(&format!("({why})")), "{e}");
            }
            e => panic!("{e}"),
        }
    }
}

#[test]
fn tail_calls_chain_up_to_the_kernel_limit_and_fail_softly() {
    for engine in Engine::ALL {
        let progs = MapSpec::new("progs", MapKind::ProgArray, 4, 4, 4);
        let counter = MapSpec::new("n", MapKind::Array, 4, 8, 1);
        // entry: tail_call(ctx, progs, r2 = input[0]); if it returns, r0 = 1000 + its result.
        let entry = "ldxb r3, [r1+0]\nlddw r2, map_idx(0)\ncall 12\nadd r0, 1000\nexit";
        // looper: n += 1, then tail_call(ctx, progs, 1) to itself; when that fails, return n.
        let looper = "lddw r6, map_idx_value(1, 0)\nldxdw r7, [r6+0]\nadd r7, 1\nstxdw [r6+0], r7\n\
             lddw r2, map_idx(0)\nmov r3, 1\ncall 12\nldxdw r0, [r6+0]\nexit";
        let leaf = "mov r0, 7\nexit";
        let obj = object(
            &Vm::new(),
            &[("entry", entry), ("looper", looper), ("leaf", leaf)],
            vec![progs, counter],
        );
        let map = obj.map("progs").unwrap();
        map.set_program(0, &prepare(&obj, "leaf", engine)).unwrap();
        map.set_program(1, &prepare(&obj, "looper", engine))
            .unwrap();
        let mut p = prepare(&obj, "entry", engine);
        assert_eq!(
            p.run(&mut [0]).unwrap(),
            7,
            "{engine:?}: the target's result"
        );
        // Out of range, and an empty slot: the helper fails, the program continues.
        assert_eq!(
            p.run(&mut [9]).unwrap() as i64,
            1000 - 7,
            "{engine:?}: -E2BIG"
        );
        assert_eq!(
            p.run(&mut [2]).unwrap() as i64,
            1000 - 2,
            "{engine:?}: -ENOENT"
        );
        // 33 tail calls succeed (entry -> looper, then 32 looper -> looper); the 34th fails.
        assert_eq!(p.run(&mut [1]).unwrap(), 33, "{engine:?}");
        let n = obj.map("n").unwrap().lookup(&key(0)).unwrap().unwrap();
        assert_eq!(u64::from_le_bytes(n.try_into().unwrap()), 33);
        // A program of another object cannot be put in the slot.
        let other = object(&Vm::new(), &[("leaf", leaf)], vec![]);
        assert!(matches!(
            map.set_program(2, &prepare(&other, "leaf", engine)),
            Err(Error::ProgArray { .. })
        ));
    }
}

/// `tail_call`'s map must be a program array: any other map is a verifier error in every
/// mode, not a run-time failure.
#[test]
fn tail_call_through_a_map_that_is_not_a_program_array_is_rejected_in_every_mode() {
    for kind in [MapKind::Hash, MapKind::Array] {
        let maps = vec![
            MapSpec::new("m", kind, 4, 4, 4),
            MapSpec::new("progs", MapKind::ProgArray, 4, 4, 4),
        ];
        let text = |i| format!("lddw r2, map_idx({i})\nmov r3, 0\ncall 12\nmov r0, 0\nexit");
        let obj = object(&Vm::new(), &[("bad", &text(0)), ("good", &text(1))], maps);
        for mode in [Mode::Checked, Mode::Strict] {
            let e = obj.program("bad").unwrap().verify(mode).unwrap_err();
            assert!(matches!(e, Error::Verify { .. }), "{kind:?} {mode:?}: {e}");
            let msg = e.to_string();
            assert!(
                msg.contains("insn #3: call 12") && msg.contains("not a program array"),
                "{msg}"
            );
            assert!(
                obj.program("good").unwrap().verify(mode).is_ok(),
                "{mode:?}"
            );
        }
    }
}

#[test]
fn embedder_helpers_are_called_and_their_signatures_enforced() {
    let sig = HelperSig::new(
        "sum",
        vec![ArgKind::PtrToMem { size_arg: Some(1) }, ArgKind::Scalar],
        RetKind::Scalar,
    );
    let vm = Vm::new().register_helper(0x2000, sig, |mem, a| {
        let b = mem
            .read(a[0], a[1] as usize)
            .ok_or_else(|| bpfx::HelperError("read".into()))?;
        Ok(b.iter().map(|&x| u64::from(x)).sum())
    });
    for engine in Engine::ALL {
        let ok = "stdw [r10-8], 0x0302\nmov r1, r10\nadd r1, -8\nmov r2, 8\ncall 8192\nexit";
        let obj = object(&vm, &[("p", ok)], vec![]);
        assert_eq!(prepare(&obj, "p", engine).run(&mut []).unwrap(), 5);
    }
    // A scalar where a pointer is declared is rejected by the verifier in strict mode.
    let bad = "mov r1, 8\nmov r2, 8\ncall 8192\nexit";
    let obj = object(&vm, &[("p", bad)], vec![]);
    let err = obj.program("p").unwrap().verify(Mode::Strict).unwrap_err();
    assert!(err.to_string().contains("sum"), "{err}");
}

/// An embedder's helper may end the program (`HelperRet::Return`) from any call depth: the run
/// ends at the call with that result, and the instructions after it never run. A tail call
/// from one (only `bpf_tail_call` names programs) ends the run with an `Unsupported` trap at
/// the call.
#[test]
fn embedder_helpers_may_end_the_program() {
    let sig = || HelperSig::new("ends", vec![ArgKind::Scalar], RetKind::Scalar);
    let vm = Vm::new()
        .register_ending_helper(0x2001, sig(), |_, a| {
            Ok(match a[0] {
                0 => bpfx::HelperRet::Value(5),
                n => bpfx::HelperRet::Return(n * 3),
            })
        })
        .register_ending_helper(0x2002, sig(), |_, _| {
            Ok(bpfx::HelperRet::TailCall(bpfx_exec::TailCall(Arc::new(
                1u8,
            ))))
        });
    // main: input[0] = 1, r0 = f(input[1]), input[0] = r0; f: r0 = helper(r1) + 100.
    let prog = |id: u32| {
        format!(
            "mov r6, r1
stb [r6+0], 1
ldxb r1, [r6+1]
call local f
stxb [r6+0], r0
exit
             f:
call {id}
add r0, 100
exit"
        )
    };
    for engine in Engine::ALL {
        let obj = object(&vm, &[("p", &prog(0x2001)), ("q", &prog(0x2002))], vec![]);
        let mut p = prepare(&obj, "p", engine);
        let mut input = [0, 0];
        assert_eq!(p.run(&mut input).unwrap(), 105, "{engine:?}");
        assert_eq!(input, [105, 0], "{engine:?}");
        let mut input = [0, 7];
        assert_eq!(
            p.run(&mut input).unwrap(),
            21,
            "{engine:?}: ended at the call"
        );
        assert_eq!(input, [1, 7], "{engine:?}: nothing after the call ran");
        match prepare(&obj, "q", engine).run(&mut [0, 0]) {
            Err(bpfx::RunError::Trap { trap, reason, .. }) => {
                assert_eq!(trap.kind, TrapKind::Unsupported, "{engine:?}");
                assert_eq!(trap.pc, bpfx::bytecode::Pc(6), "{engine:?}");
                assert!(reason.is_some_and(|r| r.contains("not a program")));
            }
            r => panic!("{engine:?}: {r:?}"),
        }
    }
}

#[test]
fn xdp_context_and_struct_context() {
    for engine in Engine::ALL {
        // Returns XDP_TX when the packet is longer than 4 bytes and its first byte is 0xaa,
        // after writing 0xbb there; reads ingress_ifindex into the return value otherwise.
        let xdp = "ldxw r2, [r1+0]\nldxw r3, [r1+4]\nmov r4, r2\nadd r4, 4\njgt r4, r3, +5\n\
             ldxb r5, [r2+0]\njne r5, 0xaa, +3\nstb [r2+0], 0xbb\nmov r0, 3\nexit\n\
             ldxw r0, [r1+12]\nexit";
        let defs = vec![ProgramDef::new("x", "xdp", code(xdp))];
        let obj = Vm::new().object(defs, vec![]).unwrap();
        let mut p = prepare(&obj, "x", engine);
        let mut pkt = [0xaa, 1, 2, 3, 4];
        assert_eq!(p.run_xdp(&mut pkt).unwrap(), XdpAction::Tx, "{engine:?}");
        assert_eq!(pkt[0], 0xbb, "the packet is written back");
        let meta = bpfx::XdpMeta {
            ingress_ifindex: 4,
            ..Default::default()
        };
        assert_eq!(
            p.run_xdp_with(&mut [1, 2], &meta).unwrap(),
            XdpAction::Redirect,
            "{engine:?}: ingress_ifindex 4 read as the action"
        );
        assert_eq!(XdpAction::from_code(4).name(), "XDP_REDIRECT");

        // A struct context { u32 in; u32 out } with no packet.
        let obj = object(
            &Vm::new(),
            &[(
                "s",
                "ldxw r2, [r1+0]\nmul r2, 3\nstxw [r1+4], r2\nmov r0, 1\nexit",
            )],
            vec![],
        );
        let mut p = obj
            .program("s")
            .unwrap()
            .context(Context::Struct(StructLayout {
                size: 8,
                packet: None,
            }))
            .verify(Mode::Strict)
            .unwrap()
            .engine(engine, false)
            .unwrap();
        let mut ctx = [5, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(p.run_ctx(&mut ctx, &mut []).unwrap(), 1);
        assert_eq!(ctx[4], 15, "{engine:?}");
        assert!(matches!(
            p.run(&mut []),
            Err(bpfx::RunError::WrongContext { .. })
        ));
        assert!(matches!(
            p.run_ctx(&mut [0; 4], &mut []),
            Err(bpfx::RunError::InputTooShort { .. })
        ));
    }
}

/// The verifier converts context accesses through any alias of r1: a copy moved by a constant
/// (`add r6, 4` then `[r6+0]` is `xdp_md.data_end`), a spill and fill, an offset from the
/// moved copy; the converted program reads bpfx's real fields on both engines, in both modes.
#[test]
fn xdp_context_read_through_a_moved_copy_and_a_spill() {
    // r0 = data_end - data (read through r6 = ctx + 4), plus ingress_ifindex * 256 (read
    // through a spilled copy at ctx + 4, offset 8 = xdp_md offset 12).
    let text = "mov r6, r1\nadd r6, 4\nldxw r0, [r6+0]\nldxw r2, [r1+0]\nsub r0, r2\n\
                stxdw [r10-8], r6\nldxdw r7, [r10-8]\nldxw r3, [r7+8]\nlsh r3, 8\n\
                add r0, r3\nexit";
    for mode in [Mode::Checked, Mode::Strict] {
        for engine in Engine::ALL {
            let defs = vec![ProgramDef::new("x", "xdp", code(text))];
            let obj = Vm::new().object(defs, vec![]).unwrap();
            let v = obj.program("x").unwrap().verify(mode).unwrap();
            let mut p = v.engine(engine, false).unwrap();
            let meta = bpfx::XdpMeta {
                ingress_ifindex: 3,
                ..Default::default()
            };
            let got = p.run_xdp_with(&mut [1, 2, 3, 4, 5], &meta).unwrap();
            assert_eq!(got.code(), 5 + 3 * 256, "{mode:?} {engine:?}");
        }
    }
}

/// Context accesses that match no field are verifier errors naming the pc and the instruction,
/// in both modes; so are stores to read-only fields, of XDP and of an embedder's struct.
#[test]
fn context_errors_are_verifier_errors_with_the_pc() {
    for mode in [Mode::Checked, Mode::Strict] {
        let text = "mov r0, 2\nldxw r0, [r1+2]\nexit";
        let defs = vec![ProgramDef::new("x", "xdp", code(text))];
        let obj = Vm::new().object(defs, vec![]).unwrap();
        let e = obj.program("x").unwrap().verify(mode).unwrap_err();
        assert_eq!(
            e.to_string(),
            "program `x`: verifier rejected it: insn #1: ldxw r0, [r1+2]: invalid access to \
             context at offset 2 size 4",
            "{mode:?}"
        );
        // data_end of an embedder struct {u64 data; u64 data_end; u32 x} is read-only; x is not.
        let layout = StructLayout {
            size: 24,
            packet: Some((0, 8)),
        };
        for (text, bad) in [
            ("stw [r1+16], 7\nmov r0, 0\nexit", None),
            (
                "mov r2, r1\nadd r2, 4\nstdw [r2+4], 0\nmov r0, 0\nexit",
                Some(2),
            ),
        ] {
            let obj = object(&Vm::new(), &[("s", text)], vec![]);
            let res = obj
                .program("s")
                .unwrap()
                .context(Context::Struct(layout))
                .verify(mode);
            match bad {
                None => {
                    res.unwrap();
                }
                Some(pc) => {
                    let e = res.unwrap_err().to_string();
                    assert!(
                        e.contains(&format!("insn #{pc}: stdw [r2+4], 0: write to the read-only context field at offset 8 size 8")),
                        "{mode:?}: {e}"
                    );
                }
            }
        }
    }
}

#[test]
fn two_threads_increment_one_map_value_atomically() {
    for engine in Engine::ALL {
        let array = MapSpec::new("a", MapKind::Array, 4, 8, 1);
        let prog = "stw [r10-4], 0\nlddw r1, map_idx(0)\nmov r2, r10\nadd r2, -4\ncall 1\n\
             jeq r0, 0, +2\nmov r1, 1\nlock add [r0+0], r1\nmov r0, 0\nexit";
        let obj = object(&Vm::new(), &[("p", prog)], vec![array]);
        let p = prepare(&obj, "p", engine);
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let mut p = p.clone();
                std::thread::spawn(move || {
                    for _ in 0..10_000 {
                        p.run(&mut []).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let v = obj.map("a").unwrap().lookup(&key(0)).unwrap().unwrap();
        assert_eq!(
            u64::from_le_bytes(v.try_into().unwrap()),
            20_000,
            "{engine:?}"
        );
    }
}

#[test]
fn errors_name_the_program_map_and_pc() {
    let obj = object(
        &Vm::new(),
        &[
            ("p", "lddw r1, map_idx(3)\nmov r0, 0\nexit"),
            ("q", "lddw r1, map_fd(1)\nmov r0, 0\nexit"),
        ],
        vec![MapSpec::new("m", MapKind::Array, 4, 4, 1)],
    );
    let e = obj.program("p").unwrap().verify(Mode::Checked).unwrap_err();
    assert!(
        e.to_string().contains("program `p`: insn #0")
            && e.to_string().contains("no map with index 3"),
        "{e}"
    );
    let e = obj.program("q").unwrap().verify(Mode::Checked).unwrap_err();
    assert!(e.to_string().contains("by index"), "{e}");
    let e = obj.program("zz").unwrap_err();
    assert_eq!(e.to_string(), "no program `zz`; programs: p, q");
    let e = obj.map("zz").unwrap_err();
    assert_eq!(e.to_string(), "no map `zz`; maps: m");
    let m = obj.map("m").unwrap();
    assert!(matches!(
        m.update(&key(0), &[1, 2], UpdateFlag::Any),
        Err(bpfx::MapError::ValueSize { .. })
    ));
    // A map too large to create does not sink the object: host access to it fails.
    let obj = Vm::new()
        .object(
            vec![],
            vec![MapSpec::new("big", MapKind::Array, 4, 1 << 20, 1 << 20)],
        )
        .unwrap();
    let e = obj.map("big").unwrap_err();
    assert!(e.to_string().starts_with("map `big`: needs "), "{e}");
    assert!(matches!(
        Object::open("/nonexistent.o"),
        Err(Error::Io { .. })
    ));
    assert!(matches!(
        Vm::new().load(b"\x7fELF\x02"),
        Err(Error::Elf { .. })
    ));
}
