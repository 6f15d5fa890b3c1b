/* Binding a library's functions at run time (see dlbind.h). */
#include "common/dlbind.h"

#include <dlfcn.h>

int dl_bind(const char *soname, const char *const *names, void **const *slots, size_t n)
{
    void *h = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
    if (!h)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (!(*slots[i] = dlsym(h, names[i])))
            return -1;
    return 0;
}
