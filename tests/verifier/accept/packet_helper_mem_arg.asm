# context: packet
# rule: a packet pointer whose proven range covers the size is a helper's memory argument in Strict mode, read (`ro_mem`) or written (`mem`), as the kernel's check_helper_mem_access; Checked mode leaves the bounds to the helper
# helper: 6:fill(mem:r2,scalar)->scalar
# helper: 10:print(ro_mem:r2,scalar)->scalar
ldxdw r6, [r1+0]
ldxdw r3, [r1+8]
mov r4, r6
add r4, 8
jgt r4, r3, +8
mov r1, r6
mov r2, 8
call 6
ldxdw r3, [r6+0]
mov r1, r6
add r1, 2
mov r2, 6
call 10
mov r0, 0
exit
