# mode: strict
# rule: two loads of one address are not one value: a bound on the second says nothing of
# the first (the twin of accept/spill_fill_shares_id.asm)
ldxdw r6, [r1+0]
stxdw [r10-8], r6
ldxdw r7, [r1+0]
jgt r7, 56, +4
mov r2, r1
add r2, r6
ldxb r0, [r2+0]
exit
mov r0, 0
exit
