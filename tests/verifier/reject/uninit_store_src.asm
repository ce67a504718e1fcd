# mode: strict
# rule: reading an uninitialised register (as a store's source)
stxdw [r10-8], r4
mov r0, 0
exit
