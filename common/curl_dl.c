/* libcurl loaded on first use (see curl_dl.h). */
#include "common/curl_dl.h"

#include "common/dlbind.h"

#include <pthread.h>
#include <stddef.h>

static struct curl_dl fns;
static int loaded;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void load(void)
{
    static const char *const names[] = { "curl_global_init", "curl_easy_init", "curl_easy_cleanup",
                                         "curl_easy_reset", "curl_easy_setopt", "curl_easy_perform",
                                         "curl_easy_getinfo", "curl_slist_append", "curl_slist_free_all" };
    void **slots[] = { (void **)&fns.global_init, (void **)&fns.easy_init, (void **)&fns.easy_cleanup,
                       (void **)&fns.easy_reset, (void **)&fns.easy_setopt, (void **)&fns.easy_perform,
                       (void **)&fns.easy_getinfo, (void **)&fns.slist_append, (void **)&fns.slist_free_all };
    if (dl_bind("libcurl.so.4", names, slots, sizeof names / sizeof names[0]))
        return;
    loaded = fns.global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
}

const struct curl_dl *curl_dl(void)
{
    pthread_once(&once, load);
    return loaded ? &fns : NULL;
}
