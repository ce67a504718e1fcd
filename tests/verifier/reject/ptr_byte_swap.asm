# mode: strict
# rule: byte-swapping a pointer is prohibited
be64 r1
mov r0, 0
exit
