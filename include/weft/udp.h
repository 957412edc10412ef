/**
 * @file weft/udp.h
 * @brief Datagram endpoints (asyncio's create_datagram_endpoint) with an
 *        awaitable recvfrom instead of a protocol's datagram_received.
 *
 * An endpoint is one UDP socket on one loop: every call must be made on that
 * loop's thread (WEFT_EWRONGLOOP otherwise), the awaiting ones from a task.
 * To serve one port from several loops, create one endpoint per loop with
 * reuse_port (SO_REUSEPORT): the kernel spreads the datagrams over the
 * sockets by a hash of the addresses, so one peer's datagrams always reach
 * the same loop, and a few peers may all land on one.
 *
 * **Receiving.** libuv receives into the endpoint's own buffer as datagrams
 * arrive; those nobody awaits yet are queued (up to recv_queue datagrams).
 * When the queue is full the endpoint stops reading, so further datagrams wait
 * in the kernel's socket buffer (and are dropped by the kernel when that is
 * full, as UDP does): a reader that keeps up loses nothing.
 *
 * **Sending.** weft_udp_sendto() never waits (asyncio's transport.sendto):
 * what the socket does not take at once is copied and sent in order as it
 * can. weft_udp_drain() waits until at most the low-water mark is queued.
 * An error that occurs after sendto returned (asyncio's error_received) is
 * returned by the next sendto or drain.
 *
 * **Errors.** Negative errno codes pass through (-EMSGSIZE for a datagram
 * larger than the protocol allows: 65,507 bytes over IPv4, 65,527 over IPv6;
 * -ECONNREFUSED on a connected endpoint whose peer has no socket; -EISCONN
 * for a target address on a connected endpoint, -EDESTADDRREQ for none on an
 * unconnected one); WEFT_EINVAL, WEFT_ENOTCORO, WEFT_EWRONGLOOP,
 * WEFT_ECANCELED, WEFT_ENOMEM, WEFT_ERESOLVE.
 */
#ifndef WEFT_UDP_H
#define WEFT_UDP_H

#include <sys/socket.h>

#include "common.h"
#include "loop.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A datagram endpoint (asyncio.DatagramTransport). */
typedef struct weft_udp weft_udp_t;

/** Largest datagram payload over IPv4 (65,535 - 20 - 8). */
#define WEFT_UDP_MAX_IPV4 65507

/** Options (NULL or zero fields: defaults). */
typedef struct weft_udp_opts {
    int family;           /**< AF_UNSPEC (from the addresses), AF_INET or AF_INET6 */
    bool reuse_port;      /**< SO_REUSEPORT: several sockets (loops, processes) share the port */
    bool reuse_address;   /**< SO_REUSEADDR */
    bool allow_broadcast; /**< SO_BROADCAST */
    bool ipv6_only;       /**< IPV6_V6ONLY for an IPv6 socket */
    size_t recv_queue;    /**< datagrams queued for readers before reading pauses; 0 = 256 */
    size_t write_high;    /**< bytes queued by sendto before drain waits; 0 = 64 KiB */
} weft_udp_opts_t;

/**
 * asyncio.create_datagram_endpoint(local_addr=(local_host, local_port),
 * remote_addr=(remote_host, remote_port)): make a UDP socket on the running
 * loop, bind it to the local address (local_host NULL: the wildcard of the
 * family, port 0: any free port), and connect it to the remote address if
 * remote_host is given (then sendto needs no address, and only the peer's
 * datagrams are received). Names are resolved without blocking. Awaiting
 * (from a task) when a name must be resolved; loop thread.
 * @return 0; WEFT_EINVAL (out NULL, no local and no remote address, a port
 * outside 0..65535); WEFT_ENOTCORO; WEFT_ERESOLVE; WEFT_ENOMEM; a socket
 * error such as -EADDRINUSE. Free the endpoint with weft_udp_close().
 */
WEFT_API int weft_create_datagram_endpoint(const char *local_host, int local_port, const char *remote_host,
                                           int remote_port, const weft_udp_opts_t *opts, weft_udp_t **out);

/**
 * transport.sendto(data, addr): send one datagram of @p len bytes to @p addr
 * (NULL on a connected endpoint). Never waits; @p data may be reused at once.
 * @return 0; -EMSGSIZE (too large: nothing sent); -EISCONN, -EDESTADDRREQ;
 * an earlier asynchronous send error; WEFT_EINVAL; WEFT_EWRONGLOOP;
 * WEFT_ENOMEM; WEFT_ECLOSED after weft_udp_close.
 */
WEFT_API int weft_udp_sendto(weft_udp_t *u, const void *data, size_t len, const struct sockaddr *addr);

/**
 * Wait until the datagrams queued by sendto fit under the high-water mark's
 * quarter (asyncio's writer drain for datagrams, which asyncio leaves to
 * pause_writing). @return 0, an asynchronous send error, WEFT_ECANCELED,
 * WEFT_ENOTCORO, WEFT_EWRONGLOOP.
 */
WEFT_API int weft_udp_drain(weft_udp_t *u);

/**
 * Receive one datagram (the oldest queued, or wait for one): up to @p cap
 * bytes are copied into @p buf, *len receives the datagram's full size,
 * *from / *fromlen (both may be NULL) the sender's address.
 * @return 0; -EMSGSIZE when the datagram was larger than @p cap (the first cap
 * bytes are in buf, the rest is lost, as recvfrom(2) truncates); a receive
 * error (-ECONNREFUSED on a connected endpoint after an ICMP error);
 * WEFT_ECANCELED (nothing taken); WEFT_EINVALSTATE (another task already
 * waits on this endpoint); WEFT_ECLOSED; WEFT_EINVAL; WEFT_ENOTCORO;
 * WEFT_EWRONGLOOP.
 */
WEFT_API int weft_udp_recvfrom(weft_udp_t *u, void *buf, size_t cap, size_t *len, struct sockaddr_storage *from,
                               socklen_t *fromlen);

/** The bound address. @return 0, WEFT_EINVAL, a socket error. Loop thread. */
WEFT_API int weft_udp_sockname(const weft_udp_t *u, struct sockaddr_storage *out, socklen_t *len);

/** The bound port, or a negative code. Loop thread. */
WEFT_API int weft_udp_port(const weft_udp_t *u);

/** Datagrams received and queued, not yet taken by recvfrom. Loop thread. */
WEFT_API size_t weft_udp_queued(const weft_udp_t *u);

/**
 * transport.close(): close the socket (datagrams not yet sent are dropped) and
 * free the endpoint once libuv released it. A task waiting in recvfrom or
 * drain gets WEFT_ECLOSED. Do not use @p u afterwards. NULL is ignored.
 * Loop thread.
 */
WEFT_API void weft_udp_close(weft_udp_t *u);

#ifdef __cplusplus
}
#endif
#endif
