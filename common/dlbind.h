/* Binding a library's functions at run time, for the libraries loaded on
 * first use (common/curl_dl.h, collector/mhd_dl.h). */
#ifndef SONDE_DLBIND_H
#define SONDE_DLBIND_H

#include <stddef.h>

/* dlopen soname (RTLD_NOW | RTLD_LOCAL) and store each of the n functions
 * names[i] in *slots[i]. 0 when all were found; -1 otherwise (no library,
 * or one missing: the handle stays open, harmless, and the slots may hold
 * some of them). */
int dl_bind(const char *soname, const char *const *names, void **const *slots, size_t n);

#endif
