# rule: a 32-bit comparison bounds the low half, and a zero-extended value with it
ldxw r2, [r1+0]
jgt32 r2, 60, +3
add r1, r2
ldxw r0, [r1+0]
exit
mov r0, 0
exit
