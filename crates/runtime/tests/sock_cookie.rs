//! `bpf_get_socket_cookie` (helper 46) on a socket buffer (`objects/sock_cookie.c`): TC and
//! socket-filter programs may call it, XDP programs may not (the kernel refuses the XDP
//! program, and accepts the other two); a packet bpfx runs has no socket (`skb->sk` is NULL),
//! so the cookie is 0, as the kernel answers for such a packet. (The kernel's test run gives
//! the packet a throwaway socket of its own, whose cookie is not 0: its answers are not
//! compared here.) The object's perf event array declares its type only, as `bpf2go` objects
//! do: it takes 4-byte keys and values, as cilium/ebpf's loader gives it; one declared with an
//! 8-byte value is still refused, as the kernel refuses it. Every engine in both modes; where
//! the kernel can be asked (root, `bpftool`), it loads and refuses the same one-program objects
//! (`objects/sock_cookie_N.c`) as bpfx.

// Not every helper of `common` is used here.
#[allow(dead_code)]
mod common;

#[path = "common/oracle.rs"]
#[allow(dead_code)]
mod oracle;

use bpfx::{MapKind, Mode, Object, PerfEvent, SkbMeta, Vm};
use common::{engines, prepare};

fn objects() -> std::path::PathBuf {
    std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/objects"))
}

fn frame(len: usize) -> Vec<u8> {
    let mut f = vec![0u8; len];
    f[12] = 0x08;
    f
}

#[test]
fn a_perf_event_array_declared_by_type_only_takes_four_byte_keys_and_values() {
    let obj = Vm::new()
        .cpus(2)
        .open(objects().join("sock_cookie.o"))
        .unwrap();
    let events = obj.map("cookies").unwrap();
    assert_eq!(events.kind(), MapKind::PerfEventArray);
    assert_eq!((events.key_size(), events.value_size()), (4, 4));
    assert_eq!(events.max_entries(), 2, "0 entries: one per CPU");
    let wide = obj.maps().find(|m| m.name() == "wide").unwrap();
    assert_eq!((wide.key_size(), wide.value_size()), (4, 8));
    assert_eq!(
        wide.status().unwrap_err(),
        "perf event array keys and values are 4 bytes, not 4 and 8 (EINVAL)"
    );
    for mode in [Mode::Checked, Mode::Strict] {
        let e = obj
            .program("tc_wide")
            .unwrap()
            .verify(mode)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("map `wide`: perf event array keys and values are 4 bytes, not 4 and 8"),
            "{e}"
        );
    }
}

#[test]
fn tc_and_socket_filters_read_the_cookie_of_a_packet_without_a_socket() {
    let obj = Object::open(objects().join("sock_cookie.o")).unwrap();
    let events = obj.map("cookies").unwrap();
    for mode in [Mode::Checked, Mode::Strict] {
        for (engine, opts) in engines() {
            for len in [14usize, 60, 74] {
                let v = obj.program("tc_cookie").unwrap().verify(mode).unwrap();
                let mut prog = prepare(v, opts.clone());
                let mut p = frame(len);
                let mut meta = SkbMeta {
                    protocol: 0x0800,
                    ..SkbMeta::default()
                };
                let code = prog.run_tc(&mut p, &mut meta).unwrap().code();
                assert_eq!(
                    code, 0,
                    "{mode:?} {engine} {len}: TC_ACT_OK without a socket"
                );
                let got = events.perf_drain().unwrap();
                let [PerfEvent::Sample { data, .. }] = &got[..] else {
                    panic!("{mode:?} {engine}: {got:?}");
                };
                let mut want = 0u64.to_ne_bytes().to_vec();
                want.extend_from_slice(&(len as u64).to_ne_bytes());
                assert_eq!(
                    &data[..16],
                    &want[..],
                    "{mode:?} {engine}: cookie 0, length"
                );

                let v = obj.program("sock_cookie").unwrap().verify(mode).unwrap();
                let mut prog = prepare(v, opts.clone());
                let verdict = prog.run_socket(&frame(len), &SkbMeta::default()).unwrap();
                assert_eq!(
                    (verdict.code, verdict.kept),
                    (len as u32, len),
                    "{mode:?} {engine}: the whole packet"
                );
            }
        }
    }
}

#[test]
fn xdp_programs_cannot_ask_for_a_socket_cookie() {
    let obj = Object::open(objects().join("sock_cookie.o")).unwrap();
    for mode in [Mode::Checked, Mode::Strict] {
        let e = obj
            .program("xdp_cookie")
            .unwrap()
            .verify(mode)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("program of type xdp cannot use helper get_socket_cookie#46"),
            "{mode:?}: {e}"
        );
    }
}

#[test]
fn the_kernel_accepts_and_refuses_the_same_programs() {
    for (n, ty, accepted) in [
        (0, "classifier", true),
        (1, "socket", true),
        (2, "xdp", false),
    ] {
        let path = objects().join(format!("sock_cookie_{n}.o"));
        let obj = Object::open(&path).unwrap();
        for mode in [Mode::Checked, Mode::Strict] {
            let got = obj.program("cookie").unwrap().verify(mode);
            assert_eq!(got.is_ok(), accepted, "{ty} {mode:?}: {:?}", got.err());
            if let Ok(v) = got {
                for (engine, opts) in engines() {
                    let mut prog = prepare(v.clone(), opts);
                    let r = match ty {
                        "socket" => u64::from(
                            prog.run_socket(&frame(60), &SkbMeta::default())
                                .unwrap()
                                .code,
                        ),
                        _ => prog
                            .run_tc(&mut frame(60), &mut SkbMeta::default())
                            .unwrap()
                            .code() as u64,
                    };
                    assert_eq!(r, 0, "{ty} {mode:?} {engine}: no socket, cookie 0");
                }
            }
        }
        if let Some(why) = oracle::unavailable() {
            eprintln!("kernel oracle skipped: {why}");
            continue;
        }
        let kernel = oracle::load(&path, ty);
        assert_eq!(
            kernel.is_ok(),
            accepted,
            "the kernel on {ty}: {:?}",
            kernel.err()
        );
    }
}
