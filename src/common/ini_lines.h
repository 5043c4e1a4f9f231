/*
 * ini_lines.h: the line reader lodge hands to libinih's ini_parse_stream.
 * Debian's libinih passes no line number to the handler, cuts long lines
 * in two without a word and hides what follows a NUL byte; this reader
 * counts lines, refuses what libinih would silently misread, and tells its
 * caller, before libinih sees a line, how libinih will take it (blank,
 * comment, section, key, continuation or syntax error).  Pure: it reads a
 * FILE or a string it is given and opens nothing.  Used by the worker's
 * lodge.ini parser (as the user) and lodged's config parser (as root).
 */
#ifndef LODGE_INI_LINES_H
#define LODGE_INI_LINES_H

#include <ini.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* How libinih will read a line (its ini_parse_stream, step by step). */
enum ini_line_kind {
	INI_LINE_BLANK,        /* empty or only spaces */
	INI_LINE_COMMENT,      /* starts with ';' or '#' */
	INI_LINE_SECTION,      /* "[name]" */
	INI_LINE_PAIR,         /* "key = value" or "key: value" */
	INI_LINE_CONTINUATION, /* indented line after a key: more of its value
	                        */
	INI_LINE_SYNTAX,       /* none of these: libinih reports an error */
	INI_LINE_TOO_LONG,     /* longer than libinih's buffer */
	INI_LINE_NUL,          /* holds a NUL byte */
};

/*
 * Called once per line before libinih parses it, with the line (for
 * INI_LINE_SECTION: its name, the text between '[' and ']'; otherwise the
 * whole line, possibly cut short for TOO_LONG).  Returns true to go on,
 * false to end the parse here.  After TOO_LONG or NUL, going on means
 * libinih sees a blank line in its place: the line is reported once and
 * never half-read.
 */
typedef bool (*ini_lines_fn)(
    void *user, int lineno, enum ini_line_kind kind, const char *text);

struct ini_lines {
	/* Set by the caller: exactly one source, and the callback. */
	FILE *fp;
	const char *text;
	ini_lines_fn on_line;
	void *user;

	/* State, zero at start.  lineno is the line libinih is handling when
	 * it calls the handler (it reads one line and handles it before it
	 * reads the next), and kind how that line was classified, so a
	 * handler can tell a continuation from a key. */
	int lineno;
	enum ini_line_kind kind;
	int max_len; /* the longest line libinih can hold (199 on Debian) */
	bool is_read_error;
	int read_errno;
	bool is_stopped;
	size_t pos;
	bool has_prev_key; /* mirrors libinih's prev_name being set */
};

/*
 * Runs ini_parse_stream over r's source with this reader; returns what it
 * returns (0, the first line libinih found bad, or -1/-2).  A read error
 * sets r->is_read_error and r->read_errno and ends the parse.  Takes no
 * ownership of r->fp.
 */
int ini_lines_parse(struct ini_lines *r, ini_handler handler, void *user);

#endif
