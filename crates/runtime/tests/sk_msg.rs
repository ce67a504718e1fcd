//! sk_msg programs (`objects/skmsg.c`, a service mesh's socket acceleration): a verdict
//! redirecting each message to its peer socket through a socket hash keyed by the 4-tuple, a
//! framer that corks, drops, pushes a length prefix and pops a tail, and a redirect through a
//! socket map picked by the message's first byte, on every engine and JIT option set in both
//! modes; their unsafe twins (`objects/skmsg_bad_N.c`: the message read without a bounds check,
//! a pointer used after `msg_push_data`) refused; the context's field rules; the message
//! helpers' semantics and errnos over messages of several scatterlist elements.
//!
//! The kernel cannot test-run sk_msg programs (`BPF_PROG_TEST_RUN` answers `ENOTSUPP`, errno
//! 524, checked here): where it can be asked (root, `bpftool`) the oracle is its verifier,
//! which must load `skmsg.o` and refuse the twins as bpfx does.

// Not every helper of `common` is used here.
#[allow(dead_code)]
mod common;

#[path = "common/oracle.rs"]
#[allow(dead_code)]
mod oracle;

use bpfx::{
    BpfSock, Context, MapKind, Mode, Object, Program, ProgramDef, RedirectTarget, SkAction, SkMsg,
    SkMsgOutcome, SockIds, UpdateFlag, Vm,
};
use oracle::objects;
use std::net::Ipv4Addr;

const MODES: [Mode; 2] = [Mode::Checked, Mode::Strict];
const EINVAL: i32 = -22;
const ENOMEM: i32 = -12;

fn open() -> Object {
    Object::open(objects().join("skmsg.o")).unwrap()
}

/// The socket of a local connection from 127.0.0.1:`lport` to 127.0.0.`peer`:`rport`.
fn sock(peer: u8, lport: u16, rport: u16) -> BpfSock {
    BpfSock {
        family: 2,
        src_ip4: Ipv4Addr::new(127, 0, 0, 1),
        dst_ip4: Ipv4Addr::new(127, 0, 0, peer),
        src_port: lport,
        dst_port: rport,
        ..BpfSock::default()
    }
}

/// `skmsg.c`'s `struct pair` as the peer of `sock(peer, lport, rport)` stored itself: its
/// local address (our remote), its remote address (ours), its local port (our remote port,
/// network order), its remote port (our local port, a number).
fn pair(peer: u8, lport: u16, rport: u16) -> Vec<u8> {
    let mut k = vec![127, 0, 0, peer, 127, 0, 0, 1];
    k.extend_from_slice(&rport.to_be_bytes());
    k.extend_from_slice(&lport.to_le_bytes());
    k
}

/// What one run gives: the outcome, the message after it.
type Run = (SkMsgOutcome, SkMsg);

fn run_one(p: &mut Program, mut msg: SkMsg, sk: &BpfSock) -> Run {
    let out = p.run_sk_msg(&mut msg, sk, &SockIds::default()).unwrap();
    (out, msg)
}

fn stats(obj: &Object) -> (u64, u64) {
    let m = obj.map("stats").unwrap();
    let n = |i: u32| {
        let v = m.lookup(&i.to_le_bytes()).unwrap().unwrap();
        u64::from_le_bytes(v[..8].try_into().unwrap())
    };
    (n(0), n(1))
}

#[test]
fn the_section_and_the_btf_type_give_the_sk_msg_context() {
    let obj = open();
    for name in ["redir", "frame", "by_slot"] {
        let p = obj.program(name).unwrap().load().unwrap();
        assert_eq!(p.context(), Context::SkMsg, "{name}");
        assert_eq!(p.context().name(), "sk_msg");
    }
    let p = obj.program("established").unwrap().load().unwrap();
    assert_eq!(p.context(), Context::SockOps);
    assert_eq!(obj.map("sock_pair_map").unwrap().kind(), MapKind::SockHash);
    assert_eq!(obj.map("sock_pair_map").unwrap().key_size(), 12);
    assert_eq!(Context::parse("sk_msg"), Some(Context::SkMsg));
    assert_eq!(Context::for_section("sk_msg"), Context::SkMsg);
    // libbpf knows no `sk_msg/…` section.
    assert_eq!(
        Context::for_section("sk_msg/x"),
        Context::Unsupported("sk_msg")
    );
    assert_eq!(Context::for_btf_type("sk_msg_md"), Some(Context::SkMsg));
}

