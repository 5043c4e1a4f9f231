/*
 * ini_lines.c: the line reader given to libinih (see ini_lines.h).  It
 * mirrors, line by line, the decisions of Debian's libinih r55
 * (ini_parse_stream in ini.c) so that its callers know the line number and
 * the kind of every line libinih handles; what libinih would misread (a
 * line longer than its 200-byte buffer, a NUL byte) is reported here and
 * replaced by a blank line.  Pure: reads the FILE or string it is given.
 */
#include "ini_lines.h"

#include <errno.h>
#include <string.h>

static int ini_lines_getc(struct ini_lines *r)
{
	int c;

	if (r->fp == NULL) {
		if (r->text[r->pos] == '\0')
			return EOF;
		return (unsigned char)r->text[r->pos++];
	}
	c = getc(r->fp);
	if (c == EOF && ferror(r->fp) && !r->is_read_error) {
		r->is_read_error = true;
		r->read_errno = errno != 0 ? errno : EIO;
	}
	return c;
}

static int ini_lines_peekc(struct ini_lines *r)
{
	int c;

	if (r->fp == NULL)
		return r->text[r->pos] == '\0' ? EOF
		                               : (unsigned char)r->text[r->pos];
	c = ini_lines_getc(r);
	if (c != EOF)
		ungetc(c, r->fp);
	return c;
}

static bool ini_lines_is_space(int c)
{
	/* The same set as libinih's isspace() in the C locale. */
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
	       c == '\f';
}

/* libinih's find_chars_or_comment: the first of chars, or an inline ';'
 * comment (a ';' after a space), or the end. */
static const char *ini_lines_find(const char *s, const char *chars)
{
	bool was_space = false;

	while (*s != '\0' && strchr(chars, *s) == NULL &&
	       !(was_space && *s == ';')) {
		was_space = ini_lines_is_space((unsigned char)*s);
		s++;
	}
	return s;
}

/* Classifies a line the way libinih will, and tracks its prev_name. */
static enum ini_line_kind ini_lines_classify(
    struct ini_lines *r, char *line, const char **text_r, size_t *len_r)
{
	char *start = line;
	char *end;

	if (r->lineno == 1 && (unsigned char)start[0] == 0xEF &&
	    (unsigned char)start[1] == 0xBB && (unsigned char)start[2] == 0xBF)
		start += 3;
	while (ini_lines_is_space((unsigned char)*start))
		start++;
	*text_r = line;
	*len_r = strlen(line);
	if (*start == '\0')
		return INI_LINE_BLANK;
	if (*start == ';' || *start == '#')
		return INI_LINE_COMMENT;
	if (r->has_prev_key && start > line)
		return INI_LINE_CONTINUATION;
	if (*start == '[') {
		end = (char *)ini_lines_find(start + 1, "]");
		if (*end != ']')
			return INI_LINE_SYNTAX;
		r->has_prev_key = false;
		*text_r = start + 1;
		*len_r = (size_t)(end - start - 1);
		return INI_LINE_SECTION;
	}
	end = (char *)ini_lines_find(start, "=:");
	if (*end != '=' && *end != ':')
		return INI_LINE_SYNTAX;
	/* libinih keeps the key (right-trimmed) as prev_name; an empty key
	 * leaves it empty, and no continuation can follow. */
	while (end > start && ini_lines_is_space((unsigned char)end[-1]))
		end--;
	r->has_prev_key = end > start;
	return INI_LINE_PAIR;
}

/* Reports a line to the caller; false if the parse must end. */
static bool ini_lines_report(
    struct ini_lines *r, enum ini_line_kind kind, const char *text, size_t len)
{
	char buf[256];

	r->kind = kind;
	if (r->on_line == NULL)
		return true;
	if (len >= sizeof(buf))
		len = sizeof(buf) - 1;
	memcpy(buf, text, len);
	buf[len] = '\0';
	/* A line ending is not part of what the caller is shown. */
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		buf[--len] = '\0';
	if (!r->on_line(r->user, r->lineno, kind, buf)) {
		r->is_stopped = true;
		return false;
	}
	return true;
}

/* libinih's fgets-style reader (see the file comment). */
static char *ini_lines_reader(char *str, int num, void *stream)
{
	struct ini_lines *r = stream;
	enum ini_line_kind kind;
	bool has_nul = false;
	bool is_too_long = false;
	const char *text;
	size_t len;
	int n = 0;
	int c;

	if (r->is_stopped || r->is_read_error || num < 4)
		return NULL;
	r->max_len = num - 1;

	while (n < num - 1) {
		c = ini_lines_getc(r);
		if (c == EOF)
			break;
		if (c == '\0')
			has_nul = true;
		str[n++] = (char)c;
		if (c == '\n')
			break;
	}
	if (r->is_read_error || n == 0)
		return NULL;
	str[n] = '\0';
	r->lineno++;

	if (str[n - 1] != '\n' && n == num - 1) {
		/* The buffer is full: fine if the line ends right here. */
		c = ini_lines_peekc(r);
		if (c == '\n') {
			(void)ini_lines_getc(r);
		} else if (c != EOF) {
			is_too_long = true;
			while ((c = ini_lines_getc(r)) != EOF && c != '\n')
				;
			if (r->is_read_error)
				return NULL;
		}
	}
	if (has_nul || is_too_long) {
		for (int i = 0; i < n; i++)
			if (str[i] == '\0')
				str[i] = '?';
		if (!ini_lines_report(r,
		        has_nul ? INI_LINE_NUL : INI_LINE_TOO_LONG, str,
		        (size_t)n))
			return NULL;
		/* libinih sees an empty line instead; what came before stays
		 * as it was (a key before it may still be continued). */
		strcpy(str, "\n");
		r->kind = INI_LINE_BLANK;
		return str;
	}

	kind = ini_lines_classify(r, str, &text, &len);
	if (!ini_lines_report(r, kind, text, len))
		return NULL;
	return str;
}

int ini_lines_parse(struct ini_lines *r, ini_handler handler, void *user)
{
	return ini_parse_stream(ini_lines_reader, r, handler, user);
}
