# mode: strict
# context: packet
# rule: a helper writing 8 bytes through a packet pointer whose proven range is 7 bytes is refused (Checked mode leaves the bounds to the helper)
# helper: 6:fill(mem:r2,scalar)->scalar
ldxdw r6, [r1+0]
ldxdw r3, [r1+8]
mov r4, r6
add r4, 7
jgt r4, r3, +3
mov r1, r6
mov r2, 8
call 6
mov r0, 0
exit
