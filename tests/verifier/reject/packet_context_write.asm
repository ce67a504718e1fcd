# mode: strict
# context: packet
# rule: writing data_end in the context would forge the packet bounds the proofs trust
stdw [r1+8], 4096
mov r0, 0
exit
