//! A map of maps declared the legacy way (`objects/xdp_legacy_mim.c`: `struct bpf_map_def
//! SEC("maps")`, an array of maps with no inner map template in the object): without a
//! template its programs cannot load, as the kernel refuses such a map without the inner map
//! its loader gives (libbpf's `bpf_map__set_inner_map_fd`); with one given by
//! `Vm::inner_map`, the program verifies in both modes and runs on every engine, its lookups
//! through the outer map typed by the template, and the host fills the tenants' tables with
//! maps made from it.

#[allow(dead_code)]
mod common;

use std::sync::Arc;

use bpfx::{Map, MapError, MapKind, MapSpec, Mode, Object, UpdateFlag, Vm};
use common::run_object_everywhere;

const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;
const XDP_TX: u32 = 3;

fn path() -> String {
    concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/objects/xdp_legacy_mim.o"
    )
    .to_string()
}

/// The tenants' tables: IPv4 destinations to XDP verdicts.
fn template() -> MapSpec {
    MapSpec::new("tenant_table", MapKind::Hash, 4, 4, 16)
}

fn open() -> Object {
    Vm::new()
        .inner_map("tenants", template())
        .open(path())
        .unwrap()
}

/// An Ethernet + IPv4 frame to 10.0.0.`daddr` with TOS `tos`.
fn frame(tos: u8, daddr: u8) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00];
    f.extend_from_slice(&[0x45, tos, 0, 20, 0, 0, 0, 0, 64, 17, 0, 0]);
    f.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, daddr]);
    f
}

#[test]
fn without_a_template_the_legacy_map_of_maps_is_refused() {
    let obj = Vm::new().open(path()).unwrap();
    for mode in [Mode::Checked, Mode::Strict] {
        let e = obj
            .program("xdp_legacy_mim")
            .unwrap()
            .verify(mode)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`tenants`: a map of maps needs an inner map template"),
            "{mode:?}: {e}"
        );
    }
}

#[test]
fn with_the_loaders_template_the_program_runs_on_every_engine() {
    let frames = [
        frame(0, 5),
        frame(1, 5),
        frame(1, 6),
        frame(2, 5),
        frame(3, 9),
    ];
    let verdicts = run_object_everywhere(open, "xdp_legacy_mim", |prog, obj| {
        let tenants = obj.map("tenants").unwrap();
        assert_eq!(tenants.spec().inner.as_deref(), Some(&template()));
        // Tenant 1 drops 10.0.0.5; tenant 3 bounces 10.0.0.9; tenants 0 and 2 have no table.
        let t1 = Arc::new(Map::new(template()).unwrap());
        t1.update(&[10, 0, 0, 5], &XDP_DROP.to_le_bytes(), UpdateFlag::Any)
            .unwrap();
        tenants.set_inner(&1u32.to_le_bytes(), &t1).unwrap();
        let t3 = Arc::new(Map::new(template()).unwrap());
        t3.update(&[10, 0, 0, 9], &XDP_TX.to_le_bytes(), UpdateFlag::Any)
            .unwrap();
        tenants.set_inner(&3u32.to_le_bytes(), &t3).unwrap();
        // A table of another shape is not one of the template's (EINVAL).
        let other = Arc::new(Map::new(MapSpec::new("o", MapKind::Hash, 4, 8, 16)).unwrap());
        assert_eq!(
            tenants.set_inner(&2u32.to_le_bytes(), &other),
            Err(MapError::InnerMismatch)
        );
        frames
            .iter()
            .map(|f| {
                let mut p = bpfx::Packet::new(f);
                prog.run_xdp_packet(&mut p).unwrap().action.code() as u32
            })
            .collect::<Vec<_>>()
    });
    assert_eq!(verdicts, [XDP_PASS, XDP_DROP, XDP_PASS, XDP_PASS, XDP_TX]);
}

#[test]
fn a_declared_template_is_kept_and_other_maps_are_left_alone() {
    // lb_mim.c's `services` declares its template (`__array(values, ...)`): it keeps it, as
    // libbpf refuses to set another; `web_backends`, an array, gets none.
    let lb = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/objects/lb_mim.o");
    let declared = Vm::new().open(lb).unwrap();
    let given = Vm::new()
        .inner_map("services", template())
        .inner_map("web_backends", template())
        .open(lb)
        .unwrap();
    for name in ["services", "web_backends"] {
        assert_eq!(
            given.map(name).unwrap().spec().inner,
            declared.map(name).unwrap().spec().inner,
            "{name}"
        );
    }
    assert!(given.map("services").unwrap().spec().inner.is_some());
}
