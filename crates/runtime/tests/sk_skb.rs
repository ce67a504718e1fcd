//! sk_skb programs (`objects/skskb.c`): a stream parser returning the data's length, a stream
//! verdict redirecting through a socket hash keyed by the data's 5-tuple (rewriting the data in
//! place), and an `sk_skb` program redirecting through a socket map, on every engine and JIT
//! option set in both modes; their unsafe twin (`objects/skskb_bad.c`: the data read and
//! written without a bounds check) refused by Strict mode and trapped by Checked runs on empty
//! data; the context's field rules; the socket redirect
//! helpers' flag and entry rules.
//!
//! The kernel cannot test-run sk_skb programs (`BPF_PROG_TEST_RUN` answers `ENOTSUPP`, errno
//! 524, checked here): where it can be asked (root, `bpftool`) the oracle is its verifier,
//! which must load `skskb.o` and refuse `skskb_bad.o` as bpfx does.

// Not every helper of `common` is used here.
#[allow(dead_code)]
mod common;

#[path = "common/oracle.rs"]
#[allow(dead_code)]
mod oracle;

use bpfx::{
    BpfSock, Context, MapKind, Mode, Object, Program, ProgramDef, RedirectTarget, SkAction,
    SkSkbOutcome, SkbMeta, SockIds, UpdateFlag, Vm,
};
use oracle::objects;
use std::net::Ipv4Addr;

const MODES: [Mode; 2] = [Mode::Checked, Mode::Strict];

fn open() -> Object {
    Object::open(objects().join("skskb.o")).unwrap()
}

/// The socket of a connection from 10.0.0.`peer`:`rport` to 10.0.0.1:`lport`.
fn sock(peer: u8, rport: u16, lport: u16) -> BpfSock {
    BpfSock {
        family: 2,
        src_ip4: Ipv4Addr::new(10, 0, 0, 1),
        dst_ip4: Ipv4Addr::new(10, 0, 0, peer),
        src_port: lport,
        dst_port: rport,
        ..BpfSock::default()
    }
}

/// `skskb.c`'s `struct tuple` for `sock(peer, rport, lport)`: the remote and local IPv4
/// addresses as the fields read (network order), the remote port's field's upper 2 bytes
/// (network order), the local port as a number, TCP (6), 3 bytes of padding.
fn tuple(peer: u8, rport: u16, lport: u16) -> Vec<u8> {
    let mut k = vec![10, 0, 0, peer, 10, 0, 0, 1];
    k.extend_from_slice(&rport.to_be_bytes());
    k.extend_from_slice(&lport.to_le_bytes());
    k.extend_from_slice(&[6, 0, 0, 0]);
    k
}

/// What one run gives: the outcome, the data after it.
type Run = (SkSkbOutcome, Vec<u8>);

