/* libbpf's can_loop, as the fixtures of tests/may_goto_strict.rs use it: true until the run's
 * may_goto counter runs out (clang emits `may_goto` at the asm goto). */
#define can_loop                                                            \
	({                                                                  \
		__label__ l_break, l_continue;                              \
		int ret = 1;                                                \
		asm volatile goto("may_goto %l[l_break]" :: ::l_break);     \
		goto l_continue;                                            \
	l_break:                                                            \
		ret = 0;                                                    \
	l_continue:;                                                        \
		ret;                                                        \
	})
