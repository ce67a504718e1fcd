//! The time and task helpers (`jiffies64`, `ktime_get_boot_ns`, `ktime_get_coarse_ns`, `ktime_get_tai_ns`,
//! `get_current_pid_tgid`, `get_current_uid_gid`, `get_current_comm`, `get_current_cgroup_id`) from the values the
//! embedder gives the `Vm`, and the probe-read helpers (`probe_read_kernel`, `probe_read_user`
//! and their `_str` forms) limited to the memory it lends, on the interpreter and the JIT with
//! every option set, in Checked and Strict mode.

mod common;

use bpfx::{Error, Mode, ProgramDef, Task, Vm};
use common::{code, engines, prepare};

const MODES: [Mode; 2] = [Mode::Checked, Mode::Strict];
const EINVAL: u64 = -22i64 as u64;
const EFAULT: u64 = -14i64 as u64;
const ERANGE: u64 = -34i64 as u64;
/// The size of the memory each program gets (its input).
const MEM: u64 = 64;

/// Runs plain-memory program `text` with the `Vm` `vm` gives, on every engine in both modes, on
/// `mem`; r0 and the memory after, the same everywhere.
fn run(vm: impl Fn() -> Vm, text: &str, mem: &[u8]) -> (u64, Vec<u8>) {
    let mut seen = None;
    for mode in MODES {
        for (name, opts) in engines() {
            let obj = vm()
                .object(vec![ProgramDef::new("p", "test", code(text))], vec![])
                .unwrap();
            let v = obj
                .program("p")
                .unwrap()
                .input_size(MEM)
                .verify(mode)
                .unwrap_or_else(|e| panic!("{mode:?}: {e}\n{text}"));
            let mut prog = prepare(v, opts);
            let mut m = mem.to_vec();
            let r0 = prog.run(&mut m).unwrap();
            match &seen {
                None => seen = Some((r0, m)),
                Some(s) => assert_eq!(s, &(r0, m), "{mode:?} {name}"),
            }
        }
    }
    seen.unwrap()
}

fn word(m: &[u8], i: usize) -> u64 {
    u64::from_le_bytes(m[8 * i..8 * i + 8].try_into().unwrap())
}

/// Calls `ids` in turn, storing each r0 at `[r1 + 8*i]`.
fn store_each(ids: &[u32]) -> String {
    let mut t = "mov r6, r1\n".to_string();
    for (i, id) in ids.iter().enumerate() {
        t += &format!("call {id}\nstxdw [r6+{}], r0\n", 8 * i);
    }
    t + "mov r0, 0\nexit"
}

#[test]
fn the_clocks_default_to_the_vm_clock() {
    let ns = 10_004_000_123u64;
    let (_, m) = run(
        || Vm::new().clock(move || ns),
        &store_each(&[118, 125, 160, 5]),
        &[0; 64],
    );
    // 250 ticks a second: 4 ms a tick.
    assert_eq!(word(&m, 0), ns / 4_000_000);
    assert_eq!(word(&m, 0), 2501);
    assert_eq!(word(&m, 1), ns, "boot clock");
    assert_eq!(word(&m, 2), 2501 * 4_000_000, "coarse: rounded to the tick");
    assert_eq!(word(&m, 3), ns);
}

#[test]
fn the_clocks_take_the_embedders_sources() {
    let (_, m) = run(
        || {
            Vm::new()
                .clock(|| 1)
                .jiffies(|| 0x1_0000_0042)
                .boot_clock(|| 7_000_000_000)
                .coarse_clock(|| 123)
        },
        &store_each(&[118, 125, 160, 5]),
        &[0; 64],
    );
    assert_eq!(
        (word(&m, 0), word(&m, 1), word(&m, 2), word(&m, 3)),
        (0x1_0000_0042, 7_000_000_000, 123, 1)
    );
}

#[test]
fn pid_tgid_and_uid_gid_pack_as_the_kernel() {
    let (_, m) = run(Vm::new, &store_each(&[14, 15]), &[0; 64]);
    assert_eq!((word(&m, 0), word(&m, 1)), (0, 0), "the idle task");
    let (_, m) = run(
        || Vm::new().current_task(|| Task::new(4321, 4000).with_ids(1000, 100)),
        &store_each(&[14, 15]),
        &[0; 64],
    );
    // tgid in the upper half, pid in the lower; gid upper, uid lower.
    assert_eq!(word(&m, 0), 4000 << 32 | 4321);
    assert_eq!(word(&m, 1), 100 << 32 | 1000);
}

