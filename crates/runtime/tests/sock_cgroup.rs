//! Cgroup socket-address, cgroup socket, sock_ops and perf event programs, from the clang-built
//! `tests/objects/sock_cgroup.c` and the one-access objects `sock_access_N.o`, on the
//! interpreter and the JIT with every option set, in Checked and Strict mode: the addresses
//! they rewrite, the socket fields they set, the verdicts, the socket helpers, and the accesses
//! the verifier refuses as the kernel does (which the kernel, where it can be asked, confirms:
//! its test runs do not support these program types, its verifier does).

// Not every helper of `common` is used here.
#[allow(dead_code)]
mod common;

#[path = "common/oracle.rs"]
mod oracle;

use bpfx::{
    BpfSock, Context, Error, Mode, Object, PerfEventData, PerfEventValue, Program, ProgramDef,
    PtRegs, RunError, SOCK_OPS_TXHASH, SockAddr, SockAddrHook, SockHook, SockIds, SockOps, Vm,
};
use common::{code, engines, prepare};
use oracle::objects;
use std::net::{Ipv4Addr, Ipv6Addr};

const MODES: [Mode; 2] = [Mode::Checked, Mode::Strict];
const EINVAL: u32 = -22i32 as u32;
const IDS: SockIds = SockIds {
    cookie: 0xc00c1e,
    netns_cookie: 0x4e75,
};

fn open() -> Object {
    Object::open(objects().join("sock_cgroup.o")).unwrap()
}

/// Runs `f` on program `name` of a fresh `sock_cgroup.o` on every engine in both modes; each
/// result (with the object, for its maps) must be the same everywhere.
fn each<T: PartialEq + std::fmt::Debug>(name: &str, f: impl Fn(&mut Program, &Object) -> T) -> T {
    common::run_object_everywhere(open, name, f)
}

fn u64_at(obj: &Object, map: &str, key: &[u8]) -> Option<u64> {
    let v = obj.map(map).unwrap().lookup(key).unwrap()?;
    Some(u64::from_le_bytes(v[..8].try_into().unwrap()))
}

#[test]
fn sections_give_the_socket_contexts() {
    let obj = open();
    for (name, ctx) in [
        ("connect4", Context::SockAddr(SockAddrHook::Connect4)),
        ("connect6", Context::SockAddr(SockAddrHook::Connect6)),
        ("sendmsg4", Context::SockAddr(SockAddrHook::SendMsg4)),
        ("sock_create", Context::Sock(SockHook::Create)),
        ("post_bind4", Context::Sock(SockHook::PostBind4)),
        ("tcp_events", Context::SockOps),
        ("perf_sample", Context::PerfEvent),
    ] {
        assert!(obj.program_status(name).is_ok(), "{name}");
        assert_eq!(
            obj.program(name).unwrap().load().unwrap().context(),
            ctx,
            "{name}"
        );
    }
    for (section, ctx) in [
        ("cgroup/bind6", Context::SockAddr(SockAddrHook::Bind6)),
        (
            "cgroup/getsockname_unix",
            Context::SockAddr(SockAddrHook::GetSockNameUnix),
        ),
        ("cgroup/recvmsg4", Context::SockAddr(SockAddrHook::RecvMsg4)),
        ("cgroup/sock", Context::Sock(SockHook::Create)),
        ("cgroup/sock_release", Context::Sock(SockHook::Release)),
        ("cgroup/post_bind6", Context::Sock(SockHook::PostBind6)),
        // The kernel samples' names, which libbpf before 1.0 matched by prefix.
        ("cgroup/sock1", Context::Sock(SockHook::Create)),
        ("sockops", Context::SockOps),
        ("perf_event", Context::PerfEvent),
        ("cgroup/sysctl", Context::CgroupSysctl),
        ("cgroup/dev", Context::CgroupDevice),
    ] {
        assert_eq!(Context::for_section(section), ctx, "{section}");
    }
    for (name, ctx) in [
        ("connect4", Context::SockAddr(SockAddrHook::Connect4)),
        ("cgroup/sendmsg6", Context::SockAddr(SockAddrHook::SendMsg6)),
        ("post_bind4", Context::Sock(SockHook::PostBind4)),
        ("sockops", Context::SockOps),
        ("perf_event", Context::PerfEvent),
    ] {
        assert_eq!(Context::parse(name), Some(ctx), "{name}");
    }
}

