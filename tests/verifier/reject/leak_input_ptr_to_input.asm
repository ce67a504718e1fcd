# mode: strict
# rule: writing a pointer into the input memory leaks an address (its own address)
stxdw [r1+8], r1
mov r0, 0
exit
