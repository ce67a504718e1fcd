//! Runs `examples/xdp_parse.o` (Ethernet/IPv4/TCP parsing with `data_end` checks) on the sample
//! packets, on both engines, and prints each verdict and the `stats` map.
//!
//! `cargo run -p bpfx --example xdp_parse`

use bpfx::{Array, Engine, Mode, Object};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples");
    for engine in Engine::ALL {
        let obj = Object::open(format!("{dir}/xdp_parse.o"))?;
        let mut prog = obj
            .program("xdp_parse")?
            .verify(Mode::Checked)?
            .engine(engine, false)?;
        for name in ["tcp-syn.bin", "telnet-syn.bin", "arp.bin"] {
            let mut packet = std::fs::read(format!("{dir}/{name}"))?;
            let action = prog.run_xdp(&mut packet)?;
            println!("{}: {name}: {action}", engine.name());
        }
        let labels = ["non-IP", "IPv4 other", "TCP", "TCP SYN"];
        let stats: Array<u64> = obj.map_as("stats")?;
        for (label, n) in labels.iter().zip(stats.iter()) {
            println!("  stats[{label}] = {n}");
        }
    }
    Ok(())
}
