//! The tracing program types: kprobe/kretprobe (`struct pt_regs`), tracepoint (the record),
//! raw tracepoint and fentry/fexit (`u64` argument slots), from the clang-built
//! `tests/objects/tracing.c` and hand-written programs, on the interpreter and the JIT with
//! every option set, in Checked and Strict mode: what they read, the maps they fill, the
//! tracing helpers, and the accesses the verifier refuses (stores, reads out of range).

mod common;

use bpfx::{Attach, Context, Error, Mode, Object, Program, ProgramDef, PtRegs, RunError, Task, Vm};
use common::{code, engines, prepare};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

const MODES: [Mode; 2] = [Mode::Checked, Mode::Strict];
const EINVAL: u64 = -22i64 as u64;
const EOPNOTSUPP: u64 = -95i64 as u64;
const USER_PATH: u64 = 0x7fff_0000_1000;

/// A `Vm` with a current task, a clock that advances 3000 ns a reading, and a user string.
fn vm() -> Vm {
    let now = Arc::new(AtomicU64::new(1_000_000));
    Vm::new()
        .current_task(|| Task::new(4242, 4200).with_comm("touch"))
        .clock(move || now.fetch_add(3000, Ordering::Relaxed))
        .lend_user(USER_PATH, b"/tmp/x\0".to_vec())
}

fn open(vm: &Vm) -> Object {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/objects/tracing.o");
    vm.open(path).unwrap()
}

/// Runs `f` on program `name` of a fresh `tracing.o` on every engine in both modes; each
/// result (with the object, for its maps, and the JIT options, for its other programs) must
/// be the same everywhere.
fn each<T: PartialEq + std::fmt::Debug>(
    name: &str,
    f: impl Fn(&mut Program, &Object, Option<bpfx::JitOptions>) -> T,
) -> T {
    let mut seen = None;
    for mode in MODES {
        for (engine, opts) in engines() {
            let obj = open(&vm());
            let v = obj
                .program(name)
                .unwrap()
                .verify(mode)
                .unwrap_or_else(|e| panic!("{name} {mode:?}: {e}"));
            let mut prog = prepare(v, opts.clone());
            let got = f(&mut prog, &obj, opts);
            match &seen {
                None => seen = Some(got),
                Some(s) => assert_eq!(s, &got, "{name} {mode:?} {engine}"),
            }
        }
    }
    seen.unwrap()
}

fn u64_at(obj: &Object, map: &str, key: &[u8]) -> Option<u64> {
    let v = obj.map(map).unwrap().lookup(key).unwrap()?;
    Some(u64::from_le_bytes(v[..8].try_into().unwrap()))
}

fn slot(obj: &Object, map: &str, i: u32) -> u64 {
    u64_at(obj, map, &i.to_le_bytes()).unwrap()
}

#[test]
fn sections_give_the_tracing_contexts() {
    let obj = open(&Vm::new());
    for (name, ctx) in [
        ("trace_openat2", Context::Kprobe),
        ("trace_openat2_ret", Context::Kprobe),
        ("tp_enter_openat", Context::TRACEPOINT),
        ("raw_sched_switch", Context::RAW_TRACEPOINT),
        ("unlink_entry", Context::TRACING),
        ("unlink_exit", Context::TRACING),
    ] {
        let p = obj.program(name).unwrap();
        assert!(obj.program_status(name).is_ok(), "{name}");
        assert_eq!(p.load().unwrap().context(), ctx, "{name}");
    }
    for (section, ctx) in [
        ("uprobe//bin/bash:readline", Context::Kprobe),
        ("uretprobe", Context::Kprobe),
        ("ksyscall/openat", Context::Kprobe),
        ("usdt/libc:setjmp", Context::Kprobe),
        ("kprobe.multi/do_*", Context::Kprobe),
        ("tp/sched/sched_switch", Context::TRACEPOINT),
        ("raw_tp/sys_enter", Context::RAW_TRACEPOINT),
        ("tp_btf/sched_switch", Context::TRACING),
        ("fmod_ret/security_x", Context::TRACING),
        ("fexit.s/x", Context::TRACING),
        (
            "raw_tp.w/x",
            Context::Unsupported("raw_tracepoint_writable"),
        ),
        ("iter/task", Context::Unsupported("tracing")),
        ("kprobex", Context::Memory),
    ] {
        assert_eq!(Context::for_section(section), ctx, "{section}");
    }
}

