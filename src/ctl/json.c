/*
 * json.c: a compact JSON writer (lodged's control replies) and a small
 * tree parser (lodgectl reads them).  Pure, no privileges.  The writer
 * must never emit anything but valid JSON whatever bytes it is given (a
 * log line or a user name comes from a hosted user): invalid UTF-8 becomes
 * U+FFFD and control characters are escaped.  The parser trusts nothing:
 * it bounds nesting and copies every string, so a truncated or hostile
 * reply is an error, never a crash.
 */
#include "json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- writer ---------------------------------------------------------- */

static bool jo_reserve(struct json_out *j, size_t more)
{
	size_t cap;
	char *grown;

	if (j->is_failed)
		return false;
	if (j->len + more + 1 <= j->cap)
		return true;
	cap = j->cap ? j->cap : 256;
	while (cap < j->len + more + 1) {
		if (cap > ((size_t)1 << 40)) {
			j->is_failed = true;
			return false;
		}
		cap *= 2;
	}
	grown = realloc(j->buf, cap);
	if (grown == NULL) {
		j->is_failed = true;
		return false;
	}
	j->buf = grown;
	j->cap = cap;
	return true;
}

static void jo_put(struct json_out *j, const char *s, size_t n)
{
	if (!jo_reserve(j, n))
		return;
	memcpy(j->buf + j->len, s, n);
	j->len += n;
	j->buf[j->len] = '\0';
}

static void jo_puts(struct json_out *j, const char *s)
{
	jo_put(j, s, strlen(s));
}

