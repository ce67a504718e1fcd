# mode: strict
# rule: a spilled pointer is read back whole (a 4-byte read of it)
stxdw [r10-8], r1
ldxw r0, [r10-8]
exit