#[test]
fn kprobe_counts_opens_per_process_and_reads_the_arguments() {
    let regs = PtRegs::with_args(&[-100i64 as u64, USER_PATH, 0]);
    let (r0, count, name, dfd) = each("trace_openat2", |p, obj, _| {
        let r0 = p.run_kprobe(&regs).unwrap();
        p.run_kprobe(&regs).unwrap();
        let name = obj
            .map("last_open")
            .unwrap()
            .lookup(&4200u32.to_le_bytes())
            .unwrap()
            .unwrap();
        (
            r0,
            u64_at(obj, "opens", &4200u32.to_le_bytes()),
            name,
            slot(obj, "stats", 2),
        )
    });
    assert_eq!(r0, 0);
    assert_eq!(count, Some(2));
    assert_eq!(&name[..6], b"touch\0");
    assert_eq!(&name[16..23], b"/tmp/x\0");
    assert_eq!(dfd, -100i64 as u64);
}

#[test]
fn kretprobe_reads_the_return_register() {
    let got = each("trace_openat2_ret", |p, obj, _| {
        let mut regs = PtRegs {
            ax: -2i64 as u64,
            ..PtRegs::default()
        };
        p.run_kprobe(&regs).unwrap();
        regs.ax = 3;
        p.run_kprobe(&regs).unwrap();
        regs.ax = -13i64 as u64;
        p.run_kprobe(&regs).unwrap();
        (slot(obj, "stats", 0), slot(obj, "stats", 1))
    });
    assert_eq!(got, (2, 13));
}

/// A `sys_enter_openat` record: header, syscall number, dfd, filename, flags, mode.
fn openat_record(flags: u64) -> Vec<u8> {
    let mut r = vec![0u8; 48];
    r[0..2].copy_from_slice(&700u16.to_le_bytes());
    r[4..8].copy_from_slice(&4242i32.to_le_bytes());
    r[8..12].copy_from_slice(&257i32.to_le_bytes());
    r[16..24].copy_from_slice(&(-100i64).to_le_bytes());
    r[24..32].copy_from_slice(&USER_PATH.to_le_bytes());
    r[32..40].copy_from_slice(&flags.to_le_bytes());
    r
}

#[test]
fn tracepoint_reads_the_record_and_counts_by_flags() {
    let got = each("tp_enter_openat", |p, obj, _| {
        let r0 = p.run_tracepoint(&openat_record(0o101)).unwrap();
        p.run_tracepoint(&openat_record(0o101)).unwrap();
        p.run_tracepoint(&openat_record(0)).unwrap();
        // A longer record is fine; one shorter than the program's furthest read is not.
        let mut long = openat_record(0);
        long.extend_from_slice(&[0xaa; 100]);
        p.run_tracepoint(&long).unwrap();
        let short = p.run_tracepoint(&openat_record(0)[..36]).unwrap_err();
        (
            r0,
            u64_at(obj, "open_flags", &0o101u64.to_le_bytes()),
            u64_at(obj, "open_flags", &0u64.to_le_bytes()),
            short.to_string(),
        )
    });
    assert_eq!(got.0, 257);
    assert_eq!((got.1, got.2), (Some(2), Some(2)));
    assert!(got.3.contains("at least 40 bytes"), "{}", got.3);
}

