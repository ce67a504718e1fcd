# rule: atomics on initialised stack are proven; fetch gives a scalar
stdw [r10-8], 1
mov r3, 2
lock fetch add [r10-8], r3
ldxdw r0, [r10-8]
add r0, r3
exit
