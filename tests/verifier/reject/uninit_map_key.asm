# mode: strict
# rule: a map key passed to a helper must be initialised stack memory
# helper: 1:map_lookup_elem(map,key)->map_value_or_null
# map: fd:1,key=4,value=16
lddw r1, map_fd(1)
mov r2, r10
add r2, -8
call 1
mov r0, 0
exit
