//! cgroup skb programs (`objects/cgskb.c`): an egress accounting program, an ingress firewall
//! reading the transport header with `bpf_skb_load_bytes`, and a `cgroup/skb` program, run on
//! IP packets (from the network header) with the packet's socket, on every engine and JIT
//! option set in both modes; their unsafe twins (`objects/cgskb_bad_N.c`: a store into the
//! read-only packet, a helper writing into it, a TC-only field, an ingress return value of 2)
//! refused as the kernel refuses them; `skb_load_bytes_relative` from the network header (the
//! packet's start) and, with no link-layer header in the run, `-EFAULT` from the MAC one.
//!
//! The kernel is the oracle where it can be asked (root, `bpftool`): `BPF_PROG_TEST_RUN` takes
//! cgroup skb programs, on a frame whose Ethernet header it strips (the program sees the
//! packet from the network header, as bpfx's run does), with a throwaway socket whose family
//! and addresses come from the packet (`BpfSock::of_ip_packet`) on the loopback device
//! (ifindex 1); it refuses packets shorter than their IP header, which only bpfx runs. Each
//! run's return value, output packet (the Ethernet header zeroed by the
//! kernel, then the packet unchanged) and the `__sk_buff` fields the program may write
//! (`mark`, `priority`, `cb`, `tstamp`, from `ctx_out`) must equal bpfx's.

// Not every helper of `common` is used here.
#[allow(dead_code)]
mod common;

#[path = "common/oracle.rs"]
#[allow(dead_code)]
mod oracle;

use bpfx::{
    BpfSock, CgroupSkbHook, CgroupSkbVerdict, Context, Mode, Object, Program, ProgramDef, SkbMeta,
    SockIds, Vm,
};
use oracle::objects;

const MODES: [Mode; 2] = [Mode::Checked, Mode::Strict];

fn open() -> Object {
    Object::open(objects().join("cgskb.o")).unwrap()
}

/// An IPv4 packet from `src` to `dst` of IP protocol `proto` carrying `l4`.
fn ipv4(proto: u8, src: [u8; 4], dst: [u8; 4], l4: &[u8]) -> Vec<u8> {
    let len = (20 + l4.len()) as u16;
    let mut p = vec![0x45, 0];
    p.extend_from_slice(&len.to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, 0, 64, proto, 0, 0]);
    p.extend_from_slice(&src);
    p.extend_from_slice(&dst);
    p.extend_from_slice(l4);
    p
}

/// A UDP header and `payload` bytes.
fn udp(sport: u16, dport: u16, payload: usize) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend_from_slice(&sport.to_be_bytes());
    h.extend_from_slice(&dport.to_be_bytes());
    h.extend_from_slice(&((8 + payload) as u16).to_be_bytes());
    h.extend_from_slice(&[0, 0]);
    h.extend((0..payload).map(|i| i as u8));
    h
}

/// A 20-byte TCP header (SYN).
fn tcp(sport: u16, dport: u16) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend_from_slice(&sport.to_be_bytes());
    h.extend_from_slice(&dport.to_be_bytes());
    h.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0]);
    h
}

/// An IPv6 packet from ::1 to fe80::2 of next header `next` carrying `l4`.
fn ipv6(next: u8, l4: &[u8]) -> Vec<u8> {
    let mut p = vec![0x60, 0, 0, 0];
    p.extend_from_slice(&(l4.len() as u16).to_be_bytes());
    p.extend_from_slice(&[next, 64]);
    p.extend_from_slice(&std::net::Ipv6Addr::LOCALHOST.octets());
    p.extend_from_slice(&"fe80::2".parse::<std::net::Ipv6Addr>().unwrap().octets());
    p.extend_from_slice(l4);
    p
}