#[test]
fn the_verdict_redirects_each_message_to_the_peer_by_the_reversed_tuple() {
    let got = common::run_object_everywhere(open, "redir", |p, obj| {
        obj.map("sock_pair_map")
            .unwrap()
            .update(&pair(2, 40000, 15001), &7u32.to_le_bytes(), UpdateFlag::Any)
            .unwrap();
        let runs = vec![
            run_one(
                p,
                SkMsg::new(*b"GET / HTTP/1.1\r\n"),
                &sock(2, 40000, 15001),
            ),
            run_one(p, SkMsg::new(*b"GET"), &sock(3, 40000, 15001)),
            run_one(p, SkMsg::new(*b"GET"), &sock(2, 40001, 15001)),
            run_one(p, SkMsg::new(*b"x"), &BpfSock::default()),
        ];
        (runs, stats(obj))
    });
    let (runs, counts) = got;
    assert_eq!(runs[0].0.action, SkAction::Redirect);
    assert_eq!(
        runs[0].0.redirect,
        Some(RedirectTarget::Socket {
            map: "sock_pair_map".into(),
            kind: MapKind::SockHash,
            key: pair(2, 40000, 15001),
            ingress: true,
        })
    );
    assert_eq!(
        runs[0].1.bytes(),
        b"GET / HTTP/1.1\r\n",
        "the message untouched"
    );
    for r in &runs[1..] {
        assert_eq!(
            (r.0.code, r.0.action, &r.0.redirect),
            (1, SkAction::Pass, &None)
        );
    }
    assert_eq!(
        counts,
        (1, 2),
        "the non-IPv4 socket is passed before counting"
    );
}

#[test]
fn the_framer_corks_drops_prefixes_and_truncates() {
    let long: Vec<u8> = (0..100u8).collect();
    let runs = common::run_object_everywhere(open, "frame", |p, _| {
        vec![
            run_one(p, SkMsg::new(*b"ab"), &sock(2, 1, 2)),
            run_one(p, SkMsg::new(*b"DROP it"), &sock(2, 1, 2)),
            run_one(p, SkMsg::new(*b"hello"), &sock(2, 1, 2)),
            // The first 4 bytes in three elements: the pull joins them.
            run_one(
                p,
                SkMsg::with_elems(*b"hello", &[1, 2, 2]).unwrap(),
                &sock(2, 1, 2),
            ),
            run_one(p, SkMsg::new(long.clone()), &sock(2, 1, 2)),
        ]
    });
    assert_eq!(
        (runs[0].0.action, runs[0].0.cork_bytes, runs[0].1.bytes()),
        (SkAction::Pass, 4, &b"ab"[..])
    );
    assert_eq!((runs[1].0.code, runs[1].0.action), (0, SkAction::Drop));
    assert_eq!(runs[1].1.bytes(), b"DROP it");
    let framed = b"\0\0\0\x05hello";
    assert_eq!(
        (runs[2].0.action, runs[2].1.bytes()),
        (SkAction::Pass, &framed[..])
    );
    assert_eq!(
        runs[2].1.elems(),
        [4, 5],
        "the prefix is an element of its own"
    );
    assert_eq!((runs[2].0.apply_bytes, runs[2].0.cork_bytes), (9, 0));
    assert_eq!(runs[3].1.bytes(), framed);
    assert_eq!(runs[3].1.elems(), [4, 5], "the pull joined all three");
    let mut want = vec![0, 0, 0, 100];
    want.extend(0..60u8);
    assert_eq!(runs[4].1.bytes(), want, "truncated to 64 bytes");
    assert_eq!(
        (runs[4].1.elems(), runs[4].0.apply_bytes),
        (&[4u32, 60][..], 64)
    );
}

#[test]
fn the_slot_redirect_reads_the_first_byte_after_a_pull() {
    let runs = common::run_object_everywhere(open, "by_slot", |p, obj| {
        obj.map("slots")
            .unwrap()
            .update(&1u32.to_le_bytes(), &9u64.to_le_bytes(), UpdateFlag::Any)
            .unwrap();
        [
            SkMsg::new(*b"1abc"),
            SkMsg::with_elems(*b"1abc", &[1, 3]).unwrap(),
            SkMsg::new(*b"2abc"),
            SkMsg::new(*b"9"),
        ]
        .into_iter()
        .map(|m| run_one(p, m, &sock(2, 1, 2)).0)
        .collect::<Vec<_>>()
    });
    let to = Some(RedirectTarget::Socket {
        map: "slots".into(),
        kind: MapKind::SockMap,
        key: 1u32.to_le_bytes().to_vec(),
        ingress: false,
    });
    for r in &runs[..2] {
        assert_eq!((r.action, &r.redirect), (SkAction::Redirect, &to));
    }
    for r in &runs[2..] {
        assert_eq!((r.code, r.action, &r.redirect), (0, SkAction::Drop, &None));
    }
}

/// One program `text` in an `sk_msg` section beside `[sockmap (4 entries), sockhash (4-byte
/// keys)]`.
fn asm_object(text: &str) -> Object {
    let maps = vec![
        bpfx::MapSpec::new("sm", MapKind::SockMap, 4, 8, 4),
        bpfx::MapSpec::new("sh", MapKind::SockHash, 4, 8, 4),
    ];
    Vm::new()
        .object(
            vec![ProgramDef::new("x", "sk_msg", common::code(text))],
            maps,
        )
        .unwrap()
}

