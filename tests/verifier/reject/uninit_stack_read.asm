# mode: strict
# rule: reading uninitialised stack bytes
ldxdw r0, [r10-8]
exit
