# mode: strict
# budget: 5000
# rule: a loop bounded by an unknown 64-bit value runs into the budget, which names the loop
ldxdw r2, [r1+0]
mov r0, 0
l:
add r0, 1
jlt r0, r2, l
exit
