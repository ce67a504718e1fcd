//! SYN cookies without a listening socket (helpers 204 to 207) from an XDP program
//! (`objects/xdp_syncookie.c`): a SYN's cookie and MSS, the ACK that completes the handshake
//! accepted, and a changed cookie, other ports, another VM, a cookie too old and a bad header
//! length refused. Every engine in both modes; where the kernel can be asked (root, `bpftool`),
//! its test runs give the same verdicts, MSS values and errors, and accept the ACKs built from
//! its own cookies (the cookies themselves are keyed by each side's secret and differ).

// The oracle runs clang-built objects only: `common::code` (assembled programs) goes unused.
#[allow(dead_code)]
mod common;

#[path = "common/oracle.rs"]
mod oracle;

use bpfx::{Mode, Vm, XdpAction};
use common::{engines, prepare};
use oracle::objects;

const FILE: &str = "xdp_syncookie.o";
const EINVAL: i64 = -22;
const EACCES: i64 = -13;
const MINUTE: u64 = 60_000_000_000;

/// A TCP segment over IPv4 (`v6` false) or IPv6 from port `sport`, with flags `flags`, sequence
/// and acknowledgement numbers `seq` and `ack`, a data offset of `doff` words, the 4 bytes
/// after the fixed header `opt` (an MSS option, or NOPs), and 8 bytes for the answer.
fn segment(v6: bool, sport: u16, flags: u8, seq: u32, ack: u32, doff: u8, opt: [u8; 4]) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2];
    if v6 {
        f.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0, 0, 32, 6, 64]);
        f.extend_from_slice(&[0xfd; 16]);
        f.extend_from_slice(&[0xfe; 16]);
    } else {
        f.extend_from_slice(&[0x08, 0x00, 0x45, 0, 0, 52, 0, 1, 0x40, 0, 64, 6, 0, 0]);
        f.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]);
    }
    f.extend_from_slice(&sport.to_be_bytes());
    f.extend_from_slice(&443u16.to_be_bytes());
    f.extend_from_slice(&seq.to_be_bytes());
    f.extend_from_slice(&ack.to_be_bytes());
    f.extend_from_slice(&[doff << 4, flags, 0xff, 0xff, 0, 0, 0, 0]);
    f.extend_from_slice(&opt);
    f.extend_from_slice(&[0; 8]);
    f
}

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const NOPS: [u8; 4] = [1, 1, 1, 1];

fn mss(m: u16) -> [u8; 4] {
    let b = m.to_be_bytes();
    [2, 4, b[0], b[1]]
}

fn syn(v6: bool, opt: [u8; 4]) -> Vec<u8> {
    segment(v6, 40000, SYN, 1000, 0, 6, opt)
}

/// The ACK completing `syn`'s handshake with `cookie`, from port `sport`.
fn ack_of(v6: bool, sport: u16, cookie: u32) -> Vec<u8> {
    segment(v6, sport, ACK, 1001, cookie.wrapping_add(1), 5, NOPS)
}

/// The helper's answer, which the program writes over the frame's first 8 bytes.
fn answer(p: &[u8]) -> i64 {
    i64::from_le_bytes(p[..8].try_into().unwrap())
}

/// Runs `frame` on every engine in both modes with a VM of prng seed `seed` and a clock at
/// `now`, asserting every run agrees; the verdict and the packet after the run.
fn run(seed: u64, now: u64, frame: &[u8]) -> (XdpAction, Vec<u8>) {
    let obj = Vm::new()
        .seed(seed)
        .clock(move || now)
        .open(objects().join(FILE))
        .unwrap();
    let mut seen = None;
    for mode in [Mode::Checked, Mode::Strict] {
        for (engine, opts) in engines() {
            let v = obj.program("xdp_syncookie").unwrap().verify(mode).unwrap();
            let mut prog = prepare(v, opts);
            let mut p = frame.to_vec();
            let got = (prog.run_xdp(&mut p).unwrap(), p);
            match &seen {
                None => seen = Some(got),
                Some(s) => assert_eq!(*s, got, "{mode:?} {engine}"),
            }
        }
    }
    seen.unwrap()
}

/// The SYN's answer on every engine: the cookie and the MSS it stands for.
fn cookie(seed: u64, now: u64, frame: &[u8]) -> (u32, u16) {
    let (act, p) = run(seed, now, frame);
    let r = answer(&p);
    assert_eq!(act, XdpAction::Tx, "{r}");
    assert_eq!(r >> 48, 0, "{r:#x}");
    (r as u32, (r >> 32) as u16)
}

/// MSS options and the MSS the cookie stands for, per family.
const MSS4: [(Option<u16>, u16); 7] = [
    (None, 536),
    (Some(0), 536),
    (Some(1000), 536),
    (Some(1300), 1300),
    (Some(1459), 1440),
    (Some(1460), 1460),
    (Some(9000), 1460),
];
const MSS6: [(Option<u16>, u16); 5] = [
    (None, 1220),
    (Some(1300), 1220),
    (Some(1420), 1420),
    (Some(1500), 1440),
    (Some(9000), 8940),
];

