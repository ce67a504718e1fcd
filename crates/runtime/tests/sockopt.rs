//! `bpf_setsockopt` and `bpf_getsockopt` from the clang-built `tests/objects/sockopt.c` (a
//! sockops tuning program, cgroup connect4/connect6 hooks, a sockops program probing the
//! refused options) on the interpreter and the JIT with every option set, in Checked and
//! Strict mode: the options a run leaves on the socket ([`Program::sock_options`]), the values
//! and kernel return codes the programs record, and the programs the verifier refuses. The
//! kernel's `BPF_PROG_TEST_RUN` does not run sock_ops or cgroup socket-address programs, so it
//! is asked (through `bpftool`, as root) only whether it loads the same programs.

// Not every helper of `common` is used here.
#[allow(dead_code)]
mod common;

#[path = "common/oracle.rs"]
mod oracle;

use bpfx::{
    Context, Error, Mode, Object, Program, ProgramDef, SOCK_OPS_SND_CWND, SOCK_OPS_SND_SSTHRESH,
    SockAddr, SockAddrHook, SockHook, SockIds, SockOps, SockOptions, UpdateFlag, Vm,
};
use common::{code, engines, prepare};
use oracle::objects;
use std::net::Ipv4Addr;

const MODES: [Mode; 2] = [Mode::Checked, Mode::Strict];
const EINVAL: i64 = -22;
const ENOENT: i64 = -2;
const EOPNOTSUPP: i64 = -95;
const IDS: SockIds = SockIds {
    cookie: 7,
    netns_cookie: 1,
};

fn open(name: &str) -> Object {
    Object::open(objects().join(name)).unwrap()
}

/// Runs `f` on program `name` of a fresh `sockopt.o` on every engine in both modes; each
/// result must be the same everywhere.
fn each<T: PartialEq + std::fmt::Debug>(name: &str, f: impl Fn(&mut Program, &Object) -> T) -> T {
    common::run_object_everywhere(|| open("sockopt.o"), name, f)
}

/// The `results` slots `slots` (`None` for a slot never written).
fn results(obj: &Object, slots: std::ops::Range<u32>) -> Vec<Option<i64>> {
    let m = obj.map("results").unwrap();
    slots
        .map(|k| {
            let v = m.lookup(&k.to_le_bytes()).unwrap().unwrap();
            let v = i64::from_le_bytes(v[..8].try_into().unwrap());
            // Every program records into an array, zero until written: 0x5a.. marks unwritten.
            (v != 0x5a5a_5a5a).then_some(v)
        })
        .collect()
}

/// Fills `results` with the unwritten marker, so a slot a run does not reach reads `None`.
fn clear(obj: &Object) {
    let m = obj.map("results").unwrap();
    for k in 0u32..32 {
        m.update(
            &k.to_le_bytes(),
            &0x5a5a_5a5ai64.to_le_bytes(),
            UpdateFlag::Any,
        )
        .unwrap();
    }
}

fn event(op: u32, fullsock: bool) -> SockOps {
    SockOps {
        op,
        family: 2,
        remote_ip4: Ipv4Addr::new(10, 0, 0, 2),
        remote_port: 443,
        is_fullsock: fullsock,
        ..SockOps::default()
    }
}

fn cc(obj: &Object, map: &str) -> Vec<u8> {
    obj.map(map)
        .unwrap()
        .lookup(&0u32.to_le_bytes())
        .unwrap()
        .unwrap()
}

