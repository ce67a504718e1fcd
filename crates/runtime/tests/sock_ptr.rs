//! Socket pointers from clang-built fixtures, on every engine and JIT option set in both
//! modes:
//!
//! - `objects/sk_steer.c`: a TC program steering TCP packets to the established socket their
//!   tuple reaches or to a local listener (`skc_lookup_tcp`, the socket's `state` and
//!   `src_port`, `tcp_sock`'s `snd_cwnd`, `sk_assign` at ingress and at egress,
//!   `sk_release`); a TC program finding a UDP packet's owner in the current namespace or in
//!   one named by id (`sk_lookup_udp`); an XDP program dropping TCP packets no socket takes
//!   (`sk_lookup_tcp`);
//! - `objects/cgskb_sk.c`: a cgroup_skb program reading the packet's socket (`skb->sk`,
//!   `sk_fullsock`, `tcp_sock`), with a full TCP socket, a time-wait one and none;
//! - `objects/sk_filter_sock.c`: a socket filter and an sk_skb verdict program deciding by the
//!   packet's socket (`skb->sk`);
//! - `objects/sk_connect.c`: a cgroup connect4 program sending TCP connects to a port some
//!   socket listens on at the wildcard address to 127.0.0.1 (`sk_lookup_tcp`);
//! - `objects/sk_bad_N.c`: the unsafe twins (a reference not released on one path, a field
//!   read before the null check, a field read after the release, a read past the struct),
//!   refused in both modes as the kernel refuses them (`tests/sock_ptr_oracle.rs`).

// Not every helper of `common` is used here.
#[allow(dead_code)]
mod common;

use bpfx::{
    BpfSock, BpfTcpSock, CgroupSkbVerdict, Mode, Object, Program, SkbMeta, SockAddr, SockIds,
    Socket, SocketId, SocketTable, TCP_ESTABLISHED, TCP_LISTEN, TCP_TIME_WAIT, TcAction, Vm,
    XdpAction,
};
use common::{engines, prepare};
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

const MODES: [Mode; 2] = [Mode::Checked, Mode::Strict];

fn object(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/objects")).join(name)
}

fn v4(a: [u8; 4]) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(a))
}

const CLIENT: [u8; 4] = [10, 0, 0, 1];
const SERVER: [u8; 4] = [10, 0, 0, 2];

/// An Ethernet frame carrying an IPv4 packet from `src` to `dst` of protocol `proto` with the
/// L4 header `l4`.
fn frame(proto: u8, src: [u8; 4], dst: [u8; 4], l4: &[u8]) -> Vec<u8> {
    let mut f = vec![0u8; 12];
    f.extend_from_slice(&[0x08, 0x00]);
    let len = (20 + l4.len()) as u16;
    f.extend_from_slice(&[0x45, 0]);
    f.extend_from_slice(&len.to_be_bytes());
    f.extend_from_slice(&[0, 0, 0, 0, 64, proto, 0, 0]);
    f.extend_from_slice(&src);
    f.extend_from_slice(&dst);
    f.extend_from_slice(l4);
    f
}

fn tcp(sport: u16, dport: u16) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend_from_slice(&sport.to_be_bytes());
    h.extend_from_slice(&dport.to_be_bytes());
    h.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x10, 0xff, 0xff, 0, 0, 0, 0]);
    h
}

fn udp(sport: u16, dport: u16) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend_from_slice(&sport.to_be_bytes());
    h.extend_from_slice(&dport.to_be_bytes());
    h.extend_from_slice(&[0, 8, 0, 0]);
    h
}

/// The server's sockets: an established connection 10.0.0.2:80 ← 10.0.0.1:5555, a listener
/// on 10.0.0.2:4321 (congestion window 10), a listener on port 80 of the wildcard address
/// (congestion window 7), a UDP socket 10.0.0.2:53 connected to 10.0.0.1:7777, and a UDP
/// socket on 10.0.0.2:53 of another namespace (cookie 99, id 5 from the programs' one) bound
/// only. Their ids in that order.
fn table() -> SocketTable {
    let mut t = SocketTable::new().netns_id(5, 99);
    let mut est = Socket::tcp((v4(SERVER), 80), (v4(CLIENT), 5555), TCP_ESTABLISHED);
    est.tcp.snd_cwnd = 32;
    t.add(est);
    let mut ln = Socket::tcp((v4(SERVER), 4321), (v4([0; 4]), 0), TCP_LISTEN);
    ln.tcp.snd_cwnd = 10;
    t.add(ln);
    let mut any = Socket::tcp((v4([0; 4]), 80), (v4([0; 4]), 0), TCP_LISTEN);
    any.tcp.snd_cwnd = 7;
    t.add(any);
    t.add(Socket::udp((v4(SERVER), 53), (v4(CLIENT), 7777)));
    let mut other = Socket::udp((v4(SERVER), 53), (v4([0; 4]), 0));
    other.netns = 99;
    t.add(other);
    t
}