/// The packets every program runs on (each also the kernel's, behind an Ethernet header).
fn packets() -> Vec<Vec<u8>> {
    vec![
        ipv4(17, [10, 0, 0, 1], [10, 0, 0, 2], &udp(1234, 5201, 8)),
        ipv4(6, [10, 0, 0, 1], [10, 0, 0, 3], &tcp(40000, 80)),
        ipv4(6, [10, 0, 0, 1], [10, 0, 0, 3], &tcp(40001, 23)),
        ipv4(17, [10, 0, 0, 1], [10, 9, 9, 9], &udp(5353, 53, 20)),
        ipv4(17, [192, 168, 1, 1], [10, 0, 0, 1], &udp(53, 33000, 600)),
        ipv4(17, [192, 168, 1, 1], [10, 0, 0, 1], &udp(53, 33000, 100)),
        ipv6(17, &udp(1, 2, 4)),
        // Too short for its IP header, and for its ports.
        ipv4(6, [1, 2, 3, 4], [5, 6, 7, 8], &[])[..10].to_vec(),
        ipv4(6, [1, 2, 3, 4], [5, 6, 7, 8], &[0, 80]),
    ]
}

/// The metadata of a packet as the kernel's test run gives it: received on the loopback
/// device (ifindex 1), its protocol from the IP version.
fn meta_for(packet: &[u8]) -> SkbMeta {
    SkbMeta {
        ifindex: 1,
        protocol: bpfx::ip_ethertype(packet),
        ..SkbMeta::default()
    }
}

/// What one run gives: the return value, then the writable fields as the program left them.
type Run = (u32, u32, u32, [u32; 5], u64);

fn run_one(p: &mut Program, packet: &[u8]) -> Run {
    let mut meta = meta_for(packet);
    let sock = BpfSock::of_ip_packet(packet);
    let v = p
        .run_cgroup_skb(packet, &mut meta, &sock, &SockIds::default())
        .unwrap();
    assert_eq!(v, CgroupSkbVerdict::new(u64::from(v.code), hook(p)));
    (v.code, meta.mark, meta.priority, meta.cb, meta.tstamp)
}

fn hook(p: &Program) -> CgroupSkbHook {
    match p.context() {
        Context::CgroupSkb(h) => h,
        c => panic!("{c:?}"),
    }
}

/// Every packet through program `name` on every engine and mode (the same results
/// everywhere), with the map `map`'s entries after the runs (sorted).
/// A map's entries: key and value bytes.
type Entries = Vec<(Vec<u8>, Vec<u8>)>;

fn run_all(name: &str, map: &str) -> (Vec<Run>, Entries) {
    common::run_object_everywhere(open, name, |p, obj| {
        let runs: Vec<Run> = packets().iter().map(|pk| run_one(p, pk)).collect();
        let m = obj.map(map).unwrap();
        let mut entries: Entries = m.iter().collect();
        entries.sort();
        (runs, entries)
    })
}

fn ip(a: [u8; 4]) -> u32 {
    u32::from_le_bytes(a)
}

#[test]
fn sections_give_the_cgroup_skb_context_at_its_hook() {
    let obj = open();
    for (name, hook) in [
        ("egress_account", CgroupSkbHook::Egress),
        ("ingress_firewall", CgroupSkbHook::Ingress),
        ("legacy_allow", CgroupSkbHook::Ingress),
    ] {
        let p = obj.program(name).unwrap().load().unwrap();
        assert_eq!(p.context(), Context::CgroupSkb(hook), "{name}");
        assert_eq!(p.context().name(), "cgroup_skb");
    }
    assert_eq!(CgroupSkbHook::Egress.return_range(), (0, 3));
    assert_eq!(CgroupSkbHook::Ingress.return_range(), (0, 1));
}