fn tcp4(ip: [u8; 4], port: u16) -> SockAddr {
    SockAddr {
        user_family: 2,
        user_ip4: Ipv4Addr::from(ip),
        user_port: port,
        family: 2,
        sock_type: 1,
        protocol: 6,
        ..SockAddr::default()
    }
}

#[test]
fn connect4_sends_the_service_to_its_backend_and_refuses_telnet() {
    let out = each("connect4", |p, obj| {
        let mut results = Vec::new();
        for (ip, port) in [
            ([10, 96, 0, 10], 80),
            ([10, 96, 0, 10], 443),
            ([10, 96, 0, 11], 80),
            ([192, 0, 2, 1], 23),
        ] {
            let mut a = tcp4(ip, port);
            let r0 = p.run_sock_addr(&mut a, &IDS).unwrap();
            results.push((r0, a.user_ip4, a.user_port));
        }
        // The same service over UDP is left alone.
        let mut udp = tcp4([10, 96, 0, 10], 80);
        udp.protocol = 17;
        let r0 = p.run_sock_addr(&mut udp, &IDS).unwrap();
        results.push((r0, udp.user_ip4, udp.user_port));
        let count = u64_at(obj, "redirected", &IDS.cookie.to_le_bytes());
        (results, count)
    });
    let backend = Ipv4Addr::new(192, 168, 1, 20);
    assert_eq!(
        out,
        (
            vec![
                (1, backend, 8080),
                (1, Ipv4Addr::new(10, 96, 0, 10), 443),
                (1, Ipv4Addr::new(10, 96, 0, 11), 80),
                (0, Ipv4Addr::new(192, 0, 2, 1), 23),
                (1, Ipv4Addr::new(10, 96, 0, 10), 80),
            ],
            Some(1)
        )
    );
}

#[test]
fn connect6_and_sendmsg4_rewrite_only_what_their_hook_has() {
    let service: Ipv6Addr = "fd00::10".parse().unwrap();
    let out = each("connect6", |p, _| {
        [service, "fd00::11".parse().unwrap()].map(|ip| {
            let mut a = SockAddr {
                user_family: 10,
                user_ip6: ip,
                user_port: 5000,
                ..SockAddr::default()
            };
            let r0 = p.run_sock_addr(&mut a, &IDS).unwrap();
            (r0, a.user_ip6, a.user_port)
        })
    });
    assert_eq!(
        out,
        [
            (1, "fd00::20".parse().unwrap(), 5000),
            (1, "fd00::11".parse().unwrap(), 5000)
        ]
    );
    let out = each("sendmsg4", |p, _| {
        [(2, 53), (1, 53), (2, 54)].map(|(ty, port)| {
            let mut a = tcp4([8, 8, 8, 8], port);
            a.sock_type = ty;
            let r0 = p.run_sock_addr(&mut a, &IDS).unwrap();
            (r0, a.msg_src_ip4)
        })
    });
    let any = Ipv4Addr::UNSPECIFIED;
    assert_eq!(out, [(1, Ipv4Addr::new(10, 0, 0, 53)), (1, any), (1, any)]);
}

#[test]
fn sock_create_marks_udp_and_refuses_raw_sockets_post_bind_guards_ports() {
    let out = each("sock_create", |p, _| {
        [(2, 17), (1, 6), (3, 255)].map(|(ty, proto)| {
            let mut sk = BpfSock {
                family: 2,
                sock_type: ty,
                protocol: proto,
                priority: 1,
                ..BpfSock::default()
            };
            let r0 = p.run_sock(&mut sk, &IDS).unwrap();
            (r0, sk.mark, sk.priority)
        })
    });
    assert_eq!(out, [(1, 0x77, 6), (1, 0, 1), (0, 0, 1)]);
    let out = each("post_bind4", |p, _| {
        [
            ([0, 0, 0, 0], 8080),
            ([127, 0, 0, 1], 53),
            ([0, 0, 0, 0], 53),
            ([127, 0, 0, 1], 80),
        ]
        .map(|(ip, port)| {
            let mut sk = BpfSock {
                family: 2,
                src_ip4: Ipv4Addr::from(ip),
                src_port: port,
                ..BpfSock::default()
            };
            p.run_sock(&mut sk, &IDS).unwrap()
        })
    });
    assert_eq!(out, [1, 1, 0, 0]);
}

