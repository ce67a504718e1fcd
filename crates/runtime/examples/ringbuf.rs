//! Runs `examples/ringbuf.o` (an XDP program that reports every packet through a ring buffer)
//! and reads the events on the host.
//!
//! `cargo run -p bpfx --example ringbuf`

use bpfx::{Mode, Object, Pod, RingBuf, XdpMeta};

/// `struct event` of ringbuf.c.
struct Event {
    len: u32,
    proto: u16,
    flags: u16,
    ifindex: u32,
    seq: u32,
}

impl Pod for Event {
    const SIZE: usize = 16;
    fn from_bytes(b: &[u8]) -> Self {
        Event {
            len: u32::from_bytes(&b[0..4]),
            proto: u16::from_bytes(&b[4..6]),
            flags: u16::from_bytes(&b[6..8]),
            ifindex: u32::from_bytes(&b[8..12]),
            seq: u32::from_bytes(&b[12..16]),
        }
    }
    fn write_bytes(&self, out: &mut [u8]) {
        self.len.write_bytes(&mut out[0..4]);
        self.proto.write_bytes(&mut out[4..6]);
        self.flags.write_bytes(&mut out[6..8]);
        self.ifindex.write_bytes(&mut out[8..12]);
        self.seq.write_bytes(&mut out[12..16]);
    }
}

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
    let events: RingBuf = obj.map_as("events")?;
    while let Some(e) = events.next_as::<Event>()? {
        println!(
            "event: len {} proto {:#06x} flags {} ifindex {} seq {}",
            e.len, e.proto, e.flags, e.ifindex, e.seq
        );
    }
    Ok(())
}