#[test]
fn the_context_allows_the_kernels_sk_msg_fields() {
    // (access, whether the kernel's sk_msg_is_valid_access allows it), as loading one-field
    // programs into Linux 6.18 showed.
    let cases = [
        ("ldxdw r0, [r1+0]", true),   // data
        ("ldxw r0, [r1+0]", false),   // data, 4 bytes
        ("ldxdw r0, [r1+8]", true),   // data_end
        ("ldxw r0, [r1+16]", true),   // family
        ("ldxh r0, [r1+16]", false),  // family, narrow
        ("ldxb r0, [r1+16]", false),  // family, narrow
        ("ldxw r0, [r1+20]", true),   // remote_ip4
        ("ldxw r0, [r1+24]", true),   // local_ip4
        ("ldxw r0, [r1+40]", true),   // remote_ip6[3]
        ("ldxw r0, [r1+44]", true),   // local_ip6[0]
        ("ldxw r0, [r1+56]", true),   // local_ip6[3]
        ("ldxdw r0, [r1+28]", false), // remote_ip6[0..2] at once
        ("ldxw r0, [r1+60]", true),   // remote_port
        ("ldxh r0, [r1+60]", false),  // remote_port, narrow
        ("ldxw r0, [r1+64]", true),   // local_port
        ("ldxw r0, [r1+68]", true),   // size
        ("ldxdw r0, [r1+64]", false), // local_port and size at once
        ("ldxw r0, [r1+80]", false),  // past the struct
        ("stw [r1+16], 1", false),    // family
        ("stw [r1+68], 1", false),    // size
    ];
    for (access, allowed) in cases {
        let text = format!("{access}\nmov r0, 1\nexit");
        let obj = asm_object(&text);
        for mode in MODES {
            let got = obj.program("x").unwrap().verify(mode);
            assert_eq!(got.is_ok(), allowed, "{access} {mode:?}: {:?}", got.err());
        }
    }
    // `sk` (72): an 8-byte load gives a full socket pointer that is never NULL (the kernel's
    // PTR_TO_SOCKET): its fields read without a null check, none is written, and the pointer
    // itself is neither written nor read in part.
    let cases = [
        ("ldxdw r0, [r1+72]\nmov r0, 1", true),
        ("ldxw r0, [r1+72]\nmov r0, 1", false),
        ("ldxw r0, [r1+76]\nmov r0, 1", false),
        ("stdw [r1+72], 0\nmov r0, 1", false),
        ("ldxdw r2, [r1+72]\nldxw r0, [r2+4]", true), // family
        ("ldxdw r2, [r1+72]\nldxw r0, [r2+72]", true), // rx_queue_mapping (full socket)
        ("ldxdw r2, [r1+72]\nldxw r0, [r2+80]", false), // past bpf_sock
        ("ldxdw r2, [r1+72]\nstw [r2+16], 1\nmov r0, 1", false), // mark
    ];
    for (text, allowed) in cases {
        let obj = asm_object(&format!("{text}\nexit"));
        for mode in MODES {
            let got = obj.program("x").unwrap().verify(mode);
            assert_eq!(got.is_ok(), allowed, "{text} {mode:?}: {:?}", got.err());
        }
    }
    // Arithmetic on it: refused in Strict mode as by the kernel; Checked mode makes the
    // result a scalar (docs/verifier.md), whose loads are then checked at run time.
    let arith = asm_object("ldxdw r2, [r1+72]\nadd r2, 4\nldxw r0, [r2+0]\nexit");
    assert!(arith.program("x").unwrap().verify(Mode::Strict).is_err());
}

