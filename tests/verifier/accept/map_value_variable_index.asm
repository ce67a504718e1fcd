# rule: a masked index into a 16-byte map value is proven
# helper: 1:map_lookup_elem(map,key)->map_value_or_null
# map: fd:1,key=4,value=16
lddw r1, map_fd(1)
mov r2, r10
add r2, -8
stw [r10-8], 0
call 1
jeq r0, 0, +5
ldxb r1, [r0+0]
and r1, 7
add r0, r1
ldxdw r0, [r0+0]
exit
mov r0, 0
exit
