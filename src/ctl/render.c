/*
 * render.c: lodgectl's screens from lodged's JSON: the status overview
 * (one row per user, or per worker of a user that has some), one user in
 * detail, the Prometheus exposition of the metrics, a log's tail, the
 * messages of a config check.  Pure: runs in lodgectl and writes to the
 * FILE it is given.  A field lodged cannot fill yet is null in the JSON
 * and "-" on the screen.  What it prints of the reply passes through
 * render_clean: no control character reaches the terminal.
 */
#include "render.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

void render_clean(FILE *out, const char *s)
{
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		fputc((c < 0x20 && c != '\t') || c == 0x7f ? '?' : c, out);
	}
}

void render_bytes(char *buf, size_t size, double bytes)
{
	static const char units[] = "KMGTP";
	int u = -1;

	if (bytes < 1024) {
		snprintf(buf, size, "%.0f", bytes < 0 ? 0 : bytes);
		return;
	}
	while (bytes >= 1024 && u < 4) {
		bytes /= 1024;
		u++;
	}
	snprintf(buf, size, "%.1f%c", bytes, units[u]);
}

void render_duration(char *buf, size_t size, double seconds)
{
	long long s = seconds < 0 ? 0 : (long long)seconds;

	if (s < 60)
		snprintf(buf, size, "%llds", s);
	else if (s < 3600)
		snprintf(buf, size, "%lldm%02llds", s / 60, s % 60);
	else if (s < 86400)
		snprintf(buf, size, "%lldh%02lldm", s / 3600, s % 3600 / 60);
	else
		snprintf(
		    buf, size, "%lldd%02lldh", s / 86400, s % 86400 / 3600);
}

/* ---- fields ---------------------------------------------------------- */

/* The member as text for a cell: a number, a string, or "-" when it is
 * null or absent. */
static const char *render_int(
    char *buf, size_t size, const struct json_val *o, const char *key)
{
	double v;

	if (!json_get_num(o, key, &v))
		return "-";
	snprintf(buf, size, "%.0f", v);
	return buf;
}

static const char *render_bytes_of(
    char *buf, size_t size, const struct json_val *o, const char *key)
{
	double v;

	if (!json_get_num(o, key, &v))
		return "-";
	render_bytes(buf, size, v);
	return buf;
}

static const char *render_dur_of(
    char *buf, size_t size, const struct json_val *o, const char *key)
{
	double v;

	if (!json_get_num(o, key, &v))
		return "-";
	render_duration(buf, size, v);
	return buf;
}

static const char *render_cpu_of(
    char *buf, size_t size, const struct json_val *o, const char *key)
{
	double v;

	if (!json_get_num(o, key, &v))
		return "-";
	snprintf(buf, size, "%.2fs", v);
	return buf;
}

static const char *render_str(const struct json_val *o, const char *key)
{
	const char *s = json_get_str(o, key);

	return s != NULL ? s : "-";
}

static double render_num(const struct json_val *o, const char *key, double dflt)
{
	double v;

	return json_get_num(o, key, &v) ? v : dflt;
}

/* ---- tables ---------------------------------------------------------- */

#define RENDER_MAX_COLS 16

/* Rows of cells printed in aligned columns (the last one unpadded). */
struct render_table {
	int ncols;
	char **cells; /* nrows * ncols, the first row the heads */
	size_t nrows;
	size_t cap;
	bool is_failed;
};

static void render_row(struct render_table *t, const char *const *cells)
{
	if (t->is_failed)
		return;
	if (t->nrows == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;
		char **grown =
		    realloc(t->cells, cap * (size_t)t->ncols * sizeof(char *));

		if (grown == NULL) {
			t->is_failed = true;
			return;
		}
		t->cells = grown;
		t->cap = cap;
	}
	for (int i = 0; i < t->ncols; i++) {
		char *s = strdup(cells[i] != NULL ? cells[i] : "-");

		if (s == NULL)
			t->is_failed = true;
		t->cells[t->nrows * (size_t)t->ncols + (size_t)i] = s;
	}
	t->nrows++;
}

