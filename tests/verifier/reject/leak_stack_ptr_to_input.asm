# mode: strict
# rule: writing a pointer into the input memory leaks an address
stxdw [r1+0], r10
mov r0, 0
exit
