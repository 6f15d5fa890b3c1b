/* DWARF line lookups without loading a module's whole DWARF (see lines.h). */
#include "tracer/native/lines.h"

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

/* The sections handed to libdw; the first four are required. */
enum { S_INFO, S_ABBREV, S_LINE, S_ARANGES, S_STR, S_LINE_STR, S_STR_OFFSETS, S_ADDR, S_N };
static const char *const sec_names[S_N] = {
    ".debug_info", ".debug_abbrev", ".debug_line", ".debug_aranges",
    ".debug_str", ".debug_line_str", ".debug_str_offsets", ".debug_addr",
};

/* A section of the file, inflated on demand (a prefix at a time). */
struct lsec {
    int present;
    const uint8_t *raw; /* the bytes in the file (compressed: after the header) */
    size_t rawlen;
    int compressed;
    uint8_t *buf;       /* compressed: the inflated prefix */
    size_t size, have;  /* full size, bytes available */
    z_stream z;
    int zinit, broken;
};

struct nat_lines {
    int fd;
    Elf *elf;
    int msb;
    struct lsec s[S_N];
    /* libdw's view: an in-memory ELF file of the sections (view_build),
     * the first three cut at view_len */
    uint8_t *image;
    Elf *velf;
    Dwarf *dw;
    size_t view_len[S_LINE + 1];
    char *file;
};

/* Bytes [0, end) of s available; 0 or -1. */
static int sec_need(struct lsec *s, size_t end)
{
    if (!s->present || s->broken || end > s->size)
        return -1;
    if (!s->compressed || s->have >= end)
        return 0;
    if (!s->buf) {
        s->buf = malloc(s->size ? s->size : 1);
        if (!s->buf)
            return -1;
    }
    if (!s->zinit) {
        memset(&s->z, 0, sizeof s->z);
        if (inflateInit(&s->z) != Z_OK) {
            s->broken = 1;
            return -1;
        }
        s->zinit = 1;
        s->z.next_in = (Bytef *)s->raw;
        s->z.avail_in = (uInt)s->rawlen;
    }
    /* inflate a little past what is asked (units are read one after the
     * other), never past the section */
    size_t want = end + (64 << 10);
    if (want > s->size)
        want = s->size;
    while (s->have < end) {
        s->z.next_out = s->buf + s->have;
        s->z.avail_out = (uInt)(want - s->have);
        int rc = inflate(&s->z, Z_SYNC_FLUSH);
        size_t got = (size_t)(s->z.next_out - (s->buf + s->have));
        s->have += got;
        if (rc == Z_STREAM_END && s->have < end)
            rc = Z_DATA_ERROR; /* shorter than its header said */
        if (rc != Z_OK && rc != Z_STREAM_END && !(rc == Z_BUF_ERROR && got)) {
            s->broken = 1;
            return -1;
        }
        if (!got && s->have < end) {
            s->broken = 1;
            return -1;
        }
    }
    return 0;
}

static const uint8_t *sec_data(const struct lsec *s)
{
    return s->compressed ? s->buf : s->raw;
}

static void sec_fini(struct lsec *s)
{
    if (s->zinit)
        inflateEnd(&s->z);
    free(s->buf);
}

static int sec_init(struct nat_lines *nl, struct lsec *s, Elf_Scn *scn, const GElf_Shdr *sh)
{
    if (sh->sh_type == SHT_NOBITS)
        return -1;
    Elf_Data *d = elf_rawdata(scn, NULL);
    if (!d || !d->d_buf || d->d_size != sh->sh_size)
        return -1;
    s->raw = d->d_buf;
    s->rawlen = d->d_size;
    if (!(sh->sh_flags & SHF_COMPRESSED)) {
        s->size = s->have = s->rawlen;
        s->present = 1;
        return 0;
    }
    /* the compression header, read from the raw bytes in the file's order */
    size_t hl = sizeof(Elf64_Chdr);
    if (s->rawlen < hl)
        return -1;
    uint64_t type = 0, size = 0;
    for (int i = 0; i < 4; i++)
        type |= (uint64_t)s->raw[nl->msb ? 3 - i : i] << (8 * i);
    size_t at = 8, w = 8; /* ch_size, after ch_type and ch_reserved */
    for (size_t i = 0; i < w; i++)
        size |= (uint64_t)s->raw[at + (nl->msb ? w - 1 - i : i)] << (8 * i);
    /* (DWARF deflates by 3-10 times: a claim far beyond that is a bomb,
     * and the file is left to libdwfl's own checks) */
    if (type != ELFCOMPRESS_ZLIB || size > NAT_LINES_MAX_SECTION || s->rawlen - hl > UINT32_MAX ||
        size / 64 > s->rawlen - hl)
        return -1;
    s->raw += hl;
    s->rawlen -= hl;
    s->size = (size_t)size;
    s->compressed = 1;
    s->present = 1;
    return 0;
}

