# mode: checked
# budget: 5000
# rule: Checked mode accepts a loop it cannot bound (the embedder's budget bounds it at run
# time): the counter is widened at the head; Strict mode runs out of budget on it
ldxdw r2, [r1+0]
mov r0, 0
l:
add r0, 1
jlt r0, r2, l
exit
