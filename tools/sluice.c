/*
 * sluice.c - the `sluice` admin CLI: command-line parsing and dispatch (DESIGN.md
 * section 10). The commands themselves live in cli_status.c, cli_list.c, cli_chain.c,
 * cli_check.c, cli_chunk.c and cli_fsck.c.
 *
 * Command line: `sluice [global options] COMMAND [WORDS...] [options]`, options anywhere
 * (GNU getopt permutes them out of the way). One option table serves every command; each
 * command says which options it accepts and how many positional words it takes, and main
 * rejects anything else with the command's usage line (exit 2) before any RPC is made.
 * Option values are converted only once the command is known, so errors name its usage.
 *
 * Exit status: 0 success, 1 an error (one line on stderr: "sluice: <what>: <error> (<rc>)"),
 * 2 a usage error. `chain check` follows diff(1) instead: 0 identical, 1 differences, 2
 * usage error or trouble.
 *
 * Threads: all work runs on the main thread; the rpc client runs on a reactor thread that
 * the first command needing mgmtd starts (cli_connect) and main stops before exiting.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/limits.h"
#include "sluice_config.h"
#include "tools/cli.h"

struct cmd {
	const char *w1, *w2; /* command words; w2 NULL for a one-word command */
	unsigned nargs;	     /* positional words after the command words */
	unsigned opts;	     /* accepted enum cli_opt bits besides --json */
	int (*fn)(struct cli *c);
	const char *usage; /* after "sluice " */
	const char *help;
};

static const struct cmd cmds[] = {
	{"status", NULL, 0, 0, cli_cmd_status, CLI_USAGE_STATUS,
	 "cluster summary: nodes, targets, chains, health"},
	{"fsck", NULL, 0, 0, cli_cmd_fsck, CLI_USAGE_FSCK,
	 "check the meta server's namespace store (dentries, inodes, link counts, GC queue)"},
	{"node", "list", 0, 0, cli_cmd_node_list, CLI_USAGE_NODE_LIST,
	 "nodes: type, liveness, addresses, heartbeat age"},
	{"target", "list", 0, 0, cli_cmd_target_list, CLI_USAGE_TARGET_LIST,
	 "targets: node, state, chain, usage, path"},
	{"target", "offline", 1, 0, cli_cmd_target_offline, CLI_USAGE_TARGET_OFF,
	 "force a target offline (until its node registers again)"},
	{"chain", "list", 0, 0, cli_cmd_chain_list, CLI_USAGE_CHAIN_LIST,
	 "chains: version, health, members head to tail"},
	{"chain", "set-order", 2, 0, cli_cmd_chain_set_order, CLI_USAGE_CHAIN_ORDER,
	 "reorder a chain's members (same members, new order)"},
	{"chain", "check", 1, 0, cli_cmd_chain_check, CLI_USAGE_CHAIN_CHECK,
	 "compare the chunks of a chain's members (exit 0 same, 1 differences, 2 trouble)"},
	{"chain-table", "gen", 0,
	 CLI_OPT_REPLICAS | CLI_OPT_TABLE | CLI_OPT_SEED | CLI_OPT_DRY_RUN | CLI_OPT_NODES,
	 cli_cmd_table_gen, CLI_USAGE_TABLE_GEN,
	 "build balanced chains from the targets not yet in a chain"},
	{"chain-table", "set", 0, CLI_OPT_TABLE | CLI_OPT_CHAIN, cli_cmd_table_set,
	 CLI_USAGE_TABLE_SET, "set a chain table from explicit chains (C: keeps chain C)"},
	{"chain-table", "show", 0, CLI_OPT_TABLE, cli_cmd_table_show, CLI_USAGE_TABLE_SHOW,
	 "chain tables and their chains in order"},
	{"chunk", "list", 0, CLI_OPT_TARGET | CLI_OPT_NODE_ADDR, cli_cmd_chunk_list,
	 CLI_USAGE_CHUNK_LIST, "the chunks of one storage target: versions, CRCs, blocks"},
	{"chunk", "write", 0,
	 CLI_OPT_TARGET | CLI_OPT_NODE_ADDR | CLI_OPT_INODE | CLI_OPT_INDEX | CLI_OPT_CHUNK_SIZE |
		 CLI_OPT_OFFSET | CLI_OPT_LENGTH | CLI_OPT_FILE | CLI_OPT_PATTERN,
	 cli_cmd_chunk_write, CLI_USAGE_CHUNK_WRITE,
	 "debugging: write to one target alone, not replicated (chain_id 0; a target in a "
	 "chain needs debug.fault_injection)"},
};

