/*
 * cli_chunk.c - `sluice chunk list` and `sluice chunk write`: talk to one storage target
 * directly (proto/storage.proto), for operators and tests; and the LIST_CHUNKS call that
 * `chain check` pages with.
 *
 * The storage node is --node-addr, or else the first address of the target's node in
 * mgmtd's routing table. chunk list pages through LIST_CHUNKS (CLI_LIST_PAGE chunks a call,
 * each page printed as it comes, so memory stays one page). chunk write sends one WRITE
 * with chain_id 0: a local update of that target alone, not replicated. The storage daemon
 * accepts that for a target in a chain only with debug.fault_injection on - which is the
 * point: tests make replicas differ on purpose with it. The data is a file or a text
 * pattern repeated to --length bytes, sent as the request bulk with its CRC32C.
 *
 * Main thread only.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "common/err.h"
#include "tools/cli.h"

int cli_list_chunks(struct cli *c, const char *addr, uint64_t target, bool start_after,
		    uint64_t inode, uint32_t index, struct rpc_result *res)
{
	Sluice__ListChunksReq req = SLUICE__LIST_CHUNKS_REQ__INIT;
	struct rpc_call_opts opts = {.timeout_ms = c->timeout_ms, .retries = -1};

	req.target_id = target;
	req.start_after = start_after;
	req.after_inode = inode;
	req.after_index = index;
	req.limit = CLI_LIST_PAGE;
	return storagec_list_chunks(cli_rpc_client(c->rpc), addr, &req, &opts, res);
}

/*
 * The storage node of c->target_id: --node-addr, else looked up in the routing table (kept
 * in *r, *have_r set: the address points into it). Returns 0 or an exit status (printed).
 */
static int node_addr(struct cli *c, struct cli_routing *r, bool *have_r, const char **addr)
{
	const Sluice__TargetInfo *t;
	const Sluice__NodeInfo *n;
	const char *why = "";

	if (cli_connect(c))
		return CLI_EXIT_ERR;
	if (c->node_addr) {
		*addr = c->node_addr;
		return 0;
	}
	if (cli_routing_fetch(c, r))
		return CLI_EXIT_ERR;
	*have_r = true;
	*addr = cli_target_addr(r, c->target_id, &t, &n, &why);
	if (!*addr)
		return cli_fail(-ENOENT, "target %" PRIu64 ": %s (give --node-addr)", c->target_id,
				why);
	return 0;
}

/* ---- chunk list ------------------------------------------------------------------------- */

static void chunk_json(struct cli_json *j, const Sluice__ChunkMeta *cm)
{
	cli_json_obj(j, NULL);
	cli_json_u64(j, "inode", cm->inode);
	cli_json_u64(j, "index", cm->index);
	cli_json_u64(j, "length", cm->length);
	cli_json_u64(j, "chunk_size", cm->chunk_size);
	cli_json_u64(j, "commit_ver", cm->commit_ver);
	cli_json_u64(j, "update_ver", cm->update_ver);
	cli_json_u64(j, "chain_ver", cm->chain_ver);
	cli_json_u64(j, "crc", cm->crc);
	cli_json_u64(j, "block_size", cm->block_size);
	cli_json_u64(j, "file", cm->file);
	cli_json_u64(j, "block", cm->block);
	cli_json_close(j);
}

static void chunk_text(const Sluice__ChunkMeta *cm)
{
	char id[48];

	snprintf(id, sizeof(id), "%" PRIu64 ":%u", cm->inode, cm->index);
	printf("%-24s %10u %10u %10" PRIu64 " %10" PRIu64 " %9" PRIu64 "  0x%08x  %u/%u/%u\n", id,
	       cm->length, cm->chunk_size, cm->commit_ver, cm->update_ver, cm->chain_ver, cm->crc,
	       cm->block_size, cm->file, cm->block);
}

/* Page through the target's chunks, printing each page. Returns an exit status. */
static int list_pages(struct cli *c, const char *addr, struct cli_json *j, uint64_t *count)
{
	bool after = false, more = true;
	uint64_t inode = 0;
	uint32_t index = 0;

	while (more) {
		struct rpc_result res = {0};
		const Sluice__ListChunksResp *resp;

		if (cli_list_chunks(c, addr, c->target_id, after, inode, index, &res)) {
			int rc = cli_fail_res(&res, "list chunks of target %" PRIu64 " at %s",
					      c->target_id, addr);
			rpc_result_release(&res);
			return rc;
		}
		resp = (const Sluice__ListChunksResp *)(const void *)res.resp;
		for (size_t k = 0; k < resp->n_chunks; k++) {
			if (j)
				chunk_json(j, resp->chunks[k]);
			else
				chunk_text(resp->chunks[k]);
		}
		*count += resp->n_chunks;
		/* An empty page that says more would loop forever: stop there. */
		more = resp->more && resp->n_chunks > 0;
		if (more) {
			after = true;
			inode = resp->chunks[resp->n_chunks - 1]->inode;
			index = resp->chunks[resp->n_chunks - 1]->index;
		}
		rpc_result_release(&res);
	}
	return CLI_EXIT_OK;
}

