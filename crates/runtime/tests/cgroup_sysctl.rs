//! cgroup sysctl programs (`objects/cgroup_sysctl.c`): a `/proc/sys` policy counting reads,
//! refusing writes under `kernel/`, checking `tcp_mem`'s three numbers with `bpf_strtoul`,
//! capping `somaxconn` with `bpf_strtol` and `bpf_sysctl_set_new_value`; a logger of the current
//! value (cut with `-E2BIG`); on every engine and JIT option set in both modes. The refused
//! twins (`objects/cgroup_sysctl_bad_N.c`: a 2-byte `file_pos` store, a `write` store, a return
//! value of 2, which Checked mode accepts, a socket helper) and the sections.
//!
//! The kernel is the oracle where it can be asked (root, `bpftool`): its verifier loads
//! `cgroup_sysctl.o` and refuses the twins. It has no test run for the type.

// Not every helper of `common` is used here.
#[allow(dead_code)]
mod common;

#[path = "common/oracle.rs"]
#[allow(dead_code)]
mod oracle;

use bpfx::{Context, Object, Sysctl, UpdateFlag};
use oracle::objects;

fn open() -> Object {
    Object::open(objects().join("cgroup_sysctl.o")).unwrap()
}

fn write(name: &str, value: &[u8]) -> Sysctl {
    Sysctl {
        name: name.into(),
        current: Some(b"0\n".to_vec()),
        new_value: Some(value.to_vec()),
        file_pos: 5,
    }
}

const TCP_MEM: &[u8] = b"4096\t87380\t6291456\n";

#[test]
fn sections_and_btf_give_the_sysctl_context() {
    let obj = open();
    for name in ["sysctl_guard", "sysctl_log"] {
        let p = obj.program(name).unwrap().load().unwrap();
        assert_eq!(p.context(), Context::CgroupSysctl, "{name}");
    }
    assert_eq!(Context::CgroupSysctl.name(), "cgroup_sysctl");
    assert_eq!(
        Context::for_section("cgroup/sysctl/legacy"),
        Context::CgroupSysctl
    );
    assert_eq!(
        Context::for_btf_type("bpf_sysctl"),
        Some(Context::CgroupSysctl)
    );
    assert_eq!(Context::parse("cgroup/sysctl"), Some(Context::CgroupSysctl));
}

#[test]
fn the_guard_parses_checks_and_rewrites_writes() {
    let accesses = [
        (
            Sysctl {
                name: "net/ipv4/tcp_mem".into(),
                current: Some(TCP_MEM.to_vec()),
                ..Sysctl::default()
            },
            10_000_000u64,
        ),
        (write("kernel/core_pattern", b"core\n"), 10_000_000),
        (write("net/ipv4/tcp_mem", TCP_MEM), 10_000_000),
        (write("net/ipv4/tcp_mem", TCP_MEM), 1_000_000),
        (write("net/ipv4/tcp_mem", b"4096 abc 1\n"), 10_000_000),
        (write("net/core/somaxconn", b"8192\n"), 0),
        (write("net/core/somaxconn", b"128\n"), 0),
        (write("vm/swappiness", b"10\n"), 0),
    ];
    let (outs, reads) = common::run_object_everywhere(open, "sysctl_guard", |p, obj| {
        let outs: Vec<_> = accesses
            .iter()
            .map(|(s, max)| {
                obj.map("limits")
                    .unwrap()
                    .update(&0u32.to_le_bytes(), &max.to_le_bytes(), UpdateFlag::Any)
                    .unwrap();
                let o = p.run_sysctl(s).unwrap();
                (o.code, o.file_pos, o.new_value)
            })
            .collect();
        let reads = obj
            .map("reads")
            .unwrap()
            .lookup(&0u32.to_le_bytes())
            .unwrap()
            .unwrap();
        (outs, reads)
    });
    assert_eq!(
        outs,
        [
            (1, 0, None),
            (0, 0, None),
            (1, 0, None),
            (0, 0, None),
            (0, 0, None),
            (1, 0, Some(b"4096\n".to_vec())),
            (1, 0, None),
            (1, 0, None),
        ]
    );
    assert_eq!(reads, 1u64.to_le_bytes());
}

#[test]
fn the_logger_gets_the_current_value_cut_or_whole() {
    let values: [Option<&[u8]>; 3] = [Some(TCP_MEM), Some(b"1\n"), None];
    let last = common::run_object_everywhere(open, "sysctl_log", |p, obj| {
        values
            .iter()
            .map(|v| {
                let s = Sysctl {
                    name: "net/ipv4/tcp_mem".into(),
                    current: v.map(<[u8]>::to_vec),
                    ..Sysctl::default()
                };
                assert_eq!(p.run_sysctl(&s).unwrap().code, 1);
                obj.map("last")
                    .unwrap()
                    .lookup(&0u32.to_le_bytes())
                    .unwrap()
                    .unwrap()
            })
            .collect::<Vec<_>>()
    });
    let len = |b: &[u8]| i64::from_le_bytes(b[16..24].try_into().unwrap());
    // 19 bytes into 16: cut, NUL-terminated, -E2BIG.
    assert_eq!(&last[0][..16], b"4096\t87380\t6291\0");
    assert_eq!(len(&last[0]), -7);
    assert_eq!(&last[1][..4], b"1\n\0\0");
    assert_eq!(len(&last[1]), 2);
    // No value: -EINVAL, the buffer zeroed.
    assert_eq!(&last[2][..16], &[0; 16]);
    assert_eq!(len(&last[2]), -22);
}

/// The refused twins: (file, program, why, refused in Checked mode too).
const TWINS: [(&str, &str, &str, bool); 4] = [
    (
        "cgroup_sysctl_bad_0.o",
        "narrow_pos",
        "offset 4 size 2",
        true,
    ),
    (
        "cgroup_sysctl_bad_1.o",
        "write_write",
        "read-only context field at offset 0",
        true,
    ),
    ("cgroup_sysctl_bad_2.o", "verdict_2", "[0, 1]", false),
    (
        "cgroup_sysctl_bad_3.o",
        "cookie",
        "program of type cgroup_sysctl cannot use helper get_socket_cookie#46",
        true,
    ),
];

#[test]
fn the_twins_are_refused() {
    common::twins_refused(&objects(), &TWINS);
}

#[test]
fn the_kernel_loads_the_fixture_and_refuses_the_twins() {
    oracle::loads_fixture_refuses_twins("cgroup_sysctl", TWINS.map(|t| t.0));
}

#[test]
fn a_bare_struct_is_a_read_or_a_write_of_no_name() {
    let mut b = 1u32.to_le_bytes().to_vec();
    b.extend_from_slice(&9u32.to_le_bytes());
    let s = Sysctl::from_ctx(&b).unwrap();
    assert_eq!(
        (s.new_value, s.file_pos, s.name),
        (Some(Vec::new()), 9, String::new())
    );
    b[0] = 0;
    assert_eq!(Sysctl::from_ctx(&b).unwrap().new_value, None);
    assert_eq!(Sysctl::from_ctx(&b[..7]), None);
}
