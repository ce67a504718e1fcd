//! Packet pointers as helper memory arguments in Strict mode (the kernel's
//! `check_helper_mem_access` on a packet pointer): `bpf_csum_diff` reading packet bytes and
//! `bpf_probe_read_kernel` writing them are accepted when a `data_end` check covers
//! `[ptr, ptr + size)`, and run on every engine of the matrix, in both modes, with the result
//! a reference computes; the twins whose check is one byte short are rejected in Strict mode
//! only. The same for a packet metadata pointer, proven by a check against `data`.

mod common;

use bpfx::{Mode, Packet, ProgramDef, Vm};
use common::{code, engines, prepare};

const ABORTED: u32 = 0;
const DROP: u32 = 1;
const TX: u32 = 3;

/// `csum_diff(data, 8, NULL, 0, 0)` compared with the same sum over a stack copy of those
/// bytes (the copy's first byte flipped when `flip`): XDP_TX when equal, XDP_ABORTED when not,
/// XDP_DROP when `data + checked > data_end`.
fn csum(checked: u32, flip: bool) -> String {
    let flip = if flip {
        "ldxb r5, [r10-8]\nxor r5, 1\nstxb [r10-8], r5\n"
    } else {
        ""
    };
    format!(
        "ldxw r2, [r1+0]\nldxw r3, [r1+4]\nmov r6, r2\nmov r4, r2\nadd r4, {checked}\n\
         jgt r4, r3, drop\nmov r1, r6\nmov r2, 8\nmov r3, 0\nmov r4, 0\nmov r5, 0\ncall 28\n\
         mov r7, r0\nldxdw r5, [r6+0]\nstxdw [r10-8], r5\n{flip}\
         mov r1, r10\nadd r1, -8\nmov r2, 8\nmov r3, 0\nmov r4, 0\nmov r5, 0\ncall 28\n\
         jne r0, r7, bad\nmov r0, 3\nexit\nbad:\nmov r0, 0\nexit\ndrop:\nmov r0, 1\nexit\n"
    )
}

/// `probe_read_kernel(data + 2, 4, 0)`: address 0 is no kernel address, so the helper
/// zeroes the four packet bytes and fails; XDP_TX when it failed, XDP_DROP when
/// `data + checked > data_end`.
fn zero(checked: u32) -> String {
    format!(
        "ldxw r2, [r1+0]\nldxw r3, [r1+4]\nmov r6, r2\nmov r4, r2\nadd r4, {checked}\n\
         jgt r4, r3, drop\nmov r1, r6\nadd r1, 2\nmov r2, 4\nmov r3, 0\ncall 113\n\
         jeq r0, 0, bad\nmov r0, 3\nexit\nbad:\nmov r0, 0\nexit\ndrop:\nmov r0, 1\nexit\n"
    )
}

/// `xdp_adjust_meta(ctx, -8)`, then through `data_meta` checked by `data_meta + checked >
/// data`: stores 0x01234567, `probe_read_kernel(data_meta + 4, 4, 0)` zeroes the second word, and `csum_diff(data_meta, 8, NULL, 0, 0)` is compared with the sum of a stack
/// copy: XDP_TX when equal, XDP_ABORTED when not (or when the adjustment fails), XDP_DROP when
/// the check fails.
fn meta(checked: u32) -> String {
    format!(
        "mov r6, r1\nmov r2, -8\ncall 54\njne r0, 0, bad\nldxw r2, [r6+8]\nldxw r3, [r6+0]\n\
         mov r7, r2\nmov r4, r2\nadd r4, {checked}\njgt r4, r3, drop\nstw [r7+0], 0x1234567\n\
         mov r1, r7\nadd r1, 4\nmov r2, 4\nmov r3, 0\ncall 113\n\
         jeq r0, 0, bad\nldxdw r5, [r7+0]\nstxdw [r10-8], r5\nmov r1, r7\nmov r2, 8\nmov r3, 0\n\
         mov r4, 0\nmov r5, 0\ncall 28\nmov r8, r0\nmov r1, r10\nadd r1, -8\nmov r2, 8\n\
         mov r3, 0\nmov r4, 0\nmov r5, 0\ncall 28\njne r0, r8, bad\nmov r0, 3\nexit\nbad:\n\
         mov r0, 0\nexit\ndrop:\nmov r0, 1\nexit\n"
    )
}

fn object(text: &str) -> bpfx::Object {
    Vm::new()
        .object(vec![ProgramDef::new("p", "xdp", code(text))], vec![])
        .unwrap()
}

/// Frames of every length from 0 to 15, of varied bytes.
fn frames() -> Vec<Vec<u8>> {
    (0..16u8)
        .map(|n| {
            (0..n)
                .map(|i| i.wrapping_mul(37) ^ n.wrapping_add(0x5a))
                .collect()
        })
        .collect()
}

/// Runs `text` in both modes on every engine on every frame; each run's verdict and frame
/// after the run must equal `reference`'s.
fn check(text: &str, reference: impl Fn(&[u8]) -> (u32, Vec<u8>)) {
    let obj = object(text);
    for mode in [Mode::Strict, Mode::Checked] {
        for (engine, opts) in engines() {
            let v = obj.program("p").unwrap().verify(mode).unwrap();
            let mut prog = prepare(v, opts);
            for f in frames() {
                let mut p = Packet::new(&f);
                let out = prog.run_xdp_packet(&mut p).unwrap();
                let got = (out.action.code() as u32, p.frame().to_vec());
                assert_eq!(got, reference(&f), "{mode:?} {engine} on {f:02x?}\n{text}");
            }
        }
    }
}

#[test]
fn csum_diff_reads_checked_packet_bytes() {
    check(&csum(8, false), |f| {
        (if f.len() < 8 { DROP } else { TX }, f.to_vec())
    });
    // The comparison can fail: a stack copy differing in one byte gives another sum.
    check(&csum(8, true), |f| {
        (if f.len() < 8 { DROP } else { ABORTED }, f.to_vec())
    });
}

#[test]
fn probe_read_kernel_writes_checked_packet_bytes() {
    check(&zero(6), |f| {
        if f.len() < 6 {
            return (DROP, f.to_vec());
        }
        let mut g = f.to_vec();
        g[2..6].fill(0);
        (TX, g)
    });
}

#[test]
fn packet_metadata_read_and_written_by_helpers() {
    let text = meta(8);
    let obj = object(&text);
    for mode in [Mode::Strict, Mode::Checked] {
        for (engine, opts) in engines() {
            let v = obj.program("p").unwrap().verify(mode).unwrap();
            let mut prog = prepare(v, opts);
            for f in frames() {
                let mut p = Packet::new(&f);
                let out = prog.run_xdp_packet(&mut p).unwrap();
                let got = (
                    out.action.code() as u32,
                    p.meta().to_vec(),
                    p.frame().to_vec(),
                );
                let want = (TX, vec![0x67, 0x45, 0x23, 0x01, 0, 0, 0, 0], f.clone());
                assert_eq!(got, want, "{mode:?} {engine} on {f:02x?}");
            }
        }
    }
}

#[test]
fn a_check_one_byte_short_is_rejected_in_strict_mode_only() {
    for text in [csum(7, false), zero(5), meta(7)] {
        let obj = object(&text);
        let e = obj.program("p").unwrap().verify(Mode::Strict).unwrap_err();
        // Refused at the helper call, before any load or store needs the missing byte.
        let msg = e.to_string();
        assert!(
            msg.contains(": call ") && msg.contains("not proven in bounds"),
            "{msg}\n{text}"
        );
        obj.program("p").unwrap().verify(Mode::Checked).unwrap();
    }
}
