//! Paths the verifier keeps apart at a join point (`docs/verifier.md`, "Path-sensitive join
//! points"), on clang-built programs: `objects/sock_join.c`, a cgroup connect4 hook that loads
//! through a register holding the context pointer on some paths and 0 on the others, only on
//! the pointer's paths; `objects/xdp_mapsel.c`, an XDP forwarder whose `map_lookup_elem` and
//! `bpf_redirect_map` calls each take a map chosen by a branch between maps of different
//! types or value sizes; and their unsafe twins (`sock_join_bad.c`, a load through the
//! register on a path where it is 0; `xdp_mapsel_bad.c`, an access past the smaller value).
//! Each runs on every engine in both modes; where the kernel can be asked (root, `bpftool`) it
//! loads the safe programs and refuses the twins, as bpfx does.

#[allow(dead_code)]
mod common;

#[path = "common/oracle.rs"]
mod oracle;

use bpfx::{
    MapKind, Mode, Object, Program, RedirectTarget, SockAddr, SockIds, UpdateFlag, XdpAction,
};
use common::{engines, prepare};
use oracle::objects;
use std::net::Ipv4Addr;

const MODES: [Mode; 2] = [Mode::Checked, Mode::Strict];
const IDS: SockIds = SockIds {
    cookie: 7,
    netns_cookie: 8,
};

/// Runs `f` on program `name` of a fresh `file` on every engine in both modes, after `setup`
/// on the object; every result must be the same.
fn each<T: PartialEq + std::fmt::Debug>(
    file: &str,
    name: &str,
    setup: impl Fn(&Object),
    f: impl Fn(&mut Program, &Object) -> T,
) -> T {
    let open = || {
        let obj = Object::open(objects().join(file)).unwrap();
        setup(&obj);
        obj
    };
    common::run_object_everywhere(open, name, f)
}

