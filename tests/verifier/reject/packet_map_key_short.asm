# mode: strict
# context: packet
# rule: a packet pointer with 3 bytes proven is not a 4-byte map key (Checked mode leaves the bounds to the helper)
# helper: 1:map_lookup_elem(map,key)->map_value_or_null
# map: fd:1,key=4,value=16
ldxdw r6, [r1+0]
ldxdw r3, [r1+8]
mov r4, r6
add r4, 3
jgt r4, r3, +4
lddw r1, map_fd(1)
mov r2, r6
call 1
mov r0, 0
exit