/* The length of the valid UTF-8 sequence at s[0..len), or 0. */
static size_t jo_utf8_len(const unsigned char *s, size_t len)
{
	unsigned char c = s[0];
	size_t n;
	unsigned char lo = 0x80, hi = 0xbf;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4;
	else
		return 0;
	/* The second byte's range excludes overlong forms and surrogates. */
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if (len < n || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return n;
}

static void jo_string(struct json_out *j, const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;

	jo_put(j, "\"", 1);
	while (i < len && !j->is_failed) {
		size_t run = i, n;
		char esc[8];

		/* Plain printable ASCII goes out in one copy. */
		while (run < len && s[run] >= 0x20 && s[run] < 0x7f &&
		       s[run] != '"' && s[run] != '\\')
			run++;
		if (run > i) {
			jo_put(j, str + i, run - i);
			i = run;
			continue;
		}
		switch (s[i]) {
		case '"':
			jo_puts(j, "\\\"");
			break;
		case '\\':
			jo_puts(j, "\\\\");
			break;
		case '\n':
			jo_puts(j, "\\n");
			break;
		case '\t':
			jo_puts(j, "\\t");
			break;
		case '\r':
			jo_puts(j, "\\r");
			break;
		default:
			if (s[i] < 0x20 || s[i] == 0x7f) {
				snprintf(esc, sizeof(esc), "\\u%04x", s[i]);
				jo_puts(j, esc);
				break;
			}
			n = jo_utf8_len(s + i, len - i);
			if (n == 0) {
				jo_puts(j, "\\ufffd");
				break;
			}
			jo_put(j, str + i, n);
			i += n;
			continue;
		}
		i++;
	}
	jo_put(j, "\"", 1);
}

/* The comma and the key before a value. */
static bool jo_item(struct json_out *j, const char *key)
{
	if (j->is_failed)
		return false;
	if (j->has_item[j->depth])
		jo_put(j, ",", 1);
	j->has_item[j->depth] = true;
	if (key != NULL) {
		jo_string(j, key, strlen(key));
		jo_put(j, ":", 1);
	}
	return !j->is_failed;
}

static void jo_open(struct json_out *j, const char *key, const char *brace)
{
	if (!jo_item(j, key))
		return;
	if (j->depth >= JSON_MAX_DEPTH) {
		j->is_failed = true;
		return;
	}
	jo_puts(j, brace);
	j->has_item[++j->depth] = false;
}

static void jo_close(struct json_out *j, const char *brace)
{
	if (j->is_failed)
		return;
	if (j->depth == 0) {
		j->is_failed = true; /* more closed than opened: a bug */
		return;
	}
	j->depth--;
	jo_puts(j, brace);
}

void json_out_obj(struct json_out *j, const char *key)
{
	jo_open(j, key, "{");
}

void json_out_obj_end(struct json_out *j)
{
	jo_close(j, "}");
}

void json_out_arr(struct json_out *j, const char *key)
{
	jo_open(j, key, "[");
}

void json_out_arr_end(struct json_out *j)
{
	jo_close(j, "]");
}

void json_out_strn(
    struct json_out *j, const char *key, const char *s, size_t len)
{
	if (!jo_item(j, key))
		return;
	if (s == NULL)
		jo_puts(j, "null");
	else
		jo_string(j, s, len);
}

void json_out_str(struct json_out *j, const char *key, const char *s)
{
	json_out_strn(j, key, s, s != NULL ? strlen(s) : 0);
}

void json_out_int(struct json_out *j, const char *key, int64_t v)
{
	char num[24];

	if (!jo_item(j, key))
		return;
	snprintf(num, sizeof(num), "%lld", (long long)v);
	jo_puts(j, num);
}

void json_out_uint(struct json_out *j, const char *key, uint64_t v)
{
	char num[24];

	if (!jo_item(j, key))
		return;
	snprintf(num, sizeof(num), "%llu", (unsigned long long)v);
	jo_puts(j, num);
}

void json_out_num(struct json_out *j, const char *key, double v)
{
	char num[400];
	size_t n;

	if (!jo_item(j, key))
		return;
	if (!isfinite(v)) {
		jo_puts(j, "null");
		return;
	}
	n = (size_t)snprintf(num, sizeof(num), "%.6f", v);
	if (n >= sizeof(num)) {
		jo_puts(j, "null");
		return;
	}
	while (n > 0 && num[n - 1] == '0')
		num[--n] = '\0';
	if (n > 0 && num[n - 1] == '.')
		num[--n] = '\0';
	if (strcmp(num, "-0") == 0)
		strcpy(num, "0");
	jo_puts(j, num);
}

void json_out_bool(struct json_out *j, const char *key, bool v)
{
	if (jo_item(j, key))
		jo_puts(j, v ? "true" : "false");
}

void json_out_null(struct json_out *j, const char *key)
{
	if (jo_item(j, key))
		jo_puts(j, "null");
}

void json_out_free(struct json_out *j)
{
	free(j->buf);
	memset(j, 0, sizeof(*j));
}

/* ---- parser ---------------------------------------------------------- */

struct jp {
	const char *s;
	size_t len;
	size_t pos;
	const char *err;
	int depth;
};

static bool jp_fail(struct jp *p, const char *err)
{
	if (p->err == NULL)
		p->err = err;
	return false;
}

static void jp_ws(struct jp *p)
{
	while (p->pos < p->len &&
	       (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' ||
	           p->s[p->pos] == '\n' || p->s[p->pos] == '\r'))
		p->pos++;
}

static bool jp_lit(struct jp *p, const char *word)
{
	size_t n = strlen(word);

	if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0)
		return jp_fail(p, "unexpected character");
	p->pos += n;
	return true;
}

static int jp_hex4(const char *s)
{
	int v = 0;

	for (int i = 0; i < 4; i++) {
		char c = s[i];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= c - '0';
		else if (c >= 'a' && c <= 'f')
			v |= c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v |= c - 'A' + 10;
		else
			return -1;
	}
	return v;
}

