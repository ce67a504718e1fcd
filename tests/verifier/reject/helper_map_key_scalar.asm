# mode: strict
# rule: helper arguments follow the signature (a scalar where a map key pointer is expected)
lddw r1, map_fd(1)
mov r2, 0
call 1
mov r0, 0
exit
