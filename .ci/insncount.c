/* insncount.c: a QEMU TCG plugin that counts executed guest instructions,
 * for .ci/footprint.
 *
 * Counts every instruction exactly (an inline add per instruction) and, for
 * each region given as start=ADDR,end=ADDR (up to MAX_REGIONS pairs, in
 * order), also the instructions executed from each execution of the
 * instruction at `start` (counted) up to the next execution of the one at
 * `end` (not counted). The counts go to QEMU's log, one line per region in
 * the order given: run with `-d plugin -D FILE`. A line holds the region's
 * instructions summed over its runs, the number of runs, its two addresses,
 * and the fewest and the most instructions of one run:
 *
 *   insncount: region=SUM regions=RUNS start=0x.. end=0x.. min=MIN max=MAX
 *
 * (min and max are 0 for a region that never ran). A region that ran more
 * than once also gets a line with its instructions in each of its first
 * MAX_RUNS runs:
 *
 *   insncount-runs: index=I counts=C0,C1,...
 *
 * With profile=I (a region's index, from 0, in the order given), it also
 * counts each instruction address's executions in each of that region's
 * first MAX_RUNS runs, and prints the addresses whose counts are
 * not the same in every run, one line each:
 *
 *   insnprofile: pc=0x.. counts=C0,C1,...
 *
 * so that a script can tell which functions make the runs differ. This
 * puts a callback on every instruction: a slower run.
 *
 * QEMU counts instructions, not cycles: no pipeline, wait states or
 * multi-cycle instructions.
 *
 * Debian's QEMU 7.2 is built with plugin support but ships neither plugins
 * nor qemu-plugin.h, so the few declarations of plugin API version 1 used
 * here are written out below (they match QEMU 7.x's include/qemu/qemu-plugin.h).
 *
 * Build: gcc -shared -fPIC -O2 -o libinsncount.so insncount.c
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- QEMU plugin API v1 (subset) ---- */
typedef uint64_t qemu_plugin_id_t;
typedef struct {
    const char *target_name;
    struct {
        int min;
        int cur;
    } version;
    bool system_emulation;
    union {
        struct {
            int smp_vcpus;
            int max_vcpus;
        } system;
    };
} qemu_info_t;
struct qemu_plugin_tb;
struct qemu_plugin_insn;
enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_CB_R_REGS, QEMU_PLUGIN_CB_RW_REGS };
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t, struct qemu_plugin_tb *);
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int, void *);
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t, void *);
void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t, qemu_plugin_vcpu_tb_trans_cb_t);
void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *, qemu_plugin_vcpu_udata_cb_t,
                                            enum qemu_plugin_cb_flags, void *);
void qemu_plugin_register_vcpu_insn_exec_inline(struct qemu_plugin_insn *, enum qemu_plugin_op,
                                                void *, uint64_t);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *, size_t);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t, qemu_plugin_udata_cb_t, void *);
void qemu_plugin_outs(const char *);
/* ---- end of the API subset ---- */

__attribute__((visibility("default"))) int qemu_plugin_version = 1;

/* The guests measured have one vCPU: plain counters suffice. */
static uint64_t total;

#define MAX_REGIONS 16
#define MAX_RUNS 8
struct region {
    uint64_t start_pc, end_pc;
    uint64_t total_at_start, count, runs, min, max;
    uint64_t run_counts[MAX_RUNS];
    bool open;
};
static struct region regions[MAX_REGIONS];
static int n_regions;

/* The profile: an open-addressing table of instruction addresses, each with
 * its executions per run of the profiled region. */
#define PROFILE_SLOTS (1u << 18)
struct profile_slot {
    uint64_t pc;
    uint64_t counts[MAX_RUNS];
    bool used;
};
static struct profile_slot *profile;
static struct region *profiled;
static int profile_index = -1;

static struct profile_slot *profile_slot(uint64_t pc)
{
    uint32_t i = (uint32_t)((pc >> 1) * 2654435761u) & (PROFILE_SLOTS - 1);
    for (uint32_t n = 0; n < PROFILE_SLOTS; n++, i = (i + 1) & (PROFILE_SLOTS - 1)) {
        if (!profile[i].used) {
            profile[i].used = true;
            profile[i].pc = pc;
            return &profile[i];
        }
        if (profile[i].pc == pc)
            return &profile[i];
    }
    return NULL;
}

static void on_profiled(unsigned int vcpu, void *udata)
{
    (void)vcpu;
    struct profile_slot *slot = udata;
    if (profiled->open && profiled->runs < MAX_RUNS)
        slot->counts[profiled->runs]++;
}

static void on_start(unsigned int vcpu, void *udata)
{
    (void)vcpu;
    struct region *r = udata;
    r->total_at_start = total;
    r->open = true;
}

