/*
 * json.h: the JSON of the control protocol (ctlproto.h).  lodged writes
 * its replies with the writer (json_out_*), lodgectl reads them with the
 * parser (json_parse) and renders screens from the tree.  Pure: no I/O, no
 * privileges; used by lodged (as root) and by lodgectl.
 */
#ifndef LODGE_JSON_H
#define LODGE_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- writer ---------------------------------------------------------- */

#define JSON_MAX_DEPTH 32

/*
 * A growing buffer of compact JSON.  Commas are placed by the writer: a
 * caller only opens, adds and closes.  key is the member name inside an
 * object and NULL inside an array or at the top.  Out of memory (or a
 * nesting deeper than JSON_MAX_DEPTH) sets is_failed and makes every later
 * call a no-op; the owner checks it once at the end and frees buf.
 */
struct json_out {
	char *buf; /* NUL-terminated; owned, free() it */
	size_t len;
	size_t cap;
	bool is_failed;
	int depth;
	bool has_item[JSON_MAX_DEPTH + 1]; /* a comma is due at this depth */
};

void json_out_obj(struct json_out *j, const char *key);
void json_out_obj_end(struct json_out *j);
void json_out_arr(struct json_out *j, const char *key);
void json_out_arr_end(struct json_out *j);

/* A string: bytes that are not valid UTF-8 become U+FFFD, control
 * characters are escaped.  s NULL writes null. */
void json_out_str(struct json_out *j, const char *key, const char *s);
void json_out_strn(
    struct json_out *j, const char *key, const char *s, size_t len);
void json_out_int(struct json_out *j, const char *key, int64_t v);
void json_out_uint(struct json_out *j, const char *key, uint64_t v);
/* A number with up to 6 decimals, trailing zeros dropped; a value that is
 * not finite is written as null (JSON has no NaN). */
void json_out_num(struct json_out *j, const char *key, double v);
void json_out_bool(struct json_out *j, const char *key, bool v);
void json_out_null(struct json_out *j, const char *key);

/* Frees the buffer; j can be reused after this.  Can't fail. */
void json_out_free(struct json_out *j);

/* ---- parser ---------------------------------------------------------- */

enum json_type {
	JSON_NULL = 0,
	JSON_BOOL,
	JSON_NUM,
	JSON_STR,
	JSON_ARR,
	JSON_OBJ,
};

/* A parsed value.  Strings are NUL-terminated UTF-8 (str_len excludes
 * the NUL; a "\u0000" inside is kept, so str_len is the truth).  An
 * object's members keep their order; keys[i] names items[i]. */
struct json_val {
	enum json_type type;
	bool b;
	double num;
	char *str;
	size_t str_len;
	struct json_val *items;
	char **keys; /* JSON_OBJ only */
	size_t n;
};

#define JSON_PARSE_MAX_DEPTH 64

/*
 * Parses text[0..len) (one value, whitespace around it allowed) into a
 * tree.  Returns the tree (free with json_free), or NULL with *errstr_r
 * saying what was wrong (a static string) and *offset_r where.
 */
struct json_val *json_parse(
    const char *text, size_t len, const char **errstr_r, size_t *offset_r);

void json_free(struct json_val *v);

/* The member key of obj, or NULL if obj is not an object or has none. */
const struct json_val *json_get(const struct json_val *obj, const char *key);

/* Typed lookups: the member's value if it exists with that type. */
const char *json_get_str(const struct json_val *obj, const char *key);
bool json_get_num(const struct json_val *obj, const char *key, double *v_r);
bool json_get_bool(const struct json_val *obj, const char *key, bool *v_r);
const struct json_val *json_get_arr(
    const struct json_val *obj, const char *key);
const struct json_val *json_get_obj(
    const struct json_val *obj, const char *key);

#endif
