/* libmicrohttpd loaded on first use (see mhd_dl.h). */
#include "collector/mhd_dl.h"

#include "common/dlbind.h"

#include <pthread.h>

static struct mhd_dl fns;
static int loaded;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void load(void)
{
    static const char *const names[] = { "MHD_start_daemon", "MHD_stop_daemon", "MHD_create_response_from_buffer",
                                         "MHD_add_response_header", "MHD_queue_response", "MHD_destroy_response",
                                         "MHD_lookup_connection_value", "MHD_suspend_connection",
                                         "MHD_resume_connection" };
    void **slots[] = { (void **)&fns.start_daemon, (void **)&fns.stop_daemon,
                       (void **)&fns.create_response_from_buffer, (void **)&fns.add_response_header,
                       (void **)&fns.queue_response, (void **)&fns.destroy_response,
                       (void **)&fns.lookup_connection_value, (void **)&fns.suspend_connection,
                       (void **)&fns.resume_connection };
    loaded = !dl_bind("libmicrohttpd.so.12", names, slots, sizeof names / sizeof names[0]);
}

const struct mhd_dl *mhd_dl(void)
{
    pthread_once(&once, load);
    return loaded ? &fns : NULL;
}
