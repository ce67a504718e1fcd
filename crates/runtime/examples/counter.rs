//! Runs `examples/counter.o` (a packet filter counting frames per EtherType in a hash map) on
//! a buffer, from two threads at once, and reads the counters afterwards.
//!
//! `cargo run -p bpfx --example counter`

use bpfx::{HashMap, Mode, Object};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples");
    let obj = Object::open(format!("{dir}/counter.o"))?;
    for p in obj.programs() {
        println!(
            "program {} (section {}): {} instructions",
            p.name,
            p.section,
            p.insn_count()
        );
    }
    let prog = obj
        .program("packet_filter")?
        .verify(Mode::Checked)?
        .compile()?;
    let frame = std::fs::read(format!("{dir}/tcp-syn.bin"))?;
    // Each clone has its own stack and shares the code and the maps.
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let mut prog = prog.clone();
            let mut frame = frame.clone();
            std::thread::spawn(move || -> Result<u64, bpfx::Error> {
                let mut accepted = 0;
                for _ in 0..1000 {
                    accepted += prog.run(&mut frame)?;
                }
                Ok(accepted)
            })
        })
        .collect();
    for t in threads {
        println!("accepted {} frames", t.join().expect("thread runs")?);
    }
    // EtherType => frames; the key and value sizes are checked once, here.
    let counters: HashMap<u32, u64> = obj.map_as("counters")?;
    for (proto, count) in counters.iter() {
        println!("EtherType {proto:#06x}: {count} frames");
    }
    Ok(())
}
