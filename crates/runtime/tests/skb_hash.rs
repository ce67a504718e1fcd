//! `skb_load_bytes_relative`, `get_hash_recalc`, `set_hash` and `csum_update` in TC programs
//! (and socket filters where the kernel offers them), on the interpreter and the JIT with every
//! option set, in Checked and Strict mode.

mod common;

use bpfx::{Mode, ProgramDef, SkbMeta, Vm, flow_hash};
use common::{code, engines, prepare, run_tc_everywhere};

const MODES: [Mode; 2] = [Mode::Checked, Mode::Strict];
const EFAULT: u64 = -14i64 as u64;
const ENOTSUPP: u64 = -524i64 as u64;

/// Ethernet + IPv4 (`src` -> `dst`, UDP) + UDP (`sport` -> `dport`) + 4 bytes.
fn udp(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
    let mut p = vec![0xaa; 12];
    p.extend_from_slice(&[0x08, 0x00]);
    p.extend_from_slice(&[0x45, 0, 0, 32, 0, 1, 0, 0, 64, 17, 0, 0]);
    p.extend_from_slice(&src);
    p.extend_from_slice(&dst);
    p.extend_from_slice(&sport.to_be_bytes());
    p.extend_from_slice(&dport.to_be_bytes());
    p.extend_from_slice(&[0, 12, 0, 0, 1, 2, 3, 4]);
    p
}

/// r0 and the metadata after the run, the same on every engine in both modes.
fn run_tc(text: &str, packet: &[u8], meta: &SkbMeta) -> (u64, SkbMeta) {
    run_tc_everywhere(text, packet, meta, |r0, _, m| (r0, m))
}

fn frame() -> Vec<u8> {
    udp([10, 0, 0, 1], [10, 0, 0, 2], 1234, 53)
}

/// `skb_load_bytes_relative(ctx, offset, r10 - 8, len, header)`, then r0 = the call's result
/// if it failed, else the 8 bytes loaded (the stack zeroed before).
fn relative(offset: &str, len: u32, header: &str) -> String {
    format!(
        "mov r6, r1\nstdw [r10-8], -1\nmov r1, r6\nmov r2, {offset}\nmov r3, r10\nadd r3, -8\n\
         mov r4, {len}\nmov r5, {header}\ncall 68\njne r0, 0, +1\nldxdw r0, [r10-8]\nexit"
    )
}

#[test]
fn load_bytes_relative_reads_from_the_mac_or_the_network_header() {
    let f = frame();
    let m = SkbMeta::default();
    // The verdict is an `int`: the low 4 bytes loaded, sign-extended.
    let le = |b: &[u8]| {
        let mut w = [0xffu8; 4];
        w[..b.len()].copy_from_slice(b);
        i64::from(i32::from_le_bytes(w)) as u64
    };
    // The EtherType, from the MAC header.
    assert_eq!(run_tc(&relative("12", 2, "0"), &f, &m).0, le(&[8, 0]));
    // The IP protocol and the source address, from the network header.
    assert_eq!(run_tc(&relative("9", 1, "1"), &f, &m).0, le(&[17]));
    assert_eq!(
        run_tc(&relative("12", 4, "1"), &f, &m).0,
        le(&[10, 0, 0, 1])
    );
    // The last bytes of the packet, from either.
    assert_eq!(run_tc(&relative("42", 4, "0"), &f, &m).0, le(&[1, 2, 3, 4]));
    assert_eq!(run_tc(&relative("28", 4, "1"), &f, &m).0, le(&[1, 2, 3, 4]));
    // Past the end, an offset above 0xffff, another start: -EFAULT, the buffer zeroed.
    for (off, len, hdr) in [
        ("43", 4, "0"),
        ("29", 4, "1"),
        ("0x10000", 1, "0"),
        ("0", 1, "2"),
    ] {
        let text = relative(off, len, hdr).replace(
            "jne r0, 0, +1\nldxdw r0, [r10-8]\n",
            "ldxdw r7, [r10-8]\nlsh r0, 8\nor r0, r7\n",
        );
        let bytes_zeroed = run_tc(&text, &f, &m).0 & 0xff;
        assert_eq!(bytes_zeroed, 0, "{off} {len} {hdr}");
        assert_eq!(run_tc(&relative(off, len, hdr), &f, &m).0, EFAULT);
    }
}

