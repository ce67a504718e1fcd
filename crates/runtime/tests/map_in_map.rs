//! Maps of maps through a clang-built XDP load balancer (`objects/lb_mim.c`): the outer
//! HASH_OF_MAPS's `.values` slot installed at creation, inner maps added and replaced by the
//! host, lookups through inner handles on every engine, in both modes.

#[allow(dead_code)]
mod common;

use bpfx::{Map, MapError, MapKind, Mode, Object, Program, UpdateFlag, Vm, XdpAction};
use common::{engines, prepare};
use std::path::PathBuf;
use std::sync::Arc;

fn object(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/objects")).join(name)
}

/// An Ethernet + IPv4 + TCP frame from `sport` to `dport`, destination address 10.0.0.1.
fn frame(sport: u16, dport: u16) -> Vec<u8> {
    let mut f = vec![0u8; 54];
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    f[14] = 0x45;
    f[23] = 6;
    f[30..34].copy_from_slice(&[10, 0, 0, 1]);
    f[34..36].copy_from_slice(&sport.to_be_bytes());
    f[36..38].copy_from_slice(&dport.to_be_bytes());
    f
}

/// A backend entry: its address (network order, as the program copies it into the packet)
/// and packet count.
fn backend(addr: [u8; 4], packets: u64) -> Vec<u8> {
    let mut v = addr.to_vec();
    v.extend([0; 4]);
    v.extend(packets.to_le_bytes());
    v
}

fn packets(v: &[u8]) -> u64 {
    u64::from_le_bytes(v[8..16].try_into().unwrap())
}

fn lb(obj: &Object, mode: Mode, opts: Option<bpfx_jit::JitOptions>) -> Program {
    let v = obj
        .program("lb")
        .unwrap()
        .verify(mode)
        .unwrap_or_else(|e| panic!("{mode:?}: {e}"));
    prepare(v, opts)
}

