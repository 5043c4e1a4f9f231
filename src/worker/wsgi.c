/*
 * wsgi.c: PEP 3333 inside lodge-worker.  Defines the built-in module
 * _lodge (multi-phase init, so every sub-interpreter gets its own copy and
 * its own types: start_response, wsgi.input, wsgi.errors and the app's
 * sys.stdout/stderr writer, wsgi.file_wrapper), prepares a fresh
 * interpreter for an app, and serves one request: environ, call, iterate,
 * close.
 *
 * Runs in lodge-worker as the hosted user, on the serving threads.  The
 * GIL is held only to build the environ and run app code; every socket
 * read or write releases it (EMBEDDING.md §4: on 3.11 all interpreters
 * share one GIL).  Nothing the app does may take the worker down: all
 * exceptions, SystemExit included, are caught, logged with their traceback
 * to the app's log and answered with a 500 (EMBEDDING.md §5 item 7: never
 * PyErr_Print, which exits on SystemExit).
 */
#include "worker.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "http.h"
#include "log.h"
#include "util.h"

#define WSGI_BATCH_MAX 16 /* requests one thread runs per GIL hold */
#define WSGI_BATCH_MS 2   /* ... or this long */

/* Per-interpreter state of the _lodge module. */
struct wsgi_state {
	PyTypeObject *start_response_type;
	PyTypeObject *input_type;
	PyTypeObject *writer_type;
	PyTypeObject *file_wrapper_type;
	PyObject *base_environ; /* constant environ entries, copied per call */
	PyObject *errors;       /* the LogWriter behind wsgi.errors */
	PyObject *setup;        /* bootstrap functions (see wsgi_bootstrap) */
	PyObject *format_exc;
	PyObject *module_files;
	PyObject *threads_left;
	PyObject *str_close, *str_read, *str_fileno, *str_wsgi_input;
	PyObject *str_url_scheme, *str_https;
	struct app *app;
};

/*
 * Python half of the module: what is simpler in Python and runs once per
 * interpreter (never per request).
 */
static const char wsgi_bootstrap[] =
    "import sys as _sys\n"
    "def _setup(app_dir, venv_site, writer, entry_module, entry_callable,\n"
    "           entry_file, env):\n"
    /* The import machinery's frozen modules are loaded in every
     * interpreter already; importlib.util would cost ~5 ms per build. */
    "    import os, _frozen_importlib as bs, _frozen_importlib_external as bse\n"
    "    _sys.stdout = _sys.stderr = writer\n"
    "    _sys.argv = [entry_file or app_dir]\n"
    "    before = list(_sys.path)\n"
    "    if venv_site:\n"
    "        import site\n"
    "        site.addsitedir(venv_site)\n"
    "    added = [p for p in _sys.path if p not in before]\n"
    "    _sys.path[:] = [app_dir] + added + before\n"
    /* os.environ of a sub-interpreter is a snapshot, but setting an item
     * calls putenv(), which is process-wide (EMBEDDING.md §5 item 10):
     * write the snapshot only. */
    "    for k, v in env.items():\n"
    "        os.environ._data[os.environ.encodekey(k)] = "
    "os.environ.encodevalue(v)\n"
    "    if entry_module:\n"
    "        __import__(entry_module)\n"
    "        mod = _sys.modules[entry_module]\n"
    "    else:\n"
    "        name = 'wsgi' if entry_file.endswith('.py') else 'app_wsgi'\n"
    "        loader = bse.SourceFileLoader(name, entry_file)\n"
    "        spec = bse.spec_from_file_location(name, entry_file,\n"
    "                                                      loader=loader)\n"
    "        mod = bs.module_from_spec(spec)\n"
    "        _sys.modules[name] = mod\n"
    "        try:\n"
    "            loader.exec_module(mod)\n"
    "        except BaseException:\n"
    "            _sys.modules.pop(name, None)\n"
    "            raise\n"
    "    obj = mod\n"
    "    for part in entry_callable.split('.'):\n"
    "        if not hasattr(obj, part):\n"
    "            raise AttributeError('%s defines no %r (lodge looks for '\n"
    "                '%r)' % (getattr(mod, '__file__', entry_module),\n"
    "                part, entry_callable))\n"
    "        obj = getattr(obj, part)\n"
    "    if not callable(obj):\n"
    "        raise TypeError('%s is not callable (it is a %s)' %\n"
    "                        (entry_callable, type(obj).__name__))\n"
    "    return obj\n"
    /* The files of every module imported from roots (the app folder, its
     * venv): what the reload watcher must watch.  Reads module dicts only,
     * so no module-level __getattr__ of the app runs. */
    "def _module_files(roots):\n"
    "    import os\n"
    "    roots = [os.path.abspath(r) for r in roots if r]\n"
    "    files = set()\n"
    "    for m in list(_sys.modules.values()):\n"
    "        d = getattr(m, '__dict__', None)\n"
    "        f = d.get('__file__') if isinstance(d, dict) else None\n"
    "        if not isinstance(f, str):\n"
    "            continue\n"
    "        f = os.path.abspath(f)\n"
    "        if any(f.startswith(r + os.sep) for r in roots):\n"
    "            files.add(f)\n"
    "    return sorted(files)\n"
    /* Joins the app's own threads with a deadline before the interpreter
     * is ended (EMBEDDING.md §5 item 3); returns how many still run. */
    "def _threads_left(timeout):\n"
    "    import _thread, time\n"
    "    th = _sys.modules.get('threading')\n"
    "    if th is not None:\n"
    "        end = time.monotonic() + timeout\n"
    "        for t in th.enumerate():\n"
    "            if t is th.main_thread() or isinstance(t, th._DummyThread):\n"
    "                continue\n"
    "            t.join(max(0.0, end - time.monotonic()))\n"
    "    return _thread._count()\n"
    "def _format_exc(t, v, tb):\n"
    "    import traceback\n"
    "    lines = traceback.format_exception(t, v, tb)\n"
    "    last = traceback.format_exception_only(t, v)[-1].strip()\n"
    "    return ''.join(lines), last\n";

static struct wsgi_state *wsgi_state_of(PyObject *module)
{
	return (struct wsgi_state *)PyModule_GetState(module);
}

/* ---- the app's log writer (sys.stdout, sys.stderr, wsgi.errors) ---- */

struct writer {
	PyObject_HEAD
	struct app *app;
};

static PyObject *writer_write(struct writer *self, PyObject *arg)
{
	Py_ssize_t len;
	const char *s;

	if (PyUnicode_Check(arg)) {
		s = PyUnicode_AsUTF8AndSize(arg, &len);
		if (s == NULL)
			return NULL;
	} else if (PyBytes_Check(arg)) {
		s = PyBytes_AS_STRING(arg);
		len = PyBytes_GET_SIZE(arg);
	} else {
		PyErr_Format(PyExc_TypeError,
		    "write() argument must be str, not %.100s",
		    Py_TYPE(arg)->tp_name);
		return NULL;
	}
	if (self->app != NULL && self->app->log != NULL)
		userlog_write(self->app->log, s, (size_t)len);
	return PyLong_FromSsize_t(PyUnicode_Check(arg) ?
	    PyUnicode_GET_LENGTH(arg) : len);
}

static PyObject *writer_writelines(struct writer *self, PyObject *lines)
{
	PyObject *it = PyObject_GetIter(lines), *item;

	if (it == NULL)
		return NULL;
	while ((item = PyIter_Next(it)) != NULL) {
		PyObject *r = writer_write(self, item);

		Py_DECREF(item);
		if (r == NULL) {
			Py_DECREF(it);
			return NULL;
		}
		Py_DECREF(r);
	}
	Py_DECREF(it);
	if (PyErr_Occurred())
		return NULL;
	Py_RETURN_NONE;
}

