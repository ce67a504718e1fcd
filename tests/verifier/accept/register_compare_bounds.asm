# rule: comparing two registers narrows both: r2 < r3 <= 32 bounds r2 by 31
ldxdw r2, [r1+0]
ldxdw r3, [r1+8]
jgt r3, 32, +4
jge r2, r3, +3
add r1, r2
ldxb r0, [r1+0]
exit
mov r0, 0
exit
