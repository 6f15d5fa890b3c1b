/* tracer/native/unwind: nat_eh_hdr_start, the start of a nameless function
 * from the table of .eh_frame_hdr, on files written here with libelf: a
 * well-formed table, then crafted ones (a count past the section, other
 * encodings, a big-endian or 32-bit file, an unsorted table, an empty
 * section). Each bad one is refused or answered from inside the section;
 * the ASan build runs this test too. */
#include "check.h"

#include "tracer/native/unwind.h"

#include <fcntl.h>
#include <gelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HDR_ADDR 0x2000ull

static char path[] = "/tmp/sonde-ehhdr-XXXXXX";

/* An ELF file (class, data) with one section named name holding b[0..n)
 * at address HDR_ADDR. 0 or -1. */
static int write_elf(int cls, int data, const char *name, const uint8_t *b, size_t n)
{
    int fd = open(path, O_RDWR | O_TRUNC);
    if (fd < 0)
        return -1;
    Elf *e = elf_begin(fd, ELF_C_WRITE, NULL);
    int rc = -1;
    if (!e || !gelf_newehdr(e, cls))
        goto out;
    GElf_Ehdr eh;
    gelf_getehdr(e, &eh);
    eh.e_ident[EI_DATA] = (unsigned char)data;
    eh.e_type = ET_DYN;
    eh.e_machine = EM_X86_64;
    eh.e_version = EV_CURRENT;
    /* the section names: "", name, ".shstrtab" */
    char strs[128];
    size_t nl = strlen(name);
    strs[0] = 0;
    memcpy(strs + 1, name, nl + 1);
    memcpy(strs + 2 + nl, ".shstrtab", 10);
    Elf_Scn *sec = elf_newscn(e), *str = elf_newscn(e);
    Elf_Data *d1 = sec ? elf_newdata(sec) : NULL, *d2 = str ? elf_newdata(str) : NULL;
    if (!d1 || !d2)
        goto out;
    d1->d_buf = (void *)b;
    d1->d_size = n;
    d1->d_type = ELF_T_BYTE;
    d1->d_align = 1;
    d2->d_buf = strs;
    d2->d_size = nl + 12;
    d2->d_type = ELF_T_BYTE;
    d2->d_align = 1;
    GElf_Shdr sh;
    gelf_getshdr(sec, &sh);
    sh.sh_name = 1;
    sh.sh_type = SHT_PROGBITS;
    sh.sh_flags = SHF_ALLOC;
    sh.sh_addr = HDR_ADDR;
    gelf_update_shdr(sec, &sh);
    gelf_getshdr(str, &sh);
    sh.sh_name = (GElf_Word)(nl + 2);
    sh.sh_type = SHT_STRTAB;
    gelf_update_shdr(str, &sh);
    eh.e_shstrndx = (GElf_Half)elf_ndxscn(str);
    gelf_update_ehdr(e, &eh);
    rc = elf_update(e, ELF_C_WRITE) < 0 ? -1 : 0;
out:
    if (e)
        elf_end(e);
    close(fd);
    return rc;
}

/* Look x up in the file last written: the answer, or -1. */
static int64_t lookup(uint64_t x)
{
    int fd = open(path, O_RDONLY);
    Elf *e = fd >= 0 ? elf_begin(fd, ELF_C_READ, NULL) : NULL;
    uint64_t st = 0;
    int rc = e ? nat_eh_hdr_start(e, x, &st) : -1;
    if (e)
        elf_end(e);
    if (fd >= 0)
        close(fd);
    return rc ? -1 : (int64_t)st;
}

static void put32(uint8_t *p, int32_t v)
{
    memcpy(p, &v, 4);
}

/* A header (version 1, eh_frame_ptr pcrel sdata4, count udata4, table
 * datarel sdata4) and count entries whose starts are at HDR_ADDR + rel[i]. */
static size_t table(uint8_t *b, uint32_t count, const int32_t *rel, size_t nrel)
{
    b[0] = 1;
    b[1] = 0x1b;
    b[2] = 0x03;
    b[3] = 0x3b;
    put32(b + 4, 0x100);
    memcpy(b + 8, &count, 4);
    for (size_t i = 0; i < nrel; i++) {
        put32(b + 12 + 8 * i, rel[i]);
        put32(b + 16 + 8 * i, 0x40 + (int32_t)i);
    }
    return 12 + 8 * nrel;
}