static PyObject *writer_flush(struct writer *self, PyObject *unused)
{
	/* Line-buffered: a partial line waits for its end so that lines
	 * stay whole in the log. */
	Py_RETURN_NONE;
}

static PyObject *writer_false(struct writer *self, PyObject *unused)
{
	Py_RETURN_FALSE;
}

static PyObject *writer_true(struct writer *self, PyObject *unused)
{
	Py_RETURN_TRUE;
}

static PyObject *writer_fileno(struct writer *self, PyObject *unused)
{
	PyErr_SetString(PyExc_OSError,
	    "lodge: the app log has no file descriptor");
	return NULL;
}

static PyObject *writer_get_encoding(struct writer *self, void *unused)
{
	return PyUnicode_FromString("utf-8");
}

static PyObject *writer_get_closed(struct writer *self, void *unused)
{
	Py_RETURN_FALSE;
}

static PyMethodDef writer_methods[] = {
    {"write", (PyCFunction)writer_write, METH_O, NULL},
    {"writelines", (PyCFunction)writer_writelines, METH_O, NULL},
    {"flush", (PyCFunction)writer_flush, METH_NOARGS, NULL},
    {"isatty", (PyCFunction)writer_false, METH_NOARGS, NULL},
    {"readable", (PyCFunction)writer_false, METH_NOARGS, NULL},
    {"seekable", (PyCFunction)writer_false, METH_NOARGS, NULL},
    {"writable", (PyCFunction)writer_true, METH_NOARGS, NULL},
    {"fileno", (PyCFunction)writer_fileno, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef writer_getset[] = {
    {"encoding", (getter)writer_get_encoding, NULL, NULL, NULL},
    {"closed", (getter)writer_get_closed, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static void generic_dealloc(PyObject *self)
{
	PyTypeObject *tp = Py_TYPE(self);

	tp->tp_free(self);
	Py_DECREF(tp);
}

/*
 * The writer is a GC object although it holds nothing but its type: the
 * module state holds one (ws->errors), the writer holds its heap type, and
 * the type holds the module.  Without tp_traverse, the collector could not
 * see that the writer's reference to its type is part of that cycle, and
 * every interpreter's _lodge module (its types, the bootstrap and the
 * state) outlived Py_EndInterpreter: about 20 KiB per reload.
 */
static int writer_traverse(PyObject *self, visitproc visit, void *arg)
{
	Py_VISIT(Py_TYPE(self));
	return 0;
}

static void writer_dealloc(PyObject *self)
{
	PyTypeObject *tp = Py_TYPE(self);

	PyObject_GC_UnTrack(self);
	tp->tp_free(self);
	Py_DECREF(tp);
}

static PyType_Slot writer_slots[] = {
    {Py_tp_methods, writer_methods},
    {Py_tp_getset, writer_getset},
    {Py_tp_traverse, writer_traverse},
    {Py_tp_dealloc, writer_dealloc},
    {Py_tp_doc, "lodge: writes lines, with a timestamp, to the app's log"},
    {0, NULL},
};

static PyType_Spec writer_spec = {
    .name = "_lodge.LogWriter",
    .basicsize = sizeof(struct writer),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION |
        Py_TPFLAGS_HAVE_GC,
    .slots = writer_slots,
};

/* ---- wsgi.input ---- */

/* The input object lives as long as the app keeps it; the request it
 * reads only during the call.  r is cleared when the request ends, and
 * a late read then returns EOF. */
struct input {
	PyObject_HEAD
	struct req *r;
	char *pend;      /* bytes read but not yet returned (readline) */
	size_t pend_off, pend_len, pend_size;
};

#define INPUT_CHUNK 16384

/* Reads up to n bytes of body (blocking, GIL released).  Returns the
 * count, 0 at the end, -1 with an exception set. */
static Py_ssize_t input_raw(struct input *self, char *dst, size_t n)
{
	ssize_t got;

	if (self->r == NULL || n == 0)
		return 0;
	got = conn_body_read(self->r, dst, n, CONN_IO_TIMEOUT_MS);
	if (got < 0) {
		int st = self->r->body_status;

		PyErr_SetString(PyExc_OSError,
		    st == 413 ? "lodge: request body too large" :
		    st == 400 ? "lodge: malformed chunked request body" :
				"lodge: client went away while sending the "
				"request body");
		return -1;
	}
	return got;
}

/* Returns up to size bytes (size < 0: all). */
static PyObject *input_read_n(struct input *self, Py_ssize_t size)
{
	PyObject *out;
	size_t have, want;

	if (size < 0) {
		/* Read everything: grow a bytes object. */
		size_t cap = INPUT_CHUNK, len = 0;

		out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)cap);
		if (out == NULL)
			return NULL;
		have = self->pend_len - self->pend_off;
		if (have > 0) {
			if (have > cap) {
				cap = have + INPUT_CHUNK;
				if (_PyBytes_Resize(&out, (Py_ssize_t)cap) < 0)
					return NULL;
			}
			memcpy(PyBytes_AS_STRING(out), self->pend + self->pend_off,
			    have);
			len = have;
			self->pend_off = self->pend_len = 0;
		}
		for (;;) {
			Py_ssize_t n;

			if (cap - len < INPUT_CHUNK) {
				cap *= 2;
				if (_PyBytes_Resize(&out, (Py_ssize_t)cap) < 0)
					return NULL;
			}
			n = input_raw(self, PyBytes_AS_STRING(out) + len,
			    cap - len);
			if (n < 0) {
				Py_DECREF(out);
				return NULL;
			}
			if (n == 0)
				break;
			len += (size_t)n;
		}
		if (_PyBytes_Resize(&out, (Py_ssize_t)len) < 0)
			return NULL;
		return out;
	}

	want = (size_t)size;
	/* Never allocate more than the body can still hold. */
	if (self->r != NULL && self->r->http.body_kind == HTTP_BODY_LENGTH) {
		uint64_t left = self->r->body_left + (self->pend_len -
		    self->pend_off);

		if (want > left)
			want = (size_t)left;
	} else if (self->r == NULL) {
		want = self->pend_len - self->pend_off;
	}
	if (want > (size_t)size)
		want = (size_t)size;
	out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(want < (1u << 20) ?
	    want : (1u << 20)));
	if (out == NULL)
		return NULL;
	{
		size_t cap = (size_t)PyBytes_GET_SIZE(out), len = 0;

		have = self->pend_len - self->pend_off;
		if (have > want)
			have = want;
		if (have > 0) {
			memcpy(PyBytes_AS_STRING(out), self->pend + self->pend_off,
			    have);
			self->pend_off += have;
			len = have;
		}
		/* Like a buffered file: block until size bytes or the end. */
		while (len < want) {
			Py_ssize_t n;

			if (len == cap) {
				cap = cap * 2 < want ? cap * 2 : want;
				if (_PyBytes_Resize(&out, (Py_ssize_t)cap) < 0)
					return NULL;
			}
			n = input_raw(self, PyBytes_AS_STRING(out) + len,
			    cap - len);
			if (n < 0) {
				Py_DECREF(out);
				return NULL;
			}
			if (n == 0)
				break;
			len += (size_t)n;
		}
		if (len != (size_t)PyBytes_GET_SIZE(out) &&
		    _PyBytes_Resize(&out, (Py_ssize_t)len) < 0)
			return NULL;
	}
	return out;
}

static int parse_size(PyObject *const *args, Py_ssize_t nargs,
    Py_ssize_t *size_r)
{
	*size_r = -1;
	if (nargs > 1) {
		PyErr_SetString(PyExc_TypeError, "expected at most 1 argument");
		return -1;
	}
	if (nargs == 1 && args[0] != Py_None) {
		*size_r = PyLong_AsSsize_t(args[0]);
		if (*size_r == -1 && PyErr_Occurred())
			return -1;
	}
	return 0;
}

static PyObject *input_read(struct input *self, PyObject *const *args,
    Py_ssize_t nargs)
{
	Py_ssize_t size;

	if (parse_size(args, nargs, &size) < 0)
		return NULL;
	return input_read_n(self, size);
}

/* Returns one line, at most size bytes (size < 0: no limit). */
static PyObject *input_readline_n(struct input *self, Py_ssize_t size)
{
	for (;;) {
		size_t have = self->pend_len - self->pend_off;
		const char *start = self->pend + self->pend_off;
		const char *nl = have > 0 ? memchr(start, '\n', have) : NULL;
		size_t take = 0;

		if (nl != NULL)
			take = (size_t)(nl - start) + 1;
		if (size >= 0 && (take > (size_t)size ||
		    (nl == NULL && have >= (size_t)size)))
			take = (size_t)size;
		if (take > 0 || (size == 0)) {
			PyObject *line = PyBytes_FromStringAndSize(start,
			    (Py_ssize_t)take);

			self->pend_off += take;
			return line;
		}
		/* Need more: compact, grow, and read. */
		if (self->pend_off > 0) {
			memmove(self->pend, start, have);
			self->pend_off = 0;
			self->pend_len = have;
		}
		if (self->pend_size - self->pend_len < INPUT_CHUNK) {
			size_t ns = self->pend_size ? self->pend_size * 2 :
			    INPUT_CHUNK * 2;
			char *np = PyMem_Realloc(self->pend, ns);

			if (np == NULL)
				return PyErr_NoMemory();
			self->pend = np;
			self->pend_size = ns;
		}
		Py_ssize_t n = input_raw(self, self->pend + self->pend_len,
		    self->pend_size - self->pend_len);
		if (n < 0)
			return NULL;
		if (n == 0) {
			/* The end: the rest is the last line. */
			PyObject *line = PyBytes_FromStringAndSize(
			    self->pend + self->pend_off,
			    (Py_ssize_t)(self->pend_len - self->pend_off));

			self->pend_off = self->pend_len = 0;
			return line;
		}
		self->pend_len += (size_t)n;
	}
}

static PyObject *input_readline(struct input *self, PyObject *const *args,
    Py_ssize_t nargs)
{
	Py_ssize_t size;

	if (parse_size(args, nargs, &size) < 0)
		return NULL;
	return input_readline_n(self, size);
}

static PyObject *input_readlines(struct input *self, PyObject *const *args,
    Py_ssize_t nargs)
{
	Py_ssize_t hint, total = 0;
	PyObject *list;

	if (parse_size(args, nargs, &hint) < 0)
		return NULL;
	list = PyList_New(0);
	if (list == NULL)
		return NULL;
	for (;;) {
		PyObject *line = input_readline_n(self, -1);

		if (line == NULL) {
			Py_DECREF(list);
			return NULL;
		}
		if (PyBytes_GET_SIZE(line) == 0) {
			Py_DECREF(line);
			break;
		}
		total += PyBytes_GET_SIZE(line);
		if (PyList_Append(list, line) < 0) {
			Py_DECREF(line);
			Py_DECREF(list);
			return NULL;
		}
		Py_DECREF(line);
		if (hint > 0 && total >= hint)
			break;
	}
	return list;
}

static PyObject *input_iternext(struct input *self)
{
	PyObject *line = input_readline_n(self, -1);

	if (line != NULL && PyBytes_GET_SIZE(line) == 0) {
		Py_DECREF(line);
		return NULL; /* StopIteration */
	}
	return line;
}

static void input_dealloc(struct input *self)
{
	PyTypeObject *tp = Py_TYPE(self);

	PyMem_Free(self->pend);
	tp->tp_free(self);
	Py_DECREF(tp);
}

static PyMethodDef input_methods[] = {
    {"read", (PyCFunction)(void (*)(void))input_read, METH_FASTCALL, NULL},
    {"readline", (PyCFunction)(void (*)(void))input_readline, METH_FASTCALL,
	NULL},
    {"readlines", (PyCFunction)(void (*)(void))input_readlines,
	METH_FASTCALL, NULL},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot input_slots[] = {
    {Py_tp_methods, input_methods},
    {Py_tp_iter, PyObject_SelfIter},
    {Py_tp_iternext, input_iternext},
    {Py_tp_dealloc, input_dealloc},
    {Py_tp_doc, "lodge: the request body (wsgi.input)"},
    {0, NULL},
};

static PyType_Spec input_spec = {
    .name = "_lodge.Input",
    .basicsize = sizeof(struct input),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = input_slots,
};

/* ---- start_response and write() ---- */

struct start_response {
	PyObject_HEAD
	struct req *r;
	struct app *app;
};

/* Appends to the response head, growing it.  0 or -1 (MemoryError). */
static int head_append(struct req *r, const char *s, size_t len)
{
	if (r->head_len + len > r->head_size) {
		size_t ns = r->head_size ? r->head_size : 1024;
		char *nh;

		while (ns < r->head_len + len)
			ns *= 2;
		nh = PyMem_RawRealloc(r->head, ns);
		if (nh == NULL) {
			PyErr_NoMemory();
			return -1;
		}
		r->head = nh;
		r->head_size = ns;
	}
	memcpy(r->head + r->head_len, s, len);
	r->head_len += len;
	return 0;
}

static bool name_is(const char *s, size_t len, const char *want)
{
	return strlen(want) == len && strncasecmp(s, want, len) == 0;
}

/* Validates status and headers and builds r->head from them.  Raises
 * ValueError/TypeError naming the bad item; nothing reaches the wire. */
static int build_head(struct start_response *self, PyObject *status,
    PyObject *headers)
{
	struct req *r = self->r;
	Py_ssize_t slen, i, n;
	const char *s;
	int code;

	if (!PyUnicode_Check(status)) {
		PyErr_Format(PyExc_TypeError,
		    "start_response: status must be str, not %.100s",
		    Py_TYPE(status)->tp_name);
		return -1;
	}
	s = PyUnicode_AsUTF8AndSize(status, &slen);
	if (s == NULL)
		return -1;
	code = http_parse_status(s, (size_t)slen);
	if (code < 0) {
		PyErr_Format(PyExc_ValueError,
		    "start_response: invalid status %R (want e.g. '200 OK')",
		    status);
		return -1;
	}
	if (!PyList_Check(headers) && !PyTuple_Check(headers)) {
		PyErr_Format(PyExc_TypeError,
		    "start_response: headers must be a list, not %.100s",
		    Py_TYPE(headers)->tp_name);
		return -1;
	}
	r->head_len = 0;
	r->content_length = -1;
	r->app_close = false;
	if (head_append(r, "HTTP/1.1 ", 9) < 0 ||
	    head_append(r, s, (size_t)slen) < 0 || head_append(r, "\r\n", 2) < 0)
		return -1;
	n = PySequence_Fast_GET_SIZE(headers);
	for (i = 0; i < n; i++) {
		PyObject *h = PySequence_Fast_GET_ITEM(headers, i);
		const char *name, *value;
		Py_ssize_t nlen, vlen;

		if (!PyTuple_Check(h) || PyTuple_GET_SIZE(h) != 2 ||
		    !PyUnicode_Check(PyTuple_GET_ITEM(h, 0)) ||
		    !PyUnicode_Check(PyTuple_GET_ITEM(h, 1))) {
			PyErr_Format(PyExc_TypeError,
			    "start_response: header %zd must be a (str, str) "
			    "tuple, got %R", i, h);
			return -1;
		}
		name = PyUnicode_AsUTF8AndSize(PyTuple_GET_ITEM(h, 0), &nlen);
		value = PyUnicode_AsUTF8AndSize(PyTuple_GET_ITEM(h, 1), &vlen);
		if (name == NULL || value == NULL)
			return -1;
		if (!http_is_token(name, (size_t)nlen)) {
			PyErr_Format(PyExc_ValueError,
			    "start_response: invalid header name %R "
			    "(control characters, spaces or separators)",
			    PyTuple_GET_ITEM(h, 0));
			return -1;
		}
		if (!http_is_field_value(value, (size_t)vlen)) {
			PyErr_Format(PyExc_ValueError,
			    "start_response: header %R has a value with CR, LF "
			    "or another control character: %R",
			    PyTuple_GET_ITEM(h, 0), PyTuple_GET_ITEM(h, 1));
			return -1;
		}
		/* Framing is lodge's job: take the app's Content-Length as
		 * a promise, and drop hop-by-hop headers. */
		if (name_is(name, (size_t)nlen, "Content-Length")) {
			int64_t v = 0;
			Py_ssize_t k;

			for (k = 0; k < vlen; k++) {
				if (value[k] < '0' || value[k] > '9' ||
				    v > (INT64_MAX - 9) / 10) {
					PyErr_Format(PyExc_ValueError,
					    "start_response: invalid "
					    "Content-Length %R",
					    PyTuple_GET_ITEM(h, 1));
					return -1;
				}
				v = v * 10 + (value[k] - '0');
			}
			if (vlen == 0) {
				PyErr_SetString(PyExc_ValueError,
				    "start_response: empty Content-Length");
				return -1;
			}
			r->content_length = v;
			continue;
		}
		if (name_is(name, (size_t)nlen, "Connection")) {
			if (strcasestr(value, "close") != NULL)
				r->app_close = true;
			continue;
		}
		if (name_is(name, (size_t)nlen, "Transfer-Encoding") ||
		    name_is(name, (size_t)nlen, "Keep-Alive"))
			continue;
		if (head_append(r, name, (size_t)nlen) < 0 ||
		    head_append(r, ": ", 2) < 0 ||
		    head_append(r, value, (size_t)vlen) < 0 ||
		    head_append(r, "\r\n", 2) < 0)
			return -1;
	}
	r->status = code;
	r->no_body = r->is_head || code < 200 || code == 204 || code == 304;
	r->headers_set = true;
	return 0;
}

static PyObject *start_response_call(struct start_response *self,
    PyObject *args, PyObject *kwargs)
{
	static char *kwlist[] = {"status", "headers", "exc_info", NULL};
	PyObject *status, *headers, *exc_info = Py_None, *fast;
	struct req *r = self->r;
	int rc;

	if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO|O:start_response",
		kwlist, &status, &headers, &exc_info))
		return NULL;
	if (r == NULL) {
		PyErr_SetString(PyExc_RuntimeError,
		    "start_response called after the request ended");
		return NULL;
	}
	if (exc_info != Py_None) {
		if (!PyTuple_Check(exc_info) || PyTuple_GET_SIZE(exc_info) != 3) {
			PyErr_SetString(PyExc_TypeError,
			    "start_response: exc_info must be a 3-tuple");
			return NULL;
		}
		if (r->headers_sent) {
			/* PEP 3333: too late to change the response; re-raise
			 * so the server can abort it. */
			PyObject *t = PyTuple_GET_ITEM(exc_info, 0);
			PyObject *v = PyTuple_GET_ITEM(exc_info, 1);
			PyObject *tb = PyTuple_GET_ITEM(exc_info, 2);

			Py_INCREF(t);
			Py_INCREF(v);
			Py_INCREF(tb);
			PyErr_Restore(t, v, tb == Py_None ? NULL : tb);
			if (tb == Py_None)
				Py_DECREF(tb);
			return NULL;
		}
	} else if (r->headers_set) {
		PyErr_SetString(PyExc_AssertionError,
		    "start_response called a second time without exc_info");
		return NULL;
	}
	fast = PySequence_Fast(headers, "headers must be a list");
	if (fast == NULL)
		return NULL;
	rc = build_head(self, status, fast);
	Py_DECREF(fast);
	if (rc < 0) {
		r->headers_set = false;
		return NULL;
	}
	return PyObject_GetAttrString((PyObject *)self, "write");
}