/* getopt values of the options without a short form (past any char). */
enum {
	OPT_TARGET = 256,
	OPT_NODE_ADDR,
	OPT_INODE,
	OPT_INDEX,
	OPT_CHUNK_SIZE,
	OPT_OFFSET,
	OPT_LENGTH,
	OPT_FILE,
	OPT_PATTERN,
};

static const struct option long_opts[] = {
	{"mgmtd", required_argument, NULL, 'm'},
	{"timeout", required_argument, NULL, 'T'},
	{"json", no_argument, NULL, 'j'},
	{"replicas", required_argument, NULL, 'r'},
	{"table", required_argument, NULL, 't'},
	{"seed", required_argument, NULL, 's'},
	{"dry-run", no_argument, NULL, 'n'},
	{"nodes", required_argument, NULL, 'N'},
	{"chain", required_argument, NULL, 'c'},
	{"help", no_argument, NULL, 'h'},
	{"version", no_argument, NULL, 'V'},
	{"target", required_argument, NULL, OPT_TARGET},
	{"node-addr", required_argument, NULL, OPT_NODE_ADDR},
	{"inode", required_argument, NULL, OPT_INODE},
	{"index", required_argument, NULL, OPT_INDEX},
	{"chunk-size", required_argument, NULL, OPT_CHUNK_SIZE},
	{"offset", required_argument, NULL, OPT_OFFSET},
	{"length", required_argument, NULL, OPT_LENGTH},
	{"file", required_argument, NULL, OPT_FILE},
	{"pattern", required_argument, NULL, OPT_PATTERN},
	{NULL, 0, NULL, 0},
};

/* Option names by bit, for "option --x does not apply" messages. */
static const char *opt_name(unsigned bit)
{
	switch (bit) {
	case CLI_OPT_JSON:
		return "--json";
	case CLI_OPT_REPLICAS:
		return "--replicas";
	case CLI_OPT_TABLE:
		return "--table";
	case CLI_OPT_SEED:
		return "--seed";
	case CLI_OPT_DRY_RUN:
		return "--dry-run";
	case CLI_OPT_NODES:
		return "--nodes";
	case CLI_OPT_CHAIN:
		return "--chain";
	case CLI_OPT_TARGET:
		return "--target";
	case CLI_OPT_NODE_ADDR:
		return "--node-addr";
	case CLI_OPT_INODE:
		return "--inode";
	case CLI_OPT_INDEX:
		return "--index";
	case CLI_OPT_CHUNK_SIZE:
		return "--chunk-size";
	case CLI_OPT_OFFSET:
		return "--offset";
	case CLI_OPT_LENGTH:
		return "--length";
	case CLI_OPT_FILE:
		return "--file";
	case CLI_OPT_PATTERN:
		return "--pattern";
	}
	return "?";
}

/* Raw option values, converted once the command is known. */
struct raw_opts {
	const char *timeout, *replicas, *table, *seed;
	const char *target, *inode, *index, *chunk_size, *offset, *length;
	bool help, version;
};

