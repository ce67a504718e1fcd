# rule: the analysis has a processed-instruction budget
# budget: 5
mov r0, 0
mov r1, 1
mov r2, 2
mov r3, 3
mov r4, 4
mov r5, 5
exit
