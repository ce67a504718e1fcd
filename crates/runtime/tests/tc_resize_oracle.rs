//! The kernel as the oracle of the TC helpers that move and resize the packet: the fixtures
//! `tests/objects/tc_vlan.c`, `tc_ipip.c`, `tc_resize_probe.c` (one helper per run, chosen
//! with its arguments by the packet's last 20 bytes) and `tc_netoff.c` (where the network
//! header is after each helper) run through `bpftool prog run` (the
//! kernel's `BPF_PROG_TEST_RUN`) and on bpfx's engines (Strict mode, the interpreter and the
//! JIT under every option set, each on a [`Packet`]); the return values, the output packets
//! and `cb[]` (where the programs leave `len`, `protocol` and the `vlan_*` fields as they read
//! them after the helpers) must be equal. Needs root, `bpftool` and a kernel that loads BPF
//! programs; without them the test says why on stderr and checks nothing.
//!
//! What the kernel's test run cannot show, and so is only in `tc_resize.rs`: a frame arriving
//! with its VLAN tag in the metadata (`ctx_in` cannot set `vlan_*`), the copies
//! `clone_redirect` sends, and where bpfx knowingly differs: the kernel grows its buffers
//! without bound where bpfx answers `-ENOMEM` past the packet's room, takes the device's MTU
//! as `skb_change_tail`'s limit (bpfx models no device: `SKB_MAX_ALLOC`), and refuses
//! `clone_redirect` to an ifindex no device has (bpfx only knows 0 as none).

// Clang-built objects only: `common::code` (assembled programs) goes unused.
#[allow(dead_code)]
mod common;

#[path = "common/oracle.rs"]
mod oracle;

use bpfx::{Context, Mode, Object, Packet, SkbMeta};
use common::{engines, prepare};
use oracle::{Pinned, kernel_run, load, objects, unavailable};
use std::path::Path;

/// `struct __sk_buff`: its size and the offsets `ctx_in` sets and `ctx_out` reads back.
const SKB_SIZE: usize = 192;
const MARK: usize = 8;
const PRIORITY: usize = 32;
const IFINDEX: usize = 40;
const CB: usize = 48;
/// The loopback device, in every network namespace.
const LOOPBACK: u32 = 1;

/// (return value, output packet, cb[]).
type Run = (u32, Vec<u8>, [u32; 5]);

/// The kernel's run of `prog` on `frame`, with `mark` and `priority` in the context.
fn kernel(prog: &Pinned, frame: &[u8], (mark, priority): (u32, u32), scratch: &Path) -> Run {
    let mut ctx = vec![0u8; SKB_SIZE];
    ctx[IFINDEX..IFINDEX + 4].copy_from_slice(&LOOPBACK.to_le_bytes());
    ctx[MARK..MARK + 4].copy_from_slice(&mark.to_le_bytes());
    ctx[PRIORITY..PRIORITY + 4].copy_from_slice(&priority.to_le_bytes());
    let (ret, packet) = kernel_run(prog, frame, Some(&mut ctx), scratch);
    let cb = std::array::from_fn(|i| {
        u32::from_le_bytes(ctx[CB + 4 * i..CB + 4 * i + 4].try_into().unwrap())
    });
    (ret, packet, cb)
}

fn bpfx_run(obj: &Object, name: &str, frame: &[u8], (mark, priority): (u32, u32)) -> Run {
    let meta = SkbMeta {
        protocol: u16::from_be_bytes([frame[12], frame[13]]),
        ifindex: LOOPBACK,
        mark,
        priority,
        ..SkbMeta::default()
    };
    let mut seen = None;
    for (engine, opts) in engines() {
        let v = obj.program(name).unwrap().verify(Mode::Strict).unwrap();
        let mut prog = prepare(v, opts);
        let mut p = Packet::new(frame);
        let out = prog.run_tc_packet(&mut p, &meta).unwrap();
        let got = (out.action.code() as u32, p.to_vec(), out.meta.cb);
        match &seen {
            None => seen = Some(got),
            Some(s) => assert_eq!(*s, got, "{name} {engine}"),
        }
    }
    seen.unwrap()
}

