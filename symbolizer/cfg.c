/*
 * symbolizer/cfg.c — control-flow graphs of x86-64 functions, from the
 * machine code code.c maps, disassembled with capstone 4.
 *
 * sym_cfg_build decodes [addr, addr+size) linearly (the symbol table
 * says where a function is; compilers put no data inside x86-64 code),
 * then:
 *   1. classifies each instruction (jump, conditional, indirect jump,
 *      call, ret, trap) and marks calls that never return: by the callee's
 *      name (code.c), or because padding or the end of the range follows;
 *   2. resolves jump tables, as clang-16 and gcc-12 emit them: PIC tables
 *      of 32-bit offsets (`lea T(%rip),%rB; movslq (%rB,%rI,4),%rX; add
 *      %rB,%rX; jmp *%rX`) and absolute tables of 64-bit addresses (`jmp
 *      *T(,%rI,8)`, `mov T(,%rI,8),%rX; jmp *%rX`). The load and the add
 *      are found looking back at most CFG_LOOKBACK instructions along the
 *      path to the jump (fall-through, or the one direct branch to an
 *      instruction); the table base by a reaching-definition search over
 *      direct control flow (CFG_REACH instructions), so a base hoisted out
 *      of a loop is found; the entry count from the dominating `cmp $N,
 *      %rI; ja/jae default`, else at most 256 for an index zero-extended
 *      from a byte, else entries are read while they point at instruction
 *      starts inside the function and the table runs into neither another
 *      table of the function nor code. Resolution runs in rounds: a
 *      table's targets become known predecessors, so a dispatch reached
 *      only through another table resolves next round. An indirect jump
 *      left over is a tail call (SYM_INSN_TAILCALL) when it goes through
 *      a fixed slot or a pointer loaded without an index, or follows a
 *      pop / leave / add rsp; else its block is SYM_BLOCK_UNKNOWN;
 *   3. cuts blocks at leaders (the entry, direct branch targets, table
 *      targets, the instruction after anything that does not fall
 *      through), links them, and sets apart padding blocks (only nops and
 *      int3, unreachable) so they take no part in the flow.
 *
 * Workload: every function of a binary once, thousands per binary, from
 * any number of worker threads at once; a function is usually under a
 * thousand instructions, never over CFG_MAX_INSNS. Work is O(n log n) in
 * instructions (sorts and binary searches); what the table search does
 * beyond one linear decode (look-back decodes, searched instructions,
 * table entries) draws on a budget of 4096 + 64 per instruction, so code
 * made of indirect jumps costs O(n) too. The bytes are untrusted: anything
 * capstone cannot decode is FDO_EPARSE, never a guess.
 */
#include <capstone/capstone.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "symbolizer/sym_int.h"

#define CFG_MAX_SIZE  (16u << 20) /* bytes in one function */
#define CFG_MAX_INSNS (1u << 20)  /* instructions in one function */
#define CFG_MAX_TABLE 4096u	  /* entries of one jump table */
#define CFG_LOOKBACK  48	  /* instructions one pattern may span */
#define CFG_REACH     2048u	  /* instructions searched for a table base */
#define CFG_ROUNDS    4		  /* of table resolution (see find_tables) */
#define CFG_NONE      0xffffffffu

/* Internal block flags, cleared before the CFG is handed out. */
#define BLK_STOP   0x100u /* holds a trap: no successors */
#define BLK_ALLPAD 0x200u /* only nops and int3 */

/* General-purpose registers as 1..16 (rax..r15), 17 = rip, 0 = other. */
#define G_RIP	17
#define W_FLAGS (1u << 20) /* the flags in a write mask */
#define W_KNOWN (1u << 31) /* cfg_b.wmask: computed */
static const uint8_t gpr_map[X86_REG_ENDING] = {
	[X86_REG_AL] = 1,      [X86_REG_AH] = 1,    [X86_REG_AX] = 1,
	[X86_REG_EAX] = 1,     [X86_REG_RAX] = 1,   [X86_REG_CL] = 2,
	[X86_REG_CH] = 2,      [X86_REG_CX] = 2,    [X86_REG_ECX] = 2,
	[X86_REG_RCX] = 2,     [X86_REG_DL] = 3,    [X86_REG_DH] = 3,
	[X86_REG_DX] = 3,      [X86_REG_EDX] = 3,   [X86_REG_RDX] = 3,
	[X86_REG_BL] = 4,      [X86_REG_BH] = 4,    [X86_REG_BX] = 4,
	[X86_REG_EBX] = 4,     [X86_REG_RBX] = 4,   [X86_REG_SPL] = 5,
	[X86_REG_SP] = 5,      [X86_REG_ESP] = 5,   [X86_REG_RSP] = 5,
	[X86_REG_BPL] = 6,     [X86_REG_BP] = 6,    [X86_REG_EBP] = 6,
	[X86_REG_RBP] = 6,     [X86_REG_SIL] = 7,   [X86_REG_SI] = 7,
	[X86_REG_ESI] = 7,     [X86_REG_RSI] = 7,   [X86_REG_DIL] = 8,
	[X86_REG_DI] = 8,      [X86_REG_EDI] = 8,   [X86_REG_RDI] = 8,
	[X86_REG_R8B] = 9,     [X86_REG_R8W] = 9,   [X86_REG_R8D] = 9,
	[X86_REG_R8] = 9,      [X86_REG_R9B] = 10,  [X86_REG_R9W] = 10,
	[X86_REG_R9D] = 10,    [X86_REG_R9] = 10,   [X86_REG_R10B] = 11,
	[X86_REG_R10W] = 11,   [X86_REG_R10D] = 11, [X86_REG_R10] = 11,
	[X86_REG_R11B] = 12,   [X86_REG_R11W] = 12, [X86_REG_R11D] = 12,
	[X86_REG_R11] = 12,    [X86_REG_R12B] = 13, [X86_REG_R12W] = 13,
	[X86_REG_R12D] = 13,   [X86_REG_R12] = 13,  [X86_REG_R13B] = 14,
	[X86_REG_R13W] = 14,   [X86_REG_R13D] = 14, [X86_REG_R13] = 14,
	[X86_REG_R14B] = 15,   [X86_REG_R14W] = 15, [X86_REG_R14D] = 15,
	[X86_REG_R14] = 15,    [X86_REG_R15B] = 16, [X86_REG_R15W] = 16,
	[X86_REG_R15D] = 16,   [X86_REG_R15] = 16,  [X86_REG_RIP] = G_RIP,
	[X86_REG_EIP] = G_RIP,
};
#define GBIT(g) (1u << (g))
/* What a call may clobber (System V): rax rcx rdx rsi rdi r8-r11, flags. */
#define W_CALL                                                                 \
	(GBIT(1) | GBIT(2) | GBIT(3) | GBIT(7) | GBIT(8) | GBIT(9) |           \
	 GBIT(10) | GBIT(11) | GBIT(12) | W_FLAGS)

