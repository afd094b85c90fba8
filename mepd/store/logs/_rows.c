/* The log writer's rows in C: packed by the daemon into one bytes object, inserted by SQLite itself.
 *
 * Python's sqlite3 binds every value of every row through its adapter machinery: for the usual batch
 * that was the larger part of the writer's CPU (bench/README.md).  Here the daemon packs a batch's row
 * tuples into one bytes object (pack(), a Python function, about what pickling the tuples cost), the
 * writer binds that one value, and `INSERT INTO logs (...) SELECT ... FROM mepd_rows(?)` reads the rows
 * out of it through a table-valued function: a SQLite extension in this same shared object, loaded
 * into the writer's connection with sqlite3.Connection.load_extension (its entry point is
 * sqlite3_rows_init, the name SQLite derives from the file's).  No value goes through Python there.
 *
 * Built by setup.py as mepd.store.logs._rows (optional, as the syslog speedups: without it, or without
 * extension loading in Python's sqlite3, the rows go as tuples, the reference).  A row stored either
 * way reads back the same, value and type (tests/unit/store/logs/test_packed_rows.py compares them on
 * the corpus and on hypothesis input).
 *
 * The packed form: "MEPR", the number of columns (uint32, host order: it never leaves the machine),
 * the number of rows (uint32), then per row each column's value as a tag byte and its payload: NULL
 * nothing, TEXT and BLOB a uint32 length and the bytes (UTF-8 for TEXT), INTEGER an int64, REAL a
 * double.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT1

#define N_COLUMNS 16  /* mepd.store.logs.worker.COLUMNS: the writer loads mepd_rows() only when they match */
#define HEADER 12
static const char MAGIC[4] = {'M', 'E', 'P', 'R'};
enum { T_NULL, T_TEXT, T_BLOB, T_INT, T_REAL };

/* ---------------------------------------------------------------------------------------- packing */

typedef struct {
    char *data;
    size_t len, cap;
} Out;

static int
reserve(Out *out, size_t more)
{
    if (out->len + more <= out->cap)
        return 0;
    size_t cap = out->cap ? out->cap : 1 << 16;
    while (cap < out->len + more)
        cap *= 2;
    char *data = PyMem_Realloc(out->data, cap);
    if (data == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    out->data = data;
    out->cap = cap;
    return 0;
}

static int
put_sized(Out *out, char tag, const char *bytes, Py_ssize_t size)
{
    if (size > INT_MAX) {  /* what SQLite takes at most, as sqlite3 refuses it */
        PyErr_SetString(PyExc_OverflowError, "string or blob too big");
        return -1;
    }
    if (reserve(out, 5 + (size_t)size) < 0)
        return -1;
    uint32_t n = (uint32_t)size;
    out->data[out->len] = tag;
    memcpy(out->data + out->len + 1, &n, 4);
    memcpy(out->data + out->len + 5, bytes, (size_t)size);
    out->len += 5 + (size_t)size;
    return 0;
}

static int
put_fixed(Out *out, char tag, const void *value)
{
    if (reserve(out, 9) < 0)
        return -1;
    out->data[out->len] = tag;
    memcpy(out->data + out->len + 1, value, 8);
    out->len += 9;
    return 0;
}

/* One value, typed as sqlite3 binds it: str as TEXT, bytes as BLOB, int (bool too) as INTEGER, float as
 * REAL, None as NULL; anything else is refused, as sqlite3 refuses it. */
static int
put_value(Out *out, PyObject *v)
{
    if (v == NULL || v == Py_None) {
        if (reserve(out, 1) < 0)
            return -1;
        out->data[out->len++] = T_NULL;
        return 0;
    }
    if (PyUnicode_Check(v)) {
        Py_ssize_t size;
        const char *s = PyUnicode_AsUTF8AndSize(v, &size);
        return s == NULL ? -1 : put_sized(out, T_TEXT, s, size);
    }
    if (PyFloat_Check(v)) {
        double d = PyFloat_AS_DOUBLE(v);
        return put_fixed(out, T_REAL, &d);
    }
    if (PyLong_Check(v)) {
        long long i = PyLong_AsLongLong(v);
        if (i == -1 && PyErr_Occurred())
            return -1;
        int64_t i64 = (int64_t)i;
        return put_fixed(out, T_INT, &i64);
    }
    if (PyBytes_Check(v))
        return put_sized(out, T_BLOB, PyBytes_AS_STRING(v), PyBytes_GET_SIZE(v));
    PyErr_Format(PyExc_TypeError, "a row value of type %.100s cannot be stored", Py_TYPE(v)->tp_name);
    return -1;
}

/* pack(rows, forms): rows is a list of tuples; forms[len(row)] is a bytes object naming the column of each
 * of the row's values (the row forms of mepd.store.logs.worker), or None for a length no form has. */
static PyObject *
pack(PyObject *self, PyObject *args)
{
    PyObject *rows, *forms;
    if (!PyArg_ParseTuple(args, "O!O!:pack", &PyList_Type, &rows, &PyTuple_Type, &forms))
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(rows);
    if (n > INT_MAX) {
        PyErr_SetString(PyExc_OverflowError, "too many rows");
        return NULL;
    }
    Out out = {NULL, 0, 0};
    if (reserve(&out, HEADER) < 0)
        return NULL;
    uint32_t counts[2] = {N_COLUMNS, (uint32_t)n};
    memcpy(out.data, MAGIC, 4);
    memcpy(out.data + 4, counts, 8);
    out.len = HEADER;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *row = PyList_GET_ITEM(rows, i);
        if (!PyTuple_Check(row)) {
            PyErr_SetString(PyExc_TypeError, "a row is not a tuple");
            goto fail;
        }
        Py_ssize_t size = PyTuple_GET_SIZE(row);
        PyObject *form = size < PyTuple_GET_SIZE(forms) ? PyTuple_GET_ITEM(forms, size) : Py_None;
        if (!PyBytes_Check(form) || PyBytes_GET_SIZE(form) != size) {
            PyErr_Format(PyExc_ValueError, "no row form has %zd values", size);
            goto fail;
        }
        const unsigned char *column = (const unsigned char *)PyBytes_AS_STRING(form);
        PyObject *values[N_COLUMNS] = {NULL};
        for (Py_ssize_t j = 0; j < size; j++) {
            if (column[j] >= N_COLUMNS) {
                PyErr_SetString(PyExc_ValueError, "a row form names a column past the table's");
                goto fail;
            }
            values[column[j]] = PyTuple_GET_ITEM(row, j);
        }
        for (int c = 0; c < N_COLUMNS; c++)
            if (put_value(&out, values[c]) < 0)
                goto fail;
    }
    PyObject *packed = PyBytes_FromStringAndSize(out.data, (Py_ssize_t)out.len);
    PyMem_Free(out.data);
    return packed;
fail:
    PyMem_Free(out.data);
    return NULL;
}

