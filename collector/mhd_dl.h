/* libmicrohttpd, loaded when the collector's HTTP server starts (dlopen of
 * libmicrohttpd.so.12) rather than linked: linking it maps GnuTLS and its
 * ten-odd libraries into every sonde command at start (`sonde record
 * --agent` among them, on the recorded program's start-up path) for the one
 * that serves HTTP. Only the header is a build dependency. */
#ifndef SONDE_COLLECTOR_MHD_DL_H
#define SONDE_COLLECTOR_MHD_DL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <microhttpd.h>

/* The libmicrohttpd entry points the collector uses. */
struct mhd_dl {
    struct MHD_Daemon *(*start_daemon)(unsigned int flags, uint16_t port, MHD_AcceptPolicyCallback apc,
                                       void *apc_cls, MHD_AccessHandlerCallback dh, void *dh_cls, ...);
    void (*stop_daemon)(struct MHD_Daemon *d);
    struct MHD_Response *(*create_response_from_buffer)(size_t size, void *buffer,
                                                        enum MHD_ResponseMemoryMode mode);
    enum MHD_Result (*add_response_header)(struct MHD_Response *r, const char *header, const char *content);
    enum MHD_Result (*queue_response)(struct MHD_Connection *c, unsigned int status, struct MHD_Response *r);
    void (*destroy_response)(struct MHD_Response *r);
    const char *(*lookup_connection_value)(struct MHD_Connection *c, enum MHD_ValueKind kind, const char *key);
    void (*suspend_connection)(struct MHD_Connection *c);
    void (*resume_connection)(struct MHD_Connection *c);
};

/* libmicrohttpd.so.12 loaded, once per process (any thread may call this;
 * the first call loads); NULL when it cannot be loaded or lacks one of the
 * entry points. */
const struct mhd_dl *mhd_dl(void);

#endif