static unsigned gpr(x86_reg r)
{
	return r > X86_REG_INVALID && r < X86_REG_ENDING ? gpr_map[r] : 0;
}

/* One operand, as the jump-table matcher needs it. */
struct dop {
	uint8_t type;		    /* x86_op_type */
	uint8_t size;		    /* bytes */
	uint8_t reg;		    /* REG: gpr */
	uint8_t base, index, scale; /* MEM: gprs (0 = none) */
	int64_t val;		    /* IMM value, MEM displacement */
};

/* One decoded instruction of the look-back. */
struct dinsn {
	uint32_t idx; /* into insns; CFG_NONE = empty cache slot */
	unsigned id;  /* x86_insn */
	uint8_t nops;
	struct dop op[2];
	uint32_t writes; /* GBIT(gpr) | W_FLAGS */
	uint64_t next;	 /* address of the following instruction */
};

/* A direct branch inside the range: target <- src (insn index). */
struct cfg_ref {
	uint64_t target;
	uint32_t src, pad;
};

enum tab_kind { TAB_NONE, TAB_ABS64, TAB_REL32 };

/* A jump table found for the indirect jump insn. */
struct cfg_tab {
	uint64_t table; /* address of entry 0 */
	uint64_t base;	/* REL32: target = base + entry */
	uint32_t insn;
	uint32_t kind;	   /* enum tab_kind */
	uint32_t count;	   /* entries from the bound check; 0 unknown */
	uint32_t first, n; /* resolved: distinct targets in tgts */
	uint32_t exits;	   /* some entries leave the function */
	uint32_t cap;	   /* no bound, but at most this many entries */
};

#define DCACHE 64

/* One build. */
struct cfg_b {
	const sym_code *code;
	csh cs;
	cs_insn *ci;
	uint64_t lo, hi;
	const uint8_t *bytes;
	struct sym_insn *insns;
	size_t ninsns, cinsns;
	struct cfg_ref *refs;
	size_t nrefs, crefs;
	struct cfg_tab *tabs;
	size_t ntabs, ctabs;
	uint64_t *tgts;
	size_t ntgts, ctgts;
	uint64_t *leaders;
	size_t nleaders, cleaders;
	struct sym_block *blocks;
	size_t nblocks, cblocks;
	struct sym_edge *edges;
	size_t nedges, cedges;
	size_t budget;	 /* look-back work and table entries left */
	uint32_t *seen;	 /* value_of's visited marks (== gen), per insn */
	uint32_t *wmask; /* per insn: registers written, once known */
	uint32_t gen;
	struct dinsn dcache[DCACHE];
};

/* capstone's cs_open sets up its architecture tables on first use without
 * a lock: do that once before threads race into it. */
static pthread_once_t cs_once = PTHREAD_ONCE_INIT;
static void cs_warm(void)
{
	csh h;
	if (cs_open(CS_ARCH_X86, CS_MODE_64, &h) == CS_ERR_OK)
		cs_close(&h);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static int cmp_ref(const void *a, const void *b)
{
	const struct cfg_ref *x = a, *y = b;
	if (x->target != y->target)
		return x->target < y->target ? -1 : 1;
	return x->src < y->src ? -1 : x->src > y->src;
}

static size_t sort_unique(uint64_t *v, size_t n)
{
	if (!n)
		return 0;
	qsort(v, n, sizeof *v, cmp_u64);
	size_t k = 1;
	for (size_t i = 1; i < n; i++)
		if (v[i] != v[k - 1])
			v[k++] = v[i];
	return k;
}

/* insn_at: the index of the instruction starting at a, or CFG_NONE. */
static uint32_t insn_at(const struct cfg_b *b, uint64_t a)
{
	size_t lo = 0, hi = b->ninsns;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (b->insns[mid].addr < a)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < b->ninsns && b->insns[lo].addr == a ? (uint32_t)lo
							: CFG_NONE;
}

/* block_at: the index of the block starting at a (a leader). */
static uint32_t block_at(const struct sym_block *bl, size_t n, uint64_t a)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (bl[mid].start <= a)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo ? (uint32_t)(lo - 1) : CFG_NONE;
}

static int in_range(const struct cfg_b *b, uint64_t a)
{
	return a >= b->lo && a < b->hi;
}

static int is_int3(const struct cfg_b *b, const struct sym_insn *in)
{
	return in->kind == SYM_INSN_STOP && in->len == 1 &&
	       b->bytes[in->addr - b->lo] == 0xcc;
}

/* Padding: what compilers and linkers put between code: nops and int3. */
static int is_pad(const struct cfg_b *b, const struct sym_insn *in)
{
	return (in->flags & SYM_INSN_NOP) || is_int3(b, in);
}

/* falls_through: whether the next instruction can follow this one. */
static int falls_through(const struct sym_insn *in)
{
	switch (in->kind) {
	case SYM_INSN_JUMP:
	case SYM_INSN_IJUMP:
	case SYM_INSN_RET:
	case SYM_INSN_STOP:
		return 0;
	default:
		return !(in->flags & SYM_INSN_NORETURN);
	}
}

/* A memory operand naming one fixed slot: rip-relative or absolute. */
static int fixed_slot(const cs_insn *ci, const cs_x86_op *op, uint64_t *slot)
{
	if (op->type != X86_OP_MEM || op->mem.index != X86_REG_INVALID)
		return 0;
	if (op->mem.base == X86_REG_RIP)
		*slot = ci->address + ci->size + (uint64_t)op->mem.disp;
	else if (op->mem.base == X86_REG_INVALID)
		*slot = (uint64_t)op->mem.disp;
	else
		return 0;
	return 1;
}