/* Queues or sends body bytes; the GIL goes only if the socket makes us
 * wait (see gil_release).  0 or -1 (the client is gone). */
static int send_body(struct req *r, const char *data, size_t len, bool flush)
{
	return conn_resp_body(r, data, len, flush);
}

/*
 * The GIL queue.  On 3.11 every interpreter shares one GIL, and CPython's
 * GIL is not fair: a thread that just released it (to send a response) can
 * take it back for its next request before a waiting thread has even woken
 * up, and that waiter then waits for the 5 ms switch interval.  Under load
 * this starves some requests for many milliseconds (the p99 tail).  So the
 * serving threads line up for the GIL in arrival order: a thread takes
 * its turn here, then the GIL, then lets the next one in.  Only taking the
 * GIL is queued, never running app code, so an app that blocks with the
 * GIL released (a database call, time.sleep) holds nobody up.
 */
static struct {
	pthread_mutex_t lock;
	bool is_busy;
	struct wthread *head, *tail;
} gilq = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void gil_acquire(struct wthread *t, PyThreadState *ts)
{
	pthread_mutex_lock(&gilq.lock);
	if (gilq.is_busy) {
		t->gilq_next = NULL;
		if (gilq.tail != NULL)
			gilq.tail->gilq_next = t;
		else
			gilq.head = t;
		gilq.tail = t;
		t->gilq_turn = false;
		while (!t->gilq_turn)
			pthread_cond_wait(&t->gilq_cond, &gilq.lock);
	} else {
		gilq.is_busy = true;
	}
	pthread_mutex_unlock(&gilq.lock);

	PyEval_RestoreThread(ts);

	/* Our turn is over: pass it on (is_busy stays set). */
	pthread_mutex_lock(&gilq.lock);
	if (gilq.head != NULL) {
		struct wthread *next = gilq.head;

		gilq.head = next->gilq_next;
		if (gilq.head == NULL)
			gilq.tail = NULL;
		next->gilq_turn = true;
		pthread_cond_signal(&next->gilq_cond);
	} else {
		gilq.is_busy = false;
	}
	pthread_mutex_unlock(&gilq.lock);
}

