# mode: strict
# rule: reading an uninitialised register (as a load's base)
ldxdw r0, [r3+0]
exit
