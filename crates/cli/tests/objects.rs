//! The example objects of `examples/` through the `bpfx` binary on both engines: `run` with
//! contexts, packets and map dumps, `verify --section`, `info`, and malformed objects.

// Each test file uses part of what the CLI tests share.
#[allow(dead_code)]
mod common;

use common::{bpfx, repo, stdout};
use serde_json::Value;
use std::path::PathBuf;
use std::process::Output;

const ENGINES: [&str; 2] = ["interp", "jit"];

/// The dumped map called `name` (`maps` is a list, as in `info --json`).
fn map<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["maps"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["name"] == name))
        .unwrap_or_else(|| panic!("no map {name} in {v}"))
}

fn json(o: &Output) -> Value {
    let out = String::from_utf8(o.stdout.clone()).unwrap();
    assert_eq!(out.lines().count(), 1, "{out}");
    serde_json::from_str(&out).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

/// The `value`s of a dumped map's entries.
fn values(v: &Value, map: &str) -> Vec<Value> {
    self::map(v, map)["entries"]
        .as_array()
        .unwrap_or_else(|| panic!("no map {map} in {v}"))
        .iter()
        .map(|e| e["value"].clone())
        .collect()
}

#[test]
fn xdp_parse_reports_the_action_by_name_and_its_stats() {
    for engine in ENGINES {
        for (packet, action, code, stats) in [
            ("examples/tcp-syn.bin", "XDP_PASS", 2, [0, 0, 1, 1]),
            ("examples/telnet-syn.bin", "XDP_DROP", 1, [0, 0, 1, 1]),
            ("examples/arp.bin", "XDP_PASS", 2, [1, 0, 0, 0]),
        ] {
            let o = bpfx(&[
                "run",
                "examples/xdp_parse.o",
                "--section",
                "xdp",
                "--ctx",
                "xdp",
                "--packet",
                packet,
                "--dump-maps",
                "--json",
                "--engine",
                engine,
            ]);
            assert!(o.status.success(), "{engine}: {}", stderr(&o));
            let v = json(&o);
            assert_eq!(v["action"], action, "{engine} {packet}");
            assert_eq!(v["result"], code);
            assert_eq!(
                values(&v, "stats"),
                stats.map(Value::from),
                "{engine} {packet}"
            );
        }
        // Text output names the action too.
        let o = bpfx(&[
            "run",
            "examples/xdp_parse.o",
            "--packet",
            "examples/tcp-syn.bin",
            "--engine",
            engine,
        ]);
        assert_eq!(String::from_utf8(o.stdout).unwrap(), "XDP_PASS (2)\n");
    }
}

#[test]
fn counter_dumps_its_hash_map() {
    for engine in ENGINES {
        let o = bpfx(&[
            "run",
            "examples/counter.o",
            "--mem",
            "examples/tcp-syn.bin",
            "--dump-maps",
            "--json",
            "--engine",
            engine,
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let v = json(&o);
        assert_eq!(v["result"], 1);
        assert_eq!(
            map(&v, "counters")["entries"],
            // With the key and value decoded through the map's BTF types (u32, u64).
            serde_json::json!([{"key": 0x0800, "value": 1, "key_btf": 0x0800, "value_btf": "1"}])
        );
        assert_eq!(map(&v, "counters")["kind"], "hash");
    }
}

#[test]
fn globals_and_ringbuf_run_with_their_data() {
    for engine in ENGINES {
        let o = bpfx(&[
            "run",
            "examples/globals.o",
            "--section",
            "sum_bytes",
            "--mem",
            "examples/tcp-syn.bin",
            "--dump-maps",
            "--json",
            "--engine",
            engine,
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let v = json(&o);
        // 2571 is the byte sum of the frame: 2571 * 3 + 1000.
        assert_eq!(v["result"], 8713);
        assert_eq!(values(&v, ".data"), [Value::from(1000)]);
        assert_eq!(
            values(&v, ".bss"),
            [Value::from("01000000000000000922000000000000")]
        );
        assert_eq!(
            stderr(&o),
            "sum=2571 len=54\n",
            "trace_printk goes to stderr"
        );

        let o = bpfx(&[
            "run",
            "examples/ringbuf.o",
            "--packet",
            "examples/tcp-syn.bin",
            "--dump-maps",
            "--json",
            "--engine",
            engine,
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let v = json(&o);
        assert_eq!(v["action"], "XDP_PASS");
        // len 54, EtherType 0x0800, flags 0, ifindex 0, seq 0.
        assert_eq!(
            map(&v, "events")["records"],
            serde_json::json!(["36000000000800000000000000000000"])
        );
    }
}

#[test]
fn percpu_count_dumps_a_value_per_cpu() {
    for engine in ENGINES {
        let o = bpfx(&[
            "run",
            "examples/percpu_count.o",
            "--packet",
            "examples/tcp-syn.bin",
            "--dump-maps",
            "--json",
            "--engine",
            engine,
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let v = json(&o);
        let counts = values(&v, "counts");
        assert_eq!(counts.len(), 4, "{v}");
        // Class 0 (IPv4): one 54-byte frame on the CPU that ran it, nothing elsewhere.
        let ipv4 = counts[0].as_array().unwrap();
        let ran: Vec<_> = ipv4
            .iter()
            .filter(|c| c.as_str() != Some("00000000000000000000000000000000"))
            .collect();
        assert_eq!(ran, ["01000000000000003600000000000000"], "{v}");
        assert!(
            counts[1..]
                .iter()
                .flat_map(|c| c.as_array().unwrap())
                .all(|c| c.as_str() == Some("00000000000000000000000000000000"))
        );
    }
}

#[test]
fn perf_sample_dumps_its_records_by_cpu() {
    for engine in ENGINES {
        let o = bpfx(&[
            "run",
            "examples/perf_sample.o",
            "--packet",
            "examples/tcp-syn.bin",
            "--dump-maps",
            "--json",
            "--engine",
            engine,
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let v = json(&o);
        assert_eq!(v["action"], "XDP_PASS");
        let records = map(&v, "events")["records"].as_array().unwrap();
        assert_eq!(records.len(), 1, "{v}");
        let cpu = records[0]["cpu"].as_u64().unwrap();
        let frame = std::fs::read(repo().join("examples/tcp-syn.bin")).unwrap();
        // The Ethernet header, the length (54) and the CPU the program saw.
        let mut want: String = frame[..14].iter().map(|b| format!("{b:02x}")).collect();
        want.push_str(&format!("3600{:08x}", (cpu as u32).swap_bytes()));
        assert_eq!(records[0]["data"], want.as_str());
    }
}

#[test]
fn verify_uses_the_objects_maps_and_helpers() {
    let o = bpfx(&["verify", "examples/counter.o", "--section", "mem", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(json(&o)["verdict"], "accepted");
    let o = bpfx(&[
        "verify",
        "examples/counter.o",
        "--strict",
        "--mem-size",
        "54",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v["verdict"], "accepted");
    assert_eq!(v["proven_accesses"], v["memory_accesses"]);
    let o = bpfx(&["verify", "examples/globals.o", "--section", "nope"]);
    assert_eq!(o.status.code(), Some(2), "a usage error");
    assert!(
        stderr(&o).contains("no section named `nope`"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn info_lists_programs_maps_and_instruction_counts() {
    let o = bpfx(&["info", "examples/globals.o", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v["programs"][0]["name"], "sum_bytes");
    assert_eq!(v["programs"][0]["section"], "mem");
    assert!(v["programs"][0]["instructions"].as_u64().unwrap() > 10);
    let maps: Vec<_> = v["maps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap(),
                m["read_only"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(maps, [(".rodata", true), (".bss", false), (".data", false)]);
    let o = bpfx(&["info", "examples/xdp_parse.o"]);
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(
        text.contains("xdp_parse (section xdp, xdp context)") && text.contains("stats (array"),
        "{text}"
    );
    let o = bpfx(&["info", "examples/checksum.asm"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("not an ELF object"));
}

#[test]
fn xdp_needs_a_packet() {
    let o = bpfx(&["run", "examples/xdp_parse.o"]);
    assert_eq!(o.status.code(), Some(2), "a usage error");
    assert!(stderr(&o).contains("--packet FILE"), "{}", stderr(&o));
}

#[test]
fn malformed_objects_are_errors_not_panics() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bpfx-objects");
    std::fs::create_dir_all(&dir).unwrap();
    let obj = std::fs::read(repo().join("examples/xdp_parse.o")).unwrap();
    let path = dir.join("bad.o");
    let p = path.to_str().unwrap();
    // Truncations at many lengths, and single corrupted bytes across the file.
    let mut cases: Vec<Vec<u8>> = (4..obj.len())
        .step_by(97)
        .map(|n| obj[..n].to_vec())
        .collect();
    for at in (0..obj.len()).step_by(131) {
        let mut b = obj.clone();
        b[at] ^= 0xff;
        cases.push(b);
    }
    for bytes in cases {
        std::fs::write(&path, &bytes).unwrap();
        for args in [
            &["info", p][..],
            &[
                "run",
                p,
                "--packet",
                "examples/tcp-syn.bin",
                "--engine",
                "interp",
            ],
        ] {
            let o = bpfx(args);
            let err = stderr(&o);
            assert!(
                o.status.code() == Some(0)
                    // A corrupted section name can make --packet a usage error.
                    || (matches!(o.status.code(), Some(1 | 2)) && err.starts_with("error: ")),
                "{args:?} len {}: {:?} {err}",
                bytes.len(),
                o.status
            );
            assert!(!err.contains("panicked"), "{err}");
        }
    }
}

#[test]
fn the_readme_command_prints_the_action_and_the_stats() {
    for engine in ENGINES {
        let o = bpfx(&[
            "run",
            "examples/xdp_parse.o",
            "--packet",
            "examples/tcp-syn.bin",
            "--dump-maps",
            "--engine",
            engine,
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(
            String::from_utf8(o.stdout).unwrap(),
            "XDP_PASS (2)\nmap stats (array, key 4 B, value 8 B, max 4):\n  0 => 0\n  1 => 0\n  2 => 1\n  3 => 1\n",
            "{engine}"
        );
    }
}

#[test]
fn info_reports_pinning_and_externs() {
    let o = bpfx(&["info", "crates/elf/tests/objects/elf_map.o", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v = json(&o);
    let pins: Vec<_> = v["maps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["name"].as_str().unwrap(), m["pinning"].as_u64().unwrap()))
        .collect();
    assert_eq!(pins, [("pkt_stats", 2), ("per_proto", 1)]);
    let o = bpfx(&["info", "crates/elf/tests/objects/elf_map.o"]);
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(
        text.contains(
            "pkt_stats (array, key 4 B, value 8 B, max 3, pinning 2 (not applied), 280 B of memory)"
        ),
        "{text}"
    );
    let o = bpfx(&["info", "crates/elf/tests/objects/ksym.o", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v = json(&o);
    let externs: Vec<_> = v["externs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap(),
                e["kind"].as_str().unwrap(),
                e["weak"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        externs,
        [
            ("bpf_obj_new_impl", "ksym function", false),
            ("bpf_prog_active", "ksym variable", false),
            ("bpf_optional_kfunc", "ksym function", true),
            ("helper_from_other_object", "unresolved", false),
        ]
    );
    // The programs that need an unresolved extern are listed as unsupported, naming the pc and
    // the symbol; the others as supported (what the verifier decides is not info's to say).
    let programs: Vec<_> = v["programs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap(),
                p["status"].as_str().unwrap(),
                p["reason"].as_str().unwrap_or(""),
            )
        })
        .collect();
    let reason_of = |name: &str| programs.iter().find(|p| p.0 == name).unwrap();
    for (name, status, reason) in [
        ("counts", "supported", ""),
        ("allocates", "unsupported", "insn #2: "),
        (
            "allocates",
            "unsupported",
            "`bpf_obj_new_impl` (__ksym kfunc)",
        ),
        ("reads_ksym", "unsupported", "insn #0: "),
        ("reads_ksym", "unsupported", "`bpf_prog_active` (__ksym)"),
        ("probes_weak", "supported", ""),
        (
            "links_elsewhere",
            "unsupported",
            "`helper_from_other_object`",
        ),
    ] {
        let p = reason_of(name);
        assert_eq!(p.1, status, "{name}");
        assert!(p.2.contains(reason), "{name}: {}", p.2);
    }
    let o = bpfx(&["info", "crates/elf/tests/objects/ksym.o"]);
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(
        text.contains("  counts (section xdp, xdp context): 12 instructions\n")
            && text.contains(
                "  allocates (section xdp, xdp context): 8 instructions; unsupported: insn #2: "
            ),
        "{text}"
    );
    let o = bpfx(&["info", "crates/elf/tests/objects/kconfig.o"]);
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(
        text.contains("externs:\n") && text.contains("  CONFIG_BPF_JIT (kconfig, weak)\n"),
        "{text}"
    );
}

#[test]
fn kconfig_values_from_the_command_line() {
    let obj = "crates/elf/tests/objects/kconfig.o";
    let o = bpfx(&["run", obj, "--section", "report", "--dump-maps", "--json"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("CONFIG_HZ"), "{}", stderr(&o));
    let o = bpfx(&[
        "run",
        obj,
        "--section",
        "report",
        "--kconfig",
        "CONFIG_HZ=300",
        "--kconfig",
        "LINUX_KERNEL_VERSION=0x040e00",
        "--dump-maps",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8(o.stdout).unwrap();
    // A socket filter, older than 5.15: r0 = 0; the version and HZ land in `config`.
    assert!(text.starts_with("DROP (0)\n"), "{text}");
    assert!(
        text.contains(&format!("  0 => {}\n", 0x040e00)) && text.contains("  1 => 300\n"),
        "{text}"
    );
    let o = bpfx(&["info", obj, "--kconfig", "nonsense"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn max_entries_from_the_command_line_size_a_map_before_it_is_created() {
    // 16M LRU entries: refused under a 32 KiB limit (its fixed part, the index's 64 shards,
    // takes 44 KiB), pointing at --max-entries; runs once given 64 (on both engines).
    let obj = "crates/runtime/tests/objects/lru_huge.o";
    let o = bpfx(&["run", obj, "--json", "--mem-limit", "32K"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("--max-entries NAME=N"),
        "{}",
        stderr(&o)
    );
    for engine in ENGINES {
        let o = bpfx(&[
            "run",
            obj,
            "--max-entries",
            "seen=64",
            "--packet",
            "examples/arp.bin",
            "--engine",
            engine,
            "--dump-maps",
            "--json",
        ]);
        assert!(o.status.success(), "{engine}: {}", stderr(&o));
        let j = json(&o);
        assert_eq!(j["result"], 0, "{j}");
        let text = j.to_string();
        assert!(text.contains("\"max_entries\":64"), "{text}");
    }
    let o = bpfx(&["info", obj, "--max-entries", "seen=64"]);
    assert!(stdout(&o).contains("max 64"), "{}", stdout(&o));
    // A map the object does not have, and a count that is not one, are usage errors.
    let o = bpfx(&["info", obj, "--max-entries", "flows=64", "--json"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("has no map named `flows` (its maps: seen)"),
        "{}",
        stderr(&o)
    );
    assert_eq!(json(&o)["error"]["kind"], "usage");
    let o = bpfx(&["info", obj, "--max-entries", "seen=many"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn inner_map_from_the_command_line_gives_a_legacy_map_of_maps_its_template() {
    // An array of maps declared in `maps`, with no template in the object: refused as
    // declared, verified and run (no tenant table: XDP_PASS) once given one, on both engines.
    let obj = "crates/runtime/tests/objects/xdp_legacy_mim.o";
    let o = bpfx(&["verify", obj]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("a map of maps needs an inner map template"),
        "{}",
        stderr(&o)
    );
    let o = bpfx(&[
        "verify",
        obj,
        "--strict",
        "--inner-map",
        "tenants=hash:4:4:16",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    // With flags: an LPM trie needs BPF_F_NO_PREALLOC (1), as the kernel's does.
    let o = bpfx(&["verify", obj, "--inner-map", "tenants=lpm_trie:8:4:16"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let o = bpfx(&["verify", obj, "--inner-map", "tenants=lpm_trie:8:4:16:0x1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    for engine in ENGINES {
        let o = bpfx(&[
            "run",
            obj,
            "--inner-map",
            "tenants=hash:4:4:16",
            "--packet",
            "examples/arp.bin",
            "--engine",
            engine,
            "--json",
        ]);
        assert!(o.status.success(), "{engine}: {}", stderr(&o));
        assert_eq!(json(&o)["result"], 2, "{engine}");
    }
    // A name that is no map of maps of the object, a type bpfx lacks, a malformed shape: usage
    // errors.
    let o = bpfx(&["info", obj, "--inner-map", "flows=hash:4:4:16", "--json"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("has no map of maps named `flows` (its maps of maps: tenants)"),
        "{}",
        stderr(&o)
    );
    for bad in [
        "tenants=arena:4:4:16",
        "tenants=hash:4:4",
        "tenants=hash:4:x:16",
        "tenants=hash:4:4:16:0xg",
    ] {
        let o = bpfx(&["info", obj, "--inner-map", bad]);
        assert_eq!(o.status.code(), Some(2), "{bad}");
    }
}

/// Two programs in section `socket` (`first` returns 11, `second` 22) and one in `xdp`.
const TWO: &str = "crates/cli/tests/objects/two.o";

#[test]
fn a_program_is_chosen_by_name_and_an_ambiguous_section_is_refused() {
    for engine in ENGINES {
        for cmd in ["run", "bench"] {
            let bench: &[&str] = if cmd == "bench" {
                &["--min-time", "1", "--json"]
            } else {
                &["--json"]
            };
            for (select, result) in [
                (&["--program", "first"][..], 11),
                (&["--program", "second"], 22),
                (&["--section", "socket", "--program", "second"], 22),
                // A section holding one program needs no more.
                (&["--section", "xdp", "--packet", "examples/arp.bin"], 2),
            ] {
                let mut args = vec![cmd, TWO, "--engine", engine];
                args.extend(select);
                args.extend(bench);
                let o = bpfx(&args);
                assert!(o.status.success(), "{args:?}: {}", stderr(&o));
                assert_eq!(json(&o)["result"], result, "{args:?}");
            }
            // A section with two programs is ambiguous: the error lists them.
            let o = bpfx(&[cmd, TWO, "--section", "socket", "--engine", engine]);
            assert!(!o.status.success());
            let err = stderr(&o);
            assert!(
                err.contains("section `socket` holds 2 programs")
                    && err.contains("--program NAME: first, second"),
                "{err}"
            );
            // No choice at all lists the programs, not the sections.
            let o = bpfx(&[cmd, TWO, "--engine", engine]);
            let err = stderr(&o);
            assert!(
                err.contains("3 programs")
                    && err.contains(
                        "first (section socket), second (section socket), pass (section xdp)"
                    ),
                "{err}"
            );
            let o = bpfx(&[cmd, TWO, "--section", "xdp", "--program", "first"]);
            assert!(
                stderr(&o).contains("no program named `first` in section `xdp`"),
                "{}",
                stderr(&o)
            );
        }
    }
    for cmd in ["verify", "disasm", "jit-dump"] {
        let o = bpfx(&[cmd, TWO, "--program", "second"]);
        assert!(o.status.success(), "{cmd}: {}", stderr(&o));
        let o = bpfx(&[cmd, TWO, "--section", "socket"]);
        assert!(
            stderr(&o).contains("holds 2 programs"),
            "{cmd}: {}",
            stderr(&o)
        );
    }
    let o = bpfx(&["disasm", TWO, "--program", "second"]);
    assert_eq!(String::from_utf8(o.stdout).unwrap(), "mov32 r0, 22\nexit\n");
    let o = bpfx(&["run", "examples/checksum.asm", "--program", "x"]);
    assert!(stderr(&o).contains("--program apply only to ELF objects"));
}
