//! cgroup socket-option programs (`objects/cgroup_sockopt.c`): a setsockopt policy refusing a
//! private level, capping `SO_SNDBUF` in place, answering `IP_TOS` itself (optlen -1),
//! rewriting a congestion algorithm's name (a shorter optlen), handing the kernel the caller's
//! value (optlen 0); a getsockopt program answering `IP_TOS` from a map, failing a private
//! level through `retval`; on every engine and JIT option set in both modes, with what the
//! kernel makes of each call. The refused twins (`objects/cgroup_sockopt_bad_N.c`: a
//! getsockopt write of `level`, a setsockopt read of `retval`, an unchecked `optval` write
//! that Checked mode guards, a socket helper) and the sections.
//!
//! The kernel is the oracle where it can be asked (root, `bpftool`): its verifier loads
//! `cgroup_sockopt.o` and refuses the twins. It has no test run for the type.

// Not every helper of `common` is used here.
#[allow(dead_code)]
mod common;

#[path = "common/oracle.rs"]
#[allow(dead_code)]
mod oracle;

use bpfx::{
    BpfSock, Context, Mode, Object, SockIds, SockoptCall, SockoptHook, SockoptResult, UpdateFlag,
};
use oracle::objects;

fn open() -> Object {
    Object::open(objects().join("cgroup_sockopt.o")).unwrap()
}

const PRIVATE: i32 = 0xdead_beef_u32 as i32;

fn sock(family: u32) -> BpfSock {
    BpfSock {
        family,
        sock_type: 1,
        protocol: 6,
        ..BpfSock::default()
    }
}

fn set(optval: Option<&[u8]>, level: i32, optname: i32) -> SockoptResult {
    SockoptResult::Set {
        level,
        optname,
        optval: optval.map(<[u8]>::to_vec),
    }
}

#[test]
fn sections_give_the_hooks() {
    let obj = open();
    for (name, hook) in [("so_set", SockoptHook::Set), ("so_get", SockoptHook::Get)] {
        let p = obj.program(name).unwrap().load().unwrap();
        assert_eq!(p.context(), Context::CgroupSockopt(hook), "{name}");
        assert_eq!(p.context().name(), "cgroup_sockopt");
        assert_eq!(Context::for_section(hook.section()), p.context());
        assert_eq!(Context::parse(hook.section()), Some(p.context()));
    }
    assert_eq!(
        Context::for_section("cgroup/setsockopt/legacy"),
        Context::CgroupSockopt(SockoptHook::Set)
    );
    assert_eq!(
        Context::parse("getsockopt"),
        Some(Context::CgroupSockopt(SockoptHook::Get))
    );
    // The struct does not say the hook: refused, never plain memory.
    assert_eq!(
        Context::for_btf_type("bpf_sockopt"),
        Some(Context::Unsupported("cgroup_sockopt"))
    );
}

#[test]
fn the_setsockopt_policy_caps_bypasses_rewrites_and_refuses() {
    let calls = [
        (SockoptCall::set(PRIVATE, 1, &[0; 4]), 2),
        (SockoptCall::set(1, 7, &1_000_000i32.to_le_bytes()), 2),
        (SockoptCall::set(1, 7, &1000i32.to_le_bytes()), 2),
        // Too short for an int: refused.
        (SockoptCall::set(1, 7, &[1, 0]), 2),
        (SockoptCall::set(0, 1, &[0x10, 0, 0, 0]), 2),
        // IP_TOS on an IPv6 socket: the caller's own value.
        (SockoptCall::set(0, 1, &[0x20, 0, 0, 0]), 10),
        (SockoptCall::set(6, 13, b"bbr\0\0\0"), 2),
        (SockoptCall::set(6, 13, b"cubic\0"), 2),
        // A value past a page: the program sees its first page only.
        (SockoptCall::set(1, 9, &[7; 5000]), 2),
    ];
    let (outs, tos, counts) = common::run_object_everywhere(open, "so_set", |p, obj| {
        let outs: Vec<_> = calls
            .iter()
            .map(|(c, family)| {
                let o = p
                    .run_sockopt(c, &sock(*family), &SockIds::default())
                    .unwrap();
                (o.code, o.result, o.call.optlen)
            })
            .collect();
        let tos = obj
            .map("tos")
            .unwrap()
            .lookup(&0u32.to_le_bytes())
            .unwrap()
            .unwrap();
        let count = |level: i32| {
            obj.map("calls")
                .unwrap()
                .lookup(&level.to_le_bytes())
                .unwrap()
                .map(|v| u64::from_le_bytes(v[..8].try_into().unwrap()))
        };
        (outs, tos, [PRIVATE, 0, 1, 6].map(count))
    });
    let want = [
        (0, SockoptResult::Refused, 4),
        (1, set(Some(&65536i32.to_le_bytes()), 1, 7), 4),
        (1, set(Some(&1000i32.to_le_bytes()), 1, 7), 4),
        (0, SockoptResult::Refused, 2),
        (1, SockoptResult::Bypass, -1),
        (1, set(None, 0, 1), 0),
        (1, set(Some(b"reno\0"), 6, 13), 5),
        (1, set(Some(b"cubic\0"), 6, 13), 6),
        (1, set(None, 1, 9), 0),
    ];
    assert_eq!(outs.len(), want.len());
    for (i, (got, want)) in outs.iter().zip(&want).enumerate() {
        assert_eq!(got, want, "call {i}");
    }
    assert_eq!(SockoptResult::Refused.errno(), -1);
    assert_eq!(SockoptResult::Bypass.errno(), 0);
    assert_eq!(tos, 0x10u32.to_le_bytes());
    assert_eq!(counts, [Some(1), Some(2), Some(4), Some(2)]);
}