struct nat_lines *nat_lines_open(const char *path)
{
    struct nat_lines *nl = calloc(1, sizeof *nl);
    if (!nl)
        return NULL;
    elf_version(EV_CURRENT);
    nl->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (nl->fd < 0)
        goto fail;
    nl->elf = elf_begin(nl->fd, ELF_C_READ_MMAP, NULL);
    if (!nl->elf || elf_kind(nl->elf) != ELF_K_ELF)
        goto fail;
    const char *id = elf_getident(nl->elf, NULL);
    if (!id)
        goto fail;
    /* 64-bit files only (a 64-bit process maps no other): anything else is
     * libdwfl's */
    if (id[EI_CLASS] != ELFCLASS64)
        goto fail;
    nl->msb = id[EI_DATA] == ELFDATA2MSB;
    size_t shstrndx;
    if (elf_getshdrstrndx(nl->elf, &shstrndx))
        goto fail;
    for (Elf_Scn *scn = NULL; (scn = elf_nextscn(nl->elf, scn));) {
        GElf_Shdr sh;
        if (!gelf_getshdr(scn, &sh))
            goto fail;
        const char *name = elf_strptr(nl->elf, shstrndx, sh.sh_name);
        if (!name)
            goto fail;
        /* strings or units in another file (dwz): libdw's business */
        if (!strcmp(name, ".gnu_debugaltlink") || !strcmp(name, ".debug_sup"))
            goto fail;
        if (strncmp(name, ".debug_", 7))
            continue;
        for (int k = 0; k < S_N; k++)
            if (!strcmp(name, sec_names[k]) && !nl->s[k].present && sec_init(nl, &nl->s[k], scn, &sh))
                goto fail; /* a section it cannot read: libdw's business */
    }
    for (int k = 0; k <= S_ARANGES; k++)
        if (!nl->s[k].present)
            goto fail;
    return nl;
fail:
    nat_lines_close(nl);
    return NULL;
}

static void view_drop(struct nat_lines *nl)
{
    if (nl->dw)
        dwarf_end(nl->dw);
    if (nl->velf)
        elf_end(nl->velf);
    free(nl->image);
    nl->dw = NULL;
    nl->velf = NULL;
    nl->image = NULL;
}

void nat_lines_close(struct nat_lines *nl)
{
    if (!nl)
        return;
    view_drop(nl);
    for (int k = 0; k < S_N; k++)
        sec_fini(&nl->s[k]);
    if (nl->elf)
        elf_end(nl->elf);
    if (nl->fd >= 0)
        close(nl->fd);
    free(nl->file);
    free(nl);
}

int nat_lines_first_vaddr(struct nat_lines *nl, uint64_t *vaddr)
{
    size_t n;
    if (elf_getphdrnum(nl->elf, &n))
        return -1;
    for (size_t i = 0; i < n; i++) {
        GElf_Phdr ph;
        if (gelf_getphdr(nl->elf, (int)i, &ph) && ph.p_type == PT_LOAD) {
            *vaddr = ph.p_vaddr;
            return 0;
        }
    }
    return -1;
}

/* --- reading the file's own bytes, bounds-checked --- */

static uint64_t rd(const struct nat_lines *nl, const uint8_t *p, int w)
{
    uint64_t v = 0;
    for (int i = 0; i < w; i++)
        v |= (uint64_t)p[nl->msb ? w - 1 - i : i] << (8 * i);
    return v;
}

/* The unit of .debug_info that covers addr, by .debug_aranges: 0 with
 * *cu_off, -1 when none does or more than one does. */
