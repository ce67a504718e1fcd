# rule: `mov32` of a scalar that fits in 32 bits is a copy: a bound on it bounds the source
ldxw r6, [r1+0]
mov32 r7, r6
jgt r7, 56, +4
mov r2, r1
add r2, r6
ldxb r0, [r2+0]
exit
mov r0, 0
exit
