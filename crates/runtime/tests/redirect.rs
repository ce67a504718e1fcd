//! Device, CPU and XSK maps and `bpf_redirect_map`: a clang-built XDP forwarder
//! (`objects/devmap_tx.c`) on every engine in both modes, and the maps' program-side rules in
//! assembly.

#[allow(dead_code)]
mod common;

use bpfx::{
    MapError, MapKind, MapSpec, MapSpecExt, Mode, Object, ProgramDef, RedirectTarget, UpdateFlag,
    Vm, XdpAction,
};
use common::{code, engines, prepare};
use std::path::PathBuf;

fn object(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/objects")).join(name)
}

fn k(i: u32) -> [u8; 4] {
    i.to_le_bytes()
}

#[test]
fn forwarder_redirects_through_a_devmap_and_falls_back_to_pass() {
    for mode in [Mode::Strict, Mode::Checked] {
        for (engine, opts) in engines() {
            let what = format!("{mode:?} {engine}");
            let obj = Object::open(object("devmap_tx.o")).unwrap();
            let v = obj
                .program("forward")
                .unwrap()
                .verify(mode)
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            let mut prog = prepare(v, opts);
            let tx = obj.map("tx_ports").unwrap();
            assert_eq!(tx.kind(), MapKind::DevMap);
            let ports = [(1u32, 10u32), (3, 30), (6, 60)];
            for (port, ifindex) in ports {
                tx.update(&k(port), &ifindex.to_le_bytes(), UpdateFlag::Any)
                    .unwrap();
            }
            let mut expect = [[0u64; 2]; 8];
            for b in 0u8..24 {
                let mut f = vec![0u8; 60];
                f[5] = b;
                let port = u32::from(b & 7);
                let got = prog.run_xdp(&mut f).unwrap();
                if ports.iter().any(|p| p.0 == port) {
                    assert_eq!(got, XdpAction::Redirect, "{what}: port {port}");
                    assert_eq!(
                        prog.last_redirect(),
                        Some(RedirectTarget::Map {
                            map: "tx_ports".into(),
                            kind: MapKind::DevMap,
                            key: port
                        }),
                        "{what}"
                    );
                    expect[port as usize][0] += 1;
                } else {
                    assert_eq!(got, XdpAction::Pass, "{what}: port {port}: the fallback");
                    assert_eq!(prog.last_redirect(), None, "{what}");
                    expect[port as usize][1] += 1;
                }
            }
            // Too short for the MAC: passes without a redirect.
            assert_eq!(prog.run_xdp(&mut [0u8; 4]).unwrap(), XdpAction::Pass);
            let verdicts: Vec<[u64; 2]> = obj
                .map("verdicts")
                .unwrap()
                .iter()
                .map(|(_, v)| {
                    [
                        u64::from_le_bytes(v[..8].try_into().unwrap()),
                        u64::from_le_bytes(v[8..].try_into().unwrap()),
                    ]
                })
                .collect();
            assert_eq!(verdicts, expect, "{what}");
            // Removing a port sends its frames to the fallback.
            tx.delete(&k(3)).unwrap();
            let mut f = vec![0u8; 60];
            f[5] = 3;
            assert_eq!(prog.run_xdp(&mut f).unwrap(), XdpAction::Pass, "{what}");
            assert_eq!(tx.lookup(&k(1)), Ok(Some(10u32.to_le_bytes().to_vec())));
            assert_eq!(tx.lookup(&k(3)), Ok(None));
        }
    }
}

/// Maps `[devmap (8-byte values), cpumap, xskmap, devmap_hash]` and one XDP program.
fn redirect_object(text: &str) -> Object {
    let maps = vec![
        MapSpec::new("dev", MapKind::DevMap, 4, 8, 4),
        MapSpec::new("cpu", MapKind::CpuMap, 4, 4, 4),
        MapSpec::new("xsk", MapKind::XskMap, 4, 4, 4),
        MapSpec::new("devh", MapKind::DevMapHash, 4, 4, 4),
    ];
    Vm::new()
        .cpus(2)
        .object(vec![ProgramDef::new("x", "xdp", code(text))], maps)
        .unwrap()
}

/// r0 = the first 4 bytes of map `m`'s value at key 1, or 99 when the lookup gives NULL.
fn lookup_text(m: u32) -> String {
    format!(
        "stw [r10-4], 1
         lddw r1, map_idx({m})
         mov r2, r10
         add r2, -4
         call 1
         jne r0, 0, +2
         mov r0, 99
         exit
         ldxw r0, [r0+0]
         exit"
    )
}

/// `bpf_redirect_map(map m, key, flags)`.
fn redirect_text(m: u32, key: u32, flags: u64) -> String {
    format!(
        "lddw r1, map_idx({m})
         mov r2, {key}
         lddw r3, {flags}
         call 51
         exit"
    )
}