static int aranges_find(struct nat_lines *nl, uint64_t addr, uint64_t *cu_off)
{
    struct lsec *s = &nl->s[S_ARANGES];
    if (sec_need(s, s->size))
        return -1;
    const uint8_t *d = sec_data(s);
    size_t n = s->size, at = 0;
    int found = 0;
    while (at + 4 <= n) {
        size_t start = at;
        uint64_t len = rd(nl, d + at, 4);
        int off8 = 0;
        at += 4;
        if (len == 0xffffffffu) {
            if (at + 8 > n)
                return -1;
            len = rd(nl, d + at, 8);
            at += 8;
            off8 = 1;
        } else if (len >= 0xfffffff0u) {
            return -1;
        }
        if (len > n - at)
            return -1;
        size_t end = at + (size_t)len;
        size_t hdr = 2 + (off8 ? 8 : 4) + 2;
        if (end - at < hdr)
            return -1;
        unsigned version = (unsigned)rd(nl, d + at, 2);
        uint64_t info = rd(nl, d + at + 2, off8 ? 8 : 4);
        unsigned asz = d[at + 2 + (off8 ? 8 : 4)], ssz = d[at + 3 + (off8 ? 8 : 4)];
        if (version != 2 || (asz != 4 && asz != 8) || ssz != 0)
            return -1;
        at += hdr;
        /* tuples start at a multiple of twice the address size from the set */
        size_t tw = 2 * asz;
        at = start + (at - start + tw - 1) / tw * tw;
        for (; at + tw <= end; at += tw) {
            uint64_t lo = rd(nl, d + at, (int)asz), ln = rd(nl, d + at + asz, (int)asz);
            if (lo == 0 && ln == 0)
                break;
            if (addr >= lo && addr - lo < ln) {
                if (found && *cu_off != info)
                    return -1; /* two units claim it: let libdwfl decide */
                found = 1;
                *cu_off = info;
            }
        }
        at = end;
    }
    return found ? 0 : -1;
}

/* The in-memory ELF file libdw reads: headers only, each section's data
 * pointed at the bytes inflated so far (nothing copied); .debug_info,
 * .debug_abbrev and .debug_line are prefixes of their sections (view_len),
 * the others whole. */
static int view_build(struct nat_lines *nl)
{
    view_drop(nl);
    size_t shstr_off[S_N];
    char shstr[256];
    size_t shlen = 1;
    shstr[0] = 0;
    int nsec = 0;
    for (int k = 0; k < S_N; k++) {
        if (!nl->s[k].present)
            continue;
        /* a section left out would change libdw's answer (a string it
         * cannot find): none is */
        if (k > S_LINE && sec_need(&nl->s[k], nl->s[k].size))
            return -1;
        shstr_off[k] = shlen;
        size_t nlen = strlen(sec_names[k]) + 1;
        memcpy(shstr + shlen, sec_names[k], nlen);
        shlen += nlen;
        nsec++;
    }
    size_t shstr_name = shlen;
    memcpy(shstr + shlen, ".shstrtab", 10);
    shlen += 10;
    size_t ehsize = sizeof(Elf64_Ehdr);
    size_t shstr_at = ehsize;
    size_t shoff = (shstr_at + shlen + 7) & ~(size_t)7;
    size_t shentsize = sizeof(Elf64_Shdr);
    int shnum = nsec + 2;
    size_t total = shoff + (size_t)shnum * shentsize;
    GElf_Ehdr eh;
    if (!gelf_getehdr(nl->elf, &eh))
        return -1;
    uint8_t *img = calloc(1, total);
    if (!img)
        return -1;
    memcpy(img + shstr_at, shstr, shlen);
    /* in host order, the only order accepted here (see nat_lines_find);
     * the debug sections are empty in the image, their data set below */
    int sh = 1;
    Elf64_Ehdr *e = (Elf64_Ehdr *)img;
    memcpy(e->e_ident, eh.e_ident, EI_NIDENT);
    e->e_type = ET_DYN;
    e->e_machine = eh.e_machine;
    e->e_version = EV_CURRENT;
    e->e_ehsize = (Elf64_Half)ehsize;
    e->e_shoff = shoff;
    e->e_shentsize = (Elf64_Half)shentsize;
    e->e_shnum = (Elf64_Half)shnum;
    e->e_shstrndx = (Elf64_Half)(shnum - 1);
    Elf64_Shdr *s = (Elf64_Shdr *)(img + shoff);
    for (int k = 0; k < S_N; k++) {
        if (!nl->s[k].present)
            continue;
        s[sh].sh_name = (Elf64_Word)shstr_off[k];
        s[sh].sh_type = SHT_PROGBITS;
        s[sh].sh_offset = shstr_at;
        s[sh].sh_addralign = 1;
        sh++;
    }
    s[sh].sh_name = (Elf64_Word)shstr_name;
    s[sh].sh_type = SHT_STRTAB;
    s[sh].sh_offset = shstr_at;
    s[sh].sh_size = shlen;
    s[sh].sh_addralign = 1;
    nl->image = img;
    nl->velf = elf_memory((char *)img, total);
    if (!nl->velf) {
        view_drop(nl);
        return -1;
    }
    Elf_Scn *scn = NULL;
    for (int k = 0; k < S_N; k++) {
        if (!nl->s[k].present)
            continue;
        scn = elf_nextscn(nl->velf, scn);
        Elf_Data *d = scn ? elf_getdata(scn, NULL) : NULL;
        if (!d) {
            view_drop(nl);
            return -1;
        }
        size_t len = k <= S_LINE ? nl->view_len[k] : nl->s[k].size;
        d->d_buf = len ? (void *)sec_data(&nl->s[k]) : NULL;
        d->d_size = len;
        d->d_type = ELF_T_BYTE;
    }
    nl->dw = dwarf_begin_elf(nl->velf, DWARF_C_READ, NULL);
    if (!nl->dw) {
        view_drop(nl);
        return -1;
    }
    return 0;
}

