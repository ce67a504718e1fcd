# rule: branches decided by constants are followed one way only, so the dead side may
# leave r0 uninitialised
mov r3, 1
jeq r3, 1, +1
exit
mov r0, 2
exit