/* classify fills in from the decoded ci. */
static void classify(const struct cfg_b *b, const cs_insn *ci,
		     struct sym_insn *in)
{
	const cs_x86 *x = &ci->detail->x86;
	const cs_x86_op *op = x->op_count ? &x->operands[0] : NULL;
	int imm = op && op->type == X86_OP_IMM;
	uint64_t slot;
	/* Zero the padding too: CFGs compare equal byte for byte. */
	memset(in, 0, sizeof *in);
	in->addr = ci->address;
	in->len = (uint8_t)ci->size;
	switch (ci->id) {
	case X86_INS_JMP:
		if (imm) {
			in->kind = SYM_INSN_JUMP;
			in->target = (uint64_t)op->imm;
		} else {
			in->kind = SYM_INSN_IJUMP;
			if (op && fixed_slot(ci, op, &slot))
				in->flags |= SYM_INSN_TAILCALL;
		}
		return;
	case X86_INS_LJMP:
		in->kind = SYM_INSN_IJUMP;
		return;
	case X86_INS_CALL:
		if (imm) {
			in->kind = SYM_INSN_CALL;
			in->target = (uint64_t)op->imm;
			if (sym_code_noreturn(b->code, in->target))
				in->flags |= SYM_INSN_NORETURN;
		} else {
			in->kind = SYM_INSN_ICALL;
			if (op && fixed_slot(ci, op, &slot) &&
			    sym_code_noreturn_slot(b->code, slot))
				in->flags |= SYM_INSN_NORETURN;
		}
		return;
	case X86_INS_LCALL:
		in->kind = SYM_INSN_ICALL;
		return;
	case X86_INS_RET:
	case X86_INS_RETF:
	case X86_INS_RETFQ:
	case X86_INS_IRET:
	case X86_INS_IRETD:
	case X86_INS_IRETQ:
	case X86_INS_SYSRET:
	case X86_INS_SYSEXIT:
		in->kind = SYM_INSN_RET;
		return;
	case X86_INS_UD2:
	case X86_INS_UD2B:
	case X86_INS_UD0:
	case X86_INS_HLT:
	case X86_INS_INT3:
		in->kind = SYM_INSN_STOP;
		return;
	case X86_INS_NOP:
		in->flags |= SYM_INSN_NOP;
		return;
	case X86_INS_LOOP:
	case X86_INS_LOOPE:
	case X86_INS_LOOPNE:
	case X86_INS_JRCXZ:
	case X86_INS_JECXZ:
	case X86_INS_JCXZ:
		break;
	default:
		if (!cs_insn_group(b->cs, ci, CS_GRP_JUMP))
			return; /* SYM_INSN_PLAIN */
	}
	/* A conditional jump; capstone gives its target as the immediate. */
	if (imm) {
		in->kind = SYM_INSN_COND;
		in->target = (uint64_t)op->imm;
	} else {
		in->kind = SYM_INSN_IJUMP;
	}
}

/* decode_all decodes the range into b->insns and b->refs. */
static int decode_all(struct cfg_b *b)
{
	const uint8_t *p = b->bytes;
	size_t left = b->hi - b->lo;
	uint64_t a = b->lo;
	while (left) {
		if (!cs_disasm_iter(b->cs, &p, &left, &a, b->ci))
			return cs_errno(b->cs) == CS_ERR_MEM ? FDO_ENOMEM
							     : FDO_EPARSE;
		if (b->ninsns >= CFG_MAX_INSNS)
			return FDO_ELIMIT;
		if (fdo_grow(b->insns, b->cinsns, b->ninsns + 1))
			return FDO_ENOMEM;
		struct sym_insn *in = &b->insns[b->ninsns++];
		classify(b, b->ci, in);
		if ((in->kind == SYM_INSN_JUMP || in->kind == SYM_INSN_COND) &&
		    in_range(b, in->target)) {
			if (fdo_grow(b->refs, b->crefs, b->nrefs + 1))
				return FDO_ENOMEM;
			b->refs[b->nrefs++] = (struct cfg_ref){
				in->target, (uint32_t)(b->ninsns - 1), 0};
		}
	}
	if (b->nrefs)
		qsort(b->refs, b->nrefs, sizeof *b->refs, cmp_ref);
	/* A branch into the middle of an instruction: not code we can
	 * describe (overlapping instructions, or data decoded as code). */
	for (size_t i = 0; i < b->nrefs; i++)
		if (insn_at(b, b->refs[i].target) == CFG_NONE)
			return FDO_EPARSE;
	return FDO_OK;
}

/*
 * mark_noreturn: a call is taken not to return when the end of the range
 * or only padding follows it, or a trap comes right after it (compilers
 * put nothing reachable after a noreturn call; a returning call is
 * followed by code).
 */
static void mark_noreturn(struct cfg_b *b)
{
	size_t last_real = SIZE_MAX;
	for (size_t i = b->ninsns; i-- > 0;)
		if (!is_pad(b, &b->insns[i])) {
			last_real = i;
			break;
		}
	for (size_t i = 0; i < b->ninsns; i++) {
		struct sym_insn *in = &b->insns[i];
		if (in->kind != SYM_INSN_CALL && in->kind != SYM_INSN_ICALL)
			continue;
		if (i == last_real || i + 1 == b->ninsns ||
		    b->insns[i + 1].kind == SYM_INSN_STOP)
			in->flags |= SYM_INSN_NORETURN;
	}
}

/* ------------------------------------------------------- look-back -- */

static void dop_fill(const cs_x86_op *o, struct dop *d)
{
	*d = (struct dop){.type = (uint8_t)o->type, .size = o->size};
	if (o->type == X86_OP_REG) {
		d->reg = (uint8_t)gpr(o->reg);
	} else if (o->type == X86_OP_IMM) {
		d->val = o->imm;
	} else if (o->type == X86_OP_MEM) {
		d->base = (uint8_t)gpr(o->mem.base);
		d->index = (uint8_t)gpr(o->mem.index);
		d->scale = (uint8_t)o->mem.scale;
		d->val = o->mem.disp;
		/* A segment override or an unknown base: not a table. */
		if (o->mem.segment != X86_REG_INVALID ||
		    (o->mem.base != X86_REG_INVALID && !d->base) ||
		    (o->mem.index != X86_REG_INVALID && !d->index))
			d->type = X86_OP_INVALID;
	}
}

/* decode_at decodes insns[k] with its operands and the registers it
 * writes (through a small cache: several walks cross one instruction).
 * Returns NULL when the budget is spent or capstone fails. */
static const struct dinsn *decode_at(struct cfg_b *b, uint32_t k)
{
	struct dinsn *d = &b->dcache[k % DCACHE];
	if (d->idx == k)
		return d;
	if (!b->budget)
		return NULL;
	b->budget--;
	const struct sym_insn *in = &b->insns[k];
	const uint8_t *p = b->bytes + (in->addr - b->lo);
	size_t left = in->len;
	uint64_t a = in->addr;
	if (!cs_disasm_iter(b->cs, &p, &left, &a, b->ci))
		return NULL;
	const cs_insn *ci = b->ci;
	const cs_x86 *x = &ci->detail->x86;
	*d = (struct dinsn){.idx = k, .id = ci->id, .next = in->addr + in->len};
	d->nops = x->op_count < 2 ? x->op_count : 2;
	for (unsigned i = 0; i < d->nops; i++)
		dop_fill(&x->operands[i], &d->op[i]);
	cs_regs rr, ww;
	uint8_t nr = 0, nw = 0;
	if (cs_regs_access(b->cs, ci, rr, &nr, ww, &nw) != CS_ERR_OK) {
		d->writes = ~W_KNOWN;
	} else {
		for (unsigned i = 0; i < nw; i++) {
			if (ww[i] == X86_REG_EFLAGS)
				d->writes |= W_FLAGS;
			else if (gpr(ww[i]))
				d->writes |= GBIT(gpr(ww[i]));
		}
	}
	if (in->kind == SYM_INSN_CALL || in->kind == SYM_INSN_ICALL)
		d->writes |= W_CALL;
	return d;
}

