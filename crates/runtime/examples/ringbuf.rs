//! Runs `examples/ringbuf.o` (an XDP program that reports every packet through a ring buffer)
//! and reads the events on the host.
//!
//! `cargo run -p bpfx --example ringbuf`

use bpfx::{Mode, Object, XdpMeta};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples");
    let obj = Object::open(format!("{dir}/ringbuf.o"))?;
    let mut prog = obj
        .program("xdp_events")?
        .verify(Mode::Checked)?
        .compile()?;
    for (ifindex, name) in [(1, "tcp-syn.bin"), (2, "arp.bin")] {
        let mut packet = std::fs::read(format!("{dir}/{name}"))?;
        let meta = XdpMeta {
            ingress_ifindex: ifindex,
            ..XdpMeta::default()
        };
        println!("{name}: {}", prog.run_xdp_with(&mut packet, &meta)?);
    }
    let events = obj.map("events")?;
    while let Some(rec) = events.pop_record()? {
        let word = |i: usize| u32::from_le_bytes(rec[i..i + 4].try_into().expect("4 bytes"));
        let proto = u16::from_le_bytes([rec[4], rec[5]]);
        println!(
            "event: len {} proto {proto:#06x} ifindex {} seq {}",
            word(0),
            word(8),
            word(12)
        );
    }
    Ok(())
}
