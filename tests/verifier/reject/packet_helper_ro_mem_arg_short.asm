# mode: strict
# context: packet
# rule: a helper reading 6 bytes at packet offset 3 when 8 bytes are proven is refused (Checked mode leaves the bounds to the helper)
# helper: 10:print(ro_mem:r2,scalar)->scalar
ldxdw r6, [r1+0]
ldxdw r3, [r1+8]
mov r4, r6
add r4, 8
jgt r4, r3, +4
mov r1, r6
add r1, 3
mov r2, 6
call 10
mov r0, 0
exit
