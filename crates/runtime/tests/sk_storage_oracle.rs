//! The kernel as the oracle of socket-local storage (root and `bpftool` needed, skipped
//! otherwise): it creates `objects/sk_storage.c`'s socket-storage map and loads its TC and
//! cgroup_skb programs, and refuses each unsafe twin `objects/sk_storage_bad_N.c` with the
//! reason bpfx gives in Strict mode (the socket not checked against NULL, the map passed to
//! `map_lookup_elem`, a hash map passed to `sk_storage_get`, the value not checked, a read
//! past the value, a call from a socket filter).

// Not every helper of `common` is used here.
#[allow(dead_code)]
mod common;

#[path = "common/oracle.rs"]
#[allow(dead_code)]
mod oracle;

use bpfx::{Mode, Object};
use oracle::{load_all, load_by_section, objects, unavailable};

#[test]
fn the_kernel_accepts_the_fixtures_and_refuses_the_twins_as_bpfx_does() {
    if let Some(why) = unavailable() {
        eprintln!("skipped: {why}");
        return;
    }
    let path = objects().join("sk_storage.o");
    load_all(&path).unwrap_or_else(|e| panic!("the kernel refuses sk_storage.o: {e}"));
    let obj = Object::open(&path).unwrap();
    let names: Vec<String> = obj.programs().map(|p| p.name.to_string()).collect();
    assert_eq!(names.len(), 4);
    for name in names {
        for mode in [Mode::Checked, Mode::Strict] {
            obj.program(&name)
                .unwrap()
                .verify(mode)
                .unwrap_or_else(|e| panic!("sk_storage.o {name} {mode:?}: {e}"));
        }
    }
    // The kernel's reason, and bpfx's.
    for (n, kernel, ours) in [
        (
            1,
            "type=sock_common_or_null expected=sock_common",
            "may be null",
        ),
        (
            2,
            "cannot pass map_type 24 into func bpf_map_lookup_elem#1",
            "socket-storage map",
        ),
        (
            3,
            "cannot pass map_type 1 into func bpf_sk_storage_get#107",
            "socket-storage map",
        ),
        (4, "invalid mem access 'map_value_or_null'", "may be null"),
        (
            5,
            "invalid access to map value, value_size=24 off=24 size=8",
            "outside",
        ),
        (
            6,
            "program of this type cannot use helper bpf_sk_storage_get#107",
            "cannot use helper sk_storage_get#107",
        ),
    ] {
        let path = objects().join(format!("sk_storage_bad_{n}.o"));
        let e = load_by_section(&path)
            .map(|_| ())
            .expect_err("the kernel refuses it");
        assert!(e.contains(kernel), "sk_storage_bad_{n}: {e}");
        let obj = Object::open(&path).unwrap();
        let e = obj
            .program("bad")
            .unwrap()
            .verify(Mode::Strict)
            .map(|_| ())
            .expect_err("bpfx refuses it");
        assert!(e.to_string().contains(ours), "sk_storage_bad_{n}: {e}");
    }
}