static PyMethodDef methods[] = {
    {"pack", pack, METH_VARARGS, "pack(rows, forms) -> bytes: a batch's row tuples for mepd_rows()."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "mepd.store.logs._rows",
    "The log writer's rows packed for SQLite (see _rows.c); the row tuples are the reference.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__rows(void)
{
    PyObject *m = PyModule_Create(&module);
    if (m != NULL && PyModule_AddIntConstant(m, "COLUMNS", N_COLUMNS) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}

/* ---------------------------------------------------------------------------- mepd_rows(packed) */

typedef struct {
    sqlite3_vtab base;
} Table;

typedef struct {
    sqlite3_vtab_cursor base;
    unsigned char *data;  /* a copy of the packed rows: the argument's bytes last only as long as it */
    size_t len, at;
    uint32_t rows, row;
    const unsigned char *value[N_COLUMNS];  /* the current row's values: each a tag and its payload */
} Cursor;

static int
rows_connect(sqlite3 *db, void *aux, int argc, const char *const *argv, sqlite3_vtab **vtab, char **error)
{
    int rc = sqlite3_declare_vtab(db, "CREATE TABLE x(c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12,"
                                      " c13, c14, c15, packed HIDDEN)");
    if (rc != SQLITE_OK)
        return rc;
    Table *table = sqlite3_malloc(sizeof *table);
    if (table == NULL)
        return SQLITE_NOMEM;
    memset(table, 0, sizeof *table);
    *vtab = &table->base;
    return SQLITE_OK;
}

static int
rows_disconnect(sqlite3_vtab *vtab)
{
    sqlite3_free(vtab);
    return SQLITE_OK;
}

/* Only ever read whole, given the packed rows: mepd_rows(?) is `packed = ?`. */
static int
rows_best_index(sqlite3_vtab *vtab, sqlite3_index_info *info)
{
    for (int i = 0; i < info->nConstraint; i++) {
        const struct sqlite3_index_constraint *c = &info->aConstraint[i];
        if (c->iColumn == N_COLUMNS && c->op == SQLITE_INDEX_CONSTRAINT_EQ) {
            if (!c->usable)
                return SQLITE_CONSTRAINT;
            info->aConstraintUsage[i].argvIndex = 1;
            info->aConstraintUsage[i].omit = 1;
            info->estimatedCost = 1.0;
            return SQLITE_OK;
        }
    }
    sqlite3_free(vtab->zErrMsg);
    vtab->zErrMsg = sqlite3_mprintf("mepd_rows() takes the packed rows");
    return SQLITE_ERROR;
}

static int
rows_open_cursor(sqlite3_vtab *vtab, sqlite3_vtab_cursor **cursor)
{
    Cursor *c = sqlite3_malloc(sizeof *c);
    if (c == NULL)
        return SQLITE_NOMEM;
    memset(c, 0, sizeof *c);
    *cursor = &c->base;
    return SQLITE_OK;
}

static int
rows_close_cursor(sqlite3_vtab_cursor *cursor)
{
    Cursor *c = (Cursor *)cursor;
    sqlite3_free(c->data);
    sqlite3_free(c);
    return SQLITE_OK;
}

static int
malformed(Cursor *c)
{
    sqlite3_vtab *vtab = c->base.pVtab;
    sqlite3_free(vtab->zErrMsg);
    vtab->zErrMsg = sqlite3_mprintf("mepd_rows(): malformed packed rows at byte %llu",
                                    (unsigned long long)c->at);
    return SQLITE_ERROR;
}

/* Find the values of the row at c->at, and move past it. */
static int
read_row(Cursor *c)
{
    for (int i = 0; i < N_COLUMNS; i++) {
        if (c->at >= c->len)
            return malformed(c);
        const unsigned char *v = c->data + c->at;
        size_t size;
        switch (v[0]) {
        case T_NULL:
            size = 1;
            break;
        case T_TEXT:
        case T_BLOB: {
            uint32_t n;
            if (c->len - c->at < 5)
                return malformed(c);
            memcpy(&n, v + 1, 4);
            if (n > INT_MAX)
                return malformed(c);
            size = 5 + (size_t)n;
            break;
        }
        case T_INT:
        case T_REAL:
            size = 9;
            break;
        default:
            return malformed(c);
        }
        if (c->len - c->at < size)
            return malformed(c);
        c->value[i] = v;
        c->at += size;
    }
    return SQLITE_OK;
}

static int
rows_filter(sqlite3_vtab_cursor *cursor, int idx, const char *idx_name, int argc, sqlite3_value **argv)
{
    Cursor *c = (Cursor *)cursor;
    sqlite3_free(c->data);
    c->data = NULL;
    c->len = c->at = 0;
    c->rows = c->row = 0;
    if (argc != 1 || sqlite3_value_type(argv[0]) != SQLITE_BLOB)
        return malformed(c);
    const void *bytes = sqlite3_value_blob(argv[0]);  /* before _bytes(), as SQLite's documentation asks */
    int len = sqlite3_value_bytes(argv[0]);
    if (len < HEADER || bytes == NULL || memcmp(bytes, MAGIC, 4) != 0)
        return malformed(c);
    uint32_t counts[2];
    memcpy(counts, (const char *)bytes + 4, 8);
    if (counts[0] != N_COLUMNS)
        return malformed(c);
    c->data = sqlite3_malloc(len);
    if (c->data == NULL)
        return SQLITE_NOMEM;
    memcpy(c->data, bytes, (size_t)len);
    c->len = (size_t)len;
    c->at = HEADER;
    c->rows = counts[1];
    if (c->rows == 0)
        return c->at == c->len ? SQLITE_OK : malformed(c);
    return read_row(c);
}

static int
rows_next(sqlite3_vtab_cursor *cursor)
{
    Cursor *c = (Cursor *)cursor;
    if (++c->row < c->rows)
        return read_row(c);
    return c->at == c->len ? SQLITE_OK : malformed(c);  /* nothing may follow the last row */
}

static int
rows_eof(sqlite3_vtab_cursor *cursor)
{
    Cursor *c = (Cursor *)cursor;
    return c->row >= c->rows;
}

static int
rows_column(sqlite3_vtab_cursor *cursor, sqlite3_context *ctx, int i)
{
    Cursor *c = (Cursor *)cursor;
    if (i < 0 || i >= N_COLUMNS) {
        sqlite3_result_null(ctx);
        return SQLITE_OK;
    }
    const unsigned char *v = c->value[i];
    switch (v[0]) {
    case T_TEXT:
    case T_BLOB: {
        uint32_t n;
        memcpy(&n, v + 1, 4);
        /* SQLITE_TRANSIENT: SQLite copies the value, as sqlite3_bind_text does for Python's sqlite3. */
        if (v[0] == T_TEXT)
            sqlite3_result_text(ctx, (const char *)v + 5, (int)n, SQLITE_TRANSIENT);
        else
            sqlite3_result_blob(ctx, v + 5, (int)n, SQLITE_TRANSIENT);
        break;
    }
    case T_INT: {
        int64_t x;
        memcpy(&x, v + 1, 8);
        sqlite3_result_int64(ctx, x);
        break;
    }
    case T_REAL: {
        double d;
        memcpy(&d, v + 1, 8);
        sqlite3_result_double(ctx, d);
        break;
    }
    default:
        sqlite3_result_null(ctx);
    }
    return SQLITE_OK;
}

static int
rows_rowid(sqlite3_vtab_cursor *cursor, sqlite3_int64 *id)
{
    *id = ((Cursor *)cursor)->row;
    return SQLITE_OK;
}

/* Eponymous only (no CREATE VIRTUAL TABLE: xCreate is NULL), read only (no xUpdate). */
static sqlite3_module rows_module = {
    .xConnect = rows_connect, .xBestIndex = rows_best_index, .xDisconnect = rows_disconnect,
    .xOpen = rows_open_cursor, .xClose = rows_close_cursor, .xFilter = rows_filter, .xNext = rows_next,
    .xEof = rows_eof, .xColumn = rows_column, .xRowid = rows_rowid,
};

int
sqlite3_rows_init(sqlite3 *db, char **error, const sqlite3_api_routines *api)
{
    SQLITE_EXTENSION_INIT2(api);
    return sqlite3_create_module(db, "mepd_rows", &rows_module, NULL);
}