#[test]
fn the_getsockopt_program_answers_from_its_map_and_through_retval() {
    let calls = [
        SockoptCall::get(0, 1, &[0; 4], 4, 0),
        SockoptCall::get(PRIVATE, 1, &[], 4, -92),
        SockoptCall::get(1, 7, &[0, 0x10, 0, 0], 4, 0),
        SockoptCall::get(1, 7, &[], 4, -9),
        SockoptCall::get(1, 99, &[7; 5000], 5000, 0),
    ];
    let outs = common::run_object_everywhere(open, "so_get", |p, obj| {
        obj.map("tos")
            .unwrap()
            .update(&0u32.to_le_bytes(), &0x28u32.to_le_bytes(), UpdateFlag::Any)
            .unwrap();
        calls
            .iter()
            .map(|c| {
                let o = p.run_sockopt(c, &sock(2), &SockIds::default()).unwrap();
                (o.code, o.result)
            })
            .collect::<Vec<_>>()
    });
    let get = |retval, optval: Option<&[u8]>| SockoptResult::Get {
        retval,
        optval: optval.map(<[u8]>::to_vec),
    };
    assert_eq!(
        outs,
        [
            (1, get(0, Some(&[0x28]))),
            (1, get(-22, None)),
            (1, get(0, Some(&[0, 0x10, 0, 0]))),
            // The failed call: optlen 0, the caller's buffer untouched.
            (1, get(-9, None)),
            // Past a page, left alone: as the handler made it.
            (1, get(0, None)),
        ]
    );
}

#[test]
fn the_struct_round_trips_for_embedders() {
    let c = SockoptCall::get(6, 13, b"cubic", 16, 0);
    let b = c.to_bytes();
    assert_eq!(b.len(), bpfx::SOCKOPT_CTX_SIZE + 16);
    assert_eq!(b[24..28], 6i32.to_le_bytes());
    assert_eq!(b[32..36], 5i32.to_le_bytes());
    assert_eq!(SockoptCall::from_bytes(&b), Some(c));
    assert_eq!(SockoptCall::from_bytes(&b[..39]), None);
}

#[test]
fn another_context_is_refused() {
    let obj = Object::open(objects().join("cgroup_dev.o")).unwrap();
    let mut p = obj.program("dev_log").unwrap().load().unwrap();
    let e = p
        .run_sockopt(
            &SockoptCall::set(1, 7, &[0; 4]),
            &sock(2),
            &SockIds::default(),
        )
        .unwrap_err();
    assert!(e.to_string().contains("cgroup_sockopt"), "{e}");
}

/// The refused twins: (file, program, why, refused in Checked mode too).
const TWINS: [(&str, &str, &str, bool); 4] = [
    (
        "cgroup_sockopt_bad_0.o",
        "get_level",
        "read-only context field at offset 24",
        true,
    ),
    (
        "cgroup_sockopt_bad_1.o",
        "set_retval",
        "invalid access to context at offset 36 size 4",
        true,
    ),
    // Checked mode guards the unproven store instead (below).
    ("cgroup_sockopt_bad_2.o", "unchecked", "packet", false),
    (
        "cgroup_sockopt_bad_3.o",
        "cookie",
        "program of type cgroup_sockopt cannot use helper get_socket_cookie#46",
        true,
    ),
];

#[test]
fn the_twins_are_refused() {
    common::twins_refused(&objects(), &TWINS);
}

/// Checked mode runs the unchecked `optval` store behind a guard: a byte of value is written,
/// an empty value traps instead of writing past the run's memory.
#[test]
fn checked_mode_guards_an_unchecked_optval_store() {
    let open = || Object::open(objects().join("cgroup_sockopt_bad_2.o")).unwrap();
    for (engine, opts) in common::engines() {
        let v = open()
            .program("unchecked")
            .unwrap()
            .verify(Mode::Checked)
            .unwrap();
        let mut p = common::prepare(v, opts);
        let ids = SockIds::default();
        let o = p
            .run_sockopt(&SockoptCall::set(1, 7, &[9, 9]), &sock(2), &ids)
            .unwrap();
        assert_eq!(o.call.optval, [0, 9], "{engine}");
        assert!(
            p.run_sockopt(&SockoptCall::set(1, 7, &[]), &sock(2), &ids)
                .is_err(),
            "{engine}"
        );
    }
}

#[test]
fn the_kernel_loads_the_fixture_and_refuses_the_twins() {
    oracle::loads_fixture_refuses_twins("cgroup_sockopt", TWINS.map(|t| t.0));
}
