//! The input length as a symbol (`docs/verifier.md`, "Relations to the input length"): what
//! the verifier proves of the benches' guard-bound workloads (`benches/programs/*.c`, built by
//! `benches/programs/build.sh`), verified as the benches verify them (Checked mode, 4096 bytes
//! of input, one proof for every longer input).

use bpfx_bytecode::{Op, Pc, Program, Reg};
use bpfx_verifier::{Config, Mode, verify};

fn bench(name: &str) -> Program {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../benches/programs")
        .join(format!("{name}.o"));
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let obj = bpfx_elf::parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
    obj.program(name)
        .unwrap_or_else(|| panic!("no program {name}"))
        .program
        .clone()
}

fn checked() -> Config {
    Config {
        mode: Mode::Checked,
        mem_size: Some(4096),
        ..Config::default()
    }
}

/// The pcs of the program's loads and stores, and whether each is proven.
fn accesses(name: &str) -> Vec<(Pc, bool)> {
    let prog = bench(name);
    let v = verify(prog.clone(), &checked()).expect("Checked mode accepts");
    assert!(
        !v.assumptions().exact_len,
        "{name}: one proof for every length"
    );
    prog.iter()
        .filter(|(_, op)| matches!(op, Op::Load { .. } | Op::Store { .. }))
        .filter(|(_, op)| {
            !matches!(
                op,
                Op::Load { base: Reg::R10, .. } | Op::Store { base: Reg::R10, .. }
            )
        })
        .map(|(pc, _)| (pc, v.access(pc).is_some_and(|f| f.proven)))
        .collect()
}

#[test]
fn packet_reads_every_record_field_without_guards() {
    // The record-length reads (`off + 2 <= len` at the bottom of the loop), the Ethernet,
    // VLAN, IPv4 and TCP/UDP fields (`rec <= len - off`, then `rec >= 14`, `>= 18`,
    // `l3 + 20 <= rec`, `l4 + 20 <= rec`, `l4 + 8 <= rec`): every read of `packet` is proven.
    let reads = accesses("packet");
    assert_eq!(reads.len(), 21, "{reads:?}");
    assert!(reads.iter().all(|&(_, p)| p), "{reads:?}");
}

#[test]
fn packet_calls_proves_the_reads_bounded_by_the_callers_checks() {
    // The same parser with a function per layer: the loop's record-length reads, the
    // Ethernet fields read by `link_layer` (the caller's `rec <= len - off` passed with
    // `p = mem + off`) and the IPv4 fields read by `network_layer`: `link_layer` returns 14
    // or 18 on the paths that checked `rec` against it, kept apart at its return
    // (`docs/verifier.md`, "Local calls"), so `p + l3` and `rec - l3` keep their relation into
    // the callee, whose `left >= 20` proves its reads. `transport_layer`'s reads keep their
    // guards: its offset `ihl` is bounded by `left` only through `total`, and reaches the
    // caller packed with the protocol (`ihl | proto << 8`).
    let reads = accesses("packet_calls");
    let proven: Vec<Pc> = reads.iter().filter(|r| r.1).map(|r| r.0).collect();
    assert_eq!(
        proven,
        [16, 17, 106, 107, 115, 116, 127, 134, 135, 140]
            .map(Pc)
            .to_vec(),
        "{reads:?}"
    );
}

#[test]
fn searches_and_interpreters_need_relations_to_values_derived_from_the_length() {
    // `mid < n = len / 8`, `pc & mask` with `mask < n`, `i * n + k`: none is a bound relative
    // to the length itself, so these reads keep their guards.
    for w in ["lower_bound", "binary_search", "vm_interp", "matmul"] {
        let reads = accesses(w);
        assert!(reads.iter().all(|&(_, p)| !p), "{w}: {reads:?}");
    }
}

#[test]
fn strict_mode_takes_the_length_as_a_constant_and_makes_no_relation() {
    // Strict mode proves for exactly `mem_size` bytes (the record reads are then checked
    // against the constant), as before: it refuses packet at the first record read, which
    // only a relation proves.
    let cfg = Config {
        mode: Mode::Strict,
        ..checked()
    };
    let err = verify(bench("packet"), &cfg).expect_err("Strict mode refuses");
    assert!(err.to_string().contains("ldxb r3, [r8+13]"), "{err}");
}