#[test]
fn ktime_get_tai_ns_is_the_tai_clock_or_the_wall_clock() {
    let (_, m) = run(
        || Vm::new().tai_clock(|| 1_700_000_000_000_000_007),
        &store_each(&[208]),
        &[0; 64],
    );
    assert_eq!(word(&m, 0), 1_700_000_000_000_000_007);
    let wall = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
    };
    // The wall clock differs from run to run: each engine's reading is checked on its own.
    for (name, opts) in engines() {
        let obj = Vm::new()
            .object(
                vec![ProgramDef::new("p", "test", code(&store_each(&[208])))],
                vec![],
            )
            .unwrap();
        let v = obj
            .program("p")
            .unwrap()
            .input_size(MEM)
            .verify(Mode::Checked)
            .unwrap();
        let mut prog = prepare(v, opts);
        let mut m = vec![0; 64];
        let before = wall();
        prog.run(&mut m).unwrap();
        assert!(
            (before..=wall()).contains(&word(&m, 0)),
            "{name}: {}",
            word(&m, 0)
        );
    }
}

#[test]
fn get_current_cgroup_id_is_the_tasks_cgroup() {
    let (_, m) = run(Vm::new, &store_each(&[80]), &[0; 64]);
    assert_eq!(
        word(&m, 0),
        bpfx::ROOT_CGROUP_ID,
        "the idle task, in the root cgroup"
    );
    let (_, m) = run(
        || Vm::new().current_task(|| Task::new(7, 7).with_cgroup_id(0x1234_5678_9abc)),
        &store_each(&[80]),
        &[0; 64],
    );
    assert_eq!(word(&m, 0), 0x1234_5678_9abc);
}

/// `get_current_comm(r1 + 8, size)`, r0 stored at `[r1]`.
fn comm(size: u32) -> String {
    format!(
        "mov r6, r1\nmov r1, r6\nadd r1, 8\nmov r2, {size}\ncall 16\nstxdw [r6+0], r0\n\
         mov r0, 0\nexit"
    )
}

#[test]
fn get_current_comm_writes_a_padded_nul_terminated_name() {
    let vm = || Vm::new().current_task(|| Task::new(1, 1).with_comm("worker"));
    let (_, m) = run(vm, &comm(16), &[0xff; 64]);
    assert_eq!(word(&m, 0), 0);
    let mut want = b"worker".to_vec();
    want.resize(16, 0);
    assert_eq!(&m[8..24], &want[..], "the name, NUL, zeros to the size");
    assert_eq!(m[24], 0xff, "nothing past the size");
    // Cut to size - 1 bytes and a NUL.
    let (_, m) = run(vm, &comm(4), &[0xff; 64]);
    assert_eq!((word(&m, 0), &m[8..13]), (0, &b"wor\0\xff"[..]));
    // The default task.
    let (_, m) = run(Vm::new, &comm(16), &[0xff; 64]);
    assert_eq!(&m[8..18], b"swapper/0\0");
    // A size of 0 (the kernel's verifier refuses it; bpfx answers -EINVAL and writes nothing).
    let (_, m) = run(vm, &comm(0), &[0xff; 64]);
    assert_eq!((word(&m, 0), m[8]), (EINVAL, 0xff));
}

const KADDR: u64 = 0xffff_8880_0012_3000;
const UADDR: u64 = 0x7ffd_0000_1000;

fn lending() -> Vm {
    Vm::new()
        .lend_kernel(KADDR, &b"kernel-bytes\0tail"[..])
        .lend_user(UADDR, &b"user:0123456789"[..])
}

/// `helper(r1 + 8, size, addr)`, r0 stored at `[r1]`.
fn probe(helper: u32, size: u32, addr: u64) -> String {
    format!(
        "mov r6, r1\nmov r1, r6\nadd r1, 8\nmov r2, {size}\nlddw r3, {addr:#x}\ncall {helper}\n\
         stxdw [r6+0], r0\nmov r0, 0\nexit"
    )
}

#[test]
fn probe_reads_read_lent_memory() {
    let (_, m) = run(lending, &probe(113, 6, KADDR + 1), &[0xaa; 64]);
    assert_eq!((word(&m, 0), &m[8..15]), (0, &b"ernel-\xaa"[..]));
    let (_, m) = run(lending, &probe(112, 15, UADDR), &[0xaa; 64]);
    assert_eq!((word(&m, 0), &m[8..23]), (0, &b"user:0123456789"[..]));
    // A size of 0 reads nothing, and succeeds where the address passes the helper's check:
    // a kernel address for the kernel helper, a user one for the user helper.
    for (helper, addr, want) in [
        (113, KADDR + 100, 0),
        (113, 0, ERANGE),
        (112, 0, 0),
        (112, KADDR, EFAULT),
    ] {
        let (_, m) = run(lending, &probe(helper, 0, addr), &[0xaa; 64]);
        assert_eq!((word(&m, 0), m[8]), (want, 0xaa), "{helper} {addr:#x}");
    }
}