#[test]
fn sk_points_to_the_messages_socket_on_every_engine() {
    let mut est = sock(2, 8080, 443);
    (est.protocol, est.sock_type, est.state) = (6, 1, 1);
    let mut listen = est;
    listen.state = 10;
    let mut udp = est;
    (udp.protocol, udp.sock_type) = (17, 2);
    let cases = [
        (est, SkAction::Pass),
        (listen, SkAction::Drop),
        (udp, SkAction::Drop),
    ];
    for (engine, opts) in common::engines() {
        for mode in MODES {
            for (sk, action) in cases {
                let obj = open();
                let v = obj.program("by_sock").unwrap().verify(mode).unwrap();
                let mut p = common::prepare(v, opts.clone());
                let (out, msg) = run_one(&mut p, SkMsg::new(*b"hello"), &sk);
                assert_eq!(out.action, action, "{engine} {mode:?} {sk:?}");
                assert_eq!(msg.bytes(), b"hello");
                let want = (
                    u64::from(sk.src_port) | u64::from(sk.state) << 32,
                    u64::from(sk.protocol) | u64::from(sk.sock_type) << 32,
                );
                assert_eq!(stats(&obj), want, "{engine} {mode:?}");
            }
        }
    }
    // Read straight from the context: the family and the remote port as `bpf_sock` holds
    // them (`dst_port` in network order, 2 bytes), and a push does not move the socket.
    let text = "mov r6, r1\nmov r2, 0\nmov r3, 8\nmov r4, 0\ncall 90\nldxdw r2, [r6+72]\n\
                ldxw r0, [r2+4]\nldxh r3, [r2+48]\nlsh r3, 8\nadd r0, r3\nexit";
    for (engine, opts) in common::engines() {
        for mode in MODES {
            let v = asm_object(text).program("x").unwrap().verify(mode).unwrap();
            let mut p = common::prepare(v, opts.clone());
            let (out, msg) = run_one(&mut p, SkMsg::new(*b"abc"), &sock(2, 80, 0x1234));
            let port = u16::from_ne_bytes(0x1234u16.to_be_bytes());
            assert_eq!(out.code, 2 + (i32::from(port) << 8), "{engine} {mode:?}");
            assert_eq!(msg.len(), 11, "{engine} {mode:?}");
        }
    }
    // The socket's struct is read-only: a Checked program that makes a scalar of `sk` (which
    // the verifier then no longer types) and stores through it traps, on every engine; a
    // read through `sk` gives the socket's own mark.
    let store = "ldxdw r2, [r1+72]\nadd r2, 0\nstw [r2+16], 7\nmov r0, 1\nexit";
    let read = "ldxdw r2, [r1+72]\nldxw r0, [r2+16]\nexit";
    let mut sk = sock(2, 80, 443);
    sk.mark = 5;
    for (engine, opts) in common::engines() {
        let v = asm_object(store)
            .program("x")
            .unwrap()
            .verify(Mode::Checked);
        let mut p = common::prepare(v.unwrap(), opts.clone());
        let err = p.run_sk_msg(&mut SkMsg::new(*b"abc"), &sk, &SockIds::default());
        let err = err.unwrap_err().to_string();
        assert!(
            err.contains("stw [r2+16], 7") && err.contains("read-only"),
            "{engine}: {err}"
        );
        let v = asm_object(read).program("x").unwrap().verify(Mode::Checked);
        let mut p = common::prepare(v.unwrap(), opts.clone());
        let (out, _) = run_one(&mut p, SkMsg::new(*b"abc"), &sk);
        assert_eq!(out.code, 5, "{engine}");
    }
}

#[test]
fn the_socket_fields_read_as_the_kernel_gives_them() {
    // family + remote_ip4 + local_port + (remote_port >> 16) + size.
    let text = "ldxw r0, [r1+16]\nldxw r2, [r1+20]\nadd r0, r2\nldxw r2, [r1+64]\nadd r0, r2\n\
                ldxw r2, [r1+60]\nrsh r2, 16\nadd r0, r2\nldxw r2, [r1+68]\nadd r0, r2\nexit";
    for (engine, opts) in common::engines() {
        for mode in MODES {
            let v = asm_object(text).program("x").unwrap().verify(mode).unwrap();
            let mut p = common::prepare(v, opts.clone());
            let (out, _) = run_one(&mut p, SkMsg::new(*b"abc"), &sock(2, 80, 0x1234));
            let remote = u32::from_le_bytes([127, 0, 0, 2]);
            let want = 2u32 + remote + 80 + u32::from(u16::from_ne_bytes([0x12, 0x34])) + 3;
            assert_eq!(out.code as u32, want, "{engine} {mode:?}");
        }
    }
}

/// Calls message helper `id` with r2–r4 = `args`, then returns its error if any, else the
/// window's length times 256 plus its first byte (0 when empty).
fn window_after(id: u32, args: [i64; 3]) -> String {
    format!(
        "mov r6, r1\nlddw r2, {}\nlddw r3, {}\nlddw r4, {}\ncall {id}\njne r0, 0, +11\n\
         ldxdw r2, [r6+0]\nldxdw r3, [r6+8]\nmov r0, r3\nsub r0, r2\nlsh r0, 8\nmov r5, 0\n\
         mov r4, r2\nadd r4, 1\njgt r4, r3, +1\nldxb r5, [r2+0]\nor r0, r5\nexit",
        args[0], args[1], args[2]
    )
}

/// Runs `text` on every engine on `msg` and returns the code and the message after it,
/// asserting every engine agrees.
fn everywhere(text: &str, msg: &SkMsg, modes: &[Mode]) -> (i32, SkMsg) {
    let mut seen = None;
    for (engine, opts) in common::engines() {
        for &mode in modes {
            let v = asm_object(text)
                .program("x")
                .unwrap()
                .verify(mode)
                .unwrap_or_else(|e| panic!("{mode:?}: {e}\n{text}"));
            let mut p = common::prepare(v, opts.clone());
            let (out, m) = run_one(&mut p, msg.clone(), &BpfSock::default());
            let got = (out.code, m);
            match &seen {
                None => seen = Some(got),
                Some(s) => assert_eq!(s, &got, "{engine} {mode:?}: {text}"),
            }
        }
    }
    seen.unwrap()
}