#[test]
fn egress_accounts_by_protocol_marks_and_notifies_congestion() {
    let (runs, by_proto) = run_all("egress_account", "by_proto");
    let be = |v: u16| u32::from(u16::from_ne_bytes(v.to_be_bytes()));
    let l3 = |i: usize| packets()[i].len() as u32;
    let a = ip([10, 0, 0, 1]);
    // UDP to port 5201: allowed, congestion notified (3).
    assert_eq!(
        runs[0],
        (3, 17, 0, [l3(0), be(0x0800), 2, a, ip([10, 0, 0, 2])], 0)
    );
    // TCP: allowed, priority 6.
    assert_eq!(
        runs[1],
        (1, 6, 6, [l3(1), be(0x0800), 2, a, ip([10, 0, 0, 3])], 0)
    );
    // Anything to 10.9.9.9: dropped.
    assert_eq!(runs[3].0, 0);
    assert_eq!(runs[3].1, 17);
    // IPv6: the last words of the socket's addresses.
    let last = |s: &str| {
        let o = s.parse::<std::net::Ipv6Addr>().unwrap().octets();
        u32::from_le_bytes([o[12], o[13], o[14], o[15]])
    };
    assert_eq!(
        runs[6],
        (
            1,
            17,
            0,
            [l3(6), be(0x86dd), 10, last("::1"), last("fe80::2")],
            0
        )
    );
    // Too short for an IP header: allowed untouched but for cb (the socket has no addresses).
    assert_eq!(runs[7], (1, 0, 0, [10, be(0x0800), 2, 0, 0], 0));
    let count = |proto: u32| {
        by_proto
            .iter()
            .find(|(k, _)| k[..] == proto.to_le_bytes())
            .map(|(_, v)| {
                let n = |at: usize| u64::from_le_bytes(v[at..at + 8].try_into().unwrap());
                (n(0), n(8))
            })
    };
    let lens = |idx: &[usize]| idx.iter().map(|&i| u64::from(l3(i))).sum::<u64>();
    assert_eq!(count(17), Some((5, lens(&[0, 3, 4, 5, 6]))));
    assert_eq!(count(6), Some((3, lens(&[1, 2, 8]))));
    assert_eq!(count(0), None);
    assert_eq!(by_proto.len(), 2);
}

#[test]
fn ingress_drops_telnet_and_large_dns_answers_read_with_skb_load_bytes() {
    let (runs, drops) = run_all("ingress_firewall", "drops");
    let ports = |s: u32, d: u32| s << 16 | d;
    let ts = |i: usize| 1_000_000_007u64 * packets()[i].len() as u64;
    assert_eq!(runs[1], (1, 0, 0, [ports(40000, 80), 0, 0, 0, 0], ts(1)));
    assert_eq!(runs[2], (0, 0, 0, [ports(40001, 23), 0, 0, 0, 0], ts(2)));
    assert_eq!(runs[4].0, 0, "a 600-byte DNS answer");
    assert_eq!(runs[5].0, 1, "a 100-byte one");
    assert_eq!(runs[6], (1, 0, 0, [0; 5], 0), "IPv6 passes untouched");
    // Too short for the IP header or the ports: allowed, counted apart.
    assert_eq!(runs[7], (1, 0, 0, [0; 5], 0));
    assert_eq!(runs[8], (1, 0, 0, [0; 5], 0));
    let n = |slot: u32| {
        let (_, v) = drops
            .iter()
            .find(|(k, _)| k[..] == slot.to_le_bytes())
            .unwrap();
        u64::from_le_bytes(v[..8].try_into().unwrap())
    };
    assert_eq!((n(0), n(1), n(2), n(3)), (1, 1, 2, 0));
}

#[test]
fn the_legacy_section_allows_everything_counting_by_ifindex() {
    let (runs, by_ifindex) = run_all("legacy_allow", "by_ifindex");
    assert!(runs.iter().all(|r| *r == (1, 0, 0, [0; 5], 0)), "{runs:?}");
    assert_eq!(
        by_ifindex,
        [(
            1u32.to_le_bytes().to_vec(),
            (packets().len() as u64).to_le_bytes().to_vec()
        )]
    );
}

/// Each unsafe twin, the mode it is refused in, and what the error says.
const TWINS: [(u32, &str, &[Mode], &str); 4] = [
    (
        1,
        "egress_ttl",
        &MODES,
        "cannot write into packet through r",
    ),
    (
        2,
        "ingress_copy",
        &MODES,
        "cannot write into packet through r",
    ),
    (
        3,
        "ingress_classid",
        &MODES,
        "invalid access to context at offset 72 size 4",
    ),
    (
        4,
        "ingress_cn",
        &[Mode::Strict],
        "must return a value in [0, 1]",
    ),
];

