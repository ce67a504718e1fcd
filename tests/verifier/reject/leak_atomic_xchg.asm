# mode: strict
# rule: an atomic exchange of a pointer into input memory leaks an address
mov r3, r10
lock xchg [r1+0], r3
mov r0, 0
exit