/// The window result of [`window_after`]: its length and first byte.
fn win(len: i32, first: u8) -> i32 {
    len << 8 | i32::from(first)
}

#[test]
fn msg_pull_data_moves_the_window_and_joins_the_elements_it_spans() {
    let msg = SkMsg::with_elems(*b"abcdefgh", &[3, 2, 3]).unwrap();
    // The window starts on the first element.
    let (code, _) = everywhere(&window_after(63, [0, 3, 0]), &msg, &MODES);
    assert_eq!(code, win(3, b'a'));
    let cases: [([i64; 3], i32, &[u32]); 10] = [
        ([1, 4, 0], win(3, b'b'), &[5, 3]),
        ([4, 8, 0], win(4, b'e'), &[3, 5]),
        ([3, 5, 0], win(2, b'd'), &[3, 2, 3]),
        ([0, 8, 0], win(8, b'a'), &[8]),
        ([2, 2, 0], EINVAL, &[3, 2, 3]),
        ([5, 3, 0], EINVAL, &[3, 2, 3]),
        ([8, 9, 0], EINVAL, &[3, 2, 3]),
        ([6, 9, 0], EINVAL, &[3, 2, 3]),
        ([0, 1, 1], EINVAL, &[3, 2, 3]),
        // The kernel's u32 arguments: 2^32 + 1 is 1.
        ([(1 << 32) + 1, 4, 0], win(3, b'b'), &[5, 3]),
    ];
    for (args, want, elems) in cases {
        let (code, m) = everywhere(&window_after(63, args), &msg, &MODES);
        assert_eq!((code, m.elems()), (want, elems), "pull {args:?}");
        assert_eq!(m.bytes(), b"abcdefgh");
    }
}

/// A resizing helper's case: its r2–r4, the code [`window_after`] returns, the message's
/// bytes and elements after it.
type Resize = ([i64; 3], i32, &'static [u8], &'static [u32]);

#[test]
fn msg_push_data_inserts_zeroed_elements_and_puts_the_window_on_the_first() {
    let msg = SkMsg::with_elems(*b"abcdefgh", &[3, 2, 3]).unwrap();
    let cases: [Resize; 7] = [
        ([0, 2, 0], win(2, 0), b"\0\0abcdefgh", &[2, 3, 2, 3]),
        ([3, 1, 0], win(3, b'a'), b"abc\0defgh", &[3, 1, 2, 3]),
        ([4, 2, 0], win(3, b'a'), b"abcd\0\0efgh", &[3, 1, 2, 1, 3]),
        ([8, 1, 0], win(3, b'a'), b"abcdefgh\0", &[3, 2, 3, 1]),
        ([9, 1, 0], EINVAL, b"abcdefgh", &[3, 2, 3]),
        ([0, 0, 0], win(3, b'a'), b"abcdefgh", &[3, 2, 3]),
        ([0, 1, 2], EINVAL, b"abcdefgh", &[3, 2, 3]),
    ];
    for (args, want, bytes, elems) in cases {
        let (code, m) = everywhere(&window_after(90, args), &msg, &MODES);
        assert_eq!(
            (code, m.bytes(), m.elems()),
            (want, bytes, elems),
            "push {args:?}"
        );
    }
    // Past the room: -ENOMEM, nothing changed.
    let mut small = SkMsg::new(*b"ab");
    small.room = 4;
    let (code, m) = everywhere(&window_after(90, [0, 5, 0]), &small, &MODES);
    assert_eq!((code, m.bytes()), (ENOMEM, &b"ab"[..]));
    let (code, m) = everywhere(&window_after(90, [1, 4, 0]), &small, &MODES);
    assert_eq!(
        (code, m.bytes(), m.elems()),
        (win(1, b'a'), &b"a\0\0\0\0b"[..], &[1u32, 4, 1][..])
    );
    // An empty message takes a push at 0 only.
    let empty = SkMsg::new(Vec::new());
    let (code, m) = everywhere(&window_after(90, [0, 2, 0]), &empty, &MODES);
    assert_eq!(
        (code, m.bytes(), m.elems()),
        (win(2, 0), &b"\0\0"[..], &[2u32][..])
    );
}

#[test]
fn msg_pop_data_removes_bytes_and_splits_or_drops_elements() {
    let msg = SkMsg::with_elems(*b"abcdefgh", &[3, 2, 3]).unwrap();
    let cases: [Resize; 9] = [
        ([0, 1, 0], win(2, b'b'), b"bcdefgh", &[2, 2, 3]),
        ([1, 1, 0], win(1, b'a'), b"acdefgh", &[1, 1, 2, 3]),
        ([2, 3, 0], win(2, b'a'), b"abfgh", &[2, 3]),
        ([3, 2, 0], win(3, b'a'), b"abcfgh", &[3, 3]),
        ([0, 8, 0], 0, b"", &[]),
        ([8, 1, 0], EINVAL, b"abcdefgh", &[3, 2, 3]),
        ([7, 2, 0], EINVAL, b"abcdefgh", &[3, 2, 3]),
        ([0, 0, 0], win(3, b'a'), b"abcdefgh", &[3, 2, 3]),
        ([0, 1, 1], EINVAL, b"abcdefgh", &[3, 2, 3]),
    ];
    for (args, want, bytes, elems) in cases {
        let (code, m) = everywhere(&window_after(91, args), &msg, &MODES);
        assert_eq!(
            (code, m.bytes(), m.elems()),
            (want, bytes, elems),
            "pop {args:?}"
        );
    }
}