/* A walk backwards along one path to an instruction. */
struct walk {
	uint32_t at;
	int left;
	int taken; /* the last step went back over a branch's taken edge */
};

/* walk_prev steps to the instruction executed before w->at: the one
 * before it if that falls through, else the only direct branch to it. */
static int walk_prev(const struct cfg_b *b, struct walk *w)
{
	if (w->left-- <= 0)
		return 0;
	uint32_t k = w->at;
	if (k > 0 && falls_through(&b->insns[k - 1])) {
		w->at = k - 1;
		w->taken = 0;
		return 1;
	}
	uint64_t a = b->insns[k].addr;
	size_t lo = 0, hi = b->nrefs;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (b->refs[mid].target < a)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < b->nrefs && b->refs[lo].target == a &&
	    (lo + 1 == b->nrefs || b->refs[lo + 1].target != a)) {
		w->at = b->refs[lo].src;
		w->taken = 1;
		return 1;
	}
	return 0;
}

/* find_def: the nearest instruction before at (on the walked path) that
 * writes register g, copied into *d; its index, or CFG_NONE. */
static uint32_t find_def(struct cfg_b *b, uint32_t at, unsigned g,
			 struct dinsn *d)
{
	struct walk w = {at, CFG_LOOKBACK, 0};
	if (!g || g == G_RIP)
		return CFG_NONE;
	while (walk_prev(b, &w)) {
		const struct dinsn *x = decode_at(b, w.at);
		if (!x)
			return CFG_NONE;
		if (x->writes & GBIT(g)) {
			*d = *x;
			return w.at;
		}
	}
	return CFG_NONE;
}

/* def_const: the constant that the instruction d (insns[k]) writes to
 * register g: lea of a rip-relative or absolute address, mov of an
 * immediate, or a 64-bit copy of a register holding one (followed back
 * along one path). */
static int value_linear(struct cfg_b *b, uint32_t at, unsigned g, int depth,
			uint64_t *val);
static int def_const(struct cfg_b *b, uint32_t k, const struct dinsn *dp,
		     unsigned g, int depth, uint64_t *val)
{
	struct dinsn d = *dp;
	if (d.nops != 2 || d.op[0].type != X86_OP_REG || d.op[0].reg != g)
		return 0;
	const struct dop *s = &d.op[1];
	if (d.id == X86_INS_LEA && s->type == X86_OP_MEM && !s->index) {
		if (s->base == G_RIP) {
			*val = d.next + (uint64_t)s->val;
			return 1;
		}
		if (!s->base) {
			*val = (uint64_t)s->val;
			return 1;
		}
		return 0;
	}
	if ((d.id == X86_INS_MOV || d.id == X86_INS_MOVABS) &&
	    s->type == X86_OP_IMM) {
		*val = d.op[0].size == 4 ? (uint32_t)s->val : (uint64_t)s->val;
		return 1;
	}
	if (d.id == X86_INS_MOV && s->type == X86_OP_REG && d.op[0].size == 8 &&
	    depth < 3)
		return value_linear(b, k, s->reg, depth + 1, val);
	return 0;
}

/* value_linear: the constant register g holds before at, from its
 * nearest definition on the walked path. */
static int value_linear(struct cfg_b *b, uint32_t at, unsigned g, int depth,
			uint64_t *val)
{
	struct dinsn d;
	uint32_t k = find_def(b, at, g, &d);
	return k != CFG_NONE && def_const(b, k, &d, g, depth, val);
}

/* writes_of: the registers insns[k] writes (W_KNOWN set), decoded once
 * per build; 0 when it cannot be decoded. */
static uint32_t writes_of(struct cfg_b *b, uint32_t k)
{
	if (!(b->wmask[k] & W_KNOWN)) {
		const struct dinsn *x = decode_at(b, k);
		if (!x)
			return 0;
		b->wmask[k] = x->writes | W_KNOWN;
	}
	return b->wmask[k];
}

/* push_preds pushes the unvisited predecessors of insns[k] (the one
 * before it if that falls through, and every direct branch to it). */
static int push_preds(struct cfg_b *b, uint32_t k, uint32_t *st, size_t *top)
{
	uint64_t a = b->insns[k].addr;
	if (k > 0 && falls_through(&b->insns[k - 1]) &&
	    b->seen[k - 1] != b->gen) {
		if (*top >= CFG_REACH)
			return 0;
		b->seen[k - 1] = b->gen;
		st[(*top)++] = k - 1;
	}
	size_t lo = 0, hi = b->nrefs;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (b->refs[mid].target < a)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < b->nrefs && b->refs[lo].target == a; lo++) {
		uint32_t src = b->refs[lo].src;
		if (!b->budget)
			return 0;
		b->budget--;
		if (b->seen[src] == b->gen)
			continue;
		if (*top >= CFG_REACH)
			return 0;
		b->seen[src] = b->gen;
		st[(*top)++] = src;
	}
	return 1;
}

/*
 * value_of: the constant register g holds before insns[at], when every
 * definition of g that reaches it through direct control flow sets the
 * same constant (def_const). A search over at most CFG_REACH
 * instructions, so a table base hoisted out of a loop is found. An
 * instruction with no known predecessor (a jump-table target) adds
 * nothing; reaching the function's entry without a definition fails.
 */
static int value_of(struct cfg_b *b, uint32_t at, unsigned g, uint64_t *val)
{
	if (!g || g == G_RIP)
		return 0;
	if (!b->seen) {
		b->seen = calloc(b->ninsns, sizeof *b->seen);
		b->wmask = calloc(b->ninsns, sizeof *b->wmask);
		if (!b->seen || !b->wmask)
			return 0;
	}
	if (++b->gen == 0) {
		memset(b->seen, 0, b->ninsns * sizeof *b->seen);
		b->gen = 1;
	}
	uint32_t st[CFG_REACH];
	size_t top = 0, visited = 0;
	int have = 0;
	if (!push_preds(b, at, st, &top))
		return 0;
	if (at == 0)
		return 0;
	while (top) {
		uint32_t k = st[--top];
		if (++visited > CFG_REACH || !b->budget)
			return 0;
		b->budget--;
		uint32_t w = writes_of(b, k);
		if (!w)
			return 0;
		if (w & GBIT(g)) {
			const struct dinsn *x = decode_at(b, k);
			if (!x)
				return 0;
			struct dinsn d = *x;
			uint64_t v;
			if (!def_const(b, k, &d, g, 0, &v) ||
			    (have && v != *val))
				return 0;
			*val = v;
			have = 1;
			continue;
		}
		if (k == 0 || !push_preds(b, k, st, &top))
			return 0;
	}
	return have;
}

/* table_addr: the address a table operand [base + index*scale + disp]
 * starts at, before instruction at. */