/// What a TC run of the steering programs gives: the verdict, `mark`, `cb[]` and the
/// assigned socket.
#[derive(Debug, PartialEq)]
struct Tc {
    action: TcAction,
    mark: u32,
    cb: [u32; 5],
    assigned: Option<SocketId>,
}

/// Program `name` of `sk_steer.o` run as TC on `frame` (with `cb`, at ingress or egress) on
/// every engine in both modes, with the sockets of `table` (or none); every run agrees.
fn steer_run(
    table: Option<SocketTable>,
    name: &str,
    frame: &[u8],
    cb: [u32; 5],
    ingress: bool,
) -> Tc {
    let vm = match table {
        Some(t) => Vm::new().sockets(t),
        None => Vm::new(),
    };
    everywhere(&vm, "sk_steer.o", name, |prog| {
        prog.set_tc_ingress(ingress);
        let meta = SkbMeta {
            cb,
            ..SkbMeta::default()
        };
        let out = prog.run_tc_outcome(&mut frame.to_vec(), &meta).unwrap();
        Tc {
            action: out.action,
            mark: out.meta.mark,
            cb: out.meta.cb,
            assigned: out.assigned,
        }
    })
}

/// `f` on program `name` of object `file` opened by `vm`, on every engine in both modes,
/// asserting every run gives the same.
fn everywhere<T: PartialEq + std::fmt::Debug>(
    vm: &Vm,
    file: &str,
    name: &str,
    f: impl Fn(&mut Program) -> T,
) -> T {
    let mut seen = None;
    for mode in MODES {
        for (engine, opts) in engines() {
            let obj: Object = vm.open(object(file)).unwrap();
            let v = obj
                .program(name)
                .unwrap()
                .verify(mode)
                .unwrap_or_else(|e| panic!("{name} {mode:?}: {e}"));
            let mut prog = prepare(v, opts);
            let got = f(&mut prog);
            match &seen {
                None => seen = Some(got),
                Some(s) => assert_eq!(s, &got, "{name} {mode:?} {engine}"),
            }
        }
    }
    seen.unwrap()
}

#[test]
fn steer_assigns_the_established_socket_at_ingress() {
    let f = frame(6, CLIENT, SERVER, &tcp(5555, 80));
    let out = steer_run(Some(table()), "steer", &f, [0; 5], true);
    assert_eq!(
        out,
        Tc {
            action: TcAction::Ok,
            mark: 0,
            cb: [TCP_ESTABLISHED, 0, 80, 32, 0],
            assigned: Some(SocketId(0)),
        }
    );
}

#[test]
fn steer_falls_back_to_the_listener_and_checks_its_state() {
    // Another client port: no connection, so the listener of port 4321 on the destination.
    let f = frame(6, CLIENT, SERVER, &tcp(6000, 80));
    let out = steer_run(Some(table()), "steer", &f, [0; 5], true);
    assert_eq!(
        out,
        Tc {
            action: TcAction::Ok,
            mark: 0,
            cb: [TCP_LISTEN, 0, 4321, 10, 0],
            assigned: Some(SocketId(1)),
        }
    );
    // At egress sk_assign fails with -EOPNOTSUPP: the packet is dropped, nothing assigned.
    let out = steer_run(Some(table()), "steer", &f, [0; 5], false);
    assert_eq!(
        out,
        Tc {
            action: TcAction::Shot,
            mark: 0,
            cb: [TCP_LISTEN, (-95i32) as u32, 4321, 10, 0],
            assigned: None,
        }
    );
    // To another address: the wildcard listener is on port 80, not 4321: nothing.
    let f = frame(6, CLIENT, [10, 0, 0, 3], &tcp(6000, 80));
    let out = steer_run(Some(table()), "steer", &f, [0; 5], true);
    assert_eq!(out.action, TcAction::Unspec);
    assert_eq!((out.cb[0], out.assigned), (0, None));
}

