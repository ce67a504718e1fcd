# mode: strict
# rule: Strict mode rejects loops (an infinite one: Checked mode relies on the budget)
mov r0, 0
l:
ja l
