/* LD_PRELOAD shim for Debian 12's whip-client (simple-whip-client): it links
 * libsoup 2.4, libnice's UPnP code pulls in libsoup 3, and libsoup 3 aborts
 * the process when its g_module_symbol probe finds libsoup 2's soup_uri_new.
 * This makes that one probe fail and passes every other call through.
 * Build: cc -shared -fPIC -o whip_client_shim.so whip_client_shim.c -ldl */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <string.h>

typedef int gboolean;

gboolean g_module_symbol(void *module, const char *name, void **symbol)
{
    static gboolean (*real)(void *, const char *, void **);
    if (!real)
        real = (gboolean (*)(void *, const char *, void **))dlsym(RTLD_NEXT, "g_module_symbol");
    if (name && strcmp(name, "soup_uri_new") == 0) {
        if (symbol)
            *symbol = NULL;
        return 0;
    }
    return real(module, name, symbol);
}
