# mode: strict
# rule: helper arguments follow the signature (a scalar where a map key pointer is expected)
# helper: 1:map_lookup_elem(map,key)->map_value_or_null
# map: fd:1,key=4,value=16
lddw r1, map_fd(1)
mov r2, 0
call 1
mov r0, 0
exit
