/*
 * mgmt_state.c - the cluster map (see mgmt_state.h).
 *
 * DESIGN
 * Entities live in arrays sorted by id. Ids are handed out in increasing order and loaded
 * from RocksDB in key order, so appending keeps the arrays sorted and lookups are binary
 * searches. Each entry pairs the protobuf message with mgmtd-private data (the monotonic
 * time of a node's last heartbeat, dirty marks).
 *
 * Messages are built with malloc'd fields only, exactly as protobuf_c_message_unpack
 * builds them, so one free function (protobuf_c_message_free_unpacked) releases both
 * loaded and created entities.
 *
 * Each operation bumps the routing version at most once (touch()): all entities changed
 * by one operation share one updated_version, which makes routing deltas consistent cuts.
 *
 * THREADS: mgmtd's reactor thread only.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/env.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/net/net.h"
#include "mgmtd/chain_rules.h"
#include "mgmtd/mgmt_state.h"

#define ADDRS_MAX	 8
#define TARGETS_PER_NODE 256
#define HOSTNAME_MAX	 255
#define PATH_MAX_LEN	 1024

struct mnode {
	Sluice__NodeInfo *pb;
	uint64_t last_hb_ns;
	bool dirty;
};

struct mtarget {
	Sluice__TargetInfo *pb;
	bool dirty;
};

struct mchain {
	Sluice__ChainInfo *pb;
	bool dirty;
};

struct mtable {
	Sluice__ChainTableInfo *pb;
	bool dirty;
};

#define VEC(T)                 \
	struct {               \
		T *v;          \
		size_t n, cap; \
	}

struct mgmt_state {
	uint32_t heartbeat_ms, lease_ms;
	Sluice__MgmtMeta meta;
	bool meta_dirty;
	bool op_bumped; /* the current operation already bumped the version */
	VEC(struct mnode) nodes;
	VEC(struct mtarget) targets;
	VEC(struct mchain) chains;
	VEC(struct mtable) tables;
};

static int vec_grow(void **v, size_t *cap, size_t need, size_t elem)
{
	size_t ncap = *cap ? *cap * 2 : 16;
	void *nv;

	if (need <= *cap)
		return 0;
	while (ncap < need)
		ncap *= 2;
	nv = realloc(*v, ncap * elem);
	if (!nv)
		return -ENOMEM;
	*v = nv;
	*cap = ncap;
	return 0;
}

#define VEC_PUSH(vec, item)                                                     \
	(vec_grow((void **)&(vec).v, &(vec).cap, (vec).n + 1, sizeof(*(vec).v)) \
		 ? -ENOMEM                                                      \
		 : ((vec).v[(vec).n++] = (item), 0))

static int fail(struct mgmt_err *err, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct mgmt_err *err, int rc, const char *fmt, ...)
{
	va_list ap;

	if (err) {
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		va_end(ap);
	}
	return rc;
}

/* ---- lookups (binary search: arrays are sorted by id) --------------------------------- */

#define DEFINE_FIND(name, type, vecname, idtype)                          \
	static type *name(struct mgmt_state *st, idtype id)               \
	{                                                                 \
		size_t lo = 0, hi = st->vecname.n;                        \
		while (lo < hi) {                                         \
			size_t mid = lo + (hi - lo) / 2;                  \
			if (st->vecname.v[mid].pb->id < id)               \
				lo = mid + 1;                             \
			else                                              \
				hi = mid;                                 \
		}                                                         \
		if (lo < st->vecname.n && st->vecname.v[lo].pb->id == id) \
			return &st->vecname.v[lo];                        \
		return NULL;                                              \
	}

DEFINE_FIND(find_node, struct mnode, nodes, uint32_t)
DEFINE_FIND(find_target, struct mtarget, targets, uint64_t)
DEFINE_FIND(find_chain, struct mchain, chains, uint32_t)
DEFINE_FIND(find_table, struct mtable, tables, uint32_t)

/* ---- versioning -------------------------------------------------------------------------- */

static void op_begin(struct mgmt_state *st)
{
	st->op_bumped = false;
}

/* The version an entity changed by the current operation records. */
static uint64_t touch(struct mgmt_state *st)
{
	if (!st->op_bumped) {
		st->meta.routing_version++;
		st->meta_dirty = true;
		st->op_bumped = true;
	}
	return st->meta.routing_version;
}