static void render_table_print(FILE *out, struct render_table *t)
{
	size_t width[RENDER_MAX_COLS] = {0};

	if (t->is_failed) {
		fputs("(out of memory)\n", out);
		return;
	}
	for (size_t r = 0; r < t->nrows; r++)
		for (int c = 0; c < t->ncols; c++) {
			const char *s =
			    t->cells[r * (size_t)t->ncols + (size_t)c];
			size_t n = s != NULL ? strlen(s) : 0;

			if (n > width[c])
				width[c] = n;
		}
	for (size_t r = 0; r < t->nrows; r++) {
		int last = t->ncols - 1;

		/* Trailing empty cells are not padded either. */
		while (last > 0 &&
		       t->cells[r * (size_t)t->ncols + (size_t)last][0] == '\0')
			last--;
		for (int c = 0; c <= last; c++) {
			const char *s =
			    t->cells[r * (size_t)t->ncols + (size_t)c];

			render_clean(out, s);
			if (c < last)
				fprintf(out, "%*s",
				    (int)(width[c] - strlen(s) + 2), "");
		}
		fputc('\n', out);
	}
}

static void render_table_free(struct render_table *t)
{
	for (size_t i = 0; i < t->nrows * (size_t)t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	memset(t, 0, sizeof(*t));
}

/* ---- status ---------------------------------------------------------- */

static void render_lodged_head(
    FILE *out, const struct json_val *lodged, const struct json_val *router)
{
	char up[32], rss[32];

	fputs("lodged ", out);
	render_clean(out, render_str(lodged, "version"));
	fprintf(out, " (pid %.0f), up %s, config ",
	    render_num(lodged, "pid", 0),
	    render_dur_of(up, sizeof(up), lodged, "uptime_s"));
	render_clean(out, render_str(lodged, "config"));
	{
		bool is_stopping = false;

		if (json_get_bool(lodged, "stopping", &is_stopping) &&
		    is_stopping)
			fputs("; SHUTTING DOWN", out);
	}
	fputc('\n', out);
	if (router == NULL || router->type != JSON_OBJ) {
		fputs("router: none (no front sockets: per-user sockets "
		      "only)\n",
		    out);
	} else {
		fputs("router: ", out);
		render_clean(out, render_str(router, "state"));
		if (json_get_num(router, "pid", &(double){0}))
			fprintf(out, " (pid %.0f), up %s, RSS %s",
			    render_num(router, "pid", 0),
			    render_dur_of(up, sizeof(up), router, "uptime_s"),
			    render_bytes_of(
			        rss, sizeof(rss), router, "rss_bytes"));
		fprintf(out, ", %.0f restart(s)",
		    render_num(router, "restarts", 0));
		if (render_num(router, "crashes_in_a_row", 0) > 0)
			fprintf(out, ", %.0f crash(es) in a row",
			    render_num(router, "crashes_in_a_row", 0));
		fputc('\n', out);
	}
}

/* The note at the end of a user's first row: what to know or do. */
static void render_user_note(char *buf, size_t size, const struct json_val *u)
{
	const char *state = render_str(u, "state");
	const char *name = render_str(u, "name");
	double next;

	buf[0] = '\0';
	if (strcmp(state, "stopped") == 0)
		snprintf(
		    buf, size, "stopped by lodgectl: lodgectl start %s", name);
	else if (strcmp(state, "stopping") == 0)
		snprintf(
		    buf, size, "draining; held until lodgectl start %s", name);
	else if (strcmp(state, "restarting") == 0)
		snprintf(buf, size, "new workers start when the old ones exit");
	else if (strcmp(state, "nosocket") == 0)
		snprintf(buf, size, "no socket: see lodged's log");
	else if (json_get_num(u, "restart_in_s", &next))
		snprintf(buf, size,
		    "crashed %.0f time(s) in a row; next try in %.0fs; "
		    "lodgectl logs %s",
		    render_num(u, "crashes_in_a_row", 0), next, name);
	else if (render_num(u, "queue_depth", 0) > 0)
		snprintf(buf, size, "%.0f request(s) waiting in the router",
		    render_num(u, "queue_depth", 0));
}

/* An app's last reload: "ok 5m12s ago", "FAILED 3s ago: reason". */
static void render_last_reload(
    char *buf, size_t size, const struct json_val *app, int64_t now_s)
{
	const struct json_val *lr = json_get_obj(app, "last_reload");
	char ago[32];
	bool is_ok = false;
	double when;

	if (lr == NULL) {
		snprintf(buf, size, "-");
		return;
	}
	(void)json_get_bool(lr, "ok", &is_ok);
	if (json_get_num(lr, "when", &when)) {
		render_duration(ago, sizeof(ago), (double)now_s - when);
		strcat(ago, " ago");
	} else {
		snprintf(ago, sizeof(ago), "-");
	}
	snprintf(buf, size, "%s %s%s%s", is_ok ? "ok" : "FAILED", ago,
	    is_ok ? "" : ": ", is_ok ? "" : render_str(lr, "reason"));
}

static void render_apps(FILE *out, const struct json_val *users, int64_t now_s)
{
	static const char *const head[] = {
	    "USER", "APP", "MODE", "VERSION", "STATE", "LAST RELOAD"};
	struct render_table t = {.ncols = 6};
	bool has_any = false;

	render_row(&t, head);
	for (size_t i = 0; i < users->n; i++) {
		const struct json_val *u = &users->items[i];
		const struct json_val *apps = json_get_arr(u, "apps");

		for (size_t k = 0; apps != NULL && k < apps->n; k++) {
			const struct json_val *a = &apps->items[k];
			char ver[32], last[1200];
			const char *cells[6] = {render_str(u, "name"),
			    render_str(a, "name"), render_str(a, "mode"),
			    render_int(ver, sizeof(ver), a, "version"),
			    render_str(a, "state"), last};

			render_last_reload(last, sizeof(last), a, now_s);
			render_row(&t, cells);
			has_any = true;
		}
	}
	fputc('\n', out);
	if (has_any)
		render_table_print(out, &t);
	else
		fputs("apps: - (not reported by the workers yet; lodgectl "
		      "logs USER/APP shows an app's log)\n",
		    out);
	render_table_free(&t);
}

static int render_status(FILE *out, const struct json_val *body, int64_t now_s)
{
	static const char *const head[] = {"USER", "STATE", "W", "PID",
	    "UPTIME", "RSS", "CPU", "REQS", "INFL", "RESTARTS", "CRASHES",
	    "NOTE"};
	const struct json_val *lodged = json_get_obj(body, "lodged");
	const struct json_val *users = json_get_arr(body, "users");
	struct render_table t = {.ncols = 12};
	unsigned nrunning_users = 0, nheld = 0;

	if (lodged == NULL || users == NULL)
		return -1;
	render_lodged_head(out, lodged, json_get(body, "router"));
	render_row(&t, head);
	for (size_t i = 0; i < users->n; i++) {
		const struct json_val *u = &users->items[i];
		const struct json_val *ws = json_get_arr(u, "workers");
		const char *state = render_str(u, "state");
		char note[256], restarts[32], crashes[32];
		bool is_first = true;

		if (u->type != JSON_OBJ)
			return -1;
		render_user_note(note, sizeof(note), u);
		nrunning_users += render_num(u, "running", 0) > 0;
		nheld += strcmp(state, "stopped") == 0 ||
		         strcmp(state, "stopping") == 0;
		for (size_t k = 0; ws != NULL && k < ws->n; k++) {
			const struct json_val *w = &ws->items[k];
			char slot[16], pid[16], up[32], rss[32], cpu[32];
			char reqs[32], infl[32];

			if (strcmp(render_str(w, "state"), "idle") == 0)
				continue;
			render_int(restarts, sizeof(restarts), w, "restarts");
			render_int(crashes, sizeof(crashes), w, "crashes");
			const char *cells[12] = {render_str(u, "name"),
			    is_first ? state : render_str(w, "state"),
			    render_int(slot, sizeof(slot), w, "slot"),
			    render_int(pid, sizeof(pid), w, "pid"),
			    render_dur_of(up, sizeof(up), w, "uptime_s"),
			    render_bytes_of(rss, sizeof(rss), w, "rss_bytes"),
			    render_cpu_of(cpu, sizeof(cpu), w, "cpu_seconds"),
			    render_int(
			        reqs, sizeof(reqs), w, "requests_served"),
			    render_int(
			        infl, sizeof(infl), w, "requests_inflight"),
			    restarts, crashes, is_first ? note : ""};

			render_row(&t, cells);
			is_first = false;
		}
		if (is_first) {
			/* Nothing runs nor waits: one row for the user. */
			const char *cells[12] = {render_str(u, "name"), state,
			    "-", "-", "-", "-", "-", "-", "-",
			    render_int(
			        restarts, sizeof(restarts), u, "restarts"),
			    render_int(crashes, sizeof(crashes), u, "crashes"),
			    note};

			render_row(&t, cells);
		}
	}
	fprintf(out, "users: %zu hosted, %u with workers running", users->n,
	    nrunning_users);
	if (nheld > 0)
		fprintf(out, ", %u stopped by lodgectl", nheld);
	fprintf(out, "; %.0f worker(s) running\n\n",
	    render_num(lodged, "workers_running", 0));
	if (users->n > 0)
		render_table_print(out, &t);
	else
		fputs("(no hosted user: set users = in the config)\n", out);
	render_table_free(&t);
	render_apps(out, users, now_s);
	return 0;
}

static void render_limits(FILE *out, const struct json_val *l)
{
	char mem[32];
	double v;

	if (l == NULL)
		return;
	fprintf(out, "  limits   processes %.0f, threads %.0f, memory_max ",
	    render_num(l, "processes", 0), render_num(l, "threads", 0));
	if (json_get_num(l, "memory_max", &v) && v > 0) {
		render_bytes(mem, sizeof(mem), v);
		fputs(mem, out);
	} else {
		fputs("max", out);
	}
	fprintf(out, ", pids_max ");
	if (json_get_num(l, "pids_max", &v) && v > 0)
		fprintf(out, "%.0f", v);
	else
		fputs("max", out);
	fprintf(out, ", cpu_weight %.0f,\n           nofile %.0f, network ",
	    render_num(l, "cpu_weight", 0), render_num(l, "nofile", 0));
	render_clean(out, render_str(l, "network"));
	fprintf(out, ", request_timeout %.0fs, idle_timeout ",
	    render_num(l, "request_timeout", 0));
	if (render_num(l, "idle_timeout", 0) > 0)
		fprintf(out, "%.0fs\n", render_num(l, "idle_timeout", 0));
	else
		fputs("never\n", out);
}

static int render_status_user(
    FILE *out, const struct json_val *body, int64_t now_s)
{
	static const char *const head[] = {"W", "STATE", "PID", "INIT",
	    "UPTIME", "RSS", "CPU", "PROCS", "REQS", "INFL", "STARTS",
	    "CRASHES", "SPAWN", "NOTE"};
	const struct json_val *users = json_get_arr(body, "users");
	const struct json_val *u, *ws;
	struct render_table t = {.ncols = 14};
	char note[256], rss[32], cpu[32];

	if (users == NULL || users->n != 1 || users->items[0].type != JSON_OBJ)
		return -1;
	u = &users->items[0];
	ws = json_get_arr(u, "workers");
	render_clean(out, render_str(u, "name"));
	fprintf(out, " (uid %.0f): ", render_num(u, "uid", 0));
	render_clean(out, render_str(u, "state"));
	fprintf(out, ", %.0f of %.0f worker(s) running\n",
	    render_num(u, "running", 0), render_num(u, "processes", 0));
	render_user_note(note, sizeof(note), u);
	if (note[0] != '\0') {
		fputs("  note     ", out);
		render_clean(out, note);
		fputc('\n', out);
	}
	fputs("  socket   ", out);
	render_clean(out, render_str(u, "socket"));
	fputs("\n  home     ", out);
	render_clean(out, render_str(u, "home"));
	fputs("\n  apps     ", out);
	render_clean(out, render_str(u, "apps_dir"));
	fputs("\n  logs     ", out);
	render_clean(out, render_str(u, "log_dir"));
	fputc('\n', out);
	render_limits(out, json_get_obj(u, "limits"));
	fprintf(out,
	    "  totals   RSS %s, CPU %s, %.0f start(s), %.0f restart(s), "
	    "%.0f failed start(s), %.0f crash(es), %.0f in a row\n",
	    render_bytes_of(rss, sizeof(rss), u, "rss_bytes"),
	    render_cpu_of(cpu, sizeof(cpu), u, "cpu_seconds"),
	    render_num(u, "starts", 0), render_num(u, "restarts", 0),
	    render_num(u, "failed_starts", 0), render_num(u, "crashes", 0),
	    render_num(u, "crashes_in_a_row", 0));
	fputc('\n', out);
	render_row(&t, head);
	for (size_t k = 0; ws != NULL && k < ws->n; k++) {
		const struct json_val *w = &ws->items[k];
		char slot[16], pid[16], init[16], up[32], procs[16], reqs[32];
		char infl[32], starts[16], crashes[16], spawn[32], wnote[64];
		double v;

		spawn[0] = wnote[0] = '\0';
		if (json_get_num(w, "spawn_seconds", &v))
			snprintf(spawn, sizeof(spawn), "%.0fms", v * 1000);
		else
			snprintf(spawn, sizeof(spawn), "-");
		if (json_get_num(w, "restart_in_s", &v))
			snprintf(wnote, sizeof(wnote), "next try in %.0fs", v);
		const char *cells[14] = {
		    render_int(slot, sizeof(slot), w, "slot"),
		    render_str(w, "state"),
		    render_int(pid, sizeof(pid), w, "pid"),
		    render_int(init, sizeof(init), w, "init_pid"),
		    render_dur_of(up, sizeof(up), w, "uptime_s"),
		    render_bytes_of(rss, sizeof(rss), w, "rss_bytes"),
		    render_cpu_of(cpu, sizeof(cpu), w, "cpu_seconds"),
		    render_int(procs, sizeof(procs), w, "processes"),
		    render_int(reqs, sizeof(reqs), w, "requests_served"),
		    render_int(infl, sizeof(infl), w, "requests_inflight"),
		    render_int(starts, sizeof(starts), w, "starts"),
		    render_int(crashes, sizeof(crashes), w, "crashes"), spawn,
		    wnote};

		render_row(&t, cells);
	}
	render_table_print(out, &t);
	render_table_free(&t);
	render_apps(out, users, now_s);
	return 0;
}

/* ---- metrics --------------------------------------------------------- */

/* A label value or HELP text as the exposition format escapes it. */
static void render_prom_escape(FILE *out, const char *s, bool is_label)
{
	for (; *s != '\0'; s++) {
		if (*s == '\\')
			fputs("\\\\", out);
		else if (*s == '\n')
			fputs("\\n", out);
		else if (*s == '"' && is_label)
			fputs("\\\"", out);
		else
			fputc(*s, out);
	}
}

/* A metric or label name: [a-zA-Z_:][a-zA-Z0-9_:]*. */
static bool render_prom_name_ok(const char *s, bool is_label)
{
	if (s == NULL || *s == '\0' || (*s >= '0' && *s <= '9'))
		return false;
	for (; *s != '\0'; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		        (*s >= '0' && *s <= '9') || *s == '_' ||
		        (*s == ':' && !is_label)))
			return false;
	return true;
}