fn opt(m: Option<u16>) -> [u8; 4] {
    m.map_or(NOPS, mss)
}

#[test]
fn a_syn_gets_a_cookie_its_ack_passes() {
    let now = 100 * MINUTE + 5;
    for (v6, table) in [(false, &MSS4[..]), (true, &MSS6[..])] {
        for &(m, want) in table {
            let (c, got) = cookie(7, now, &syn(v6, opt(m)));
            assert_eq!(got, want, "v6 {v6} option {m:?}");
            let (act, p) = run(7, now, &ack_of(v6, 40000, c));
            assert_eq!((act, answer(&p)), (XdpAction::Pass, 0), "v6 {v6} {m:?}");
        }
    }
}

#[test]
fn a_cookie_is_bound_to_its_vm_ports_value_and_time() {
    let now = 100 * MINUTE;
    for v6 in [false, true] {
        let (c, _) = cookie(7, now, &syn(v6, mss(1460)));
        let refused = |seed: u64, at: u64, frame: Vec<u8>| {
            let (act, p) = run(seed, at, &frame);
            assert_eq!((act, answer(&p)), (XdpAction::Drop, EACCES), "v6 {v6}");
        };
        // Another port, a changed cookie, another VM's key.
        refused(7, now, ack_of(v6, 40001, c));
        refused(7, now, ack_of(v6, 40000, c ^ 0x0001_0000));
        refused(8, now, ack_of(v6, 40000, c));
        // Accepted in the minute it was made and the two after, not later.
        for late in [MINUTE - 1, 2 * MINUTE, 3 * MINUTE - 1] {
            let (act, p) = run(7, now + late, &ack_of(v6, 40000, c));
            assert_eq!((act, answer(&p)), (XdpAction::Pass, 0), "{late}");
        }
        refused(7, now + 3 * MINUTE, ack_of(v6, 40000, c));
        // Same inputs, same cookie: nothing but the key, the time and the segment counts.
        assert_eq!(cookie(7, now + MINUTE - 1, &syn(v6, mss(1460))).0, c);
    }
}

/// SYNs whose header length is not the data offset's, or shorter than a TCP header.
fn bad_lengths(v6: bool) -> Vec<Vec<u8>> {
    vec![
        segment(v6, 40000, SYN, 1, 0, 4, mss(1460)),
        segment(v6, 40000, SYN, 1, 0, 7, mss(1460)),
        segment(v6, 40000, SYN, 1, 0, 15, mss(1460)),
    ]
}

#[test]
fn a_header_length_not_the_data_offset_is_invalid() {
    for v6 in [false, true] {
        for f in bad_lengths(v6) {
            let (act, p) = run(7, 0, &f);
            assert_eq!((act, answer(&p)), (XdpAction::Drop, EINVAL), "{f:02x?}");
        }
    }
}

/// The packet with the cookie's 4 bytes cleared: what the kernel's run must match.
fn masked(mut p: Vec<u8>) -> Vec<u8> {
    p[..4].fill(0);
    p
}

#[test]
fn the_kernel_gives_the_same_mss_errors_and_verdicts() {
    const TEST: &str = "the_kernel_gives_the_same_mss_errors_and_verdicts";
    if let Some(why) = oracle::unavailable() {
        eprintln!("SKIPPED {TEST}: {why}");
        return;
    }
    let prog = oracle::load(&objects().join(FILE), "xdp")
        .unwrap_or_else(|e| panic!("the kernel refuses {FILE}: {e}"));
    let scratch = std::env::temp_dir().join(format!("bpfx-{TEST}-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    let mut compared = 0;
    for (v6, table) in [(false, &MSS4[..]), (true, &MSS6[..])] {
        for &(m, _) in table {
            let f = syn(v6, opt(m));
            let (act, ours) = run(7, 100 * MINUTE, &f);
            let (code, theirs) = oracle::kernel_run(&prog, &f, None, &scratch);
            assert_eq!(code, act.code() as u32, "{f:02x?}");
            assert_eq!(masked(theirs.clone()), masked(ours), "{m:?}");
            // The kernel accepts the ACK made from its own cookie, and refuses another port.
            let c = answer(&theirs) as u32;
            let (code, p) = oracle::kernel_run(&prog, &ack_of(v6, 40000, c), None, &scratch);
            assert_eq!((code, answer(&p)), (2, 0), "v6 {v6} {m:?}");
            let (code, p) = oracle::kernel_run(&prog, &ack_of(v6, 40001, c), None, &scratch);
            assert_eq!((code, answer(&p)), (1, EACCES), "v6 {v6} {m:?}");
            compared += 3;
        }
        for f in bad_lengths(v6) {
            let (act, ours) = run(7, 0, &f);
            assert_eq!(
                oracle::kernel_run(&prog, &f, None, &scratch),
                (act.code() as u32, ours),
                "{f:02x?}"
            );
            compared += 1;
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    eprintln!("{TEST}: {compared} runs compared with the kernel's");
}
