# mode: strict
# rule: map-value accesses stay inside the value (16 bytes)
# helper: 1:map_lookup_elem(map,key)->map_value_or_null
# map: fd:1,key=4,value=16
lddw r1, map_fd(1)
mov r2, r10
add r2, -8
stw [r10-8], 0
call 1
jeq r0, 0, +1
ldxdw r0, [r0+12]
exit
