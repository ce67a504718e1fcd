# mode: strict
# rule: Strict mode's analysis has a processed-instruction budget (Checked mode goes on
# past it with every loop head widened to a stable state, and accepts)
# budget: 5
mov r0, 0
mov r1, 1
mov r2, 2
mov r3, 3
mov r4, 4
mov r5, 5
exit
