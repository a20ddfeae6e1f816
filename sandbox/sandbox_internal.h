/* sandbox_internal.h — shared between the sandbox's translation units only. */
#ifndef SK_SANDBOX_INTERNAL_H
#define SK_SANDBOX_INTERNAL_H

#include "sk_sandbox.h"

/* 1 in builds instrumented by ASan (gcc: __SANITIZE_ADDRESS__, clang:
 * __has_feature); the sanitizer runtimes then get their extra syscalls/paths. */
#if defined(__SANITIZE_ADDRESS__)
#define SK_SANDBOX_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SK_SANDBOX_SANITIZED 1
#endif
#endif
#ifndef SK_SANDBOX_SANITIZED
#define SK_SANDBOX_SANITIZED 0
#endif

/* Write a one-line reason into err (truncated silently: it is a message). */
void sk_sandbox_err(char *err, size_t errcap, const char *fmt, ...) SK_PRINTF(3, 4);

/* Build and load the role's seccomp filter (after no_new_privs). */
int sk_sandbox_seccomp_load(enum sk_sandbox_role role, unsigned flags, char *err,
                            size_t errcap) SK_MUST_CHECK;

/* Landlock in two steps so that a bad path fails before anything is restricted:
 * prepare opens every path and builds the ruleset (*fd = -1 when the kernel has
 * no Landlock: paths are still checked to exist), apply restricts the caller. */
int sk_sandbox_landlock_prepare(enum sk_sandbox_role role, unsigned flags,
                                const sk_sandbox_paths *paths, int *fd, char *err,
                                size_t errcap) SK_MUST_CHECK;
int sk_sandbox_landlock_apply(int fd, char *err, size_t errcap) SK_MUST_CHECK;

#endif
