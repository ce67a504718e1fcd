//! The kernel as the oracle of socket pointers (root and `bpftool` needed, skipped
//! otherwise): it loads `objects/sk_steer.c`'s programs (TC and XDP), `objects/cgskb_sk.c`
//! (cgroup_skb), `objects/sk_connect.c` (cgroup connect4) and `objects/sk_filter_sock.c`
//! (socket filter, sk_skb) and refuses each unsafe twin `objects/sk_bad_N.c`, as bpfx does in both modes;
//! and its test runs of the TC programs, in which the lookups find no socket (the test
//! packets' addresses and ports belong to no socket of the host), give the return value and
//! `cb[]`/`mark` bpfx gives with an empty socket table, on every engine.

// Not every helper of `common` is used here.
#[allow(dead_code)]
mod common;

#[path = "common/oracle.rs"]
#[allow(dead_code)]
mod oracle;

use bpfx::{Mode, Object, SkbMeta, SocketTable, Vm};
use common::{engines, prepare};
use oracle::{load, load_by_section, objects, unavailable};

/// `struct __sk_buff`: its size and the offsets of `mark`, `ifindex` and `cb`.
const SKB_SIZE: usize = 192;
const MARK: usize = 8;
const IFINDEX: usize = 40;
const CB: usize = 48;

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
}

/// An Ethernet frame with an IPv4 packet from 192.0.2.1 to 192.0.2.2 (TEST-NET-1, which no
/// host socket is bound to) of protocol `proto` with the 8 first bytes of its L4 header
/// giving ports `sport` → `dport`, padded to a 20-byte header.
fn frame(proto: u8, sport: u16, dport: u16) -> Vec<u8> {
    let mut f = vec![0u8; 12];
    f.extend_from_slice(&[0x08, 0x00, 0x45, 0, 0, 40, 0, 0, 0, 0, 64, proto, 0, 0]);
    f.extend_from_slice(&[192, 0, 2, 1, 192, 0, 2, 2]);
    f.extend_from_slice(&sport.to_be_bytes());
    f.extend_from_slice(&dport.to_be_bytes());
    f.extend_from_slice(&[0, 8, 0, 0, 0, 0, 0, 0, 0x50, 0x10, 0xff, 0xff, 0, 0, 0, 0]);
    f
}

#[test]
fn the_kernel_accepts_the_fixtures_and_refuses_the_twins_as_bpfx_does() {
    if let Some(why) = unavailable() {
        eprintln!("skipped: {why}");
        return;
    }
    for (file, ty) in [
        ("sk_steer.o", None),
        ("cgskb_sk.o", Some("cgroup/skb")),
        ("sk_connect.o", Some("cgroup/connect4")),
        ("sk_filter_sock.o", None),
    ] {
        let path = objects().join(file);
        let loaded = match ty {
            Some(ty) => load(&path, ty).map(|_| ()),
            None => oracle::load_all(&path).map(|_| ()),
        };
        loaded.unwrap_or_else(|e| panic!("the kernel refuses {file}: {e}"));
        let obj = Object::open(&path).unwrap();
        let names: Vec<String> = obj.programs().map(|p| p.name.to_string()).collect();
        for name in names {
            for mode in [Mode::Checked, Mode::Strict] {
                obj.program(&name)
                    .unwrap()
                    .verify(mode)
                    .unwrap_or_else(|e| panic!("{file} {name} {mode:?}: {e}"));
            }
        }
    }
    for n in 1..=4 {
        let path = objects().join(format!("sk_bad_{n}.o"));
        let e = load_by_section(&path)
            .map(|_| ())
            .expect_err("the kernel refuses it");
        assert!(
            e.contains("Unreleased reference")
                || e.contains("invalid mem access")
                || e.contains("invalid sock access"),
            "sk_bad_{n}: {e}"
        );
        let obj = Object::open(&path).unwrap();
        for mode in [Mode::Checked, Mode::Strict] {
            assert!(
                obj.program("bad").unwrap().verify(mode).is_err(),
                "sk_bad_{n} {mode:?}"
            );
        }
    }
}

#[test]
fn tc_runs_with_no_socket_agree_with_the_kernel() {
    if let Some(why) = unavailable() {
        eprintln!("skipped: {why}");
        return;
    }
    let path = objects().join("sk_steer.o");
    let scratch = std::env::temp_dir().join(format!("bpfx_sock_ptr_oracle_{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    for (name, f, cb0) in [
        ("steer", frame(6, 40123, 47391), 0),
        ("steer", frame(17, 40123, 47391), 0),
        ("udp_owner", frame(17, 40123, 47391), u32::MAX),
        ("udp_owner", frame(17, 40123, 47391), 3),
    ] {
        // Every program of the object, pinned by name.
        let dir = oracle::load_all(&path).unwrap();
        let mut ctx = vec![0u8; SKB_SIZE];
        ctx[IFINDEX..IFINDEX + 4].copy_from_slice(&1u32.to_le_bytes());
        ctx[CB..CB + 4].copy_from_slice(&cb0.to_le_bytes());
        let (kret, _) = oracle::kernel_run_named(&dir, name, &f, Some(&mut ctx), &scratch);
        let kcb: [u32; 5] = std::array::from_fn(|i| u32_at(&ctx, CB + 4 * i));
        let kmark = u32_at(&ctx, MARK);
        for table in [None, Some(SocketTable::new())] {
            let vm = match table {
                Some(t) => Vm::new().sockets(t),
                None => Vm::new(),
            };
            let obj = vm.open(&path).unwrap();
            for (engine, opts) in engines() {
                let v = obj.program(name).unwrap().verify(Mode::Strict).unwrap();
                let mut prog = prepare(v, opts);
                let meta = SkbMeta {
                    protocol: 0x0800,
                    ifindex: 1,
                    cb: [cb0, 0, 0, 0, 0],
                    ..SkbMeta::default()
                };
                let out = prog.run_tc_outcome(&mut f.clone(), &meta).unwrap();
                assert_eq!(out.action.code() as u32, kret, "{name} {engine}");
                assert_eq!(out.meta.cb, kcb, "{name} {engine}");
                assert_eq!(out.meta.mark, kmark, "{name} {engine}");
                assert_eq!(out.assigned, None);
            }
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
}
