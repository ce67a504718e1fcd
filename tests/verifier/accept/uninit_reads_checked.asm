# mode: checked
# rule: Checked mode reads registers and stack as the execution contract leaves them (zero)
mov r0, r3
ldxdw r4, [r10-8]
add r0, r4
exit
