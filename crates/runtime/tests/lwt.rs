//! Lightweight tunnel programs (`objects/lwt.c`): an lwt_in filter dropping blocked sources and
//! telnet, marking what it passes; an lwt_out counter of IP protocols read with
//! `bpf_skb_load_bytes`; an lwt_xmit rewriter setting DSCP EF with `bpf_skb_store_bytes` and
//! `bpf_l3_csum_replace` and redirecting with `bpf_redirect`; on every engine and JIT option set
//! in both modes. The refused twins (`objects/lwt_bad_N.c`: an lwt_in packet write, a
//! `tc_classid` read, lwt_xmit's helper from lwt_out) and the sections.
//!
//! The kernel is the oracle where it can be asked (root, `bpftool`): its verifier loads `lwt.o`
//! and refuses the twins, and its test run (`BPF_PROG_TEST_RUN`, which takes an Ethernet frame
//! and runs these types from its network header) gives the same return values and packets.

// Not every helper of `common` is used here.
#[allow(dead_code)]
mod common;

#[path = "common/oracle.rs"]
#[allow(dead_code)]
mod oracle;

use bpfx::{
    Context, LwtAction, LwtHook, LwtOutcome, Mode, Object, RedirectTarget, SkbMeta, UpdateFlag,
};
use oracle::objects;

fn open() -> Object {
    Object::open(objects().join("lwt.o")).unwrap()
}

fn csum(h: &[u8]) -> u16 {
    let mut s: u32 = h
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// An IPv4 packet of `proto` from `src` to 10.0.0.2 carrying `l4`, its checksum right.
fn ipv4(proto: u8, src: [u8; 4], l4: &[u8]) -> Vec<u8> {
    let total = (20 + l4.len()) as u16;
    let mut h = vec![0x45, 0];
    h.extend_from_slice(&total.to_be_bytes());
    h.extend_from_slice(&[0, 1, 0, 0, 64, proto, 0, 0]);
    h.extend_from_slice(&src);
    h.extend_from_slice(&[10, 0, 0, 2]);
    let c = csum(&h);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h.extend_from_slice(l4);
    h
}

fn tcp(dport: u16) -> Vec<u8> {
    let mut t = vec![0x9c, 0x40];
    t.extend_from_slice(&dport.to_be_bytes());
    t.extend_from_slice(&[0; 8]);
    t.extend_from_slice(&[0x50, 2, 0x03, 0xe8, 0, 0, 0, 0]);
    t
}

fn udp(dport: u16) -> Vec<u8> {
    let mut u = vec![0x04, 0xd2];
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&[0, 12, 0, 0]);
    u.extend_from_slice(b"abcd");
    u
}

fn ipv6_udp() -> Vec<u8> {
    let mut p = vec![0x60, 0, 0, 0, 0, 12, 17, 64];
    p.extend_from_slice(&[0; 32]);
    p.extend_from_slice(&udp(53));
    p
}

fn meta() -> SkbMeta {
    SkbMeta {
        protocol: 0x0800,
        ..SkbMeta::default()
    }
}

/// What one run gives: the outcome, the packet after it, the metadata after it.
type Run = (LwtOutcome, Vec<u8>, SkbMeta);

fn run(p: &mut bpfx::Program, packet: &[u8]) -> Run {
    let mut pkt = packet.to_vec();
    let mut m = meta();
    let out = p.run_lwt(&mut pkt, &mut m).unwrap();
    (out, pkt, m)
}

fn counter(obj: &Object, map: &str, i: u32) -> u64 {
    let v = obj
        .map(map)
        .unwrap()
        .lookup(&i.to_le_bytes())
        .unwrap()
        .unwrap();
    u64::from_le_bytes(v[..8].try_into().unwrap())
}

#[test]
fn sections_give_the_lwt_hooks() {
    let obj = open();
    for (name, hook) in [
        ("in_filter", LwtHook::In),
        ("out_count", LwtHook::Out),
        ("xmit_dscp", LwtHook::Xmit),
    ] {
        let p = obj.program(name).unwrap().load().unwrap();
        assert_eq!(p.context(), Context::Lwt(hook), "{name}");
        assert_eq!(p.context().name(), hook.name());
    }
    for h in LwtHook::ALL {
        assert_eq!(Context::for_section(h.name()), Context::Lwt(h));
        assert_eq!(Context::parse(h.name()), Some(Context::Lwt(h)));
    }
    assert_eq!(
        Context::for_section("lwt_xmit/encap"),
        Context::Lwt(LwtHook::Xmit)
    );
    // A free-named `__sk_buff` program stays TC's.
    assert_eq!(Context::for_btf_type("__sk_buff"), Some(Context::Tc));
}

