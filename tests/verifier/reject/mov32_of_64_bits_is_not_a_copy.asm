# mode: strict
# rule: `mov32` of a scalar that may not fit in 32 bits keeps only its low half: a bound on
# it says nothing of the source (the twin of accept/mov32_copy_shares_id.asm)
ldxdw r6, [r1+0]
mov32 r7, r6
jgt r7, 56, +4
mov r2, r1
add r2, r6
ldxb r0, [r2+0]
exit
mov r0, 0
exit