static void render_prom_value(FILE *out, double v)
{
	if (isnan(v))
		fputs("NaN", out);
	else if (isinf(v))
		fputs(v > 0 ? "+Inf" : "-Inf", out);
	else if (v == floor(v) && fabs(v) < 9007199254740992.0)
		fprintf(out, "%.0f", v);
	else
		fprintf(out, "%.15g", v);
}

int render_metrics(FILE *out, const struct json_val *body)
{
	const struct json_val *fams = json_get_arr(body, "metrics");

	if (fams == NULL)
		return -1;
	for (size_t i = 0; i < fams->n; i++) {
		const struct json_val *f = &fams->items[i];
		const char *name = json_get_str(f, "name");
		const char *type = json_get_str(f, "type");
		const char *help = json_get_str(f, "help");
		const struct json_val *samples = json_get_arr(f, "samples");

		if (!render_prom_name_ok(name, false) || type == NULL ||
		    samples == NULL)
			return -1;
		if (help != NULL) {
			fprintf(out, "# HELP %s ", name);
			render_prom_escape(out, help, false);
			fputc('\n', out);
		}
		fprintf(out, "# TYPE %s %s\n", name, type);
		for (size_t k = 0; k < samples->n; k++) {
			const struct json_val *s = &samples->items[k];
			const struct json_val *labels =
			    json_get_obj(s, "labels");
			const char *suffix = json_get_str(s, "suffix");
			double v;

			if (!json_get_num(s, "value", &v) ||
			    (suffix != NULL &&
			        !render_prom_name_ok(suffix, false)))
				return -1;
			fprintf(
			    out, "%s%s", name, suffix != NULL ? suffix : "");
			for (size_t l = 0; labels != NULL && l < labels->n;
			     l++) {
				const struct json_val *lv = &labels->items[l];

				if (!render_prom_name_ok(
				        labels->keys[l], true) ||
				    lv->type != JSON_STR)
					return -1;
				fprintf(out, "%s%s=\"", l == 0 ? "{" : ",",
				    labels->keys[l]);
				render_prom_escape(out, lv->str, true);
				fputc('"', out);
			}
			if (labels != NULL && labels->n > 0)
				fputc('}', out);
			fputc(' ', out);
			render_prom_value(out, v);
			fputc('\n', out);
		}
	}
	return 0;
}