/// Whether the kernel loads `file` as a program of `bpftool`'s type `ty`, or `None` when it
/// cannot be asked here.
fn kernel_loads(file: &str, ty: &str) -> Option<Result<(), String>> {
    if let Some(why) = oracle::unavailable() {
        eprintln!("SKIPPED the kernel's verdict on {file}: {why}");
        return None;
    }
    Some(oracle::load(&objects().join(file), ty).map(drop))
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
fn a_context_pointer_or_zero_is_read_on_the_pointer_paths_only() {
    let out = each(
        "sock_join.o",
        "connect4_join",
        |obj| {
            let b = obj.map("backends").unwrap();
            b.update(
                &0u32.to_le_bytes(),
                &0xc0a8_0100u32.to_le_bytes(),
                UpdateFlag::Any,
            )
            .unwrap();
            b.update(
                &1u32.to_le_bytes(),
                &0xc0a8_0200u32.to_le_bytes(),
                UpdateFlag::Any,
            )
            .unwrap();
        },
        |p, obj| {
            let mut results = Vec::new();
            for (ip, port) in [
                ([10, 1, 2, 3], 8080),
                ([10, 1, 2, 4], 8443),
                ([10, 1, 2, 5], 80),
                ([192, 0, 2, 1], 8080),
            ] {
                let mut a = tcp4(ip, port);
                let r0 = p.run_sock_addr(&mut a, &IDS).unwrap();
                results.push((r0, a.user_ip4, a.user_port));
            }
            let passed = obj.map("passed").unwrap();
            let n = passed.lookup(&0u32.to_le_bytes()).unwrap().unwrap();
            (results, u64::from_le_bytes(n[..8].try_into().unwrap()))
        },
    );
    assert_eq!(
        out,
        (
            vec![
                (1, Ipv4Addr::new(192, 168, 1, 3), 8080),
                (1, Ipv4Addr::new(192, 168, 2, 4), 8443),
                (1, Ipv4Addr::new(10, 1, 2, 5), 80),
                (1, Ipv4Addr::new(192, 0, 2, 1), 8080),
            ],
            2
        )
    );
}

#[test]
fn a_load_through_the_register_where_it_is_zero_is_refused() {
    for mode in MODES {
        let obj = Object::open(objects().join("sock_join_bad.o")).unwrap();
        let e = obj
            .program("connect4_join")
            .unwrap()
            .verify(mode)
            .map(drop)
            .expect_err("a load through 0 verifies");
        let text = e.to_string();
        assert!(text.contains("r6"), "{mode:?}: {text}");
    }
}

#[test]
fn the_kernel_agrees_on_the_context_pointer_join() {
    if let Some(got) = kernel_loads("sock_join.o", "cgroup/connect4") {
        got.unwrap();
    }
    if let Some(got) = kernel_loads("sock_join_bad.o", "cgroup/connect4") {
        let log = got.expect_err("the kernel loads sock_join_bad.o");
        assert!(log.contains("invalid mem access 'scalar'"), "{log}");
    }
}

/// An Ethernet frame to a MAC ending in `dst`, from one ending in `src`.
fn frame(dst: u8, src: u8) -> Vec<u8> {
    let mut f = vec![0u8; 60];
    f[5] = dst;
    f[11] = src;
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    f
}

#[test]
fn maps_chosen_by_a_branch_are_the_ones_called_on_every_engine() {
    let out = each(
        "xdp_mapsel.o",
        "xdp_mapsel",
        |obj| {
            for (map, key, ifindex) in [
                ("ports", 1u32, 10u32),
                ("ports", 3, 30),
                ("port_hash", 2, 20),
                ("port_hash", 4, 40),
            ] {
                obj.map(map)
                    .unwrap()
                    .update(&key.to_le_bytes(), &ifindex.to_le_bytes(), UpdateFlag::Any)
                    .unwrap();
            }
        },
        |p, obj| {
            let mut results = Vec::new();
            // Odd destinations through `ports` and `small_stats`, even ones through
            // `port_hash` and `big_stats`; 5 and 6 are in neither device map.
            for (dst, src) in [(1, 7), (3, 7), (2, 9), (4, 9), (5, 7), (6, 9), (2, 7)] {
                let mut f = frame(dst, src);
                let act = p.run_xdp(&mut f).unwrap();
                results.push((
                    act,
                    p.last_redirect().filter(|_| act == XdpAction::Redirect),
                ));
            }
            let word = |map: &str, key: u32, at: usize| {
                let v = obj.map(map).unwrap().lookup(&key.to_le_bytes()).unwrap();
                u64::from_le_bytes(v.unwrap()[at..at + 8].try_into().unwrap())
            };
            let counts = [
                word("small_stats", 7, 0),
                word("small_stats", 9, 0),
                word("big_stats", 7, 0),
                word("big_stats", 9, 0),
                word("big_stats", 9, 8),
            ];
            (results, counts)
        },
    );
    let to = |map: &str, kind, key| {
        (
            XdpAction::Redirect,
            Some(RedirectTarget::Map {
                map: map.into(),
                kind,
                key,
            }),
        )
    };
    assert_eq!(
        out,
        (
            vec![
                to("ports", MapKind::DevMap, 1),
                to("ports", MapKind::DevMap, 3),
                to("port_hash", MapKind::DevMapHash, 2),
                to("port_hash", MapKind::DevMapHash, 4),
                (XdpAction::Pass, None),
                (XdpAction::Pass, None),
                to("port_hash", MapKind::DevMapHash, 2),
            ],
            // small_stats[7] counts the odd frames from 7, big_stats[7] the even one, and
            // big_stats[9] the even frames from 9 in its first word only.
            [3, 0, 1, 3, 0]
        )
    );
}

#[test]
fn an_access_past_the_smaller_value_of_a_chosen_map_is_refused_in_strict_mode() {
    let obj = Object::open(objects().join("xdp_mapsel_bad.o")).unwrap();
    let e = obj
        .program("xdp_mapsel")
        .unwrap()
        .verify(Mode::Strict)
        .map(drop)
        .expect_err("an access past the value verifies");
    assert!(e.to_string().contains("map value"), "{e}");
    // Checked mode keeps the access with its guard, which bounds it by the map's memory: past
    // the last element of `small_stats` the run traps, on every engine; the path through the
    // larger value runs.
    for (engine, opts) in engines() {
        let obj = Object::open(objects().join("xdp_mapsel_bad.o")).unwrap();
        let v = obj
            .program("xdp_mapsel")
            .unwrap()
            .verify(Mode::Checked)
            .unwrap();
        let mut p = prepare(v, opts);
        assert!(
            p.run_xdp(&mut frame(1, 255)).is_err(),
            "{engine}: the small value"
        );
        assert_eq!(
            p.run_xdp(&mut frame(6, 9)).unwrap(),
            XdpAction::Pass,
            "{engine}: the large value"
        );
        let v = obj
            .map("big_stats")
            .unwrap()
            .lookup(&9u32.to_le_bytes())
            .unwrap();
        assert_eq!(v.unwrap()[8], 1, "{engine}");
    }
}

#[test]
fn the_kernel_agrees_on_the_chosen_maps() {
    if let Some(got) = kernel_loads("xdp_mapsel.o", "xdp") {
        got.unwrap();
    }
    if let Some(got) = kernel_loads("xdp_mapsel_bad.o", "xdp") {
        let log = got.expect_err("the kernel loads xdp_mapsel_bad.o");
        assert!(
            log.contains("invalid access to map value, value_size=8 off=8 size=8"),
            "{log}"
        );
    }
}