#[test]
fn load_balancer_picks_backends_through_a_hash_of_maps() {
    for mode in [Mode::Strict, Mode::Checked] {
        for (engine, opts) in engines() {
            let what = format!("{mode:?} {engine}");
            let obj = Object::open(object("lb_mim.o")).unwrap();
            let mut prog = lb(&obj, mode, opts);
            let services = obj.map("services").unwrap();
            assert_eq!(services.kind(), MapKind::HashOfMaps);
            let web = obj.map("web_backends").unwrap();
            // The `.values` initialiser put `web_backends` at service 80 when `services` was
            // created.
            let port = |p: u32| p.to_le_bytes();
            assert!(
                services
                    .inner(&port(80))
                    .is_some_and(|m| Arc::ptr_eq(&m, &web)),
                "{what}"
            );
            assert_eq!(
                services.lookup(&port(80)),
                Ok(Some(web.id().to_le_bytes().to_vec())),
                "{what}: a host lookup gives the inner map's id"
            );
            for (i, addr) in [
                [192, 168, 0, 10],
                [192, 168, 0, 11],
                [0; 4],
                [192, 168, 0, 13],
            ]
            .into_iter()
            .enumerate()
            {
                web.update(
                    &(i as u32).to_le_bytes(),
                    &backend(addr, 0),
                    UpdateFlag::Any,
                )
                .unwrap();
            }
            // A second service, added by the host from the template.
            let template = services.inner_template().unwrap().clone();
            let dns = Arc::new(Map::new(template.clone()).unwrap());
            dns.update(
                &1u32.to_le_bytes(),
                &backend([172, 16, 0, 53], 0),
                UpdateFlag::Any,
            )
            .unwrap();
            services.set_inner(&port(53), &dns).unwrap();

            let mut expect_web = [0u64; 4];
            let mut expect_dns = [0u64; 4];
            for sport in 1000u16..1040 {
                for dport in [80u16, 53, 443] {
                    let mut f = frame(sport, dport);
                    let got = prog.run_xdp(&mut f).unwrap();
                    let idx = usize::from(sport & 3);
                    let (table, addrs): (&mut [u64; 4], [[u8; 4]; 4]) = match dport {
                        80 => (
                            &mut expect_web,
                            [
                                [192, 168, 0, 10],
                                [192, 168, 0, 11],
                                [0; 4],
                                [192, 168, 0, 13],
                            ],
                        ),
                        53 => (&mut expect_dns, [[0; 4], [172, 16, 0, 53], [0; 4], [0; 4]]),
                        _ => {
                            assert_eq!(got, XdpAction::Pass, "{what}: no service 59");
                            assert_eq!(f, frame(sport, dport));
                            continue;
                        }
                    };
                    if addrs[idx] == [0; 4] {
                        assert_eq!(got, XdpAction::Drop, "{what}: {sport}->{dport}");
                        assert_eq!(f, frame(sport, dport));
                    } else {
                        table[idx] += 1;
                        assert_eq!(got, XdpAction::Tx, "{what}: {sport}->{dport}");
                        assert_eq!(f[30..34], addrs[idx], "{what}: rewritten");
                    }
                }
            }
            let counts = |m: &Map| -> Vec<u64> { m.iter().map(|(_, v)| packets(&v)).collect() };
            assert_eq!(counts(&web), expect_web, "{what}");
            assert_eq!(counts(&dns), expect_dns, "{what}");

            // Replacing service 53's table: later runs use the new one, the old keeps its
            // counts; deleting the service makes its packets pass.
            let dns2 = Arc::new(Map::new(template.clone()).unwrap());
            dns2.update(
                &1u32.to_le_bytes(),
                &backend([172, 16, 1, 53], 0),
                UpdateFlag::Any,
            )
            .unwrap();
            services.set_inner(&port(53), &dns2).unwrap();
            let mut f = frame(1001, 53);
            assert_eq!(prog.run_xdp(&mut f).unwrap(), XdpAction::Tx, "{what}");
            assert_eq!(f[30..34], [172, 16, 1, 53], "{what}");
            assert_eq!(counts(&dns2), [0, 1, 0, 0], "{what}");
            assert_eq!(counts(&dns), expect_dns, "{what}");
            services.delete(&port(53)).unwrap();
            let mut f = frame(1001, 53);
            assert_eq!(prog.run_xdp(&mut f).unwrap(), XdpAction::Pass, "{what}");

            // The kernel's template check: another value size is EINVAL, and the outer map
            // holds at most max_entries (128) services.
            let wrong =
                Arc::new(Map::new(bpfx::MapSpec::new("w", MapKind::Array, 4, 8, 4)).unwrap());
            assert_eq!(
                services.set_inner(&port(22), &wrong),
                Err(MapError::InnerMismatch)
            );
            assert_eq!(
                services.update(&port(22), &web.id().to_le_bytes(), UpdateFlag::Any),
                Err(MapError::Unsupported(MapKind::HashOfMaps)),
                "no map fds: inner maps are set with set_inner"
            );
            for p in 0..127 {
                services.set_inner(&port(1000 + p), &dns).unwrap();
            }
            assert_eq!(services.set_inner(&port(2000), &dns), Err(MapError::Full));
        }
    }
}

