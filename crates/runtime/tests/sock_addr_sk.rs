//! `bpf_sock_addr.sk` in cgroup socket-address programs, from the clang-built
//! `tests/objects/sock_addr_sk.c` and its refused twins `sock_addr_sk_bad_N.c`, on the
//! interpreter and the JIT with every option set, in Checked and Strict mode: the socket the
//! pointer reaches (never NULL, read-only), and the uses the kernel's verifier refuses, which
//! bpfx refuses too (the kernel, where it can be asked, confirms both: its test runs do not
//! support this program type, its verifier does).

// Not every helper of `common` is used here.
#[allow(dead_code)]
mod common;

#[path = "common/oracle.rs"]
mod oracle;

use bpfx::{Mode, Object, SockAddr, SockIds};
use oracle::objects;
use std::net::{Ipv4Addr, Ipv6Addr};

const IDS: SockIds = SockIds {
    cookie: 7,
    netns_cookie: 9,
};

fn open() -> Object {
    Object::open(objects().join("sock_addr_sk.o")).unwrap()
}

fn seen(obj: &Object) -> Vec<u64> {
    let map = obj.map("seen").unwrap();
    (0u32..6)
        .map(|k| {
            let v = map.lookup(&k.to_le_bytes()).unwrap().unwrap();
            u64::from_le_bytes(v[..8].try_into().unwrap())
        })
        .collect()
}

fn addr4(port: u16, sock_type: u32, protocol: u32) -> SockAddr {
    SockAddr {
        user_family: 2,
        user_ip4: Ipv4Addr::new(10, 96, 0, 10),
        user_port: port,
        family: 2,
        sock_type,
        protocol,
        ..SockAddr::default()
    }
}

#[test]
fn connect4_reads_the_socket_it_runs_for_and_steers_only_new_tcp_sockets() {
    let out = common::run_object_everywhere(open, "connect4", |p, obj| {
        let mut tcp = addr4(80, 1, 6);
        let r_tcp = p.run_sock_addr(&mut tcp, &IDS).unwrap();
        let after_tcp = seen(obj);
        let mut udp = addr4(80, 2, 17);
        let r_udp = p.run_sock_addr(&mut udp, &IDS).unwrap();
        let mut https = addr4(443, 1, 6);
        let r_https = p.run_sock_addr(&mut https, &IDS).unwrap();
        (
            (r_tcp, tcp.user_ip4, tcp.user_port, after_tcp),
            (r_udp, udp.user_ip4, udp.user_port),
            (r_https, https.user_port),
            seen(obj),
        )
    });
    let vip = Ipv4Addr::new(10, 96, 0, 10);
    assert_eq!(
        out,
        (
            // state TCP_CLOSE (7), SOCK_STREAM, AF_INET, TCP; steered once
            (1, Ipv4Addr::LOCALHOST, 15001, vec![1, 7, 1, 2, 6, 1]),
            (1, vip, 80),
            (1, 443),
            // the last socket's fields: the HTTPS connect's; still one steered
            vec![3, 7, 1, 2, 6, 1],
        )
    );
}

#[test]
fn sendmsg6_refuses_datagrams_of_a_socket_that_is_not_udp() {
    let out = common::run_object_everywhere(open, "sendmsg6", |p, _| {
        [(2, 17), (1, 6)].map(|(ty, proto)| {
            let mut a = SockAddr {
                user_family: 10,
                user_ip6: Ipv6Addr::LOCALHOST,
                user_port: 53,
                family: 10,
                sock_type: ty,
                protocol: proto,
                ..SockAddr::default()
            };
            p.run_sock_addr(&mut a, &IDS).unwrap()
        })
    });
    assert_eq!(out, [1, 0]);
}

/// Each refused twin and the reason bpfx gives, in both modes.
const BAD: [(u32, &str); 3] = [
    (
        0,
        "insn #0: ldxw r1, [r1+64]: invalid access to context at offset 64 size 4",
    ),
    (1, "invalid sock access off=16 size=4"),
    (2, "insn #0: stxdw [r1+64], r1:"),
];

#[test]
fn uses_the_kernel_refuses_are_refused_with_the_offending_instruction() {
    for mode in [Mode::Checked, Mode::Strict] {
        for (n, why) in BAD {
            let obj = Object::open(objects().join(format!("sock_addr_sk_bad_{n}.o"))).unwrap();
            let e = obj
                .program("prog")
                .unwrap()
                .verify(mode)
                .map(|_| ())
                .expect_err(&format!("{n} {mode:?}"));
            assert!(e.to_string().contains(why), "{n} {mode:?}: {e}");
        }
    }
}

#[test]
fn the_kernel_loads_the_fixture_and_refuses_its_twins() {
    if let Some(why) = oracle::unavailable() {
        eprintln!("SKIPPED: the kernel cannot be asked: {why}");
        return;
    }
    if let Err(log) = oracle::load_all(&objects().join("sock_addr_sk.o")) {
        panic!("{log}");
    }
    for (n, _) in BAD {
        let got = oracle::load_by_section(&objects().join(format!("sock_addr_sk_bad_{n}.o")));
        assert!(got.is_err(), "case {n}: the kernel loaded it");
    }
}