#[test]
fn steer_with_no_sockets_finds_nothing() {
    for f in [
        frame(6, CLIENT, SERVER, &tcp(5555, 80)),
        frame(17, CLIENT, SERVER, &udp(5555, 80)),
    ] {
        for t in [None, Some(SocketTable::new())] {
            let out = steer_run(t, "steer", &f, [0; 5], true);
            assert_eq!(
                out,
                Tc {
                    action: TcAction::Unspec,
                    mark: 0,
                    cb: [0; 5],
                    assigned: None,
                }
            );
        }
    }
}

#[test]
fn udp_owner_in_the_current_namespace_or_one_named_by_id() {
    let f = frame(17, CLIENT, SERVER, &udp(7777, 53));
    // The current namespace: the connected socket.
    let out = steer_run(Some(table()), "udp_owner", &f, [u32::MAX, 0, 0, 0, 0], true);
    assert_eq!(out.action.code(), 1);
    assert_eq!(out.mark, 53 << 16 | 7777);
    assert_eq!(out.cb[1..3], [2, u32::from_le_bytes(CLIENT)]);
    // Namespace id 5: the bound socket there (no remote end).
    let out = steer_run(Some(table()), "udp_owner", &f, [5, 0, 0, 0, 0], true);
    assert_eq!((out.action.code(), out.mark), (1, 53 << 16));
    // An id that names no namespace, and a packet from another port of the client (the
    // connected socket does not take it, and the current namespace has no bound one).
    let out = steer_run(Some(table()), "udp_owner", &f, [6, 0, 0, 0, 0], true);
    assert_eq!((out.action.code(), out.mark), (0, 0));
    let f = frame(17, CLIENT, SERVER, &udp(7778, 53));
    let out = steer_run(Some(table()), "udp_owner", &f, [u32::MAX, 0, 0, 0, 0], true);
    assert_eq!((out.action.code(), out.mark), (0, 0));
}

#[test]
fn xdp_drops_what_no_socket_takes() {
    let vm = Vm::new().sockets(table());
    for (f, want) in [
        (frame(6, CLIENT, SERVER, &tcp(5555, 80)), XdpAction::Pass),
        // The wildcard listener on port 80 takes a connection to any address.
        (
            frame(6, CLIENT, [10, 0, 0, 9], &tcp(1, 80)),
            XdpAction::Pass,
        ),
        (frame(6, CLIENT, SERVER, &tcp(5555, 81)), XdpAction::Drop),
        (frame(17, CLIENT, SERVER, &udp(5555, 81)), XdpAction::Pass),
    ] {
        let got = everywhere(&vm, "sk_steer.o", "xdp_closed_port", |prog| {
            let mut p = bpfx::Packet::new(&f);
            prog.run_xdp_packet(&mut p).unwrap().action
        });
        assert_eq!(got, want);
    }
}

/// The cgroup_skb program run on an IPv4 TCP packet with the packet's socket `sk` of
/// `table` (or none): its verdict, `mark` and `cb[]`.
fn cgskb_run(table: SocketTable, sk: Option<SocketId>) -> (CgroupSkbVerdict, u32, [u32; 5]) {
    let vm = Vm::new().sockets(table);
    let packet = frame(6, SERVER, CLIENT, &tcp(80, 5555))[14..].to_vec();
    everywhere(&vm, "cgskb_sk.o", "egress_sock", |prog| {
        prog.set_packet_socket(sk);
        let mut meta = SkbMeta::default();
        let v = prog
            .run_cgroup_skb(&packet, &mut meta, &BpfSock::default(), &SockIds::default())
            .unwrap();
        (v, meta.mark, meta.cb)
    })
}

#[test]
fn cgroup_skb_reads_the_packets_socket() {
    let mut t = SocketTable::new();
    let mut s = Socket::tcp((v4(SERVER), 80), (v4(CLIENT), 5555), TCP_ESTABLISHED);
    s.sock.mark = 41;
    s.tcp = BpfTcpSock {
        srtt_us: 1234,
        ..BpfTcpSock::default()
    };
    let id = t.add(s);
    let tw = t.add(Socket::tcp(
        (v4(SERVER), 80),
        (v4(CLIENT), 5556),
        TCP_TIME_WAIT,
    ));
    let (v, mark, cb) = cgskb_run(t.clone(), Some(id));
    assert_eq!(v.code, 1);
    assert_eq!((mark, cb), (42, [2, 80, 5555, TCP_ESTABLISHED, 1234]));
    // A time-wait socket: its common fields read, then refused.
    let (v, mark, cb) = cgskb_run(t.clone(), Some(tw));
    assert_eq!((v.code, mark), (0, 0));
    assert_eq!(cb[..4], [2, 80, 5556, TCP_TIME_WAIT]);
    // No socket (or one the table does not hold): skb->sk is NULL.
    for sk in [None, Some(SocketId(7))] {
        let (v, mark, cb) = cgskb_run(t.clone(), sk);
        assert_eq!((v.code, mark, cb), (1, 0, [0; 5]));
    }
}

