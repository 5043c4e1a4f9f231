/*
 * render.h: lodgectl's screens, made from lodged's JSON replies (json.h).
 * Pure: they write to a FILE and read nothing else, so the unit tests
 * render fixed JSON into memory.  Every string from the reply is printed
 * with its control characters replaced: a user's name, an app's reason
 * or a log line never sends escape sequences to the provider's terminal.
 */
#ifndef LODGE_RENDER_H
#define LODGE_RENDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cli.h"
#include "json.h"

/*
 * Writes the human form of the reply to the command c: body is the parsed
 * JSON of an OK reply, or of an ERR reply when is_err (then only its
 * details are written, e.g. the errors of a config; the ERR sentence is
 * the caller's to print).  now_s is the current time in seconds since the
 * epoch (for "when" of a last reload).  Returns 0, or -1 if body lacks
 * what the screen needs (the caller then says the reply was not
 * understood).
 */
int render_reply(FILE *out, const struct cli *c, const struct json_val *body,
    int64_t now_s, bool is_err);

/* The Prometheus text exposition (format 0.0.4) of a metrics reply. */
int render_metrics(FILE *out, const struct json_val *body);

/* Writes s with every control character but TAB as '?'. */
void render_clean(FILE *out, const char *s);

/* "512", "31.2K", "1.5M", "2.0G": bytes with a binary unit.  Pure. */
void render_bytes(char *buf, size_t size, double bytes);

/* "45s", "5m12s", "3h04m", "2d03h": a duration, two units at most. */
void render_duration(char *buf, size_t size, double seconds);

#endif