#[test]
fn apply_and_cork_bytes_are_recorded_and_the_netns_cookie_read() {
    let text = "mov r6, r1\nmov r2, 7\ncall 61\nmov r1, r6\nmov r2, 9\ncall 62\nmov r1, r6\n\
                call 122\nexit";
    for (engine, opts) in common::engines() {
        for mode in MODES {
            let v = asm_object(text).program("x").unwrap().verify(mode).unwrap();
            let mut p = common::prepare(v, opts.clone());
            let ids = SockIds {
                cookie: 1,
                netns_cookie: 0x5566,
            };
            let mut msg = SkMsg::new(*b"m");
            let out = p.run_sk_msg(&mut msg, &BpfSock::default(), &ids).unwrap();
            assert_eq!(
                (out.code, out.apply_bytes, out.cork_bytes),
                (0x5566, 7, 9),
                "{engine} {mode:?}"
            );
            // A program that calls neither leaves both 0.
            let v = asm_object("mov r0, 1\nexit")
                .program("x")
                .unwrap()
                .verify(mode)
                .unwrap();
            let mut q = common::prepare(v, opts.clone());
            let out = q.run_sk_msg(&mut msg, &BpfSock::default(), &ids).unwrap();
            assert_eq!((out.apply_bytes, out.cork_bytes), (0, 0), "{engine}");
        }
    }
}

#[test]
fn message_redirects_pass_only_for_a_present_entry_and_the_ingress_flag() {
    let map = |key: u32, flags: u64| {
        format!("lddw r2, map_idx(0)\nmov r3, {key}\nlddw r4, {flags}\ncall 60\nexit")
    };
    let hash = |key: u32, flags: u64| {
        format!(
            "stw [r10-4], {key}\nlddw r2, map_idx(1)\nmov r3, r10\nadd r3, -4\n\
             lddw r4, {flags}\ncall 71\nexit"
        )
    };
    let cases: Vec<(String, i32, bool)> = vec![
        (map(1, 0), 1, false),
        (map(1, 1), 1, true),
        (map(2, 0), 0, false),
        (map(1, 2), 0, false),
        (hash(5, 1), 1, true),
        (hash(6, 0), 0, false),
        (hash(5, 4), 0, false),
    ];
    for (engine, opts) in common::engines() {
        for mode in MODES {
            for (text, want, ingress) in &cases {
                let obj = asm_object(text);
                let one = 1u64.to_le_bytes();
                obj.map("sm")
                    .unwrap()
                    .update(&1u32.to_le_bytes(), &one, UpdateFlag::Any)
                    .unwrap();
                obj.map("sh")
                    .unwrap()
                    .update(&5u32.to_le_bytes(), &one, UpdateFlag::Any)
                    .unwrap();
                let v = obj.program("x").unwrap().verify(mode).unwrap();
                let mut p = common::prepare(v, opts.clone());
                let (out, _) = run_one(&mut p, SkMsg::new(*b"m"), &BpfSock::default());
                assert_eq!(out.code, *want, "{engine} {mode:?}: {text}");
                match &out.redirect {
                    Some(RedirectTarget::Socket { ingress: i, .. }) => {
                        assert!(*want == 1 && i == ingress, "{engine}: {text}")
                    }
                    _ => assert_eq!(*want, 0, "{engine}: {text}"),
                }
            }
        }
    }
}