/// A run sees the inner maps as they were when it started, and holds them: dropping every
/// other reference to a replaced inner map frees it only once no run holds it.
#[test]
fn inner_maps_live_while_the_outer_map_or_a_program_holds_them() {
    let obj = Vm::new().open(object("lb_mim.o")).unwrap();
    let mut prog = lb(&obj, Mode::Strict, None);
    let services = obj.map("services").unwrap();
    let template = services.inner_template().unwrap().clone();
    let used = obj.mem_used();
    let t = Arc::new(Map::new(template).unwrap());
    t.update(
        &0u32.to_le_bytes(),
        &backend([1, 2, 3, 4], 0),
        UpdateFlag::Any,
    )
    .unwrap();
    services.set_inner(&7u32.to_le_bytes(), &t).unwrap();
    let weak = Arc::downgrade(&t);
    drop(t);
    let mut f = frame(4, 7);
    assert_eq!(prog.run_xdp(&mut f).unwrap(), XdpAction::Tx);
    assert_eq!(
        weak.upgrade()
            .map(|m| packets(&m.lookup(&0u32.to_le_bytes()).unwrap().unwrap())),
        Some(1)
    );
    services.delete(&7u32.to_le_bytes()).unwrap();
    assert!(
        weak.upgrade().is_none(),
        "no run holds it after the run ended"
    );
    assert_eq!(obj.mem_used(), used, "host-made inner maps are the host's");
}

/// An ARRAY_OF_MAPS of hash maps, in assembly: `counts[in[0]][in[1]] += 1`
/// through two lookups; r0 = 1 when the slot is empty, 2 when the inner key is missing.
#[test]
fn array_of_maps_lookups_reach_hash_inner_maps() {
    use bpfx::{MapSpec, ProgramDef};
    let text = "
        ldxw r6, [r1+0]
        ldxw r7, [r1+4]
        stxw [r10-4], r6
        stxw [r10-8], r7
        lddw r1, map_idx(0)
        mov r2, r10
        add r2, -4
        call 1
        jne r0, 0, +2
        mov r0, 1
        exit
        mov r1, r0
        mov r2, r10
        add r2, -8
        call 1
        jne r0, 0, +2
        mov r0, 2
        exit
        mov r1, 1
        lock add [r0+0], r1
        mov r0, 0
        exit";
    let template = MapSpec::new("per_tenant", MapKind::Hash, 4, 8, 16);
    let outer = MapSpec {
        inner: Some(Box::new(template.clone())),
        ..MapSpec::new("tenants", MapKind::ArrayOfMaps, 4, 4, 4)
    };
    for mode in [Mode::Strict, Mode::Checked] {
        for (engine, opts) in engines() {
            let what = format!("{mode:?} {engine}");
            let obj = Vm::new()
                .object(
                    vec![ProgramDef::new("p", "test", common::code(text))],
                    vec![outer.clone()],
                )
                .unwrap();
            let v = obj
                .program("p")
                .unwrap()
                .input_size(8)
                .verify(mode)
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            let mut p = prepare(v, opts);
            let tenants = obj.map("tenants").unwrap();
            let inner: Vec<Arc<Map>> = (0..2)
                .map(|_| Arc::new(Map::new(template.clone()).unwrap()))
                .collect();
            for (i, m) in inner.iter().enumerate() {
                tenants.set_inner(&(i as u32 * 2).to_le_bytes(), m).unwrap();
                for key in [5u32, 9] {
                    m.update(&key.to_le_bytes(), &0u64.to_le_bytes(), UpdateFlag::Any)
                        .unwrap();
                }
            }
            let mut run = |slot: u32, key: u32| {
                let mut input = [slot.to_le_bytes(), key.to_le_bytes()].concat();
                p.run(&mut input).unwrap()
            };
            assert_eq!(run(1, 5), 1, "{what}: empty slot");
            assert_eq!(run(4, 5), 1, "{what}: past the end");
            assert_eq!(run(0, 6), 2, "{what}: missing inner key");
            for (slot, key, n) in [(0u32, 5u32, 3), (2, 5, 1), (2, 9, 2)] {
                for _ in 0..n {
                    assert_eq!(run(slot, key), 0, "{what}");
                }
            }
            let counts = |m: &Map| -> Vec<u64> {
                m.iter()
                    .map(|(_, v)| u64::from_le_bytes(v.try_into().unwrap()))
                    .collect()
            };
            assert_eq!(counts(&inner[0]), [3, 0], "{what}");
            assert_eq!(counts(&inner[1]), [1, 2], "{what}");
            assert_eq!(tenants.delete(&2u32.to_le_bytes()), Ok(()));
            assert_eq!(run(2, 5), 1, "{what}: deleted");
            assert_eq!(
                tenants.next_key(None),
                Ok(Some(0u32.to_le_bytes().to_vec())),
                "{what}"
            );
        }
    }
}