#[test]
fn the_unsafe_twins_are_refused_in_both_modes() {
    for (n, why) in [
        (1, "the socket reference acquired at insn #"),
        (2, "may be null"),
        (3, "is a socket whose reference, acquired at insn #"),
        (4, "invalid sock access off=80 size=4"),
    ] {
        let obj = Object::open(object(&format!("sk_bad_{n}.o"))).unwrap();
        for mode in MODES {
            let e = obj
                .program("bad")
                .unwrap()
                .verify(mode)
                .map(|_| ())
                .expect_err("refused")
                .to_string();
            assert!(e.contains(why), "sk_bad_{n} {mode:?}: {e}");
        }
    }
}

#[test]
fn connect4_goes_to_a_local_listener() {
    let vm = Vm::new().sockets(table());
    for (port, sock_type, want) in [
        // The wildcard listener of port 80.
        (80, 1, Ipv4Addr::LOCALHOST),
        // Port 4321's listener is bound to 10.0.0.2 only; nothing listens on 81.
        (4321, 1, Ipv4Addr::new(192, 0, 2, 7)),
        (81, 1, Ipv4Addr::new(192, 0, 2, 7)),
        // Not a stream socket.
        (80, 2, Ipv4Addr::new(192, 0, 2, 7)),
    ] {
        let got = everywhere(&vm, "sk_connect.o", "to_local_listener", |prog| {
            let mut addr = SockAddr {
                user_family: 2,
                user_ip4: Ipv4Addr::new(192, 0, 2, 7),
                user_port: port,
                family: 2,
                sock_type,
                protocol: if sock_type == 1 { 6 } else { 17 },
                ..SockAddr::default()
            };
            let r = prog.run_sock_addr(&mut addr, &SockIds::default()).unwrap();
            (r, addr.user_ip4)
        });
        assert_eq!(got, (1, want), "port {port} type {sock_type}");
    }
}

#[test]
fn socket_filters_and_sk_skb_read_the_packets_socket() {
    let mut t = SocketTable::new();
    let v6 = |port, state| {
        Socket::tcp(
            (IpAddr::V6(std::net::Ipv6Addr::LOCALHOST), port),
            (IpAddr::V6(std::net::Ipv6Addr::LOCALHOST), 40000),
            state,
        )
    };
    let https = t.add(v6(443, TCP_ESTABLISHED));
    let other = t.add(v6(8443, TCP_ESTABLISHED));
    let v4 = t.add(Socket::tcp(
        (v4(SERVER), 443),
        (v4(CLIENT), 1),
        TCP_ESTABLISHED,
    ));
    let tw = t.add(v6(443, TCP_TIME_WAIT));
    let vm = Vm::new().sockets(t);
    let packet = frame(6, CLIENT, SERVER, &tcp(1, 443));
    for (sk, kept) in [
        (Some(https), packet.len()),
        (Some(other), 0),
        (Some(v4), 0),
        (None, 0),
    ] {
        let got = everywhere(&vm, "sk_filter_sock.o", "ipv6_sockets_only", |prog| {
            prog.set_packet_socket(sk);
            prog.run_socket(&packet, &SkbMeta::default()).unwrap().kept
        });
        assert_eq!(got, kept, "{sk:?}");
    }
    for (sk, pass) in [(Some(https), true), (Some(tw), false), (None, false)] {
        let got = everywhere(&vm, "sk_filter_sock.o", "established_only", |prog| {
            prog.set_packet_socket(sk);
            let mut data = packet.clone();
            let out = prog
                .run_sk_skb(
                    &mut data,
                    &mut SkbMeta::default(),
                    &BpfSock::default(),
                    &SockIds::default(),
                )
                .unwrap();
            out.action
        });
        assert_eq!(got == bpfx::SkAction::Pass, pass, "{sk:?}: {got:?}");
    }
}