#[test]
fn probe_reads_of_anything_else_fault_with_the_destination_zeroed() {
    let cases = [
        (113, 8, KADDR + 12, EFAULT, "past the end of the lent range"),
        (113, 4, KADDR - 1, EFAULT, "before it"),
        (
            113,
            4,
            UADDR,
            ERANGE,
            "user memory through the kernel helper",
        ),
        (113, 4, 1 << 47, ERANGE, "a non-canonical address"),
        (113, 4, 0xffff_ffff_ff60_0000, ERANGE, "the vsyscall page"),
        (
            112,
            4,
            KADDR,
            EFAULT,
            "kernel memory through the user helper",
        ),
        (112, 4, 0, EFAULT, "NULL"),
    ];
    for (helper, size, addr, want, what) in cases {
        let (_, m) = run(lending, &probe(helper, size, addr), &[0xaa; 64]);
        assert_eq!(word(&m, 0), want, "{what}");
        assert_eq!(
            &m[8..8 + size as usize],
            &vec![0; size as usize][..],
            "{what}"
        );
        assert_eq!(m[8 + size as usize], 0xaa, "{what}");
    }
    // The program's own memory (its input, at the address r1 holds) is the host's, not lent:
    // the helper never reads it (a user-space address: -ERANGE from the kernel helper).
    let text = "mov r6, r1\nmov r1, r6\nadd r1, 8\nmov r2, 8\nmov r3, r6\nadd r3, 32\ncall 113\n\
                stxdw [r6+0], r0\nmov r0, 0\nexit";
    let mut mem = [0xaa; 64];
    mem[32..40].copy_from_slice(b"secret!!");
    let (_, m) = run(lending, text, &mem);
    assert_eq!((word(&m, 0), word(&m, 1)), (ERANGE, 0));
    let (_, m) = run(lending, &text.replace("call 113", "call 112"), &mem);
    assert_eq!((word(&m, 0), word(&m, 1)), (EFAULT, 0));
}

#[test]
fn probe_read_str_copies_up_to_the_nul_or_the_size() {
    // The whole string and its NUL: 13 bytes; the rest of the destination is left alone.
    let (_, m) = run(lending, &probe(115, 32, KADDR), &[0xaa; 64]);
    assert_eq!(word(&m, 0), 13);
    assert_eq!(&m[8..22], b"kernel-bytes\0\xaa");
    // Cut to size - 1 bytes and a NUL: returns the size.
    let (_, m) = run(lending, &probe(115, 4, KADDR), &[0xaa; 64]);
    assert_eq!((word(&m, 0), &m[8..13]), (4, &b"ker\0\xaa"[..]));
    // The lent range ends before a NUL and before the size: a fault, zeroed.
    let (_, m) = run(lending, &probe(114, 32, UADDR + 5), &[0xaa; 64]);
    assert_eq!(word(&m, 0), EFAULT);
    assert_eq!(&m[8..40], &[0; 32]);
    assert_eq!(m[40], 0xaa);
    // It ends exactly at the size: no NUL needed.
    let (_, m) = run(lending, &probe(114, 10, UADDR + 5), &[0xaa; 64]);
    assert_eq!((word(&m, 0), &m[8..19]), (10, &b"012345678\0\xaa"[..]));
    // Size 0: nothing, 0.
    let (_, m) = run(lending, &probe(114, 0, 0), &[0xaa; 64]);
    assert_eq!((word(&m, 0), m[8]), (0, 0xaa));
    // Not lent, or not a kernel address.
    let (_, m) = run(lending, &probe(115, 8, KADDR + 0x1000), &[0xaa; 64]);
    assert_eq!((word(&m, 0), word(&m, 1)), (EFAULT, 0));
    let (_, m) = run(lending, &probe(115, 8, UADDR), &[0xaa; 64]);
    assert_eq!((word(&m, 0), word(&m, 1)), (ERANGE, 0));
    let (_, m) = run(lending, &probe(114, 8, KADDR), &[0xaa; 64]);
    assert_eq!((word(&m, 0), word(&m, 1)), (EFAULT, 0));
}

/// The verifier's answer to `text` in a program of section `section`, in both modes.
fn refusal(vm: impl Fn() -> Vm, section: &str, text: &str) -> Option<String> {
    let mut seen: Option<Option<String>> = None;
    for mode in MODES {
        let obj = vm()
            .object(vec![ProgramDef::new("p", section, code(text))], vec![])
            .unwrap();
        let r = match obj.program("p").unwrap().verify(mode) {
            Ok(_) => None,
            Err(e @ Error::Verify { .. }) => Some(e.to_string()),
            Err(e) => panic!("{section}: {e}"),
        };
        if let Some(s) = &seen {
            assert_eq!(s, &r, "{section} {mode:?}");
        }
        seen = Some(r);
    }
    seen.unwrap()
}

