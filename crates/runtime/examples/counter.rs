//! Runs `examples/counter.o` (a packet filter counting frames per EtherType in a hash map) on
//! a buffer, from two threads at once, and reads the counters afterwards.
//!
//! `cargo run -p bpfx --example counter`

use bpfx::{Mode, Object};

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
    for (key, value) in obj.map("counters")?.iter() {
        let proto = u32::from_le_bytes(key.try_into().expect("4-byte key"));
        let count = u64::from_le_bytes(value.try_into().expect("8-byte value"));
        println!("EtherType {proto:#06x}: {count} frames");
    }
    Ok(())
}
