# context: packet
# rule: the context's fields are typed through a copy moved by a constant, a spill and a fill:
# `[r6+0]` with r6 = ctx + 8 is data_end, and the bytes after the packet fields are writable
mov r6, r1
add r6, 8
stxdw [r10-8], r6
ldxdw r2, [r1+0]
ldxdw r7, [r10-8]
ldxdw r3, [r7+0]
stw [r7+8], 7
mov r4, r2
add r4, 2
jgt r4, r3, +2
ldxh r0, [r2+0]
exit
mov r0, 0
exit
