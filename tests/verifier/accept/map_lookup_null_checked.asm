# rule: a map-value pointer is usable after a null check
# helper: 1:map_lookup_elem(map,key)->map_value_or_null
# map: fd:1,key=4,value=16
lddw r1, map_fd(1)
mov r2, r10
add r2, -8
stw [r10-8], 0
call 1
jeq r0, 0, +2
ldxdw r0, [r0+8]
exit
mov r0, 0
exit