#[test]
fn the_input_filter_drops_blocked_sources_and_telnet() {
    let packets = [
        ipv4(6, [10, 0, 0, 1], &tcp(23)),
        ipv4(6, [10, 0, 0, 1], &tcp(80)),
        ipv4(17, [192, 168, 7, 9], &udp(53)),
        ipv4(17, [192, 168, 8, 9], &udp(53)),
        ipv6_udp(),
        // Too short for its TCP header's ports.
        ipv4(6, [10, 0, 0, 1], &[0x9c]),
    ];
    let (runs, counts) = common::run_object_everywhere(open, "in_filter", |p, obj| {
        obj.map("blocked")
            .unwrap()
            .update(&[192, 168, 7, 0], &[1], UpdateFlag::Any)
            .unwrap();
        let runs: Vec<Run> = packets.iter().map(|pkt| run(p, pkt)).collect();
        (runs, (counter(obj, "counts", 0), counter(obj, "counts", 1)))
    });
    let actions: Vec<LwtAction> = runs.iter().map(|r| r.0.action).collect();
    use LwtAction::{Drop, Ok};
    assert_eq!(actions, [Drop, Ok, Drop, Ok, Ok, Drop]);
    // The passed TCP packet is marked, its length in cb[0]; nothing else changes.
    assert_eq!((runs[1].2.mark, runs[1].2.cb[0]), (0x11, 40));
    for (r, pkt) in runs.iter().zip(&packets) {
        assert_eq!(&r.1, pkt, "lwt_in cannot write the packet");
        assert_eq!(r.0.redirect, None);
    }
    assert_eq!(runs[3].2.mark, 0);
    assert_eq!(counts, (3, 3));
}

#[test]
fn the_output_counter_reads_the_protocol_with_skb_load_bytes() {
    let counts = common::run_object_everywhere(open, "out_count", |p, obj| {
        for pkt in [
            ipv4(6, [10, 0, 0, 1], &tcp(80)),
            ipv4(17, [10, 0, 0, 1], &udp(53)),
            ipv6_udp(),
            // Shorter than the 10 bytes read: -EFAULT, not counted.
            vec![0x45, 0, 0],
        ] {
            assert_eq!(run(p, &pkt).0.action, LwtAction::Ok);
        }
        (counter(obj, "protos", 6), counter(obj, "protos", 17))
    });
    assert_eq!(counts, (1, 2));
}

#[test]
fn xmit_rewrites_dscp_fixes_the_checksum_and_redirects() {
    let sip = ipv4(17, [10, 0, 0, 1], &udp(5060));
    let dns = ipv4(17, [10, 0, 0, 1], &udp(53));
    let runs = common::run_object_everywhere(open, "xmit_dscp", |p, obj| {
        let a = run(p, &sip);
        let b = run(p, &dns);
        obj.map("cfg")
            .unwrap()
            .update(&0u32.to_le_bytes(), &4u32.to_le_bytes(), UpdateFlag::Any)
            .unwrap();
        let c = run(p, &sip);
        (a, b, c)
    });
    let (a, b, c) = runs;
    assert_eq!(a.0.action, LwtAction::Ok);
    assert_eq!(a.1[1], 46 << 2, "DSCP EF");
    assert_eq!(csum(&a.1[..20]), 0, "the header checksum is right again");
    assert_eq!(&a.1[20..], &sip[20..]);
    assert_eq!(a.2.priority, 6);
    assert_eq!((b.0.action, &b.1, b.2.priority), (LwtAction::Ok, &dns, 0));
    assert_eq!(
        c.0,
        LwtOutcome {
            action: LwtAction::Redirect,
            redirect: Some(RedirectTarget::Ifindex {
                ifindex: 4,
                ingress: false
            }),
        }
    );
    assert_eq!(c.1, a.1);
}

const TWINS: [(&str, &str); 3] = [
    ("lwt_bad_0.o", "in_write"),
    ("lwt_bad_1.o", "classid"),
    ("lwt_bad_2.o", "out_store"),
];

#[test]
fn the_twins_are_refused_in_both_modes() {
    for (file, name) in TWINS {
        let obj = Object::open(objects().join(file)).unwrap();
        for mode in [Mode::Checked, Mode::Strict] {
            let e = obj.program(name).unwrap().verify(mode).unwrap_err();
            eprintln!("{file} {mode:?}: {e}");
        }
    }
}

#[test]
fn the_kernel_loads_the_fixture_refuses_the_twins_and_agrees_on_test_runs() {
    if let Some(why) = oracle::unavailable() {
        eprintln!("SKIPPED kernel oracle for lwt: {why}");
        return;
    }
    for (file, _) in TWINS {
        assert!(
            oracle::load_by_section(&objects().join(file)).is_err(),
            "the kernel loads {file}"
        );
    }
    let dir = oracle::load_all(&objects().join("lwt.o"))
        .unwrap_or_else(|e| panic!("the kernel refuses lwt.o: {e}"));
    let scratch = std::env::temp_dir().join(format!("bpfx-lwt-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    let eth = [2, 2, 2, 2, 2, 2, 4, 4, 4, 4, 4, 4, 8, 0];
    let obj = open();
    let mut compared = 0;
    for name in ["in_filter", "out_count", "xmit_dscp"] {
        let v = obj.program(name).unwrap().verify(Mode::Strict).unwrap();
        let mut p = common::prepare(v, None);
        for pkt in [
            ipv4(6, [10, 0, 0, 1], &tcp(23)),
            ipv4(6, [10, 0, 0, 1], &tcp(80)),
            ipv4(17, [10, 0, 0, 1], &udp(5060)),
            ipv4(17, [10, 0, 0, 1], &udp(53)),
        ] {
            let frame: Vec<u8> = eth.iter().copied().chain(pkt.iter().copied()).collect();
            let (ret, out) = oracle::kernel_run_named(&dir, name, &frame, None, &scratch);
            let ours = run(&mut p, &pkt);
            assert_eq!(ret as i32, ours.0.action.code(), "{name} {pkt:02x?}");
            // The kernel hands the frame back with its link-layer header cleared.
            assert_eq!(&out[14..], &ours.1[..], "{name}");
            compared += 1;
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    eprintln!("lwt: {compared} test runs compared with the kernel's");
}
