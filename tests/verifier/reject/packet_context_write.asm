# context: packet
# rule: writing data_end in the context would forge the packet bounds the proofs trust: the
# context's packet fields are read-only, in both modes
stdw [r1+8], 4096
mov r0, 0
exit