/* ---- the other replies ----------------------------------------------- */

static int render_logs(FILE *out, const struct json_val *body)
{
	const struct json_val *lines = json_get_arr(body, "lines");

	if (lines == NULL)
		return -1;
	for (size_t i = 0; i < lines->n; i++) {
		if (lines->items[i].type != JSON_STR)
			return -1;
		render_clean(out, lines->items[i].str);
		fputc('\n', out);
	}
	return 0;
}

static void render_list(
    FILE *out, const struct json_val *body, const char *key, const char *prefix)
{
	const struct json_val *a = json_get_arr(body, key);

	for (size_t i = 0; a != NULL && i < a->n; i++) {
		if (a->items[i].type != JSON_STR)
			continue;
		fputs(prefix, out);
		render_clean(out, a->items[i].str);
		fputc('\n', out);
	}
}

static int render_config(FILE *out, const struct json_val *body, bool is_err)
{
	const struct json_val *users = json_get_arr(body, "users");
	const char *config = render_str(body, "config");

	for (size_t i = 0; users != NULL && i < users->n; i++) {
		const struct json_val *u = &users->items[i];

		render_clean(out, config);
		fputs(": hosts ", out);
		render_clean(out, render_str(u, "name"));
		fprintf(out, " (uid %.0f, %.0f process(es), %.0f thread(s))\n",
		    render_num(u, "uid", 0), render_num(u, "processes", 0),
		    render_num(u, "threads", 0));
	}
	render_list(out, body, "warnings", "warning: ");
	render_list(out, body, "errors", "");
	if (!is_err && json_get_str(body, "message") != NULL) {
		render_clean(out, json_get_str(body, "message"));
		fputc('\n', out);
	}
	return 0;
}

