/* libcurl, loaded on first use (dlopen of libcurl.so.4) rather than linked:
 * linking it maps some twenty libraries (TLS, Kerberos, LDAP, SSH...) into
 * every sonde command and into every program the agent records, at start,
 * for the few that send spans over HTTP (the collector's forwarder, the
 * agent's exporter). Only the header is a build dependency. */
#ifndef SONDE_COMMON_CURL_DL_H
#define SONDE_COMMON_CURL_DL_H

#include <curl/curl.h>

/* The libcurl entry points sonde uses. */
struct curl_dl {
    CURLcode (*global_init)(long flags);
    CURL *(*easy_init)(void);
    void (*easy_cleanup)(CURL *c);
    void (*easy_reset)(CURL *c);
    CURLcode (*easy_setopt)(CURL *c, CURLoption opt, ...);
    CURLcode (*easy_perform)(CURL *c);
    CURLcode (*easy_getinfo)(CURL *c, CURLINFO info, ...);
    struct curl_slist *(*slist_append)(struct curl_slist *l, const char *s);
    void (*slist_free_all)(struct curl_slist *l);
};

/* libcurl.so.4 loaded and curl_global_init'ed, once per process (any
 * thread may call this; the first call loads); NULL when it cannot be
 * loaded or initialized (the callers then count what they could not
 * send). */
const struct curl_dl *curl_dl(void);

#endif