fn eth(et: u16) -> Vec<u8> {
    let mut p = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
    p.extend_from_slice(&et.to_be_bytes());
    p
}

fn ipv4(payload: usize) -> Vec<u8> {
    let mut h = vec![0x45, 0];
    h.extend_from_slice(&((20 + payload) as u16).to_be_bytes());
    h.extend_from_slice(&[0, 0, 0, 0, 64, 17, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2]);
    h.extend((0..payload).map(|i| i as u8));
    h
}

fn with_args(frame: &[u8], args: &[u32]) -> Vec<u8> {
    let mut p = frame.to_vec();
    for i in 0..5 {
        p.extend_from_slice(&args.get(i).copied().unwrap_or(0).to_le_bytes());
    }
    p
}

/// The probe's cases: (frame, arguments).
fn probe_cases() -> Vec<Vec<u8>> {
    let mut v4 = eth(0x0800);
    v4.extend(ipv4(40));
    let mut v6 = eth(0x86dd);
    v6.extend([0x60, 0, 0, 0, 0, 20, 17, 64]);
    v6.extend([0; 32]);
    v6.extend(0..60u8);
    let mut tagged = v4[..12].to_vec();
    tagged.extend_from_slice(&[0x81, 0x00, 0x00, 0x64]);
    tagged.extend_from_slice(&v4[12..]);
    let mut qinq = v4[..12].to_vec();
    qinq.extend_from_slice(&[0x88, 0xa8, 0x01, 0x2c, 0x81, 0x00, 0x00, 0x64]);
    qinq.extend_from_slice(&v4[12..]);
    let mut arp = eth(0x0806);
    arp.extend([0; 40]);
    let adj = |d: i32, mode: u32, flags: u64| {
        vec![50, d as u32, mode, flags as u32, (flags >> 32) as u32]
    };
    let mut cases = Vec::new();
    let v4_args: Vec<Vec<u32>> = vec![
        vec![38, 120],
        vec![38, 14],
        vec![38, 13],
        vec![38, 80, 1],
        vec![43, 4],
        vec![43, 4, 1],
        vec![39, 0],
        vec![39, 94],
        vec![39, 95],
        vec![39, 2000],
        vec![13, 1, 0],
        vec![13, 1, 1],
        vec![13, 0, 0],
        vec![13, 1, 2],
        vec![18, 0x0081, 5],
        vec![18, 0xa888, 0x1_0fff],
        vec![18, 0x3412, 5],
        vec![19],
        vec![31, 0xdd86, 0],
        vec![31, 0x0008, 0],
        vec![31, 0xdd86, 1],
        adj(8, 1, 0),
        adj(8, 0, 0),
        adj(-8, 1, 0),
        adj(-8, 0, 0),
        adj(8, 2, 0),
        adj(0x1000, 1, 0),
        adj(20, 1, 2),
        adj(20, 1, 4),
        adj(20, 1, 6),
        adj(20, 1, 2 | 8),
        adj(28, 1, 2 | 16),
        adj(20, 1, 2 | 8 | 16),
        adj(20, 1, 8),
        adj(20, 1, 1 << 7),
        adj(-20, 1, 1 << 7),
        adj(-20, 1, 1 << 8),
        adj(-20, 1, 3 << 7),
        adj(-8, 1, 2),
        adj(8, 1, 1 << 9),
        adj(34, 1, 2 | 64 | 14 << 56),
        adj(34, 1, 2 | 64 | 10 << 56),
        adj(20, 1, 2 | 30 << 56),
        adj(-60, 1, 0),
        adj(-61, 1, 0),
        adj(-20, 0, 0),
        adj(8, 1, 1 | 32),
    ];
    for a in &v4_args {
        cases.push(with_args(&v4, a));
    }
    for a in [
        vec![31, 0x0008, 0],
        vec![31, 0xdd86, 0],
        adj(-40, 1, 1 << 7),
        adj(8, 0, 0),
        adj(-41, 1, 0),
    ] {
        cases.push(with_args(&v6, &a));
    }
    for frame in [&tagged, &qinq] {
        for a in [vec![19], vec![18, 0xa888, 7], adj(8, 1, 0), vec![38, 30]] {
            cases.push(with_args(frame, &a));
        }
    }
    cases.push(with_args(&arp, &adj(8, 1, 0)));
    cases.push(with_args(&arp, &[31, 0xdd86]));
    // A tag carrying a length, not an EtherType; and one too short to pop.
    cases.push(with_args(&eth(0x8100), &[19]));
    let mut short = eth(0x8100);
    short.extend([0xff, 0xff]);
    cases.push(short);
    cases
}