#[test]
fn each_program_type_offers_the_kernels_helpers() {
    let call = |id: u32| {
        format!(
            "mov r6, r1\nmov r2, 0\nmov r3, 0\nmov r4, 0\nmov r5, 0\ncall {id}\nmov r0, 0\nexit"
        )
    };
    for (section, id, name, prog_type) in [
        ("xdp", 48, "set_hash", "xdp"),
        ("xdp", 40, "csum_update", "xdp"),
        ("socket", 28, "csum_diff", "socket_filter"),
        ("socket", 48, "set_hash", "socket_filter"),
        ("socket", 9, "skb_store_bytes", "socket_filter"),
        ("socket", 23, "redirect", "socket_filter"),
        ("xdp", 26, "skb_load_bytes", "xdp"),
        ("xdp", 34, "get_hash_recalc", "xdp"),
        ("tc", 44, "xdp_adjust_head", "sched_cls"),
        ("tc", 51, "redirect_map", "sched_cls"),
    ] {
        let e = refusal(Vm::new, section, &call(id)).unwrap_or_else(|| panic!("{section} {id}"));
        assert!(
            e.contains(&format!(
                "program of type {prog_type} cannot use helper {name}#{id}"
            )),
            "{e}"
        );
        assert!(
            e.contains(&format!("call {id}")),
            "names the instruction: {e}"
        );
    }
    // Offered: the base helpers everywhere (with the privileges of a root loader), the
    // packet helpers where the kernel has them, everything in plain-memory programs.
    for (section, id) in [
        ("xdp", 118),
        ("tc", 160),
        ("socket", 125),
        ("tc", 113),
        ("socket", 112),
        ("xdp", 6),
        ("socket", 68),
        ("tc", 68),
        ("tc", 48),
        ("xdp", 28),
        ("test", 14),
        ("test", 16),
        ("tc", 14),
        ("xdp", 15),
        ("socket", 16),
    ] {
        let text = if id == 6 || id == 16 || (112..=115).contains(&id) {
            "mov r1, r10\nadd r1, -8\nstdw [r10-8], 0\nmov r2, 8\nmov r3, 0\nmov r4, 0\nmov r5, 0\ncall ID\nmov r0, 0\nexit"
                .replace("ID", &id.to_string())
        } else if id == 68 {
            "mov r6, r1\nmov r2, 0\nmov r3, r10\nadd r3, -8\nmov r4, 8\nmov r5, 0\ncall 68\nmov r0, 0\nexit"
                .to_string()
        } else if id == 28 {
            "mov r1, 0\nmov r2, 0\nmov r3, 0\nmov r4, 0\nmov r5, 0\ncall 28\nmov r0, 0\nexit"
                .to_string()
        } else {
            call(id)
        };
        assert_eq!(refusal(Vm::new, section, &text), None, "{section} {id}");
    }
    // An embedder's helper under a standard id is its own, offered everywhere.
    let vm = || {
        Vm::new().register_helper(
            44,
            bpfx::HelperSig::new("mine", vec![], bpfx::RetKind::Scalar),
            |_, _| Ok(7),
        )
    };
    assert_eq!(refusal(vm, "tc", &call(44)), None);
    assert!(refusal(Vm::new, "tc", &call(44)).is_some());
}

#[test]
fn xdp_and_tc_programs_read_clocks_and_lent_memory() {
    // XDP: jiffies64 - 100 as the verdict (2 = XDP_PASS).
    let text = "call 118\nsub r0, 100\nexit";
    for (name, opts) in engines() {
        let obj = Vm::new()
            .jiffies(|| 102)
            .object(vec![ProgramDef::new("p", "xdp", code(text))], vec![])
            .unwrap();
        let mut prog = prepare(
            obj.program("p").unwrap().verify(Mode::Strict).unwrap(),
            opts,
        );
        let v = prog.run_xdp(&mut [0u8; 60]).unwrap();
        assert_eq!(v, bpfx::XdpAction::Pass, "{name}");
    }
    // TC: the first byte of lent kernel memory as the verdict.
    let text = "stdw [r10-8], 0\nmov r1, r10\nadd r1, -8\nmov r2, 1\nlddw r3, 0xffff888000001000\n\
                call 113\nldxb r0, [r10-8]\nexit";
    for (name, opts) in engines() {
        let obj = Vm::new()
            .lend_kernel(0xffff_8880_0000_1000, vec![2u8, 9])
            .object(vec![ProgramDef::new("p", "tc", code(text))], vec![])
            .unwrap();
        let mut prog = prepare(
            obj.program("p").unwrap().verify(Mode::Strict).unwrap(),
            opts,
        );
        let v = prog
            .run_tc(&mut [0u8; 60], &mut bpfx::SkbMeta::default())
            .unwrap();
        assert_eq!(v, bpfx::TcAction::Shot, "{name}");
    }
}
