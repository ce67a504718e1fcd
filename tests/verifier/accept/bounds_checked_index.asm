# rule: an unsigned bounds check on an 8-byte index proves the access behind it
ldxdw r2, [r1+0]
jgt r2, 56, +3
add r1, r2
ldxdw r0, [r1+0]
exit
mov r0, 0
exit