#[test]
fn sk_msg_gets_the_kernels_helpers_and_only_those() {
    // msg_redirect_map on the socket hash: refused.
    let obj = asm_object("lddw r2, map_idx(1)\nmov r3, 5\nmov r4, 0\ncall 60\nexit");
    for mode in MODES {
        assert!(obj.program("x").unwrap().verify(mode).is_err());
    }
    // Nor may it delete from a socket map (the kernel's may_update_sockmap).
    let obj =
        asm_object("stw [r10-4], 1\nlddw r1, map_idx(0)\nmov r2, r10\nadd r2, -4\ncall 3\nexit");
    for mode in MODES {
        let Err(e) = obj.program("x").unwrap().verify(mode) else {
            panic!("sk_msg may delete from a socket map");
        };
        assert!(e.to_string().contains("BPF_MAP_TYPE_SOCKMAP"), "{e}");
    }
    // Helpers the kernel (6.18, by loading) does not offer sk_msg: get_socket_cookie (46),
    // skb_store_bytes (9), sk_redirect_map (52), sk_redirect_hash (72), skb_pull_data (39).
    for id in [46, 9, 52, 72, 39] {
        let obj = asm_object(&format!("call {id}\nmov r0, 1\nexit"));
        let Err(e) = obj.program("x").unwrap().verify(Mode::Checked) else {
            panic!("sk_msg may call helper {id}");
        };
        assert!(e.to_string().contains("cannot use helper"), "{id}: {e}");
    }
    // An sk_skb program may not call the message helpers.
    for id in [60, 61, 63, 90, 91] {
        let text = format!("call {id}\nmov r0, 1\nexit");
        let obj = Vm::new()
            .object(
                vec![ProgramDef::new("x", "sk_skb", common::code(&text))],
                vec![],
            )
            .unwrap();
        let Err(e) = obj.program("x").unwrap().verify(Mode::Checked) else {
            panic!("sk_skb may call helper {id}");
        };
        assert!(e.to_string().contains("cannot use helper"), "{id}: {e}");
    }
}

#[test]
fn the_unsafe_twins_are_refused_and_the_kernel_agrees() {
    // The stale pointer is forgotten after the push: a value that was a packet pointer.
    let twins = [
        ("skmsg_bad_0.o", "unchecked", "packet"),
        ("skmsg_bad_1.o", "stale", "r6 is not initialised"),
        ("skmsg_bad_2.o", "sk_write", "sock"),
    ];
    for (file, name, why) in twins {
        let obj = Object::open(objects().join(file)).unwrap();
        let Err(e) = obj.program(name).unwrap().verify(Mode::Strict) else {
            panic!("Strict accepted {name}");
        };
        assert!(e.to_string().contains(why), "{e}");
    }
    // A socket's fields are never written, in Checked mode either.
    let obj = Object::open(objects().join("skmsg_bad_2.o")).unwrap();
    let Err(e) = obj.program("sk_write").unwrap().verify(Mode::Checked) else {
        panic!("Checked accepted sk_write");
    };
    assert!(e.to_string().contains("sock"), "{e}");
    // Checked mode runs the unchecked read with its accesses checked: on an empty message
    // without room the read traps; with bytes it reads and writes them.
    let obj = Object::open(objects().join("skmsg_bad_0.o")).unwrap();
    for (engine, opts) in common::engines() {
        let v = obj
            .program("unchecked")
            .unwrap()
            .verify(Mode::Checked)
            .unwrap();
        let mut p = common::prepare(v, opts.clone());
        let (sk, ids) = (BpfSock::default(), SockIds::default());
        let mut empty = SkMsg::new(Vec::new());
        empty.room = 0;
        assert!(p.run_sk_msg(&mut empty, &sk, &ids).is_err(), "{engine}");
        let mut msg = SkMsg::new(*b"xy");
        let out = p.run_sk_msg(&mut msg, &sk, &ids).unwrap();
        assert_eq!(
            (out.action, msg.bytes()),
            (SkAction::Pass, &b"xX"[..]),
            "{engine}"
        );
    }
    if let Some(why) = oracle::unavailable() {
        eprintln!("kernel oracle skipped: {why}");
        return;
    }
    for (file, _, _) in twins {
        assert!(
            oracle::load_by_section(&objects().join(file)).is_err(),
            "the kernel loads {file}"
        );
    }
    let good = oracle::load_all(&objects().join("skmsg.o"))
        .unwrap_or_else(|e| panic!("the kernel refuses skmsg.o: {e}"));
    // BPF_PROG_TEST_RUN does not take sk_msg programs: bpftool reports ENOTSUPP (524).
    let input = std::env::temp_dir().join(format!("bpfx-sk-msg-{}.bin", std::process::id()));
    std::fs::write(&input, [0u8; 64]).unwrap();
    let out = std::process::Command::new("bpftool")
        .args(["prog", "run", "pinned"])
        .arg(good.path().join("redir"))
        .arg("data_in")
        .arg(&input)
        .args(["repeat", "1"])
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&input);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("524") || err.contains("not supported"),
        "{err}"
    );
}

/// The sock_ops event `op` of the connection 127.0.0.`local`:`lport` to
/// 127.0.0.`remote`:`rport`.
fn established(op: u32, local: u8, lport: u16, remote: u8, rport: u16) -> bpfx::SockOps {
    bpfx::SockOps {
        op,
        family: 2,
        local_ip4: Ipv4Addr::new(127, 0, 0, local),
        remote_ip4: Ipv4Addr::new(127, 0, 0, remote),
        local_port: lport,
        remote_port: rport,
        is_fullsock: true,
        ..bpfx::SockOps::default()
    }
}

