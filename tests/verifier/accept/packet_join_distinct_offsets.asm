# context: packet
# rule: packet pointers at different constant distances from data on two paths (one VLAN tag
# skipped or not) join to one fresh packet id, data + W + 14 with W in [0, 4], so a data_end
# check on the joined pointer proves the accesses behind it (the kernel explores both paths)
ldxdw r2, [r1+0]
ldxdw r3, [r1+8]
mov r4, r2
add r4, 18
jgt r4, r3, +11
ldxh r5, [r2+12]
mov r4, r2
add r4, 14
jne r5, 0x81, +1
add r4, 4
mov r6, r4
add r6, 20
jgt r6, r3, +3
ldxb r0, [r4+9]
ldxw r5, [r4+16]
exit
mov r0, 0
exit
