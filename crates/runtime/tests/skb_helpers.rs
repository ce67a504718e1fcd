//! The socket-buffer helpers (`skb_load_bytes`, `skb_store_bytes`, `l3_csum_replace`,
//! `l4_csum_replace`, `csum_diff`) in TC programs and socket filters, on the interpreter and the
//! JIT with every option set, in Checked and Strict mode: packets rewritten with their
//! checksums kept right (checked against checksums computed from scratch here), and the
//! kernel's errnos.

mod common;

use bpfx::{Mode, ProgramDef, SkbMeta, TrapKind, Vm};
use common::{code, engines, prepare, run_tc_everywhere};

const MODES: [Mode; 2] = [Mode::Checked, Mode::Strict];
const EINVAL: u64 = -22i64 as u64;
const EFAULT: u64 = -14i64 as u64;

/// RFC 1071 over big-endian 16-bit words, written out here: the checksum of `bytes`.
fn internet_checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for c in bytes.chunks(2) {
        let w = u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]);
        sum += u32::from(w);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Ethernet + IPv4 (192.168.0.1 -> 192.168.0.2, TTL 64) + UDP (1234 -> 53) + "abcdef", with
/// correct checksums; `udp_csum` false leaves the UDP checksum 0 ("none").
fn udp_frame(udp_csum: bool) -> Vec<u8> {
    let mut p = vec![0u8; 12];
    p.extend_from_slice(&[0x08, 0x00]);
    p.extend_from_slice(&[
        0x45, 0, 0, 34, 0x12, 0x34, 0, 0, 64, 17, 0, 0, 192, 168, 0, 1, 192, 168, 0, 2,
    ]);
    p.extend_from_slice(&[0x04, 0xd2, 0, 53, 0, 14, 0, 0]);
    p.extend_from_slice(b"abcdef");
    fix_checksums(&mut p, udp_csum);
    p
}

/// Recomputes the IPv4 header's and (when `udp` and it is not "none") the UDP checksum.
fn fix_checksums(p: &mut [u8], udp: bool) {
    p[24..26].fill(0);
    let ip = internet_checksum(&p[14..34]);
    p[24..26].copy_from_slice(&ip.to_be_bytes());
    if udp {
        p[40..42].fill(0);
        let mut pseudo = p[26..34].to_vec();
        pseudo.extend_from_slice(&[0, 17, 0, 14]);
        pseudo.extend_from_slice(&p[34..]);
        let c = match internet_checksum(&pseudo) {
            0 => 0xffff,
            c => c,
        };
        p[40..42].copy_from_slice(&c.to_be_bytes());
    }
}

/// `call id` with r1 = the context (kept in r6) and r2..r5 as given.
fn call(id: u32, r2: &str, r3: &str, r4: &str, r5: &str) -> String {
    format!("mov r1, r6\nmov r2, {r2}\nmov r3, {r3}\nmov r4, {r4}\nmov r5, {r5}\ncall {id}\n")
}

#[test]
fn ttl_and_address_rewrites_keep_the_ip_and_udp_checksums_right() {
    // TTL 64 -> 63 (l3, 2 bytes), then source 192.168.0.1 -> 10.1.3.4 (l3 and l4 with
    // BPF_F_PSEUDO_HDR, 4 bytes), every byte moved with skb_load_bytes / skb_store_bytes.
    let text = [
        "mov r6, r1\nstdw [r10-8], 0\nstdw [r10-16], 0\n".to_string(),
        call(26, "22", "r10", "2", "0").replace("mov r3, r10", "mov r3, r10\nadd r3, -8"),
        "ldxh r7, [r10-8]\nmov r8, r7\nsub r8, 1\nstxh [r10-8], r8\n".into(),
        call(9, "22", "r10", "2", "0").replace("mov r3, r10", "mov r3, r10\nadd r3, -8"),
        "mov r9, r0\n".into(),
        call(10, "24", "r7", "r8", "2"),
        "or r9, r0\n".into(),
        call(26, "26", "r10", "4", "0").replace("mov r3, r10", "mov r3, r10\nadd r3, -16"),
        "ldxw r7, [r10-16]\nmov r8, 0x0403010a\nstxw [r10-16], r8\n".into(),
        call(9, "26", "r10", "4", "0").replace("mov r3, r10", "mov r3, r10\nadd r3, -16"),
        "or r9, r0\n".into(),
        call(10, "24", "r7", "r8", "4"),
        "or r9, r0\n".into(),
        call(11, "40", "r7", "r8", "0x14"),
        "or r0, r9\nexit".into(),
    ]
    .concat();
    let (r0, p) = run_tc(&text, &udp_frame(true), &SkbMeta::default());
    assert_eq!(r0, 0);
    let mut want = udp_frame(true);
    want[22] = 63;
    want[26..30].copy_from_slice(&[10, 1, 3, 4]);
    fix_checksums(&mut want, true);
    assert_eq!(p, want);
}

