//! `bpfx run` and `verify --ctx` of sk_lookup, lightweight tunnel and cgroup device programs
//! (the runtime's `objects/sk_lookup.c`, `objects/lwt.c` and `objects/cgroup_dev.c`) through
//! the built binary on every engine and in both modes.

// Each test file uses part of what the CLI tests share.
#[allow(dead_code)]
mod common;

use common::{bpfx, stderr, stdout};

const ENGINES: [&str; 2] = ["interp", "jit"];
const MODES: [&[&str]; 2] = [&[], &["--strict"]];

fn tmp(name: &str, contents: &[u8]) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("bpfx-cli-progtypes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, contents).unwrap();
    p
}

/// `bpfx run OBJ --SELECT NAME --INPUT PATH [--out OUT] --engine ENGINE` with `extra` and
/// `mode`'s flags.
fn run_on(
    obj: &str,
    select: (&str, &str),
    input: (&str, &std::path::Path),
    out: Option<&std::path::Path>,
    engine: &str,
    extra: &[&str],
) -> std::process::Output {
    let mut args = vec![
        "run",
        obj,
        select.0,
        select.1,
        input.0,
        input.1.to_str().unwrap(),
    ];
    if let Some(out) = out {
        args.extend_from_slice(&["--out", out.to_str().unwrap()]);
    }
    args.extend_from_slice(&["--engine", engine]);
    args.extend_from_slice(extra);
    bpfx(&args)
}

/// A `struct bpf_sk_lookup` as the kernel's test run takes it: UDP over IPv4 from
/// 10.1.2.3:0x1234 to 127.0.0.1:`port`.
fn sk_lookup_ctx(port: u32) -> Vec<u8> {
    let mut b = vec![0u8; 72];
    b[8] = 2;
    b[12] = 17;
    b[16..20].copy_from_slice(&[10, 1, 2, 3]);
    b[36..38].copy_from_slice(&[0x12, 0x34]);
    b[40..44].copy_from_slice(&[127, 0, 0, 1]);
    b[60..64].copy_from_slice(&port.to_le_bytes());
    b
}

