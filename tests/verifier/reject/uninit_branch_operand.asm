# mode: strict
# rule: reading an uninitialised register (in a comparison)
mov r0, 0
jeq r7, 0, +1
mov r0, 1
exit
