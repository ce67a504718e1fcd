//! cgroup device programs (`objects/cgroup_dev.c`): a container runtime's device allowlist
//! (default devices, exact and wildcard rules from a hash map, refusals counted) and a logger
//! reading `access_type` as two 16-bit halves; on every engine and JIT option set in both
//! modes. The refused twins (`objects/cgroup_dev_bad_N.c`: a narrow load of `major`, a write
//! of `minor`, a return value of 2, which Checked mode runs, a socket helper) and the sections.
//!
//! The kernel is the oracle where it can be asked (root, `bpftool`): its verifier loads
//! `cgroup_dev.o` and refuses the twins. It has no test run for the type.

// Not every helper of `common` is used here.
#[allow(dead_code)]
mod common;

#[path = "common/oracle.rs"]
#[allow(dead_code)]
mod oracle;

use bpfx::{
    BPF_DEVCG_ACC_MKNOD as M, BPF_DEVCG_ACC_READ as R, BPF_DEVCG_ACC_WRITE as W, Context,
    DevAccess, Mode, Object, UpdateFlag,
};
use oracle::objects;

fn open() -> Object {
    Object::open(objects().join("cgroup_dev.o")).unwrap()
}

fn rule(obj: &Object, kind: u32, major: u32, minor: u32, access: u16) {
    let key: Vec<u8> = [kind, major, minor]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    obj.map("rules")
        .unwrap()
        .update(&key, &u32::from(access).to_le_bytes(), UpdateFlag::Any)
        .unwrap();
}

fn denied(obj: &Object, kind: u32) -> u64 {
    let v = obj
        .map("denied")
        .unwrap()
        .lookup(&kind.to_le_bytes())
        .unwrap()
        .unwrap();
    u64::from_le_bytes(v[..8].try_into().unwrap())
}

#[test]
fn sections_and_btf_give_the_device_context() {
    let obj = open();
    for name in ["dev_allow", "dev_log"] {
        let p = obj.program(name).unwrap().load().unwrap();
        assert_eq!(p.context(), Context::CgroupDevice, "{name}");
    }
    assert_eq!(Context::CgroupDevice.name(), "cgroup_device");
    assert_eq!(Context::for_section("cgroup/dev"), Context::CgroupDevice);
    // libbpf before 1.0 matched the prefix.
    assert_eq!(
        Context::for_section("cgroup/dev/ctr"),
        Context::CgroupDevice
    );
    assert_eq!(
        Context::for_btf_type("bpf_cgroup_dev_ctx"),
        Some(Context::CgroupDevice)
    );
    for n in ["cgroup_device", "cgroup/dev"] {
        assert_eq!(Context::parse(n), Some(Context::CgroupDevice), "{n}");
    }
}

#[test]
fn the_allowlist_allows_defaults_and_rules_and_counts_refusals() {
    let accesses = [
        // /dev/null read-write: a default device.
        DevAccess::char(1, 3, R | W),
        // mknod of /dev/null: not in the defaults, no rule.
        DevAccess::char(1, 3, M),
        // /dev/mem 1:1: refused.
        DevAccess::char(1, 1, R),
        // A pty 136:4 under the wildcard rule c 136:* rw.
        DevAccess::char(136, 4, R | W),
        DevAccess::char(136, 4, M),
        // The exact rule b 8:0 r: read allowed, write refused.
        DevAccess::block(8, 0, R),
        DevAccess::block(8, 0, R | W),
        // The exact rule wins over the wildcard: b 8:16 rwm, b 8:* none.
        DevAccess::block(8, 16, R | W | M),
        DevAccess::block(8, 32, R),
        // The tty 5:0; a block device of the same numbers is not a default.
        DevAccess::char(5, 0, W),
        DevAccess::block(5, 0, W),
    ];
    let (verdicts, counts) = common::run_object_everywhere(open, "dev_allow", |p, obj| {
        rule(obj, 2, 136, u32::MAX, R | W);
        rule(obj, 1, 8, 0, R);
        rule(obj, 1, 8, 16, R | W | M);
        rule(obj, 1, 8, u32::MAX, 0);
        let v: Vec<u64> = accesses
            .iter()
            .map(|a| p.run_cgroup_dev(a).unwrap())
            .collect();
        (v, (denied(obj, 0), denied(obj, 1), denied(obj, 2)))
    });
    assert_eq!(verdicts, [1, 0, 0, 1, 0, 1, 0, 1, 0, 1, 0]);
    assert_eq!(counts, (0, 3, 3));
}

#[test]
fn the_logger_reads_access_type_by_halves() {
    let a = DevAccess::block(259, 7, R | M);
    let last = common::run_object_everywhere(open, "dev_log", |p, obj| {
        assert_eq!(p.run_cgroup_dev(&a).unwrap(), 1);
        obj.map("last")
            .unwrap()
            .lookup(&0u32.to_le_bytes())
            .unwrap()
            .unwrap()
    });
    assert_eq!(last[0..2], 1u16.to_le_bytes(), "BPF_DEVCG_DEV_BLOCK");
    assert_eq!(last[2..4], (R | M).to_le_bytes());
    assert_eq!(last[4..8], 259u32.to_le_bytes());
    assert_eq!(last[8..12], 7u32.to_le_bytes());
}

#[test]
fn another_context_is_refused() {
    let obj = open();
    let mut p = obj.program("dev_log").unwrap().load().unwrap();
    assert!(
        p.run_perf_event(&Default::default(), &Default::default())
            .is_err()
    );
    let obj = Object::open(objects().join("lwt.o")).unwrap();
    let mut p = obj.program("in_filter").unwrap().load().unwrap();
    let e = p.run_cgroup_dev(&DevAccess::char(1, 3, R)).unwrap_err();
    assert!(e.to_string().contains("cgroup_device"), "{e}");
}

/// The refused twins: (file, program, why, refused in Checked mode too: the return range is
/// Strict mode's proof alone).
const TWINS: [(&str, &str, &str, bool); 4] = [
    (
        "cgroup_dev_bad_0.o",
        "narrow_major",
        "invalid access to context at offset 4 size 2",
        true,
    ),
    (
        "cgroup_dev_bad_1.o",
        "write_minor",
        "read-only context field at offset 8",
        true,
    ),
    ("cgroup_dev_bad_2.o", "verdict_2", "[0, 1]", false),
    (
        "cgroup_dev_bad_3.o",
        "cookie",
        "program of type cgroup_device cannot use helper get_socket_cookie#46",
        true,
    ),
];

#[test]
fn the_twins_are_refused() {
    common::twins_refused(&objects(), &TWINS);
}

/// Checked mode runs a program returning 2, which the kernel reads as it reads every cgroup
/// program's verdict, by bit 0: refused.
#[test]
fn checked_mode_runs_an_out_of_range_verdict_as_the_kernel_reads_it() {
    let open = || Object::open(objects().join("cgroup_dev_bad_2.o")).unwrap();
    for (engine, opts) in common::engines() {
        let v = open()
            .program("verdict_2")
            .unwrap()
            .verify(Mode::Checked)
            .unwrap();
        let mut p = common::prepare(v, opts);
        assert_eq!(
            p.run_cgroup_dev(&DevAccess::char(1, 3, R)).unwrap(),
            2,
            "{engine}"
        );
        assert_eq!(
            p.run_cgroup_dev(&DevAccess::char(4, 3, R)).unwrap(),
            1,
            "{engine}"
        );
    }
}

#[test]
fn the_kernel_loads_the_fixture_and_refuses_the_twins() {
    oracle::loads_fixture_refuses_twins("cgroup_dev", TWINS.map(|t| t.0));
}