#[test]
fn sk_lookup_programs_run_on_their_struct() {
    let obj = "crates/runtime/tests/objects/sk_lookup.o";
    let ctx = tmp("lookup.bin", &sk_lookup_ctx(7));
    for engine in ENGINES {
        for mode in MODES {
            let run = |program: &str, mem: &std::path::Path, json: bool| {
                let mut args = vec![
                    "run",
                    obj,
                    "--program",
                    program,
                    "--mem",
                    mem.to_str().unwrap(),
                    "--engine",
                    engine,
                    "--dump-maps",
                ];
                if json {
                    args.push("--json");
                }
                args.extend_from_slice(mode);
                bpfx(&args)
            };
            // No sockets: the SOCKMAP slot is empty, the datagram goes to the regular lookup.
            let o = run("echo_v4", &ctx, false);
            assert!(o.status.success(), "{}", stderr(&o));
            assert!(stdout(&o).starts_with("SK_PASS (1)\n"), "{}", stdout(&o));
            let o = run("echo_v4", &ctx, true);
            let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
            assert_eq!((&v["action"], &v["result"]), (&"SK_PASS".into(), &1.into()));
            // A struct the kernel's test run would refuse.
            let mut bad = sk_lookup_ctx(7);
            bad[12] = 1;
            let o = run("echo_v4", &tmp("bad.bin", &bad), false);
            assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
            assert!(
                stderr(&o).contains("struct bpf_sk_lookup"),
                "{}",
                stderr(&o)
            );
            let o = run("echo_v4", &tmp("short.bin", &bad[..68]), false);
            assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        }
    }
    // verify --ctx sk_lookup: a read-only context returning 0 or 1.
    let ok = tmp("ok.asm", b"ldxw r0, [r1+60]\nmov r0, 1\nexit\n");
    let two = tmp("two.asm", b"mov r0, 2\nexit\n");
    let o = bpfx(&[
        "verify",
        ok.to_str().unwrap(),
        "--ctx",
        "sk_lookup",
        "--strict",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = bpfx(&[
        "verify",
        two.to_str().unwrap(),
        "--ctx",
        "sk_lookup",
        "--strict",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("[0, 1]"), "{}", stderr(&o));
}

#[test]
fn lwt_programs_run_on_an_ip_packet() {
    let obj = "crates/runtime/tests/objects/lwt.o";
    // UDP over IPv4 from 10.0.0.1:1234 to 10.0.0.2:5060, its header checksum right.
    let sip: Vec<u8> = [
        0x45, 0, 0, 32, 0, 1, 0, 0, 64, 17, 0x66, 0xca, 10, 0, 0, 1, 10, 0, 0, 2, 0x04, 0xd2, 0x13,
        0xc4, 0, 12, 0, 0, b'a', b'b', b'c', b'd',
    ]
    .to_vec();
    let packet = tmp("sip.bin", &sip);
    let out = tmp("out.bin", b"");
    for engine in ENGINES {
        for mode in MODES {
            let select = ("--section", "lwt_xmit");
            let o = run_on(obj, select, ("--packet", &packet), Some(&out), engine, mode);
            assert!(o.status.success(), "{}", stderr(&o));
            assert_eq!(stdout(&o), "BPF_OK (0)\npriority 0x0 -> 0x6\n", "{engine}");
            // DSCP EF, the checksum the kernel's test run gives.
            let got = std::fs::read(&out).unwrap();
            assert_eq!((got[1], &got[10..12]), (0xb8, &[0x66, 0x12][..]));
            // The filter at lwt_in: telnet is dropped; --ctx names the type of a plain program.
            let o = bpfx(&[
                "run",
                obj,
                "--program",
                "in_filter",
                "--packet",
                packet.to_str().unwrap(),
                "--engine",
                engine,
                "--json",
            ]);
            let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
            assert_eq!((&v["action"], &v["result"]), (&"BPF_OK".into(), &0.into()));
        }
    }
    let store = tmp("store.asm", b"ldxw r2, [r1+76]\nldxw r3, [r1+80]\nmov r4, r2\nadd r4, 1\njgt r4, r3, +1\nstb [r2+0], 0\nmov r0, 0\nexit\n");
    let o = bpfx(&[
        "verify",
        store.to_str().unwrap(),
        "--ctx",
        "lwt_xmit",
        "--strict",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = bpfx(&[
        "verify",
        store.to_str().unwrap(),
        "--ctx",
        "lwt_in",
        "--strict",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("read-only"), "{}", stderr(&o));
}

/// A `struct bpf_cgroup_dev_ctx`: `access` to the character (2) or block (1) device
/// `major:minor`.
fn dev_ctx(kind: u16, access: u16, major: u32, minor: u32) -> Vec<u8> {
    let mut b = Vec::with_capacity(12);
    b.extend_from_slice(&kind.to_le_bytes());
    b.extend_from_slice(&access.to_le_bytes());
    b.extend_from_slice(&major.to_le_bytes());
    b.extend_from_slice(&minor.to_le_bytes());
    b
}

#[test]
fn cgroup_device_programs_run_on_their_struct() {
    let obj = "crates/runtime/tests/objects/cgroup_dev.o";
    // /dev/null read-write: a default device; /dev/mem: no rule.
    let null = tmp("null.bin", &dev_ctx(2, 6, 1, 3));
    let mem = tmp("mem.bin", &dev_ctx(2, 2, 1, 1));
    for engine in ENGINES {
        for mode in MODES {
            let run = |ctx: &std::path::Path, extra: &[&str]| {
                let flags: Vec<&str> = extra.iter().chain(mode.iter()).copied().collect();
                let select = ("--program", "dev_allow");
                run_on(obj, select, ("--mem", ctx), None, engine, &flags)
            };
            let o = run(&null, &[]);
            assert!(o.status.success(), "{}", stderr(&o));
            assert_eq!(stdout(&o), "allow (1)\n", "{engine}");
            let o = run(&mem, &["--json"]);
            let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
            assert_eq!((&v["action"], &v["result"]), (&"deny".into(), &0.into()));
            // Not the struct's 12 bytes.
            let o = run(&tmp("short.bin", &[0; 8]), &[]);
            assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
            assert!(stderr(&o).contains("12 bytes"), "{}", stderr(&o));
        }
    }
    // verify --ctx cgroup_device: major is read whole only, the program returns 0 or 1.
    let ok = tmp(
        "dev_ok.asm",
        b"ldxh r0, [r1+2]\nldxw r0, [r1+4]\nmov r0, 1\nexit\n",
    );
    let narrow = tmp("dev_narrow.asm", b"ldxh r0, [r1+4]\nmov r0, 1\nexit\n");
    let two = tmp("dev_two.asm", b"mov r0, 2\nexit\n");
    for (file, code, why) in [
        (&ok, 0, ""),
        (&narrow, 1, "offset 4 size 2"),
        (&two, 1, "[0, 1]"),
    ] {
        let o = bpfx(&[
            "verify",
            file.to_str().unwrap(),
            "--ctx",
            "cgroup_device",
            "--strict",
        ]);
        assert_eq!(o.status.code(), Some(code), "{}", stderr(&o));
        assert!(stderr(&o).contains(why), "{}", stderr(&o));
    }
}

#[test]
fn cgroup_sockopt_programs_run_on_their_struct() {
    let obj = "crates/runtime/tests/objects/cgroup_sockopt.o";
    // setsockopt(SOL_SOCKET, SO_SNDBUF, 1000000): capped at 65536 in place.
    let mut ctx = vec![0u8; 40];
    ctx[24..28].copy_from_slice(&1i32.to_le_bytes());
    ctx[28..32].copy_from_slice(&7i32.to_le_bytes());
    ctx[32..36].copy_from_slice(&4i32.to_le_bytes());
    ctx.extend_from_slice(&1_000_000i32.to_le_bytes());
    let mem = tmp("sndbuf.bin", &ctx);
    let out = tmp("sndbuf.out", b"");
    for engine in ENGINES {
        for mode in MODES {
            let select = ("--program", "so_set");
            let o = run_on(obj, select, ("--mem", &mem), Some(&out), engine, mode);
            assert!(o.status.success(), "{}", stderr(&o));
            assert_eq!(
                stdout(&o),
                "set (1)\nlevel: 1\noptname: 7\noptlen: 4\nretval: 0\n",
                "{engine}"
            );
            let got = std::fs::read(&out).unwrap();
            assert_eq!(got[40..], 65536i32.to_le_bytes());
            // Shorter than the struct.
            let short = tmp("sockopt_short.bin", &[0; 39]);
            let o = run_on(obj, select, ("--mem", &short), None, engine, mode);
            assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        }
    }
    // verify --ctx getsockopt: retval is writable there, not at setsockopt.
    let retval = tmp("retval.asm", b"stw [r1+36], 0\nmov r0, 1\nexit\n");
    for (ctx, code) in [("getsockopt", 0), ("setsockopt", 1)] {
        let o = bpfx(&["verify", retval.to_str().unwrap(), "--ctx", ctx, "--strict"]);
        assert_eq!(o.status.code(), Some(code), "{ctx}: {}", stderr(&o));
    }
}

#[test]
fn cgroup_sysctl_programs_run_on_their_struct() {
    let obj = "crates/runtime/tests/objects/cgroup_sysctl.o";
    // A write at file position 9, of a sysctl with no name: the guard allows it.
    let mut ctx = 1u32.to_le_bytes().to_vec();
    ctx.extend_from_slice(&9u32.to_le_bytes());
    let mem = tmp("sysctl.bin", &ctx);
    for engine in ENGINES {
        for mode in MODES {
            let select = ("--program", "sysctl_guard");
            let o = run_on(obj, select, ("--mem", &mem), None, engine, mode);
            assert!(o.status.success(), "{}", stderr(&o));
            assert_eq!(stdout(&o), "allow (1)\n", "{engine}");
            let short = tmp("sysctl_short.bin", &[0; 4]);
            let o = run_on(obj, select, ("--mem", &short), None, engine, mode);
            assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        }
    }
    // verify --ctx cgroup_sysctl: file_pos takes 4-byte stores only.
    let narrow = tmp("sysctl_narrow.asm", b"sth [r1+4], 0\nmov r0, 1\nexit\n");
    let whole = tmp("sysctl_whole.asm", b"stw [r1+4], 0\nmov r0, 1\nexit\n");
    for (file, code) in [(&whole, 0), (&narrow, 1)] {
        let o = bpfx(&[
            "verify",
            file.to_str().unwrap(),
            "--ctx",
            "cgroup_sysctl",
            "--strict",
        ]);
        assert_eq!(o.status.code(), Some(code), "{}", stderr(&o));
    }
}