#[test]
fn raw_tracepoint_reads_its_arguments() {
    let got = each("raw_sched_switch", |p, obj, _| {
        p.run_raw_tp(&[0, 0xffff_8880_0000_1000, 0xffff_8880_0000_2000])
            .unwrap();
        p.run_raw_tp(&[1, 0xffff_8880_0000_2000, 0xffff_8880_0000_3000])
            .unwrap();
        p.run_raw_tp(&[1, 2, 3, 4]).unwrap();
        let short = p.run_raw_tp(&[1, 2]).unwrap_err();
        (
            slot(obj, "switches", 0),
            slot(obj, "switches", 1),
            slot(obj, "switches", 2),
            matches!(
                short,
                RunError::InputTooShort {
                    need: 24,
                    got: 16,
                    ..
                }
            ),
        )
    });
    assert_eq!(got, (1, 2, 3, true));
}

#[test]
fn fentry_fexit_build_a_latency_histogram_with_the_function_helpers() {
    let (hist, info, wrong) = each("unlink_entry", |entry, obj, opts| {
        // The fexit program of the same object, on the same engine as `entry`.
        let v = obj
            .program("unlink_exit")
            .unwrap()
            .verify(entry.verified().mode())
            .unwrap();
        let mut exit = prepare(v, opts);
        entry.set_attach(Attach {
            func_ip: 0,
            cookie: 77,
        });
        exit.set_attach(Attach {
            func_ip: 0xffff_ffff_8123_4560,
            cookie: 0,
        });
        let args = [-100i64 as u64, 0xffff_8880_0000_4000];
        entry.run_tracing(&args, None).unwrap();
        exit.run_tracing(&args, Some(-2i64 as u64)).unwrap();
        entry.run_tracing(&args, None).unwrap();
        exit.run_tracing(&args, Some(0)).unwrap();
        // fexit without its entry: nothing recorded.
        exit.run_tracing(&args, Some(0)).unwrap();
        let hist: Vec<u64> = (0..32).map(|i| slot(obj, "hist", i)).collect();
        let info: Vec<u64> = (0..7).map(|i| slot(obj, "func_info", i)).collect();
        // An fexit program run as fentry reads its return slot past what it was given.
        let wrong = exit.run_tracing(&args, None).unwrap_err();
        (hist, info, matches!(wrong, RunError::InputTooShort { .. }))
    });
    // The clock advances 3000 ns a reading: entry and exit are one reading apart.
    let mut want = vec![0u64; 32];
    want[11] = 2; // log2(3000) = 11
    assert_eq!(hist, want);
    assert_eq!(
        info,
        [0xffff_ffff_8123_4560, 2, 0, -100i64 as u64, 77, EINVAL, 1]
    );
    assert!(wrong);
}

/// Verifies hand-written `text` under `context` in `mode` (section `test`).
fn verify(text: &str, context: Context, mode: Mode) -> Result<bpfx::Verified, Error> {
    let obj = Vm::new()
        .object(vec![ProgramDef::new("p", "test", code(text))], vec![])
        .unwrap();
    obj.program("p").unwrap().context(context).verify(mode)
}