#[test]
fn load_bytes_relative_works_in_socket_filters() {
    let text = relative("9", 1, "1");
    for mode in MODES {
        for (name, opts) in engines() {
            let obj = Vm::new()
                .object(vec![ProgramDef::new("p", "socket", code(&text))], vec![])
                .unwrap();
            let mut prog = prepare(obj.program("p").unwrap().verify(mode).unwrap(), opts);
            let v = prog.run_socket(&frame(), &SkbMeta::default()).unwrap();
            assert_eq!(v.code, 0xffff_ff11, "{mode:?} {name}");
        }
    }
}

const RECALC: &str = "mov r6, r1\ncall 34\nexit";

#[test]
fn set_hash_sets_the_hash_get_hash_recalc_returns() {
    let text = "mov r6, r1\nmov r2, 0x1234abcd\ncall 48\nmov r7, r0\nmov r1, r6\ncall 34\n\
                ldxw r1, [r6+68]\njeq r1, r0, +1\nmov r0, -1\nor r0, r7\nexit";
    let (r0, m) = run_tc(text, &frame(), &SkbMeta::default());
    assert_eq!((r0, m.hash), (0x1234abcd, 0x1234abcd));
    // A hash the packet already has is returned as it is.
    let meta = SkbMeta {
        hash: 77,
        ..SkbMeta::default()
    };
    assert_eq!(run_tc(RECALC, &frame(), &meta), (77, meta));
}

#[test]
fn get_hash_recalc_computes_a_flow_hash_when_there_is_none() {
    let f = frame();
    let (r0, m) = run_tc(RECALC, &f, &SkbMeta::default());
    assert_ne!(r0, 0);
    assert_eq!(r0, u64::from(flow_hash(&f)));
    assert_eq!(u64::from(m.hash), r0, "stored in the skb");
    // Both directions of the flow hash alike; another flow differently.
    let back = udp([10, 0, 0, 2], [10, 0, 0, 1], 53, 1234);
    assert_eq!(run_tc(RECALC, &back, &SkbMeta::default()).0, r0);
    let other = udp([10, 0, 0, 1], [10, 0, 0, 2], 1235, 53);
    assert_ne!(run_tc(RECALC, &other, &SkbMeta::default()).0, r0);
    // After skb_store_bytes(BPF_F_INVALIDATE_HASH) it is computed again.
    let text = "mov r6, r1\nstdw [r10-8], 0\nmov r1, r6\nmov r2, 40\nmov r3, r10\nadd r3, -8\n\
                mov r4, 2\nmov r5, 2\ncall 9\nmov r1, r6\ncall 34\nexit";
    let meta = SkbMeta {
        hash: 5,
        ..SkbMeta::default()
    };
    let mut changed = f.clone();
    changed[40..42].fill(0);
    let (r0, m) = run_tc(text, &f, &meta);
    assert_eq!(
        (r0, m.hash),
        (u64::from(flow_hash(&changed)), flow_hash(&changed))
    );
}

#[test]
fn flow_hashes_of_short_or_unknown_frames_are_never_zero() {
    assert_ne!(flow_hash(&[]), 0);
    assert_ne!(flow_hash(&[0; 14]), 0);
    let f = frame();
    assert_ne!(flow_hash(&f[..20]), 0);
}

#[test]
fn csum_update_needs_checksum_complete_which_bpfx_packets_lack() {
    let text = "mov r2, 0x1234\ncall 40\nexit";
    assert_eq!(run_tc(text, &frame(), &SkbMeta::default()).0, ENOTSUPP);
}
