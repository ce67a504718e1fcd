# mode: strict
# rule: stack accesses stay inside the 512-byte frame (below it)
stdw [r10-520], 1
mov r0, 0
exit