#[test]
fn every_tracing_context_is_read_only_and_bounded() {
    let tp = Context::Tracepoint { size: 20 };
    let raw = Context::RawTracepoint { args: 3 };
    let tracing = Context::Tracing { args: 2 };
    for mode in MODES {
        for (text, ctx, why) in [
            ("stdw [r1+0], 1", Context::Kprobe, "read-only"),
            (
                "mov r2, 1\nstxdw [r1+112], r2",
                Context::Kprobe,
                "read-only",
            ),
            ("ldxdw r0, [r1+168]", Context::Kprobe, "offset 168 size 8"),
            ("ldxdw r0, [r1+4]", Context::Kprobe, "offset 4 size 8"),
            ("ldxw r0, [r1+2]", Context::Kprobe, "offset 2 size 4"),
            ("ldxdw r0, [r1-8]", Context::Kprobe, "offset -8"),
            ("stw [r1+8], 1", tp, "offset 8 size 4"),
            ("stdw [r1+8], 1", tp, "read-only"),
            ("ldxw r0, [r1+0]", tp, "offset 0 size 4"),
            ("ldxw r0, [r1+4]", tp, "offset 4 size 4"),
            ("ldxdw r0, [r1+16]", tp, "offset 16 size 8"),
            ("ldxw r0, [r1+20]", tp, "offset 20 size 4"),
            ("ldxh r0, [r1+9]", tp, "offset 9 size 2"),
            ("stdw [r1+0], 1", raw, "read-only"),
            ("ldxdw r0, [r1+24]", raw, "offset 24 size 8"),
            ("ldxdw r0, [r1+12]", raw, "offset 12 size 8"),
            ("mov r2, 1\nstxw [r1+8], r2", tracing, "offset 8 size 4"),
            ("mov r2, 1\nstxdw [r1+8], r2", tracing, "read-only"),
            ("ldxdw r0, [r1+16]", tracing, "offset 16 size 8"),
            (
                "mov r2, 1\nlock add64 [r1+0], r2",
                Context::Kprobe,
                "offset 0 size 8",
            ),
        ] {
            let text = format!("{text}\nmov r0, 0\nexit");
            let e = verify(&text, ctx, mode)
                .map(|_| ())
                .expect_err(&format!("{mode:?} {ctx:?}: {text}"));
            assert!(e.to_string().contains(why), "{mode:?} {text}: {e}");
        }
    }
}

#[test]
fn narrow_aligned_reads_read_the_bytes_they_name() {
    let regs = PtRegs {
        di: 0x1122_3344_5566_7788,
        si: 0xa0b0_c0d0_e0f0_0102,
        ..PtRegs::default()
    };
    let text = "ldxb r0, [r1+113]\n\
                ldxh r2, [r1+116]\n\
                lsh r2, 8\n\
                or r0, r2\n\
                ldxw r2, [r1+108]\n\
                lsh r2, 24\n\
                or r0, r2\n\
                exit";
    let mut seen = None;
    for mode in MODES {
        for (engine, opts) in engines() {
            let mut p = prepare(verify(text, Context::Kprobe, mode).unwrap(), opts);
            let r0 = p.run_kprobe(&regs).unwrap();
            assert_eq!(*seen.get_or_insert(r0), r0, "{mode:?} {engine}");
        }
    }
    assert_eq!(seen, Some(0x00a0_b0c0_d033_4477));
    // A tracepoint's 3-byte tail: its 2- and 1-byte pieces read.
    let tp = Context::Tracepoint { size: 11 };
    let text = "ldxh r0, [r1+8]\nldxb r2, [r1+10]\nlsh r2, 16\nor r0, r2\nexit";
    for mode in MODES {
        for (engine, opts) in engines() {
            let mut p = prepare(verify(text, tp, mode).unwrap(), opts);
            let rec = [0, 0, 0, 0, 0, 0, 0, 0, 0x11, 0x22, 0x33];
            assert_eq!(p.run_tracepoint(&rec).unwrap(), 0x0033_2211, "{engine}");
        }
    }
}