#[test]
fn sockops_tunes_a_new_connection_and_reads_the_options_back() {
    let out = each("tune", |p, obj| {
        clear(obj);
        let mut name = [0u8; 16];
        name[..4].copy_from_slice(b"reno");
        obj.map("cc_config")
            .unwrap()
            .update(&0u32.to_le_bytes(), &name, UpdateFlag::Any)
            .unwrap();
        // TCP_CONNECT_CB: a new connection, nothing sent yet.
        let mut o = event(3, true);
        o.tcp[SOCK_OPS_SND_CWND] = 10;
        o.tcp[9] = 1460;
        assert_eq!(p.run_sock_ops(&mut o, &IDS).unwrap(), 1);
        let first = (
            results(obj, 0..9),
            cc(obj, "cc_seen"),
            p.sock_options().clone(),
            o.tcp[SOCK_OPS_SND_CWND],
            o.tcp[SOCK_OPS_SND_SSTHRESH],
        );
        // The established event on the same socket: its options stay; a request socket
        // (not a full socket) gets -EINVAL; a timestamping event -EOPNOTSUPP.
        clear(obj);
        let mut o = event(4, true);
        o.tcp[19] = 3;
        p.run_sock_ops(&mut o, &IDS).unwrap();
        let second = (results(obj, 0..9), p.sock_options().congestion.clone());
        clear(obj);
        p.run_sock_ops(&mut event(4, false), &IDS).unwrap();
        let request = results(obj, 0..9);
        clear(obj);
        p.run_sock_ops(&mut event(3, true), &IDS).unwrap();
        let later = results(obj, 0..2);
        (first, second, request, later)
    });
    let (first, second, request, later) = out;
    assert_eq!(
        first.0,
        [
            Some(0),
            Some(0),
            Some(0),
            // snd_cwnd read after TCP_BPF_IW.
            Some(40),
            Some(0),
            Some(0),
            // 2 × 1 MiB.
            Some(2 << 20),
            Some(1),
            Some(0),
        ]
    );
    assert_eq!(&first.1[..5], b"reno\0");
    assert_eq!(first.1[15], 0);
    let o = &first.2;
    assert_eq!(o.congestion, "reno");
    assert_eq!((o.snd_cwnd, o.snd_cwnd_clamp), (Some(40), Some(100)));
    assert!(o.nodelay);
    assert_eq!(o.sndbuf, 2 << 20);
    assert_eq!((first.3, first.4), (40, 100));
    // Established: no window changes asked, the rest as before.
    assert_eq!(
        second.0,
        [
            Some(0),
            None,
            None,
            None,
            Some(0),
            Some(0),
            Some(2 << 20),
            Some(1),
            Some(0)
        ]
    );
    assert_eq!(second.1, "reno");
    assert_eq!(
        request,
        [
            Some(EINVAL),
            None,
            None,
            None,
            Some(EINVAL),
            Some(EINVAL),
            Some(EINVAL),
            Some(EINVAL),
            Some(EINVAL)
        ]
    );
    // The options stay with the program until the embedder sets others: reno is still in use.
    assert_eq!(later, [Some(0), Some(0)]);
}

#[test]
fn the_embedder_describes_the_socket_and_events_past_the_locked_ones_are_refused() {
    for mode in MODES {
        for (engine, opts) in engines() {
            let obj = open("sockopt.o");
            let mut p = prepare(
                obj.program("tune").unwrap().verify(mode).unwrap(),
                opts.clone(),
            );
            clear(&obj);
            // A socket the embedder made with bbr available and in use.
            p.set_sock_options(SockOptions {
                congestion: "bbr".into(),
                congestion_available: vec!["bbr".into(), "cubic".into()],
                ..SockOptions::default()
            });
            let mut o = event(4, true);
            p.run_sock_ops(&mut o, &IDS).unwrap();
            assert_eq!(&cc(&obj, "cc_seen")[..4], b"bbr\0", "{mode:?} {engine}");
            assert_eq!(p.sock_options().congestion, "bbr");
            // BPF_SOCK_OPS_TSTAMP_SCHED_CB (16) and later do not hold the socket's lock: every
            // call fails, and getsockopt's buffers are zeroed.
            let mut p = prepare(obj.program("probe").unwrap().verify(mode).unwrap(), opts);
            clear(&obj);
            let mut o = event(16, true);
            p.run_sock_ops(&mut o, &IDS).unwrap();
            let r = results(&obj, 16..31);
            for (i, v) in r.iter().enumerate() {
                let want = if i == 9 || i == 11 { 0 } else { EOPNOTSUPP };
                assert_eq!(*v, Some(want), "{mode:?} {engine}: slot {}", i + 16);
            }
        }
    }
}

fn tcp4(port: u16) -> SockAddr {
    SockAddr {
        user_family: 2,
        user_ip4: Ipv4Addr::new(10, 1, 2, 3),
        user_port: port,
        family: 2,
        sock_type: 1,
        protocol: 6,
        ..SockAddr::default()
    }
}