static size_t jp_put_utf8(char *out, unsigned cp)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xe0 | (cp >> 12));
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | (cp >> 18));
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	out[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* A string at p->pos (the opening quote); *out_r is malloc'ed. */
static bool jp_string(struct jp *p, char **out_r, size_t *len_r)
{
	size_t end = p->pos + 1, n = 0;
	char *out;

	/* Find the closing quote first: the decoded string is never longer
	 * than its source. */
	while (end < p->len && p->s[end] != '"') {
		if ((unsigned char)p->s[end] < 0x20)
			return jp_fail(p, "control character in a string");
		end += p->s[end] == '\\' ? 2 : 1;
	}
	if (end >= p->len)
		return jp_fail(p, "unterminated string");
	out = malloc(end - p->pos);
	if (out == NULL)
		return jp_fail(p, "out of memory");
	for (size_t i = p->pos + 1; i < end;) {
		char c = p->s[i];
		int cp, lo;

		if (c != '\\') {
			out[n++] = c;
			i++;
			continue;
		}
		c = p->s[i + 1];
		i += 2;
		switch (c) {
		case '"':
			out[n++] = '"';
			continue;
		case '\\':
			out[n++] = '\\';
			continue;
		case '/':
			out[n++] = '/';
			continue;
		case 'b':
			out[n++] = '\b';
			continue;
		case 'f':
			out[n++] = '\f';
			continue;
		case 'n':
			out[n++] = '\n';
			continue;
		case 'r':
			out[n++] = '\r';
			continue;
		case 't':
			out[n++] = '\t';
			continue;
		case 'u':
			break;
		default:
			free(out);
			p->pos = i - 1;
			return jp_fail(p, "unknown escape in a string");
		}
		if (end - i < 4 || (cp = jp_hex4(p->s + i)) < 0) {
			free(out);
			p->pos = i;
			return jp_fail(p, "bad \\u escape");
		}
		i += 4;
		if (cp >= 0xd800 && cp <= 0xdbff && end - i >= 6 &&
		    p->s[i] == '\\' && p->s[i + 1] == 'u' &&
		    (lo = jp_hex4(p->s + i + 2)) >= 0xdc00 && lo <= 0xdfff) {
			cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			i += 6;
		} else if (cp >= 0xd800 && cp <= 0xdfff) {
			cp = 0xfffd; /* a lone surrogate */
		}
		n += jp_put_utf8(out + n, (unsigned)cp);
	}
	out[n] = '\0';
	*out_r = out;
	*len_r = n;
	p->pos = end + 1;
	return true;
}

static bool jp_number(struct jp *p, double *v_r)
{
	size_t start = p->pos, i = p->pos;
	char num[64];
	const char *s = p->s;

	if (i < p->len && s[i] == '-')
		i++;
	if (i < p->len && s[i] == '0') {
		i++;
	} else if (i < p->len && s[i] >= '1' && s[i] <= '9') {
		while (i < p->len && s[i] >= '0' && s[i] <= '9')
			i++;
	} else {
		return jp_fail(p, "bad number");
	}
	if (i < p->len && s[i] == '.') {
		i++;
		if (i >= p->len || s[i] < '0' || s[i] > '9')
			return jp_fail(p, "bad number");
		while (i < p->len && s[i] >= '0' && s[i] <= '9')
			i++;
	}
	if (i < p->len && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < p->len && (s[i] == '+' || s[i] == '-'))
			i++;
		if (i >= p->len || s[i] < '0' || s[i] > '9')
			return jp_fail(p, "bad number");
		while (i < p->len && s[i] >= '0' && s[i] <= '9')
			i++;
	}
	if (i - start >= sizeof(num))
		return jp_fail(p, "number too long");
	memcpy(num, s + start, i - start);
	num[i - start] = '\0';
	*v_r = strtod(num, NULL);
	p->pos = i;
	return true;
}

static bool jp_value(struct jp *p, struct json_val *v);

/* Appends a zeroed item to v (an array or object). */
static struct json_val *jp_push(struct jp *p, struct json_val *v, size_t *cap)
{
	if (v->n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 4;
		struct json_val *items =
		    realloc(v->items, ncap * sizeof(*items));

		if (items == NULL)
			return jp_fail(p, "out of memory"), NULL;
		v->items = items;
		if (v->type == JSON_OBJ) {
			char **keys = realloc(v->keys, ncap * sizeof(*keys));

			if (keys == NULL)
				return jp_fail(p, "out of memory"), NULL;
			v->keys = keys;
		}
		*cap = ncap;
	}
	memset(&v->items[v->n], 0, sizeof(v->items[0]));
	if (v->type == JSON_OBJ)
		v->keys[v->n] = NULL;
	return &v->items[v->n++];
}