#[test]
fn tracing_helpers_only_where_the_kernel_offers_them() {
    // get_func_arg_cnt (185) is for tracing programs only, get_func_ip (173) not for
    // tracepoints.
    for (id, ctx) in [
        (185, Context::Kprobe),
        (185, Context::TRACEPOINT),
        (185, Context::RAW_TRACEPOINT),
        (173, Context::TRACEPOINT),
        (173, Context::RAW_TRACEPOINT),
        (174, Context::RAW_TRACEPOINT),
        (45, Context::Xdp),
    ] {
        let text = format!("call {id}\nmov r0, 0\nexit");
        let e = verify(&text, ctx, Mode::Checked).map(|_| ()).unwrap_err();
        assert!(e.to_string().contains("cannot"), "{id} {ctx:?}: {e}");
    }
    for (id, ctx) in [
        (185, Context::TRACING),
        (173, Context::Kprobe),
        (174, Context::TRACEPOINT),
        (4, Context::RAW_TRACEPOINT),
    ] {
        // r1 is the context for 185, 173 and 174 (the kernel's ARG_PTR_TO_CTX), the
        // destination on the stack for probe_read (4).
        let r1 = if id == 4 {
            "mov r1, r10\nadd r1, -8\n"
        } else {
            ""
        };
        let text = format!("{r1}mov r2, 0\nmov r3, 0\ncall {id}\nmov r0, 0\nexit");
        verify(&text, ctx, Mode::Checked).unwrap_or_else(|e| panic!("{id} {ctx:?}: {e}"));
    }
}

#[test]
fn get_func_ret_and_arg_report_kernel_errors() {
    // r0 = get_func_ret(ctx, fp-8) << 32 | (get_func_arg(ctx, 5, fp-16) as u32)
    let text = "mov r6, r1\n\
                mov r2, r10\nadd r2, -8\ncall 184\nmov r7, r0\nlsh r7, 32\n\
                mov r1, r6\nmov r2, 5\nmov r3, r10\nadd r3, -16\ncall 183\n\
                lsh r0, 32\nrsh r0, 32\nor r0, r7\nexit";
    for mode in MODES {
        for (engine, opts) in engines() {
            let mut p = prepare(verify(text, Context::TRACING, mode).unwrap(), opts);
            let r0 = p.run_tracing(&[1, 2], None).unwrap();
            assert_eq!(r0 >> 32, EOPNOTSUPP & 0xffff_ffff, "{mode:?} {engine}");
            assert_eq!(r0 & 0xffff_ffff, EINVAL & 0xffff_ffff, "{mode:?} {engine}");
            let r0 = p.run_tracing(&[1, 2, 3, 4, 5, 6], Some(9)).unwrap();
            assert_eq!(r0, 0, "{mode:?} {engine}");
        }
    }
}

#[test]
fn legacy_probe_read_picks_the_address_space() {
    // probe_read(fp-8, 8, addr) for a user and a kernel address, each lent 8 bytes.
    let kaddr = 0xffff_8880_0000_1000u64;
    let vm = || {
        Vm::new()
            .lend_user(USER_PATH, 7u64.to_le_bytes().to_vec())
            .lend_kernel(kaddr, 9u64.to_le_bytes().to_vec())
    };
    let text = |addr: u64| {
        format!(
            "mov r1, r10\nadd r1, -8\nmov r2, 8\nlddw r3, {addr:#x}\ncall 4\n\
             jne r0, 0, +2\nldxdw r0, [r10-8]\nexit\nmov r0, 99\nexit"
        )
    };
    for (addr, want) in [(USER_PATH, 7), (kaddr, 9), (kaddr + 8, 99)] {
        for mode in MODES {
            for (engine, opts) in engines() {
                let obj = vm()
                    .object(
                        vec![ProgramDef::new("p", "kprobe/x", code(&text(addr)))],
                        vec![],
                    )
                    .unwrap();
                let v = obj.program("p").unwrap().verify(mode).unwrap();
                let mut p = prepare(v, opts);
                let r0 = p.run_kprobe(&PtRegs::default()).unwrap();
                assert_eq!(r0, want, "{addr:#x} {mode:?} {engine}");
            }
        }
    }
}

#[test]
fn a_run_of_another_context_is_refused() {
    let obj = open(&Vm::new());
    let mut p = obj.program("trace_openat2").unwrap().load().unwrap();
    let e = p.run_tracepoint(&[0; 64]).unwrap_err();
    assert!(
        matches!(
            e,
            RunError::WrongContext {
                expected: "kprobe",
                ..
            }
        ),
        "{e}"
    );
    let mut p = obj.program("tp_enter_openat").unwrap().load().unwrap();
    assert!(p.run_kprobe(&PtRegs::default()).is_err());
    assert!(p.run_raw_tp(&[0; 12]).is_err());
    assert!(p.run_tracing(&[0; 12], None).is_err());
    assert!(p.run(&mut [0; 8]).is_err());
}