#[test]
fn connect4_marks_prioritises_and_sets_the_tos() {
    let out = each("mark_egress", |p, obj| {
        clear(obj);
        // The socket's ECN bits (set by TCP) stay under IP_TOS.
        p.set_sock_options(SockOptions {
            tos: 1,
            ..SockOptions::default()
        });
        let r0 = p.run_sock_addr(&mut tcp4(443), &IDS).unwrap();
        let o = p.sock_options().clone();
        let got = (r0, results(obj, 10..16), o.mark, o.priority, o.tos);
        clear(obj);
        p.set_sock_options(SockOptions::default());
        let telnet = p.run_sock_addr(&mut tcp4(23), &IDS).unwrap();
        (got, telnet, results(obj, 10..11), p.sock_options().mark)
    });
    assert_eq!(
        out.0,
        (
            1,
            vec![
                Some(0),
                Some(0),
                Some(0),
                Some(0xb9),
                Some(EINVAL),
                // TCP_MAXSEG on an unconnected socket: TCP_MSS_DEFAULT.
                Some(536)
            ],
            0x1234,
            7,
            0xb9
        )
    );
    assert_eq!(out.1, 0);
    assert_eq!(out.2, [None]);
    assert_eq!(out.3, 0);
}

#[test]
fn connect6_sets_the_traffic_class_not_the_tos() {
    let out = each("tclass6", |p, obj| {
        clear(obj);
        let mut a = SockAddr {
            user_family: 10,
            family: 10,
            sock_type: 2,
            protocol: 17,
            user_port: 53,
            ..SockAddr::default()
        };
        p.run_sock_addr(&mut a, &IDS).unwrap();
        (results(obj, 10..13), p.sock_options().tclass)
    });
    assert_eq!(out, (vec![Some(0), Some(0x20), Some(EINVAL)], 0x20));
}

#[test]
fn refused_options_return_the_kernels_codes() {
    let out = each("probe", |p, obj| {
        clear(obj);
        let mut o = event(4, true);
        o.tcp[19] = 5;
        p.run_sock_ops(&mut o, &IDS).unwrap();
        (results(obj, 16..31), p.sock_options().keepidle)
    });
    let c = i64::from(b'c');
    assert_eq!(
        out.0,
        [
            Some(EINVAL),
            Some(EINVAL),
            Some(EINVAL),
            Some(EINVAL),
            Some(0),
            Some(60),
            Some(ENOENT),
            // TCP_BPF_IW after data went out.
            Some(EINVAL),
            Some(EINVAL),
            // optval zeroed by the failed getsockopt.
            Some(0),
            Some(0),
            // "cubic": 'c' at 0 and 4, the last byte a NUL.
            Some(c | c << 8),
            Some(131_072),
            Some(0),
            Some(1),
        ]
    );
    assert_eq!(out.1, 60);
}

/// Verifies hand-written `text` under `context` in `mode`.
fn verify(text: &str, context: Context, mode: Mode) -> Result<bpfx::Verified, Error> {
    let obj = Vm::new()
        .object(vec![ProgramDef::new("p", "test", code(text))], vec![])
        .unwrap();
    obj.program("p").unwrap().context(context).verify(mode)
}

/// setsockopt(ctx, SOL_SOCKET, SO_MARK, fp-8, r5) with `optlen` in r5.
fn mark_call(optlen: i32) -> String {
    format!(
        "stw [r10-8], 7\nmov r4, r10\nadd r4, -8\nmov r2, 1\nmov r3, 36\nmov r5, {optlen}\n\
         call 49\nmov r0, 1\nexit"
    )
}

#[test]
fn the_helpers_are_offered_where_the_kernel_offers_them() {
    for mode in MODES {
        for ctx in [
            Context::SockOps,
            Context::SockAddr(SockAddrHook::Connect4),
            Context::SockAddr(SockAddrHook::Bind6),
            Context::SockAddr(SockAddrHook::RecvMsg4),
            Context::SockAddr(SockAddrHook::GetSockName6),
        ] {
            verify(&mark_call(4), ctx, mode).unwrap_or_else(|e| panic!("{ctx:?}: {e}"));
        }
        for ctx in [
            Context::SockAddr(SockAddrHook::ConnectUnix),
            Context::Sock(SockHook::Create),
            Context::Sock(SockHook::PostBind4),
            Context::Xdp,
        ] {
            let e = verify(&mark_call(4), ctx, mode).map(|_| ()).unwrap_err();
            assert!(e.to_string().contains("setsockopt"), "{ctx:?}: {e}");
        }
        // The cgroup sock_create fixture the kernel refuses too.
        let obj = open("sockopt_bad_1.o");
        let e = obj
            .program("mark_all")
            .unwrap()
            .verify(mode)
            .map(|_| ())
            .unwrap_err();
        assert!(e.to_string().contains("setsockopt"), "{e}");
    }
}

