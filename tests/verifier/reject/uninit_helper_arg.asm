# mode: strict
# rule: helper arguments must be initialised (r1 was clobbered by the previous call)
# helper: 5:echo(any)->scalar
call 5
call 5
exit
