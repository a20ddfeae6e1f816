/*
 * sekishoctl — the operator's and auditor's command-line tool.
 *
 *   sekishoctl [-c FILE] <group> <subcommand> [options]
 *
 * Groups are dispatched through one table; each group parses its own options.
 */
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl.h"
#include "ctl_audit.h"

#define DEFAULT_CONFIG "/etc/sekisho/sekisho.conf"

void ctl_err(const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n < 0)
        msg[0] = '\0';
    /* Messages quote what the operator typed; escape control bytes so the reason
     * stays one line and cannot forge terminal output. */
    fputs("sekishoctl: ", stderr);
    for (const unsigned char *p = (const unsigned char *)msg; *p; p++) {
        if (*p < 0x20 || *p == 0x7f)
            fprintf(stderr, "\\x%02x", *p);
        else
            fputc(*p, stderr);
    }
    if (n >= (int)sizeof msg)
        fputs("...", stderr);
    fputc('\n', stderr);
}

int64_t ctl_now(void)
{
    return (int64_t)time(NULL);
}

void ctl_time_str(int64_t t, char *out, size_t cap)
{
    struct tm tm;
    time_t tt = (time_t)t;
    if (t == 0) {
        if (sk_strlcpy(out, cap, "never") != 0 && cap > 0)
            out[0] = '\0';
        return;
    }
    if (!gmtime_r(&tt, &tm) || strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
        if (sk_snprintf(out, cap, "@%lld", (long long)t) != 0 && cap > 0)
            out[0] = '\0';
    }
}

static int audit_main(const sk_conf *conf, int argc, char **argv)
{
    /* The key lives in the state directory by default, which does not exist
     * yet on a fresh install (the gateway and the state-changing commands
     * create it the same way). */
    if (argc >= 1 && strcmp(argv[0], "keygen") == 0 && sk_mkdir_p(conf->state_dir, 0700) != 0) {
        ctl_err("audit keygen: cannot create the state directory %s", conf->state_dir);
        return CTL_REFUSED;
    }
    return ctl_audit_main(conf->audit_dir, conf->audit_key, conf->audit_timezone, argc, argv);
}

static void audit_usage_to(FILE *f)
{
    fputs("  audit keygen\n"
          "  audit show [--dir D...] [--since T] [--until T] [--user ID] [--tenant T] [--event E] [--json]\n"
          "  audit export [--dir D...] [--since T] [--until T] [--user ID] [--tenant T] [--event E]\n"
          "  audit verify [--dir D...] [--pubkey FILE...] [--witness FILE...] [--at T]\n"
          "  (--dir: several nodes' audit directories, merged by time; --pubkey once or per --dir)\n"
          "  (times: ISO 8601; without a zone they are in [audit] timezone)\n",
          f);
}

static void audit_usage(void)
{
    audit_usage_to(stderr);
}

struct group {
    const char *name;
    int (*fn)(const sk_conf *conf, int argc, char **argv);
    void (*usage)(void);
    void (*usage_to)(FILE *f);
    int needs_subcommand;
};

static const struct group groups[] = {
    { "user", ctl_user_main, ctl_user_usage, ctl_user_usage_to, 1 },
    { "session", ctl_session_main, ctl_session_usage, ctl_session_usage_to, 1 },
    { "sweep", ctl_sweep_main, ctl_sweep_usage, ctl_sweep_usage_to, 0 },
    { "audit", audit_main, audit_usage, audit_usage_to, 1 },
    { "backup", ctl_backup_main, ctl_backup_usage, ctl_backup_usage_to, 0 },
    { "restore", ctl_restore_main, ctl_restore_usage, ctl_restore_usage_to, 0 },
    { "store", ctl_store_main, ctl_store_usage, ctl_store_usage_to, 1 },
};

static void usage_to(FILE *f)
{
    fputs("usage: sekishoctl [-c FILE] <group> <subcommand> [options]\n"
          "  -c FILE   configuration (default " DEFAULT_CONFIG ")\n"
          "  --version, --help; every command takes --help\n"
          "groups:\n",
          f);
    for (size_t i = 0; i < SK_ARRAY_LEN(groups); i++)
        groups[i].usage_to(f);
}

