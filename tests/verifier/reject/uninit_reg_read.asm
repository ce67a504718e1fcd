# mode: strict
# rule: reading an uninitialised register
mov r0, r3
exit