static void touch_target(struct mgmt_state *st, struct mtarget *t)
{
	t->pb->updated_version = touch(st);
	t->dirty = true;
}

static void touch_node(struct mgmt_state *st, struct mnode *n)
{
	n->pb->updated_version = touch(st);
	n->dirty = true;
}

static void touch_chain(struct mgmt_state *st, struct mchain *c)
{
	c->pb->updated_version = touch(st);
	c->dirty = true;
}

/* ---- chain evaluation ------------------------------------------------------------------- */

/* Public state of a target in no chain: it mirrors what the node says. */
static void eval_unchained(struct mgmt_state *st, struct mtarget *t)
{
	Sluice__TargetState s = chain_rules_initial(t->pb->local_state);

	if (t->pb->state != s) {
		t->pb->state = s;
		touch_target(st, t);
	}
}

/* Re-apply the chain rules after members' local states changed. */
static void eval_chain(struct mgmt_state *st, struct mchain *c)
{
	struct chain_member m[SLUICE_CHAIN_LEN_MAX];
	size_t n = c->pb->n_targets;

	ASSERT(n <= SLUICE_CHAIN_LEN_MAX);
	for (size_t i = 0; i < n; i++) {
		struct mtarget *t = find_target(st, c->pb->targets[i]);

		ASSERT(t); /* chains only ever reference existing targets */
		m[i] = (struct chain_member){t->pb->id, t->pb->state, t->pb->local_state};
	}
	if (!chain_rules_apply(m, (unsigned)n))
		return;
	for (size_t i = 0; i < n; i++) {
		struct mtarget *t = find_target(st, m[i].target_id);

		c->pb->targets[i] = m[i].target_id;
		if (t->pb->state != m[i].state) {
			t->pb->state = m[i].state;
			touch_target(st, t);
		}
	}
	c->pb->version++;
	touch_chain(st, c);
}

/*
 * Record a target's local state and re-apply its chain's rules - even when the state did
 * not change: a member promoted to syncing while it already reported up-to-date moves on
 * at its next report, not never.
 */
static void set_local(struct mgmt_state *st, struct mtarget *t, Sluice__LocalState ls)
{
	if (t->pb->admin_offline)
		ls = SLUICE__LOCAL_STATE__LS_OFFLINE;
	if (t->pb->local_state != ls) {
		t->pb->local_state = ls;
		touch_target(st, t);
	}
	if (t->pb->chain_id) {
		struct mchain *c = find_chain(st, t->pb->chain_id);

		ASSERT(c);
		eval_chain(st, c);
	} else {
		eval_unchained(st, t);
	}
}

static void node_targets_local(struct mgmt_state *st, uint32_t node_id, Sluice__LocalState ls)
{
	for (size_t i = 0; i < st->targets.n; i++)
		if (st->targets.v[i].pb->node_id == node_id)
			set_local(st, &st->targets.v[i], ls);
}

/* ---- lifecycle ----------------------------------------------------------------------------- */

int mgmt_state_create(uint32_t heartbeat_ms, uint32_t lease_ms, struct mgmt_state **out)
{
	struct mgmt_state *st = calloc(1, sizeof(*st));

	if (!st)
		return -ENOMEM;
	st->heartbeat_ms = heartbeat_ms;
	st->lease_ms = lease_ms;
	sluice__mgmt_meta__init(&st->meta);
	st->meta.next_node_id = 1;
	st->meta.next_target_id = 1;
	st->meta.next_chain_id = 1;
	st->meta.next_table_id = 1;
	st->meta_dirty = true;
	*out = st;
	return 0;
}

void mgmt_state_destroy(struct mgmt_state *st)
{
	if (!st)
		return;
	for (size_t i = 0; i < st->nodes.n; i++)
		protobuf_c_message_free_unpacked(&st->nodes.v[i].pb->base, NULL);
	for (size_t i = 0; i < st->targets.n; i++)
		protobuf_c_message_free_unpacked(&st->targets.v[i].pb->base, NULL);
	for (size_t i = 0; i < st->chains.n; i++)
		protobuf_c_message_free_unpacked(&st->chains.v[i].pb->base, NULL);
	for (size_t i = 0; i < st->tables.n; i++)
		protobuf_c_message_free_unpacked(&st->tables.v[i].pb->base, NULL);
	free(st->nodes.v);
	free(st->targets.v);
	free(st->chains.v);
	free(st->tables.v);
	free(st);
}