/// The host removes an inner map (dropping its last reference) while a program that looked it
/// up is still running, between the lookup and the read of its value: the run still holds the
/// map, so the read (proven in Strict, unguarded on the JIT) reads it; the map is freed when
/// the run ends.
#[test]
fn an_inner_map_removed_mid_run_lives_until_the_run_ends() {
    use bpfx::{HelperSig, MapSpec, ProgramDef, RetKind};
    use std::sync::{Mutex, OnceLock, Weak};
    let text = "
        stw [r10-4], 0
        lddw r1, map_idx(0)
        mov r2, r10
        add r2, -4
        call 1
        jne r0, 0, +2
        mov r0, 1
        exit
        mov r1, r0
        mov r2, r10
        add r2, -4
        call 1
        jne r0, 0, +2
        mov r0, 2
        exit
        mov r6, r0
        call 1000
        mov r7, r0
        ldxdw r0, [r6+0]
        lsh r7, 32
        or r0, r7
        exit";
    let template = MapSpec::new("cell", MapKind::Array, 4, 8, 1);
    let outer = MapSpec {
        inner: Some(Box::new(template.clone())),
        ..MapSpec::new("cells", MapKind::HashOfMaps, 4, 4, 2)
    };
    for (engine, opts) in engines() {
        let outer_map: Arc<OnceLock<Arc<Map>>> = Arc::new(OnceLock::new());
        let weak: Arc<Mutex<Weak<Map>>> = Arc::new(Mutex::new(Weak::new()));
        let (o, w) = (outer_map.clone(), weak.clone());
        let vm = Vm::new().register_helper(
            1000,
            HelperSig::new("drop_inner", vec![], RetKind::Scalar),
            move |_, _| {
                // The host removes the inner map: its last reference outside the run goes.
                if let Some(m) = o.get() {
                    let _ = m.delete(&0u32.to_le_bytes());
                }
                Ok(u64::from(w.lock().unwrap().upgrade().is_some()))
            },
        );
        let obj = vm
            .object(
                vec![ProgramDef::new("p", "test", common::code(text))],
                vec![outer.clone()],
            )
            .unwrap();
        let v = obj
            .program("p")
            .unwrap()
            .input_size(0)
            .verify(Mode::Strict)
            .unwrap_or_else(|e| panic!("{engine}: {e}"));
        let mut p = prepare(v, opts);
        let cells = obj.map("cells").unwrap();
        outer_map.set(cells.clone()).unwrap();
        let cell = Arc::new(Map::new(template.clone()).unwrap());
        cell.update(
            &0u32.to_le_bytes(),
            &0x1234u64.to_le_bytes(),
            UpdateFlag::Any,
        )
        .unwrap();
        cells.set_inner(&0u32.to_le_bytes(), &cell).unwrap();
        *weak.lock().unwrap() = Arc::downgrade(&cell);
        drop(cell);
        assert_eq!(
            p.run(&mut []).unwrap(),
            (1 << 32) | 0x1234,
            "{engine}: alive during the run, its value read"
        );
        assert!(
            weak.lock().unwrap().upgrade().is_none(),
            "{engine}: freed after"
        );
        assert_eq!(
            p.run(&mut []).unwrap(),
            1,
            "{engine}: gone for the next run"
        );
    }
}

