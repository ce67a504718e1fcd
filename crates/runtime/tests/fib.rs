//! `bpf_fib_lookup` (69) through the embedder's forwarding table: the kernel's return codes,
//! errnos, flags and MTU checks on `struct bpf_fib_lookup` from XDP and TC, in assembly; and a
//! clang-built XDP router (`objects/xdp_fib.c`) on a [`FibTable`], its output packets checked
//! byte for byte against packets built here, with the redirect target. Every case on the
//! interpreter and the JIT with every option set, in Checked and Strict mode.

mod common;

use bpfx::{
    FibAnswer, FibFailure, FibRequest, FibRoute, FibTable, Mode, Object, Packet, ProgramDef,
    RedirectTarget, SkbMeta, Vm, XdpAction, XdpMeta,
};
use common::{code, engines, prepare};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

const MODES: [Mode; 2] = [Mode::Checked, Mode::Strict];
const EINVAL: u64 = -22i64 as u64;
const ENODEV: u64 = -19i64 as u64;
const EAFNOSUPPORT: u64 = -97i64 as u64;

const SMAC: [u8; 6] = [0x02, 0, 0, 0, 0x07, 0x01];
const DMAC: [u8; 6] = [0x02, 0, 0, 0, 0x07, 0x02];

fn v4(a: [u8; 4]) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(a))
}

fn v6(s: &str) -> IpAddr {
    IpAddr::V6(s.parse::<Ipv6Addr>().unwrap())
}

/// A `struct bpf_fib_lookup` as a C program fills it in (UAPI layout, written out here field
/// by field).
#[derive(Clone, Copy, Default)]
struct Params {
    family: u8,
    l4_protocol: u8,
    sport: u16,
    dport: u16,
    tot_len: u16,
    ifindex: u32,
    tos: u32,
    src: [u8; 16],
    dst: [u8; 16],
    tbid: u32,
    smac: [u8; 6],
    dmac: [u8; 6],
}

impl Params {
    fn v4(src: [u8; 4], dst: [u8; 4]) -> Params {
        let mut p = Params {
            family: 2,
            ..Params::default()
        };
        p.src[..4].copy_from_slice(&src);
        p.dst[..4].copy_from_slice(&dst);
        p
    }

    fn v6(src: &str, dst: &str) -> Params {
        let s: Ipv6Addr = src.parse().unwrap();
        let d: Ipv6Addr = dst.parse().unwrap();
        Params {
            family: 10,
            src: s.octets(),
            dst: d.octets(),
            ..Params::default()
        }
    }

