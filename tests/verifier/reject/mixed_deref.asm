# mode: strict
# rule: a register that is a pointer on one path and a scalar on another cannot be dereferenced
stdw [r10-8], 0
ldxb r3, [r1+0]
mov r4, r10
jeq r3, 0, +1
mov r4, 0
ldxdw r0, [r4-8]
exit
