//! Socket-local storage (`BPF_MAP_TYPE_SK_STORAGE`, `bpf_sk_storage_get`,
//! `bpf_sk_storage_delete`) from clang-built fixtures, on every engine and JIT option set in
//! both modes, over the sockets of a `SocketTable`:
//!
//! - `objects/sk_storage.c`: per-socket accounting from TC and cgroup_skb (`skb->sk`, a value
//!   created with an initial value, grown, deleted), a lookup that does not create (and an
//!   unknown flag), a value created zeroed on the socket a `skc_lookup_tcp` finds; the host
//!   reads and writes the values by socket id;
//! - `objects/sk_storage_bad_N.c`: the unsafe twins, refused in Strict mode as the kernel
//!   refuses them (`tests/sk_storage_oracle.rs`); Checked mode guards two of them at run time.

// Not every helper of `common` is used here.
#[allow(dead_code)]
mod common;

use bpfx::{
    BpfSock, Map, MapError, Mode, Object, Program, SkbMeta, SockIds, Socket, SocketId, SocketTable,
    TCP_ESTABLISHED, TCP_TIME_WAIT, UpdateFlag, Vm,
};
use common::{engines, prepare, run_object_everywhere};
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::Arc;

const MODES: [Mode; 2] = [Mode::Checked, Mode::Strict];
const NULL: u32 = 0xffff_ffff;
const CLIENT: [u8; 4] = [10, 0, 0, 1];
const SERVER: [u8; 4] = [10, 0, 0, 2];

fn object(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/objects")).join(name)
}

fn v4(a: [u8; 4]) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(a))
}

/// An Ethernet frame with an IPv4 TCP packet `src:sport` → `dst:dport` (60 bytes).
fn frame(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16) -> Vec<u8> {
    let mut f = vec![0u8; 12];
    f.extend_from_slice(&[0x08, 0x00, 0x45, 0, 0, 40, 0, 0, 0, 0, 64, 6, 0, 0]);
    f.extend_from_slice(&src);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&sport.to_be_bytes());
    f.extend_from_slice(&dport.to_be_bytes());
    f.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x10, 0xff, 0xff, 0, 0, 0, 0]);
    f.resize(60, 0);
    f
}

/// Sockets 0 and 2 established (10.0.0.2:80 ← 10.0.0.1:5555 and ← :5556), 1 in time-wait.
fn table() -> SocketTable {
    let mut t = SocketTable::new();
    t.add(Socket::tcp(
        (v4(SERVER), 80),
        (v4(CLIENT), 5555),
        TCP_ESTABLISHED,
    ));
    t.add(Socket::tcp(
        (v4(SERVER), 80),
        (v4(CLIENT), 5557),
        TCP_TIME_WAIT,
    ));
    t.add(Socket::tcp(
        (v4(SERVER), 80),
        (v4(CLIENT), 5556),
        TCP_ESTABLISHED,
    ));
    t
}

/// `struct sk_stats` as the host reads it.
#[derive(Debug, PartialEq)]
struct Stats {
    packets: u64,
    bytes: u64,
    first_mark: u32,
    tag: u32,
}

fn stats(map: &Map, sk: SocketId) -> Option<Stats> {
    let v = map.lookup(&sk.storage_key()).unwrap()?;
    let u64_at = |o: usize| u64::from_le_bytes(v[o..o + 8].try_into().unwrap());
    let u32_at = |o: usize| u32::from_le_bytes(v[o..o + 4].try_into().unwrap());
    Some(Stats {
        packets: u64_at(0),
        bytes: u64_at(8),
        first_mark: u32_at(16),
        tag: u32_at(20),
    })
}

/// `f` on program `name` of `sk_storage.o` (opened by a `Vm` with `table()`) and its
/// `sk_stats` map, on every engine in both modes, each with fresh maps; every run agrees.
fn everywhere<T: PartialEq + std::fmt::Debug>(
    name: &str,
    f: impl Fn(&mut Program, &Arc<Map>) -> T,
) -> T {
    let vm = Vm::new().sockets(table());
    run_object_everywhere(
        || vm.open(object("sk_storage.o")).unwrap(),
        name,
        |prog, obj| f(prog, &obj.map("sk_stats").unwrap()),
    )
}