    fn bytes(&self) -> [u8; 64] {
        let mut b = [0u8; 64];
        b[0] = self.family;
        b[1] = self.l4_protocol;
        b[2..4].copy_from_slice(&self.sport.to_be_bytes());
        b[4..6].copy_from_slice(&self.dport.to_be_bytes());
        b[6..8].copy_from_slice(&self.tot_len.to_le_bytes());
        b[8..12].copy_from_slice(&self.ifindex.to_le_bytes());
        b[12..16].copy_from_slice(&self.tos.to_le_bytes());
        b[16..32].copy_from_slice(&self.src);
        b[32..48].copy_from_slice(&self.dst);
        b[48..52].copy_from_slice(&self.tbid.to_le_bytes());
        b[52..58].copy_from_slice(&self.smac);
        b[58..64].copy_from_slice(&self.dmac);
        b
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ctx {
    Xdp,
    Tc,
}

/// An XDP or TC program copying the `struct bpf_fib_lookup` at `data + 16` to its stack,
/// calling `fib_lookup(ctx, fp - 80, plen, *(u32 *)(data + 8))`, and copying the parameters
/// back and r0 to `data`.
fn caller(ctx: Ctx, plen: u32) -> String {
    let (data, end, verdict) = match ctx {
        Ctx::Xdp => (0, 4, 2),
        Ctx::Tc => (76, 80, 0),
    };
    let mut t = format!(
        "mov r6, r1\n\
         ldxw r7, [r6+{data}]\n\
         ldxw r8, [r6+{end}]\n\
         mov r2, r7\n\
         add r2, 96\n\
         jgt r2, r8, +{skip}\n",
        skip = 10 * 2 + 7 + 8 * 2 + 2
    );
    for i in 0..10 {
        t += &format!(
            "ldxdw r1, [r7+{}]\nstxdw [r10{}], r1\n",
            16 + 8 * i,
            -80 + 8 * i
        );
    }
    t += &format!(
        "mov r1, r6\n\
         mov r2, r10\n\
         add r2, -80\n\
         mov r3, {plen}\n\
         ldxw r4, [r7+8]\n\
         call 69\n\
         stxdw [r7+0], r0\n"
    );
    for i in 0..8 {
        t += &format!(
            "ldxdw r1, [r10{}]\nstxdw [r7+{}], r1\n",
            -80 + 8 * i,
            16 + 8 * i
        );
    }
    t += &format!("mov r0, {verdict}\nexit\nmov r0, 1\nexit");
    t
}

/// Runs the caller on every engine in both modes with a forwarding table from `vm`; r0 and
/// the parameters after, the same everywhere. `len` is the packet's length (at least 96).
fn lookup_len(
    vm: &dyn Fn() -> Vm,
    ctx: Ctx,
    params: &Params,
    flags: u32,
    plen: u32,
    len: usize,
) -> (u64, [u8; 64]) {
    let text = caller(ctx, plen);
    let mut frame = vec![0u8; len];
    frame[8..12].copy_from_slice(&flags.to_le_bytes());
    frame[16..80].copy_from_slice(&params.bytes());
    let mut seen = None;
    for mode in MODES {
        for (name, opts) in engines() {
            let section = match ctx {
                Ctx::Xdp => "xdp",
                Ctx::Tc => "tc",
            };
            let obj = vm()
                .object(vec![ProgramDef::new("p", section, code(&text))], vec![])
                .unwrap();
            let v = obj
                .program("p")
                .unwrap()
                .verify(mode)
                .unwrap_or_else(|e| panic!("{mode:?}: {e}\n{text}"));
            let mut prog = prepare(v, opts);
            let mut p = frame.clone();
            let what = format!("{ctx:?} {mode:?} {name}");
            match ctx {
                Ctx::Xdp => {
                    let meta = XdpMeta {
                        ingress_ifindex: 3,
                        ..XdpMeta::default()
                    };
                    let mut pk = Packet::new(&p);
                    let out = prog.run_xdp_packet_with(&mut pk, &meta).unwrap();
                    assert_eq!(out.action, XdpAction::Pass, "{what}");
                    p = pk.frame().to_vec();
                }
                Ctx::Tc => {
                    let v = prog.run_tc(&mut p, &mut SkbMeta::default()).unwrap();
                    assert_eq!(v.code(), 0, "{what}");
                }
            }
            let r0 = u64::from_le_bytes(p[..8].try_into().unwrap());
            let got = (r0, p[16..80].try_into().unwrap());
            match &seen {
                None => seen = Some(got),
                Some(s) => assert_eq!(*s, got, "{what}"),
            }
        }
    }
    seen.unwrap()
}

fn lookup(
    vm: &dyn Fn() -> Vm,
    ctx: Ctx,
    params: &Params,
    flags: u32,
    plen: u32,
) -> (u64, [u8; 64]) {
    lookup_len(vm, ctx, params, flags, plen, 96)
}

fn route(ifindex: u32) -> FibRoute {
    FibRoute::new(ifindex, SMAC, DMAC)
}

fn table() -> FibTable {
    FibTable::new()
        .route(
            v4([10, 1, 0, 0]),
            16,
            FibRoute {
                gateway: Some(v4([10, 1, 0, 254])),
                metric: 20,
                mtu: 1400,
                ..route(7)
            },
        )
        .route(
            v4([10, 2, 0, 0]),
            16,
            FibRoute {
                dmac: None,
                ..route(8)
            },
        )
        .route(
            v4([10, 3, 0, 0]),
            16,
            FibRoute {
                src: Some(v4([10, 3, 0, 1])),
                ..route(9)
            },
        )
        .reject(v4([10, 9, 0, 0]), 16, FibFailure::Blackhole)
        .reject(v4([10, 10, 0, 0]), 16, FibFailure::NoDevice)
        .route(
            v6("2001:db8::"),
            32,
            FibRoute {
                gateway: Some(v6("fe80::1")),
                mtu: 1280,
                ..route(11)
            },
        )
}

fn with_table() -> Vm {
    Vm::new().fib_table(table())
}

#[test]
fn without_a_table_nothing_is_forwarded_and_the_parameters_stay() {
    for ctx in [Ctx::Xdp, Ctx::Tc] {
        let p = Params::v4([10, 0, 0, 1], [10, 1, 2, 3]);
        assert_eq!(lookup(&Vm::new, ctx, &p, 0, 64), (4, p.bytes()), "{ctx:?}");
    }
}

#[test]
fn bad_sizes_flags_and_families_are_refused_as_the_kernel_does() {
    for ctx in [Ctx::Xdp, Ctx::Tc] {
        let p = Params::v4([10, 0, 0, 1], [10, 1, 2, 3]);
        assert_eq!(lookup(&with_table, ctx, &p, 0, 63), (EINVAL, p.bytes()));
        assert_eq!(
            lookup(&with_table, ctx, &p, 1 << 6, 64),
            (EINVAL, p.bytes())
        );
        let other = Params { family: 3, ..p };
        assert_eq!(
            lookup(&with_table, ctx, &other, 0, 64),
            (EAFNOSUPPORT, other.bytes())
        );
        // A larger struct is accepted (the kernel reads the first 64 bytes).
        assert_eq!(lookup(&with_table, ctx, &p, 0, 80).0, 0);
        // The embedder's "no such device" is -ENODEV, a rejecting route its code.
        let nodev = Params::v4([10, 0, 0, 1], [10, 10, 0, 1]);
        assert_eq!(lookup(&with_table, ctx, &nodev, 0, 64).0, ENODEV);
        let bh = Params::v4([10, 0, 0, 1], [10, 9, 0, 1]);
        assert_eq!(lookup(&with_table, ctx, &bh, 0, 64), (1, bh.bytes()));
        let none = Params::v4([10, 0, 0, 1], [192, 168, 0, 1]);
        assert_eq!(lookup(&with_table, ctx, &none, 0, 64), (4, none.bytes()));
    }
}

#[test]
fn a_route_writes_the_gateway_egress_metric_macs_and_mtu() {
    for ctx in [Ctx::Xdp, Ctx::Tc] {
        let p = Params {
            ifindex: 3,
            tot_len: 1000,
            tos: 0x10,
            tbid: 0xdead_beef,
            ..Params::v4([10, 0, 0, 1], [10, 1, 2, 3])
        };
        let mut want = Params {
            ifindex: 7,
            tos: 20,
            tot_len: 1400,
            tbid: 0,
            smac: SMAC,
            dmac: DMAC,
            ..p
        };
        want.dst[..4].copy_from_slice(&[10, 1, 0, 254]);
        assert_eq!(
            lookup(&with_table, ctx, &p, 0, 64),
            (0, want.bytes()),
            "{ctx:?}"
        );

        // IPv6, with a gateway.
        let p6 = Params {
            ifindex: 3,
            tot_len: 1280,
            ..Params::v6("2001:db8:1::1", "2001:db8:2::2")
        };
        let w6 = Params {
            ifindex: 11,
            dst: "fe80::1".parse::<Ipv6Addr>().unwrap().octets(),
            smac: SMAC,
            dmac: DMAC,
            ..p6
        };
        assert_eq!(
            lookup(&with_table, ctx, &p6, 0, 64),
            (0, w6.bytes()),
            "{ctx:?}"
        );
    }
}

#[test]
fn skip_neigh_no_neigh_and_src_follow_the_kernel() {
    const SKIP_NEIGH: u32 = 4;
    const SRC: u32 = 16;
    for ctx in [Ctx::Xdp, Ctx::Tc] {
        let mark = [0xee; 6];
        let p = Params {
            ifindex: 3,
            smac: mark,
            dmac: mark,
            ..Params::v4([10, 0, 0, 1], [10, 3, 4, 5])
        };
        // SKIP_NEIGH: the MACs are left alone.
        let want = Params {
            ifindex: 9,
            tot_len: 1500,
            ..p
        };
        assert_eq!(
            lookup(&with_table, ctx, &p, SKIP_NEIGH, 64),
            (0, want.bytes())
        );
        // SRC: the preferred source written.
        let mut want_src = Params {
            smac: SMAC,
            dmac: DMAC,
            ..want
        };
        want_src.src[..4].copy_from_slice(&[10, 3, 0, 1]);
        assert_eq!(lookup(&with_table, ctx, &p, SRC, 64), (0, want_src.bytes()));
        // SRC on an IPv4 route without one: IPv4 always derives a source (here 0.0.0.0).
        let q = Params {
            dst: Params::v4([0; 4], [10, 1, 0, 9]).dst,
            src: [0xcc; 16],
            ..p
        };
        let mut want_q = Params {
            ifindex: 7,
            tos: 20,
            tot_len: 1400,
            smac: SMAC,
            dmac: DMAC,
            ..q
        };
        want_q.src[..4].fill(0);
        want_q.dst[..4].copy_from_slice(&[10, 1, 0, 254]);
        assert_eq!(lookup(&with_table, ctx, &q, SRC, 64), (0, want_q.bytes()));
        // … an IPv6 one: NO_SRC_ADDR, with the gateway and the egress already written, no MACs.
        let q6 = Params {
            ifindex: 3,
            smac: mark,
            dmac: mark,
            ..Params::v6("2001:db8:1::1", "2001:db8:2::2")
        };
        let want_q6 = Params {
            ifindex: 11,
            dst: "fe80::1".parse::<Ipv6Addr>().unwrap().octets(),
            ..q6
        };
        assert_eq!(lookup(&with_table, ctx, &q6, SRC, 64), (9, want_q6.bytes()));
        // No neighbour: NO_NEIGH, with the egress written for a fallback.
        let r = Params {
            dst: Params::v4([0; 4], [10, 2, 0, 9]).dst,
            ..p
        };
        let want_r = Params { ifindex: 8, ..r };
        assert_eq!(lookup(&with_table, ctx, &r, 0, 64), (7, want_r.bytes()));
        // … and SUCCESS with SKIP_NEIGH.
        let want_r2 = Params {
            ifindex: 8,
            tot_len: 1500,
            ..r
        };
        assert_eq!(
            lookup(&with_table, ctx, &r, SKIP_NEIGH, 64),
            (0, want_r2.bytes())
        );
    }
}

#[test]
fn the_mtu_check_of_xdp_and_of_tc() {
    for ctx in [Ctx::Xdp, Ctx::Tc] {
        // tot_len above the route's MTU: FRAG_NEEDED with the MTU, nothing else written.
        let p = Params {
            ifindex: 3,
            tot_len: 1401,
            ..Params::v4([10, 0, 0, 1], [10, 1, 2, 3])
        };
        let want = Params { tot_len: 1400, ..p };
        assert_eq!(
            lookup(&with_table, ctx, &p, 0, 64),
            (8, want.bytes()),
            "{ctx:?}"
        );
        // IPv6 checks last: the gateway, metric and egress are written first.
        let p6 = Params {
            ifindex: 3,
            tot_len: 1281,
            ..Params::v6("2001:db8:1::1", "2001:db8:2::2")
        };
        let want6 = Params {
            ifindex: 11,
            tot_len: 1280,
            dst: "fe80::1".parse::<Ipv6Addr>().unwrap().octets(),
            ..p6
        };
        assert_eq!(
            lookup(&with_table, ctx, &p6, 0, 64),
            (8, want6.bytes()),
            "{ctx:?}"
        );
    }
    // TC without tot_len: the socket buffer's length against the egress device's MTU plus
    // an Ethernet header and a VLAN tag (here 100 + 18 = 118 bytes).
    let small = || {
        Vm::new().fib_table(FibTable::new().route(
            v4([10, 1, 0, 0]),
            16,
            FibRoute {
                mtu: 100,
                ..route(7)
            },
        ))
    };
    let p = Params::v4([10, 0, 0, 1], [10, 1, 2, 3]);
    let want = Params {
        ifindex: 7,
        tot_len: 100,
        smac: SMAC,
        dmac: DMAC,
        ..p
    };
    assert_eq!(
        lookup_len(&small, Ctx::Tc, &p, 0, 64, 118),
        (0, want.bytes())
    );
    assert_eq!(
        lookup_len(&small, Ctx::Tc, &p, 0, 64, 119),
        (8, want.bytes())
    );
    // From XDP the check is always tot_len's: 0 passes whatever the frame's length.
    assert_eq!(
        lookup_len(&small, Ctx::Xdp, &p, 0, 64, 119),
        (0, want.bytes())
    );
}

#[test]
fn tables_by_id_and_the_request_the_embedder_sees() {
    const DIRECT: u32 = 1;
    const OUTPUT: u32 = 2;
    const TBID: u32 = 8;
    let t100 = || Vm::new().fib_table(FibTable::with_id(100).route(v4([0; 4]), 0, route(5)));
    let p = Params {
        tbid: 100,
        ..Params::v4([10, 0, 0, 1], [10, 1, 2, 3])
    };
    let other = Params { tbid: 254, ..p };
    for ctx in [Ctx::Xdp, Ctx::Tc] {
        assert_eq!(lookup(&t100, ctx, &p, DIRECT | TBID, 64).0, 0);
        assert_eq!(lookup(&t100, ctx, &other, DIRECT | TBID, 64).0, 4);
        // TBID without DIRECT: tbid is not a table id.
        assert_eq!(lookup(&t100, ctx, &other, TBID, 64).0, 0);
    }

    let seen: Arc<Mutex<Vec<FibRequest>>> = Arc::default();
    let log = seen.clone();
    let vm = move || {
        let log = log.clone();
        Vm::new().fib(move |r| {
            log.lock().unwrap().push(r.clone());
            FibAnswer::Fail(FibFailure::ForwardingDisabled)
        })
    };
    let q = Params {
        l4_protocol: 6,
        sport: 40000,
        dport: 443,
        tot_len: 60,
        ifindex: 3,
        tos: 0x28,
        tbid: 100,
        ..Params::v4([192, 0, 2, 1], [198, 51, 100, 7])
    };
    for ctx in [Ctx::Xdp, Ctx::Tc] {
        seen.lock().unwrap().clear();
        let flags = DIRECT | OUTPUT | TBID;
        assert_eq!(lookup(&vm, ctx, &q, flags, 64), (5, q.bytes()));
        let want = FibRequest {
            src: v4([192, 0, 2, 1]),
            dst: v4([198, 51, 100, 7]),
            ifindex: 3,
            l4_protocol: 6,
            sport: 40000,
            dport: 443,
            tos_or_flowinfo: 0x28,
            tot_len: 60,
            flags,
            table: Some(100),
            mark: None,
            context: match ctx {
                Ctx::Xdp => bpfx::Context::Xdp,
                Ctx::Tc => bpfx::Context::Tc,
            },
        };
        let got = seen.lock().unwrap().clone();
        assert_eq!(got.len(), 2 * engines().len());
        assert!(got.iter().all(|r| *r == want), "{ctx:?}: {got:?}");
        assert!(want.direct() && want.output());
    }
}

#[test]
fn socket_filters_are_not_offered_fib_lookup() {
    let text = "mov r2, r10\nadd r2, -64\nmov r3, 64\nmov r4, 0\ncall 69\nmov r0, 0\nexit";
    let obj = Vm::new()
        .object(vec![ProgramDef::new("p", "socket", code(text))], vec![])
        .unwrap();
    for mode in MODES {
        let e = obj.program("p").unwrap().verify(mode).unwrap_err();
        assert!(e.to_string().contains("fib_lookup"), "{mode:?}: {e}");
    }
}

// The router fixture.

/// RFC 1071 over `b` (an even length), computed here independently of bpfx.
fn checksum(b: &[u8]) -> u16 {
    let mut sum: u32 = b
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

const IN_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x03, 0x01];
const PEER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x03, 0x02];

/// An Ethernet + IPv4 + UDP frame with `ttl` (and a correct header checksum), `pad` payload
/// bytes.
fn ipv4_frame(dst: [u8; 4], ttl: u8, dmac: [u8; 6], smac: [u8; 6], pad: usize) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dmac);
    f.extend_from_slice(&smac);
    f.extend_from_slice(&[0x08, 0x00]);
    let tot = (20 + 8 + pad) as u16;
    let mut ip = vec![0x45, 0x00];
    ip.extend_from_slice(&tot.to_be_bytes());
    ip.extend_from_slice(&[0x12, 0x34, 0x40, 0x00, ttl, 17, 0, 0]);
    ip.extend_from_slice(&[192, 0, 2, 1]);
    ip.extend_from_slice(&dst);
    let c = checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&[0x9c, 0x40, 0x00, 0x35]);
    f.extend_from_slice(&((8 + pad) as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend((0..pad).map(|i| i as u8));
    f
}

fn ipv6_frame(dst: &str, hops: u8, dmac: [u8; 6], smac: [u8; 6]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dmac);
    f.extend_from_slice(&smac);
    f.extend_from_slice(&[0x86, 0xdd]);
    f.extend_from_slice(&[0x60, 0x01, 0x23, 0x45, 0, 12, 17, hops]);
    f.extend_from_slice(&"2001:db8:1::1".parse::<Ipv6Addr>().unwrap().octets());
    f.extend_from_slice(&dst.parse::<Ipv6Addr>().unwrap().octets());
    f.extend_from_slice(&[0x9c, 0x40, 0x00, 0x35, 0, 12, 0, 0, 1, 2, 3, 4]);
    f
}

