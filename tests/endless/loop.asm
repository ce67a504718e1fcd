# A program that never ends: r0 is 0, so `jeq r0, 1` never leaves and `ja -2` goes back to it.
# Checked mode accepts it (it cannot bound the loop; the embedder's budget does), so every run of
# it must stop with the budget trap at pc 2 (the default budget, bpfx_exec::DEFAULT_BUDGET, when
# none is set). Used by the tests of every entry point: Rust API, C API, CLI, conformance plugin.
mov r0, 0
jeq r0, 1, +1
ja -2
exit
