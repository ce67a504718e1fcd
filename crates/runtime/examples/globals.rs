//! Runs `examples/globals.o` (global data in .rodata/.data/.bss and a subprogram), collecting
//! its `bpf_printk` output, and overrides a `.rodata` constant by name before verifying, as
//! libbpf users do with `const volatile` settings.
//!
//! `cargo run -p bpfx --example globals`

use bpfx::{Mode, Vm};
use std::sync::{Arc, Mutex};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples");
    let log = Arc::new(Mutex::new(String::new()));
    let sink = log.clone();
    let vm = Vm::new().trace_sink(move |line| sink.lock().expect("log").push_str(line));
    let obj = vm.open(format!("{dir}/globals.o"))?;
    // `multiplier` is a `const volatile __u64` (.rodata): set before the program is verified.
    obj.set_global("multiplier", 10u64)?;
    let mut prog = obj.program("sum_bytes")?.verify(Mode::Checked)?.interpret();
    let mut buf = *b"\x01\x02\x03\x04";
    for _ in 0..3 {
        println!("result: {}", prog.run(&mut buf)?);
    }
    print!("trace_printk output:\n{}", log.lock().expect("log"));
    println!("runs = {}", obj.get_global::<u64>("runs")?);
    println!("last_result = {}", obj.get_global::<u64>("last_result")?);
    Ok(())
}
