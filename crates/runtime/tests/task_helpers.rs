//! The time and task helpers (`jiffies64`, `ktime_get_boot_ns`, `ktime_get_coarse_ns`,
//! `get_current_pid_tgid`, `get_current_uid_gid`, `get_current_comm`) from the values the
//! embedder gives the `Vm`, and the probe-read helpers (`probe_read_kernel`, `probe_read_user`
//! and their `_str` forms) limited to the memory it lends, on the interpreter and the JIT with
//! every option set, in Checked and Strict mode.

mod common;

use bpfx::{Mode, ProgramDef, Task, Vm};
use common::{code, engines, prepare};

const MODES: [Mode; 2] = [Mode::Checked, Mode::Strict];
const EINVAL: u64 = -22i64 as u64;
const EFAULT: u64 = -14i64 as u64;
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
    // A size of 0 reads nothing and succeeds.
    let (_, m) = run(lending, &probe(113, 0, 0), &[0xaa; 64]);
    assert_eq!((word(&m, 0), m[8]), (0, 0xaa));
}

#[test]
fn probe_reads_of_anything_else_fault_with_the_destination_zeroed() {
    let cases = [
        (113, 8, KADDR + 12, "past the end of the lent range"),
        (113, 4, KADDR - 1, "before it"),
        (113, 4, UADDR, "user memory through the kernel helper"),
        (112, 4, KADDR, "kernel memory through the user helper"),
        (112, 4, 0, "NULL"),
    ];
    for (helper, size, addr, what) in cases {
        let (_, m) = run(lending, &probe(helper, size, addr), &[0xaa; 64]);
        assert_eq!(word(&m, 0), EFAULT, "{what}");
        assert_eq!(
            &m[8..8 + size as usize],
            &vec![0; size as usize][..],
            "{what}"
        );
        assert_eq!(m[8 + size as usize], 0xaa, "{what}");
    }
    // The program's own memory (its input, at the address r1 holds) is the host's, not lent:
    // the helper never reads it.
    let text = "mov r6, r1\nmov r1, r6\nadd r1, 8\nmov r2, 8\nmov r3, r6\nadd r3, 32\ncall 113\n\
                stxdw [r6+0], r0\nmov r0, 0\nexit";
    let mut mem = [0xaa; 64];
    mem[32..40].copy_from_slice(b"secret!!");
    let (_, m) = run(lending, text, &mem);
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
    // Not lent.
    let (_, m) = run(lending, &probe(115, 8, UADDR), &[0xaa; 64]);
    assert_eq!((word(&m, 0), word(&m, 1)), (EFAULT, 0));
}
