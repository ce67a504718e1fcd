# mode: strict
# rule: subtracting pointers into different regions is prohibited
mov r3, r10
sub r3, r1
mov r0, 0
exit