static void usage(void)
{
    usage_to(stderr);
}

/* `sekishoctl GROUP [SUB...] --help`: the usage lines of that command (all of the
 * group's when none matches), on stdout, exit 0 — before any configuration is
 * read, so that help works anywhere. */
static int command_help(const struct group *g, int argc, char **argv)
{
    char *buf = NULL, prefix[64];
    size_t len = 0;
    int any = 0;
    FILE *m = open_memstream(&buf, &len);
    if (m == NULL)
        return CTL_REFUSED;
    g->usage_to(m);
    if (fclose(m) != 0) {
        free(buf);
        return CTL_REFUSED;
    }
    /* "user totp enable": up to two words after the group. */
    if (argc >= 1 && argv[0][0] != '-' &&
        sk_snprintf(prefix, sizeof prefix, "  %s %s", g->name, argv[0]) == 0) {
        for (char *line = buf, *nl; *line; line = nl + 1) {
            nl = strchr(line, '\n');
            if (nl == NULL)
                break;
            if (strncmp(line, prefix, strlen(prefix)) == 0 &&
                (line[strlen(prefix)] == ' ' || line[strlen(prefix)] == '\n' || line[strlen(prefix)] == '|')) {
                if (!any)
                    fputs("usage: sekishoctl [-c FILE]\n", stdout);
                fwrite(line, 1, (size_t)(nl - line + 1), stdout);
                any = 1;
            }
        }
    }
    if (!any) {
        fputs("usage: sekishoctl [-c FILE]\n", stdout);
        fputs(buf, stdout);
    }
    free(buf);
    return fflush(stdout) == 0 ? CTL_OK : CTL_REFUSED;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "config", required_argument, NULL, 'c' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    const char *config = DEFAULT_CONFIG;
    static sk_conf conf; /* large: keep it off the stack */
    char err[SK_CONF_PATH_MAX + 256];
    int c;

    /* Mail goes to [notify] command through a pipe; a command that exits without
     * reading (e.g. a broken MTA) must be a failed mail (EPIPE), not the death of
     * the tool halfway through a sweep. */
    signal(SIGPIPE, SIG_IGN);
    opterr = 0;
    /* '+': stop at the group name; the group parses the rest. */
    while ((c = getopt_long(argc, argv, "+c:hV", longopts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config = optarg;
            break;
        case 'h':
            usage_to(stdout);
            return CTL_OK;
        case 'V':
            printf("sekishoctl %s\n", SEKISHO_VERSION);
            return CTL_OK;
        default:
            if (optopt != 0 && optopt != 'c')
                ctl_err("unknown option '-%c'", optopt);
            else
                ctl_err("unknown or incomplete option '%s'", argv[optind - 1]);
            usage();
            return CTL_USAGE;
        }
    }
    if (optind >= argc) {
        usage();
        return CTL_USAGE;
    }
    const char *gname = argv[optind];
    const struct group *g = NULL;
    for (size_t i = 0; i < SK_ARRAY_LEN(groups); i++)
        if (strcmp(groups[i].name, gname) == 0)
            g = &groups[i];
    if (!g) {
        ctl_err("unknown command group '%s'", gname);
        usage();
        return CTL_USAGE;
    }
    for (int i = optind + 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            break;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return command_help(g, argc - optind - 1, argv + optind + 1);
    }
    if (g->needs_subcommand && optind + 1 >= argc) {
        fputs("usage:\n", stderr);
        g->usage();
        return CTL_USAGE;
    }
    if (sk_conf_load(config, &conf, err, sizeof err) != 0) {
        ctl_err("%s", err);
        return CTL_REFUSED;
    }
    sk_log_set_level((enum sk_log_level)conf.log_level);
    /* Groups with subcommands get argv from the subcommand on (argv[0] =
     * "add"); the others get it from their own name on. getopt is reset for
     * the group's own parsing. */
    int skip = g->needs_subcommand ? 1 : 0;
    int gargc = argc - optind - skip;
    char **gargv = argv + optind + skip;
    optind = 0;
    return g->fn(&conf, gargc, gargv);
}
