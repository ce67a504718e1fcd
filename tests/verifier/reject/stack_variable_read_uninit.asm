# mode: strict
# rule: a variable-offset stack read needs every byte it may read initialised
stdw [r10-16], 2
ldxb r2, [r1+0]
and r2, 8
mov r3, r10
add r3, -16
add r3, r2
ldxdw r0, [r3+0]
exit