#[test]
fn resizing_helpers_agree_with_the_kernel() {
    if let Some(why) = unavailable() {
        eprintln!("SKIPPED resizing_helpers_agree_with_the_kernel: {why}");
        return;
    }
    let scratch = std::env::temp_dir().join(format!("bpfx_tc_resize_{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    let mut vlan_frames = Vec::new();
    let mut v4 = eth(0x0800);
    v4.extend(ipv4(20));
    let mut tagged = v4[..12].to_vec();
    tagged.extend_from_slice(&[0x81, 0x00, 0x20, 0x0a]);
    tagged.extend_from_slice(&v4[12..]);
    vlan_frames.extend([v4.clone(), tagged, eth(0x0806)]);
    let mut ipip_frames = vec![v4.clone(), eth(0x0806)];
    let mut padded = v4.clone();
    padded.extend([0xee; 12]);
    ipip_frames.push(padded);
    let mut long = eth(0x0800);
    long.extend(ipv4(400));
    ipip_frames.push(long);
    // tc_netoff: (what it does, the tail length) in mark and priority.
    let mut tagged = v4[..12].to_vec();
    tagged.extend_from_slice(&[0x81, 0x00, 0x00, 0x64]);
    tagged.extend_from_slice(&v4[12..]);
    let mut netoff = Vec::new();
    for (mode, frame) in [(0, &v4), (1, &v4), (2, &tagged), (0, &tagged), (3, &v4)] {
        for prio in 12..22 {
            netoff.push((frame.clone(), (mode, prio)));
        }
    }
    let plain = |frames: Vec<Vec<u8>>| frames.into_iter().map(|f| (f, (0, 0))).collect();
    let mut runs = 0;
    for (file, frames) in [
        ("tc_vlan", plain(vlan_frames)),
        ("tc_ipip", plain(ipip_frames)),
        ("tc_resize_probe", plain(probe_cases())),
        ("tc_netoff", netoff),
    ] {
        let frames: Vec<(Vec<u8>, (u32, u32))> = frames;
        let path = objects().join(format!("{file}.o"));
        let pinned = load(&path, "classifier").unwrap_or_else(|e| panic!("{file}: {e}"));
        let obj = Object::open(&path).unwrap();
        assert_eq!(obj.programs().next().unwrap().context(), Context::Tc);
        for (frame, meta) in &frames {
            let want = kernel(&pinned, frame, *meta, &scratch);
            let got = bpfx_run(&obj, file, frame, *meta);
            assert_eq!(got, want, "{file} {meta:?} on {frame:02x?}");
            runs += 1;
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    eprintln!("resizing_helpers_agree_with_the_kernel: {runs} runs compared with the kernel's");
}

#[test]
fn no_other_program_type_gets_the_resizing_helpers_in_the_kernel_or_in_bpfx() {
    if let Some(why) = unavailable() {
        eprintln!("SKIPPED no_other_program_type_gets_the_resizing_helpers: {why}");
        return;
    }
    for (file, ty, helper) in [
        ("resize_socket", "socket", "skb_change_tail#38"),
        ("resize_xdp", "xdp", "skb_vlan_push#18"),
    ] {
        let path = objects().join(format!("{file}.o"));
        let why = load(&path, ty).err().expect("the kernel refuses it");
        assert!(
            why.contains(&format!("cannot use helper bpf_{helper}")),
            "{why}"
        );
        let obj = Object::open(&path).unwrap();
        let e = obj
            .program("resize")
            .unwrap()
            .verify(Mode::Checked)
            .unwrap_err();
        assert!(
            e.to_string()
                .contains(&format!("cannot use helper {helper}")),
            "{ty}: {e}"
        );
    }
}
