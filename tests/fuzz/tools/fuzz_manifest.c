/* libFuzzer: the backup MANIFEST line parser (tools/sekishoctl/ctl_manifest.c).
 * Whatever it accepts must be a relative path without "." or ".." components and
 * a 64-digit lowercase hex digest. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char line[1024], hex[65], rel[CTL_MANIFEST_PATH_MAX + 1];
    long long n = -1;
    if (size >= sizeof line)
        return 0;
    memcpy(line, data, size);
    line[size] = '\0';
    if (ctl_manifest_line(line, hex, &n, rel) == 0) {
        if (strlen(hex) != 64 || n < 0 || rel[0] == '/' || rel[0] == '\0' || strstr(rel, "//") != NULL)
            abort();
        if (strcmp(rel, "..") == 0 || strncmp(rel, "../", 3) == 0 || strstr(rel, "/../") != NULL ||
            (strlen(rel) >= 3 && strcmp(rel + strlen(rel) - 3, "/..") == 0))
            abort();
    }
    return 0;
}