fn router_table() -> FibTable {
    FibTable::new()
        .route(v4([10, 1, 0, 0]), 16, route(7))
        .route(
            v4([10, 1, 2, 0]),
            24,
            FibRoute::new(9, [0x02, 0, 0, 0, 0x09, 0x01], [0x02, 0, 0, 0, 0x09, 0x02]),
        )
        .route(
            v4([10, 2, 0, 0]),
            16,
            FibRoute {
                dmac: None,
                ..route(8)
            },
        )
        .route(
            v4([10, 4, 0, 0]),
            16,
            FibRoute {
                mtu: 576,
                ..route(4)
            },
        )
        .reject(v4([10, 9, 0, 0]), 16, FibFailure::Unreachable)
        .route(
            v6("2001:db8:2::"),
            48,
            FibRoute::new(6, [0x02, 0, 0, 0, 0x06, 0x01], [0x02, 0, 0, 0, 0x06, 0x02]),
        )
}

#[test]
fn xdp_router_fixture_forwards_by_the_table_on_every_engine() {
    let path = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/objects/xdp_fib.o"
    ));
    let meta = XdpMeta {
        ingress_ifindex: 3,
        ..XdpMeta::default()
    };
    // (frame, verdict, redirect, frame after, code counted, last [ifindex, mtu_result]).
    struct Case {
        name: &'static str,
        frame: Vec<u8>,
        action: XdpAction,
        out: Vec<u8>,
        code: Option<usize>,
        last: Option<[u32; 2]>,
    }
    let fwd4 = |dst, ifindex: u32, smac, dmac| {
        let out = ipv4_frame(dst, 63, dmac, smac, 20);
        Case {
            name: "ipv4 forwarded",
            frame: ipv4_frame(dst, 64, IN_MAC, PEER_MAC, 20),
            action: XdpAction::Redirect,
            out,
            code: Some(0),
            last: Some([ifindex, 1500]),
        }
    };
    let unchanged = |name, frame: Vec<u8>, action, code, last| Case {
        name,
        out: frame.clone(),
        frame,
        action,
        code,
        last,
    };
    let cases = vec![
        fwd4([10, 1, 7, 7], 7, SMAC, DMAC),
        // The longer prefix wins.
        fwd4(
            [10, 1, 2, 3],
            9,
            [0x02, 0, 0, 0, 0x09, 0x01],
            [0x02, 0, 0, 0, 0x09, 0x02],
        ),
        Case {
            name: "ipv6 forwarded",
            frame: ipv6_frame("2001:db8:2::9", 64, IN_MAC, PEER_MAC),
            action: XdpAction::Redirect,
            out: ipv6_frame(
                "2001:db8:2::9",
                63,
                [0x02, 0, 0, 0, 0x06, 0x02],
                [0x02, 0, 0, 0, 0x06, 0x01],
            ),
            code: Some(0),
            last: Some([6, 1500]),
        },
        unchanged(
            "no route",
            ipv4_frame([192, 168, 1, 1], 64, IN_MAC, PEER_MAC, 0),
            XdpAction::Pass,
            Some(4),
            Some([3, 28]),
        ),
        unchanged(
            "ipv6 no route",
            ipv6_frame("2001:db8:3::1", 64, IN_MAC, PEER_MAC),
            XdpAction::Pass,
            Some(4),
            Some([3, 52]),
        ),
        unchanged(
            "no neighbour",
            ipv4_frame([10, 2, 0, 1], 64, IN_MAC, PEER_MAC, 0),
            XdpAction::Pass,
            Some(7),
            Some([8, 28]),
        ),
        unchanged(
            "fragmentation needed",
            ipv4_frame([10, 4, 0, 1], 64, IN_MAC, PEER_MAC, 600),
            XdpAction::Pass,
            Some(8),
            Some([3, 576]),
        ),
        unchanged(
            "unreachable",
            ipv4_frame([10, 9, 0, 1], 64, IN_MAC, PEER_MAC, 0),
            XdpAction::Drop,
            Some(2),
            Some([3, 28]),
        ),
        unchanged(
            "ttl expiring",
            ipv4_frame([10, 1, 7, 7], 1, IN_MAC, PEER_MAC, 0),
            XdpAction::Pass,
            None,
            None,
        ),
        unchanged(
            "not ip",
            {
                let mut f = ipv4_frame([10, 1, 7, 7], 64, IN_MAC, PEER_MAC, 0);
                f[12..14].copy_from_slice(&[0x08, 0x06]);
                f
            },
            XdpAction::Pass,
            None,
            None,
        ),
    ];
    for mode in MODES {
        for (engine, opts) in engines() {
            let obj: Object = Vm::new().fib_table(router_table()).open(&path).unwrap();
            let v = obj
                .program("xdp_router")
                .unwrap()
                .verify(mode)
                .unwrap_or_else(|e| panic!("{mode:?}: {e}"));
            let mut prog = prepare(v, opts);
            let mut counts = [0u64; 16];
            for c in &cases {
                let what = format!("{mode:?} {engine}: {}", c.name);
                let mut f = c.frame.clone();
                let got = prog.run_xdp_with(&mut f, &meta).unwrap();
                assert_eq!(got, c.action, "{what}");
                assert_eq!(f, c.out, "{what}");
                if c.action == XdpAction::Redirect {
                    assert_eq!(
                        prog.last_redirect(),
                        Some(RedirectTarget::Ifindex {
                            ifindex: c.last.unwrap()[0],
                            ingress: false
                        }),
                        "{what}"
                    );
                }
                if let Some(code) = c.code {
                    counts[code] += 1;
                }
                let last = obj.map("last").unwrap().lookup(&[0; 4]).unwrap().unwrap();
                if let Some(l) = c.last {
                    let want: Vec<u8> = l.iter().flat_map(|x| x.to_le_bytes()).collect();
                    assert_eq!(last, want, "{what}");
                }
            }
            let results: Vec<u64> = obj
                .map("results")
                .unwrap()
                .iter()
                .map(|(_, v)| u64::from_le_bytes(v[..8].try_into().unwrap()))
                .collect();
            assert_eq!(results, counts, "{mode:?} {engine}");
        }
    }
}

#[test]
fn the_mark_flag_hands_the_embedder_the_mark() {
    const MARK: u32 = 1 << 5;
    let seen: Arc<Mutex<Vec<Option<u32>>>> = Arc::default();
    let log = seen.clone();
    let vm = move || {
        let log = log.clone();
        Vm::new().fib(move |r| {
            log.lock().unwrap().push(r.mark);
            FibAnswer::Fail(FibFailure::NotForwarded)
        })
    };
    // `mark` shares its bytes with the start of `smac`.
    let p = Params {
        smac: [0x78, 0x56, 0x34, 0x12, 0xff, 0xff],
        ..Params::v4([10, 0, 0, 1], [10, 1, 2, 3])
    };
    for ctx in [Ctx::Xdp, Ctx::Tc] {
        for (flags, want) in [(MARK, Some(0x1234_5678)), (0, None)] {
            seen.lock().unwrap().clear();
            assert_eq!(lookup(&vm, ctx, &p, flags, 64), (4, p.bytes()));
            let got = seen.lock().unwrap().clone();
            assert!(!got.is_empty() && got.iter().all(|m| *m == want), "{got:?}");
        }
    }
}