fn event(op: u32, remote_port: u16, fullsock: bool, cb_flags: u32) -> SockOps {
    let mut o = SockOps {
        op,
        family: 2,
        remote_port,
        is_fullsock: fullsock,
        ..SockOps::default()
    };
    o.tcp[bpfx::SOCK_OPS_CB_FLAGS] = cb_flags;
    o
}

#[test]
fn sockops_answers_the_syn_timeout_and_asks_for_callbacks() {
    let out = each("tcp_events", |p, obj| {
        let mut seen = Vec::new();
        for o in [
            event(1, 443, false, 0),
            event(1, 80, false, 0),
            // Active established on a full socket with the RTO callback already asked for.
            event(4, 443, true, 1),
            // Passive established on a request socket: the helper refuses.
            event(5, 443, false, 0),
        ] {
            let mut o = o;
            let r0 = p.run_sock_ops(&mut o, &IDS).unwrap();
            seen.push((r0, o.reply(), o.cb_flags(), o.tcp[SOCK_OPS_TXHASH]));
        }
        let ops: Vec<Option<u64>> = (0u32..6)
            .map(|k| u64_at(obj, "ops", &k.to_le_bytes()))
            .collect();
        (seen, ops, u64_at(obj, "ops", &15u32.to_le_bytes()))
    });
    assert_eq!(
        out.0,
        [
            (1, 250, 0, 0),
            (1, u32::MAX, 0, 0),
            // RTO | STATE | RTT set, every bit could be; the field reads the new flags.
            (1, 0, 0b1101, 0b1101),
            (1, EINVAL, 0, 0),
        ]
    );
    assert_eq!(
        out.1,
        [Some(0), Some(2), Some(0), Some(0), Some(1), Some(1)]
    );
    assert_eq!(out.2, Some(IDS.netns_cookie));
}

#[test]
fn perf_event_counts_samples_and_reads_the_counter() {
    let out = each("perf_sample", |p, obj| {
        let value = PerfEventValue {
            counter: 123_456,
            enabled: 1000,
            running: 900,
        };
        for ip in [0xffff_ffff_8100_0010u64, 0xffff_ffff_8100_0010, 0x4000] {
            let d = PerfEventData {
                regs: PtRegs {
                    ip,
                    ..PtRegs::default()
                },
                sample_period: 10_000,
                addr: 0,
            };
            assert_eq!(p.run_perf_event(&d, &value).unwrap(), 0);
        }
        let per = |ip: u64| u64_at(obj, "samples", &ip.to_le_bytes());
        let slot = |k: u32| u64_at(obj, "periods", &k.to_le_bytes());
        (
            per(0xffff_ffff_8100_0010),
            per(0x4000),
            slot(0),
            slot(1),
            slot(2),
        )
    });
    assert_eq!(
        out,
        (Some(2), Some(1), Some(30_000), Some(123_456), Some(900))
    );
}

/// Verifies `sock_access_<n>.o` in `mode`.
fn access(n: u32, mode: Mode) -> Result<bpfx::Verified, Error> {
    let obj = Object::open(objects().join(format!("sock_access_{n}.o"))).unwrap();
    obj.program("prog").unwrap().verify(mode)
}

/// What bpfx says of each one-access object: refused with the reason (in every mode but the
/// return range, which Strict mode checks), or accepted.
const ACCESS: [(u32, Option<&str>); 15] = [
    (
        0,
        Some("insn #1: stxw [r1+0], r2: write to the read-only context field at offset 0"),
    ),
    (
        1,
        Some("insn #0: ldxw r1, [r1+8]: invalid access to context at offset 8 size 4"),
    ),
    (
        2,
        Some("insn #0: ldxw r1, [r1+44]: invalid access to context at offset 44 size 4"),
    ),
    (3, Some("invalid access to context at offset 16 size 4")),
    (
        4,
        Some("write to the read-only context field at offset 0 size 4"),
    ),
    (
        5,
        Some("insn #0: ldxh r0, [r1+20]: invalid access to context at offset 20 size 2"),
    ),
    (
        6,
        Some("write to the read-only context field at offset 168 size 8"),
    ),
    (7, Some("invalid access to context at offset 72 size 4")),
    (8, Some("invalid access to context at offset 44 size 8")),
    (9, None),
    (10, None),
    (11, None),
    (12, None),
    (13, None),
    (14, Some("this program type must return a value in [0, 1]")),
];

