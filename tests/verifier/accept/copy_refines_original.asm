# rule: a comparison of a copy narrows the register it was copied from (they share an id)
ldxdw r2, [r1+0]
mov r3, r2
jgt r3, 63, +3
add r1, r2
ldxb r0, [r1+0]
exit
mov r0, 0
exit
