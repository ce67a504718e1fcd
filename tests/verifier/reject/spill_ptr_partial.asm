# mode: strict
# rule: pointers spill only as aligned 8-byte stores (a 4-byte store of a pointer)
stxw [r10-8], r1
mov r0, 0
exit