#[test]
fn accesses_the_kernel_refuses_are_refused_with_the_offending_instruction() {
    for mode in MODES {
        for (n, why) in ACCESS {
            let got = access(n, mode);
            match why {
                Some(_) if n == 14 && mode == Mode::Checked => {
                    assert!(got.is_ok(), "{n} {mode:?}");
                }
                Some(why) => {
                    let e = got.map(|_| ()).expect_err(&format!("{n} {mode:?}"));
                    assert!(e.to_string().contains(why), "{n} {mode:?}: {e}");
                }
                None => {
                    got.unwrap_or_else(|e| panic!("{n} {mode:?}: {e}"));
                }
            }
        }
    }
}

#[test]
fn the_kernel_agrees_on_which_accesses_it_allows() {
    if let Some(why) = oracle::unavailable() {
        eprintln!("SKIPPED: the kernel cannot be asked: {why}");
        return;
    }
    for (n, why) in ACCESS {
        let path = objects().join(format!("sock_access_{n}.o"));
        // The section gives the type and the expected attach type (libbpf's table).
        let got = oracle::load_by_section(&path);
        assert_eq!(
            got.is_ok(),
            why.is_none(),
            "case {n}: {}",
            got.err().unwrap_or_default()
        );
    }
    // The fixture's programs all load.
    if let Err(log) = oracle::load_all(&objects().join("sock_cgroup.o")) {
        panic!("{log}");
    }
}

/// Verifies hand-written `text` under `context` in `mode`.
fn verify(text: &str, context: Context, mode: Mode) -> Result<bpfx::Verified, Error> {
    let obj = Vm::new()
        .object(vec![ProgramDef::new("p", "test", code(text))], vec![])
        .unwrap();
    obj.program("p").unwrap().context(context).verify(mode)
}

