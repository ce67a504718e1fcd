#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| bpfx_testkit::fuzz::diff_loops(data));