uint64_t mgmt_state_version(const struct mgmt_state *st)
{
	return st->meta.routing_version;
}

/* ---- persistence --------------------------------------------------------------------------- */

/* Keys: one letter, then the id big-endian so a scan returns ids in order. */
enum { KEY_META = 'm', KEY_NODE = 'n', KEY_TARGET = 't', KEY_CHAIN = 'c', KEY_TABLE = 'T' };

static size_t make_key(uint8_t *k, char kind, uint64_t id)
{
	k[0] = (uint8_t)kind;
	for (int i = 0; i < 8; i++)
		k[1 + i] = (uint8_t)(id >> (56 - 8 * i));
	return 9;
}

static int put_msg(struct kv_batch *b, char kind, uint64_t id, const ProtobufCMessage *m)
{
	uint8_t key[9], stackbuf[512], *buf = stackbuf;
	size_t len = protobuf_c_message_get_packed_size(m);

	if (len > sizeof(stackbuf)) {
		buf = malloc(len);
		if (!buf)
			return -ENOMEM;
	}
	protobuf_c_message_pack(m, buf);
	kv_batch_put(b, key, make_key(key, kind, id), buf, len);
	if (buf != stackbuf)
		free(buf);
	return 0;
}

int mgmt_state_collect(struct mgmt_state *st, struct kv_batch *b)
{
	int n = 0, rc = 0;

#define COLLECT(vec, kind)                                                          \
	for (size_t i = 0; i < st->vec.n && rc == 0; i++) {                         \
		if (!st->vec.v[i].dirty)                                            \
			continue;                                                   \
		rc = put_msg(b, kind, st->vec.v[i].pb->id, &st->vec.v[i].pb->base); \
		st->vec.v[i].dirty = false;                                         \
		n++;                                                                \
	}
	COLLECT(nodes, KEY_NODE)
	COLLECT(targets, KEY_TARGET)
	COLLECT(chains, KEY_CHAIN)
	COLLECT(tables, KEY_TABLE)
#undef COLLECT
	if (rc == 0 && (st->meta_dirty || n > 0)) {
		rc = put_msg(b, KEY_META, 0, &st->meta.base);
		st->meta_dirty = false;
		n++;
	}
	return rc ? rc : n;
}

struct load_ctx {
	struct mgmt_state *st;
	uint64_t now_ns;
	struct mgmt_err *err;
};

static int load_one(const void *k, size_t klen, const void *v, size_t vlen, void *arg)
{
	struct load_ctx *lc = arg;
	struct mgmt_state *st = lc->st;
	const uint8_t *key = k;
	int rc = -EIO;

	if (klen != 9)
		return fail(lc->err, -EIO, "unexpected key of %zu bytes", klen);
	switch (key[0]) {
	case KEY_META: {
		Sluice__MgmtMeta *m = sluice__mgmt_meta__unpack(NULL, vlen, v);

		if (m) {
			st->meta = *m; /* no pointer fields: a shallow copy is whole */
			sluice__mgmt_meta__free_unpacked(m, NULL);
			rc = 0;
		}
		break;
	}
	case KEY_NODE: {
		struct mnode n = {.pb = sluice__node_info__unpack(NULL, vlen, v)};

		n.last_hb_ns =
			lc->now_ns; /* a fresh lease: nobody could heartbeat while we were down */
		rc = n.pb ? VEC_PUSH(st->nodes, n) : -EIO;
		break;
	}
	case KEY_TARGET: {
		struct mtarget t = {.pb = sluice__target_info__unpack(NULL, vlen, v)};

		rc = t.pb ? VEC_PUSH(st->targets, t) : -EIO;
		break;
	}
	case KEY_CHAIN: {
		struct mchain c = {.pb = sluice__chain_info__unpack(NULL, vlen, v)};

		rc = c.pb ? VEC_PUSH(st->chains, c) : -EIO;
		break;
	}
	case KEY_TABLE: {
		struct mtable t = {.pb = sluice__chain_table_info__unpack(NULL, vlen, v)};

		rc = t.pb ? VEC_PUSH(st->tables, t) : -EIO;
		break;
	}
	default:
		return fail(lc->err, -EIO, "unknown key kind '%c'", key[0]);
	}
	if (rc)
		return fail(lc->err, rc, "record '%c' does not decode", key[0]);
	return 0;
}