#[test]
fn get_current_task_gives_the_address_probe_reads_follow() {
    // r0 = *(u64 *)(get_current_task() + 16), read with probe_read_kernel.
    let task = 0xffff_8880_0bad_c000u64;
    let mut bytes = vec![0u8; 32];
    bytes[16..24].copy_from_slice(&0x1234_5678u64.to_le_bytes());
    let text = "call 35\nmov r3, r0\nadd r3, 16\nmov r1, r10\nadd r1, -8\nmov r2, 8\n\
                call 113\njne r0, 0, +2\nldxdw r0, [r10-8]\nexit\nmov r0, 0\nexit";
    for (addr, want) in [(task, 0x1234_5678), (0, 0)] {
        for mode in MODES {
            for (engine, opts) in engines() {
                let obj = Vm::new()
                    .current_task(move || Task::new(1, 1).with_addr(addr))
                    .lend_kernel(task, bytes.clone())
                    .object(vec![ProgramDef::new("p", "kprobe/x", code(text))], vec![])
                    .unwrap();
                let v = obj.program("p").unwrap().verify(mode).unwrap();
                let mut p = prepare(v, opts);
                let r0 = p.run_kprobe(&PtRegs::default()).unwrap();
                assert_eq!(r0, want, "{addr:#x} {mode:?} {engine}");
            }
        }
    }
}

#[test]
fn get_func_arg_writes_its_value_on_the_stack() {
    // The helper's `u64 *value` is an 8-byte output (the kernel's ARG_PTR_TO_LONG): Strict
    // mode needs it initialised neither before the call nor by a store, and reads it after,
    // as the kernel does for an fentry program reading an argument into a local.
    let uninit = "mov r2, 1\nmov r3, r10\nadd r3, -8\ncall 183\nldxdw r0, [r10-8]\nexit";
    let init = format!("stdw [r10-8], 0\n{uninit}");
    // get_func_ret's output too, read back after the call (the fexit shape).
    let ret = "mov r2, r10\nadd r2, -16\ncall 184\nldxdw r0, [r10-16]\nexit";
    for mode in MODES {
        for (text, args, ret_val, want) in [
            (uninit, &[5u64, 6][..], None, 6),
            (init.as_str(), &[5, 6][..], None, 6),
            (ret, &[5, 6][..], Some(42), 42),
        ] {
            for (engine, opts) in engines() {
                let v = verify(text, Context::TRACING, mode)
                    .unwrap_or_else(|e| panic!("{mode:?} {text}: {e}"));
                let mut p = prepare(v, opts);
                assert_eq!(
                    p.run_tracing(args, ret_val).unwrap(),
                    want,
                    "{mode:?} {engine} {text}"
                );
            }
        }
    }
    // Unsafe twins: the 8 bytes must lie inside the frame, and only those 8 are written.
    for (text, want) in [
        (
            "mov r2, 1\nmov r3, r10\nadd r3, -4\ncall 183\nmov r0, 0\nexit",
            "stack access of 8 bytes at offset -4 is outside the 512-byte frame",
        ),
        (
            "mov r2, 1\nmov r3, r10\nadd r3, -8\ncall 183\nldxdw r0, [r10-16]\nexit",
            "uninitialised",
        ),
        (
            "mov r2, 1\nmov r3, 0\ncall 183\nmov r0, 0\nexit",
            "get_func_arg",
        ),
    ] {
        let e = verify(text, Context::TRACING, Mode::Strict).expect_err(text);
        assert!(e.to_string().contains(want), "{text}: {e}");
    }
}
