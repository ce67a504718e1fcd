//! `BPF_MAP_TYPE_STACK_TRACE` and `bpf_get_stackid`: the clang-built `tests/objects/stackmap.c`
//! (stack counting as offcputime/profile tools do it) on the interpreter and the JIT with every
//! option set, in Checked and Strict mode; the map's creation checks and host view; the
//! verifier's map/helper compatibility rule.

mod common;

use bpfx::{
    Context, MapError, MapKind, MapSpec, MapSpecExt, Mode, Object, ProgramDef, PtRegs, Task, Vm,
};
use common::{code, engines, prepare};

const MODES: [Mode; 2] = [Mode::Checked, Mode::Strict];
const EFAULT: u32 = 14;

fn open() -> Object {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/objects/stackmap.o");
    Vm::new()
        .current_task(|| Task::new(4242, 4200))
        .open(path)
        .unwrap()
}

fn u64_of(v: Option<Vec<u8>>) -> Option<u64> {
    v.map(|v| u64::from_le_bytes(v[..8].try_into().unwrap()))
}

/// The (tgid, stack id) → count entries of `counts`, and the stack map's entries as frames.
fn counts(obj: &Object) -> Vec<(u32, i32, u64)> {
    let mut out: Vec<_> = obj
        .map("counts")
        .unwrap()
        .iter()
        .map(|(k, v)| {
            (
                u32::from_le_bytes(k[..4].try_into().unwrap()),
                i32::from_le_bytes(k[4..8].try_into().unwrap()),
                u64::from_le_bytes(v[..8].try_into().unwrap()),
            )
        })
        .collect();
    out.sort_unstable();
    out
}

#[test]
fn kprobe_counts_stacks_by_id_on_every_engine() {
    let regs = |ip: u64, skip: u64| PtRegs {
        ip,
        di: skip,
        ..PtRegs::default()
    };
    let mut seen = None;
    for mode in MODES {
        for (engine, opts) in engines() {
            let obj = open();
            let v = obj.program("on_switch").unwrap().verify(mode).unwrap();
            let mut p = prepare(v, opts);
            for ip in [
                0xffff_ffff_8100_1000u64,
                0xffff_ffff_8100_1000,
                0xffff_ffff_8100_2000,
            ] {
                assert_eq!(p.run_kprobe(&regs(ip, 0)).unwrap(), 0, "{mode:?} {engine}");
            }
            // Skipping the one frame leaves no stack: -EFAULT, counted apart.
            assert_eq!(
                p.run_kprobe(&regs(0x1234, 1)).unwrap(),
                1,
                "{mode:?} {engine}"
            );
            let stacks = obj.map("stackmap").unwrap();
            let c = counts(&obj);
            assert_eq!(c.len(), 2, "{mode:?} {engine}: {c:?}");
            assert!(c.iter().all(|&(tgid, id, _)| tgid == 4200 && id >= 0));
            let mut hits: Vec<_> = c.iter().map(|e| e.2).collect();
            hits.sort_unstable();
            assert_eq!(hits, [1, 2], "{mode:?} {engine}");
            // Each id's value: its one frame, zero-filled to 127 frames.
            let mut frames = Vec::new();
            for &(_, id, n) in &c {
                let v = stacks
                    .lookup(&(id as u32).to_le_bytes())
                    .unwrap()
                    .expect("stored stack");
                assert_eq!(v.len(), 127 * 8);
                assert!(v[8..].iter().all(|&b| b == 0));
                frames.push((u64_of(Some(v)).unwrap(), n));
            }
            frames.sort_unstable();
            assert_eq!(
                frames,
                [(0xffff_ffff_8100_1000, 2), (0xffff_ffff_8100_2000, 1)],
                "{mode:?} {engine}"
            );
            assert_eq!(stacks.iter().count(), 2);
            let errors = obj.map("errors").unwrap();
            assert_eq!(
                u64_of(errors.lookup(&EFAULT.to_le_bytes()).unwrap()),
                Some(1)
            );
            let ids: Vec<i32> = c.iter().map(|e| e.1).collect();
            match &seen {
                None => seen = Some(ids),
                Some(s) => assert_eq!(s, &ids, "ids differ on {mode:?} {engine}"),
            }
        }
    }
}

#[test]
fn user_stacks_and_stackless_contexts_give_efault() {
    for mode in MODES {
        for (engine, opts) in engines() {
            let obj = open();
            let mut user = prepare(
                obj.program("on_user").unwrap().verify(mode).unwrap(),
                opts.clone(),
            );
            let regs = PtRegs {
                ip: 0x4000,
                ..PtRegs::default()
            };
            assert_eq!(user.run_kprobe(&regs).unwrap(), 1, "{mode:?} {engine}");
            let mut raw = prepare(obj.program("on_raw").unwrap().verify(mode).unwrap(), opts);
            assert_eq!(raw.run_raw_tp(&[1, 2, 3]).unwrap(), 1, "{mode:?} {engine}");
            let errors = obj.map("errors").unwrap();
            assert_eq!(
                u64_of(errors.lookup(&EFAULT.to_le_bytes()).unwrap()),
                Some(2)
            );
            assert!(counts(&obj).is_empty());
            assert_eq!(obj.map("stackmap").unwrap().iter().count(), 0);
        }
    }
}

