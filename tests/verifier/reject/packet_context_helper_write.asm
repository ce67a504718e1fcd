# mode: strict
# context: packet
# rule: a helper may not be handed the packet context to write (it could forge data_end)
# helper: 6:fill(mem:r2,scalar)->scalar
mov r2, 16
call 6
mov r0, 0
exit