#[test]
fn narrow_and_wide_accesses_read_and_write_the_bytes_they_name() {
    // A narrow read of user_ip6 (byte 5 of the address) and a wide one (the half at 16:
    // words 2 and 3) copied into msg_src_ip6 (a word at 44, the half at 48), then an 8-byte
    // store over user_ip6's first half and a 4-byte one into user_port.
    let text = "ldxb r2, [r1+13]\n\
                ldxdw r3, [r1+16]\n\
                stxw [r1+44], r2\n\
                stxdw [r1+48], r3\n\
                mov r4, 0x0102\n\
                stxdw [r1+8], r4\n\
                mov r4, 0x5000\n\
                stxw [r1+24], r4\n\
                mov r0, 1\n\
                exit";
    let ip: Ipv6Addr = "2001:db8:aabb:ccdd:1:2:3:4".parse().unwrap();
    let mut seen = None;
    for mode in MODES {
        for (engine, opts) in engines() {
            let ctx = Context::SockAddr(SockAddrHook::SendMsg6);
            let mut p = prepare(verify(text, ctx, mode).unwrap(), opts);
            let mut a = SockAddr {
                user_ip6: ip,
                ..SockAddr::default()
            };
            let r0 = p.run_sock_addr(&mut a, &IDS).unwrap();
            let got = (r0, a.user_ip6, a.msg_src_ip6, a.user_port);
            assert_eq!(*seen.get_or_insert(got), got, "{mode:?} {engine}");
        }
    }
    let mut user = ip.octets();
    user[..8].copy_from_slice(&0x0102u64.to_le_bytes());
    let mut src = [0u8; 16];
    src[0] = 0xbb;
    src[4..12].copy_from_slice(&ip.octets()[8..16]);
    assert_eq!(
        seen,
        Some((1, Ipv6Addr::from(user), Ipv6Addr::from(src), 80))
    );
    // bpf_sock's dst_port: 2 bytes or 1, or 4 at its offset (with the padding), never the
    // padding alone.
    for mode in MODES {
        let ctx = Context::Sock(SockHook::PostBind4);
        for ok in ["ldxh r0, [r1+48]", "ldxb r0, [r1+49]", "ldxw r0, [r1+48]"] {
            verify(&format!("{ok}\nmov r0, 1\nexit"), ctx, mode)
                .unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        let e = verify("ldxh r0, [r1+50]\nmov r0, 1\nexit", ctx, mode)
            .map(|_| ())
            .unwrap_err();
        assert!(e.to_string().contains("offset 50 size 2"), "{e}");
        // Atomics on a writable field are refused too.
        let e = verify(
            "mov r2, 1\nlock add32 [r1+24], r2\nmov r0, 1\nexit",
            Context::SockAddr(SockAddrHook::Connect4),
            mode,
        )
        .map(|_| ())
        .unwrap_err();
        assert!(e.to_string().contains("offset 24 size 4"), "{e}");
    }
}

#[test]
fn socket_helpers_are_offered_to_their_types_only() {
    for mode in MODES {
        // sock_ops_cb_flags_set is sock_ops's; perf_prog_read_value perf_event's.
        let e = verify(
            "mov r2, 1\ncall 59\nmov r0, 1\nexit",
            Context::SockAddr(SockAddrHook::Connect4),
            mode,
        )
        .map(|_| ())
        .unwrap_err();
        assert!(e.to_string().contains("sock_ops_cb_flags_set"), "{e}");
        let e = verify(
            "stdw [r10-8], 0\nstdw [r10-16], 0\nstdw [r10-24], 0\nmov r2, r10\nadd r2, -24\n\
             mov r3, 24\ncall 56\nmov r0, 1\nexit",
            Context::SockOps,
            mode,
        )
        .map(|_| ())
        .unwrap_err();
        assert!(e.to_string().contains("perf_prog_read_value"), "{e}");
        // The cookies are not XDP's.
        let e = verify("call 46\nmov r0, 2\nexit", Context::Xdp, mode)
            .map(|_| ())
            .unwrap_err();
        assert!(e.to_string().contains("get_socket_cookie"), "{e}");
    }
}

#[test]
fn cookie_helpers_and_a_misused_context_argument() {
    // The socket's cookie into mark, get_netns_cookie(NULL) (the initial namespace's) into
    // priority, get_netns_cookie(ctx) (the socket's namespace's) into bound_dev_if.
    let text = "mov r6, r1\ncall 46\nstxw [r6+16], r0\nmov r1, 0\ncall 122\n\
                stxw [r6+20], r0\nmov r1, r6\ncall 122\nstxw [r6+0], r0\nmov r0, 1\nexit";
    for mode in MODES {
        for (engine, opts) in engines() {
            let mut p = prepare(
                verify(text, Context::Sock(SockHook::Create), mode).unwrap(),
                opts,
            );
            let mut sk = BpfSock::default();
            assert_eq!(p.run_sock(&mut sk, &IDS).unwrap(), 1);
            let got = (sk.mark, sk.priority, sk.bound_dev_if);
            let want = (0xc00c1e, bpfx::INIT_NETNS_COOKIE as u32, 0x4e75);
            assert_eq!(got, want, "{mode:?} {engine}");
        }
    }
    // sock_ops_cb_flags_set on the stack instead of the context: refused by the verifier in
    // both modes (the kernel's ARG_PTR_TO_CTX); a value it cannot tell (bytes_received) is
    // refused in Strict mode and a helper error at the call in Checked mode.
    for mode in MODES {
        let e = verify(
            "mov r1, r10\nadd r1, -8\nmov r2, 1\ncall 59\nmov r0, 1\nexit",
            Context::SockOps,
            mode,
        )
        .map(|_| ())
        .unwrap_err();
        assert!(e.to_string().contains("the context (r1 at entry)"), "{e}");
    }
    let text = "ldxdw r1, [r1+168]\nmov r2, 1\ncall 59\nmov r0, 1\nexit";
    let e = verify(text, Context::SockOps, Mode::Strict)
        .map(|_| ())
        .unwrap_err();
    assert!(e.to_string().contains("the context (r1 at entry)"), "{e}");
    for (engine, opts) in engines() {
        let mut p = prepare(verify(text, Context::SockOps, Mode::Checked).unwrap(), opts);
        let mut o = event(4, 1, true, 0);
        let e = p.run_sock_ops(&mut o, &IDS).unwrap_err();
        assert!(e.to_string().contains("not the context"), "{engine}: {e}");
    }
}

#[test]
fn a_run_of_another_context_is_refused() {
    let obj = open();
    let mut p = obj.program("connect4").unwrap().load().unwrap();
    let e = p.run_sock(&mut BpfSock::default(), &IDS).unwrap_err();
    assert!(
        matches!(
            e,
            RunError::WrongContext {
                expected: "cgroup_sock_addr",
                got: "cgroup_sock",
                ..
            }
        ),
        "{e}"
    );
    let mut p = obj.program("tcp_events").unwrap().load().unwrap();
    let e = p
        .run_perf_event(&PerfEventData::default(), &PerfEventValue::default())
        .unwrap_err();
    assert!(matches!(e, RunError::WrongContext { .. }), "{e}");
}
