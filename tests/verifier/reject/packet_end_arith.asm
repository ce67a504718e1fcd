# mode: strict
# context: packet
# rule: no arithmetic on the packet end pointer
ldxdw r2, [r1+8]
add r2, 1
mov r0, 0
exit