#[test]
fn sockops_inserts_both_ends_and_the_verdict_redirects_between_them() {
    let got = common::run_object_everywhere(open, "established", |p, obj| {
        let ids = |cookie| SockIds {
            cookie,
            netns_cookie: 1,
        };
        // The client's connection is established (active), then the server's (passive);
        // another event inserts nothing, and a second insertion of the client is refused.
        for (op, cookie, ends) in [
            (4, 0xa, (1, 40000, 2, 15001)),
            (5, 0xb, (2, 15001, 1, 40000)),
            (1, 0xc, (1, 40001, 2, 15001)),
            (4, 0xd, (1, 40000, 2, 15001)),
        ] {
            let mut o = established(op, ends.0, ends.1, ends.2, ends.3);
            assert_eq!(p.run_sock_ops(&mut o, &ids(cookie)).unwrap(), 0);
        }
        let pairs: Vec<_> = obj.map("sock_pair_map").unwrap().iter().collect();
        // The client's message goes to the server's socket.
        let mut redir = obj.program("redir").unwrap().load().unwrap();
        let (out, _) = run_one(&mut redir, SkMsg::new(*b"GET"), &sock(2, 40000, 15001));
        (pairs, out.redirect)
    });
    let (pairs, redirect) = got;
    let server = pair(2, 40000, 15001);
    let mut client = vec![127, 0, 0, 1, 127, 0, 0, 2];
    client.extend_from_slice(&40000u16.to_be_bytes());
    client.extend_from_slice(&15001u16.to_le_bytes());
    let mut want = vec![
        (client, 0xau32.to_le_bytes().to_vec()),
        (server.clone(), 0xbu32.to_le_bytes().to_vec()),
    ];
    want.sort();
    assert_eq!(pairs, want);
    assert_eq!(
        redirect,
        Some(RedirectTarget::Socket {
            map: "sock_pair_map".into(),
            kind: MapKind::SockHash,
            key: server,
            ingress: true,
        })
    );
}

#[test]
fn sock_map_and_hash_updates_keep_the_kernels_rules() {
    // Calls helper `id` on map `map` with key `key` and `flags`, storing r0 in `reply`.
    let call = |id: u32, map: u32, key: u32, flags: u64| {
        format!(
            "mov r6, r1\nstw [r10-4], {key}\nlddw r2, map_idx({map})\nmov r3, r10\nadd r3, -4\n\
             lddw r4, {flags}\ncall {id}\nstxw [r6+4], r0\nmov r0, 1\nexit"
        )
    };
    // (text, op, the two runs' results)
    let cases = [
        (call(53, 0, 1, 0), 4, [0, 0]),
        (call(53, 0, 1, 1), 5, [0, -17]),
        (call(53, 0, 1, 2), 11, [-2, -2]),
        (call(53, 0, 4, 0), 4, [-7, -7]),
        (call(53, 0, 1, 3), 4, [-22, -22]),
        (call(53, 0, 1, 0), 1, [-95, -95]),
        (call(70, 1, 5, 1), 4, [0, -17]),
        (call(70, 1, 5, 0), 2, [-95, -95]),
    ];
    for (engine, opts) in common::engines() {
        for mode in MODES {
            for (text, op, want) in &cases {
                let maps = vec![
                    bpfx::MapSpec::new("sm", MapKind::SockMap, 4, 8, 4),
                    bpfx::MapSpec::new("sh", MapKind::SockHash, 4, 8, 4),
                ];
                let obj = Vm::new()
                    .object(
                        vec![ProgramDef::new("x", "sockops", common::code(text))],
                        maps,
                    )
                    .unwrap();
                let v = obj.program("x").unwrap().verify(mode).unwrap();
                let mut p = common::prepare(v, opts.clone());
                let ids = SockIds {
                    cookie: 0x1122_3344_5566,
                    netns_cookie: 1,
                };
                let mut got = [0; 2];
                for g in &mut got {
                    let mut o = established(*op, 1, 1, 2, 2);
                    p.run_sock_ops(&mut o, &ids).unwrap();
                    *g = o.args[0] as i32;
                }
                assert_eq!(&got, want, "{engine} {mode:?}: op {op} {text}");
                if want[0] == 0 {
                    // The socket, by its cookie.
                    let (m, k) = if text.contains("call 70") {
                        ("sh", 5u32)
                    } else {
                        ("sm", 1)
                    };
                    let v = obj.map(m).unwrap().lookup(&k.to_le_bytes()).unwrap();
                    assert_eq!(v, Some(0x1122_3344_5566u64.to_le_bytes().to_vec()));
                }
            }
        }
    }
    // Neither is offered to sk_msg programs (checked above) nor takes the other map kind.
    let obj = Vm::new()
        .object(
            vec![ProgramDef::new(
                "x",
                "sockops",
                common::code(&call(70, 0, 1, 0)),
            )],
            vec![bpfx::MapSpec::new("sm", MapKind::SockMap, 4, 8, 4)],
        )
        .unwrap();
    assert!(obj.program("x").unwrap().verify(Mode::Checked).is_err());
}