static void print_usage(FILE *f)
{
	fprintf(f, "usage: sluice [--mgmtd URI] [--timeout MS] COMMAND [ARGS] [--json]\n\n"
		   "commands:\n");
	for (size_t i = 0; i < SLUICE_ARRAY_SIZE(cmds); i++)
		fprintf(f, "  %s\n      %s\n", cmds[i].usage, cmds[i].help);
	fprintf(f,
		"\nglobal options:\n"
		"  --mgmtd URI    mgmtd address (default: $SLUICE_MGMTD, else %s)\n"
		"  --timeout MS   per-request timeout including retries (default %u)\n"
		"  --json         one JSON object on stdout instead of text\n"
		"  --help, --version\n",
		CLI_DEFAULT_MGMTD, CLI_DEFAULT_TIMEOUT_MS);
}

/* The usage line for usage errors (the full list is for --help). */
static void print_usage_short(void)
{
	fprintf(stderr, "usage: sluice [--mgmtd URI] [--timeout MS] COMMAND [ARGS] [--json]"
			" (sluice --help lists the commands)\n");
}

/* getopt pass: fill c and raw. Returns 0 or an exit status. */
static int parse_opts(int argc, char **argv, struct cli *c, struct raw_opts *raw)
{
	int ch;

	opterr = 0; /* we print our own messages */
	while ((ch = getopt_long(argc, argv, "h", long_opts, NULL)) != -1) {
		switch (ch) {
		case 'm':
			c->mgmtd = optarg;
			break;
		case 'T':
			raw->timeout = optarg;
			break;
		case 'j':
			c->opts_seen |= CLI_OPT_JSON;
			c->json = true;
			break;
		case 'r':
			c->opts_seen |= CLI_OPT_REPLICAS;
			raw->replicas = optarg;
			break;
		case 't':
			c->opts_seen |= CLI_OPT_TABLE;
			raw->table = optarg;
			break;
		case 's':
			c->opts_seen |= CLI_OPT_SEED;
			raw->seed = optarg;
			break;
		case 'n':
			c->opts_seen |= CLI_OPT_DRY_RUN;
			c->dry_run = true;
			break;
		case 'N':
			c->opts_seen |= CLI_OPT_NODES;
			c->nodes = optarg;
			break;
		case 'c':
			c->opts_seen |= CLI_OPT_CHAIN;
			if (c->nchains == CLI_CHAINS_ARG_MAX) {
				fprintf(stderr, "sluice: more than %u --chain options\n",
					CLI_CHAINS_ARG_MAX);
				return CLI_EXIT_USAGE;
			}
			c->chains[c->nchains++] = optarg;
			break;
		case OPT_TARGET:
			c->opts_seen |= CLI_OPT_TARGET;
			raw->target = optarg;
			break;
		case OPT_NODE_ADDR:
			c->opts_seen |= CLI_OPT_NODE_ADDR;
			c->node_addr = optarg;
			break;
		case OPT_INODE:
			c->opts_seen |= CLI_OPT_INODE;
			raw->inode = optarg;
			break;
		case OPT_INDEX:
			c->opts_seen |= CLI_OPT_INDEX;
			raw->index = optarg;
			break;
		case OPT_CHUNK_SIZE:
			c->opts_seen |= CLI_OPT_CHUNK_SIZE;
			raw->chunk_size = optarg;
			break;
		case OPT_OFFSET:
			c->opts_seen |= CLI_OPT_OFFSET;
			raw->offset = optarg;
			break;
		case OPT_LENGTH:
			c->opts_seen |= CLI_OPT_LENGTH;
			raw->length = optarg;
			break;
		case OPT_FILE:
			c->opts_seen |= CLI_OPT_FILE;
			c->file = optarg;
			break;
		case OPT_PATTERN:
			c->opts_seen |= CLI_OPT_PATTERN;
			c->pattern = optarg;
			break;
		case 'h':
			raw->help = true;
			break;
		case 'V':
			raw->version = true;
			break;
		default:
			/* getopt sets optopt for a long option missing its value, not for an
			 * unknown one; short options other than -h do not exist. */
			if (optopt && strncmp(argv[optind - 1], "--", 2) == 0)
				fprintf(stderr, "sluice: option %s needs a value\n",
					argv[optind - 1]);
			else
				fprintf(stderr, "sluice: unknown option %s\n", argv[optind - 1]);
			print_usage_short();
			return CLI_EXIT_USAGE;
		}
	}
	return 0;
}

