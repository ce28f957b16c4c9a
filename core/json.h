/* SPDX-License-Identifier: Apache-2.0 */
/* A strict JSON reader (RFC 8259) for the few fields an OCI image needs; values point into the text. */
#ifndef SMCORE_JSON_H
#define SMCORE_JSON_H

#include <stdbool.h>
#include <stddef.h>

/* A validated JSON value: the bytes from its first character to just past its last. */
struct json_value {
	const char *start;
	const char *end;
};

/* Validate `text` as one JSON value and point `root` at it; returns 0 or -EINVAL. */
int json__parse(const char *text, size_t size, struct json_value *root);
/* Decode a string value into a new NUL-terminated buffer, rejecting \u0000; returns 0 or -errno. */
int json__string(const struct json_value *value, char **out);
/* Step to the next element of an array or member of an object; `*cursor` starts as NULL. */
bool json__next(const struct json_value *container, const char **cursor,
		struct json_value *key, struct json_value *value);
/* Find `name` in an object; a null member counts as missing. Returns 0 or -ENOENT. */
int json__member(const struct json_value *object, const char *name, struct json_value *out);

#endif