#[test]
fn the_unsafe_twins_are_refused_as_the_kernel_refuses_them() {
    for (n, name, refused, why) in TWINS {
        let path = objects().join(format!("cgskb_bad_{n}.o"));
        let obj = Object::open(&path).unwrap();
        for mode in MODES {
            let got = obj.program(name).unwrap().verify(mode);
            if refused.contains(&mode) {
                let e = got
                    .err()
                    .unwrap_or_else(|| panic!("{name} {mode:?} accepted"));
                assert!(e.to_string().contains(why), "{name} {mode:?}: {e}");
            } else {
                assert!(got.is_ok(), "{name} {mode:?}");
            }
        }
        if let Some(why) = oracle::unavailable() {
            eprintln!("kernel oracle skipped for cgskb_bad_{n}: {why}");
            continue;
        }
        assert!(
            oracle::load_by_section(&path).is_err(),
            "the kernel loads cgskb_bad_{n}.o"
        );
    }
    // Checked mode runs the ingress program that returns 2: any value but 0 allows the
    // packet at ingress.
    let obj = Object::open(objects().join("cgskb_bad_4.o")).unwrap();
    for (engine, opts) in common::engines() {
        let v = obj
            .program("ingress_cn")
            .unwrap()
            .verify(Mode::Checked)
            .unwrap();
        let mut p = common::prepare(v, opts);
        let sock = BpfSock::default();
        for (len, code) in [(101, 2), (100, 1)] {
            let v = p
                .run_cgroup_skb(
                    &vec![0u8; len],
                    &mut SkbMeta::default(),
                    &sock,
                    &SockIds::default(),
                )
                .unwrap();
            assert_eq!(
                (v.code, v.allow, v.congestion),
                (code, true, false),
                "{engine}"
            );
        }
    }
}

/// A program of `text` in `section`, verified in `mode`.
fn asm(section: &str, text: &str, mode: Mode) -> Result<bpfx::Verified, bpfx::Error> {
    let obj = Vm::new()
        .object(
            vec![ProgramDef::new("p", section, common::code(text))],
            vec![],
        )
        .unwrap();
    obj.program("p").unwrap().verify(mode)
}

#[test]
fn the_socket_cookie_is_the_packets_sockets_and_tc_helpers_are_not_offered() {
    // cb[0] = the cookie's low half; allowed.
    let text = "mov r6, r1\ncall 46\nstxw [r6+48], r0\nmov r0, 1\nexit";
    let ids = SockIds {
        cookie: 0x1234_5678_9abc,
        netns_cookie: 0,
    };
    for mode in MODES {
        for (engine, opts) in common::engines() {
            let v = asm("cgroup_skb/egress", text, mode).unwrap();
            let mut p = common::prepare(v, opts);
            let mut meta = SkbMeta::default();
            let v = p
                .run_cgroup_skb(&[0x45; 20], &mut meta, &BpfSock::default(), &ids)
                .unwrap();
            assert!(v.allow && !v.congestion, "{engine}");
            assert_eq!(meta.cb[0], 0x5678_9abc, "{mode:?} {engine}");
            // A cgroup skb program is not a TC program.
            let e = p.run_tc(&mut [0u8; 20], &mut meta).unwrap_err();
            assert!(e.to_string().contains("cgroup_skb"), "{e}");
        }
        // skb_store_bytes (9) writes the packet: TC's, not offered here.
        let e = asm("cgroup_skb/ingress", "mov r2, 0\nmov r3, r10\nadd r3, -8\nstdw [r10-8], 0\nmov r4, 1\nmov r5, 0\ncall 9\nmov r0, 1\nexit", mode)
            .unwrap_err();
        assert!(
            e.to_string().contains("cannot use helper")
                && e.to_string().contains("skb_store_bytes"),
            "{e}"
        );
    }
}