/* Convert *s (if given) into [min, max]; else a usage error naming opt and expected. */
static int convert_num(const struct cmd *cmd, const char *opt, const char *s, uint64_t min,
		       uint64_t max, const char *expected, uint64_t *out)
{
	if (!s || cli_parse_u64(s, min, max, out) == 0)
		return 0;
	return cli_usage(cmd->usage, "%s: expected %s, got '%s'", opt, expected, s);
}

/* The chunk options (chunk list|write). Returns 0 or an exit status. */
static int convert_chunk_opts(const struct cmd *cmd, const struct raw_opts *raw, struct cli *c)
{
	uint64_t target = 0, inode = 0, index = 0, size = 0, offset = 0, length = 0;
	int status;

	if ((status = convert_num(cmd, "--target", raw->target, 1, UINT64_MAX, "a target id",
				  &target)) ||
	    (status = convert_num(cmd, "--inode", raw->inode, 0, UINT64_MAX, "an inode number",
				  &inode)) ||
	    (status = convert_num(cmd, "--index", raw->index, 0, UINT32_MAX,
				  "a chunk index (0..4294967295)", &index)) ||
	    (status = convert_num(cmd, "--chunk-size", raw->chunk_size, SLUICE_CHUNK_SIZE_MIN,
				  SLUICE_CHUNK_SIZE_MAX, "bytes, 65536..67108864", &size)) ||
	    (status = convert_num(cmd, "--offset", raw->offset, 0, SLUICE_CHUNK_SIZE_MAX - 1,
				  "a byte offset in the chunk", &offset)) ||
	    (status = convert_num(cmd, "--length", raw->length, 1, SLUICE_CHUNK_SIZE_MAX,
				  "bytes, 1..67108864", &length)))
		return status;
	if (c->node_addr && (!c->node_addr[0] || strlen(c->node_addr) >= SLUICE_NET_ADDR_MAX))
		return cli_usage(cmd->usage, "--node-addr: expected a URI like tcp://HOST:PORT");
	c->target_id = target;
	c->inode = inode;
	c->index = (uint32_t)index;
	c->chunk_size = (uint32_t)size;
	c->offset = (uint32_t)offset;
	c->length = (uint32_t)length;
	return 0;
}

/* Convert the option values the command takes. Returns 0 or an exit status. */
static int convert_opts(const struct cmd *cmd, const struct raw_opts *raw, struct cli *c)
{
	unsigned extra = c->opts_seen & ~(cmd->opts | CLI_OPT_JSON);
	uint64_t v;
	int status;

	if (extra)
		return cli_usage(cmd->usage, "option %s does not apply here",
				 opt_name(extra & -extra));
	if (raw->timeout) {
		if (cli_parse_u64(raw->timeout, 1, SLUICE_RPC_DEADLINE_MAX_MS, &v))
			return cli_usage(cmd->usage, "--timeout: expected 1..%u ms, got '%s'",
					 SLUICE_RPC_DEADLINE_MAX_MS, raw->timeout);
		c->timeout_ms = (uint32_t)v;
	}
	if (raw->replicas) {
		if (cli_parse_u64(raw->replicas, 1, SLUICE_CHAIN_LEN_MAX, &v))
			return cli_usage(cmd->usage, "--replicas: expected 1..%d, got '%s'",
					 SLUICE_CHAIN_LEN_MAX, raw->replicas);
		c->replicas = (uint32_t)v;
	}
	if (raw->table) {
		if (cli_parse_u64(raw->table, 1, UINT32_MAX, &v))
			return cli_usage(cmd->usage, "--table: expected a table id, got '%s'",
					 raw->table);
		c->table_id = (uint32_t)v;
	}
	if (raw->seed) {
		if (cli_parse_u64(raw->seed, 0, UINT64_MAX, &v))
			return cli_usage(cmd->usage,
					 "--seed: expected an unsigned number, got '%s'",
					 raw->seed);
		c->seed = v;
	}
	status = convert_chunk_opts(cmd, raw, c);
	if (status)
		return status;
	if (!c->mgmtd[0] || strlen(c->mgmtd) >= SLUICE_NET_ADDR_MAX)
		return cli_usage(cmd->usage, "--mgmtd: expected a URI like %s", CLI_DEFAULT_MGMTD);
	return 0;
}

