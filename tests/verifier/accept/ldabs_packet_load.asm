# rule: legacy packet loads give a scalar in r0
ldabsw 0
ldindh r0, 2
exit