#[test]
fn runs_match_the_kernels_test_run() {
    if let Some(why) = oracle::unavailable() {
        eprintln!("SKIPPED runs_match_the_kernels_test_run: {why}");
        return;
    }
    let path = objects().join("cgskb.o");
    let dir = match oracle::load_all(&path) {
        Ok(d) => d,
        Err(why) => {
            eprintln!(
                "SKIPPED runs_match_the_kernels_test_run: the kernel does not load cgskb.o: {why}"
            );
            return;
        }
    };
    let scratch = std::env::temp_dir().join(format!("bpfx-cgskb-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    let mut compared = 0;
    for name in ["egress_account", "ingress_firewall", "legacy_allow"] {
        let (ours, _) = run_all(
            name,
            match name {
                "egress_account" => "by_proto",
                "ingress_firewall" => "drops",
                _ => "by_ifindex",
            },
        );
        for (packet, ours) in packets().iter().zip(ours) {
            // The kernel's test run refuses (EINVAL) a packet shorter than its IP header.
            let header = if bpfx::ip_ethertype(packet) == 0x86dd {
                40
            } else {
                20
            };
            if packet.len() < header {
                continue;
            }
            let mut frame = vec![0u8; 12];
            frame.extend_from_slice(&bpfx::ip_ethertype(packet).to_be_bytes());
            frame.extend_from_slice(packet);
            let mut ctx = vec![0u8; bpfx::SK_BUFF_SIZE as usize];
            let (ret, out) = oracle::kernel_run_named(&dir, name, &frame, Some(&mut ctx), &scratch);
            let u32_at = |at: usize| u32::from_le_bytes(ctx[at..at + 4].try_into().unwrap());
            let kernel: Run = (
                ret,
                u32_at(8),
                u32_at(32),
                std::array::from_fn(|i| u32_at(48 + 4 * i)),
                u64::from_le_bytes(ctx[152..160].try_into().unwrap()),
            );
            assert_eq!(kernel, ours, "{name}: packet {packet:02x?}");
            let mut want = vec![0u8; 14];
            want.extend_from_slice(packet);
            assert_eq!(out, want, "{name}: the packet is read-only");
            compared += 1;
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    eprintln!("runs_match_the_kernels_test_run: {compared} runs compared with the kernel's");
}

#[test]
fn skb_load_bytes_relative_reads_from_the_network_header_and_has_no_link_layer_one() {
    // cb[0], cb[1]: the return value and the 4 bytes read from BPF_HDR_START_NET (1);
    // cb[2], cb[3]: the same from BPF_HDR_START_MAC (0).
    let text = "stdw [r10-8], 0\nmov r6, r1\n\
                mov r2, 0\nmov r3, r10\nadd r3, -8\nmov r4, 4\nmov r5, 1\ncall 68\n\
                stxw [r6+48], r0\nldxw r1, [r10-8]\nstxw [r6+52], r1\n\
                mov r1, r6\nmov r2, 0\nmov r3, r10\nadd r3, -8\nmov r4, 4\nmov r5, 0\ncall 68\n\
                stxw [r6+56], r0\nldxw r1, [r10-8]\nstxw [r6+60], r1\n\
                mov r0, 1\nexit";
    let packet = ipv4(17, [10, 0, 0, 1], [10, 0, 0, 2], &udp(1, 2, 0));
    for mode in MODES {
        for (engine, opts) in common::engines() {
            let v = asm("cgroup_skb/ingress", text, mode).unwrap();
            let mut p = common::prepare(v, opts);
            let mut meta = meta_for(&packet);
            let sock = BpfSock::of_ip_packet(&packet);
            p.run_cgroup_skb(&packet, &mut meta, &sock, &SockIds::default())
                .unwrap();
            let efault = -14i32 as u32;
            let first = u32::from_le_bytes(packet[..4].try_into().unwrap());
            assert_eq!(meta.cb[..4], [0, first, efault, 0], "{mode:?} {engine}");
        }
    }
}