/* The command named by words[0..nwords), or NULL (after printing why). */
static const struct cmd *find_cmd(char **words, int nwords)
{
	bool family = false;

	for (size_t i = 0; i < SLUICE_ARRAY_SIZE(cmds); i++) {
		const struct cmd *cmd = &cmds[i];

		if (strcmp(words[0], cmd->w1) != 0)
			continue;
		family = true;
		if (!cmd->w2)
			return cmd;
		if (nwords >= 2 && strcmp(words[1], cmd->w2) == 0)
			return cmd;
	}
	if (!family) {
		fprintf(stderr, "sluice: unknown command '%s'\n", words[0]);
		print_usage_short();
		return NULL;
	}
	if (nwords >= 2)
		fprintf(stderr, "sluice: unknown command '%s %s'\n", words[0], words[1]);
	else
		fprintf(stderr, "sluice: %s: missing subcommand\n", words[0]);
	for (size_t i = 0; i < SLUICE_ARRAY_SIZE(cmds); i++)
		if (strcmp(words[0], cmds[i].w1) == 0)
			fprintf(stderr, "%s sluice %s\n",
				i && !strcmp(words[0], cmds[i - 1].w1) ? "      " : "usage:",
				cmds[i].usage);
	return NULL;
}

int cli_connect(struct cli *c)
{
	int rc;

	if (c->rpc)
		return 0;
	rc = cli_rpc_start(c->timeout_ms, &c->rpc);
	if (rc)
		cli_fail(rc, "start rpc client");
	return rc;
}

static struct cli the_cli; /* big (the --chain array): not on the stack */

int main(int argc, char **argv)
{
	struct cli *c = &the_cli;
	struct raw_opts raw = {0};
	const struct cmd *cmd;
	const char *env = getenv("SLUICE_MGMTD");
	int words, status;

	c->mgmtd = env && env[0] ? env : CLI_DEFAULT_MGMTD;
	c->timeout_ms = CLI_DEFAULT_TIMEOUT_MS;
	status = parse_opts(argc, argv, c, &raw);
	if (status)
		return status;
	if (raw.version) {
		printf("sluice %s\n", SLUICE_VERSION);
		return CLI_EXIT_OK;
	}
	words = argc - optind;
	if (raw.help || (words >= 1 && strcmp(argv[optind], "help") == 0)) {
		print_usage(stdout);
		return CLI_EXIT_OK;
	}
	if (words == 0) {
		fprintf(stderr, "sluice: no command given\n");
		print_usage_short();
		return CLI_EXIT_USAGE;
	}
	cmd = find_cmd(argv + optind, words);
	if (!cmd)
		return CLI_EXIT_USAGE;
	words -= cmd->w2 ? 2 : 1;
	if (words != (int)cmd->nargs)
		return cli_usage(cmd->usage, "%s",
				 words < (int)cmd->nargs ? "missing arguments"
							 : "too many arguments");
	c->args = argv + argc - words;
	c->nargs = (unsigned)words;
	status = convert_opts(cmd, &raw, c);
	if (status == 0)
		status = cmd->fn(c);
	cli_rpc_stop(c->rpc);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		cli_fail(-EIO, "write to stdout");
		/* chain check's 1 means "differences": its errors are 2 */
		return cmd->fn == cli_cmd_chain_check ? CLI_EXIT_TROUBLE : CLI_EXIT_ERR;
	}
	return status;
}