int cli_cmd_chunk_list(struct cli *c)
{
	struct cli_routing r;
	bool have_r = false;
	const char *addr = NULL;
	struct cli_json j;
	uint64_t count = 0;
	int status;

	if (!(c->opts_seen & CLI_OPT_TARGET))
		return cli_usage(CLI_USAGE_CHUNK_LIST, "--target is required");
	status = node_addr(c, &r, &have_r, &addr);
	if (status)
		goto out;
	if (c->json) {
		cli_json_begin(&j, stdout);
		cli_json_u64(&j, "target", c->target_id);
		cli_json_str(&j, "addr", addr);
		cli_json_arr(&j, "chunks");
		status = list_pages(c, addr, &j, &count);
		cli_json_close(&j);
		cli_json_u64(&j, "count", count);
		cli_json_bool(&j, "complete", status == CLI_EXIT_OK);
		cli_json_end(&j);
	} else {
		printf("%-24s %10s %10s %10s %10s %9s  %-10s  %s\n", "CHUNK", "LENGTH",
		       "CHUNK_SIZE", "COMMIT_VER", "UPDATE_VER", "CHAIN_VER", "CRC",
		       "BLOCK (size/file/block)");
		status = list_pages(c, addr, NULL, &count);
		if (status == CLI_EXIT_OK)
			printf("target %" PRIu64 " at %s: %" PRIu64 " chunks\n", c->target_id, addr,
			       count);
	}
out:
	if (have_r)
		cli_routing_release(&r);
	return status;
}

/* ---- chunk write ------------------------------------------------------------------------ */

static int check_write_args(const struct cli *c)
{
	const unsigned need = CLI_OPT_TARGET | CLI_OPT_INODE | CLI_OPT_INDEX | CLI_OPT_CHUNK_SIZE;
	bool file = c->opts_seen & CLI_OPT_FILE, pattern = c->opts_seen & CLI_OPT_PATTERN;

	if ((c->opts_seen & need) != need)
		return cli_usage(CLI_USAGE_CHUNK_WRITE,
				 "--target, --inode, --index and --chunk-size are required");
	if (file == pattern)
		return cli_usage(CLI_USAGE_CHUNK_WRITE, "give either --file or --pattern");
	if (pattern && !(c->opts_seen & CLI_OPT_LENGTH))
		return cli_usage(CLI_USAGE_CHUNK_WRITE, "--pattern needs --length");
	if (file && (c->opts_seen & CLI_OPT_LENGTH))
		return cli_usage(CLI_USAGE_CHUNK_WRITE, "--length goes with --pattern (a --file "
							"is written whole)");
	if (pattern && !c->pattern[0])
		return cli_usage(CLI_USAGE_CHUNK_WRITE, "--pattern: empty text");
	if (c->chunk_size & (c->chunk_size - 1))
		return cli_usage(CLI_USAGE_CHUNK_WRITE, "--chunk-size: %u is not a power of two",
				 c->chunk_size);
	if (c->offset >= c->chunk_size || (pattern && c->length > c->chunk_size - c->offset))
		return cli_usage(CLI_USAGE_CHUNK_WRITE,
				 "--offset + length must not pass --chunk-size (%u)",
				 c->chunk_size);
	return 0;
}

/* Read c->file whole into a new buffer (at most room bytes). Returns 0 or an exit status. */
static int read_file(const struct cli *c, size_t room, char **out, size_t *len)
{
	struct stat st;
	size_t done = 0;
	char *buf = NULL;
	int fd, rc = 0;

	fd = open(c->file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return cli_fail(-errno, "open %s", c->file);
	if (fstat(fd, &st) != 0) {
		rc = cli_fail(-errno, "stat %s", c->file);
		goto out;
	}
	if (!S_ISREG(st.st_mode) || st.st_size <= 0 || (uint64_t)st.st_size > room) {
		rc = cli_usage(CLI_USAGE_CHUNK_WRITE,
			       "--file %s: need a regular file of 1..%zu bytes (chunk size less "
			       "offset)",
			       c->file, room);
		goto out;
	}
	buf = malloc((size_t)st.st_size);
	if (!buf) {
		rc = cli_fail(-ENOMEM, "read %s", c->file);
		goto out;
	}
	while (done < (size_t)st.st_size) {
		ssize_t k = read(fd, buf + done, (size_t)st.st_size - done);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			rc = cli_fail(k < 0 ? -errno : -EIO, "read %s", c->file);
			free(buf);
			goto out;
		}
		done += (size_t)k;
	}
	*out = buf;
	*len = done;
out:
	close(fd);
	return rc;
}

