//! Runs `examples/globals.o` (global data in .rodata/.data/.bss and a subprogram), collecting
//! its `bpf_printk` output, and overrides a `.rodata` constant before verifying, as libbpf
//! users do with `const volatile` settings.
//!
//! `cargo run -p bpfx --example globals`

use bpfx::{Mode, UpdateFlag, Vm};
use std::sync::{Arc, Mutex};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples");
    let log = Arc::new(Mutex::new(String::new()));
    let sink = log.clone();
    let vm = Vm::new().trace_sink(move |line| sink.lock().expect("log").push_str(line));
    let obj = vm.open(format!("{dir}/globals.o"))?;
    // `multiplier` is the first 8 bytes of .rodata: set it to 10 before the program runs.
    let rodata = obj.map(".rodata")?;
    let mut value = rodata.lookup(&0u32.to_le_bytes())?.expect("one value");
    value[..8].copy_from_slice(&10u64.to_le_bytes());
    rodata.update(&0u32.to_le_bytes(), &value, UpdateFlag::Any)?;
    let mut prog = obj.program("sum_bytes")?.verify(Mode::Checked)?.interpret();
    let mut buf = *b"\x01\x02\x03\x04";
    for _ in 0..3 {
        println!("result: {}", prog.run(&mut buf)?);
    }
    print!("trace_printk output:\n{}", log.lock().expect("log"));
    let (_, bss) = obj.map(".bss")?.iter().next().expect("one value");
    println!("runs = {}", u64::from_le_bytes(bss[..8].try_into()?));
    Ok(())
}
