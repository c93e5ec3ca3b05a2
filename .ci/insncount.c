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
 * (min and max are 0 for a region that never ran).
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
struct region {
    uint64_t start_pc, end_pc;
    uint64_t total_at_start, count, runs, min, max;
    bool open;
};
static struct region regions[MAX_REGIONS];
static int n_regions;

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
        qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64, &total, 1);
    }
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
        } else {
            fprintf(stderr, "insncount: unknown argument %s\n", argv[i]);
            return -1;
        }
    }
    if (n_regions > 0 && regions[n_regions - 1].end_pc == UINT64_MAX) {
        fprintf(stderr, "insncount: the last region has no end\n");
        return -1;
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
    return 0;
}
