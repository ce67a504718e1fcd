# context: packet
# rule: a packet pointer advanced by a variable header length (IPv4 IHL) is proven through a
# data_end check on a copy of it: both share one packet id, and the check bounds every pointer
# with that id (here 20 bytes past the variable start)
ldxdw r2, [r1+0]
ldxdw r3, [r1+8]
mov r4, r2
add r4, 1
jgt r4, r3, +9
ldxb r5, [r2+0]
lsh r5, 2
and r5, 60
add r2, r5
mov r6, r2
add r6, 20
jgt r6, r3, +2
ldxw r0, [r2+16]
exit
mov r0, 0
exit
