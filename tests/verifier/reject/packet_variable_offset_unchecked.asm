# mode: strict
# context: packet
# rule: a check made before a variable advance proves nothing past it: data + 20 <= data_end
# does not cover data + [0, 60] + 16
ldxdw r2, [r1+0]
ldxdw r3, [r1+8]
mov r4, r2
add r4, 20
jgt r4, r3, +5
ldxb r5, [r2+0]
and r5, 60
add r2, r5
ldxw r0, [r2+16]
exit
mov r0, 0
exit
