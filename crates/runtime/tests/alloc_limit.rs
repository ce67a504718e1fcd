//! A map whose storage the host cannot allocate fails to be created with
//! [`bpfx::Error::MemoryLimit`], never an abort: the maps are created in a child process (this
//! test binary again) under an address-space limit (`prlimit --as`) too small for them,
//! although they fit bpfx's own limit (the `Vm`'s memory limit).

use bpfx::{Error, MapKind, MapSpec, Vm};
use std::process::Command;

mod common;

/// Set in the child's environment.
const CHILD: &str = "BPFX_ALLOC_LIMIT_CHILD";
/// The child's address space, in bytes.
const LIMIT: u64 = 768 << 20;
/// Entries of each array: 8-byte values, 240 MB each, within the `Vm`'s memory limit together.
const ENTRIES: u32 = 30_000_000;

#[test]
fn a_map_the_host_cannot_allocate_fails_with_the_memory_error() {
    if std::env::var_os(CHILD).is_some() {
        return child();
    }
    if Command::new("prlimit").arg("--version").output().is_err() {
        eprintln!("SKIPPED: no prlimit to limit the child's address space");
        return;
    }
    let limit = format!("--as={LIMIT}");
    let (ok, text) = common::rerun_alone(
        "a_map_the_host_cannot_allocate_fails_with_the_memory_error",
        CHILD,
        &["prlimit", &limit],
    );
    assert!(ok, "{text}");
    assert!(text.contains("refused after"), "{text}");
}

/// Creates 240 MB arrays until one fails: it must fail with the memory error naming it.
fn child() {
    let vm = Vm::new().mem_limit(1 << 40);
    let specs: Vec<MapSpec> = (0..8)
        .map(|i| MapSpec::new(format!("big{i}"), MapKind::Array, 4, 8, ENTRIES))
        .collect();
    let obj = vm.object(vec![], specs).unwrap();
    let mut held = Vec::new();
    for i in 0..8 {
        match obj.map(&format!("big{i}")) {
            Ok(m) => held.push(m),
            Err(Error::MemoryLimit { what, need, .. }) => {
                assert!(what.contains(&format!("big{i}")), "{what}");
                assert!(what.contains("could not allocate"), "{what}");
                assert_eq!(need, u64::from(ENTRIES) * 8);
                println!("refused after {} maps: {what}", held.len());
                return;
            }
            Err(e) => panic!("map {i}: {e}"),
        }
    }
    panic!("8 maps of 240 MB fit in {LIMIT} bytes of address space");
}
