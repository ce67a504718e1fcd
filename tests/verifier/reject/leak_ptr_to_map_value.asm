# mode: strict
# rule: writing a pointer into a map value leaks an address
lddw r3, map_value(1, 0)
stxdw [r3+0], r10
mov r0, 0
exit
