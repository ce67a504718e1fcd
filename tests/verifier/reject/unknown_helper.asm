# rule: calls go to a registered helper
mov r1, 1
call 99
exit
