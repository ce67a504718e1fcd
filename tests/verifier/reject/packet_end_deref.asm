# mode: strict
# context: packet
# rule: the packet end pointer cannot be dereferenced
ldxdw r2, [r1+8]
ldxb r0, [r2+0]
exit
