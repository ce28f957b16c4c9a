/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "shell_words.h"

#define MAX_WORDS 8

struct split_case {
	const char *input;
	size_t count;
	const char *words[MAX_WORDS];
};

static const struct split_case good_cases[] = {
	{ "", 0, { NULL } },
	{ "   \t ", 0, { NULL } },
	{ "echo", 1, { "echo" } },
	{ "echo hello world", 3, { "echo", "hello", "world" } },
	{ "  leading  and   trailing  ", 3, { "leading", "and", "trailing" } },
	{ "tab\tseparated\t\twords", 3, { "tab", "separated", "words" } },
	{ "sh -c 'echo $HOME; ls *'", 3, { "sh", "-c", "echo $HOME; ls *" } },
	{ "'' x ''", 3, { "", "x", "" } },
	{ "\"\"", 1, { "" } },
	{ "a''b", 1, { "ab" } },
	{ "'single \"double\" inside'", 1, { "single \"double\" inside" } },
	{ "\"double 'single' inside\"", 1, { "double 'single' inside" } },
	{ "\"a \\\"quoted\\\" word\"", 1, { "a \"quoted\" word" } },
	{ "\"back\\\\slash\"", 1, { "back\\slash" } },
	{ "\"\\$HOME \\`x\\`\"", 1, { "$HOME `x`" } },
	{ "\"keep \\n and \\t\"", 1, { "keep \\n and \\t" } },
	{ "'no \\escape'", 1, { "no \\escape" } },
	{ "with\\ space", 1, { "with space" } },
	{ "\\'quote\\\"", 1, { "'quote\"" } },
	{ "\\\\", 1, { "\\" } },
	{ "pre'mid dle'post\"end x\"", 1, { "premid dlepostend x" } },
	{ "'\t'", 1, { "\t" } },
	{ "#not-a-comment $VAR ~", 3, { "#not-a-comment", "$VAR", "~" } },
	{ "PATH=/bin:/usr/bin 'GREETING=hello world'", 2,
	  { "PATH=/bin:/usr/bin", "GREETING=hello world" } },
	{ "line\\\ncontinued", 1, { "linecontinued" } },
	{ "'\\'", 1, { "\\" } },
};

struct error_case {
	const char *input;
	size_t column;
	const char *problem;
};

static const struct error_case error_cases[] = {
	{ "'open", 1, "unterminated single quote" },
	{ "echo 'open", 6, "unterminated single quote" },
	{ "echo \"open", 6, "unterminated double quote" },
	{ "a \"b\" \"c \\\"", 7, "unterminated double quote" },
	{ "\"it's\" 'x", 8, "unterminated single quote" },
	{ "trailing\\", 9, "backslash at the end of the value" },
	{ "'\\''", 4, "unterminated single quote" },
};

static void split_good_inputs(void **state)
{
	for (size_t i = 0; i < sizeof(good_cases) / sizeof(good_cases[0]); i++) {
		const struct split_case *c = &good_cases[i];
		struct shell_words_error error = { 0 };
		char **words = NULL;
		size_t count = 99;

		print_message("input: [%s]\n", c->input);
		assert_int_equal(shell_words__split(c->input, &words, &count, &error), 0);
		assert_int_equal(count, c->count);
		for (size_t w = 0; w < c->count; w++)
			assert_string_equal(words[w], c->words[w]);
		assert_null(words[count]);
		shell_words__free(words);
	}
}

static void split_bad_quoting(void **state)
{
	for (size_t i = 0; i < sizeof(error_cases) / sizeof(error_cases[0]); i++) {
		const struct error_case *c = &error_cases[i];
		struct shell_words_error error = { 0 };
		char **words = NULL;
		size_t count = 0;

		print_message("input: [%s]\n", c->input);
		assert_int_equal(shell_words__split(c->input, &words, &count, &error), -EINVAL);
		assert_null(words);
		assert_int_equal(error.column, c->column);
		assert_string_equal(error.problem, c->problem);
	}
}

static void free_accepts_null(void **state)
{
	shell_words__free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(split_good_inputs),
		cmocka_unit_test(split_bad_quoting),
		cmocka_unit_test(free_accepts_null),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
