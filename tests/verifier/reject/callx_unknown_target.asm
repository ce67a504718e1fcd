# mode: strict
# rule: callx needs a register holding a known helper id
ldxb r2, [r1+0]
call r2
exit