/* The end of the abbreviation table at off of .debug_abbrev (inflating
 * what it reads): 0 with *end, -1 when malformed or cut. */
static int abbrev_end(struct nat_lines *nl, uint64_t off, size_t *end)
{
    struct lsec *s = &nl->s[S_ABBREV];
    size_t at = (size_t)off;
    if (off > s->size)
        return -1;
#define NEXT_BYTE(b)                                                                               \
    do {                                                                                           \
        if (sec_need(s, at + 1))                                                                   \
            return -1;                                                                             \
        (b) = sec_data(s)[at++];                                                                   \
    } while (0)
    /* a ULEB128 or SLEB128 value, only its bytes counted; is it zero? */
#define LEB(zero)                                                                                  \
    do {                                                                                           \
        uint8_t b_;                                                                                \
        int n_ = 0;                                                                                \
        (zero) = 1;                                                                                \
        do {                                                                                       \
            NEXT_BYTE(b_);                                                                         \
            if (b_ & 0x7f)                                                                         \
                (zero) = 0;                                                                        \
            if (++n_ > 10)                                                                         \
                return -1;                                                                         \
        } while (b_ & 0x80);                                                                       \
    } while (0)
    for (;;) {
        int zcode, ztag, zname, zform;
        uint8_t children;
        LEB(zcode);
        if (zcode) {
            *end = at;
            return 0;
        }
        LEB(ztag);
        (void)ztag;
        NEXT_BYTE(children);
        (void)children;
        for (;;) {
            LEB(zname);
            /* the form's value: only DW_FORM_implicit_const (one byte)
             * is followed by more */
            size_t form_at = at;
            LEB(zform);
            if (at - form_at == 1 && sec_data(s)[form_at] == DW_FORM_implicit_const) {
                int zc;
                LEB(zc);
                (void)zc;
            }
            if (zname && zform)
                break;
        }
    }
#undef LEB
#undef NEXT_BYTE
}

/* Bytes [off, end of the unit at off) of s (a unit of .debug_info or a
 * line table: an initial length, then that many bytes) available: 0 with
 * *end, or -1. */