#[test]
fn flags_outside_the_kernel_mask_are_einval_and_collisions_eexist() {
    // One bucket: every stack has id 0. r0 = get_stackid(ctx, map, flags) for each flags.
    let text = |flags: u64| format!("lddw r2, map_idx(0)\nlddw r3, {flags:#x}\ncall 27\nexit");
    let spec = MapSpec::new("s", MapKind::StackTrace, 4, 8, 1);
    for mode in MODES {
        for (engine, opts) in engines() {
            let obj = Vm::new()
                .object(
                    vec![
                        ProgramDef::new("plain", "kprobe/a", code(&text(0))),
                        ProgramDef::new("bad", "kprobe/b", code(&text(1 << 11))),
                        ProgramDef::new("reuse", "kprobe/c", code(&text(1 << 10))),
                        ProgramDef::new("fast", "kprobe/d", code(&text(1 << 9))),
                    ],
                    vec![spec.clone()],
                )
                .unwrap();
            let run = |name: &str, ip: u64| {
                let v = obj.program(name).unwrap().verify(mode).unwrap();
                let mut p = prepare(v, opts.clone());
                p.run_kprobe(&PtRegs {
                    ip,
                    ..PtRegs::default()
                })
                .unwrap() as i64
            };
            let at = |e: &str| format!("{mode:?} {engine} {e}");
            assert_eq!(run("plain", 0x10), 0, "{}", at("first stack"));
            assert_eq!(run("plain", 0x10), 0, "{}", at("same stack"));
            assert_eq!(run("plain", 0x20), -17, "{}", at("other stack"));
            assert_eq!(run("bad", 0x10), -22, "{}", at("bad flags"));
            assert_eq!(run("fast", 0x10), 0, "{}", at("fast compare"));
            assert_eq!(run("reuse", 0x20), 0, "{}", at("reuse"));
            let v = obj.map("s").unwrap().lookup(&0u32.to_le_bytes()).unwrap();
            assert_eq!(
                v,
                Some(0x20u64.to_le_bytes().to_vec()),
                "{}",
                at("replaced")
            );
        }
    }
}

#[test]
fn creation_follows_the_kernel_checks() {
    let ok = MapSpec::new("s", MapKind::StackTrace, 4, 127 * 8, 1000);
    let bytes = ok.memory_bytes().unwrap();
    // 1024 buckets of 1016-byte values: at least the frames themselves.
    assert!(bytes >= 1024 * 127 * 8, "{bytes}");
    assert!(bpfx::Map::new(ok).is_ok());
    let flags = |f: u32| MapSpec {
        flags: f,
        ..MapSpec::new("s", MapKind::StackTrace, 4, 8, 4)
    };
    for (bad, errno) in [
        (MapSpec::new("s", MapKind::StackTrace, 8, 8, 4), "EINVAL"),
        (MapSpec::new("s", MapKind::StackTrace, 4, 0, 4), "EINVAL"),
        (MapSpec::new("s", MapKind::StackTrace, 4, 12, 4), "EINVAL"),
        (
            MapSpec::new("s", MapKind::StackTrace, 4, 128 * 8, 4),
            "EINVAL",
        ),
        (MapSpec::new("s", MapKind::StackTrace, 4, 8, 0), "EINVAL"),
        (flags(1), "EINVAL"),
        (flags(bpfx::BPF_F_STACK_BUILD_ID), "EOPNOTSUPP"),
        (
            MapSpec::new("s", MapKind::StackTrace, 4, 8, u32::MAX),
            "E2BIG",
        ),
    ] {
        let e = bpfx::Map::new(bad.clone()).map(|_| ()).unwrap_err();
        assert!(e.contains(errno), "{bad:?}: {e}");
    }
    for f in [1 << 2, 1 << 3, 1 << 4] {
        assert!(bpfx::Map::new(flags(f)).is_ok(), "{f:#x}");
    }
}

