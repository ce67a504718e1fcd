# mode: strict
# context: packet
# rule: packet accesses need a bounds proof against data_end
ldxdw r2, [r1+0]
ldxb r0, [r2+0]
exit