static int table_addr(struct cfg_b *b, uint32_t at, const struct dop *m,
		      uint64_t *t)
{
	if (m->base == G_RIP)
		return 0;
	if (!m->base) {
		*t = (uint64_t)m->val;
		return 1;
	}
	uint64_t v;
	if (!value_of(b, at, m->base, &v))
		return 0;
	*t = v + (uint64_t)m->val;
	return 1;
}

/*
 * bound finds the entry count of a table indexed by register g at the
 * load insns[at]: the `cmp $N, g'; ja/jae` (or, reached by its taken
 * edge, jbe/jb) that guards it, g' a copy of g. Returns the count, 0 when
 * no bound is found, or CFG_NONE when the bound is too large to trust.
 */
static uint32_t bound(struct cfg_b *b, uint32_t at, unsigned g, uint32_t *cap)
{
	uint32_t set = GBIT(g);
	struct walk w = {at, CFG_LOOKBACK, 0};
	unsigned pend = 0; /* the conditional jump after the flags' setter */
	int pend_taken = 0;
	while (walk_prev(b, &w)) {
		int taken = w.taken;
		const struct dinsn *d = decode_at(b, w.at);
		if (!d)
			return 0;
		if (b->insns[w.at].kind == SYM_INSN_COND) {
			pend = d->id;
			pend_taken = taken;
		} else if (d->id == X86_INS_CMP && d->nops == 2 &&
			   d->op[0].type == X86_OP_REG &&
			   (set & GBIT(d->op[0].reg)) &&
			   d->op[1].type == X86_OP_IMM && pend) {
			uint64_t n = (uint64_t)d->op[1].val;
			if (d->op[0].size == 4)
				n = (uint32_t)n;
			int incl = (!pend_taken && pend == X86_INS_JA) ||
				   (pend_taken && pend == X86_INS_JBE);
			int excl = (!pend_taken && pend == X86_INS_JAE) ||
				   (pend_taken && pend == X86_INS_JB);
			if (!incl && !excl)
				return 0;
			if (n >= CFG_MAX_TABLE || (excl && !n))
				return CFG_NONE;
			return (uint32_t)n + (uint32_t)incl;
		}
		if (d->writes & W_FLAGS)
			pend = 0;
		/* An index zero-extended from 8 bits: at most 256 entries
		 * (CPython's computed-goto dispatch has no other bound). */
		if ((d->writes & set) && d->id == X86_INS_MOVZX &&
		    d->nops == 2 && d->op[0].type == X86_OP_REG &&
		    (set & GBIT(d->op[0].reg)) && d->op[1].size == 1) {
			*cap = 256;
			return 0;
		}
		if (d->writes & set) {
			int copy = (d->id == X86_INS_MOV ||
				    d->id == X86_INS_MOVZX ||
				    d->id == X86_INS_MOVSXD ||
				    d->id == X86_INS_MOVSX) &&
				   d->nops == 2 &&
				   d->op[0].type == X86_OP_REG &&
				   d->op[1].type == X86_OP_REG &&
				   d->op[1].reg && d->op[1].reg != G_RIP;
			set &= ~d->writes;
			if (copy)
				set |= GBIT(d->op[1].reg);
			if (!set)
				return 0;
		}
	}
	return 0;
}

/* match_rel: at insns[k], `add lr, vr` where lr holds a 32-bit entry
 * loaded by `movslq (B,I,4), lr` and vr the base address. */
static int match_rel(struct cfg_b *b, uint32_t k, unsigned lr, unsigned vr,
		     struct cfg_tab *t)
{
	struct dinsn ld;
	uint32_t l = find_def(b, k, lr, &ld);
	if (l == CFG_NONE || ld.id != X86_INS_MOVSXD || ld.nops != 2 ||
	    ld.op[0].size != 8 || ld.op[1].type != X86_OP_MEM ||
	    ld.op[1].size != 4 || ld.op[1].scale != 4 || !ld.op[1].index)
		return 0;
	uint64_t base, tab;
	if (!value_of(b, k, vr, &base) || !table_addr(b, l, &ld.op[1], &tab))
		return 0;
	t->kind = TAB_REL32;
	t->base = base;
	t->table = tab;
	t->count = bound(b, l, ld.op[1].index, &t->cap);
	return 1;
}

/* match_abs: a load of a 64-bit entry [B + I*8 + disp] at insns[k]. */
static int match_abs(struct cfg_b *b, uint32_t k, const struct dop *m,
		     struct cfg_tab *t)
{
	uint64_t tab;
	if (m->type != X86_OP_MEM || m->scale != 8 || !m->index ||
	    m->index == G_RIP || !table_addr(b, k, m, &tab))
		return 0;
	t->kind = TAB_ABS64;
	t->table = tab;
	t->count = bound(b, k, m->index, &t->cap);
	return 1;
}

/* match_table recognises the table an indirect jump insns[j] uses. */
static void match_table(struct cfg_b *b, uint32_t j, struct cfg_tab *t)
{
	const struct dinsn *jd = decode_at(b, j);
	if (!jd || jd->nops != 1)
		return;
	struct dop op = jd->op[0];
	if (op.type == X86_OP_MEM) {
		match_abs(b, j, &op, t);
		return;
	}
	if (op.type != X86_OP_REG || !op.reg || op.reg == G_RIP)
		return;
	unsigned r = op.reg;
	uint32_t at = j;
	for (int hop = 0; hop < 4; hop++) {
		struct dinsn d;
		uint32_t k = find_def(b, at, r, &d);
		if (k == CFG_NONE || d.nops != 2 ||
		    d.op[0].type != X86_OP_REG || d.op[0].reg != r ||
		    d.op[0].size != 8)
			return;
		if (d.id == X86_INS_MOV && d.op[1].type == X86_OP_MEM &&
		    d.op[1].size == 8) {
			match_abs(b, k, &d.op[1], t);
			return;
		}
		if (d.id == X86_INS_MOV && d.op[1].type == X86_OP_REG) {
			r = d.op[1].reg;
			at = k;
			continue;
		}
		if (d.id == X86_INS_ADD && d.op[1].type == X86_OP_REG &&
		    d.op[1].reg && d.op[1].reg != G_RIP) {
			if (!match_rel(b, k, r, d.op[1].reg, t))
				match_rel(b, k, d.op[1].reg, r, t);
		}
		return;
	}
}

/* valid_target: a table entry must land on an instruction of the range. */
static int valid_target(const struct cfg_b *b, uint64_t a)
{
	return in_range(b, a) && insn_at(b, a) != CFG_NONE;
}

/* read_table reads t's entries into b->tgts (sorted, distinct) and sets
 * t->n; t->n stays 0 when the table is not usable. starts: the sorted
 * distinct addresses of all tables of the function. */
