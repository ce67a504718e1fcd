# mode: strict
# rule: no arithmetic on a map handle
# map: fd:1,key=4,value=16
lddw r1, map_fd(1)
add r1, 8
mov r0, 0
exit