int main(void)
{
    elf_version(EV_CURRENT);
    int fd = mkstemp(path);
    if (fd < 0) {
        perror("mkstemp");
        return 1;
    }
    close(fd);
    uint8_t b[256];
    /* functions at 0x1000, 0x1100, 0x1400 and 0x3000: entries are signed
     * offsets from the header's address, below it and above it */
    const int32_t rel[] = { -0x1000, -0xf00, -0xc00, 0x1000 };
    size_t n = table(b, 4, rel, 4);
    CHECK_INT(write_elf(ELFCLASS64, ELFDATA2LSB, ".eh_frame_hdr", b, n), 0);
    CHECK_INT(lookup(0x1000), 0x1000);
    CHECK_INT(lookup(0x10ff), 0x1000);
    CHECK_INT(lookup(0x1100), 0x1100);
    CHECK_INT(lookup(0x2fff), 0x1400);
    CHECK_INT(lookup(0x3000), 0x3000);
    CHECK_INT(lookup(0x7fffffff), 0x3000);
    CHECK_INT(lookup(0xfff), -1); /* before the first function */
    CHECK_INT(lookup(0), -1);

    /* the same table under another name: not looked at */
    CHECK_INT(write_elf(ELFCLASS64, ELFDATA2LSB, ".eh_frame", b, n), 0);
    CHECK_INT(lookup(0x1100), -1);

    /* a count past the section's end, by one and by far */
    uint32_t counts[] = { 5, 0x20000000u, 0xffffffffu, 0 };
    for (int i = 0; i < 4; i++) {
        n = table(b, counts[i], rel, 4);
        CHECK_INT(write_elf(ELFCLASS64, ELFDATA2LSB, ".eh_frame_hdr", b, n), 0);
        CHECK_INT(lookup(0x1100), -1);
    }
    /* cut inside the header, inside the first entry */
    n = table(b, 1, rel, 1);
    for (size_t cut = 0; cut < n; cut++) {
        CHECK_INT(write_elf(ELFCLASS64, ELFDATA2LSB, ".eh_frame_hdr", b, cut), 0);
        CHECK_INT(lookup(0x1100), -1);
    }
    /* other versions and encodings: refused */
    struct {
        int at;
        uint8_t v;
    } bad[] = { { 0, 2 }, { 0, 0 }, { 3, 0x1b }, { 3, 0x03 }, { 2, 0x1b }, { 2, 0x3b },
                { 1, 0x9b }, { 1, 0x01 }, { 1, 0x5b }, { 2, 0x0f } };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        n = table(b, 4, rel, 4);
        b[bad[i].at] = bad[i].v;
        CHECK_INT(write_elf(ELFCLASS64, ELFDATA2LSB, ".eh_frame_hdr", b, n), 0);
        CHECK_INT(lookup(0x1100), -1);
    }
    /* a count of another size (udata2): entries then misaligned */
    n = table(b, 4, rel, 4);
    b[2] = 0x02; /* udata2: the count is the low half, the rest entries */
    CHECK_INT(write_elf(ELFCLASS64, ELFDATA2LSB, ".eh_frame_hdr", b, n), 0);
    lookup(0x1100); /* what it answers is garbage; it reads in bounds (ASan) */
    /* a big-endian or a 32-bit file: left alone */
    n = table(b, 4, rel, 4);
    CHECK_INT(write_elf(ELFCLASS64, ELFDATA2MSB, ".eh_frame_hdr", b, n), 0);
    CHECK_INT(lookup(0x1100), -1);
    CHECK_INT(write_elf(ELFCLASS32, ELFDATA2LSB, ".eh_frame_hdr", b, n), 0);
    CHECK_INT(lookup(0x1100), -1);
    /* an unsorted table: the search ends, in bounds (ASan), whatever it
     * answers */
    const int32_t mess[] = { 0x1000, -0x1000, 0x7fffffff, -0x7fffffff - 1 };
    n = table(b, 4, mess, 4);
    CHECK_INT(write_elf(ELFCLASS64, ELFDATA2LSB, ".eh_frame_hdr", b, n), 0);
    for (uint64_t x = 0; x < 0x100000000ull; x += 0x10000000ull)
        lookup(x);
    /* an empty section */
    CHECK_INT(write_elf(ELFCLASS64, ELFDATA2LSB, ".eh_frame_hdr", b, 0), 0);
    CHECK_INT(lookup(0x1100), -1);
    /* no file */
    uint64_t st;
    CHECK_INT(nat_eh_hdr_start(NULL, 0x1100, &st), -1);
    unlink(path);
    return check_done("ehhdr");
}