static int read_table(struct cfg_b *b, struct cfg_tab *t,
		      const uint64_t *starts, size_t nstarts)
{
	size_t w = t->kind == TAB_ABS64 ? 8 : 4;
	uint32_t limit = t->count ? t->count : t->cap ? t->cap : CFG_MAX_TABLE;
	/* An unbounded table ends where the next one starts. */
	size_t lo = 0, hi = nstarts;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (starts[mid] <= t->table)
			lo = mid + 1;
		else
			hi = mid;
	}
	uint64_t next = lo < nstarts ? starts[lo] : UINT64_MAX;
	size_t first = b->ntgts, outside = 0;
	for (uint32_t i = 0; i < limit; i++) {
		uint64_t ea = t->table + (uint64_t)i * w;
		if (ea < t->table || !b->budget)
			break;
		b->budget--;
		if (!t->count && (ea >= next || ea + w > next ||
				  sym_code_is_code(b->code, ea)))
			break;
		uint8_t e[8];
		if (sym_code_read(b->code, ea, e, w) != FDO_OK)
			break;
		uint64_t target;
		if (w == 8) {
			memcpy(&target, e, 8);
		} else {
			int32_t off;
			memcpy(&off, e, 4);
			target = t->base + (uint64_t)(int64_t)off;
		}
		if (!valid_target(b, target)) {
			/* A bounded table may jump out of the function, to
			 * code (gcc's .cold part): that path leaves. So may
			 * a capped one of 64-bit addresses (garbage past its
			 * end rarely looks like a code address; 32-bit
			 * offsets from a base in .text often would). */
			if ((!t->count && !(t->cap && w == 8)) ||
			    in_range(b, target) ||
			    !sym_code_is_code(b->code, target))
				break;
			t->exits = 1;
			outside++;
			continue;
		}
		if (fdo_grow(b->tgts, b->ctgts, b->ntgts + 1))
			return FDO_ENOMEM;
		b->tgts[b->ntgts++] = target;
	}
	size_t got = b->ntgts - first;
	/* With a known bound every entry must be good. */
	if (!got || (t->count && got + outside != t->count)) {
		b->ntgts = first;
		t->exits = 0;
		return FDO_OK;
	}
	t->first = (uint32_t)first;
	t->n = (uint32_t)sort_unique(b->tgts + first, got);
	b->ntgts = first + t->n;
	return FDO_OK;
}

static int cmp_tab(const void *a, const void *b)
{
	const struct cfg_tab *x = a, *y = b;
	return x->insn < y->insn ? -1 : x->insn > y->insn;
}

/* table_round tries the indirect jumps not resolved yet; *found gets how
 * many it resolved. Tables resolved are appended to b->tabs. */
static int table_round(struct cfg_b *b, size_t *found)
{
	struct cfg_tab *cand = NULL;
	size_t ncand = 0, ccand = 0;
	int err = FDO_OK;
	*found = 0;
	for (size_t j = 0; j < b->ninsns && !err; j++) {
		const struct sym_insn *in = &b->insns[j];
		if (in->kind != SYM_INSN_IJUMP ||
		    (in->flags & (SYM_INSN_TAILCALL | SYM_INSN_TABLE)))
			continue;
		struct cfg_tab t = {.insn = (uint32_t)j};
		for (size_t i = 0; i < DCACHE; i++)
			b->dcache[i].idx = CFG_NONE;
		match_table(b, (uint32_t)j, &t);
		if (t.kind == TAB_NONE || t.count == CFG_NONE)
			continue;
		if (fdo_grow(cand, ccand, ncand + 1))
			err = FDO_ENOMEM;
		else
			cand[ncand++] = t;
	}
	/* Where tables start: an unbounded one stops at the next. */
	uint64_t *starts = NULL;
	size_t nstarts = b->ntabs + ncand;
	if (!err && ncand) {
		starts = malloc(nstarts * sizeof *starts);
		if (!starts)
			err = FDO_ENOMEM;
	}
	if (!err && ncand) {
		for (size_t i = 0; i < b->ntabs; i++)
			starts[i] = b->tabs[i].table;
		for (size_t i = 0; i < ncand; i++)
			starts[b->ntabs + i] = cand[i].table;
		nstarts = sort_unique(starts, nstarts);
	}
	for (size_t i = 0; i < ncand && !err; i++) {
		err = read_table(b, &cand[i], starts, nstarts);
		if (err || !cand[i].n)
			continue;
		if (fdo_grow(b->tabs, b->ctabs, b->ntabs + 1)) {
			err = FDO_ENOMEM;
			break;
		}
		b->tabs[b->ntabs++] = cand[i];
		b->insns[cand[i].insn].flags |= SYM_INSN_TABLE;
		(*found)++;
		/* Its targets now have a known predecessor: the jump. */
		for (uint32_t k = 0; k < cand[i].n && !err; k++) {
			if (fdo_grow(b->refs, b->crefs, b->nrefs + 1))
				err = FDO_ENOMEM;
			else
				b->refs[b->nrefs++] = (struct cfg_ref){
					b->tgts[cand[i].first + k],
					cand[i].insn, 0};
		}
	}
	free(starts);
	free(cand);
	if (!err && *found)
		qsort(b->refs, b->nrefs, sizeof *b->refs, cmp_ref);
	return err;
}

/*
 * find_tables resolves the indirect jumps that use jump tables, in rounds:
 * a table's targets become known predecessors, so a dispatch reached only
 * through another table (a switch in a loop whose cases jump to the next
 * dispatch) finds its table base in the next round.
 */
static int find_tables(struct cfg_b *b)
{
	for (int round = 0; round < CFG_ROUNDS; round++) {
		size_t found;
		int err = table_round(b, &found);
		if (err)
			return err;
		if (!found)
			break;
	}
	if (b->ntabs)
		qsort(b->tabs, b->ntabs, sizeof *b->tabs, cmp_tab);
	return FDO_OK;
}

/*
 * tail_call tells whether the unresolved indirect jump insns[j] is a tail
 * call: it jumps through a pointer loaded without an index (a vtable slot,
 * a struct field; a stack slot excepted: that may be a computed goto's
 * label), or the stack frame was torn down just before it (pop, leave,
 * add rsp). Jump tables always use an index.
 */
