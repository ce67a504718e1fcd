# mode: strict
# rule: helper arguments follow the signature (a pointer where a scalar is expected)
mov r1, r10
call 9
exit
