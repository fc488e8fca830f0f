/*
 * COpenSSL shim: static-inline wrappers for the OpenSSL 3.0 function-like
 * macros and SSL_OP_BIT(n) option constants that Swift cannot import, with
 * notes on their return conventions where they differ from 1 = success.
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
/* Returns the new MTU (not 1!), 0 if below the minimum. */
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
/* An empty memory BIO must look like EAGAIN, not EOF. */
static inline void cpnp_BIO_set_mem_eof_return(BIO *b, int v) { (void)BIO_set_mem_eof_return(b, v); }
static inline size_t cpnp_BIO_pending(BIO *b) { return (size_t)BIO_pending(b); }
static inline int cpnp_BIO_reset(BIO *b) { return (int)BIO_reset(b); }

/* ---- misc ---- */
static inline void cpnp_OPENSSL_free(void *p) { OPENSSL_free(p); }

/* ---- subjectAltName access for RFC 6125 identity checks (GENERAL_NAME is a union) ---- */
static inline GENERAL_NAMES *cpnp_X509_subject_alt_names(const X509 *cert) {
    return (GENERAL_NAMES *)X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
}
static inline int cpnp_GENERAL_NAMES_count(const GENERAL_NAMES *names) { return sk_GENERAL_NAME_num(names); }
/* The i-th name: returns 1 for a dNSName, 2 for an iPAddress, 3 for an id-on-dnsSRV otherName
 * (RFC 4985, IA5String), 0 for anything else; *bytes/*length then point into `names`. */
static inline int cpnp_GENERAL_NAMES_get(const GENERAL_NAMES *names, int i, const unsigned char **bytes, int *length) {
    const GENERAL_NAME *name = sk_GENERAL_NAME_value(names, i);
    const ASN1_STRING *value = NULL;
    int kind = 0;
    if (name == NULL) return 0;
    switch (name->type) {
    case GEN_DNS: value = name->d.dNSName; kind = 1; break;
    case GEN_IPADD: value = name->d.iPAddress; kind = 2; break;
    case GEN_OTHERNAME:
        if (OBJ_obj2nid(name->d.otherName->type_id) == NID_SRVName && name->d.otherName->value != NULL
            && name->d.otherName->value->type == V_ASN1_IA5STRING) {
            value = name->d.otherName->value->value.ia5string;
            kind = 3;
        }
        break;
    default: break;
    }
    if (value == NULL) return 0;
    *bytes = ASN1_STRING_get0_data(value);
    *length = ASN1_STRING_length(value);
    return kind;
}
static inline void cpnp_GENERAL_NAMES_free(GENERAL_NAMES *names) { GENERAL_NAMES_free(names); }
/* The SSL behind a certificate verification (for SSL_set_verify callbacks). */
static inline SSL *cpnp_X509_STORE_CTX_get_ssl(X509_STORE_CTX *ctx) {
    return (SSL *)X509_STORE_CTX_get_ex_data(ctx, SSL_get_ex_data_X509_STORE_CTX_idx());
}

#endif