static int unit_need(struct nat_lines *nl, struct lsec *s, uint64_t off, size_t *end, int *off8)
{
    if (off > s->size || sec_need(s, (size_t)off + 4))
        return -1;
    uint64_t len = rd(nl, sec_data(s) + off, 4), hl = 4;
    *off8 = 0;
    if (len == 0xffffffffu) {
        if (sec_need(s, (size_t)off + 12))
            return -1;
        len = rd(nl, sec_data(s) + off + 4, 8);
        hl = 12;
        *off8 = 1;
    } else if (len >= 0xfffffff0u) {
        return -1;
    }
    if (hl > s->size - off || len > s->size - off - hl)
        return -1;
    *end = (size_t)(off + hl + len);
    return sec_need(s, *end);
}

/* The view with every section's bytes inflated so far: rebuilt when some
 * grew since it was built. 0 or -1. */
static int view_update(struct nat_lines *nl)
{
    int grown = !nl->dw;
    for (int k = 0; k <= S_LINE; k++) {
        size_t have = nl->s[k].compressed ? nl->s[k].have : nl->s[k].size;
        if (have != nl->view_len[k]) {
            nl->view_len[k] = have;
            grown = 1;
        }
    }
    return grown ? view_build(nl) : 0;
}

int nat_lines_find(struct nat_lines *nl, uint64_t addr, const char **file, int *line)
{
    /* host byte order only: the view's headers are written natively */
    if (nl->msb != (__BYTE_ORDER__ == __ORDER_BIG_ENDIAN__))
        return 0;
    uint64_t cu = 0;
    if (aranges_find(nl, addr, &cu))
        return 0;
    /* the unit, and its abbreviation table */
    struct lsec *info = &nl->s[S_INFO];
    size_t end, aend;
    int off8;
    if (unit_need(nl, info, cu, &end, &off8))
        return 0;
    size_t at = (size_t)cu + (off8 ? 12 : 4), ow = off8 ? 8 : 4;
    if (end - at < 2)
        return 0;
    unsigned version = (unsigned)rd(nl, sec_data(info) + at, 2);
    size_t abbr_at = version >= 5 ? at + 4 : at + 2;
    if (version < 2 || version > 5 || abbr_at > end || end - abbr_at < ow)
        return 0;
    if (abbrev_end(nl, rd(nl, sec_data(info) + abbr_at, (int)ow), &aend))
        return 0;
    if (view_update(nl))
        return 0;
    Dwarf_Off next;
    size_t hsize;
    Dwarf_Die cudie;
    Dwarf_Attribute attr;
    Dwarf_Word stmt;
    if (dwarf_nextcu(nl->dw, cu, &next, &hsize, NULL, NULL, NULL) != 0 ||
        !dwarf_offdie(nl->dw, cu + hsize, &cudie) || dwarf_tag(&cudie) != DW_TAG_compile_unit ||
        !dwarf_attr(&cudie, DW_AT_stmt_list, &attr))
        return 0;
    /* read here: libdw checks the offset against the part of .debug_line
     * inflated so far, which does not reach it yet */
    int sw = attr.form == DW_FORM_data4 ? 4 : attr.form == DW_FORM_data8 ? 8
           : attr.form == DW_FORM_sec_offset ? (int)ow : 0;
    const uint8_t *vp = attr.valp;
    if (!sw || !vp || vp < sec_data(info) + at || vp > sec_data(info) + end - sw)
        return 0;
    stmt = rd(nl, vp, sw);
    /* its line table */
    size_t lend;
    int loff8;
    if (unit_need(nl, &nl->s[S_LINE], stmt, &lend, &loff8))
        return 0;
    size_t lhave = nl->s[S_LINE].compressed ? nl->s[S_LINE].have : nl->s[S_LINE].size;
    if (lhave != nl->view_len[S_LINE]) {
        if (view_update(nl) || dwarf_nextcu(nl->dw, cu, &next, &hsize, NULL, NULL, NULL) != 0 ||
            !dwarf_offdie(nl->dw, cu + hsize, &cudie))
            return 0;
    }
    Dwarf_Line *ln = dwarf_getsrc_die(&cudie, addr);
    int lno = 0;
    const char *src = ln ? dwarf_linesrc(ln, NULL, NULL) : NULL;
    if (!src || dwarf_lineno(ln, &lno) || lno <= 0)
        return 0;
    char *copy = strdup(src);
    if (!copy)
        return 0;
    free(nl->file);
    nl->file = copy;
    *file = copy;
    *line = lno;
    return 1;
}