static void on_end(unsigned int vcpu, void *udata)
{
    (void)vcpu;
    struct region *r = udata;
    if (r->open) {
        uint64_t n = total - r->total_at_start;
        r->count += n;
        if (r->runs == 0 || n < r->min)
            r->min = n;
        if (n > r->max)
            r->max = n;
        if (r->runs < MAX_RUNS)
            r->run_counts[r->runs] = n;
        r->runs++;
        r->open = false;
    }
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    size_t n = qemu_plugin_tb_n_insns(tb);
    for (size_t i = 0; i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        uint64_t pc = qemu_plugin_insn_vaddr(insn);
        /* The marker callbacks are registered before the count, so they run
         * before this instruction is counted. */
        for (int r = 0; r < n_regions; r++) {
            if (pc == regions[r].start_pc)
                qemu_plugin_register_vcpu_insn_exec_cb(insn, on_start, QEMU_PLUGIN_CB_NO_REGS,
                                                       &regions[r]);
            if (pc == regions[r].end_pc)
                qemu_plugin_register_vcpu_insn_exec_cb(insn, on_end, QEMU_PLUGIN_CB_NO_REGS,
                                                       &regions[r]);
        }
        if (profile) {
            struct profile_slot *slot = profile_slot(pc);
            if (slot)
                qemu_plugin_register_vcpu_insn_exec_cb(insn, on_profiled, QEMU_PLUGIN_CB_NO_REGS,
                                                       slot);
        }
        qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64, &total, 1);
    }
}

/* Prints PREFIX, then COUNTS[0..RUNS) separated by commas, as one line. */
static void out_counts(const char *prefix, const uint64_t *counts, uint64_t runs)
{
    char line[256];
    size_t len = (size_t)snprintf(line, sizeof line, "%s", prefix);
    for (uint64_t k = 0; k < runs && len < sizeof line; k++)
        len += (size_t)snprintf(line + len, sizeof line - len, "%s%" PRIu64, k ? "," : "",
                                counts[k]);
    if (len < sizeof line - 1)
        strcpy(line + len, "\n");
    qemu_plugin_outs(line);
}

static void at_exit(qemu_plugin_id_t id, void *udata)
{
    (void)id;
    (void)udata;
    char line[200];
    snprintf(line, sizeof line, "insncount: total=%" PRIu64 "\n", total);
    qemu_plugin_outs(line);
    for (int r = 0; r < n_regions; r++) {
        snprintf(line, sizeof line,
                 "insncount: region=%" PRIu64 " regions=%" PRIu64 " start=0x%" PRIx64
                 " end=0x%" PRIx64 " min=%" PRIu64 " max=%" PRIu64 "\n",
                 regions[r].count, regions[r].runs, regions[r].start_pc, regions[r].end_pc,
                 regions[r].min, regions[r].max);
        qemu_plugin_outs(line);
    }
    for (int r = 0; r < n_regions; r++) {
        if (regions[r].runs < 2)
            continue;
        snprintf(line, sizeof line, "insncount-runs: index=%d counts=", r);
        out_counts(line, regions[r].run_counts,
                   regions[r].runs < MAX_RUNS ? regions[r].runs : MAX_RUNS);
    }
    if (!profile)
        return;
    uint64_t runs = profiled->runs < MAX_RUNS ? profiled->runs : MAX_RUNS;
    for (uint32_t i = 0; i < PROFILE_SLOTS; i++) {
        const struct profile_slot *slot = &profile[i];
        bool same = true;
        for (uint64_t k = 1; k < runs; k++)
            same = same && slot->counts[k] == slot->counts[0];
        if (!slot->used || same)
            continue;
        snprintf(line, sizeof line, "insnprofile: pc=0x%" PRIx64 " counts=", slot->pc);
        out_counts(line, slot->counts, runs);
    }
}

__attribute__((visibility("default"))) int qemu_plugin_install(qemu_plugin_id_t id,
                                                               const qemu_info_t *info, int argc,
                                                               char **argv)
{
    (void)info;
    for (int i = 0; i < argc; i++) {
        /* Thumb addresses from the symbol table have bit 0 set: drop it. A
         * start opens a region, the next end closes it. */
        if (strncmp(argv[i], "start=", 6) == 0) {
            if (n_regions == MAX_REGIONS ||
                (n_regions > 0 && regions[n_regions - 1].end_pc == UINT64_MAX)) {
                fprintf(stderr, "insncount: %s: more than %d regions, or the last has no end\n",
                        argv[i], MAX_REGIONS);
                return -1;
            }
            regions[n_regions].start_pc = strtoull(argv[i] + 6, NULL, 0) & ~1ULL;
            regions[n_regions].end_pc = UINT64_MAX;
            n_regions++;
        } else if (strncmp(argv[i], "end=", 4) == 0) {
            if (n_regions == 0 || regions[n_regions - 1].end_pc != UINT64_MAX) {
                fprintf(stderr, "insncount: %s without its start\n", argv[i]);
                return -1;
            }
            regions[n_regions - 1].end_pc = strtoull(argv[i] + 4, NULL, 0) & ~1ULL;
        } else if (strncmp(argv[i], "profile=", 8) == 0) {
            profile_index = atoi(argv[i] + 8);
        } else {
            fprintf(stderr, "insncount: unknown argument %s\n", argv[i]);
            return -1;
        }
    }
    if (n_regions > 0 && regions[n_regions - 1].end_pc == UINT64_MAX) {
        fprintf(stderr, "insncount: the last region has no end\n");
        return -1;
    }
    if (profile_index >= n_regions) {
        fprintf(stderr, "insncount: profile=%d, but %d regions\n", profile_index, n_regions);
        return -1;
    }
    if (profile_index >= 0) {
        profile = calloc(PROFILE_SLOTS, sizeof *profile);
        if (!profile) {
            fprintf(stderr, "insncount: no memory for the profile\n");
            return -1;
        }
        profiled = &regions[profile_index];
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
    return 0;
}