#[test]
fn a_port_rewrite_through_csum_diff_keeps_the_udp_checksum_right() {
    let text = [
        "mov r6, r1\nstdw [r10-8], 0\nstdw [r10-16], 0\n".to_string(),
        call(26, "34", "r10", "4", "0").replace("mov r3, r10", "mov r3, r10\nadd r3, -8"),
        "ldxw r7, [r10-8]\nstxw [r10-16], r7\nsth [r10-14], 0xe914\n".into(),
        "mov r1, r10\nadd r1, -8\nmov r2, 4\nmov r3, r10\nadd r3, -16\nmov r4, 4\nmov r5, 0\n\
         call 28\nmov r9, r0\n"
            .into(),
        call(9, "34", "r10", "4", "0").replace("mov r3, r10", "mov r3, r10\nadd r3, -16"),
        call(11, "40", "0", "r9", "0x10"),
        "exit".into(),
    ]
    .concat();
    let (r0, p) = run_tc(&text, &udp_frame(true), &SkbMeta::default());
    assert_eq!(r0, 0);
    let mut want = udp_frame(true);
    want[36..38].copy_from_slice(&5353u16.to_be_bytes());
    fix_checksums(&mut want, true);
    assert_eq!(p, want);
}

#[test]
fn the_kernel_errnos_and_flags() {
    let frame = udp_frame(true);
    let tc = |body: String| {
        run_tc(
            &format!("mov r6, r1\nstdw [r10-8], 0\n{body}exit"),
            &frame,
            &SkbMeta::default(),
        )
    };
    for (body, want) in [
        // l3_csum_replace: odd or out-of-packet offset, flags, sizes.
        (call(10, "25", "0", "0", "2"), EFAULT),
        (call(10, "48", "0", "0", "2"), EFAULT),
        (call(10, "0x10000", "0", "0", "2"), EFAULT),
        (call(10, "24", "0", "0", "0x12"), EINVAL),
        (call(10, "24", "0", "0", "3"), EINVAL),
        (call(10, "24", "1", "0", "0"), EINVAL),
        // l4_csum_replace: flags past its own, offsets.
        (call(11, "40", "0", "0", "0x82"), EINVAL),
        (call(11, "47", "0", "0", "2"), EFAULT),
        // skb_store_bytes: flags, a range past the packet.
        (
            call(9, "0", "r10", "2", "4").replace("mov r3, r10", "mov r3, r10\nadd r3, -8"),
            EINVAL,
        ),
        (
            call(9, "46", "r10", "4", "0").replace("mov r3, r10", "mov r3, r10\nadd r3, -8"),
            EFAULT,
        ),
        // csum_diff: sizes not a multiple of 4.
        (
            "mov r1, r10\nadd r1, -8\nmov r2, 3\nmov r3, r10\nadd r3, -8\nmov r4, 4\nmov r5, 0\ncall 28\n"
                .to_string(),
            EINVAL,
        ),
        // NULL with 0 bytes for `from`: the seed plus the sum of `to`.
        (
            "stw [r10-8], 0x01020304\nmov r1, 0\nmov r2, 0\nmov r3, r10\nadd r3, -8\nmov r4, 4\n\
             mov r5, 5\ncall 28\n"
                .to_string(),
            0x0102_0309,
        ),
        // ... of 0 bytes: the seed.
        (
            "mov r1, r10\nadd r1, -8\nmov r2, 0\nmov r3, r10\nadd r3, -8\nmov r4, 0\nmov r5, 77\ncall 28\n"
                .to_string(),
            77,
        ),
    ] {
        let (r0, p) = tc(body.clone());
        assert_eq!(r0, want, "{body}");
        assert_eq!(p, frame, "{body}: the packet is unchanged");
    }
    // skb_load_bytes past the end: -EFAULT and the buffer zeroed.
    let body = "stdw [r10-8], -1\n".to_string()
        + &call(26, "46", "r10", "4", "0").replace("mov r3, r10", "mov r3, r10\nadd r3, -8")
        + "ldxw r1, [r10-8]\nlsh r0, 8\nor r0, r1\n";
    assert_eq!(tc(body).0, EFAULT << 8);
}

#[test]
fn mangled_zero_udp_checksums() {
    let none = udp_frame(false);
    let run = |flags: &str, from: &str, to: &str| {
        run_tc(
            &format!("mov r6, r1\n{}exit", call(11, "40", from, to, flags)),
            &none,
            &SkbMeta::default(),
        )
    };
    // A zero checksum means none: left alone, unless enforced.
    assert_eq!(run("0x22", "1", "2"), (0, none.clone()));
    // Enforced, an update giving 0 stores CSUM_MANGLED_0.
    let (r0, p) = run("0x62", "0", "0");
    assert_eq!(r0, 0);
    assert_eq!(p[40..42], [0xff, 0xff]);
    assert_eq!(p[..40], none[..40]);
}

