# Hand-written code without function symbols: the whole section is one program.
	.section "raw/asm","ax",@progbits
	r0 = 1
	if r1 == 0 goto +1
	r0 = 2
	exit
