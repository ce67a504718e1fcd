# mode: strict
# rule: r0 must be a scalar at the outermost exit
# map: fd:1,key=4,value=16
lddw r0, map_fd(1)
exit