static int tail_call(struct cfg_b *b, uint32_t j)
{
	for (size_t i = 0; i < DCACHE; i++)
		b->dcache[i].idx = CFG_NONE;
	const struct dinsn *jd = decode_at(b, j);
	if (!jd || jd->nops != 1)
		return 0;
	struct dop op = jd->op[0];
	if (op.type == X86_OP_REG && op.reg && op.reg != G_RIP) {
		struct dinsn d;
		if (find_def(b, j, op.reg, &d) != CFG_NONE &&
		    d.id == X86_INS_MOV && d.nops == 2 &&
		    d.op[0].type == X86_OP_REG && d.op[0].reg == op.reg)
			op = d.op[1];
	}
	if (op.type == X86_OP_MEM && !op.index && op.base != 5 && op.base != 6)
		return 1; /* not through rsp or rbp */
	uint32_t k = j;
	for (int n = 0; n < 8 && k > 0 && falls_through(&b->insns[k - 1]);
	     n++) {
		const struct dinsn *d = decode_at(b, --k);
		if (!d)
			return 0;
		if (d->id == X86_INS_POP || d->id == X86_INS_LEAVE ||
		    (d->id == X86_INS_ADD && d->nops == 2 &&
		     d->op[0].type == X86_OP_REG && d->op[0].reg == 5))
			return 1;
	}
	return 0;
}

static void find_tail_calls(struct cfg_b *b)
{
	for (size_t j = 0; j < b->ninsns; j++) {
		struct sym_insn *in = &b->insns[j];
		if (in->kind == SYM_INSN_IJUMP &&
		    !(in->flags & (SYM_INSN_TAILCALL | SYM_INSN_TABLE)) &&
		    tail_call(b, (uint32_t)j))
			in->flags |= SYM_INSN_TAILCALL;
	}
}

/* ------------------------------------------------- blocks and edges -- */

static int ends_block(const struct sym_insn *in)
{
	return in->kind == SYM_INSN_JUMP || in->kind == SYM_INSN_COND ||
	       in->kind == SYM_INSN_IJUMP || in->kind == SYM_INSN_RET ||
	       in->kind == SYM_INSN_STOP || (in->flags & SYM_INSN_NORETURN);
}

static int push_leader(struct cfg_b *b, uint64_t a)
{
	if (fdo_grow(b->leaders, b->cleaders, b->nleaders + 1))
		return FDO_ENOMEM;
	b->leaders[b->nleaders++] = a;
	return FDO_OK;
}

static int make_blocks(struct cfg_b *b)
{
	int err = push_leader(b, b->lo);
	for (size_t i = 0; i < b->nrefs && !err; i++)
		err = push_leader(b, b->refs[i].target);
	for (size_t i = 0; i < b->ntgts && !err; i++)
		err = push_leader(b, b->tgts[i]);
	for (size_t i = 0; i + 1 < b->ninsns && !err; i++) {
		const struct sym_insn *in = &b->insns[i];
		/* A run of int3 (and nops) after an int3 is one block. */
		if (ends_block(in) &&
		    !(is_int3(b, in) && is_pad(b, &b->insns[i + 1])))
			err = push_leader(b, b->insns[i + 1].addr);
	}
	if (err)
		return err;
	b->nleaders = sort_unique(b->leaders, b->nleaders);
	if (fdo_grow(b->blocks, b->cblocks, b->nleaders))
		return FDO_ENOMEM;
	size_t li = 0;
	for (size_t i = 0; i < b->ninsns; i++) {
		const struct sym_insn *in = &b->insns[i];
		if (li < b->nleaders && b->leaders[li] == in->addr) {
			li++;
			b->blocks[b->nblocks++] = (struct sym_block){
				.start = in->addr,
				.first_insn = (uint32_t)i,
				.flags = BLK_ALLPAD,
			};
		}
		struct sym_block *bl = &b->blocks[b->nblocks - 1];
		bl->end = in->addr + in->len;
		bl->ninsns++;
		if (in->kind == SYM_INSN_STOP)
			bl->flags |= BLK_STOP;
		if (!is_pad(b, in))
			bl->flags &= ~BLK_ALLPAD;
	}
	return FDO_OK;
}

static int push_edge(struct cfg_b *b, uint32_t from, uint32_t to, uint32_t kind)
{
	if (fdo_grow(b->edges, b->cedges, b->nedges + 1))
		return FDO_ENOMEM;
	b->edges[b->nedges++] = (struct sym_edge){from, to, kind};
	return FDO_OK;
}

