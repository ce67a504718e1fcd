//! `bpfx run --hardened` and `bpfx jit-dump --hardened`: same results, hardened code.

// Each test file uses part of what the CLI tests share.
#[allow(dead_code)]
mod common;

use common::bpfx;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn hardened_runs_give_the_same_result_and_budget() {
    let base = [
        "run",
        "examples/checksum.asm",
        "--mem",
        "examples/ipv4-header.bin",
        "--json",
        "--budget",
        "100000",
    ];
    let plain = bpfx(&base);
    assert!(plain.status.success(), "{}", text(&plain.stderr));
    let hardened = bpfx(&[&base[..], &["--hardened"]].concat());
    assert!(hardened.status.success(), "{}", text(&hardened.stderr));
    assert_eq!(text(&hardened.stdout), text(&plain.stdout));
    assert!(
        text(&plain.stdout).contains("\"budget_left\":"),
        "{}",
        text(&plain.stdout)
    );
}

#[test]
fn hardened_dump_masks_guards() {
    let plain = bpfx(&["jit-dump", "examples/checksum.asm"]);
    assert!(plain.status.success(), "{}", text(&plain.stderr));
    let hardened = bpfx(&["jit-dump", "examples/checksum.asm", "--hardened"]);
    assert!(hardened.status.success(), "{}", text(&hardened.stderr));
    let (plain, hardened) = (text(&plain.stdout), text(&hardened.stdout));
    assert!(
        !plain.contains("lfence") && !plain.contains("sbb r11,r11"),
        "{plain}"
    );
    assert!(
        hardened.contains("lfence") && hardened.contains("sbb r11,r11"),
        "{hardened}"
    );
}
