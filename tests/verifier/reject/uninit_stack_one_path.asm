# mode: strict
# rule: reading stack bytes that one path leaves uninitialised
ldxb r3, [r1+0]
jeq r3, 0, +1
stdw [r10-16], 3
ldxdw r0, [r10-16]
exit