void wsgi_gil_enter(PyThreadState *ts)
{
	/* Threads other than the serving ones (the watcher) line up too:
	 * without the queue a build would wait for the 5 ms switch
	 * interval at every take while requests keep the GIL busy. */
	static _Thread_local struct wthread *self;

	if (self == NULL) {
		self = calloc(1, sizeof(*self));
		if (self == NULL) {
			PyEval_RestoreThread(ts);
			return;
		}
		pthread_cond_init(&self->gilq_cond, NULL);
	}
	gil_acquire(self, ts);
}

void wsgi_gil_drop(struct wthread *t)
{
	if (t->held_ts == NULL)
		return;
	t->held_ts = NULL;
	PyEval_SaveThread();
	/* From here on the thread holds no GIL: waits need no hooks. */
	t->req.block_begin = t->req.block_end = NULL;
}

/* conn.c's hooks around a wait: release the GIL, take it back.  Nested
 * calls (a wait inside an explicit release) only count. */
static void gil_release(struct req *r)
{
	struct wthread *t = r->block_arg;

	if (t->gil_depth++ == 0)
		t->gil_ts = PyEval_SaveThread();
}

static void gil_take(struct req *r)
{
	struct wthread *t = r->block_arg;

	if (--t->gil_depth == 0)
		gil_acquire(t, t->gil_ts);
}

