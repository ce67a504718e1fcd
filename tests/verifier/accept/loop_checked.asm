# mode: checked
# rule: Checked mode accepts loops (the budget bounds them); the join widens the counter
mov r0, 0
l:
add r0, 1
jlt r0, 10, l
exit