static const struct cfg_tab *tab_of(const struct cfg_b *b, uint32_t insn)
{
	for (size_t lo = 0, hi = b->ntabs; lo < hi;) {
		size_t mid = lo + (hi - lo) / 2;
		if (b->tabs[mid].insn == insn)
			return &b->tabs[mid];
		if (b->tabs[mid].insn < insn)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* succs adds the edges out of block i and sets its EXIT / UNKNOWN. */
static int succs(struct cfg_b *b, uint32_t i, uint32_t *nunresolved)
{
	struct sym_block *bl = &b->blocks[i];
	uint32_t last = bl->first_insn + bl->ninsns - 1;
	const struct sym_insn *in = &b->insns[last];
	int has_next = i + 1 < b->nblocks;
	int err = FDO_OK;
	bl->first_succ = (uint32_t)b->nedges;
	if (bl->flags & BLK_STOP) {
		bl->flags |= SYM_BLOCK_EXIT;
		return FDO_OK;
	}
	switch (in->kind) {
	case SYM_INSN_JUMP:
		if (in_range(b, in->target))
			err = push_edge(b, i,
					block_at(b->blocks, b->nblocks,
						 in->target),
					SYM_EDGE_TAKEN);
		else
			bl->flags |= SYM_BLOCK_EXIT; /* a tail call */
		break;
	case SYM_INSN_COND:
		if (has_next)
			err = push_edge(b, i, i + 1, SYM_EDGE_FALL);
		else
			bl->flags |= SYM_BLOCK_EXIT;
		if (err)
			break;
		if (in_range(b, in->target)) {
			uint32_t t =
				block_at(b->blocks, b->nblocks, in->target);
			if (!has_next || t != i + 1)
				err = push_edge(b, i, t, SYM_EDGE_TAKEN);
		} else {
			/* The taken path leaves (a .cold part, a tail call). */
			bl->flags |= SYM_BLOCK_EXIT;
		}
		break;
	case SYM_INSN_IJUMP: {
		const struct cfg_tab *t = tab_of(b, last);
		if (in->flags & SYM_INSN_TAILCALL) {
			bl->flags |= SYM_BLOCK_EXIT;
		} else if (t && t->n) {
			if (t->exits)
				bl->flags |= SYM_BLOCK_EXIT;
			/* Targets are sorted and distinct, so are blocks. */
			for (uint32_t k = 0; k < t->n && !err; k++)
				err = push_edge(b, i,
						block_at(b->blocks, b->nblocks,
							 b->tgts[t->first + k]),
						SYM_EDGE_TABLE);
		} else {
			bl->flags |= SYM_BLOCK_UNKNOWN;
			(*nunresolved)++;
		}
		break;
	}
	case SYM_INSN_RET:
		bl->flags |= SYM_BLOCK_EXIT;
		break;
	default:
		if ((in->flags & SYM_INSN_NORETURN) || !has_next)
			bl->flags |= SYM_BLOCK_EXIT;
		else
			err = push_edge(b, i, i + 1, SYM_EDGE_FALL);
	}
	bl->nsucc = (uint32_t)(b->nedges - bl->first_succ);
	return err;
}

/*
 * mark_pad: blocks of padding that nothing reaches. A padding block is
 * reached if a non-padding block, or a reached padding block, has an edge
 * to it (a worklist over b->leaders, no longer needed, as the stack).
 */
static void mark_pad(struct cfg_b *b)
{
	uint32_t *stack = (uint32_t *)b->leaders; /* nleaders == nblocks */
	size_t top = 0;
	for (size_t i = 1; i < b->nblocks; i++)
		if (b->blocks[i].flags & BLK_ALLPAD)
			b->blocks[i].flags |= SYM_BLOCK_PAD;
	for (size_t e = 0; e < b->nedges; e++) {
		struct sym_block *to = &b->blocks[b->edges[e].to];
		if (!(b->blocks[b->edges[e].from].flags & SYM_BLOCK_PAD) &&
		    (to->flags & SYM_BLOCK_PAD)) {
			to->flags &= ~SYM_BLOCK_PAD;
			stack[top++] = b->edges[e].to;
		}
	}
	while (top) {
		const struct sym_block *bl = &b->blocks[stack[--top]];
		for (uint32_t k = 0; k < bl->nsucc; k++) {
			uint32_t t = b->edges[bl->first_succ + k].to;
			if (b->blocks[t].flags & SYM_BLOCK_PAD) {
				b->blocks[t].flags &= ~SYM_BLOCK_PAD;
				stack[top++] = t;
			}
		}
	}
	/* Drop the edges out of padding; count predecessors. */
	size_t k = 0;
	for (size_t i = 0; i < b->nblocks; i++) {
		struct sym_block *bl = &b->blocks[i];
		uint32_t first = bl->first_succ, n = bl->nsucc;
		bl->first_succ = (uint32_t)k;
		if (bl->flags & SYM_BLOCK_PAD) {
			bl->flags = SYM_BLOCK_PAD;
			bl->nsucc = 0;
			continue;
		}
		for (uint32_t j = 0; j < n; j++)
			b->edges[k++] = b->edges[first + j];
	}
	b->nedges = k;
	for (size_t e = 0; e < b->nedges; e++)
		b->blocks[b->edges[e].to].npred++;
	for (size_t i = 0; i < b->nblocks; i++)
		b->blocks[i].flags &= ~(BLK_STOP | BLK_ALLPAD);
	b->blocks[0].flags |= SYM_BLOCK_ENTRY;
}

/* shrink gives back the unused capacity of a grown array (best effort). */
static void *shrink(void *p, size_t n, size_t elem)
{
	if (!n) {
		free(p);
		return NULL;
	}
	void *q = realloc(p, n * elem);
	return q ? q : p;
}

static void cfg_b_fini(struct cfg_b *b)
{
	if (b->ci)
		cs_free(b->ci, 1);
	if (b->cs)
		cs_close(&b->cs);
	free(b->insns);
	free(b->refs);
	free(b->tabs);
	free(b->tgts);
	free(b->leaders);
	free(b->blocks);
	free(b->edges);
	free(b->seen);
	free(b->wmask);
}

static int build(struct cfg_b *b, uint32_t *ntables, uint32_t *nunres)
{
	pthread_once(&cs_once, cs_warm);
	cs_err ce = cs_open(CS_ARCH_X86, CS_MODE_64, &b->cs);
	if (ce != CS_ERR_OK) {
		b->cs = 0;
		fdo_warn("symbolizer: capstone: %s", cs_strerror(ce));
		return ce == CS_ERR_MEM ? FDO_ENOMEM : FDO_EUNSUPPORTED;
	}
	cs_option(b->cs, CS_OPT_DETAIL, CS_OPT_ON);
	b->ci = cs_malloc(b->cs);
	if (!b->ci)
		return FDO_ENOMEM;
	int err = decode_all(b);
	if (err)
		return err;
	mark_noreturn(b);
	/* Look-back decodes, searched instructions and table entries are
	 * bounded per function, so hostile code full of indirect jumps costs
	 * O(n) too. */
	b->budget = 4096 + 64 * b->ninsns;
	err = find_tables(b);
	if (!err) {
		find_tail_calls(b);
		err = make_blocks(b);
	}
	for (uint32_t i = 0; i < b->nblocks && !err; i++)
		err = succs(b, i, nunres);
	if (err)
		return err;
	mark_pad(b);
	for (size_t i = 0; i < b->ninsns; i++)
		*ntables += (b->insns[i].flags & SYM_INSN_TABLE) != 0;
	return FDO_OK;
}

int sym_cfg_build(const sym_code *c, uint64_t addr, uint64_t size,
		  struct sym_cfg **out)
{
	*out = NULL;
	if (size > CFG_MAX_SIZE)
		return FDO_ELIMIT;
	size_t avail = 0;
	const uint8_t *bytes = sym_code_text(c, addr, &avail);
	if (!size || !bytes || avail < size)
		return FDO_ENOT_FOUND;
	struct sym_cfg *cfg = calloc(1, sizeof *cfg);
	struct cfg_b *b = calloc(1, sizeof *b);
	if (!cfg || !b) {
		free(cfg);
		free(b);
		return FDO_ENOMEM;
	}
	b->code = c;
	b->lo = addr;
	b->hi = addr + size;
	b->bytes = bytes;
	uint32_t ntables = 0, nunres = 0;
	int err = build(b, &ntables, &nunres);
	if (err) {
		cfg_b_fini(b);
		free(b);
		free(cfg);
		return err;
	}
	*cfg = (struct sym_cfg){
		.addr = addr,
		.size = size,
		.insns = shrink(b->insns, b->ninsns, sizeof *b->insns),
		.ninsns = b->ninsns,
		.blocks = shrink(b->blocks, b->nblocks, sizeof *b->blocks),
		.nblocks = b->nblocks,
		.edges = shrink(b->edges, b->nedges, sizeof *b->edges),
		.nedges = b->nedges,
		.ntables = ntables,
		.nunresolved = nunres,
	};
	b->insns = NULL;
	b->blocks = NULL;
	b->edges = NULL;
	cfg_b_fini(b);
	free(b);
	*out = cfg;
	return FDO_OK;
}

void sym_cfg_free(struct sym_cfg *cfg)
{
	if (!cfg)
		return;
	free(cfg->insns);
	free(cfg->blocks);
	free(cfg->edges);
	free(cfg);
}

uint32_t sym_cfg_block_at(const struct sym_cfg *cfg, uint64_t vaddr)
{
	if (vaddr < cfg->addr || vaddr - cfg->addr >= cfg->size)
		return UINT32_MAX;
	uint32_t i = block_at(cfg->blocks, cfg->nblocks, vaddr);
	return i != CFG_NONE && vaddr < cfg->blocks[i].end ? i : UINT32_MAX;
}
