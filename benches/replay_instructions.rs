//! Instructions executed per packet by the replay filters (`replay/`, see `benches/replay.rs`)
//! on bpfx's JIT (verified in Checked and in Strict mode) and interpreter (`Program::run_xdp`,
//! one thread) and natively: counted by
//! valgrind's callgrind inside the replay loop only, so unlike the bench's times they do not move
//! with the machine's load. Each packet includes copying the frame into the run buffer (the same
//! in every column).
//!
//! ```text
//! cargo run --release -p bpfx-benches --example replay_instructions
//! ```

use bpfx::Mode;
use bpfx_benches::replay::{Filter, NativeFrame, frames, programs, run_bpfx, run_native};
use std::hint::black_box;
use std::process::Command;

/// Passes over the 64 frames per count.
const PASSES: usize = 4;
const ENGINES: [&str; 4] = ["native", "bpfx-jit", "bpfx-jit-strict", "bpfx-interp"];
const SIZES: [usize; 2] = [64, 1500];

/// The counted loop (callgrind collects inside this function only).
#[inline(never)]
fn counted(run: &mut dyn FnMut(usize) -> u32, packets: usize) -> u32 {
    (0..packets).fold(0, |acc, i| acc ^ run(i))
}

/// In the child: prepares `engine` for `filter` on `size`-byte frames, then replays.
fn child(filter: Filter, size: usize, engine: &str) -> Result<u32, String> {
    let frames = frames(size);
    let packets = PASSES * frames.len();
    let (mut jit, mut interp) = programs(filter, Mode::Checked).map_err(|e| e.to_string())?;
    let strict = programs(filter, Mode::Strict).map(|(j, _)| j);
    let mut work = frames[0].clone();
    let mut natives: Vec<NativeFrame> = frames.iter().map(|f| NativeFrame::new(f)).collect();
    Ok(match engine {
        "native" => counted(
            &mut |i| {
                let n = &mut natives[i % frames.len()];
                n.bytes_mut().copy_from_slice(&frames[i % frames.len()]);
                run_native(filter, black_box(n)).unwrap_or(0)
            },
            packets,
        ),
        "bpfx-jit" => counted(
            &mut |i| run_bpfx(&mut jit, &frames[i % frames.len()], black_box(&mut work)),
            packets,
        ),
        "bpfx-jit-strict" => {
            let mut strict = strict.map_err(|e| e.to_string())?;
            counted(
                &mut |i| run_bpfx(&mut strict, &frames[i % frames.len()], black_box(&mut work)),
                packets,
            )
        }
        "bpfx-interp" => counted(
            &mut |i| run_bpfx(&mut interp, &frames[i % frames.len()], black_box(&mut work)),
            packets,
        ),
        _ => return Err(format!("no engine {engine}")),
    })
}

/// Instructions per packet of one cell, counted by callgrind in a child process.
fn count(exe: &std::path::Path, filter: Filter, size: usize, engine: &str) -> Result<u64, String> {
    let out = Command::new("valgrind")
        .args([
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            "--toggle-collect=*counted*",
        ])
        .arg(exe)
        .args(["--child", filter.name(), &size.to_string(), engine])
        .output()
        .map_err(|e| format!("cannot run valgrind ({e}): apt-get install valgrind"))?;
    let log = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(format!("{}/{size}/{engine} failed:\n{log}", filter.name()));
    }
    let collected = log
        .lines()
        .find_map(|l| l.split("Collected :").nth(1))
        .and_then(|n| n.trim().replace(',', "").parse::<u64>().ok())
        .ok_or_else(|| format!("no count in valgrind's output:\n{log}"))?;
    Ok(collected / (PASSES * 64) as u64)
}

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, name, size, engine] = &args[..]
        && flag == "--child"
    {
        let filter = Filter::ALL
            .into_iter()
            .find(|f| f.name() == name)
            .ok_or_else(|| format!("no filter {name}"))?;
        let size = size.parse().map_err(|_| format!("bad size {size}"))?;
        black_box(child(filter, size, engine)?);
        return Ok(());
    }
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    println!("### Instructions per packet (callgrind)\n");
    println!("| filter | frame | {} |", ENGINES.join(" | "));
    println!("|---|---:|{}", "---:|".repeat(ENGINES.len()));
    for filter in Filter::ALL {
        for size in SIZES {
            let cells: Vec<String> = ENGINES
                .iter()
                .map(|&e| {
                    if e == "native" && filter == Filter::Pass {
                        return Ok("n/a".to_string());
                    }
                    if e == "bpfx-jit-strict" && programs(filter, Mode::Strict).is_err() {
                        return Ok("n/a".to_string());
                    }
                    count(&exe, filter, size, e).map(|n| n.to_string())
                })
                .collect::<Result<_, _>>()?;
            println!("| {} | {size} B | {} |", filter.name(), cells.join(" | "));
        }
    }
    Ok(())
}
