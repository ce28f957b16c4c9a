/* SPDX-License-Identifier: Apache-2.0 */
#include "json.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Nesting deeper than this is rejected, so a hostile document cannot exhaust the stack. */
#define MAX_JSON_DEPTH 64

static const char *json_skip_space(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

static bool is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static int json_scan_string(const char **cursor, const char *end)
{
	const char *p = *cursor + 1;

	while (p < end && *p != '"') {
		if ((unsigned char)*p < 0x20)
			return -EINVAL;
		if (*p == '\\') {
			if (++p == end)
				return -EINVAL;
			if (*p == 'u') {
				if (end - p < 5 || !is_hex(p[1]) || !is_hex(p[2]) || !is_hex(p[3]) ||
				    !is_hex(p[4]))
					return -EINVAL;
				p += 4;
			} else if (!strchr("\"\\/bfnrt", *p) || *p == '\0') {
				return -EINVAL;
			}
		}
		p++;
	}
	if (p == end)
		return -EINVAL;
	*cursor = p + 1;
	return 0;
}

static int json_scan_number(const char **cursor, const char *end)
{
	const char *p = *cursor;

	if (p < end && *p == '-')
		p++;
	if (p == end || !is_digit(*p))
		return -EINVAL;
	if (*p == '0')
		p++;
	else
		while (p < end && is_digit(*p))
			p++;
	if (p < end && *p == '.') {
		if (++p == end || !is_digit(*p))
			return -EINVAL;
		while (p < end && is_digit(*p))
			p++;
	}
	if (p < end && (*p == 'e' || *p == 'E')) {
		p++;
		if (p < end && (*p == '+' || *p == '-'))
			p++;
		if (p == end || !is_digit(*p))
			return -EINVAL;
		while (p < end && is_digit(*p))
			p++;
	}
	*cursor = p;
	return 0;
}

static int json_scan(const char **cursor, const char *end, int depth);

/* Scan an object or array whose opening bracket is at *cursor. */
static int json_scan_container(const char **cursor, const char *end, int depth)
{
	bool object = **cursor == '{';
	char close = object ? '}' : ']';
	const char *p = json_skip_space(*cursor + 1, end);

	if (depth > MAX_JSON_DEPTH)
		return -EINVAL;
	if (p < end && *p == close) {
		*cursor = p + 1;
		return 0;
	}
	for (;;) {
		if (object) {
			if (p == end || *p != '"' || json_scan_string(&p, end) < 0)
				return -EINVAL;
			p = json_skip_space(p, end);
			if (p == end || *p != ':')
				return -EINVAL;
			p = json_skip_space(p + 1, end);
		}
		if (json_scan(&p, end, depth + 1) < 0)
			return -EINVAL;
		p = json_skip_space(p, end);
		if (p == end)
			return -EINVAL;
		if (*p == close) {
			*cursor = p + 1;
			return 0;
		}
		if (*p != ',')
			return -EINVAL;
		p = json_skip_space(p + 1, end);
	}
}

/* Check the value at *cursor (no leading space) and move past it. */
static int json_scan(const char **cursor, const char *end, int depth)
{
	const char *p = *cursor;
	static const char *const literals[] = { "null", "true", "false" };

	if (p == end)
		return -EINVAL;
	if (*p == '{' || *p == '[')
		return json_scan_container(cursor, end, depth);
	if (*p == '"')
		return json_scan_string(cursor, end);
	if (*p == '-' || is_digit(*p))
		return json_scan_number(cursor, end);
	for (size_t i = 0; i < 3; i++) {
		size_t length = strlen(literals[i]);

		if ((size_t)(end - p) >= length && memcmp(p, literals[i], length) == 0) {
			*cursor = p + length;
			return 0;
		}
	}
	return -EINVAL;
}

int json__parse(const char *text, size_t size, struct json_value *root)
{
	const char *end = text + size;
	const char *p = json_skip_space(text, end);

	root->start = p;
	if (json_scan(&p, end, 0) < 0)
		return -EINVAL;
	root->end = p;
	return json_skip_space(p, end) == end ? 0 : -EINVAL;
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	return (c | 0x20) - 'a' + 10;
}

static uint32_t read_hex4(const char *p)
{
	return (uint32_t)(hex_value(p[0]) << 12 | hex_value(p[1]) << 8 | hex_value(p[2]) << 4 |
			  hex_value(p[3]));
}

static char *put_utf8(char *out, uint32_t code)
{
	if (code < 0x80) {
		*out++ = (char)code;
	} else if (code < 0x800) {
		*out++ = (char)(0xc0 | code >> 6);
		*out++ = (char)(0x80 | (code & 0x3f));
	} else if (code < 0x10000) {
		*out++ = (char)(0xe0 | code >> 12);
		*out++ = (char)(0x80 | (code >> 6 & 0x3f));
		*out++ = (char)(0x80 | (code & 0x3f));
	} else {
		*out++ = (char)(0xf0 | code >> 18);
		*out++ = (char)(0x80 | (code >> 12 & 0x3f));
		*out++ = (char)(0x80 | (code >> 6 & 0x3f));
		*out++ = (char)(0x80 | (code & 0x3f));
	}
	return out;
}

/* Decode the \u escape whose 'u' is at *cursor, with a following low surrogate; returns the code point or -EINVAL. */
static int64_t decode_unicode_escape(const char **cursor, const char *end)
{
	const char *p = *cursor;
	uint32_t code = read_hex4(p + 1);

	p += 4;
	if (code >= 0xdc00 && code <= 0xdfff)
		return -EINVAL;
	if (code >= 0xd800 && code <= 0xdbff) {
		uint32_t low;

		if (end - p < 7 || p[1] != '\\' || p[2] != 'u')
			return -EINVAL;
		low = read_hex4(p + 3);
		if (low < 0xdc00 || low > 0xdfff)
			return -EINVAL;
		code = 0x10000 + ((code - 0xd800) << 10) + (low - 0xdc00);
		p += 6;
	}
	*cursor = p;
	return code;
}

/* Decode a string value into a new NUL-terminated buffer, rejecting \u0000. */
int json__string(const struct json_value *value, char **out)
{
	const char *p = value->start + 1;
	const char *end = value->end - 1;
	char *text;
	char *o;

	if (*value->start != '"')
		return -EINVAL;
	/* Escapes never decode to more bytes than they take, so the input size is enough. */
	text = malloc((size_t)(end - p) + 1);
	o = text;
	if (text == NULL)
		return -ENOMEM;
	for (; p < end; p++) {
		if (*p != '\\') {
			*o++ = *p;
			continue;
		}
		p++;
		switch (*p) {
		case 'b': *o++ = '\b'; break;
		case 'f': *o++ = '\f'; break;
		case 'n': *o++ = '\n'; break;
		case 'r': *o++ = '\r'; break;
		case 't': *o++ = '\t'; break;
		case 'u': {
			int64_t code = decode_unicode_escape(&p, end);

			if (code <= 0) {
				free(text);
				return -EINVAL;
			}
			o = put_utf8(o, (uint32_t)code);
			break;
		}
		default: *o++ = *p; break;
		}
	}
	*o = '\0';
	*out = text;
	return 0;
}

/* Step to the next element of an array or member of an object; `*cursor` starts as NULL. */
bool json__next(const struct json_value *container, const char **cursor,
		      struct json_value *key, struct json_value *value)
{
	const char *end = container->end;
	const char *p = *cursor == NULL ? container->start + 1 : *cursor;

	p = json_skip_space(p, end);
	if (*p == ',')
		p = json_skip_space(p + 1, end);
	if (*p == '}' || *p == ']')
		return false;
	if (*container->start == '{') {
		key->start = p;
		json_scan_string(&p, end);
		key->end = p;
		p = json_skip_space(p, end);
		p = json_skip_space(p + 1, end);
	}
	value->start = p;
	json_scan(&p, end, 0);
	value->end = p;
	*cursor = p;
	return true;
}

/* Find `name` in an object; a null member counts as missing. Returns 0 or -ENOENT. */
int json__member(const struct json_value *object, const char *name, struct json_value *out)
{
	const char *cursor = NULL;
	struct json_value key;
	struct json_value value;

	if (*object->start != '{')
		return -ENOENT;
	while (json__next(object, &cursor, &key, &value)) {
		char *decoded;
		bool match;

		if (json__string(&key, &decoded) < 0)
			continue;
		match = strcmp(decoded, name) == 0;
		free(decoded);
		if (match) {
			if (*value.start == 'n')
				return -ENOENT;
			*out = value;
			return 0;
		}
	}
	return -ENOENT;
}
