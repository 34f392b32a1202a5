/*
 * Counts TorchSharp's P/Invokes: an LD_AUDIT library for glibc on x86-64 Linux (issue 20, "P/Invoke counts").
 *
 *   gcc -shared -fPIC -O2 -o /tmp/pinvoke_count.so bench/Peft.Benchmarks/native/pinvoke_count.c
 *   LD_AUDIT=/tmp/pinvoke_count.so bench/Peft.Benchmarks/bin/Release/net10.0/Peft.Benchmarks --threads 1 lora-linear
 *
 * .NET binds each [DllImport] entry with dlsym on its first call, and glibc reports every dlsym binding to an audit
 * library (la_symbind64), which may hand back another address. For every symbol bound from any other object into
 * libLibTorchSharp.so this library hands back a 32-byte trampoline that increments that symbol's counter (one locked
 * increment) and jumps to the real function; arguments and return values pass through untouched (the trampoline
 * uses only r11, which the SysV calling convention leaves scratch and never uses for arguments). Calls inside
 * libtorch are not counted, only the managed code's calls into TorchSharp's native library.
 *
 * The counters live in a shared file, /dev/shm/peft-pinvoke.<pid>, that the benchmark maps (NativeCalls.cs): a
 * 16-byte header (magic, entries used) and up to 4096 entries of { uint64 count; char name[56]; }. The benchmark
 * deletes the file once mapped; the destructor below deletes it otherwise. Times measured under LD_AUDIT are not
 * comparable with plain runs: use it for the counts.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <link.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define MAX_ENTRIES 4096
#define NAME_BYTES 56
#define SLOT_BYTES 32
#define MAGIC 0x746e756f63766e70ULL /* "pnvcount" */

struct entry { volatile uint64_t count; char name[NAME_BYTES]; };
struct table { uint64_t magic; volatile uint64_t used; struct entry entries[MAX_ENTRIES]; };

static struct table *table;
static unsigned char *trampolines;
static uintptr_t torchsharp_cookie = 0;
static char path[64];

unsigned int la_version(unsigned int version)
{
    snprintf(path, sizeof path, "/dev/shm/peft-pinvoke.%d", (int)getpid());
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || ftruncate(fd, sizeof(struct table)) != 0) return version;
    void *shared = mmap(NULL, sizeof(struct table), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    void *code = mmap(NULL, (size_t)MAX_ENTRIES * SLOT_BYTES, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (shared == MAP_FAILED || code == MAP_FAILED) return version;
    table = shared;
    table->magic = MAGIC;
    trampolines = code;
    return version;
}

/* Only bindings into libLibTorchSharp.so, from any other object, are audited. */
unsigned int la_objopen(struct link_map *map, Lmid_t lmid, uintptr_t *cookie)
{
    (void)lmid;
    if (strstr(map->l_name, "libLibTorchSharp.so") != NULL)
    {
        torchsharp_cookie = (uintptr_t)map;
        *cookie = torchsharp_cookie;
        return LA_FLG_BINDTO;
    }
    return LA_FLG_BINDFROM;
}

static void put_u64(unsigned char *at, uint64_t value) { memcpy(at, &value, sizeof value); }

uintptr_t la_symbind64(Elf64_Sym *sym, unsigned int ndx, uintptr_t *refcook, uintptr_t *defcook, unsigned int *flags, const char *symname)
{
    (void)ndx; (void)flags;
    if (table == NULL || *defcook != torchsharp_cookie || *refcook == torchsharp_cookie) return sym->st_value;
    uint64_t used = table->used;
    for (uint64_t i = 0; i < used; i++)
    {
        /* The same entry point bound again (several [DllImport]s of one function): one counter, one trampoline. */
        if (strncmp(table->entries[i].name, symname, NAME_BYTES - 1) == 0) return (uintptr_t)(trampolines + i * SLOT_BYTES);
    }
    if (used == MAX_ENTRIES) return sym->st_value;
    struct entry *e = &table->entries[used];
    strncpy(e->name, symname, NAME_BYTES - 1);
    unsigned char *t = trampolines + used * SLOT_BYTES;
    t[0] = 0x49; t[1] = 0xBB; put_u64(t + 2, (uint64_t)(uintptr_t)&e->count);   /* movabs r11, &count */
    t[10] = 0xF0; t[11] = 0x49; t[12] = 0xFF; t[13] = 0x03;                    /* lock inc qword [r11] */
    t[14] = 0x49; t[15] = 0xBB; put_u64(t + 16, (uint64_t)sym->st_value);      /* movabs r11, target */
    t[24] = 0x41; t[25] = 0xFF; t[26] = 0xE3;                                  /* jmp r11 */
    __atomic_store_n(&table->used, used + 1, __ATOMIC_RELEASE);
    return (uintptr_t)t;
}

__attribute__((destructor)) static void remove_counter_file(void)
{
    if (path[0] != '\0') unlink(path);
}
