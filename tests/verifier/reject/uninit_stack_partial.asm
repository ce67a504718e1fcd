# mode: strict
# rule: reading uninitialised stack bytes (only the low half was written)
stw [r10-8], 1
ldxdw r0, [r10-8]
exit
