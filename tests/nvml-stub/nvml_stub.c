/* A stand-in for libnvidia-ml.so.1: the NVML functions the daemon resolves, answering from the
 * file named by $NVML_STUB_FILE, read again at every nvmlDeviceGetCount_v2 (tests rewrite it):
 *
 *   gpu NAME|UUID|MEM_TOTAL_BYTES|MEM_USED_BYTES|UTIL_GPU|UTIL_MEM|TEMP_C|POWER_MW|FAN_PCT
 *   proc GPU_INDEX PID USED_BYTES
 *
 * Without the variable (or with "init fail" in the file) nvmlInit_v2 fails as on a host
 * without the driver. Processes come from nvmlDeviceGetComputeRunningProcesses_v3. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_GPUS 8
#define MAX_PROCS 64

typedef struct {
    char name[96], uuid[96];
    unsigned long long total, used;
    unsigned util_gpu, util_mem, temp, power_mw, fan;
} Gpu;
typedef struct {
    unsigned gpu, pid;
    unsigned long long used;
} Proc;
typedef struct {
    unsigned int gpu, memory;
} nvmlUtilization_t;
typedef struct {
    unsigned long long total, free, used;
} nvmlMemory_t;
typedef struct {
    unsigned int pid;
    unsigned long long usedGpuMemory;
    unsigned int gpuInstanceId, computeInstanceId;
} nvmlProcessInfo_t;
typedef struct {
    unsigned int pid;
    unsigned long long usedGpuMemory;
} nvmlProcessInfo_v1_t;
typedef void* nvmlDevice_t;

static Gpu gpus[MAX_GPUS];
static Proc procs[MAX_PROCS];
static unsigned ngpus, nprocs;
static int init_fails;

static void load(void) {
    const char* path = getenv("NVML_STUB_FILE");
    ngpus = nprocs = 0;
    init_fails = 1;
    if (!path) return;
    FILE* f = fopen(path, "r");
    if (!f) return;
    init_fails = 0;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        if (strncmp(line, "gpu ", 4) == 0 && ngpus < MAX_GPUS) {
            Gpu* g = &gpus[ngpus];
            memset(g, 0, sizeof *g);
            char* fields[9] = {0};
            char* p = line + 4;
            for (int i = 0; i < 9 && p; ++i) {
                fields[i] = p;
                p = strchr(p, '|');
                if (p) *p++ = 0;
            }
            if (!fields[8]) continue;
            snprintf(g->name, sizeof g->name, "%s", fields[0]);
            snprintf(g->uuid, sizeof g->uuid, "%s", fields[1]);
            g->total = strtoull(fields[2], 0, 10);
            g->used = strtoull(fields[3], 0, 10);
            g->util_gpu = (unsigned)atoi(fields[4]);
            g->util_mem = (unsigned)atoi(fields[5]);
            g->temp = (unsigned)atoi(fields[6]);
            g->power_mw = (unsigned)atoi(fields[7]);
            g->fan = (unsigned)atoi(fields[8]);
            ++ngpus;
        } else if (strncmp(line, "proc ", 5) == 0 && nprocs < MAX_PROCS) {
            Proc* q = &procs[nprocs];
            if (sscanf(line + 5, "%u %u %llu", &q->gpu, &q->pid, &q->used) == 3) ++nprocs;
        } else if (strcmp(line, "init fail") == 0) {
            init_fails = 1;
        }
    }
    fclose(f);
}

static int dev_index(nvmlDevice_t d) {
    long i = (long)(size_t)d - 1;
    return i >= 0 && (unsigned long)i < ngpus ? (int)i : -1;
}

int nvmlInit_v2(void) {
    load();
    return init_fails ? 9 /* NVML_ERROR_DRIVER_NOT_LOADED */ : 0;
}
int nvmlShutdown(void) { return 0; }
int nvmlDeviceGetCount_v2(unsigned int* n) {
    load();
    *n = ngpus;
    return 0;
}
int nvmlDeviceGetHandleByIndex_v2(unsigned int i, nvmlDevice_t* d) {
    if (i >= ngpus) return 2; /* NVML_ERROR_INVALID_ARGUMENT */
    *d = (nvmlDevice_t)(size_t)(i + 1);
    return 0;
}
int nvmlDeviceGetName(nvmlDevice_t d, char* out, unsigned int len) {
    int i = dev_index(d);
    if (i < 0) return 2;
    snprintf(out, len, "%s", gpus[i].name);
    return 0;
}
int nvmlDeviceGetUUID(nvmlDevice_t d, char* out, unsigned int len) {
    int i = dev_index(d);
    if (i < 0) return 2;
    snprintf(out, len, "%s", gpus[i].uuid);
    return 0;
}
int nvmlDeviceGetMemoryInfo(nvmlDevice_t d, nvmlMemory_t* m) {
    int i = dev_index(d);
    if (i < 0) return 2;
    m->total = gpus[i].total;
    m->used = gpus[i].used;
    m->free = gpus[i].total - gpus[i].used;
    return 0;
}
int nvmlDeviceGetUtilizationRates(nvmlDevice_t d, nvmlUtilization_t* u) {
    int i = dev_index(d);
    if (i < 0) return 2;
    u->gpu = gpus[i].util_gpu;
    u->memory = gpus[i].util_mem;
    return 0;
}
int nvmlDeviceGetTemperature(nvmlDevice_t d, int sensor, unsigned int* t) {
    int i = dev_index(d);
    if (i < 0 || sensor != 0) return 2;
    *t = gpus[i].temp;
    return 0;
}
int nvmlDeviceGetPowerUsage(nvmlDevice_t d, unsigned int* mw) {
    int i = dev_index(d);
    if (i < 0) return 2;
    *mw = gpus[i].power_mw;
    return 0;
}
int nvmlDeviceGetPowerManagementLimit(nvmlDevice_t d, unsigned int* mw) {
    int i = dev_index(d);
    if (i < 0) return 2;
    *mw = 700000;
    return 0;
}
int nvmlDeviceGetFanSpeed(nvmlDevice_t d, unsigned int* pct) {
    int i = dev_index(d);
    if (i < 0) return 2;
    *pct = gpus[i].fan;
    return 0;
}
int nvmlSystemGetDriverVersion(char* out, unsigned int len) {
    snprintf(out, len, "%s", "999.99-stub");
    return 0;
}
/* The v3 list: asks again with more room (NVML_ERROR_INSUFFICIENT_SIZE) like the driver. */
int nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t d, unsigned int* count,
                                            nvmlProcessInfo_t* out) {
    int i = dev_index(d);
    if (i < 0) return 2;
    unsigned n = 0;
    for (unsigned k = 0; k < nprocs; ++k)
        if (procs[k].gpu == (unsigned)i) ++n;
    if (n > *count) {
        *count = n;
        return 7;
    }
    n = 0;
    for (unsigned k = 0; k < nprocs; ++k)
        if (procs[k].gpu == (unsigned)i) {
            out[n].pid = procs[k].pid;
            out[n].usedGpuMemory = procs[k].used;
            out[n].gpuInstanceId = out[n].computeInstanceId = 0xFFFFFFFFu;
            ++n;
        }
    *count = n;
    return 0;
}
