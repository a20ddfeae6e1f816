/* ctl_manifest.h — one file line of a backup MANIFEST (format in ctl_backup.h). */
#ifndef CTL_MANIFEST_H
#define CTL_MANIFEST_H

#define CTL_MANIFEST_PATH_MAX 255

/* "sha256 <64 lowercase hex> <bytes> <relative path>" exactly: the path relative,
 * without "..", "." or empty components, of [A-Za-z0-9._-/] only (a backup is
 * restored from what it lists, so nothing may point outside it). 0 with the parts
 * filled, or -1. */
int ctl_manifest_line(const char *line, char hex[65], long long *size, char rel[CTL_MANIFEST_PATH_MAX + 1]);

#endif
