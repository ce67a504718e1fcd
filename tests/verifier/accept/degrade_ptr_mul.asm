# mode: checked
# rule: Checked mode degrades prohibited pointer arithmetic to an unknown scalar; the access
# through it keeps its guard
mov r3, r1
mul r3, 1
ldxb r0, [r3+0]
exit