#[test]
fn programs_read_device_maps_only_and_redirect_to_every_kind() {
    for (engine, opts) in engines() {
        // Device maps are readable (their values are read-only); CPU and XSK maps give NULL.
        for (m, expect) in [(0u32, 7u64), (1, 99), (2, 99), (3, 5)] {
            let obj = redirect_object(&lookup_text(m));
            obj.map("dev")
                .unwrap()
                .update(
                    &k(1),
                    &[7, 0, 0, 0, 0xff, 0xff, 0xff, 0xff],
                    UpdateFlag::Any,
                )
                .unwrap();
            obj.map("cpu")
                .unwrap()
                .update(&k(1), &k(64), UpdateFlag::Any)
                .unwrap();
            obj.map("xsk")
                .unwrap()
                .update(&k(1), &k(3), UpdateFlag::Any)
                .unwrap();
            obj.map("devh")
                .unwrap()
                .update(&k(1), &k(5), UpdateFlag::Any)
                .unwrap();
            let v = obj.program("x").unwrap().verify(Mode::Strict).unwrap();
            let mut p = prepare(v, opts.clone());
            let got = p.run_xdp(&mut [0u8; 16]).unwrap();
            assert_eq!(got, XdpAction::from_code(expect), "{engine}: map {m}");
        }
        // A store into a device map's value: refused by Strict, trapped in Checked.
        let store = lookup_text(0).replace("ldxw r0, [r0+0]", "stw [r0+0], 1\nmov r0, 0");
        let obj = redirect_object(&store);
        obj.map("dev")
            .unwrap()
            .update(&k(1), &[7, 0, 0, 0, 0, 0, 0, 0], UpdateFlag::Any)
            .unwrap();
        assert!(obj.program("x").unwrap().verify(Mode::Strict).is_err());
        let v = obj.program("x").unwrap().verify(Mode::Checked).unwrap();
        assert!(
            prepare(v, opts.clone()).run_xdp(&mut [0u8; 16]).is_err(),
            "{engine}"
        );

        // bpf_redirect_map on each kind: present keys redirect, absent ones give the flags'
        // action, unknown flags XDP_ABORTED; broadcast only on device maps.
        for (m, kind, name) in [
            (0u32, MapKind::DevMap, "dev"),
            (1, MapKind::CpuMap, "cpu"),
            (2, MapKind::XskMap, "xsk"),
            (3, MapKind::DevMapHash, "devh"),
        ] {
            for (key, flags, verdict, target) in [
                (
                    1u32,
                    1u64,
                    XdpAction::Redirect,
                    Some(RedirectTarget::Map {
                        map: name.into(),
                        kind,
                        key: 1,
                    }),
                ),
                (2, 3, XdpAction::Tx, None),
                (2, 1, XdpAction::Drop, None),
                (1, 1 << 5, XdpAction::Aborted, None),
            ] {
                let obj = redirect_object(&redirect_text(m, key, flags));
                let value: &[u8] = if m == 0 {
                    &[7, 0, 0, 0, 0, 0, 0, 0]
                } else {
                    &[1, 0, 0, 0]
                };
                obj.map(name)
                    .unwrap()
                    .update(&k(1), value, UpdateFlag::Any)
                    .unwrap();
                let v = obj.program("x").unwrap().verify(Mode::Strict).unwrap();
                let mut p = prepare(v, opts.clone());
                assert_eq!(
                    p.run_xdp(&mut [0u8; 16]).unwrap(),
                    verdict,
                    "{engine} {name}"
                );
                assert_eq!(p.last_redirect(), target, "{engine} {name}");
            }
            let obj = redirect_object(&redirect_text(m, 9, bpfx::BPF_F_BROADCAST | 2));
            let v = obj.program("x").unwrap().verify(Mode::Strict).unwrap();
            let mut p = prepare(v, opts.clone());
            let got = p.run_xdp(&mut [0u8; 16]).unwrap();
            if matches!(kind, MapKind::DevMap | MapKind::DevMapHash) {
                assert_eq!(got, XdpAction::Redirect, "{engine} {name}");
                assert_eq!(
                    p.last_redirect(),
                    Some(RedirectTarget::Broadcast {
                        map: name.into(),
                        kind,
                        exclude_ingress: false
                    })
                );
            } else {
                assert_eq!(got, XdpAction::Aborted, "{engine} {name}: no broadcast");
            }
        }
    }
}

