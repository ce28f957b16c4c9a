/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Splitting of a config value into words with POSIX shell quoting: single
 * quotes, double quotes and backslashes, but no expansion of variables, globs,
 * tildes or command substitutions, and no comments.
 */
#ifndef SMCORE_SHELL_WORDS_H
#define SMCORE_SHELL_WORDS_H

#include <stddef.h>

/* The reason a value could not be split, and where. */
struct shell_words_error {
	size_t column;       /* 1-based position in the value of the offending character */
	const char *problem; /* such as "unterminated single quote" */
};

/*
 * Split `text` into words. Returns 0 with *words set to a NULL-terminated array
 * of *count strings that the caller frees with shell_words__free(), -EINVAL
 * with *error filled in when the quoting is invalid, or -ENOMEM.
 */
int shell_words__split(const char *text, char ***words, size_t *count,
		       struct shell_words_error *error);
/* Free an array returned by shell_words__split(); NULL is allowed. */
void shell_words__free(char **words);

#endif