static PyObject *start_response_write(struct start_response *self,
    PyObject *data)
{
	struct req *r = self->r;
	Py_buffer view;
	int rc;

	if (r == NULL) {
		PyErr_SetString(PyExc_RuntimeError,
		    "write() called after the request ended");
		return NULL;
	}
	if (!r->headers_set) {
		PyErr_SetString(PyExc_AssertionError,
		    "write() called before start_response");
		return NULL;
	}
	if (!PyBytes_Check(data)) {
		PyErr_Format(PyExc_TypeError,
		    "write() argument must be bytes, not %.100s",
		    Py_TYPE(data)->tp_name);
		return NULL;
	}
	if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0)
		return NULL;
	rc = send_body(r, view.buf, (size_t)view.len, true);
	PyBuffer_Release(&view);
	if (rc < 0) {
		PyErr_SetString(PyExc_OSError, "lodge: client went away");
		return NULL;
	}
	Py_RETURN_NONE;
}

static PyMethodDef start_response_methods[] = {
    {"write", (PyCFunction)start_response_write, METH_O, NULL},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot start_response_slots[] = {
    {Py_tp_call, start_response_call},
    {Py_tp_methods, start_response_methods},
    {Py_tp_dealloc, generic_dealloc},
    {Py_tp_doc, "lodge: start_response(status, headers, exc_info=None)"},
    {0, NULL},
};

static PyType_Spec start_response_spec = {
    .name = "_lodge.StartResponse",
    .basicsize = sizeof(struct start_response),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = start_response_slots,
};

/* ---- wsgi.file_wrapper ---- */

struct file_wrapper {
	PyObject_HEAD
	PyObject *filelike;
	Py_ssize_t blksize;
};

static PyObject *file_wrapper_new(PyTypeObject *tp, PyObject *args,
    PyObject *kwargs)
{
	static char *kwlist[] = {"filelike", "blksize", NULL};
	struct file_wrapper *self;
	PyObject *filelike;
	Py_ssize_t blksize = 8192;

	if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|n:file_wrapper",
		kwlist, &filelike, &blksize))
		return NULL;
	self = (struct file_wrapper *)tp->tp_alloc(tp, 0);
	if (self == NULL)
		return NULL;
	Py_INCREF(filelike);
	self->filelike = filelike;
	self->blksize = blksize > 0 ? blksize : 8192;
	return (PyObject *)self;
}

static PyObject *file_wrapper_iternext(struct file_wrapper *self)
{
	PyObject *data = PyObject_CallMethod(self->filelike, "read", "n",
	    self->blksize);

	if (data == NULL)
		return NULL;
	if (PyBytes_Check(data) && PyBytes_GET_SIZE(data) == 0) {
		Py_DECREF(data);
		return NULL;
	}
	return data;
}

static PyObject *file_wrapper_close(struct file_wrapper *self, PyObject *u)
{
	if (PyObject_HasAttrString(self->filelike, "close"))
		return PyObject_CallMethod(self->filelike, "close", NULL);
	Py_RETURN_NONE;
}

static int file_wrapper_traverse(struct file_wrapper *self, visitproc visit,
    void *arg)
{
	Py_VISIT(self->filelike);
	Py_VISIT(Py_TYPE(self));
	return 0;
}

static int file_wrapper_clear(struct file_wrapper *self)
{
	Py_CLEAR(self->filelike);
	return 0;
}

static void file_wrapper_dealloc(struct file_wrapper *self)
{
	PyTypeObject *tp = Py_TYPE(self);

	PyObject_GC_UnTrack(self);
	file_wrapper_clear(self);
	tp->tp_free(self);
	Py_DECREF(tp);
}

