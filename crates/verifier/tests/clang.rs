//! Precision on what clang writes: the programs of `tests/verifier/clang/` (C sources, the
//! objects `build.sh` made from them with `clang-19 -O2 -g -target bpf -mcpu=v3`, committed so
//! that this test needs no clang) are accepted in Strict mode with every memory access proven.
//! The objects are loaded with `bpfx-elf`, whose map `lddw`s are `map_idx` pseudo forms.

use bpfx_testkit::corpus::clang_object;
use bpfx_verifier::{Config, ContextKind, ContextLayout, Mode, VerifiedProgram, verify};
use std::fmt::Write as _;

/// What each program is verified against.
enum Env {
    /// r1 points to an input memory of this many bytes.
    Memory(u64),
    /// r1 points to `struct pkt_ctx { u64 data; u64 data_end; }`.
    Packet,
}

fn load(name: &str, env: Env) -> VerifiedProgram {
    let (prog, helpers, maps) = clang_object(name);
    let (mem_size, context) = match env {
        Env::Memory(n) => (Some(n), ContextKind::Memory),
        Env::Packet => (
            Some(16),
            ContextKind::Fields(ContextLayout::packet_struct(16, 0, 8)),
        ),
    };
    let cfg = Config {
        mode: Mode::Strict,
        mem_size,
        helpers,
        maps,
        context,
        ..Config::default()
    };
    verify(prog, &cfg).unwrap_or_else(|e| panic!("{name}: Strict mode rejects: {e}"))
}

/// Asserts every access is proven; returns the listing with the facts.
fn all_proven(name: &str, v: &VerifiedProgram) -> String {
    let mut out = String::new();
    let mut accesses = 0;
    for (pc, op) in v.program().iter() {
        write!(out, "{pc}: {op}").expect("write to a String");
        if let Some(f) = v.access(pc) {
            accesses += 1;
            assert!(f.proven, "{name}: {pc}: {op} is not proven ({f:?})");
            write!(out, "    ; {:?}", f.region).expect("write to a String");
        }
        out.push('\n');
    }
    assert!(accesses > 0, "{name}: no memory access was analysed");
    out
}

fn check(name: &str, env: Env) {
    let v = load(name, env);
    let listing = all_proven(name, &v);
    insta::assert_snapshot!(format!("clang_{name}"), listing);
}

#[test]
fn loop_over_a_fixed_size_buffer() {
    check("loop_sum", Env::Memory(64));
}

#[test]
fn loop_bounded_by_a_clamped_input_value() {
    check("bounded_loop", Env::Memory(64));
}

#[test]
fn stack_array_filled_in_a_loop_and_indexed() {
    check("stack_array", Env::Memory(64));
}

#[test]
fn packet_headers_parsed_behind_data_end_checks() {
    check("packet_parse", Env::Packet);
}

#[test]
fn packet_bytes_scanned_in_a_bounded_loop() {
    check("packet_scan", Env::Packet);
}

#[test]
fn map_lookup_with_null_check_and_bounded_index() {
    check("map_lookup", Env::Memory(64));
}
