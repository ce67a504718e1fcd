# mode: strict
# rule: writing a pointer into a map value leaks an address
# map: fd:1,key=4,value=16
lddw r3, map_value(1, 0)
stxdw [r3+0], r10
mov r0, 0
exit
