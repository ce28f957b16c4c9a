/* SPDX-License-Identifier: Apache-2.0 */
#include "shell_words.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct word_list {
	char **words;
	size_t count;
	size_t capacity;
};

static bool is_separator(char c)
{
	return c == ' ' || c == '\t' || c == '\n';
}

/* Inside double quotes a backslash escapes only these, as in a POSIX shell. */
static bool is_double_quote_escape(char c)
{
	return c == '$' || c == '`' || c == '"' || c == '\\' || c == '\n';
}

static int word_list__push(struct word_list *list, const char *word, size_t length)
{
	char *copy;

	/* One slot more than the words, for the NULL terminator. */
	if (list->count + 1 >= list->capacity) {
		size_t capacity = list->capacity ? list->capacity * 2 : 8;
		char **words = realloc(list->words, capacity * sizeof(*words));

		if (!words)
			return -ENOMEM;
		list->words = words;
		list->capacity = capacity;
	}
	copy = strndup(word, length);
	if (!copy)
		return -ENOMEM;
	list->words[list->count++] = copy;
	list->words[list->count] = NULL;
	return 0;
}

static int fail(struct shell_words_error *error, size_t index, const char *problem)
{
	if (error) {
		error->column = index + 1;
		error->problem = problem;
	}
	return -EINVAL;
}

/*
 * Copy the next word starting at text[*index] into `word` without its quotes;
 * returns its length or -EINVAL. A word can be empty ('' or "").
 */
static long scan_word(const char *text, size_t *index, char *word,
		      struct shell_words_error *error)
{
	size_t i = *index;
	size_t length = 0;

	while (text[i] && !is_separator(text[i])) {
		char c = text[i];

		if (c == '\\') {
			if (text[i + 1] == '\0')
				return fail(error, i, "backslash at the end of the value");
			if (text[i + 1] != '\n')
				word[length++] = text[i + 1];
			i += 2;
		} else if (c == '\'') {
			size_t open = i++;

			while (text[i] && text[i] != '\'')
				word[length++] = text[i++];
			if (!text[i])
				return fail(error, open, "unterminated single quote");
			i++;
		} else if (c == '"') {
			size_t open = i++;

			while (text[i] && text[i] != '"') {
				if (text[i] == '\\' && is_double_quote_escape(text[i + 1])) {
					if (text[i + 1] != '\n')
						word[length++] = text[i + 1];
					i += 2;
				} else {
					word[length++] = text[i++];
				}
			}
			if (!text[i])
				return fail(error, open, "unterminated double quote");
			i++;
		} else {
			word[length++] = c;
			i++;
		}
	}
	*index = i;
	return (long)length;
}

int shell_words__split(const char *text, char ***words, size_t *count,
		       struct shell_words_error *error)
{
	struct word_list list = { 0 };
	size_t i = 0;
	char *word;
	int ret = 0;

	/* A word is never longer than the text it comes from. */
	word = malloc(strlen(text) + 1);
	if (!word)
		return -ENOMEM;

	for (;;) {
		long length;

		while (is_separator(text[i]))
			i++;
		if (!text[i])
			break;
		length = scan_word(text, &i, word, error);
		if (length < 0) {
			ret = (int)length;
			goto fail;
		}
		ret = word_list__push(&list, word, (size_t)length);
		if (ret)
			goto fail;
	}

	/* Even with no words the caller gets an array holding only NULL. */
	if (!list.words) {
		list.words = calloc(1, sizeof(*list.words));
		if (!list.words) {
			ret = -ENOMEM;
			goto fail;
		}
	}
	free(word);
	*words = list.words;
	*count = list.count;
	return 0;

fail:
	free(word);
	shell_words__free(list.words);
	return ret;
}

void shell_words__free(char **words)
{
	if (!words)
		return;
	for (size_t i = 0; words[i]; i++)
		free(words[i]);
	free(words);
}