int mgmt_state_load(struct mgmt_state *st, struct kv *kv, uint64_t now_ns, struct mgmt_err *err)
{
	struct load_ctx lc = {st, now_ns, err};
	int rc = kv_scan(kv, "", 0, load_one, &lc);

	if (rc == -EIO && err && !err->msg[0])
		kv_last_error(kv, err->msg, sizeof(err->msg));
	if (rc == 0)
		st->meta_dirty = false;
	return rc;
}

/* ---- register -------------------------------------------------------------------------------- */

static char *dup_str(const char *s)
{
	return strdup(s ? s : "");
}

static void free_strv(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static int validate_register(struct mgmt_state *st, const Sluice__RegisterReq *req,
			     struct mgmt_err *err)
{
	struct net_addr a;

	if (req->type == SLUICE__NODE_TYPE__NODE_UNKNOWN ||
	    req->type > SLUICE__NODE_TYPE__NODE_CLIENT)
		return fail(err, -EINVAL, "unknown node type %d", req->type);
	if (req->n_addrs == 0 || req->n_addrs > ADDRS_MAX)
		return fail(err, -EINVAL, "a node needs 1 to %d addresses, got %zu", ADDRS_MAX,
			    req->n_addrs);
	for (size_t i = 0; i < req->n_addrs; i++)
		if (net_addr_parse(req->addrs[i], &a) != 0)
			return fail(err, -EINVAL, "bad address '%.64s'", req->addrs[i]);
	if (strlen(req->hostname) > HOSTNAME_MAX)
		return fail(err, -EINVAL, "hostname longer than %d bytes", HOSTNAME_MAX);
	if (req->n_targets > TARGETS_PER_NODE)
		return fail(err, -EINVAL, "%zu targets (max %d)", req->n_targets, TARGETS_PER_NODE);
	if (req->node_id) {
		struct mnode *n = find_node(st, req->node_id);

		if (!n)
			return fail(err, -ENOENT, "unknown node id %u", req->node_id);
		if (n->pb->type != req->type)
			return fail(err, -EINVAL, "node %u registered as type %d, not %d",
				    req->node_id, n->pb->type, req->type);
	}
	for (size_t i = 0; i < req->n_targets; i++) {
		const Sluice__TargetReg *tr = req->targets[i];

		if (!tr->path[0] || strlen(tr->path) > PATH_MAX_LEN)
			return fail(err, -EINVAL, "target %zu: path empty or too long", i);
		for (size_t j = 0; j < i; j++)
			if (strcmp(req->targets[j]->path, tr->path) == 0 ||
			    (tr->id && req->targets[j]->id == tr->id))
				return fail(err, -EINVAL, "target '%.64s' listed twice", tr->path);
		if (tr->id) {
			struct mtarget *t = find_target(st, tr->id);

			if (!t)
				return fail(err, -ENOENT, "unknown target id %llu",
					    (unsigned long long)tr->id);
			if (t->pb->node_id != req->node_id)
				return fail(err, -EPERM, "target %llu belongs to node %u",
					    (unsigned long long)tr->id, t->pb->node_id);
		}
	}
	return 0;
}

static int new_target(struct mgmt_state *st, uint32_t node_id, const Sluice__TargetReg *tr,
		      uint64_t *id_out)
{
	struct mtarget t = {.pb = malloc(sizeof(*t.pb))};

	if (!t.pb)
		return -ENOMEM;
	sluice__target_info__init(t.pb);
	t.pb->id = st->meta.next_target_id++;
	t.pb->node_id = node_id;
	t.pb->path = dup_str(tr->path);
	t.pb->capacity_bytes = tr->capacity_bytes;
	t.pb->state = SLUICE__TARGET_STATE__TS_OFFLINE;
	t.pb->local_state = SLUICE__LOCAL_STATE__LS_OFFLINE;
	if (!t.pb->path || VEC_PUSH(st->targets, t)) {
		protobuf_c_message_free_unpacked(&t.pb->base, NULL);
		return -ENOMEM;
	}
	touch_target(st, &st->targets.v[st->targets.n - 1]);
	*id_out = t.pb->id;
	return 0;
}

static int new_node(struct mgmt_state *st, Sluice__NodeType type, struct mnode **out)
{
	struct mnode n = {.pb = malloc(sizeof(*n.pb))};

	if (!n.pb)
		return -ENOMEM;
	sluice__node_info__init(n.pb);
	n.pb->id = st->meta.next_node_id++;
	n.pb->type = type;
	n.pb->hostname = dup_str("");
	if (!n.pb->hostname || VEC_PUSH(st->nodes, n)) {
		protobuf_c_message_free_unpacked(&n.pb->base, NULL);
		return -ENOMEM;
	}
	*out = &st->nodes.v[st->nodes.n - 1];
	return 0;
}

/* Replace a node's addresses and hostname with the request's. */
static int node_set_identity(struct mnode *n, const Sluice__RegisterReq *req)
{
	char **addrs = calloc(req->n_addrs, sizeof(*addrs));
	char *host = dup_str(req->hostname);

	for (size_t i = 0; addrs && i < req->n_addrs; i++)
		addrs[i] = dup_str(req->addrs[i]);
	for (size_t i = 0; addrs && i < req->n_addrs; i++) {
		if (!addrs[i]) {
			free_strv(addrs, req->n_addrs);
			addrs = NULL;
		}
	}
	if (!addrs || !host) {
		free(addrs);
		free(host);
		return -ENOMEM;
	}
	free_strv(n->pb->addrs, n->pb->n_addrs);
	if (n->pb->hostname != protobuf_c_empty_string)
		free(n->pb->hostname);
	n->pb->addrs = addrs;
	n->pb->n_addrs = req->n_addrs;
	n->pb->hostname = host;
	return 0;
}

int mgmt_register(struct mgmt_state *st, const Sluice__RegisterReq *req, uint64_t now_ns,
		  Sluice__RegisterResp *resp, struct mgmt_err *err)
{
	struct mnode *n;
	uint64_t *ids;
	int rc = validate_register(st, req, err);

	if (rc)
		return rc;
	ids = calloc(req->n_targets ? req->n_targets : 1, sizeof(*ids));
	if (!ids)
		return -ENOMEM;
	op_begin(st);
	if (req->node_id) {
		n = find_node(st, req->node_id);
		/* A new incarnation: whatever its targets served may be stale now. */
		node_targets_local(st, n->pb->id, SLUICE__LOCAL_STATE__LS_OFFLINE);
		for (size_t i = 0; i < st->targets.n; i++) {
			struct mtarget *t = &st->targets.v[i];

			if (t->pb->node_id == n->pb->id && t->pb->admin_offline) {
				t->pb->admin_offline =
					false; /* a re-registration ends the override */
				touch_target(st, t);
			}
		}
	} else {
		rc = new_node(st, req->type, &n);
		if (rc)
			goto out;
	}
	rc = node_set_identity(n, req);
	if (rc)
		goto out;
	n->pb->incarnation++;
	n->pb->alive = true;
	n->pb->last_heartbeat_ms = env_wall_ns() / ENV_NS_PER_MS;
	n->last_hb_ns = now_ns;
	touch_node(st, n);
	for (size_t i = 0; i < req->n_targets && rc == 0; i++) {
		ids[i] = req->targets[i]->id;
		if (!ids[i])
			rc = new_target(st, n->pb->id, req->targets[i], &ids[i]);
		else
			find_target(st, ids[i])->pb->capacity_bytes =
				req->targets[i]->capacity_bytes;
	}
	if (rc)
		goto out;
	sluice__register_resp__init(resp);
	resp->node_id = n->pb->id;
	resp->target_ids = ids;
	resp->n_target_ids = req->n_targets;
	resp->incarnation = n->pb->incarnation;
	resp->heartbeat_ms = st->heartbeat_ms;
	resp->lease_ms = st->lease_ms;
	resp->routing_version = st->meta.routing_version;
	return 0;
out:
	free(ids);
	return fail(err, rc, "out of memory registering a node");
}

void mgmt_register_resp_release(Sluice__RegisterResp *resp)
{
	free(resp->target_ids);
	resp->target_ids = NULL;
}

/* ---- heartbeat and leases ---------------------------------------------------------------- */

int mgmt_heartbeat(struct mgmt_state *st, const Sluice__HeartbeatReq *req, uint64_t now_ns,
		   Sluice__HeartbeatResp *resp, struct mgmt_err *err)
{
	struct mnode *n = find_node(st, req->node_id);

	if (!n)
		return fail(err, -ENOENT, "heartbeat from unknown node %u", req->node_id);
	if (!n->pb->alive || req->incarnation != n->pb->incarnation)
		return fail(err, -SLUICE_ESTALE_LEASE,
			    "heartbeat from node %u incarnation %llu: lease %s", req->node_id,
			    (unsigned long long)req->incarnation,
			    n->pb->alive ? "belongs to a newer incarnation" : "expired");
	for (size_t i = 0; i < req->n_targets; i++) {
		const Sluice__TargetReport *r = req->targets[i];
		struct mtarget *t = find_target(st, r->id);

		if (!t || t->pb->node_id != n->pb->id)
			return fail(err, -EINVAL, "node %u reports target %llu it does not own",
				    n->pb->id, (unsigned long long)r->id);
		if (r->local_state > SLUICE__LOCAL_STATE__LS_UPTODATE)
			return fail(err, -EINVAL, "target %llu: bad local state %d",
				    (unsigned long long)r->id, r->local_state);
	}
	op_begin(st);
	n->last_hb_ns = now_ns;
	n->pb->last_heartbeat_ms = env_wall_ns() / ENV_NS_PER_MS;
	for (size_t i = 0; i < req->n_targets; i++) {
		const Sluice__TargetReport *r = req->targets[i];
		struct mtarget *t = find_target(st, r->id);

		/* Usage and progress are informational: kept, not versioned. */
		t->pb->used_bytes = r->used_bytes;
		if (r->capacity_bytes)
			t->pb->capacity_bytes = r->capacity_bytes;
		t->pb->sync_done = r->sync_done;
		t->pb->sync_total = r->sync_total;
		t->pb->sync_bytes_done = r->sync_bytes_done;
		t->pb->sync_bytes_total = r->sync_bytes_total;
		set_local(st, t, r->local_state);
	}
	sluice__heartbeat_resp__init(resp);
	resp->routing_version = st->meta.routing_version;
	resp->lease_ms = st->lease_ms;
	return 0;
}

unsigned mgmt_expire(struct mgmt_state *st, uint64_t now_ns)
{
	unsigned expired = 0;

	op_begin(st);
	for (size_t i = 0; i < st->nodes.n; i++) {
		struct mnode *n = &st->nodes.v[i];

		if (!n->pb->alive ||
		    now_ns - n->last_hb_ns < (uint64_t)st->lease_ms * ENV_NS_PER_MS)
			continue;
		n->pb->alive = false;
		touch_node(st, n);
		node_targets_local(st, n->pb->id, SLUICE__LOCAL_STATE__LS_OFFLINE);
		expired++;
	}
	return expired;
}

void mgmt_refresh_leases(struct mgmt_state *st, uint64_t now_ns)
{
	for (size_t i = 0; i < st->nodes.n; i++)
		st->nodes.v[i].last_hb_ns = now_ns;
}

/* ---- chain tables and admin overrides ------------------------------------------------------ */

static int validate_chain_spec(struct mgmt_state *st, const Sluice__ChainSpec *cs,
			       const Sluice__SetChainTableReq *req, size_t idx,
			       struct mgmt_err *err)
{
	if (cs->id) {
		struct mchain *c = find_chain(st, cs->id);

		if (!c)
			return fail(err, -ENOENT, "unknown chain %u", cs->id);
		if (cs->n_targets == 0)
			return 0; /* keep it as it is */
		if (cs->n_targets != c->pb->n_targets)
			return fail(err, -EINVAL, "chain %u: members cannot be changed here",
				    cs->id);
		for (size_t i = 0; i < cs->n_targets; i++) {
			struct mtarget *t = find_target(st, cs->targets[i]);

			if (!t || t->pb->chain_id != cs->id)
				return fail(err, -EINVAL,
					    "chain %u: members cannot be changed here", cs->id);
		}
		return 0;
	}
	if (cs->n_targets == 0 || cs->n_targets > SLUICE_CHAIN_LEN_MAX)
		return fail(err, -EINVAL, "chain %zu: %zu targets (1 to %d allowed)", idx,
			    cs->n_targets, SLUICE_CHAIN_LEN_MAX);
	for (size_t i = 0; i < cs->n_targets; i++) {
		struct mtarget *t = find_target(st, cs->targets[i]);

		if (!t)
			return fail(err, -ENOENT, "chain %zu: unknown target %llu", idx,
				    (unsigned long long)cs->targets[i]);
		if (t->pb->chain_id)
			return fail(err, -EBUSY, "target %llu is already in chain %u",
				    (unsigned long long)t->pb->id, t->pb->chain_id);
		for (size_t j = 0; j < i; j++) {
			struct mtarget *u = find_target(st, cs->targets[j]);

			if (u == t)
				return fail(err, -EINVAL, "chain %zu: target %llu twice", idx,
					    (unsigned long long)t->pb->id);
			if (u->pb->node_id == t->pb->node_id)
				return fail(err, -EINVAL,
					    "chain %zu: targets %llu and %llu are both on node %u",
					    idx, (unsigned long long)u->pb->id,
					    (unsigned long long)t->pb->id, t->pb->node_id);
		}
		/* ...and not claimed by an earlier new chain of the same request */
		for (size_t k = 0; k < idx; k++)
			for (size_t j = 0; !req->chains[k]->id && j < req->chains[k]->n_targets;
			     j++)
				if (req->chains[k]->targets[j] == t->pb->id)
					return fail(err, -EINVAL,
						    "target %llu in chains %zu and %zu",
						    (unsigned long long)t->pb->id, k, idx);
	}
	return 0;
}

static int new_chain(struct mgmt_state *st, const Sluice__ChainSpec *cs, uint32_t *id_out)
{
	struct mchain c = {.pb = malloc(sizeof(*c.pb))};

	if (!c.pb)
		return -ENOMEM;
	sluice__chain_info__init(c.pb);
	c.pb->targets = malloc(cs->n_targets * sizeof(uint64_t));
	if (!c.pb->targets || VEC_PUSH(st->chains, c)) {
		protobuf_c_message_free_unpacked(&c.pb->base, NULL);
		return -ENOMEM;
	}
	c.pb->id = st->meta.next_chain_id++;
	c.pb->version = 1;
	c.pb->n_targets = cs->n_targets;
	memcpy(c.pb->targets, cs->targets, cs->n_targets * sizeof(uint64_t));
	for (size_t i = 0; i < cs->n_targets; i++) {
		struct mtarget *t = find_target(st, cs->targets[i]);

		t->pb->chain_id = c.pb->id;
		t->pb->state = chain_rules_initial(t->pb->local_state);
		touch_target(st, t);
	}
	touch_chain(st, &st->chains.v[st->chains.n - 1]);
	eval_chain(st, &st->chains.v[st->chains.n - 1]); /* e.g. offline members to the end */
	*id_out = c.pb->id;
	return 0;
}

static int table_for(struct mgmt_state *st, uint32_t id, struct mtable **out)
{
	struct mtable t;

	if (id) {
		*out = find_table(st, id);
		if (*out)
			return 0;
		if (id < st->meta.next_table_id)
			return -ENOENT; /* ids are never reused out of order */
	}
	t.pb = malloc(sizeof(*t.pb));
	if (!t.pb)
		return -ENOMEM;
	sluice__chain_table_info__init(t.pb);
	t.pb->id = id ? id : st->meta.next_table_id;
	t.dirty = true;
	if (VEC_PUSH(st->tables, t)) {
		free(t.pb);
		return -ENOMEM;
	}
	st->meta.next_table_id = t.pb->id + 1;
	*out = &st->tables.v[st->tables.n - 1];
	return 0;
}

int mgmt_set_chain_table(struct mgmt_state *st, const Sluice__SetChainTableReq *req,
			 Sluice__SetChainTableResp *resp, struct mgmt_err *err)
{
	struct mtable *tab;
	uint32_t *ids;
	int rc = 0;

	if (req->n_chains == 0 || req->n_chains > 65536)
		return fail(err, -EINVAL, "a chain table needs 1 to 65536 chains");
	if (req->table_id && !find_table(st, req->table_id) &&
	    req->table_id < st->meta.next_table_id)
		return fail(err, -ENOENT, "unknown chain table %u", req->table_id);
	for (size_t i = 0; i < req->n_chains && rc == 0; i++)
		rc = validate_chain_spec(st, req->chains[i], req, i, err);
	if (rc)
		return rc;
	ids = malloc(req->n_chains * sizeof(*ids));
	if (!ids)
		return fail(err, -ENOMEM, "out of memory");
	op_begin(st);
	rc = table_for(st, req->table_id, &tab);
	for (size_t i = 0; i < req->n_chains && rc == 0; i++) {
		ids[i] = req->chains[i]->id;
		if (!ids[i])
			rc = new_chain(st, req->chains[i], &ids[i]);
	}
	if (rc) {
		free(ids);
		return fail(err, rc, "out of memory");
	}
	free(tab->pb->chains);
	tab->pb->chains = malloc(req->n_chains * sizeof(uint32_t));
	ASSERT(tab->pb->chains); /* small; a failure here would leave a half-made table */
	memcpy(tab->pb->chains, ids, req->n_chains * sizeof(uint32_t));
	tab->pb->n_chains = req->n_chains;
	tab->pb->version++;
	tab->pb->updated_version = touch(st);
	tab->dirty = true;
	sluice__set_chain_table_resp__init(resp);
	resp->table_id = tab->pb->id;
	resp->chain_ids = ids;
	resp->n_chain_ids = req->n_chains;
	resp->routing_version = st->meta.routing_version;
	return 0;
}

void mgmt_set_chain_table_resp_release(Sluice__SetChainTableResp *resp)
{
	free(resp->chain_ids);
	resp->chain_ids = NULL;
}

int mgmt_target_offline(struct mgmt_state *st, uint64_t target_id, struct mgmt_err *err)
{
	struct mtarget *t = find_target(st, target_id);

	if (!t)
		return fail(err, -ENOENT, "unknown target %llu", (unsigned long long)target_id);
	op_begin(st);
	if (!t->pb->admin_offline) {
		t->pb->admin_offline = true;
		touch_target(st, t);
	}
	set_local(st, t, SLUICE__LOCAL_STATE__LS_OFFLINE);
	return 0;
}

int mgmt_chain_set_order(struct mgmt_state *st, const Sluice__ChainSetOrderReq *req,
			 struct mgmt_err *err)
{
	struct mchain *c = find_chain(st, req->chain_id);

	if (!c)
		return fail(err, -ENOENT, "unknown chain %u", req->chain_id);
	if (req->n_targets != c->pb->n_targets)
		return fail(err, -EINVAL, "chain %u has %zu members, order lists %zu", c->pb->id,
			    c->pb->n_targets, req->n_targets);
	for (size_t i = 0; i < req->n_targets; i++) {
		struct mtarget *t = find_target(st, req->targets[i]);

		if (!t || t->pb->chain_id != c->pb->id)
			return fail(err, -EINVAL, "target %llu is not in chain %u",
				    (unsigned long long)req->targets[i], c->pb->id);
		for (size_t j = 0; j < i; j++)
			if (req->targets[j] == req->targets[i])
				return fail(err, -EINVAL, "target %llu listed twice",
					    (unsigned long long)req->targets[i]);
	}
	if (memcmp(c->pb->targets, req->targets, req->n_targets * sizeof(uint64_t)) == 0)
		return 0;
	op_begin(st);
	memcpy(c->pb->targets, req->targets, req->n_targets * sizeof(uint64_t));
	c->pb->version++;
	touch_chain(st, c);
	eval_chain(st, c); /* states still group the order: serving first */
	return 0;
}

/* ---- routing ---------------------------------------------------------------------------- */

#define SELECT(vec, field, nfield, type)                                          \
	do {                                                                      \
		rt->field = malloc((st->vec.n ? st->vec.n : 1) * sizeof(type *)); \
		if (!rt->field)                                                   \
			goto nomem;                                               \
		for (size_t i = 0; i < st->vec.n; i++)                            \
			if (full || st->vec.v[i].pb->updated_version > since)     \
				rt->field[rt->nfield++] = st->vec.v[i].pb;        \
	} while (0)

int mgmt_routing(struct mgmt_state *st, uint64_t since, Sluice__RoutingTable *rt)
{
	bool full = since == 0 || since > st->meta.routing_version;

	sluice__routing_table__init(rt);
	rt->version = st->meta.routing_version;
	rt->full = full;
	rt->since_version = full ? 0 : since;
	SELECT(nodes, nodes, n_nodes, Sluice__NodeInfo);
	SELECT(targets, targets, n_targets, Sluice__TargetInfo);
	SELECT(chains, chains, n_chains, Sluice__ChainInfo);
	SELECT(tables, tables, n_tables, Sluice__ChainTableInfo);
	return 0;
nomem:
	mgmt_routing_release(rt);
	return -ENOMEM;
}

void mgmt_routing_release(Sluice__RoutingTable *rt)
{
	free(rt->nodes);
	free(rt->targets);
	free(rt->chains);
	free(rt->tables);
	rt->nodes = NULL;
	rt->targets = NULL;
	rt->chains = NULL;
	rt->tables = NULL;
}