/// `objects/xdp_mim_spill.c`: clang spills the inner map's handle between the outer lookup and
/// its null check (`*(u64 *)(r10 - 0x20) = r0` right after the call), checks a fill of it and
/// passes another fill to the inner lookup. The check decides every copy of that lookup, the
/// spill included, as the kernel's does, so the program verifies in both modes; it runs on
/// every engine, counting through the tenants' tables and the totals.
#[test]
fn a_spilled_inner_handle_is_decided_by_the_check_of_its_fill() {
    const XDP_TX: XdpAction = XdpAction::Tx;
    // The program's totals, as it computes them, for a run that finds `counter` (the tenant's
    // counter after its increment) or no table (`None`).
    fn step(s: &mut [u64; 4], counter: Option<u64>) {
        s[0] = s[0].wrapping_add(1);
        s[1] = s[1].wrapping_add(s[0]);
        s[0] = s[0].wrapping_add(s[1]);
        s[2] = s[2].wrapping_add(s[1].wrapping_add(s[0]));
        s[1] = s[1].wrapping_add(s[2]);
        s[0] ^= s[2];
        s[3] = s[3].wrapping_add(s[2].wrapping_add(s[1]).wrapping_add(s[0]));
        s[2] ^= s[3];
        s[1] ^= s[3];
        s[0] ^= s[3];
        if let Some(c) = counter {
            for x in s.iter_mut() {
                *x = x.wrapping_add(c);
            }
        }
    }
    let u64s = |m: &Map| -> Vec<u64> {
        m.iter()
            .map(|(_, v)| u64::from_le_bytes(v.try_into().unwrap()))
            .collect()
    };
    for mode in [Mode::Strict, Mode::Checked] {
        for (engine, opts) in engines() {
            let what = format!("{mode:?} {engine}");
            let obj = Object::open(object("xdp_mim_spill.o")).unwrap();
            let v = obj
                .program("mim_spill")
                .unwrap()
                .verify(mode)
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            let mut prog = prepare(v, opts);
            let tenants = obj.map("tenants").unwrap();
            assert_eq!(tenants.kind(), MapKind::ArrayOfMaps);
            let template = tenants.inner_template().unwrap().clone();
            // Tenants 1 and 3 have tables; 0 and 2 none.
            let tables: Vec<Arc<Map>> = (0..2)
                .map(|_| Arc::new(Map::new(template.clone()).unwrap()))
                .collect();
            tenants.set_inner(&1u32.to_le_bytes(), &tables[0]).unwrap();
            tenants.set_inner(&3u32.to_le_bytes(), &tables[1]).unwrap();
            let mut counters = [[0u64; 4]; 2];
            let mut totals = [0u64; 4];
            for i in 0u8..40 {
                // The high bits are the program's to mask off.
                let (tenant, slot) = (i % 4, (i / 4) % 4);
                let mut pkt = [tenant | 0x40, slot | 0x80, 0xee, 0x11];
                let got = prog.run_xdp(&mut pkt).unwrap();
                let table = match tenant {
                    1 => Some(0),
                    3 => Some(1),
                    _ => None,
                };
                match table {
                    Some(t) => {
                        let c = &mut counters[t][usize::from(slot)];
                        *c += 1;
                        step(&mut totals, Some(*c));
                        assert_eq!(got, XDP_TX, "{what}: packet {i}");
                        assert_eq!(pkt[2], *c as u8, "{what}: packet {i}");
                    }
                    None => {
                        step(&mut totals, None);
                        assert_eq!(got, XdpAction::Pass, "{what}: packet {i}");
                        assert_eq!(pkt[2], 0xee, "{what}: packet {i}");
                    }
                }
                assert_eq!(pkt[3], 0x11, "{what}: packet {i}");
            }
            assert_eq!(u64s(&tables[0]), counters[0], "{what}");
            assert_eq!(u64s(&tables[1]), counters[1], "{what}");
            assert_eq!(u64s(&obj.map("stats").unwrap()), totals, "{what}");
            // A packet too short to read: passed, nothing counted.
            let mut short = [1u8, 1];
            assert_eq!(prog.run_xdp(&mut short).unwrap(), XdpAction::Pass, "{what}");
            assert_eq!(u64s(&tables[0]), counters[0], "{what}");
        }
    }
}
