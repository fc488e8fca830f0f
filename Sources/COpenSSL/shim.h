/*
 * COpenSSL shim: static-inline wrappers for the OpenSSL 3.0 function-like
 * macros and SSL_OP_BIT(n) option constants that Swift cannot import
 * (see design/dtls-notes.md, gotchas 1, 2, 5, 6 and 10).
 */
#ifndef CPNP_COPENSSL_SHIM_H
#define CPNP_COPENSSL_SHIM_H

#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/bio.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <openssl/pem.h>
#include <openssl/hmac.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/crypto.h>

/* ---- SSL_OP_* constants (SSL_OP_BIT(n) does not import) ---- */
static inline uint64_t cpnp_SSL_OP_NO_QUERY_MTU(void) { return SSL_OP_NO_QUERY_MTU; }
static inline uint64_t cpnp_SSL_OP_COOKIE_EXCHANGE(void) { return SSL_OP_COOKIE_EXCHANGE; }
static inline uint64_t cpnp_SSL_OP_NO_TICKET(void) { return SSL_OP_NO_TICKET; }
static inline uint64_t cpnp_SSL_OP_NO_COMPRESSION(void) { return SSL_OP_NO_COMPRESSION; }
static inline uint64_t cpnp_SSL_OP_CIPHER_SERVER_PREFERENCE(void) { return SSL_OP_CIPHER_SERVER_PREFERENCE; }
static inline uint64_t cpnp_SSL_OP_NO_RENEGOTIATION(void) { return SSL_OP_NO_RENEGOTIATION; }

/* ---- SSL_CTX ctrl macros (each returns the raw ctrl result) ---- */
static inline int cpnp_SSL_CTX_set_min_proto_version(SSL_CTX *ctx, int v) { return (int)SSL_CTX_set_min_proto_version(ctx, v); }
static inline int cpnp_SSL_CTX_set_max_proto_version(SSL_CTX *ctx, int v) { return (int)SSL_CTX_set_max_proto_version(ctx, v); }
static inline int cpnp_SSL_CTX_set1_groups_list(SSL_CTX *ctx, const char *s) { return (int)SSL_CTX_set1_groups_list(ctx, s); }
static inline int cpnp_SSL_CTX_set1_sigalgs_list(SSL_CTX *ctx, const char *s) { return (int)SSL_CTX_set1_sigalgs_list(ctx, s); }
static inline int cpnp_SSL_CTX_add1_chain_cert(SSL_CTX *ctx, X509 *x) { return (int)SSL_CTX_add1_chain_cert(ctx, x); }
static inline long cpnp_SSL_CTX_set_mode(SSL_CTX *ctx, long mode) { return (long)SSL_CTX_set_mode(ctx, mode); }
static inline long cpnp_SSL_MODE_RELEASE_BUFFERS(void) { return SSL_MODE_RELEASE_BUFFERS; }
static inline long cpnp_SSL_CTX_disable_session_cache(SSL_CTX *ctx) { return (long)SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF); }
static inline void cpnp_SSL_CTX_set_read_ahead(SSL_CTX *ctx, int m) { (void)SSL_CTX_set_read_ahead(ctx, m); }

/* ---- per-SSL macros ---- */
/* Returns the new MTU (not 1!), 0 if below the minimum (gotcha 2). */
static inline long cpnp_SSL_set_mtu(SSL *ssl, long mtu) { return SSL_set_mtu(ssl, mtu); }
static inline int cpnp_SSL_set_tlsext_host_name(SSL *ssl, const char *name) { return (int)SSL_set_tlsext_host_name(ssl, name); }
static inline int cpnp_SSL_set_app_data(SSL *ssl, void *arg) { return SSL_set_app_data(ssl, arg); }
static inline void *cpnp_SSL_get_app_data(const SSL *ssl) { return SSL_get_app_data(ssl); }

/* Returns 1 and fills *sec/*usec when a DTLS timer is running, 0 otherwise. */
static inline int cpnp_DTLSv1_get_timeout(SSL *ssl, long *sec, long *usec) {
    struct timeval tv = {0, 0};
    int r = (int)DTLSv1_get_timeout(ssl, &tv);
    *sec = (long)tv.tv_sec;
    *usec = (long)tv.tv_usec;
    return r;
}
/* 1: retransmitted, 0: nothing to do, -1: failure (e.g. too many timeouts). */
static inline int cpnp_DTLSv1_handle_timeout(SSL *ssl) { return (int)DTLSv1_handle_timeout(ssl); }

/* ---- BIO macros ---- */
/* An empty memory BIO must look like EAGAIN, not EOF (gotcha 5). */
static inline void cpnp_BIO_set_mem_eof_return(BIO *b, int v) { (void)BIO_set_mem_eof_return(b, v); }
static inline size_t cpnp_BIO_pending(BIO *b) { return (size_t)BIO_pending(b); }
static inline int cpnp_BIO_reset(BIO *b) { return (int)BIO_reset(b); }

/* ---- misc ---- */
static inline void cpnp_OPENSSL_free(void *p) { OPENSSL_free(p); }

#endif