/// A TC run on `frame` with `mark` and `cb`: `cb[]` after it.
fn tc(prog: &mut Program, frame: &[u8], mark: u32, cb: [u32; 5]) -> [u32; 5] {
    let meta = SkbMeta {
        mark,
        cb,
        ..SkbMeta::default()
    };
    prog.run_tc_outcome(&mut frame.to_vec(), &meta)
        .unwrap()
        .meta
        .cb
}

#[test]
fn tc_accounts_per_socket_and_deletes() {
    let f = frame(CLIENT, 5555, SERVER, 80);
    let len = f.len() as u32;
    let got = everywhere("tc_account", |prog, map| {
        let mut out = Vec::new();
        prog.set_packet_socket(Some(SocketId(0)));
        // The first packet creates the value from the initial one (first_mark 7).
        out.push(tc(prog, &f, 7, [0; 5]));
        out.push(tc(prog, &f, 9, [0; 5]));
        let host0 = stats(map, SocketId(0));
        // Another socket has a value of its own.
        prog.set_packet_socket(Some(SocketId(2)));
        out.push(tc(prog, &f, 3, [0; 5]));
        // A time-wait socket has none (NULL), no socket reads 0.
        prog.set_packet_socket(Some(SocketId(1)));
        out.push(tc(prog, &f, 0, [0; 5]));
        prog.set_packet_socket(None);
        out.push(tc(prog, &f, 0, [0; 5]));
        // Delete after counting: the next packet starts again.
        prog.set_packet_socket(Some(SocketId(0)));
        out.push(tc(prog, &f, 0, [0, 0, 0, 1, 5]));
        let deleted = stats(map, SocketId(0));
        out.push(tc(prog, &f, 11, [0; 5]));
        (out, host0, deleted, stats(map, SocketId(1)), map.len())
    });
    let (out, host0, deleted, tw, n) = got;
    assert_eq!(
        out,
        [
            [1, len, 7, 0, 0],
            [2, 2 * len, 7, 0, 0],
            [1, len, 3, 0, 0],
            [NULL, 0, 0, 0, 0],
            [0; 5],
            [3, 3 * len, 7, 1, 0],
            [1, len, 11, 0, 0],
        ]
    );
    assert_eq!(
        host0,
        Some(Stats {
            packets: 2,
            bytes: 2 * u64::from(len),
            first_mark: 7,
            tag: 0
        })
    );
    assert_eq!((deleted, tw, n), (None, None, 2));
}

#[test]
fn peek_does_not_create_and_sees_the_hosts_values() {
    let f = frame(CLIENT, 5555, SERVER, 80);
    let got = everywhere("tc_peek", |prog, map| {
        let mut out = Vec::new();
        prog.set_packet_socket(Some(SocketId(0)));
        out.push(tc(prog, &f, 0, [0; 5]));
        let created = map.len();
        // The host puts a value (packets 41) under socket 0's id.
        let mut v = vec![0u8; 24];
        v[..8].copy_from_slice(&41u64.to_le_bytes());
        map.update(&SocketId(0).storage_key(), &v, UpdateFlag::NoExist)
            .unwrap();
        let again = map.update(&SocketId(0).storage_key(), &v, UpdateFlag::NoExist);
        out.push(tc(prog, &f, 0, [0; 5]));
        // An unknown flag: NULL whatever the socket holds.
        out.push(tc(prog, &f, 0, [0, 0, 0, 2, 0]));
        // Deletes: the value (0), then nothing (-ENOENT); a time-wait socket -EINVAL.
        out.push(tc(prog, &f, 0, [0, 0, 0, 0, 1]));
        out.push(tc(prog, &f, 0, [0, 0, 0, 0, 1]));
        prog.set_packet_socket(Some(SocketId(1)));
        out.push(tc(prog, &f, 0, [0, 0, 0, 0, 1]));
        (out, created, again, map.delete(&SocketId(0).storage_key()))
    });
    assert_eq!(
        got,
        (
            vec![
                [NULL, 0, 0, 0, 0],
                [41, 0, 0, 0, 0],
                [NULL, 0, 0, 2, 0],
                [41, 0, 0, 0, 0],
                [NULL, 0, 0, 0, (-2i32) as u32],
                [NULL, 0, 0, 0, (-22i32) as u32],
            ],
            0,
            Err(MapError::Exists),
            Err(MapError::NotFound),
        )
    );
}

