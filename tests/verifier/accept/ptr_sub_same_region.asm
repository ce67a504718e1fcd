# rule: subtracting two pointers into the same region gives a scalar
mov r3, r10
add r3, -8
mov r0, r10
sub r0, r3
exit
