/*
 * cfg.h - schema-driven configuration files (DESIGN.md section 1).
 *
 * A daemon describes its configuration once, as a table of struct cfg_key: every key has a
 * section-qualified name, a type, a default, a range and one line of documentation, and
 * the byte offset of the field it fills in the daemon's own config struct. The same table
 * drives parsing, `--set section.key=value` overrides and `--help`.
 *
 * File syntax (INI-like):
 *
 *     # comment               ; comment
 *     [net]
 *     listen = tcp://0.0.0.0:7000     # trailing comments after whitespace
 *     idle_timeout = 60s
 *     name = "quoted string with # inside"
 *
 * Types: bool (true/false/yes/no/on/off/1/0), int (signed 64-bit), uint, size (bytes, with
 * optional K/M/G/T suffix, binary: 4K = 4096, "KiB" spelling also accepted), duration
 * (stored in milliseconds; suffixes ms, s, m, h; a bare number is ms), string (malloc'd,
 * released by cfg_free), enumeration (one of a NULL-terminated list; stored as the index).
 *
 * Errors name the file and line: "sluice.conf:12: unknown key 'net.lisen'". Unknown
 * sections or keys, values that do not parse, values out of range, a key given twice in
 * one file, lines over SLUICE_CFG_LINE_MAX and files over SLUICE_CFG_FILE_MAX_BYTES are
 * all errors (-SLUICE_ECONFIG with the message in struct cfg_err). On error the output
 * struct keeps whatever was applied before the bad line; callers exit.
 *
 * Not thread-safe per struct; daemons load config once at startup.
 */
#ifndef SLUICE_COMMON_CFG_H
#define SLUICE_COMMON_CFG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/assert.h"

enum cfg_type {
	CFG_BOOL,     /* field: bool */
	CFG_INT,      /* field: int64_t */
	CFG_UINT,     /* field: uint64_t */
	CFG_SIZE,     /* field: uint64_t, bytes */
	CFG_DURATION, /* field: uint64_t, milliseconds */
	CFG_STRING,   /* field: char *, owned by the struct, freed by cfg_free */
	CFG_ENUM,     /* field: int, index into enum_names */
};

struct cfg_key {
	const char *name; /* "section.key"; lower case, [a-z0-9_] */
	enum cfg_type type;
	size_t offset;	  /* offsetof(struct daemon_cfg, field) */
	const char *def;  /* default, written as it would be in a file; NULL = "" for strings */
	int64_t min, max; /* inclusive range for numeric types; both 0 = unbounded */
	const char *const *enum_names; /* CFG_ENUM only, NULL-terminated */
	const char *doc;	       /* one line, shown by --help */
};

struct cfg_schema {
	const char *program; /* for --help */
	const struct cfg_key *keys;
	size_t nkeys;
};

struct cfg_err {
	char msg[512];
};

/* Fill every field of out with its default. Fails only on a broken schema (a bug). */
SLUICE_MUST_USE int cfg_defaults(const struct cfg_schema *s, void *out, struct cfg_err *err);

/* Parse a file into out (on top of what is there, normally the defaults). */
SLUICE_MUST_USE int cfg_load_file(const struct cfg_schema *s, const char *path, void *out,
				  struct cfg_err *err);

/* Parse text as if it were a file named `name` (used by cfg_load_file and the fuzzer). */
SLUICE_MUST_USE int cfg_load_string(const struct cfg_schema *s, const char *name, const char *text,
				    size_t len, void *out, struct cfg_err *err);

/* Apply one "section.key=value" override (from --set). */
SLUICE_MUST_USE int cfg_set(const struct cfg_schema *s, const char *assignment, void *out,
			    struct cfg_err *err);

/* Release the strings owned by out (the struct itself is the caller's). */
void cfg_free(const struct cfg_schema *s, void *out);

/* Print every key with type, default, range and doc, grouped by section. */
void cfg_print_help(const struct cfg_schema *s, FILE *f);

/* Print the effective configuration as a loadable file. */
void cfg_print(const struct cfg_schema *s, const void *cfg, FILE *f);

/*
 * Standard daemon command line: --config FILE, --set k=v (repeatable), --help,
 * --print-config. Applies defaults, then the file, then the overrides in order. Returns 0
 * to run, 1 if --help/--print-config was handled (caller exits 0), or -SLUICE_ECONFIG with
 * err filled (caller prints it and exits 2).
 */
SLUICE_MUST_USE int cfg_parse_args(const struct cfg_schema *s, int argc, char **argv, void *out,
				   struct cfg_err *err);

#endif
