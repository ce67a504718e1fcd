# mode: strict
# context: packet
# rule: a helper may not be handed the packet context to write (it could forge data_end)
mov r2, 16
call 6
mov r0, 0
exit
