//! Prints the tables of `docs/performance.md` from the latest criterion results:
//! `cargo run --release -p bpfx-benches --example report` after `cargo bench -p bpfx-benches`
//! (see [`bpfx_benches::report`]).

fn main() {
    println!("{}", bpfx_benches::report::exec_table());
    println!("{}", bpfx_benches::report::compile_table());
    println!("{}", bpfx_benches::report::verify_table());
}
