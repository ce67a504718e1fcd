# mode: strict
# rule: pointers spill only as aligned 8-byte stores (misaligned)
stxdw [r10-12], r1
mov r0, 0
exit
