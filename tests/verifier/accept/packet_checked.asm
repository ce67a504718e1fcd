# mode: checked
# context: packet
# rule: packet pointers come from the context; unproven packet accesses stay guarded
ldxdw r2, [r1+0]
ldxdw r3, [r1+8]
mov r4, r2
add r4, 4
jgt r4, r3, +2
ldxw r0, [r2+0]
exit
mov r0, 0
exit
