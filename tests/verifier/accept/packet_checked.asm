# context: packet
# rule: `data + 4 > data_end` false proves four packet bytes: the load is proven in Strict mode
# (Checked mode guards packet accesses, and its context loads: see docs/verifier.md, "Contexts")
ldxdw r2, [r1+0]
ldxdw r3, [r1+8]
mov r4, r2
add r4, 4
jgt r4, r3, +2
ldxw r0, [r2+0]
exit
mov r0, 0
exit