static PyMethodDef file_wrapper_methods[] = {
    {"close", (PyCFunction)file_wrapper_close, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot file_wrapper_slots[] = {
    {Py_tp_new, file_wrapper_new},
    {Py_tp_iter, PyObject_SelfIter},
    {Py_tp_iternext, file_wrapper_iternext},
    {Py_tp_methods, file_wrapper_methods},
    {Py_tp_traverse, file_wrapper_traverse},
    {Py_tp_clear, file_wrapper_clear},
    {Py_tp_dealloc, file_wrapper_dealloc},
    {Py_tp_doc, "lodge: wsgi.file_wrapper (sent with sendfile(2))"},
    {0, NULL},
};

static PyType_Spec file_wrapper_spec = {
    .name = "_lodge.FileWrapper",
    .basicsize = sizeof(struct file_wrapper),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .slots = file_wrapper_slots,
};

/* ---- the module ---- */

static int wsgi_module_exec(PyObject *m)
{
	struct wsgi_state *ws = wsgi_state_of(m);
	PyObject *dict = PyModule_GetDict(m), *code, *res, *v;

	memset(ws, 0, sizeof(*ws));
	ws->writer_type = (PyTypeObject *)PyType_FromModuleAndSpec(m,
	    &writer_spec, NULL);
	ws->input_type = (PyTypeObject *)PyType_FromModuleAndSpec(m,
	    &input_spec, NULL);
	ws->start_response_type = (PyTypeObject *)PyType_FromModuleAndSpec(m,
	    &start_response_spec, NULL);
	ws->file_wrapper_type = (PyTypeObject *)PyType_FromModuleAndSpec(m,
	    &file_wrapper_spec, NULL);
	if (ws->writer_type == NULL || ws->input_type == NULL ||
	    ws->start_response_type == NULL || ws->file_wrapper_type == NULL)
		return -1;
	if (PyModule_AddType(m, ws->file_wrapper_type) < 0)
		return -1;

	code = Py_CompileString(wsgi_bootstrap, "<lodge bootstrap>",
	    Py_file_input);
	if (code == NULL)
		return -1;
	res = PyEval_EvalCode(code, dict, dict);
	Py_DECREF(code);
	if (res == NULL)
		return -1;
	Py_DECREF(res);
	ws->setup = PyDict_GetItemString(dict, "_setup");
	ws->format_exc = PyDict_GetItemString(dict, "_format_exc");
	ws->module_files = PyDict_GetItemString(dict, "_module_files");
	ws->threads_left = PyDict_GetItemString(dict, "_threads_left");
	if (ws->setup == NULL || ws->format_exc == NULL ||
	    ws->module_files == NULL || ws->threads_left == NULL)
		return -1;
	Py_INCREF(ws->setup);
	Py_INCREF(ws->format_exc);
	Py_INCREF(ws->module_files);
	Py_INCREF(ws->threads_left);

	ws->str_close = PyUnicode_InternFromString("close");
	ws->str_read = PyUnicode_InternFromString("read");
	ws->str_fileno = PyUnicode_InternFromString("fileno");
	ws->str_wsgi_input = PyUnicode_InternFromString("wsgi.input");
	ws->str_url_scheme = PyUnicode_InternFromString("wsgi.url_scheme");
	ws->str_https = PyUnicode_InternFromString("https");
	if (ws->str_close == NULL || ws->str_read == NULL ||
	    ws->str_fileno == NULL || ws->str_wsgi_input == NULL ||
	    ws->str_url_scheme == NULL || ws->str_https == NULL)
		return -1;
	ws->errors = PyType_GenericAlloc(ws->writer_type, 0);
	ws->base_environ = PyDict_New();
	if (ws->errors == NULL || ws->base_environ == NULL)
		return -1;

	v = Py_BuildValue("(ii)", 1, 0);
	if (v == NULL || PyDict_SetItemString(ws->base_environ, "wsgi.version",
	    v) < 0)
		return -1;
	Py_DECREF(v);
	v = PyUnicode_FromString("http");
	if (v == NULL || PyDict_SetItemString(ws->base_environ,
	    "wsgi.url_scheme", v) < 0)
		return -1;
	Py_DECREF(v);
	if (PyDict_SetItemString(ws->base_environ, "wsgi.multithread",
		Py_True) < 0 ||
	    PyDict_SetItemString(ws->base_environ, "wsgi.multiprocess",
		Py_False) < 0 ||
	    PyDict_SetItemString(ws->base_environ, "wsgi.run_once",
		Py_False) < 0 ||
	    PyDict_SetItemString(ws->base_environ, "wsgi.errors",
		ws->errors) < 0 ||
	    PyDict_SetItemString(ws->base_environ, "wsgi.file_wrapper",
		(PyObject *)ws->file_wrapper_type) < 0)
		return -1;
	return 0;
}

static int wsgi_module_traverse(PyObject *m, visitproc visit, void *arg)
{
	struct wsgi_state *ws = wsgi_state_of(m);

	if (ws == NULL)
		return 0;
	Py_VISIT(ws->writer_type);
	Py_VISIT(ws->input_type);
	Py_VISIT(ws->start_response_type);
	Py_VISIT(ws->file_wrapper_type);
	Py_VISIT(ws->base_environ);
	Py_VISIT(ws->errors);
	Py_VISIT(ws->setup);
	Py_VISIT(ws->format_exc);
	Py_VISIT(ws->module_files);
	Py_VISIT(ws->threads_left);
	return 0;
}

static int wsgi_module_clear(PyObject *m)
{
	struct wsgi_state *ws = wsgi_state_of(m);

	if (ws == NULL)
		return 0;
	Py_CLEAR(ws->writer_type);
	Py_CLEAR(ws->input_type);
	Py_CLEAR(ws->start_response_type);
	Py_CLEAR(ws->file_wrapper_type);
	Py_CLEAR(ws->base_environ);
	Py_CLEAR(ws->errors);
	Py_CLEAR(ws->setup);
	Py_CLEAR(ws->format_exc);
	Py_CLEAR(ws->module_files);
	Py_CLEAR(ws->threads_left);
	Py_CLEAR(ws->str_close);
	Py_CLEAR(ws->str_read);
	Py_CLEAR(ws->str_fileno);
	Py_CLEAR(ws->str_wsgi_input);
	Py_CLEAR(ws->str_url_scheme);
	Py_CLEAR(ws->str_https);
	return 0;
}

static void wsgi_module_free(void *m)
{
	wsgi_module_clear((PyObject *)m);
}

static PyModuleDef_Slot wsgi_module_slots[] = {
    {Py_mod_exec, wsgi_module_exec},
    {0, NULL},
};

static struct PyModuleDef wsgi_module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_lodge",
    .m_doc = "lodge-worker's WSGI server objects (one copy per interpreter)",
    .m_size = sizeof(struct wsgi_state),
    .m_slots = wsgi_module_slots,
    .m_traverse = wsgi_module_traverse,
    .m_clear = wsgi_module_clear,
    .m_free = wsgi_module_free,
};

PyObject *wsgi_module_init(void)
{
	return PyModuleDef_Init(&wsgi_module_def);
}

/* ---- errors ---- */

void wsgi_log_exception(struct app *app, const char *what, char *reason,
    size_t reason_size)
{
	PyObject *t, *v, *tb, *mod, *res = NULL;
	struct wsgi_state *ws = NULL;

	PyErr_Fetch(&t, &v, &tb);
	PyErr_NormalizeException(&t, &v, &tb);
	mod = PyImport_ImportModule("_lodge");
	if (mod != NULL) {
		ws = wsgi_state_of(mod);
		res = PyObject_CallFunctionObjArgs(ws->format_exc,
		    t ? t : Py_None, v ? v : Py_None, tb ? tb : Py_None, NULL);
	}
	if (res != NULL && PyTuple_Check(res) && PyTuple_GET_SIZE(res) == 2) {
		const char *full = PyUnicode_AsUTF8(PyTuple_GET_ITEM(res, 0));
		const char *last = PyUnicode_AsUTF8(PyTuple_GET_ITEM(res, 1));

		userlog_printf(app->log, "%s:", what);
		if (full != NULL)
			userlog_write(app->log, full, strlen(full));
		if (reason != NULL)
			snprintf(reason, reason_size, "%s", last ? last : "?");
	} else {
		/* Formatting itself failed: say what we can. */
		userlog_printf(app->log, "%s: %s (traceback unavailable)", what,
		    t ? ((PyTypeObject *)t)->tp_name : "error");
		if (reason != NULL)
			snprintf(reason, reason_size, "%s",
			    t ? ((PyTypeObject *)t)->tp_name : "error");
	}
	PyErr_Clear();
	Py_XDECREF(res);
	Py_XDECREF(mod);
	Py_XDECREF(t);
	Py_XDECREF(v);
	Py_XDECREF(tb);
}

/* ---- preparing an interpreter ---- */

void wsgi_venv_site(const struct app *app, char *buf, size_t size)
{
	buf[0] = '\0';
	if (!app->has_conf || app->conf.venv == NULL)
		return;
	if (app->conf.venv[0] == '/')
		snprintf(buf, size, "%s/lib/python%d.%d/site-packages",
		    app->conf.venv, PY_MAJOR_VERSION, PY_MINOR_VERSION);
	else
		snprintf(buf, size, "%s/%s/lib/python%d.%d/site-packages",
		    app->dir, app->conf.venv, PY_MAJOR_VERSION,
		    PY_MINOR_VERSION);
}

struct wsgi_state *wsgi_bind(struct app *app)
{
	PyObject *mod = PyImport_ImportModule("_lodge");
	struct wsgi_state *ws;

	if (mod == NULL) {
		PyErr_Clear();
		return NULL;
	}
	ws = wsgi_state_of(mod);
	ws->app = app;
	((struct writer *)ws->errors)->app = app;
	if (PySys_SetObject("stdout", ws->errors) < 0 ||
	    PySys_SetObject("stderr", ws->errors) < 0)
		PyErr_Clear();
	Py_DECREF(mod); /* sys.modules keeps it */
	return ws;
}

int wsgi_prepare(struct app_gen *gen, char *reason, size_t reason_size)
{
	struct app *app = gen->app;
	PyObject *mod = NULL, *writer = NULL, *env = NULL, *res = NULL;
	char entry_file[4096] = "", venv_site[4096] = "";
	const char *entry_module = NULL, *entry_callable = "application";
	struct wsgi_state *ws;
	size_t i;

	mod = PyImport_ImportModule("_lodge");
	if (mod == NULL)
		goto fail;
	ws = wsgi_state_of(mod);
	ws->app = app;
	gen->ws = ws;
	((struct writer *)ws->errors)->app = app;
	writer = ws->errors;
	Py_INCREF(writer);

	if (app->has_conf && app->conf.entry_module != NULL) {
		entry_module = app->conf.entry_module;
		entry_callable = app->conf.entry_callable;
	} else {
		struct stat st;

		snprintf(entry_file, sizeof(entry_file), "%s/wsgi.py", app->dir);
		if (stat(entry_file, &st) < 0)
			snprintf(entry_file, sizeof(entry_file), "%s/app.wsgi",
			    app->dir);
	}
	wsgi_venv_site(app, venv_site, sizeof(venv_site));
	env = PyDict_New();
	if (env == NULL)
		goto fail;
	for (i = 0; app->has_conf && i < app->conf.nenv; i++) {
		PyObject *v = PyUnicode_DecodeFSDefault(app->conf.env[i].value);

		if (v == NULL || PyDict_SetItemString(env, app->conf.env[i].key,
		    v) < 0) {
			Py_XDECREF(v);
			goto fail;
		}
		/* The same values in every request's environ. */
		if (PyDict_SetItemString(ws->base_environ, app->conf.env[i].key,
		    v) < 0) {
			Py_DECREF(v);
			goto fail;
		}
		Py_DECREF(v);
	}
	res = PyObject_CallFunction(ws->setup, "ssOzszO", app->dir,
	    venv_site[0] ? venv_site : NULL, writer, entry_module,
	    entry_callable, entry_file[0] ? entry_file : NULL, env);
	if (res == NULL)
		goto fail;
	gen->callable = res;
	gen->ws = ws;
	/* sys.modules holds the module (and so ws) for the interpreter's
	 * life; the extra reference is dropped here. */
	Py_DECREF(mod);
	Py_DECREF(writer);
	Py_DECREF(env);
	return 0;

fail:
	wsgi_log_exception(app, "the app failed to import", reason,
	    reason_size);
	Py_XDECREF(mod);
	Py_XDECREF(writer);
	Py_XDECREF(env);
	return -1;
}

/* ---- one request ---- */

static PyObject *build_environ(struct wsgi_state *ws, struct cgi_env *env,
    struct input *input, bool is_https)
{
	PyObject *environ = PyDict_Copy(ws->base_environ);
	size_t i;

	if (environ == NULL)
		return NULL;
	for (i = 0; i < env->nvars; i++) {
		const struct cgi_var *cv = &env->vars[i];
		PyObject *v = PyUnicode_DecodeLatin1(cv->val,
		    (Py_ssize_t)cv->val_len, NULL);

		if (v == NULL || PyDict_SetItemString(environ, cv->key, v) < 0) {
			Py_XDECREF(v);
			Py_DECREF(environ);
			return NULL;
		}
		Py_DECREF(v);
	}
	if (PyDict_SetItem(environ, ws->str_wsgi_input, (PyObject *)input) < 0 ||
	    (is_https && PyDict_SetItem(environ, ws->str_url_scheme,
		ws->str_https) < 0)) {
		Py_DECREF(environ);
		return NULL;
	}
	return environ;
}

/* Answers 500 if nothing was sent, else cuts the response.  Called with
 * the GIL held. */
static void answer_failure(struct req *r)
{
	if (!r->headers_sent) {
		/* A body the client got wrong (bad chunks, too large) is the
		 * client's error, even if it surfaced inside the app. */
		int status = r->body_status != 0 ? r->body_status : 500;

		conn_send_error(r, status, r->keep_alive && r->body_done);
	} else {
		/* Body bytes went out: an unterminated chunked stream or a
		 * short Content-Length is the only way to tell the front end
		 * the response is broken. */
		r->keep_alive = false;
		r->client_gone = true;
	}
}

/* Sends a file_wrapper's file with sendfile(2) if it is a regular file.
 * Returns 1 if sent (or failed while sending), 0 if the caller should
 * iterate instead. */
static int send_file_wrapper(struct wsgi_state *ws, struct req *r,
    struct file_wrapper *fw, int *rc_r)
{
	PyObject *fdobj;
	struct stat st;
	off_t off;
	int fd, rc;
	int64_t len;

	if (!PyObject_HasAttr(fw->filelike, ws->str_fileno))
		return 0;
	fdobj = PyObject_CallMethodNoArgs(fw->filelike, ws->str_fileno);
	if (fdobj == NULL) {
		PyErr_Clear();
		return 0;
	}
	fd = (int)PyLong_AsLong(fdobj);
	Py_DECREF(fdobj);
	if (fd < 0 || PyErr_Occurred()) {
		PyErr_Clear();
		return 0;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return 0;
	off = lseek(fd, 0, SEEK_CUR);
	if (off < 0)
		return 0;
	len = (int64_t)st.st_size - off;
	if (len < 0)
		len = 0;
	if (r->content_length >= 0 && r->content_length < len)
		len = r->content_length;
	if (r->content_length < 0)
		r->content_length = len;
	/* sendfile reads the file: that may wait on the disk, so the GIL
	 * goes. */
	gil_release(r);
	rc = conn_resp_sendfile(r, fd, len);
	gil_take(r);
	*rc_r = rc;
	return 1;
}

/* Iterates the app's result and sends it.  0, or -1 when the response
 * failed (logged; the connection must close). */
static int send_result(struct wsgi_state *ws, struct app *app, struct req *r,
    PyObject *result)
{
	/* A list or tuple is complete: gather it, send once, with a
	 * Content-Length if the app gave none. */
	if (PyList_CheckExact(result) || PyTuple_CheckExact(result)) {
		PyObject *fast = result;
		Py_ssize_t i, n = PySequence_Fast_GET_SIZE(fast);

		for (i = 0; i < n; i++) {
			PyObject *item = PySequence_Fast_GET_ITEM(fast, i);

			if (!PyBytes_Check(item)) {
				PyErr_Format(PyExc_TypeError,
				    "the app returned a %.100s in its body; "
				    "WSGI wants bytes",
				    Py_TYPE(item)->tp_name);
				return -1;
			}
			if (!r->headers_set) {
				PyErr_SetString(PyExc_AssertionError,
				    "the app returned a body without calling "
				    "start_response");
				return -1;
			}
			if (send_body(r, PyBytes_AS_STRING(item),
			    (size_t)PyBytes_GET_SIZE(item), false) < 0)
				return 1;
		}
		return 0;
	}

	if (Py_TYPE(result) == ws->file_wrapper_type && r->headers_set &&
	    !r->no_body) {
		int rc = 0;

		if (send_file_wrapper(ws, r, (struct file_wrapper *)result,
		    &rc))
			return rc < 0 ? 1 : 0;
	}

	PyObject *it = PyObject_GetIter(result), *item;

	if (it == NULL)
		return -1;
	while ((item = PyIter_Next(it)) != NULL) {
		if (!PyBytes_Check(item)) {
			PyErr_Format(PyExc_TypeError,
			    "the app yielded a %.100s; WSGI wants bytes",
			    Py_TYPE(item)->tp_name);
			Py_DECREF(item);
			Py_DECREF(it);
			return -1;
		}
		if (!r->headers_set) {
			Py_DECREF(item);
			Py_DECREF(it);
			PyErr_SetString(PyExc_AssertionError,
			    "the app yielded body bytes before calling "
			    "start_response");
			return -1;
		}
		/* PEP 3333: a yielded block is sent before the next one is
		 * asked for (streaming apps rely on it). */
		if (PyBytes_GET_SIZE(item) > 0 &&
		    send_body(r, PyBytes_AS_STRING(item),
			(size_t)PyBytes_GET_SIZE(item), true) < 0) {
			Py_DECREF(item);
			Py_DECREF(it);
			return 1; /* the client went away: stop iterating */
		}
		Py_DECREF(item);
	}
	Py_DECREF(it);
	if (PyErr_Occurred())
		return -1;
	if (!r->headers_set) {
		PyErr_SetString(PyExc_AssertionError,
		    "the app returned without calling start_response");
		return -1;
	}
	return 0;
}

static PyThreadState *thread_state_for(struct wthread *t, struct app_gen *gen)
{
	PyThreadState *ts = gen->tstates[t->idx];

	if (ts == NULL) {
		ts = PyThreadState_New(gen->interp);
		gen->tstates[t->idx] = ts;
	}
	return ts;
}

/* Where the request came from: the socket, or what the router said
 * (an empty string there means "the socket's own value"). */
static void server_of(const struct conn *c, struct cgi_server *srv)
{
	const struct conn_front *f = c->front;

	*srv = (struct cgi_server){
	    .server_name = c->server_name,
	    .server_port = c->server_port,
	    .remote_addr = c->remote_addr,
	    .remote_port = c->remote_port,
	    .script_name = "",
	};
	if (f == NULL)
		return;
	srv->remote_addr = f->str[MSG_FRONT_REMOTE_ADDR];
	srv->remote_port = f->str[MSG_FRONT_REMOTE_PORT];
	if (f->str[MSG_FRONT_SERVER_NAME][0] != '\0') {
		srv->server_name = f->str[MSG_FRONT_SERVER_NAME];
		srv->is_server_name_set = true;
	}
	if (f->str[MSG_FRONT_SERVER_PORT][0] != '\0')
		srv->server_port = f->str[MSG_FRONT_SERVER_PORT];
	srv->script_name = f->str[MSG_FRONT_SCRIPT_NAME];
	srv->is_https = (f->flags & MSG_FRONT_HTTPS) != 0;
}

int wsgi_serve(struct wthread *t, struct app_gen *gen, struct req *r)
{
	struct app *app = gen->app;
	struct wsgi_state *ws = gen->ws;
	struct cgi_server srv;
	PyObject *environ = NULL, *result = NULL;
	struct start_response *sr = NULL;
	struct input *input = NULL;
	PyThreadState *ts;
	int rc = 0, sent;

	server_of(r->c, &srv);
	if (cgi_build(&r->http, &srv, t->cgi) < 0) {
		conn_send_error(r, 431, false);
		return -1;
	}
	ts = thread_state_for(t, gen);
	if (ts == NULL) {
		conn_send_error(r, 500, false);
		return -1;
	}
	if (t->held_ts == NULL) {
		gil_acquire(t, ts);
		t->held_since = util_now_ms();
		t->nheld = 0;
	} else if (t->held_ts != ts) {
		/* Still holding the GIL from the previous request: switch
		 * interpreters without letting it go (EMBEDDING.md §4: as
		 * cheap as staying). */
		PyThreadState_Swap(ts);
	}
	t->held_ts = ts;
	t->nheld++;
	r->block_begin = gil_release;
	r->block_end = gil_take;
	r->block_arg = t;

	input = PyObject_New(struct input, ws->input_type);
	sr = PyObject_New(struct start_response, ws->start_response_type);
	if (input == NULL || sr == NULL)
		goto error;
	input->r = r;
	input->pend = NULL;
	input->pend_off = input->pend_len = input->pend_size = 0;
	sr->r = r;
	sr->app = app;
	environ = build_environ(ws, t->cgi, input, srv.is_https);
	if (environ == NULL)
		goto error;

	result = PyObject_CallFunctionObjArgs(gen->callable, environ, sr, NULL);
	/* A module imported during a request must be watched too: tell the
	 * watcher when sys.modules grew (a size check: nearly free). */
	if (PyDict_GET_SIZE(PyImport_GetModuleDict()) != gen->nmodules)
		reload_modules_grew(gen);
	if (result == NULL)
		goto error;
	sent = send_result(ws, app, r, result);
	if (sent < 0) {
		wsgi_log_exception(app, "exception while sending the response",
		    NULL, 0);
		answer_failure(r);
	}
	/* PEP 3333: close() is called whatever happened, also when the
	 * client went away. */
	if (PyObject_HasAttr(result, ws->str_close)) {
		PyObject *cr = PyObject_CallMethodNoArgs(result, ws->str_close);

		if (cr == NULL)
			wsgi_log_exception(app, "exception in close()", NULL, 0);
		Py_XDECREF(cr);
	}
	if (sent == 0 && !r->client_gone) {
		int end;

		end = conn_resp_end(r);
		if (end < 0)
			rc = -1;
	} else {
		rc = -1;
	}
	goto done;

error:
	if (r->body_status != 0) {
		/* The app only saw the client's bad body: one line, no
		 * traceback to alarm the user. */
		PyErr_Clear();
		userlog_printf(app->log, "request body refused (%d %s): the "
		    "client sent %s", r->body_status,
		    http_reason(r->body_status),
		    r->body_status == 413 ? "more than the body limit" :
					    "a malformed chunked body");
	} else {
		wsgi_log_exception(app, "exception in the app", NULL, 0);
	}
	answer_failure(r);
	if (r->client_gone || !r->keep_alive)
		rc = -1;
done:
	/* The objects may outlive the request in the app's hands: cut their
	 * link to it. */
	if (input != NULL)
		input->r = NULL;
	if (sr != NULL)
		sr->r = NULL;
	Py_XDECREF(result);
	Py_XDECREF(environ);
	Py_XDECREF((PyObject *)input);
	Py_XDECREF((PyObject *)sr);
	if (r->client_gone || !r->keep_alive)
		rc = -1;
	/* Under load the next request is often ready already: keep the GIL
	 * for it (worker.c serves ready connections first and lets it go
	 * when none is, or after a short batch), so that one thread runs
	 * many requests per GIL handoff instead of one.  Only on the plain
	 * path where nothing below can block. */
	/* A front connection closes after each response, cleanly: only
	 * its shutdown, close and DONE follow, none of which waits. */
	if ((rc == 0 || (r->c->front != NULL && !r->client_gone)) &&
	    r->body_done && wctx.app_process == NULL &&
	    !atomic_load(&wctx.is_draining) && t->nheld < WSGI_BATCH_MAX &&
	    util_now_ms() - t->held_since < WSGI_BATCH_MS)
		return rc;
	wsgi_gil_drop(t);
	return rc;
}

/* ---- what the reload watcher asks of an interpreter ---- */

int wsgi_module_files(struct app_gen *gen, const char *const *roots,
    size_t nroots, char ***files_r, size_t *nfiles_r)
{
	PyObject *list = PyList_New(0), *res;
	char **files;
	Py_ssize_t i, n;
	size_t k;

	*files_r = NULL;
	*nfiles_r = 0;
	if (list == NULL)
		goto fail;
	for (k = 0; k < nroots; k++) {
		PyObject *r = PyUnicode_DecodeFSDefault(roots[k]);

		if (r == NULL || PyList_Append(list, r) < 0) {
			Py_XDECREF(r);
			goto fail;
		}
		Py_DECREF(r);
	}
	res = PyObject_CallOneArg(gen->ws->module_files, list);
	Py_CLEAR(list);
	if (res == NULL)
		goto fail;
	n = PyList_Size(res);
	files = calloc((size_t)n + 1, sizeof(*files));
	for (i = 0; files != NULL && i < n; i++) {
		PyObject *b = PyUnicode_EncodeFSDefault(PyList_GET_ITEM(res, i));

		if (b == NULL) {
			PyErr_Clear();
			continue;
		}
		files[(*nfiles_r)++] = strdup(PyBytes_AS_STRING(b));
		Py_DECREF(b);
	}
	Py_DECREF(res);
	*files_r = files;
	gen->nmodules = PyDict_GET_SIZE(PyImport_GetModuleDict());
	return files != NULL ? 0 : -1;
fail:
	Py_XDECREF(list);
	wsgi_log_exception(gen->app, "lodge: listing the app's modules failed",
	    NULL, 0);
	return -1;
}

int wsgi_threads_left(struct app_gen *gen, double timeout)
{
	PyObject *res = PyObject_CallFunction(gen->ws->threads_left, "d",
	    timeout);
	long n;

	if (res == NULL) {
		wsgi_log_exception(gen->app, "lodge: checking the app's threads "
		    "failed", NULL, 0);
		return 1; /* unknown: treat as "threads remain" (safe side) */
	}
	n = PyLong_AsLong(res);
	Py_DECREF(res);
	if (n < 0 && PyErr_Occurred()) {
		PyErr_Clear();
		return 1;
	}
	return (int)n;
}