static int render_message(FILE *out, const struct json_val *body)
{
	const char *msg = json_get_str(body, "message");

	if (msg == NULL)
		return -1;
	render_clean(out, msg);
	fputc('\n', out);
	return 0;
}

int render_reply(FILE *out, const struct cli *c, const struct json_val *body,
    int64_t now_s, bool is_err)
{
	enum cli_cmd cmd = c->cmd;

	if (body == NULL || body->type != JSON_OBJ)
		return -1;
	if (is_err) {
		/* Only the details; the sentence is the caller's. */
		if (cmd == CLI_CHECK_CONFIG || cmd == CLI_RELOAD_CONFIG)
			return render_config(out, body, true);
		return 0;
	}
	switch (cmd) {
	case CLI_STATUS:
		if (c->target != NULL)
			return render_status_user(out, body, now_s);
		return render_status(out, body, now_s);
	case CLI_METRICS:
		return render_metrics(out, body);
	case CLI_LOGS:
		return render_logs(out, body);
	case CLI_CHECK_CONFIG:
	case CLI_RELOAD_CONFIG:
		return render_config(out, body, false);
	case CLI_VERSION:
		fputs("lodged ", out);
		render_clean(out, render_str(body, "version"));
		fprintf(out, " (control protocol %.0f)\n",
		    render_num(body, "protocol", 0));
		return 0;
	case CLI_RELOAD:
	case CLI_RESTART:
	case CLI_STOP:
	case CLI_START:
		return render_message(out, body);
	case CLI_HELP:
		break;
	}
	return -1;
}