#[test]
fn a_looked_up_socket_keeps_its_tag() {
    let got = everywhere("tc_tag", |prog, map| {
        let to_80 = frame(CLIENT, 5556, SERVER, 80);
        let nowhere = frame(CLIENT, 5556, SERVER, 81);
        let out = vec![
            tc(prog, &to_80, 0, [5, 0, 0, 0, 0]),
            tc(prog, &to_80, 0, [6, 0, 0, 0, 0]),
            tc(prog, &nowhere, 0, [7, 0, 0, 0, 0]),
        ];
        (out, stats(map, SocketId(2)), stats(map, SocketId(0)))
    });
    assert_eq!(
        got,
        (
            vec![[5, 0, 0, 0, 0], [6, 5, 0, 0, 0], [7, NULL, 0, 0, 0]],
            Some(Stats {
                packets: 0,
                bytes: 0,
                first_mark: 0,
                tag: 6
            }),
            None,
        )
    );
}

#[test]
fn cgroup_skb_accounts_per_socket() {
    let packet = frame(SERVER, 80, CLIENT, 5555)[14..].to_vec();
    let len = packet.len() as u32;
    let got = everywhere("cg_account", |prog, _| {
        prog.set_packet_socket(Some(SocketId(2)));
        (0..3)
            .map(|i| {
                let mut meta = SkbMeta {
                    mark: 4 + i,
                    ..SkbMeta::default()
                };
                let v = prog
                    .run_cgroup_skb(&packet, &mut meta, &BpfSock::default(), &SockIds::default())
                    .unwrap();
                (v.code, meta.cb)
            })
            .collect::<Vec<_>>()
    });
    assert_eq!(
        got,
        [
            (1, [1, len, 4, 0, 0]),
            (1, [2, 2 * len, 4, 0, 0]),
            (1, [3, 3 * len, 4, 0, 0]),
        ]
    );
}

/// Strict mode refuses every twin, as the kernel does; Checked mode refuses the socket not
/// checked, the maps of the wrong type and the helper the type lacks, and guards the value's
/// accesses at run time instead (twins 4 and 5): a read through the NULL a time-wait socket
/// gets traps on every engine.
#[test]
fn the_unsafe_twins_are_refused_or_guarded() {
    let mut wrong = Vec::new();
    for (n, why) in [
        (1, "may be null"),
        (2, "socket-storage map"),
        (3, "socket-storage map"),
        (4, "may be null"),
        (5, "outside"),
        (6, "cannot use helper sk_storage_get#107"),
    ] {
        let obj = Object::open(object(&format!("sk_storage_bad_{n}.o"))).unwrap();
        for mode in MODES {
            let guarded = mode == Mode::Checked && (n == 4 || n == 5);
            match obj.program("bad").unwrap().verify(mode).map(|_| ()) {
                Err(e) if e.to_string().contains(why) && !guarded => {}
                Ok(()) if guarded => {}
                r => wrong.push(format!("sk_storage_bad_{n} {mode:?}: {r:?}")),
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    let vm = Vm::new().sockets(table());
    let f = frame(CLIENT, 5555, SERVER, 80);
    for (engine, opts) in engines() {
        let obj = vm.open(object("sk_storage_bad_4.o")).unwrap();
        let v = obj.program("bad").unwrap().verify(Mode::Checked).unwrap();
        let mut prog = prepare(v, opts);
        prog.set_packet_socket(Some(SocketId(0)));
        let out = prog.run_tc_outcome(&mut f.clone(), &SkbMeta::default());
        assert_eq!(out.map(|o| o.action.code()).ok(), Some(0), "{engine}");
        prog.set_packet_socket(Some(SocketId(1)));
        let out = prog.run_tc_outcome(&mut f.clone(), &SkbMeta::default());
        assert!(out.is_err(), "{engine}: {out:?}");
    }
}