#[test]
fn the_host_reads_deletes_and_walks_ids() {
    let spec = MapSpec::new("s", MapKind::StackTrace, 4, 16, 4);
    let text = "lddw r2, map_idx(0)\nmov r3, 0\ncall 27\nexit";
    let obj = Vm::new()
        .object(
            vec![ProgramDef::new("p", "kprobe/a", code(text))],
            vec![spec],
        )
        .unwrap();
    let mut p = prepare(
        obj.program("p").unwrap().verify(Mode::Strict).unwrap(),
        None,
    );
    let mut ids = Vec::new();
    for ip in 1..=40u64 {
        let r = p
            .run_kprobe(&PtRegs {
                ip,
                ..PtRegs::default()
            })
            .unwrap() as i64;
        assert!(r == -17 || (0..4).contains(&r), "{r}");
        if r >= 0 && !ids.contains(&(r as u32)) {
            ids.push(r as u32);
        }
    }
    ids.sort_unstable();
    let m = obj.map("s").unwrap();
    let walked: Vec<u32> = m
        .iter()
        .map(|(k, _)| u32::from_le_bytes(k.try_into().unwrap()))
        .collect();
    assert_eq!(walked, ids);
    let first = ids[0].to_le_bytes();
    let v = m.lookup(&first).unwrap().unwrap();
    assert_eq!(v.len(), 16);
    assert_eq!(v[8..], [0; 8]);
    assert_eq!(
        m.update(&first, &v, bpfx::UpdateFlag::Any)
            .map_err(MapError::errno),
        Err(22)
    );
    m.delete(&first).unwrap();
    assert_eq!(m.lookup(&first).unwrap(), None);
    assert_eq!(m.delete(&first).map_err(MapError::errno), Err(2));
    assert_eq!(m.lookup(&99u32.to_le_bytes()).unwrap(), None);
}

#[test]
fn programs_reach_a_stack_trace_map_only_through_get_stackid() {
    let spec = MapSpec::new("stacks", MapKind::StackTrace, 4, 8, 4);
    let hash = MapSpec::new("h", MapKind::Hash, 4, 8, 4);
    let lookup = "mov r1, 0\nstxw [r10-4], r1\nlddw r1, map_idx(0)\nmov r2, r10\nadd r2, -4\n\
                  call 1\nmov r0, 0\nexit";
    let delete = "mov r1, 0\nstxw [r10-4], r1\nlddw r1, map_idx(0)\nmov r2, r10\nadd r2, -4\n\
                  call 3\nmov r0, 0\nexit";
    let stackid_on_hash = "lddw r2, map_idx(1)\nmov r3, 0\ncall 27\nexit";
    for (text, want) in [
        (lookup, "other than a stack trace map"),
        (delete, "other than a stack trace map"),
        (stackid_on_hash, "the handle of a stack trace map"),
    ] {
        let obj = Vm::new()
            .object(
                vec![ProgramDef::new("p", "kprobe/a", code(text))],
                vec![spec.clone(), hash.clone()],
            )
            .unwrap();
        for mode in MODES {
            let e = obj
                .program("p")
                .unwrap()
                .verify(mode)
                .map(|_| ())
                .unwrap_err();
            assert!(e.to_string().contains(want), "{mode:?}: {e}");
        }
    }
    // get_stackid is a tracing helper: a socket filter cannot call it.
    let obj = Vm::new()
        .object(
            vec![ProgramDef::new(
                "p",
                "test",
                code("lddw r2, map_idx(0)\nmov r3, 0\ncall 27\nexit"),
            )],
            vec![spec],
        )
        .unwrap();
    let e = obj
        .program("p")
        .unwrap()
        .context(Context::Xdp)
        .verify(Mode::Checked)
        .map(|_| ())
        .unwrap_err();
    assert!(e.to_string().contains("cannot"), "{e}");
}

#[test]
fn tracepoint_and_tracing_contexts_have_no_stack() {
    let text = "lddw r2, map_idx(0)\nmov r3, 0\ncall 27\nexit";
    let spec = MapSpec::new("s", MapKind::StackTrace, 4, 8, 4);
    for mode in MODES {
        for (engine, opts) in engines() {
            let obj = Vm::new()
                .object(
                    vec![
                        ProgramDef::new("tp", "tracepoint/sched/sched_switch", code(text)),
                        ProgramDef::new("fe", "fentry/do_x", code(text)),
                    ],
                    vec![spec.clone()],
                )
                .unwrap();
            let v = obj.program("tp").unwrap().verify(mode).unwrap();
            let mut tp = prepare(v, opts.clone());
            let r = tp.run_tracepoint(&[0u8; 64]).unwrap() as i64;
            assert_eq!(r, -i64::from(EFAULT), "{mode:?} {engine}");
            let v = obj.program("fe").unwrap().verify(mode).unwrap();
            let mut fe = prepare(v, opts);
            let r = fe.run_tracing(&[1, 2], None).unwrap() as i64;
            assert_eq!(r, -i64::from(EFAULT), "{mode:?} {engine}");
            assert_eq!(obj.map("s").unwrap().iter().count(), 0);
        }
    }
}
