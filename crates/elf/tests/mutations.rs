//! Robustness: every committed object, corrupted at thousands of positions (bit flips,
//! overwritten bytes and words, truncations), must load or fail with an error — never panic.
//! The mutations are seeded and deterministic, so a failure names a reproducible input.

use bpfx_rng::Rng;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// Mutations per object and kind: with 16 objects and 3 kinds, 144,000 loads.
const ROUNDS: usize = 3000;

fn objects() -> Vec<(String, Vec<u8>)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/objects");
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .expect("tests/objects exists")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "o"))
        .map(|p| {
            let bytes = std::fs::read(&p).expect("object reads");
            (p.file_name().unwrap().to_string_lossy().into_owned(), bytes)
        })
        .collect();
    out.sort();
    assert!(
        out.len() >= 10,
        "expected the committed objects, found {}",
        out.len()
    );
    out
}

/// Loads `bytes`, turning a panic into a test failure that describes the mutation.
fn must_not_panic(name: &str, what: &str, bytes: &[u8]) {
    let result = catch_unwind(AssertUnwindSafe(|| bpfx_elf::parse(bytes)));
    assert!(result.is_ok(), "{name}: parse panicked after {what}");
}

#[test]
fn unmodified_objects_load() {
    for (name, bytes) in objects() {
        // The object that exists to fail must fail; every other one loads.
        let expect_err = name == "maps-nobtf.o";
        assert_eq!(bpfx_elf::parse(&bytes).is_err(), expect_err, "{name}");
    }
}

#[test]
fn bit_flips_never_panic() {
    let mut rng = Rng::new(0x9e37_79b9_7f4a_7c15);
    for (name, bytes) in objects() {
        let loads = bpfx_elf::parse(&bytes).is_ok();
        let mut loaded = 0;
        for _ in 0..ROUNDS {
            let mut b = bytes.clone();
            let at = rng.index(b.len());
            let bit = rng.index(8);
            b[at] ^= 1 << bit;
            must_not_panic(&name, &format!("flipping bit {bit} of byte {at:#x}"), &b);
            loaded += usize::from(bpfx_elf::parse(&b).is_ok());
        }
        // Most single flips land in code, data or debug info and still load: the mutations
        // exercise the loader past its header checks.
        assert!(!loads || loaded > 0, "{name}: no mutated object loaded");
    }
}

#[test]
fn overwritten_bytes_never_panic() {
    let mut rng = Rng::new(0x0123_4567_89ab_cdef);
    for (name, bytes) in objects() {
        for _ in 0..ROUNDS {
            let mut b = bytes.clone();
            let at = rng.index(b.len());
            let v = [0x00, 0xff, 0x7f, 0x80][rng.index(4)];
            b[at] = v;
            must_not_panic(&name, &format!("setting byte {at:#x} to {v:#x}"), &b);
        }
    }
}

#[test]
fn overwritten_words_never_panic() {
    // Sizes, offsets, counts and indices are 4- or 8-byte fields: extreme values there reach
    // the bounds checks that single bits rarely do.
    let mut rng = Rng::new(0xdead_beef_cafe_f00d);
    for (name, bytes) in objects() {
        for _ in 0..ROUNDS {
            let mut b = bytes.clone();
            let at = rng.index(b.len().saturating_sub(8)) & !3;
            let v: u64 = match rng.index(5) {
                0 => u64::MAX,
                1 => u64::from(u32::MAX),
                2 => 0x8000_0000,
                3 => rng.next_u64() % 0x1000,
                _ => rng.next_u64(),
            };
            let width = if rng.index(2) == 0 { 4 } else { 8 };
            b[at..at + width].copy_from_slice(&v.to_le_bytes()[..width]);
            must_not_panic(
                &name,
                &format!("writing {v:#x} ({width} bytes) at {at:#x}"),
                &b,
            );
        }
    }
}

#[test]
fn truncations_never_panic() {
    for (name, bytes) in objects() {
        for len in 0..bytes.len() {
            let result = catch_unwind(AssertUnwindSafe(|| bpfx_elf::parse(&bytes[..len])));
            match result {
                Ok(r) => assert!(
                    r.is_err() || len >= 64,
                    "{name}: loaded from {len} bytes, shorter than an ELF header"
                ),
                Err(_) => panic!("{name}: parse panicked on the first {len} bytes"),
            }
        }
    }
}