#[test]
fn optval_is_a_memory_argument_of_optlen_bytes() {
    // 8 bytes of stack initialised: an optlen of 16 reaches past them.
    let e = verify(&mark_call(16), Context::SockOps, Mode::Strict)
        .map(|_| ())
        .unwrap_err();
    assert!(e.to_string().contains("16 bytes at offset -8"), "{e}");
    // getsockopt writes its buffer: uninitialised stack is fine, and initialised after.
    // reply: the name's first 4 bytes; sk_txhash: the rest OR-ed into a word.
    let text = "mov r6, r1\nmov r4, r10\nadd r4, -16\nmov r2, 6\nmov r3, 13\nmov r5, 16\n\
                mov r1, r6\ncall 57\nldxdw r0, [r10-16]\nldxdw r1, [r10-8]\nstxw [r6+4], r0\n\
                rsh r0, 32\nor r0, r1\nmov r2, r0\nrsh r2, 32\nor r0, r2\nstxw [r6+164], r0\n\
                mov r0, 1\nexit";
    for mode in MODES {
        for (engine, opts) in engines() {
            let mut p = prepare(verify(text, Context::SockOps, mode).unwrap(), opts);
            let mut o = event(4, true);
            p.run_sock_ops(&mut o, &IDS).unwrap();
            // "cubic", NUL-padded to optval[15].
            let got = (o.reply(), o.tcp[bpfx::SOCK_OPS_TXHASH]);
            assert_eq!(
                got,
                (u32::from_le_bytes(*b"cubi"), u32::from(b'c')),
                "{mode:?} {engine}"
            );
        }
    }
    // A map value is memory too: optval there, read-only for setsockopt.
    let e = verify(
        "mov r4, r10\nadd r4, -8\nmov r2, 1\nmov r3, 36\nmov r5, -1\ncall 49\nmov r0, 1\nexit",
        Context::SockOps,
        Mode::Strict,
    )
    .map(|_| ())
    .unwrap_err();
    assert!(e.to_string().contains("setsockopt"), "{e}");
}

#[test]
fn the_kernel_loads_the_same_programs() {
    if let Some(why) = oracle::unavailable() {
        eprintln!("SKIPPED: the kernel cannot be asked: {why}");
        return;
    }
    if let Err(log) = oracle::load_all(&objects().join("sockopt.o")) {
        panic!("{log}");
    }
    for (n, why) in [(1, "cannot use helper bpf_setsockopt"), (2, "expected=ctx")] {
        let got = oracle::load_by_section(&objects().join(format!("sockopt_bad_{n}.o")));
        assert!(
            got.as_ref().is_err_and(|log| log.contains(why)),
            "case {n}: {}",
            got.err().unwrap_or_default()
        );
    }
}

#[test]
fn the_socket_argument_is_the_context() {
    // The fixture passing its stack where the socket is due: refused in both modes, as the
    // kernel refuses it ("R1 type=fp expected=ctx").
    for mode in MODES {
        let obj = open("sockopt_bad_2.o");
        let e = obj
            .program("stack_as_socket")
            .unwrap()
            .verify(mode)
            .map(|_| ())
            .unwrap_err();
        assert!(e.to_string().contains("the context (r1 at entry)"), "{e}");
    }
    // A value the verifier cannot tell (bytes_acked): refused in Strict mode, a helper error
    // at the call in Checked mode, on every engine.
    let text = "ldxdw r1, [r1+176]\nstw [r10-8], 7\nmov r4, r10\nadd r4, -8\nmov r2, 1\n\
                mov r3, 36\nmov r5, 4\ncall 49\nmov r0, 1\nexit";
    let e = verify(text, Context::SockOps, Mode::Strict)
        .map(|_| ())
        .unwrap_err();
    assert!(e.to_string().contains("the context (r1 at entry)"), "{e}");
    for (engine, opts) in engines() {
        let mut p = prepare(verify(text, Context::SockOps, Mode::Checked).unwrap(), opts);
        let e = p.run_sock_ops(&mut event(4, true), &IDS).unwrap_err();
        assert!(e.to_string().contains("not the context"), "{engine}: {e}");
        assert_eq!(p.sock_options().mark, 0, "{engine}");
    }
}
