# rule: pointer + scalar keeps the type; the constant offset is tracked and proven
mov r1, r10
add r1, -16
add r1, 8
stdw [r1+0], 7
ldxdw r0, [r10-8]
exit