#[test]
fn host_updates_follow_the_kernel_rules() {
    let obj = redirect_object("mov r0, 2\nexit");
    let dev = obj.map("dev").unwrap();
    assert_eq!(
        dev.update(&k(0), &[0; 8], UpdateFlag::Any),
        Err(MapError::NoDevice),
        "ifindex 0"
    );
    assert_eq!(
        dev.update(&k(0), &[1, 0, 0, 0, 5, 0, 0, 0], UpdateFlag::Any),
        Err(MapError::Unsupported(MapKind::DevMap)),
        "a program fd: bpfx runs no devmap programs"
    );
    assert_eq!(
        dev.update(&k(4), &[1, 0, 0, 0, 0, 0, 0, 0], UpdateFlag::Any),
        Err(MapError::Full)
    );
    assert_eq!(
        dev.update(&k(0), &[1, 0, 0, 0, 0, 0, 0, 0], UpdateFlag::NoExist),
        Err(MapError::Exists),
        "arrays refuse BPF_NOEXIST"
    );
    dev.update(
        &k(0),
        &[1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff],
        UpdateFlag::Any,
    )
    .unwrap();
    assert_eq!(
        dev.lookup(&k(0)),
        Ok(Some(vec![1, 0, 0, 0, 0, 0, 0, 0])),
        "prog id 0"
    );
    assert_eq!(dev.delete(&k(2)), Ok(()), "an empty slot clears");
    assert_eq!(dev.delete(&k(4)), Err(MapError::BadIndex));
    assert_eq!(
        dev.next_key(Some(&k(1))),
        Ok(Some(k(2).to_vec())),
        "by index"
    );
    assert_eq!(dev.len(), 1);

    let cpu = obj.map("cpu").unwrap();
    assert_eq!(
        cpu.update(&k(2), &k(64), UpdateFlag::Any),
        Err(MapError::NoDevice),
        "2 CPUs"
    );
    assert_eq!(
        cpu.update(&k(0), &k(16385), UpdateFlag::Any),
        Err(MapError::Overflow)
    );
    cpu.update(&k(1), &k(64), UpdateFlag::Any).unwrap();
    assert_eq!(cpu.lookup(&k(1)), Ok(Some(k(64).to_vec())));
    cpu.update(&k(1), &k(0), UpdateFlag::Any).unwrap();
    assert_eq!(
        cpu.lookup(&k(1)),
        Ok(None),
        "queue size 0 removes the entry"
    );

    let xsk = obj.map("xsk").unwrap();
    assert_eq!(
        xsk.update(&k(0), &k(3), UpdateFlag::Exist),
        Err(MapError::NotFound)
    );
    xsk.update(&k(0), &k(3), UpdateFlag::NoExist).unwrap();
    assert_eq!(
        xsk.update(&k(0), &k(3), UpdateFlag::NoExist),
        Err(MapError::Exists)
    );
    assert_eq!(
        xsk.lookup(&k(0)),
        Err(MapError::NotSupported(MapKind::XskMap))
    );
    assert_eq!(MapError::NotSupported(MapKind::XskMap).errno(), 95);

    let devh = obj.map("devh").unwrap();
    for i in 0..4 {
        devh.update(&k(100 + i), &k(1), UpdateFlag::Any).unwrap();
    }
    assert_eq!(
        devh.update(&k(7), &k(1), UpdateFlag::Any),
        Err(MapError::Full)
    );
    assert_eq!(devh.delete(&k(7)), Err(MapError::NotFound));
    devh.delete(&k(101)).unwrap();
    devh.update(&k(7), &k(2), UpdateFlag::Any).unwrap();
    let keys: Vec<_> = devh.iter().map(|(key, _)| key).collect();
    assert_eq!(keys, [k(7), k(100), k(102), k(103)].map(|a| a.to_vec()));

    for bad in [
        MapSpec::new("b", MapKind::DevMap, 8, 4, 1),
        MapSpec::new("b", MapKind::DevMap, 4, 12, 1),
        MapSpec::new("b", MapKind::XskMap, 4, 8, 1),
        MapSpec::new("b", MapKind::CpuMap, 4, 4, bpfx::MAX_CPUMAP_ENTRIES + 1),
        MapSpec::new("b", MapKind::DevMapHash, 4, 4, 0),
    ] {
        assert!(bad.check().is_err(), "{bad:?}");
    }
}

/// `bpf_redirect_map` on a map that is no redirect target stops the run (the kernel's
/// verifier refuses the pair; bpfx's helper refuses it at the call).
#[test]
fn redirect_map_on_another_kind_of_map_traps() {
    for (engine, opts) in engines() {
        let obj = Vm::new()
            .object(
                vec![ProgramDef::new("x", "xdp", code(&redirect_text(0, 0, 2)))],
                vec![MapSpec::new("a", MapKind::Array, 4, 4, 1)],
            )
            .unwrap();
        let v = obj.program("x").unwrap().verify(Mode::Strict).unwrap();
        let e = prepare(v, opts).run_xdp(&mut [0u8; 16]).unwrap_err();
        assert!(
            e.to_string().contains("redirect_map on array map `a`"),
            "{engine}: {e}"
        );
    }
}
