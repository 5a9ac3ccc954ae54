/*
 * cli_json.c - a small streaming JSON emitter for the CLI's --json output.
 *
 * Output is written as it is produced (no document tree), pretty-printed with two-space
 * indentation so it is readable and still trivially machine-parsed; "flat" arrays of
 * scalars (lists of ids) stay on one line. The emitter keeps a
 * stack of open containers to place commas and closing brackets; misuse (a key inside an
 * array, no key inside an object, too deep) is a bug in the CLI and is asserted.
 *
 * Strings: '"' and '\\' are escaped, control bytes become \b \f \n \r \t or \u00XX, DEL
 * becomes \u007f, and bytes that are not well-formed UTF-8 (hostnames and paths come from
 * the network and are not validated by protobuf-c) become U+FFFD, so the output is always
 * valid JSON whatever mgmtd sent.
 *
 * Main thread only.
 */
#include <inttypes.h>
#include <string.h>

#include "tools/cli.h"

static void indent(struct cli_json *j)
{
	if (j->depth > 0 && j->flat[j->depth - 1]) {
		if (!j->first[j->depth - 1])
			fputc(' ', j->f);
		return;
	}
	fputc('\n', j->f);
	for (unsigned i = 0; i < j->depth; i++)
		fputs("  ", j->f);
}

/* Comma, newline and indentation before a member; then the key if inside an object. */
static void member(struct cli_json *j, const char *key)
{
	ASSERT(j->depth > 0);
	ASSERT((j->close[j->depth - 1] == '}') == (key != NULL));
	if (!j->first[j->depth - 1])
		fputc(',', j->f);
	indent(j);
	j->first[j->depth - 1] = false;
	if (key) {
		cli_json_write_string(j->f, key);
		fputs(": ", j->f);
	}
}

static void open_container(struct cli_json *j, char open, char close, bool flat)
{
	ASSERT(j->depth < CLI_JSON_DEPTH_MAX);
	ASSERT(!(j->depth > 0 && j->flat[j->depth - 1])); /* flat arrays hold scalars only */
	fputc(open, j->f);
	j->first[j->depth] = true;
	j->flat[j->depth] = flat;
	j->close[j->depth] = close;
	j->depth++;
}

void cli_json_begin(struct cli_json *j, FILE *f)
{
	memset(j, 0, sizeof(*j));
	j->f = f;
	open_container(j, '{', '}', false);
}

void cli_json_end(struct cli_json *j)
{
	ASSERT(j->depth == 1);
	cli_json_close(j);
	fputc('\n', j->f);
}

void cli_json_obj(struct cli_json *j, const char *key)
{
	member(j, key);
	open_container(j, '{', '}', false);
}

void cli_json_arr(struct cli_json *j, const char *key)
{
	member(j, key);
	open_container(j, '[', ']', false);
}

void cli_json_arr_flat(struct cli_json *j, const char *key)
{
	member(j, key);
	open_container(j, '[', ']', true);
}

void cli_json_close(struct cli_json *j)
{
	ASSERT(j->depth > 0);
	j->depth--;
	if (!j->first[j->depth] && !j->flat[j->depth])
		indent(j);
	fputc(j->close[j->depth], j->f);
}

void cli_json_str(struct cli_json *j, const char *key, const char *v)
{
	member(j, key);
	if (v)
		cli_json_write_string(j->f, v);
	else
		fputs("null", j->f);
}

void cli_json_u64(struct cli_json *j, const char *key, uint64_t v)
{
	member(j, key);
	fprintf(j->f, "%" PRIu64, v);
}

void cli_json_i64(struct cli_json *j, const char *key, int64_t v)
{
	member(j, key);
	fprintf(j->f, "%" PRId64, v);
}

void cli_json_bool(struct cli_json *j, const char *key, bool v)
{
	member(j, key);
	fputs(v ? "true" : "false", j->f);
}

/*
 * Length of the well-formed UTF-8 sequence at s (1..4), or 0 if the bytes there are not
 * one (overlong forms, surrogates, code points above U+10FFFF and truncated sequences are
 * all rejected, per RFC 3629).
 */
static unsigned utf8_seq_len(const unsigned char *s)
{
	unsigned char c = s[0];
	unsigned n;
	unsigned char lo = 0x80, hi = 0xbf; /* allowed range of the second byte */

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		if (c == 0xe0)
			lo = 0xa0; /* no overlong */
		else if (c == 0xed)
			hi = 0x9f; /* no surrogates */
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f; /* <= U+10FFFF */
	} else {
		return 0;
	}
	if (s[1] < lo || s[1] > hi)
		return 0; /* also stops at the terminating NUL */
	for (unsigned i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return n;
}

void cli_json_write_string(FILE *f, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;

	fputc('"', f);
	while (*s) {
		unsigned char c = *s;
		unsigned n;

		switch (c) {
		case '"':
			fputs("\\\"", f);
			s++;
			continue;
		case '\\':
			fputs("\\\\", f);
			s++;
			continue;
		case '\b':
			fputs("\\b", f);
			s++;
			continue;
		case '\f':
			fputs("\\f", f);
			s++;
			continue;
		case '\n':
			fputs("\\n", f);
			s++;
			continue;
		case '\r':
			fputs("\\r", f);
			s++;
			continue;
		case '\t':
			fputs("\\t", f);
			s++;
			continue;
		default:
			break;
		}
		if (c < 0x20 || c == 0x7f) {
			fprintf(f, "\\u%04x", c);
			s++;
			continue;
		}
		n = utf8_seq_len(s);
		if (n == 0) {
			fputs("\\ufffd", f);
			s++;
			continue;
		}
		fwrite(s, 1, n, f);
		s += n;
	}
	fputc('"', f);
}