fn run_one(p: &mut Program, data: &[u8], sk: &BpfSock, cb0: u32) -> Run {
    let mut data = data.to_vec();
    let mut meta = SkbMeta {
        cb: [cb0, 0, 0, 0, 0],
        ..SkbMeta::default()
    };
    let out = p
        .run_sk_skb(&mut data, &mut meta, sk, &SockIds::default())
        .unwrap();
    (out, data)
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
fn sections_give_the_sk_skb_context_and_the_maps_their_kinds() {
    let obj = open();
    for name in ["parser", "verdict", "by_slot"] {
        let p = obj.program(name).unwrap().load().unwrap();
        assert_eq!(p.context(), Context::SkSkb, "{name}");
        assert_eq!(p.context().name(), "sk_skb");
    }
    assert_eq!(obj.map("flows").unwrap().kind(), MapKind::SockHash);
    assert_eq!(obj.map("flows").unwrap().key_size(), 16);
    assert_eq!(obj.map("slots").unwrap().kind(), MapKind::SockMap);
    for s in [
        "sk_skb",
        "sk_skb/stream_parser",
        "sk_skb/stream_verdict",
        "sk_skb/verdict",
    ] {
        assert_eq!(Context::parse(s), Some(Context::SkSkb), "{s}");
    }
}

#[test]
fn the_stream_parser_returns_the_data_length_everywhere() {
    let lens = common::run_object_everywhere(open, "parser", |p, _| {
        [0usize, 1, 17, 1500]
            .iter()
            .map(|&n| {
                let (out, _) = run_one(p, &vec![7u8; n], &sock(2, 4000, 80), 0);
                (out.code, out.action)
            })
            .collect::<Vec<_>>()
    });
    assert_eq!(
        lens,
        [
            (0, SkAction::Drop),
            (1, SkAction::Pass),
            (17, SkAction::Drop),
            (1500, SkAction::Drop)
        ]
    );
}

#[test]
fn the_verdict_redirects_by_the_five_tuple_and_rewrites_the_data() {
    let cookie = 0xc0ffee_u64.to_le_bytes();
    let got = common::run_object_everywhere(open, "verdict", |p, obj| {
        let flows = obj.map("flows").unwrap();
        flows
            .update(&tuple(2, 4000, 80), &cookie, UpdateFlag::Any)
            .unwrap();
        let runs = vec![
            run_one(p, b"xyz", &sock(2, 4000, 80), 0),
            run_one(p, b"xyz", &sock(3, 4000, 80), 0),
            run_one(p, b"!stop", &sock(2, 4000, 80), 0),
            run_one(p, b"", &sock(2, 4000, 80), 0),
            run_one(p, b"abc", &sock(2, 4001, 80), 0),
        ];
        (runs, stats(obj))
    });
    let (runs, counts) = got;
    let to = Some(RedirectTarget::Socket {
        map: "flows".into(),
        kind: MapKind::SockHash,
        key: tuple(2, 4000, 80),
        ingress: true,
    });
    assert_eq!(runs[0].0.action, SkAction::Redirect);
    assert_eq!(runs[0].0.redirect, to);
    assert_eq!(runs[0].1, b"Xyz", "the leading x upper-cased in place");
    assert_eq!(
        (runs[1].0.action, &runs[1].0.redirect),
        (SkAction::Pass, &None)
    );
    assert_eq!(runs[1].1, b"Xyz");
    assert_eq!((runs[2].0.code, runs[2].0.action), (0, SkAction::Drop));
    assert_eq!(runs[2].1, b"!stop");
    assert_eq!(
        runs[3].0.action,
        SkAction::Redirect,
        "empty data: no rewrite"
    );
    assert_eq!(runs[4].0.action, SkAction::Pass, "another remote port");
    assert_eq!(counts, (2, 2));
}

#[test]
fn the_bare_section_redirects_through_the_socket_map() {
    let runs = common::run_object_everywhere(open, "by_slot", |p, obj| {
        let slots = obj.map("slots").unwrap();
        slots
            .update(&1u32.to_le_bytes(), &9u64.to_le_bytes(), UpdateFlag::Any)
            .unwrap();
        [1u32, 2, 4, u32::MAX]
            .iter()
            .map(|&slot| run_one(p, b"data", &sock(2, 1, 2), slot).0)
            .collect::<Vec<_>>()
    });
    assert_eq!(runs[0].action, SkAction::Redirect);
    assert_eq!(
        runs[0].redirect,
        Some(RedirectTarget::Socket {
            map: "slots".into(),
            kind: MapKind::SockMap,
            key: 1u32.to_le_bytes().to_vec(),
            ingress: false,
        })
    );
    for r in &runs[1..] {
        assert_eq!((r.code, r.action, &r.redirect), (0, SkAction::Drop, &None));
    }
}

/// One program `text` in an `sk_skb` section beside `[sockmap (4 entries), sockhash (4-byte
/// keys)]`, slot 1 and key 5 holding sockets.
fn asm_object(text: &str) -> Object {
    asm_object_in("sk_skb", text)
}

/// [`asm_object`] with the program in `section`.
fn asm_object_in(section: &str, text: &str) -> Object {
    let maps = vec![
        bpfx::MapSpec::new("sm", MapKind::SockMap, 4, 8, 4),
        bpfx::MapSpec::new("sh", MapKind::SockHash, 4, 8, 4),
    ];
    let obj = Vm::new()
        .object(
            vec![ProgramDef::new("x", section, common::code(text))],
            maps,
        )
        .unwrap();
    let one = 1u64.to_le_bytes();
    obj.map("sm")
        .unwrap()
        .update(&1u32.to_le_bytes(), &one, UpdateFlag::Any)
        .unwrap();
    obj.map("sh")
        .unwrap()
        .update(&5u32.to_le_bytes(), &one, UpdateFlag::Any)
        .unwrap();
    obj
}

#[test]
fn socket_redirects_pass_only_for_a_present_entry_and_the_ingress_flag() {
    let map = |key: u32, flags: u64| {
        format!("lddw r2, map_idx(0)\nmov r3, {key}\nlddw r4, {flags}\ncall 52\nexit")
    };
    let hash = |key: u32, flags: u64| {
        format!(
            "stw [r10-4], {key}\nlddw r2, map_idx(1)\nmov r3, r10\nadd r3, -4\n\
             lddw r4, {flags}\ncall 72\nexit"
        )
    };
    // A lookup from a program gives the entry's socket, a reference to release, which this
    // program never does: refused in both modes, as the kernel refuses it.
    let lookup = "stw [r10-4], 1\nlddw r1, map_idx(0)\nmov r2, r10\nadd r2, -4\ncall 1\n\
                  jne r0, 0, +2\nmov r0, 99\nexit\nmov r0, 7\nexit";
    for mode in MODES {
        let e = asm_object(lookup)
            .program("x")
            .unwrap()
            .verify(mode)
            .unwrap_err();
        assert!(e.to_string().contains("not released"), "{mode:?}: {e}");
    }
    let cases: Vec<(String, u64)> = vec![
        (map(1, 0), 1),
        (map(1, 1), 1),
        (map(2, 0), 0),
        (map(9, 0), 0),
        (map(1, 2), 0),
        (map(1, 1 << 40), 0),
        (hash(5, 1), 1),
        (hash(5, 0), 1),
        (hash(6, 0), 0),
        (hash(5, 4), 0),
    ];
    for (engine, opts) in common::engines() {
        for mode in MODES {
            for (text, want) in &cases {
                let obj = asm_object(text);
                let v = obj.program("x").unwrap().verify(mode).unwrap();
                let mut p = common::prepare(v, opts.clone());
                let mut data = [0u8; 4];
                let out = p
                    .run_sk_skb(
                        &mut data,
                        &mut SkbMeta::default(),
                        &BpfSock::default(),
                        &SockIds::default(),
                    )
                    .unwrap();
                assert_eq!(out.code as u64, *want, "{engine} {mode:?}: {text}");
                assert_eq!(out.redirect.is_some(), *want == 1, "{engine}: {text}");
            }
        }
    }
}

#[test]
fn skb_pull_data_checks_the_data_is_there_and_forgets_packet_pointers() {
    // skb_pull_data(skb, len): 0 up to the data's length, -ENOMEM past it (the kernel's
    // pskb_may_pull); then the data is read again through fresh pointers.
    let text = |len: u32| {
        format!(
            "mov r6, r1\nmov r2, {len}\ncall 39\njne r0, 0, +6\nldxw r2, [r6+76]\n\
             ldxw r3, [r6+80]\nmov r4, r2\nadd r4, 1\njgt r4, r3, +1\nldxb r0, [r2+0]\nexit"
        )
    };
    for (engine, opts) in common::engines() {
        for mode in MODES {
            for (len, want) in [(0, i32::from(b'a')), (3, i32::from(b'a')), (4, -12)] {
                let v = asm_object(&text(len))
                    .program("x")
                    .unwrap()
                    .verify(mode)
                    .unwrap();
                let mut p = common::prepare(v, opts.clone());
                let (out, data) = run_one(&mut p, b"abc", &sock(2, 1, 2), 0);
                assert_eq!(
                    (out.code, &data[..]),
                    (want, &b"abc"[..]),
                    "{engine} {mode:?}"
                );
            }
        }
    }
    // A pointer kept across the call is forgotten, as the kernel's changes_pkt_data says.
    let stale = "mov r6, r1\nldxw r7, [r6+76]\nldxw r3, [r6+80]\nmov r4, r7\nadd r4, 1\n\
                 jgt r4, r3, +4\nmov r2, 1\ncall 39\nldxb r0, [r7+0]\nexit\nmov r0, 0\nexit";
    assert!(
        asm_object(stale)
            .program("x")
            .unwrap()
            .verify(Mode::Strict)
            .is_err()
    );
}

#[test]
fn socket_map_deletes_follow_the_kernels_program_types_and_errnos() {
    let delete = |map: u32, key: u32| {
        format!(
            "stw [r10-4], {key}\nlddw r1, map_idx({map})\nmov r2, r10\nadd r2, -4\ncall 3\nexit"
        )
    };
    // An sk_skb program may neither delete from a socket map nor update one (the kernel:
    // "cannot pass map_type 15 into func bpf_map_delete_elem"; an update takes a socket).
    let update = "stw [r10-4], 1\nstdw [r10-16], 1\nlddw r1, map_idx(0)\nmov r2, r10\n\
                  add r2, -4\nmov r3, r10\nadd r3, -16\nmov r4, 0\ncall 2\nexit";
    for text in [delete(0, 1), delete(1, 5), update.to_string()] {
        for mode in MODES {
            let Err(e) = asm_object(&text).program("x").unwrap().verify(mode) else {
                panic!("{mode:?} accepted {text}");
            };
            assert!(e.to_string().contains("BPF_MAP_TYPE_SOCK"), "{e}");
        }
    }
    // A TC program may delete (the kernel's may_update_sockmap): 0, then the errno for the
    // entry now gone (EINVAL for the socket map's empty slot, ENOENT for the socket hash),
    // EINVAL past the socket map's end. It may not update.
    let cases = [
        (delete(0, 1), [0, -22]),
        (delete(0, 2), [-22, -22]),
        (delete(0, 9), [-22, -22]),
        (delete(1, 5), [0, -2]),
        (delete(1, 6), [-2, -2]),
    ];
    for (engine, opts) in common::engines() {
        for mode in MODES {
            for (text, want) in &cases {
                let obj = asm_object_in("tc", text);
                let v = obj.program("x").unwrap().verify(mode).unwrap();
                let mut p = common::prepare(v, opts.clone());
                let mut got = [0; 2];
                for g in &mut got {
                    let mut packet = [0u8; 14];
                    let code = p.run_tc(&mut packet, &mut SkbMeta::default()).unwrap();
                    *g = code.code();
                }
                assert_eq!(&got, want, "{engine} {mode:?}: {text}");
                let (sm, sh) = (obj.map("sm").unwrap().len(), obj.map("sh").unwrap().len());
                assert_eq!(sm + sh, 2 - usize::from(want[0] == 0), "{engine}: {text}");
            }
            assert!(
                asm_object_in("tc", update)
                    .program("x")
                    .unwrap()
                    .verify(mode)
                    .is_err()
            );
        }
    }
}

#[test]
fn the_verifier_pairs_each_socket_redirect_with_its_map_type_and_offers_them_to_sk_skb_only() {
    // sk_redirect_map on the socket hash, sk_redirect_hash on the socket map: refused.
    for text in [
        "lddw r2, map_idx(1)\nmov r3, 5\nmov r4, 0\ncall 52\nexit",
        "stw [r10-4], 1\nlddw r2, map_idx(0)\nmov r3, r10\nadd r3, -4\nmov r4, 0\n\
         call 72\nexit",
    ] {
        for mode in MODES {
            let obj = asm_object(text);
            assert!(obj.program("x").unwrap().verify(mode).is_err(), "{text}");
        }
    }
    // Helpers the kernel does not offer sk_skb: skb_load_bytes_relative (68), get_hash_recalc
    // (34), get_netns_cookie (122).
    for id in [68, 34, 122] {
        let obj = asm_object(&format!("call {id}\nmov r0, 1\nexit"));
        let Err(e) = obj.program("x").unwrap().verify(Mode::Checked) else {
            panic!("sk_skb may call helper {id}");
        };
        assert!(e.to_string().contains("cannot use helper"), "{e}");
    }
    // An XDP program may not call them (the kernel offers them to sk_skb).
    let maps = vec![bpfx::MapSpec::new("sm", MapKind::SockMap, 4, 8, 4)];
    let text = "lddw r2, map_idx(0)\nmov r3, 1\nmov r4, 0\ncall 52\nexit";
    let obj = Vm::new()
        .object(vec![ProgramDef::new("x", "xdp", common::code(text))], maps)
        .unwrap();
    let Err(e) = obj.program("x").unwrap().verify(Mode::Checked) else {
        panic!("xdp may call sk_redirect_map");
    };
    assert!(e.to_string().contains("cannot use helper"), "{e}");
}

#[test]
fn the_context_allows_the_kernels_sk_skb_fields() {
    // (access, whether the kernel's sk_skb_is_valid_access allows it), as loading one-field
    // programs into the kernel showed.
    let cases = [
        ("ldxw r0, [r1+0]", true),     // len
        ("ldxw r0, [r1+8]", false),    // mark
        ("stw [r1+8], 1", false),      // mark
        ("ldxw r0, [r1+48]", true),    // cb[0]
        ("stw [r1+48], 1", false),     // cb[0]
        ("stw [r1+32], 1", true),      // priority
        ("stw [r1+44], 1", true),      // tc_index
        ("stw [r1+12], 1", false),     // queue_mapping
        ("ldxw r0, [r1+72]", false),   // tc_classid
        ("ldxw r0, [r1+84]", true),    // napi_id
        ("ldxw r0, [r1+88]", true),    // family
        ("ldxw r0, [r1+132]", true),   // remote_port
        ("ldxw r0, [r1+120]", true),   // local_ip6[1]
        ("ldxw r0, [r1+140]", false),  // data_meta
        ("ldxdw r0, [r1+152]", false), // tstamp
        ("ldxw r0, [r1+160]", false),  // wire_len
        ("ldxw r0, [r1+176]", true),   // gso_size
        ("ldxdw r0, [r1+184]", false), // hwtstamp
        ("ldabsb 0", false),           // legacy packet loads
    ];
    for (access, allowed) in cases {
        let text = format!("{access}\nmov r0, 1\nexit");
        let obj = asm_object(&text);
        for mode in MODES {
            let got = obj.program("x").unwrap().verify(mode);
            assert_eq!(got.is_ok(), allowed, "{access} {mode:?}: {:?}", got.err());
        }
    }
    // Direct packet access reads and writes.
    let write = "mov r0, 0\nldxw r2, [r1+76]\nldxw r3, [r1+80]\nmov r4, r2\nadd r4, 2\njgt r4, r3, +2\n\
                 stb [r2+1], 0x41\nldxb r0, [r2+0]\nexit";
    for (engine, opts) in common::engines() {
        for mode in MODES {
            let v = asm_object(write)
                .program("x")
                .unwrap()
                .verify(mode)
                .unwrap();
            let mut p = common::prepare(v, opts.clone());
            let mut data = *b"zz";
            let mut meta = SkbMeta::default();
            let out = p
                .run_sk_skb(
                    &mut data,
                    &mut meta,
                    &BpfSock::default(),
                    &SockIds::default(),
                )
                .unwrap();
            assert_eq!(
                (out.code, &data),
                (i32::from(b'z'), b"zA"),
                "{engine} {mode:?}"
            );
        }
    }
}

#[test]
fn skb_store_bytes_writes_the_data_and_get_socket_cookie_gives_the_sockets() {
    // Stores "OK" at offset 1, then returns the socket's cookie.
    let text = "mov r6, r1\nsth [r10-2], 0x4b4f\nmov r2, 1\nmov r3, r10\nadd r3, -2\n\
                mov r4, 2\nmov r5, 0\ncall 9\njne r0, 0, +3\nmov r1, r6\ncall 46\nexit\n\
                mov r0, 1\nexit";
    for (engine, opts) in common::engines() {
        for mode in MODES {
            let v = asm_object(text).program("x").unwrap().verify(mode).unwrap();
            let mut p = common::prepare(v, opts.clone());
            let ids = SockIds {
                cookie: 0x7766,
                ..SockIds::default()
            };
            let mut data = *b"abcd";
            let mut meta = SkbMeta::default();
            let out = p
                .run_sk_skb(&mut data, &mut meta, &BpfSock::default(), &ids)
                .unwrap();
            assert_eq!((out.code, &data), (0x7766, b"aOKd"), "{engine} {mode:?}");
            // Past the data: -EFAULT, the data untouched.
            let mut short = *b"ab";
            let out = p
                .run_sk_skb(&mut short, &mut meta, &BpfSock::default(), &ids)
                .unwrap();
            assert_eq!((out.code, &short), (1, b"ab"), "{engine} {mode:?}");
        }
    }
}

#[test]
fn priority_and_tc_index_come_back_and_the_socket_fields_read() {
    let text = "stw [r1+32], 7\nstw [r1+44], 0x10009\nldxw r0, [r1+136]\nldxw r2, [r1+92]\n\
                add r0, r2\nexit";
    for (engine, opts) in common::engines() {
        let v = asm_object(text)
            .program("x")
            .unwrap()
            .verify(Mode::Strict)
            .unwrap();
        let mut p = common::prepare(v, opts.clone());
        let mut meta = SkbMeta::default();
        let sk = sock(2, 4000, 80);
        let out = p
            .run_sk_skb(&mut [], &mut meta, &sk, &SockIds::default())
            .unwrap();
        let remote = u32::from_le_bytes([10, 0, 0, 2]);
        assert_eq!(out.code, 80i32.wrapping_add(remote as i32), "{engine}");
        assert_eq!((meta.priority, meta.tc_index), (7, 9), "{engine}");
    }
}

#[test]
fn the_unsafe_twin_is_refused_and_the_kernel_agrees() {
    let bad = objects().join("skskb_bad.o");
    let obj = Object::open(&bad).unwrap();
    let Err(e) = obj
        .program("verdict_unchecked")
        .unwrap()
        .verify(Mode::Strict)
    else {
        panic!("Strict accepted");
    };
    assert!(e.to_string().contains("packet"), "{e}");
    // Checked mode runs it with its accesses checked: on empty data the read traps.
    for (engine, opts) in common::engines() {
        let v = obj
            .program("verdict_unchecked")
            .unwrap()
            .verify(Mode::Checked)
            .unwrap();
        let mut p = common::prepare(v, opts.clone());
        let mut meta = SkbMeta::default();
        let (sk, ids) = (BpfSock::default(), SockIds::default());
        assert!(
            p.run_sk_skb(&mut [], &mut meta, &sk, &ids).is_err(),
            "{engine}"
        );
        let mut data = *b"xy";
        let out = p.run_sk_skb(&mut data, &mut meta, &sk, &ids).unwrap();
        assert_eq!((out.action, &data), (SkAction::Pass, b"Xy"), "{engine}");
    }
    if let Some(why) = oracle::unavailable() {
        eprintln!("kernel oracle skipped: {why}");
        return;
    }
    assert!(
        oracle::load_by_section(&bad).is_err(),
        "the kernel loads skskb_bad.o"
    );
    let good = oracle::load_all(&objects().join("skskb.o"))
        .unwrap_or_else(|e| panic!("the kernel refuses skskb.o: {e}"));
    // BPF_PROG_TEST_RUN does not take sk_skb programs: bpftool reports ENOTSUPP (524).
    let input = std::env::temp_dir().join(format!("bpfx-sk-skb-{}.bin", std::process::id()));
    std::fs::write(&input, [0u8; 64]).unwrap();
    let out = std::process::Command::new("bpftool")
        .args(["prog", "run", "pinned"])
        .arg(good.path().join("parser"))
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