static int make_data(const struct cli *c, char **out, size_t *len)
{
	size_t plen, n = c->length;
	char *buf;

	if (c->file)
		return read_file(c, c->chunk_size - c->offset, out, len);
	buf = malloc(n);
	if (!buf)
		return cli_fail(-ENOMEM, "chunk write: %u bytes", c->length);
	plen = strlen(c->pattern);
	for (size_t k = 0; k < n; k += plen)
		memcpy(buf + k, c->pattern, n - k < plen ? n - k : plen);
	*out = buf;
	*len = n;
	return 0;
}

static void print_written(const struct cli *c, const char *addr, const Sluice__ChunkMeta *cm)
{
	struct cli_json j;

	if (!c->json) {
		printf("chunk %" PRIu64 ":%u on target %" PRIu64
		       " at %s: length %u, chunk size %u, "
		       "commit_ver %" PRIu64 ", crc 0x%08x\n",
		       cm->inode, cm->index, c->target_id, addr, cm->length, cm->chunk_size,
		       cm->commit_ver, cm->crc);
		return;
	}
	cli_json_begin(&j, stdout);
	cli_json_u64(&j, "target", c->target_id);
	cli_json_str(&j, "addr", addr);
	cli_json_u64(&j, "inode", cm->inode);
	cli_json_u64(&j, "index", cm->index);
	cli_json_u64(&j, "length", cm->length);
	cli_json_u64(&j, "chunk_size", cm->chunk_size);
	cli_json_u64(&j, "commit_ver", cm->commit_ver);
	cli_json_u64(&j, "update_ver", cm->update_ver);
	cli_json_u64(&j, "chain_ver", cm->chain_ver);
	cli_json_u64(&j, "crc", cm->crc);
	cli_json_end(&j);
}

/* One WRITE with chain_id 0 of data to c's chunk. Returns an exit status. */
static int send_write(struct cli *c, const char *addr, char *data, size_t len)
{
	Sluice__ChunkWriteReq req = SLUICE__CHUNK_WRITE_REQ__INIT;
	struct iovec iov = {.iov_base = data, .iov_len = len};
	struct rpc_call_opts opts = {
		.timeout_ms = c->timeout_ms, .retries = -1, .bulk = &iov, .nbulk = 1};
	struct rpc_result res = {0};
	const Sluice__ChunkUpdateResp *resp;
	int status = CLI_EXIT_OK;

	req.target_id = c->target_id;
	req.inode = c->inode;
	req.index = c->index;
	req.chunk_size = c->chunk_size;
	req.offset = c->offset;
	req.length = (uint32_t)len;
	req.data_crc = crc32c(0, data, len);
	req.chain_id = 0; /* local to this target: see the top comment */
	if (storagec_write(cli_rpc_client(c->rpc), addr, &req, &opts, &res)) {
		status =
			cli_fail_res(&res, "write chunk %" PRIu64 ":%u on target %" PRIu64 " at %s",
				     c->inode, c->index, c->target_id, addr);
		goto out;
	}
	resp = (const Sluice__ChunkUpdateResp *)(const void *)res.resp;
	if (!resp->chunk) {
		status = cli_fail(-SLUICE_EPROTO,
				  "write chunk %" PRIu64 ":%u: no chunk in the reply", c->inode,
				  c->index);
		goto out;
	}
	print_written(c, addr, resp->chunk);
out:
	rpc_result_release(&res);
	return status;
}

int cli_cmd_chunk_write(struct cli *c)
{
	struct cli_routing r;
	bool have_r = false;
	const char *addr = NULL;
	char *data = NULL;
	size_t len = 0;
	int status;

	status = check_write_args(c);
	if (status)
		return status;
	status = make_data(c, &data, &len);
	if (status)
		return status;
	status = node_addr(c, &r, &have_r, &addr);
	if (status == 0)
		status = send_write(c, addr, data, len);
	if (have_r)
		cli_routing_release(&r);
	free(data);
	return status;
}
