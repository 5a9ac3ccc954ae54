/*
 * net.c - transport registry, address parsing and the backend-independent entry points.
 *
 * Backends register their ops table once at startup (net_register_builtin does it for the
 * ones compiled in); after that the table is only read, so lookups take no lock. Address
 * parsing is strict: the whole URI must be consumed, ports are 0-65535, hosts are numeric
 * IPv4, bracketed IPv6 or "localhost" (name resolution would block the reactor).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/net/net.h"
#include "sluice_config.h"

static const struct net_ops *backends[SLUICE_NET_BACKENDS_MAX];

int net_register(const struct net_ops *ops)
{
	for (unsigned i = 0; i < SLUICE_NET_BACKENDS_MAX; i++) {
		if (backends[i] && strcmp(backends[i]->scheme, ops->scheme) == 0)
			return backends[i] == ops ? 0 : -EEXIST;
		if (!backends[i]) {
			backends[i] = ops;
			return 0;
		}
	}
	return -ENOSPC;
}

void net_register_builtin(void)
{
	int rc = net_register(&net_tcp_ops);

	ASSERT(rc == 0);
}

const struct net_ops *net_ops_for(const char *scheme)
{
	for (unsigned i = 0; i < SLUICE_NET_BACKENDS_MAX && backends[i]; i++)
		if (strcmp(backends[i]->scheme, scheme) == 0)
			return backends[i];
	return NULL;
}

static int parse_port(const char *s, uint16_t *out)
{
	unsigned long v = 0;

	if (!*s || strlen(s) > 5)
		return -EINVAL;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		v = v * 10 + (unsigned long)(*p - '0');
	}
	if (v > 65535)
		return -EINVAL;
	*out = (uint16_t)v;
	return 0;
}

static bool host_valid(const char *host, bool bracketed)
{
	unsigned char tmp[sizeof(struct in6_addr)];

	if (bracketed)
		return inet_pton(AF_INET6, host, tmp) == 1;
	return strcmp(host, "localhost") == 0 || inet_pton(AF_INET, host, tmp) == 1;
}

int net_addr_parse(const char *uri, struct net_addr *out)
{
	struct net_addr a;
	const char *sep, *host, *colon;
	size_t scheme_len, host_len;
	bool bracketed = false;

	memset(&a, 0, sizeof(a));
	if (!uri || strlen(uri) >= SLUICE_NET_ADDR_MAX)
		return -EINVAL;
	sep = strstr(uri, "://");
	if (!sep)
		return -EINVAL;
	scheme_len = (size_t)(sep - uri);
	if (scheme_len == 0 || scheme_len >= sizeof(a.scheme))
		return -EINVAL;
	memcpy(a.scheme, uri, scheme_len);
	host = sep + 3;
	if (*host == '[') {
		const char *end = strchr(host, ']');

		if (!end || end[1] != ':')
			return -EINVAL;
		bracketed = true;
		host_len = (size_t)(end - host - 1);
		host++;
		colon = end + 1;
	} else {
		colon = strrchr(host, ':');
		if (!colon)
			return -EINVAL;
		host_len = (size_t)(colon - host);
	}
	if (host_len == 0 || host_len >= sizeof(a.host))
		return -EINVAL;
	memcpy(a.host, host, host_len);
	if (!host_valid(a.host, bracketed) || parse_port(colon + 1, &a.port) != 0)
		return -EINVAL;
	*out = a;
	return 0;
}

int net_addr_format(const struct net_addr *a, char *buf, size_t len)
{
	bool v6 = strchr(a->host, ':') != NULL;
	int n = snprintf(buf, len, v6 ? "%s://[%s]:%u" : "%s://%s:%u", a->scheme, a->host,
			 (unsigned)a->port);

	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	return n;
}

static int resolve(const char *uri, struct net_addr *a, const struct net_ops **ops)
{
	int rc = net_addr_parse(uri, a);

	if (rc)
		return rc;
	*ops = net_ops_for(a->scheme);
	return *ops ? 0 : -EPROTONOSUPPORT;
}

int net_listen(struct reactor *r, const char *uri, const struct net_listen_cfg *cfg,
	       void (*on_accept)(struct net_listener *l, struct net_conn *c, void *arg), void *arg,
	       struct net_listener **out)
{
	const struct net_ops *ops;
	struct net_addr a;
	int rc = resolve(uri, &a, &ops);

	if (rc)
		return rc;
	return ops->listen(r, &a, cfg, on_accept, arg, out);
}

/* A listener starts with its ops pointer too (backends embed struct net_conn_base). */
void net_listener_close(struct net_listener *l)
{
	if (l)
		((const struct net_conn_base *)(void *)l)->ops->listener_close(l);
}

int net_listener_addr(const struct net_listener *l, struct net_addr *out)
{
	return ((const struct net_conn_base *)(const void *)l)->ops->listener_addr(l, out);
}

int net_listener_share(struct reactor *r, struct net_listener *l, const struct net_listen_cfg *cfg,
		       void (*on_accept)(struct net_listener *l, struct net_conn *c, void *arg),
		       void *arg, struct net_listener **out)
{
	const struct net_ops *ops = ((const struct net_conn_base *)(void *)l)->ops;

	if (!ops->listener_share)
		return -EOPNOTSUPP;
	return ops->listener_share(r, l, cfg, on_accept, arg, out);
}

int net_connect(struct reactor *r, const char *uri, const struct net_connect_cfg *cfg,
		const struct net_handler *h, void *arg, struct net_conn **out)
{
	const struct net_ops *ops;
	struct net_addr a;
	int rc = resolve(uri, &a, &ops);

	if (rc)
		return rc;
	return ops->connect(r, &a, cfg, h, arg, out);
}