static bool jp_container(struct jp *p, struct json_val *v, bool is_obj)
{
	size_t cap = 0;
	char close = is_obj ? '}' : ']';

	v->type = is_obj ? JSON_OBJ : JSON_ARR;
	if (++p->depth > JSON_PARSE_MAX_DEPTH)
		return jp_fail(p, "nested too deeply");
	p->pos++;
	jp_ws(p);
	if (p->pos < p->len && p->s[p->pos] == close) {
		p->pos++;
		p->depth--;
		return true;
	}
	for (;;) {
		struct json_val *item = jp_push(p, v, &cap);
		size_t klen;

		if (item == NULL)
			return false;
		if (is_obj) {
			jp_ws(p);
			if (p->pos >= p->len || p->s[p->pos] != '"')
				return jp_fail(p, "expected a member name");
			if (!jp_string(p, &v->keys[v->n - 1], &klen))
				return false;
			jp_ws(p);
			if (p->pos >= p->len || p->s[p->pos] != ':')
				return jp_fail(p, "expected ':'");
			p->pos++;
		}
		if (!jp_value(p, item))
			return false;
		jp_ws(p);
		if (p->pos >= p->len)
			return jp_fail(p, "unexpected end");
		if (p->s[p->pos] == ',') {
			p->pos++;
			continue;
		}
		if (p->s[p->pos] != close)
			return jp_fail(p, is_obj ? "expected ',' or '}'"
			                         : "expected ',' or ']'");
		p->pos++;
		p->depth--;
		return true;
	}
}

static bool jp_value(struct jp *p, struct json_val *v)
{
	jp_ws(p);
	if (p->pos >= p->len)
		return jp_fail(p, "unexpected end");
	switch (p->s[p->pos]) {
	case '{':
		return jp_container(p, v, true);
	case '[':
		return jp_container(p, v, false);
	case '"':
		v->type = JSON_STR;
		return jp_string(p, &v->str, &v->str_len);
	case 't':
		v->type = JSON_BOOL;
		v->b = true;
		return jp_lit(p, "true");
	case 'f':
		v->type = JSON_BOOL;
		return jp_lit(p, "false");
	case 'n':
		v->type = JSON_NULL;
		return jp_lit(p, "null");
	default:
		v->type = JSON_NUM;
		return jp_number(p, &v->num);
	}
}

static void json_free_inner(struct json_val *v)
{
	for (size_t i = 0; i < v->n; i++) {
		json_free_inner(&v->items[i]);
		if (v->keys != NULL)
			free(v->keys[i]);
	}
	free(v->items);
	free(v->keys);
	free(v->str);
}

struct json_val *json_parse(
    const char *text, size_t len, const char **errstr_r, size_t *offset_r)
{
	struct jp p = {.s = text, .len = len};
	struct json_val *v = calloc(1, sizeof(*v));

	if (v == NULL) {
		*errstr_r = "out of memory";
		*offset_r = 0;
		return NULL;
	}
	if (jp_value(&p, v)) {
		jp_ws(&p);
		if (p.pos == p.len)
			return v;
		jp_fail(&p, "text after the value");
	}
	*errstr_r = p.err;
	*offset_r = p.pos;
	json_free(v);
	return NULL;
}

void json_free(struct json_val *v)
{
	if (v == NULL)
		return;
	json_free_inner(v);
	free(v);
}

const struct json_val *json_get(const struct json_val *obj, const char *key)
{
	if (obj == NULL || obj->type != JSON_OBJ)
		return NULL;
	for (size_t i = 0; i < obj->n; i++)
		if (obj->keys[i] != NULL && strcmp(obj->keys[i], key) == 0)
			return &obj->items[i];
	return NULL;
}

const char *json_get_str(const struct json_val *obj, const char *key)
{
	const struct json_val *v = json_get(obj, key);

	return v != NULL && v->type == JSON_STR ? v->str : NULL;
}

bool json_get_num(const struct json_val *obj, const char *key, double *v_r)
{
	const struct json_val *v = json_get(obj, key);

	if (v == NULL || v->type != JSON_NUM)
		return false;
	*v_r = v->num;
	return true;
}

bool json_get_bool(const struct json_val *obj, const char *key, bool *v_r)
{
	const struct json_val *v = json_get(obj, key);

	if (v == NULL || v->type != JSON_BOOL)
		return false;
	*v_r = v->b;
	return true;
}

const struct json_val *json_get_arr(const struct json_val *obj, const char *key)
{
	const struct json_val *v = json_get(obj, key);

	return v != NULL && v->type == JSON_ARR ? v : NULL;
}

const struct json_val *json_get_obj(const struct json_val *obj, const char *key)
{
	const struct json_val *v = json_get(obj, key);

	return v != NULL && v->type == JSON_OBJ ? v : NULL;
}