#[test]
fn invalidate_hash_clears_it_and_socket_filters_load_bytes() {
    let frame = udp_frame(true);
    let meta = SkbMeta {
        hash: 0x1234,
        ..SkbMeta::default()
    };
    for (flags, want) in [("0", 0x1234), ("2", 0)] {
        let text = "mov r6, r1\nstdw [r10-8], 0\n".to_string()
            + &call(9, "0", "r10", "2", flags).replace("mov r3, r10", "mov r3, r10\nadd r3, -8")
            + "ldxw r0, [r6+68]\nexit";
        assert_eq!(run_tc(&text, &frame, &meta).0, want, "flags {flags}");
    }
    // A socket filter reads the EtherType with skb_load_bytes.
    let text = "mov r6, r1\nstdw [r10-8], 0\n".to_string()
        + &call(26, "12", "r10", "2", "0").replace("mov r3, r10", "mov r3, r10\nadd r3, -8")
        + "ldxh r0, [r10-8]\nexit";
    for mode in MODES {
        for (name, opts) in engines() {
            let obj = Vm::new()
                .object(vec![ProgramDef::new("p", "socket", code(&text))], vec![])
                .unwrap();
            let mut prog = prepare(obj.program("p").unwrap().verify(mode).unwrap(), opts);
            let v = prog.run_socket(&frame, &SkbMeta::default()).unwrap();
            assert_eq!(v.code, 0x0008, "{mode:?} {name}");
        }
    }
    // Outside a socket buffer, the helpers fail the run.
    let text = "mov r6, r1\nstdw [r10-8], 0\n".to_string()
        + &call(26, "0", "r10", "2", "0").replace("mov r3, r10", "mov r3, r10\nadd r3, -8")
        + "exit";
    for (name, opts) in engines() {
        let obj = Vm::new()
            .object(vec![ProgramDef::new("p", "mem", code(&text))], vec![])
            .unwrap();
        let mut prog = prepare(
            obj.program("p").unwrap().verify(Mode::Checked).unwrap(),
            opts,
        );
        match prog.run(&mut [0u8; 8]) {
            Err(bpfx::RunError::Trap { trap, reason, .. }) => {
                assert_eq!(trap.kind, TrapKind::HelperError, "{name}");
                assert!(
                    reason
                        .unwrap()
                        .contains("needs a TC or socket-filter context")
                );
            }
            other => panic!("{name}: {other:?}"),
        }
    }
}

#[test]
fn csum_diff_takes_null_only_with_a_zero_size() {
    // NULL with 4 bytes: Strict refuses it; Checked lets the run fault at the call.
    let text = "stdw [r10-8], 0\nmov r1, 0\nmov r2, 4\nmov r3, r10\nadd r3, -8\nmov r4, 4\n\
                mov r5, 0\ncall 28\nexit";
    let obj = Vm::new()
        .object(vec![ProgramDef::new("p", "tc", code(text))], vec![])
        .unwrap();
    let e = obj.program("p").unwrap().verify(Mode::Strict).unwrap_err();
    assert!(
        e.to_string().contains("argument r1 of helper csum_diff"),
        "{e}"
    );
    for (name, opts) in engines() {
        let v = obj.program("p").unwrap().verify(Mode::Checked).unwrap();
        let mut prog = prepare(v, opts);
        match prog.run_tc(&mut udp_frame(true), &mut SkbMeta::default()) {
            Err(bpfx::RunError::Trap { trap, .. }) => {
                assert_eq!(trap.kind, TrapKind::OutOfBounds, "{name}")
            }
            other => panic!("{name}: {other:?}"),
        }
    }
}

#[test]
fn clang_built_nat_rewrites_the_destination_with_correct_checksums() {
    let path = std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/objects"))
        .join("tc_nat.o");
    for mode in MODES {
        for (name, opts) in engines() {
            let obj = bpfx::Object::open(&path).unwrap();
            let v = obj.program("tc_nat").unwrap().verify(mode).unwrap();
            let mut prog = prepare(v, opts);
            for udp_csum in [true, false] {
                let mut p = udp_frame(udp_csum);
                let mut meta = SkbMeta {
                    protocol: 0x0800,
                    ..SkbMeta::default()
                };
                let got = prog.run_tc(&mut p, &mut meta).unwrap();
                assert_eq!(got, bpfx::TcAction::Ok, "{mode:?} {name}");
                let mut want = udp_frame(udp_csum);
                want[30..34].copy_from_slice(&[10, 0, 0, 2]);
                // A UDP checksum of 0 ("none") stays 0 (BPF_F_MARK_MANGLED_0).
                fix_checksums(&mut want, udp_csum);
                assert_eq!(p, want, "{mode:?} {name} udp checksum {udp_csum}");
            }
            // Not IPv4: untouched.
            let mut p = udp_frame(true);
            let got = prog.run_tc(&mut p, &mut SkbMeta::default()).unwrap();
            assert_eq!((got, p), (bpfx::TcAction::Ok, udp_frame(true)));
        }
    }
}

/// Runs `text` as a TC program on `packet`; r0 and the packet after, the same on every engine
/// in both modes.
fn run_tc(text: &str, packet: &[u8], meta: &SkbMeta) -> (u64, Vec<u8>) {
    run_tc_everywhere(text, packet, meta, |r0, p, _| (r0, p))
}
